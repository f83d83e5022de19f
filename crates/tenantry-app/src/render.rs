//! `render DIR`: every derived resource as files, for GitOps.
//!
//! A manifest in DIR lists the files this use case wrote, so a later render
//! removes exactly those it no longer produces and nothing else.

use crate::error::{AppError, Result};
use crate::session::Session;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tenantry_core::Desired;
use tenantry_local::{AtomicWriter, remove_file_and_empty_parents, render};

const MANIFEST: &str = ".tenantry-render.json";

/// What a render did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RenderReport {
    pub dir: String,
    /// Resources rendered.
    pub resources: usize,
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

impl RenderReport {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format_version": crate::wire::FORMAT_VERSION,
            "dir": self.dir,
            "written": self.written,
            "unchanged": self.unchanged,
            "removed": self.removed,
        })
    }
}

impl Session {
    /// Write everything the roster derives into `dir`.
    pub async fn render(&self, dir: &Path) -> Result<RenderReport> {
        let desired = self.engine().await?.desired(self.roster()).await?;
        let target = dir.to_path_buf();
        let mut report = tokio::task::spawn_blocking(move || render_all(&desired, &target))
            .await
            .map_err(|e| AppError::config(format!("rendering stopped: {e}"), "run again"))?
            .map_err(|source| AppError::read(dir.display(), source))?;
        report.dir = dir.display().to_string();
        Ok(report)
    }
}

fn render_all(desired: &Desired, dir: &Path) -> std::io::Result<RenderReport> {
    let previous: BTreeSet<PathBuf> = std::fs::read_to_string(dir.join(MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut report = RenderReport { resources: desired.len(), ..RenderReport::default() };
    let mut written = BTreeSet::new();
    for resource in desired.resources() {
        for (relative, bytes) in render(&resource.id, &resource.owner, &resource.content).files {
            let path = dir.join(&relative);
            if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
                report.unchanged += 1;
            } else {
                AtomicWriter::write(&path, &bytes)?;
                report.written += 1;
            }
            written.insert(relative);
        }
    }
    for stale in previous.difference(&written) {
        // Only relative paths inside DIR, as this use case wrote them.
        if stale.is_relative() && !stale.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            remove_file_and_empty_parents(dir, stale)?;
            report.removed += 1;
        }
    }
    let manifest = serde_json::to_string_pretty(&written).unwrap_or_else(|_| "[]".to_string());
    AtomicWriter::write(&dir.join(MANIFEST), manifest.as_bytes())?;
    Ok(report)
}
