//! `doctor` and `history` for people: findings grouped by user, problems
//! in red and warnings in yellow, each with its evidence and fix; the
//! checks that were skipped and why; runs with their changes.

use super::Style;
use owo_colors::OwoColorize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use tenantry_app::{CheckStatus, DoctorReport, Finding, HistoryReport, Severity, change_outcome};

impl Style {
    fn severity(&self, text: &str, severity: Severity) -> String {
        match (self.color, severity) {
            (false, _) => text.to_string(),
            (true, Severity::Problem) => text.red().bold().to_string(),
            (true, Severity::Warning) => text.yellow().bold().to_string(),
        }
    }

    fn good(&self, text: &str) -> String {
        if self.color { text.green().to_string() } else { text.to_string() }
    }
}

fn finding_human(out: &mut String, finding: &Finding, style: Style) {
    let _ = writeln!(
        out,
        "  {} [{}/{}] {}",
        style.severity(finding.severity.as_str(), finding.severity),
        finding.target,
        finding.check,
        finding.cause
    );
    if let Some(resource) = &finding.resource {
        let _ = writeln!(out, "      {}", style.dim(resource));
    }
    for line in &finding.evidence {
        let _ = writeln!(out, "      evidence: {line}");
    }
    let _ = writeln!(out, "      fix: {}", style.bold(&finding.fix));
}

/// The doctor report, grouped by user.
pub fn doctor_human(report: &DoctorReport, style: Style) -> String {
    let mut out = String::new();
    let mut by_owner: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for finding in &report.findings {
        by_owner.entry(finding.owner.as_label()).or_default().push(finding);
    }
    for (owner, findings) in &by_owner {
        let _ = writeln!(out, "{}", style.bold(owner));
        for finding in findings {
            finding_human(&mut out, finding, style);
        }
        out.push('\n');
    }
    let skipped: Vec<_> = report
        .checks
        .iter()
        .filter_map(|c| match &c.status {
            CheckStatus::Skipped(why) => Some((c, why)),
            CheckStatus::Ran => None,
        })
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out, "{}", style.dim("Skipped checks (not passed):"));
        for (check, why) in &skipped {
            let _ = writeln!(out, "{}", style.dim(&format!("  {}/{}: {why}", check.target, check.check)));
        }
        out.push('\n');
    }
    let ran = report.checks.len() - skipped.len();
    let whom = report.user.as_deref().map(|u| format!("`{u}`")).unwrap_or_else(|| "everyone".to_string());
    let problems = report.problems();
    let line = if report.healthy() {
        style.good(&format!("Healthy: {ran} checks ran for {whom} and found nothing; {} skipped.", skipped.len()))
    } else {
        style.severity(
            &format!(
                "{problems} problem(s) and {} warning(s) for {whom}; {ran} checks ran, {} skipped.",
                report.findings.len() - problems,
                skipped.len()
            ),
            if problems > 0 { Severity::Problem } else { Severity::Warning },
        )
    };
    let _ = writeln!(out, "{line}");
    out
}

/// The history, one block per run.
pub fn history_human(report: &HistoryReport, style: Style) -> String {
    let mut out = String::new();
    if report.runs.is_empty() {
        let whom = report.user.as_deref().map(|u| format!(" for `{u}`")).unwrap_or_default();
        let since = report.since.as_deref().map(|s| format!(" since {s}")).unwrap_or_default();
        let _ = writeln!(out, "No changes recorded{whom}{since}.");
        return out;
    }
    for entry in &report.runs {
        let run = &entry.run;
        let revision = entry.roster_revision.as_deref().map(|r| format!(" @ {}", &r[..r.len().min(12)]));
        let digest = run.roster_digest.as_deref().map(|d| format!(", roster sha256 {}", &d[..d.len().min(12)]));
        let _ = writeln!(
            out,
            "{} {} by {}{}{}",
            style.bold(&format!("run {}", run.run)),
            run.started_at,
            run.actor.as_deref().unwrap_or("unknown"),
            digest.unwrap_or_default(),
            revision.unwrap_or_default()
        );
        let _ = writeln!(out, "  {}", style.dim(&run.command));
        for change in &entry.changes {
            let outcome = change_outcome(change);
            let mark = match outcome {
                "done" => style.good("done"),
                "failed" => style.severity("failed", Severity::Problem),
                other => style.severity(other, Severity::Warning),
            };
            let _ = writeln!(
                out,
                "  {} {:<8} {} {} [{}]",
                change.at, change.owner, change.action, change.id, change.target
            );
            let _ =
                writeln!(out, "      {mark}{}", change.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default());
        }
        out.push('\n');
    }
    out
}
