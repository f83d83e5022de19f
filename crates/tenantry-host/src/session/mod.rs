//! The workstation's session layer (SPEC §11.5, §8.5): each user's named
//! tmux sessions saved to a snapshot in their home, and the missing ones
//! recreated from it (`tenantry session save|restore`).
//!
//! As root, tmux runs as the account (its uid/gid, a cleared environment,
//! no terminal, a timeout) and the snapshot is written through the home's
//! verified handle as the account's file; run by the user, only their own
//! sessions. An empty or failed read never replaces a snapshot with
//! sessions; a new snapshot is written aside, read back, and renamed into
//! place after the generations shift.

mod snapshot;
mod tmux;

pub use snapshot::{SNAPSHOT_DIR, SNAPSHOT_NAME, SavedSession, Snapshot, snapshot_path};
pub use tmux::CONVERSATION_OPTION;

use crate::HostConfig;
use crate::command::CommandRunner;
use crate::error::{Error, Result};
use crate::etc::{Etc, PasswdEntry};
use crate::home::Home;
use snapshot::SnapshotFiles;
use std::path::PathBuf;
use std::time::Duration;
use tenantry_model::SessionCommand;
use tmux::Tmux;

/// What `save` did for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    /// A new snapshot is in place (the previous one became generation 1).
    Saved { sessions: usize, path: PathBuf },
    /// The sessions are those of the snapshot already there: nothing written.
    Unchanged { sessions: usize, path: PathBuf },
    /// Nothing was read (tmux failed, no server, no sessions): the snapshot
    /// there (with `kept` sessions) stays as it was.
    Kept { reason: String, kept: usize, path: PathBuf },
}

/// What `restore` did for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// The snapshot restored from (a generation when the current file is broken); `None`: no snapshot.
    pub from: Option<PathBuf>,
    pub created: Vec<String>,
    /// Saved sessions that were running already.
    pub present: Vec<String>,
    /// Sessions tmux refused to create, with what it said.
    pub failed: Vec<(String, String)>,
}

/// What both commands need about the account and how to reach its tmux.
struct Account {
    entry: PasswdEntry,
    home: Home,
    privileged: bool,
}

/// Settings from `[host]` for the session layer.
fn tmux_for<'a>(config: &'a HostConfig, account: &'a Account) -> Tmux<'a> {
    let socket = config.tmux_socket.as_ref().map(|template| {
        template.replace("{user}", &account.entry.name).replace("{uid}", &account.entry.uid.to_string())
    });
    Tmux {
        program: &config.tmux,
        socket,
        os_user: &account.entry.name,
        home: account.home.path(),
        ids: account.privileged.then_some((account.entry.uid, account.entry.gid)),
        timeout: Duration::from_secs(config.session_timeout_secs),
    }
}

fn account(config: &HostConfig, os_user: &str) -> Result<Account> {
    let euid = rustix::process::geteuid().as_raw();
    let privileged = euid == 0;
    // A user cannot read /etc/shadow; only passwd is needed here.
    let etc = if privileged {
        Etc::read(&config.root)?
    } else {
        let path = config.root.join("etc/passwd");
        let passwd = std::fs::read_to_string(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Etc::parse(&passwd, "", "")
    };
    let entry = etc.user(os_user).cloned().ok_or_else(|| Error::MissingAccount { os_user: os_user.to_string() })?;
    if !etc.is_regular(&entry) {
        return Err(Error::Refused(format!("`{os_user}` is a system account: {}", etc.system_account_reason(&entry))));
    }
    if !privileged && entry.uid != euid {
        return Err(Error::Refused(format!(
            "only root saves or restores another account's sessions (`{os_user}` is uid {}, this is uid {euid})",
            entry.uid
        )));
    }
    let home = Home::open(&config.root, &entry, privileged)?;
    Ok(Account { entry, home, privileged })
}

fn files<'a>(config: &HostConfig, account: &'a Account) -> SnapshotFiles<'a> {
    SnapshotFiles { home: &account.home, user: &account.entry.name, generations: config.session_generations }
}

/// Read `os_user`'s tmux sessions and, when there are any and they differ
/// from the snapshot, make them the snapshot.
pub fn save(config: &HostConfig, os_user: &str, runner: &dyn CommandRunner) -> Result<SaveOutcome> {
    let account = account(config, os_user)?;
    let files = files(config, &account);
    let path = files.path();
    // A broken current file counts as "no sessions kept": it is replaced (its generations stay).
    let current = files.current().ok().flatten();
    let kept = current.as_ref().map_or(0, |s| s.sessions.len());
    let listed = match tmux_for(config, &account).list(runner) {
        Ok(listed) => listed,
        Err(e) => return Ok(SaveOutcome::Kept { reason: format!("reading the sessions failed: {e}"), kept, path }),
    };
    if listed.sessions.is_empty() {
        let mut reason = "tmux listed no sessions".to_string();
        if !listed.skipped.is_empty() {
            reason.push_str(&format!(" it can restore ({})", listed.skipped.join("; ")));
        }
        return Ok(SaveOutcome::Kept { reason, kept, path });
    }
    let snapshot = Snapshot::new(&account.entry.name, listed.sessions);
    let sessions = snapshot.sessions.len();
    if current.as_ref() == Some(&snapshot) {
        return Ok(SaveOutcome::Unchanged { sessions, path });
    }
    files.replace(&snapshot)?;
    Ok(SaveOutcome::Saved { sessions, path })
}

/// Recreate the sessions of `os_user`'s newest good snapshot that are not
/// running, each with `command` (the login shell when none, or when the
/// command needs a conversation the session has none of). Running twice creates nothing twice.
pub fn restore(
    config: &HostConfig,
    os_user: &str,
    command: Option<&SessionCommand>,
    runner: &dyn CommandRunner,
) -> Result<RestoreOutcome> {
    let account = account(config, os_user)?;
    let Some((from, snapshot)) = files(config, &account).newest_good()? else { return Ok(RestoreOutcome::default()) };
    let tmux = tmux_for(config, &account);
    let running = tmux.names(runner)?;
    let mut outcome = RestoreOutcome { from: Some(from), ..RestoreOutcome::default() };
    for session in &snapshot.sessions {
        if running.contains(&session.name) {
            outcome.present.push(session.name.clone());
            continue;
        }
        let argv = command.and_then(|c| c.argv(&session.name, &session.dir, session.conversation.as_deref()));
        match tmux.create(runner, session, argv) {
            Ok(()) => outcome.created.push(session.name.clone()),
            Err(e) => outcome.failed.push((session.name.clone(), e.to_string())),
        }
    }
    Ok(outcome)
}

/// The account running this (when not root): `tenantry session` run by a
/// user handles only their own sessions. `None` as root.
pub fn caller(config: &HostConfig) -> Result<Option<String>> {
    let euid = rustix::process::geteuid().as_raw();
    if euid == 0 {
        return Ok(None);
    }
    let path = config.root.join("etc/passwd");
    let passwd = std::fs::read_to_string(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let etc = Etc::parse(&passwd, "", "");
    let entry = etc
        .user_by_uid(euid)
        .ok_or_else(|| Error::Refused(format!("uid {euid} has no account in {}", path.display())))?;
    Ok(Some(entry.name.clone()))
}
