//! The one trait every target implements (kubernetes, vault, dns, host, local, …),
//! the typed error it returns, and what passes between its calls.

use crate::derive::Facts;
use crate::id::{Domain, ResourceId};
use crate::observed::Observed;
use crate::plan::Change;
use crate::resource::Desired;
use std::any::Any;
use std::fmt;
use std::sync::Arc;
use tenantry_model::Roster;

/// What kind of failure a target met, so callers decide without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Something the change needs does not exist (a mount, a zone, a parent object).
    NotFound,
    /// It exists and is someone else's, or changed under us.
    Conflict,
    /// The credentials tenantry runs with may not do it.
    Forbidden,
    /// The peer cannot be reached or used at all.
    Unavailable,
    /// The peer or the target refused the content (validation, a bad TLS source).
    Invalid,
    /// A local file or process operation failed.
    Io,
    Other,
}

/// Why a target could not observe or apply.
///
/// Targets build it without their own name; the engine adds it
/// ([`TargetError::in_target`]) before anyone prints it.
#[derive(Debug)]
pub struct TargetError {
    pub kind: ErrorKind,
    /// The target it came from, once the engine has said.
    pub target: Option<String>,
    /// The resource (or operation) it concerns.
    pub id: Option<String>,
    pub message: String,
    /// Trying again later may succeed (a timeout, a 429, a 5xx).
    pub retryable: bool,
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// How an answer that did not parse looked, for an error: its start (up to
/// `limit` characters, control characters dropped) — unless it looks like
/// JSON, which is then only measured: a garbled answer to a token or secret
/// request holds the secret.
pub fn unparsed_excerpt(text: &str, limit: usize) -> String {
    let text = text.trim().trim_start_matches('\u{feff}');
    if text.starts_with(['{', '[', '"']) {
        format!("{} bytes of broken JSON", text.len())
    } else {
        text.chars().filter(|c| !c.is_control()).take(limit).collect()
    }
}

/// An error followed by its causes, in one line (`outer: inner: …`).
/// Client libraries keep what happened in the causes: kube's transport
/// error says `client error (Connect)`, hickory's `proto error`, and only
/// a cause says the connection was refused or the certificate untrusted.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl TargetError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> TargetError {
        let retryable = kind == ErrorKind::Unavailable;
        TargetError { kind, target: None, id: None, message: message.into(), retryable, source: None }
    }

    /// The peer refused this one change (validation, conflict, permission).
    pub fn rejected(id: impl Into<String>, message: impl Into<String>) -> TargetError {
        TargetError::new(ErrorKind::Invalid, message).about(id)
    }

    /// The peer cannot be reached or used at all; every change on it fails.
    pub fn unavailable(message: impl Into<String>) -> TargetError {
        TargetError::new(ErrorKind::Unavailable, message)
    }

    /// A local operation (`context`: what was being done) failed.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> TargetError {
        TargetError { source: Some(Box::new(source)), ..TargetError::new(ErrorKind::Io, context) }
    }

    pub fn other(message: impl Into<String>) -> TargetError {
        TargetError::new(ErrorKind::Other, message)
    }

    /// The resource or operation it concerns.
    pub fn about(mut self, id: impl Into<String>) -> TargetError {
        self.id = Some(id.into());
        self
    }

    pub fn with_kind(mut self, kind: ErrorKind) -> TargetError {
        self.kind = kind;
        self
    }

    pub fn retryable(mut self, retryable: bool) -> TargetError {
        self.retryable = retryable;
        self
    }

    /// Name the target (the engine does, for every error it passes on).
    pub fn in_target(mut self, target: &str) -> TargetError {
        self.target.get_or_insert_with(|| target.to_string());
        self
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = self.target.as_deref().unwrap_or("target");
        match (self.kind, &self.id, &self.source) {
            (ErrorKind::Io, _, Some(source)) => write!(f, "{target}: {}: {source}", self.message),
            (_, Some(id), _) => write!(f, "{target} rejected {id}: {}", self.message),
            (ErrorKind::Unavailable, None, _) => write!(f, "{target} is unavailable: {}", self.message),
            (_, None, _) => write!(f, "{target}: {}", self.message),
        }
    }
}

impl std::error::Error for TargetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

pub type Result<T, E = TargetError> = std::result::Result<T, E>;

/// What to observe: every id the plan needs, desired or remembered.
#[derive(Debug, Clone, Default)]
pub struct ObserveRequest {
    /// Each id with the owner tenantry expects for it.
    pub resources: Vec<(ResourceId, crate::resource::Owner)>,
    /// The desired content of what this target is to apply, for checks a
    /// target can make before anything exists (a TLS source before its first copy).
    pub desired: Vec<(ResourceId, crate::content::Content)>,
    /// The platform (roster `platform.name`) whose marks count as ours.
    pub platform: String,
    /// The roster position each desired resource came from, so a problem a
    /// target finds (a login missing at the peer) can name the roster line.
    pub origins: Vec<(ResourceId, tenantry_model::Span)>,
}

/// What a target read while observing and needs again to apply the plan it
/// observed for (the TLS sources it checked): handed back by the engine, so
/// a target keeps nothing between calls and two plans never share it.
#[derive(Clone, Default)]
pub struct Snapshot(Option<Arc<dyn Any + Send + Sync>>);

impl Snapshot {
    pub fn new<T: Any + Send + Sync>(value: T) -> Snapshot {
        Snapshot(Some(Arc::new(value)))
    }

    /// The value, when this snapshot holds a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.as_deref().and_then(|value| value.downcast_ref::<T>())
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Snapshot(..)" } else { "Snapshot(empty)" })
    }
}

/// How important a note is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NoteLevel {
    Info,
    Warning,
}

/// Something the admin should know about a change or a follow-up step,
/// which is not a failure (a tier group missing on the host, a checkout
/// left alone).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Note {
    pub level: NoteLevel,
    pub message: String,
}

impl Note {
    pub fn info(message: impl Into<String>) -> Note {
        Note { level: NoteLevel::Info, message: message.into() }
    }

    pub fn warning(message: impl Into<String>) -> Note {
        Note { level: NoteLevel::Warning, message: message.into() }
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            NoteLevel::Info => f.write_str(&self.message),
            NoteLevel::Warning => write!(f, "warning: {}", self.message),
        }
    }
}

/// A secret a change minted (a forge token, shown by the peer only once),
/// handed by the engine to the changes of the same apply that depend on
/// it, and to nothing else: never stored, printed or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedSecret(String);

impl MintedSecret {
    pub fn new(secret: impl Into<String>) -> MintedSecret {
        MintedSecret(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MintedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MintedSecret(<redacted>)")
    }
}

/// The secrets minted in this apply by the changes a change depends on, by
/// their ids.
#[derive(Debug, Clone, Default)]
pub struct Minted(pub Vec<(ResourceId, MintedSecret)>);

impl Minted {
    pub fn get(&self, id: &ResourceId) -> Option<&MintedSecret> {
        self.0.iter().find(|(minted, _)| minted == id).map(|(_, secret)| secret)
    }
}

/// What applying one change did besides succeeding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub notes: Vec<Note>,
    /// The secret it minted, for the changes depending on it (kinds with
    /// `mints_secret`).
    pub minted: Option<MintedSecret>,
}

impl Applied {
    pub fn done() -> Applied {
        Applied::default()
    }
}

/// What the destroy stage did for one user on one target.
#[derive(Debug, Clone, Default)]
pub struct Destroyed {
    /// Backups written before anything was removed.
    pub backups: Vec<std::path::PathBuf>,
    /// Ids now gone (and to be forgotten by the inventory).
    pub removed: Vec<ResourceId>,
    /// Anything else the admin should know, one line each.
    pub notes: Vec<String>,
}

/// Where the destroy stage writes its backups. The engine provides one per
/// run, so every target's backup is written the same way.
pub trait Backups: Send + Sync {
    /// Write a new backup file named `name` (e.g. `vault-alice.json`), never
    /// replacing an earlier one: mode 0600, temp file, fsync, then linked in
    /// place. Returns where it went.
    fn write(&self, name: &str, bytes: &[u8]) -> std::io::Result<std::path::PathBuf>;
    /// The directory, for a target that streams a large backup itself (a home archive).
    fn dir(&self) -> &std::path::Path;
}

/// A system tenantry applies resources to. All I/O of the product lives
/// behind this trait; the core decides what to do, the target only does it.
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// Stable name, used in plans and in the state database (`local`, `kubernetes`).
    fn name(&self) -> &str;

    /// The domains whose resources this target applies.
    fn domains(&self) -> &[Domain];

    /// True when removing a resource here never destroys data (rendered
    /// files): such removals are not held back until the destroy stage.
    fn renders_only(&self) -> bool {
        false
    }

    /// Before anything is derived: a target that keeps its own copy of a
    /// fact derivation depends on (the host's sticky ports, written into
    /// homes) checks it against what the state remembers and adds what only
    /// it remembers. An error stops the run before anything is derived.
    async fn reconcile_facts(&self, _roster: &Roster, _facts: &mut Facts) -> Result<Vec<Note>> {
        Ok(Vec::new())
    }

    /// What applying `change` would do, one line per step (the commands a
    /// host change runs), so `plan` can show it. Empty when the change and
    /// its diff already say everything.
    fn describe(&self, _change: &Change) -> Vec<String> {
        Vec::new()
    }

    /// Bulk-read the current state of the requested resources (one listing
    /// per kind where the peer allows it, never one call per object when a
    /// list would do). Missing resources are simply absent from the result.
    /// What apply will need again goes into `Observed::snapshot`.
    async fn observe(&self, request: &ObserveRequest) -> Result<Observed>;

    /// Apply one change, given the snapshot of the observe the plan came
    /// from. Must be idempotent: a retried change is harmless.
    async fn apply(&self, change: &Change, snapshot: &Snapshot) -> Result<Applied>;

    /// Apply a change given the secrets its dependencies minted earlier in
    /// this apply (the host writes a forge token into a home). The engine
    /// always calls this; the default ignores them.
    async fn apply_with(&self, change: &Change, snapshot: &Snapshot, _minted: &Minted) -> Result<Applied> {
        self.apply(change, snapshot).await
    }

    /// After a successful apply: follow-up work that is not a planned change
    /// and never fails the run (the host fetches and fast-forwards clean
    /// checkouts). `desired` is what this run derived, scoped to its users.
    async fn after_apply(&self, _desired: &Desired, _concurrency: usize) -> Vec<Note> {
        Vec::new()
    }

    /// The destroy stage for a user who left the roster and was cut (SPEC §6):
    /// write a backup of what `resources` hold to `backups` first, then
    /// remove them. `resources` are this target's inventory entries of the
    /// user, the only things it may touch. The default removes nothing, so
    /// the engine keeps those entries (and the user's ports).
    async fn destroy(&self, _user: &str, _resources: &[ResourceId], _backups: &dyn Backups) -> Result<Destroyed> {
        Ok(Destroyed::default())
    }

    /// `tenantry doctor`: run this target's live checks (its plugin lists
    /// them, [`crate::plugin::TargetPlugin::checks`]) on the desired
    /// resources of the users asked about. A check the answer does not name
    /// as run is listed as skipped, never as passed; the default runs none.
    /// An error means the peer could not be checked at all.
    async fn diagnose(&self, _request: &crate::doctor::DiagnoseRequest) -> Result<crate::doctor::Diagnosis> {
        Ok(crate::doctor::Diagnosis::default())
    }
}
