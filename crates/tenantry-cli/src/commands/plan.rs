//! `tenantry plan`: what would change, grouped by user.

use crate::cli::{GlobalArgs, OutputFormat, PlanArgs, PolicyArgs};
use crate::shell::Shell;
use crate::{Result, exit};
use tenantry_app::{PlanRequest, Planned, Session};

pub(super) fn request(args: &PolicyArgs) -> PlanRequest {
    PlanRequest {
        allow_revoke: args.allow_revoke,
        offboard: args.offboard,
        only: args.only.clone(),
        with_platform: args.with_platform,
        adopt: args.adopt.clone(),
    }
}

/// The plan as the chosen format shows it.
pub(super) fn show(planned: &Planned, session: &Session, global: &GlobalArgs, shell: &mut Shell) {
    match global.output {
        OutputFormat::Json => shell.json(&planned.to_json()),
        OutputFormat::Markdown => shell.print(&crate::output::plan_markdown(
            planned.plan(),
            &planned.roster,
            &planned.targets,
            &planned.steps,
        )),
        OutputFormat::Human => {
            let style = shell.out_style();
            let text =
                crate::output::plan_human(planned.plan(), session.roster(), &planned.targets, &planned.steps, style);
            shell.print(&text);
            // What targets said while gathering facts (a tenant's file set aside).
            for note in planned.notes() {
                shell.eprintln(&note.to_string());
            }
        }
    }
}

pub async fn plan(global: &GlobalArgs, args: &PlanArgs, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let request = request(&args.policy);
    let planned = session.plan(&request).await?;
    show(&planned, &session, global, shell);
    if let Some(out) = &args.out {
        session.save_plan(&planned, &request, out)?;
        shell.eprintln(&format!(
            "Saved the plan to {}; `tenantry apply {}` applies exactly it, or refuses if anything moved.",
            out.display(),
            out.display()
        ));
    }
    let plan = planned.plan();
    // A target left out is not "no changes": `--detailed-exitcode` 0 would
    // tell a pipeline the platform is converged when it was not looked at.
    if plan.is_blocked() || plan.has_conflicts() || !planned.unobserved().is_empty() {
        return Ok(exit::ERROR);
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { exit::CHANGES } else { exit::OK })
}
