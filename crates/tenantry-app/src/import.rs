//! `import`: the origin platform's `k8s_users` JSON (a file or `vault://`)
//! and workstation roster merged into one roster, with a report of what
//! came from where.

use crate::config::Config;
use crate::error::{AppError, Result};
use crate::source::{TENANTS_SOURCE, TenantsSource, VaultSource, read_roster_objects, read_vault_field};
use crate::wire::FORMAT_VERSION;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tenantry_import::Import;

/// What to import, and where to write it.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// tenantry.toml (its `[vault]` reads a `vault://` source).
    pub config: Option<PathBuf>,
    /// The origin's `k8s_users` JSON: a file, or `vault://<mount>/<path>#<key>`.
    pub k8s_users: Option<String>,
    /// The origin's workstation roster.yaml.
    pub workstation: Option<PathBuf>,
    /// A roster file whose `platform:` block the result takes.
    pub platform_from: Option<PathBuf>,
    /// Write the roster here (else it is returned).
    pub out: Option<PathBuf>,
    /// Replace `out` when it exists.
    pub force: bool,
    /// When the import ran, for the roster's header (time is a parameter).
    pub generated_at: String,
}

/// The merged roster and its report.
#[derive(Debug)]
pub struct ImportOutcome {
    pub imported: Import,
    /// Where it was written, if `out` was given.
    pub written: Option<PathBuf>,
}

impl ImportOutcome {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format_version": FORMAT_VERSION,
            "written": self.written.as_ref().map(|p| p.display().to_string()),
            "roster_yaml": self.written.is_none().then_some(&self.imported.roster_yaml),
            "report": self.imported.report,
        })
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| AppError::read(path.display(), source))
}

/// Read the sources, merge them, and write the result when asked.
pub fn import(request: &ImportRequest) -> Result<ImportOutcome> {
    let config = Config::load(request.config.as_deref(), None)?;
    let k8s_text = match &request.k8s_users {
        Some(source) => Some(match VaultSource::parse(source)? {
            Some(vault) => (source.clone(), read_vault_field(&config, &vault, source)?),
            None => (source.clone(), read_text(Path::new(source))?),
        }),
        None => None,
    };
    let workstation_text = match &request.workstation {
        Some(path) => Some((path.display().to_string(), read_text(path)?)),
        None => None,
    };
    let template_text = match &request.platform_from {
        Some(path) => Some((path.display().to_string(), read_text(path)?)),
        None => None,
    };
    let failed = |e: tenantry_import::ImportError| AppError::Roster(e.diagnostics(), None);
    let k8s = match &k8s_text {
        Some((name, text)) => Some(tenantry_import::parse_k8s_users(text, name).map_err(failed)?),
        None => None,
    };
    let workstation = match &workstation_text {
        Some((name, text)) => Some(tenantry_import::parse_workstation_roster(text, name).map_err(failed)?),
        None => None,
    };
    let template =
        template_text.as_ref().map(|(name, text)| tenantry_import::PlatformTemplate { source_name: name, text });
    let options = tenantry_import::ImportOptions {
        generated_at: request.generated_at.clone(),
        output_name: request.out.as_ref().map_or_else(|| "roster.yaml".to_string(), |p| p.display().to_string()),
        context: config.validation_context(),
    };
    let imported = tenantry_import::merge(k8s.as_ref(), workstation.as_ref(), template, &options).map_err(failed)?;
    if let Some(out) = &request.out {
        crate::access::write_file(out, imported.roster_yaml.as_bytes(), 0o644, request.force)?;
    }
    Ok(ImportOutcome { imported, written: request.out.clone() })
}

/// `import --to-crds` / `--from-crds`: between a roster file and the cluster's objects.
#[derive(Debug, Clone, Default)]
pub struct CrdImportRequest {
    /// tenantry.toml (`[kubernetes]` reads the objects; its DNS zones validate).
    pub config: Option<PathBuf>,
    /// `--to-crds`: the roster file to convert; `--from-crds`: the
    /// `kubernetes://tenants[?selector=…]` source to read (default: every object).
    pub source: String,
    /// `--to-crds`: the roster text when it is not read from `source` (an import of the origin's data).
    pub text: Option<String>,
    /// `--to-crds`: labels for every object (`kubernetes://tenants?selector=` finds them).
    pub labels: BTreeMap<String, String>,
    /// Write here (else it is returned).
    pub out: Option<PathBuf>,
    pub force: bool,
    pub generated_at: String,
}

/// The converted text and what it holds.
#[derive(Debug)]
pub struct CrdImportOutcome {
    /// Objects YAML (`--to-crds`) or roster YAML (`--from-crds`).
    pub text: String,
    /// Tenants converted.
    pub users: usize,
    /// `--from-crds`: objects written out although they cannot join the roster now.
    pub held_back: Vec<tenantry_model::Diagnostic>,
    pub written: Option<PathBuf>,
}

impl CrdImportOutcome {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format_version": FORMAT_VERSION,
            "written": self.written.as_ref().map(|p| p.display().to_string()),
            "text": self.written.is_none().then_some(&self.text),
            "users": self.users,
            "held_back": crate::wire::diagnostics_json(&tenantry_model::Diagnostics { items: self.held_back.clone() }),
        })
    }
}

/// A roster file as `Tenant` and `Platform` objects, for `kubectl apply --server-side -f`.
pub fn import_to_crds(request: &CrdImportRequest) -> Result<CrdImportOutcome> {
    let config = Config::load(request.config.as_deref(), None)?;
    let text = match &request.text {
        Some(text) => text.clone(),
        None => read_text(Path::new(&request.source))?,
    };
    let objects = tenantry_model::crd::roster_file_to_objects(
        &request.source,
        &text,
        &request.labels,
        &config.validation_context(),
    )
    .map_err(|diagnostics| AppError::Roster(diagnostics, Some(text.clone())))?;
    let users = objects.iter().filter(|o| o["kind"] == "Tenant").count();
    let yaml = format!(
        "# Generated by `tenantry import --to-crds` from {} at {}.\n{}",
        request.source,
        request.generated_at,
        tenantry_model::crd::objects_yaml(&objects)
    );
    finish(request, yaml, users, Vec::new())
}

/// The cluster's `Tenant` and `Platform` objects as a roster file. Objects
/// held back (a conflict) are written too, as they are; the diagnostics say
/// what to fix before the file validates.
pub fn import_from_crds(request: &CrdImportRequest) -> Result<CrdImportOutcome> {
    let config = Config::load(request.config.as_deref(), None)?;
    let source = if request.source.is_empty() { TENANTS_SOURCE } else { request.source.as_str() };
    let tenants = TenantsSource::parse(source)?.ok_or_else(|| {
        AppError::usage(
            format!("`{source}` is not a Tenant roster source"),
            "with --from-crds, --roster is kubernetes://tenants or kubernetes://tenants?selector=<labels>",
        )
    })?;
    let objects = read_roster_objects(&config, &tenants, source)?;
    let pairs: Vec<(String, serde_json::Value)> =
        objects.tenants.iter().map(|t| (t.name.clone(), t.spec.clone())).collect();
    let roster = tenantry_model::crd::objects_to_roster(objects.platform.as_ref(), &pairs);
    let loaded = crate::source::assemble_objects(source, objects, &config.validation_context())?;
    let held_back: Vec<tenantry_model::Diagnostic> = loaded.held_back.into_values().flatten().collect();
    let header = format!("Generated by `tenantry import --from-crds` from {source} at {}.", request.generated_at);
    finish(request, tenantry_model::crd::roster_yaml(&roster, &header), pairs.len(), held_back)
}

fn finish(
    request: &CrdImportRequest,
    text: String,
    users: usize,
    held_back: Vec<tenantry_model::Diagnostic>,
) -> Result<CrdImportOutcome> {
    if let Some(out) = &request.out {
        crate::access::write_file(out, text.as_bytes(), 0o644, request.force)?;
    }
    Ok(CrdImportOutcome { text, users, held_back, written: request.out.clone() })
}
