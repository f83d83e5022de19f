//! Building the model from a `tenantry_app::Session`, without the CLI:
//! every user's view from one derivation, the kubeconfig every user
//! downloads, and the last reconcile — given by the caller (`serve` hands
//! in its pass's report), or planned here (observing every target, applying
//! nothing), or none.

use crate::config::PortalSettings;
use crate::error::PortalError;
use crate::live::{KubeQuotas, NoCluster, QuotaSource};
use crate::model::{PortalModel, Unavailable};
use crate::portal::Portal;
use crate::reconcile::{LastReconcile, TargetRow};
use crate::session::system_clock;
use std::sync::Arc;
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

impl Portal {
    /// The portal of `session`'s tenantry.toml and roster, or `None` when
    /// tenantry.toml has no `[portal]`: settings from `[portal]`, the model
    /// from [`model_from_session`], live quota usage through `cluster` (none:
    /// pages show the limits tenantry sets), the system clock. Serve it with
    /// [`crate::router`]; give it each new model with [`Portal::publish`].
    pub async fn from_session(
        session: &Session,
        reconcile: ReconcileSource,
        cluster: Option<kube::Client>,
    ) -> Result<Option<Arc<Portal>>, PortalError> {
        let Some(settings) = PortalSettings::from_config(session.config())? else { return Ok(None) };
        let model = model_from_session(session, reconcile, SystemTime::now()).await?;
        let quotas: Arc<dyn QuotaSource> = match cluster {
            Some(client) => Arc::new(KubeQuotas::new(client, settings.live_timeout)),
            None => Arc::new(NoCluster),
        };
        Portal::new(settings, model, quotas, system_clock()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn session(dir: &std::path::Path, portal: bool) -> Session {
        std::fs::write(
            dir.join("roster.yaml"),
            "platform: { name: lab }\nusers:\n  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice] }\n",
        )
        .unwrap();
        let secret = dir.join("client.secret");
        std::fs::write(&secret, "s3cret").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut toml = "[local]\nout_dir = \"out\"\nstate = \"state.db\"\n".to_string();
        if portal {
            toml.push_str("[portal]\npublic_url = \"https://portal.example.org/\"\nclient_id = \"portal\"\nclient_secret_file = \"client.secret\"\n");
        }
        std::fs::write(dir.join("tenantry.toml"), toml).unwrap();
        let mut options = tenantry_app::SessionOptions::new(dir.join("roster.yaml").display().to_string());
        options.config = Some(dir.join("tenantry.toml"));
        Session::open(options).unwrap()
    }

    #[tokio::test]
    async fn a_portal_comes_from_a_session_with_a_portal_section() {
        let dir = tempfile::tempdir().unwrap();
        let portal = Portal::from_session(&session(dir.path(), true), ReconcileSource::None, None).await.unwrap();
        let portal = portal.expect("[portal] is configured");
        assert_eq!(portal.model().len(), 1);
        assert!(portal.model().user_by_email("Alice@example.org").is_some());
        assert!(portal.settings().secure_cookies(), "https public_url: Secure cookies");

        let dir = tempfile::tempdir().unwrap();
        let none = Portal::from_session(&session(dir.path(), false), ReconcileSource::None, None).await.unwrap();
        assert!(none.is_none(), "without [portal] there is nothing to mount");
    }
}
