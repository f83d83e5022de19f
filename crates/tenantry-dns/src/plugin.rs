//! `[dns]` in tenantry.toml.

use crate::{DnsConfig, DnsTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Settings, Target, TargetError};
use tenantry_model::ValidationContext;

/// The DNS target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "dns"
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<DnsConfig>()
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        let mut config: DnsConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
        config.check().map_err(|e| e.to_string())?;
        config.tsig_key_file = config.tsig_key_file.as_deref().map(|file| context.resolve(file));
        config.api_key_file = config.api_key_file.as_deref().map(|file| context.resolve(file));
        config.api_token_file = config.api_token_file.as_deref().map(|file| context.resolve(file));
        Ok(Box::new(config))
    }
}

#[async_trait::async_trait]
impl TargetSetup for DnsConfig {
    /// User domains may fall in the managed zones; records are proxied only
    /// where the provider can (SPEC §3 "proxied where supported").
    fn contribute(&self, settings: &mut Settings, validation: &mut ValidationContext) {
        settings.dns_zones = self.zones();
        settings.dns_proxy_supported = self.provider.supports_proxy();
        validation.dns_zones = self.zones();
    }

    async fn connect(&self, platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        let target = DnsTarget::connect(self)
            .await
            .map_err(|e| TargetError::unavailable(e.to_string()))?
            .with_platform(platform);
        Ok(Arc::new(target))
    }

    fn connect_help(&self) -> String {
        "check [dns] provider, server or api_url, and its key file (mode 0600) or token".to_string()
    }
}
