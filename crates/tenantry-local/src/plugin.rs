//! `[local]` in tenantry.toml: the embedded default, on unless disabled.

use crate::{LocalConfig, LocalTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Domain, Target, TargetError};

/// The local target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl LocalConfig {
    /// Read `[local]` (`Null` when absent: the defaults), paths relative to tenantry.toml.
    pub fn from_section(section: serde_json::Value, context: &LoadContext) -> Result<LocalConfig, String> {
        let mut config: LocalConfig = if section.is_null() {
            LocalConfig::default()
        } else {
            serde_json::from_value(section).map_err(|e| e.to_string())?
        };
        config.out_dir = context.base.join(&config.out_dir);
        config.state = context.base.join(&config.state);
        Ok(config)
    }
}

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "local"
    }

    fn on_by_default(&self) -> bool {
        true
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<LocalConfig>()
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        Ok(Box::new(LocalConfig::from_section(section, context)?))
    }
}

#[async_trait::async_trait]
impl TargetSetup for LocalConfig {
    /// Renders every domain no live target before it applies.
    async fn connect(&self, _platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        Ok(Arc::new(LocalTarget::new(self.out_dir.clone(), Domain::ALL.to_vec())))
    }

    fn connect_help(&self) -> String {
        "check [local] out_dir in tenantry.toml".to_string()
    }

    fn enabled(&self) -> bool {
        self.enabled
    }
}
