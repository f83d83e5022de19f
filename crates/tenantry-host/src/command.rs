//! External commands (useradd, usermod, git, tar) behind one trait, so a
//! dry run can print exactly what apply would execute and tests can fake it.
//!
//! Every command runs with a cleared environment (the admin's `VAULT_TOKEN`
//! or `PDNS_API_KEY` never reach a child, where any process of the same uid
//! could read them from `/proc/<pid>/environ`), stdin from `/dev/null`,
//! bounded output and a timeout. A command run as an account
//! (`run_as`) also runs in a new session through util-linux `setsid`, so it
//! has no controlling terminal: it cannot open `/dev/tty` and push keystrokes
//! into the admin's shell (`TIOCSTI`). std offers no safe `setsid` for a
//! child (it needs `pre_exec`, which is `unsafe`), and `setsid` execs the
//! command in place (a child of ours is never a process-group leader), so its
//! pid is the command's and its session is the process group killed on timeout.

use crate::redact;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `PATH` of every command: system directories only.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The timeout of a command that sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Output kept per stream; the rest is read and dropped (a chatty or hostile command cannot fill memory).
const OUTPUT_LIMIT: usize = 1 << 20;
/// How long the output of a finished command may still be drained (a leftover holding the pipe open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// The identity variables of `run_as`, implied by `[as <user>]` in the display.
const IDENTITY: [&str; 3] = ["HOME", "USER", "LOGNAME"];

/// One command line, fully described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// Set on top of the cleared environment (`PATH` = [`SAFE_PATH`], `LANG=C.UTF-8`).
    pub env: Vec<(String, String)>,
    /// The account it runs as (by name, for display); `None` runs as tenantry itself.
    pub run_as: Option<String>,
    /// Numeric ids for `run_as`, filled in just before running (the account may be created by an earlier step).
    pub ids: Option<(u32, u32)>,
    /// `None`: [`DEFAULT_TIMEOUT`]. Every command has one.
    pub timeout: Option<Duration>,
    /// Fed to the command's stdin (a key for `git-crypt unlock -`); never
    /// shown, in the display or in `Debug`. `None`: stdin is `/dev/null`.
    pub stdin: Option<Sensitive>,
}

/// Bytes that are never shown (`Debug` prints `(sensitive)`).
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(pub Vec<u8>);

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>, args: impl IntoIterator<Item = impl Into<String>>) -> Cmd {
        Cmd {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            cwd: None,
            env: Vec::new(),
            run_as: None,
            ids: None,
            timeout: None,
            stdin: None,
        }
    }

    /// Run as `os_user` with `home`: its identity variables set, in its home.
    pub fn as_user(mut self, os_user: &str, home: impl Into<PathBuf>) -> Cmd {
        let home = home.into();
        self.env.push(("HOME".to_string(), home.to_string_lossy().into_owned()));
        self.env.push(("USER".to_string(), os_user.to_string()));
        self.env.push(("LOGNAME".to_string(), os_user.to_string()));
        self.cwd = Some(home);
        self.run_as = Some(os_user.to_string());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = Some(timeout);
        self
    }

    /// What is executed: a command run as an account goes through `setsid --wait`.
    pub fn argv(&self) -> (PathBuf, Vec<String>) {
        if self.run_as.is_some() {
            let mut args = vec!["--wait".to_string(), self.program.to_string_lossy().into_owned()];
            args.extend(self.args.iter().cloned());
            (PathBuf::from("setsid"), args)
        } else {
            (self.program.clone(), self.args.clone())
        }
    }
}

/// Shell-quoted, as an admin would type it: `[as alice]` marks a command run
/// as that account (with its HOME, USER, LOGNAME), then the variables it
/// sets, then exactly the program and arguments run. Credentials in URLs
/// are shown as `***`.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = Vec::new();
        if let Some(user) = &self.run_as {
            write!(f, "[as {user}] ")?;
        }
        for (key, value) in self.env.iter().filter(|(k, _)| self.run_as.is_none() || !IDENTITY.contains(&k.as_str())) {
            words.push(format!("{key}={}", shell_quote(&redact::urls(value))));
        }
        let (program, args) = self.argv();
        words.push(shell_quote(&program.to_string_lossy()));
        words.extend(args.iter().map(|arg| shell_quote(&redact::urls(arg))));
        f.write_str(&words.join(" "))
    }
}

pub(crate) fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,{}^".contains(&b));
    if plain { text.to_string() } else { format!("'{}'", text.replace('\'', "'\\''")) }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code; `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    pub(crate) fn status_text(&self) -> String {
        match self.code {
            Some(code) => format!("exit {code}"),
            None => "killed".to_string(),
        }
    }
}

/// Runs commands. The real one is [`SystemRunner`].
pub trait CommandRunner: Send + Sync + fmt::Debug {
    /// Run to completion; an `Err` means it could not be started at all.
    fn run(&self, cmd: &Cmd) -> io::Result<CmdOutput>;
}

/// Runs commands on this machine, switching to `ids` when set.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, cmd: &Cmd) -> io::Result<CmdOutput> {
        let (program, args) = cmd.argv();
        let own_session = cmd.run_as.is_some();
        let mut command = Command::new(&program);
        let stdin = if cmd.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
        command.args(&args).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.env_clear().env("PATH", SAFE_PATH).env("LANG", "C.UTF-8");
        for (key, value) in &cmd.env {
            command.env(key, value);
        }
        if let Some(dir) = &cmd.cwd {
            command.current_dir(dir);
        }
        if let Some((uid, gid)) = cmd.ids {
            // std drops supplementary groups before setuid, so root's groups do not leak.
            command.uid(uid).gid(gid);
        }
        let mut child = command.spawn()?;
        if let (Some(mut pipe), Some(Sensitive(bytes))) = (child.stdin.take(), cmd.stdin.clone()) {
            // On a thread: a command that does not read cannot block us; the pipe closes when written.
            std::thread::spawn(move || {
                use std::io::Write as _;
                let _ = pipe.write_all(&bytes);
            });
        }
        let pid = i32::try_from(child.id()).ok().and_then(rustix::process::Pid::from_raw);
        // The command and everything it started (its session), or just the command.
        let kill_all = |child: &mut std::process::Child| match pid.filter(|_| own_session) {
            Some(pid) => {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            None => {
                let _ = child.kill();
            }
        };
        // Read both pipes on threads: a chatty command must not block on a full pipe while we wait.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let timeout = cmd.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                kill_all(&mut child);
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        if own_session && !timed_out {
            // Nothing an account's command started outlives it (and holds our pipes open).
            kill_all(&mut child);
        }
        let until = Instant::now() + DRAIN_GRACE;
        let collect = |pipe: Option<mpsc::Receiver<String>>| {
            pipe.and_then(|rx| rx.recv_timeout(until.saturating_duration_since(Instant::now())).ok())
                .unwrap_or_default()
        };
        let stdout = collect(stdout);
        let mut stderr = collect(stderr);
        if timed_out {
            stderr.push_str(&format!("\n(timed out after {}s)", timeout.as_secs_f32()));
        }
        Ok(CmdOutput { code: if timed_out { None } else { status.code() }, stdout, stderr })
    }
}

/// Read a pipe to its end on a thread, keeping at most [`OUTPUT_LIMIT`] bytes.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&chunk[..n.min(room)]);
                }
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
    });
    rx
}
