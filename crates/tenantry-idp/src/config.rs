//! The `[idp]` section of tenantry.toml and where the credentials come from.
//!
//! Secrets are never part of the configuration (SPEC §5): an API token in a
//! file only its owner reads (`token_file`), or for Keycloak a client id and
//! a secret file (`client_secret_file`) for the client-credentials grant.

use std::path::PathBuf;

/// Which identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Keycloak's admin REST API (`/admin/realms/<realm>`).
    Keycloak,
    /// Authentik's API v3 (`/api/v3/core/…`).
    Authentik,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Keycloak => "Keycloak",
            Provider::Authentik => "Authentik",
        }
    }
}

/// Settings of `[idp]` in tenantry.toml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdpConfig {
    /// `keycloak` or `authentik`.
    pub provider: Provider,
    /// Base URL, e.g. `https://auth.example.org`.
    pub url: String,
    /// Keycloak realm whose users and groups tenantry manages.
    #[serde(default)]
    pub realm: Option<String>,
    /// File holding an API token (Authentik) or an admin access token
    /// (Keycloak); mode 0600 or stricter. Else `IDP_TOKEN` in the environment.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Keycloak: a confidential client with `manage-users`, `view-users` and
    /// `query-groups` of `realm-management`, for the client-credentials grant.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its secret, in a file only its owner reads.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// PEM file of a CA to trust besides the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Create a roster user missing in the identity provider (with the
    /// roster email, no password: usable after the person's first sign-in
    /// sets one). Off: a missing user is a plan error naming the roster line.
    #[serde(default)]
    pub create_users: bool,
    /// The reversible cut also disables the account (besides removing it from the managed groups).
    #[serde(default)]
    pub disable_on_cut: bool,
    /// The destroy stage deletes the account (after a backup). Off: accounts are never deleted.
    #[serde(default)]
    pub delete_accounts_on_destroy: bool,
}

impl IdpConfig {
    /// A configuration with every option off.
    pub fn new(provider: Provider, url: impl Into<String>) -> IdpConfig {
        IdpConfig {
            provider,
            url: url.into(),
            realm: None,
            token_file: None,
            client_id: None,
            client_secret_file: None,
            ca_file: None,
            create_users: false,
            disable_on_cut: false,
            delete_accounts_on_destroy: false,
        }
    }

    /// What the configuration gets wrong before anything connects.
    pub fn check(&self) -> Result<(), String> {
        let url = self.url.trim_end_matches('/');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("`url` `{url}` must start with https:// (e.g. https://auth.example.org)"));
        }
        match self.provider {
            Provider::Keycloak if self.realm.as_deref().is_none_or(str::is_empty) => {
                Err("`realm` is required for provider = \"keycloak\"".to_string())
            }
            Provider::Authentik if self.client_id.is_some() || self.client_secret_file.is_some() => {
                Err("provider = \"authentik\" takes an API token (`token_file`), not `client_id`/`client_secret_file`"
                    .to_string())
            }
            _ if self.client_id.is_some() != self.client_secret_file.is_some() => {
                Err("`client_id` and `client_secret_file` go together".to_string())
            }
            _ => Ok(()),
        }
    }
}
