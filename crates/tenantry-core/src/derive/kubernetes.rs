//! Kubernetes: namespaces, RBAC, quotas, limits, deployer roles, TLS.

use super::{Item, MANAGED_BY_LABEL, MANAGED_BY_VALUE, Out, SHARED_LABEL, USER_LABEL, labels};
use crate::content::{Content, ObjectWriter};
use crate::id::{Domain, ResourceId};
use crate::resource::Owner;
use serde_json::{Map, Value, json};
use tenantry_model::{Roster, Tier, User};

pub const NAMESPACE_OWNER_READONLY: &str = "oidc-namespace-owner-readonly";
pub const POWER_USER_READONLY: &str = "oidc-power-user-readonly";
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

fn metadata(name: &str, namespace: Option<&str>, owner: &Owner) -> Value {
    let mut meta = json!({ "name": name, "labels": labels(owner) });
    if let (Some(ns), Some(object)) = (namespace, meta.as_object_mut()) {
        object.insert("namespace".to_string(), Value::String(ns.to_string()));
    }
    meta
}

/// `metadata` written directly: labels, name, namespace (sorted keys).
fn write_metadata(o: &mut ObjectWriter<'_>, name: &str, namespace: Option<&str>, owner: &Owner) {
    o.object("metadata", |m| {
        m.object("labels", |l| {
            l.str(MANAGED_BY_LABEL, MANAGED_BY_VALUE);
            match owner {
                Owner::User(user) => l.str(USER_LABEL, user),
                Owner::Platform => l.str(SHARED_LABEL, "true"),
            };
        })
        .str("name", name);
        if let Some(namespace) = namespace {
            m.str("namespace", namespace);
        }
    });
}

/// A namespaced object with only type and metadata (Namespace, ServiceAccount).
fn bare_object(api_version: &str, kind: &str, name: &str, namespace: Option<&str>, owner: &Owner) -> Content {
    Content::object(200, |o| {
        o.str("apiVersion", api_version).str("kind", kind);
        write_metadata(o, name, namespace, owner);
    })
}

/// A RoleBinding or ClusterRoleBinding to one subject.
fn binding(
    kind: &str,
    name: &str,
    namespace: Option<&str>,
    owner: &Owner,
    role: (&str, &str),
    subject: (&str, &str, Option<&str>),
) -> Content {
    Content::object(400, |o| {
        o.str("apiVersion", RBAC_API).str("kind", kind);
        write_metadata(o, name, namespace, owner);
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
pub(super) fn derive(roster: &Roster, part: usize, parts: usize, out: &mut Out) {
    let needs = |tier: Tier| part == 0 && roster.users.values().any(|u| u.tier.value == tier);
    if needs(Tier::NamespaceOwner) {
        cluster_role(
            out,
            NAMESPACE_OWNER_READONLY,
            namespace_owner_rules(),
            "namespace-owners see the cluster read-only",
        );
    }
    if needs(Tier::PowerUser) {
        cluster_role(
            out,
            POWER_USER_READONLY,
            power_user_rules(),
            "power-users read the whole cluster, no secrets, no exec",
        );
    }
    for user in roster.users.values().skip(part).step_by(parts.max(1)) {
        cluster_role_binding(out, user);
        if user.tier.value == Tier::NamespaceOwner {
            // The same for each of the user's namespaces: computed once.
            let limits = Content::canonical_text(&json!([limit_defaults(user)]));
            for namespace in &user.namespaces {
                namespace_resources(roster, user, namespace, &limits, out);
            }
        }
    }
}

fn cluster_role(out: &mut Out, name: &str, rules: Value, rule: &'static str) {
    let owner = Owner::Platform;
    let content = json!({
        "apiVersion": RBAC_API,
        "kind": "ClusterRole",
        "metadata": metadata(name, None, &owner),
        "rules": rules,
    });
    out.push(Item::new(id("ClusterRole", None, name), &owner, tenantry_model::Span::UNKNOWN, rule), &content);
}

/// The id of a user's ClusterRoleBinding (every tier has one).
pub(super) fn cluster_binding_id(user: &User) -> ResourceId {
    let prefix = match user.tier.value {
        Tier::Admin => "oidc-admin",
        Tier::PowerUser => "oidc-power-user-readonly",
        Tier::NamespaceOwner => "oidc-ns-owner-readonly",
    };
    id("ClusterRoleBinding", None, &format!("{prefix}-{}", user.key))
}

fn cluster_role_binding(out: &mut Out, user: &User) {
    let owner = Owner::User(user.key.clone());
    let (name, role, rule) = match user.tier.value {
        Tier::Admin => (format!("oidc-admin-{}", user.key), "cluster-admin", "admins are cluster-admin"),
        Tier::PowerUser => (
            format!("oidc-power-user-readonly-{}", user.key),
            POWER_USER_READONLY,
            "power-users read the whole cluster, no secrets, no exec",
        ),
        Tier::NamespaceOwner => (
            format!("oidc-ns-owner-readonly-{}", user.key),
            NAMESPACE_OWNER_READONLY,
            "namespace-owners see the cluster read-only",
        ),
    };
    let content =
        binding("ClusterRoleBinding", &name, None, &owner, ("ClusterRole", role), ("User", &user.email, None));
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
    out: &mut Out,
) {
    let owner = Owner::User(user.key.clone());
    let ns = namespace.value.as_str();
    let at = namespace.span;
    let ns_id = id("Namespace", None, ns);

    out.push_content(
        Item::new(ns_id.clone(), &owner, at, "each namespace of a namespace-owner"),
        bare_object("v1", "Namespace", ns, None, &owner),
    );

    let owner_binding = format!("namespace-owner-{}", user.key);
    out.push_content(
        Item::new(
            id("RoleBinding", Some(ns), &owner_binding),
            &owner,
            at,
            "namespace-owners are admin in their namespaces",
        )
        .after(ns_id.clone()),
        binding("RoleBinding", &owner_binding, Some(ns), &owner, ("ClusterRole", "admin"), ("User", &user.email, None)),
    );

    let quota_origin = user.quota.values().map(|q| q.span).find(|s| s.is_known()).unwrap_or(at);
    out.push_content(
        Item::new(
            id("ResourceQuota", Some(ns), "user-quota"),
            &owner,
            quota_origin,
            "platform default quota merged with the user's quota",
        )
        .after(ns_id.clone()),
        Content::object(400, |o| {
            o.str("apiVersion", "v1").str("kind", "ResourceQuota");
            write_metadata(o, "user-quota", Some(ns), &owner);
            o.object("spec", |spec| {
                spec.object("hard", |hard| {
                    // The quota map is a BTreeMap: already in key order.
                    for (resource, quantity) in &user.quota {
                        hard.str(resource, &quantity.value.canonical());
                    }
                });
            });
        }),
    );

    out.push_content(
        Item::new(id("LimitRange", Some(ns), "user-limits"), &owner, at, "container defaults so pods fit the quota")
            .after(ns_id.clone()),
        Content::object(400, |o| {
            o.str("apiVersion", "v1").str("kind", "LimitRange");
            write_metadata(o, "user-limits", Some(ns), &owner);
            o.object("spec", |spec| {
                spec.raw("limits", limits);
            });
        }),
    );

    let deployer = format!("{ns}-deployer");
    let role_id = id("Role", Some(ns), &deployer);
    out.push_content(
        Item::new(role_id.clone(), &owner, at, "a deployer role per namespace for CI and Vault-minted tokens")
            .after(ns_id.clone()),
        Content::object(400, |o| {
            o.str("apiVersion", RBAC_API).str("kind", "Role");
            write_metadata(o, &deployer, Some(ns), &owner);
            o.raw("rules", DEPLOYER_RULES);
        }),
    );
    let account_id = id("ServiceAccount", Some(ns), &deployer);
    out.push_content(
        Item::new(account_id.clone(), &owner, at, "the deployer's in-cluster identity").after(ns_id.clone()),
        bare_object("v1", "ServiceAccount", &deployer, Some(ns), &owner),
    );
    out.push_content(
        Item::new(
            id("RoleBinding", Some(ns), &deployer),
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
            &owner,
            ("Role", &deployer),
            ("ServiceAccount", &deployer, Some(ns)),
        ),
    );

    let tls = &roster.platform.tls;
    if let Some(source) = &tls.source {
        let mut meta = metadata(&tls.secret_name, Some(ns), &owner);
        let mut annotations = Map::new();
        annotations.insert(COPIED_FROM.to_string(), Value::String(format!("{}/{}", source.namespace, source.name)));
        // The domains the copied certificate must cover, for the target to
        // check before it copies (SPEC §3 "PEM validated"). An annotation
        // rather than a content-only field: it is applied with the copy, so
        // the target observes it back (no perpetual diff), a changed domain
        // list plans an update that re-checks the copy, and `kubectl` shows
        // what the copy is for.
        if !user.domains.is_empty() {
            let domains: Vec<&str> = user.domains.iter().map(|d| d.value.as_str()).collect();
            annotations.insert(TLS_DOMAINS.to_string(), Value::String(domains.join(",")));
        }
        if let Some(object) = meta.as_object_mut() {
            object.insert("annotations".to_string(), Value::Object(annotations));
        }
        out.push(
            Item::new(
                id("Secret", Some(ns), &tls.secret_name),
                &owner,
                tls.span,
                "the platform TLS certificate, copied into each namespace",
            )
            .after(ns_id)
            .sensitive(),
            &json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": meta,
                "copyFrom": { "namespace": source.namespace, "name": source.name },
            }),
        );
    } else if let Some(issuer) = &tls.issuer
        && !user.domains.is_empty()
    {
        let names: Vec<&str> = user.domains.iter().map(|d| d.value.as_str()).collect();
        out.push(
            Item::new(
                id("Certificate", Some(ns), &tls.secret_name),
                &owner,
                tls.span,
                "a cert-manager certificate for the user's domains",
            )
            .after(ns_id),
            &json!({
                "apiVersion": "cert-manager.io/v1",
                "kind": "Certificate",
                "metadata": metadata(&tls.secret_name, Some(ns), &owner),
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
fn limit_defaults(user: &User) -> Value {
    let mut default = json!({ "memory": "256Mi" });
    if user.quota.contains_key("limits.cpu")
        && let Some(object) = default.as_object_mut()
    {
        object.insert("cpu".to_string(), Value::String("500m".to_string()));
    }
    json!({
        "type": "Container",
        "defaultRequest": { "cpu": "100m", "memory": "128Mi" },
        "default": default,
    })
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
