//! The summary table after apply.

use super::Style;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tenantry_app::ApplyReport;
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
