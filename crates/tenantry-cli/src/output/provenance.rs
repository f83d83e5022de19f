//! `why` and `explain` for humans.

use super::Style;
use std::fmt::Write as _;
use tenantry_app::{ExplainReport, JournalEntry, WhyReport};

fn history_lines(out: &mut String, history: &[JournalEntry]) {
    if history.is_empty() {
        return;
    }
    let _ = writeln!(out, "  history (newest first):");
    for entry in history {
        let error = entry.error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "    {} run {} {} on {}: {}{error}",
            entry.at, entry.run, entry.action, entry.target, entry.phase
        );
    }
}

pub fn why_human(report: &WhyReport, style: Style) -> String {
    let mut out = String::new();
    match report {
        WhyReport::Remembered { id, inventory, history } => {
            let _ = writeln!(out, "{} is no longer derived from the roster.", style.bold(&id.to_string()));
            for (target, at) in inventory {
                let _ = writeln!(
                    out,
                    "  tenantry manages it on `{target}` since {at}; `tenantry plan` shows what happens to it."
                );
            }
            history_lines(&mut out, history);
        }
        WhyReport::Derived(found) => {
            let _ = writeln!(out, "{}", style.bold(&found.id.to_string()));
            let _ = writeln!(out, "  owner:   {}", found.owner);
            let _ = writeln!(out, "  rule:    {}", found.rule);
            match &found.origin_line {
                Some(text) => {
                    let _ = writeln!(
                        out,
                        "  from:    {}:{}:{}\n           {}",
                        found.source,
                        found.origin.line,
                        found.origin.column,
                        text.trim()
                    );
                }
                None => {
                    let _ = writeln!(out, "  from:    the platform defaults (no single roster line)");
                }
            }
            if let Some(template) = &found.template {
                let _ = writeln!(out, "  template: {template}");
            }
            let _ = writeln!(out, "  target:  {}", found.target);
            for dep in &found.depends_on {
                let _ = writeln!(out, "  needs:   {dep}");
            }
            for (target, at) in &found.inventory {
                let _ = writeln!(out, "  managed: on `{target}` since {at}");
            }
            history_lines(&mut out, &found.history);
        }
    }
    out
}

pub fn explain_human(report: &ExplainReport, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} — {} ({}), roster {}:{}",
        style.bold(&report.user),
        report.tier,
        report.email,
        report.source,
        report.line
    );
    let mut current = None;
    for grant in &report.resources {
        if current != Some(grant.domain()) {
            current = Some(grant.domain());
            let _ = writeln!(
                out,
                "\n  {} (applied by {})",
                style.bold(grant.domain().as_str()),
                grant.target.as_deref().unwrap_or("nothing: not configured")
            );
        }
        let at = if grant.origin.is_known() { format!("line {}", grant.origin.line) } else { "defaults".to_string() };
        let _ = writeln!(out, "    {}\n        {} ({at})", grant.id, grant.rule);
    }
    out
}
