//! `tenantry history [USER] [--since DATE]`: the journal and the audit log.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};

pub async fn history(global: &GlobalArgs, user: Option<&str>, since: Option<&str>, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let report = session.history(user, since).await?;
    match global.output {
        OutputFormat::Json => shell.json(&report.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => {
            let style = shell.out_style();
            shell.print(&crate::output::history_human(&report, style));
        }
    }
    Ok(exit::OK)
}
