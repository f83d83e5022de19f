//! One module per command: turn the parsed arguments into a use case of
//! `tenantry_app`, call it, render its report, and give the exit code.

mod apply;
mod doctor;
mod explain;
mod history;
mod import;
mod kubeconfig;
mod offboard;
mod plan;
mod render;
mod schema;
mod serve;
mod session;
mod setup_script;
mod validate;
mod why;

use crate::cli::{Command, GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{CliError, Result, exit};
use std::io::IsTerminal;
use std::sync::Arc;
use tenantry_app::{Session, SessionOptions};

/// Run one parsed command line.
pub fn run(cli: crate::Cli, shell: &mut Shell) -> Result<i32> {
    let global = &cli.global;
    if global.output == OutputFormat::Markdown && !matches!(cli.command, Command::Plan(_)) {
        return Err(CliError::Usage {
            message: "`--output markdown` is for `tenantry plan` only".to_string(),
            help: "use `--output human` or `--output json` with this command".to_string(),
        });
    }
    match &cli.command {
        Command::Schema => schema::schema(shell),
        Command::Crds => schema::crds(shell),
        Command::Completions { shell: kind } => schema::completions(*kind, shell),
        Command::Validate => validate::validate(global, shell),
        Command::Import(args) => import::import(global, args, shell),
        Command::Session(command) => session::session(global, command, shell),
        Command::Kubeconfig { user, write } => kubeconfig::kubeconfig(global, user, write.as_deref(), shell),
        Command::SetupScript { os, with } => setup_script::setup_script(global, *os, with, shell),
        Command::Plan(args) => runtime()?.block_on(plan::plan(global, args, shell)),
        Command::Apply(args) => runtime()?.block_on(apply::apply(global, args, shell)),
        Command::Offboard(args) => runtime()?.block_on(offboard::offboard(global, args, shell)),
        Command::Render { dir } => runtime()?.block_on(render::render(global, dir, shell)),
        Command::Why { resource } => runtime()?.block_on(why::why(global, resource, shell)),
        Command::Explain { user } => runtime()?.block_on(explain::explain(global, user, shell)),
        Command::Doctor { user } => runtime()?.block_on(doctor::doctor(global, user.as_deref(), shell)),
        Command::History { user, since } => {
            runtime()?.block_on(history::history(global, user.as_deref(), since.as_deref(), shell))
        }
        Command::Serve(args) => serve::serve(global, args, shell),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)
}

/// Print an error in the chosen format and give the exit code.
pub fn report_error(error: CliError, global: &GlobalArgs, shell: &mut Shell) -> i32 {
    if let CliError::Roster(diagnostics, text) = &error {
        match global.output {
            OutputFormat::Json => shell.json(&tenantry_app::wire::diagnostics_json(diagnostics)),
            OutputFormat::Human | OutputFormat::Markdown => {
                let style = shell.err_style();
                shell.eprint(&crate::output::diagnostics_human(diagnostics, text.as_deref(), style))
            }
        }
        return exit::ERROR;
    }
    if !shell.err_style().color {
        miette::set_hook(Box::new(|_| Box::new(miette::MietteHandlerOpts::new().color(false).unicode(false).build())))
            .ok();
    }
    shell.eprintln(&format!("{:?}", miette::Report::new(error)));
    exit::ERROR
}

/// How this process opens a session: the global flags, the command line
/// for the run record, and a message while another run holds the state.
fn session(global: &GlobalArgs) -> Result<Session> {
    let mut options = SessionOptions::new(global.roster.clone());
    options.platform_from = global.platform_from.clone();
    options.config = global.config.clone();
    options.command = std::env::args().collect::<Vec<_>>().join(" ");
    options.actor = ["SUDO_USER", "USER"].iter().find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
    options.waiting = Arc::new(|holder: &str| {
        // Straight to standard error: this runs on a blocking thread, and
        // a closed stderr is nothing to stop for.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "waiting for the state database: {holder} is running");
    });
    Ok(Session::open(options)?)
}

/// Ask on the terminal; only `yes` is accepted. Without a terminal, refuse.
fn confirm(shell: &mut Shell, question: &str, help: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage {
            message: "refusing to act without confirmation: standard input is not a terminal".to_string(),
            help: help.to_string(),
        });
    }
    shell.print(&format!("\n{question} Only `yes` is accepted: "));
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    Ok(answer.trim() == "yes")
}
