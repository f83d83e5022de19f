//! The destroy stage (SPEC §6): after the reversible cut of a user who left
//! the roster, each target backs up and then removes what it kept.

use crate::engine::Engine;
use crate::state::RunInfo;
use crate::{BackupDir, Error, Result};
use std::collections::BTreeMap;
use tenantry_core::{Owner, Policy, ResourceId};
use tenantry_model::Roster;

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

impl Engine {
    /// What the destroy stage would remove for `user`, per target, or why it
    /// cannot run yet: the user must have left the roster and been cut.
    pub async fn destroy_plan(&self, roster: &Roster, user: &str) -> Result<DestroyPlan> {
        if roster.users.contains_key(user) {
            return Err(Error::DestroyRefused(format!(
                "`{user}` is still in the roster; remove them from it, apply the reversible cut (`tenantry offboard {user}`), then destroy"
            )));
        }
        let owner = Owner::User(user.to_string());
        let (inventory, has_ports) = {
            let user = user.to_string();
            self.state().call(move |s| Ok((s.inventory()?, s.ports()?.contains_key(&user)))).await?
        };
        let mut by_target: BTreeMap<String, Vec<ResourceId>> = BTreeMap::new();
        for (id, entry) in &inventory.entries {
            if entry.owner == owner {
                by_target.entry(entry.target.clone()).or_default().push(id.clone());
            }
        }
        if by_target.is_empty() && !has_ports {
            return Err(Error::DestroyRefused(format!(
                "tenantry has nothing recorded for `{user}`: no resources and no ports (already destroyed, or never applied)"
            )));
        }
        let policy = Policy {
            allow_revoke: false,
            offboard: true,
            only: Some([user.to_string()].into()),
            with_platform: true,
            ..Policy::default()
        };
        let prepared = self.prepare(roster, policy).await?;
        let pending: Vec<String> = prepared
            .plan
            .changes
            .iter()
            .filter(|c| c.owner == owner && c.action.is_applied())
            .map(|c| format!("{} {}", c.action.as_str(), c.id))
            .collect();
        if let Some(first) = pending.first() {
            return Err(Error::DestroyRefused(format!(
                "the reversible cut of `{user}` is not complete ({} change(s) pending, e.g. {first}); run `tenantry offboard {user}` first",
                pending.len(),
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
        run: impl Into<RunInfo>,
    ) -> Result<DestroyReport> {
        let run: RunInfo = run.into();
        let owner = Owner::User(plan.user.clone());
        let now = self.now();
        let run = self.state().call(move |s| s.begin_run(&run, &now)).await?;
        let mut report = DestroyReport { run, ..DestroyReport::default() };
        let backups = BackupDir::new(backup_dir);
        for target in self.targets() {
            let ids = plan.by_target.get(target.name()).cloned().unwrap_or_default();
            if ids.is_empty() {
                continue;
            }
            let name = target.name().to_string();
            {
                let (name, owner, ids, now) = (name.clone(), owner.clone(), ids.clone(), self.now());
                self.state().call(move |s| s.record_destroy_intents(run, &name, &owner, &ids, &now)).await?;
            }
            let outcome = target.destroy(&plan.user, &ids, &backups).await.map_err(|e| e.in_target(&name));
            let (removed, error) = match &outcome {
                Ok(done) => (done.removed.clone(), None),
                Err(error) => (Vec::new(), Some(error.to_string())),
            };
            {
                let (name, now) = (name.clone(), self.now());
                self.state()
                    .call(move |s| s.record_destroy_outcomes(run, &name, &ids, &removed, error.as_deref(), &now))
                    .await?;
            }
            report.targets.insert(name, outcome.map_err(|e| e.to_string()));
        }
        let configured: Vec<&str> = self.targets().iter().map(|t| t.name()).collect();
        for target in plan.by_target.keys().filter(|name| !configured.contains(&name.as_str())) {
            report.targets.insert(
                target.clone(),
                Err(format!("the `{target}` target is not configured in this run; nothing of it was destroyed")),
            );
        }
        let all_ok = report.targets.values().all(Result::is_ok);
        let (user, now) = (plan.user.clone(), self.now());
        report.released = self
            .state()
            .call(move |s| {
                let left = s.inventory()?.entries.values().filter(|e| e.owner == owner).count();
                let released = left == 0 && all_ok;
                if released {
                    s.release_user(&user)?;
                }
                s.finish_run(run, &now, if released { "destroyed" } else { "destroy incomplete" })?;
                Ok(released)
            })
            .await?;
        Ok(report)
    }
}
