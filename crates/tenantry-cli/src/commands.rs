//! One function per command. Each returns the process exit code.

use crate::cli::{ApplyArgs, Command, GlobalArgs, ImportArgs, OffboardArgs, OutputFormat, PlanArgs, PolicyArgs, Stage};
use crate::config::Config;
use crate::output::{self, Style};
use crate::source::load_roster;
use crate::{CliError, Result, exit};
use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use tenantry_core::{Domain, Policy, ResourceId, Target};
use tenantry_engine::{ApplyOptions, Engine, Progress, State, SystemClock};
use tenantry_host::{HostTarget, RefreshOutcome};
use tenantry_local::LocalTarget;
use tenantry_model::Roster;

/// Run one parsed command line.
pub fn run(cli: crate::Cli) -> Result<i32> {
    let style = Style {
        color: !cli.global.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    };
    match &cli.command {
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&tenantry_model::json_schema()).unwrap_or_default());
            Ok(exit::OK)
        }
        Command::Completions { shell } => {
            let mut command = <crate::Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "tenantry", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Validate => validate(&cli.global, style),
        Command::Offboard(args) => runtime()?.block_on(offboard(&cli.global, args, style)),
        Command::Import(args) => import(&cli.global, args),
        Command::Kubeconfig { user, write } => {
            let (roster, _) = roster_only(&cli.global)?;
            let text = crate::setup::kubeconfig_for(&roster, user)?;
            match write {
                Some(path) => {
                    crate::setup::write_new_kubeconfig(path, &text)?;
                    eprintln!("wrote {} (mode 0600)", path.display());
                }
                None => print!("{text}"),
            }
            Ok(exit::OK)
        }
        Command::SetupScript { os } => {
            let (roster, _) = roster_only(&cli.global)?;
            print!("{}", crate::setup::setup_script(&roster, *os)?);
            Ok(exit::OK)
        }
        Command::Plan(args) => runtime()?.block_on(plan(&cli.global, args, style)),
        Command::Apply(args) => runtime()?.block_on(apply(&cli.global, args, style)),
        Command::Render { dir } => runtime()?.block_on(render(&cli.global, dir, style)),
        Command::Why { resource } => runtime()?.block_on(why(&cli.global, resource, style)),
        Command::Explain { user } => runtime()?.block_on(explain(&cli.global, user, style)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)
}

/// Print roster diagnostics in the chosen format and give the exit code.
pub fn report_roster_error(error: &CliError, global: &GlobalArgs, style: Style) -> Option<i32> {
    let CliError::Roster(diagnostics, text) = error else { return None };
    match global.output {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&output::diagnostics_json(diagnostics)).unwrap_or_default())
        }
        OutputFormat::Human => eprint!("{}", output::diagnostics_human(diagnostics, text.as_deref(), style)),
    }
    Some(exit::ERROR)
}

struct Session {
    config: Config,
    roster: Roster,
    roster_text: String,
}

fn session(global: &GlobalArgs) -> Result<Session> {
    let mut config = Config::load(global.config.as_deref())?;
    let (roster, roster_text) =
        load_roster(&global.roster, &config.validation_context(), &config, global.platform_from.as_deref())?;
    // Managed-file sources are named relative to the roster unless configured.
    if let Some(host) = &mut config.host
        && host.source_dir.is_none()
    {
        let roster_dir = Path::new(&global.roster).parent().filter(|p| !p.as_os_str().is_empty());
        host.source_dir = Some(roster_dir.map(Path::to_path_buf).unwrap_or_else(|| ".".into()));
    }
    Ok(Session { config, roster, roster_text })
}

/// The roster alone, for commands that need no target.
fn roster_only(global: &GlobalArgs) -> Result<(Roster, String)> {
    let config = Config::load(global.config.as_deref())?;
    load_roster(&global.roster, &config.validation_context(), &config, global.platform_from.as_deref())
}

/// The engine with every configured target; live targets come first so
/// they apply their domains and local renders what is left.
async fn engine(config: &Config) -> Result<Engine> {
    Ok(live(config).await?.engine)
}

/// The engine, and the live targets commands need beyond the trait (host
/// warnings and checkout refresh, the destroy stage).
struct Live {
    engine: Engine,
    host: Option<Arc<HostTarget>>,
}

/// The live targets, with the host's port reservations checked against the
/// state before anything is derived: a reservation only the host remembers
/// (a lost state database) is kept, and sources that disagree stop the run.
async fn live_checked(session: &Session) -> Result<Live> {
    let live = live(&session.config).await?;
    if let Some(host) = &live.host {
        let state = live.engine.with_state(|s| s.ports())?;
        let merged = host.reconcile_ports(&session.roster, &state).map_err(|conflict| CliError::Config {
            message: format!("port reservations disagree: {conflict}"),
            help: "nothing was changed; tenantry allocates ports only when its state, the dispatch map and the users' env files agree".to_string(),
        })?;
        if merged != state {
            live.engine.with_state(|s| s.reserve_ports(&merged))?;
        }
    }
    Ok(live)
}

async fn live(config: &Config) -> Result<Live> {
    let state = State::open(&config.local.state)?;
    let mut targets: Vec<Arc<dyn Target>> = Vec::new();
    let host = config.host.clone().map(|host| Arc::new(HostTarget::new(host)));
    if let Some(host) = &host {
        targets.push(host.clone());
    }
    if let Some(kubernetes) = &config.kubernetes {
        let target =
            tenantry_kubernetes::KubernetesTarget::connect(kubernetes).await.map_err(|e| CliError::Config {
                message: e.to_string(),
                help:
                    "check [kubernetes] kubeconfig and context in tenantry.toml, and that the API server is reachable"
                        .to_string(),
            })?;
        targets.push(Arc::new(target));
    }
    if let Some(vault) = &config.vault {
        let target = tenantry_vault::VaultTarget::connect(vault).await.map_err(|e| CliError::Config {
            message: e.to_string(),
            help: "check [vault] address and the token (VAULT_TOKEN or token_file, mode 0600)".to_string(),
        })?;
        targets.push(Arc::new(target));
    }
    if let Some(dns) = &config.dns {
        let target = tenantry_dns::DnsTarget::connect(dns).await.map_err(|e| CliError::Config {
            message: e.to_string(),
            help: "check [dns] provider, server or api_url, and its key file (mode 0600) or token".to_string(),
        })?;
        targets.push(Arc::new(target));
    }
    if config.local.enabled {
        targets.push(Arc::new(LocalTarget::new(config.local.out_dir.clone(), Domain::ALL.to_vec())));
    }
    Ok(Live { engine: Engine::new(targets, state, Arc::new(SystemClock), config.settings()), host })
}

fn policy(args: &PolicyArgs, roster: &Roster, engine: &Engine) -> Result<Policy> {
    let only = if args.only.is_empty() {
        None
    } else {
        let known: BTreeSet<String> =
            engine.with_state(|s| s.inventory()).map(|inv| inv.users().into_iter().map(str::to_string).collect())?;
        for user in &args.only {
            if !roster.users.contains_key(user) && !known.contains(user) {
                return Err(CliError::Usage {
                    message: format!("--only {user}: no such user in the roster or the state"),
                    help: "use a roster key, e.g. `--only alice`".to_string(),
                });
            }
        }
        Some(args.only.iter().cloned().collect())
    };
    Ok(Policy { allow_revoke: args.allow_revoke, offboard: args.offboard, only, with_platform: args.with_platform })
}

fn validate(global: &GlobalArgs, style: Style) -> Result<i32> {
    let config = Config::load(global.config.as_deref())?;
    let context = config.validation_context();
    if global.roster.starts_with("vault://") {
        let (roster, _) = load_roster(&global.roster, &context, &config, global.platform_from.as_deref())?;
        match global.output {
            OutputFormat::Json => println!(
                "{}",
                serde_json::to_string_pretty(&output::diagnostics_json(&Default::default())).unwrap_or_default()
            ),
            OutputFormat::Human => println!("{}: valid, {} users", global.roster, roster.users.len()),
        }
        return Ok(exit::OK);
    }
    let bytes =
        std::fs::read(&global.roster).map_err(|source| CliError::Read { path: global.roster.clone(), source })?;
    let raw = tenantry_model::parse_raw(&global.roster, &bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let result = raw.and_then(|raw| tenantry_model::validate_with_warnings(&global.roster, raw, &context));
    match result {
        Ok((roster, warnings)) => {
            match global.output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&output::diagnostics_json(&warnings)).unwrap_or_default()
                ),
                OutputFormat::Human => {
                    if !warnings.items.is_empty() {
                        eprint!("{}", output::diagnostics_human(&warnings, Some(&text), style));
                    }
                    println!("{}: valid, {} users", global.roster, roster.users.len());
                }
            }
            Ok(exit::OK)
        }
        Err(diagnostics) => Err(CliError::Roster(diagnostics, Some(text))),
    }
}

async fn plan(global: &GlobalArgs, args: &PlanArgs, style: Style) -> Result<i32> {
    let session = session(global)?;
    let live = live_checked(&session).await?;
    let engine = &live.engine;
    let policy = policy(&args.policy, &session.roster, engine)?;
    let prepared = engine.prepare(&session.roster, policy).await?;
    let targets = engine.target_names();
    let steps = engine.describe(&prepared.plan);
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::plan_json(&prepared.plan, &session.roster, &targets, &steps))
                .unwrap_or_default()
        ),
        OutputFormat::Human => {
            print!("{}", output::plan_human(&prepared.plan, &session.roster, &targets, &steps, style))
        }
    }
    let plan = &prepared.plan;
    if plan.is_blocked() || plan.has_conflicts() {
        return Ok(exit::ERROR);
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { exit::CHANGES } else { exit::OK })
}

async fn apply(global: &GlobalArgs, args: &ApplyArgs, style: Style) -> Result<i32> {
    let session = session(global)?;
    let live = live_checked(&session).await?;
    let engine = &live.engine;
    let policy = policy(&args.policy, &session.roster, engine)?;
    let prepared = engine.prepare(&session.roster, policy).await?;
    let plan = &prepared.plan;
    let targets = engine.target_names();
    let steps = engine.describe(plan);
    let human = global.output == OutputFormat::Human;
    if human {
        print!("{}", output::plan_human(plan, &session.roster, &targets, &steps, style));
    }
    if plan.is_blocked() {
        if !human {
            println!(
                "{}",
                serde_json::to_string_pretty(&output::plan_json(plan, &session.roster, &targets, &steps))
                    .unwrap_or_default()
            );
        }
        eprintln!("Nothing applied: the plan has blocking problems (above).");
        return Ok(exit::ERROR);
    }
    let acts = plan.changes.iter().any(|c| c.action.is_applied());
    if acts && !args.yes && !confirm("Apply these changes?", "review `tenantry plan`, then run `tenantry apply --yes`")?
    {
        println!("Apply cancelled; nothing changed.");
        return Ok(exit::ERROR);
    }
    let bar = (human && acts && std::io::stderr().is_terminal()).then(|| {
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
    let options = ApplyOptions {
        concurrency: usize::from(args.concurrency),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let report = engine.apply(&session.roster, &prepared, &options, &on_progress).await?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&output::apply_json(&report, plan, &session.roster, &targets, &steps))
                .unwrap_or_default()
        ),
        OutputFormat::Human if acts => print!("{}", output::apply_summary_human(&report, plan, style)),
        OutputFormat::Human => {}
    }
    if let Some(host) = &live.host {
        let mut notes: Vec<String> = host.take_warnings().into_iter().map(|w| format!("warning: {w}")).collect();
        if !args.no_refresh {
            // Under --only, only those users' checkouts.
            let scoped = prepared.policy.only.as_ref().map(|only| {
                let mine =
                    prepared.desired.resources().iter().filter(|r| r.owner.user().is_some_and(|u| only.contains(u)));
                tenantry_core::Desired::new(mine.cloned().collect(), Default::default())
            });
            let desired = scoped.as_ref().unwrap_or(&prepared.desired);
            notes.extend(refresh_checkouts(host, desired, usize::from(args.concurrency)).await);
        }
        if human {
            for note in &notes {
                eprintln!("{note}");
            }
        }
    }
    Ok(if report.is_success() { exit::OK } else { exit::ERROR })
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.display().to_string(), source })
}

fn import(global: &GlobalArgs, args: &ImportArgs) -> Result<i32> {
    use tenantry_engine::Clock as _;
    let config = Config::load(global.config.as_deref())?;
    let k8s_text = match &args.k8s_users {
        Some(source) => Some(match crate::source::VaultSource::parse(source)? {
            Some(vault) => (source.clone(), crate::source::read_vault_field(&config, &vault, source)?),
            None => (source.clone(), read_text(Path::new(source))?),
        }),
        None => None,
    };
    let workstation_text = match &args.workstation {
        Some(path) => Some((path.display().to_string(), read_text(path)?)),
        None => None,
    };
    let template_text = match &global.platform_from {
        Some(path) => Some((path.display().to_string(), read_text(path)?)),
        None => None,
    };
    let failed = |e: tenantry_import::ImportError| CliError::Roster(e.diagnostics(), None);
    let k8s = match &k8s_text {
        Some((name, text)) => Some(tenantry_import::parse_k8s_users(text, name).map_err(failed)?),
        None => None,
    };
    let workstation = match &workstation_text {
        Some((name, text)) => Some(tenantry_import::parse_workstation_roster(text, name).map_err(failed)?),
        None => None,
    };
    let template =
        template_text.as_ref().map(|(name, text)| tenantry_import::PlatformTemplate { source_name: name, text });
    let options = tenantry_import::ImportOptions {
        generated_at: SystemClock.now(),
        output_name: args.out.as_ref().map_or_else(|| "roster.yaml".to_string(), |p| p.display().to_string()),
        context: config.validation_context(),
    };
    let imported = tenantry_import::merge(k8s.as_ref(), workstation.as_ref(), template, &options).map_err(failed)?;
    if let Some(out) = &args.out {
        crate::setup::write_file(out, imported.roster_yaml.as_bytes(), 0o644, args.force)?;
    }
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "format_version": output::FORMAT_VERSION,
                "written": args.out.as_ref().map(|p| p.display().to_string()),
                "roster_yaml": args.out.is_none().then_some(&imported.roster_yaml),
                "report": imported.report,
            }))
            .unwrap_or_default()
        ),
        OutputFormat::Human => {
            if args.out.is_none() {
                print!("{}", imported.roster_yaml);
            }
            eprintln!("{}", imported.report);
            if let Some(out) = &args.out {
                eprintln!("wrote {}; check it with `tenantry --roster {} plan`", out.display(), out.display());
            }
        }
    }
    Ok(exit::OK)
}

/// Ask on the terminal; only `yes` is accepted. Without a terminal, refuse.
fn confirm(question: &str, help: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage {
            message: "refusing to act without confirmation: standard input is not a terminal".to_string(),
            help: help.to_string(),
        });
    }
    print!("\n{question} Only `yes` is accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    Ok(answer.trim() == "yes")
}

async fn offboard(global: &GlobalArgs, args: &OffboardArgs, style: Style) -> Result<i32> {
    let user = &args.user;
    match args.stage {
        Stage::Reversible => {
            let session = session(global)?;
            if session.roster.users.contains_key(user) {
                return Err(CliError::Usage {
                    message: format!("`{user}` is still in the roster; the next apply would give everything back"),
                    help: format!(
                        "remove `{user}` from the roster first (or set `workstation.parked: true` to only lock the login)"
                    ),
                });
            }
            let apply_args = ApplyArgs {
                yes: args.yes,
                concurrency: args.concurrency,
                no_refresh: true,
                policy: PolicyArgs {
                    allow_revoke: false,
                    offboard: true,
                    only: vec![user.clone()],
                    with_platform: true,
                },
            };
            apply(global, &apply_args, style).await
        }
        Stage::Destroy => {
            let Some(backup) = &args.backup else {
                return Err(CliError::Usage {
                    message: "the destroy stage needs a backup directory".to_string(),
                    help: format!("tenantry offboard {user} --stage destroy --backup /var/backups/tenantry"),
                });
            };
            let session = session(global)?;
            let live = live(&session.config).await?;
            let plan = live.engine.destroy_plan(&session.roster, user).await.map_err(|e| match e {
                tenantry_engine::Error::DestroyRefused(message) => CliError::Usage {
                    message,
                    help: "the destroy stage only follows the reversible cut of a user who left the roster".to_string(),
                },
                other => CliError::Engine(other),
            })?;
            let human = global.output == OutputFormat::Human;
            if human {
                println!("{}", style.bold(&format!("Destroy stage for {user} (backups into {})", backup.display())));
                for (target, ids) in &plan.by_target {
                    println!("\n  on {target}:");
                    for id in ids {
                        println!("  {} {id}", style.paint("- destroy", tenantry_core::Action::Delete));
                    }
                }
                println!("\nEach target writes its backup before it deletes anything. This cannot be undone.");
            }
            if !args.yes
                && !confirm(
                    &format!("Destroy {user}'s data?"),
                    &format!("review the list, then run `tenantry offboard {user} --stage destroy --backup DIR --yes`"),
                )?
            {
                println!("Destroy cancelled; nothing changed.");
                return Ok(exit::ERROR);
            }
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            let report = live.engine.destroy(&plan, backup, &command).await?;
            match global.output {
                OutputFormat::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&output::destroy_json(&plan, &report)).unwrap_or_default()
                ),
                OutputFormat::Human => print!("{}", output::destroy_human(&plan, &report, style)),
            }
            Ok(if report.is_success() { exit::OK } else { exit::ERROR })
        }
    }
}

/// Fetch every checkout and fast-forward the ones that can be; what was
/// left alone or failed is reported and never fails the run (a remote that
/// is offline today is tried again next time).
async fn refresh_checkouts(host: &HostTarget, desired: &tenantry_core::Desired, concurrency: usize) -> Vec<String> {
    let mut notes = Vec::new();
    for (id, outcome) in host.refresh_all(desired, concurrency).await {
        match outcome {
            Ok(RefreshOutcome::FastForwarded { commits }) => {
                notes.push(format!("refreshed {id}: fast-forwarded {commits} commit(s)"))
            }
            Ok(RefreshOutcome::UpToDate) => {}
            Ok(RefreshOutcome::LeftAlone { reason }) => notes.push(format!("warning: {id} not refreshed: {reason}")),
            Err(error) => notes.push(format!("warning: {id} not refreshed: {error}")),
        }
    }
    notes
}

async fn render(global: &GlobalArgs, dir: &Path, style: Style) -> Result<i32> {
    let session = session(global)?;
    let engine = engine(&session.config).await?;
    let facts = engine.facts(&session.roster, &Policy::default())?;
    let desired = tenantry_core::derive(&session.roster, &session.config.settings(), &facts);
    let report = crate::render::render_all(&desired, dir)
        .map_err(|source| CliError::Read { path: dir.display().to_string(), source })?;
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({ "format_version": output::FORMAT_VERSION, "dir": dir.display().to_string(), "written": report.written, "unchanged": report.unchanged, "removed": report.removed })
        ),
        OutputFormat::Human => {
            let _ = style;
            println!(
                "Rendered {} resources into {}: {} files written, {} unchanged, {} removed.",
                desired.len(),
                dir.display(),
                report.written,
                report.unchanged,
                report.removed
            );
        }
    }
    Ok(exit::OK)
}

async fn why(global: &GlobalArgs, resource: &str, style: Style) -> Result<i32> {
    let id: ResourceId = resource.parse().map_err(|e: tenantry_core::ParseIdError| CliError::Usage {
        message: e.0,
        help: "ids are printed by `tenantry plan` and `tenantry explain USER`".to_string(),
    })?;
    let session = session(global)?;
    let engine = engine(&session.config).await?;
    let facts = engine.facts(&session.roster, &Policy::default())?;
    let desired = tenantry_core::derive(&session.roster, &session.config.settings(), &facts);
    let history = engine.with_state(|s| s.history(&id, 10))?;
    let since = engine.with_state(|s| s.inventory_since(&id))?;
    let routing = engine.routing();
    let Some(found) = desired.get(&id) else {
        if history.is_empty() && since.is_empty() {
            let suggestion = desired
                .resources()
                .iter()
                .map(|r| r.id.to_string())
                .map(|candidate| (strsim::jaro_winkler(resource, &candidate), candidate))
                .filter(|(score, _)| *score > 0.85)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, c)| format!("did you mean `{c}`?"))
                .unwrap_or_else(|| "list a user's resources with `tenantry explain USER`".to_string());
            return Err(CliError::Usage {
                message: format!("`{id}` is not derived from the roster and tenantry has no record of it"),
                help: suggestion,
            });
        }
        let value =
            serde_json::json!({ "id": id.to_string(), "derived": false, "inventory": since, "history": history });
        match global.output {
            OutputFormat::Json => println!("{value}"),
            OutputFormat::Human => {
                println!("{} is no longer derived from the roster.", style.bold(&id.to_string()));
                for (target, at) in &since {
                    println!(
                        "  tenantry manages it on `{target}` since {at}; `tenantry plan` shows what happens to it."
                    );
                }
                print_history(&history);
            }
        }
        return Ok(exit::OK);
    };
    let line = session
        .roster_text
        .lines()
        .nth((found.origin.line as usize).saturating_sub(1))
        .filter(|_| found.origin.is_known());
    let target = routing.target_for(id.domain).unwrap_or("(not configured)");
    match global.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "format_version": output::FORMAT_VERSION,
                "id": id.to_string(),
                "derived": true,
                "owner": found.owner.as_label(),
                "rule": found.rule,
                "origin": found.origin.is_known().then(|| format!("{}:{}:{}", session.roster.source, found.origin.line, found.origin.column)),
                "origin_line": line,
                "target": target,
                "depends_on": found.deps.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "inventory": since,
                "history": history,
            }))
            .unwrap_or_default()
        ),
        OutputFormat::Human => {
            println!("{}", style.bold(&id.to_string()));
            println!("  owner:   {}", found.owner);
            println!("  rule:    {}", found.rule);
            match line {
                Some(text) => println!("  from:    {}:{}:{}\n           {}", session.roster.source, found.origin.line, found.origin.column, text.trim()),
                None => println!("  from:    the platform defaults (no single roster line)"),
            }
            println!("  target:  {target}");
            for dep in found.deps.iter() {
                println!("  needs:   {dep}");
            }
            for (target, at) in &since {
                println!("  managed: on `{target}` since {at}");
            }
            print_history(&history);
        }
    }
    Ok(exit::OK)
}

fn print_history(history: &[tenantry_engine::JournalEntry]) {
    if history.is_empty() {
        return;
    }
    println!("  history (newest first):");
    for entry in history {
        let error = entry.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default();
        println!("    {} run {} {} on {}: {}{error}", entry.at, entry.run, entry.action, entry.target, entry.phase);
    }
}

async fn explain(global: &GlobalArgs, user: &str, style: Style) -> Result<i32> {
    let session = session(global)?;
    let Some(person) = session.roster.users.get(user) else {
        let help = tenantry_model::did_you_mean(user, session.roster.users.keys().map(String::as_str))
            .map(|k| format!("did you mean `{k}`?"))
            .unwrap_or_else(|| "users are the keys under `users:` in the roster".to_string());
        return Err(CliError::Usage { message: format!("`{user}` is not in the roster"), help });
    };
    let engine = engine(&session.config).await?;
    let facts = engine.facts(&session.roster, &Policy::default())?;
    let desired = tenantry_core::derive(&session.roster, &session.config.settings(), &facts);
    let routing = engine.routing();
    let resources: Vec<&tenantry_core::Resource> = desired.owned_by(user).collect();
    match global.output {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = resources
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id.to_string(),
                        "rule": r.rule,
                        "origin": r.origin.is_known().then(|| format!("{}:{}:{}", session.roster.source, r.origin.line, r.origin.column)),
                        "target": routing.target_for(r.id.domain),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "format_version": output::FORMAT_VERSION,
                    "user": user,
                    "email": person.email.value,
                    "tier": person.tier.value.as_str(),
                    "namespaces": person.namespaces.iter().map(|n| n.value.clone()).collect::<Vec<_>>(),
                    "domains": person.domains.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
                    "ports": desired.ports.get(user),
                    "resources": items,
                }))
                .unwrap_or_default()
            );
        }
        OutputFormat::Human => {
            println!(
                "{} — {} ({}), roster {}:{}",
                style.bold(user),
                person.tier.value,
                person.email.value,
                session.roster.source,
                person.span.line
            );
            let mut current = None;
            for resource in resources {
                if current != Some(resource.id.domain) {
                    current = Some(resource.id.domain);
                    println!(
                        "\n  {} (applied by {})",
                        style.bold(resource.id.domain.as_str()),
                        routing.target_for(resource.id.domain).unwrap_or("nothing: not configured")
                    );
                }
                let at = if resource.origin.is_known() {
                    format!("line {}", resource.origin.line)
                } else {
                    "defaults".to_string()
                };
                println!("    {}\n        {} ({at})", resource.id, resource.rule);
            }
        }
    }
    Ok(exit::OK)
}
