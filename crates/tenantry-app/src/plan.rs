//! The plan and apply use cases (and the reversible cut, which is an apply
//! of one departed user under the offboarding policy).

use crate::error::{AppError, Result};
use crate::session::Session;
use crate::wire::{self, Steps};
use std::collections::BTreeSet;
use tenantry_core::{Note, Plan, Policy};
use tenantry_engine::{ApplyOptions, ApplyReport, Prepared, Progress};

/// What the admin allows in this run (SPEC §6).
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    /// Take away what users still in the roster no longer have.
    pub allow_revoke: bool,
    /// Perform the reversible cut for users who left the roster.
    pub offboard: bool,
    /// Only these users' resources.
    pub only: Vec<String>,
    /// With `only`: also bring the shared platform resources in line.
    pub with_platform: bool,
    /// Ids (`domain/Kind/scope/name`) to take over although they hold data
    /// that differs from the roster's.
    pub adopt: Vec<String>,
}

/// A plan as shown — what would change, on which targets, with the steps
/// each change runs — together with what the engine needs to apply exactly it.
#[derive(Debug)]
pub struct Planned {
    pub(crate) prepared: Prepared,
    /// The roster's source name (`roster.yaml`, `vault://…`).
    pub roster: String,
    /// Targets of this run, in routing order.
    pub targets: Vec<String>,
    pub steps: Steps,
}

impl Planned {
    pub fn plan(&self) -> &Plan {
        &self.prepared.plan
    }

    /// Targets that could not be observed, with why: their changes are left
    /// out of this plan, so it cannot say the platform is converged.
    pub fn unobserved(&self) -> &std::collections::BTreeMap<String, String> {
        &self.prepared.unavailable
    }

    /// What targets said while gathering facts.
    pub fn notes(&self) -> &[Note] {
        &self.prepared.notes
    }

    /// Whether applying would act on anything (conflicts act by failing).
    pub fn acts(&self) -> bool {
        self.plan().changes.iter().any(|c| c.action.is_applied())
    }

    /// The documented JSON form (`docs/OUTPUT.md`).
    pub fn to_json(&self) -> serde_json::Value {
        wire::plan_json(self.plan(), &self.roster, &self.targets, &self.steps, self.notes())
    }
}

impl serde::Serialize for Planned {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// Changes in flight at once.
    pub concurrency: usize,
    /// Run the targets' after-apply work (the host's checkout refresh).
    pub after_apply: bool,
}

/// An apply's outcome with the plan it applied.
#[derive(Debug)]
pub struct ApplyOutcome<'a> {
    pub report: ApplyReport,
    pub planned: &'a Planned,
}

impl ApplyOutcome<'_> {
    pub fn to_json(&self) -> serde_json::Value {
        wire::apply_json(&self.report, self.planned.to_json())
    }
}

impl Session {
    /// What would change under `request`.
    pub async fn plan(&self, request: &PlanRequest) -> Result<Planned> {
        let engine = self.engine().await?;
        let policy = self.policy(request).await?;
        let prepared = engine.prepare(self.roster(), policy).await?;
        Ok(Planned {
            steps: engine.describe(&prepared.plan),
            roster: self.roster().source.clone(),
            targets: engine.target_names(),
            prepared,
        })
    }

    /// Apply exactly `planned`. One user's failure never stops the others.
    pub async fn apply<'a>(
        &self,
        planned: &'a Planned,
        request: &ApplyRequest,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<ApplyOutcome<'a>> {
        let engine = self.engine().await?;
        let options = ApplyOptions {
            concurrency: request.concurrency,
            command: self.options.command.clone(),
            actor: self.options.actor.clone(),
            roster_digest: Some(self.roster_digest()),
            after_apply: request.after_apply,
            ..ApplyOptions::default()
        };
        let mut report = engine.apply(self.roster(), &planned.prepared, &options, progress).await?;
        let time = self.now();
        let roster = self.roster_ref();
        let events = crate::audit::apply_events(planned.plan(), &report, &self.run_context(&time, &roster));
        report.notes.extend(self.record_audit(events).await);
        Ok(ApplyOutcome { report, planned })
    }

    /// The request that performs the reversible cut of `user`, who must
    /// have left the roster (otherwise the next apply gives it all back).
    pub fn offboard_request(&self, user: &str) -> Result<PlanRequest> {
        if self.roster().users.contains_key(user) {
            return Err(AppError::usage(
                format!("`{user}` is still in the roster; the next apply would give everything back"),
                format!(
                    "remove `{user}` from the roster first (or set `workstation.parked: true` to only lock the login)"
                ),
            ));
        }
        Ok(PlanRequest {
            allow_revoke: false,
            offboard: true,
            only: vec![user.to_string()],
            with_platform: true,
            adopt: Vec::new(),
        })
    }

    async fn policy(&self, request: &PlanRequest) -> Result<Policy> {
        let only = if request.only.is_empty() {
            None
        } else {
            let known: BTreeSet<String> = self
                .engine()
                .await?
                .state_handle()
                .call(|s| s.inventory())
                .await?
                .users()
                .into_iter()
                .map(str::to_string)
                .collect();
            for user in &request.only {
                if !self.roster().users.contains_key(user) && !known.contains(user) {
                    return Err(AppError::usage(
                        format!("--only {user}: no such user in the roster or the state"),
                        "use a roster key, e.g. `--only alice`",
                    ));
                }
            }
            Some(request.only.iter().cloned().collect())
        };
        let mut adopt = std::collections::BTreeSet::new();
        for text in &request.adopt {
            let id: tenantry_core::ResourceId = text.parse().map_err(|e: tenantry_core::ParseIdError| {
                AppError::usage(format!("--adopt {text}: {}", e.0), "ids are printed by `tenantry plan`")
            })?;
            adopt.insert(id);
        }
        Ok(Policy {
            allow_revoke: request.allow_revoke,
            offboard: request.offboard,
            only,
            with_platform: request.with_platform,
            adopt,
        })
    }
}
