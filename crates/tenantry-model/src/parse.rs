//! Bytes → [`RawRoster`], with limits that make hostile input harmless.

use crate::Span;
use crate::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use crate::raw::RawRoster;

/// Rosters larger than this are refused before parsing (a 10,000-user roster is about 3 MiB).
pub const MAX_ROSTER_BYTES: usize = 32 * 1024 * 1024;

/// Parse roster bytes. Every failure is a diagnostic with a position where one exists.
pub fn parse_raw(source: &str, bytes: &[u8]) -> Result<RawRoster, Diagnostics> {
    if bytes.len() > MAX_ROSTER_BYTES {
        return Err(Diagnostic::error(
            source,
            Span::UNKNOWN,
            "roster-too-large",
            format!("the roster is {} bytes; the limit is {MAX_ROSTER_BYTES} bytes", bytes.len()),
        )
        .with_help("split platform data out of the roster, or check that the right file is being read")
        .into());
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let (line, column) = line_column_at(bytes, error.valid_up_to());
            return Err(Diagnostic::error(
                source,
                Span::new(line, column),
                "not-utf8",
                "the roster is not UTF-8 text (is this a binary or encrypted file?)",
            )
            .with_help("a roster is a YAML text file; if it is git-crypt ciphertext, unlock the checkout first")
            .into());
        }
    };
    if text.contains('\0') {
        let offset = text.find('\0').unwrap_or(0);
        let (line, column) = line_column_at(bytes, offset);
        return Err(Diagnostic::error(
            source,
            Span::new(line, column),
            "not-text",
            "the roster contains a NUL byte; it is not a text file",
        )
        .with_help("point --roster at the YAML roster")
        .into());
    }
    // YAML reads a lone carriage return as a line break that editors do not
    // show: every position after it would point at the wrong line.
    if let Some(offset) = text
        .match_indices('\r')
        .map(|(at, _)| at)
        .find(|&at| !text.get(at + 1..).is_some_and(|rest| rest.starts_with('\n')))
    {
        let (line, column) = line_column_at(bytes, offset);
        return Err(Diagnostic::error(
            source,
            Span::new(line, column),
            "control-character",
            "a carriage return (\\r) that does not end a line; YAML would read it as a line break your editor does not show",
        )
        .with_help("save the roster with LF (or CRLF) line endings, e.g. `dos2unix roster.yaml`")
        .into());
    }
    if text.lines().all(|line| line.trim().is_empty() || line.trim_start().starts_with('#')) {
        return Err(Diagnostic::error(source, Span::UNKNOWN, "empty-roster", "the roster is empty")
            .with_help("a roster needs at least `users: {}`; see `tenantry schema` or examples/roster.yaml")
            .into());
    }
    serde_saphyr::from_str_with_options(text, options())
        .map_err(|error| Diagnostics::from(translate(source, text, &error)))
}

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 8_000_000,
            max_nodes: 4_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_depth: 32,
            max_documents: 1,
            max_total_scalar_bytes: MAX_ROSTER_BYTES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
    }
}

/// Turn a YAML/serde error into a diagnostic with a fix.
fn translate(source: &str, text: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let span = error.location().map(|l| Span::from_location(&l)).unwrap_or_default();
    let error = original(error);
    match error {
        serde_saphyr::Error::SerdeUnknownField { field, expected, .. } => {
            let help = match did_you_mean(field, expected.iter().copied()) {
                Some(candidate) => format!("did you mean `{candidate}`?"),
                None => format!("the fields allowed here are: {}", expected.join(", ")),
            };
            Diagnostic::error(source, span, "unknown-field", format!("unknown field `{field}`")).with_help(help)
        }
        serde_saphyr::Error::SerdeUnknownVariant { variant, expected, .. } => {
            let help = match did_you_mean(variant, expected.iter().copied()) {
                Some(candidate) => format!("did you mean `{candidate}`?"),
                None => format!("use one of: {}", expected.join(", ")),
            };
            let what = if expected.contains(&"namespace-owner") { "tier" } else { "value" };
            Diagnostic::error(source, span, "unknown-value", format!("unknown {what} `{variant}`")).with_help(help)
        }
        serde_saphyr::Error::SerdeMissingField { field, .. } => missing_field(source, span, field),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => {
            let message = match key {
                Some(key) => format!("duplicate key `{}`", key.escape_debug()),
                None => "duplicate key".to_string(),
            };
            Diagnostic::error(source, span, "duplicate-key", message)
                .with_help("each key may appear once in a mapping; merge the two entries")
        }
        serde_saphyr::Error::MultipleDocuments { .. }
        | serde_saphyr::Error::Budget { breach: serde_saphyr::budget::BudgetBreach::Documents { .. }, .. } => {
            Diagnostic::error(source, span, "multiple-documents", "the roster holds more than one YAML document")
                .with_help(
                    "a roster is one document: remove this `---` separator and merge what follows into one mapping",
                )
        }
        serde_saphyr::Error::Budget { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. }
        | serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => {
            Diagnostic::error(source, span, "yaml-too-expensive", message_of(error))
                .with_help("the roster uses too many aliases, nodes or nesting; write the values out plainly")
        }
        other => {
            // The formatter's text carries no position: the position is ours to print.
            let message = message_of(other);
            // Inside `Spanned` values serde's structured errors arrive as text.
            if let Some(field) = message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`')) {
                return missing_field(source, span, field);
            }
            if let Some((kind, name, expected)) = parse_unknown(&message) {
                let help = match did_you_mean(name, expected.iter().copied()) {
                    Some(candidate) => format!("did you mean `{candidate}`?"),
                    None => format!("use one of: {}", expected.join(", ")),
                };
                return if kind == "field" {
                    Diagnostic::error(source, span, "unknown-field", format!("unknown field `{name}`")).with_help(help)
                } else {
                    let what = if expected.contains(&"namespace-owner") { "tier" } else { "value" };
                    Diagnostic::error(source, span, "unknown-value", format!("unknown {what} `{name}`")).with_help(help)
                };
            }
            let (message, help) = if ["tabs disallowed", "tab cannot", "found a tab", "start with a tab"]
                .iter()
                .any(|phrase| message.contains(phrase))
            {
                (message, "indent with spaces; YAML does not allow tabs in indentation".to_string())
            } else if message == "expected mapping start" && span == first_content(text) {
                (
                    "the roster must be a mapping with `users:` (and optionally `platform:`), \
                     not a list or a single value"
                        .to_string(),
                    "start the file with `users:` and indent each user under it; see examples/roster.yaml".to_string(),
                )
            } else if message == "expected mapping start" {
                (
                    "expected a mapping of `key: value` entries here".to_string(),
                    "write indented `key: value` lines, or `{ key: value }`; `tenantry schema` describes the format"
                        .to_string(),
                )
            } else if message == "expected string scalar" || message.contains("expected scalar or mapping") {
                (
                    "expected a single value here, not a list or a mapping".to_string(),
                    "write one value, e.g. `tier: admin`; `tenantry schema` shows where lists go".to_string(),
                )
            } else if let Some(kind) = message.strip_suffix(", expected a span-aware newtype wrapper") {
                // A tagged value (`!!binary …`) the roster cannot hold; the wrapper's name is ours, not the user's.
                (
                    format!("a value of the wrong type is here ({})", kind.trim_start_matches("invalid type: ")),
                    "write a plain value without a `!!` tag; `tenantry schema` describes the format".to_string(),
                )
            } else if message == "null is not allowed here" {
                ("a value is missing here".to_string(), "write a value after the `:`, or remove the key".to_string())
            } else if message == "reference to unknown value" {
                (
                    "this alias refers to an anchor that is not defined before it".to_string(),
                    "define `&name` before using `*name`, or write the value out".to_string(),
                )
            } else if message.starts_with("invalid boolean") {
                ("expected `true` or `false` here".to_string(), "write `true` or `false`".to_string())
            } else if let Some(kind) = message.strip_prefix("invalid u").filter(|bits| bits.parse::<u8>().is_ok()) {
                (
                    format!(
                        "expected a whole number here (at most {})",
                        if kind == "16" { "65535" } else { "4294967295" }
                    ),
                    "write a non-negative whole number without quotes or units".to_string(),
                )
            } else if message == "expected sequence start" {
                (
                    "expected a list here".to_string(),
                    "write a list such as `[a, b]`, or one `- item` line per entry".to_string(),
                )
            } else {
                (message, "fix the YAML at this position; `tenantry schema` describes the format".to_string())
            };
            Diagnostic::error(source, span, "yaml-syntax", message).with_help(help)
        }
    }
}

fn missing_field(source: &str, span: Span, field: &str) -> Diagnostic {
    Diagnostic::error(source, span, "missing-field", format!("missing required field `{field}`"))
        .with_help(format!("add `{field}:` to this mapping"))
}

/// The error itself, without the snippet and alias wrappers around it.
fn original(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        match error {
            serde_saphyr::Error::WithSnippet { error: inner, .. }
            | serde_saphyr::Error::AliasError { error: inner, .. } => error = inner,
            other => return other,
        }
    }
}

/// The user-facing text of an error, without position and without control characters.
fn message_of(error: &serde_saphyr::Error) -> String {
    use serde_saphyr::MessageFormatter;
    let text = serde_saphyr::UserMessageFormatter.format_message(error);
    text.chars().flat_map(|c| if c.is_control() { c.escape_debug().collect() } else { vec![c] }).collect()
}

/// Where the document's first node starts: the position a "not a mapping" error at the top points to.
fn first_content(text: &str) -> Span {
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let column = line.chars().count() - trimmed.chars().count() + 1;
        return Span::new(u32::try_from(index + 1).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX));
    }
    Span::UNKNOWN
}

/// `unknown variant `x`, expected one of a, b` → ("variant", "x", [a, b]).
fn parse_unknown(message: &str) -> Option<(&str, &str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown ")?;
    let (kind, rest) = rest.split_once(" `")?;
    if kind != "variant" && kind != "field" {
        return None;
    }
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split_once("expected one of ")
        .map(|(_, list)| list.split(", ").map(|s| s.trim_matches('`')).collect())
        .or_else(|| rest.split_once("expected ").map(|(_, one)| vec![one.trim_matches('`')]))
        .unwrap_or_default();
    Some((kind, name, expected))
}

fn line_column_at(bytes: &[u8], offset: usize) -> (u32, u32) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (u32::try_from(line).unwrap_or(u32::MAX), u32::try_from(column).unwrap_or(u32::MAX))
}
