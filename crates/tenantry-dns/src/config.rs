//! `[dns]` of tenantry.toml, and reading the secrets it points at.
//!
//! The config holds only where secrets are (files, environment variables),
//! never the secrets themselves; the loaded secrets live in types whose
//! `Debug` prints `(redacted)`, so no log line or panic message carries them.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Cloudflare's API, unless the config points elsewhere (a test fixture).
pub const CLOUDFLARE_API_URL: &str = "https://api.cloudflare.com/client/v4";

/// Which DNS server or service applies the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Dynamic updates (RFC 2136) signed with TSIG: BIND, Knot, PowerDNS.
    Rfc2136,
    /// The PowerDNS Authoritative HTTP API.
    Powerdns,
    /// The Cloudflare API v4.
    Cloudflare,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Rfc2136 => "rfc2136",
            Provider::Powerdns => "powerdns",
            Provider::Cloudflare => "cloudflare",
        }
    }

    /// Whether records can be proxied (only Cloudflare): feeds
    /// `Settings::dns_proxy_supported` so derivation matches what is served.
    pub fn supports_proxy(self) -> bool {
        self == Provider::Cloudflare
    }
}

/// Settings of `[dns]` in tenantry.toml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    pub provider: Provider,
    /// The zones tenantry manages records in (e.g. `example.org`).
    pub zones: Vec<String>,
    /// rfc2136: the primary server, `host:port` (port 53 when omitted).
    pub server: Option<String>,
    /// rfc2136: the TSIG key in BIND's key-file syntax (mode 0600).
    pub tsig_key_file: Option<PathBuf>,
    /// powerdns: the webserver's base URL, e.g. `http://127.0.0.1:8081`;
    /// cloudflare: the API base (default [`CLOUDFLARE_API_URL`]).
    pub api_url: Option<String>,
    /// powerdns: file holding the `X-API-Key` (mode 0600); else `$PDNS_API_KEY`.
    pub api_key_file: Option<PathBuf>,
    /// powerdns: the server id in API paths (default `localhost`).
    pub server_id: Option<String>,
    /// cloudflare: file holding the API token (mode 0600); else `$CLOUDFLARE_API_TOKEN`.
    pub api_token_file: Option<PathBuf>,
}

impl DnsConfig {
    /// The zones as tenantry compares them: lowercase, without the root dot.
    pub fn zones(&self) -> Vec<String> {
        self.zones.iter().map(|z| normalize_name(z)).collect()
    }

    /// Refuse settings that belong to another provider or are missing, so a
    /// typo never silently falls back to a default.
    pub fn check(&self) -> Result<()> {
        if self.zones.is_empty() {
            return Err(config(
                "`zones` is empty; list the zones tenantry may write, e.g. `zones = [\"example.org\"]`",
            ));
        }
        let foreign: &[(&str, bool)] = match self.provider {
            Provider::Rfc2136 => &[
                ("api_url", self.api_url.is_some()),
                ("api_key_file", self.api_key_file.is_some()),
                ("server_id", self.server_id.is_some()),
                ("api_token_file", self.api_token_file.is_some()),
            ],
            Provider::Powerdns => &[
                ("server", self.server.is_some()),
                ("tsig_key_file", self.tsig_key_file.is_some()),
                ("api_token_file", self.api_token_file.is_some()),
            ],
            Provider::Cloudflare => &[
                ("server", self.server.is_some()),
                ("tsig_key_file", self.tsig_key_file.is_some()),
                ("api_key_file", self.api_key_file.is_some()),
                ("server_id", self.server_id.is_some()),
            ],
        };
        if let Some((field, _)) = foreign.iter().find(|(_, set)| *set) {
            return Err(config(format!(
                "`{field}` does not apply to provider `{}`; remove it",
                self.provider.as_str()
            )));
        }
        let required: &[(&str, bool)] = match self.provider {
            Provider::Rfc2136 => &[("server", self.server.is_some()), ("tsig_key_file", self.tsig_key_file.is_some())],
            Provider::Powerdns => &[("api_url", self.api_url.is_some())],
            Provider::Cloudflare => &[],
        };
        if let Some((field, _)) = required.iter().find(|(_, set)| !*set) {
            return Err(config(format!("provider `{}` needs `{field}`", self.provider.as_str())));
        }
        Ok(())
    }
}

fn config(message: impl Into<String>) -> Error {
    Error::Config(message.into())
}

/// `Name.` or `NAME` → `name`: how names are compared and put in ids.
pub(crate) fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A secret file's text. Refused unless only its owner may read it (SPEC §6).
pub(crate) fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(tenantry_secret::read_private_file(&tenantry_secret::expand_home(path, &env), what)?)
}

/// A secret from its file when configured, else from the environment.
pub(crate) fn secret(
    file: Option<&Path>,
    variable: &str,
    what: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret> {
    Ok(tenantry_secret::secret(file, &[variable], what, field, env)?)
}

pub(crate) use tenantry_secret::Secret;

/// A TSIG key read from a BIND key file.
#[derive(Clone)]
pub(crate) struct TsigKey {
    pub(crate) name: String,
    pub(crate) algorithm: String,
    pub(crate) secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"(redacted)")
            .finish()
    }
}

/// Parse `key "name" { algorithm hmac-sha256; secret "base64"; };` — the
/// format `tsig-keygen` and `ddns-confgen` write and `named.conf` includes.
pub(crate) fn parse_tsig_key(text: &str, path: &Path) -> Result<TsigKey> {
    let bad = |what: &str| {
        config(format!(
            "{}: {what}; expected `key \"name\" {{ algorithm hmac-sha256; secret \"...\"; }};` as written by tsig-keygen",
            path.display()
        ))
    };
    let cleaned = without_comments(text);
    let rest = cleaned.trim_start().strip_prefix("key").ok_or_else(|| bad("it does not start with `key`"))?;
    let (name, body) = match rest.trim_start().strip_prefix('"') {
        Some(quoted) => quoted.split_once('"').ok_or_else(|| bad("the key name's quote is not closed"))?,
        None => rest.trim_start().split_once(char::is_whitespace).ok_or_else(|| bad("no key name"))?,
    };
    let body = body.trim_start().strip_prefix('{').ok_or_else(|| bad("no `{` after the key name"))?;
    let body = body.split_once('}').map(|(inside, _)| inside).ok_or_else(|| bad("no closing `}`"))?;
    let (mut algorithm, mut secret) = (None, None);
    for statement in body.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (keyword, value) = statement.split_once(char::is_whitespace).unwrap_or((statement, ""));
        let value = value.trim().trim_matches('"').to_string();
        let slot = match keyword {
            "algorithm" => &mut algorithm,
            "secret" => &mut secret,
            _ => return Err(bad(&format!("unknown statement `{keyword}`"))),
        };
        if slot.replace(value).is_some() {
            return Err(bad(&format!("`{keyword}` is given twice")));
        }
    }
    let algorithm = algorithm.ok_or_else(|| bad("no `algorithm`"))?.to_ascii_lowercase();
    let secret = secret.ok_or_else(|| bad("no `secret`"))?;
    let secret = data_encoding::BASE64.decode(secret.as_bytes()).map_err(|_| bad("the secret is not base64"))?;
    if secret.is_empty() {
        return Err(bad("the secret is empty"));
    }
    if name.trim().is_empty() {
        return Err(bad("the key name is empty"));
    }
    Ok(TsigKey { name: name.trim().to_string(), algorithm, secret })
}

/// The text with `#` and `//` comments removed up to the end of their line —
/// but only outside quotes: a base64 secret may well contain `//`.
fn without_comments(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_quotes = false;
        let mut previous = None;
        let mut cut = line.len();
        for (index, character) in line.char_indices() {
            match character {
                '"' => in_quotes = !in_quotes,
                '#' if !in_quotes => {
                    cut = index;
                    break;
                }
                '/' if !in_quotes && previous == Some('/') => {
                    cut = index - 1;
                    break;
                }
                _ => {}
            }
            previous = Some(character);
        }
        cleaned.push_str(&line[..cut]);
        cleaned.push('\n');
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<TsigKey, String> {
        parse_tsig_key(text, Path::new("k.key")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_tsig_keygen_file_is_read_and_a_broken_one_refused_with_why() {
        let key = parse("key \"tenantry\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n};\n").unwrap();
        assert_eq!(
            (key.name.as_str(), key.algorithm.as_str(), key.secret.as_slice()),
            ("tenantry", "hmac-sha256", &b"secret"[..])
        );
        // A fresh tsig-keygen secret holds `//` about once in a hundred keys
        // (it failed CI once); it is data, while a `//` after it is a comment.
        let key = parse(
            "# made by tsig-keygen\nkey \"k\" { // the test key\n\talgorithm hmac-sha256;\n\tsecret \"9q4D//T/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk=\"; // rotate yearly\n};\n",
        )
        .unwrap();
        assert_eq!(key.secret, data_encoding::BASE64.decode(b"9q4D//T/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBk=").unwrap());
        for (text, why) in [
            // Found by the `tsig_key` fuzz target: a second, empty `secret`
            // statement was accepted as an empty key.
            (
                "key \"k\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n\tsecret\n};\n",
                "`secret` is given twice",
            ),
            ("key \"k\" { algorithm hmac-sha256; secret \"\"; };", "the secret is empty"),
            (
                "key \"k\" { algorithm hmac-sha256; algorithm hmac-sha512; secret \"c2VjcmV0\"; };",
                "`algorithm` is given twice",
            ),
            ("key \"k\" { algorithm hmac-sha256; };", "no `secret`"),
            ("key \"k\" { algorithm hmac-sha256; secret \"not base64!\"; };", "not base64"),
        ] {
            let error = parse(text).map(|_| ()).unwrap_err();
            assert!(error.contains(why) && error.contains("k.key"), "{text}: {error}");
        }
    }
}
