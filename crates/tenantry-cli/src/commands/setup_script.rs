//! `tenantry setup-script --os linux|mac [--with terraform]`.

use crate::cli::{GlobalArgs, SetupOs, SetupTool};
use crate::shell::Shell;
use crate::{Result, exit};

pub fn setup_script(global: &GlobalArgs, os: SetupOs, with: &[SetupTool], shell: &mut Shell) -> Result<i32> {
    let session = super::session(global)?;
    let terraform = with.contains(&SetupTool::Terraform);
    shell.print(&session.setup_script(os.into(), terraform, &heredoc_nonce())?);
    Ok(exit::OK)
}

/// 16 hex digits from the standard library's randomly keyed hasher: the
/// script's heredoc delimiter is then not guessable in advance.
fn heredoc_nonce() -> String {
    use std::hash::BuildHasher as _;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:016x}", std::hash::RandomState::new().hash_one((now.as_nanos(), std::process::id())))
}
