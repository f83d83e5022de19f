//! The tenantry command line as a library, so tests and benchmarks drive
//! exactly what the binary runs. Commands wire the roster source, the core
//! and the engine together; all human and JSON rendering lives in [`output`].

pub mod cli;
pub mod commands;
pub mod config;
pub mod output;
pub mod render;
pub mod setup;
pub mod source;

pub use cli::Cli;

/// Process exit codes (documented in the README).
pub mod exit {
    /// Success; for `plan --detailed-exitcode`: no changes.
    pub const OK: i32 = 0;
    /// An error: invalid roster or config, a failed change, a conflict.
    pub const ERROR: i32 = 1;
    /// `plan --detailed-exitcode`: the plan has changes.
    pub const CHANGES: i32 = 2;
}

/// Errors at the command-line edge, each with a fix.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CliError {
    #[error("the roster is invalid")]
    Roster(tenantry_model::Diagnostics, Option<String>),
    #[error("cannot read {path}: {source}")]
    #[diagnostic(help("check the path, or pass --roster / --config"))]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Config { message: String, help: String },
    #[error(transparent)]
    #[diagnostic(help(
        "the state database is under [local] state (default .tenantry/state.db); it can be inspected with sqlite3"
    ))]
    Engine(#[from] tenantry_engine::Error),
    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Usage { message: String, help: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
