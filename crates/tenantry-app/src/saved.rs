//! `plan --out FILE` and `apply FILE`: the applied plan is the reviewed plan
//! (terraform's `plan -out` contract, which CI workflows rely on).
//!
//! The file holds the roster's digest, the request the plan was made with,
//! and for every change apply would act on its action and a digest of what
//! was observed (`before`) and what is wanted (`after`) — digests, so no
//! secret is ever written to the file. `apply FILE` plans again under the
//! same request and applies only when the fresh plan is exactly the saved
//! one; otherwise it refuses, naming what moved, and changes nothing.

use crate::error::{AppError, Result};
use crate::plan::{PlanRequest, Planned};
use crate::session::Session;
use crate::wire::FORMAT_VERSION;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tenantry_core::{Change, Content};

const KIND: &str = "tenantry-plan";
/// At most this many differences are named when a saved plan is stale.
const SHOWN_DIFFERENCES: usize = 10;

/// A plan as saved for review.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub kind: String,
    pub format_version: String,
    /// The roster's source name and SHA-256 of its text.
    pub roster: String,
    pub roster_digest: String,
    pub request: SavedRequest,
    pub targets: Vec<String>,
    /// What apply would act on, by id.
    pub changes: BTreeMap<String, SavedChange>,
    /// The plan's documented JSON form, for a reviewer (sensitive contents redacted).
    pub plan: serde_json::Value,
}

/// The request a plan was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRequest {
    pub allow_revoke: bool,
    pub offboard: bool,
    pub only: Vec<String>,
    pub with_platform: bool,
    pub adopt: Vec<String>,
}

/// One change apply would act on, by what it saw and wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedChange {
    pub target: String,
    pub action: String,
    /// SHA-256 of the observed content (none when absent).
    pub before: Option<String>,
    /// SHA-256 of the wanted content (none for a removal).
    pub after: Option<String>,
}

fn digest(content: Option<&Content>) -> Option<String> {
    use sha2::Digest as _;
    content.map(|c| sha2::Sha256::digest(c.as_str().as_bytes()).iter().map(|b| format!("{b:02x}")).collect())
}

fn saved_changes(planned: &Planned) -> BTreeMap<String, SavedChange> {
    planned
        .plan()
        .changes
        .iter()
        .filter(|c| c.action.is_applied())
        .map(|c: &Change| {
            let saved = SavedChange {
                target: c.target.clone(),
                action: c.action.as_str().to_string(),
                before: digest(c.before.as_ref()),
                after: digest(c.after.as_ref()),
            };
            (c.id.to_string(), saved)
        })
        .collect()
}

impl From<&PlanRequest> for SavedRequest {
    fn from(request: &PlanRequest) -> SavedRequest {
        SavedRequest {
            allow_revoke: request.allow_revoke,
            offboard: request.offboard,
            only: request.only.clone(),
            with_platform: request.with_platform,
            adopt: request.adopt.clone(),
        }
    }
}

impl From<&SavedRequest> for PlanRequest {
    fn from(saved: &SavedRequest) -> PlanRequest {
        PlanRequest {
            allow_revoke: saved.allow_revoke,
            offboard: saved.offboard,
            only: saved.only.clone(),
            with_platform: saved.with_platform,
            adopt: saved.adopt.clone(),
        }
    }
}

impl Session {
    /// Save `planned` (made under `request`) to `path`, a new file (0600).
    pub fn save_plan(&self, planned: &Planned, request: &PlanRequest, path: &Path) -> Result<SavedPlan> {
        let saved = SavedPlan {
            kind: KIND.to_string(),
            format_version: FORMAT_VERSION.to_string(),
            roster: self.roster().source.clone(),
            roster_digest: self.roster_digest(),
            request: request.into(),
            targets: planned.targets.clone(),
            changes: saved_changes(planned),
            plan: planned.to_json(),
        };
        let text = serde_json::to_vec_pretty(&saved)
            .map_err(|e| AppError::config(format!("cannot write the plan: {e}"), "run again"))?;
        crate::access::write_file(path, &text, 0o600, true)?;
        Ok(saved)
    }

    /// Plan again exactly as `path` was planned, and return the fresh plan
    /// only when it is the saved one; otherwise a "stale plan" error naming
    /// what moved.
    pub async fn replan_saved(&self, path: &Path) -> Result<Planned> {
        let text = std::fs::read(path).map_err(|e| AppError::read(path.display(), e))?;
        let saved: SavedPlan =
            serde_json::from_slice(&text).ok().filter(|saved: &SavedPlan| saved.kind == KIND).ok_or_else(|| {
                AppError::usage(
                    format!("{} is not a plan saved by `tenantry plan --out`", path.display()),
                    "save one with `tenantry plan --out FILE`, review it, then `tenantry apply FILE`",
                )
            })?;
        if saved.format_version != FORMAT_VERSION {
            return Err(AppError::usage(
                format!(
                    "{} was saved by another version of tenantry (format {})",
                    path.display(),
                    saved.format_version
                ),
                "plan again with this version: `tenantry plan --out FILE`",
            ));
        }
        let stale = |what: String| {
            AppError::usage(
                format!("stale plan {}: {what}; nothing was applied", path.display()),
                "review a fresh plan: `tenantry plan --out FILE`, then `tenantry apply FILE`",
            )
        };
        if saved.roster_digest != self.roster_digest() {
            return Err(stale(format!(
                "the roster {} changed since the plan was saved (it was {})",
                self.roster().source,
                saved.roster
            )));
        }
        let planned = self.plan(&PlanRequest::from(&saved.request)).await?;
        if planned.targets != saved.targets {
            return Err(stale(format!(
                "the targets are now {} (the plan was made for {})",
                planned.targets.join(", "),
                saved.targets.join(", ")
            )));
        }
        let fresh = saved_changes(&planned);
        let mut moved = Vec::new();
        for (id, change) in &saved.changes {
            match fresh.get(id) {
                None => moved.push(format!("{id} needs no `{}` any more", change.action)),
                Some(now) if now.action != change.action => {
                    moved.push(format!("{id} is now `{}`, not `{}`", now.action, change.action))
                }
                Some(now) if now.before != change.before => moved.push(format!("{id} changed since it was observed")),
                Some(now) if now != change => moved.push(format!("{id} is now wanted differently")),
                Some(_) => {}
            }
        }
        for (id, change) in fresh.iter().filter(|(id, _)| !saved.changes.contains_key(*id)) {
            moved.push(format!("{id} now needs `{}` (drift since the plan)", change.action));
        }
        if !moved.is_empty() {
            let count = moved.len();
            moved.truncate(SHOWN_DIFFERENCES);
            let more = if count > SHOWN_DIFFERENCES {
                format!("; and {} more", count - SHOWN_DIFFERENCES)
            } else {
                String::new()
            };
            return Err(stale(format!("{count} change(s) moved: {}{more}", moved.join("; "))));
        }
        Ok(planned)
    }
}
