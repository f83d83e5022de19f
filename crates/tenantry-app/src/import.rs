//! `import`: the origin platform's `k8s_users` JSON (a file or `vault://`)
//! and workstation roster merged into one roster, with a report of what
//! came from where.

use crate::config::Config;
use crate::error::{AppError, Result};
use crate::source::{VaultSource, read_vault_field};
use crate::wire::FORMAT_VERSION;
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
