//! [`RawRoster`] → [`Roster`]: every rule of SPEC §2.2, all errors at once.

use crate::Span;
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::names::*;
use crate::quantity::{Quantity, check_quota_resource};
use crate::raw::*;
use crate::roster::*;
use crate::spanned_map::SpannedMap;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Facts from outside the roster that validation needs.
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    /// Zones the configured DNS target manages; user domains may fall inside them.
    pub dns_zones: Vec<String>,
}

fn span<T>(spanned: &Spanned<T>) -> Span {
    Span::from_location(&spanned.referenced)
}

fn located<T: Clone>(spanned: &Spanned<T>) -> Located<T> {
    Located::new(spanned.value.clone(), span(spanned))
}

struct Checker<'a> {
    source: &'a str,
    found: Diagnostics,
}

impl Checker<'_> {
    fn error(&mut self, span: Span, code: &'static str, message: impl Into<String>, help: impl Into<String>) {
        self.found.push(Diagnostic::error(self.source, span, code, message).with_help(help));
    }

    fn warning(&mut self, span: Span, code: &'static str, message: impl Into<String>, help: impl Into<String>) {
        self.found.push(Diagnostic::warning(self.source, span, code, message).with_help(help));
    }

    fn at(&self, span: Span) -> String {
        format!("{}:{}:{}", self.source, span.line, span.column)
    }
}

/// Validate a parsed roster. Returns the roster (with warnings dropped) or every diagnostic.
pub fn validate(source: &str, raw: RawRoster, context: &ValidationContext) -> Result<Roster, Diagnostics> {
    validate_with_warnings(source, raw, context).map(|(roster, _)| roster)
}

/// Validate and also return the warnings of a roster that has no errors.
pub fn validate_with_warnings(
    source: &str,
    raw: RawRoster,
    context: &ValidationContext,
) -> Result<(Roster, Diagnostics), Diagnostics> {
    let mut checker = Checker { source, found: Diagnostics::default() };
    let platform = check_platform(&mut checker, raw.platform.as_ref());
    let users = check_users(&mut checker, &raw.users, &platform, context);
    check_platform_references(&mut checker, &platform, &users);
    checker.found.sort();
    if checker.found.has_errors() {
        return Err(checker.found);
    }
    Ok((Roster { source: source.to_string(), platform, users }, checker.found))
}

fn check_platform(checker: &mut Checker<'_>, raw: Option<&Spanned<RawPlatform>>) -> Platform {
    let platform_span = raw.map(span).unwrap_or_default();
    let raw = raw.map(|p| &p.value);
    let name = raw.and_then(|p| p.name.as_ref());
    if let Some(name) = name
        && !is_dns1123_subdomain(&name.value)
    {
        checker.error(
            span(name),
            "invalid-platform-name",
            format!("platform name `{}` is not a DNS-1123 name", name.value),
            "use lowercase letters, digits, `-` and `.`, e.g. `homelab`",
        );
    }
    for (field, value) in [("api_server", raw.and_then(|p| p.api_server.as_ref()))] {
        if let Some(value) = value
            && !value.value.starts_with("https://")
            && !value.value.starts_with("http://")
        {
            checker.error(
                span(value),
                "invalid-url",
                format!("`{field}` must be an http(s) URL, got `{}`", value.value),
                "e.g. `https://k8s.example.org:6443`",
            );
        }
    }
    let oidc = raw.and_then(|p| p.oidc.as_ref()).map(|oidc| {
        if !oidc.issuer_url.value.starts_with("https://") && !oidc.issuer_url.value.starts_with("http://") {
            checker.error(
                span(&oidc.issuer_url),
                "invalid-url",
                format!("`issuer_url` must be an http(s) URL, got `{}`", oidc.issuer_url.value),
                "e.g. `https://auth.example.org/o/kubernetes/`",
            );
        }
        Oidc { issuer_url: oidc.issuer_url.value.clone(), client_id: oidc.client_id.value.clone() }
    });
    let domain = raw.and_then(|p| p.domain.as_ref()).map(|domain| {
        let normalised = domain.value.trim_end_matches('.').to_ascii_lowercase();
        if !is_domain_name(&normalised) {
            checker.error(
                span(domain),
                "invalid-domain",
                format!("platform domain `{}` is not a domain name", domain.value),
                "use a name such as `example.org`",
            );
        }
        normalised
    });

    let mut default_quota: BTreeMap<String, Located<Quantity>> = DEFAULT_QUOTA
        .iter()
        .filter_map(|(k, v)| Quantity::parse(v).ok().map(|q| (k.to_string(), Located::unlocated(q))))
        .collect();
    if let Some(quota) = raw.and_then(|p| p.defaults.as_ref()).and_then(|d| d.quota.as_ref()) {
        // An explicit default quota replaces the built-in one rather than merging into it.
        default_quota = check_quota(checker, quota);
    }

    let dns = raw.and_then(|p| p.dns.as_ref()).and_then(|dns| check_dns(checker, dns));
    let tls = check_tls(checker, raw.and_then(|p| p.tls.as_ref()));
    let ci = raw.and_then(|p| p.ci.as_ref()).map(|ci| {
        for admin in &ci.extra_admins {
            if !is_forge_login(&admin.value) {
                checker.error(
                    span(admin),
                    "invalid-forge-user",
                    format!("`{}` is not a forge login", admin.value),
                    "use letters, digits, `.`, `_` and `-`",
                );
            }
        }
        Ci { extra_admins: ci.extra_admins.iter().map(located).collect() }
    });
    let forge = raw.and_then(|p| p.forge.as_ref()).map(|forge| check_forge(checker, forge));
    let workstation = check_platform_workstation(checker, raw.and_then(|p| p.workstation.as_ref()));
    let _ = platform_span;

    Platform {
        name: name.map(|n| n.value.clone()).unwrap_or_else(|| "kubernetes".to_string()),
        api_server: raw.and_then(|p| p.api_server.as_ref()).map(|s| s.value.clone()),
        api_server_ca: raw.and_then(|p| p.api_server_ca.as_ref()).map(|s| s.value.clone()),
        oidc,
        domain,
        default_quota,
        dns,
        tls,
        ci,
        forge,
        workstation,
    }
}

fn check_quota(checker: &mut Checker<'_>, quota: &SpannedMap<QuantityText>) -> BTreeMap<String, Located<Quantity>> {
    let mut out = BTreeMap::new();
    for (key, value) in &quota.entries {
        if let Err(hint) = check_quota_resource(&key.value) {
            checker.error(
                span(key),
                "invalid-quota-resource",
                format!("`{}` is not a ResourceQuota resource name", key.value),
                hint,
            );
            continue;
        }
        match Quantity::parse(&value.value.0) {
            Ok(quantity) => {
                out.insert(key.value.clone(), Located::new(quantity, span(value)));
            }
            Err(reason) => checker.error(
                span(value),
                "invalid-quantity",
                format!("quota `{}`: {reason}", key.value),
                "write a Kubernetes quantity such as \"2\", \"500m\" or \"4Gi\"",
            ),
        }
    }
    out
}

fn check_dns(checker: &mut Checker<'_>, dns: &Spanned<RawDns>) -> Option<Dns> {
    let raw = &dns.value;
    let target = match (&raw.cname_target, &raw.a_target) {
        (Some(cname), None) => {
            let name = cname.value.trim_end_matches('.').to_ascii_lowercase();
            if !is_domain_name(&name) {
                checker.error(
                    span(cname),
                    "invalid-domain",
                    format!("`cname_target` `{}` is not a domain name", cname.value),
                    "e.g. `tunnel.example.net`",
                );
            }
            DnsTarget::Cname(name)
        }
        (None, Some(a)) => match a.value.parse() {
            Ok(address) => DnsTarget::A(address),
            Err(_) => {
                checker.error(
                    span(a),
                    "invalid-address",
                    format!("`a_target` `{}` is not an IPv4 address", a.value),
                    "e.g. `203.0.113.10`",
                );
                return None;
            }
        },
        (Some(_), Some(a)) => {
            checker.error(
                span(a),
                "conflicting-dns-target",
                "`platform.dns` sets both `cname_target` and `a_target`",
                "keep one of them",
            );
            return None;
        }
        (None, None) => {
            checker.error(
                span(dns),
                "missing-field",
                "`platform.dns` needs `cname_target` (or `a_target`)",
                "add `cname_target: tunnel.example.net`",
            );
            return None;
        }
    };
    Some(Dns {
        target,
        proxied: raw.proxied.unwrap_or(false),
        ttl: raw.ttl.unwrap_or(DEFAULT_DNS_TTL),
        record_budget: raw.record_budget.as_ref().map(located),
        span: span(dns),
    })
}

fn check_tls(checker: &mut Checker<'_>, tls: Option<&Spanned<RawTls>>) -> Tls {
    let Some(tls) = tls else {
        return Tls {
            secret_name: DEFAULT_TLS_SECRET_NAME.to_string(),
            source: None,
            issuer: None,
            span: Span::UNKNOWN,
        };
    };
    let raw = &tls.value;
    let secret_name = match &raw.secret_name {
        Some(name) => {
            if !is_dns1123_subdomain(&name.value) {
                checker.error(
                    span(name),
                    "invalid-name",
                    format!("`secret_name` `{}` is not a valid Secret name", name.value),
                    "use lowercase letters, digits, `-` and `.`",
                );
            }
            name.value.clone()
        }
        None => DEFAULT_TLS_SECRET_NAME.to_string(),
    };
    let source = raw.source.as_ref().map(|source| {
        for part in [&source.namespace, &source.name] {
            if !is_dns1123_subdomain(&part.value) {
                checker.error(
                    span(part),
                    "invalid-name",
                    format!("`{}` is not a valid Kubernetes name", part.value),
                    "use lowercase letters, digits, `-` and `.`",
                );
            }
        }
        ObjectRef { namespace: source.namespace.value.clone(), name: source.name.value.clone() }
    });
    let issuer = raw.issuer.as_ref().map(|issuer| {
        let kind = issuer.kind.as_ref().map(|k| k.value.clone()).unwrap_or_else(|| "ClusterIssuer".to_string());
        if kind != "ClusterIssuer" && kind != "Issuer" {
            let at = issuer.kind.as_ref().map(span).unwrap_or_default();
            checker.error(
                at,
                "invalid-issuer-kind",
                format!("issuer kind `{kind}`"),
                "use `ClusterIssuer` or `Issuer`",
            );
        }
        IssuerRef { name: issuer.name.value.clone(), kind }
    });
    if source.is_some() && issuer.is_some() {
        checker.error(
            span(tls),
            "conflicting-tls-mode",
            "`platform.tls` sets both `source` (copy a Secret) and `issuer` (cert-manager)",
            "keep one of them",
        );
    }
    Tls { secret_name, source, issuer, span: span(tls) }
}

fn check_forge(checker: &mut Checker<'_>, forge: &RawForge) -> Forge {
    let repo_ok =
        |repo: &str| repo.split_once('/').is_some_and(|(owner, name)| is_forge_login(owner) && is_path_safe_repo(name));
    for repo in forge.repos.iter().chain(forge.protected_branches.iter().map(|b| &b.repo)) {
        if !repo_ok(&repo.value) {
            checker.error(
                span(repo),
                "invalid-repo",
                format!("`{}` is not an `owner/name` repository", repo.value),
                "e.g. `ops/infra`",
            );
        }
    }
    Forge {
        repos: forge.repos.iter().map(located).collect(),
        protected_branches: forge
            .protected_branches
            .iter()
            .map(|b| ProtectedBranch {
                repo: located(&b.repo),
                branch: b.branch.value.clone(),
                push_users: b.push_users.iter().map(located).collect(),
            })
            .collect(),
    }
}

fn check_platform_workstation(
    checker: &mut Checker<'_>,
    raw: Option<&Spanned<RawPlatformWorkstation>>,
) -> PlatformWorkstation {
    let at = raw.map(span).unwrap_or_default();
    let raw = raw.map(|w| &w.value);
    let mut tier_groups = BTreeMap::from([(Tier::Admin, vec!["sudo".to_string()])]);
    if let Some(groups) = raw.and_then(|w| w.tier_groups.as_ref()) {
        tier_groups.clear();
        for (tier, list) in &groups.entries {
            match Tier::parse(&tier.value) {
                Some(parsed) => {
                    tier_groups.insert(parsed, list.value.clone());
                }
                None => {
                    let help = match did_you_mean(&tier.value, Tier::ALL.iter().map(|t| t.as_str())) {
                        Some(candidate) => format!("did you mean `{candidate}`?"),
                        None => "use admin, power-user or namespace-owner".to_string(),
                    };
                    checker.error(span(tier), "unknown-tier", format!("unknown tier `{}`", tier.value), help);
                }
            }
        }
    }
    let mut port_pools: BTreeMap<String, u16> =
        DEFAULT_PORT_POOLS.iter().map(|(name, port)| (name.to_string(), *port)).collect();
    if let Some(pools) = raw.and_then(|w| w.port_pools.as_ref()) {
        port_pools.clear();
        for (name, first) in &pools.entries {
            if !is_dns1123_label(&name.value) {
                checker.error(
                    span(name),
                    "invalid-name",
                    format!("pool name `{}`", name.value),
                    "use a DNS label such as `terminal`",
                );
            }
            if first.value < 1024 {
                checker.error(
                    span(first),
                    "privileged-port",
                    format!("pool `{}` starts at port {}", name.value, first.value),
                    "start pools at 1024 or above",
                );
            }
            port_pools.insert(name.value.clone(), first.value);
        }
    }
    let dispatch_path = raw.and_then(|w| w.dispatch_path.as_ref());
    if let Some(path) = dispatch_path
        && !path.value.starts_with('/')
    {
        checker.error(
            span(path),
            "relative-path",
            "`dispatch_path` must be absolute",
            "e.g. `/etc/t3-serve/dispatch.json`",
        );
    }
    let shell = raw.and_then(|w| w.shell.as_ref());
    if let Some(shell) = shell
        && !shell.value.starts_with('/')
    {
        checker.error(span(shell), "relative-path", "`shell` must be an absolute path", "e.g. `/bin/bash`");
    }
    let repo = |r: &RawRepo| Repo { name: r.name.value.clone(), url: r.url.value.clone() };
    if let Some(main) = raw.and_then(|w| w.main_repo.as_ref())
        && !is_path_safe_repo(&main.name.value)
    {
        checker.error(
            span(&main.name),
            "unsafe-repo-name",
            format!("repository name `{}` is not safe as a directory name", main.name.value),
            "use letters, digits, `.`, `_` and `-`, not starting with `.` or `-`",
        );
    }
    let mut managed_files = Vec::new();
    for file in raw.map(|w| w.managed_files.as_slice()).unwrap_or_default() {
        if !is_safe_relative_path(&file.dest.value) {
            checker.error(
                span(&file.dest),
                "unsafe-path",
                format!("`{}` must be a path inside the home directory", file.dest.value),
                "use a relative path without `..`, e.g. `.codex/AGENTS.md`",
            );
        }
        managed_files.push(ManagedFile {
            source: file.source.value.clone(),
            dest: file.dest.value.clone(),
            span: span(&file.dest),
        });
    }
    let mut skeleton_links = Vec::new();
    for link in raw.map(|w| w.skeleton_links.as_slice()).unwrap_or_default() {
        if !is_safe_relative_path(&link.link.value) {
            checker.error(
                span(&link.link),
                "unsafe-path",
                format!("`{}` must be a path inside the home directory", link.link.value),
                "use a relative path without `..`, e.g. `.claude/skills`",
            );
        }
        skeleton_links.push(SkeletonLink {
            link: link.link.value.clone(),
            target: link.target.value.clone(),
            span: span(&link.link),
        });
    }
    PlatformWorkstation {
        shell: shell.map(|s| s.value.clone()).unwrap_or_else(|| DEFAULT_SHELL.to_string()),
        tier_groups,
        port_pools,
        main_repo: raw.and_then(|w| w.main_repo.as_ref()).map(repo),
        repo_base: raw.and_then(|w| w.repo_base.as_ref()).map(|s| s.value.clone()),
        extra_remote: raw.and_then(|w| w.extra_remote.as_ref()).map(repo),
        dispatch_path: dispatch_path.map(|s| s.value.clone()).unwrap_or_else(|| DEFAULT_DISPATCH_PATH.to_string()),
        managed_files,
        skeleton_links,
        span: at,
    }
}

/// Claims on names that must be unique across users: who holds each, and where.
#[derive(Default)]
struct Claims {
    by_name: HashMap<String, (String, Span)>,
}

impl Claims {
    /// Record a claim; on a clash, return the earlier holder and position.
    fn claim(&mut self, name: &str, user: &str, at: Span) -> Option<(String, Span)> {
        match self.by_name.get(name) {
            Some(earlier) => Some(earlier.clone()),
            None => {
                self.by_name.insert(name.to_string(), (user.to_string(), at));
                None
            }
        }
    }
}

fn check_users(
    checker: &mut Checker<'_>,
    raw_users: &SpannedMap<RawUser>,
    platform: &Platform,
    context: &ValidationContext,
) -> BTreeMap<String, User> {
    let mut users = BTreeMap::new();
    let mut namespaces = Claims::default();
    let mut emails = Claims::default();
    let mut domains = Claims::default();
    let mut os_users = Claims::default();
    let mut idp_users = Claims::default();
    let mut forge_users = Claims::default();
    let tls_namespace = platform.tls.source.as_ref().map(|s| s.namespace.as_str());

    for (key, raw) in &raw_users.entries {
        let key_span = span(key);
        let user_key = key.value.as_str();
        let raw = &raw.value;
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
        }

        let email = raw.email.value.trim().to_string();
        if !is_plausible_email(&email) {
            checker.error(
                span(&raw.email),
                "invalid-email",
                format!("`{email}` is not an email address"),
                "write `name@example.org`",
            );
        } else if let Some((other, at)) = emails.claim(&email.to_ascii_lowercase(), user_key, span(&raw.email)) {
            checker.error(
                span(&raw.email),
                "duplicate-email",
                format!("email `{email}` is already used by user `{other}` ({})", checker.at(at)),
                "each user needs their own OIDC identity; fix one of the two emails",
            );
        }

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
                    let at = span(namespace);
                    let name = namespace.value.as_str();
                    if !is_dns1123_label(name) {
                        checker.error(
                            at,
                            "invalid-namespace",
                            format!("namespace `{name}` is not a DNS-1123 label"),
                            "use 1–63 lowercase letters, digits and `-`",
                        );
                        continue;
                    }
                    if let Some(reason) = reserved_namespace_reason(name) {
                        checker.error(
                            at,
                            "reserved-namespace",
                            format!("namespace `{name}` is reserved: {reason}"),
                            "choose another name",
                        );
                        continue;
                    }
                    if Some(name) == tls_namespace {
                        checker.error(
                            at,
                            "reserved-namespace",
                            format!("namespace `{name}` holds the platform TLS source secret"),
                            "choose another name",
                        );
                        continue;
                    }
                    if let Some((other, earlier)) = namespaces.claim(name, user_key, at) {
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
                        continue;
                    }
                    owned.push(located(namespace));
                }
            }
            (None, _) => {}
        }

        let mut user_domains = Vec::new();
        for domain in &raw.domains {
            let at = span(domain);
            match qualify_domain(&domain.value, platform.domain.as_deref(), &context.dns_zones) {
                Ok(fqdn) => {
                    if let Some((other, earlier)) = domains.claim(&fqdn, user_key, at) {
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

        let mut quota = platform.default_quota.clone();
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
            forge_users.claim(&forge_user.value.to_ascii_lowercase(), user_key, forge_user.span)
        {
            checker.error(
                forge_user.span,
                "duplicate-forge-user",
                format!(
                    "forge login `{}` is already used by user `{other}` ({})",
                    forge_user.value,
                    checker.at(earlier)
                ),
                "set `forge_user:` to each user's own forge login",
            );
        }

        let workstation = raw.workstation.as_ref().and_then(|w| {
            check_user_workstation(checker, user_key, &email, w, platform, &mut os_users, &mut idp_users)
        });

        users.insert(
            user_key.to_string(),
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
            },
        );
    }
    users
}

fn check_user_workstation(
    checker: &mut Checker<'_>,
    user_key: &str,
    email: &str,
    raw: &Spanned<RawUserWorkstation>,
    platform: &Platform,
    os_users: &mut Claims,
    idp_users: &mut Claims,
) -> Option<Workstation> {
    let at = span(raw);
    let raw = &raw.value;
    let os_user = match &raw.os_user {
        Some(name) => {
            if !is_valid_os_user(&name.value) {
                checker.error(
                    span(name),
                    "invalid-os-user",
                    format!("`{}` is not a valid host account name", name.value),
                    "use `[a-z_][a-z0-9_-]*`, at most 32 characters",
                );
                return None;
            }
            located(name)
        }
        None => {
            let sanitised = sanitize_os_user(user_key);
            if !is_valid_os_user(&sanitised) {
                checker.error(
                    at,
                    "invalid-os-user",
                    format!("user key `{user_key}` does not give a valid host account name (`{sanitised}`)"),
                    "set `workstation.os_user:` explicitly, starting with a letter",
                );
                return None;
            }
            Located::new(sanitised, at)
        }
    };
    if let Some((other, earlier)) = os_users.claim(&os_user.value, user_key, os_user.span) {
        checker.error(
            os_user.span,
            "os-user-collision",
            format!("host account `{}` is also the account of user `{other}` ({})", os_user.value, checker.at(earlier)),
            "set a distinct `workstation.os_user:` for one of them",
        );
    }
    let idp_user = match &raw.idp_user {
        Some(name) => located(name),
        None => Located::new(email.split('@').next().unwrap_or(user_key).to_string(), at),
    };
    if idp_user.value.is_empty() || idp_user.value.contains(['=', '\n', ' ', '"']) {
        checker.error(
            idp_user.span,
            "invalid-idp-user",
            format!("`{}` cannot be used as an identity-provider login", idp_user.value),
            "set `workstation.idp_user:` to the login without spaces, `=` or quotes",
        );
    } else if let Some((other, earlier)) = idp_users.claim(&idp_user.value, user_key, idp_user.span) {
        checker.error(
            idp_user.span,
            "duplicate-idp-user",
            format!(
                "identity-provider login `{}` is also used by user `{other}` ({})",
                idp_user.value,
                checker.at(earlier)
            ),
            "the web terminal routes by this login; set a distinct `workstation.idp_user:`",
        );
    }
    let code_layout = raw.code_layout.as_ref().map(|l| l.value).unwrap_or_default();
    let mut seen = BTreeSet::new();
    let main_name = platform.workstation.main_repo.as_ref().map(|r| r.name.as_str());
    let mut repos = Vec::new();
    for repo in &raw.repos {
        let at = span(repo);
        if code_layout != CodeLayout::Workspace {
            checker.error(
                at,
                "repos-need-workspace",
                format!("`repos` is only used with `code_layout: workspace`; `{user_key}` uses `single`"),
                "add `code_layout: workspace`, or remove `repos`",
            );
            break;
        }
        if !is_path_safe_repo(&repo.value) {
            checker.error(
                at,
                "unsafe-repo-name",
                format!("repository name `{}` is not safe as a directory name", repo.value),
                "use letters, digits, `.`, `_` and `-`, not starting with `.` or `-`, no `/`",
            );
            continue;
        }
        if Some(repo.value.as_str()) == main_name {
            checker.error(
                at,
                "duplicate-repo",
                format!("`{}` is the platform's main repository, already at ~/code/{}", repo.value, repo.value),
                "remove it from `repos`",
            );
            continue;
        }
        if !seen.insert(repo.value.clone()) {
            checker.error(at, "duplicate-repo", format!("repository `{}` is listed twice", repo.value), "remove one");
            continue;
        }
        repos.push(located(repo));
    }
    if code_layout == CodeLayout::Workspace && !repos.is_empty() && platform.workstation.repo_base.is_none() {
        checker.error(
            at,
            "missing-repo-base",
            "workspace repositories need `platform.workstation.repo_base` to know where to clone from",
            "add `repo_base: https://forge.example.org/ops/` under `platform.workstation`",
        );
    }
    Some(Workstation { os_user, idp_user, code_layout, repos, parked: raw.parked, span: at })
}

/// Normalise a user domain to an FQDN inside the platform domain or a managed zone.
fn qualify_domain(written: &str, platform_domain: Option<&str>, zones: &[String]) -> Result<String, (String, String)> {
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

fn check_platform_references(checker: &mut Checker<'_>, platform: &Platform, users: &BTreeMap<String, User>) {
    let branches = platform.forge.as_ref().map(|forge| forge.protected_branches.as_slice()).unwrap_or_default();
    for branch in branches {
        for user in &branch.push_users {
            if !users.contains_key(&user.value) {
                let help = match did_you_mean(&user.value, users.keys().map(String::as_str)) {
                    Some(candidate) => format!("did you mean `{candidate}`?"),
                    None => "list roster user keys here".to_string(),
                };
                checker.error(
                    user.span,
                    "unknown-user",
                    format!("`{}` is not a user in this roster", user.value),
                    help,
                );
            }
        }
    }
    let first_workstation = users.values().filter_map(|u| u.workstation.as_ref()).map(|w| w.span).min();
    if platform.workstation.main_repo.is_none()
        && let Some(first) = first_workstation
    {
        // Without a `platform.workstation` block, point at the first user who has a workstation.
        let at = if platform.workstation.span.is_known() { platform.workstation.span } else { first };
        checker.warning(
            at,
            "no-main-repo",
            "workstation users are listed but `platform.workstation.main_repo` is not set; no code is checked out",
            "add `main_repo: { name: infra, url: https://forge.example.org/ops/infra.git }`",
        );
    }
}
