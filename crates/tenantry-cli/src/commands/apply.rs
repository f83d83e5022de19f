//! `tenantry apply`: show the plan, confirm, apply with a progress bar,
//! summarise. Also the reversible stage of `offboard`.

use crate::cli::{ApplyArgs, GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};
use tenantry_app::{ApplyRequest, PlanRequest, Planned, Progress, Session};

pub async fn apply(global: &GlobalArgs, args: &ApplyArgs, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    if let Some(saved) = &args.plan {
        // A reviewed plan: exactly it, without asking again (terraform's contract).
        let planned = session.replan_saved(saved).await?;
        return apply_planned(&session, &planned, args, global, shell, false).await;
    }
    let request = super::plan::request(&args.policy);
    apply_request(&session, &request, args, global, shell).await
}

pub(super) async fn apply_request(
    session: &Session,
    request: &PlanRequest,
    args: &ApplyArgs,
    global: &GlobalArgs,
    shell: &mut Shell,
) -> Result<i32> {
    let planned = session.plan(request).await?;
    apply_planned(session, &planned, args, global, shell, !args.yes).await
}

async fn apply_planned(
    session: &Session,
    planned: &Planned,
    args: &ApplyArgs,
    global: &GlobalArgs,
    shell: &mut Shell,
    ask: bool,
) -> Result<i32> {
    let plan = planned.plan();
    let human = global.output != OutputFormat::Json;
    if human {
        super::plan::show(planned, session, global, shell);
    }
    if plan.is_blocked() {
        if !human {
            super::plan::show(planned, session, global, shell);
        }
        shell.eprintln("Nothing applied: the plan has blocking problems (above).");
        return Ok(exit::ERROR);
    }
    let acts = planned.acts();
    if acts
        && ask
        && !super::confirm(shell, "Apply these changes?", "review `tenantry plan`, then run `tenantry apply --yes`")?
    {
        shell.println("Apply cancelled; nothing changed.");
        return Ok(exit::ERROR);
    }
    let bar = (human && acts && shell.err_is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(template) =
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
        {
            bar.set_style(template);
        }
        bar
    });
    let on_progress = |event: Progress| {
        if let Some(bar) = &bar {
            match event {
                Progress::Started { total } => bar.set_length(total as u64),
                Progress::Finished { owner, ok, .. } => {
                    if !ok {
                        bar.set_message(format!("failure for {owner}"));
                    }
                    bar.inc(1);
                }
            }
        }
    };
    let apply = ApplyRequest { concurrency: usize::from(args.concurrency), after_apply: !args.no_refresh };
    let outcome = session.apply(planned, &apply, &on_progress).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match global.output {
        OutputFormat::Json => shell.json(&outcome.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => {
            if acts {
                let style = shell.out_style();
                shell.print(&crate::output::apply_summary_human(&outcome.report, plan, style));
            }
            for note in &outcome.report.notes {
                shell.eprintln(&note.to_string());
            }
        }
    }
    let unobserved = planned.unobserved();
    if !unobserved.is_empty() {
        let names: Vec<&str> = unobserved.keys().map(String::as_str).collect();
        shell.eprintln(&format!(
            "Not applied: the changes of {} (it could not be observed, above); rerun once it is reachable.",
            names.join(", ")
        ));
    }
    Ok(if outcome.report.is_success() && unobserved.is_empty() { exit::OK } else { exit::ERROR })
}
