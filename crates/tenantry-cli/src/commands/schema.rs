//! `tenantry schema`, `tenantry crds` and `tenantry completions`.

use crate::shell::Shell;
use crate::{Result, exit};

pub fn schema(shell: &mut Shell) -> Result<i32> {
    shell.json(&tenantry_app::roster_schema());
    Ok(exit::OK)
}

/// The custom resource definitions, generated from the same types as the schema.
pub fn crds(shell: &mut Shell) -> Result<i32> {
    shell.print(&tenantry_app::custom_resource_definitions());
    Ok(exit::OK)
}

pub fn completions(kind: clap_complete::Shell, shell: &mut Shell) -> Result<i32> {
    let mut command = <crate::Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(kind, &mut command, "tenantry", &mut script);
    shell.print_bytes(&script);
    Ok(exit::OK)
}
