//! `[ci]` in the target registry.

use crate::{CiConfig, CiTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Target, TargetError};

/// The CI target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "ci"
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<CiConfig>()
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        let mut config: CiConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
        config.check()?;
        config.token_file = config.token_file.as_deref().map(|file| context.resolve(file));
        Ok(Box::new(config))
    }
}

#[async_trait::async_trait]
impl TargetSetup for CiConfig {
    async fn connect(&self, _platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        let env = |name: &str| std::env::var(name).ok();
        Ok(Arc::new(CiTarget::connect(self, &env).await?))
    }

    fn connect_help(&self) -> String {
        "check [ci] url, and token_file (mode 0600) or WOODPECKER_TOKEN: a Woodpecker admin's personal access token"
            .to_string()
    }
}
