//! Building the model from a `tenantry_app::Session`, without the CLI:
//! every user's view from one derivation, the kubeconfig every user
//! downloads, and the last reconcile — given by the caller (`serve` hands
//! in its pass's report), or planned here (observing every target, applying
//! nothing), or none.

use crate::error::PortalError;
use crate::model::{PortalModel, Unavailable};
use crate::reconcile::{LastReconcile, TargetRow};
use std::time::SystemTime;
use tenantry_app::{PlanRequest, Session};

/// Where the admin pages' "last reconcile" comes from.
#[derive(Debug, Clone)]
pub enum ReconcileSource {
    /// Nothing has run: tenants see grants without a state.
    None,
    /// Plan now (every target observed, nothing applied): DNS state and
    /// drift are what the targets show at this moment.
    Plan,
    /// A report the caller has: `apply --output json` or `plan --output
    /// json` (docs/OUTPUT.md), when it finished, what ran it, and each
    /// target's state (empty: the report's targets, each reached).
    Report { json: serde_json::Value, at: SystemTime, what: String, targets: Vec<TargetRow> },
}

/// The portal's model for `session`'s roster.
pub async fn model_from_session(
    session: &Session,
    reconcile: ReconcileSource,
    now: SystemTime,
) -> Result<PortalModel, PortalError> {
    let views = session.user_views().await?;
    let last = match reconcile {
        ReconcileSource::None => None,
        ReconcileSource::Plan => {
            let planned = session.plan(&PlanRequest::default()).await?;
            let what = match session.last_run().await? {
                Some(run) => format!(
                    "planned by the portal, nothing applied; the last apply was run #{} ({}), {}",
                    run.run,
                    run.command,
                    run.finished_at.map(|at| format!("finished {at}")).unwrap_or_else(|| "interrupted".to_string())
                ),
                None => "planned by the portal; nothing was ever applied".to_string(),
            };
            Some(LastReconcile::from_report(&planned.to_json(), Some(now), what, Vec::new()))
        }
        ReconcileSource::Report { json, at, what, targets } => {
            Some(LastReconcile::from_report(&json, Some(at), what, targets))
        }
    };
    let kubeconfig = match views.first() {
        Some(first) => session
            .kubeconfig(&first.user)
            .map_err(|error| Unavailable { message: error.to_string(), help: error.help().unwrap_or_default() }),
        None => Err(Unavailable { message: "the roster has no users".to_string(), help: String::new() }),
    };
    Ok(PortalModel::new(
        views,
        session.roster().platform.clone(),
        session.roster().source.clone(),
        kubeconfig,
        last,
        now,
    ))
}
