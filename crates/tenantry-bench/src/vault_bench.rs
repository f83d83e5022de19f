//! `vault-bench [USERS...]`: what keeping N users' Vault identities costs on
//! a real OpenBao — apply from empty, then a no-op plan — in seconds and
//! requests, on a private `bao server -dev` (the binary `testenv/up`
//! installs, `BAO_BIN` in env.sh), so the shared one is never loaded.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;
use tenantry_core::{Policy, Settings};
use tenantry_engine::{ApplyOptions, Engine, FixedClock, State};
use tenantry_testenv::private_vault::PrivateVault;
use tenantry_vault::{VaultConfig, VaultTarget};

fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("vault-bench: {what}");
    std::process::exit(1);
}

fn roster(users: usize) -> tenantry_model::Roster {
    let mut yaml = String::from("platform: { name: vbench }\nusers:\n");
    for i in 0..users {
        let key = format!("vb{i:05}");
        let _ = writeln!(yaml, "  {key}: {{ email: {key}@bench.test, tier: namespace-owner, namespaces: [{key}] }}");
    }
    tenantry_model::load("bench.yaml", yaml.as_bytes(), &Default::default()).unwrap_or_else(|d| fail(d))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1000, 10_000] } else { sizes };
    for users in sizes {
        // A fresh server per size: the no-op reads only this size's objects.
        let vault = PrivateVault::start().await.unwrap_or_else(|e| fail(e));
        vault.mount_defaults().await.unwrap_or_else(|e| fail(e));
        let config = VaultConfig::new(vault.addr.clone());
        let token =
            config.token_from(|name| (name == "VAULT_TOKEN").then(|| vault.token.clone())).unwrap_or_else(|e| fail(e));
        let target = VaultTarget::connect_with_token(&config, token).await.unwrap_or_else(|e| fail(e));
        let target = Arc::new(target.with_platform("vbench"));
        let state = State::in_memory().unwrap_or_else(|e| fail(e));
        let engine = Engine::new(
            vec![Arc::clone(&target) as Arc<dyn tenantry_core::Target>],
            state,
            Arc::new(FixedClock("bench".into())),
            config.settings(Settings::default()),
        );
        let roster = roster(users);

        let before = target.request_counts();
        let start = Instant::now();
        let prepared = engine.prepare(&roster, Policy::default()).await.unwrap_or_else(|e| fail(e));
        let changes = prepared.plan.changes.iter().filter(|c| c.action.is_change()).count();
        let options = ApplyOptions { concurrency: 32, command: "vault-bench".into(), ..ApplyOptions::default() };
        let report = engine.apply(&roster, &prepared, &options, &|_| {}).await.unwrap_or_else(|e| fail(e));
        if !report.is_success() {
            fail(format!("apply failed: {:?}", report.failures.first()));
        }
        let applied = start.elapsed();
        let after_apply = target.request_counts();

        let start = Instant::now();
        let noop = engine.prepare(&roster, Policy::default()).await.unwrap_or_else(|e| fail(e));
        let noop_time = start.elapsed();
        let after_noop = target.request_counts();
        let left = noop.plan.changes.iter().filter(|c| c.action.is_change()).count();
        println!("{users} users on OpenBao ({changes} changes from empty; the no-op plan found {left})");
        println!(
            "  apply from empty: {:>7.2} s, {:>6} requests ({} writes)",
            applied.as_secs_f64(),
            after_apply.requests - before.requests,
            after_apply.writes - before.writes
        );
        println!(
            "  no-op plan:       {:>7.2} s, {:>6} requests ({:.2} per user), {} writes",
            noop_time.as_secs_f64(),
            after_noop.requests - after_apply.requests,
            (after_noop.requests - after_apply.requests) as f64 / users as f64,
            after_noop.writes - after_apply.writes
        );
    }
}
