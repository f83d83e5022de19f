//! The `host` target (SPEC §3 "host" rows, §5): the shared development host.
//!
//! It owns everything tenantry does to a Linux machine for its workstation
//! users: accounts (`useradd`/`usermod --root`, additive only), the per-user
//! sticky-port env files and the check that port sources agree, the generated
//! routing files, code checkouts with real git (clone, single → workspace
//! migration, fast-forward-only refresh, extra remotes), kubeconfigs,
//! managed files and skeleton links in homes, the reversible cut (a locked
//! login) and the destroy stage (home archived, then `userdel`); for
//! `tenantry doctor`, checkouts and sticky ports checked live (`diagnose`).
//!
//! The machine is `/` or a sandbox root, through the same code: every path
//! is taken under the configured root, and account tools get `--root`.
//! What tenantry last applied is recorded under the root (see `records`),
//! since accounts and files carry no labels.

mod checkout;
mod command;
mod contribute;
mod destroy;
mod diagnose;
mod error;
mod etc;
mod execute;
mod git;
mod home;
mod hooks;
mod inner;
mod observe;
mod ops;
mod plan;
mod plugin;
pub mod ports;
mod records;
mod redact;
mod refresh;
mod routing;
pub mod session;
mod sources;
mod spec;
mod system_files;
mod target;

pub use command::{Cmd, CmdOutput, CommandRunner, DEFAULT_TIMEOUT, SAFE_PATH, Sensitive, SystemRunner};
pub use destroy::destroy_account;
pub use diagnose::CHECKS;
pub use error::{Error, Result};
pub use plugin::{PLUGIN, load_config};
pub use ports::{DispatchSource, EnvFilePorts, PortClaim, PortConflict, Reconciled, reconcile_port_sources};
pub use redact::urls as redact_urls;
pub use refresh::RefreshOutcome;
pub use sources::Reservations;
pub use target::HostTarget;

use std::path::PathBuf;

/// Settings of `[host]` in tenantry.toml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// The machine's root: `/`, or a sandbox directory with `etc/passwd` and friends.
    #[serde(default = "default_root")]
    pub root: PathBuf,
    /// Where the destroy stage writes home archives (required by it).
    #[serde(default)]
    pub backup_dir: Option<PathBuf>,
    /// The directory managed-file sources are relative to: the roster's directory.
    #[serde(default)]
    pub source_dir: Option<PathBuf>,
    /// Where the dispatch map (`idp_user` → account and port) is written,
    /// absolute, taken inside `root`. Set here it wins over the roster's
    /// `platform.workstation.dispatch_path`, which may only name a file in
    /// `/etc/t3-serve/`.
    #[serde(default)]
    pub dispatch_path: Option<String>,
    /// Where tenantry records what it applied; always taken inside `root`.
    #[serde(default = "default_records_dir")]
    pub records_dir: PathBuf,
    #[serde(default = "default_useradd")]
    pub useradd: PathBuf,
    #[serde(default = "default_usermod")]
    pub usermod: PathBuf,
    #[serde(default = "default_userdel")]
    pub userdel: PathBuf,
    #[serde(default = "default_git")]
    pub git: PathBuf,
    #[serde(default = "default_tar")]
    pub tar: PathBuf,
    /// A git command (clone, fetch) taking longer is killed, so an offline remote never stalls a run.
    #[serde(default = "default_git_timeout_secs")]
    pub git_timeout_secs: u64,
    /// Any other command (useradd, usermod, userdel, rm) taking longer is killed.
    #[serde(default = "default_command_timeout_secs")]
    pub command_timeout_secs: u64,
    /// The destroy stage's `tar` of a home taking longer is killed (and nothing is deleted).
    #[serde(default = "default_archive_timeout_secs")]
    pub archive_timeout_secs: u64,
    #[serde(default = "default_tmux")]
    pub tmux: PathBuf,
    /// The users' tmux server socket for `tenantry session save|restore`
    /// (`{user}`, `{uid}` replaced), a path on this machine; unset: tmux's
    /// own default (`/tmp/tmux-<uid>/default`, or under `TMUX_TMPDIR`).
    #[serde(default)]
    pub tmux_socket: Option<String>,
    /// What the session units (`tenantry session save|restore`) run, as argv:
    /// an absolute program, then its arguments (default
    /// `/usr/local/bin/tenantry --config /etc/tenantry/tenantry.toml --roster /etc/tenantry/roster.yaml`).
    #[serde(default)]
    pub tenantry_command: Option<Vec<String>>,
    /// The git-crypt key the admin tier's main checkout is unlocked with
    /// (`git-crypt unlock -`, the key on stdin): a file of root's, mode 0600
    /// or stricter. Unset: every checkout stays locked.
    #[serde(default)]
    pub git_crypt_key_file: Option<PathBuf>,
    #[serde(default = "default_git_crypt")]
    pub git_crypt: PathBuf,
    /// Earlier session snapshots kept (`sessions.json.1` … `.N`).
    #[serde(default = "default_session_generations")]
    pub session_generations: usize,
    /// A tmux command of the session layer taking longer is killed.
    #[serde(default = "default_session_timeout_secs")]
    pub session_timeout_secs: u64,
}

fn default_root() -> PathBuf {
    PathBuf::from("/")
}
fn default_records_dir() -> PathBuf {
    PathBuf::from("/var/lib/tenantry/host")
}
fn default_useradd() -> PathBuf {
    PathBuf::from("useradd")
}
fn default_usermod() -> PathBuf {
    PathBuf::from("usermod")
}
fn default_userdel() -> PathBuf {
    PathBuf::from("userdel")
}
fn default_git() -> PathBuf {
    PathBuf::from("git")
}
fn default_tar() -> PathBuf {
    PathBuf::from("tar")
}
fn default_git_crypt() -> PathBuf {
    PathBuf::from("git-crypt")
}
fn default_tmux() -> PathBuf {
    PathBuf::from("tmux")
}
fn default_session_generations() -> usize {
    5
}
fn default_session_timeout_secs() -> u64 {
    20
}
fn default_git_timeout_secs() -> u64 {
    300
}
fn default_command_timeout_secs() -> u64 {
    120
}
fn default_archive_timeout_secs() -> u64 {
    6 * 3600
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            root: default_root(),
            backup_dir: None,
            source_dir: None,
            dispatch_path: None,
            records_dir: default_records_dir(),
            useradd: default_useradd(),
            usermod: default_usermod(),
            userdel: default_userdel(),
            git: default_git(),
            tar: default_tar(),
            git_timeout_secs: default_git_timeout_secs(),
            command_timeout_secs: default_command_timeout_secs(),
            archive_timeout_secs: default_archive_timeout_secs(),
            tmux: default_tmux(),
            tmux_socket: None,
            tenantry_command: None,
            git_crypt_key_file: None,
            git_crypt: default_git_crypt(),
            session_generations: default_session_generations(),
            session_timeout_secs: default_session_timeout_secs(),
        }
    }
}

impl HostConfig {
    /// A sandbox root with every other setting at its default.
    pub fn sandbox(root: impl Into<PathBuf>) -> HostConfig {
        HostConfig { root: root.into(), ..HostConfig::default() }
    }

    /// `records_dir` on the machine: under the root, whether written absolute or not.
    pub fn records_path(&self) -> PathBuf {
        self.root.join(self.records_dir.strip_prefix("/").unwrap_or(&self.records_dir))
    }
}
