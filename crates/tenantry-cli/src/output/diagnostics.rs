//! Roster diagnostics with a source snippet and a caret, rustc-style.

use super::Style;
use std::fmt::Write as _;
use tenantry_core::Action;
use tenantry_model::{Diagnostics, Severity};

/// Roster diagnostics: with a source snippet for humans, as a list for JSON.
pub fn diagnostics_human(diagnostics: &Diagnostics, source_text: Option<&str>, style: Style) -> String {
    let mut out = String::new();
    for diagnostic in &diagnostics.items {
        let level = match diagnostic.severity {
            Severity::Error => style.paint("error", Action::Conflict),
            Severity::Warning => style.paint("warning", Action::Update),
        };
        let _ = writeln!(out, "{level}[{}]: {}", diagnostic.code, style.bold(&diagnostic.message));
        let _ = writeln!(out, "  --> {}", diagnostic.location());
        if let Some(text) = source_text
            && diagnostic.span.is_known()
            && let Some(line) = text.lines().nth(diagnostic.span.line as usize - 1)
        {
            let number = diagnostic.span.line.to_string();
            let pad = " ".repeat(number.len());
            let caret_at: String = line
                .chars()
                .take(diagnostic.span.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ =
                writeln!(out, "{pad} |\n{number} | {line}\n{pad} | {caret_at}{}", style.paint("^", Action::Conflict));
        }
        if let Some(help) = &diagnostic.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out.push('\n');
    }
    let errors = diagnostics.errors().count();
    let warnings = diagnostics.warnings().count();
    let _ = writeln!(
        out,
        "{errors} error{}, {warnings} warning{}",
        if errors == 1 { "" } else { "s" },
        if warnings == 1 { "" } else { "s" }
    );
    out
}
