//! `tenantry render DIR`: every derived resource as files, for GitOps.
//!
//! A manifest in DIR lists the files this command wrote, so a later render
//! removes exactly those it no longer produces and nothing else.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tenantry_core::Desired;
use tenantry_local::{AtomicWriter, remove_file_and_empty_parents, render};

const MANIFEST: &str = ".tenantry-render.json";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RenderReport {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

pub fn render_all(desired: &Desired, dir: &Path) -> std::io::Result<RenderReport> {
    let previous: BTreeSet<PathBuf> = std::fs::read_to_string(dir.join(MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    let mut report = RenderReport::default();
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
        // Only relative paths inside DIR, as this command wrote them.
        if stale.is_relative() && !stale.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            remove_file_and_empty_parents(dir, stale)?;
            report.removed += 1;
        }
    }
    let manifest = serde_json::to_string_pretty(&written).unwrap_or_else(|_| "[]".to_string());
    AtomicWriter::write(&dir.join(MANIFEST), manifest.as_bytes())?;
    Ok(report)
}
