//! The local target's files: crash-safe writes (a reader sees the old file
//! or the new one, never half of one) and removal of what it rendered.

use std::fs;
use std::io;
use std::path::Path;

/// The writer lives in `tenantry-fs` (random temp names, no-follow opens,
/// fsync, rename through the directory's handle), shared with the host target.
pub use tenantry_fs::{AtomicWriter, sweep_stale_temp_files};

/// Remove a file (absent is fine) and then any directories it leaves empty, up to `root`.
pub fn remove_file_and_empty_parents(root: &Path, relative: &Path) -> io::Result<()> {
    let path = root.join(relative);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == root || !current.starts_with(root) {
            break;
        }
        // Fails (and stops) when the directory still holds something.
        if fs::remove_dir(current).is_err() {
            break;
        }
        dir = current.parent();
    }
    Ok(())
}
