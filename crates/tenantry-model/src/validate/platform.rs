//! `platform:` — URLs, OIDC, the CA, reserved namespaces, quotas, DNS and TLS
//! (`platform.forge` is checked in [`super::forge`]).

use super::{Checker, ValidationContext, located, span};
use crate::Span;
use crate::names::*;
use crate::quantity::{Quantity, check_quota_resource};
use crate::raw::*;
use crate::reserved::builtin_namespace_reason;
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
    let isolation = super::isolation::check(checker, raw);
    super::isolation::complete_quota(&mut default_quota, &isolation);

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
    let forge = raw.and_then(|p| p.forge.as_ref()).map(|forge| super::forge::check(checker, forge));
    let workstation = super::workstation::check_platform(checker, raw.and_then(|p| p.workstation.as_ref()), context);
    let idp = super::idp::check_platform(checker, raw.and_then(|p| p.idp.as_ref()));
    let rbac_subjects = raw.and_then(|p| p.rbac_subjects.as_ref()).map(|r| r.value).unwrap_or_default();
    let apps = super::apps::check_platform(checker, raw.and_then(|p| p.apps.as_ref()));

    Platform {
        name: name.map(|n| n.value.clone()).unwrap_or_else(|| "kubernetes".to_string()),
        api_server: api_server.map(|s| s.value.clone()),
        api_server_ca: api_server_ca.map(|s| s.value.clone()),
        oidc,
        domain,
        reserved_namespaces,
        default_quota,
        isolation,
        dns,
        tls,
        ci,
        forge,
        workstation,
        idp,
        rbac_subjects,
        apps,
    }
}

pub(super) fn check_url_field(checker: &mut Checker<'_>, url: &Spanned<String>, field: &str, usage: UrlUse) {
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
