//! The destroy stage's backup directory: the one place backups are written,
//! so every target's backup is private, complete before anything is deleted,
//! and never replaces an earlier one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use tenantry_core::Backups;

/// Backups written into one directory (created 0700 when missing).
#[derive(Debug, Clone)]
pub struct BackupDir {
    dir: PathBuf,
}

impl BackupDir {
    pub fn new(dir: impl Into<PathBuf>) -> BackupDir {
        BackupDir { dir: dir.into() }
    }
}

/// `name` with `.<n>` before its extension: `vault-alice.json` → `vault-alice.1.json`.
fn numbered(name: &str, n: u32) -> String {
    match name.split_once('.') {
        Some((stem, extension)) => format!("{stem}.{n}.{extension}"),
        None => format!("{name}.{n}"),
    }
}

impl Backups for BackupDir {
    fn write(&self, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("`{name}` is not a backup file name")));
        }
        if !self.dir.exists() {
            fs::create_dir_all(&self.dir)?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        }
        let temp = self.dir.join(format!(".tenantry-backup-{}-{name}", std::process::id()));
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
        // `mode` applies only when the file is created; a stale temp file keeps its own.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        // A hard link never replaces an existing file: the first free name wins.
        let mut n = 0;
        let path = loop {
            let candidate = self.dir.join(if n == 0 { name.to_string() } else { numbered(name, n) });
            match fs::hard_link(&temp, &candidate) {
                Ok(()) => break candidate,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => n += 1,
                Err(error) => {
                    let _ = fs::remove_file(&temp);
                    return Err(error);
                }
            }
        };
        fs::remove_file(&temp)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(path)
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_private_and_never_replace_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let backups = BackupDir::new(dir.path().join("b"));
        let first = backups.write("vault-alice.json", b"one").unwrap();
        let second = backups.write("vault-alice.json", b"two").unwrap();
        assert_eq!(first, dir.path().join("b/vault-alice.json"));
        assert_eq!(second, dir.path().join("b/vault-alice.1.json"));
        assert_eq!(fs::read(&first).unwrap(), b"one");
        assert_eq!(fs::metadata(&second).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.path().join("b")).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read_dir(dir.path().join("b")).unwrap().count(), 2, "no temp file left");
        assert!(backups.write("../escape.json", b"x").is_err());
    }
}
