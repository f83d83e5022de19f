//! tmux, run as the user (as root: uid/gid of the account, cleared
//! environment, no terminal, a timeout — [`crate::command`]) against the
//! user's server socket. Every value goes in as one argument, never a shell line.

use super::snapshot::{SavedSession, check_conversation, check_name};
use crate::command::{Cmd, CommandRunner};
use crate::error::{Error, Result};
use std::path::Path;
use std::time::Duration;

/// The session option holding the conversation a session runs. Whoever
/// starts a session (the platform's launcher, or restore) sets it:
/// `tmux set-option -t <session> @conversation <id>`.
pub const CONVERSATION_OPTION: &str = "@conversation";

/// Fields of one `list-sessions` line, tab-separated (tmux escapes tabs in names).
const LIST_FORMAT: &str = "#{session_name}\t#{pane_current_path}\t#{session_path}\t#{@conversation}";

/// How to reach one user's tmux server.
#[derive(Debug, Clone)]
pub struct Tmux<'a> {
    pub program: &'a Path,
    /// `-S <socket>`; `None`: tmux's own default socket for the uid.
    pub socket: Option<String>,
    pub os_user: &'a str,
    pub home: &'a Path,
    /// Run as these ids (tenantry is root); `None`: tenantry runs as the user already.
    pub ids: Option<(u32, u32)>,
    pub timeout: Duration,
}

/// What reading the sessions gave, when it did not fail.
#[derive(Debug, Default)]
pub struct Listed {
    pub sessions: Vec<SavedSession>,
    /// Sessions left out, and why (a name tmux cannot be given back, a relative directory).
    pub skipped: Vec<String>,
}

impl Tmux<'_> {
    fn cmd(&self, args: Vec<String>) -> Cmd {
        let mut all = Vec::new();
        if let Some(socket) = &self.socket {
            all.extend(["-S".to_string(), socket.clone()]);
        }
        all.extend(args);
        let cmd = Cmd::new(self.program, all).with_timeout(self.timeout);
        let mut cmd = match self.ids {
            Some(_) => cmd.as_user(self.os_user, self.home),
            None => {
                let mut cmd = cmd;
                let home = self.home.to_string_lossy().into_owned();
                cmd.env.extend([
                    ("HOME".to_string(), home),
                    ("USER".to_string(), self.os_user.to_string()),
                    ("LOGNAME".to_string(), self.os_user.to_string()),
                ]);
                cmd.cwd = Some(self.home.to_path_buf());
                cmd
            }
        };
        cmd.ids = self.ids;
        cmd
    }

    fn run(&self, runner: &dyn CommandRunner, args: Vec<String>) -> Result<crate::command::CmdOutput> {
        let cmd = self.cmd(args);
        runner.run(&cmd).map_err(|e| Error::io(format!("running `{cmd}`"), e))
    }

    fn failed(&self, args: Vec<String>, output: &crate::command::CmdOutput) -> Error {
        Error::Command {
            command: self.cmd(args).to_string(),
            status: output.status_text(),
            stderr: output.stderr.trim().to_string(),
        }
    }

    /// The user's sessions. `Err` when tmux could not be asked or failed
    /// (no server running is a failure too: nothing was read).
    pub fn list(&self, runner: &dyn CommandRunner) -> Result<Listed> {
        let args = vec!["list-sessions".to_string(), "-F".to_string(), LIST_FORMAT.to_string()];
        let output = self.run(runner, args.clone())?;
        if !output.success() {
            return Err(self.failed(args, &output));
        }
        let mut listed = Listed::default();
        for line in output.stdout.lines().filter(|l| !l.is_empty()) {
            match parse_line(line) {
                Ok(session) => listed.sessions.push(session),
                Err(why) => listed.skipped.push(why),
            }
        }
        Ok(listed)
    }

    /// The names of the running sessions; none when no server runs.
    pub fn names(&self, runner: &dyn CommandRunner) -> Result<Vec<String>> {
        let args = vec!["list-sessions".to_string(), "-F".to_string(), "#{session_name}".to_string()];
        let output = self.run(runner, args.clone())?;
        if output.success() {
            return Ok(output.stdout.lines().map(str::to_string).collect());
        }
        let stderr = &output.stderr;
        let no_server = ["no server running", "error connecting to", "No such file or directory"];
        if output.code.is_some() && no_server.iter().any(|m| stderr.contains(m)) {
            return Ok(Vec::new());
        }
        Err(self.failed(args, &output))
    }

    /// `new-session -d -s NAME -c DIR [command…]`, then the conversation option.
    pub fn create(
        &self,
        runner: &dyn CommandRunner,
        session: &SavedSession,
        command: Option<Vec<String>>,
    ) -> Result<()> {
        let mut args = ["new-session", "-d", "-s", &session.name, "-c", &session.dir].map(str::to_string).to_vec();
        args.extend(command.unwrap_or_default());
        let output = self.run(runner, args.clone())?;
        if !output.success() {
            return Err(self.failed(args, &output));
        }
        if let Some(id) = &session.conversation {
            let target = format!("={}:", session.name);
            let args = ["set-option", "-t", &target, CONVERSATION_OPTION, id].map(str::to_string).to_vec();
            let output = self.run(runner, args.clone())?;
            if !output.success() {
                return Err(self.failed(args, &output));
            }
        }
        Ok(())
    }
}

fn parse_line(line: &str) -> std::result::Result<SavedSession, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [name, pane_path, session_path, conversation] = fields[..] else {
        return Err(format!("an unreadable line from tmux: `{}`", line.escape_debug()));
    };
    check_name(name)?;
    let dir = if pane_path.starts_with('/') { pane_path } else { session_path };
    if !dir.starts_with('/') || dir.chars().any(char::is_control) {
        return Err(format!("session `{name}`: no absolute working directory"));
    }
    let conversation = match conversation {
        "" => None,
        id => {
            check_conversation(id).map_err(|e| format!("session `{name}`: {e}"))?;
            Some(id.to_string())
        }
    };
    Ok(SavedSession { name: name.to_string(), dir: dir.to_string(), conversation })
}
