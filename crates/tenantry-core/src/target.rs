//! The one trait every target implements (kubernetes, vault, dns, host, local, …).

use crate::id::{Domain, ResourceId};
use crate::observed::Observed;
use crate::plan::Change;

/// Why a target could not observe or apply.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The peer refused this one change (validation, conflict, permission).
    #[error("{target} rejected {id}: {message}")]
    Rejected { target: String, id: String, message: String },
    /// The peer cannot be reached or used at all; every change on it fails.
    #[error("{target} is unavailable: {message}")]
    Unavailable { target: String, message: String },
    #[error("{target}: {context}: {source}")]
    Io {
        target: String,
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: {message}")]
    Other { target: String, message: String },
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

    /// What applying `change` would do, one line per step (the commands a
    /// host change runs), so `plan` can show it. Empty when the change and
    /// its diff already say everything.
    fn describe(&self, _change: &Change) -> Vec<String> {
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

    /// Bulk-read the current state of the requested resources (one listing
    /// per kind where the peer allows it, never one call per object when a
    /// list would do). Missing resources are simply absent from the result.
    async fn observe(&self, request: &ObserveRequest) -> Result<Observed>;

    /// Apply one change. Must be idempotent: a retried change is harmless.
    async fn apply(&self, change: &Change) -> Result<()>;
}
