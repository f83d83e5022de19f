//! `tenantry serve`: start the controller (tenantry-serve) with the global
//! roster and config flags, log through `tracing`, stop on SIGTERM/SIGINT
//! (releasing the Lease) with exit code 0.

use crate::cli::{GlobalArgs, LogFormat, ServeArgs};
use crate::shell::Shell;
use crate::{CliError, Result, exit};
use tenantry_app::SessionOptions;

pub fn serve(global: &GlobalArgs, args: &ServeArgs, _shell: &mut Shell) -> Result<i32> {
    tenantry_serve::init_logging(match args.log_format {
        LogFormat::Text => tenantry_serve::LogFormat::Text,
        LogFormat::Json => tenantry_serve::LogFormat::Json,
    });
    let mut session = SessionOptions::new(global.roster.clone());
    session.platform_from = global.platform_from.clone();
    session.config = global.config.clone();
    session.command = "tenantry serve".to_string();
    session.actor = std::env::var("POD_NAME").ok().or_else(|| std::env::var("USER").ok());
    let options = tenantry_serve::ServeOptions { session, listen: args.listen };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)?;
    runtime.block_on(tenantry_serve::run(options, tenantry_serve::shutdown_signal())).map_err(|error| {
        let help = error.help().unwrap_or_default();
        match error {
            tenantry_serve::ServeError::App(app) => CliError::from(app),
            tenantry_serve::ServeError::Config { message, help } => CliError::Config { message, help },
            other => CliError::Run { message: other.to_string(), help },
        }
    })?;
    Ok(exit::OK)
}
