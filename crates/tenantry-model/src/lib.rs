//! The roster: the one file a platform admin edits.
//!
//! This crate owns the roster's format (SPEC §2.1), its parsing with source
//! positions, every validation rule of SPEC §2.2 and the published JSON
//! Schema. It performs no I/O: callers hand it bytes and a source name.

pub mod crd;
mod diagnostic;
pub mod names;
mod parse;
pub mod quantity;
mod raw;
pub mod reserved;
mod roster;
mod schema;
mod spanned_map;
mod urls;
mod validate;

pub use diagnostic::{Diagnostic, Diagnostics, Severity, did_you_mean};
pub use parse::{MAX_ROSTER_BYTES, parse_raw};
pub use raw::RawRoster;
pub use roster::*;
pub use schema::json_schema;
pub use validate::{ValidationContext, validate, validate_with_warnings};

/// A position in a roster source: 1-based line and column.
///
/// Line 0 means "no position known" (e.g. a default that came from nowhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Span {
    pub line: u32,
    pub column: u32,
}

impl Span {
    pub const UNKNOWN: Span = Span { line: 0, column: 0 };

    pub fn new(line: u32, column: u32) -> Self {
        Span { line, column }
    }

    pub fn is_known(&self) -> bool {
        self.line > 0
    }

    pub(crate) fn from_location(location: &serde_saphyr::Location) -> Self {
        let clamp = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
        Span { line: clamp(location.line()), column: clamp(location.column()) }
    }
}

/// Parse and validate a roster in one step.
///
/// `source` names the roster in diagnostics (a path or a `vault://` URL).
pub fn load(source: &str, bytes: &[u8], context: &ValidationContext) -> Result<Roster, Diagnostics> {
    let raw = parse_raw(source, bytes)?;
    validate(source, raw, context)
}
