//! `[vault]` in tenantry.toml.

use crate::{VaultConfig, VaultTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Settings, Target, TargetError};
use tenantry_model::ValidationContext;

/// The Vault/OpenBao target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "vault"
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<VaultConfig>()
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        Ok(Box::new(load_config(section, context)?))
    }
}

/// `[vault]` with its paths resolved; also what reads a `vault://` roster source.
pub fn load_config(section: serde_json::Value, context: &LoadContext) -> Result<VaultConfig, String> {
    let mut config: VaultConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
    config.token_file = config.token_file.as_deref().map(|file| context.resolve(file));
    config.ca_file = config.ca_file.as_deref().map(|file| context.resolve(file));
    Ok(config)
}

#[async_trait::async_trait]
impl TargetSetup for VaultConfig {
    fn contribute(&self, settings: &mut Settings, _validation: &mut ValidationContext) {
        *settings = self.settings(std::mem::take(settings));
    }

    async fn connect(&self, platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        let target = VaultTarget::connect(self)
            .await
            .map_err(|e| TargetError::unavailable(e.to_string()))?
            .with_platform(platform);
        Ok(Arc::new(target))
    }

    fn connect_help(&self) -> String {
        "check [vault] address and the token (VAULT_TOKEN or token_file, mode 0600)".to_string()
    }
}
