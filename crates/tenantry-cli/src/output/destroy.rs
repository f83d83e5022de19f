//! The destroy stage: what it will remove, and what it did.

use super::Style;
use std::fmt::Write as _;
use tenantry_app::{DestroyPlan, DestroyReport};
use tenantry_core::Action;

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

/// What the destroy stage will do, before it is confirmed.
pub fn destroy_preview_human(plan: &DestroyPlan, backup: &std::path::Path, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("Destroy stage for {} (backups into {})", plan.user, backup.display()))
    );
    for (target, ids) in &plan.by_target {
        let _ = writeln!(out, "\n  on {target}:");
        for id in ids {
            let _ = writeln!(out, "  {} {id}", style.paint("- destroy", Action::Delete));
        }
    }
    let _ = writeln!(out, "\nEach target writes its backup before it deletes anything. This cannot be undone.");
    out
}
