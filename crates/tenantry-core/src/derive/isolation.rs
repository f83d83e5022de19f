//! Tenant isolation (`platform.isolation: standard`, SPEC §11.4): what each
//! tenant namespace gets besides the origin's objects — Pod Security labels,
//! a default-deny network policy with the few flows a tenant needs — and the
//! platform-wide admission policies that refuse what Pod Security baseline
//! lets through and keep tenants from undoing what tenantry placed.
//!
//! Every rule names, in its message, what the tenant should change.

use super::{Item, Out, labels};
use crate::content::Content;
use crate::id::{Domain, ResourceId};
use crate::kinds::kind;
use crate::marks::LABELS;
use crate::resource::Owner;
use serde_json::{Value, json};
use tenantry_model::{Isolation, Roster, Span, Tier};

/// Label on tenant namespaces under `standard`: the admission policies select on it.
pub const ISOLATION_LABEL: &str = "tenantry.dev/isolation";
pub const NETWORK_API: &str = "networking.k8s.io/v1";
pub const ADMISSION_API: &str = "admissionregistration.k8s.io/v1";

/// Users and groups allowed to change tenantry's objects in tenant namespaces
/// whatever the roster says: cluster admins, the control plane (the
/// namespace controller deleting a namespace's objects), and tenantry's own
/// service account in the cluster.
const TRUSTED_USERS: &[&str] = &["system:kube-controller-manager", "system:serviceaccount:tenantry:tenantry"];
const TRUSTED_GROUPS: &[&str] = &["system:masters", "system:serviceaccounts:kube-system"];

/// Pod Security labels of a tenant namespace, sorted by key: enforce
/// `baseline`, warn and audit `restricted`, each pinned to `version`.
pub(super) fn namespace_labels(version: &str) -> [(&'static str, &str); 7] {
    [
        ("pod-security.kubernetes.io/audit", "restricted"),
        ("pod-security.kubernetes.io/audit-version", version),
        ("pod-security.kubernetes.io/enforce", "baseline"),
        ("pod-security.kubernetes.io/enforce-version", version),
        ("pod-security.kubernetes.io/warn", "restricted"),
        ("pod-security.kubernetes.io/warn-version", version),
        (ISOLATION_LABEL, "standard"),
    ]
}

/// The Pod Security version for a cluster version (`v1.37.2` → `v1.37`);
/// `latest` when no cluster was asked (rendering without one).
pub fn pod_security_version(cluster: Option<&str>) -> String {
    let Some(version) = cluster else { return "latest".to_string() };
    let mut parts = version.trim_start_matches('v').split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) if !major.is_empty() && minor.chars().all(|c| c.is_ascii_digit()) => {
            format!("v{major}.{minor}")
        }
        _ => "latest".to_string(),
    }
}

/// The network policies of one tenant namespace, precomputed per roster
/// (they differ only by namespace): (name, rule, canonical spec text).
pub(super) struct NetworkPolicies {
    policies: Vec<(&'static str, &'static str, String)>,
}

impl NetworkPolicies {
    pub(super) fn new(isolation: &Isolation) -> NetworkPolicies {
        let mut policies = vec![
            (
                "tenantry-default-deny",
                "tenant pods accept and open no connection unless another policy allows it",
                json!({ "podSelector": {}, "policyTypes": ["Ingress", "Egress"] }),
            ),
            (
                "tenantry-allow-same-namespace",
                "a tenant's pods talk to each other within the namespace",
                json!({
                    "podSelector": {},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{ "from": [{ "podSelector": {} }] }],
                    "egress": [{ "to": [{ "podSelector": {} }] }],
                }),
            ),
            (
                "tenantry-allow-dns",
                "tenant pods resolve names through the cluster DNS",
                json!({
                    "podSelector": {},
                    "policyTypes": ["Egress"],
                    "egress": [{
                        "to": [{
                            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } },
                            "podSelector": { "matchLabels": { "k8s-app": "kube-dns" } },
                        }],
                        "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
                    }],
                }),
            ),
            (
                "tenantry-allow-ingress-controller",
                "the ingress controller reaches tenant pods",
                json!({
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": [{ "from": [{ "namespaceSelector": { "matchLabels": {
                        "kubernetes.io/metadata.name": isolation.ingress_namespace,
                    } } }] }],
                }),
            ),
        ];
        if !isolation.egress_cidrs.is_empty() {
            let blocks: Vec<Value> =
                isolation.egress_cidrs.iter().map(|c| json!({ "ipBlock": { "cidr": c } })).collect();
            policies.push((
                "tenantry-allow-egress",
                "tenant pods reach the address ranges platform.isolation_options.egress_cidrs names",
                json!({ "podSelector": {}, "policyTypes": ["Egress"], "egress": [{ "to": blocks }] }),
            ));
        }
        NetworkPolicies {
            policies: policies.into_iter().map(|(n, r, spec)| (n, r, Content::canonical_text(&spec))).collect(),
        }
    }

    /// Push the policies of `namespace` (after the namespace itself).
    pub(super) fn push(&self, out: &mut Out, namespace: &str, owner: &Owner, platform: &str, at: Span) {
        let namespace_id = ResourceId::global(Domain::Kubernetes, kind::NAMESPACE, namespace);
        for (name, rule, spec) in &self.policies {
            let id = ResourceId::new(Domain::Kubernetes, kind::NETWORK_POLICY, namespace, name);
            let content = Content::object(600, |o| {
                o.str("apiVersion", NETWORK_API).str("kind", kind::NETWORK_POLICY);
                o.object("metadata", |m| {
                    m.raw("labels", &Content::canonical_text(&labels(owner, platform)))
                        .str("name", name)
                        .str("namespace", namespace);
                });
                o.raw("spec", spec);
            });
            out.push_content(Item::new(id, owner, at, rule).after(namespace_id.clone()), content);
        }
    }
}

/// The platform-wide admission policies and their bindings.
pub(super) fn admission_policies(roster: &Roster, out: &mut Out) {
    let isolation = &roster.platform.isolation;
    let platform = roster.platform.name.as_str();
    let at = isolation.span;
    let tenant_namespaces = json!({ "matchLabels": {
        ISOLATION_LABEL: "standard",
        LABELS.managed_by: crate::marks::MANAGED_BY_VALUE,
        LABELS.platform: platform,
    } });
    let suffix = if platform == crate::marks::DEFAULT_PLATFORM { String::new() } else { format!("-{platform}") };

    // What Pod Security baseline lets through.
    let every_container = |condition: &str| {
        format!(
            "object.spec.containers.all(c, {condition}) && \
             (!has(object.spec.initContainers) || object.spec.initContainers.all(c, {condition})) && \
             (!has(object.spec.ephemeralContainers) || object.spec.ephemeralContainers.all(c, {condition}))"
        )
    };
    let pod_non_root = "(has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot == true)";
    let pod_root_uid = "(has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser) && object.spec.securityContext.runAsUser == 0)";
    let pods = vec![
        (
            every_container(
                "!has(c.securityContext) || !has(c.securityContext.capabilities) || !has(c.securityContext.capabilities.add) || size(c.securityContext.capabilities.add) == 0",
            ),
            "containers in tenant namespaces may not add Linux capabilities: remove securityContext.capabilities.add",
        ),
        (
            every_container(
                "has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation) && c.securityContext.allowPrivilegeEscalation == false",
            ),
            "set securityContext.allowPrivilegeEscalation: false on every container",
        ),
        (
            every_container(&format!(
                "(has(c.securityContext) && has(c.securityContext.runAsNonRoot) ? c.securityContext.runAsNonRoot == true : {pod_non_root}) && \
                 (has(c.securityContext) && has(c.securityContext.runAsUser) ? c.securityContext.runAsUser != 0 : !{pod_root_uid})"
            )),
            "containers in tenant namespaces may not run as root: set securityContext.runAsNonRoot: true (and a non-zero runAsUser)",
        ),
    ];
    policy(
        out,
        &format!("tenantry-pod-restrictions{suffix}"),
        platform,
        at,
        json!([{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["pods"] }]),
        None,
        &pods,
        &tenant_namespaces,
        "tenant pods cannot add capabilities, escalate privileges or run as root",
    );

    let mut services = Vec::new();
    if !isolation.allow_node_ports {
        services.push((
            "object.spec.type != 'NodePort'".to_string(),
            "NodePort Services are not allowed in tenant namespaces: use type ClusterIP and an Ingress",
        ));
    }
    if !isolation.allow_load_balancers {
        services.push((
            "object.spec.type != 'LoadBalancer'".to_string(),
            "LoadBalancer Services are not allowed in tenant namespaces: use type ClusterIP and an Ingress",
        ));
    }
    if !services.is_empty() {
        policy(
            out,
            &format!("tenantry-service-restrictions{suffix}"),
            platform,
            at,
            json!([{ "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["services"] }]),
            None,
            &services,
            &tenant_namespaces,
            "tenants expose services through the ingress, not node ports or load balancers",
        );
    }

    // What tenantry placed in a tenant namespace stays as placed.
    let mut users: Vec<String> = TRUSTED_USERS.iter().map(|u| (*u).to_string()).collect();
    users.extend(isolation.trusted_users.iter().cloned());
    users.extend(roster.users.values().filter(|u| u.tier.value == Tier::Admin).map(|u| u.email.value.clone()));
    users.sort();
    users.dedup();
    let mut groups: Vec<String> = TRUSTED_GROUPS.iter().map(|g| (*g).to_string()).collect();
    groups.extend(isolation.trusted_groups.iter().cloned());
    groups.sort();
    groups.dedup();
    let trusted = format!(
        "request.userInfo.username in {} || (has(request.userInfo.groups) && request.userInfo.groups.exists(g, g in {}))",
        cel_list(&users),
        cel_list(&groups)
    );
    policy(
        out,
        &format!("tenantry-protect-placed-objects{suffix}"),
        platform,
        at,
        // Namespaced only: the namespace selector never skips cluster-scoped
        // objects, and tenants cannot touch those through RBAC anyway.
        json!([{ "apiGroups": ["*"], "apiVersions": ["*"], "operations": ["UPDATE", "DELETE"], "resources": ["*"], "scope": "Namespaced" }]),
        Some(
            json!({ "matchLabels": { LABELS.managed_by: crate::marks::MANAGED_BY_VALUE, LABELS.platform: platform } }),
        ),
        &[(
            trusted,
            "this object was placed by the platform (tenantry): it cannot be changed or deleted from a tenant's account; ask a platform admin",
        )],
        &tenant_namespaces,
        "tenants cannot change or delete the quota, limits, bindings and network policies tenantry placed",
    );
}

/// A CEL list literal of strings (quotes and backslashes escaped).
fn cel_list(items: &[String]) -> String {
    let quoted: Vec<String> =
        items.iter().map(|i| format!("'{}'", i.replace('\\', "\\\\").replace('\'', "\\'"))).collect();
    format!("[{}]", quoted.join(", "))
}

#[allow(clippy::too_many_arguments)]
fn policy(
    out: &mut Out,
    name: &str,
    platform: &str,
    at: Span,
    resource_rules: Value,
    object_selector: Option<Value>,
    validations: &[(String, &str)],
    namespaces: &Value,
    rule: &'static str,
) {
    let owner = Owner::Platform;
    // The server's defaults spelled out, so what it stores is what is derived.
    let mut resource_rules = resource_rules;
    for rule in resource_rules.as_array_mut().into_iter().flatten() {
        if let Some(fields) = rule.as_object_mut() {
            fields.entry("scope").or_insert_with(|| json!("*"));
        }
    }
    let constraints = json!({
        "matchPolicy": "Equivalent",
        "namespaceSelector": {},
        "objectSelector": object_selector.unwrap_or_else(|| json!({})),
        "resourceRules": resource_rules,
    });
    let validations: Vec<Value> = validations
        .iter()
        .map(|(expression, message)| json!({ "expression": expression, "message": message }))
        .collect();
    let policy_id = ResourceId::global(Domain::Kubernetes, kind::VALIDATING_ADMISSION_POLICY, name);
    out.push(
        Item::new(policy_id.clone(), &owner, at, rule),
        &json!({
            "apiVersion": ADMISSION_API,
            "kind": kind::VALIDATING_ADMISSION_POLICY,
            "metadata": { "name": name, "labels": labels(&owner, platform) },
            "spec": { "failurePolicy": "Fail", "matchConstraints": constraints, "validations": validations },
        }),
    );
    out.push(
        Item::new(ResourceId::global(Domain::Kubernetes, kind::VALIDATING_ADMISSION_POLICY_BINDING, name), &owner, at, rule)
            .after(policy_id),
        &json!({
            "apiVersion": ADMISSION_API,
            "kind": kind::VALIDATING_ADMISSION_POLICY_BINDING,
            "metadata": { "name": name, "labels": labels(&owner, platform) },
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": { "matchPolicy": "Equivalent", "namespaceSelector": namespaces, "objectSelector": {} },
            },
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_security_follows_the_clusters_minor_version() {
        assert_eq!(pod_security_version(Some("v1.37.2")), "v1.37");
        assert_eq!(pod_security_version(Some("1.30")), "v1.30");
        assert_eq!(pod_security_version(Some("garbage")), "latest");
        assert_eq!(pod_security_version(None), "latest");
    }

    #[test]
    fn cel_strings_are_quoted() {
        assert_eq!(cel_list(&["a'b".to_string(), "c\\d".to_string()]), r"['a\'b', 'c\\d']");
    }
}
