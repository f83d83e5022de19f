//! The `tenantry` binary: parse the command line, run, map errors to exit codes.

use clap::Parser;
use tenantry_cli::shell::Shell;
use tenantry_cli::{Cli, commands};

/// mimalloc gives freed memory back to the system within milliseconds;
/// glibc's allocator kept the peak of a 1,000-user onboarding (hundreds of
/// MiB, freed) resident in a long-running `tenantry serve` for good.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Every TLS connection (kube, Vault, DNS providers) uses aws-lc-rs; install it before any client exists.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let global = cli.global.clone();
    let mut shell = Shell::stdio(global.no_color);
    // `serve` sets up its own logging (JSON lines or text, default `info`).
    if !matches!(cli.command, tenantry_cli::cli::Command::Serve(_)) {
        init_logging(&mut shell);
    }
    let code = match commands::run(cli, &mut shell) {
        Ok(code) => code,
        Err(error) => commands::report_error(error, &global, &mut shell),
    };
    std::process::exit(code);
}

/// `TENANTRY_LOG=<filter>` (tracing's syntax: `debug`, `tenantry_vault=trace`,
/// …) logs what the targets do to stderr; unset, nothing is logged.
/// Secrets are never logged, at any level.
fn init_logging(shell: &mut Shell) {
    let Ok(filter) = std::env::var("TENANTRY_LOG") else { return };
    match tracing_subscriber::EnvFilter::try_new(&filter) {
        Ok(filter) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(shell.err_is_terminal())
                .with_writer(std::io::stderr)
                .try_init();
        }
        Err(error) => shell.eprintln(&format!(
            "warning: TENANTRY_LOG=`{filter}` is not a log filter ({error}); logging is off. Try TENANTRY_LOG=debug"
        )),
    }
}
