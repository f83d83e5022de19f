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

/// An email address as an OIDC subject: an ASCII `dot-atom@domain` (RFC 5322
/// without quoted local parts or comments), at most 254 characters.
///
/// The address reaches RBAC subjects, Vault alias names and the host account's
/// comment field (`/etc/passwd`), so `:`, `,`, spaces and quotes are refused.
pub fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else { return false };
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    email.len() <= 254
        && local.len() <= 64
        && local.split('.').all(|atom| !atom.is_empty() && atom.bytes().all(atext))
        && is_domain_name(&domain.to_ascii_lowercase())
}

/// An identity-provider login (Authentik, Keycloak and Django usernames):
/// 1–150 of letters, digits and `@ . + _ -`, not starting with `-` or `.`.
///
/// It becomes a line `idp_user=os_user` in `/etc/ttyd-user-map` and a key of
/// `dispatch.json`, so `=`, spaces and quotes are refused.
pub fn is_idp_login(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 150
        && !name.starts_with(['-', '.'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"@.+_-".contains(&b))
}

/// An identity-provider group name (Keycloak, Authentik): 1–100 of letters,
/// digits, spaces and `. _ - + @ : ( )`, not starting or ending with a space.
///
/// It becomes an RBAC subject, a URL query value and a JSON string; `/` is
/// refused (Keycloak's group-path separator), as are quotes and `,` (the
/// apiserver's `--oidc-groups-claim` values are compared as written).
pub fn is_idp_group(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && !name.starts_with(' ')
        && !name.ends_with(' ')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b" ._-+@:()".contains(&b))
}

/// An OAuth/OIDC client id: 1–255 visible ASCII characters from the URL-safe
/// set (`A-Z a-z 0-9 . _ ~ : @ / + = -`), as issued by Authentik, Keycloak,
/// Dex and Google. It becomes a kubelogin argument in every kubeconfig.
pub fn is_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && !id.starts_with('-')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~:@/+=-".contains(&b))
}

/// A branch name git accepts as one ref (`git check-ref-format --branch`),
/// restricted to ASCII: no spaces, `~ ^ : ? * [ \`, `..`, `@{`, no leading
/// `-` or `/`, no `.lock` or `/` at the end, no empty or dot-leading component.
pub fn is_git_branch(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "@"
        && !name.starts_with(['-', '/'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("@{")
        && name.bytes().all(|b| b.is_ascii_graphic() && !b"~^:?*[\\".contains(&b))
        && name.split('/').all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

/// An absolute path of plain components: `/`-separated names of
/// `[A-Za-z0-9._+-]`, none empty, `.` or `..`.
pub fn is_safe_absolute_path(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|rest| {
        rest.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        })
    })
}

/// The first character that must never appear in roster text, with its index
/// in characters: a control character (C0, DEL, C1 — newline and tab
/// included), a Unicode line or paragraph separator, a text-direction control
/// ("Trojan Source"), or a byte-order mark. Any of them could end a line of a
/// generated file, a shell command or a YAML scalar, or make a value read
/// differently from what it is.
pub fn forbidden_char(text: &str) -> Option<(usize, char)> {
    text.chars().enumerate().find(|(_, c)| is_forbidden_char(*c))
}

/// See [`forbidden_char`].
pub fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{061C}' | '\u{200E}' | '\u{200F}' // direction marks
            | '\u{202A}'..='\u{202E}' // direction embeddings and overrides
            | '\u{2066}'..='\u{2069}' // direction isolates
            | '\u{FEFF}' // byte-order mark / zero-width no-break space
        )
}

/// A human name for a forbidden character, for diagnostics.
pub fn describe_char(c: char) -> String {
    let what = match c {
        '\n' => "a line break",
        '\r' => "a carriage return",
        '\t' => "a tab",
        '\u{2028}' => "a Unicode line separator",
        '\u{2029}' => "a Unicode paragraph separator",
        '\u{85}' => "a Unicode next-line character",
        '\u{FEFF}' => "a byte-order mark",
        c if c.is_control() => "a control character",
        _ => "a text-direction control character",
    };
    format!("{what} (U+{:04X})", u32::from(c))
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
    fn emails() {
        for good in ["a@x.org", "Alice.Smith+k8s@Example.ORG", "o'brien@x.org"] {
            assert!(is_email(good), "{good}");
        }
        for bad in ["not-an-email", "a@x", "a b@x.org", "a:b@x.org", "a,b@x.org", "a..b@x.org", ".a@x.org", "a@-x.org"]
        {
            assert!(!is_email(bad), "{bad}");
        }
        assert!(!is_email(&format!("{}@x.org", "a".repeat(65))));
        assert!(!is_email("\u{e9}@x.org"));
    }

    #[test]
    fn idp_logins_and_client_ids() {
        assert!(is_idp_login("emil.barzin"));
        assert!(is_idp_login("a+b@x.org"));
        for bad in ["", "a=b", "a b", "-a", ".a", "a\"b", "a\tb"] {
            assert!(!is_idp_login(bad), "{bad:?}");
        }
        assert!(is_client_id("kubernetes"));
        assert!(is_client_id("123-abc.apps.googleusercontent.com"));
        for bad in ["", "a b", "a\nb", "a'b", "a\"b", "$(id)", "`id`", "a;b", "-x"] {
            assert!(!is_client_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn branches_and_absolute_paths() {
        for good in ["master", "release/1.2", "feature-x_y"] {
            assert!(is_git_branch(good), "{good}");
        }
        for bad in ["", "-f", "a..b", "a b", "a~1", "x.lock", "a/", "/a", "a//b", "a/.b", "@", "a@{1}", "a:b"] {
            assert!(!is_git_branch(bad), "{bad:?}");
        }
        assert!(is_safe_absolute_path("/bin/zsh"));
        assert!(is_safe_absolute_path("/usr/local/bin/fish"));
        for bad in ["bin/sh", "/", "/bin/../tmp/x", "/bin//sh", "/bin/s h", "/bin/sh;id"] {
            assert!(!is_safe_absolute_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn forbidden_characters() {
        assert_eq!(forbidden_char("plain text, with spaces"), None);
        assert_eq!(forbidden_char("caf\u{e9} \u{1F600}"), None, "ordinary Unicode is fine");
        for (text, at) in [("a\nb", 1), ("\tx", 0), ("ab\u{2028}", 2), ("a\u{202E}b", 1), ("\u{85}", 0), ("x\u{7f}", 1)]
        {
            assert_eq!(forbidden_char(text).map(|(i, _)| i), Some(at), "{text:?}");
        }
        assert_eq!(describe_char('\n'), "a line break (U+000A)");
        assert_eq!(describe_char('\u{202E}'), "a text-direction control character (U+202E)");
    }
}
