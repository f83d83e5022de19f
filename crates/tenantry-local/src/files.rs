//! Crash-safe file writes: a reader sees the old file or the new one, never half of one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

const TEMP_PREFIX: &str = ".tenantry-tmp-";
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy)]
pub struct AtomicWriter;

impl AtomicWriter {
    /// Write `bytes` to `path` atomically: a temp file in the same directory,
    /// fsync, rename over the target, fsync the directory. Unchanged files are not rewritten.
    pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
        if fs::read(path).is_ok_and(|existing| existing == bytes) {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = dir.join(format!(
            "{TEMP_PREFIX}{}-{}-{file_name}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, path)?;
            File::open(dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

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

/// Temp files left by a killed writer are ours and never complete: remove them.
pub(crate) fn sweep_stale_temp_files(root: &Path) {
    fn walk(dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir {
                walk(&path);
            } else if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = fs::remove_file(&path);
            }
        }
    }
    walk(root);
}
