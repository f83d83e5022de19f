//! `tenantry offboard USER`: the reversible cut (an apply under the
//! offboarding policy), or after it the destroy stage.

use crate::cli::{ApplyArgs, GlobalArgs, OffboardArgs, OutputFormat, PolicyArgs, Stage};
use crate::shell::Shell;
use crate::{CliError, Result, exit};

pub async fn offboard(global: &GlobalArgs, args: &OffboardArgs, shell: &mut Shell) -> Result<i32> {
    let user = &args.user;
    match args.stage {
        Stage::Reversible => {
            let session = super::session(global)?;
            let request = session.offboard_request(user)?;
            let apply_args = ApplyArgs {
                plan: None,
                yes: args.yes,
                concurrency: args.concurrency,
                no_refresh: true,
                policy: PolicyArgs::default(),
            };
            super::apply::apply_request(&session, &request, &apply_args, global, shell).await
        }
        Stage::Destroy => {
            let Some(backup) = &args.backup else {
                return Err(CliError::Usage {
                    message: "the destroy stage needs a backup directory".to_string(),
                    help: format!("tenantry offboard {user} --stage destroy --backup /var/backups/tenantry"),
                });
            };
            let session = super::session(global)?;
            let plan = session.destroy_plan(user).await?;
            let human = global.output != OutputFormat::Json;
            if human {
                let style = shell.out_style();
                shell.print(&crate::output::destroy_preview_human(&plan, backup, style));
            }
            if !args.yes
                && !super::confirm(
                    shell,
                    &format!("Destroy {user}'s data?"),
                    &format!("review the list, then run `tenantry offboard {user} --stage destroy --backup DIR --yes`"),
                )?
            {
                shell.println("Destroy cancelled; nothing changed.");
                return Ok(exit::ERROR);
            }
            let outcome = session.destroy(&plan, backup).await?;
            match global.output {
                OutputFormat::Json => shell.json(&outcome.to_json()),
                OutputFormat::Human | OutputFormat::Markdown => {
                    let style = shell.out_style();
                    shell.print(&crate::output::destroy_human(&plan, &outcome.report, style));
                }
            }
            Ok(if outcome.report.is_success() { exit::OK } else { exit::ERROR })
        }
    }
}
