//! `platform.isolation` and `platform.isolation_options` (SPEC §11.4).

use super::{Checker, span};
use crate::Span;
use crate::diagnostic::did_you_mean;
use crate::names::is_dns1123_label;
use crate::quantity::Quantity;
use crate::raw::{RawIsolationOptions, RawPlatform};
use crate::roster::*;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

pub(super) fn check(checker: &mut Checker<'_>, raw: Option<&RawPlatform>) -> Isolation {
    let written = raw.and_then(|p| p.isolation.as_ref());
    let level = match written.map(|w| w.value.as_str()) {
        None | Some("standard") => IsolationLevel::Standard,
        Some("none") => IsolationLevel::None,
        Some(other) => {
            let help = match did_you_mean(other, ["standard", "none"]) {
                Some(candidate) => format!("did you mean `{candidate}`?"),
                None => "use `standard` (the default) or `none`".to_string(),
            };
            checker.error(
                written.map(span).unwrap_or_default(),
                "unknown-value",
                format!("unknown isolation `{other}`"),
                help,
            );
            IsolationLevel::Standard
        }
    };
    let options = raw.and_then(|p| p.isolation_options.as_ref());
    if let (Some(options), IsolationLevel::None) = (options, level) {
        checker.warning(
            span(options),
            "unused-isolation-options",
            "`isolation_options` has no effect with `isolation: none`",
            "remove it, or set `isolation: standard`",
        );
    }
    let mut isolation = Isolation {
        level,
        allow_node_ports: false,
        allow_load_balancers: false,
        ingress_namespace: DEFAULT_INGRESS_NAMESPACE.to_string(),
        egress_cidrs: Vec::new(),
        cluster_reads: Vec::new(),
        trusted_users: Vec::new(),
        trusted_groups: Vec::new(),
        span: written.map(span).unwrap_or(Span::UNKNOWN),
    };
    if let Some(options) = options {
        check_options(checker, &options.value, &mut isolation);
    }
    isolation
}

fn check_options(checker: &mut Checker<'_>, raw: &RawIsolationOptions, isolation: &mut Isolation) {
    isolation.allow_node_ports = raw.allow_node_ports;
    isolation.allow_load_balancers = raw.allow_load_balancers;
    if let Some(namespace) = &raw.ingress_namespace {
        if checker.plain(namespace, "`ingress_namespace`") && !is_dns1123_label(&namespace.value) {
            checker.error(
                span(namespace),
                "invalid-namespace",
                format!("`ingress_namespace` `{}` is not a namespace name", namespace.value),
                "name the namespace your ingress controller runs in, e.g. `ingress-nginx`",
            );
        }
        isolation.ingress_namespace = namespace.value.clone();
    }
    for cidr in &raw.egress_cidrs {
        if !checker.plain(cidr, "an egress CIDR") {
            continue;
        }
        match cidr_error(&cidr.value) {
            None => isolation.egress_cidrs.push(cidr.value.clone()),
            Some(reason) => checker.error(
                span(cidr),
                "invalid-cidr",
                format!("`{}` is not an address range: {reason}", cidr.value),
                "write it as `address/prefix`, e.g. `0.0.0.0/0` or `10.20.0.0/16`",
            ),
        }
    }
    for read in &raw.cluster_reads {
        if CLUSTER_READS.contains(&read.value.as_str()) {
            isolation.cluster_reads.push(read.value.clone());
        } else {
            checker.error(
                span(read),
                "unknown-value",
                format!("`{}` is not a cluster-scoped read tenantry can grant", read.value),
                format!("use {}", CLUSTER_READS.join(" or ")),
            );
        }
    }
    isolation.cluster_reads.sort();
    isolation.cluster_reads.dedup();
    let identities = |checker: &mut Checker<'_>, list: &[Spanned<String>], what: &str| -> Vec<String> {
        let mut out = Vec::new();
        for entry in list {
            if !checker.plain(entry, what) {
                continue;
            }
            if entry.value.trim().is_empty() || entry.value.contains(['"', '\'', '\\']) {
                checker.error(
                    span(entry),
                    "invalid-identity",
                    format!("`{}` is not a Kubernetes user or group name tenantry can trust", entry.value),
                    "write the name the API server authenticates, e.g. `system:serviceaccount:tenantry:tenantry`",
                );
                continue;
            }
            out.push(entry.value.clone());
        }
        out.sort();
        out.dedup();
        out
    };
    isolation.trusted_users = identities(checker, &raw.trusted_users, "a trusted user");
    isolation.trusted_groups = identities(checker, &raw.trusted_groups, "a trusted group");
}

/// Why `text` is not an IPv4 or IPv6 `address/prefix`, if it is not.
fn cidr_error(text: &str) -> Option<String> {
    let Some((address, prefix)) = text.split_once('/') else { return Some("no `/prefix`".to_string()) };
    let max = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return Some(format!("`{address}` is not an IP address")),
    };
    match prefix.parse::<u8>() {
        Ok(bits) if bits <= max => None,
        _ => Some(format!("the prefix must be a number from 0 to {max}")),
    }
}

/// The platform's default quota completed with the isolation bounds it does
/// not set (explicit defaults win; NodePort/LoadBalancer bounds follow the options).
pub(super) fn complete_quota(quota: &mut BTreeMap<String, Located<Quantity>>, isolation: &Isolation) {
    if !isolation.is_standard() {
        return;
    }
    for (key, value) in ISOLATION_QUOTA {
        let allowed = (*key == "services.nodeports" && isolation.allow_node_ports)
            || (*key == "services.loadbalancers" && isolation.allow_load_balancers);
        if allowed || quota.contains_key(*key) {
            continue;
        }
        if let Ok(quantity) = Quantity::parse(value) {
            quota.insert((*key).to_string(), Located::unlocated(quantity));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cidr_error;

    #[test]
    fn cidrs_are_checked_as_addresses_with_a_prefix() {
        assert_eq!(cidr_error("0.0.0.0/0"), None);
        assert_eq!(cidr_error("10.20.0.0/16"), None);
        assert_eq!(cidr_error("fd00::/8"), None);
        assert!(cidr_error("10.0.0.0").is_some());
        assert!(cidr_error("10.0.0.0/33").is_some());
        assert!(cidr_error("example/8").is_some());
    }
}
