//! The destroy stage of offboarding (the reversible cut is a plan request:
//! [`Session::offboard_request`]).

use crate::error::{AppError, Result};
use crate::session::Session;
use crate::wire;
use std::path::Path;
use tenantry_engine::{DestroyPlan, DestroyReport, RunInfo};

/// A destroy stage's outcome with what it planned.
#[derive(Debug)]
pub struct DestroyOutcome<'a> {
    pub plan: &'a DestroyPlan,
    pub report: DestroyReport,
}

impl DestroyOutcome<'_> {
    pub fn to_json(&self) -> serde_json::Value {
        wire::destroy_json(self.plan, &self.report)
    }
}

impl Session {
    /// What the destroy stage would remove for `user`, or why it cannot run yet.
    pub async fn destroy_plan(&self, user: &str) -> Result<DestroyPlan> {
        self.engine().await?.destroy_plan(self.roster(), user).await.map_err(|e| match e {
            tenantry_engine::Error::DestroyRefused(message) => AppError::usage(
                message,
                "the destroy stage only follows the reversible cut of a user who left the roster",
            ),
            other => AppError::Run(other),
        })
    }

    /// Back up, then delete what `plan` lists.
    pub async fn destroy<'a>(&self, plan: &'a DestroyPlan, backup: &Path) -> Result<DestroyOutcome<'a>> {
        let run = RunInfo {
            command: self.options.command.clone(),
            actor: self.options.actor.clone(),
            roster_digest: Some(self.roster_digest()),
        };
        let mut report = self.engine().await?.destroy(plan, backup, run).await?;
        let time = self.now();
        let roster = self.roster_ref();
        let events = crate::audit::destroy_events(plan, &report, &self.run_context(&time, &roster));
        report.notes.extend(self.record_audit(events).await);
        Ok(DestroyOutcome { plan, report })
    }
}
