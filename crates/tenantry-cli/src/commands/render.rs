//! `tenantry render DIR`: everything as files, for GitOps.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};
use std::path::Path;

pub async fn render(global: &GlobalArgs, dir: &Path, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let report = session.render(dir).await?;
    match global.output {
        OutputFormat::Json => shell.println(&report.to_json().to_string()),
        OutputFormat::Human | OutputFormat::Markdown => shell.println(&format!(
            "Rendered {} resources into {}: {} files written, {} unchanged, {} removed.",
            report.resources, report.dir, report.written, report.unchanged, report.removed
        )),
    }
    Ok(exit::OK)
}
