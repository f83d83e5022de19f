//! `tenantry kubeconfig USER [--write PATH]`.

use crate::cli::GlobalArgs;
use crate::shell::Shell;
use crate::{Result, exit};
use std::path::Path;

pub fn kubeconfig(global: &GlobalArgs, user: &str, write: Option<&Path>, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let text = session.kubeconfig(user)?;
    match write {
        Some(path) => {
            tenantry_app::write_new_kubeconfig(path, &text)?;
            shell.eprintln(&format!("wrote {} (mode 0600)", path.display()));
        }
        None => shell.print(&text),
    }
    Ok(exit::OK)
}
