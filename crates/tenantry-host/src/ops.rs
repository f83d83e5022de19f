//! One change → the steps that carry it out. The same list is executed by
//! apply and printed by a dry run, so the plan shows what really happens.

use crate::command::Cmd;
use std::fmt;
use std::path::PathBuf;
use tenantry_core::{Content, Owner, ResourceId};

/// One step of a change.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Run(Cmd),
    /// Create a directory (and missing parents inside `within`), owned by `owner`.
    Dir {
        path: PathBuf,
        within: Option<PathBuf>,
        owner: Option<String>,
        mode: u32,
    },
    /// Replace a file atomically.
    Write {
        path: PathBuf,
        within: Option<PathBuf>,
        bytes: Vec<u8>,
        mode: u32,
        owner: Option<String>,
    },
    /// Set one variable of a ports env file, keeping the others.
    SetPort {
        path: PathBuf,
        within: PathBuf,
        pool: String,
        port: u16,
        owner: String,
    },
    /// Write every recorded port of `user` into a new account's env file.
    SyncPorts {
        user: String,
        os_user: String,
        path: PathBuf,
        within: PathBuf,
    },
    Symlink {
        path: PathBuf,
        within: PathBuf,
        target: String,
        owner: String,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
    },
    RemoveTree {
        path: PathBuf,
    },
    Remove {
        path: PathBuf,
    },
    Chmod {
        path: PathBuf,
        mode: u32,
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
            Op::Dir { path, owner, mode, .. } => format!("mkdir -p -m {mode:04o} {}{}", path.display(), by(owner)),
            Op::Write { path, bytes, mode, owner, .. } => {
                format!("write {} ({} bytes, mode {mode:04o}, atomic){}", path.display(), bytes.len(), by(owner))
            }
            Op::SetPort { path, pool, port, owner, .. } => {
                format!("set {}={port} in {}{}", crate::ports::env_key(pool), path.display(), by(&Some(owner.clone())))
            }
            Op::SyncPorts { user, os_user, path, .. } => {
                format!("write {user}'s reserved ports into {} (owner {os_user})", path.display())
            }
            Op::Symlink { path, target, owner, .. } => {
                format!("ln -s {target} {}{}", path.display(), by(&Some(owner.clone())))
            }
            Op::Rename { from, to } => format!("mv {} {}", from.display(), to.display()),
            Op::RemoveTree { path } => format!("rm -rf {}", path.display()),
            Op::Remove { path } => format!("rm -f {}", path.display()),
            Op::Chmod { path, mode } => format!("chmod {mode:04o} {}", path.display()),
            Op::Warn(message) => format!("# warning: {message}"),
            Op::Record { .. } | Op::Forget { .. } => return None,
        })
    }
}

fn by(owner: &Option<String>) -> String {
    owner.as_ref().map(|o| format!(" (owner {o})")).unwrap_or_default()
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe().unwrap_or_default())
    }
}
