//! `plan --output markdown`: a compact summary fit for a pull-request
//! comment — totals, what needs a human first (problems, conflicts,
//! withheld removals, departing users), a table of counts per owner, and
//! each owner's changes with their diffs folded away.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use tenantry_app::wire::{SENSITIVE, Steps};
use tenantry_core::{Action, Change, Owner, Plan};

/// Actions in the order of the table's columns.
const COLUMNS: [Action; 9] = [
    Action::Create,
    Action::Update,
    Action::Adopt,
    Action::Cut,
    Action::Delete,
    Action::Withheld,
    Action::Departing,
    Action::Conflict,
    Action::NoOp,
];

/// Text in a table cell or a list item: no line breaks, no pipes, no backticks breaking out of code.
fn cell(text: &str) -> String {
    text.replace(['\n', '\r'], " ").replace('|', "\\|")
}

fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

pub fn plan_markdown(plan: &Plan, roster: &str, targets: &[String], steps: &Steps) -> String {
    let mut out = String::new();
    let totals = plan.totals();
    let count = |action| totals.get(&action).copied().unwrap_or(0);
    let _ = writeln!(out, "### tenantry plan for {} (targets: {})\n", code(roster), targets.join(", "));
    if !plan.has_changes() && !plan.has_conflicts() {
        let _ = writeln!(out, "**No changes.** The roster and the targets agree.\n");
    } else {
        let _ = writeln!(
            out,
            "**{} to create, {} to update, {} to adopt, {} to cut, {} to delete** · {} withheld · {} departing · {} conflicts · {} unchanged\n",
            count(Action::Create),
            count(Action::Update),
            count(Action::Adopt),
            count(Action::Cut),
            count(Action::Delete),
            count(Action::Withheld),
            count(Action::Departing),
            count(Action::Conflict),
            count(Action::NoOp),
        );
    }

    // What needs a human first.
    for problem in &plan.problems {
        let level = if problem.blocking { "Blocking problem" } else { "Problem" };
        let _ = writeln!(out, "> **{level}:** {}  \n> {}\n", cell(&problem.message), cell(&problem.help));
    }
    for (heading, action) in
        [("Conflicts", Action::Conflict), ("Withheld removals", Action::Withheld), ("Departing", Action::Departing)]
    {
        let items: Vec<&Change> = plan.changes.iter().filter(|c| c.action == action).collect();
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "**{heading}** ({})\n", items.len());
        for change in items {
            let _ = writeln!(out, "- {} — {}", code(&change.id.to_string()), cell(&change.reason));
        }
        out.push('\n');
    }

    // Counts per owner.
    let summary = plan.summary();
    if !summary.is_empty() {
        let _ = writeln!(out, "| owner | {} |", COLUMNS.map(Action::as_str).join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(COLUMNS.len()));
        for (owner, counts) in &summary {
            let cells: Vec<String> =
                COLUMNS.iter().map(|a| counts.counts.get(a).map_or(String::new(), ToString::to_string)).collect();
            let departing = if counts.departing { " (departing)" } else { "" };
            let _ = writeln!(out, "| {}{departing} | {} |", cell(owner.as_label()), cells.join(" | "));
        }
        out.push('\n');
    }

    // Each owner's changes, folded.
    let mut by_owner: BTreeMap<&Owner, Vec<&Change>> = BTreeMap::new();
    for change in plan.changes.iter().filter(|c| c.action.is_change()) {
        by_owner.entry(&change.owner).or_default().push(change);
    }
    for (owner, changes) in by_owner {
        let _ = writeln!(
            out,
            "<details><summary>{} — {} change(s)</summary>\n\n```diff",
            cell(owner.as_label()),
            changes.len()
        );
        for change in changes {
            let sign = match change.action {
                Action::Create | Action::Adopt => '+',
                Action::Cut | Action::Delete => '-',
                _ => '!',
            };
            let _ = writeln!(out, "{sign} {} {}  [{}]", change.action.as_str(), change.id, change.target);
            out.push_str(&diff_lines(change));
            for step in steps.get(&change.id).into_iter().flatten() {
                let _ = writeln!(out, "  $ {step}");
            }
        }
        out.push_str("```\n\n</details>\n\n");
    }
    out
}

/// The content diff of an update, adoption or cut, as `diff` lines.
fn diff_lines(change: &Change) -> String {
    if !matches!(change.action, Action::Update | Action::Adopt | Action::Cut) {
        return String::new();
    }
    if change.sensitive {
        return format!("  {SENSITIVE}\n");
    }
    let before = change.before.as_ref().map(|c| c.pretty()).unwrap_or_default();
    let after = change.after.as_ref().map(|c| c.pretty()).unwrap_or_default();
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut out = String::new();
    for group in diff.grouped_ops(1) {
        for op in group {
            for line in diff.iter_changes(&op) {
                let sign = match line.tag() {
                    similar::ChangeTag::Delete => '-',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Equal => ' ',
                };
                // The fence of the code block must not be closed by content.
                let text = line.value().trim_end_matches('\n').replace("```", "'''");
                let _ = writeln!(out, "{sign}   {text}");
            }
        }
    }
    out
}
