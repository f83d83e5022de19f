//! Where the roster comes from: a file, or `vault://<kv-mount>/<path>#<key>`
//! (the origin platform's `k8s_users` JSON in a KV v2 entry, SPEC §2.3).

use crate::config::Config;
use crate::error::{AppError, Result};
use std::path::Path;
use tenantry_model::{Diagnostics, Roster, ValidationContext};
use tenantry_vault::VaultConfig;

/// A parsed `vault://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSource {
    pub mount: String,
    pub path: String,
    pub key: String,
}

impl VaultSource {
    /// `vault://secret/platform#k8s_users` → mount `secret`, path `platform`, key `k8s_users`.
    pub fn parse(source: &str) -> Result<Option<VaultSource>> {
        let Some(rest) = source.strip_prefix("vault://") else { return Ok(None) };
        let usage = || {
            AppError::usage(
                format!("`{source}` is not a Vault roster source"),
                "write it as vault://<kv-mount>/<path>#<key>, e.g. vault://secret/platform#k8s_users",
            )
        };
        let (location, key) = rest.split_once('#').ok_or_else(usage)?;
        let (mount, path) = location.trim_matches('/').split_once('/').ok_or_else(usage)?;
        if mount.is_empty() || path.trim_matches('/').is_empty() || key.is_empty() {
            return Err(usage());
        }
        Ok(Some(VaultSource {
            mount: mount.to_string(),
            path: path.trim_matches('/').to_string(),
            key: key.to_string(),
        }))
    }
}

/// A roster as read and validated, with its text (diagnostics point into it)
/// and the warnings of a valid one.
#[derive(Debug, Clone)]
pub struct LoadedRoster {
    pub roster: Roster,
    pub text: String,
    pub warnings: Diagnostics,
}

/// Read a KV v2 field, from sync or async code alike: the read runs on its
/// own thread with its own runtime, so it never nests inside the caller's.
pub fn read_vault_field(config: &Config, source: &VaultSource, name: &str) -> Result<String> {
    let vault = match config.vault()? {
        Some(vault) => vault,
        None => VaultConfig::from_env().ok_or_else(|| {
            AppError::config(
                format!("cannot read `{name}`: no Vault is configured"),
                "add [vault] address to tenantry.toml, or export VAULT_ADDR (and VAULT_TOKEN)",
            )
        })?,
    };
    let source = source.clone();
    let read = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::config(format!("cannot start the async runtime: {e}"), "run again"))?;
        runtime.block_on(tenantry_vault::read_kv_field(&vault, &source.mount, &source.path, &source.key)).map_err(|e| {
            AppError::config(
                format!("cannot read the roster from Vault: {e}"),
                "check the path and key, and that the token may read them",
            )
        })
    });
    read.join().map_err(|_| {
        AppError::config(
            format!("reading `{name}` from Vault stopped unexpectedly"),
            "run again; if it persists, report it with RUST_LOG=debug output",
        )
    })?
}

/// Read and validate the roster named `source`. A `vault://` source takes
/// its `platform:` block from `platform_from` (a roster file), since the
/// origin's `k8s_users` holds only users.
pub fn load_roster(
    source: &str,
    context: &ValidationContext,
    config: &Config,
    platform_from: Option<&Path>,
) -> Result<LoadedRoster> {
    if let Some(vault_source) = VaultSource::parse(source)? {
        let json = read_vault_field(config, &vault_source, source)?;
        let template_text = match platform_from {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| AppError::read(path.display(), e))?),
            None => None,
        };
        let template_name = platform_from.map(|p| p.display().to_string()).unwrap_or_default();
        let template = template_text
            .as_deref()
            .map(|text| tenantry_import::PlatformTemplate { source_name: &template_name, text });
        let roster = tenantry_import::k8s_users_to_roster(&json, source, template, context)
            .map_err(|e| AppError::Roster(e.diagnostics(), Some(json.clone())))?;
        return Ok(LoadedRoster { roster, text: json, warnings: Diagnostics::default() });
    }
    let bytes = std::fs::read(source).map_err(|e| AppError::read(source, e))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let validated = tenantry_model::parse_raw(source, &bytes)
        .and_then(|raw| tenantry_model::validate_with_warnings(source, raw, context));
    match validated {
        Ok((roster, warnings)) => Ok(LoadedRoster { roster, text, warnings }),
        Err(diagnostics) => Err(AppError::Roster(diagnostics, Some(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_sources_name_mount_path_and_key() {
        assert_eq!(
            VaultSource::parse("vault://secret/platform#k8s_users").unwrap(),
            Some(VaultSource { mount: "secret".into(), path: "platform".into(), key: "k8s_users".into() })
        );
        assert_eq!(VaultSource::parse("vault://kv/teams/a/b#x").unwrap().unwrap().path, "teams/a/b");
        assert_eq!(VaultSource::parse("roster.yaml").unwrap(), None);
        for bad in ["vault://secret#k", "vault://secret/platform", "vault:///platform#k", "vault://secret/#k"] {
            assert!(VaultSource::parse(bad).is_err(), "{bad}");
        }
    }
}
