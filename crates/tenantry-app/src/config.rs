//! tenantry.toml: which targets are active, read through the registry.
//!
//! Each target crate owns its section (its config type, path resolution,
//! how it connects, what it adds to settings and validation) and offers one
//! `PLUGIN`; [`TARGETS`] lists them. Sections the spec names whose target
//! this build does not include are refused rather than silently ignored.

use crate::error::{AppError, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tenantry_core::plugin::{LoadContext, TargetPlugin, TargetSetup, list_in_words};
use tenantry_core::{Settings, Target};
use tenantry_local::LocalConfig;
use tenantry_model::ValidationContext;

/// Every target this build can apply, in routing order: the first one
/// registered for a domain applies it; local (last) renders what is left.
pub const TARGETS: &[&dyn TargetPlugin] = &[
    &tenantry_host::PLUGIN,
    &tenantry_kubernetes::PLUGIN,
    &tenantry_vault::PLUGIN,
    &tenantry_dns::PLUGIN,
    &tenantry_ci::PLUGIN,
    &tenantry_forge::PLUGIN,
    &tenantry_idp::PLUGIN,
    &tenantry_local::PLUGIN,
];

/// Sections of tenantry.toml that configure tenantry itself (`[audit]`) or
/// a front end (`[portal]`, `[serve]`, read through [`Config::section`]),
/// not a target.
pub const OWN_SECTIONS: &[&str] = &["audit", "portal", "serve"];

/// A loaded tenantry.toml.
#[derive(Debug, Default)]
pub struct Config {
    /// `[audit]`: the optional webhook announcing every apply.
    pub audit: crate::audit::AuditConfig,
    /// `[local]`: where rendered files and the state database go.
    pub local: LocalConfig,
    /// The configured targets, in routing order, with their sections' names.
    pub targets: Vec<(&'static str, Box<dyn TargetSetup>)>,
    /// Raw sections, for readers besides the targets (a `vault://` roster source).
    pub(crate) sections: toml::Table,
    /// Where relative paths in the file are taken from.
    pub context: LoadContext,
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
}

impl Config {
    /// Load from `explicit`, or ./tenantry.toml when present, or defaults.
    /// `roster_dir` is where roster-relative paths (managed-file sources) start.
    pub fn load(explicit: Option<&Path>, roster_dir: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from("tenantry.toml")).filter(|p| p.exists()),
        };
        let base = path.as_deref().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        let context = LoadContext { base, roster_dir: roster_dir.map(Path::to_path_buf) };
        let Some(path) = path else { return Config::parse("", "tenantry.toml", context) };
        let text = std::fs::read_to_string(&path).map_err(|source| AppError::read(path.display(), source))?;
        let mut config = Config::parse(&text, &path.display().to_string(), context)?;
        config.path = Some(path);
        Ok(config)
    }

    /// Parse the text of a tenantry.toml named `name`.
    pub fn parse(text: &str, name: &str, context: LoadContext) -> Result<Config> {
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            AppError::config(
                format!("{name}: {}", e.message()),
                format!("at {}; see examples/tenantry.toml for every section", position(text, e.span())),
            )
        })?;
        let known = || TARGETS.iter().map(|p| p.section()).chain(OWN_SECTIONS.iter().copied());
        for (section, value) in &table {
            if !known().any(|k| k == section) {
                let help = match tenantry_model::did_you_mean(section, known()) {
                    Some(candidate) => format!("did you mean `[{candidate}]`?"),
                    None => format!("the sections are: {}", known().collect::<Vec<_>>().join(", ")),
                };
                return Err(AppError::config(format!("{name}: unknown section `[{section}]`"), help));
            }
            if !value.is_table() {
                return Err(AppError::config(
                    format!("{name}: `{section}` must be a table"),
                    format!("write `[{section}]` on its own line"),
                ));
            }
        }
        let json = |section: &str| -> serde_json::Value {
            table.get(section).and_then(|value| serde_json::to_value(value).ok()).unwrap_or_default()
        };
        let invalid = |plugin: &dyn TargetPlugin, error: String| {
            AppError::config(
                format!("{name}: [{}]: {error}", plugin.section()),
                format!("[{}] takes {}", plugin.section(), list_in_words(plugin.keys())),
            )
        };
        let mut audit: crate::audit::AuditConfig = match table.get("audit") {
            None => Default::default(),
            Some(section) => serde_json::to_value(section).and_then(serde_json::from_value).map_err(|e| {
                AppError::config(
                    format!("{name}: [audit]: {e}"),
                    format!("[audit] takes {}", list_in_words(crate::audit::AuditConfig::keys())),
                )
            })?,
        };
        audit.webhook_url_file = audit.webhook_url_file.as_deref().map(|path| context.resolve(path));
        let local = LocalConfig::from_section(json("local"), &context)
            .map_err(|error| invalid(&tenantry_local::PLUGIN, error))?;
        let mut targets = Vec::new();
        for plugin in TARGETS {
            if !table.contains_key(plugin.section()) && !plugin.on_by_default() {
                continue;
            }
            let setup = plugin.load(json(plugin.section()), &context).map_err(|error| invalid(*plugin, error))?;
            if setup.enabled() {
                targets.push((plugin.section(), setup));
            }
        }
        Ok(Config { audit, local, targets, sections: table, context, path: None })
    }

    /// What derivation needs from the configured targets (Vault mount
    /// paths, DNS zones and whether records can be proxied).
    pub fn settings(&self) -> Settings {
        self.contributions().0
    }

    /// What roster validation needs to know from tenantry.toml.
    pub fn validation_context(&self) -> ValidationContext {
        self.contributions().1
    }

    fn contributions(&self) -> (Settings, ValidationContext) {
        let mut settings = Settings::default();
        let mut validation = ValidationContext::default();
        for (_, setup) in &self.targets {
            setup.contribute(&mut settings, &mut validation);
        }
        (settings, validation)
    }

    /// A front end's own section (`[portal]`, `[serve]`), as JSON; `Null` when absent.
    pub fn section(&self, name: &str) -> serde_json::Value {
        self.sections.get(name).and_then(|value| serde_json::to_value(value).ok()).unwrap_or_default()
    }

    /// The `[vault]` settings, for reading a `vault://` roster source.
    pub fn vault(&self) -> Result<Option<tenantry_vault::VaultConfig>> {
        let Some(section) = self.sections.get("vault") else { return Ok(None) };
        let value = serde_json::to_value(section).unwrap_or_default();
        tenantry_vault::load_config(value, &self.context)
            .map(Some)
            .map_err(|error| AppError::config(format!("[vault]: {error}"), "see examples/tenantry.toml"))
    }

    /// Connect every configured target, in routing order, for `platform`.
    pub async fn connect(&self, platform: &str) -> Result<Vec<Arc<dyn Target>>> {
        let mut connected = Vec::with_capacity(self.targets.len());
        for (section, setup) in &self.targets {
            let target = setup.connect(platform).await.map_err(|error| {
                // The target's own words, without the engine's prefix: it is not running yet.
                let message = if error.message.is_empty() { format!("[{section}]: {error}") } else { error.message };
                AppError::config(message, setup.connect_help())
            })?;
            connected.push(target);
        }
        Ok(connected)
    }
}

impl Config {
    /// Connect each configured target on its own: doctor reports the ones
    /// that fail and checks the others.
    pub async fn connect_each(
        &self,
        platform: &str,
    ) -> Vec<(&'static str, std::result::Result<Arc<dyn Target>, (String, String)>)> {
        let mut connected = Vec::with_capacity(self.targets.len());
        for (section, setup) in &self.targets {
            let result = setup.connect(platform).await.map_err(|error| {
                let message = if error.message.is_empty() { format!("[{section}]: {error}") } else { error.message };
                (message, setup.connect_help())
            });
            connected.push((*section, result));
        }
        connected
    }

    /// Where the audit log goes: next to the state database.
    pub fn audit_log(&self) -> PathBuf {
        let dir = self.local.state.parent().map(Path::to_path_buf).unwrap_or_default();
        dir.join(crate::audit::AUDIT_LOG)
    }
}

fn position(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else { return "an unknown position".to_string() };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    format!("line {line}, column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, "t.toml", LoadContext::default())
    }

    #[test]
    fn defaults_without_a_file_and_local_settings_with_one() {
        let config = parse("[local]\nout_dir = \"out\"\n").unwrap();
        assert_eq!(config.local.out_dir, PathBuf::from("out"));
        assert_eq!(config.local.state, PathBuf::from(".tenantry/state.db"));
        assert_eq!(config.targets.iter().map(|(s, _)| *s).collect::<Vec<_>>(), ["local"]);
        let off = parse("[local]\nenabled = false\n").unwrap();
        assert!(off.targets.is_empty(), "a disabled local target is not connected");
    }

    #[test]
    fn unknown_sections_and_keys_are_refused_with_a_fix() {
        let Err(AppError::Config { help, .. }) = parse("[kubernets]\n") else { panic!() };
        assert_eq!(help, "did you mean `[kubernetes]`?");
        // A wrong key is named, with the section's keys.
        let Err(AppError::Config { message, help }) = parse("[forge]\naddress = \"x\"\n") else { panic!() };
        assert!(message.contains("unknown field `address`"), "{message}");
        assert!(help.contains("url") && help.contains("token_file"), "{help}");
        let Err(AppError::Config { message, help }) = parse("[local]\nout_dri = \"x\"\n") else { panic!() };
        assert!(message.contains("unknown field `out_dri`"), "{message}");
        assert_eq!(help, "[local] takes out_dir, state and enabled");
    }

    #[test]
    fn a_front_end_section_is_known_and_read_by_its_front_end() {
        let config = parse("[portal]\nclient_id = \"tenantry-portal\"\n").unwrap();
        assert_eq!(config.section("portal")["client_id"], "tenantry-portal");
        assert!(config.section("serve").is_null(), "an absent section reads as null");
        let Err(AppError::Config { help, .. }) = parse("[portl]\n") else { panic!() };
        assert_eq!(help, "did you mean `[portal]`?");
    }

    #[test]
    fn the_host_dispatch_path_comes_from_tenantry_toml_and_must_be_absolute() {
        let config = parse("[host]\nroot = \"/tmp/sandbox\"\ndispatch_path = \"/srv/t3/dispatch.json\"\n").unwrap();
        assert_eq!(config.validation_context().host_dispatch_path.as_deref(), Some("/srv/t3/dispatch.json"));
        let Err(AppError::Config { message, help }) = parse("[host]\ndispatch_path = \"dispatch.json\"\n") else {
            panic!()
        };
        assert!(message.contains("must be absolute"), "{message}");
        assert!(help.contains("dispatch_path"), "{help}");
    }

    #[test]
    fn the_audit_section_is_known_and_checked() {
        let config = parse("[audit]\nwebhook_url_file = \"hook.url\"\nwebhook_timeout_seconds = 3\n").unwrap();
        assert!(config.audit.webhook_url_file.as_deref().is_some_and(|p| p.is_absolute() && p.ends_with("hook.url")));
        assert_eq!(config.audit.timeout(), std::time::Duration::from_secs(3));
        let Err(AppError::Config { message, help }) = parse("[audit]\nwebhook_url = \"https://x\"\n") else { panic!() };
        assert!(message.contains("unknown field `webhook_url`"), "{message}");
        assert_eq!(help, "[audit] takes webhook_url_file and webhook_timeout_seconds");
    }

    #[test]
    fn every_registered_target_names_its_keys() {
        for plugin in TARGETS {
            assert!(!plugin.keys().is_empty(), "[{}] lists no keys", plugin.section());
        }
    }
}
