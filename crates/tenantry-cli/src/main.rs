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
    let code = match commands::run(cli, &mut shell) {
        Ok(code) => code,
        Err(error) => commands::report_error(error, &global, &mut shell),
    };
    std::process::exit(code);
}
