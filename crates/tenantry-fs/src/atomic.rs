//! Crash-safe writes by path, for directories tenantry itself owns (the
//! local target's output, the host records): a reader sees the old file or
//! the new one, never half of one; and the sweep of a killed writer's leftovers.

use crate::dir::{Dir, EntryKind};
use crate::write::{TEMP_PREFIX, WriteOptions};
use std::io;
use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub struct AtomicWriter;

impl AtomicWriter {
    /// Write `bytes` to `path` atomically: its directory (created when
    /// missing) is opened once and the write goes through that handle
    /// ([`Dir::write_file`]: random temp name, `O_EXCL|O_NOFOLLOW`, fsync,
    /// rename, fsync of the directory). Unchanged files are not rewritten.
    pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{} names no file", path.display())))?;
        std::fs::create_dir_all(dir)?;
        let dir = Dir::open_anchor(dir)?;
        dir.write_file(name, bytes, WriteOptions { mode: None, owner: None, replace: true })?;
        Ok(())
    }
}

/// Temp files left by a killed writer are never complete: remove every
/// [`TEMP_PREFIX`] file below `root`. Directories are entered through
/// handles, never through a link.
pub fn sweep_stale_temp_files(root: &Path) {
    let Ok(anchor) = Dir::open_anchor(root) else { return };
    let mut pending = vec![anchor];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = dir.entries() else { continue };
        for (name, kind) in entries {
            match kind {
                EntryKind::Dir => {
                    if let Ok(child) = dir.open_dir(&name) {
                        pending.push(child);
                    }
                }
                _ if name.to_string_lossy().starts_with(TEMP_PREFIX) => {
                    let _ = dir.remove_file(&name);
                }
                _ => {}
            }
        }
    }
}
