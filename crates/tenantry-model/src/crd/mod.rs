//! The roster as custom resources (SPEC §2.3): `tenants.tenantry.dev` (one
//! user per object, the object's name is the user's key) and
//! `platforms.tenantry.dev` (the singleton `platform` holding the roster's
//! `platform:` block).
//!
//! Their OpenAPI v3 schemas are converted from the same types that produce
//! `tenantry schema` (the raw roster types): a field added to the roster
//! appears in the CRDs with it. The conversion makes the JSON Schema
//! *structural* as the apiserver requires (references inlined, `null`
//! alternatives become `nullable`, documented enums become `enum`, numbers
//! or strings become `x-kubernetes-int-or-string`), and adds what the
//! apiserver can check by itself: DNS-label patterns, set semantics for
//! lists and CEL rules. tenantry validates every object again when it
//! assembles the roster (the cross-object rules only it can check).

mod assemble;
mod convert;

pub use assemble::{Assembled, TenantObject, assemble, held_back_warnings};
pub use convert::{objects_to_roster, objects_yaml, roster_file_to_objects, roster_to_objects, roster_yaml};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The API group of tenantry's custom resources.
pub const GROUP: &str = "tenantry.dev";
/// Their one served version.
pub const VERSION: &str = "v1alpha1";
/// `tenantry.dev/v1alpha1`.
pub const API_VERSION: &str = "tenantry.dev/v1alpha1";
/// The name `tenantry import --to-crds` gives the `Platform` object.
pub const PLATFORM_OBJECT: &str = "platform";
/// Held by every `Tenant` until its departure is recorded.
pub const FINALIZER: &str = "tenantry.dev/departure";
/// An annotation (`"true"`) that makes the apiserver refuse to delete a `Tenant`.
pub const PREVENT_DELETION: &str = "tenantry.dev/prevent-deletion";
/// The field manager of tenantry's writes (server-side apply).
pub const FIELD_MANAGER: &str = "tenantry";

/// A DNS-1123 label, as the roster requires of keys and namespaces.
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// The status tenantry writes on a `Tenant` (kstatus conventions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What each target did for this user in the last pass, by target name.
    #[serde(default)]
    pub targets: std::collections::BTreeMap<String, TargetSummary>,
}

/// One condition in the Kubernetes convention.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase word for machines (`Converged`, `NamespaceClaimedTwice`).
    pub reason: String,
    pub message: String,
    /// RFC 3339 time the status last changed.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One target's part in a user's convergence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetSummary {
    /// Changes applied by the last pass that changed something of this user
    /// (a pass with nothing to do keeps the count, so the status stays put).
    pub applied: u32,
    /// Changes withheld by policy (revocations are never automatic).
    pub withheld: u32,
    /// Objects in the way (another owner, data that differs).
    pub conflicts: u32,
    /// The last failure, if the last pass had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Both definitions: `Tenant`, then `Platform`.
pub fn definitions() -> Vec<Value> {
    let roster = crate::json_schema();
    let defs = roster.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let user = structural(defs.get("User").unwrap_or(&Value::Null), &defs);
    let platform = structural(defs.get("Platform").unwrap_or(&Value::Null), &defs);
    let status = schemars::schema_for!(TenantStatus).to_value();
    let status_defs = status.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let status = structural(&status, &status_defs);
    vec![tenant_definition(user, status), platform_definition(platform)]
}

/// The admission policy that refuses to delete a `Tenant` annotated
/// `tenantry.dev/prevent-deletion: "true"`, and its binding.
pub fn prevent_deletion_policy() -> Vec<Value> {
    let name = "tenantry-prevent-deletion";
    let labels = json!({ "app.kubernetes.io/managed-by": "tenantry" });
    vec![
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": { "name": name, "labels": labels },
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": { "resourceRules": [{
                    "apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["DELETE"], "resources": ["tenants"],
                }] },
                "validations": [{
                    "expression": format!(
                        "!has(oldObject.metadata.annotations) || !('{PREVENT_DELETION}' in oldObject.metadata.annotations) || oldObject.metadata.annotations['{PREVENT_DELETION}'] != 'true'"
                    ),
                    "messageExpression": format!(
                        "'Tenant ' + oldObject.metadata.name + ' is annotated {PREVENT_DELETION}: remove the annotation first (deleting a Tenant offboards the user)'"
                    ),
                    "reason": "Forbidden",
                }],
            },
        }),
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": { "name": name, "labels": labels },
            "spec": { "policyName": name, "validationActions": ["Deny"] },
        }),
    ]
}

/// Both definitions and the deletion guard as one multi-document YAML
/// stream (`tenantry crds`, `deploy/crds.yaml`), for `kubectl apply -f -`.
pub fn definitions_yaml() -> String {
    let mut out = String::from("# Generated by `tenantry crds` from the roster's types; do not edit.\n");
    for definition in definitions().into_iter().chain(prevent_deletion_policy()) {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&definition).unwrap_or_default());
    }
    out
}

fn tenant_definition(mut spec: Value, mut status: Value) -> Value {
    if let Some(properties) = spec.get_mut("properties").and_then(Value::as_object_mut) {
        if let Some(namespaces) = properties.get_mut("namespaces") {
            namespaces["maxItems"] = json!(128);
            namespaces["x-kubernetes-list-type"] = json!("set");
            namespaces["items"]["maxLength"] = json!(63);
            namespaces["items"]["pattern"] = json!(DNS_LABEL);
            namespaces["x-kubernetes-validations"] = json!([{
                "rule": "self.all(n, n != 'default' && !n.startsWith('kube-'))",
                "message": "`default` and `kube-*` namespaces belong to the platform; choose another name",
            }]);
        }
        for set in ["domains", "groups"] {
            if let Some(list) = properties.get_mut(set) {
                list["x-kubernetes-list-type"] = json!("set");
            }
        }
        if let Some(email) = properties.get_mut("email") {
            email["maxLength"] = json!(254);
            email["pattern"] = json!(r"^[^@\s]+@[^@\s]+\.[^@\s]+$");
        }
        if let Some(repos) = properties.get_mut("workstation").and_then(|w| w.pointer_mut("/properties/repos")) {
            repos["x-kubernetes-list-type"] = json!("set");
        }
    }
    spec["x-kubernetes-validations"] = json!([
        {
            "rule": "self.tier != 'namespace-owner' || (has(self.namespaces) && size(self.namespaces) > 0)",
            "message": "a namespace-owner needs `namespaces`: list the namespaces this user owns",
        },
        {
            "rule": "self.tier == 'namespace-owner' || !has(self.namespaces) || size(self.namespaces) == 0",
            "message": "only a namespace-owner has `namespaces`: remove them or set tier: namespace-owner",
        },
    ]);
    if let Some(object) = status.as_object_mut() {
        object.remove("title");
    }
    if let Some(conditions) = status.pointer_mut("/properties/conditions") {
        conditions["x-kubernetes-list-type"] = json!("map");
        conditions["x-kubernetes-list-map-keys"] = json!(["type"]);
    }
    let schema = json!({
        "type": "object",
        "description": "One user of the platform: the object's name is the user's key in the roster.",
        "required": ["spec"],
        "properties": {
            "apiVersion": { "type": "string" },
            "kind": { "type": "string" },
            "metadata": { "type": "object" },
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [{
            "rule": "size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "message": "a Tenant's name is the user's key: a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
        }],
    });
    definition(
        "Tenant",
        "tenants",
        &["tn"],
        schema,
        json!([
            { "name": "Tier", "type": "string", "jsonPath": ".spec.tier" },
            { "name": "Namespaces", "type": "string", "jsonPath": ".spec.namespaces" },
            { "name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status" },
            { "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp" },
        ]),
        true,
    )
}

fn platform_definition(spec: Value) -> Value {
    let schema = json!({
        "type": "object",
        "description": "The roster's `platform:` block: one per roster (`kubernetes://tenants?selector=` picks a roster's objects by label).",
        "properties": {
            "apiVersion": { "type": "string" },
            "kind": { "type": "string" },
            "metadata": { "type": "object" },
            "spec": spec,
        },
    });
    definition(
        "Platform",
        "platforms",
        &[],
        schema,
        json!([
            { "name": "Domain", "type": "string", "jsonPath": ".spec.domain" },
            { "name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp" },
        ]),
        false,
    )
}

fn definition(kind: &str, plural: &str, short: &[&str], schema: Value, columns: Value, status: bool) -> Value {
    let mut version = json!({
        "name": VERSION,
        "served": true,
        "storage": true,
        "schema": { "openAPIV3Schema": schema },
        "additionalPrinterColumns": columns,
    });
    if status {
        version["subresources"] = json!({ "status": {} });
    }
    let mut names = json!({
        "kind": kind,
        "listKind": format!("{kind}List"),
        "plural": plural,
        "singular": kind.to_lowercase(),
        "categories": ["tenantry"],
    });
    if !short.is_empty() {
        names["shortNames"] = json!(short);
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{plural}.{GROUP}"),
            "labels": { "app.kubernetes.io/managed-by": "tenantry" },
        },
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": names,
            "versions": [version],
        },
    })
}

/// A JSON Schema node made structural (see the module documentation).
fn structural(schema: &Value, defs: &Map<String, Value>) -> Value {
    structural_at(schema, defs, 0)
}

fn structural_at(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Some(object) = schema.as_object() else { return json!({}) };
    if depth > 32 {
        return json!({ "x-kubernetes-preserve-unknown-fields": true });
    }
    if let Some(target) = object.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or_default();
        let mut resolved = structural_at(defs.get(name).unwrap_or(&Value::Null), defs, depth + 1);
        if let (Some(description), Some(out)) = (object.get("description"), resolved.as_object_mut()) {
            out.insert("description".into(), description.clone());
        }
        return resolved;
    }
    // `Option<T>`: anyOf [T, null] → T, nullable.
    if let Some(alternatives) = object.get("anyOf").and_then(Value::as_array) {
        let present: Vec<&Value> = alternatives.iter().filter(|a| a.get("type") != Some(&json!("null"))).collect();
        if present.len() == 1 {
            let mut inner = structural_at(present[0], defs, depth + 1);
            if let Some(out) = inner.as_object_mut() {
                out.insert("nullable".into(), json!(true));
                if let Some(description) = object.get("description") {
                    out.insert("description".into(), description.clone());
                }
            }
            return inner;
        }
    }
    let mut out = Map::new();
    // Documented enum variants: oneOf [{const, description}] → enum.
    if let Some(variants) = object.get("oneOf").and_then(Value::as_array)
        && variants.iter().all(|v| v.get("const").is_some())
    {
        out.insert("type".into(), json!("string"));
        out.insert("enum".into(), variants.iter().filter_map(|v| v.get("const").cloned()).collect());
    }
    for (key, value) in object {
        match key.as_str() {
            "type" => match value {
                Value::Array(types) => {
                    let present: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if present.len() < types.len() {
                        out.insert("nullable".into(), json!(true));
                    }
                    if present.len() == 1 {
                        out.insert("type".into(), present[0].clone());
                    } else {
                        // A quantity: a string or a number.
                        out.insert("x-kubernetes-int-or-string".into(), json!(true));
                    }
                }
                other => {
                    out.insert("type".into(), other.clone());
                }
            },
            "properties" => {
                let properties: Map<String, Value> = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, field)| (name.clone(), structural_at(field, defs, depth + 1)))
                    .collect();
                out.insert("properties".into(), Value::Object(properties));
            }
            "items" | "additionalProperties" if value.is_object() => {
                out.insert(key.clone(), structural_at(value, defs, depth + 1));
            }
            // Free-form values (an app's `values`): kept as written, checked by tenantry.
            "additionalProperties" if value == &json!(true) => {
                out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            }
            "format" => {
                if matches!(value.as_str(), Some("int32" | "int64")) {
                    out.insert("format".into(), value.clone());
                }
            }
            "description" | "required" | "enum" | "minimum" | "maximum" | "minItems" | "maxItems" | "minLength"
            | "maxLength" | "pattern" => {
                out.insert(key.clone(), value.clone());
            }
            // Unknown fields are pruned by the apiserver and refused by
            // `kubectl` (strict field validation); `default`, `$schema`,
            // `title` and `oneOf` have no structural form or are handled above.
            _ => {}
        }
    }
    // Neither a type nor a way to have none (a name or `{ name, values }`,
    // any JSON value): the apiserver requires one of the two; tenantry's
    // own validation decides what the value may be.
    if !out.contains_key("type") && !out.contains_key("x-kubernetes-int-or-string") {
        out.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_key(value: &Value, key: &str) -> bool {
        match value {
            Value::Object(map) => map.contains_key(key) || map.values().any(|v| has_key(v, key)),
            Value::Array(items) => items.iter().any(|v| has_key(v, key)),
            _ => false,
        }
    }

    #[test]
    fn the_tenant_spec_has_the_roster_users_fields_and_no_unstructural_keywords() {
        let definitions = definitions();
        let tenant = &definitions[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let spec = &tenant["properties"]["spec"];
        let roster = crate::json_schema();
        let user_fields: Vec<&String> = roster["$defs"]["User"]["properties"].as_object().unwrap().keys().collect();
        let spec_fields: Vec<&String> = spec["properties"].as_object().unwrap().keys().collect();
        assert_eq!(spec_fields, user_fields, "a Tenant's spec is a roster user");
        assert_eq!(spec["properties"]["tier"]["enum"], json!(["admin", "power-user", "namespace-owner"]));
        assert_eq!(spec["properties"]["quota"]["additionalProperties"]["x-kubernetes-int-or-string"], true);
        for keyword in ["$ref", "anyOf", "oneOf", "$defs", "default", "const"] {
            assert!(!has_key(&definitions[0], keyword), "Tenant has {keyword}");
            assert!(!has_key(&definitions[1], keyword), "Platform has {keyword}");
        }
    }

    #[test]
    fn the_yaml_reads_back_as_the_definitions() {
        let yaml = definitions_yaml();
        let documents: Vec<&str> = yaml.split("\n---\n").skip(1).collect();
        assert_eq!(documents.len(), 4);
        for (text, definition) in documents.iter().zip(definitions().into_iter().chain(prevent_deletion_policy())) {
            let read: Value = serde_saphyr::from_str(text).unwrap();
            assert_eq!(read, definition);
        }
    }

    #[test]
    fn the_deployed_definitions_are_the_generated_ones() {
        let shipped = include_str!("../../../../deploy/crds.yaml");
        assert!(
            shipped == definitions_yaml(),
            "deploy/crds.yaml is stale: regenerate it with `tenantry crds > deploy/crds.yaml`"
        );
    }
}
