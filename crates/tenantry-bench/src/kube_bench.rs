//! `kube-bench [USERS...]`: tenantry against `kubectl apply --server-side`
//! on the same kube-apiserver, in one run.
//!
//! For each size: tenantry applies N users from empty, then reconciles with
//! nothing to do; kubectl applies the same manifests (rendered by tenantry
//! for a second, disjoint set of N users) from empty, then again. Requests
//! are counted from the apiserver's own `apiserver_request_total` metric.
//! Needs `KUBECONFIG` (from `testenv/up kube`) and `kubectl` (or `KUBECTL`).

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenantry_core::{Facts, Policy, Settings, derive};
use tenantry_engine::{ApplyOptions, Engine, FixedClock, State};

fn roster(prefix: &str, users: usize) -> tenantry_model::Roster {
    let mut yaml = String::from("users:\n");
    for i in 0..users {
        let key = format!("{prefix}{i:05}");
        let _ = writeln!(yaml, "  {key}: {{ email: {key}@bench.test, tier: namespace-owner, namespaces: [{key}] }}");
    }
    match tenantry_model::load("bench.yaml", yaml.as_bytes(), &Default::default()) {
        Ok(roster) => roster,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            std::process::exit(1);
        }
    }
}

/// Total requests the apiserver has served, from its metrics.
async fn request_total(client: &kube::Client) -> f64 {
    let request = match http::Request::get("/metrics").body(Vec::new()) {
        Ok(request) => request,
        Err(_) => return f64::NAN,
    };
    let text = client.request_text(request).await.unwrap_or_default();
    text.lines()
        .filter(|line| line.starts_with("apiserver_request_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn time_tenantry(engine: &Engine, roster: &tenantry_model::Roster) -> (Duration, usize) {
    let start = Instant::now();
    let prepared = match engine.prepare(roster, Policy::default()).await {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("prepare failed: {error}");
            std::process::exit(1);
        }
    };
    let changes = prepared.plan.changes.iter().filter(|c| c.action.is_change()).count();
    let options = ApplyOptions { concurrency: 32, command: "kube-bench".to_string(), ..ApplyOptions::default() };
    match engine.apply(roster, &prepared, &options, &|_| {}).await {
        Ok(report) if report.is_success() => {}
        Ok(report) => {
            eprintln!("apply failed: {:?}", report.failures.first());
            std::process::exit(1);
        }
        Err(error) => {
            eprintln!("apply failed: {error}");
            std::process::exit(1);
        }
    }
    (start.elapsed(), changes)
}

fn time_kubectl(kubectl: &str, dir: &std::path::Path) -> Duration {
    let start = Instant::now();
    let status = Command::new(kubectl)
        .args(["apply", "--server-side", "--field-manager=kubectl-bench", "-R", "-f"])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("kubectl apply failed on {}", dir.display());
        std::process::exit(1);
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![200, 1000] } else { sizes };
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string());
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            eprintln!("no cluster ({error}); start one with `testenv/up kube` and source target/testenv/env.sh");
            std::process::exit(1);
        }
    };
    let run =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() % 100_000).unwrap_or(0);
    let secs = |d: Duration| d.as_secs_f64();
    for users in sizes {
        let ours = roster(&format!("t{run}x"), users);
        let theirs = roster(&format!("k{run}x"), users);
        let engine = Engine::new(
            vec![Arc::new(tenantry_kubernetes::KubernetesTarget::from_client(client.clone()))],
            match State::in_memory() {
                Ok(state) => state,
                Err(error) => {
                    eprintln!("{error}");
                    std::process::exit(1);
                }
            },
            Arc::new(FixedClock("bench".into())),
            Settings::default(),
        );

        let before = request_total(&client).await;
        let (tenantry_create, created) = time_tenantry(&engine, &ours).await;
        let after_create = request_total(&client).await;
        let (tenantry_noop, noop_changes) = time_tenantry(&engine, &ours).await;
        let after_noop = request_total(&client).await;

        // kubectl gets the same manifests, as tenantry renders them.
        let dir = std::env::temp_dir().join(format!("kube-bench-{run}-{users}"));
        let desired = derive(&theirs, &Settings::default(), &Facts::default());
        for resource in desired.resources().iter().filter(|r| r.id.domain == tenantry_core::Domain::Kubernetes) {
            for (relative, bytes) in tenantry_local::render(&resource.id, &resource.owner, &resource.content).files {
                if relative.extension().is_some_and(|e| e == "yaml") {
                    let _ = tenantry_local::AtomicWriter::write(&dir.join(relative), &bytes);
                }
            }
        }
        let kubectl_before = request_total(&client).await;
        let kubectl_create = time_kubectl(&kubectl, &dir);
        let kubectl_after_create = request_total(&client).await;
        let kubectl_noop = time_kubectl(&kubectl, &dir);
        let kubectl_after_noop = request_total(&client).await;

        println!("{users} users ({created} objects; no-op run planned {noop_changes} changes)");
        println!(
            "  apply from empty: tenantry {:>7.2} s, {:>6.0} requests | kubectl --server-side {:>7.2} s, {:>6.0} requests | kubectl/tenantry = {:.1}×",
            secs(tenantry_create),
            after_create - before,
            secs(kubectl_create),
            kubectl_after_create - kubectl_before,
            secs(kubectl_create) / secs(tenantry_create)
        );
        println!(
            "  no-op reconcile:  tenantry {:>7.2} s, {:>6.0} requests | kubectl --server-side {:>7.2} s, {:>6.0} requests | kubectl/tenantry = {:.1}×",
            secs(tenantry_noop),
            after_noop - after_create,
            secs(kubectl_noop),
            kubectl_after_noop - kubectl_after_create,
            secs(kubectl_noop) / secs(tenantry_noop)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
