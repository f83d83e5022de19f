//! A session: one tenantry.toml, one roster, and (when a use case needs
//! them) the connected targets and the state database, locked for the run.

use crate::config::Config;
use crate::error::{AppError, Result};
use crate::source::{LoadedRoster, load_roster};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tenantry_core::Target;
use tenantry_engine::{Clock, Engine, RunLock, State, SystemClock};
use tenantry_model::{Diagnostics, Roster};
use tokio::sync::OnceCell;

/// Told who holds the state database while a run waits for it.
pub type Waiting = Arc<dyn Fn(&str) + Send + Sync>;

/// What a front end says when it opens a session.
#[derive(Clone)]
pub struct SessionOptions {
    /// A roster file, or `vault://<mount>/<path>#<key>`.
    pub roster: String,
    /// With a `vault://` roster: a roster file whose `platform:` block completes it.
    pub platform_from: Option<PathBuf>,
    /// tenantry.toml; default ./tenantry.toml when present.
    pub config: Option<PathBuf>,
    /// How this run is recorded (`tenantry apply --yes`, `serve: roster changed`).
    pub command: String,
    /// Who runs it: the OS user for the CLI, `controller` for `serve`
    /// (the run record and every audit event name it).
    pub actor: Option<String>,
    /// Now, for run records, audit events and doctor's expiry checks
    /// (tests pass a fixed one).
    pub clock: Arc<dyn Clock>,
    /// Called when another run holds the state database and this one waits.
    pub waiting: Waiting,
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("roster", &self.roster)
            .field("config", &self.config)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl SessionOptions {
    pub fn new(roster: impl Into<String>) -> SessionOptions {
        SessionOptions {
            roster: roster.into(),
            platform_from: None,
            config: None,
            command: "tenantry".to_string(),
            actor: None,
            clock: Arc::new(SystemClock),
            waiting: Arc::new(|_| {}),
        }
    }
}

/// The connected targets and the locked state.
#[derive(Debug)]
pub(crate) struct Live {
    pub engine: Engine,
    /// Held for the session: one run at a time per state database.
    _lock: Option<RunLock>,
}

/// One roster under one configuration.
#[derive(Debug)]
pub struct Session {
    pub(crate) options: SessionOptions,
    pub(crate) config: Arc<Config>,
    pub(crate) loaded: LoadedRoster,
    /// Targets a long-running caller connected once ([`crate::Controller`]);
    /// `None`: connect them when first needed.
    connected: Option<Connected>,
    live: OnceCell<Live>,
}

/// Targets connected before the session was opened.
struct Connected(Vec<Arc<dyn Target>>);

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|t| t.name())).finish()
    }
}

impl Session {
    /// Load tenantry.toml and the roster (validated; every problem at once).
    pub fn open(options: SessionOptions) -> Result<Session> {
        let config = Config::load(options.config.as_deref(), roster_dir(&options.roster).as_deref())?;
        let loaded =
            load_roster(&options.roster, &config.validation_context(), &config, options.platform_from.as_deref())?;
        Ok(Session { options, config: Arc::new(config), loaded, live: OnceCell::new(), connected: None })
    }

    /// A session over targets that are already connected (one pass of a
    /// long-running process): it still takes the run lock when first used,
    /// and releases it when dropped.
    pub(crate) fn with_targets(
        options: SessionOptions,
        config: Arc<Config>,
        loaded: LoadedRoster,
        targets: Vec<Arc<dyn Target>>,
    ) -> Session {
        Session { options, config, loaded, live: OnceCell::new(), connected: Some(Connected(targets)) }
    }

    pub fn roster(&self) -> &Roster {
        &self.loaded.roster
    }

    /// The roster's text (diagnostics and provenance point into it).
    pub fn roster_text(&self) -> &str {
        &self.loaded.text
    }

    /// Warnings of the (valid) roster.
    pub fn warnings(&self) -> &Diagnostics {
        &self.loaded.warnings
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// SHA-256 of the roster text, hex.
    pub fn roster_digest(&self) -> String {
        self.loaded.digest()
    }

    /// The engine with every configured target connected and the state
    /// database locked for this session (waiting while another run holds it).
    pub(crate) async fn live(&self) -> Result<&Live> {
        self.live
            .get_or_try_init(|| async {
                let state_path = self.config.local.state.clone();
                let holder = self.options.command.clone();
                let waiting = Arc::clone(&self.options.waiting);
                let (state, lock) = tokio::task::spawn_blocking(move || -> Result<(State, RunLock)> {
                    let lock = RunLock::acquire(&state_path, &holder, &*waiting)?;
                    Ok((State::open(&state_path)?, lock))
                })
                .await
                .map_err(|e| AppError::config(format!("opening the state database stopped: {e}"), "run again"))??;
                let targets = match &self.connected {
                    Some(Connected(targets)) => targets.clone(),
                    None => self.config.connect(&self.loaded.roster.platform.name).await?,
                };
                let engine = Engine::new(targets, state, Arc::clone(&self.options.clock), self.config.settings());
                Ok(Live { engine, _lock: Some(lock) })
            })
            .await
    }

    /// Now, as RFC 3339 text (UTC, seconds).
    pub fn now(&self) -> String {
        self.options.clock.now()
    }

    /// Who runs this session, for the audit trail.
    pub fn who(&self) -> &str {
        self.options.actor.as_deref().unwrap_or("unknown")
    }

    /// The roster this session derived from: source, digest, git revision.
    pub fn roster_ref(&self) -> crate::audit::RosterRef {
        let source = self.roster().source.clone();
        let revision = (!self.options.roster.starts_with("vault://"))
            .then(|| crate::audit::git_revision(Path::new(&self.options.roster)))
            .flatten();
        crate::audit::RosterRef { source, digest: self.roster_digest(), revision }
    }

    pub(crate) fn run_context<'a>(
        &'a self,
        time: &'a str,
        roster: &'a crate::audit::RosterRef,
    ) -> crate::audit::RunContext<'a> {
        crate::audit::RunContext { time, who: self.who(), command: &self.options.command, roster }
    }

    /// Write a run's audit events and announce them (`[audit]`); what
    /// failed comes back as warnings, never as an error.
    pub(crate) async fn record_audit(&self, events: Vec<crate::audit::AuditEvent>) -> Vec<tenantry_core::Note> {
        let mut notes = Vec::new();
        let secret = match &self.config.audit.webhook_url_file {
            None => None,
            Some(path) => {
                match tenantry_secret::secret(
                    Some(path),
                    &[],
                    "audit webhook URL file",
                    "[audit] webhook_url_file",
                    &|_| None,
                ) {
                    Ok(secret) => Some(secret),
                    Err(error) => {
                        notes.push(tenantry_core::Note::warning(format!("the audit webhook was not told: {error}")));
                        None
                    }
                }
            }
        };
        let webhook = secret.as_ref().map(|secret| (secret, self.config.audit.timeout()));
        notes.extend(crate::audit::record(&self.config.audit_log(), webhook, events).await);
        notes
    }

    pub(crate) async fn engine(&self) -> Result<&Engine> {
        Ok(&self.live().await?.engine)
    }
}

/// The directory of a roster file (managed-file sources are relative to it).
pub(crate) fn roster_dir(roster: &str) -> Option<PathBuf> {
    if roster.starts_with("vault://") || roster.starts_with("kubernetes://") {
        return None;
    }
    let dir = Path::new(roster).parent().filter(|p| !p.as_os_str().is_empty());
    Some(dir.map(Path::to_path_buf).unwrap_or_else(|| ".".into()))
}
