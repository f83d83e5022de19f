//! The tenant portal inside `serve` (SPEC §11.2): when tenantry.toml has a
//! `[portal]`, its router is merged into serve's routes and each pass's
//! report becomes the admin pages' "last reconcile". The portal is its own
//! crate; this module only builds it and hands it each new model.

use std::sync::Arc;
use std::time::SystemTime;
use tenantry_app::{Controller, PassReport, Session, SessionOptions, TargetOutcome};
use tenantry_portal::{Portal, ReconcileSource, TargetRow, model_from_session};

/// The portal of `options`' tenantry.toml, or `None` without a `[portal]`.
/// Live quota usage is read from the cluster when the Kubernetes target is
/// configured.
pub async fn start(controller: &Controller, options: &SessionOptions) -> Result<Option<Arc<Portal>>, String> {
    if controller.config().section("portal").is_null() {
        return Ok(None);
    }
    let cluster = match controller.config().applies_kubernetes() {
        true => controller.config().kube_client().await.ok(),
        false => None,
    };
    let session = Session::open(options.clone()).map_err(|e| e.to_string())?;
    Portal::from_session(&session, ReconcileSource::None, cluster).await.map_err(|e| e.to_string())
}

/// Rebuild the portal's model after a pass, in the background: the views
/// are derived from the roster in force and the pass's report is the last
/// reconcile. A failure keeps the previous model and is logged.
pub fn publish(portal: &Arc<Portal>, options: &SessionOptions, report: &PassReport, trigger: String) {
    let (portal, options) = (Arc::clone(portal), options.clone());
    let targets = report
        .targets
        .iter()
        .map(|(name, outcome)| {
            let (state, detail, failures) = match outcome {
                TargetOutcome::Reached { failures } => ("reached", String::new(), *failures),
                TargetOutcome::Down(error) => ("down", error.clone(), 0),
                TargetOutcome::Held => ("held", String::new(), 0),
            };
            let changes = report.applied.iter().filter(|((target, _), _)| target == name).map(|(_, n)| n).sum();
            TargetRow { name: name.clone(), state: state.to_string(), detail, changes, failures }
        })
        .collect();
    let source = ReconcileSource::Report {
        json: report.json.clone(),
        at: SystemTime::now(),
        what: format!("tenantry serve ({trigger})"),
        targets,
    };
    tokio::spawn(async move {
        let built = match Session::open(options) {
            Ok(session) => model_from_session(&session, source, SystemTime::now()).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match built {
            Ok(model) => portal.publish(model),
            Err(error) => tracing::warn!(%error, "the portal keeps its previous view: building the new one failed"),
        }
    });
}
