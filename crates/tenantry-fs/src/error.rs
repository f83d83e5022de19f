//! What can go wrong under a directory someone else controls: a refusal
//! (tenantry will not do it, and says why) or an I/O error.

use std::io;
use std::path::PathBuf;

/// Why an operation was refused rather than attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A link, a file or something else stands where a directory must be.
    NotDirectory,
    /// A link, FIFO, device, socket or directory stands where a regular file must be.
    NotRegularFile,
    /// The file belongs to another account than the one it is read for.
    WrongOwner { found: u32, expected: u32 },
    /// The file is larger than what is ever read from it.
    TooLarge { limit: u64 },
    /// A directory that must be tenantry's (root's) is someone else's, or writable by others.
    Untrusted { uid: u32, mode: u32 },
    /// What tenantry just created was swapped for something else before it was finished.
    Replaced,
    /// Something already exists at the name.
    Exists,
    /// Not one plain path component (empty, `.`, `..`, a `/` or a NUL byte).
    BadName,
    /// Every random temporary name drawn was taken.
    NoTempName,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotDirectory => {
                f.write_str("is a link or a file, not a directory; tenantry does not write through it (move it away)")
            }
            Refusal::NotRegularFile => {
                f.write_str("is not a regular file (a link, FIFO, device or directory); not read")
            }
            Refusal::WrongOwner { found, expected } => {
                write!(f, "belongs to uid {found}, not to uid {expected}; not read")
            }
            Refusal::TooLarge { limit } => write!(f, "is larger than {limit} bytes; not read"),
            Refusal::Untrusted { uid, mode } => write!(
                f,
                "belongs to uid {uid} with mode {mode:04o}: it must belong to root and be writable by root only, \
                 since everything below it is trusted"
            ),
            Refusal::Replaced => {
                f.write_str("was replaced by something else while tenantry was creating it; left alone")
            }
            Refusal::Exists => f.write_str("already exists"),
            Refusal::BadName => f.write_str("is not a plain file name"),
            Refusal::NoTempName => f.write_str("no free temporary name could be drawn beside it"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {reason}", path = path.display())]
    Refused { path: PathBuf, reason: Refusal },
    #[error("{context} {path}: {source}", path = path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn refused(path: impl Into<PathBuf>, reason: Refusal) -> Error {
        Error::Refused { path: path.into(), reason }
    }

    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: impl Into<io::Error>) -> Error {
        Error::Io { context, path: path.into(), source: source.into() }
    }

    /// The refusal, when it is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused { reason, .. } => Some(reason),
            Error::Io { .. } => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        match error {
            Error::Io { context, path, source } => {
                io::Error::new(source.kind(), format!("{context} {}: {source}", path.display()))
            }
            refused @ Error::Refused { .. } => io::Error::new(io::ErrorKind::PermissionDenied, refused.to_string()),
        }
    }
}
