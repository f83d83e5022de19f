//! The last reconcile, as admins see it: when, the result, each target,
//! and the changes that matter — drift (what apply acts on), withheld
//! removals, departing users — plus, per resource, the action the plan had
//! for it (the tenant page's "in place / pending / failed").
//!
//! It is read from the documented JSON forms (`docs/OUTPUT.md`): `apply
//! --output json` (what `serve` keeps of each pass) or `plan --output json`
//! (the standalone portal plans without applying). Contents (`before`,
//! `after`) are never read, so nothing sensitive can reach a page.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

/// At most this many rows per list are kept; the counts stay exact.
pub const LIST_CAP: usize = 500;

/// What the last reconcile saw and did.
#[derive(Debug, Clone, Default)]
pub struct LastReconcile {
    /// When it finished.
    pub at: Option<SystemTime>,
    /// What ran: `serve pass`, `plan (not applied)`, …
    pub what: String,
    /// The run number in the state database, when something was applied.
    pub run: Option<i64>,
    /// `None` when only planned.
    pub success: Option<bool>,
    pub targets: Vec<TargetRow>,
    /// Resources by action (no-ops included).
    pub totals: BTreeMap<String, u64>,
    pub drift: Rows<ChangeRow>,
    pub withheld: Rows<ChangeRow>,
    pub departing: Rows<DepartingRow>,
    pub failures: Rows<FailureRow>,
    pub problems: Vec<ProblemRow>,
    /// Resource id → (action, failed error).
    actions: HashMap<String, (String, Option<String>)>,
}

/// A capped list with its full count.
#[derive(Debug, Clone)]
pub struct Rows<T> {
    pub rows: Vec<T>,
    pub total: usize,
}

impl<T> Default for Rows<T> {
    fn default() -> Self {
        Rows { rows: Vec::new(), total: 0 }
    }
}

impl<T> Rows<T> {
    fn push(&mut self, row: T) {
        self.total += 1;
        if self.rows.len() < LIST_CAP {
            self.rows.push(row);
        }
    }

    pub fn more(&self) -> usize {
        self.total - self.rows.len()
    }
}

/// One target's state in the last reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRow {
    pub name: String,
    /// `reached`, `down`, `held`.
    pub state: String,
    /// Why it is down, or empty.
    pub detail: String,
    /// Changes of this target apply acted on, and how many of them failed.
    pub changes: usize,
    pub failures: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    pub owner: String,
    pub id: String,
    pub target: String,
    pub action: String,
    pub reason: String,
}

impl ChangeRow {
    /// The reason in parts, each command-line flag (`--allow-revoke`) apart
    /// so the page keeps it on one line: `(text, is_flag)`.
    pub fn reason_parts(&self) -> Vec<(String, bool)> {
        let mut parts: Vec<(String, bool)> = Vec::new();
        for (i, word) in self.reason.split(' ').enumerate() {
            let flag = word.starts_with("--") && word.len() > 2;
            let text = if i == 0 { word.to_string() } else { format!(" {word}") };
            match parts.last_mut() {
                Some((last, false)) if !flag => last.push_str(&text),
                _ if flag => {
                    if i > 0 {
                        parts.push((" ".to_string(), false));
                    }
                    parts.push((word.to_string(), true));
                }
                _ => parts.push((text, false)),
            }
        }
        parts
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepartingRow {
    pub owner: String,
    pub resources: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRow {
    pub owner: String,
    pub id: String,
    pub target: String,
    pub error: String,
    pub skipped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemRow {
    pub message: String,
    pub help: String,
    pub blocking: bool,
}

/// What the last reconcile said about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceState {
    /// Nothing is known (no reconcile yet).
    Unknown,
    /// Observed as wanted, or applied without error.
    InPlace,
    /// Planned, not applied yet (standalone plan, or held back by a problem).
    Pending(String),
    /// Applying it failed (or it was skipped because something it needs failed).
    Failed(String),
    /// Another owner's object holds its place.
    Conflict(String),
}

/// Actions `apply` performs (a conflict is "performed" by failing).
const APPLIED: &[&str] = &["create", "update", "adopt", "cut", "delete", "conflict"];

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn owner_label(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) => s.clone(),
        Some(object @ Value::Object(_)) => {
            object.get("user").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| "(platform)".to_string())
        }
        _ => "(platform)".to_string(),
    }
}

impl LastReconcile {
    /// From `apply --output json` or `plan --output json`. `targets`:
    /// each target's state as the caller knows it (serve's pass outcome);
    /// empty: the report's target list, each reached.
    pub fn from_report(
        report: &Value,
        at: Option<SystemTime>,
        what: impl Into<String>,
        targets: Vec<TargetRow>,
    ) -> LastReconcile {
        let applied = report.get("plan").is_some();
        let plan = report.get("plan").unwrap_or(report);
        let mut this = LastReconcile {
            at,
            what: what.into(),
            run: report.get("run").and_then(Value::as_i64),
            success: applied.then(|| report.get("success").and_then(Value::as_bool).unwrap_or(false)),
            ..LastReconcile::default()
        };
        if let Some(totals) = plan.get("totals").and_then(Value::as_object) {
            this.totals = totals.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or_default())).collect();
        }
        let mut failed: HashMap<String, (String, bool)> = HashMap::new();
        for failure in report.get("failures").and_then(Value::as_array).into_iter().flatten() {
            let row = FailureRow {
                owner: owner_label(failure.get("owner")),
                id: text(failure, "id"),
                target: text(failure, "target"),
                error: text(failure, "error"),
                skipped: failure.get("skipped").and_then(Value::as_bool).unwrap_or(false),
            };
            failed.insert(row.id.clone(), (row.error.clone(), row.skipped));
            this.failures.push(row);
        }
        let blocked = plan
            .get("problems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| ProblemRow {
                message: text(p, "message"),
                help: text(p, "help"),
                blocking: p.get("blocking").and_then(Value::as_bool).unwrap_or(false),
            })
            .fold(false, |blocked, problem| {
                let blocking = problem.blocking;
                this.problems.push(problem);
                blocked || blocking
            });
        let mut per_target: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for owner in plan.get("owners").and_then(Value::as_array).into_iter().flatten() {
            let name = text(owner, "owner");
            if owner.get("departing").and_then(Value::as_bool).unwrap_or(false) {
                let resources =
                    owner.get("counts").and_then(Value::as_object).map(|c| c.values().filter_map(Value::as_u64).sum());
                this.departing.push(DepartingRow { owner: name.clone(), resources: resources.unwrap_or_default() });
            }
            for change in owner.get("changes").and_then(Value::as_array).into_iter().flatten() {
                let row = ChangeRow {
                    owner: name.clone(),
                    id: text(change, "id"),
                    target: text(change, "target"),
                    action: text(change, "action"),
                    reason: text(change, "reason"),
                };
                let error = failed.get(&row.id).map(|(error, _)| error.clone());
                if APPLIED.contains(&row.action.as_str()) {
                    let counts = per_target.entry(row.target.clone()).or_default();
                    counts.0 += 1;
                    counts.1 += usize::from(error.is_some());
                }
                this.actions.insert(row.id.clone(), (row.action.clone(), error));
                match row.action.as_str() {
                    "withheld" => this.withheld.push(row),
                    "departing" | "kept" => {}
                    _ => this.drift.push(row),
                }
            }
        }
        if blocked && applied {
            this.success = Some(false);
        }
        this.targets = if targets.is_empty() {
            plan.get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|name| TargetRow {
                    name: name.to_string(),
                    state: "reached".to_string(),
                    detail: String::new(),
                    changes: 0,
                    failures: 0,
                })
                .collect()
        } else {
            targets
        };
        for row in &mut this.targets {
            let (changes, failures) = per_target.get(&row.name).copied().unwrap_or_default();
            row.changes = changes;
            row.failures = failures;
        }
        // Without an apply, nothing was acted on: the plan is what is pending.
        this.actions.values_mut().for_each(|(action, _)| {
            if !applied && APPLIED.contains(&action.as_str()) {
                action.insert_str(0, "pending ");
            }
        });
        this
    }

    /// The state of one resource after this reconcile.
    pub fn state_of(&self, id: &str) -> ResourceState {
        match self.actions.get(id) {
            None => ResourceState::InPlace,
            Some((action, Some(error))) => ResourceState::Failed(format!("{action}: {error}")),
            Some((action, None)) => match action.strip_prefix("pending ") {
                Some("conflict") => ResourceState::Conflict("another owner's object is in its place".to_string()),
                Some(pending) => ResourceState::Pending(pending.to_string()),
                None if action == "conflict" => {
                    ResourceState::Conflict("another owner's object is in its place".to_string())
                }
                None if action == "withheld" || action == "departing" || action == "kept" => {
                    ResourceState::Pending(action.clone())
                }
                None if self.success == Some(false) && self.failures.total == 0 => {
                    ResourceState::Pending(format!("{action} (the plan was blocked)"))
                }
                None => ResourceState::InPlace,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan() -> Value {
        json!({
            "format_version": "1", "roster": "roster.yaml", "targets": ["kubernetes", "dns", "local"],
            "totals": { "create": 1, "update": 1, "withheld": 1, "departing": 2, "no-op": 40 },
            "owners": [
                { "owner": "alice", "departing": false, "counts": { "create": 1, "update": 1, "withheld": 1 }, "changes": [
                    { "id": "dns/CNAME/lab.test/budget.alice.lab.test", "target": "dns", "action": "create", "reason": "does not exist",
                      "before": null, "after": { "content": "tunnel" } },
                    { "id": "kubernetes/ResourceQuota/alice/user-quota", "target": "kubernetes", "action": "update", "reason": "differs",
                      "before": "(sensitive)", "after": "(sensitive)" },
                    { "id": "kubernetes/Namespace/-/old", "target": "kubernetes", "action": "withheld", "reason": "still in the roster" } ] },
                { "owner": "carol", "departing": true, "counts": { "departing": 2 }, "changes": [
                    { "id": "kubernetes/Namespace/-/carol", "target": "kubernetes", "action": "departing", "reason": "left" },
                    { "id": "vault/Policy/-/namespace-owner-carol", "target": "vault", "action": "departing", "reason": "left" } ] }
            ],
            "problems": [], "notes": []
        })
    }

    #[test]
    fn a_plan_alone_is_pending_and_lists_drift_withheld_and_departing() {
        let last = LastReconcile::from_report(&plan(), None, "plan (not applied)", Vec::new());
        assert_eq!(last.success, None);
        assert_eq!(last.drift.rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(), ["create", "update"]);
        assert_eq!(last.withheld.rows[0].id, "kubernetes/Namespace/-/old");
        assert_eq!(last.departing.rows, [DepartingRow { owner: "carol".into(), resources: 2 }]);
        assert_eq!(last.state_of("dns/CNAME/lab.test/budget.alice.lab.test"), ResourceState::Pending("create".into()));
        assert_eq!(last.state_of("kubernetes/Namespace/-/alice"), ResourceState::InPlace);
        let dns = last.targets.iter().find(|t| t.name == "dns").unwrap();
        assert_eq!((dns.changes, dns.failures), (1, 0));
    }

    #[test]
    fn an_apply_marks_what_failed_and_what_is_now_in_place() {
        let report = json!({ "format_version": "1", "run": 7, "success": false, "applied": { "alice": 1 },
            "failures": [ { "owner": { "type": "user", "user": "alice" }, "target": "kubernetes",
                            "id": "kubernetes/ResourceQuota/alice/user-quota", "action": "update", "error": "forbidden", "skipped": false } ],
            "notes": [], "plan": plan() });
        let down = vec![TargetRow {
            name: "vault".into(),
            state: "down".into(),
            detail: "connection refused".into(),
            changes: 0,
            failures: 0,
        }];
        let last = LastReconcile::from_report(&report, None, "serve pass", down);
        assert_eq!((last.run, last.success), (Some(7), Some(false)));
        assert_eq!(last.state_of("dns/CNAME/lab.test/budget.alice.lab.test"), ResourceState::InPlace);
        assert_eq!(
            last.state_of("kubernetes/ResourceQuota/alice/user-quota"),
            ResourceState::Failed("update: forbidden".into())
        );
        assert_eq!(last.failures.rows[0].owner, "alice");
        assert_eq!(last.targets[0].detail, "connection refused", "the caller's target states are kept");
    }

    #[test]
    fn long_lists_keep_their_count() {
        let changes: Vec<Value> = (0..LIST_CAP + 5)
            .map(|i| json!({ "id": format!("kubernetes/Namespace/-/n{i}"), "target": "kubernetes", "action": "create", "reason": "" }))
            .collect();
        let report = json!({ "targets": ["kubernetes"], "owners": [ { "owner": "a", "changes": changes } ] });
        let last = LastReconcile::from_report(&report, None, "plan", Vec::new());
        assert_eq!((last.drift.rows.len(), last.drift.total, last.drift.more()), (LIST_CAP, LIST_CAP + 5, 5));
    }

    #[test]
    fn flags_in_a_reason_stand_apart() {
        let row = |reason: &str| ChangeRow {
            owner: String::new(),
            id: String::new(),
            target: String::new(),
            action: String::new(),
            reason: reason.to_string(),
        };
        let parts = row("removals need --allow-revoke to go").reason_parts();
        let expected: Vec<(String, bool)> = vec![
            ("removals need".into(), false),
            (" ".into(), false),
            ("--allow-revoke".into(), true),
            (" to go".into(), false),
        ];
        assert_eq!(parts, expected);
        assert_eq!(row("does not exist").reason_parts(), vec![("does not exist".to_string(), false)]);
        assert_eq!(row("--force").reason_parts(), vec![("--force".to_string(), true)]);
        let joined: String = row("a -- b --x").reason_parts().into_iter().map(|(t, _)| t).collect();
        assert_eq!(joined, "a -- b --x", "nothing is lost");
    }
}
