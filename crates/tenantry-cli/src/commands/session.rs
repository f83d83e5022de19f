//! `tenantry session save|restore [USER]`: the workstation users' tmux sessions.

use crate::cli::{GlobalArgs, OutputFormat, SessionCommand};
use crate::shell::Shell;
use crate::{Result, exit};
use tenantry_app::session_outcomes::{RestoreOutcome, SaveOutcome};
use tenantry_app::{SessionAction, SessionsReport, UserSessionOutcome};

pub fn session(global: &GlobalArgs, command: &SessionCommand, shell: &mut Shell) -> Result<i32> {
    let (action, user, root) = match command {
        SessionCommand::Save { user, root } => (SessionAction::Save, user.as_deref(), root.as_deref()),
        SessionCommand::Restore { user, root } => (SessionAction::Restore, user.as_deref(), root.as_deref()),
    };
    let session = super::session(global)?;
    let report = session.terminal_sessions(action, user, root)?;
    match global.output {
        OutputFormat::Json => shell.json(&report.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => shell.print(&human(&report)),
    }
    Ok(if report.is_success() { exit::OK } else { exit::ERROR })
}

/// One line per user (and one per session restore could not create).
fn human(report: &SessionsReport) -> String {
    let mut out = String::new();
    for user in &report.users {
        let who =
            if user.user == user.os_user { user.user.clone() } else { format!("{} ({})", user.user, user.os_user) };
        let line = match &user.outcome {
            UserSessionOutcome::Saved(SaveOutcome::Saved { sessions, path }) => {
                format!("saved {sessions} session(s) to {}", path.display())
            }
            UserSessionOutcome::Saved(SaveOutcome::Unchanged { sessions, .. }) => {
                format!("{sessions} session(s), unchanged")
            }
            UserSessionOutcome::Saved(SaveOutcome::Kept { reason, kept: 0, .. }) => format!("nothing saved: {reason}"),
            UserSessionOutcome::Saved(SaveOutcome::Kept { reason, kept, .. }) => {
                format!("kept the last snapshot ({kept} session(s)): {reason}")
            }
            UserSessionOutcome::Restored(RestoreOutcome { from: None, .. }) => "no snapshot to restore".to_string(),
            UserSessionOutcome::Restored(restored) => {
                let mut line =
                    format!("{} created, {} running already", restored.created.len(), restored.present.len());
                if !restored.created.is_empty() {
                    line.push_str(&format!(" (created: {})", restored.created.join(", ")));
                }
                for (name, error) in &restored.failed {
                    line.push_str(&format!("\n  could not create `{name}`: {error}"));
                }
                line
            }
            UserSessionOutcome::Failed(error) => format!("failed: {error}"),
        };
        out.push_str(&format!("{who}: {line}\n"));
    }
    out
}
