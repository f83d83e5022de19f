//! Writing roster YAML line by line, remembering which origin position
//! produced each line, so roster diagnostics can point back at the origin.

use tenantry_model::{Diagnostic, Diagnostics, Span};

/// Where a generated line came from.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub source: String,
    pub span: Span,
    /// The line is a verbatim copy (the platform template): keep the diagnostic's column.
    pub verbatim: bool,
}

impl Origin {
    pub fn at(source: &str, span: Span) -> Option<Origin> {
        Some(Origin { source: source.to_string(), span, verbatim: false })
    }
}

#[derive(Debug, Default)]
pub(crate) struct Doc {
    lines: Vec<(String, Option<Origin>)>,
}

impl Doc {
    pub fn line(&mut self, text: impl Into<String>, origin: Option<Origin>) {
        self.lines.push((text.into(), origin));
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for (line, _) in &self.lines {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn origin(&self, line: u32) -> Option<&Origin> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        self.lines.get(index).and_then(|(_, origin)| origin.as_ref())
    }

    /// Move a position in the generated text to the origin that produced it.
    pub fn map_span(&self, span: Span) -> Span {
        match self.origin(span.line) {
            Some(origin) if origin.verbatim => Span::new(origin.span.line, span.column),
            Some(origin) if origin.span.is_known() => origin.span,
            _ => span,
        }
    }

    /// Rewrite diagnostics about the generated roster (named `generated`) to
    /// point at the origin lines, including positions quoted in messages.
    pub fn remap(&self, generated: &str, output_name: &str, diagnostics: Diagnostics) -> Diagnostics {
        let items = diagnostics
            .items
            .into_iter()
            .map(|d| {
                let (source, span) = self.locate(output_name, d.span);
                Diagnostic {
                    source,
                    span,
                    message: self.rewrite_positions(generated, output_name, &d.message),
                    help: d.help.map(|h| self.rewrite_positions(generated, output_name, &h)),
                    ..d
                }
            })
            .collect();
        Diagnostics { items }
    }

    fn locate(&self, output_name: &str, span: Span) -> (String, Span) {
        match self.origin(span.line) {
            Some(origin) if origin.span.is_known() => (origin.source.clone(), self.map_span(span)),
            _ => (output_name.to_string(), span),
        }
    }

    /// `…(GEN:12:5)…` → `…(origin-source:3:7)…`.
    fn rewrite_positions(&self, generated: &str, output_name: &str, text: &str) -> String {
        let marker = format!("{generated}:");
        let mut out = String::new();
        let mut rest = text;
        while let Some(found) = rest.find(&marker) {
            out.push_str(&rest[..found]);
            let after = &rest[found + marker.len()..];
            let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let line_len = digits(after);
            let parsed = after[..line_len].parse::<u32>().ok().and_then(|line| {
                let tail = after[line_len..].strip_prefix(':')?;
                let column_len = digits(tail);
                let column = tail[..column_len].parse::<u32>().ok()?;
                Some((Span::new(line, column), line_len + 1 + column_len))
            });
            match parsed {
                Some((span, consumed)) => {
                    let (source, mapped) = self.locate(output_name, span);
                    out.push_str(&format!("{source}:{}:{}", mapped.line, mapped.column));
                    rest = &after[consumed..];
                }
                None => {
                    out.push_str(&marker);
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A YAML scalar: plain when unambiguous, otherwise double-quoted (JSON string
/// syntax is valid YAML), so values never turn into numbers, booleans or nulls.
pub(crate) fn scalar(value: &str) -> String {
    let safe_chars = value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '/'));
    let starts_ok = value.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    let reserved = matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    );
    if safe_chars && starts_ok && !reserved {
        value.to_string()
    } else {
        serde_json::to_string(value).unwrap_or_else(|_| format!("\"{value}\""))
    }
}

/// `[a, b]` with each item quoted as needed.
pub(crate) fn flow_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|item| scalar(item)).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_never_change_type() {
        assert_eq!(scalar("alice"), "alice");
        assert_eq!(scalar("alice@example.org"), "alice@example.org");
        assert_eq!(scalar("2"), "\"2\"");
        assert_eq!(scalar("4Gi"), "\"4Gi\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("a b: c"), "\"a b: c\"");
        assert_eq!(scalar(""), "\"\"");
        assert_eq!(flow_list(&["a".into(), "1".into()]), "[a, \"1\"]");
    }

    #[test]
    fn positions_in_messages_are_rewritten() {
        let mut doc = Doc::default();
        doc.line("users:", None);
        doc.line("  a:", Origin::at("k8s.json", Span::new(4, 3)));
        let text = doc.rewrite_positions("GEN", "out.yaml", "used by `a` (GEN:2:3) and (GEN:1:1), GEN:x");
        assert_eq!(text, "used by `a` (k8s.json:4:3) and (out.yaml:1:1), GEN:x");
    }
}
