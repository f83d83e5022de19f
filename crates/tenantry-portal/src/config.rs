//! `[portal]` in tenantry.toml: the confidential OIDC client the portal
//! signs people in with, where it is reached, and how long a session lasts.
//! The issuer itself is the roster's `platform.oidc.issuer_url`.
//!
//! ```toml
//! [portal]
//! public_url = "https://portal.example.org/"    # what browsers open; the callback is <public_url>auth/callback
//! client_id = "tenantry-portal"
//! client_secret_file = "/etc/tenantry/portal-client.secret"   # mode 0600
//! # issuer_ca_file = "/etc/tenantry/idp-ca.pem" # when the issuer's certificate comes from a private CA
//! # cookie_key_file = "/etc/tenantry/portal-cookie.key"  # ≥ 32 bytes, 0600; shared by replicas (default: random per process)
//! # session_ttl = "8h"
//! # require_verified_email = true
//! # live_timeout = "3s"                          # quota usage read from the cluster per page view
//! # [portal.links]                               # a link per workstation port pool: {port}, {os_user}, {idp_user}
//! # terminal = "https://t3.example.org/"
//! ```

use crate::error::PortalError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tenantry_secret::Secret;
use url::Url;

/// The keys `[portal]` takes, for error messages.
pub const KEYS: &str = "public_url, client_id, client_secret_file, issuer_ca_file, cookie_key_file, session_ttl, require_verified_email, live_timeout, page_size and [portal.links]";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    public_url: String,
    client_id: String,
    client_secret_file: PathBuf,
    issuer_ca_file: Option<PathBuf>,
    cookie_key_file: Option<PathBuf>,
    #[serde(default = "default_ttl")]
    session_ttl: String,
    #[serde(default = "default_true")]
    require_verified_email: bool,
    #[serde(default = "default_live_timeout")]
    live_timeout: String,
    #[serde(default = "default_page_size")]
    page_size: usize,
    #[serde(default)]
    links: BTreeMap<String, String>,
}

fn default_ttl() -> String {
    "8h".to_string()
}
fn default_true() -> bool {
    true
}
fn default_live_timeout() -> String {
    "3s".to_string()
}
fn default_page_size() -> usize {
    50
}

/// `[portal]`, read and checked, with its secrets loaded.
#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// The URL browsers open, ending in `/`.
    pub public_url: Url,
    pub client_id: String,
    pub client_secret: Secret,
    /// Extra trusted roots (PEM) for the issuer.
    pub issuer_ca_pem: Option<Vec<u8>>,
    /// Key material for the session cookie; `None`: random per process.
    pub cookie_key: Option<Secret>,
    pub session_ttl: Duration,
    pub require_verified_email: bool,
    /// How long a page waits for live data (quota usage).
    pub live_timeout: Duration,
    /// Rows per page of the admin table.
    pub page_size: usize,
    /// Link templates by port pool.
    pub links: BTreeMap<String, String>,
}

impl PortalSettings {
    /// `[portal]` of a loaded tenantry.toml; `Ok(None)` when the section is absent.
    pub fn from_config(config: &tenantry_app::Config) -> Result<Option<PortalSettings>, PortalError> {
        let section = config.section("portal");
        if section.is_null() {
            return Ok(None);
        }
        PortalSettings::from_section(section, &config.context.base).map(Some)
    }

    /// From the section's JSON form; relative paths start at `base` (the
    /// directory of tenantry.toml).
    pub fn from_section(section: serde_json::Value, base: &Path) -> Result<PortalSettings, PortalError> {
        let section: Section = serde_json::from_value(section).map_err(|e| invalid(e.to_string(), KEYS))?;
        let mut public_url = Url::parse(&section.public_url)
            .map_err(|e| invalid(format!("public_url `{}`: {e}", section.public_url), "an absolute http(s) URL"))?;
        if !matches!(public_url.scheme(), "http" | "https") || public_url.cannot_be_a_base() {
            return Err(invalid(
                format!("public_url `{}` is not an http(s) URL", section.public_url),
                "e.g. https://portal.example.org/",
            ));
        }
        if !public_url.path().ends_with('/') {
            let path = format!("{}/", public_url.path());
            public_url.set_path(&path);
        }
        if section.client_id.trim().is_empty() {
            return Err(invalid("client_id is empty".to_string(), "the portal's client id at the issuer"));
        }
        let resolve = |path: &Path| {
            let expanded = tenantry_secret::expand_home(path, &|name| std::env::var(name).ok());
            if expanded.is_absolute() { expanded } else { base.join(expanded) }
        };
        let env = |name: &str| std::env::var(name).ok();
        let client_secret = tenantry_secret::secret(
            Some(&resolve(&section.client_secret_file)),
            &[],
            "portal client secret",
            "client_secret_file",
            &env,
        )?;
        let cookie_key = match &section.cookie_key_file {
            Some(path) => {
                let key =
                    tenantry_secret::secret(Some(&resolve(path)), &[], "portal cookie key", "cookie_key_file", &env)?;
                if key.expose().len() < 32 {
                    return Err(invalid(
                        format!(
                            "cookie_key_file {} holds {} bytes; at least 32 are needed",
                            path.display(),
                            key.expose().len()
                        ),
                        "write one with `head -c 48 /dev/urandom | base64 > FILE && chmod 600 FILE`",
                    ));
                }
                Some(key)
            }
            None => None,
        };
        let issuer_ca_pem = match &section.issuer_ca_file {
            Some(path) => Some(std::fs::read(resolve(path)).map_err(|e| {
                invalid(format!("issuer_ca_file {}: {e}", path.display()), "a PEM file with the issuer's CA")
            })?),
            None => None,
        };
        let duration = |key: &str, text: &str| {
            humantime::parse_duration(text)
                .map_err(|e| invalid(format!("{key} `{text}`: {e}"), "a duration such as 8h, 30m or 3s"))
        };
        let session_ttl = duration("session_ttl", &section.session_ttl)?;
        let live_timeout = duration("live_timeout", &section.live_timeout)?;
        if section.page_size == 0 || section.page_size > 1000 {
            return Err(invalid(format!("page_size {} is out of range", section.page_size), "1 to 1000 rows"));
        }
        for (pool, template) in &section.links {
            let sample = template.replace("{port}", "1").replace("{os_user}", "u").replace("{idp_user}", "u");
            if !Url::parse(&sample).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(invalid(
                    format!("links.{pool} `{template}` is not an http(s) URL"),
                    "e.g. terminal = \"https://t3.example.org/\"",
                ));
            }
        }
        Ok(PortalSettings {
            public_url,
            client_id: section.client_id,
            client_secret,
            issuer_ca_pem,
            cookie_key,
            session_ttl,
            require_verified_email: section.require_verified_email,
            live_timeout,
            page_size: section.page_size,
            links: section.links,
        })
    }

    /// The redirect URI registered at the issuer.
    pub fn redirect_uri(&self) -> String {
        format!("{}auth/callback", self.public_url)
    }

    /// Cookies carry `Secure` when the portal is reached over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

fn invalid(message: String, help: &str) -> PortalError {
    PortalError::Config { message: format!("[portal]: {message}"), help: help.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt as _;

    fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_section_is_read_with_defaults_and_paths_relative_to_tenantry_toml() {
        let dir = tempfile::tempdir().unwrap();
        secret_file(dir.path(), "client.secret", "s3cret\n", 0o600);
        let settings = PortalSettings::from_section(
            json!({ "public_url": "https://portal.example.org/tenants", "client_id": "tenantry-portal",
                    "client_secret_file": "client.secret", "links": { "terminal": "https://t3.example.org/?port={port}" } }),
            dir.path(),
        )
        .unwrap();
        assert_eq!(settings.redirect_uri(), "https://portal.example.org/tenants/auth/callback");
        assert_eq!(settings.client_secret.expose(), "s3cret");
        assert!(settings.secure_cookies());
        assert_eq!(settings.session_ttl, Duration::from_secs(8 * 3600));
        assert!(settings.require_verified_email && settings.cookie_key.is_none());
        assert_eq!(format!("{:?}", settings.client_secret), "Secret(<redacted>)");
    }

    #[test]
    fn mistakes_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        secret_file(dir.path(), "shared.secret", "s3cret", 0o644);
        secret_file(dir.path(), "ok.secret", "s3cret", 0o600);
        secret_file(dir.path(), "short.key", "too short", 0o600);
        let error = |value: serde_json::Value| PortalSettings::from_section(value, dir.path()).unwrap_err().to_string();
        let base = |extra: serde_json::Value| {
            let mut value =
                json!({ "public_url": "http://127.0.0.1:8080/", "client_id": "p", "client_secret_file": "ok.secret" });
            value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            value
        };
        assert!(error(base(json!({ "client_secret_file": "shared.secret" }))).contains("chmod 600"));
        assert!(error(base(json!({ "cookie_key_file": "short.key" }))).contains("at least 32"));
        assert!(error(base(json!({ "public_url": "portal.example.org" }))).contains("public_url"));
        assert!(error(base(json!({ "session_ttl": "forever" }))).contains("session_ttl `forever`"));
        assert!(error(base(json!({ "clientid": "x" }))).contains("unknown field `clientid`"));
        assert!(error(base(json!({ "links": { "terminal": "javascript:alert(1)" } }))).contains("links.terminal"));
    }
}
