//! What a user runs on their own machine to reach the cluster as their own
//! OIDC identity: the kubeconfig and the setup script. One generator
//! (`tenantry_core::kubeconfig`) backs these, the host target and the portal.

use crate::error::{AppError, Result};
use crate::session::Session;
use std::io::Write as _;
use std::path::Path;
use tenantry_core::setup::{SetupError, SetupOptions, VaultLogin};

pub use tenantry_core::setup::SetupOs;

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
        match tenantry_core::kubeconfig::oidc_kubeconfig(&self.roster().platform) {
            Ok(Some(text)) => Ok(text),
            Ok(None) => Err(setup_error(&SetupError::NoKubeconfig)),
            Err(error) => Err(setup_error(&SetupError::Kubeconfig(error))),
        }
    }

    /// The setup script for `os`: with the OpenBao CLI and the Vault sign-in
    /// when `[vault]` is configured, and OpenTofu when `terraform`. `nonce`
    /// makes its heredoc delimiters unguessable (randomness is the caller's;
    /// the generator's safety does not rest on it: it checks each delimiter
    /// against the content).
    pub fn setup_script(&self, os: SetupOs, terraform: bool, nonce: &str) -> Result<String> {
        let vault = self
            .config()
            .vault()?
            .map(|vault| VaultLogin { address: vault.address.clone(), oidc_mount: vault.oidc_mount.clone() });
        let options = SetupOptions { vault, terraform, ..SetupOptions::default() };
        tenantry_core::setup::setup_script_with(&self.roster().platform, os, nonce, &options)
            .map_err(|e| setup_error(&e))
    }
}

fn setup_error(error: &SetupError) -> AppError {
    AppError::usage(error.to_string(), error.help())
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
