//! `kube-bench [USERS...]`: tenantry against a raw concurrent client and
//! `kubectl apply --server-side` on the same kube-apiserver, in one run.
//!
//! For each size: tenantry applies N users from empty, reconciles with
//! nothing to do, then with one user changed; a raw client (kube-rs, the
//! same server-side-apply requests at the same concurrency, namespaces
//! first, no observe, no journal) and kubectl apply the same manifests
//! (rendered by tenantry for disjoint sets of N users) from empty, then
//! again. Requests are counted from the apiserver's own
//! `apiserver_request_total` metric; peak RSS of this process is printed at
//! the end. Needs `KUBECONFIG` (from `testenv/up kube`) and `kubectl` (or
//! `KUBECTL`; `--kubectl` adds it — minutes at 1,000 users). Delete the
//! bench namespaces afterwards
//! (`kubectl delete ns -l app.kubernetes.io/managed-by=tenantry` on a
//! throwaway cluster only).

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenantry_core::{Facts, Policy, Settings, derive};
use tenantry_engine::{ApplyOptions, Engine, FixedClock, State};

/// The concurrency of tenantry's apply and of the raw client.
const CONCURRENCY: usize = 32;

fn roster(prefix: &str, users: usize) -> tenantry_model::Roster {
    roster_with(prefix, users, None)
}

/// The bench roster; `changed` gets a quota of its own.
fn roster_with(prefix: &str, users: usize, changed: Option<usize>) -> tenantry_model::Roster {
    // A platform of its own: no other tenantry on the cluster takes these users for its own departed ones.
    let mut yaml = format!("platform: {{ name: {} }}\nusers:\n", prefix.to_ascii_lowercase());
    for i in 0..users {
        let key = format!("{prefix}{i:05}");
        let quota = if changed == Some(i) { ", quota: { pods: \"7\" }" } else { "" };
        let _ =
            writeln!(yaml, "  {key}: {{ email: {key}@bench.test, tier: namespace-owner, namespaces: [{key}]{quota} }}");
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
    let options =
        ApplyOptions { concurrency: CONCURRENCY, command: "kube-bench".to_string(), ..ApplyOptions::default() };
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

/// The Kubernetes manifests tenantry derives for `roster`, as kubectl and
/// the raw client get them (the local target's YAML files, parsed back).
fn manifests(roster: &tenantry_model::Roster, dir: &std::path::Path) -> Vec<serde_json::Value> {
    let desired = derive(roster, &Settings::default(), &Facts::default());
    let mut manifests = Vec::new();
    for resource in desired.resources().iter().filter(|r| r.id.domain == tenantry_core::Domain::Kubernetes) {
        for (relative, bytes) in tenantry_local::render(&resource.id, &resource.owner, &resource.content).files {
            if relative.extension().is_some_and(|e| e == "yaml") {
                let _ = tenantry_local::AtomicWriter::write(&dir.join(&relative), &bytes);
                match serde_saphyr::from_slice::<serde_json::Value>(&bytes) {
                    Ok(manifest) => manifests.push(manifest),
                    Err(error) => {
                        eprintln!("{}: {error}", relative.display());
                        std::process::exit(1);
                    }
                }
            }
        }
    }
    manifests
}

/// Server-side apply of every manifest with `CONCURRENCY` requests in
/// flight: cluster-scoped objects (the namespaces) first, then the rest.
async fn time_raw(client: &kube::Client, manifests: &[serde_json::Value]) -> Duration {
    use futures::StreamExt as _;
    let start = Instant::now();
    let params = kube::api::PatchParams::apply("raw-bench").force();
    let (cluster, namespaced): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) =
        manifests.iter().partition(|m| m["metadata"]["namespace"].is_null());
    for wave in [cluster, namespaced] {
        let results: Vec<Result<(), String>> = futures::stream::iter(wave)
            .map(|manifest| {
                let params = &params;
                async move {
                    let api_version = manifest["apiVersion"].as_str().unwrap_or_default();
                    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
                    let gvk = kube::core::GroupVersionKind::gvk(
                        group,
                        version,
                        manifest["kind"].as_str().unwrap_or_default(),
                    );
                    let resource = kube::core::ApiResource::from_gvk(&gvk);
                    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
                    let api: kube::Api<kube::core::DynamicObject> = match manifest["metadata"]["namespace"].as_str() {
                        Some(namespace) => kube::Api::namespaced_with(client.clone(), namespace, &resource),
                        None => kube::Api::all_with(client.clone(), &resource),
                    };
                    api.patch(name, params, &kube::api::Patch::Apply(manifest))
                        .await
                        .map(drop)
                        .map_err(|e| format!("{}/{name}: {e}", resource.plural))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
            eprintln!("raw apply failed: {error}");
            std::process::exit(1);
        }
    }
    start.elapsed()
}

/// CPU seconds (user + system) this process has used, from /proc (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces), then utime and stime.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let with_kubectl = std::env::args().any(|a| a == "--kubectl");
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
        let cpu_before = cpu_seconds();
        let (tenantry_create, created) = time_tenantry(&engine, &ours).await;
        let tenantry_cpu = cpu_seconds() - cpu_before;
        let after_create = request_total(&client).await;
        let (tenantry_noop, noop_changes) = time_tenantry(&engine, &ours).await;
        let after_noop = request_total(&client).await;

        // One user changed: what a roster edit costs at this size.
        let edited = roster_with(&format!("t{run}x"), users, Some(users / 2));
        let (tenantry_edit, edit_changes) = time_tenantry(&engine, &edited).await;
        let after_edit = request_total(&client).await;

        // The raw client and kubectl get the same manifests, as tenantry renders them.
        let raw_dir = std::env::temp_dir().join(format!("kube-bench-{run}-{users}-raw"));
        let raw_manifests = manifests(&roster(&format!("r{run}x"), users), &raw_dir);
        let raw_before = request_total(&client).await;
        let cpu_before = cpu_seconds();
        let raw_create = time_raw(&client, &raw_manifests).await;
        let raw_cpu = cpu_seconds() - cpu_before;
        let raw_after_create = request_total(&client).await;
        let raw_again = time_raw(&client, &raw_manifests).await;
        let raw_after_again = request_total(&client).await;
        let _ = std::fs::remove_dir_all(&raw_dir);

        let dir = std::env::temp_dir().join(format!("kube-bench-{run}-{users}"));
        let (mut kubectl_create, mut kubectl_noop) = (Duration::ZERO, Duration::ZERO);
        let (mut kubectl_before, mut kubectl_after_create, mut kubectl_after_noop) = (0.0, 0.0, 0.0);
        if with_kubectl {
            let _ = manifests(&theirs, &dir);
            kubectl_before = request_total(&client).await;
            kubectl_create = time_kubectl(&kubectl, &dir);
            kubectl_after_create = request_total(&client).await;
            kubectl_noop = time_kubectl(&kubectl, &dir);
            kubectl_after_noop = request_total(&client).await;
        }

        println!("{users} users ({created} objects; no-op run planned {noop_changes} changes)");
        println!(
            "  apply from empty: tenantry {:>7.2} s, {:>6.0} requests | raw client {:>7.2} s, {:>6.0} requests | tenantry/raw objects/s = {:.2}× | kubectl --server-side {:>7.2} s, {:>6.0} requests",
            secs(tenantry_create),
            after_create - before,
            secs(raw_create),
            raw_after_create - raw_before,
            secs(raw_create) / secs(tenantry_create),
            secs(kubectl_create),
            kubectl_after_create - kubectl_before,
        );
        println!(
            "  CPU of this process while applying from empty: tenantry {tenantry_cpu:.2} s | raw client {raw_cpu:.2} s"
        );
        println!(
            "  no-op:            tenantry {:>7.2} s, {:>6.0} requests | raw client (re-sends all) {:>7.2} s, {:>6.0} requests | kubectl --server-side {:>7.2} s, {:>6.0} requests",
            secs(tenantry_noop),
            after_noop - after_create,
            secs(raw_again),
            raw_after_again - raw_after_create,
            secs(kubectl_noop),
            kubectl_after_noop - kubectl_after_create,
        );
        println!(
            "  one user changed: tenantry {:>7.2} s, {:>6.0} requests ({edit_changes} changes)",
            secs(tenantry_edit),
            after_edit - after_noop,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("peak RSS of this process (tenantry's engine, the raw client, the manifests): {:.0} MiB", peak_rss_mib());
}
