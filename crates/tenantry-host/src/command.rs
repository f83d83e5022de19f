//! External commands (useradd, usermod, git, tar) behind one trait, so a
//! dry run can print exactly what apply would execute and tests can fake it.

use std::fmt;
use std::io::{self, Read};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One command line, fully described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// The account it runs as (by name, for display); `None` runs as tenantry itself.
    pub run_as: Option<String>,
    /// Numeric ids for `run_as`, filled in just before running (the account may be created by an earlier step).
    pub ids: Option<(u32, u32)>,
    pub timeout: Option<Duration>,
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
        }
    }
}

/// Shell-quoted, as an admin would type it; `[as alice]` marks a command run as that account.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.run_as {
            write!(f, "[as {user}] ")?;
        }
        f.write_str(&shell_quote(&self.program.to_string_lossy()))?;
        for arg in &self.args {
            write!(f, " {}", shell_quote(arg))?;
        }
        Ok(())
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
        let mut command = Command::new(&cmd.program);
        command.args(&cmd.args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(dir) = &cmd.cwd {
            command.current_dir(dir);
        }
        for (key, value) in &cmd.env {
            command.env(key, value);
        }
        if let Some((uid, gid)) = cmd.ids {
            // std drops supplementary groups before setuid, so root's groups do not leak.
            command.uid(uid).gid(gid);
        }
        let mut child = command.spawn()?;
        // Read both pipes on threads: a chatty command must not block on a full pipe while we wait.
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let deadline = cmd.timeout.map(|t| Instant::now() + t);
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                timed_out = true;
                let _ = child.kill();
                break child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let collect =
            |handle: Option<std::thread::JoinHandle<String>>| handle.and_then(|h| h.join().ok()).unwrap_or_default();
        let mut stderr = collect(stderr);
        if timed_out {
            let seconds = cmd.timeout.map(|t| t.as_secs()).unwrap_or_default();
            stderr.push_str(&format!("\n(timed out after {seconds}s)"));
        }
        Ok(CmdOutput { code: if timed_out { None } else { status.code() }, stdout: collect(stdout), stderr })
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
