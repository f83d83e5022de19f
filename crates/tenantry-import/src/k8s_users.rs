//! The origin's `k8s_users` JSON (Vault KV `secret/platform`, field `k8s_users`).

use crate::json_positions::{KeyPositions, locate};
use crate::{Result, check_size, input_error, parse_tier};
use serde::Deserialize;
use std::collections::BTreeMap;
use tenantry_model::quantity::Quantity;
use tenantry_model::{Span, Tier};

/// The whole `k8s_users` map, users sorted by key.
#[derive(Debug, Clone)]
pub struct K8sUsers {
    /// Where it came from (a path or `vault://…`), for positions and provenance.
    pub source_name: String,
    pub users: BTreeMap<String, K8sUser>,
}

/// One `k8s_users` entry, mapped to tenantry's vocabulary, with the position of each field's key.
#[derive(Debug, Clone)]
pub struct K8sUser {
    pub key: String,
    pub span: Span,
    /// From `role` (identity mapping, see the crate docs).
    pub tier: Tier,
    pub tier_span: Span,
    pub email: String,
    pub email_span: Span,
    pub namespaces: Vec<String>,
    pub namespaces_span: Span,
    /// As written: the origin's short names (`myapp`) or full names.
    pub domains: Vec<String>,
    pub domains_span: Span,
    /// Roster quota key (`requests.cpu`…) → quantity text as written, with the origin key's position.
    pub quota: BTreeMap<String, (String, Span)>,
}

const HELP_SHAPE: &str = "k8s_users is a JSON object {\"<user>\": {\"role\": \"namespace-owner\", \"email\": \"…\", \
     \"namespaces\": [\"…\"], \"domains\": [\"…\"], \"quota\": {\"cpu_requests\": \"2\", \"memory_requests\": \"4Gi\", \
     \"memory_limits\": \"8Gi\", \"pods\": \"20\"}}}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    role: String,
    email: String,
    #[serde(default)]
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    domains: Option<Vec<String>>,
    #[serde(default)]
    quota: Option<RawQuota>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuota {
    cpu_requests: Option<QuantityValue>,
    memory_requests: Option<QuantityValue>,
    cpu_limits: Option<QuantityValue>,
    memory_limits: Option<QuantityValue>,
    pods: Option<QuantityValue>,
}

/// Terraform writes quota values as strings; hand-edited JSON sometimes has numbers.
#[derive(Deserialize)]
#[serde(untagged)]
enum QuantityValue {
    Text(String),
    Number(serde_json::Number),
}

impl QuantityValue {
    fn text(&self) -> String {
        match self {
            QuantityValue::Text(text) => text.clone(),
            QuantityValue::Number(number) => number.to_string(),
        }
    }
}

/// The origin quota field → the ResourceQuota name tenantry uses.
pub(crate) const QUOTA_FIELDS: &[(&str, &str)] = &[
    ("cpu_requests", "requests.cpu"),
    ("memory_requests", "requests.memory"),
    ("cpu_limits", "limits.cpu"),
    ("memory_limits", "limits.memory"),
    ("pods", "pods"),
];

/// Parse the `k8s_users` JSON string. `source_name` names it in errors.
///
/// Errors carry `source:line:column` and the fix: JSON syntax (from
/// serde_json), unknown or missing fields, duplicate user keys, unknown roles
/// and quota values that are not Kubernetes quantities.
pub fn parse_k8s_users(json: &str, source_name: &str) -> Result<K8sUsers> {
    check_size(json, source_name)?;
    let raw: BTreeMap<String, RawUser> = serde_json::from_str(json).map_err(|error| {
        let at = Span::new(
            u32::try_from(error.line()).unwrap_or(u32::MAX),
            u32::try_from(error.column()).unwrap_or(u32::MAX),
        );
        let (code, help) = match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ("json-syntax", "fix the JSON at this position (a missing comma, quote or brace is typical)".to_string())
            }
            _ if json.trim_start().starts_with('"') => (
                "json-double-encoded",
                "this is the JSON-encoded string itself; decode it once (e.g. `vault kv get -field=k8s_users`, or `jq -r`)"
                    .to_string(),
            ),
            _ => ("k8s-users-shape", HELP_SHAPE.to_string()),
        };
        // serde_json appends " at line L column C"; the position is printed separately.
        let message = error.to_string();
        let message = match message.rfind(" at line ") {
            Some(cut) => message[..cut].to_string(),
            None => message,
        };
        input_error(source_name, at, code, message, help)
    })?;
    let positions = locate(json);
    if let Some((path, at)) = positions.duplicates.iter().find(|(path, _)| path.len() <= 2) {
        let earlier = positions.get(&path.iter().map(String::as_str).collect::<Vec<_>>());
        return Err(input_error(
            source_name,
            *at,
            "duplicate-key",
            format!("`{}` appears twice (first at line {}, column {})", path.join("."), earlier.line, earlier.column),
            "JSON readers keep only the last one silently; merge the two entries",
        ));
    }
    let mut users = BTreeMap::new();
    for (key, raw) in raw {
        users.insert(key.clone(), convert(&key, raw, &positions, source_name)?);
    }
    Ok(K8sUsers { source_name: source_name.to_string(), users })
}

fn convert(key: &str, raw: RawUser, positions: &KeyPositions, source: &str) -> Result<K8sUser> {
    let at = |field: &str| positions.get(&[key, field]);
    let tier = parse_tier(&raw.role, source, at("role"), "role")?;
    let mut quota = BTreeMap::new();
    if let Some(raw_quota) = &raw.quota {
        let values = [
            &raw_quota.cpu_requests,
            &raw_quota.memory_requests,
            &raw_quota.cpu_limits,
            &raw_quota.memory_limits,
            &raw_quota.pods,
        ];
        for ((field, name), value) in QUOTA_FIELDS.iter().zip(values) {
            let Some(value) = value else { continue };
            let text = value.text();
            let span = positions.get(&[key, "quota", field]);
            if let Err(reason) = Quantity::parse(&text) {
                return Err(input_error(
                    source,
                    span,
                    "invalid-quantity",
                    format!("user `{key}`: quota `{field}`: {reason}"),
                    "use a Kubernetes quantity such as \"2\", \"500m\" or \"4Gi\"",
                ));
            }
            quota.insert(name.to_string(), (text, span));
        }
    }
    Ok(K8sUser {
        key: key.to_string(),
        span: positions.get(&[key]),
        tier,
        tier_span: at("role"),
        email: raw.email.trim().to_string(),
        email_span: at("email"),
        namespaces: raw.namespaces.unwrap_or_default(),
        namespaces_span: at("namespaces"),
        domains: raw.domains.unwrap_or_default(),
        domains_span: at("domains"),
        quota,
    })
}
