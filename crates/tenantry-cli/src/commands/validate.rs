//! `tenantry validate`: the roster checked; warnings of a valid one shown.

use crate::cli::{GlobalArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};

pub fn validate(global: &GlobalArgs, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    match global.output {
        OutputFormat::Json => shell.json(&tenantry_app::wire::diagnostics_json(session.warnings())),
        OutputFormat::Human | OutputFormat::Markdown => {
            if !session.warnings().items.is_empty() {
                let style = shell.err_style();
                shell.eprint(&crate::output::diagnostics_human(session.warnings(), Some(session.roster_text()), style));
            }
            shell.println(&format!("{}: valid, {} users", global.roster, session.roster().users.len()));
        }
    }
    Ok(exit::OK)
}
