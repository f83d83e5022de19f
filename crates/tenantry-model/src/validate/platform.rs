//! `platform:` — URLs, OIDC, TLS, forge, DNS and the workstation settings.

use super::{Checker, ValidationContext, located, span};
use crate::Span;
use crate::diagnostic::did_you_mean;
use crate::names::*;
use crate::quantity::{Quantity, check_quota_resource};
use crate::raw::*;
use crate::reserved::{ROOT_EQUIVALENT_GROUPS, ROOT_GROUPS, builtin_namespace_reason};
use crate::roster::*;
use crate::spanned_map::SpannedMap;
use crate::urls::{UrlUse, check_url};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub(super) fn check(
    checker: &mut Checker<'_>,
    raw: Option<&Spanned<RawPlatform>>,
    context: &ValidationContext,
) -> Platform {
    let raw = raw.map(|p| &p.value);
    let name = raw.and_then(|p| p.name.as_ref());
    if let Some(name) = name
        && checker.plain(name, "the platform name")
        && !is_dns1123_subdomain(&name.value)
    {
        checker.error(
            span(name),
            "invalid-platform-name",
            format!("platform name `{}` is not a DNS-1123 name", name.value),
            "use lowercase letters, digits, `-` and `.`, e.g. `homelab`",
        );
    }
    let api_server = raw.and_then(|p| p.api_server.as_ref());
    if let Some(url) = api_server {
        check_url_field(checker, url, "api_server", UrlUse::ApiServer);
    }
    let api_server_ca = raw.and_then(|p| p.api_server_ca.as_ref());
    if let Some(ca) = api_server_ca {
        check_ca(checker, ca);
    }
    let oidc = raw.and_then(|p| p.oidc.as_ref()).map(|oidc| {
        check_url_field(checker, &oidc.issuer_url, "issuer_url", UrlUse::OidcIssuer);
        if checker.plain(&oidc.client_id, "`client_id`") && !is_client_id(&oidc.client_id.value) {
            checker.error(
                span(&oidc.client_id),
                "invalid-client-id",
                format!("`client_id` `{}` is not an OAuth client id", oidc.client_id.value),
                "use the client id your identity provider shows: letters, digits and `. _ ~ : @ / + = -`, \
                 without spaces or quotes",
            );
        }
        Oidc { issuer_url: oidc.issuer_url.value.clone(), client_id: oidc.client_id.value.clone() }
    });
    let domain = raw.and_then(|p| p.domain.as_ref()).map(|domain| {
        let normalised = domain.value.trim_end_matches('.').to_ascii_lowercase();
        if checker.plain(domain, "the platform domain") && !is_domain_name(&normalised) {
            checker.error(
                span(domain),
                "invalid-domain",
                format!("platform domain `{}` is not a domain name", domain.value),
                "use a name such as `example.org`",
            );
        }
        normalised
    });
    let reserved_namespaces =
        raw.map(|p| check_reserved_namespaces(checker, &p.reserved_namespaces)).unwrap_or_default();

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
    let workstation = check_workstation(checker, raw.and_then(|p| p.workstation.as_ref()), context);

    Platform {
        name: name.map(|n| n.value.clone()).unwrap_or_else(|| "kubernetes".to_string()),
        api_server: api_server.map(|s| s.value.clone()),
        api_server_ca: api_server_ca.map(|s| s.value.clone()),
        oidc,
        domain,
        reserved_namespaces,
        default_quota,
        dns,
        tls,
        ci,
        forge,
        workstation,
    }
}

fn check_url_field(checker: &mut Checker<'_>, url: &Spanned<String>, field: &str, usage: UrlUse) {
    if !checker.plain(url, &format!("`{field}`")) {
        return;
    }
    if let Err(reason) = check_url(&url.value, usage) {
        checker.error(
            span(url),
            "invalid-url",
            format!("`{field}` `{}` is not usable: {reason}", url.value),
            format!("write a plain URL such as `{}`", usage.example()),
        );
    }
}

/// The CA bundle: PEM `CERTIFICATE` blocks and nothing else (it is base64-encoded into kubeconfigs).
fn check_ca(checker: &mut Checker<'_>, ca: &Spanned<String>) {
    let without_newlines: String = ca.value.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    if !checker.plain_at(&without_newlines, span(ca), "`api_server_ca`") {
        return;
    }
    if let Err(reason) = check_pem_certificates(&ca.value) {
        checker.error(
            span(ca),
            "invalid-ca",
            format!("`api_server_ca` is not a PEM certificate bundle: {reason}"),
            "paste the API server's CA as a block scalar: `api_server_ca: |` followed by the indented \
             `-----BEGIN CERTIFICATE-----` … `-----END CERTIFICATE-----` lines",
        );
    }
}

/// One or more `CERTIFICATE` blocks of base64 lines; blank lines between blocks.
fn check_pem_certificates(text: &str) -> Result<(), String> {
    use base64::Engine as _;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut body: Option<String> = None;
    let mut blocks = 0;
    for line in text.lines().map(str::trim) {
        match (&mut body, line) {
            (None, "") => {}
            (None, BEGIN) => body = Some(String::new()),
            (None, other) => return Err(format!("`{}` is outside a certificate block", other.escape_debug())),
            (Some(collected), END) => {
                base64::engine::general_purpose::STANDARD
                    .decode(collected.as_bytes())
                    .map_err(|e| format!("certificate {} is not valid base64 ({e})", blocks + 1))?;
                blocks += 1;
                body = None;
            }
            (Some(collected), line) if line.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) => {
                collected.push_str(line);
            }
            (Some(_), other) => return Err(format!("`{}` is not a base64 line", other.escape_debug())),
        }
    }
    match (body, blocks) {
        (Some(_), _) => Err(format!("the last block has no `{END}` line")),
        (None, 0) => Err(format!("there is no `{BEGIN}` block")),
        (None, _) => Ok(()),
    }
}

fn check_reserved_namespaces(checker: &mut Checker<'_>, list: &[Spanned<String>]) -> Vec<Located<String>> {
    let mut out = Vec::new();
    for entry in list {
        let name = entry.value.strip_suffix('*').unwrap_or(&entry.value);
        let prefix_ok = |p: &str| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && p.starts_with(|c: char| c.is_ascii_alphanumeric())
        };
        let ok = if entry.value.ends_with('*') { prefix_ok(name) } else { is_dns1123_label(name) };
        if !checker.plain(entry, "a reserved namespace") {
            continue;
        }
        if !ok {
            checker.error(
                span(entry),
                "invalid-reserved-namespace",
                format!("`{}` is neither a namespace name nor a prefix ending in `*`", entry.value),
                "write a DNS-1123 label such as `billing`, or a prefix such as `team-infra-*`",
            );
            continue;
        }
        out.push(located(entry));
    }
    out
}

pub(super) fn check_quota(
    checker: &mut Checker<'_>,
    quota: &SpannedMap<QuantityText>,
) -> BTreeMap<String, Located<Quantity>> {
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
            if checker.plain(cname, "`cname_target`") && !is_domain_name(&name) {
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

fn check_k8s_name(checker: &mut Checker<'_>, name: &Spanned<String>, what: &str) {
    if checker.plain(name, what) && !is_dns1123_subdomain(&name.value) {
        checker.error(
            span(name),
            "invalid-name",
            format!("{what} `{}` is not a valid Kubernetes name", name.value),
            "use lowercase letters, digits, `-` and `.`",
        );
    }
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
    if let Some(name) = &raw.secret_name {
        check_k8s_name(checker, name, "`secret_name`");
    }
    let secret_name =
        raw.secret_name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| DEFAULT_TLS_SECRET_NAME.to_string());
    let source = raw.source.as_ref().map(|source| {
        check_k8s_name(checker, &source.namespace, "the TLS source namespace");
        check_k8s_name(checker, &source.name, "the TLS source name");
        if let Some(reason) = builtin_namespace_reason(&source.namespace.value) {
            checker.error(
                span(&source.namespace),
                "reserved-tls-source",
                format!(
                    "`platform.tls.source` is in `{}`, a platform namespace ({reason}); its Secrets (CA keys, \
                     service credentials) must never be copied into tenant namespaces",
                    source.namespace.value
                ),
                "keep the wildcard certificate in a namespace of its own (e.g. `certs`; a cert-manager \
                 Certificate can be issued into any namespace) and point `source` there",
            );
        }
        ObjectRef { namespace: source.namespace.value.clone(), name: source.name.value.clone() }
    });
    let issuer = raw.issuer.as_ref().map(|issuer| {
        check_k8s_name(checker, &issuer.name, "the issuer name");
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
    for branch in &forge.protected_branches {
        if checker.plain(&branch.branch, "the branch") && !is_git_branch(&branch.branch.value) {
            checker.error(
                span(&branch.branch),
                "invalid-branch",
                format!("`{}` is not a git branch name", branch.branch.value),
                "write the branch as git shows it, e.g. `main` or `release/1.2` (no spaces, `..`, `~^:?*[\\`, \
                 no leading `-`)",
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

fn check_tier_groups(checker: &mut Checker<'_>, groups: &SpannedMap<Vec<String>>) -> BTreeMap<Tier, Vec<String>> {
    let mut tier_groups = BTreeMap::new();
    for (tier, list) in &groups.entries {
        let Some(parsed) = Tier::parse(&tier.value) else {
            let help = match did_you_mean(&tier.value, Tier::ALL.iter().map(|t| t.as_str())) {
                Some(candidate) => format!("did you mean `{candidate}`?"),
                None => "use admin, power-user or namespace-owner".to_string(),
            };
            checker.error(span(tier), "unknown-tier", format!("unknown tier `{}`", tier.value), help);
            continue;
        };
        // List items carry no position of their own: point at the list.
        let at = span(list);
        for group in &list.value {
            if !checker.plain_at(group, at, "a tier group") {
                continue;
            }
            if !is_valid_os_user(group) {
                checker.error(
                    at,
                    "invalid-group",
                    format!("`{group}` is not a host group name"),
                    "use `[a-z_][a-z0-9_-]*`, at most 32 characters",
                );
            } else if parsed != Tier::Admin && ROOT_GROUPS.contains(&group.as_str()) {
                checker.error(
                    at,
                    "privileged-group",
                    format!("`{group}` gives root on the host, but `{}` users are not admins", tier.value),
                    format!("remove `{group}` from `tier_groups.{}`; only `admin` may have root groups", tier.value),
                );
            } else if parsed != Tier::Admin && ROOT_EQUIVALENT_GROUPS.contains(&group.as_str()) {
                checker.warning(
                    at,
                    "root-equivalent-group",
                    format!("members of `{group}` can become root on the host; every `{}` user joins it", tier.value),
                    format!("make sure that is intended, or remove `{group}` from `tier_groups.{}`", tier.value),
                );
            }
        }
        tier_groups.insert(parsed, list.value.clone());
    }
    tier_groups
}

fn check_workstation(
    checker: &mut Checker<'_>,
    raw: Option<&Spanned<RawPlatformWorkstation>>,
    context: &ValidationContext,
) -> PlatformWorkstation {
    let at = raw.map(span).unwrap_or_default();
    let raw = raw.map(|w| &w.value);
    let tier_groups = match raw.and_then(|w| w.tier_groups.as_ref()) {
        Some(groups) => check_tier_groups(checker, groups),
        None => BTreeMap::from([(Tier::Admin, vec!["sudo".to_string()])]),
    };
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
    let dispatch_path = check_dispatch_path(checker, raw.and_then(|w| w.dispatch_path.as_ref()), context);
    let shell = raw.and_then(|w| w.shell.as_ref());
    if let Some(shell) = shell {
        check_shell(checker, shell);
    }
    let main_repo = raw.and_then(|w| w.main_repo.as_ref()).map(|repo| check_repo(checker, repo, "main_repo"));
    let extra_remote = raw.and_then(|w| w.extra_remote.as_ref()).map(|repo| check_repo(checker, repo, "extra_remote"));
    let repo_base = raw.and_then(|w| w.repo_base.as_ref());
    if let Some(base) = repo_base {
        check_url_field(checker, base, "repo_base", UrlUse::GitBase);
    }
    let mut managed_files = Vec::new();
    for file in raw.map(|w| w.managed_files.as_slice()).unwrap_or_default() {
        if checker.plain(&file.source, "the managed file source") && !is_safe_relative_path(&file.source.value) {
            checker.error(
                span(&file.source),
                "unsafe-path",
                format!("`{}` must be a path inside the host's source directory", file.source.value),
                "use a relative path without `..`, e.g. `files/AGENTS.md` (relative to `[host] source_dir`)",
            );
        }
        if checker.plain(&file.dest, "the managed file destination") && !is_safe_relative_path(&file.dest.value) {
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
        if checker.plain(&link.link, "the skeleton link") && !is_safe_relative_path(&link.link.value) {
            checker.error(
                span(&link.link),
                "unsafe-path",
                format!("`{}` must be a path inside the home directory", link.link.value),
                "use a relative path without `..`, e.g. `.claude/skills`",
            );
        }
        if checker.plain(&link.target, "the skeleton link target") && link.target.value.is_empty() {
            checker.error(
                span(&link.target),
                "missing-field",
                "the skeleton link target is empty",
                "write the path the link points to, e.g. `/opt/base/skills`",
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
        main_repo,
        repo_base: repo_base.map(|s| s.value.clone()),
        extra_remote,
        dispatch_path,
        managed_files,
        skeleton_links,
        span: at,
    }
}

fn check_repo(checker: &mut Checker<'_>, repo: &RawRepo, field: &str) -> Repo {
    // The name is a directory under ~/code (main_repo) or a git remote name (extra_remote).
    if checker.plain(&repo.name, &format!("`{field}.name`")) && !is_path_safe_repo(&repo.name.value) {
        checker.error(
            span(&repo.name),
            "unsafe-repo-name",
            format!("repository name `{}` is not safe as a directory name", repo.name.value),
            "use letters, digits, `.`, `_` and `-`, not starting with `.` or `-`",
        );
    }
    check_url_field(checker, &repo.url, &format!("{field}.url"), UrlUse::GitRemote);
    Repo { name: repo.name.value.clone(), url: repo.url.value.clone() }
}

fn check_shell(checker: &mut Checker<'_>, shell: &Spanned<String>) {
    if !checker.plain(shell, "`shell`") {
        return;
    }
    if !shell.value.starts_with('/') {
        checker.error(span(shell), "relative-path", "`shell` must be an absolute path", "e.g. `/bin/bash`");
        return;
    }
    let in_system_dir = SHELL_DIRS
        .iter()
        .any(|dir| shell.value.strip_prefix(dir).is_some_and(|name| !name.is_empty() && !name.contains('/')));
    if !is_safe_absolute_path(&shell.value) || !in_system_dir {
        checker.error(
            span(shell),
            "unsafe-path",
            format!("`shell` `{}` is not a program in a system directory", shell.value),
            format!(
                "every tenant logs in through it, so it must be root's: use a shell in {} (e.g. `/bin/zsh`)",
                SHELL_DIRS.join(", ")
            ),
        );
    }
}

/// The dispatch map's path: tenantry.toml's when set; otherwise the roster's,
/// which may only name a `.json` file in [`ROSTER_DISPATCH_DIR`] (tenantry
/// writes it as root: roster text must not pick where).
fn check_dispatch_path(
    checker: &mut Checker<'_>,
    written: Option<&Spanned<String>>,
    context: &ValidationContext,
) -> String {
    if let Some(configured) = &context.host_dispatch_path {
        if let Some(written) = written
            && written.value != *configured
        {
            checker.warning(
                span(written),
                "dispatch-path-overridden",
                format!(
                    "`dispatch_path` `{}` is ignored: tenantry.toml sets `[host] dispatch_path = \"{}\"`",
                    written.value,
                    configured.escape_debug()
                ),
                "remove `dispatch_path` from the roster; tenantry.toml decides where host files go",
            );
        }
        return configured.clone();
    }
    let Some(written) = written else { return DEFAULT_DISPATCH_PATH.to_string() };
    if !checker.plain(written, "`dispatch_path`") {
        return DEFAULT_DISPATCH_PATH.to_string();
    }
    let file = written.value.strip_prefix(ROSTER_DISPATCH_DIR).filter(|f| !f.contains('/'));
    let allowed = file.is_some_and(|f| f.len() > ".json".len() && f.ends_with(".json") && is_path_safe_repo(f));
    if !allowed {
        checker.error(
            span(written),
            "host-path-not-allowed",
            format!(
                "`dispatch_path` `{}` is outside {ROSTER_DISPATCH_DIR}: tenantry writes this file as root, so the \
                 roster may only name a `.json` file in that directory",
                written.value
            ),
            format!(
                "use `{DEFAULT_DISPATCH_PATH}` (or remove the line), or set `[host] dispatch_path` in tenantry.toml \
                 to write it elsewhere"
            ),
        );
        return DEFAULT_DISPATCH_PATH.to_string();
    }
    written.value.clone()
}
