//! Directory handles opened without following links, and every operation
//! relative to them (the `*at` system calls): once a directory is verified,
//! what a tenant renames or links in its place afterwards is never followed.

use crate::error::{Error, Refusal, Result};
use rustix::fs::{self as rfs, AtFlags, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read as _;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Component, Path, PathBuf};

/// A directory, opened with `O_DIRECTORY` and without following a link.
const DIR_OPEN: OFlags =
    OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC).union(OFlags::NOCTTY);
/// A file to read: a link is refused by the kernel, a FIFO never blocks the open, a tty never becomes ours.
const READ_OPEN: OFlags =
    OFlags::RDONLY.union(OFlags::NOFOLLOW).union(OFlags::NONBLOCK).union(OFlags::CLOEXEC).union(OFlags::NOCTTY);
/// The numeric owner to give what tenantry creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// What stands at a name, as `lstat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Link,
    /// FIFO, socket, device.
    Other,
}

/// An entry's type and ownership, never following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryInfo {
    pub kind: EntryKind,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`& 0o7777`).
    pub mode: u32,
    pub size: u64,
}

impl EntryInfo {
    fn from_stat(stat: &rfs::Stat) -> EntryInfo {
        let kind = match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => EntryKind::File,
            FileType::Directory => EntryKind::Dir,
            FileType::Symlink => EntryKind::Link,
            _ => EntryKind::Other,
        };
        EntryInfo {
            kind,
            uid: stat.st_uid,
            gid: stat.st_gid,
            mode: stat.st_mode & 0o7777,
            size: u64::try_from(stat.st_size).unwrap_or(0),
        }
    }
}

/// What a read accepts: only a regular file, of this owner (when given), up to `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadRules {
    pub owner: Option<u32>,
    pub max_bytes: u64,
}

/// A verified directory: everything done through it happens in this very
/// directory, whatever is renamed or linked at its path later.
#[derive(Debug)]
pub struct Dir {
    pub(crate) fd: OwnedFd,
    /// Where it was opened, for messages only.
    pub(crate) path: PathBuf,
}

/// One plain path component, or a refusal.
pub(crate) fn component<'a>(name: &'a OsStr, parent: &Path) -> Result<&'a OsStr> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') || bytes.contains(&0) {
        return Err(Error::refused(parent.join(name), Refusal::BadName));
    }
    Ok(name)
}

/// The plain components of a relative path; `..`, `.` and a root are refused.
pub(crate) fn components<'a>(relative: &'a Path, base: &Path) -> Result<Vec<&'a OsStr>> {
    relative
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Error::refused(base.join(relative), Refusal::BadName)),
        })
        .collect()
}

pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

impl Dir {
    /// The trust anchor: a directory the configuration names (the host's
    /// root, tenantry's output or records directory). Its path is the
    /// admin's, so it is opened as given; everything below it is reached
    /// through handles.
    pub fn open_anchor(path: &Path) -> Result<Dir> {
        let fd = rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY, Mode::empty())
            .map_err(|e| Error::io("opening the directory", path, e))?;
        Ok(Dir { fd, path: path.to_path_buf() })
    }

    /// Where this directory was opened (for messages; never used to reach it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This directory's own type, owner and mode.
    pub fn info(&self) -> Result<EntryInfo> {
        let stat = rfs::fstat(&self.fd).map_err(|e| Error::io("inspecting", &self.path, e))?;
        Ok(EntryInfo::from_stat(&stat))
    }

    /// Another handle on the same directory.
    pub fn try_clone(&self) -> Result<Dir> {
        let fd = self.fd.try_clone().map_err(|e| Error::io("duplicating the handle of", &self.path, e))?;
        Ok(Dir { fd, path: self.path.clone() })
    }

    /// Refuses unless this directory is root's (or the running user's) and writable by nobody else.
    /// (Group write is allowed for the root group only.)
    pub fn check_trusted(&self) -> Result<()> {
        let info = self.info()?;
        let owner_ok = info.uid == 0 || info.uid == euid();
        let others_write = info.mode & 0o002 != 0 || (info.mode & 0o020 != 0 && info.gid != 0);
        if !owner_ok || others_write {
            return Err(Error::refused(&self.path, Refusal::Untrusted { uid: info.uid, mode: info.mode }));
        }
        Ok(())
    }

    /// The trusted directory `name` below this trusted one; `None` when
    /// absent. A link is followed only when it is root's own (only root can
    /// have made it here, as this directory is writable by root only: say
    /// `/home → /data/home`), and where it leads must be trusted too.
    fn open_trusted_dir(&self, name: &OsStr) -> Result<Option<Dir>> {
        let dir = match self.open_dir_if_exists(name) {
            Err(Error::Refused { reason: Refusal::NotDirectory, .. })
                if self
                    .entry(name)?
                    .is_some_and(|info| info.kind == EntryKind::Link && (info.uid == 0 || info.uid == euid())) =>
            {
                let path = self.path.join(name);
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOCTTY;
                match rfs::openat(&self.fd, name, flags, Mode::empty()) {
                    Ok(fd) => Some(Dir { fd, path }),
                    Err(Errno::NOENT) => None,
                    Err(Errno::NOTDIR) => return Err(Error::refused(path, Refusal::NotDirectory)),
                    Err(e) => return Err(Error::io("opening the directory", path, e)),
                }
            }
            other => other?,
        };
        if let Some(dir) = &dir {
            dir.check_trusted()?;
        }
        Ok(dir)
    }

    /// The directory `name` directly below, never through a link; `None` when absent.
    pub fn open_dir_if_exists(&self, name: &OsStr) -> Result<Option<Dir>> {
        let name = component(name, &self.path)?;
        let path = self.path.join(name);
        match rfs::openat(&self.fd, name, DIR_OPEN, Mode::empty()) {
            Ok(fd) => Ok(Some(Dir { fd, path })),
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::LOOP | Errno::NOTDIR) => Err(Error::refused(path, Refusal::NotDirectory)),
            Err(e) => Err(Error::io("opening the directory", path, e)),
        }
    }

    /// The directory `name` directly below, never through a link.
    pub fn open_dir(&self, name: &OsStr) -> Result<Dir> {
        self.open_dir_if_exists(name)?.ok_or_else(|| {
            Error::io("opening the directory", self.path.join(name), std::io::Error::from(std::io::ErrorKind::NotFound))
        })
    }

    /// Each component of `relative` in turn, none through a link; `None` when one is missing.
    pub fn walk_if_exists(&self, relative: &Path) -> Result<Option<Dir>> {
        let mut current = self.try_clone()?;
        for name in components(relative, &self.path)? {
            match current.open_dir_if_exists(name)? {
                Some(next) => current = next,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// Each component of `relative` in turn, none through a link.
    pub fn walk(&self, relative: &Path) -> Result<Dir> {
        let mut current = self.try_clone()?;
        for name in components(relative, &self.path)? {
            current = current.open_dir(name)?;
        }
        Ok(current)
    }

    /// Like [`Dir::walk`], and every directory passed must be trusted
    /// ([`Dir::check_trusted`]): the way from the root to the homes, to `/etc`.
    /// (Root's own links on the way are followed: see `open_trusted_dir`.)
    pub fn walk_trusted(&self, relative: &Path) -> Result<Dir> {
        self.walk_trusted_if_exists(relative)?.ok_or_else(|| {
            Error::io(
                "opening the directory",
                self.path.join(relative),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            )
        })
    }

    /// [`Dir::walk_trusted`]; `None` when a step is missing.
    pub fn walk_trusted_if_exists(&self, relative: &Path) -> Result<Option<Dir>> {
        let mut current = self.try_clone()?;
        for name in components(relative, &self.path)? {
            match current.open_trusted_dir(name)? {
                Some(next) => current = next,
                None => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// The directory `name` below, created when missing with `owner` and
    /// `mode` set on the new directory's own descriptor. A directory created
    /// by someone else in the moment between `mkdir` and `open` is refused,
    /// never chowned.
    pub fn ensure_dir(&self, name: &OsStr, mode: u32, owner: Option<Ids>) -> Result<Dir> {
        let name = component(name, &self.path)?;
        let path = self.path.join(name);
        match rfs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => {
                let dir = self.open_dir(name)?;
                if dir.info()?.uid != euid() {
                    return Err(Error::refused(path, Refusal::Replaced));
                }
                if let Some(ids) = owner {
                    rfs::fchown(&dir.fd, Some(Uid::from_raw(ids.uid)), Some(Gid::from_raw(ids.gid)))
                        .map_err(|e| Error::io("changing the owner of", &path, e))?;
                }
                rfs::fchmod(&dir.fd, Mode::from_raw_mode(mode))
                    .map_err(|e| Error::io("setting the mode of", &path, e))?;
                Ok(dir)
            }
            Err(Errno::EXIST) => self.open_dir(name),
            Err(e) => Err(Error::io("creating the directory", path, e)),
        }
    }

    /// [`Dir::ensure_dir`] for each component of `relative`.
    pub fn ensure_path(&self, relative: &Path, mode: u32, owner: Option<Ids>) -> Result<Dir> {
        let mut current = self.try_clone()?;
        for name in components(relative, &self.path)? {
            current = current.ensure_dir(name, mode, owner)?;
        }
        Ok(current)
    }

    /// [`Dir::ensure_path`] for tenantry's own directories: existing ones must be trusted.
    pub fn ensure_path_trusted(&self, relative: &Path, mode: u32) -> Result<Dir> {
        let mut current = self.try_clone()?;
        for name in components(relative, &self.path)? {
            current = match current.open_trusted_dir(name)? {
                Some(next) => next,
                None => current.ensure_dir(name, mode, None)?,
            };
        }
        Ok(current)
    }

    /// What is at `name`, without following it; `None` when nothing is.
    pub fn entry(&self, name: &OsStr) -> Result<Option<EntryInfo>> {
        let name = component(name, &self.path)?;
        match rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(EntryInfo::from_stat(&stat))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::io("inspecting", self.path.join(name), e)),
        }
    }

    /// A regular file's bytes under `rules`; `None` when absent. Never
    /// follows a link, never blocks on a FIFO, never reads past the limit.
    pub fn read_file(&self, name: &OsStr, rules: ReadRules) -> Result<Option<Vec<u8>>> {
        Ok(self.read_file_with_info(name, rules)?.map(|(_, bytes)| bytes))
    }

    /// [`Dir::read_file`] with the file's type, owner and mode as opened.
    pub fn read_file_with_info(&self, name: &OsStr, rules: ReadRules) -> Result<Option<(EntryInfo, Vec<u8>)>> {
        let name = component(name, &self.path)?;
        let path = self.path.join(name);
        let check = |info: &EntryInfo| -> Result<()> {
            if info.kind != EntryKind::File {
                return Err(Error::refused(&path, Refusal::NotRegularFile));
            }
            if let Some(expected) = rules.owner
                && info.uid != expected
            {
                return Err(Error::refused(&path, Refusal::WrongOwner { found: info.uid, expected }));
            }
            if info.size > rules.max_bytes {
                return Err(Error::refused(&path, Refusal::TooLarge { limit: rules.max_bytes }));
            }
            Ok(())
        };
        // Look before opening: opening a device can have effects of its own.
        let Some(before) = self.entry(name)? else { return Ok(None) };
        check(&before)?;
        let fd = match rfs::openat(&self.fd, name, READ_OPEN, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(Error::refused(path, Refusal::NotRegularFile)),
            Err(e) => return Err(Error::io("opening", path, e)),
        };
        // And check what was opened: it may have been swapped since.
        let info = EntryInfo::from_stat(&rfs::fstat(&fd).map_err(|e| Error::io("inspecting", &path, e))?);
        check(&info)?;
        let mut bytes = Vec::with_capacity(usize::try_from(info.size).unwrap_or(0));
        File::from(fd)
            .take(rules.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading", &path, e))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > rules.max_bytes {
            return Err(Error::refused(path, Refusal::TooLarge { limit: rules.max_bytes }));
        }
        Ok(Some((info, bytes)))
    }

    /// Create the link `name → target`, owned by `owner` (set on the link
    /// itself through an `O_PATH` descriptor, and only when it is still the
    /// link tenantry just made).
    pub fn symlink(&self, name: &OsStr, target: &OsStr, owner: Option<Ids>) -> Result<()> {
        let name = component(name, &self.path)?;
        let path = self.path.join(name);
        match rfs::symlinkat(target, &self.fd, name) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Err(Error::refused(path, Refusal::Exists)),
            Err(e) => return Err(Error::io("creating the link", path, e)),
        }
        let Some(ids) = owner else { return Ok(()) };
        let fd = rfs::openat(&self.fd, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::io("opening the link", &path, e))?;
        let info = EntryInfo::from_stat(&rfs::fstat(&fd).map_err(|e| Error::io("inspecting", &path, e))?);
        if info.kind != EntryKind::Link || info.uid != euid() {
            return Err(Error::refused(path, Refusal::Replaced));
        }
        rfs::chownat(
            &fd,
            "",
            Some(Uid::from_raw(ids.uid)),
            Some(Gid::from_raw(ids.gid)),
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::io("changing the owner of", path, e))
    }

    /// Where the link `name` points; `None` when absent or not a link.
    pub fn read_link(&self, name: &OsStr) -> Result<Option<PathBuf>> {
        let name = component(name, &self.path)?;
        match rfs::readlinkat(&self.fd, name, Vec::new()) {
            Ok(target) => Ok(Some(PathBuf::from(OsString::from_vec(target.into_bytes())))),
            Err(Errno::NOENT | Errno::INVAL) => Ok(None),
            Err(e) => Err(Error::io("reading the link", self.path.join(name), e)),
        }
    }

    /// Remove the non-directory `name`; `false` when it was not there.
    pub fn remove_file(&self, name: &OsStr) -> Result<bool> {
        let name = component(name, &self.path)?;
        match rfs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(Error::io("removing", self.path.join(name), e)),
        }
    }

    /// Move `from` (in this directory) to `to` in `to_dir`, both verified handles.
    pub fn rename(&self, from: &OsStr, to_dir: &Dir, to: &OsStr) -> Result<()> {
        let from = component(from, &self.path)?;
        let to = component(to, &to_dir.path)?;
        rfs::renameat(&self.fd, from, &to_dir.fd, to).map_err(|e| {
            Error::io(
                "moving",
                self.path.join(from),
                std::io::Error::other(format!("to {}: {e}", to_dir.path.join(to).display())),
            )
        })?;
        rfs::fsync(&to_dir.fd).map_err(|e| Error::io("syncing the directory", &to_dir.path, e))
    }

    /// Set this directory's own mode.
    pub fn set_mode(&self, mode: u32) -> Result<()> {
        rfs::fchmod(&self.fd, Mode::from_raw_mode(mode)).map_err(|e| Error::io("setting the mode of", &self.path, e))
    }

    /// The names in this directory with what each is (`.` and `..` left out).
    pub fn entries(&self) -> Result<Vec<(OsString, EntryKind)>> {
        let mut reader = rfs::Dir::read_from(&self.fd).map_err(|e| Error::io("listing", &self.path, e))?;
        let mut out = Vec::new();
        while let Some(entry) = reader.read() {
            let entry = entry.map_err(|e| Error::io("listing", &self.path, e))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::RegularFile => EntryKind::File,
                FileType::Directory => EntryKind::Dir,
                FileType::Symlink => EntryKind::Link,
                FileType::Unknown => {
                    // Some file systems do not say in the listing: ask, without following.
                    self.entry(OsStr::from_bytes(name))?.map_or(EntryKind::Other, |info| info.kind)
                }
                _ => EntryKind::Other,
            };
            out.push((OsString::from_vec(name.to_vec()), kind));
        }
        Ok(out)
    }

    /// Whether the directory holds nothing.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.entries()?.is_empty())
    }
}
