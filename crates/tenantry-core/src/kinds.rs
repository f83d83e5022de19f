//! Every kind of resource tenantry manages, and the lifecycle rules of each,
//! in one table: apply order, what taking it away means, what the reversible
//! cut does to it, and whether it holds user data.
//!
//! Derivation, diff, the engine and the targets all read these rules here;
//! kind names are named constants, never spelled again elsewhere.

use crate::content::Content;
use crate::id::{Domain, ResourceId};
use serde::Serialize;
use serde_json::{Map, Value};

/// Kind names, as they appear in resource ids.
pub mod kind {
    // kubernetes
    pub const NAMESPACE: &str = "Namespace";
    pub const SERVICE_ACCOUNT: &str = "ServiceAccount";
    pub const SECRET: &str = "Secret";
    pub const CONFIG_MAP: &str = "ConfigMap";
    pub const RESOURCE_QUOTA: &str = "ResourceQuota";
    pub const LIMIT_RANGE: &str = "LimitRange";
    pub const ROLE: &str = "Role";
    pub const ROLE_BINDING: &str = "RoleBinding";
    pub const CLUSTER_ROLE: &str = "ClusterRole";
    pub const CLUSTER_ROLE_BINDING: &str = "ClusterRoleBinding";
    pub const CERTIFICATE: &str = "Certificate";
    pub const NETWORK_POLICY: &str = "NetworkPolicy";
    // kubernetes, app instances only (SPEC §11.5)
    pub const DEPLOYMENT: &str = "Deployment";
    pub const STATEFUL_SET: &str = "StatefulSet";
    pub const SERVICE: &str = "Service";
    pub const INGRESS: &str = "Ingress";
    pub const PERSISTENT_VOLUME_CLAIM: &str = "PersistentVolumeClaim";
    pub const VALIDATING_ADMISSION_POLICY: &str = "ValidatingAdmissionPolicy";
    pub const VALIDATING_ADMISSION_POLICY_BINDING: &str = "ValidatingAdmissionPolicyBinding";
    // vault
    pub const POLICY: &str = "Policy";
    pub const ENTITY: &str = "Entity";
    pub const ENTITY_ALIAS: &str = "EntityAlias";
    pub const KUBERNETES_ROLE: &str = "KubernetesRole";
    // dns (the record type is the kind)
    pub const CNAME: &str = "CNAME";
    pub const A: &str = "A";
    // ci, forge, portal
    pub const CI_ADMIN: &str = "Admin";
    pub const COLLABORATOR: &str = "Collaborator";
    pub const TEAM_MEMBER: &str = "TeamMember";
    pub const BRANCH_PROTECTION: &str = "BranchProtection";
    pub const PUSH_WHITELIST_ENTRY: &str = "PushWhitelistEntry";
    pub const ACCESS_TOKEN: &str = "AccessToken";
    pub const USER_VIEW: &str = "UserView";
    // host
    pub const ACCOUNT: &str = "Account";
    pub const PORT: &str = "Port";
    pub const GENERATED_FILE: &str = "GeneratedFile";
    pub const CHECKOUT: &str = "Checkout";
    pub const KUBECONFIG: &str = "Kubeconfig";
    pub const MANAGED_FILE: &str = "ManagedFile";
    pub const SYSTEM_FILE: &str = "SystemFile";
    pub const SKELETON_LINK: &str = "SkeletonLink";
    // idp
    pub const IDP_GROUP: &str = "Group";
    pub const IDP_ACCOUNT: &str = "Account";
    pub const IDP_GROUP_MEMBER: &str = "GroupMember";
    pub const CONTRIBUTE_ACCESS: &str = "ContributeAccess";

    /// Every kind name above (resource ids share one allocation per name).
    pub const ALL: &[&str] = &[
        NAMESPACE,
        SERVICE_ACCOUNT,
        SECRET,
        CONFIG_MAP,
        RESOURCE_QUOTA,
        LIMIT_RANGE,
        ROLE,
        ROLE_BINDING,
        CLUSTER_ROLE,
        CLUSTER_ROLE_BINDING,
        CERTIFICATE,
        NETWORK_POLICY,
        DEPLOYMENT,
        STATEFUL_SET,
        SERVICE,
        INGRESS,
        PERSISTENT_VOLUME_CLAIM,
        VALIDATING_ADMISSION_POLICY,
        VALIDATING_ADMISSION_POLICY_BINDING,
        POLICY,
        ENTITY,
        ENTITY_ALIAS,
        KUBERNETES_ROLE,
        CNAME,
        A,
        CI_ADMIN,
        COLLABORATOR,
        TEAM_MEMBER,
        BRANCH_PROTECTION,
        PUSH_WHITELIST_ENTRY,
        ACCESS_TOKEN,
        USER_VIEW,
        ACCOUNT,
        PORT,
        GENERATED_FILE,
        CHECKOUT,
        KUBECONFIG,
        MANAGED_FILE,
        SYSTEM_FILE,
        SKELETON_LINK,
        IDP_GROUP,
        IDP_ACCOUNT,
        IDP_GROUP_MEMBER,
        CONTRIBUTE_ACCESS,
    ];
}

/// What taking a resource away means for its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Retire {
    /// Removing it takes away access only: delete.
    Delete,
    /// It holds data (a namespace, a home, a DNS name in use): kept until the destroy stage.
    Keep,
    /// The reversible cut disables it (a locked login, a disabled entity) and keeps it.
    Disable,
}

/// The lifecycle rules of one kind.
#[derive(Debug, Clone, Copy)]
pub struct KindRule {
    pub domain: Domain,
    /// `None`: the rule for every kind of the domain not listed on its own.
    pub kind: Option<&'static str>,
    /// Apply order within a target: a resource's dependencies have a lower rank.
    pub rank: u8,
    pub retire: Retire,
    /// For kinds retired by [`Retire::Disable`]: the fields the cut sets.
    pub cut: Option<fn(&mut Map<String, Value>)>,
    /// For kinds whose content is someone's data (a Secret, a ConfigMap):
    /// the top-level fields that hold it. An existing object of this kind
    /// whose data fields differ from the roster's is never adopted over.
    pub data_fields: Option<&'static [&'static str]>,
    /// Applying it mints a secret (a forge token) that the peer shows only
    /// once: the changes depending on it receive it in the same apply, and
    /// are paired with it ([`crate::minted`]).
    pub mints_secret: bool,
}

const fn rule(domain: Domain, kind: &'static str, rank: u8, retire: Retire) -> KindRule {
    KindRule { domain, kind: Some(kind), rank, retire, cut: None, data_fields: None, mints_secret: false }
}

const fn fallback(domain: Domain, rank: u8, retire: Retire) -> KindRule {
    KindRule { domain, kind: None, rank, retire, cut: None, data_fields: None, mints_secret: false }
}

const fn data(mut rule: KindRule, fields: &'static [&'static str]) -> KindRule {
    rule.data_fields = Some(fields);
    rule
}

fn disable_entity(fields: &mut Map<String, Value>) {
    fields.insert("disabled".to_string(), Value::Bool(true));
    fields.insert("policies".to_string(), Value::Array(Vec::new()));
}

/// An app instance's workload at the reversible cut: scaled to zero, kept
/// (with its namespace) until the destroy stage backs it up.
fn scale_to_zero(fields: &mut Map<String, Value>) {
    if let Some(Value::Object(spec)) = fields.get_mut("spec") {
        spec.insert("replicas".to_string(), Value::from(0));
    }
}

fn lock_account(fields: &mut Map<String, Value>) {
    fields.insert("locked".to_string(), Value::Bool(true));
}

/// An identity-provider account is disabled by the cut only where the
/// `[idp]` target is configured to (`disable_on_cut`); the setting travels
/// in the content, so the plan shows exactly what the cut does.
fn disable_idp_account(fields: &mut Map<String, Value>) {
    if fields.get("disable_on_cut").and_then(Value::as_bool) == Some(true) {
        fields.insert("enabled".to_string(), Value::Bool(false));
    }
}

use Domain::{Ci, Dns, Forge, Host, Idp, Kubernetes, Portal, Vault};
use Retire::{Delete, Disable, Keep};

/// The table. A domain's fallback comes after its listed kinds.
pub const KINDS: &[KindRule] = &[
    rule(Kubernetes, kind::NAMESPACE, 0, Keep),
    rule(Kubernetes, kind::CLUSTER_ROLE, 0, Delete),
    rule(Kubernetes, kind::SERVICE_ACCOUNT, 1, Keep),
    // A TLS copy's data is observed as `copyFrom` (its source, when equal).
    data(rule(Kubernetes, kind::SECRET, 1, Keep), &["type", "data", "stringData", "copyFrom"]),
    data(rule(Kubernetes, kind::CONFIG_MAP, 1, Keep), &["data", "binaryData"]),
    rule(Kubernetes, kind::RESOURCE_QUOTA, 1, Keep),
    rule(Kubernetes, kind::LIMIT_RANGE, 1, Keep),
    rule(Kubernetes, kind::CERTIFICATE, 1, Keep),
    rule(Kubernetes, kind::ROLE, 1, Delete),
    // Isolation stays while a cut user's namespace exists; removed with it.
    rule(Kubernetes, kind::NETWORK_POLICY, 1, Keep),
    rule(Kubernetes, kind::VALIDATING_ADMISSION_POLICY, 0, Delete),
    rule(Kubernetes, kind::VALIDATING_ADMISSION_POLICY_BINDING, 1, Delete),
    rule(Kubernetes, kind::ROLE_BINDING, 2, Delete),
    rule(Kubernetes, kind::CLUSTER_ROLE_BINDING, 2, Delete),
    // App instances are cut and destroyed like the namespace they live in:
    // the cut scales workloads to zero and keeps everything for the destroy
    // stage's backup. Revoked from a present user (`--allow-revoke`), an
    // app's workloads and routes are deleted ([`revoked_from_present_user`]);
    // its volume claims and config maps hold data and stay.
    KindRule { cut: Some(scale_to_zero), ..rule(Kubernetes, kind::DEPLOYMENT, 1, Disable) },
    KindRule { cut: Some(scale_to_zero), ..rule(Kubernetes, kind::STATEFUL_SET, 1, Disable) },
    rule(Kubernetes, kind::SERVICE, 1, Keep),
    rule(Kubernetes, kind::INGRESS, 1, Keep),
    rule(Kubernetes, kind::PERSISTENT_VOLUME_CLAIM, 1, Keep),
    fallback(Kubernetes, 1, Delete),
    rule(Vault, kind::POLICY, 0, Keep),
    KindRule { cut: Some(disable_entity), ..rule(Vault, kind::ENTITY, 1, Disable) },
    rule(Vault, kind::ENTITY_ALIAS, 2, Keep),
    rule(Vault, kind::KUBERNETES_ROLE, 0, Keep),
    fallback(Vault, 0, Keep),
    fallback(Dns, 0, Keep),
    // SPEC §8.7: CI and the forge come after Vault (ranks 0-2) and the
    // cluster (0-2); a user's grants there depend on their entity and binding.
    rule(Ci, kind::CI_ADMIN, 3, Delete),
    fallback(Ci, 3, Delete),
    rule(Forge, kind::BRANCH_PROTECTION, 3, Delete),
    rule(Forge, kind::COLLABORATOR, 3, Delete),
    rule(Forge, kind::TEAM_MEMBER, 3, Delete),
    KindRule { mints_secret: true, ..rule(Forge, kind::ACCESS_TOKEN, 3, Delete) },
    rule(Forge, kind::PUSH_WHITELIST_ENTRY, 4, Delete),
    fallback(Forge, 3, Delete),
    fallback(Portal, 0, Delete),
    KindRule { cut: Some(lock_account), ..rule(Host, kind::ACCOUNT, 0, Disable) },
    rule(Host, kind::GENERATED_FILE, 1, Delete),
    rule(Host, kind::SKELETON_LINK, 1, Delete),
    // Settings other programs enforce (a managed policy): left in place when no longer configured.
    rule(Host, kind::SYSTEM_FILE, 1, Keep),
    // Written with the forge token minted just before it (rank 3).
    rule(Host, kind::CONTRIBUTE_ACCESS, 5, Keep),
    fallback(Host, 1, Keep),
    // A group may hold people tenantry does not manage: it is never deleted.
    rule(Idp, kind::IDP_GROUP, 0, Keep),
    KindRule { cut: Some(disable_idp_account), ..rule(Idp, kind::IDP_ACCOUNT, 0, Disable) },
    rule(Idp, kind::IDP_GROUP_MEMBER, 1, Delete),
    fallback(Idp, 1, Delete),
];

const UNKNOWN: KindRule = fallback(Host, 1, Keep);

/// The rule for a resource's kind.
pub fn rule_of(id: &ResourceId) -> &'static KindRule {
    KINDS.iter().find(|r| r.domain == id.domain && r.kind.is_none_or(|k| k == &*id.kind)).unwrap_or(&UNKNOWN)
}

/// How the reversible cut and `--allow-revoke` treat a resource of this kind.
pub fn retire_policy(id: &ResourceId) -> Retire {
    rule_of(id).retire
}

/// What `--allow-revoke` does to a resource a present user no longer has:
/// its kind's retire policy, except for grants and app objects that are
/// not data — a removed namespace's Vault deployer role, an app's
/// workloads and routes — which are deleted.
pub fn revoked_from_present_user(id: &ResourceId) -> Retire {
    match (id.domain, &*id.kind) {
        (Vault, kind::KUBERNETES_ROLE) => Delete,
        (Kubernetes, kind::DEPLOYMENT | kind::STATEFUL_SET | kind::SERVICE | kind::INGRESS) => Delete,
        _ => retire_policy(id),
    }
}

/// Apply order within a target: a resource's dependencies always have a lower rank.
pub fn kind_rank(id: &ResourceId) -> u8 {
    rule_of(id).rank
}

/// Whether `found` holds other data than `wanted`, for a kind whose content
/// is user data (never overwritten on adoption); false for other kinds.
pub fn data_differs(id: &ResourceId, found: &Content, wanted: &Content) -> bool {
    let Some(fields) = rule_of(id).data_fields else { return false };
    let (found, wanted) = (found.to_value(), wanted.to_value());
    fields.iter().any(|field| found.get(field) != wanted.get(field))
}

/// Whether applying a resource of this kind mints a secret shown only once.
pub fn mints_secret(id: &ResourceId) -> bool {
    rule_of(id).mints_secret
}

/// Whether the resource is a Kubernetes namespace (grants that span a
/// user's namespaces follow them).
pub fn is_namespace(id: &ResourceId) -> bool {
    id.domain == Kubernetes && &*id.kind == kind::NAMESPACE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_has_a_fallback_after_its_kinds() {
        for domain in Domain::ALL {
            let rules: Vec<&KindRule> = KINDS.iter().filter(|r| r.domain == domain).collect();
            assert!(rules.last().is_some_and(|r| r.kind.is_none()), "{domain} needs a fallback last");
            assert_eq!(rules.iter().filter(|r| r.kind.is_none()).count(), 1, "{domain}");
        }
    }

    #[test]
    fn disabled_kinds_say_what_the_cut_sets() {
        for rule in KINDS {
            assert_eq!(rule.retire == Retire::Disable, rule.cut.is_some(), "{:?} {:?}", rule.domain, rule.kind);
        }
    }
}
