//! `tenantry why RESOURCE`: the roster line and rule, and the history.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};
use tenantry_app::WhyReport;

pub async fn why(global: &GlobalArgs, resource: &str, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let report = session.why(resource).await?;
    match (global.output, &report) {
        // The record of a resource no longer derived is one line of JSON.
        (OutputFormat::Json, WhyReport::Remembered { .. }) => shell.println(&report.to_json().to_string()),
        (OutputFormat::Json, WhyReport::Derived(_)) => shell.json(&report.to_json()),
        (OutputFormat::Human | OutputFormat::Markdown, _) => {
            let style = shell.out_style();
            shell.print(&crate::output::why_human(&report, style));
        }
    }
    Ok(exit::OK)
}
