//! File operations inside homes, where the owner of the home is not trusted.
//!
//! tenantry runs as root and writes into directories the user controls: a
//! user could replace `~/.kube` with a link to `/etc` and have root write (and
//! chown to them) a file there. Every directory between the home and the file
//! must therefore be a real directory, and ownership is set without following
//! links. (A user racing the check remains possible; the window is small and
//! only ever yields a file of tenantry's content.)

use crate::error::{Error, Result};
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{PermissionsExt as _, lchown};
use std::path::{Component, Path, PathBuf};

/// `<root><absolute>`; refuses relative paths and `..`, which would escape the root.
pub fn under_root(root: &Path, absolute: &str) -> Result<PathBuf> {
    let relative =
        absolute.strip_prefix('/').ok_or_else(|| Error::Content(format!("`{absolute}` is not an absolute path")))?;
    let relative = Path::new(relative);
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(Error::Content(format!("`{absolute}` must not contain `..` or `.`")));
    }
    Ok(root.join(relative))
}

pub fn exists_no_follow(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("setting mode {mode:04o} on {}", path.display()), e))
}

pub fn chown(path: &Path, ids: Option<(u32, u32)>) -> Result<()> {
    let Some((uid, gid)) = ids else { return Ok(()) };
    lchown(path, Some(uid), Some(gid)).map_err(|e| Error::io(format!("changing the owner of {}", path.display()), e))
}

/// Create `dir` and its missing parents below `within`, each owned by `ids`
/// with `mode`; refuses when any existing step is a link or not a directory.
/// Without `within` (system directories) parents are created as root.
pub fn ensure_dir(dir: &Path, within: Option<&Path>, ids: Option<(u32, u32)>, mode: u32) -> Result<()> {
    let Some(base) = within else {
        return fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e));
    };
    let relative = dir.strip_prefix(base).map_err(|_| {
        Error::Refused(format!(
            "{} is outside the home {}; tenantry only writes inside homes",
            dir.display(),
            base.display()
        ))
    })?;
    let mut current = base.to_path_buf();
    for part in relative.components() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => {
                return Err(Error::Refused(format!(
                    "{} is a link or a file, not a directory; tenantry does not write through it (move it away)",
                    current.display()
                )));
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                fs::create_dir(&current).map_err(|e| Error::io(format!("creating {}", current.display()), e))?;
                set_mode(&current, mode)?;
                chown(&current, ids)?;
            }
            Err(error) => return Err(Error::io(format!("inspecting {}", current.display()), error)),
        }
    }
    Ok(())
}

/// Whether a directory is empty (or absent).
pub fn is_empty_dir(path: &Path) -> bool {
    match fs::read_dir(path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(error) => error.kind() == ErrorKind::NotFound,
    }
}

/// A regular file's first line, if it is one.
pub fn first_line(bytes: &[u8]) -> &[u8] {
    bytes.split(|b| *b == b'\n').next().unwrap_or_default()
}
