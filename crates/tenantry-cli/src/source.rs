//! Where the roster comes from: a file today, `vault://` with the Vault target.

use crate::{CliError, Result};
use tenantry_model::{Roster, ValidationContext};

/// Read and validate the roster named on the command line.
pub fn load_roster(source: &str, context: &ValidationContext) -> Result<(Roster, String)> {
    if source.starts_with("vault://") {
        return Err(CliError::Usage {
            message: format!(
                "cannot read `{source}`: reading the roster from Vault needs the vault target, which this build does not include yet"
            ),
            help: "export the roster to a file (`vault kv get -field=k8s_users …`) and pass --roster FILE".to_string(),
        });
    }
    let bytes = std::fs::read(source)
        .map_err(|source_error| CliError::Read { path: source.to_string(), source: source_error })?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let roster = tenantry_model::load(source, &bytes, context).map_err(|d| CliError::Roster(d, Some(text.clone())))?;
    Ok((roster, text))
}
