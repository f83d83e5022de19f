//! The cluster as more than a target: the `[kubernetes]` credentials for a
//! `kubernetes://` roster source and for `serve`'s watches and Lease.

use crate::config::Config;
use crate::error::{AppError, Result};
use tenantry_kubernetes::KubernetesConfig;

pub use tenantry_kubernetes::watch::Drift;

impl Config {
    /// `[kubernetes]` as configured, or `None` when the section is absent.
    pub fn kubernetes(&self) -> Result<Option<KubernetesConfig>> {
        let Some(section) = self.sections.get("kubernetes") else { return Ok(None) };
        let value = serde_json::to_value(section).unwrap_or_default();
        tenantry_kubernetes::load_config(value, &self.context)
            .map(Some)
            .map_err(|error| AppError::config(format!("[kubernetes]: {error}"), "see examples/tenantry.toml"))
    }

    /// A client with the `[kubernetes]` credentials, or (without the
    /// section) `$KUBECONFIG`, `~/.kube/config` or the in-cluster account.
    pub async fn kube_client(&self) -> Result<kube::Client> {
        let settings = self.kubernetes()?.unwrap_or_default();
        tenantry_kubernetes::watch_client(&settings).await.map_err(|error| {
            AppError::config(
                format!("cannot reach the cluster: {}", error.message),
                "check [kubernetes] kubeconfig and context in tenantry.toml, or run in a cluster",
            )
        })
    }

    /// Whether the cluster target is configured (its objects can be watched).
    pub fn applies_kubernetes(&self) -> bool {
        self.targets.iter().any(|(section, _)| *section == "kubernetes")
    }
}
