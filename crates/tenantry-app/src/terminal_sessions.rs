//! `tenantry session save|restore [USER]`: the workstation's session layer
//! (SPEC §11.5) for the roster's workstation users, through the host
//! target's `session` module. Run as root it handles every workstation
//! user (or USER); run by a user, only their own account.

use crate::error::{AppError, Result};
use crate::session::Session;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use tenantry_host::session::{RestoreOutcome, SaveOutcome};
use tenantry_host::{HostConfig, SystemRunner};

/// The JSON form's version (docs/OUTPUT.md).
const FORMAT_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAction {
    Save,
    Restore,
}

impl SessionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionAction::Save => "save",
            SessionAction::Restore => "restore",
        }
    }
}

/// What happened to one user's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSessionOutcome {
    Saved(SaveOutcome),
    Restored(RestoreOutcome),
    /// The user could not be handled (no account, a refused home, tmux failing at restore).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSessions {
    /// The roster key.
    pub user: String,
    pub os_user: String,
    pub outcome: UserSessionOutcome,
}

/// The report of one `tenantry session` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionsReport {
    pub action: SessionAction,
    pub users: Vec<UserSessions>,
}

impl SessionsReport {
    /// Whether every user was handled (a kept snapshot is not a failure; a session restore could not create is).
    pub fn is_success(&self) -> bool {
        self.users.iter().all(|u| match &u.outcome {
            UserSessionOutcome::Failed(_) => false,
            UserSessionOutcome::Restored(outcome) => outcome.failed.is_empty(),
            UserSessionOutcome::Saved(_) => true,
        })
    }

    pub fn to_json(&self) -> Value {
        let path = |p: &PathBuf| p.display().to_string();
        json!({
            "format_version": FORMAT_VERSION,
            "action": self.action.as_str(),
            "users": self.users.iter().map(|u| {
                let mut entry = match &u.outcome {
                    UserSessionOutcome::Saved(SaveOutcome::Saved { sessions, path: p }) =>
                        json!({ "outcome": "saved", "sessions": sessions, "snapshot": path(p) }),
                    UserSessionOutcome::Saved(SaveOutcome::Unchanged { sessions, path: p }) =>
                        json!({ "outcome": "unchanged", "sessions": sessions, "snapshot": path(p) }),
                    UserSessionOutcome::Saved(SaveOutcome::Kept { reason, kept, path: p }) =>
                        json!({ "outcome": "kept", "sessions": kept, "snapshot": path(p), "reason": reason }),
                    UserSessionOutcome::Restored(r) => json!({
                        "outcome": if r.from.is_none() { "no-snapshot" } else { "restored" },
                        "snapshot": r.from.as_ref().map(path),
                        "created": r.created,
                        "present": r.present,
                        "failed": r.failed.iter().map(|(name, error)| json!({ "session": name, "error": error })).collect::<Vec<_>>(),
                    }),
                    UserSessionOutcome::Failed(error) => json!({ "outcome": "failed", "error": error }),
                };
                entry["user"] = json!(u.user);
                entry["os_user"] = json!(u.os_user);
                entry
            }).collect::<Vec<_>>(),
        })
    }
}

impl Session {
    /// `[host]` of tenantry.toml, or the defaults (root `/`) without one.
    fn host_config(&self) -> Result<HostConfig> {
        let section = self.config.section("host");
        tenantry_host::load_config(section, &self.config.context)
            .map_err(|e| AppError::config(format!("[host]: {e}"), "see crates/tenantry-host/README.md"))
    }

    /// Save (or restore) the terminal sessions of every workstation user,
    /// or of `user` (a roster key or an os_user), on `root` (default
    /// `[host] root`). One user's failure never stops the others.
    pub fn terminal_sessions(
        &self,
        action: SessionAction,
        user: Option<&str>,
        root: Option<&Path>,
    ) -> Result<SessionsReport> {
        let mut host = self.host_config()?;
        if let Some(root) = root {
            host.root = root.to_path_buf();
        }
        let caller = tenantry_host::session::caller(&host)
            .map_err(|e| AppError::config(e.to_string(), "run it as root, or as a workstation user of the roster"))?;
        let roster = self.roster();
        let mut chosen = Vec::new();
        for (key, entry) in &roster.users {
            // A parked account's login is locked: its sessions are neither saved nor restored.
            let Some(workstation) = entry.workstation.as_ref().filter(|w| !w.parked) else { continue };
            let os_user = &workstation.os_user.value;
            let named = user.is_none_or(|u| u == key || u == os_user);
            // A user running it handles only their own account.
            let own = caller.as_ref().is_none_or(|me| me == os_user);
            if named && own {
                chosen.push((key.clone(), os_user.clone()));
            }
        }
        if chosen.is_empty() {
            return Err(nobody(user, caller.as_deref()));
        }
        let command = roster.platform.workstation.session_command.as_ref();
        let users = chosen
            .into_iter()
            .map(|(user, os_user)| {
                let outcome = match action {
                    SessionAction::Save => {
                        tenantry_host::session::save(&host, &os_user, &SystemRunner).map(UserSessionOutcome::Saved)
                    }
                    SessionAction::Restore => tenantry_host::session::restore(&host, &os_user, command, &SystemRunner)
                        .map(UserSessionOutcome::Restored),
                };
                let outcome = outcome.unwrap_or_else(|e| UserSessionOutcome::Failed(e.to_string()));
                UserSessions { user, os_user, outcome }
            })
            .collect();
        Ok(SessionsReport { action, users })
    }
}

fn nobody(user: Option<&str>, caller: Option<&str>) -> AppError {
    match (user, caller) {
        (Some(user), Some(me)) => AppError::usage(
            format!("`{user}` is not your workstation account (`{me}`)"),
            "a user saves and restores only their own sessions; root handles everyone's",
        ),
        (Some(user), None) => AppError::usage(
            format!("`{user}` is not a workstation user of the roster"),
            "name a roster key or os_user of a user with `workstation:`",
        ),
        (None, Some(me)) => AppError::usage(
            format!("`{me}` is not a workstation user of the roster"),
            "only accounts the roster gives a workstation have sessions saved",
        ),
        (None, None) => AppError::usage(
            "no user of the roster has a workstation",
            "give users a `workstation:` to have their terminal sessions saved",
        ),
    }
}
