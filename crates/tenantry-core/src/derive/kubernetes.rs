//! Kubernetes: namespaces, RBAC, quotas, limits, deployer roles, TLS.

use super::{Facts, Item, Out, SHARED_LABEL, isolation, labels};
use crate::content::{Content, ObjectWriter};
use crate::id::{Domain, ResourceId};
use crate::marks::{LABELS, MANAGED_BY_VALUE};
use crate::resource::Owner;
use serde_json::{Value, json};
use tenantry_model::{Isolation, RbacSubjects, Roster, Tier, User};

pub const NAMESPACE_OWNER_READONLY: &str = "oidc-namespace-owner-readonly";
pub const POWER_USER_READONLY: &str = "oidc-power-user-readonly";
/// Under `isolation: standard`: only the cluster-scoped reads the platform grants.
pub const NAMESPACE_OWNER_CLUSTER_READ: &str = "tenantry-namespace-owner-cluster-read";
/// Annotation of a copied TLS Secret: the `namespace/name` of its source.
pub const COPIED_FROM: &str = "tenantry.dev/copied-from";
/// Annotation of a copied TLS Secret: the owner's domains, comma-separated,
/// that the certificate must cover (absent when the owner has none).
pub const TLS_DOMAINS: &str = "tenantry.dev/tls-domains";
const RBAC_API: &str = "rbac.authorization.k8s.io/v1";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn id(kind: &str, namespace: Option<&str>, name: &str) -> ResourceId {
    ResourceId::new(Domain::Kubernetes, kind, namespace.unwrap_or(crate::id::GLOBAL_SCOPE), name)
}

/// Whose an object is: its owner, on which platform (the labels say both).
#[derive(Clone, Copy)]
struct Stamp<'a> {
    owner: &'a Owner,
    platform: &'a str,
}

fn metadata(name: &str, namespace: Option<&str>, stamp: Stamp<'_>) -> Value {
    let mut meta = json!({ "name": name, "labels": labels(stamp.owner, stamp.platform) });
    if let (Some(ns), Some(object)) = (namespace, meta.as_object_mut()) {
        object.insert("namespace".to_string(), Value::String(ns.to_string()));
    }
    meta
}

/// `metadata` written directly: labels, name, namespace (sorted keys).
fn write_metadata(o: &mut ObjectWriter<'_>, name: &str, namespace: Option<&str>, stamp: Stamp<'_>) {
    write_metadata_with(o, name, namespace, stamp, &[]);
}

/// `metadata` with `extra` labels besides the marks (any order; written sorted).
fn write_metadata_with(
    o: &mut ObjectWriter<'_>,
    name: &str,
    namespace: Option<&str>,
    stamp: Stamp<'_>,
    extra: &[(&str, &str)],
) {
    write_metadata_annotated(o, name, namespace, stamp, extra, &[]);
}

/// `metadata` with extra labels and with `annotations` (keys in order).
fn write_metadata_annotated(
    o: &mut ObjectWriter<'_>,
    name: &str,
    namespace: Option<&str>,
    stamp: Stamp<'_>,
    extra: &[(&str, &str)],
    annotations: &[(&str, &str)],
) {
    let mut all: Vec<(&str, &str)> = vec![(LABELS.managed_by, MANAGED_BY_VALUE), (LABELS.platform, stamp.platform)];
    match stamp.owner {
        Owner::User(user) => all.push((LABELS.user, user)),
        Owner::Platform => all.push((SHARED_LABEL, "true")),
    }
    all.extend_from_slice(extra);
    all.sort_unstable();
    o.object("metadata", |m| {
        if !annotations.is_empty() {
            m.object("annotations", |a| {
                for (key, value) in annotations {
                    a.str(key, value);
                }
            });
        }
        m.object("labels", |l| {
            for (key, value) in &all {
                l.str(key, value);
            }
        })
        .str("name", name);
        if let Some(namespace) = namespace {
            m.str("namespace", namespace);
        }
    });
}

/// A namespaced object with only type and metadata (Namespace, ServiceAccount).
fn bare_object(api_version: &str, kind: &str, name: &str, namespace: Option<&str>, stamp: Stamp<'_>) -> Content {
    Content::object(200, |o| {
        o.str("apiVersion", api_version).str("kind", kind);
        write_metadata(o, name, namespace, stamp);
    })
}

/// A RoleBinding or ClusterRoleBinding to one subject.
fn binding(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    stamp: Stamp<'_>,
    role: (&str, &str),
    subject: (&str, &str, Option<&str>),
) -> Content {
    Content::object(400, |o| {
        o.str("apiVersion", RBAC_API).str("kind", kind);
        write_metadata(o, name, namespace, stamp);
        o.object("roleRef", |r| {
            r.str("apiGroup", RBAC_GROUP).str("kind", role.0).str("name", role.1);
        })
        .objects("subjects", [subject], |s, (kind, name, namespace)| {
            if kind == "User" {
                s.str("apiGroup", RBAC_GROUP);
            }
            s.str("kind", kind).str("name", name);
            if let Some(namespace) = namespace {
                s.str("namespace", namespace);
            }
        });
    })
}

/// The deployer Role's rules, canonical.
const DEPLOYER_RULES: &str = r#"[{"apiGroups":["apps"],"resources":["deployments"],"verbs":["get","list","patch","update"]},{"apiGroups":[""],"resources":["pods"],"verbs":["get","list"]}]"#;

/// Derive the share `part` of `parts` of the users (by position), so the
/// largest domain can be derived on several threads; part 0 also derives the
/// shared ClusterRoles.
pub(super) fn derive(roster: &Roster, facts: &Facts, part: usize, parts: usize, out: &mut Out) {
    let needs = |tier: Tier| part == 0 && roster.users.values().any(|u| u.tier.value == tier);
    let isolation = &roster.platform.isolation;
    if needs(Tier::NamespaceOwner) {
        if let Some((name, rules, rule)) = namespace_owner_reads(isolation) {
            cluster_role(out, &roster.platform.name, name, rules, rule);
        }
        if isolation.is_standard() {
            isolation::admission_policies(roster, out);
        }
    }
    if needs(Tier::PowerUser) {
        cluster_role(
            out,
            &roster.platform.name,
            POWER_USER_READONLY,
            power_user_rules(),
            "power-users read the whole cluster, no secrets, no exec",
        );
    }
    let shared = Shared {
        pod_security: isolation
            .is_standard()
            .then(|| isolation::pod_security_version(facts.cluster_version.as_deref())),
        network: isolation.is_standard().then(|| isolation::NetworkPolicies::new(isolation)),
    };
    let per_user = roster.platform.rbac_subjects == RbacSubjects::Users;
    if !per_user && part == 0 {
        for tier in Tier::ALL {
            if roster.users.values().any(|u| u.tier.value == tier) {
                tier_binding(roster, tier, out);
            }
        }
    }
    for user in roster.users.values().skip(part).step_by(parts.max(1)) {
        if per_user {
            cluster_role_binding(out, &roster.platform.name, isolation, user);
        }
        if user.tier.value == Tier::NamespaceOwner {
            // The same for each of the user's namespaces: computed once.
            let limits = Content::canonical_text(&json!([limit_defaults(user, isolation.is_standard())]));
            for namespace in &user.namespaces {
                namespace_resources(roster, user, namespace, &limits, &shared, out);
            }
        }
    }
}

/// What every tenant namespace of a run shares, computed once per derivation.
struct Shared {
    /// Pod Security version for the namespace labels (under `standard`).
    pod_security: Option<String>,
    network: Option<isolation::NetworkPolicies>,
}

/// The ClusterRole namespace-owners read the cluster through, if any: the
/// origin's wide read (`isolation: none`), or under `standard` only the
/// cluster-scoped objects `isolation_options.cluster_reads` grants.
fn namespace_owner_reads(isolation: &Isolation) -> Option<(&'static str, Value, &'static str)> {
    if !isolation.is_standard() {
        return Some((NAMESPACE_OWNER_READONLY, namespace_owner_rules(), "namespace-owners see the cluster read-only"));
    }
    if isolation.cluster_reads.is_empty() {
        return None;
    }
    Some((
        NAMESPACE_OWNER_CLUSTER_READ,
        json!([{ "apiGroups": [""], "resources": isolation.cluster_reads, "verbs": ["get", "list", "watch"] }]),
        "namespace-owners read the cluster-scoped objects platform.isolation_options.cluster_reads names",
    ))
}

fn cluster_role(out: &mut Out, platform: &str, name: &str, rules: Value, rule: &'static str) {
    let owner = Owner::Platform;
    let stamp = Stamp { owner: &owner, platform };
    let content = json!({
        "apiVersion": RBAC_API,
        "kind": "ClusterRole",
        "metadata": metadata(name, None, stamp),
        "rules": rules,
    });
    out.push(Item::new(id("ClusterRole", None, name), &owner, tenantry_model::Span::UNKNOWN, rule), &content);
}

/// A tier's ClusterRoleBinding: name prefix (the per-user name is
/// `<prefix>-<user>`), ClusterRole, rule; `None` when the tier reads nothing
/// cluster-wide (namespace-owners under isolation without `cluster_reads`).
fn tier_role(tier: Tier, isolation: &Isolation) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match tier {
        Tier::Admin => ("oidc-admin", "cluster-admin", "admins are cluster-admin"),
        Tier::PowerUser => {
            ("oidc-power-user-readonly", POWER_USER_READONLY, "power-users read the whole cluster, no secrets, no exec")
        }
        Tier::NamespaceOwner if isolation.is_standard() => {
            let (role, _, rule) = namespace_owner_reads(isolation)?;
            ("tenantry-ns-owner-cluster-read", role, rule)
        }
        Tier::NamespaceOwner => {
            ("oidc-ns-owner-readonly", NAMESPACE_OWNER_READONLY, "namespace-owners see the cluster read-only")
        }
    })
}

/// `rbac_subjects: groups`: one binding per tier, to the tier's identity-provider groups.
fn tier_binding(roster: &Roster, tier: Tier, out: &mut Out) {
    let owner = Owner::Platform;
    let stamp = Stamp { owner: &owner, platform: &roster.platform.name };
    let Some((name, role, rule)) = tier_role(tier, &roster.platform.isolation) else { return };
    let groups: Vec<&tenantry_model::Located<String>> =
        roster.platform.idp.iter().flat_map(|idp| idp.tier_groups.get(&tier)).flatten().collect();
    let origin = groups.first().map(|g| g.span).unwrap_or(tenantry_model::Span::UNKNOWN);
    let content = Content::object(400, |o| {
        o.str("apiVersion", RBAC_API).str("kind", "ClusterRoleBinding");
        write_metadata(o, name, None, stamp);
        o.object("roleRef", |r| {
            r.str("apiGroup", RBAC_GROUP).str("kind", "ClusterRole").str("name", role);
        })
        .objects("subjects", groups.iter(), |s, group| {
            s.str("apiGroup", RBAC_GROUP).str("kind", "Group").str("name", &group.value);
        });
    });
    let mut item = Item::new(id("ClusterRoleBinding", None, name), &owner, origin, rule);
    if role != "cluster-admin" {
        item = item.after(id("ClusterRole", None, role));
    }
    out.push_content(item, content);
}

/// The id of the binding through which a user reaches the cluster: their
/// ClusterRoleBinding, or for a namespace-owner without one (isolation
/// without cluster reads, or bindings by group) the owner binding in their
/// first namespace. Later grants (CI, forge) are applied after it (SPEC §8.7).
pub(super) fn cluster_binding_id(roster: &Roster, user: &User) -> Option<ResourceId> {
    if roster.platform.rbac_subjects == RbacSubjects::Users
        && let Some((prefix, _, _)) = tier_role(user.tier.value, &roster.platform.isolation)
    {
        return Some(id("ClusterRoleBinding", None, &format!("{prefix}-{}", user.key)));
    }
    let namespace = user.namespaces.first()?;
    Some(id("RoleBinding", Some(&namespace.value), &format!("namespace-owner-{}", user.key)))
}

fn cluster_role_binding(out: &mut Out, platform: &str, isolation: &Isolation, user: &User) {
    let owner = Owner::User(user.key.clone());
    let stamp = Stamp { owner: &owner, platform };
    let Some((prefix, role, rule)) = tier_role(user.tier.value, isolation) else { return };
    let name = format!("{prefix}-{}", user.key);
    let content = binding("ClusterRoleBinding", &name, None, stamp, ("ClusterRole", role), ("User", &user.email, None));
    let mut item = Item::new(id("ClusterRoleBinding", None, &name), &owner, user.tier.span, rule);
    if role != "cluster-admin" {
        item = item.after(id("ClusterRole", None, role));
    }
    out.push_content(item, content);
}

fn namespace_resources(
    roster: &Roster,
    user: &User,
    namespace: &tenantry_model::Located<String>,
    limits: &str,
    shared: &Shared,
    out: &mut Out,
) {
    let owner = Owner::User(user.key.clone());
    let stamp = Stamp { owner: &owner, platform: &roster.platform.name };
    let ns = namespace.value.as_str();
    let at = namespace.span;
    let ns_id = id("Namespace", None, ns);
    // The namespace's objects share one allocation of its name as their scope.
    let scope: std::sync::Arc<str> = std::sync::Arc::from(ns);
    let in_namespace = |kind: &str, name: &str| ResourceId::in_scope(Domain::Kubernetes, kind, scope.clone(), name);

    out.push_content(
        Item::new(ns_id.clone(), &owner, at, "each namespace of a namespace-owner"),
        match &shared.pod_security {
            None => bare_object("v1", "Namespace", ns, None, stamp),
            Some(version) => Content::object(400, |o| {
                o.str("apiVersion", "v1").str("kind", "Namespace");
                write_metadata_with(o, ns, None, stamp, &isolation::namespace_labels(version));
            }),
        },
    );
    if let Some(network) = &shared.network {
        network.push(out, &scope, &owner, &roster.platform.name, at);
    }

    let owner_binding = format!("namespace-owner-{}", user.key);
    out.push_content(
        Item::new(
            in_namespace("RoleBinding", &owner_binding),
            &owner,
            at,
            "namespace-owners are admin in their namespaces",
        )
        .after(ns_id.clone()),
        binding("RoleBinding", &owner_binding, Some(ns), stamp, ("ClusterRole", "admin"), ("User", &user.email, None)),
    );

    let quota_origin = user.quota.values().map(|q| q.span).find(|s| s.is_known()).unwrap_or(at);
    out.push_content(
        Item::new(
            in_namespace("ResourceQuota", "user-quota"),
            &owner,
            quota_origin,
            "platform default quota merged with the user's quota",
        )
        .after(ns_id.clone()),
        Content::object(400, |o| {
            o.str("apiVersion", "v1").str("kind", "ResourceQuota");
            write_metadata(o, "user-quota", Some(ns), stamp);
            o.object("spec", |spec| {
                spec.object("hard", |hard| {
                    // The quota map is a BTreeMap: already in key order.
                    for (resource, quantity) in &user.quota {
                        hard.str(resource, quantity.value.canonical());
                    }
                });
            });
        }),
    );

    out.push_content(
        Item::new(in_namespace("LimitRange", "user-limits"), &owner, at, "container defaults so pods fit the quota")
            .after(ns_id.clone()),
        Content::object(400, |o| {
            o.str("apiVersion", "v1").str("kind", "LimitRange");
            write_metadata(o, "user-limits", Some(ns), stamp);
            o.object("spec", |spec| {
                spec.raw("limits", limits);
            });
        }),
    );

    let deployer = format!("{ns}-deployer");
    let role_id = in_namespace("Role", &deployer);
    out.push_content(
        Item::new(role_id.clone(), &owner, at, "a deployer role per namespace for CI and Vault-minted tokens")
            .after(ns_id.clone()),
        Content::object(400, |o| {
            o.str("apiVersion", RBAC_API).str("kind", "Role");
            write_metadata(o, &deployer, Some(ns), stamp);
            o.raw("rules", DEPLOYER_RULES);
        }),
    );
    let account_id = in_namespace("ServiceAccount", &deployer);
    out.push_content(
        Item::new(account_id.clone(), &owner, at, "the deployer's in-cluster identity").after(ns_id.clone()),
        bare_object("v1", "ServiceAccount", &deployer, Some(ns), stamp),
    );
    out.push_content(
        Item::new(
            in_namespace("RoleBinding", &deployer),
            &owner,
            at,
            "the deployer service account holds the deployer role",
        )
        .after(role_id)
        .after(account_id),
        binding(
            "RoleBinding",
            &deployer,
            Some(ns),
            stamp,
            ("Role", &deployer),
            ("ServiceAccount", &deployer, Some(ns)),
        ),
    );

    let tls = &roster.platform.tls;
    if let Some(source) = &tls.source {
        let copied_from = format!("{}/{}", source.namespace, source.name);
        // The domains the copied certificate must cover, for the target to
        // check before it copies (SPEC §3 "PEM validated"). An annotation
        // rather than a content-only field: it is applied with the copy, so
        // the target observes it back (no perpetual diff), a changed domain
        // list plans an update that re-checks the copy, and `kubectl` shows
        // what the copy is for.
        let domains: Vec<&str> = user.domains.iter().map(|d| d.value.as_str()).collect();
        let domains = domains.join(",");
        let mut annotations = vec![(COPIED_FROM, copied_from.as_str())];
        if !user.domains.is_empty() {
            annotations.push((TLS_DOMAINS, domains.as_str()));
        }
        out.push_content(
            Item::new(
                in_namespace("Secret", &tls.secret_name),
                &owner,
                tls.span,
                "the platform TLS certificate, copied into each namespace",
            )
            .after(ns_id)
            .sensitive(),
            Content::object(480, |o| {
                o.str("apiVersion", "v1")
                    .object("copyFrom", |c| {
                        c.str("name", &source.name).str("namespace", &source.namespace);
                    })
                    .str("kind", "Secret");
                write_metadata_annotated(o, &tls.secret_name, Some(ns), stamp, &[], &annotations);
                o.str("type", "kubernetes.io/tls");
            }),
        );
    } else if let Some(issuer) = &tls.issuer
        && !user.domains.is_empty()
    {
        let names: Vec<&str> = user.domains.iter().map(|d| d.value.as_str()).collect();
        out.push(
            Item::new(
                in_namespace("Certificate", &tls.secret_name),
                &owner,
                tls.span,
                "a cert-manager certificate for the user's domains",
            )
            .after(ns_id),
            &json!({
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": metadata(&tls.secret_name, Some(ns), stamp),
                "spec": {
                    "secretName": tls.secret_name,
                    "dnsNames": names,
                    "issuerRef": { "name": issuer.name, "kind": issuer.kind, "group": "cert-manager.io" },
                },
            }),
        );
    }
}

/// Container defaults: requests so quota'd pods schedule, a memory limit
/// (and a CPU limit when the quota limits CPU) so limit quotas admit them.
fn limit_defaults(user: &User, ephemeral: bool) -> Value {
    let mut default = json!({ "memory": "256Mi" });
    let mut request = json!({ "cpu": "100m", "memory": "128Mi" });
    if user.quota.contains_key("limits.cpu")
        && let Some(object) = default.as_object_mut()
    {
        object.insert("cpu".to_string(), Value::String("500m".to_string()));
    }
    // Under isolation the quota bounds ephemeral storage: pods without their
    // own request and limit must still be admitted.
    if ephemeral && let (Some(limit), Some(request)) = (default.as_object_mut(), request.as_object_mut()) {
        limit.insert("ephemeral-storage".to_string(), Value::String("1Gi".to_string()));
        request.insert("ephemeral-storage".to_string(), Value::String("256Mi".to_string()));
    }
    json!({ "type": "Container", "defaultRequest": request, "default": default })
}

fn namespace_owner_rules() -> Value {
    json!([
        { "apiGroups": [""], "resources": ["namespaces", "nodes", "pods", "services", "configmaps", "events"], "verbs": ["get", "list", "watch"] },
        { "apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"], "verbs": ["get", "list", "watch"] },
    ])
}

/// Wide read without secrets and without exec/attach/port-forward.
fn power_user_rules() -> Value {
    let read = ["get", "list", "watch"];
    json!([
        { "apiGroups": [""], "resources": [
            "namespaces", "nodes", "pods", "pods/log", "services", "endpoints", "configmaps", "events",
            "persistentvolumeclaims", "persistentvolumes", "replicationcontrollers", "serviceaccounts",
            "resourcequotas", "limitranges"
        ], "verbs": read },
        { "apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"], "verbs": read },
        { "apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": read },
        { "apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": read },
        { "apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": read },
        { "apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": read },
        { "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"], "verbs": read },
        { "apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read },
        { "apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": read },
    ])
}
