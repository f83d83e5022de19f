//! All rendering: human text (grouped by user, coloured diffs) and stable JSON.
//!
//! The JSON shapes here are a documented contract (`docs/OUTPUT.md`):
//! fields are only ever added, and `format_version` changes otherwise.

use owo_colors::OwoColorize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tenantry_core::{Action, Change, Content, Owner, Plan, ResourceId};
use tenantry_engine::{ApplyReport, DestroyPlan, DestroyReport};
use tenantry_model::{Diagnostics, Roster, Severity};

pub const FORMAT_VERSION: &str = "1";
const SENSITIVE: &str = "(sensitive)";

/// The commands each change would run, by resource (host changes).
pub type Steps = BTreeMap<ResourceId, Vec<String>>;

/// Whether to colour output.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn paint(&self, text: &str, action: Action) -> String {
        if !self.color {
            return text.to_string();
        }
        match action {
            Action::Create => text.green().to_string(),
            Action::Update | Action::Adopt => text.yellow().to_string(),
            Action::Cut | Action::Delete | Action::Conflict => text.red().to_string(),
            Action::Withheld | Action::Departing | Action::Kept => text.cyan().to_string(),
            Action::NoOp => text.dimmed().to_string(),
        }
    }

    pub fn bold(&self, text: &str) -> String {
        if self.color { text.bold().to_string() } else { text.to_string() }
    }

    pub fn dim(&self, text: &str) -> String {
        if self.color { text.dimmed().to_string() } else { text.to_string() }
    }
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Adopt => "⇐",
        Action::Cut => "⊘",
        Action::Delete => "-",
        Action::Withheld => "=",
        Action::Departing => "…",
        Action::Kept => "·",
        Action::Conflict => "!",
        Action::NoOp => " ",
    }
}

fn owner_heading(owner: &Owner, roster: &Roster, departing: bool) -> String {
    match owner {
        Owner::Platform => "platform (shared)".to_string(),
        Owner::User(user) => match roster.users.get(user) {
            Some(u) => format!("{user} ({}, {})", u.tier.value, u.email.value),
            None if departing => format!("{user} — departing: left the roster"),
            None => user.clone(),
        },
    }
}

/// Human plan text.
pub fn plan_human(plan: &Plan, roster: &Roster, targets: &[String], steps: &Steps, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} (targets: {})", style.bold("Plan for"), roster.source, targets.join(", "));
    let mut by_owner: BTreeMap<&Owner, Vec<&Change>> = BTreeMap::new();
    for change in &plan.changes {
        by_owner.entry(&change.owner).or_default().push(change);
    }
    for owner in plan.unchanged.keys() {
        by_owner.entry(owner).or_default();
    }
    let owners = by_owner.len();
    let groups: Vec<(&Owner, Vec<&Change>)> = by_owner.into_iter().filter(|(_, c)| !c.is_empty()).collect();
    let unchanged_only = owners - groups.len();
    // Large plans (a first apply of thousands of users) render in two halves
    // on two threads; the text is the same either way.
    let total: usize = groups.iter().map(|(_, c)| c.len()).sum();
    let render = |part: &[(&Owner, Vec<&Change>)]| {
        let mut text = String::with_capacity(part.iter().map(|(_, c)| c.len() * 96).sum());
        for (owner, changes) in part {
            owner_section(&mut text, plan, roster, owner, changes, steps, style);
        }
        text
    };
    if total > 20_000 {
        let mut seen = 0;
        let split = groups
            .iter()
            .position(|(_, c)| {
                seen += c.len();
                seen * 2 >= total
            })
            .map_or(groups.len(), |i| i + 1);
        let (first_half, second_half) = groups.split_at(split);
        let (first, second) = std::thread::scope(|scope| {
            let second = scope.spawn(|| render(second_half));
            let first = render(first_half);
            // Rendering cannot fail; if the thread died anyway, render its half here.
            (first, second.join().unwrap_or_else(|_| render(second_half)))
        });
        out.push_str(&first);
        out.push_str(&second);
    } else {
        out.push_str(&render(&groups));
    }
    if unchanged_only > 0 {
        let _ = writeln!(out, "\n{}", style.dim(&format!("{unchanged_only} more owners with no changes")));
    }
    for (domain, count) in &plan.unrouted {
        let _ = writeln!(out, "\n{}", style.dim(&format!("{domain}: not configured, {count} resources skipped")));
    }
    for problem in &plan.problems {
        let _ = writeln!(
            out,
            "\n{} {}\n  help: {}",
            style.paint("problem:", Action::Conflict),
            problem.message,
            problem.help
        );
    }
    let _ = writeln!(out, "\n{}", totals_line(plan));
    out
}

fn owner_section(
    out: &mut String,
    plan: &Plan,
    roster: &Roster,
    owner: &Owner,
    changes: &[&Change],
    steps: &Steps,
    style: Style,
) {
    let departing = owner.user().is_some_and(|u| plan.departing.contains(u));
    let _ = writeln!(out, "\n{}", style.bold(&owner_heading(owner, roster, departing)));
    for change in changes {
        let symbol = symbol(change.action);
        let action = change.action.as_str();
        if style.color {
            let label = format!("{symbol} {action:<9}");
            let target = format!("[{}]", change.target);
            let _ = writeln!(out, "  {} {}  {}", style.paint(&label, change.action), change.id, style.dim(&target));
        } else {
            let _ = writeln!(out, "  {symbol} {action:<9} {}  [{}]", change.id, change.target);
        }
        if !matches!(change.action, Action::Create) {
            let _ = writeln!(out, "      {}", style.dim(&change.reason));
        }
        if matches!(change.action, Action::Update | Action::Adopt | Action::Cut | Action::Conflict) {
            out.push_str(&content_diff(change, style));
        }
        for step in steps.get(&change.id).into_iter().flatten() {
            let _ = writeln!(out, "      {}", style.dim(&format!("$ {step}")));
        }
    }
    if let Some(count) = plan.unchanged.get(owner) {
        let _ = writeln!(out, "  {}", style.dim(&format!("{count} unchanged")));
    }
}

pub fn totals_line(plan: &Plan) -> String {
    let totals = plan.totals();
    let count = |action| totals.get(&action).copied().unwrap_or(0);
    if !plan.has_changes() && !plan.has_conflicts() {
        let mut line = "No changes. The roster and the targets agree.".to_string();
        let held = count(Action::Withheld) + count(Action::Departing) + count(Action::Kept);
        if held > 0 {
            let _ = write!(
                line,
                " ({} withheld, {} departing, {} kept)",
                count(Action::Withheld),
                count(Action::Departing),
                count(Action::Kept)
            );
        }
        return line;
    }
    format!(
        "Plan: {} to create, {} to update, {} to adopt, {} to cut, {} to delete; {} withheld, {} departing, {} kept, {} conflicts, {} unchanged.",
        count(Action::Create),
        count(Action::Update),
        count(Action::Adopt),
        count(Action::Cut),
        count(Action::Delete),
        count(Action::Withheld),
        count(Action::Departing),
        count(Action::Kept),
        count(Action::Conflict),
        count(Action::NoOp),
    )
}

fn content_diff(change: &Change, style: Style) -> String {
    if change.sensitive {
        return format!("      {}\n", SENSITIVE);
    }
    let before = change.before.as_ref().map(Content::pretty).unwrap_or_default();
    let after = change.after.as_ref().map(Content::pretty).unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut out = String::new();
    for group in diff.grouped_ops(2) {
        for op in group {
            for line in diff.iter_changes(&op) {
                let text = line.value().trim_end_matches('\n');
                let rendered = match line.tag() {
                    similar::ChangeTag::Delete => style.paint(&format!("- {text}"), Action::Delete),
                    similar::ChangeTag::Insert => style.paint(&format!("+ {text}"), Action::Create),
                    similar::ChangeTag::Equal => style.dim(&format!("  {text}")),
                };
                let _ = writeln!(out, "      {rendered}");
            }
        }
    }
    out
}

fn content_json(content: Option<&Content>, sensitive: bool) -> Value {
    match content {
        None => Value::Null,
        Some(_) if sensitive => Value::String(SENSITIVE.to_string()),
        Some(content) => content.to_value(),
    }
}

fn origin_text(roster: &Roster, span: tenantry_model::Span) -> Value {
    if span.is_known() {
        Value::String(format!("{}:{}:{}", roster.source, span.line, span.column))
    } else {
        Value::Null
    }
}

pub fn change_json(change: &Change, roster: &Roster, steps: Option<&Vec<String>>) -> Value {
    let mut value = json!({
        "id": change.id.to_string(),
        "target": change.target,
        "action": change.action.as_str(),
        "reason": change.reason,
        "rule": change.rule,
        "origin": origin_text(roster, change.origin),
        "before": content_json(change.before.as_ref(), change.sensitive),
        "after": content_json(change.after.as_ref(), change.sensitive),
    });
    if let (Some(steps), Some(object)) = (steps, value.as_object_mut()) {
        object.insert("steps".to_string(), json!(steps));
    }
    value
}

/// The stable JSON form of a plan.
pub fn plan_json(plan: &Plan, roster: &Roster, targets: &[String], steps: &Steps) -> Value {
    let summary = plan.summary();
    let mut changes_by_owner: BTreeMap<&Owner, Vec<Value>> = BTreeMap::new();
    for change in &plan.changes {
        changes_by_owner.entry(&change.owner).or_default().push(change_json(change, roster, steps.get(&change.id)));
    }
    let owners: Vec<Value> = summary
        .iter()
        .map(|(owner, s)| {
            json!({
                "owner": owner.as_label(),
                "departing": s.departing,
                "counts": s.counts.iter().map(|(a, n)| (a.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "changes": changes_by_owner.remove(owner).unwrap_or_default(),
            })
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "roster": roster.source,
        "targets": targets,
        "has_changes": plan.has_changes(),
        "totals": plan.totals().iter().map(|(a, n)| (a.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "owners": owners,
        "unrouted": plan.unrouted.iter().map(|(d, n)| (d.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "problems": plan.problems,
    })
}

/// The summary table after apply.
pub fn apply_summary_human(report: &ApplyReport, plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    let mut rows: BTreeMap<&Owner, (usize, usize, usize)> = BTreeMap::new();
    for (owner, count) in &report.applied {
        rows.entry(owner).or_default().0 += count;
    }
    for failure in &report.failures {
        let row = rows.entry(&failure.owner).or_default();
        if failure.skipped { row.2 += 1 } else { row.1 += 1 }
    }
    let _ = writeln!(out, "\n{:<32} {:>8} {:>8} {:>8}", style.bold("owner"), "applied", "failed", "skipped");
    for (owner, (applied, failed, skipped)) in &rows {
        let line = format!("{:<32} {:>8} {:>8} {:>8}", owner.as_label(), applied, failed, skipped);
        let _ = writeln!(out, "{}", if *failed + *skipped > 0 { style.paint(&line, Action::Conflict) } else { line });
    }
    if !report.failures.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Failures"));
        for failure in &report.failures {
            let _ = writeln!(
                out,
                "  {} {} {} [{}]\n      {}",
                failure.owner.as_label(),
                failure.action.as_str(),
                failure.id,
                failure.target,
                failure.error
            );
        }
    }
    let held = plan.changes.iter().filter(|c| matches!(c.action, Action::Withheld | Action::Departing)).count();
    let failed_users = report.failed_users().len();
    let _ = writeln!(
        out,
        "\nApply {}: {} changes applied, {} failed or skipped ({} owner{}), {} held back (see plan).",
        if report.is_success() { "complete" } else { "finished with failures" },
        report.applied_total(),
        report.failures.len(),
        failed_users,
        if failed_users == 1 { "" } else { "s" },
        held,
    );
    out
}

pub fn apply_json(report: &ApplyReport, plan: &Plan, roster: &Roster, targets: &[String], steps: &Steps) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "run": report.run,
        "success": report.is_success(),
        "applied": report.applied.iter().map(|(o, n)| (o.as_label().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "failures": report.failures,
        "plan": plan_json(plan, roster, targets, steps),
    })
}

/// Roster diagnostics: with a source snippet for humans, as a list for JSON.
pub fn diagnostics_human(diagnostics: &Diagnostics, source_text: Option<&str>, style: Style) -> String {
    let mut out = String::new();
    for diagnostic in &diagnostics.items {
        let level = match diagnostic.severity {
            Severity::Error => style.paint("error", Action::Conflict),
            Severity::Warning => style.paint("warning", Action::Update),
        };
        let _ = writeln!(out, "{level}[{}]: {}", diagnostic.code, style.bold(&diagnostic.message));
        let _ = writeln!(out, "  --> {}", diagnostic.location());
        if let Some(text) = source_text
            && diagnostic.span.is_known()
            && let Some(line) = text.lines().nth(diagnostic.span.line as usize - 1)
        {
            let number = diagnostic.span.line.to_string();
            let pad = " ".repeat(number.len());
            let caret_at: String = line
                .chars()
                .take(diagnostic.span.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ =
                writeln!(out, "{pad} |\n{number} | {line}\n{pad} | {caret_at}{}", style.paint("^", Action::Conflict));
        }
        if let Some(help) = &diagnostic.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out.push('\n');
    }
    let errors = diagnostics.errors().count();
    let warnings = diagnostics.warnings().count();
    let _ = writeln!(
        out,
        "{errors} error{}, {warnings} warning{}",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
    out
}

pub fn diagnostics_json(diagnostics: &Diagnostics) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "valid": !diagnostics.has_errors(),
        "diagnostics": diagnostics.items.iter().map(|d| json!({
            "severity": d.severity,
            "code": d.code,
            "message": d.message,
            "help": d.help,
            "file": d.source,
            "line": d.span.line,
            "column": d.span.column,
            "location": d.location(),
        })).collect::<Vec<_>>(),
    })
}

pub fn destroy_human(plan: &DestroyPlan, report: &DestroyReport, style: Style) -> String {
    let mut out = String::new();
    for (target, outcome) in &report.targets {
        match outcome {
            Ok(done) => {
                let _ = writeln!(out, "\n{} on {target}: {} removed", style.bold(&plan.user), done.removed.len());
                for backup in &done.backups {
                    let _ = writeln!(out, "  backup: {}", backup.display());
                }
                for note in &done.notes {
                    let _ = writeln!(out, "  note: {note}");
                }
            }
            Err(error) => {
                let _ = writeln!(
                    out,
                    "\n{} on {target}: {} {error}",
                    style.bold(&plan.user),
                    style.paint("failed:", Action::Conflict)
                );
            }
        }
    }
    if report.released {
        let _ = writeln!(out, "\nDestroyed {}: nothing of theirs is left; their ports are free again.", plan.user);
    } else {
        let _ = writeln!(
            out,
            "\nDestroy incomplete for {}: what failed is kept (and still listed by `tenantry explain`/`why`); fix the cause and rerun.",
            plan.user
        );
    }
    out
}

pub fn destroy_json(plan: &DestroyPlan, report: &DestroyReport) -> Value {
    let targets: serde_json::Map<String, Value> = report
        .targets
        .iter()
        .map(|(target, outcome)| {
            let value = match outcome {
                Ok(done) => json!({
                    "ok": true,
                    "backups": done.backups.iter().map(|b| b.display().to_string()).collect::<Vec<_>>(),
                    "removed": done.removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "notes": done.notes,
                }),
                Err(error) => json!({ "ok": false, "error": error }),
            };
            (target.clone(), value)
        })
        .collect();
    json!({
        "format_version": FORMAT_VERSION,
        "run": report.run,
        "user": plan.user,
        "success": report.is_success(),
        "planned": plan.by_target.iter().map(|(t, ids)| (t.clone(), json!(ids.iter().map(ToString::to_string).collect::<Vec<_>>()))).collect::<serde_json::Map<_, _>>(),
        "targets": targets,
    })
}
