//! Where the roster comes from: a file, `vault://<kv-mount>/<path>#<key>`
//! (the origin platform's `k8s_users` JSON in a KV v2 entry, SPEC §2.3), or
//! `kubernetes://<namespace>/<name>#<key>` (a roster YAML in a ConfigMap,
//! SPEC §11.1, read with the `[kubernetes]` credentials), or
//! `kubernetes://tenants` (the `Tenant` and `Platform` custom resources,
//! assembled by `tenantry_model::crd::assemble`).

use crate::config::Config;
use crate::error::{AppError, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tenantry_kubernetes::tenants::RosterObjects;
use tenantry_model::{Diagnostic, Diagnostics, Roster, ValidationContext};
use tenantry_vault::VaultConfig;

/// Which kind of source a roster name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    File,
    /// `vault://…`
    Vault,
    /// `kubernetes://<namespace>/<name>#<key>`
    ConfigMap,
    /// `kubernetes://tenants`
    Tenants,
}

/// The roster source of the `Tenant` and `Platform` custom resources.
pub const TENANTS_SOURCE: &str = "kubernetes://tenants";

/// A parsed `kubernetes://tenants[?selector=<label selector>]` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantsSource {
    /// Only the `Tenant` and `Platform` objects with these labels (several
    /// rosters in one cluster); `None`: every object.
    pub selector: Option<String>,
}

impl TenantsSource {
    /// `kubernetes://tenants?selector=roster=lab` → the objects labelled `roster=lab`.
    pub fn parse(source: &str) -> Result<Option<TenantsSource>> {
        let Some(rest) = source.strip_prefix(TENANTS_SOURCE) else { return Ok(None) };
        if rest.is_empty() {
            return Ok(Some(TenantsSource { selector: None }));
        }
        let selector = rest.strip_prefix("?selector=").filter(|s| {
            !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=!,()".contains(c) || c == ' ')
        });
        match selector {
            Some(selector) => Ok(Some(TenantsSource { selector: Some(selector.to_string()) })),
            None if rest.starts_with('?') || rest.starts_with('/') => Err(AppError::usage(
                format!("`{source}` is not a Tenant roster source"),
                "write kubernetes://tenants, or kubernetes://tenants?selector=<label selector> for the objects of one roster",
            )),
            None => Ok(None),
        }
    }
}

impl SourceKind {
    pub fn of(source: &str) -> SourceKind {
        if source.starts_with("vault://") {
            SourceKind::Vault
        } else if source == TENANTS_SOURCE || source.starts_with("kubernetes://tenants?") {
            SourceKind::Tenants
        } else if source.starts_with("kubernetes://") {
            SourceKind::ConfigMap
        } else {
            SourceKind::File
        }
    }
}

/// A parsed `vault://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSource {
    pub mount: String,
    pub path: String,
    pub key: String,
}

impl VaultSource {
    /// `vault://secret/platform#k8s_users` → mount `secret`, path `platform`, key `k8s_users`.
    pub fn parse(source: &str) -> Result<Option<VaultSource>> {
        let Some(rest) = source.strip_prefix("vault://") else { return Ok(None) };
        let usage = || {
            AppError::usage(
                format!("`{source}` is not a Vault roster source"),
                "write it as vault://<kv-mount>/<path>#<key>, e.g. vault://secret/platform#k8s_users",
            )
        };
        let (location, key) = rest.split_once('#').ok_or_else(usage)?;
        let (mount, path) = location.trim_matches('/').split_once('/').ok_or_else(usage)?;
        if mount.is_empty() || path.trim_matches('/').is_empty() || key.is_empty() {
            return Err(usage());
        }
        Ok(Some(VaultSource {
            mount: mount.to_string(),
            path: path.trim_matches('/').to_string(),
            key: key.to_string(),
        }))
    }
}

/// A parsed `kubernetes://` source: one key of one ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigMapSource {
    pub namespace: String,
    pub name: String,
    pub key: String,
}

impl ConfigMapSource {
    /// `kubernetes://tenantry/roster#roster.yaml` → namespace `tenantry`, ConfigMap `roster`, key `roster.yaml`.
    pub fn parse(source: &str) -> Result<Option<ConfigMapSource>> {
        let Some(rest) =
            source.strip_prefix("kubernetes://").filter(|_| SourceKind::of(source) == SourceKind::ConfigMap)
        else {
            return Ok(None);
        };
        let usage = || {
            AppError::usage(
                format!("`{source}` is not a ConfigMap roster source"),
                "write it as kubernetes://<namespace>/<configmap>#<key>, e.g. kubernetes://tenantry/roster#roster.yaml, or kubernetes://tenants for the Tenant objects",
            )
        };
        let (location, key) = rest.split_once('#').ok_or_else(usage)?;
        let (namespace, name) = location.split_once('/').ok_or_else(usage)?;
        let valid = |part: &str| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        let key_valid = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid(namespace) || !valid(name) || !key_valid {
            return Err(usage());
        }
        Ok(Some(ConfigMapSource { namespace: namespace.to_string(), name: name.to_string(), key: key.to_string() }))
    }
}

/// Run `work` on its own thread with its own runtime, so a read works from
/// sync or async callers alike and never nests inside the caller's runtime.
fn on_own_runtime<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>> + Send + 'static,
) -> Result<T> {
    let read = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::config(format!("cannot start the async runtime: {e}"), "run again"))?;
        runtime.block_on(work())
    });
    read.join().map_err(|_| {
        AppError::config(
            format!("reading `{name}` stopped unexpectedly"),
            "run again; if it persists, report it with RUST_LOG=debug output",
        )
    })?
}

/// The client a `kubernetes://` roster is read with.
async fn roster_client(kubernetes: &tenantry_kubernetes::KubernetesConfig) -> Result<kube::Client> {
    tenantry_kubernetes::client(kubernetes).await.map_err(|e| {
        AppError::config(format!("cannot read the roster from the cluster: {e}"), "check [kubernetes] in tenantry.toml")
    })
}

/// Read the roster text of a `kubernetes://` source and the ConfigMap's resourceVersion.
pub fn read_config_map(config: &Config, source: &ConfigMapSource, name: &str) -> Result<(String, String)> {
    let kubernetes = config.kubernetes()?.unwrap_or_default();
    let source = source.clone();
    on_own_runtime(name, move || {
        Box::pin(async move {
            let client = roster_client(&kubernetes).await?;
            tenantry_kubernetes::watch::read_config_map_key(&client, &source.namespace, &source.name, &source.key)
                .await
                .map_err(|e| {
                    AppError::config(
                        format!("cannot read the roster from the cluster: {}", e.message),
                        "check the namespace, ConfigMap and key, and that tenantry may get ConfigMaps there",
                    )
                })
        })
    })
}

/// Read the `Tenant` and `Platform` objects of a `kubernetes://tenants` roster.
pub fn read_roster_objects(config: &Config, source: &TenantsSource, name: &str) -> Result<RosterObjects> {
    let kubernetes = config.kubernetes()?.unwrap_or_default();
    let selector = source.selector.clone();
    on_own_runtime(name, move || {
        Box::pin(async move {
            let client = roster_client(&kubernetes).await?;
            tenantry_kubernetes::tenants::read_roster_objects(&client, selector.as_deref()).await.map_err(|e| {
                AppError::config(
                    format!("cannot read the Tenant objects: {}", e.message),
                    "install the definitions (`tenantry crds | kubectl apply --server-side -f -`) and let tenantry list tenants and platforms",
                )
            })
        })
    })
}

/// A roster as read and validated, with its text (diagnostics point into it)
/// and the warnings of a valid one.
#[derive(Debug, Clone)]
pub struct LoadedRoster {
    pub roster: Roster,
    pub text: String,
    pub warnings: Diagnostics,
    /// For `kubernetes://tenants`: the objects it was assembled from.
    pub objects: Option<Arc<RosterObjects>>,
    /// Users whose objects could not join the roster (conflicts, faults), with why.
    pub held_back: BTreeMap<String, Vec<Diagnostic>>,
}

impl LoadedRoster {
    /// SHA-256 of the roster text, hex (what a run records as the roster's digest).
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.text.as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

/// Read a KV v2 field, from sync or async code alike: the read runs on its
/// own thread with its own runtime, so it never nests inside the caller's.
pub fn read_vault_field(config: &Config, source: &VaultSource, name: &str) -> Result<String> {
    let vault = match config.vault()? {
        Some(vault) => vault,
        None => VaultConfig::from_env().ok_or_else(|| {
            AppError::config(
                format!("cannot read `{name}`: no Vault is configured"),
                "add [vault] address to tenantry.toml, or export VAULT_ADDR (and VAULT_TOKEN)",
            )
        })?,
    };
    let source = source.clone();
    let read = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::config(format!("cannot start the async runtime: {e}"), "run again"))?;
        runtime.block_on(tenantry_vault::read_kv_field(&vault, &source.mount, &source.path, &source.key)).map_err(|e| {
            AppError::config(
                format!("cannot read the roster from Vault: {e}"),
                "check the path and key, and that the token may read them",
            )
        })
    });
    read.join().map_err(|_| {
        AppError::config(
            format!("reading `{name}` from Vault stopped unexpectedly"),
            "run again; if it persists, report it with RUST_LOG=debug output",
        )
    })?
}

/// Read and validate the roster named `source`. A `vault://` source takes
/// its `platform:` block from `platform_from` (a roster file), since the
/// origin's `k8s_users` holds only users.
pub fn load_roster(
    source: &str,
    context: &ValidationContext,
    config: &Config,
    platform_from: Option<&Path>,
) -> Result<LoadedRoster> {
    if let Some(tenants) = TenantsSource::parse(source)? {
        let objects = read_roster_objects(config, &tenants, source)?;
        let mut loaded = assemble_objects(source, objects, context)?;
        // No directory beside the objects: a Platform naming app templates is told so.
        crate::templates::load_app_templates(&mut loaded.roster, None)?;
        return Ok(loaded);
    }
    if let Some(map) = ConfigMapSource::parse(source)? {
        let (text, _) = read_config_map(config, &map, source)?;
        let mut loaded = validate_text(source, text.into_bytes(), context)?;
        crate::templates::load_app_templates(&mut loaded.roster, None)?;
        return Ok(loaded);
    }
    if let Some(vault_source) = VaultSource::parse(source)? {
        let json = read_vault_field(config, &vault_source, source)?;
        let template_text = match platform_from {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| AppError::read(path.display(), e))?),
            None => None,
        };
        let template_name = platform_from.map(|p| p.display().to_string()).unwrap_or_default();
        let template = template_text
            .as_deref()
            .map(|text| tenantry_import::PlatformTemplate { source_name: &template_name, text });
        let mut roster = tenantry_import::k8s_users_to_roster(&json, source, template, context)
            .map_err(|e| AppError::Roster(e.diagnostics(), Some(json.clone())))?;
        crate::templates::load_app_templates(&mut roster, platform_from.map(roster_dir).as_deref())?;
        return Ok(LoadedRoster {
            roster,
            text: json,
            warnings: Diagnostics::default(),
            objects: None,
            held_back: BTreeMap::new(),
        });
    }
    let bytes = std::fs::read(source).map_err(|e| AppError::read(source, e))?;
    let mut loaded = validate_text(source, bytes, context)?;
    crate::templates::load_app_templates(&mut loaded.roster, Some(&roster_dir(Path::new(source))))?;
    Ok(loaded)
}

/// The directory a roster file's relative paths (app templates) start from.
fn roster_dir(path: &Path) -> std::path::PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}

/// Parse and validate roster YAML named `source`.
fn validate_text(source: &str, bytes: Vec<u8>, context: &ValidationContext) -> Result<LoadedRoster> {
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let validated = tenantry_model::parse_raw(source, &bytes)
        .and_then(|raw| tenantry_model::validate_with_warnings(source, raw, context));
    match validated {
        Ok((roster, warnings)) => {
            Ok(LoadedRoster { roster, text, warnings, objects: None, held_back: BTreeMap::new() })
        }
        Err(diagnostics) => Err(AppError::Roster(diagnostics, Some(text))),
    }
}

/// The roster of `objects`: every `Tenant` not being deleted (deletion is
/// departure) and not held back. The text ends with each object's
/// generation, so an edit of a held-back object is a new roster too.
pub fn assemble_objects(source: &str, objects: RosterObjects, context: &ValidationContext) -> Result<LoadedRoster> {
    let present: Vec<tenantry_model::crd::TenantObject> = objects
        .tenants
        .iter()
        .filter(|t| !t.deleting)
        .map(|t| tenantry_model::crd::TenantObject { name: t.name.clone(), spec: t.spec.clone() })
        .collect();
    let assembled = tenantry_model::crd::assemble(source, objects.platform.as_ref(), &present, context)
        .map_err(|diagnostics| AppError::Roster(diagnostics, None))?;
    let mut text = assembled.text;
    for tenant in &objects.tenants {
        let state = if tenant.deleting {
            " (deleting)"
        } else if assembled.held_back.contains_key(&tenant.name) {
            " (held back)"
        } else {
            ""
        };
        text.push_str(&format!("# tenant/{} generation {}{state}\n", tenant.name, tenant.generation));
    }
    let mut warnings = assembled.warnings;
    warnings.items.extend(tenantry_model::crd::held_back_warnings(&assembled.held_back));
    Ok(LoadedRoster {
        roster: assembled.roster,
        text,
        warnings,
        objects: Some(Arc::new(objects)),
        held_back: assembled.held_back,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_sources_name_mount_path_and_key() {
        assert_eq!(
            VaultSource::parse("vault://secret/platform#k8s_users").unwrap(),
            Some(VaultSource { mount: "secret".into(), path: "platform".into(), key: "k8s_users".into() })
        );
        assert_eq!(VaultSource::parse("vault://kv/teams/a/b#x").unwrap().unwrap().path, "teams/a/b");
        assert_eq!(VaultSource::parse("roster.yaml").unwrap(), None);
        for bad in ["vault://secret#k", "vault://secret/platform", "vault:///platform#k", "vault://secret/#k"] {
            assert!(VaultSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn config_map_sources_name_namespace_map_and_key() {
        assert_eq!(
            ConfigMapSource::parse("kubernetes://tenantry/roster#roster.yaml").unwrap(),
            Some(ConfigMapSource { namespace: "tenantry".into(), name: "roster".into(), key: "roster.yaml".into() })
        );
        assert_eq!(ConfigMapSource::parse("roster.yaml").unwrap(), None);
        assert_eq!(ConfigMapSource::parse("kubernetes://tenants").unwrap(), None);
        assert_eq!(SourceKind::of("kubernetes://tenants"), SourceKind::Tenants);
        assert_eq!(
            TenantsSource::parse("kubernetes://tenants?selector=roster=lab").unwrap(),
            Some(TenantsSource { selector: Some("roster=lab".into()) })
        );
        assert_eq!(TenantsSource::parse("kubernetes://tenants").unwrap(), Some(TenantsSource { selector: None }));
        assert!(TenantsSource::parse("kubernetes://tenants?selector=a;b").is_err());
        assert!(TenantsSource::parse("kubernetes://tenants?labels=x").is_err());
        assert_eq!(TenantsSource::parse("kubernetes://tenantry/roster#roster.yaml").unwrap(), None);
        assert_eq!(SourceKind::of("kubernetes://tenantry/roster#roster.yaml"), SourceKind::ConfigMap);
        for bad in [
            "kubernetes://tenantry#k",
            "kubernetes://tenantry/roster",
            "kubernetes:///roster#k",
            "kubernetes://tenantry/#k",
            "kubernetes://Tenantry/roster#k",
            "kubernetes://tenantry/roster#a/b",
        ] {
            assert!(ConfigMapSource::parse(bad).is_err(), "{bad}");
        }
    }
}
