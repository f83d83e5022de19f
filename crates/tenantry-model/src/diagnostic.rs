//! Diagnostics: what is wrong, where, and how to fix it.

use crate::Span;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a roster, pointing at the line that caused it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Where the roster came from (path or URL).
    pub source: String,
    pub span: Span,
    /// Stable machine-readable code, e.g. `namespace-claimed-twice`.
    pub code: &'static str,
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error. Roster text quoted in `message` is escaped here: a hostile
    /// value must not reach a terminal or CI log as control sequences.
    pub fn error(source: &str, span: Span, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            source: escape_forbidden(source),
            span,
            code,
            message: escape_forbidden(&message.into()),
            help: None,
        }
    }

    pub fn warning(source: &str, span: Span, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(source, span, code, message) }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(escape_forbidden(&help.into()));
        self
    }

    /// `file:line:column`, or just `file` when no position is known.
    pub fn location(&self) -> String {
        if self.span.is_known() {
            format!("{}:{}:{}", self.source, self.span.line, self.span.column)
        } else {
            self.source.clone()
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {level}[{}]: {}", self.location(), self.code, self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// `text` with every character roster text may not hold written as an escape (`\u{1b}`).
fn escape_forbidden(text: &str) -> String {
    if !text.chars().any(crate::names::is_forbidden_char) {
        return text.to_string();
    }
    text.chars()
        .map(|c| if crate::names::is_forbidden_char(c) { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// Every finding of one validation pass, errors and warnings, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error, serde::Serialize)]
#[error("{}", self.summary())]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub(crate) fn sort(&mut self) {
        self.items.sort_by(|a, b| (a.span, a.code, &a.message).cmp(&(b.span, b.code, &b.message)));
        self.items.dedup();
    }

    fn summary(&self) -> String {
        let errors = self.errors().count();
        let mut out = format!("the roster has {errors} error{}", if errors == 1 { "" } else { "s" });
        for diagnostic in &self.items {
            out.push('\n');
            out.push_str(&diagnostic.to_string());
        }
        out
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(diagnostic: Diagnostic) -> Self {
        Diagnostics { items: vec![diagnostic] }
    }
}

/// The closest candidate to `input`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Close by edit distance (transpositions count once) or by shared prefix.
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| {
            (strsim::damerau_levenshtein(input, candidate), strsim::jaro_winkler(input, candidate), candidate)
        })
        .filter(|(distance, similarity, _)| *distance <= limit || *similarity > 0.85)
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, candidate)| candidate)
}
