//! The summary table after apply.

use super::Style;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tenantry_app::{ApplyReport, Failure};
use tenantry_core::{Action, Owner, Plan};

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
        for group in failure_groups(&report.failures) {
            if group.failures.len() <= GROUP_FROM {
                for failure in &group.failures {
                    let _ = writeln!(
                        out,
                        "  {} {} {} [{}]\n      {}{}",
                        failure.owner.as_label(),
                        failure.action.as_str(),
                        failure.id,
                        failure.target,
                        failure.error,
                        if failure.unknown { UNKNOWN } else { "" }
                    );
                }
                continue;
            }
            let examples: Vec<&str> = group.failures.iter().take(GROUP_FROM).map(|f| f.id.as_str()).collect();
            let _ = writeln!(
                out,
                "  {} changes [{}] {}, all the same way:\n      {}{}\n      e.g. {}, and {} more (`--output json` lists each)",
                group.failures.len(),
                group.target,
                if group.skipped { "were skipped" } else { "failed" },
                group.cause,
                if group.unknown { UNKNOWN } else { "" },
                examples.join(", "),
                group.failures.len() - examples.len(),
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

/// More failures than this with one cause are shown once, with their count.
const GROUP_FROM: usize = 3;

/// Said of a change whose peer stopped answering.
const UNKNOWN: &str = "\n      (outcome unknown: the peer may have applied it; the next plan shows what is there)";

/// Failures of one target that share a cause.
struct FailureGroup<'a> {
    target: &'a str,
    skipped: bool,
    unknown: bool,
    /// The error, with the failing object's own id taken out.
    cause: String,
    failures: Vec<&'a Failure>,
}

/// The failures grouped by target and cause, in the order each cause first
/// failed: a peer that went away mid-apply fails every change the same way,
/// and a thousand identical lines hide the one that differs.
fn failure_groups(failures: &[Failure]) -> Vec<FailureGroup<'_>> {
    let mut groups: Vec<FailureGroup<'_>> = Vec::new();
    for failure in failures {
        // Each dependency skip names its own dependency; they share a cause.
        let cause = if failure.skipped && failure.error.starts_with("skipped:") {
            "skipped: something it needs failed (above)".to_string()
        } else {
            failure.error.replace(&failure.id, "<id>")
        };
        let same = |g: &&mut FailureGroup<'_>| {
            g.target == failure.target
                && g.skipped == failure.skipped
                && g.unknown == failure.unknown
                && g.cause == cause
        };
        match groups.iter_mut().find(same) {
            Some(group) => group.failures.push(failure),
            None => groups.push(FailureGroup {
                target: &failure.target,
                skipped: failure.skipped,
                unknown: failure.unknown,
                cause,
                failures: vec![failure],
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(id: &str, error: &str, skipped: bool) -> Failure {
        Failure {
            owner: Owner::User("alice".to_string()),
            target: "kubernetes".to_string(),
            id: id.to_string(),
            action: Action::Create,
            error: error.to_string(),
            skipped,
            unknown: false,
        }
    }

    #[test]
    fn many_failures_with_one_cause_are_shown_once_and_the_odd_one_out_in_full() {
        let mut failures: Vec<Failure> = (0..1698)
            .map(|i| {
                let id = format!("kubernetes/Namespace/-/u{i}");
                failure(&id, &format!("{id}: kubernetes is unavailable: connection refused"), false)
            })
            .collect();
        failures.push(failure("kubernetes/Role/u1/deployer", "forbidden: cannot create roles", false));
        failures
            .extend((0..5).map(|i| {
                failure(&format!("kubernetes/RoleBinding/u{i}/x"), "skipped: it needs x, which failed", true)
            }));
        let report = ApplyReport { failures, ..ApplyReport::default() };
        let text = apply_summary_human(&report, &Plan::default(), Style { color: false });
        assert_eq!(text.matches("connection refused").count(), 1, "{text}");
        assert!(text.contains("1698 changes [kubernetes] failed, all the same way:\n      <id>: kubernetes is unavailable: connection refused"), "{text}");
        assert!(text.contains("and 1695 more"), "{text}");
        assert!(
            text.contains("kubernetes/Role/u1/deployer [kubernetes]\n      forbidden: cannot create roles"),
            "{text}"
        );
        assert!(text.contains("5 changes [kubernetes] were skipped"), "{text}");
    }
}
