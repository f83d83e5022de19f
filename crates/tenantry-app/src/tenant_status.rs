//! The status of each `Tenant` after a pass (kstatus conventions: `Ready`,
//! `Reconciling`, `Stalled`, `observedGeneration`, a summary per target),
//! derived from the pass report alone, and the Events its changes deserve.
//! Deriving is pure; [`Controller::publish_tenant_status`] writes them.

use crate::controller::{Controller, PassReport, TargetOutcome};
use crate::error::Result;
use crate::source::LoadedRoster;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use tenantry_model::crd::{Condition, TargetSummary, TenantStatus};

/// One `Tenant`'s new status, and the Event to record when its readiness changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantUpdate {
    pub name: String,
    pub status: TenantStatus,
    /// `(warning, reason, message)` when `Ready` changed status or reason.
    pub event: Option<(bool, String, String)>,
}

/// Actions that write (what `applied` counts when the pass applied).
const WRITES: &[&str] = &["create", "update", "adopt", "cut", "delete"];

/// The status of every `Tenant` of `loaded` (not being deleted) after
/// `report`, at `now` (RFC 3339), given each one's `previous` status.
pub fn tenant_updates(
    loaded: &LoadedRoster,
    report: &PassReport,
    previous: &BTreeMap<String, Option<TenantStatus>>,
    now: &str,
) -> Vec<TenantUpdate> {
    let Some(objects) = &loaded.objects else { return Vec::new() };
    let ran = !report.json["run"].is_null();
    let plan = &report.json["plan"];
    let blocking = plan["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["blocking"] == true)
        .and_then(|p| p["message"].as_str())
        .map(str::to_string);
    let down: Vec<(&str, &str)> = report
        .targets
        .iter()
        .filter_map(|(name, outcome)| match outcome {
            TargetOutcome::Down(error) => Some((name.as_str(), error.as_str())),
            _ => None,
        })
        .collect();
    let mut updates = Vec::new();
    for tenant in objects.tenants.iter().filter(|t| !t.deleting) {
        let mut targets: BTreeMap<String, TargetSummary> = report
            .targets
            .iter()
            .filter(|(_, outcome)| *outcome != TargetOutcome::Held)
            .map(|(name, _)| (name.clone(), TargetSummary::default()))
            .collect();
        let (kind, reason, message) = if let Some(diagnostics) = loaded.held_back.get(&tenant.name) {
            let message: Vec<String> = diagnostics.iter().map(|d| format!("{}: {}", d.location(), d.message)).collect();
            let code = diagnostics.first().map_or("held-back", |d| d.code);
            (Readiness::Stalled, camel(code), message.join("; "))
        } else {
            let failures = summarize(&tenant.name, plan, &report.json["failures"], ran, &mut targets);
            // A pass that applied nothing of this user keeps the last counts.
            if targets.values().all(|t| t.applied == 0)
                && let Some(before) = previous.get(&tenant.name).and_then(Option::as_ref)
            {
                for (name, summary) in targets.iter_mut() {
                    summary.applied = before.targets.get(name).map_or(0, |t| t.applied);
                }
            }
            for (name, error) in &down {
                if let Some(summary) = targets.get_mut(*name) {
                    summary.last_error = Some(error.to_string());
                }
            }
            if let Some(problem) = &blocking {
                (Readiness::Stalled, "PlanBlocked".to_string(), problem.clone())
            } else if let Some((target, error)) = failures.first() {
                (Readiness::Stalled, "ApplyFailed".to_string(), format!("{target}: {error}"))
            } else if let Some((target, error)) = down.first() {
                (Readiness::Reconciling, "TargetUnavailable".to_string(), format!("{target}: {error}"))
            } else {
                let withheld: u32 = targets.values().map(|t| t.withheld).sum();
                let mut message = "converged on every target".to_string();
                if withheld > 0 {
                    message
                        .push_str(&format!(", {withheld} withheld (revoking needs `tenantry apply --allow-revoke`)"));
                }
                (Readiness::Ready, "Converged".to_string(), message)
            }
        };
        let before = previous.get(&tenant.name).and_then(Option::as_ref);
        let conditions = kind
            .conditions(&reason, &message)
            .into_iter()
            .map(|(kind, status, reason, message)| {
                let since = before
                    .and_then(|p| p.conditions.iter().find(|c| c.kind == kind))
                    .filter(|c| c.status == status)
                    .map_or_else(|| now.to_string(), |c| c.last_transition_time.clone());
                Condition {
                    kind: kind.to_string(),
                    status: status.to_string(),
                    reason,
                    message,
                    last_transition_time: since,
                    observed_generation: Some(tenant.generation),
                }
            })
            .collect::<Vec<_>>();
        let ready = |status: Option<&TenantStatus>| {
            status
                .and_then(|s| s.conditions.iter().find(|c| c.kind == "Ready"))
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        };
        let status = TenantStatus { observed_generation: Some(tenant.generation), conditions, targets };
        let event = (ready(before) != ready(Some(&status))).then(|| (kind != Readiness::Ready, reason, message));
        updates.push(TenantUpdate { name: tenant.name.clone(), status, event });
    }
    updates
}

/// What this process last wrote on `Tenant`s (kept by the [`Controller`]).
#[derive(Debug, Default)]
pub(crate) struct TenantsWritten {
    statuses: BTreeMap<String, tenantry_model::crd::TenantStatus>,
    finalized: BTreeSet<String>,
}

impl Controller {
    /// After a pass over every target: write each `Tenant`'s status (server-side
    /// apply on the status subresource, `concurrency` at a time, only those
    /// that changed) and an Event for each readiness that changed. `None` when
    /// the roster is not `kubernetes://tenants`.
    pub async fn publish_tenant_status(
        &self,
        loaded: &LoadedRoster,
        report: &PassReport,
        concurrency: usize,
    ) -> Result<Option<tenantry_kubernetes::tenants::StatusWrites>> {
        let Some(objects) = &loaded.objects else { return Ok(None) };
        let mut written = self.tenants_written.lock().await;
        let previous: BTreeMap<String, Option<tenantry_model::crd::TenantStatus>> = objects
            .tenants
            .iter()
            .map(|t| (t.name.clone(), written.statuses.get(&t.name).cloned().or_else(|| t.status.clone())))
            .collect();
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let updates = tenant_updates(loaded, report, &previous, &now);
        let client = self.config.kube_client().await?;
        let statuses = updates.iter().map(|u| (u.name.clone(), u.status.clone())).collect();
        let writes = tenantry_kubernetes::tenants::write_statuses(&client, statuses, &previous, concurrency).await;
        for update in &updates {
            if !writes.failed.contains_key(&update.name) {
                written.statuses.insert(update.name.clone(), update.status.clone());
            }
        }
        let events = updates.iter().filter_map(|update| {
            let (warning, reason, message) = update.event.as_ref()?;
            let tenant = objects.tenants.iter().find(|t| t.name == update.name)?;
            Some(async {
                if let Err(error) =
                    tenantry_kubernetes::tenants::record_event(&client, tenant, *warning, reason, message).await
                {
                    tracing::warn!(tenant = %tenant.name, %error, "cannot record an Event");
                }
            })
        });
        futures::StreamExt::collect::<Vec<()>>(futures::StreamExt::buffer_unordered(
            futures::stream::iter(events),
            concurrency.max(1),
        ))
        .await;
        // Deletion is departure: the finalizer holds each `Tenant` until a
        // pass has taken its user out of the roster without a failure (the
        // reversible cut done, with `offboard = "reversible"`).
        let hold: Vec<String> = objects
            .tenants
            .iter()
            .filter(|t| !t.deleting && !t.finalizer && !written.finalized.contains(&t.name))
            .map(|t| t.name.clone())
            .collect();
        let release: Vec<String> = objects
            .tenants
            .iter()
            .filter(|t| t.deleting && t.finalizer && departed(report, &t.name))
            .map(|t| t.name.clone())
            .collect();
        for (names, holding) in [(hold, true), (release, false)] {
            if names.is_empty() {
                continue;
            }
            if !holding {
                tracing::info!(tenants = ?names, "departure recorded: releasing the Tenants");
            }
            let failed =
                tenantry_kubernetes::tenants::set_finalizers(&client, names.clone(), holding, concurrency).await;
            for (tenant, error) in &failed {
                tracing::warn!(%tenant, %error, "cannot set the Tenant's finalizer");
            }
            for name in names.into_iter().filter(|name| !failed.contains_key(name)) {
                match holding {
                    true => written.finalized.insert(name),
                    false => written.finalized.remove(&name),
                };
            }
        }
        // Forget objects that are gone.
        written.statuses.retain(|name, _| previous.contains_key(name));
        written.finalized.retain(|name| previous.contains_key(name));
        Ok(Some(writes))
    }
}

/// Whether `user` left the roster in `report` without a failure: the pass
/// was not blocked and none of the user's changes (the cut) failed.
pub fn departed(report: &PassReport, user: &str) -> bool {
    let failed = report.json["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["owner"]["user"].as_str() == Some(user) || f["owner"].as_str() == Some(user));
    !report.blocked && !failed
}

/// The user's changes and failures in the pass, counted per target; the failures (target, error).
fn summarize(
    user: &str,
    plan: &Value,
    failures: &Value,
    ran: bool,
    targets: &mut BTreeMap<String, TargetSummary>,
) -> Vec<(String, String)> {
    let mine = |owner: &Value| owner["user"].as_str() == Some(user) || owner.as_str() == Some(user);
    let failed: Vec<(String, String, String)> = failures
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| mine(&f["owner"]))
        .map(|f| {
            let text = |key: &str| f[key].as_str().unwrap_or_default().to_string();
            (text("target"), text("id"), text("error"))
        })
        .collect();
    let owners = plan["owners"].as_array().into_iter().flatten().filter(|o| o["owner"].as_str() == Some(user));
    for change in owners.flat_map(|o| o["changes"].as_array().into_iter().flatten()) {
        let target = change["target"].as_str().unwrap_or_default();
        let Some(summary) = targets.get_mut(target) else { continue };
        let action = change["action"].as_str().unwrap_or_default();
        let id = change["id"].as_str().unwrap_or_default();
        match action {
            "withheld" => summary.withheld += 1,
            "conflict" => summary.conflicts += 1,
            _ if ran && WRITES.contains(&action) && !failed.iter().any(|(_, failed_id, _)| failed_id == id) => {
                summary.applied += 1;
            }
            _ => {}
        }
    }
    for (target, _, error) in &failed {
        if let Some(summary) = targets.get_mut(target) {
            summary.last_error = Some(error.clone());
        }
    }
    failed.into_iter().map(|(target, _, error)| (target, error)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readiness {
    Ready,
    Reconciling,
    Stalled,
}

impl Readiness {
    /// `(type, status, reason, message)` of the three conditions.
    fn conditions(self, reason: &str, message: &str) -> [(&'static str, &'static str, String, String); 3] {
        let quiet = |reason: &str| (reason.to_string(), String::new());
        let said = || (reason.to_string(), message.to_string());
        let (ready, reconciling, stalled) = match self {
            Readiness::Ready => (("True", said()), ("False", quiet("Converged")), ("False", quiet("Converged"))),
            Readiness::Reconciling => (("False", said()), ("True", said()), ("False", quiet("Progressing"))),
            Readiness::Stalled => (("False", said()), ("False", quiet("Stalled")), ("True", said())),
        };
        [
            ("Ready", ready.0, ready.1.0, ready.1.1),
            ("Reconciling", reconciling.0, reconciling.1.0, reconciling.1.1),
            ("Stalled", stalled.0, stalled.1.0, stalled.1.1),
        ]
    }
}

/// `namespace-claimed-twice` → `NamespaceClaimedTwice` (a condition reason).
fn camel(code: &str) -> String {
    code.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeSet;
    use tenantry_kubernetes::tenants::{RosterObjects, TenantRecord};

    fn loaded(objects: RosterObjects) -> LoadedRoster {
        crate::source::assemble_objects("kubernetes://tenants", objects, &Default::default()).unwrap()
    }

    fn record(name: &str, generation: i64, spec: Value) -> TenantRecord {
        TenantRecord {
            name: name.into(),
            uid: format!("uid-{name}"),
            generation,
            spec,
            deleting: false,
            finalizer: true,
            status: None,
        }
    }

    fn report(json: Value, targets: Vec<(String, TargetOutcome)>) -> PassReport {
        PassReport { json, targets, applied: BTreeMap::new(), withheld: 0, departing: BTreeSet::new(), blocked: false }
    }

    fn condition<'a>(status: &'a TenantStatus, kind: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.kind == kind).unwrap()
    }

    #[test]
    fn statuses_follow_the_pass_per_user() {
        let objects = RosterObjects {
            platform: None,
            tenants: vec![
                record(
                    "alice",
                    3,
                    json!({ "email": "alice@example.org", "tier": "namespace-owner", "namespaces": ["a"] }),
                ),
                record("bob", 1, json!({ "email": "bob@example.org", "tier": "namespace-owner", "namespaces": ["a"] })),
                record("carol", 2, json!({ "email": "carol@example.org", "tier": "power-user" })),
                record("dave", 5, json!({ "email": "dave@example.org", "tier": "power-user" })),
            ],
        };
        let loaded = loaded(objects);
        assert_eq!(loaded.held_back.keys().collect::<Vec<_>>(), ["alice", "bob"]);
        let json = json!({
            "run": 7,
            "failures": [{ "owner": { "type": "user", "user": "dave" }, "target": "kubernetes", "id": "kubernetes/ClusterRoleBinding/-/dave", "error": "forbidden" }],
            "plan": { "problems": [], "owners": [
                { "owner": "carol", "changes": [
                    { "id": "kubernetes/ClusterRoleBinding/-/carol", "target": "kubernetes", "action": "create" },
                    { "id": "kubernetes/RoleBinding/x/carol", "target": "kubernetes", "action": "withheld" } ] },
                { "owner": "dave", "changes": [
                    { "id": "kubernetes/ClusterRoleBinding/-/dave", "target": "kubernetes", "action": "create" } ] } ] },
        });
        let targets = vec![("kubernetes".to_string(), TargetOutcome::Reached { failures: 1 })];
        let updates = tenant_updates(&loaded, &report(json, targets), &BTreeMap::new(), "2026-12-01T10:00:00Z");
        let by_name: BTreeMap<&str, &TenantUpdate> = updates.iter().map(|u| (u.name.as_str(), u)).collect();

        let alice = &by_name["alice"].status;
        assert_eq!(condition(alice, "Ready").status, "False");
        assert_eq!(condition(alice, "Stalled").reason, "NamespaceClaimedTwice");
        assert!(condition(alice, "Stalled").message.contains("tenant/bob"));
        assert_eq!(alice.observed_generation, Some(3));

        let carol = &by_name["carol"].status;
        assert_eq!(condition(carol, "Ready").status, "True");
        assert_eq!(
            carol.targets["kubernetes"],
            TargetSummary { applied: 1, withheld: 1, conflicts: 0, last_error: None }
        );
        assert_eq!(condition(carol, "Ready").observed_generation, Some(2));
        assert_eq!(by_name["carol"].event.as_ref().unwrap().1, "Converged");

        let dave = &by_name["dave"].status;
        assert_eq!(condition(dave, "Stalled").status, "True");
        assert_eq!(condition(dave, "Stalled").reason, "ApplyFailed");
        assert_eq!(dave.targets["kubernetes"].applied, 0);
        assert_eq!(dave.targets["kubernetes"].last_error.as_deref(), Some("forbidden"));
        assert!(by_name["dave"].event.as_ref().unwrap().0, "a failure is a warning");
    }

    #[test]
    fn an_unchanged_readiness_keeps_its_transition_time_and_records_no_event() {
        let objects = RosterObjects {
            platform: None,
            tenants: vec![record("carol", 2, json!({ "email": "carol@example.org", "tier": "power-user" }))],
        };
        let targets = || vec![("kubernetes".to_string(), TargetOutcome::Reached { failures: 0 })];
        let applying = json!({ "run": 3, "failures": [], "plan": { "owners": [{ "owner": "carol", "changes": [
            { "id": "kubernetes/ClusterRoleBinding/-/carol", "target": "kubernetes", "action": "create" }] }] } });
        let first = tenant_updates(
            &loaded(objects.clone()),
            &report(applying, targets()),
            &BTreeMap::new(),
            "2026-12-01T10:00:00Z",
        );
        assert_eq!(first[0].status.targets["kubernetes"].applied, 1);
        // The next pass has nothing to do: the status stays as it is.
        let pass = || report(json!({ "run": null, "failures": [], "plan": { "owners": [] } }), targets());
        let previous = BTreeMap::from([("carol".to_string(), Some(first[0].status.clone()))]);
        let again = tenant_updates(&loaded(objects), &pass(), &previous, "2026-12-01T11:00:00Z");
        assert_eq!(again[0].status, first[0].status, "nothing to write");
        assert_eq!(again[0].event, None);
        assert_eq!(condition(&again[0].status, "Ready").last_transition_time, "2026-12-01T10:00:00Z");
    }

    #[test]
    fn codes_become_reasons() {
        assert_eq!(camel("namespace-claimed-twice"), "NamespaceClaimedTwice");
        assert_eq!(camel("duplicate-email"), "DuplicateEmail");
    }
}
