//! The engine: observes every target, asks the core for a plan, and applies
//! it in dependency order with bounded concurrency, isolating failures per
//! user and journalling intent and outcome in SQLite so that a run killed
//! at any point converges when rerun.

mod backups;
mod clock;
mod destroy;
mod engine;
mod handle;
mod lock;
mod report;
mod retry;
mod state;

pub use backups::BackupDir;
pub use clock::{Clock, FixedClock, SystemClock};
pub use destroy::{DestroyPlan, DestroyReport};
pub use engine::{ApplyOptions, Engine, Prepared};
pub use handle::StateHandle;
pub use lock::RunLock;
pub use report::{ApplyReport, Failure, Progress};
pub use retry::{RetryPolicy, backoff_delay};
pub use state::{ChangeRecord, JournalEntry, RunInfo, RunRecord, SCHEMA_VERSION, State};

/// Errors of the engine and its state database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("state database {path}: {source}")]
    State {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the state directory {path}: {source}")]
    StateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database holds an unreadable value: {0}")]
    Corrupt(String),
    /// The destroy stage will not run for this user now; the message says why and what to do.
    #[error("{0}")]
    DestroyRefused(String),
    #[error("port {port} is reserved for both `{first}` and `{second}`")]
    PortConflict { port: u16, first: String, second: String },
    #[error(
        "state database {path} was written by a newer tenantry (schema {found}; this build knows {known}); upgrade tenantry"
    )]
    NewerSchema { path: String, found: i64, known: i64 },
    #[error("state database {path}: upgrading to schema {version} failed: {source}")]
    Migration {
        path: String,
        version: usize,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A target's own copy of a fact disagrees with the state (the host's
    /// ports), or the target could not be asked (`unavailable`).
    #[error("{message}")]
    Facts { target: String, message: String, unavailable: bool },
    #[error("{0}")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
