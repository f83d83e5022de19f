//! What can go wrong in a use case, each with the fix a front end shows.

/// Errors of the use cases. Front ends print the message and [`AppError::help`].
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The roster is invalid: every diagnostic, and the text they point into.
    #[error("the roster is invalid")]
    Roster(tenantry_model::Diagnostics, Option<String>),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// tenantry.toml, a target's settings or credentials.
    #[error("{message}")]
    Config { message: String, help: String },
    #[error(transparent)]
    /// The run itself: the state database, the run lock, a target's own records.
    Run(#[from] tenantry_engine::Error),
    /// The request itself cannot be done (an unknown user, a refused stage).
    #[error("{message}")]
    Usage { message: String, help: String },
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    pub(crate) fn config(message: impl Into<String>, help: impl Into<String>) -> AppError {
        AppError::Config { message: message.into(), help: help.into() }
    }

    pub(crate) fn usage(message: impl Into<String>, help: impl Into<String>) -> AppError {
        AppError::Usage { message: message.into(), help: help.into() }
    }

    pub(crate) fn read(path: impl std::fmt::Display, source: std::io::Error) -> AppError {
        AppError::Read { path: path.to_string(), source }
    }

    /// The fix to show with the message.
    pub fn help(&self) -> Option<String> {
        match self {
            AppError::Roster(..) => None,
            AppError::Read { .. } => Some("check the path, or pass --roster / --config".to_string()),
            AppError::Config { help, .. } | AppError::Usage { help, .. } => Some(help.clone()),
            AppError::Run(tenantry_engine::Error::Facts { target, unavailable: true, .. }) => Some(format!(
                "nothing was changed; the `{target}` target could not be asked before planning: check that it is reachable with the settings of [{target}] in tenantry.toml (connect and request timeouts included), then run again"
            )),
            AppError::Run(tenantry_engine::Error::Facts { target, .. }) => Some(format!(
                "nothing was changed; the `{target}` target's own records disagree with the state database (both are named above): make them agree, then run again"
            )),
            AppError::Run(_) => Some(
                "the state database is under [local] state (default .tenantry/state.db); it can be inspected with sqlite3"
                    .to_string(),
            ),
        }
    }
}
