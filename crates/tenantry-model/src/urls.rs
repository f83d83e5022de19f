//! URL rules for roster values that reach kubeconfigs and `git` command lines.
//!
//! Each URL is parsed with the `url` crate (WHATWG), and kept as written only
//! when it is made of RFC 3986 characters: the parser would otherwise quietly
//! rewrite what the admin reviewed (drop tabs, turn `\` into `/`,
//! percent-encode spaces), and the consumers (kubectl, kubelogin, git) parse
//! differently again.

use url::Url;

/// What a URL is used for; decides the schemes allowed and the fix offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlUse {
    /// The Kubernetes API server (`platform.api_server`).
    ApiServer,
    /// The OIDC issuer (`platform.oidc.issuer_url`); OIDC discovery requires https.
    OidcIssuer,
    /// A git remote (`main_repo.url`, `extra_remote.url`).
    GitRemote,
    /// The prefix of workspace repositories (`repo_base`): `<repo_base><repo>.git`.
    GitBase,
}

impl UrlUse {
    fn schemes(self) -> &'static [&'static str] {
        match self {
            UrlUse::ApiServer => &["https", "http"],
            UrlUse::OidcIssuer => &["https"],
            // `file` clones run as the tenant (their own permissions); `ext::`
            // and other remote helpers run commands and are never allowed.
            UrlUse::GitRemote | UrlUse::GitBase => &["https", "http", "ssh", "git", "file"],
        }
    }

    /// An example of a good value, for the fix.
    pub fn example(self) -> &'static str {
        match self {
            UrlUse::ApiServer => "https://k8s.example.org:6443",
            UrlUse::OidcIssuer => "https://auth.example.org/o/kubernetes/",
            UrlUse::GitRemote => "https://forge.example.org/ops/infra.git",
            UrlUse::GitBase => "https://forge.example.org/ops/",
        }
    }
}

/// Characters RFC 3986 allows in a URI (unreserved, reserved and `%`).
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// Check a URL for its use; `Err` says what is wrong, in words for the admin.
pub fn check_url(text: &str, usage: UrlUse) -> Result<(), String> {
    if text.starts_with('-') {
        return Err("it starts with `-`, which a command reads as an option".to_string());
    }
    if let Some(bad) = text.chars().find(|c| !is_uri_char(*c)) {
        return Err(format!(
            "it contains `{}`, which is not allowed in a URL (write spaces and other characters percent-encoded)",
            bad.escape_default()
        ));
    }
    if (usage == UrlUse::GitRemote || usage == UrlUse::GitBase)
        && let Some(scp) = scp_like(text)
    {
        return check_scp_like(scp, usage);
    }
    let url = Url::parse(text).map_err(|e| format!("it is not a URL ({e})"))?;
    let schemes = usage.schemes();
    if !schemes.contains(&url.scheme()) {
        return Err(format!("the scheme `{}` is not allowed here; use {}", url.scheme(), list(schemes)));
    }
    if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
        return Err("it has no host".to_string());
    }
    if url.password().is_some() {
        return Err("it carries a password; credentials never belong in the roster".to_string());
    }
    if (usage == UrlUse::ApiServer || usage == UrlUse::OidcIssuer) && !url.username().is_empty() {
        return Err("it carries a user name; the identity comes from the OIDC login".to_string());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("it has a `?query` or `#fragment`, which this URL cannot use".to_string());
    }
    if usage == UrlUse::GitBase && !text.ends_with('/') {
        return Err("it must end with `/`: repositories are cloned from `<repo_base><repo>.git`".to_string());
    }
    Ok(())
}

/// `user@host:path`, git's scp-like syntax (no scheme, a `:` before any `/`).
fn scp_like(text: &str) -> Option<(&str, &str)> {
    if text.contains("://") {
        return None;
    }
    let (host, path) = text.split_once(':')?;
    (!host.contains('/')).then_some((host, path))
}

fn check_scp_like((host, path): (&str, &str), usage: UrlUse) -> Result<(), String> {
    let host_name = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let user = host.rsplit_once('@').map(|(u, _)| u);
    let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c));
    if !name_ok(host_name) || host_name.starts_with('-') || user.is_some_and(|u| !name_ok(u)) {
        return Err("it is neither a URL nor git's `user@host:path` form".to_string());
    }
    if path.starts_with('-') || path.contains(':') {
        return Err("its path starts with `-` or contains `:`".to_string());
    }
    if usage == UrlUse::GitBase && !(path.is_empty() || path.ends_with('/')) {
        return Err("it must end with `/` or `:`: repositories are cloned from `<repo_base><repo>.git`".to_string());
    }
    Ok(())
}

fn list(schemes: &[&str]) -> String {
    schemes.iter().map(|s| format!("`{s}://`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_servers_and_issuers() {
        assert_eq!(check_url("https://k8s.example.org:6443", UrlUse::ApiServer), Ok(()));
        assert_eq!(check_url("https://rancher.example.org/k8s/clusters/c-1", UrlUse::ApiServer), Ok(()));
        assert_eq!(check_url("https://auth.example.org/o/kubernetes/", UrlUse::OidcIssuer), Ok(()));
        for bad in [
            "https://k8s.example.org\n- --exec",
            "https://a b",
            "https://user:pw@k8s.example.org",
            "https://k8s.example.org?x=1",
            "ftp://k8s.example.org",
            "https://",
            "k8s.example.org:6443",
            "https://k8s.example.org\\@evil",
            "https://k8s.example.org\"",
        ] {
            assert!(check_url(bad, UrlUse::ApiServer).is_err(), "{bad:?}");
        }
        assert!(check_url("http://auth.example.org/", UrlUse::OidcIssuer).is_err(), "OIDC needs https");
    }

    #[test]
    fn git_remotes() {
        for good in [
            "https://forge.example.org/ops/infra.git",
            "ssh://git@forge.example.org:2222/ops/infra.git",
            "git@forge.example.org:ops/infra.git",
            "file:///srv/git/infra.git",
        ] {
            assert_eq!(check_url(good, UrlUse::GitRemote), Ok(()), "{good}");
        }
        for bad in [
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "--upload-pack=touch /tmp/pwned",
            "fd::17",
            "https://user:token@forge.example.org/ops/infra.git",
            "git@forge.example.org:-oProxyCommand=x",
            "-oProxyCommand=x:y",
        ] {
            assert!(check_url(bad, UrlUse::GitRemote).is_err(), "{bad:?}");
        }
        assert_eq!(check_url("https://forge.example.org/ops/", UrlUse::GitBase), Ok(()));
        assert_eq!(check_url("git@forge.example.org:ops/", UrlUse::GitBase), Ok(()));
        assert!(check_url("https://forge.example.org/ops", UrlUse::GitBase).is_err());
    }
}
