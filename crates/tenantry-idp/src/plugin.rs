//! `[idp]` in tenantry.toml.

use crate::{IdpConfig, IdpTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Settings, Target, TargetError};
use tenantry_model::ValidationContext;

/// The identity-provider target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "idp"
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<IdpConfig>()
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        Ok(Box::new(load_config(section, context)?))
    }
}

/// `[idp]` with its paths resolved and checked.
pub fn load_config(section: serde_json::Value, context: &LoadContext) -> Result<IdpConfig, String> {
    let mut config: IdpConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
    config.check()?;
    for file in [&mut config.token_file, &mut config.client_secret_file, &mut config.ca_file] {
        *file = file.as_deref().map(|path| context.resolve(path));
    }
    Ok(config)
}

#[async_trait::async_trait]
impl TargetSetup for IdpConfig {
    fn contribute(&self, settings: &mut Settings, _validation: &mut ValidationContext) {
        settings.idp_disable_on_cut = self.disable_on_cut;
    }

    async fn connect(&self, _platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        let target = IdpTarget::connect(self).await.map_err(|e| TargetError::unavailable(e.to_string()))?;
        Ok(Arc::new(target))
    }

    fn connect_help(&self) -> String {
        "check [idp] url, realm and the credentials (token_file or IDP_TOKEN; for Keycloak client_id + client_secret_file, mode 0600)".to_string()
    }
}
