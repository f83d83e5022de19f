//! `tenantry serve` on the real peers: the shipped RBAC is enough and no
//! more, two replicas with exactly one applying (write requests counted per
//! process by a proxy in front of the apiserver), takeover after kill -9
//! and SIGTERM, roster edits and drift repaired within seconds, an invalid
//! roster reported and never applied, a Vault outage isolated to Vault, and
//! `/metrics` read by a Prometheus text-format parser.
//!
//! Its own harness: the binary re-runs itself as a `serve` replica (with
//! `TENANTRY_SERVE_TEST_CHILD` set), so each replica is a real process to
//! kill. The cases run concurrently on the shared peers under unique names.
//! `cargo test -p tenantry-serve --test serve [NAME]` runs those whose name
//! contains NAME; the measurements (1,000 `Tenant`s) run only when named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cases;
mod support;
mod tenants;

use futures::FutureExt as _;
use std::sync::Arc;
use support::{CHILD_ENV, Cluster};

type Case = fn(Arc<Cluster>) -> futures::future::LocalBoxFuture<'static, ()>;

const CASES: &[(&str, Case)] = &[
    ("shipped_rbac_is_enough_and_no_more", |c| cases::shipped_rbac_is_enough_and_no_more(c).boxed_local()),
    ("kustomize_passes_a_server_side_dry_run", |c| cases::kustomize_passes_a_server_side_dry_run(c).boxed_local()),
    ("two_replicas_one_applies_and_the_other_takes_over", |c| {
        cases::two_replicas_one_applies_and_the_other_takes_over(c).boxed_local()
    }),
    ("a_vault_outage_stays_with_vault_and_a_broken_roster_is_never_applied", |c| {
        cases::a_vault_outage_stays_with_vault_and_a_broken_roster_is_never_applied(c).boxed_local()
    }),
    ("crds_install_and_refuse_invalid_tenants", |c| tenants::crds_install_and_refuse_invalid_tenants(c).boxed_local()),
    ("tenants_converge_report_ready_and_hold_back_conflicts", |c| {
        tenants::tenants_converge_report_ready_and_hold_back_conflicts(c).boxed_local()
    }),
];

/// Cases that load the shared apiserver enough to break the others' time
/// bounds: they run only when named (`cargo test -p tenantry-serve --test serve thousand`).
const MEASUREMENTS: &[(&str, Case)] = &[("a_thousand_objects_cost_one_list_per_kind_per_read", |c| {
    tenants::a_thousand_objects_cost_one_list_per_kind_per_read(c).boxed_local()
})];

/// Child mode: be one `serve` replica, exactly as `tenantry serve` runs it.
fn child() -> ! {
    tenantry_testenv::install_crypto_provider();
    tenantry_serve::init_logging(tenantry_serve::LogFormat::Text);
    let roster = std::env::var("TENANTRY_SERVE_TEST_ROSTER").unwrap();
    let config = std::env::var("TENANTRY_SERVE_TEST_CONFIG").unwrap();
    let mut session = tenantry_app::SessionOptions::new(roster);
    session.config = Some(config.into());
    session.command = "tenantry serve".to_string();
    let options = tenantry_serve::ServeOptions { session, listen: None };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match runtime.block_on(tenantry_serve::run(options, tenantry_serve::shutdown_signal())) {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            eprintln!("serve failed: {error} ({:?})", error.help());
            std::process::exit(1)
        }
    }
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
    }
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut selected: Vec<&(&str, Case)> =
        CASES.iter().filter(|(name, _)| filter.as_deref().is_none_or(|f| name.contains(f))).collect();
    selected.extend(MEASUREMENTS.iter().filter(|(name, _)| filter.as_deref().is_some_and(|f| name.contains(f))));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let results: Vec<(&str, Result<(), String>)> = runtime.block_on(async {
        let cluster = Arc::new(Cluster::setup().await);
        // Concurrently on this task (a session's apply future is not `Send`
        // for the compiler's higher-ranked check), each panic caught alone.
        let runs = selected.iter().map(|(name, case)| {
            let run = std::panic::AssertUnwindSafe(case(Arc::clone(&cluster))).catch_unwind();
            async move {
                let result = run.await.map_err(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                });
                (*name, result)
            }
        });
        let results = futures::future::join_all(runs).await;
        cluster.cleanup(&[], results.iter().any(|(_, r): &(&str, Result<(), String>)| r.is_err()));
        results
    });
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    for (name, result) in &results {
        match result {
            Ok(()) => println!("test {name} ... ok"),
            Err(message) => println!("test {name} ... FAILED\n  {message}"),
        }
    }
    println!(
        "\ntest result: {}. {} passed; {failed} failed",
        if failed == 0 { "ok" } else { "FAILED" },
        results.len() - failed
    );
    println!("{} passed, {failed} failed", results.len() - failed);
    std::process::exit(i32::from(failed > 0));
}
