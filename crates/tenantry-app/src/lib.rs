//! The composition root of tenantry, shared by every front end (the CLI,
//! `serve`, the portal). No terminal and no argument parsing here.
//!
//! It owns tenantry.toml and the registry of targets ([`config`]), where
//! the roster comes from ([`source`]), and a [`Session`] whose use cases —
//! validate, plan, apply, render, why, explain, offboard, destroy,
//! kubeconfig, setup script, doctor, history, terminal sessions — return report types with a
//! documented JSON form ([`wire`]). `import` needs no session. A
//! long-running front end (`serve`) keeps a [`Controller`]: targets
//! connected once, a session per pass.

pub mod access;
pub mod audit;
mod cluster;
pub mod config;
mod controller;
mod doctor;
mod error;
mod history;
pub mod import;
mod offboard;
mod plan;
mod provenance;
mod render;
mod saved;
mod session;
pub mod source;
mod templates;
pub mod tenant_status;
mod terminal_sessions;
mod views;
pub mod wire;

pub use access::{SetupOs, write_new_kubeconfig};
pub use cluster::Drift;
pub use config::{Config, TARGETS};
pub use controller::{Controller, PassReport, PassRequest, TargetOutcome, users_by_tier};
pub use doctor::{CheckOutcome, CheckStatus, DoctorReport};
pub use error::{AppError, Result};
pub use history::{HistoryReport, HistoryRun, outcome as change_outcome, parse_since};
pub use import::{
    CrdImportOutcome, CrdImportRequest, ImportOutcome, ImportRequest, import, import_from_crds, import_to_crds,
};
pub use offboard::DestroyOutcome;
pub use plan::{ApplyOutcome, ApplyRequest, PlanRequest, Planned};
pub use provenance::{Derived, ExplainReport, Grant, WhyReport};
pub use render::RenderReport;
pub use saved::{SavedChange, SavedPlan, SavedRequest};
pub use session::{Session, SessionOptions, Waiting};
pub use source::{LoadedRoster, SourceKind, TENANTS_SOURCE, TenantsSource};
/// The host's session outcomes, as the reports hold them.
pub mod session_outcomes {
    pub use tenantry_host::session::{RestoreOutcome, SaveOutcome};
}
pub use terminal_sessions::{SessionAction, SessionsReport, UserSessionOutcome, UserSessions};
pub use views::{GrantWhy, UserView, VaultPath, VaultView, WorkstationView, policy_paths};

pub use tenantry_core::doctor::{Finding, Severity};
pub use tenantry_engine::{
    ApplyReport, ChangeRecord, Clock, DestroyPlan, DestroyReport, Failure, JournalEntry, Progress, RunRecord,
    SystemClock, backoff_delay,
};

/// The roster's JSON Schema (`tenantry schema`).
pub fn roster_schema() -> serde_json::Value {
    tenantry_model::json_schema()
}

/// The `Tenant` and `Platform` custom resource definitions as YAML (`tenantry crds`).
pub fn custom_resource_definitions() -> String {
    tenantry_model::crd::definitions_yaml()
}

/// Validate a roster without connecting anything: the roster and its
/// warnings, or every diagnostic (`AppError::Roster`).
pub fn validate(options: SessionOptions) -> Result<Session> {
    Session::open(options)
}
