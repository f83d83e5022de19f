//! The human plan: grouped by owner, each change with its reason, diff and steps.

use super::Style;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tenantry_app::wire::{SENSITIVE, Steps};
use tenantry_core::{Action, Change, Content, Owner, Plan};
use tenantry_model::Roster;

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
    let groups = changes_by_owner(&plan.changes);
    let unchanged_only = plan
        .unchanged
        .keys()
        .filter(|owner| groups.binary_search_by(|(changed, _)| (*changed).cmp(owner)).is_err())
        .count();
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
        // Room for both halves at once: growing by doubling while both are
        // held was the peak of a 10,000-user plan's memory.
        out.reserve(first.len() + second.len());
        out.push_str(&first);
        drop(first);
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

/// The changes grouped by owner, in owner order. The diff sorts a plan's
/// changes by owner, so a group is a run of neighbours (one comparison per
/// change, not a map lookup); a plan in any other order is grouped all the same.
fn changes_by_owner(changes: &[Change]) -> Vec<(&Owner, Vec<&Change>)> {
    let runs: Vec<(&Owner, Vec<&Change>)> = changes
        .chunk_by(|a, b| a.owner == b.owner)
        .filter_map(|run| run.first().map(|first| (&first.owner, run.iter().collect())))
        .collect();
    if runs.is_sorted_by(|a, b| a.0 < b.0) {
        return runs;
    }
    let mut by_owner: BTreeMap<&Owner, Vec<&Change>> = BTreeMap::new();
    for (owner, run) in runs {
        by_owner.entry(owner).or_default().extend(run);
    }
    by_owner.into_iter().collect()
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
            // `"  {symbol} {action:<9} {id}  [{target}]"`, pushed piece by
            // piece: one line per change, and `writeln!` was most of this
            // function's cost at 10,000 users.
            out.push_str("  ");
            out.push_str(symbol);
            out.push(' ');
            out.push_str(action);
            out.push_str(&"         "[action.len().min(9)..]);
            out.push(' ');
            change.id.push_to(out);
            out.push_str("  [");
            out.push_str(&change.target);
            out.push_str("]\n");
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

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_core::{Action, Domain, ResourceId};

    fn change(owner: &str, name: &str) -> Change {
        let id = ResourceId::new(Domain::Kubernetes, "Namespace", "-", name);
        Change::bare("local", id, Owner::User(owner.to_string()), Action::Create)
    }

    fn grouped(changes: &[Change]) -> Vec<(String, Vec<String>)> {
        changes_by_owner(changes)
            .into_iter()
            .map(|(owner, run)| (owner.as_label().to_string(), run.iter().map(|c| c.id.name.to_string()).collect()))
            .collect()
    }

    #[test]
    fn changes_are_grouped_by_owner_in_owner_order_whatever_their_order() {
        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let sorted = [change("alice", "a1"), change("alice", "a2"), change("bob", "b1")];
        assert_eq!(grouped(&sorted), [("alice".into(), names(&["a1", "a2"])), ("bob".into(), names(&["b1"]))]);
        let unsorted = [change("bob", "b1"), change("alice", "a1"), change("bob", "b2"), change("alice", "a2")];
        assert_eq!(grouped(&unsorted), [("alice".into(), names(&["a1", "a2"])), ("bob".into(), names(&["b1", "b2"]))]);
        assert!(grouped(&[]).is_empty());
    }
}
