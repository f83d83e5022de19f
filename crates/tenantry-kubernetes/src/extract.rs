//! The fields of an object that tenantry owns, from its server-side-apply
//! managed fields (FieldsV1), in the same shape tenantry applies.
//!
//! Comparing this projection with the desired manifest shows exactly the
//! drift that matters: a field another manager took over (a hand edit) is
//! no longer ours, so it is missing here and the plan restores it.

use serde_json::{Map, Value};

/// Project `object` onto the fields `manager` applied, keeping the identity
/// (apiVersion, kind, name, namespace). An object the manager never applied
/// projects to its identity alone.
pub fn project_owned_fields(object: &Value, manager: &str) -> Value {
    let mut projected = Value::Object(Map::new());
    let entries = object["metadata"]["managedFields"].as_array().map(Vec::as_slice).unwrap_or_default();
    for entry in entries {
        if entry["manager"].as_str() == Some(manager)
            && entry["operation"].as_str() == Some("Apply")
            && let Some(fields) = entry.get("fieldsV1")
            && let Some(part) = prune(object, fields)
        {
            merge(&mut projected, part);
        }
    }
    if let Some(out) = projected.as_object_mut() {
        for key in ["apiVersion", "kind"] {
            if let Some(value) = object.get(key) {
                out.insert(key.to_string(), value.clone());
            }
        }
        let metadata = out.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if let Some(metadata) = metadata.as_object_mut() {
            for key in ["name", "namespace"] {
                if let Some(value) = object["metadata"].get(key) {
                    metadata.insert(key.to_string(), value.clone());
                }
            }
        }
    }
    projected
}

/// Keep the parts of `value` named by the FieldsV1 set `fields`.
fn prune(value: &Value, fields: &Value) -> Option<Value> {
    let fields = fields.as_object()?;
    let children: Vec<(&String, &Value)> = fields.iter().filter(|(k, _)| k.as_str() != ".").collect();
    if children.is_empty() {
        return Some(value.clone());
    }
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, sub) in children {
                if let Some(name) = key.strip_prefix("f:")
                    && let Some(child) = map.get(name)
                    && let Some(kept) = prune(child, sub)
                {
                    out.insert(name.to_string(), kept);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                for (key, sub) in &children {
                    if element_matches(item, key, items) {
                        if let Some(kept) = prune(item, sub) {
                            out.push(kept);
                        }
                        break;
                    }
                }
            }
            Some(Value::Array(out))
        }
        other => Some(other.clone()),
    }
}

/// Whether `item` is the list element a FieldsV1 key (`k:{…}`, `v:…`, `i:N`) names.
fn element_matches(item: &Value, key: &str, items: &[Value]) -> bool {
    if let Some(keys) = key.strip_prefix("k:") {
        let Ok(Value::Object(wanted)) = serde_json::from_str::<Value>(keys) else { return false };
        return wanted.iter().all(|(k, v)| item.get(k) == Some(v));
    }
    if let Some(literal) = key.strip_prefix("v:") {
        return serde_json::from_str::<Value>(literal).is_ok_and(|v| &v == item);
    }
    if let Some(index) = key.strip_prefix("i:") {
        return index.parse::<usize>().ok().and_then(|i| items.get(i)).is_some_and(|v| std::ptr::eq(v, item));
    }
    false
}

/// Merge `part` into `into` (objects key by key; anything else replaces).
fn merge(into: &mut Value, part: Value) {
    match (into, part) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                match a.get_mut(&key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        a.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_fields_the_manager_applied() {
        let object = json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {
                "name": "user-quota", "namespace": "alice", "uid": "x", "resourceVersion": "7",
                "labels": { "app.kubernetes.io/managed-by": "tenantry", "other": "kept-by-someone" },
                "managedFields": [
                    { "manager": "tenantry", "operation": "Apply", "fieldsV1": {
                        "f:metadata": { "f:labels": { "f:app.kubernetes.io/managed-by": {} } },
                        "f:spec": { "f:hard": { "f:requests.cpu": {} } } } },
                    { "manager": "kubectl-edit", "operation": "Update", "fieldsV1": {
                        "f:spec": { "f:hard": { "f:pods": {} } } } }
                ]
            },
            "spec": { "hard": { "requests.cpu": "2", "pods": "999" } },
            "status": { "used": {} }
        });
        assert_eq!(
            project_owned_fields(&object, "tenantry"),
            json!({
                "apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": { "name": "user-quota", "namespace": "alice", "labels": { "app.kubernetes.io/managed-by": "tenantry" } },
                "spec": { "hard": { "requests.cpu": "2" } }
            })
        );
    }

    #[test]
    fn associative_list_elements_are_matched_by_key() {
        let object = json!({
            "kind": "Thing", "metadata": { "name": "x", "managedFields": [
                { "manager": "tenantry", "operation": "Apply", "fieldsV1": {
                    "f:spec": { "f:ports": { "k:{\"port\":80}": { ".": {}, "f:port": {}, "f:name": {} } } } } }
            ] },
            "spec": { "ports": [ { "port": 443, "name": "tls" }, { "port": 80, "name": "web", "protocol": "TCP" } ] }
        });
        assert_eq!(project_owned_fields(&object, "tenantry")["spec"]["ports"], json!([{ "port": 80, "name": "web" }]));
    }

    #[test]
    fn an_object_never_applied_by_tenantry_is_only_its_identity() {
        let object =
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "alice", "labels": { "a": "b" } } });
        assert_eq!(
            project_owned_fields(&object, "tenantry"),
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "alice" } })
        );
    }
}
