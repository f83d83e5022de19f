//! `tenantry-bench [USERS]`: times each stage of the pure pipeline on a
//! generated roster and reports peak memory (VmHWM), next to a baseline
//! measured in the same run: parsing the same YAML into an untyped value.
//!
//! Run in release: `cargo run --release -p tenantry-bench -- 10000`.

use std::fmt::Write as _;
use std::time::Instant;
use tenantry_core::{Desired, Facts, Inventory, Observed, ObservedByTarget, Policy, Routing, Settings, derive, diff};

/// The `tenantry` binary's allocator: the pipeline is measured as it runs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A roster of `users` users: 70% namespace-owners (1–3 namespaces, a
/// domain, some quota overrides), 20% power-users, 10% admins; every third
/// user has a workstation account.
fn generate(users: usize) -> String {
    let mut yaml = String::from(
        "platform:\n  name: bench\n  api_server: https://k8s.bench.test:6443\n  oidc: { issuer_url: https://auth.bench.test/, client_id: kubernetes }\n  domain: bench.test\n  dns: { cname_target: tunnel.bench.test, proxied: true }\n  tls: { source: { namespace: certs, name: wildcard } }\n  ci: { extra_admins: [ops-bot] }\n  forge: { repos: [ops/infra] }\n  workstation:\n    main_repo: { name: infra, url: https://forge.bench.test/ops/infra.git }\n    repo_base: https://forge.bench.test/ops/\nusers:\n",
    );
    for i in 0..users {
        let key = format!("user{i:05}");
        let _ = writeln!(yaml, "  {key}:\n    email: {key}@bench.test");
        match i % 10 {
            0 => yaml.push_str("    tier: admin\n"),
            1 | 2 => yaml.push_str("    tier: power-user\n"),
            _ => {
                let namespaces: Vec<String> = (0..1 + i % 3).map(|n| format!("{key}-ns{n}")).collect();
                let _ = writeln!(
                    yaml,
                    "    tier: namespace-owner\n    namespaces: [{}]\n    domains: [app.{key}]",
                    namespaces.join(", ")
                );
                if i % 4 == 0 {
                    yaml.push_str("    quota: { pods: \"40\", requests.cpu: \"4\" }\n");
                }
            }
        }
        if i % 3 == 0 {
            yaml.push_str("    workstation: { code_layout: workspace, repos: [tools] }\n");
        }
    }
    yaml
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn observed_from(desired: &Desired) -> ObservedByTarget {
    let mut observed = Observed::default();
    for resource in desired.resources() {
        observed.insert(resource.id.clone(), resource.content.clone(), None);
    }
    ObservedByTarget::from([("local".to_string(), observed)])
}

fn inventory_from(desired: &Desired) -> Inventory {
    let mut inventory = Inventory::default();
    for resource in desired.resources() {
        inventory.insert(resource.id.clone(), "local", resource.owner.clone());
    }
    inventory
}

fn main() {
    let users: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let yaml = generate(users);
    let mut routing = Routing::default();
    routing.add("local", &tenantry_core::Domain::ALL, true);
    let settings = Settings::default();

    let start = Instant::now();
    let baseline: Result<serde_json::Value, _> = serde_saphyr::from_str(&yaml);
    let baseline_time = start.elapsed();
    if baseline.is_err() {
        eprintln!("baseline parse failed");
        std::process::exit(1);
    }
    drop(baseline);

    let start = Instant::now();
    let roster = match tenantry_model::load("bench.yaml", yaml.as_bytes(), &Default::default()) {
        Ok(roster) => roster,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            std::process::exit(1);
        }
    };
    let parse_time = start.elapsed();

    let start = Instant::now();
    let desired = derive(&roster, &settings, &Facts::default());
    let derive_time = start.elapsed();

    // First apply: nothing exists yet.
    let start = Instant::now();
    let create_plan =
        diff(&roster, &desired, &ObservedByTarget::new(), &Inventory::default(), &routing, &Policy::default());
    let diff_create_time = start.elapsed();
    let start = Instant::now();
    let create_text = tenantry_cli::output::plan_human(
        &create_plan,
        &roster,
        &["local".to_string()],
        &tenantry_app::wire::Steps::new(),
        tenantry_cli::output::Style { color: false },
    );
    let render_create_time = start.elapsed();
    // SPEC §9's memory budget is the pipeline's: measured before the no-op
    // half of the bench builds its observed state and inventory.
    let pipeline_peak = peak_rss_mib();
    let create_changes = create_plan.changes.len();
    drop(create_plan);

    // A no-op reconcile: everything exists as desired.
    let observed = observed_from(&desired);
    let inventory = inventory_from(&desired);
    let start = Instant::now();
    let noop_plan = diff(&roster, &desired, &observed, &inventory, &routing, &Policy::default());
    let diff_noop_time = start.elapsed();
    let start = Instant::now();
    let noop_json =
        tenantry_app::wire::plan_json(&noop_plan, &roster.source, &["local".to_string()], &Default::default(), &[])
            .to_string();
    let render_noop_time = start.elapsed();

    let pipeline = parse_time + derive_time + diff_create_time + render_create_time;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!("tenantry-bench: {users} users, {} bytes of roster, {} resources", yaml.len(), desired.len());
    println!("  baseline: YAML → untyped value        {:>9.1} ms", ms(baseline_time));
    println!("  parse + validate                      {:>9.1} ms", ms(parse_time));
    println!("  derive                                {:>9.1} ms", ms(derive_time));
    println!("  diff (from empty: {create_changes} creates)  {:>9.1} ms", ms(diff_create_time));
    println!("  plan rendering, human ({} KiB)     {:>9.1} ms", create_text.len() / 1024, ms(render_create_time));
    println!(
        "  diff (no-op, {} unchanged)        {:>9.1} ms",
        noop_plan.unchanged.values().sum::<usize>(),
        ms(diff_noop_time)
    );
    println!("  plan rendering, JSON no-op ({} KiB) {:>9.1} ms", noop_json.len() / 1024, ms(render_noop_time));
    println!(
        "  parse + derive + diff + plan (create) {:>9.1} ms  = {:.1}× the baseline parse",
        ms(pipeline),
        pipeline.as_secs_f64() / baseline_time.as_secs_f64()
    );
    println!("  peak memory of the pipeline (VmHWM)   {:>9.1} MiB", pipeline_peak);
    println!("  peak memory with the no-op half       {:>9.1} MiB", peak_rss_mib());
    println!(
        "  budget (SPEC §9): < 1000 ms and < 300 MiB: {}",
        if ms(pipeline) < 1000.0 && pipeline_peak < 300.0 { "met" } else { "NOT met" }
    );
}
