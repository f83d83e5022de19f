//! Orchestration: remembered facts → the targets' facts hooks → derive →
//! observe → diff; then apply in waves, journalled, with each target's
//! snapshot handed back and its after-apply work run last.
//!
//! The engine knows no domain: what a kind means comes from
//! `tenantry_core::kinds`, what facts mean from `tenantry_core::facts`.

use crate::clock::Clock;
use crate::handle::StateHandle;
use crate::report::{ApplyReport, Failure, Progress};
use crate::retry::{Breaker, RetryPolicy};
use crate::state::Ending;
use crate::state::{RunInfo, State};
use crate::{Error, Result};
use futures::stream::{self, StreamExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tenantry_core::target::ErrorKind;
use tenantry_core::{
    Action, Change, Desired, Facts, Inventory, Minted, MintedSecret, Note, ObserveRequest, ObservedByTarget, Plan,
    PlanProblem, Policy, Remembered, ResourceId, Routing, Settings, Snapshot, Target, current_routes, derive, diff,
};
use tenantry_model::Roster;

/// A plan together with everything needed to apply it.
#[derive(Debug)]
pub struct Prepared {
    pub desired: Desired,
    pub plan: Plan,
    pub inventory: Inventory,
    pub policy: Policy,
    /// Targets whose observe failed: none of their changes are applied.
    pub unavailable: BTreeMap<String, String>,
    /// What each target's observe will need again at apply, by target.
    pub snapshots: HashMap<String, Snapshot>,
    /// What the targets' facts hooks said (a port only the host remembered).
    pub notes: Vec<Note>,
}

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Changes in flight at once.
    pub concurrency: usize,
    /// The command line, for the run record.
    pub command: String,
    /// Who runs it, for the run record.
    pub actor: Option<String>,
    /// SHA-256 of the roster text, for the run record.
    pub roster_digest: Option<String>,
    /// Run each target's after-apply work (the host's checkout refresh).
    pub after_apply: bool,
    /// How a change whose peer fails is tried again.
    pub retry: RetryPolicy,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            concurrency: 8,
            command: "apply".to_string(),
            actor: None,
            roster_digest: None,
            after_apply: false,
            retry: RetryPolicy::default(),
        }
    }
}

impl ApplyOptions {
    fn run_info(&self) -> RunInfo {
        RunInfo { command: self.command.clone(), actor: self.actor.clone(), roster_digest: self.roster_digest.clone() }
    }
}

pub struct Engine {
    targets: Vec<Arc<dyn Target>>,
    state: StateHandle,
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
    /// Targets in routing order: the first registered for a domain applies it.
    pub fn new(targets: Vec<Arc<dyn Target>>, state: State, clock: Arc<dyn Clock>, settings: Settings) -> Engine {
        Engine { targets, state: StateHandle::new(state), clock, settings }
    }

    pub(crate) fn targets(&self) -> &[Arc<dyn Target>] {
        &self.targets
    }

    pub(crate) fn state(&self) -> &StateHandle {
        &self.state
    }

    pub(crate) fn now(&self) -> String {
        self.clock.now()
    }

    /// Use the state directly from synchronous code (tests, tools). Blocks.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        self.state.blocking(f)
    }

    /// The shared state handle, for read-only views from async code.
    pub fn state_handle(&self) -> StateHandle {
        self.state.clone()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
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

    /// What the state remembers (after recovering a killed run's intents).
    async fn remembered(&self) -> Result<(Remembered, Inventory)> {
        let now = self.now();
        self.state
            .call(move |s| {
                s.recover(&now)?;
                Ok((Remembered { ports: s.ports()?, routes: s.routes()? }, s.inventory()?))
            })
            .await
    }

    /// The facts derivation needs, from the state alone.
    pub async fn facts(&self, roster: &Roster, policy: &Policy) -> Result<Facts> {
        let (remembered, inventory) = self.remembered().await?;
        Ok(tenantry_core::facts(roster, policy, remembered, &inventory))
    }

    /// Everything the roster derives now (ports from the state), without
    /// asking any target: for render, why and explain.
    pub async fn desired(&self, roster: &Roster) -> Result<Desired> {
        let facts = self.facts(roster, &Policy::default()).await?;
        Ok(derive(roster, &self.settings, &facts))
    }

    /// Facts from the state, checked and completed by each target's facts
    /// hook; what only a target remembered is written back to the state.
    async fn reconciled_facts(&self, roster: &Roster, policy: &Policy) -> Result<(Facts, Inventory, Vec<Note>)> {
        let (remembered, inventory) = self.remembered().await?;
        let stored_ports = remembered.ports.clone();
        let mut facts = tenantry_core::facts(roster, policy, remembered, &inventory);
        let mut notes = Vec::new();
        for target in &self.targets {
            let said = target.reconcile_facts(roster, &mut facts).await.map_err(|error| Error::Facts {
                target: target.name().to_string(),
                unavailable: error.kind == tenantry_core::target::ErrorKind::Unavailable,
                message: error.message,
            })?;
            notes.extend(said);
        }
        if facts.ports != stored_ports {
            let ports = facts.ports.clone();
            self.state.call(move |s| s.reserve_ports(&ports)).await?;
        }
        Ok((facts, inventory, notes))
    }

    /// Derive, observe every target in parallel, and diff.
    pub async fn prepare(&self, roster: &Roster, policy: Policy) -> Result<Prepared> {
        // Phase timings for `TENANTRY_LOG=tenantry_engine=debug`; they change nothing planned.
        let started = std::time::Instant::now();
        let (facts, inventory, notes) = self.reconciled_facts(roster, &policy).await?;
        tracing::debug!(elapsed_ms = started.elapsed().as_millis(), inventory = inventory.entries.len(), "facts read");
        let desired = derive(roster, &self.settings, &facts);
        tracing::debug!(elapsed_ms = started.elapsed().as_millis(), resources = desired.len(), "derived");
        let routing = self.routing();

        let requests: Vec<(Arc<dyn Target>, ObserveRequest)> = self
            .targets
            .iter()
            .map(|target| {
                let name = target.name();
                let mut resources = Vec::new();
                let mut contents = Vec::new();
                let mut origins = Vec::new();
                // Desired resources are unique by id already.
                for resource in desired.resources() {
                    if routing.target_for(resource.id.domain) == Some(name) {
                        resources.push((resource.id.clone(), resource.owner.clone()));
                        contents.push((resource.id.clone(), resource.content.clone()));
                        origins.push((resource.id.clone(), resource.origin));
                    }
                }
                for (id, entry) in &inventory.entries {
                    let asked = routing.target_for(id.domain) == Some(name) && desired.contains(id);
                    if entry.target == name && !asked {
                        resources.push((id.clone(), entry.owner.clone()));
                    }
                }
                (
                    Arc::clone(target),
                    ObserveRequest { resources, desired: contents, platform: roster.platform.name.clone(), origins },
                )
            })
            .collect();
        let results = futures::future::join_all(requests.iter().map(|(target, request)| async move {
            let result = target.observe(request).await.map_err(|e| e.in_target(target.name()));
            tracing::debug!(elapsed_ms = started.elapsed().as_millis(), target = target.name(), "observed");
            (target.name().to_string(), result)
        }))
        .await;

        let mut observed = ObservedByTarget::new();
        let mut unavailable = BTreeMap::new();
        let mut snapshots = HashMap::new();
        for (name, result) in results {
            match result {
                Ok(mut found) => {
                    snapshots.insert(name.clone(), std::mem::take(&mut found.snapshot));
                    observed.insert(name, found);
                }
                Err(error) => {
                    unavailable.insert(name, error.to_string());
                }
            }
        }
        let mut plan = diff(roster, &desired, &observed, &inventory, &routing, &policy);
        tracing::debug!(elapsed_ms = started.elapsed().as_millis(), changes = plan.changes.len(), "planned");
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
        Ok(Prepared { desired, plan, inventory, policy, unavailable, snapshots, notes })
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
            let (info, now, ports) = (options.run_info(), self.now(), prepared.desired.ports.clone());
            self.state
                .call(move |s| {
                    let run = s.begin_run(&info, &now)?;
                    s.reserve_ports(&ports)?;
                    Ok(run)
                })
                .await?
        };
        let mut report = ApplyReport { run, ..ApplyReport::default() };
        let total = plan.changes.iter().filter(|c| c.action.is_applied()).count();
        progress(Progress::Started { total });

        let targets: BTreeMap<&str, &Arc<dyn Target>> = self.targets.iter().map(|t| (t.name(), t)).collect();
        let no_snapshot = Snapshot::default();
        let mut failed_ids: HashSet<ResourceId> = HashSet::new();
        let breaker = Breaker::default();
        // Secrets minted by this apply's changes, for the changes depending
        // on them (a forge token for the host's credential file); dropped
        // with the apply.
        let mut minted: HashMap<ResourceId, MintedSecret> = HashMap::new();
        let mut notes: Vec<(ResourceId, Note)> = Vec::new();
        for wave in plan.waves() {
            {
                let (changes, now): (Vec<Change>, String) = (wave.iter().map(|c| (*c).clone()).collect(), self.now());
                self.state.call(move |s| s.record_intents(run, &changes.iter().collect::<Vec<_>>(), &now)).await?;
            }
            let outcomes: Vec<(&Change, Outcome)> = stream::iter(wave.iter().copied())
                .map(|change| {
                    let blocked = change.deps.iter().find(|dep| failed_ids.contains(*dep)).cloned();
                    let inputs = Minted(
                        change
                            .deps
                            .iter()
                            .filter_map(|dep| minted.get(dep).map(|secret| (dep.clone(), secret.clone())))
                            .collect(),
                    );
                    let target = targets.get(change.target.as_str()).copied();
                    let snapshot = prepared.snapshots.get(&change.target).unwrap_or(&no_snapshot);
                    let breaker = &breaker;
                    async move {
                        let result = if let Some(dep) = blocked {
                            Err(Failed::skipped(format!("skipped: it needs {dep}, which failed")))
                        } else if change.action == Action::Conflict {
                            Err(Failed::refused(change.reason.to_string()))
                        } else if let Some(target) = target {
                            apply_with_retries(target.as_ref(), change, snapshot, &inputs, &options.retry, breaker)
                                .await
                        } else {
                            Err(Failed::refused(format!("target `{}` is not configured", change.target)))
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

            let mut journal: Vec<(Change, Ending)> = Vec::with_capacity(outcomes.len());
            for (change, result) in outcomes {
                match result {
                    Ok((said, secret)) => {
                        if let Some(secret) = secret {
                            minted.insert(change.id.clone(), secret);
                        }
                        if change.action.is_change() {
                            *report.applied.entry(change.owner.clone()).or_default() += 1;
                        }
                        notes.extend(said.into_iter().map(|note| (change.id.clone(), note)));
                        journal.push((change.clone(), Ending::Done));
                    }
                    Err(failed) => {
                        failed_ids.insert(change.id.clone());
                        report.failures.push(Failure {
                            owner: change.owner.clone(),
                            target: change.target.clone(),
                            id: change.id.to_string(),
                            action: change.action,
                            error: failed.error.clone(),
                            skipped: failed.skipped,
                            unknown: failed.unknown,
                        });
                        let ending =
                            if failed.unknown { Ending::Unknown(failed.error) } else { Ending::Failed(failed.error) };
                        journal.push((change.clone(), ending));
                    }
                }
            }
            let now = self.now();
            self.state
                .call(move |s| {
                    let outcomes: Vec<(&Change, &Ending)> =
                        journal.iter().map(|(change, ending)| (change, ending)).collect();
                    s.record_outcomes(run, &outcomes, &now)
                })
                .await?;
        }
        // App instances that could not be derived fail their user (the plan said why).
        let cluster = self.routing().target_for(tenantry_core::Domain::Kubernetes).unwrap_or("kubernetes").to_string();
        for failure in &prepared.desired.failures {
            let owner = tenantry_core::Owner::User(failure.owner.clone());
            if prepared.policy.only.as_ref().is_some_and(|only| !only.contains(&failure.owner)) {
                continue;
            }
            report.failures.push(Failure {
                owner,
                target: cluster.clone(),
                id: tenantry_core::derive::apps::instance_id(&failure.namespace, &failure.app),
                action: Action::Create,
                error: format!("{} ({})", failure.message, failure.help),
                skipped: false,
                unknown: false,
            });
        }
        // Notes in resource order, whatever order the changes finished in.
        notes.sort_by(|a, b| a.0.cmp(&b.0));
        report.notes = notes.into_iter().map(|(_, note)| note).collect();

        let cut: Vec<String> = if prepared.policy.offboard {
            plan.departing
                .iter()
                .filter(|user| !report.failures.iter().any(|f| f.owner.user() == Some(user.as_str())))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        report.failures.sort_by(|a, b| (&a.owner, &a.id).cmp(&(&b.owner, &b.id)));
        let summary = format!("{} applied, {} failed", report.applied_total(), report.failures.len());
        {
            let (record, forget, routes, now) =
                (plan.record.clone(), plan.forget.clone(), current_routes(roster), self.now());
            self.state
                .call(move |s| {
                    s.reconcile_inventory(&record, &forget, &now)?;
                    s.update_routes(&routes, &cut)?;
                    s.finish_run(run, &now, &summary)
                })
                .await?;
        }
        if options.after_apply {
            let scoped = scoped_desired(prepared);
            let desired = scoped.as_ref().unwrap_or(&prepared.desired);
            for target in &self.targets {
                report.notes.extend(target.after_apply(desired, options.concurrency).await);
            }
        }
        Ok(report)
    }
}

/// Under `--only`, only those users' resources (after-apply work such as
/// the checkout refresh touches nobody else).
fn scoped_desired(prepared: &Prepared) -> Option<Desired> {
    let only = prepared.policy.only.as_ref()?;
    let mine = prepared.desired.resources().iter().filter(|r| r.owner.user().is_some_and(|u| only.contains(u)));
    Some(Desired::new(mine.cloned().collect(), Default::default()))
}

/// How one change ended: the notes it left and what it minted, or why not.
type Outcome = std::result::Result<(Vec<Note>, Option<MintedSecret>), Failed>;

/// Why a change did not happen.
#[derive(Debug)]
struct Failed {
    error: String,
    /// Not attempted at all.
    skipped: bool,
    /// Its peer stopped answering: it may have been applied all the same.
    unknown: bool,
}

impl Failed {
    fn skipped(error: String) -> Failed {
        Failed { error, skipped: true, unknown: false }
    }

    fn refused(error: String) -> Failed {
        Failed { error, skipped: false, unknown: false }
    }
}

/// Apply one change, trying again while its error is retryable, unless its
/// peer is already known to be down in this apply; a peer that is still
/// unavailable after the last try takes the breaker down for it.
async fn apply_with_retries(
    target: &dyn Target,
    change: &Change,
    snapshot: &Snapshot,
    inputs: &Minted,
    policy: &RetryPolicy,
    breaker: &Breaker,
) -> Outcome {
    let mut attempt = 1;
    loop {
        if let Some(cause) = breaker.down(target.name()) {
            return Err(Failed::skipped(format!(
                "not attempted: {} stopped answering earlier in this apply ({cause}); rerun once it is back",
                target.name()
            )));
        }
        match target.apply_with(change, snapshot, inputs).await {
            Ok(applied) => return Ok((applied.notes, applied.minted)),
            Err(error) if error.retryable && attempt < policy.attempts.max(1) => {
                tracing::debug!(id = %change.id, attempt, %error, "retrying");
                tokio::time::sleep(policy.wait(&change.id, attempt)).await;
                attempt += 1;
            }
            Err(error) => {
                let unavailable = error.kind == ErrorKind::Unavailable;
                // A peer still unavailable after the engine's own tries is down; one
                // whose client gave up on a single request (a user rate-limited) is not.
                let down = unavailable && error.retryable;
                let error = error.in_target(target.name());
                if down {
                    breaker.trip(target.name(), &error.message);
                }
                let tries = if attempt > 1 { format!(" (after {attempt} tries)") } else { String::new() };
                return Err(Failed { error: format!("{error}{tries}"), skipped: false, unknown: unavailable });
            }
        }
    }
}
