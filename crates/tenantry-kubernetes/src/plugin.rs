//! `[kubernetes]` in tenantry.toml.

use crate::{KubernetesConfig, KubernetesTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Target, TargetError};

/// The cluster target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "kubernetes"
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<KubernetesConfig>()
    }

    fn checks(&self) -> &'static [tenantry_core::doctor::CheckInfo] {
        crate::CHECKS
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        Ok(Box::new(load_config(section, context)?))
    }
}

/// Read `[kubernetes]` (paths resolved), for readers besides the target:
/// a `kubernetes://` roster source, `serve`'s watches and Lease.
pub fn load_config(section: serde_json::Value, context: &LoadContext) -> Result<KubernetesConfig, String> {
    let mut config: KubernetesConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
    config.kubeconfig = config.kubeconfig.as_deref().map(|path| context.resolve(path));
    config.timeouts()?;
    Ok(config)
}

#[async_trait::async_trait]
impl TargetSetup for KubernetesConfig {
    async fn connect(&self, _platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        let target = KubernetesTarget::connect(self)
            .await
            .map_err(|e| TargetError::unavailable(e.in_target("kubernetes").to_string()))?;
        Ok(Arc::new(target))
    }

    fn connect_help(&self) -> String {
        "check [kubernetes] kubeconfig and context in tenantry.toml, and that the API server is reachable".to_string()
    }
}
