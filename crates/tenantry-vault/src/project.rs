//! Projection of Vault's answers onto the canonical content the derivation
//! produces (`tenantry_core::derive` vault module), and the marks that say
//! which user an object belongs to. Pure: no I/O here.

use serde_json::{Map, Value, json};
use tenantry_core::Owner;
use tenantry_core::derive::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, USER_LABEL, owner_from_labels};

/// Entity (and alias) metadata key marking tenantry's objects.
pub const MANAGED_BY_KEY: &str = "managed-by";
/// Entity (and alias) metadata key naming the user.
pub const USER_KEY: &str = "tenantry-user";
/// The first line of every policy tenantry writes starts with this, then the user key.
const POLICY_HEADER: &str = "# Managed by tenantry for user ";

/// A policy as `{name, policy}`, and its owner from the managed header line.
pub fn project_policy(name: &str, text: &str) -> (Value, Option<Owner>) {
    (json!({ "name": name, "policy": text }), policy_owner(text))
}

/// The user named in the managed header of a policy, if it has one.
pub fn policy_owner(text: &str) -> Option<Owner> {
    let rest = text.lines().next()?.strip_prefix(POLICY_HEADER)?;
    let user = rest.split(';').next()?.trim();
    (!user.is_empty()).then(|| Owner::User(user.to_string()))
}

/// An entity read (`identity/entity/name/<name>` data) as `{name, policies,
/// metadata, disabled}` — metadata restricted to tenantry's two keys, since
/// other keys are not tenantry's to manage — and its owner from that metadata.
pub fn project_entity(data: &Value) -> (Value, Option<Owner>) {
    let metadata = data["metadata"].as_object().cloned().unwrap_or_default();
    let ours: Map<String, Value> = metadata
        .iter()
        .filter(|(k, _)| *k == MANAGED_BY_KEY || *k == USER_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut policies: Vec<Value> =
        data["policies"].as_array().cloned().unwrap_or_default().into_iter().filter(|p| p != "").collect();
    policies.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    let content = json!({
        "name": data["name"],
        "policies": policies,
        "metadata": ours,
        "disabled": data["disabled"].as_bool().unwrap_or(false),
    });
    (content, metadata_owner(&metadata))
}

/// The owner an entity's or alias's metadata names, if it carries tenantry's marks.
pub fn metadata_owner(metadata: &Map<String, Value>) -> Option<Owner> {
    if metadata.get(MANAGED_BY_KEY).and_then(Value::as_str) != Some(MANAGED_BY_VALUE) {
        return None;
    }
    metadata.get(USER_KEY).and_then(Value::as_str).map(|user| Owner::User(user.to_string()))
}

/// tenantry's marks as Vault metadata (entities, alias custom metadata).
pub fn marks(owner: &Owner) -> Value {
    match owner {
        Owner::User(user) => json!({ MANAGED_BY_KEY: MANAGED_BY_VALUE, USER_KEY: user }),
        Owner::Platform => json!({ MANAGED_BY_KEY: MANAGED_BY_VALUE }),
    }
}

/// An alias as `{name, mount, entity}`; `entity` is the entity's name (its id
/// when the entity has no name we know).
pub fn project_alias(name: &str, mount: &str, entity: &str) -> Value {
    json!({ "name": name, "mount": mount, "entity": entity })
}

/// A kubernetes secrets-engine role read as the derived shape. Durations
/// come back as seconds and are written back as `30m`/`1h`; the role type
/// is compared case-insensitively because the engine accepts either.
/// The owner comes from the role's `extra_annotations` (see [`role_marks`]).
pub fn project_role(name: &str, data: &Value) -> (Value, Option<Owner>) {
    let mut namespaces: Vec<Value> = data["allowed_kubernetes_namespaces"].as_array().cloned().unwrap_or_default();
    namespaces.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    let role_type = match data["kubernetes_role_type"].as_str().unwrap_or("") {
        t if t.eq_ignore_ascii_case("role") => "Role".to_string(),
        t if t.eq_ignore_ascii_case("clusterrole") => "ClusterRole".to_string(),
        t => t.to_string(),
    };
    let content = json!({
        "name": name,
        "allowed_kubernetes_namespaces": namespaces,
        "kubernetes_role_type": role_type,
        "kubernetes_role_name": data["kubernetes_role_name"].as_str().unwrap_or(""),
        "token_default_ttl": duration(&data["token_default_ttl"]),
        "token_max_ttl": duration(&data["token_max_ttl"]),
    });
    let annotations = data["extra_annotations"].as_object().cloned().unwrap_or_default();
    (content, owner_from_labels(&annotations))
}

/// tenantry's marks on a role, kept in its `extra_annotations`: the role
/// has no metadata of its own, and the service accounts and bindings the
/// engine mints carry them too, so a minted token is traceable to its user.
/// Annotations, not labels: the kubernetes target lists tenantry's objects
/// by label, and these short-lived objects belong to Vault's leases, not to
/// tenantry's inventory — labelled, they would show up as leftovers to prune.
pub fn role_marks(owner: &Owner) -> Value {
    match owner {
        Owner::User(user) => json!({ MANAGED_BY_LABEL: MANAGED_BY_VALUE, USER_LABEL: user }),
        Owner::Platform => json!({ MANAGED_BY_LABEL: MANAGED_BY_VALUE }),
    }
}

/// Seconds as the shortest of `Nh`, `Nm`, `Ns`; text passes through.
pub fn duration(value: &Value) -> Value {
    match value.as_u64() {
        Some(0) => Value::String("0s".to_string()),
        Some(secs) if secs % 3600 == 0 => Value::String(format!("{}h", secs / 3600)),
        Some(secs) if secs % 60 == 0 => Value::String(format!("{}m", secs / 60)),
        Some(secs) => Value::String(format!("{secs}s")),
        None => value.clone(),
    }
}
