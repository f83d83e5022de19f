//! `tenantry import`: the origin's two rosters merged into one.

use crate::cli::{GlobalArgs, ImportArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};
use tenantry_app::{Clock as _, ImportRequest};

pub fn import(global: &GlobalArgs, args: &ImportArgs, shell: &mut Shell) -> Result<i32> {
    let request = ImportRequest {
        config: global.config.clone(),
        k8s_users: args.k8s_users.clone(),
        workstation: args.workstation.clone(),
        platform_from: global.platform_from.clone(),
        out: args.out.clone(),
        force: args.force,
        generated_at: tenantry_app::SystemClock.now(),
    };
    let outcome = tenantry_app::import(&request)?;
    match global.output {
        OutputFormat::Json => shell.json(&outcome.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => {
            if outcome.written.is_none() {
                shell.print(&outcome.imported.roster_yaml);
            }
            shell.eprintln(&outcome.imported.report.to_string());
            if let Some(out) = &outcome.written {
                shell.eprintln(&format!(
                    "wrote {}; check it with `tenantry --roster {} plan`",
                    out.display(),
                    out.display()
                ));
            }
        }
    }
    Ok(exit::OK)
}
