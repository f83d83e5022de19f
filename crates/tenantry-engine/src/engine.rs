//! Orchestration: facts from state → derive → observe → diff → apply.

use crate::clock::Clock;
use crate::state::State;
use crate::{Error, Result};
use futures::stream::{self, StreamExt};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use tenantry_core::{
    Action, Change, Desired, Facts, Inventory, ObserveRequest, ObservedByTarget, Owner, Plan, PlanProblem, Policy,
    ResourceId, RetainedRoute, Routing, Settings, Target, derive, diff,
};
use tenantry_model::{Roster, Tier};

/// A plan together with everything needed to apply it.
#[derive(Debug)]
pub struct Prepared {
    pub desired: Desired,
    pub plan: Plan,
    pub inventory: Inventory,
    pub policy: Policy,
    /// Targets whose observe failed: none of their changes are applied.
    pub unavailable: BTreeMap<String, String>,
}

/// What the destroy stage would remove for one departed user, per target.
#[derive(Debug, Clone)]
pub struct DestroyPlan {
    pub user: String,
    pub by_target: BTreeMap<String, Vec<ResourceId>>,
}

/// What the destroy stage did, per target.
#[derive(Debug, Default)]
pub struct DestroyReport {
    pub run: i64,
    pub targets: BTreeMap<String, std::result::Result<tenantry_core::Destroyed, String>>,
    /// Ports and routes forgotten: everything of the user is gone.
    pub released: bool,
}

impl DestroyReport {
    pub fn is_success(&self) -> bool {
        self.released
    }
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Changes in flight at once.
    pub concurrency: usize,
    /// The command line, for the run record.
    pub command: String,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { concurrency: 8, command: "apply".to_string() }
    }
}

/// Progress events for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    Started { total: usize },
    Finished { id: ResourceId, owner: Owner, ok: bool },
}

/// A change that did not happen, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub owner: Owner,
    pub target: String,
    pub id: String,
    pub action: Action,
    pub error: String,
    /// True when it was not attempted because something it needs failed.
    pub skipped: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    pub run: i64,
    pub applied: BTreeMap<Owner, usize>,
    pub failures: Vec<Failure>,
}

impl ApplyReport {
    pub fn failed_users(&self) -> BTreeSet<&Owner> {
        self.failures.iter().map(|f| &f.owner).collect()
    }

    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn applied_total(&self) -> usize {
        self.applied.values().sum()
    }
}

pub struct Engine {
    targets: Vec<Arc<dyn Target>>,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    settings: Settings,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.targets.iter().map(|t| t.name()).collect();
        f.debug_struct("Engine").field("targets", &names).finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(targets: Vec<Arc<dyn Target>>, state: State, clock: Arc<dyn Clock>, settings: Settings) -> Engine {
        Engine { targets, state: Mutex::new(state), clock, settings }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot corrupt SQLite; keep going.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state())
    }

    pub fn routing(&self) -> Routing {
        let mut routing = Routing::default();
        for target in &self.targets {
            routing.add(target.name(), target.domains(), target.renders_only());
        }
        routing
    }

    pub fn target_names(&self) -> Vec<String> {
        self.targets.iter().map(|t| t.name().to_string()).collect()
    }

    /// The steps each applied change of `plan` would run, from the target
    /// that applies it (only targets that run commands say anything).
    pub fn describe(&self, plan: &Plan) -> BTreeMap<ResourceId, Vec<String>> {
        let targets: BTreeMap<&str, &Arc<dyn Target>> = self.targets.iter().map(|t| (t.name(), t)).collect();
        plan.changes
            .iter()
            .filter(|c| c.action.is_applied())
            .filter_map(|change| {
                let steps = targets.get(&*change.target)?.describe(change);
                (!steps.is_empty()).then(|| (change.id.clone(), steps))
            })
            .collect()
    }

    /// What the destroy stage would remove for `user`, per target, or why it
    /// cannot run yet: the user must have left the roster and been cut.
    pub async fn destroy_plan(&self, roster: &Roster, user: &str) -> Result<DestroyPlan> {
        if roster.users.contains_key(user) {
            return Err(Error::DestroyRefused(format!(
                "`{user}` is still in the roster; remove them from it, apply the reversible cut (`tenantry offboard {user}`), then destroy"
            )));
        }
        let inventory = self.state().inventory()?;
        let owner = Owner::User(user.to_string());
        let mut by_target: BTreeMap<String, Vec<ResourceId>> = BTreeMap::new();
        for (id, entry) in &inventory.entries {
            if entry.owner == owner {
                by_target.entry(entry.target.clone()).or_default().push(id.clone());
            }
        }
        if by_target.is_empty() && !self.state().ports()?.contains_key(user) {
            return Err(Error::DestroyRefused(format!(
                "tenantry has nothing recorded for `{user}`: no resources and no ports (already destroyed, or never applied)"
            )));
        }
        let policy =
            Policy { allow_revoke: false, offboard: true, only: Some([user.to_string()].into()), with_platform: true };
        let prepared = self.prepare(roster, policy).await?;
        let pending: Vec<String> = prepared
            .plan
            .changes
            .iter()
            .filter(|c| c.owner == owner && c.action.is_applied())
            .map(|c| format!("{} {}", c.action.as_str(), c.id))
            .collect();
        if !pending.is_empty() {
            return Err(Error::DestroyRefused(format!(
                "the reversible cut of `{user}` is not complete ({} change(s) pending, e.g. {}); run `tenantry offboard {user}` first",
                pending.len(),
                pending[0]
            )));
        }
        if let Some((target, message)) = prepared.unavailable.iter().next() {
            return Err(Error::DestroyRefused(format!("target `{target}` is unavailable: {message}")));
        }
        for list in by_target.values_mut() {
            list.sort();
        }
        Ok(DestroyPlan { user: user.to_string(), by_target })
    }

    /// Run the destroy stage planned by [`Engine::destroy_plan`]: each target
    /// writes its backups under `backup_dir` and then removes what it holds
    /// for the user. Journalled like apply; ports and routes are released only
    /// when every target succeeded.
    pub async fn destroy(
        &self,
        plan: &DestroyPlan,
        backup_dir: &std::path::Path,
        command: &str,
    ) -> Result<DestroyReport> {
        let owner = Owner::User(plan.user.clone());
        let run = self.state().begin_run(command, &self.clock.now())?;
        let mut report = DestroyReport { run, ..DestroyReport::default() };
        let backups = crate::BackupDir::new(backup_dir);
        for target in &self.targets {
            let ids = plan.by_target.get(target.name()).cloned().unwrap_or_default();
            if ids.is_empty() {
                continue;
            }
            self.state().record_destroy_intents(run, target.name(), &owner, &ids, &self.clock.now())?;
            let outcome = target.destroy(&plan.user, &ids, &backups).await;
            let (removed, error) = match &outcome {
                Ok(done) => (done.removed.clone(), None),
                Err(error) => (Vec::new(), Some(error.to_string())),
            };
            self.state().record_destroy_outcomes(
                run,
                target.name(),
                &ids,
                &removed,
                error.as_deref(),
                &self.clock.now(),
            )?;
            report.targets.insert(target.name().to_string(), outcome.map_err(|e| e.to_string()));
        }
        for target in plan.by_target.keys().filter(|name| !self.targets.iter().any(|t| t.name() == name.as_str())) {
            report.targets.insert(
                target.clone(),
                Err(format!("the `{target}` target is not configured in this run; nothing of it was destroyed")),
            );
        }
        let left = self.state().inventory()?.entries.values().filter(|e| e.owner == owner).count();
        if left == 0 && report.targets.values().all(Result::is_ok) {
            self.state().release_user(&plan.user)?;
            report.released = true;
        }
        let summary = if report.released { "destroyed" } else { "destroy incomplete" };
        self.state().finish_run(run, &self.clock.now(), summary)?;
        Ok(report)
    }

    /// The facts derivation needs, from the state.
    pub fn facts(&self, roster: &Roster, policy: &Policy) -> Result<Facts> {
        let now = self.clock.now();
        let mut state = self.state();
        state.recover(&now)?;
        let ports = state.ports()?;
        let mut retained_routes = state.routes()?;
        // Departed users being cut in this run lose their routes now.
        if policy.offboard {
            retained_routes.retain(|user, _| {
                roster.users.contains_key(user) || policy.only.as_ref().is_some_and(|only| !only.contains(user))
            });
        }
        let mut withheld_namespaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if !policy.allow_revoke {
            for (id, entry) in &state.inventory()?.entries {
                let Some(user) = entry.owner.user().and_then(|u| roster.users.get(u)) else { continue };
                if id.domain == tenantry_core::Domain::Kubernetes
                    && &*id.kind == "Namespace"
                    && !user.namespaces.iter().any(|n| *n.value == *id.name)
                {
                    withheld_namespaces.entry(user.key.clone()).or_default().push(id.name.to_string());
                }
            }
            for list in withheld_namespaces.values_mut() {
                list.sort();
                list.dedup();
            }
        }
        Ok(Facts { ports, retained_routes, withheld_namespaces })
    }

    /// Derive, observe every target in parallel, and diff.
    pub async fn prepare(&self, roster: &Roster, policy: Policy) -> Result<Prepared> {
        let facts = self.facts(roster, &policy)?;
        let desired = derive(roster, &self.settings, &facts);
        let inventory = self.state().inventory()?;
        let routing = self.routing();

        let requests: Vec<(Arc<dyn Target>, ObserveRequest)> = self
            .targets
            .iter()
            .map(|target| {
                let name = target.name();
                let mut seen = HashSet::new();
                let mut resources = Vec::new();
                let mut contents = Vec::new();
                for resource in desired.resources() {
                    if routing.target_for(resource.id.domain) == Some(name) && seen.insert(&resource.id) {
                        resources.push((resource.id.clone(), resource.owner.clone()));
                        contents.push((resource.id.clone(), resource.content.clone()));
                    }
                }
                for (id, entry) in &inventory.entries {
                    if entry.target == name && seen.insert(id) {
                        resources.push((id.clone(), entry.owner.clone()));
                    }
                }
                (Arc::clone(target), ObserveRequest { resources, desired: contents })
            })
            .collect();
        let results = futures::future::join_all(
            requests
                .iter()
                .map(|(target, request)| async move { (target.name().to_string(), target.observe(request).await) }),
        )
        .await;

        let mut observed = ObservedByTarget::new();
        let mut unavailable = BTreeMap::new();
        for (name, result) in results {
            match result {
                Ok(found) => {
                    observed.insert(name, found);
                }
                Err(error) => {
                    unavailable.insert(name, error.to_string());
                }
            }
        }
        let mut plan = diff(roster, &desired, &observed, &inventory, &routing, &policy);
        if !unavailable.is_empty() {
            plan.changes.retain(|c| !unavailable.contains_key(&c.target));
            for (target, error) in &unavailable {
                plan.problems.push(PlanProblem {
                    message: format!("target `{target}` could not be observed: {error}"),
                    help: format!("its changes are left out of this plan; check the `[{target}]` settings in tenantry.toml and that the server is reachable"),
                    blocking: false,
                });
            }
        }
        Ok(Prepared { desired, plan, inventory, policy, unavailable })
    }

    /// Apply a prepared plan. One user's failure never stops the others:
    /// only changes that depend on a failed change are skipped.
    pub async fn apply(
        &self,
        roster: &Roster,
        prepared: &Prepared,
        options: &ApplyOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<ApplyReport> {
        let plan = &prepared.plan;
        let run = {
            let now = self.clock.now();
            let mut state = self.state();
            let run = state.begin_run(&options.command, &now)?;
            state.reserve_ports(&prepared.desired.ports)?;
            run
        };
        let mut report = ApplyReport { run, ..ApplyReport::default() };
        let total = plan.changes.iter().filter(|c| c.action.is_applied()).count();
        progress(Progress::Started { total });

        let targets: BTreeMap<&str, &Arc<dyn Target>> = self.targets.iter().map(|t| (t.name(), t)).collect();
        let mut failed_ids: HashSet<ResourceId> = HashSet::new();
        for wave in plan.waves() {
            let now = self.clock.now();
            self.state().record_intents(run, &wave, &now)?;
            let outcomes: Vec<(&Change, Outcome)> = stream::iter(wave.iter().copied())
                .map(|change| {
                    let blocked = change.deps.iter().find(|dep| failed_ids.contains(*dep)).cloned();
                    let target = targets.get(change.target.as_str()).copied();
                    async move {
                        let result = if let Some(dep) = blocked {
                            Err((format!("skipped: it needs {dep}, which failed"), true))
                        } else if change.action == Action::Conflict {
                            Err((change.reason.to_string(), false))
                        } else if let Some(target) = target {
                            target.apply(change).await.map_err(|e| (e.to_string(), false))
                        } else {
                            Err((format!("target `{}` is not configured", change.target), false))
                        };
                        progress(Progress::Finished {
                            id: change.id.clone(),
                            owner: change.owner.clone(),
                            ok: result.is_ok(),
                        });
                        (change, result)
                    }
                })
                .buffer_unordered(options.concurrency.max(1))
                .collect()
                .await;

            let mut journal: Vec<(&Change, Option<String>)> = Vec::with_capacity(outcomes.len());
            for (change, result) in outcomes {
                match result {
                    Ok(()) => {
                        if change.action.is_change() {
                            *report.applied.entry(change.owner.clone()).or_default() += 1;
                        }
                        journal.push((change, None));
                    }
                    Err((error, skipped)) => {
                        failed_ids.insert(change.id.clone());
                        report.failures.push(Failure {
                            owner: change.owner.clone(),
                            target: change.target.clone(),
                            id: change.id.to_string(),
                            action: change.action,
                            error: error.clone(),
                            skipped,
                        });
                        journal.push((change, Some(error)));
                    }
                }
            }
            let now = self.clock.now();
            self.state().record_outcomes(run, &journal, &now)?;
        }

        let now = self.clock.now();
        let mut state = self.state();
        state.reconcile_inventory(&plan.record, &plan.forget, &now)?;
        let cut: Vec<String> = if prepared.policy.offboard {
            plan.departing
                .iter()
                .filter(|user| !report.failures.iter().any(|f| f.owner.user() == Some(user.as_str())))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        state.update_routes(&current_routes(roster), &cut)?;
        report.failures.sort_by(|a, b| (&a.owner, &a.id).cmp(&(&b.owner, &b.id)));
        let summary = format!("{} applied, {} failed", report.applied_total(), report.failures.len());
        state.finish_run(run, &now, &summary)?;
        Ok(report)
    }
}

/// How one change ended: done, or the error and whether it was skipped.
type Outcome = std::result::Result<(), (String, bool)>;

/// Routing entries of present workstation users, remembered so a departed
/// user keeps theirs until the reversible cut.
fn current_routes(roster: &Roster) -> BTreeMap<String, RetainedRoute> {
    roster
        .users
        .values()
        .filter_map(|user| {
            let station = user.workstation.as_ref().filter(|w| !w.parked)?;
            Some((
                user.key.clone(),
                RetainedRoute {
                    idp_user: station.idp_user.value.clone(),
                    os_user: station.os_user.value.clone(),
                    admin: user.tier.value == Tier::Admin,
                },
            ))
        })
        .collect()
}
