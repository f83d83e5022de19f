//! One change → the steps that carry it out. The same list is executed by
//! apply and printed by a dry run, so the plan shows what really happens.
//!
//! A step with an `owner` happens inside that account's home, through a
//! verified handle of it (`tenantry-fs`); one without happens in root's
//! system directories.

use crate::command::Cmd;
use std::fmt;
use std::path::PathBuf;
use tenantry_core::{Content, Owner, ResourceId};

/// One step of a change.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Run(Cmd),
    /// Create a directory and its missing parents in `owner`'s home, each new one theirs.
    Dir {
        path: PathBuf,
        owner: String,
        mode: u32,
    },
    /// Replace a file atomically (`create_only`: unless one appeared meanwhile).
    Write {
        path: PathBuf,
        owner: Option<String>,
        bytes: Vec<u8>,
        mode: u32,
        create_only: bool,
    },
    /// Write an account's env file from tenantry's records of `user`'s ports,
    /// with `set` (this change's port) on top. The file's old content is never read back into it.
    WritePorts {
        user: String,
        os_user: String,
        path: PathBuf,
        set: Option<(String, u16)>,
    },
    Symlink {
        path: PathBuf,
        target: String,
        owner: String,
    },
    /// Move within `owner`'s home, relative to verified handles of both directories.
    Rename {
        from: PathBuf,
        to: PathBuf,
        owner: String,
    },
    /// Remove a system file, or a link in `owner`'s home that still points at `link_target`.
    Remove {
        path: PathBuf,
        owner: Option<String>,
        link_target: Option<String>,
    },
    /// Set the mode of `owner`'s home itself.
    ChmodHome {
        path: PathBuf,
        owner: String,
        mode: u32,
    },
    /// Put the user's freshly minted forge token into their
    /// `~/.git-credentials` (0600, their other lines kept). The secret is
    /// given to execute, never part of the step.
    WriteCredential {
        path: PathBuf,
        owner: String,
        url: String,
        login: String,
    },
    Warn(String),
    Record {
        id: ResourceId,
        owner: Owner,
        content: Content,
    },
    Forget {
        id: ResourceId,
    },
}

impl Op {
    /// How the step reads in a dry run; bookkeeping steps are not shown.
    pub fn describe(&self) -> Option<String> {
        Some(match self {
            Op::Run(cmd) => cmd.to_string(),
            Op::Dir { path, owner, mode } => format!("mkdir -p -m {mode:04o} {}{}", path.display(), by(Some(owner))),
            Op::Write { path, bytes, mode, owner, create_only } => format!(
                "write {} ({} bytes, mode {mode:04o}, atomic{}){}",
                path.display(),
                bytes.len(),
                if *create_only { ", only if absent" } else { "" },
                by(owner.as_deref())
            ),
            Op::WritePorts { os_user, path, set: Some((pool, port)), .. } => {
                format!("set {}={port} in {}{}", crate::ports::env_key(pool), path.display(), by(Some(os_user)))
            }
            Op::WritePorts { user, os_user, path, set: None } => {
                format!("write {user}'s reserved ports into {} (owner {os_user})", path.display())
            }
            Op::Symlink { path, target, owner } => format!("ln -s {target} {}{}", path.display(), by(Some(owner))),
            Op::Rename { from, to, .. } => format!("mv {} {}", from.display(), to.display()),
            Op::Remove { path, .. } => format!("rm -f {}", path.display()),
            Op::ChmodHome { path, mode, .. } => format!("chmod {mode:04o} {}", path.display()),
            Op::WriteCredential { path, owner, url, login } => format!(
                "write {} (mode 0600, atomic): {login}'s freshly minted token for {url}, other lines kept{}",
                path.display(),
                by(Some(owner))
            ),
            Op::Warn(message) => format!("# warning: {message}"),
            Op::Record { .. } | Op::Forget { .. } => return None,
        })
    }
}

fn by(owner: Option<&str>) -> String {
    owner.map(|o| format!(" (owner {o})")).unwrap_or_default()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe().unwrap_or_default())
    }
}
