//! `tenantry doctor` on the cluster: quotas near or at their limit (from
//! the ResourceQuota status the controller-manager computes), TLS copies
//! that are missing, expired or expiring, not PEM, of another key or not
//! covering the user's domains, tier and namespace bindings missing or
//! bound to someone else, and namespaces owned by someone else or
//! terminating. One GET per desired object checked.

use crate::kinds::{self, KindInfo};
use crate::{KubernetesTarget, map_error, tls};
use kube::api::DynamicObject;
use serde_json::Value;
use tenantry_core::doctor::{CheckInfo, DiagnoseRequest, Diagnosis, Finding, QUOTA_WARNING, quota_ratio};
use tenantry_core::marks::{LABELS, Mark};
use tenantry_core::target::Result;
use tenantry_core::{Owner, Resource, kind};

pub const QUOTA: &str = "quota";
pub const TLS: &str = "tls";
pub const RBAC: &str = "rbac";
pub const NAMESPACE: &str = "namespace";

/// The checks of the cluster target.
pub const CHECKS: &[CheckInfo] = &[
    CheckInfo { name: QUOTA, about: "ResourceQuota usage per resource (≥ 90 % or exhausted)" },
    CheckInfo { name: TLS, about: "the TLS secret in each namespace: present, PEM, key, expiry, domains" },
    CheckInfo { name: RBAC, about: "tier ClusterRoleBindings and namespace RoleBindings: present, bound to the user" },
    CheckInfo { name: NAMESPACE, about: "namespaces: present, owned by the user, not terminating" },
];

fn apply_fix(owner: &Owner) -> String {
    match owner {
        Owner::User(user) => format!("tenantry apply --only {user}"),
        Owner::Platform => "tenantry apply".to_string(),
    }
}

pub async fn diagnose(target: &KubernetesTarget, request: &DiagnoseRequest) -> Result<Diagnosis> {
    let mut diagnosis = Diagnosis::default();
    for check in CHECKS {
        diagnosis.ran(check.name);
    }
    for resource in &request.desired {
        let check = match &*resource.id.kind {
            kind::NAMESPACE => NAMESPACE,
            kind::RESOURCE_QUOTA => QUOTA,
            kind::ROLE_BINDING | kind::CLUSTER_ROLE_BINDING => RBAC,
            kind::SECRET if resource.content.to_value().get("copyFrom").is_some() => TLS,
            _ => continue,
        };
        let Some(info) = kinds::info(&resource.id.kind) else { continue };
        let Some(object) = get(target, info, resource).await? else {
            diagnosis.found(
                Finding::problem(
                    check,
                    resource.owner.clone(),
                    format!("{} `{}` does not exist", resource.id.kind, resource.id.name),
                    apply_fix(&resource.owner),
                )
                .about(&resource.id)
                .evidence(format!("GET {} {} → 404", info.plural, object_name(resource))),
            );
            continue;
        };
        let value = serde_json::to_value(&object).unwrap_or_default();
        let found = match check {
            NAMESPACE => namespace(resource, &value, &request.platform),
            QUOTA => quota(resource, &value),
            RBAC => binding(resource, &value),
            _ => tls_copy(resource, &value, request.now),
        };
        for finding in found {
            diagnosis.found(finding.about(&resource.id));
        }
    }
    Ok(diagnosis)
}

fn object_name(resource: &Resource) -> String {
    if resource.id.is_global() {
        resource.id.name.to_string()
    } else {
        format!("{} -n {}", resource.id.name, resource.id.scope)
    }
}

async fn get(target: &KubernetesTarget, info: &KindInfo, resource: &Resource) -> Result<Option<DynamicObject>> {
    let namespace = (!resource.id.is_global()).then_some(&*resource.id.scope);
    target.api(info, namespace).get_opt(&resource.id.name).await.map_err(|e| map_error(&resource.id.to_string(), e))
}

fn labels(value: &Value) -> serde_json::Map<String, Value> {
    value["metadata"]["labels"].as_object().cloned().unwrap_or_default()
}

fn namespace(resource: &Resource, value: &Value, platform: &str) -> Vec<Finding> {
    let name = &resource.id.name;
    let mut found = Vec::new();
    let marks = labels(value);
    let holder = match LABELS.read(&marks, platform) {
        Mark::Ours(owner) | Mark::Legacy(owner) if owner != resource.owner => Some(format!("`{owner}`")),
        Mark::Foreign { platform } => Some(format!("platform `{platform}`")),
        _ => None,
    };
    if let Some(holder) = holder {
        found.push(
            Finding::problem(
                NAMESPACE,
                resource.owner.clone(),
                format!("namespace `{name}` belongs to {holder}, not `{}`", resource.owner),
                format!(
                    "give `{}` another namespace name in the roster, or move `{name}` off {holder} in the roster it comes from, then `tenantry apply`",
                    resource.owner
                ),
            )
            .evidence(format!(
                "labels {}={}, {}={}",
                LABELS.user,
                marks.get(LABELS.user).and_then(Value::as_str).unwrap_or("(none)"),
                LABELS.platform,
                marks.get(LABELS.platform).and_then(Value::as_str).unwrap_or("(none)")
            )),
        );
    }
    if value["status"]["phase"].as_str() == Some("Terminating") || !value["metadata"]["deletionTimestamp"].is_null() {
        let finalizers = value["spec"]["finalizers"].as_array().map(Vec::len).unwrap_or(0);
        found.push(
            Finding::problem(
                NAMESPACE,
                resource.owner.clone(),
                format!("namespace `{name}` is terminating: nothing new can be created in it"),
                format!(
                    "wait for the deletion to finish (`kubectl get namespace {name} -o jsonpath='{{.status.conditions}}'` names what blocks it), then `{}` re-creates it",
                    apply_fix(&resource.owner)
                ),
            )
            .evidence(format!(
                "deletionTimestamp {}, {finalizers} finalizer(s) left",
                value["metadata"]["deletionTimestamp"].as_str().unwrap_or("?")
            )),
        );
    }
    found
}

fn quota(resource: &Resource, value: &Value) -> Vec<Finding> {
    let (namespace, name) = (&resource.id.scope, &resource.id.name);
    let hard = value["status"]["hard"].as_object().cloned().unwrap_or_default();
    let used = &value["status"]["used"];
    let mut found = Vec::new();
    for (key, limit) in &hard {
        // A quota counts itself: `resourcequotas: 1` (isolation's bound, so
        // tenants add none) is always 1/1 and says nothing about the tenant.
        if key == "resourcequotas" {
            continue;
        }
        let (Some(limit), Some(usage)) = (limit.as_str(), used[key].as_str()) else { continue };
        let Some(ratio) = quota_ratio(usage, limit) else { continue };
        if ratio < QUOTA_WARNING {
            continue;
        }
        let percent = (ratio * 100.0).round();
        let user = resource.owner.as_label();
        let fix = format!(
            "free some in `{namespace}` (`kubectl describe resourcequota {name} -n {namespace}`), or raise it in the roster (`users.{user}.quota.{key}`), then `tenantry apply --only {user}`"
        );
        let evidence = format!("{key}: {usage} used of {limit} ({percent} %)");
        let finding = if ratio >= 1.0 {
            Finding::problem(
                QUOTA,
                resource.owner.clone(),
                format!("quota `{key}` in `{namespace}` is exhausted: new objects are refused"),
                fix,
            )
        } else {
            Finding::warning(
                QUOTA,
                resource.owner.clone(),
                format!("quota `{key}` in `{namespace}` is nearly used up"),
                fix,
            )
        };
        found.push(finding.evidence(evidence));
    }
    found
}

fn subjects(value: &Value) -> Vec<String> {
    value["subjects"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|s| format!("{} {}", s["kind"].as_str().unwrap_or("?"), s["name"].as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default()
}

fn binding(resource: &Resource, value: &Value) -> Vec<Finding> {
    let wanted = resource.content.to_value();
    let (want_subjects, have_subjects) = (subjects(&wanted), subjects(value));
    let (want_role, have_role) = (wanted["roleRef"]["name"].as_str(), value["roleRef"]["name"].as_str());
    if want_subjects == have_subjects && want_role == have_role {
        return Vec::new();
    }
    let kind = &resource.id.kind;
    let name = &resource.id.name;
    let delete = if resource.id.is_global() {
        format!("kubectl delete clusterrolebinding {name}")
    } else {
        format!("kubectl delete rolebinding {name} -n {}", resource.id.scope)
    };
    let cause = if want_role != have_role {
        format!("{kind} `{name}` grants another role")
    } else {
        format!("{kind} `{name}` is bound to another subject")
    };
    vec![
        Finding::problem(
            RBAC,
            resource.owner.clone(),
            cause,
            // roleRef cannot change in place: the binding must be re-created.
            format!("{delete}; then {}", apply_fix(&resource.owner)),
        )
        .evidence(format!(
            "bound: {} → {}",
            have_role.unwrap_or("(no role)"),
            if have_subjects.is_empty() { "(no subjects)".to_string() } else { have_subjects.join(", ") }
        ))
        .evidence(format!("wanted: {} → {}", want_role.unwrap_or("?"), want_subjects.join(", "))),
    ]
}

fn tls_copy(resource: &Resource, value: &Value, now: std::time::SystemTime) -> Vec<Finding> {
    let wanted = resource.content.to_value();
    let domains = tls::domains(&wanted["metadata"]["annotations"]);
    let source = wanted["copyFrom"]["namespace"]
        .as_str()
        .zip(wanted["copyFrom"]["name"].as_str())
        .map(|(ns, name)| format!("{ns}/{name}"))
        .unwrap_or_else(|| "?".to_string());
    let copy = format!("{}/{}", resource.id.scope, resource.id.name);
    let parsed = tls::parse(&value["data"]);
    match tls::check(&parsed, &domains, now) {
        Ok(report) if report.remaining < tenantry_tls::EXPIRY_WARNING => {
            let days = report.remaining.as_secs() / 86_400;
            vec![
                Finding::warning(
                    TLS,
                    resource.owner.clone(),
                    format!("the TLS secret `{copy}` expires in {days} day(s)"),
                    format!(
                        "renew the certificate in the source Secret `{source}`, then `{}` copies it",
                        apply_fix(&resource.owner)
                    ),
                )
                .evidence(format!(
                    "{} valid until {}",
                    report.subject,
                    humantime::format_rfc3339_seconds(report.not_after)
                ))
                .evidence(format!("{} s left, under {} days", report.remaining.as_secs(), EXPIRY_DAYS)),
            ]
        }
        Ok(_) => Vec::new(),
        Err(error) => vec![
            Finding::problem(TLS, resource.owner.clone(), format!("the TLS secret `{copy}` is unusable: {error}"), {
                let fix = tls::help(&error);
                format!("{fix} (source `{source}`, then `{}`)", apply_fix(&resource.owner))
            })
            .evidence(format!(
                "domains to cover: {}",
                if domains.is_empty() { "(none)".into() } else { domains.join(", ") }
            )),
        ],
    }
}

const EXPIRY_DAYS: u64 = tenantry_tls::EXPIRY_WARNING.as_secs() / 86_400;
