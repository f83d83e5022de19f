//! What a user runs on their own machine to reach the cluster as their own
//! OIDC identity: the kubeconfig and the setup script. One generator
//! (`tenantry_core::kubeconfig`) backs these, the host target and the portal.

use crate::error::{AppError, Result};
use crate::session::Session;
use std::io::Write as _;
use std::path::Path;

/// Operating systems the setup script supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupOs {
    Linux,
    Mac,
}

impl Session {
    /// `user`'s kubeconfig, or an error saying what the roster lacks.
    pub fn kubeconfig(&self, user: &str) -> Result<String> {
        let roster = self.roster();
        if !roster.users.contains_key(user) {
            let help = tenantry_model::did_you_mean(user, roster.users.keys().map(String::as_str))
                .map(|k| format!("did you mean `{k}`?"))
                .unwrap_or_else(|| "users are the keys under `users:` in the roster".to_string());
            return Err(AppError::usage(format!("`{user}` is not in the roster"), help));
        }
        self.platform_kubeconfig()
    }

    fn platform_kubeconfig(&self) -> Result<String> {
        tenantry_core::kubeconfig::oidc_kubeconfig(&self.roster().platform).ok_or_else(|| {
            AppError::usage(
                "the roster has no `platform.api_server` or no `platform.oidc`, so there is no kubeconfig to give",
                "add `api_server: https://…:6443` and `oidc: { issuer_url: …, client_id: … }` under `platform:`",
            )
        })
    }

    /// The setup script for `os`.
    pub fn setup_script(&self, os: SetupOs) -> Result<String> {
        let kubeconfig = self.platform_kubeconfig()?;
        crate::setup::setup_script(&self.roster().platform.name, &kubeconfig, os)
    }
}

/// Write a kubeconfig to `path` only when nothing is there (mode 0600,
/// atomically): an existing file may hold the user's other clusters.
pub fn write_new_kubeconfig(path: &Path, text: &str) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(AppError::usage(
            format!("{} already exists; tenantry never overwrites a kubeconfig", path.display()),
            "print it with `tenantry kubeconfig USER` and merge it by hand, or choose another path",
        ));
    }
    write_file(path, text.as_bytes(), 0o600, false)
}

/// Write a file atomically (temp file, fsync, rename) with `mode`; an
/// existing file is replaced only when `replace` is set.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<()> {
    if !replace && path.symlink_metadata().is_ok() {
        return Err(AppError::usage(
            format!("{} already exists", path.display()),
            "choose another path, or pass --force to replace it",
        ));
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |source: std::io::Error| AppError::read(path.display(), source);
    let mut file = tempfile::Builder::new().prefix(".tenantry-write").tempfile_in(dir).map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.as_file().set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io)?;
    }
    file.write_all(bytes).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    if replace {
        file.persist(path).map_err(|e| io(e.error))?;
    } else {
        // A file that appeared meanwhile is still not replaced.
        file.persist_noclobber(path).map_err(|e| io(e.error))?;
    }
    Ok(())
}
