//! All human rendering: plans grouped by user with coloured diffs, the
//! apply summary, diagnostics with source snippets, provenance. The JSON
//! forms are the app's (`tenantry_app::wire`); everything is written
//! through the [`crate::shell::Shell`].

mod apply;
mod destroy;
mod diagnostics;
mod markdown;
mod plan;
mod provenance;

pub use apply::apply_summary_human;
pub use destroy::{destroy_human, destroy_preview_human};
pub use diagnostics::diagnostics_human;
pub use markdown::plan_markdown;
pub use plan::{plan_human, totals_line};
pub use provenance::{explain_human, why_human};

use owo_colors::OwoColorize;
use tenantry_core::Action;

/// Whether to colour output.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn paint(&self, text: &str, action: Action) -> String {
        if !self.color {
            return text.to_string();
        }
        match action {
            Action::Create => text.green().to_string(),
            Action::Update | Action::Adopt => text.yellow().to_string(),
            Action::Cut | Action::Delete | Action::Conflict => text.red().to_string(),
            Action::Withheld | Action::Departing | Action::Kept => text.cyan().to_string(),
            Action::NoOp => text.dimmed().to_string(),
        }
    }

    pub fn bold(&self, text: &str) -> String {
        if self.color { text.bold().to_string() } else { text.to_string() }
    }

    pub fn dim(&self, text: &str) -> String {
        if self.color { text.dimmed().to_string() } else { text.to_string() }
    }
}
