//! `tenantry doctor [USER]`: live checks, grouped by user, each with its
//! cause, evidence and fix. Exit 0 healthy, 3 when something was found.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};

pub async fn doctor(global: &GlobalArgs, user: Option<&str>, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let report = session.doctor(user).await?;
    match global.output {
        OutputFormat::Json => shell.json(&report.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => {
            let style = shell.out_style();
            shell.print(&crate::output::doctor_human(&report, style));
        }
    }
    Ok(if report.healthy() { exit::OK } else { exit::FOUND })
}
