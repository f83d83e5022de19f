//! The functional core of tenantry.
//!
//! Pure, synchronous and deterministic: [`derive()`] turns a validated roster
//! into the desired state, [`diff()`] compares it with what targets observed
//! and applies the safety policy of SPEC §6 to produce a [`Plan`]. Nothing
//! here performs I/O or reads the clock; the [`Target`] trait only declares
//! what the imperative shell must provide.

pub mod content;
pub mod derive;
mod diff;
pub mod doctor;
mod facts;
mod id;
pub mod kinds;
pub mod kubeconfig;
pub mod marks;
mod minted;
mod observed;
mod plan;
mod plan_order;
pub mod plugin;
mod resource;
pub mod setup;
pub mod target;

pub use content::Content;
pub use derive::{Facts, RetainedRoute, Settings, derive};
pub use diff::{ObservedByTarget, Policy, Routing, cut_content, diff};
pub use facts::{Remembered, Reservations, current_routes, facts};
pub use id::{Domain, ParseIdError, ResourceId};
pub use kinds::{Retire, kind, kind_rank, retire_policy};
pub use marks::{DEFAULT_PLATFORM, Mark, MarkKeys};
pub use observed::{Inventory, InventoryEntry, Observed, ObservedResource};
pub use plan::{Action, Change, Plan, PlanProblem, UserSummary};
pub use resource::{DeriveFailure, Desired, ObjectBudget, Owner, Resource};
pub use target::{
    Applied, Backups, Destroyed, ErrorKind, Minted, MintedSecret, Note, NoteLevel, ObserveRequest, Snapshot, Target,
    TargetError,
};
