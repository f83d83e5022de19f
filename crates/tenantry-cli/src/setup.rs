//! `tenantry kubeconfig` and `tenantry setup-script`: what a user runs on
//! their own machine to reach the cluster as their own OIDC identity.
//!
//! Thin callers: the kubeconfig comes from the one generator in
//! `tenantry_core::kubeconfig` that also backs the host target (so a
//! workstation account and a laptop get the same file), and the script from
//! `tenantry_core::setup`, which the portal uses too.

use crate::{CliError, Result};
use std::io::Write as _;
use std::path::Path;
use tenantry_core::setup::SetupError;
use tenantry_model::Roster;

/// Operating systems the setup script supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SetupOs {
    Linux,
    Mac,
}

/// The user's kubeconfig text, or an error saying what the roster lacks.
pub fn kubeconfig_for(roster: &Roster, user: &str) -> Result<String> {
    if !roster.users.contains_key(user) {
        let help = tenantry_model::did_you_mean(user, roster.users.keys().map(String::as_str))
            .map(|k| format!("did you mean `{k}`?"))
            .unwrap_or_else(|| "users are the keys under `users:` in the roster".to_string());
        return Err(CliError::Usage { message: format!("`{user}` is not in the roster"), help });
    }
    match tenantry_core::kubeconfig::oidc_kubeconfig(&roster.platform) {
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(setup_error(&SetupError::NoKubeconfig)),
        Err(error) => Err(setup_error(&SetupError::Kubeconfig(error))),
    }
}

fn setup_error(error: &SetupError) -> CliError {
    CliError::Usage { message: error.to_string(), help: error.help().to_string() }
}

/// Write a kubeconfig to `path` only when nothing is there (mode 0600,
/// atomically): an existing file may hold the user's other clusters.
pub fn write_new_kubeconfig(path: &Path, text: &str) -> Result<()> {
    if path.symlink_metadata().is_ok() {
        return Err(CliError::Usage {
            message: format!("{} already exists; tenantry never overwrites a kubeconfig", path.display()),
            help: "print it with `tenantry kubeconfig USER` and merge it by hand, or choose another path".to_string(),
        });
    }
    write_file(path, text.as_bytes(), 0o600, false)
}

/// Write a file atomically (temp file, fsync, rename) with `mode`; an
/// existing file is replaced only when `replace` is set.
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<()> {
    if !replace && path.symlink_metadata().is_ok() {
        return Err(CliError::Usage {
            message: format!("{} already exists", path.display()),
            help: "choose another path, or pass --force to replace it".to_string(),
        });
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let io = |source: std::io::Error| CliError::Read { path: path.display().to_string(), source };
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

/// A POSIX shell script that installs kubectl and kubelogin when missing and
/// writes the kubeconfig to `~/.kube/config` only when that file is absent
/// (otherwise next to it as `~/.kube/<platform>.config`); the one generator
/// is `tenantry_core::setup`.
pub fn setup_script(roster: &Roster, os: SetupOs) -> Result<String> {
    let os = match os {
        SetupOs::Linux => tenantry_core::setup::SetupOs::Linux,
        SetupOs::Mac => tenantry_core::setup::SetupOs::Mac,
    };
    tenantry_core::setup::setup_script(&roster.platform, os, &heredoc_nonce()).map_err(|e| setup_error(&e))
}

/// 16 hex digits from the standard library's randomly keyed hasher. The
/// script's safety does not rest on it (the generator checks the delimiter
/// against the content); it only makes the delimiter unguessable.
fn heredoc_nonce() -> String {
    use std::hash::BuildHasher as _;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:016x}", std::hash::RandomState::new().hash_one((now.as_nanos(), std::process::id())))
}
