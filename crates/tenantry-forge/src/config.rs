//! `[forge]` in tenantry.toml: where the forge is and where its token is.

use std::path::PathBuf;

/// Which server speaks the API (Gitea and Forgejo share it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Gitea,
    Forgejo,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Gitea => "Gitea",
            Provider::Forgejo => "Forgejo",
        }
    }
}

/// Settings of `[forge]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgeConfig {
    /// The forge's base URL, e.g. `https://forge.example.org` (the API is under `/api/v1`).
    pub url: String,
    /// A file holding a site administrator's token (mode 0600); else `$FORGE_TOKEN`.
    pub token_file: Option<PathBuf>,
    /// `gitea` (default) or `forgejo`: only the wording of messages differs.
    #[serde(default)]
    pub provider: Provider,
    /// Seconds one request may take (default 30).
    pub timeout_secs: Option<u64>,
}

impl ForgeConfig {
    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.url.trim_end_matches('/')
    }

    pub fn check(&self) -> Result<(), String> {
        let url = self.base_url();
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.contains('@') {
            return Err(format!(
                "`url` = \"{url}\" must be an http(s) URL without credentials, e.g. \"https://forge.example.org\""
            ));
        }
        if self.timeout_secs == Some(0) {
            return Err("`timeout_secs` must be at least 1".to_string());
        }
        Ok(())
    }
}
