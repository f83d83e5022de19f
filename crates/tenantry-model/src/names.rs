//! Name rules shared by validation and derivation: DNS labels, host account
//! names, repository names, domain names.

/// A DNS-1123 label: 1–63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns1123_label)
}

/// A fully qualified domain name as tenantry accepts it (lowercase labels, no trailing dot).
pub fn is_domain_name(name: &str) -> bool {
    name.contains('.') && is_dns1123_subdomain(name)
}

/// Namespaces nobody may own: the cluster's own and tenantry's.
pub fn reserved_namespace_reason(namespace: &str) -> Option<&'static str> {
    match namespace {
        "default" => Some("`default` belongs to the cluster"),
        "tenantry" | "tenantry-system" => Some("it is tenantry's own namespace"),
        _ if namespace.starts_with("kube-") => Some("`kube-*` namespaces belong to Kubernetes"),
        _ => None,
    }
}

/// A login name `useradd` accepts on Debian: `[a-z_][a-z0-9_-]*`, at most 32.
pub fn is_valid_os_user(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 32
        && bytes.first().is_some_and(|b| b.is_ascii_lowercase() || *b == b'_')
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// The default host account name for a roster key: lowercase, only
/// `[a-z0-9_-]`, at most 32 characters. Collisions are reported, never resolved.
pub fn sanitize_os_user(key: &str) -> String {
    key.chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .take(32)
        .collect()
}

/// A repository name safe to use as one path component.
pub fn is_path_safe_repo(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(['.', '-'])
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A relative path inside a home directory with no `..` and no absolute root.
pub fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

/// A forge login: letters, digits, `.`, `_` and `-`.
pub fn is_forge_login(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An email address as an OIDC subject: `local@domain`, no spaces.
pub fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        assert!(is_dns1123_label("alice-prod"));
        assert!(is_dns1123_label("a"));
        assert!(!is_dns1123_label("Alice"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label("a-"));
        assert!(!is_dns1123_label(""));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(!is_dns1123_label("a.b"));
    }

    #[test]
    fn os_users() {
        assert_eq!(sanitize_os_user("Alice.Smith"), "alicesmith");
        assert_eq!(sanitize_os_user(&"x".repeat(40)).len(), 32);
        assert!(is_valid_os_user("alice_1"));
        assert!(!is_valid_os_user("1alice"));
        assert!(!is_valid_os_user(&"a".repeat(33)));
    }

    #[test]
    fn repo_and_paths() {
        assert!(is_path_safe_repo("tripit"));
        assert!(is_path_safe_repo("my.repo_2"));
        assert!(!is_path_safe_repo("../etc"));
        assert!(!is_path_safe_repo("a/b"));
        assert!(!is_path_safe_repo(".hidden"));
        assert!(is_safe_relative_path(".codex/AGENTS.md"));
        assert!(!is_safe_relative_path("../x"));
        assert!(!is_safe_relative_path("/etc/passwd"));
    }

    #[test]
    fn reserved() {
        assert!(reserved_namespace_reason("default").is_some());
        assert!(reserved_namespace_reason("kube-system").is_some());
        assert!(reserved_namespace_reason("tenantry").is_some());
        assert!(reserved_namespace_reason("alice").is_none());
    }
}
