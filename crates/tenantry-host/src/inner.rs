//! What the host target's parts share: configuration, records, the command
//! runner, the locks, the warnings, and the one place an account is looked
//! up for a change (only a regular account is ever acted on).

use crate::HostConfig;
use crate::command::{Cmd, CommandRunner};
use crate::error::{Error, Result};
use crate::etc::{Etc, PasswdEntry};
use crate::home::{Home, under_root};
use crate::records::Records;
use crate::redact;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Configuration keys that make git run a program, each set so it runs
/// none, on every git command tenantry runs. Command-line configuration
/// comes last and wins over the account's `~/.gitconfig` and the
/// checkout's `.git/config`, which are the tenant's.
///
/// This is defence in depth: git already runs as the account, in a session
/// of its own, with a cleared environment (see `command`), so a program the
/// tenant still gets git to run (a filter driver, `remote.<name>.uploadpack`,
/// an `ssh` `ProxyCommand`) runs as the tenant with nothing of root's to read.
const GIT_HARDENING: &[&str] = &[
    // Hooks (post-checkout of a clone, post-merge of a refresh, reference-transaction…),
    // wherever the configuration points them.
    "core.hooksPath=/dev/null",
    // A program run on every index refresh (the reported attack used it).
    "core.fsmonitor=false",
    // The ssh program of a user or repository configuration.
    "core.sshCommand=ssh",
    // Programs asked for credentials: an empty askPass is skipped, an empty
    // helper resets the list, and prompting is off (GIT_TERMINAL_PROMPT=0).
    "core.askPass=",
    "credential.helper=",
    // `ext::` URLs run arbitrary commands (git's default is already never; a config could allow it).
    "protocol.ext.allow=never",
];

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another change cannot leave these guards' data inconsistent.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub config: HostConfig,
    pub records: Records,
    pub runner: Arc<dyn CommandRunner>,
    /// Running as root: commands in homes run as their owner, and files are chowned to it.
    pub privileged: bool,
    /// The account tools lock /etc/passwd and fail rather than wait: one at a time.
    pub accounts: Mutex<()>,
    /// One change per account at a time: its env file and checkouts are read, then rewritten.
    pub users: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// The platform whose records these are (records of another are foreign).
    pub platform: String,
}

impl Inner {
    pub fn root(&self) -> &Path {
        &self.config.root
    }

    pub fn user_lock(&self, os_user: &str) -> Arc<Mutex<()>> {
        Arc::clone(lock(&self.users).entry(os_user.to_string()).or_default())
    }

    /// The account a change in a home is for: it must exist and be a
    /// regular account (never root, a daemon or a service account).
    pub fn tenant<'a>(&self, etc: &'a Etc, os_user: &str) -> Result<&'a PasswdEntry> {
        let entry = etc.user(os_user).ok_or_else(|| Error::MissingAccount { os_user: os_user.to_string() })?;
        if !etc.is_regular(entry) {
            return Err(Error::Refused(etc.system_account_reason(entry)));
        }
        Ok(entry)
    }

    /// The tenant's home on the machine (a path, to plan with; not opened).
    pub fn home_path(&self, etc: &Etc, os_user: &str) -> Result<PathBuf> {
        under_root(self.root(), &self.tenant(etc, os_user)?.home)
    }

    /// The tenant's home, opened and verified (see [`Home::open`]).
    pub fn home(&self, etc: &Etc, os_user: &str) -> Result<Home> {
        Home::open(self.root(), self.tenant(etc, os_user)?, self.privileged)
    }

    /// The ids a command for `os_user` runs as (when tenantry is root).
    pub fn ids(&self, etc: &Etc, os_user: &str) -> Result<Option<(u32, u32)>> {
        let entry = self.tenant(etc, os_user)?;
        Ok(self.privileged.then_some((entry.uid, entry.gid)))
    }

    /// git as the account, hardened against its configuration (see [`GIT_HARDENING`]).
    pub fn git(&self, home: &Path, os_user: &str, args: Vec<String>) -> Cmd {
        let mut full: Vec<String> =
            GIT_HARDENING.iter().flat_map(|setting| ["-c".to_string(), setting.to_string()]).collect();
        full.extend(args);
        let mut cmd = Cmd::new(&self.config.git, full).as_user(os_user, home);
        cmd.env.extend(
            [
                // Only the command line's configuration (above) and the checkout's own.
                ("GIT_CONFIG_NOSYSTEM", "1"),
                ("GIT_CONFIG_GLOBAL", "/dev/null"),
                // A clone that needs credentials fails instead of waiting for a prompt nobody answers.
                ("GIT_TERMINAL_PROMPT", "0"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        cmd.with_timeout(Duration::from_secs(self.config.git_timeout_secs))
    }

    /// An account tool (useradd, usermod) or other short command as tenantry itself.
    pub fn tool(&self, program: &Path, args: Vec<String>) -> Cmd {
        Cmd::new(program, args).with_timeout(Duration::from_secs(self.config.command_timeout_secs))
    }

    pub fn run(&self, cmd: &Cmd) -> Result<String> {
        // The program actually started (`setsid` for a command run as an account).
        let started = cmd.argv().0;
        let output = self.runner.run(cmd).map_err(|e| Error::io(format!("running `{}`", started.display()), e))?;
        if !output.success() {
            return Err(Error::Command {
                command: cmd.to_string(),
                status: output.status_text(),
                stderr: redact::urls(output.stderr.trim()),
            });
        }
        Ok(output.stdout)
    }
}
