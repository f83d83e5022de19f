//! Projection of Vault's answers onto the canonical content the derivation
//! produces (`tenantry_core::derive` vault module), and the marks that say
//! whose an object is, read through `tenantry_core::marks` as seen by one
//! platform. Pure: no I/O here.

use serde_json::{Map, Value, json};
use tenantry_core::Owner;
use tenantry_core::marks::{LABELS, METADATA, Mark};

/// A policy as `{name, policy}`, and what its managed header line says.
pub fn project_policy(name: &str, text: &str, platform: &str) -> (Value, Mark) {
    (json!({ "name": name, "policy": text }), policy_mark(text, platform))
}

/// What the managed header line of a policy says, as seen by a platform
/// (the header is defined beside the policy text, in the derivation).
pub use tenantry_core::derive::policy_mark;

/// An entity read (`identity/entity/name/<name>` data) as `{name, policies,
/// metadata, disabled}` — metadata restricted to tenantry's marks, since
/// other keys are not tenantry's to manage — and what those marks say.
pub fn project_entity(data: &Value, platform: &str) -> (Value, Mark) {
    let metadata = data["metadata"].as_object().cloned().unwrap_or_default();
    let ours: Map<String, Value> = metadata
        .iter()
        .filter(|(k, _)| [METADATA.managed_by, METADATA.user, METADATA.platform].contains(&k.as_str()))
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
    (content, METADATA.read(&metadata, platform))
}

/// Whether `mark` makes an object `owner`'s on this platform: this
/// platform's marks, or an earlier version's (no platform) for that owner.
pub fn claims(mark: &Mark, owner: &Owner) -> bool {
    matches!(mark, Mark::Ours(marked) | Mark::Legacy(marked) if marked == owner)
}

/// An alias as `{name, mount, entity}`; `entity` is the entity's name (its id
/// when the entity has no name we know).
pub fn project_alias(name: &str, mount: &str, entity: &str) -> Value {
    json!({ "name": name, "mount": mount, "entity": entity })
}

/// A kubernetes secrets-engine role read as the derived shape. Durations
/// come back as seconds and are written back as `30m`/`1h`; the role type
/// is compared case-insensitively because the engine accepts either.
/// The mark comes from the role's `extra_annotations` (see [`role_marks`]).
pub fn project_role(name: &str, data: &Value, platform: &str) -> (Value, Mark) {
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
    (content, LABELS.read(&annotations, platform))
}

/// tenantry's marks on a role, kept in its `extra_annotations`: the role
/// has no metadata of its own, and the service accounts and bindings the
/// engine mints carry them too, so a minted token is traceable to its user.
/// Annotations, not labels: the kubernetes target lists tenantry's objects
/// by label, and these short-lived objects belong to Vault's leases, not to
/// tenantry's inventory — labelled, they would show up as leftovers to prune.
pub fn role_marks(owner: &Owner, platform: &str) -> Value {
    Value::Object(LABELS.write(owner, platform))
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
