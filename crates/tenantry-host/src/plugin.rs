//! `[host]` in tenantry.toml.

use crate::{HostConfig, HostTarget};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, struct_fields};
use tenantry_core::{Target, TargetError};

/// The workstation host target's entry in the registry.
#[derive(Debug)]
pub struct Plugin;

pub static PLUGIN: Plugin = Plugin;

impl TargetPlugin for Plugin {
    fn section(&self) -> &'static str {
        "host"
    }

    fn keys(&self) -> &'static [&'static str] {
        struct_fields::<HostConfig>()
    }

    fn checks(&self) -> &'static [tenantry_core::doctor::CheckInfo] {
        crate::CHECKS
    }

    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String> {
        Ok(Box::new(load_config(section, context)?))
    }
}

/// `[host]` read and its paths resolved (also for `tenantry session`, which
/// needs the settings without the target).
pub fn load_config(section: serde_json::Value, context: &LoadContext) -> Result<HostConfig, String> {
    let section = if section.is_null() { serde_json::json!({}) } else { section };
    let mut config: HostConfig = serde_json::from_value(section).map_err(|e| e.to_string())?;
    if let Some(path) = &config.dispatch_path
        && !path.starts_with('/')
    {
        return Err(format!("dispatch_path `{path}` must be absolute (it is taken inside root)"));
    }
    if let Some(words) = &config.tenantry_command {
        if !words.first().is_some_and(|program| program.starts_with('/')) {
            return Err("tenantry_command must start with the absolute path of the tenantry binary".to_string());
        }
        if let Some(word) = words.iter().find(|w| w.is_empty() || w.chars().any(char::is_control)) {
            return Err(format!(
                "tenantry_command word `{}` is empty or holds a control character",
                word.escape_debug()
            ));
        }
    }
    if let Some(socket) = &config.tmux_socket
        && (!socket.starts_with('/') || socket.chars().any(char::is_control))
    {
        return Err(format!("tmux_socket `{}` must be an absolute path", socket.escape_debug()));
    }
    config.root = context.resolve(&config.root);
    config.backup_dir = config.backup_dir.as_deref().map(|dir| context.resolve(dir));
    config.git_crypt_key_file = config.git_crypt_key_file.as_deref().map(|file| context.resolve(file));
    // Managed-file sources are named relative to the roster unless configured.
    config.source_dir = match config.source_dir.as_deref() {
        Some(dir) => Some(context.resolve(dir)),
        None => Some(context.roster_dir.clone().unwrap_or_else(|| ".".into())),
    };
    Ok(config)
}

#[async_trait::async_trait]
impl TargetSetup for HostConfig {
    /// Where the dispatch map goes, when tenantry.toml says (it wins over the roster).
    fn contribute(&self, settings: &mut tenantry_core::Settings, validation: &mut tenantry_model::ValidationContext) {
        validation.host_dispatch_path = self.dispatch_path.clone();
        // With a forge target, workstation users then get contribute access.
        settings.host_applies = true;
        settings.host_tenantry_command = self.tenantry_command.clone();
        settings.host_git_crypt_unlock = self.git_crypt_key_file.is_some();
    }

    async fn connect(&self, platform: &str) -> Result<Arc<dyn Target>, TargetError> {
        Ok(Arc::new(HostTarget::new(self.clone()).with_platform(platform)))
    }

    fn connect_help(&self) -> String {
        "check [host] root in tenantry.toml".to_string()
    }
}
