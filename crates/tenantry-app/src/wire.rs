//! The stable JSON forms of the reports (`docs/OUTPUT.md`): what `--output
//! json` prints and what `serve` answers. Fields are only ever added;
//! `format_version` changes otherwise.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use tenantry_core::{Change, Content, Note, Owner, Plan, ResourceId};
use tenantry_engine::{ApplyReport, DestroyPlan, DestroyReport};
use tenantry_model::{Diagnostics, Span};

pub const FORMAT_VERSION: &str = "1";
/// What a sensitive content is shown as, everywhere.
pub const SENSITIVE: &str = "(sensitive)";

/// The commands each change would run, by resource (host changes).
pub type Steps = BTreeMap<ResourceId, Vec<String>>;

fn content_json(content: Option<&Content>, sensitive: bool) -> Value {
    match content {
        None => Value::Null,
        Some(_) if sensitive => Value::String(SENSITIVE.to_string()),
        Some(content) => content.to_value(),
    }
}

/// `file:line:column` of a roster position, or null when it came from defaults.
pub fn origin_text(source: &str, span: Span) -> Value {
    if span.is_known() { Value::String(format!("{source}:{}:{}", span.line, span.column)) } else { Value::Null }
}

pub fn change_json(change: &Change, source: &str, steps: Option<&Vec<String>>) -> Value {
    let mut value = json!({
        "id": change.id.to_string(),
        "target": change.target,
        "action": change.action.as_str(),
        "reason": change.reason,
        "rule": change.rule,
        "origin": origin_text(source, change.origin),
        "before": content_json(change.before.as_ref(), change.sensitive),
        "after": content_json(change.after.as_ref(), change.sensitive),
    });
    if let (Some(steps), Some(object)) = (steps, value.as_object_mut()) {
        object.insert("steps".to_string(), json!(steps));
    }
    value
}

/// The JSON form of a plan.
pub fn plan_json(plan: &Plan, source: &str, targets: &[String], steps: &Steps, notes: &[Note]) -> Value {
    let summary = plan.summary();
    let mut changes_by_owner: BTreeMap<&Owner, Vec<Value>> = BTreeMap::new();
    for change in &plan.changes {
        changes_by_owner.entry(&change.owner).or_default().push(change_json(change, source, steps.get(&change.id)));
    }
    let owners: Vec<Value> = summary
        .iter()
        .map(|(owner, s)| {
            json!({
                "owner": owner.as_label(),
                "departing": s.departing,
                "counts": s.counts.iter().map(|(a, n)| (a.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "changes": changes_by_owner.remove(owner).unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "roster": source,
        "targets": targets,
        "has_changes": plan.has_changes(),
        "totals": plan.totals().iter().map(|(a, n)| (a.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "owners": owners,
        "unrouted": plan.unrouted.iter().map(|(d, n)| (d.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "problems": plan.problems,
        "notes": notes,
    })
}

/// The JSON form of an apply: its outcome and the plan it applied.
pub fn apply_json(report: &ApplyReport, plan: Value) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "run": report.run,
        "success": report.is_success(),
        "applied": report.applied.iter().map(|(o, n)| (o.as_label().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "failures": report.failures,
        "notes": report.notes,
        "plan": plan,
    })
}

pub fn diagnostics_json(diagnostics: &Diagnostics) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "valid": !diagnostics.has_errors(),
        "diagnostics": diagnostics.items.iter().map(|d| json!({
            "severity": d.severity,
            "code": d.code,
            "message": d.message,
            "help": d.help,
            "file": d.source,
            "line": d.span.line,
            "column": d.span.column,
            "location": d.location(),
        })).collect::<Vec<_>>(),
    })
}

pub fn destroy_json(plan: &DestroyPlan, report: &DestroyReport) -> Value {
    let targets: serde_json::Map<String, Value> = report
        .targets
        .iter()
        .map(|(target, outcome)| {
            let value = match outcome {
                Ok(done) => json!({
                    "ok": true,
                    "backups": done.backups.iter().map(|b| b.display().to_string()).collect::<Vec<_>>(),
                    "removed": done.removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "notes": done.notes,
                }),
                Err(error) => json!({ "ok": false, "error": error }),
            };
            (target.clone(), value)
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "run": report.run,
        "user": plan.user,
        "success": report.is_success(),
        "planned": plan.by_target.iter().map(|(t, ids)| (t.clone(), json!(ids.iter().map(ToString::to_string).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
        "targets": targets,
        "notes": report.notes,
    })
}
