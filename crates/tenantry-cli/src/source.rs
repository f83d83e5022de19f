//! Where the roster comes from: a file, or `vault://<kv-mount>/<path>#<key>`
//! (the origin platform's `k8s_users` JSON in a KV v2 entry, SPEC §2.3).

use crate::config::Config;
use crate::{CliError, Result};
use std::path::Path;
use tenantry_model::{Roster, ValidationContext};
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
        let usage = || CliError::Usage {
            message: format!("`{source}` is not a Vault roster source"),
            help: "write it as vault://<kv-mount>/<path>#<key>, e.g. vault://secret/platform#k8s_users".to_string(),
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

/// Read a KV v2 field, from sync or async code alike: the read runs on its
/// own thread with its own runtime, so it never nests inside the caller's.
pub fn read_vault_field(config: &Config, source: &VaultSource, name: &str) -> Result<String> {
    let vault = match &config.vault {
        Some(vault) => vault.clone(),
        None => VaultConfig::from_env().ok_or_else(|| CliError::Config {
            message: format!("cannot read `{name}`: no Vault is configured"),
            help: "add [vault] address to tenantry.toml, or export VAULT_ADDR (and VAULT_TOKEN)".to_string(),
        })?,
    };
    let source = source.clone();
    let read = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?;
        runtime.block_on(tenantry_vault::read_kv_field(&vault, &source.mount, &source.path, &source.key)).map_err(|e| {
            CliError::Config {
                message: format!("cannot read the roster from Vault: {e}"),
                help: "check the path and key, and that the token may read them".to_string(),
            }
        })
    });
    read.join().map_err(|_| CliError::Config {
        message: format!("reading `{name}` from Vault stopped unexpectedly"),
        help: "run again; if it persists, report it with RUST_LOG=debug output".to_string(),
    })?
}

/// Read and validate the roster named on the command line. A `vault://`
/// source takes its `platform:` block from `platform_from` (a roster file),
/// since the origin's `k8s_users` holds only users.
pub fn load_roster(
    source: &str,
    context: &ValidationContext,
    config: &Config,
    platform_from: Option<&Path>,
) -> Result<(Roster, String)> {
    if let Some(vault_source) = VaultSource::parse(source)? {
        let json = read_vault_field(config, &vault_source, source)?;
        let template_text = match platform_from {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| CliError::Read { path: path.display().to_string(), source: e })?,
            ),
            None => None,
        };
        let template_name = platform_from.map(|p| p.display().to_string()).unwrap_or_default();
        let template = template_text
            .as_deref()
            .map(|text| tenantry_import::PlatformTemplate { source_name: &template_name, text });
        let roster = tenantry_import::k8s_users_to_roster(&json, source, template, context)
            .map_err(|e| CliError::Roster(e.diagnostics(), Some(json.clone())))?;
        return Ok((roster, json));
    }
    let bytes = std::fs::read(source)
        .map_err(|source_error| CliError::Read { path: source.to_string(), source: source_error })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let roster = tenantry_model::load(source, &bytes, context).map_err(|d| CliError::Roster(d, Some(text.clone())))?;
    Ok((roster, text))
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
