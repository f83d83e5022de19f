//! tenantry.toml: which targets are active and where their settings are.
//!
//! Each target owns its own section; this module only splits the file and
//! hands `[local]` to the local target. Sections of targets this build does
//! not include are refused with a clear message rather than ignored.

use crate::{CliError, Result};
use std::path::{Path, PathBuf};
use tenantry_dns::DnsConfig;
use tenantry_host::HostConfig;
use tenantry_kubernetes::KubernetesConfig;
use tenantry_local::LocalConfig;
use tenantry_model::ValidationContext;
use tenantry_vault::VaultConfig;

/// Sections a tenantry.toml may have (SPEC §5).
const KNOWN_SECTIONS: &[&str] = &["local", "kubernetes", "vault", "dns", "host", "ci", "forge", "idp"];
/// Sections whose target this build includes.
const BUILT_IN: &[&str] = &["local", "kubernetes", "host", "vault", "dns"];

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub local: LocalConfig,
    /// `[kubernetes]`: when present, Kubernetes resources are applied to the cluster.
    pub kubernetes: Option<KubernetesConfig>,
    /// `[host]`: when present, workstation accounts and files are applied to this machine (or a sandbox root).
    pub host: Option<HostConfig>,
    /// `[vault]`: policies, entities, aliases and deployer roles applied to Vault/OpenBao.
    pub vault: Option<VaultConfig>,
    /// `[dns]`: user domains as records in the managed zones.
    pub dns: Option<DnsConfig>,
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
}

impl Config {
    /// Load from `--config`, or ./tenantry.toml when present, or defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from("tenantry.toml")).filter(|p| p.exists()),
        };
        let Some(path) = path else { return Ok(Config::default()) };
        let text = std::fs::read_to_string(&path)
            .map_err(|source| CliError::Read { path: path.display().to_string(), source })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        // Relative paths in the file are relative to the file.
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        config.local.out_dir = base.join(&config.local.out_dir);
        config.local.state = base.join(&config.local.state);
        if let Some(kubernetes) = &mut config.kubernetes
            && let Some(path) = &kubernetes.kubeconfig
        {
            kubernetes.kubeconfig = Some(expand_home(path, &base));
        }
        if let Some(host) = &mut config.host {
            host.root = absolute(&host.root, &base);
            host.backup_dir = host.backup_dir.as_deref().map(|dir| absolute(dir, &base));
            host.source_dir = host.source_dir.as_deref().map(|dir| absolute(dir, &base));
        }
        if let Some(vault) = &mut config.vault {
            vault.token_file = vault.token_file.as_deref().map(|file| absolute(file, &base));
            vault.ca_file = vault.ca_file.as_deref().map(|file| absolute(file, &base));
        }
        if let Some(dns) = &mut config.dns {
            dns.tsig_key_file = dns.tsig_key_file.as_deref().map(|file| absolute(file, &base));
            dns.api_key_file = dns.api_key_file.as_deref().map(|file| absolute(file, &base));
            dns.api_token_file = dns.api_token_file.as_deref().map(|file| absolute(file, &base));
        }
        config.path = Some(path);
        Ok(config)
    }

    pub fn parse(text: &str, name: &str) -> Result<Config> {
        let table: toml::Table = toml::from_str(text).map_err(|e| CliError::Config {
            message: format!("{name}: {}", e.message()),
            help: format!("at {}; see examples/tenantry.toml for every section", position(text, e.span())),
        })?;
        for (section, value) in &table {
            if !KNOWN_SECTIONS.contains(&section.as_str()) {
                let help = match tenantry_model_did_you_mean(section) {
                    Some(candidate) => format!("did you mean `[{candidate}]`?"),
                    None => format!("the sections are: {}", KNOWN_SECTIONS.join(", ")),
                };
                return Err(CliError::Config { message: format!("{name}: unknown section `[{section}]`"), help });
            }
            if !value.is_table() {
                return Err(CliError::Config {
                    message: format!("{name}: `{section}` must be a table"),
                    help: format!("write `[{section}]` on its own line"),
                });
            }
            if !BUILT_IN.contains(&section.as_str()) {
                return Err(CliError::Config {
                    message: format!(
                        "{name}: the `{section}` target is configured, but this build of tenantry cannot apply it yet"
                    ),
                    help: format!(
                        "remove or comment out `[{section}]`; its resources are then rendered by the local target into the out_dir"
                    ),
                });
            }
        }
        let local = match table.get("local") {
            Some(section) => section.clone().try_into::<LocalConfig>().map_err(|e| CliError::Config {
                message: format!("{name}: [local]: {}", e.message()),
                help: "[local] takes out_dir, state and enabled".to_string(),
            })?,
            None => LocalConfig::default(),
        };
        let kubernetes = match table.get("kubernetes") {
            Some(section) => Some(section.clone().try_into::<KubernetesConfig>().map_err(|e| CliError::Config {
                message: format!("{name}: [kubernetes]: {}", e.message()),
                help: "[kubernetes] takes kubeconfig and context".to_string(),
            })?),
            None => None,
        };
        let host = match table.get("host") {
            Some(section) => Some(section.clone().try_into::<HostConfig>().map_err(|e| CliError::Config {
                message: format!("{name}: [host]: {}", e.message()),
                help: "[host] takes root, backup_dir, source_dir, records_dir, useradd, usermod, userdel, git, tar and git_timeout_secs".to_string(),
            })?),
            None => None,
        };
        let vault = match table.get("vault") {
            Some(section) => Some(section.clone().try_into::<VaultConfig>().map_err(|e| CliError::Config {
                message: format!("{name}: [vault]: {}", e.message()),
                help: "[vault] takes address, token_file, oidc_mount, kv_mount, kubernetes_secrets_mount, namespace and ca_file".to_string(),
            })?),
            None => None,
        };
        let dns = match table.get("dns") {
            Some(section) => {
                let dns = section.clone().try_into::<DnsConfig>().map_err(|e| CliError::Config {
                    message: format!("{name}: [dns]: {}", e.message()),
                    help: "[dns] takes provider (rfc2136 | powerdns | cloudflare), zones, and the provider's server/api_url and key file".to_string(),
                })?;
                dns.check().map_err(|e| CliError::Config {
                    message: format!("{name}: [dns]: {e}"),
                    help: "see examples/tenantry.toml for each provider's settings".to_string(),
                })?;
                Some(dns)
            }
            None => None,
        };
        Ok(Config { local, kubernetes, host, vault, dns, path: None })
    }

    /// What derivation needs from the configured targets: Vault mount paths,
    /// the DNS zones and whether the DNS provider can proxy.
    pub fn settings(&self) -> tenantry_core::Settings {
        let mut settings = tenantry_core::Settings::default();
        if let Some(vault) = &self.vault {
            settings = vault.settings(settings);
        }
        if let Some(dns) = &self.dns {
            settings.dns_zones = dns.zones();
            settings.dns_proxy_supported = dns.provider.supports_proxy();
        }
        settings
    }

    /// What roster validation needs to know from tenantry.toml.
    pub fn validation_context(&self) -> ValidationContext {
        ValidationContext {
            dns_zones: self.dns.as_ref().map(DnsConfig::zones).unwrap_or_default(),
            // `host_dispatch_path` is `[host] dispatch_path` once HostConfig has the field.
            ..ValidationContext::default()
        }
    }
}

/// `~/x` → `$HOME/x`; relative paths are relative to the config file.
fn expand_home(path: &Path, base: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => base.join(path),
    }
}

/// `expand_home`, made absolute: `useradd --root` and git run in other working directories.
fn absolute(path: &Path, base: &Path) -> PathBuf {
    let path = expand_home(path, base);
    std::path::absolute(&path).unwrap_or(path)
}

fn tenantry_model_did_you_mean(section: &str) -> Option<&'static str> {
    tenantry_model::did_you_mean(section, KNOWN_SECTIONS.iter().copied())
}

fn position(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else { return "an unknown position".to_string() };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    format!("line {line}, column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file_and_local_settings_with_one() {
        let config = Config::parse("[local]\nout_dir = \"out\"\n", "t.toml").unwrap();
        assert_eq!(config.local.out_dir, PathBuf::from("out"));
        assert_eq!(config.local.state, PathBuf::from(".tenantry/state.db"));
    }

    #[test]
    fn unknown_and_unbuilt_sections_are_refused_with_a_fix() {
        let CliError::Config { help, .. } = Config::parse("[kubernets]\n", "t.toml").unwrap_err() else { panic!() };
        assert_eq!(help, "did you mean `[kubernetes]`?");
        let CliError::Config { message, .. } = Config::parse("[forge]\naddress = \"x\"\n", "t.toml").unwrap_err()
        else {
            panic!()
        };
        assert!(message.contains("cannot apply it yet"));
        assert!(Config::parse("[local]\nout_dri = \"x\"\n", "t.toml").is_err());
    }
}
