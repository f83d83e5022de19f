//! `HostTarget`: the handle the engine holds. The `Target` implementation
//! only delegates: to `observe`, `plan` + `execute`, `destroy`, and for the
//! hooks to `sources` (port reconciliation) and `hooks` (steps, refresh).

use crate::HostConfig;
use crate::command::{CommandRunner, SystemRunner};
use crate::error::Error;
use crate::inner::Inner;
use crate::records::Records;
use crate::refresh::RefreshOutcome;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenantry_core::{
    Applied, Change, Desired, Domain, ErrorKind, Facts, Minted, Note, ObserveRequest, Observed, ResourceId, Snapshot,
    Target, TargetError,
};
use tenantry_model::Roster;

/// Applies host resources to `/` or a sandbox root.
#[derive(Debug, Clone)]
pub struct HostTarget {
    inner: Arc<Inner>,
}

impl HostTarget {
    pub fn new(config: HostConfig) -> HostTarget {
        HostTarget::with_runner(config, Arc::new(SystemRunner))
    }

    /// With another command runner (tests, or a runner that logs every command).
    pub fn with_runner(config: HostConfig, runner: Arc<dyn CommandRunner>) -> HostTarget {
        HostTarget::build(config, runner, tenantry_core::DEFAULT_PLATFORM)
    }

    fn build(config: HostConfig, runner: Arc<dyn CommandRunner>, platform: &str) -> HostTarget {
        HostTarget {
            inner: Arc::new(Inner {
                records: Records::new(config.records_path()),
                config,
                runner,
                privileged: rustix::process::geteuid().is_root(),
                accounts: Mutex::new(()),
                users: Mutex::new(HashMap::new()),
                platform: platform.to_string(),
            }),
        }
    }

    /// The platform (roster `platform.name`) whose records this target
    /// manages; the composition root sets it from the roster at connect.
    pub fn with_platform(self, platform: &str) -> Self {
        HostTarget::build(self.inner.config.clone(), Arc::clone(&self.inner.runner), platform)
    }

    pub fn platform(&self) -> &str {
        &self.inner.platform
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The shared state, for work moved onto a blocking thread.
    pub(crate) fn shared(&self) -> Arc<Inner> {
        Arc::clone(&self.inner)
    }

    /// The content of every account this platform (or an earlier version)
    /// recorded applying (present or departed users); another platform's
    /// accounts are not this platform's to read ports from.
    pub(crate) fn account_records(&self) -> Vec<Value> {
        let platform = self.platform();
        self.inner.records.read_kind("Account").into_iter().filter(|r| r.is_for(platform)).map(|r| r.content).collect()
    }
}

#[async_trait::async_trait]
impl Target for HostTarget {
    fn name(&self) -> &str {
        "host"
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Host]
    }

    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        let inner = Arc::clone(&self.inner);
        let resources = request.resources.clone();
        tokio::task::spawn_blocking(move || inner.observe(&resources))
            .await
            .map_err(|e| TargetError::other(format!("observer task failed: {e}")))?
            .map_err(|e| TargetError::unavailable(e.to_string()))
    }

    /// The sticky ports: the state's reservations checked against root's
    /// dispatch map and the users' env files (`reconcile_ports`); a
    /// reservation only the host remembers (a lost state database) is kept,
    /// and a tenant's file that cannot be used is set aside with a warning.
    async fn reconcile_facts(&self, roster: &Roster, facts: &mut Facts) -> tenantry_core::target::Result<Vec<Note>> {
        let this = self.clone();
        let (roster, state) = (roster.clone(), facts.ports.clone());
        let (merged, warnings) = tokio::task::spawn_blocking(move || this.reconcile_ports(&roster, &state))
            .await
            .map_err(|e| TargetError::other(format!("port reconciliation task failed: {e}")))?
            .map_err(|conflict| {
                TargetError::new(ErrorKind::Conflict, format!("port reservations disagree: {conflict}"))
            })?;
        facts.ports = merged;
        Ok(warnings.into_iter().map(Note::warning).collect())
    }

    /// Fetch every checkout and fast-forward the ones that can be; what was
    /// left alone or failed is reported and never fails the run (a remote
    /// that is offline today is tried again next time).
    async fn after_apply(&self, desired: &Desired, concurrency: usize) -> Vec<Note> {
        let mut notes = Vec::new();
        for (id, outcome) in self.refresh_all(desired, concurrency).await {
            match outcome {
                Ok(RefreshOutcome::FastForwarded { commits }) => {
                    notes.push(Note::info(format!("refreshed {id}: fast-forwarded {commits} commit(s)")))
                }
                Ok(RefreshOutcome::UpToDate) => {}
                Ok(RefreshOutcome::LeftAlone { reason }) => {
                    notes.push(Note::warning(format!("{id} not refreshed: {reason}")))
                }
                Err(error) => notes.push(Note::warning(format!("{id} not refreshed: {}", error.in_target("host")))),
            }
        }
        notes
    }

    fn describe(&self, change: &Change) -> Vec<String> {
        match self.commands_for(change) {
            Ok(steps) => steps,
            // The usual case in a first plan: the account is created earlier in the same apply.
            Err(Error::MissingAccount { os_user }) => {
                vec![format!("# after `{os_user}` is created: the steps depend on its home and ids")]
            }
            Err(error) => vec![format!("# cannot tell what would run: {error}")],
        }
    }

    /// Every account of the user is archived and deleted (`destroy_account`);
    /// everything else tenantry recorded for them lived in those homes.
    async fn destroy(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> tenantry_core::target::Result<tenantry_core::Destroyed> {
        crate::destroy::destroy_user(self.config(), self.platform(), user, resources, backups.dir()).await
    }

    async fn apply(&self, change: &Change, snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        self.apply_with(change, snapshot, &Minted::default()).await
    }

    /// A `ContributeAccess` receives the forge token its dependency minted.
    async fn apply_with(
        &self,
        change: &Change,
        _snapshot: &Snapshot,
        minted: &Minted,
    ) -> tenantry_core::target::Result<Applied> {
        let inner = Arc::clone(&self.inner);
        let change = change.clone();
        let secret = change.deps.iter().find_map(|dep| minted.get(dep)).cloned();
        tokio::task::spawn_blocking(move || {
            let id = change.id.to_string();
            let warnings = inner
                .apply_minted(&change, secret.as_ref().map(|s| s.expose()))
                .map_err(|e| e.into_target_error(&id))?;
            Ok(Applied { notes: warnings.into_iter().map(Note::warning).collect(), minted: None })
        })
        .await
        .map_err(|e| TargetError::other(format!("apply task failed: {e}")))?
    }
}
