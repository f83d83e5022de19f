//! The `tenantry` binary: parse the command line, run, map errors to exit codes.

use clap::Parser;
use std::io::IsTerminal;
use tenantry_cli::{Cli, commands, exit, output::Style};

fn main() {
    // Every TLS connection (kube, Vault, DNS providers) uses aws-lc-rs; install it before any client exists.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let global = cli.global.clone();
    let style =
        Style { color: !global.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal() };
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(error) => commands::report_roster_error(&error, &global, style).unwrap_or_else(|| {
            if global.no_color || !style.color {
                miette::set_hook(Box::new(|_| {
                    Box::new(miette::MietteHandlerOpts::new().color(false).unicode(false).build())
                }))
                .ok();
            }
            eprintln!("{:?}", miette::Report::new(error));
            exit::ERROR
        }),
    };
    std::process::exit(code);
}
