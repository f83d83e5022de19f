//! `tenantry explain USER`: everything one user gets, and why.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};

pub async fn explain(global: &GlobalArgs, user: &str, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let report = session.explain(user).await?;
    match global.output {
        OutputFormat::Json => shell.json(&report.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => {
            let style = shell.out_style();
            shell.print(&crate::output::explain_human(&report, style));
        }
    }
    Ok(exit::OK)
}
