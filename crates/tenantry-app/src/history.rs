//! `tenantry history [USER] [--since DATE]`: what changed for whom, when,
//! and by which run — the journal of the state database, each run with who
//! started it and from which roster, completed by the audit log's git
//! revision of that roster. Reads only; takes no run lock.

use crate::error::{AppError, Result};
use crate::session::Session;
use crate::wire::FORMAT_VERSION;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tenantry_engine::{ChangeRecord, RunRecord, State};

/// One run and the changes it made (of the user asked about).
#[derive(Debug, Clone)]
pub struct HistoryRun {
    pub run: RunRecord,
    /// The roster's git revision, from the audit log.
    pub roster_revision: Option<String>,
    pub changes: Vec<ChangeRecord>,
}

#[derive(Debug, Clone)]
pub struct HistoryReport {
    pub user: Option<String>,
    /// The start, as RFC 3339 (UTC).
    pub since: Option<String>,
    /// Oldest first.
    pub runs: Vec<HistoryRun>,
}

/// A change's outcome in words: `done`, `failed`, `skipped`,
/// `interrupted` (the run was killed), `unknown` (its peer stopped answering:
/// it may have been applied), `pending` (no outcome yet).
pub fn outcome(change: &ChangeRecord) -> &'static str {
    match change.phase.as_str() {
        "done" => "done",
        "failed"
            if change
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("skipped:") || e.starts_with("not attempted:")) =>
        {
            "skipped"
        }
        "failed" => "failed",
        "interrupted" => "interrupted",
        "unknown" => "unknown",
        _ => "pending",
    }
}

impl HistoryReport {
    pub fn to_json(&self) -> Value {
        json!({
            "format_version": FORMAT_VERSION,
            "user": self.user,
            "since": self.since,
            "runs": self.runs.iter().map(|entry| json!({
                "run": entry.run.run,
                "started_at": entry.run.started_at,
                "finished_at": entry.run.finished_at,
                "command": entry.run.command,
                "who": entry.run.actor,
                "roster_digest": entry.run.roster_digest,
                "roster_revision": entry.roster_revision,
                "summary": entry.run.summary,
                "changes": entry.changes.iter().map(|c| json!({
                    "at": c.at,
                    "target": c.target,
                    "id": c.id,
                    "owner": c.owner,
                    "action": c.action,
                    "outcome": outcome(c),
                    "error": c.error,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// `2026-01-31` or an RFC 3339 time → RFC 3339 UTC seconds, as the journal writes them.
pub fn parse_since(text: &str) -> Result<String> {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    humantime::parse_rfc3339_weak(&full)
        .or_else(|_| humantime::parse_rfc3339(&full))
        .map(|time| humantime::format_rfc3339_seconds(time).to_string())
        .map_err(|e| {
            AppError::usage(
                format!("--since {text}: {e}"),
                "give a date (2026-01-31) or a time (2026-01-31T12:00:00Z), in UTC",
            )
        })
}

impl Session {
    /// The journal of `user` (everyone when `None`) since `since` (see [`parse_since`]).
    pub async fn history(&self, user: Option<&str>, since: Option<&str>) -> Result<HistoryReport> {
        let since = since.map(parse_since).transpose()?;
        let path = self.config.local.state.clone();
        let audit_log = self.config.audit_log();
        let (user_owned, since_owned) = (user.map(str::to_string), since.clone());
        let read = tokio::task::spawn_blocking(move || -> Result<(Vec<RunRecord>, Vec<ChangeRecord>, _)> {
            if !path.exists() {
                return Ok((Vec::new(), Vec::new(), Vec::new()));
            }
            let state = State::open(&path)?;
            let changes = state.changes_since(user_owned.as_deref(), since_owned.as_deref())?;
            let mut numbers: Vec<i64> = changes.iter().map(|c| c.run).collect();
            numbers.dedup();
            let runs = state.runs_by_number(&numbers)?;
            let audit = crate::audit::read(&audit_log).map_err(|e| AppError::read(audit_log.display(), e))?;
            Ok((runs, changes, audit))
        })
        .await
        .map_err(|e| AppError::config(format!("reading the history stopped: {e}"), "run again"))??;
        let (runs, changes, audit) = read;
        // A run's revision, when the audit log recorded that run from the same roster.
        let revisions: BTreeMap<(i64, &str), Option<&str>> = audit
            .iter()
            .map(|event| ((event.run, event.roster.digest.as_str()), event.roster.revision.as_deref()))
            .collect();
        let mut by_run: BTreeMap<i64, Vec<ChangeRecord>> = BTreeMap::new();
        for change in changes {
            by_run.entry(change.run).or_default().push(change);
        }
        let runs = runs
            .into_iter()
            .map(|run| {
                let roster_revision = run
                    .roster_digest
                    .as_deref()
                    .and_then(|digest| revisions.get(&(run.run, digest)).copied().flatten())
                    .map(str::to_string);
                let changes = by_run.remove(&run.run).unwrap_or_default();
                HistoryRun { run, roster_revision, changes }
            })
            .collect();
        Ok(HistoryReport { user: user.map(str::to_string), since, runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_date_or_a_time_and_gives_the_journal_s_form() {
        assert_eq!(parse_since("2026-01-31").unwrap(), "2026-01-31T00:00:00Z");
        assert_eq!(parse_since("2026-01-31T12:30:00Z").unwrap(), "2026-01-31T12:30:00Z");
        let Err(AppError::Usage { help, .. }) = parse_since("yesterday") else { panic!() };
        assert!(help.contains("2026-01-31"), "{help}");
    }
}
