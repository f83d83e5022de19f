//! The tenant portal inside `serve` (SPEC §11.2): when tenantry.toml has a
//! `[portal]`, its router is merged into serve's routes and each pass's
//! report becomes the admin pages' "last reconcile". The portal is its own
//! crate; this module only builds it and hands it each new model.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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

/// The portal and what rebuilding its model needs. One rebuild runs at a
/// time: passes that end meanwhile leave only their latest report, which
/// the running rebuild picks up when it is done (at 10,000 users a rebuild
/// derives for seconds; drift can end several passes in that time).
pub struct Publisher {
    portal: Arc<Portal>,
    options: SessionOptions,
    latest: Arc<Mutex<Option<ReconcileSource>>>,
    building: Arc<AtomicBool>,
}

impl Publisher {
    pub fn new(portal: &Arc<Portal>, options: &SessionOptions) -> Publisher {
        Publisher {
            portal: Arc::clone(portal),
            options: options.clone(),
            latest: Arc::new(Mutex::new(None)),
            building: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Show `report` (the pass that ran because of `trigger`) as the last
    /// reconcile, with views derived from the roster in force. A failure
    /// keeps the previous model and is logged.
    pub fn publish(&self, report: &PassReport, trigger: &str) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(source_of(report, trigger));
        }
        if self.building.swap(true, Ordering::SeqCst) {
            return; // the running rebuild takes the new report next
        }
        let (portal, options) = (Arc::clone(&self.portal), self.options.clone());
        let (latest, building) = (Arc::clone(&self.latest), Arc::clone(&self.building));
        tokio::spawn(async move {
            loop {
                let next = latest.lock().ok().and_then(|mut l| l.take());
                let Some(source) = next else {
                    building.store(false, Ordering::SeqCst);
                    // A report that came between the take and the store.
                    if latest.lock().map(|l| l.is_none()).unwrap_or(true) || building.swap(true, Ordering::SeqCst) {
                        return;
                    }
                    continue;
                };
                let built = match Session::open(options.clone()) {
                    Ok(session) => {
                        model_from_session(&session, source, SystemTime::now()).await.map_err(|e| e.to_string())
                    }
                    Err(error) => Err(error.to_string()),
                };
                match built {
                    Ok(model) => portal.publish(model),
                    Err(error) => {
                        tracing::warn!(%error, "the portal keeps its previous view: building the new one failed")
                    }
                }
            }
        });
    }
}

/// A pass's report as the portal's "last reconcile".
fn source_of(report: &PassReport, trigger: &str) -> ReconcileSource {
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
    ReconcileSource::Report {
        json: report.json.clone(),
        at: SystemTime::now(),
        what: format!("tenantry serve ({trigger})"),
        targets,
    }
}
