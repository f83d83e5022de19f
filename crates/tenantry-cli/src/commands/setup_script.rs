//! `tenantry setup-script --os linux|mac`.

use crate::cli::{GlobalArgs, SetupOs};
use crate::shell::Shell;
use crate::{Result, exit};

pub fn setup_script(global: &GlobalArgs, os: SetupOs, shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    shell.print(&session.setup_script(os.into())?);
    Ok(exit::OK)
}
