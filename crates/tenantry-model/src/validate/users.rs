//! `users:` — keys, identities, namespaces, domains, quotas and workstations.

use super::platform::check_quota;
use super::{Checker, Claims, located, span};
use crate::Span;
use crate::names::*;
use crate::raw::*;
use crate::reserved::{RESERVED_USER_KEYS, builtin_namespace_reason, vault_source_segments};
use crate::roster::*;
use crate::spanned_map::SpannedMap;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// Names unique across users, each keyed as its consumer compares it.
#[derive(Default)]
pub(super) struct AllClaims {
    pub(super) namespaces: Claims,
    /// Lowercased: OIDC providers and RBAC treat addresses case-insensitively.
    pub(super) emails: Claims,
    pub(super) domains: Claims,
    pub(super) os_users: Claims,
    /// Lowercased: identity providers match logins case-insensitively.
    pub(super) idp_users: Claims,
    pub(super) forge_users: Claims,
}

/// What every user is checked against.
struct Rules<'a> {
    platform: &'a Platform,
    dns_zones: &'a [String],
    /// Segments of the `vault://` roster source(s), with the source they came from.
    vault_segments: Vec<(String, &'a str)>,
}

pub(super) fn check(
    checker: &mut Checker<'_>,
    raw_users: &SpannedMap<RawUser>,
    platform: &Platform,
    vault_sources: &[&str],
    dns_zones: &[String],
) -> BTreeMap<String, User> {
    let rules = Rules {
        platform,
        dns_zones,
        vault_segments: vault_sources
            .iter()
            .flat_map(|source| vault_source_segments(source).into_iter().map(move |s| (s, *source)))
            .collect(),
    };
    let mut claims = AllClaims::default();
    let mut users = BTreeMap::new();
    for (key, raw) in &raw_users.entries {
        let user = check_user(checker, key, &raw.value, &rules, &mut claims);
        users.insert(user.key.clone(), user);
    }
    users
}

fn check_key(checker: &mut Checker<'_>, user_key: &str, key_span: Span, rules: &Rules<'_>) {
    if !is_dns1123_label(user_key) {
        checker.error(
            key_span,
            "invalid-user-key",
            format!("user key `{user_key}` is not a DNS-1123 label"),
            format!(
                "use 1–63 lowercase letters, digits and `-`, e.g. `{}`",
                sanitize_os_user(user_key).replace('_', "-")
            ),
        );
        return;
    }
    if let Some((_, reason)) = RESERVED_USER_KEYS.iter().find(|(name, _)| *name == user_key) {
        checker.error(
            key_span,
            "reserved-user-key",
            format!(
                "user key `{user_key}` is reserved: {reason}; a namespace-owner's Vault policy covers \
                 `<kv>/data/{user_key}/*`"
            ),
            format!("choose another key for this user, e.g. `{user_key}-user`"),
        );
    } else if let Some((_, source)) = rules.vault_segments.iter().find(|(segment, _)| segment == user_key) {
        checker.error(
            key_span,
            "reserved-user-key",
            format!(
                "user key `{user_key}` is reserved: the roster itself is stored at `{source}`, and a \
                 namespace-owner's Vault policy covers `<kv>/data/{user_key}/*`, so this user could rewrite the \
                 roster"
            ),
            format!("choose another key for this user, e.g. `{user_key}-user`"),
        );
    }
}

fn check_email(checker: &mut Checker<'_>, raw: &Spanned<String>, user_key: &str, claims: &mut AllClaims) -> String {
    if !checker.plain(raw, "the email") {
        return raw.value.clone();
    }
    let email = raw.value.trim().to_string();
    if !is_email(&email) {
        checker.error(
            span(raw),
            "invalid-email",
            format!("`{email}` is not an email address"),
            "write `name@example.org` (ASCII letters, digits and `.+-_` before the `@`, a domain after it)",
        );
    } else if let Some((other, at)) = claims.emails.claim(&email.to_ascii_lowercase(), user_key, span(raw)) {
        checker.error(
            span(raw),
            "duplicate-email",
            format!("email `{email}` is already used by user `{other}` ({})", checker.at(at)),
            "each user needs their own OIDC identity; fix one of the two emails",
        );
    }
    email
}

fn check_user(
    checker: &mut Checker<'_>,
    key: &Spanned<String>,
    raw: &RawUser,
    rules: &Rules<'_>,
    claims: &mut AllClaims,
) -> User {
    let key_span = span(key);
    let user_key = key.value.as_str();
    check_key(checker, user_key, key_span, rules);
    let email = check_email(checker, &raw.email, user_key, claims);

    let tier = raw.tier.value;
    let mut owned = Vec::new();
    match (&raw.namespaces, tier) {
        (None, Tier::NamespaceOwner) => checker.error(
            key_span,
            "namespaces-required",
            format!("user `{user_key}` is a namespace-owner but lists no namespaces"),
            format!("add `namespaces: [{user_key}]`"),
        ),
        (Some(list), Tier::NamespaceOwner) if list.value.is_empty() => checker.error(
            span(list),
            "namespaces-required",
            format!("user `{user_key}` is a namespace-owner but the namespace list is empty"),
            format!("add at least one namespace, e.g. `[{user_key}]`"),
        ),
        (Some(list), Tier::Admin | Tier::PowerUser) => checker.error(
            span(list),
            "namespaces-not-allowed",
            format!("`namespaces` is only for namespace-owners; `{user_key}` is {tier}"),
            "remove `namespaces`, or make the user `tier: namespace-owner`",
        ),
        (Some(list), Tier::NamespaceOwner) => {
            for namespace in &list.value {
                if check_namespace(checker, namespace, user_key, rules.platform, &mut claims.namespaces) {
                    owned.push(located(namespace));
                }
            }
        }
        (None, _) => {}
    }

    let mut user_domains = Vec::new();
    for domain in &raw.domains {
        let at = span(domain);
        if !checker.plain(domain, "the domain") {
            continue;
        }
        match qualify_domain(&domain.value, rules.platform.domain.as_deref(), rules.dns_zones) {
            Ok(fqdn) => {
                if let Some((other, earlier)) = claims.domains.claim(&fqdn, user_key, at) {
                    checker.error(
                        at,
                        "duplicate-domain",
                        format!("domain `{fqdn}` is already claimed by user `{other}` ({})", checker.at(earlier)),
                        "a domain routes to one user; remove one of the two",
                    );
                } else {
                    user_domains.push(Located::new(fqdn, at));
                }
            }
            Err((message, help)) => checker.error(at, "invalid-domain", message, help),
        }
    }

    let apps = super::apps::check_user(
        checker,
        &raw.apps,
        &super::apps::UserApps { user_key, platform: rules.platform, dns_zones: rules.dns_zones, owned: &owned },
        claims,
        &mut user_domains,
    );

    let mut quota = rules.platform.default_quota.clone();
    if let Some(own) = &raw.quota {
        quota.extend(check_quota(checker, own));
    }

    let forge_user = match &raw.forge_user {
        Some(login) => located(login),
        None => Located::new(user_key.to_string(), key_span),
    };
    if !is_forge_login(&forge_user.value) {
        checker.error(
            forge_user.span,
            "invalid-forge-user",
            format!("`{}` is not a forge login", forge_user.value),
            "use letters, digits, `.`, `_` and `-`",
        );
    } else if let Some((other, earlier)) =
        claims.forge_users.claim(&forge_user.value.to_ascii_lowercase(), user_key, forge_user.span)
    {
        checker.error(
            forge_user.span,
            "duplicate-forge-user",
            format!("forge login `{}` is already used by user `{other}` ({})", forge_user.value, checker.at(earlier)),
            "set `forge_user:` to each user's own forge login",
        );
    }

    let workstation = raw
        .workstation
        .as_ref()
        .and_then(|w| super::workstation::check_user(checker, user_key, &email, w, rules.platform, claims));

    User {
        key: user_key.to_string(),
        span: key_span,
        email: Located::new(email, span(&raw.email)),
        tier: Located::new(tier, span(&raw.tier)),
        namespaces: owned,
        domains: user_domains,
        quota,
        forge_user,
        workstation,
        groups: super::idp::check_user_groups(checker, &raw.groups),
        apps,
    }
}

/// Why a namespace belongs to the platform: the built-in list, the roster's
/// `reserved_namespaces`, or the TLS source's namespace.
fn reserved_namespace_reason(namespace: &str, platform: &Platform) -> Option<String> {
    if let Some(reason) = builtin_namespace_reason(namespace) {
        return Some(reason);
    }
    if let Some(entry) = platform.reserved_namespaces.iter().find(|entry| match entry.value.strip_suffix('*') {
        Some(prefix) => namespace.starts_with(prefix),
        None => entry.value == namespace,
    }) {
        return Some(format!(
            "it is listed in `platform.reserved_namespaces` as `{}` (line {})",
            entry.value, entry.span.line
        ));
    }
    if platform.tls.source.as_ref().is_some_and(|s| s.namespace == namespace) {
        return Some("it holds the platform TLS source secret".to_string());
    }
    None
}

/// Check one namespace of a namespace-owner; true when the user may own it.
fn check_namespace(
    checker: &mut Checker<'_>,
    namespace: &Spanned<String>,
    user_key: &str,
    platform: &Platform,
    claims: &mut Claims,
) -> bool {
    let at = span(namespace);
    let name = namespace.value.as_str();
    if !is_dns1123_label(name) {
        checker.error(
            at,
            "invalid-namespace",
            format!("namespace `{name}` is not a DNS-1123 label"),
            "use 1–63 lowercase letters, digits and `-`",
        );
        return false;
    }
    if let Some(reason) = reserved_namespace_reason(name, platform) {
        checker.error(
            at,
            "reserved-namespace",
            format!("namespace `{name}` is reserved: {reason}"),
            "choose another name; a namespace-owner is admin of the namespace and all its Secrets",
        );
        return false;
    }
    if let Some((other, earlier)) = claims.claim(name, user_key, at) {
        let whose = if other == user_key {
            "already listed by this user".to_string()
        } else {
            format!("already owned by user `{other}`")
        };
        checker.error(
            at,
            "namespace-claimed-twice",
            format!("namespace `{name}` is {whose} ({})", checker.at(earlier)),
            "a namespace has exactly one owner; remove it from one of the lists",
        );
        return false;
    }
    true
}

/// Normalise a user domain to an FQDN inside the platform domain or a managed zone.
pub(super) fn qualify_domain(
    written: &str,
    platform_domain: Option<&str>,
    zones: &[String],
) -> Result<String, (String, String)> {
    let name = written.trim_end_matches('.').to_ascii_lowercase();
    let inside = |zone: &str| name == zone || name.ends_with(&format!(".{zone}"));
    let fqdn = if platform_domain.is_some_and(inside) || zones.iter().any(|z| inside(z)) {
        name
    } else if let Some(base) = platform_domain {
        format!("{name}.{base}")
    } else {
        return Err((
            format!("domain `{written}` is outside every zone tenantry manages"),
            "set `platform.domain`, or add the zone to `[dns] zones` in tenantry.toml".to_string(),
        ));
    };
    if !is_domain_name(&fqdn) {
        return Err((
            format!("`{written}` is not a valid domain name"),
            "use lowercase labels of letters, digits and `-`, e.g. `budget.alice`".to_string(),
        ));
    }
    Ok(fqdn)
}
