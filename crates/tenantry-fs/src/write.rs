//! Atomic writes relative to a verified directory handle: a new file under
//! a random name (`O_CREAT|O_EXCL|O_NOFOLLOW`), owner and mode set on its
//! descriptor, fsync, `renameat` into place, fsync of the directory.

use crate::dir::{Dir, Ids, ReadRules, component};
use crate::error::{Error, Refusal, Result};
use rustix::fs::{self as rfs, AtFlags, Gid, Mode, OFlags, RenameFlags, Uid};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};

/// Every temporary file tenantry creates starts with this; a killed writer's leftovers are swept by it.
pub const TEMP_PREFIX: &str = ".tenantry-tmp-";

/// A temporary file: a new inode or nothing (a planted link or file at the name fails the open).
const TEMP_OPEN: OFlags = OFlags::WRONLY
    .union(OFlags::CREATE)
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// How a file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Exact permission bits, set on the descriptor; `None` leaves the creation
    /// mode (0666 less the umask), for files in tenantry's own directories.
    pub mode: Option<u32>,
    /// Owner set on the descriptor before the file gets its name.
    pub owner: Option<Ids>,
    /// Replace what is at the name (`false`: a file that appeared meanwhile is kept).
    pub replace: bool,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The file already held these bytes, owner and mode; nothing was written.
    Unchanged,
    Written,
    /// `replace: false` and something was already at the name: left as it was.
    KeptExisting,
}

/// A name nobody can guess: a tenant watching for tenantry's writes cannot plant anything there first.
fn temp_name(name: &OsStr) -> std::io::Result<OsString> {
    let mut random = [0u8; 8];
    let mut filled = 0;
    while filled < random.len() {
        filled += rustix::rand::getrandom(&mut random[filled..], rustix::rand::GetRandomFlags::empty())?;
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let mut temp = format!("{TEMP_PREFIX}{hex}-").into_bytes();
    temp.extend_from_slice(name.as_bytes());
    Ok(OsString::from_vec(temp))
}

impl Dir {
    /// Whether `name` is a regular file already holding exactly this (bytes, owner, mode).
    fn holds(&self, name: &OsStr, bytes: &[u8], options: &WriteOptions) -> bool {
        let rules = ReadRules { owner: options.owner.map(|ids| ids.uid), max_bytes: bytes.len() as u64 };
        match self.read_file_with_info(name, rules) {
            Ok(Some((info, existing))) => {
                existing == bytes
                    && options.mode.is_none_or(|mode| info.mode == mode)
                    && options.owner.is_none_or(|ids| info.gid == ids.gid)
            }
            // Absent, or something else (a link, a FIFO, another owner's): it gets replaced.
            _ => false,
        }
    }

    /// Write `name` atomically: a new file under a random name (created
    /// with `O_EXCL|O_NOFOLLOW`), the bytes, owner and mode set on its
    /// descriptor, fsync, rename into place relative to this handle, fsync
    /// of the directory. A reader sees the old file or the new one.
    pub fn write_file(&self, name: &OsStr, bytes: &[u8], options: WriteOptions) -> Result<Written> {
        let name = component(name, &self.path)?;
        if options.replace && self.holds(name, bytes, &options) {
            return Ok(Written::Unchanged);
        }
        if !options.replace && self.entry(name)?.is_some() {
            return Ok(Written::KeptExisting);
        }
        let (temp, fd) = self.create_temp(name, options.mode.is_some())?;
        let result = self.finish(fd, &temp, name, bytes, &options);
        if !matches!(result, Ok(Written::Written)) {
            // Whatever is at our temp name now (ours, or a tenant's swap) goes; it is in this directory.
            let _ = rfs::unlinkat(&self.fd, &temp, AtFlags::empty());
        }
        result
    }

    fn create_temp(&self, name: &OsStr, restricted: bool) -> Result<(OsString, OwnedFd)> {
        // Until owner and mode are set on the descriptor, nobody else may open it.
        let mode = Mode::from_raw_mode(if restricted { 0o600 } else { 0o666 });
        for _ in 0..16 {
            let temp = temp_name(name).map_err(|e| Error::io("drawing a random name", &self.path, e))?;
            match rfs::openat(&self.fd, &temp, TEMP_OPEN, mode) {
                Ok(fd) => return Ok((temp, fd)),
                // Something sits at that name (planted): draw another.
                Err(Errno::EXIST | Errno::LOOP) => continue,
                Err(e) => return Err(Error::io("creating a temporary file", self.path.join(&temp), e)),
            }
        }
        Err(Error::refused(self.path.join(name), Refusal::NoTempName))
    }

    fn finish(&self, fd: OwnedFd, temp: &OsStr, name: &OsStr, bytes: &[u8], options: &WriteOptions) -> Result<Written> {
        let temp_path = self.path.join(temp);
        let path = self.path.join(name);
        let mut file = File::from(fd);
        file.write_all(bytes).map_err(|e| Error::io("writing", &temp_path, e))?;
        if let Some(ids) = options.owner {
            rfs::fchown(&file, Some(Uid::from_raw(ids.uid)), Some(Gid::from_raw(ids.gid)))
                .map_err(|e| Error::io("changing the owner of", &temp_path, e))?;
        }
        if let Some(mode) = options.mode {
            rfs::fchmod(&file, Mode::from_raw_mode(mode))
                .map_err(|e| Error::io("setting the mode of", &temp_path, e))?;
        }
        file.sync_all().map_err(|e| Error::io("syncing", &temp_path, e))?;
        drop(file);
        let flags = if options.replace { RenameFlags::empty() } else { RenameFlags::NOREPLACE };
        match rfs::renameat_with(&self.fd, temp, &self.fd, name, flags) {
            Ok(()) => {}
            Err(Errno::EXIST) if !options.replace => return Ok(Written::KeptExisting),
            Err(e) => return Err(Error::io("moving a temporary file into place at", path, e)),
        }
        rfs::fsync(&self.fd).map_err(|e| Error::io("syncing the directory", &self.path, e))?;
        Ok(Written::Written)
    }
}
