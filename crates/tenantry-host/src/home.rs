//! Where tenantry's host files live, reached only through `tenantry-fs`
//! handles: a tenant's home (everything inside it is the tenant's and
//! hostile), and the system directories (`/etc`, the dispatch map's
//! directory), which must be root's all the way down.

use crate::error::{Error, Result};
use crate::etc::PasswdEntry;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use tenantry_fs::{Dir, EntryInfo, Ids, ReadRules, WriteOptions, Written};

/// `<root><absolute>`; refuses relative paths and `..`, which would escape the root.
pub fn under_root(root: &Path, absolute: &str) -> Result<PathBuf> {
    Ok(root.join(relative_to_root(absolute)?))
}

fn relative_to_root(absolute: &str) -> Result<&Path> {
    let relative =
        absolute.strip_prefix('/').ok_or_else(|| Error::Content(format!("`{absolute}` is not an absolute path")))?;
    let relative = Path::new(relative);
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(Error::Content(format!("`{absolute}` must not contain `..` or `.`")));
    }
    Ok(relative)
}

/// A regular file's first line, if it is one.
pub fn first_line(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == b'\n').next().unwrap_or_default()
}

fn split(relative: &Path) -> Result<(&Path, OsString)> {
    let name = relative.file_name().ok_or_else(|| Error::Content(format!("`{}` names no file", relative.display())))?;
    Ok((relative.parent().unwrap_or(Path::new("")), name.to_os_string()))
}

/// The largest file tenantry reads from a home (env files, git config, managed copies).
pub const HOME_READ_LIMIT: u64 = 1 << 20;

/// A tenant's home, opened and verified: the way from the root to its
/// parent is root's (not writable by anyone else), the home itself is a real
/// directory (not a link) belonging to the account (or root). Everything
/// below is reached through this handle, never through a link.
#[derive(Debug)]
pub struct Home {
    dir: Dir,
    /// The home on the machine (`<root>/home/alice`), for messages and to place paths.
    path: PathBuf,
    /// The account's uid: files read from the home must be its.
    uid: u32,
    /// Owner of what tenantry creates in the home (`None` when not running as root).
    ids: Option<Ids>,
}

impl Home {
    pub fn open(root: &Path, account: &PasswdEntry, privileged: bool) -> Result<Home> {
        let relative = relative_to_root(&account.home)?;
        let (parent, name) = split(relative)?;
        let parent = Dir::open_anchor(root)?.walk_trusted(parent)?;
        let dir = parent.open_dir(&name)?;
        let owner = dir.info()?.uid;
        if owner != account.uid && owner != 0 {
            return Err(Error::Refused(format!(
                "the home {} of `{}` belongs to uid {owner}, not to the account (uid {}); tenantry does not write into it",
                dir.path().display(),
                account.name,
                account.uid
            )));
        }
        Ok(Home {
            path: root.join(relative),
            dir,
            uid: account.uid,
            ids: privileged.then_some(Ids { uid: account.uid, gid: account.gid }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The account's uid: what files read from the home must belong to.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    pub fn ids(&self) -> Option<Ids> {
        self.ids
    }

    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// `path` relative to the home; refuses a path outside it.
    fn relative<'a>(&self, path: &'a Path) -> Result<&'a Path> {
        path.strip_prefix(&self.path).map_err(|_| {
            Error::Refused(format!(
                "{} is outside the home {}; tenantry only writes inside homes",
                path.display(),
                self.path.display()
            ))
        })
    }

    /// The directory `path` (the home itself for the home's path); `None` when a step is missing.
    pub fn open_dir(&self, path: &Path) -> Result<Option<Dir>> {
        Ok(self.dir.walk_if_exists(self.relative(path)?)?)
    }

    /// The directory holding `path`, and its file name; `None` when a step is missing.
    pub fn parent_of(&self, path: &Path) -> Result<Option<(Dir, OsString)>> {
        let (parent, name) = split(self.relative(path)?)?;
        Ok(self.dir.walk_if_exists(parent)?.map(|dir| (dir, name)))
    }

    /// The directory holding `path`, its missing steps created as the account's with `mode`.
    pub fn parent_for_write(&self, path: &Path, mode: u32) -> Result<(Dir, OsString)> {
        let (parent, name) = split(self.relative(path)?)?;
        Ok((self.dir.ensure_path(parent, mode, self.ids)?, name))
    }

    /// What is at `path`, not following it; `None` when nothing is (or a step is missing).
    pub fn entry(&self, path: &Path) -> Result<Option<EntryInfo>> {
        match self.parent_of(path)? {
            Some((dir, name)) => Ok(dir.entry(&name)?),
            None => Ok(None),
        }
    }

    /// A regular file of the account's, at most [`HOME_READ_LIMIT`] bytes; `None` when absent.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match self.parent_of(path)? {
            Some((dir, name)) => {
                Ok(dir.read_file(&name, ReadRules { owner: Some(self.uid), max_bytes: HOME_READ_LIMIT })?)
            }
            None => Ok(None),
        }
    }

    /// Write `path` atomically as the account's, creating missing directories (0700).
    pub fn write(&self, path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<Written> {
        let (dir, name) = self.parent_for_write(path, 0o700)?;
        Ok(dir.write_file(&name, bytes, WriteOptions { mode: Some(mode), owner: self.ids, replace })?)
    }
}

/// The largest system file tenantry reads back (a dispatch map of many thousands of users fits).
pub const SYSTEM_READ_LIMIT: u64 = 16 << 20;

/// A system file's directory (`<root>/etc`, the dispatch map's), every step
/// root's and writable by root only; created (0755) when `create`.
pub fn system_parent(root: &Path, absolute: &str, create: bool) -> Result<Option<(Dir, OsString)>> {
    let (parent, name) = split(relative_to_root(absolute)?)?;
    let anchor = Dir::open_anchor(root)?;
    if create {
        return Ok(Some((anchor.ensure_path_trusted(parent, 0o755)?, name)));
    }
    Ok(anchor.walk_trusted_if_exists(parent)?.map(|dir| (dir, name)))
}

/// A system file's bytes and mode; `None` when absent. Only a regular file
/// of root's (the running user's) in root's directories is read.
pub fn read_system(root: &Path, absolute: &str) -> Result<Option<(Vec<u8>, u32)>> {
    let Some((dir, name)) = system_parent(root, absolute, false)? else { return Ok(None) };
    let owner = rustix::process::geteuid().as_raw();
    let rules = ReadRules { owner: Some(owner), max_bytes: SYSTEM_READ_LIMIT };
    Ok(dir.read_file_with_info(&name, rules)?.map(|(info, bytes)| (bytes, info.mode)))
}
