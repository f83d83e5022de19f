//! The tenantry command line as a library, so tests and benchmarks drive
//! exactly what the binary runs. One module per command parses nothing
//! itself (clap did) and only calls a `tenantry_app` use case and renders
//! its report; all human rendering lives in [`output`], every byte goes
//! through the [`shell::Shell`].

pub mod cli;
pub mod commands;
pub mod output;
pub mod shell;

pub use cli::Cli;

/// Process exit codes (documented in the README).
pub mod exit {
    /// Success; for `plan --detailed-exitcode`: no changes.
    pub const OK: i32 = 0;
    /// An error: invalid roster or config, a failed change, a conflict.
    pub const ERROR: i32 = 1;
    /// `plan --detailed-exitcode`: the plan has changes.
    pub const CHANGES: i32 = 2;
    /// `doctor`: a check found a problem or a warning.
    pub const FOUND: i32 = 3;
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
    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Run { message: String, help: String },
    #[error("{message}")]
    #[diagnostic(help("{help}"))]
    Usage { message: String, help: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl From<tenantry_app::AppError> for CliError {
    fn from(error: tenantry_app::AppError) -> CliError {
        use tenantry_app::AppError;
        let help = error.help().unwrap_or_default();
        match error {
            AppError::Roster(diagnostics, text) => CliError::Roster(diagnostics, text),
            AppError::Read { path, source } => CliError::Read { path, source },
            AppError::Config { message, help } => CliError::Config { message, help },
            AppError::Usage { message, help } => CliError::Usage { message, help },
            failed @ AppError::Run(_) => CliError::Run { message: failed.to_string(), help },
        }
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;
