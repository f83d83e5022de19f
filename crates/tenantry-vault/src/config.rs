//! The `[vault]` section of tenantry.toml and where the token comes from.
//!
//! The token is never part of the configuration (SPEC §5): only where to
//! read it — a file that must not be readable by group or others, or the
//! `VAULT_TOKEN` / `BAO_TOKEN` environment variables.

use crate::{Error, Result};
use std::path::PathBuf;

/// Settings of `[vault]` in tenantry.toml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// Base URL of Vault or OpenBao, e.g. `https://vault.example.org`.
    pub address: String,
    /// File holding the token (`~/` is the home directory); mode 0600 or stricter.
    /// Without it the token comes from `VAULT_TOKEN`, else `BAO_TOKEN`.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Path of the OIDC auth mount whose aliases map logins to entities.
    #[serde(default = "default_oidc_mount")]
    pub oidc_mount: String,
    /// Path of the KV v2 mount holding the users' secrets.
    #[serde(default = "default_kv_mount")]
    pub kv_mount: String,
    /// Path of the kubernetes secrets engine that mints deployer tokens.
    #[serde(default = "default_kubernetes_mount")]
    pub kubernetes_secrets_mount: String,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// PEM file of the CA that signed Vault's certificate, trusted besides the
    /// system's roots (a homelab Vault often has a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_oidc_mount() -> String {
    "oidc".to_string()
}

fn default_kv_mount() -> String {
    "secret".to_string()
}

fn default_kubernetes_mount() -> String {
    "kubernetes".to_string()
}

impl VaultConfig {
    /// A configuration with the default mounts.
    pub fn new(address: impl Into<String>) -> VaultConfig {
        VaultConfig {
            address: address.into(),
            token_file: None,
            oidc_mount: default_oidc_mount(),
            kv_mount: default_kv_mount(),
            kubernetes_secrets_mount: default_kubernetes_mount(),
            namespace: None,
            ca_file: None,
        }
    }

    /// A configuration with the default mounts for the server in `VAULT_ADDR`
    /// (else `BAO_ADDR`), for reading a `vault://` roster source without a
    /// `[vault]` section; `None` when neither is set.
    pub fn from_env() -> Option<VaultConfig> {
        ["VAULT_ADDR", "BAO_ADDR"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .map(VaultConfig::new)
    }

    /// The mounts as derivation needs them, so the plan and this target agree on paths.
    pub fn settings(&self, base: tenantry_core::Settings) -> tenantry_core::Settings {
        // The target trims mount paths when it builds its own; derivation must
        // use the same form, or `kv_mount = "secret/"` plans `secret//data/…`.
        let mount = |path: &str| path.trim_matches('/').to_string();
        tenantry_core::Settings {
            vault_kv_mount: mount(&self.kv_mount),
            vault_kubernetes_mount: mount(&self.kubernetes_secrets_mount),
            vault_oidc_mount: mount(&self.oidc_mount),
            ..base
        }
    }

    /// The token from `token_file`, or the process environment.
    pub fn token(&self) -> Result<Token> {
        self.token_from(|name| std::env::var(name).ok())
    }

    /// The token from `token_file`, or from `env` (`VAULT_TOKEN`, then `BAO_TOKEN`).
    /// Tests pass their own `env` so they never race on the process environment.
    pub fn token_from(&self, env: impl Fn(&str) -> Option<String>) -> Result<Token> {
        let variables = ["VAULT_TOKEN", "BAO_TOKEN"];
        match tenantry_secret::secret(self.token_file.as_deref(), &variables, "Vault token file", "token_file", &env) {
            Ok(secret) => Ok(Token(secret)),
            Err(tenantry_secret::SecretError::Missing { .. }) => Err(Error::NoToken),
            Err(other) => Err(Error::TokenFile(other)),
        }
    }
}

/// A Vault token. Its `Debug` never shows it, so it cannot end up in a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(tenantry_secret::Secret);

impl Token {
    pub(crate) fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}
