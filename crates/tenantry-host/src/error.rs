//! Errors of the host target, mapped to `TargetError` at the trait boundary.

use tenantry_core::TargetError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A command ran and failed; `stderr` is what it said.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command { command: String, status: String, stderr: String },
    /// tenantry will not do this on its own (it would take something away or write through a link).
    #[error("{0}")]
    Refused(String),
    /// A change inside a home whose account is not there (yet): the engine
    /// applies the account first, so this only happens when that failed.
    #[error("account `{os_user}` does not exist on the host; it is created first, retry after it")]
    MissingAccount { os_user: String },
    /// The change's content lacks what this kind needs (a bug in derivation, or a hand-made change).
    #[error("{0}")]
    Content(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tenantry_fs::Error> for Error {
    fn from(error: tenantry_fs::Error) -> Error {
        match error {
            refused @ tenantry_fs::Error::Refused { .. } => Error::Refused(refused.to_string()),
            tenantry_fs::Error::Io { context, path, source } => {
                Error::Io { context: format!("{context} {}", path.display()), source }
            }
        }
    }
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn into_target_error(self, id: &str) -> TargetError {
        match self {
            Error::Io { context, source } => TargetError::io(context, source),
            other => TargetError::rejected(id.to_string(), other.to_string()),
        }
    }
}
