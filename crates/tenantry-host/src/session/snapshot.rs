//! The session snapshot file in the user's home
//! (`~/.local/state/tenantry/sessions.json`) and its generations
//! (`sessions.json.1` newest … `.N` oldest), reached only through the
//! home's `tenantry-fs` handle: the home is the tenant's, every name in it
//! may be a link or a FIFO, and nothing here follows one.
//!
//! A new snapshot is written aside (`sessions.json.new`), read back and
//! parsed, compared with what was meant, and only then renamed into place
//! after the generations shifted; a crash at any step leaves the last good
//! snapshot at its name (SPEC §8.5).

use crate::error::{Error, Result};
use crate::home::{HOME_READ_LIMIT, Home};
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use tenantry_fs::{Dir, ReadRules, WriteOptions};

/// Where the snapshot lives, relative to the home.
pub const SNAPSHOT_DIR: &str = ".local/state/tenantry";
pub const SNAPSHOT_NAME: &str = "sessions.json";
/// The format's version, so a later tenantry can read an older snapshot.
pub const SNAPSHOT_VERSION: u32 = 1;

/// One user's terminal sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u32,
    /// The account whose sessions these are (a snapshot copied into another home is not restored).
    pub user: String,
    /// Sorted by name.
    pub sessions: Vec<SavedSession>,
}

/// One tmux session: what restore needs to recreate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSession {
    pub name: String,
    /// The working directory of its active pane (else the session's start directory).
    pub dir: String,
    /// The conversation it runs (the session's `@conversation` option), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
}

impl Snapshot {
    pub fn new(user: &str, mut sessions: Vec<SavedSession>) -> Snapshot {
        sessions.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot { version: SNAPSHOT_VERSION, user: user.to_string(), sessions }
    }

    /// Parsed and checked: every session valid, for this user. A snapshot
    /// is the tenant's file; restore passes its values to tmux as arguments only.
    pub fn parse(bytes: &[u8], user: &str) -> std::result::Result<Snapshot, String> {
        let snapshot: Snapshot = serde_json::from_slice(bytes).map_err(|e| format!("not a session snapshot: {e}"))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!("snapshot version {} (this tenantry reads {SNAPSHOT_VERSION})", snapshot.version));
        }
        if snapshot.user != user {
            return Err(format!("the snapshot is `{}`'s, not `{user}`'s", snapshot.user));
        }
        for session in &snapshot.sessions {
            check_session(session)?;
        }
        Ok(snapshot)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// A session name tmux accepts and that means one session: no `:` or `.`
/// (target separators), no control characters, not empty.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.len() > 256 || name.contains([':', '.']) || name.chars().any(char::is_control) {
        return Err(format!("`{}` is not a usable session name", name.escape_debug()));
    }
    Ok(())
}

/// A conversation id: letters, digits, `-`, `_`, `.`, `:`; not starting with `-` (never an option).
pub fn check_conversation(id: &str) -> std::result::Result<(), String> {
    let plain = id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if id.is_empty() || id.len() > 128 || id.starts_with('-') || !plain {
        return Err(format!("`{}` is not a conversation id", id.escape_debug()));
    }
    Ok(())
}

fn check_session(session: &SavedSession) -> std::result::Result<(), String> {
    check_name(&session.name)?;
    let dir = &session.dir;
    if !dir.starts_with('/') || dir.len() > 4096 || dir.chars().any(char::is_control) {
        return Err(format!("session `{}`: `{}` is not an absolute directory", session.name, dir.escape_debug()));
    }
    if let Some(id) = &session.conversation {
        check_conversation(id).map_err(|e| format!("session `{}`: {e}", session.name))?;
    }
    Ok(())
}

/// The snapshot directory of one home, and how many generations it keeps.
pub struct SnapshotFiles<'a> {
    pub home: &'a Home,
    pub user: &'a str,
    pub generations: usize,
}

fn generation(n: usize) -> OsString {
    OsString::from(format!("{SNAPSHOT_NAME}.{n}"))
}

impl SnapshotFiles<'_> {
    pub fn path(&self) -> PathBuf {
        self.home.path().join(SNAPSHOT_DIR).join(SNAPSHOT_NAME)
    }

    fn rules(&self) -> ReadRules {
        ReadRules { owner: Some(self.home.uid()), max_bytes: HOME_READ_LIMIT }
    }

    /// The current snapshot: `Ok(None)` when there is none, `Err` when one is there but unreadable or broken.
    pub fn current(&self) -> Result<Option<Snapshot>> {
        let Some(bytes) = self.home.read(&self.path())? else { return Ok(None) };
        Snapshot::parse(&bytes, self.user)
            .map(Some)
            .map_err(|e| Error::Content(format!("{}: {e}", self.path().display())))
    }

    /// The newest snapshot that parses: the current one, else the generations
    /// in order (a broken current file does not lose the sessions). Its path too.
    pub fn newest_good(&self) -> Result<Option<(PathBuf, Snapshot)>> {
        let dir_path = self.home.path().join(SNAPSHOT_DIR);
        let Some(dir) = self.home.open_dir(&dir_path)? else { return Ok(None) };
        let names = std::iter::once(OsString::from(SNAPSHOT_NAME)).chain((1..=self.generations).map(generation));
        for name in names {
            let Ok(Some(bytes)) = dir.read_file(&name, self.rules()) else { continue };
            if let Ok(snapshot) = Snapshot::parse(&bytes, self.user) {
                return Ok(Some((dir_path.join(&name), snapshot)));
            }
        }
        Ok(None)
    }

    /// Write `snapshot` aside, check it reads back whole, shift the
    /// generations (the current file's bytes become `.1`), then rename it into place.
    pub fn replace(&self, snapshot: &Snapshot) -> Result<()> {
        let (dir, name) = self.home.parent_for_write(&self.path(), 0o700)?;
        let aside = OsString::from(format!("{SNAPSHOT_NAME}.new"));
        let bytes = snapshot.to_bytes();
        let options = WriteOptions { mode: Some(0o600), owner: self.home.ids(), replace: true };
        dir.write_file(&aside, &bytes, options)?;
        let written = dir.read_file(&aside, self.rules())?.unwrap_or_default();
        match Snapshot::parse(&written, self.user) {
            Ok(read_back) if &read_back == snapshot => {}
            Ok(_) => return Err(self.incomplete(&dir, &aside, "it reads back different")),
            Err(e) => return Err(self.incomplete(&dir, &aside, &e)),
        }
        self.rotate(&dir, &name, options)?;
        dir.rename(&aside, &dir, &name)?;
        Ok(())
    }

    fn incomplete(&self, dir: &Dir, aside: &OsStr, why: &str) -> Error {
        let _ = dir.remove_file(aside);
        Error::Content(format!(
            "the new session snapshot {} was not complete ({why}); the last good one is kept",
            dir.path().join(aside).display()
        ))
    }

    /// `.N-1 → .N`, …, `.1 → .2`, then a copy of the current file as `.1`:
    /// the current name is never empty meanwhile.
    fn rotate(&self, dir: &Dir, name: &OsStr, options: WriteOptions) -> Result<()> {
        if self.generations == 0 {
            return Ok(());
        }
        let Ok(Some(current)) = dir.read_file(name, self.rules()) else { return Ok(()) };
        for n in (1..self.generations).rev() {
            if dir.entry(&generation(n))?.is_some() {
                dir.rename(&generation(n), dir, &generation(n + 1))?;
            }
        }
        dir.write_file(&generation(1), &current, options)?;
        Ok(())
    }
}

/// The snapshot's path in a home, for messages.
pub fn snapshot_path(home: &Path) -> PathBuf {
    home.join(SNAPSHOT_DIR).join(SNAPSHOT_NAME)
}
