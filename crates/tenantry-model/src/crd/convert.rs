//! Between a roster file and objects, without retyping (`tenantry import
//! --to-crds` and `--from-crds`): values travel as written, so a roster
//! that goes to the cluster and back reads the same.

use super::{API_VERSION, PLATFORM_OBJECT};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The `Platform` and `Tenant` objects of a roster (as parsed to JSON,
/// already validated), each with `labels`. The `Platform` is named after
/// `platform.name` (else `platform`), each `Tenant` after its user's key.
pub fn roster_to_objects(roster: &Value, labels: &BTreeMap<String, String>) -> Vec<Value> {
    let metadata = |name: &str| {
        let mut metadata = json!({ "name": name });
        if !labels.is_empty() {
            metadata["labels"] = json!(labels);
        }
        metadata
    };
    let mut objects = Vec::new();
    if let Some(platform) = roster.get("platform").filter(|p| p.as_object().is_some_and(|o| !o.is_empty())) {
        let name = platform.get("name").and_then(Value::as_str).unwrap_or(PLATFORM_OBJECT);
        objects.push(
            json!({ "apiVersion": API_VERSION, "kind": "Platform", "metadata": metadata(name), "spec": platform }),
        );
    }
    for (key, user) in roster.get("users").and_then(Value::as_object).into_iter().flatten() {
        objects.push(json!({ "apiVersion": API_VERSION, "kind": "Tenant", "metadata": metadata(key), "spec": user }));
    }
    objects
}

/// The roster (as JSON) the objects hold: the `Platform`'s spec, each `Tenant`'s spec under its name.
pub fn objects_to_roster(platform: Option<&Value>, tenants: &[(String, Value)]) -> Value {
    let users: Map<String, Value> = tenants.iter().map(|(name, spec)| (name.clone(), spec.clone())).collect();
    let mut roster = Map::new();
    if let Some(platform) = platform.filter(|p| p.as_object().is_some_and(|o| !o.is_empty())) {
        roster.insert("platform".into(), platform.clone());
    }
    roster.insert("users".into(), Value::Object(users));
    Value::Object(roster)
}

/// A roster file's objects, after validating it as a roster (`tenantry import --to-crds`).
pub fn roster_file_to_objects(
    source: &str,
    text: &str,
    labels: &BTreeMap<String, String>,
    context: &crate::ValidationContext,
) -> Result<Vec<Value>, crate::Diagnostics> {
    crate::load(source, text.as_bytes(), context)?;
    let roster: Value = serde_saphyr::from_str(text).map_err(|error| {
        crate::Diagnostic::error(source, crate::Span::UNKNOWN, "not-yaml", format!("cannot read the roster: {error}"))
    })?;
    Ok(roster_to_objects(&roster, labels))
}

/// A roster as YAML text with a header saying where it came from.
pub fn roster_yaml(roster: &Value, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str(&format!("# {line}\n"));
    }
    out.push_str(&serde_saphyr::to_string(roster).unwrap_or_default());
    out
}

/// Objects as one multi-document YAML stream.
pub fn objects_yaml(objects: &[Value]) -> String {
    let mut out = String::new();
    for object in objects {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(object).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_goes_to_objects_and_back_unchanged() {
        let text = include_str!("../../../../examples/roster.yaml");
        let roster: Value = serde_saphyr::from_str(text).unwrap();
        let labels = BTreeMap::from([("roster".to_string(), "lab".to_string())]);
        let objects = roster_to_objects(&roster, &labels);
        assert_eq!(objects[0]["kind"], "Platform");
        assert_eq!(objects[0]["metadata"]["name"], roster["platform"]["name"]);
        assert!(objects.iter().all(|o| o["metadata"]["labels"]["roster"] == "lab"));
        let platform = objects.iter().find(|o| o["kind"] == "Platform").map(|o| &o["spec"]);
        let tenants: Vec<(String, Value)> = objects
            .iter()
            .filter(|o| o["kind"] == "Tenant")
            .map(|o| (o["metadata"]["name"].as_str().unwrap().to_string(), o["spec"].clone()))
            .collect();
        assert_eq!(objects_to_roster(platform, &tenants), roster);
        let yaml = objects_yaml(&objects);
        assert_eq!(yaml.matches("---\n").count(), objects.len());
    }
}
