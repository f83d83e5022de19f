//! The reconcile loop, in the shape of kube-rs's controller-rs: one shared
//! context, a reconcile (a pass through `tenantry_app::Controller`) that
//! decides when the next one runs, and an error policy with backoff.
//!
//! Passes run only on the applying replica, one at a time:
//! - the roster changed (read again and valid, with another digest): every target;
//! - a watch saw drift: the cluster target only, after `debounce`;
//! - every `interval` (the safety net): the roster is read again, then every target;
//! - a failing target's backoff ran out: that target only.
//!
//! A target that is failing waits for its own retry and is held out of
//! every other pass, so one failing target never slows the others. A
//! roster that does not parse is reported (status, metrics, `/readyz`) and
//! the last valid one stays in force: nothing is ever applied from it.
//! Losing the lease stops a running pass at once.

use crate::backoff::Backoffs;
use crate::leader::Role;
use crate::settings::{Offboard, ServeSettings};
use crate::status::{RoleStatus, Shared, TargetStatus};
use crate::triggers::Trigger;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tenantry_app::{AppError, Controller, Drift, LoadedRoster, PassReport, PassRequest, TargetOutcome};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The cluster target's name: drift passes include only it.
const CLUSTER: &str = "kubernetes";

/// Which targets the next pass must include.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    All,
    Only(BTreeSet<String>),
}

impl Scope {
    fn add(&mut self, other: Scope) {
        match (&mut *self, other) {
            (Scope::All, _) => {}
            (_, Scope::All) => *self = Scope::All,
            (Scope::Only(mine), Scope::Only(theirs)) => mine.extend(theirs),
        }
    }
}

/// A pass waiting to run.
#[derive(Debug, Clone)]
struct Pending {
    scope: Scope,
    /// Why, in words (`roster changed`, `drift`, `safety net`, `retry`).
    reasons: BTreeSet<&'static str>,
    at: Instant,
}

/// How the loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Shutdown,
}

/// A hook told of each pass that ran and why (its triggers, joined).
pub type OnPass = Box<dyn Fn(&PassReport, &str) + Send + Sync>;

/// The loop's context.
pub struct Reconciler {
    pub controller: Arc<Controller>,
    pub settings: ServeSettings,
    pub shared: Arc<Shared>,
    /// A jitter factor in [0.5, 1] for each backoff (a parameter for tests).
    pub jitter: Box<dyn FnMut() -> f64 + Send>,
    /// Told of each pass that ran, with why it ran (the portal shows it).
    pub on_pass: Option<OnPass>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler").field("controller", &self.controller).finish_non_exhaustive()
    }
}

struct State {
    roster: Option<LoadedRoster>,
    /// The digest of the roster of the last pass that converged everything:
    /// what a later pass applies under the same roster repaired drift.
    converged_digest: Option<String>,
    pending: Option<Pending>,
    next_interval: Instant,
    backoffs: Backoffs,
    /// Passes in a row that could not run at all (state database, config).
    pass_errors: u32,
    /// No leader election: this replica always applies.
    standalone: bool,
}

impl Reconciler {
    pub async fn run(
        mut self,
        mut triggers: mpsc::Receiver<Trigger>,
        mut role: watch::Receiver<Role>,
        mut shutdown: watch::Receiver<bool>,
        standalone: bool,
    ) -> Ended {
        let mut state = State {
            roster: None,
            converged_digest: None,
            pending: None,
            next_interval: Instant::now() + self.settings.interval,
            backoffs: Backoffs::new(self.settings.backoff_min, self.settings.backoff_max),
            pass_errors: 0,
            standalone,
        };
        if self.reload(&mut state).await {
            self.schedule(&mut state, Scope::All, "start", Duration::ZERO);
        }
        let initial = role.borrow().clone();
        self.role_changed(&initial, &mut state);
        loop {
            let leading = role.borrow().is_leader();
            let mut wake = state.next_interval;
            if let Some(retry) = state.backoffs.next_retry() {
                wake = wake.min(retry);
            }
            if let Some(pending) = &state.pending
                && leading
                && state.roster.is_some()
            {
                wake = wake.min(pending.at);
            }
            tokio::select! {
                biased;
                _ = shutdown.changed() => return Ended::Shutdown,
                changed = role.changed() => {
                    if changed.is_err() {
                        return Ended::Shutdown;
                    }
                    let now = role.borrow_and_update().clone();
                    self.role_changed(&now, &mut state);
                }
                trigger = triggers.recv() => match trigger {
                    Some(Trigger::RosterTouched) => {
                        if self.reload(&mut state).await {
                            self.schedule(&mut state, Scope::All, "roster changed", Duration::ZERO);
                        }
                    }
                    Some(Trigger::Drift(event)) => {
                        if let Some(kind) = self.drift_of_ours(&state, &event) {
                            tracing::info!(?event, "drift seen by a watch");
                            self.shared.metrics.watch_event(kind);
                            let scope = Scope::Only(BTreeSet::from([CLUSTER.to_string()]));
                            self.schedule(&mut state, scope, "drift", self.settings.debounce);
                        }
                    }
                    None => std::future::pending::<()>().await,
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= state.next_interval {
                        state.next_interval = now + self.settings.interval;
                        self.reload(&mut state).await;
                        self.schedule(&mut state, Scope::All, "safety net", Duration::ZERO);
                    }
                    let due = state.backoffs.due(now);
                    if !due.is_empty() {
                        self.schedule(&mut state, Scope::Only(due.into_iter().collect()), "retry", Duration::ZERO);
                    }
                    let ready = state.pending.as_ref().is_some_and(|p| p.at <= now);
                    if ready
                        && leading
                        && state.roster.is_some()
                        && let Some(pending) = state.pending.take()
                        && self.pass(&mut state, pending, &mut role, &mut shutdown).await.is_err()
                    {
                        return Ended::Shutdown;
                    }
                }
            }
        }
    }

    /// The kind of a watch event that concerns the platform in force: an
    /// object of another platform (another roster sharing the cluster) is
    /// none of this replica's business; an unmarked one may be an earlier
    /// version's object, which tenantry claims.
    fn drift_of_ours(&self, state: &State, event: &Drift) -> Option<&'static str> {
        match event {
            Drift::Resync { kind } => Some(kind),
            Drift::Object { kind, platform, .. } => {
                let in_force = state.roster.as_ref().map(|loaded| loaded.roster.platform.name.as_str());
                match (platform.as_deref(), in_force) {
                    (Some(theirs), Some(ours)) if theirs != ours => {
                        tracing::debug!(?event, "another platform's object changed: not ours to repair");
                        None
                    }
                    _ => Some(kind),
                }
            }
        }
    }

    fn schedule(&self, state: &mut State, scope: Scope, reason: &'static str, after: Duration) {
        let at = Instant::now() + after;
        match &mut state.pending {
            Some(pending) => {
                pending.scope.add(scope);
                pending.reasons.insert(reason);
                // Debounce: a burst of drift events runs one pass, but never later than the first event + debounce.
                pending.at = pending.at.min(at);
            }
            None => state.pending = Some(Pending { scope, reasons: BTreeSet::from([reason]), at }),
        }
    }

    fn role_changed(&self, role: &Role, state: &mut State) {
        let status = match (state.standalone, role) {
            (true, _) => RoleStatus::Standalone,
            (false, Role::Leader) => RoleStatus::Leader,
            (false, Role::Follower { leader }) => RoleStatus::Follower { leader: leader.clone() },
        };
        self.shared.metrics.is_leader.set(i64::from(role.is_leader()));
        let became_leader =
            role.is_leader() && !self.shared.view(|s| matches!(s.role, RoleStatus::Leader | RoleStatus::Standalone));
        self.shared.update(|s| s.role = status);
        if became_leader {
            tracing::info!("leading: reconciling everything");
            self.schedule(state, Scope::All, "became leader", Duration::ZERO);
        }
    }

    /// Read the roster again. True when a valid roster with another digest
    /// is now in force.
    async fn reload(&self, state: &mut State) -> bool {
        let controller = Arc::clone(&self.controller);
        let read = tokio::task::spawn_blocking(move || controller.load_roster()).await;
        let metrics = &self.shared.metrics;
        let problem = match read {
            Ok(Ok(loaded)) => {
                metrics.roster_valid.set(1);
                metrics.set_users(&tenantry_app::users_by_tier(&loaded.roster));
                let digest = loaded.digest();
                let changed = state.roster.as_ref().is_none_or(|current| current.digest() != digest);
                self.shared.update(|s| {
                    s.roster.problem = None;
                    s.roster.in_force = Some(digest.clone());
                    s.roster.platform = Some(loaded.roster.platform.name.clone());
                });
                if changed {
                    tracing::info!(roster = %self.controller.source(), digest = %digest, "roster in force");
                    state.roster = Some(loaded);
                }
                return changed;
            }
            Ok(Err(AppError::Roster(diagnostics, _))) => tenantry_app::wire::diagnostics_json(&diagnostics),
            Ok(Err(error)) => json!({ "message": error.to_string(), "help": error.help() }),
            Err(error) => json!({ "message": format!("reading the roster stopped: {error}") }),
        };
        metrics.roster_valid.set(0);
        metrics.roster_errors.inc();
        tracing::warn!(roster = %self.controller.source(), %problem, "the roster is not valid; the last valid roster stays in force");
        self.shared.update(|s| s.roster.problem = Some(problem));
        false
    }

    /// Run one pass (leader only). `Err` on shutdown.
    async fn pass(
        &mut self,
        state: &mut State,
        pending: Pending,
        role: &mut watch::Receiver<Role>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ()> {
        let Some(roster) = state.roster.clone() else { return Ok(()) };
        let now = Instant::now();
        let waiting: BTreeSet<String> = state.backoffs.waiting(now).map(str::to_string).collect();
        let all: BTreeSet<String> = self.controller.target_names().into_iter().collect();
        let wanted = match &pending.scope {
            Scope::All => all.clone(),
            Scope::Only(only) => only.intersection(&all).cloned().collect(),
        };
        let included: BTreeSet<String> = wanted.difference(&waiting).cloned().collect();
        if included.is_empty() {
            return Ok(());
        }
        let reasons: Vec<&str> = pending.reasons.iter().copied().collect();
        let request = PassRequest {
            reason: format!("tenantry serve: {}", reasons.join(", ")),
            offboard: self.settings.offboard == Offboard::Reversible,
            targets: (included != all).then(|| included.clone()),
            concurrency: self.settings.concurrency,
            after_apply: pending.reasons.contains("roster changed") || pending.reasons.contains("start"),
        };
        tracing::info!(reason = %request.reason, targets = ?included, "reconcile pass");
        let started = Instant::now();
        let started_wall = SystemTime::now();
        let result = tokio::select! {
            result = self.controller.pass(&roster, &request) => result,
            _ = lost(role) => {
                tracing::warn!("lost the lease: the running pass was stopped");
                self.schedule(state, pending.scope, "interrupted", Duration::ZERO);
                let now = role.borrow().clone();
                self.role_changed(&now, state);
                return Ok(());
            }
            _ = shutdown.changed() => return Err(()),
        };
        let seconds = started.elapsed().as_secs_f64();
        let finished_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        match result {
            Ok(report) => {
                state.pass_errors = 0;
                let same_roster = state.converged_digest.as_deref() == Some(roster.digest().as_str());
                let drift = same_roster && !pending.reasons.contains("roster changed");
                self.shared.metrics.record_pass(&report, seconds, drift);
                self.after_pass(state, &report);
                if let Some(on_pass) = &self.on_pass {
                    on_pass(&report, &reasons.join(", "));
                }
                // `Tenant` statuses describe every target: only a full pass writes them.
                if request.targets.is_none() {
                    self.publish_tenant_status(&roster, &report).await;
                }
                if report.converged() && state.backoffs.next_retry().is_none() {
                    state.converged_digest = Some(roster.digest());
                    let unix = started_wall.duration_since(SystemTime::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
                    self.shared.metrics.last_success.set(unix);
                }
                if let Some(failures) = report.json["failures"].as_array() {
                    for failure in failures {
                        tracing::warn!(
                            target_name = %failure["target"].as_str().unwrap_or_default(),
                            change = %failure["id"].as_str().unwrap_or_default(),
                            error = %failure["error"].as_str().unwrap_or_default(),
                            "change failed"
                        );
                    }
                }
                tracing::info!(
                    converged = report.converged(),
                    applied = report.applied.values().sum::<usize>(),
                    seconds,
                    "pass finished"
                );
                let summary = json!({
                    "trigger": reasons,
                    "targets": included,
                    "finished_at": finished_at,
                    "duration_seconds": seconds,
                    "converged": report.converged(),
                    "report": without_contents(report.json),
                });
                self.shared.update(|s| s.last_pass = raw(&summary));
            }
            Err(error) => {
                state.pass_errors += 1;
                self.shared.metrics.record_error(seconds);
                let delay = state.backoffs.delay(state.pass_errors, (self.jitter)());
                tracing::error!(%error, retry_in = ?delay, "the pass could not run");
                let summary = json!({
                    "trigger": reasons,
                    "finished_at": finished_at,
                    "duration_seconds": seconds,
                    "converged": false,
                    "error": { "message": error.to_string(), "help": error.help() },
                });
                self.shared.update(|s| s.last_pass = raw(&summary));
                self.schedule(state, pending.scope, "retry", delay);
            }
        }
        Ok(())
    }

    /// Write the `Tenant` statuses of a `kubernetes://tenants` roster after a pass.
    async fn publish_tenant_status(&self, roster: &tenantry_app::LoadedRoster, report: &PassReport) {
        let started = Instant::now();
        match self.controller.publish_tenant_status(roster, report, self.settings.concurrency).await {
            Ok(Some(writes)) => {
                for (tenant, error) in &writes.failed {
                    tracing::warn!(%tenant, %error, "cannot write the Tenant's status");
                }
                tracing::info!(
                    written = writes.written,
                    unchanged = writes.unchanged,
                    failed = writes.failed.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "Tenant statuses"
                );
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot write the Tenant statuses"),
        }
    }

    /// Each target's health and backoff after a pass.
    fn after_pass(&mut self, state: &mut State, report: &PassReport) {
        let now = Instant::now();
        for (name, outcome) in &report.targets {
            let (up, error) = match outcome {
                TargetOutcome::Held => continue,
                TargetOutcome::Reached { failures: 0 } => {
                    state.backoffs.succeeded(name);
                    self.shared.metrics.set_backoff(name, 0.0);
                    self.shared.update(|s| {
                        s.targets.insert(name.clone(), TargetStatus { up: Some(true), ..TargetStatus::default() });
                    });
                    continue;
                }
                TargetOutcome::Reached { failures } => (true, format!("{failures} change(s) failed")),
                TargetOutcome::Down(error) => (false, error.clone()),
            };
            let failing = state.backoffs.failed(name, now, (self.jitter)());
            self.shared.metrics.set_backoff(name, failing.delay.as_secs_f64());
            tracing::warn!(target = %name, %error, retry_in = ?failing.delay, failures = failing.failures, "target failing");
            self.shared.update(|s| {
                s.targets.insert(
                    name.clone(),
                    TargetStatus {
                        up: Some(up),
                        error: Some(error),
                        failures: failing.failures,
                        retry_in_seconds: Some(failing.delay.as_secs_f64()),
                    },
                );
            });
        }
    }
}

/// Serialized once for `/api/status`.
fn raw(value: &serde_json::Value) -> Option<Arc<serde_json::value::RawValue>> {
    serde_json::value::to_raw_value(value).ok().map(Arc::from)
}

/// The apply report without each change's `before` and `after` contents:
/// what changed and why, at a size that stays small at 10,000 users (the
/// contents are in the journal and in `tenantry plan`).
fn without_contents(mut report: serde_json::Value) -> serde_json::Value {
    if let Some(owners) = report["plan"]["owners"].as_array_mut() {
        for owner in owners {
            if let Some(changes) = owner["changes"].as_array_mut() {
                for change in changes {
                    if let Some(fields) = change.as_object_mut() {
                        fields.remove("before");
                        fields.remove("after");
                    }
                }
            }
        }
    }
    report
}

/// Resolves when this replica stops leading.
async fn lost(role: &mut watch::Receiver<Role>) {
    loop {
        if !role.borrow_and_update().is_leader() {
            return;
        }
        if role.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_merge_towards_everything() {
        let only = |names: &[&str]| Scope::Only(names.iter().map(|n| n.to_string()).collect());
        let mut scope = only(&["kubernetes"]);
        scope.add(only(&["vault"]));
        assert_eq!(scope, only(&["kubernetes", "vault"]));
        scope.add(Scope::All);
        assert_eq!(scope, Scope::All);
        scope.add(only(&["dns"]));
        assert_eq!(scope, Scope::All);
    }
}
