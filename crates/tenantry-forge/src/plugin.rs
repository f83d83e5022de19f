//! `[forge]` in the target registry.

use crate::{ForgeConfig, ForgeTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Settings, Target, TargetError};
use tenantry_model::ValidationContext;

/// The forge target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "forge"
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<ForgeConfig>()
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        let mut config: ForgeConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
        config.check()?;
        config.token_file = config.token_file.as_deref().map(|file| context.resolve(file));
        Ok(Box::new(config))
    }
}

#[async_trait::async_trait]
impl TargetSetup for ForgeConfig {
    /// Workstation users get contribute access against this forge (when the
    /// host target applies too).
    fn contribute(&self, settings: &mut Settings, _validation: &mut ValidationContext) {
        settings.forge_url = Some(self.base_url().to_string());
    }

    async fn connect(&self, _platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        let env = |name: &str| std::env::var(name).ok();
        Ok(Arc::new(ForgeTarget::connect(self, &env).await?))
    }

    fn connect_help(&self) -> String {
        "check [forge] url, and token_file (mode 0600) or FORGE_TOKEN: a site administrator's token".to_string()
    }
}
