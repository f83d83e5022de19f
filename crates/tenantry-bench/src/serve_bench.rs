//! `serve-bench [USERS] [IDLE_SECONDS]`: `tenantry serve` on the test
//! kube-apiserver with USERS users (default 1,000; idle window default
//! 600 s). Every figure is printed with how it was measured.
//!
//! - one-shot: `tenantry apply --yes` of USERS new users, wall time;
//! - onboarding: serve running, the roster file gains USERS other new users;
//!   time from the write to the end of the pass that applied them;
//! - idle: requests per minute over the idle window (counted by a proxy in
//!   front of the apiserver that records every request of the process),
//!   CPU seconds of the process over it (/proc/PID/stat), RSS (VmRSS, VmHWM);
//! - repair: a RoleBinding deleted by hand, time until it is back;
//! - safety net: a second serve with `interval = 20s`; requests and time of
//!   its first safety-net pass (no-op);
//! - two replicas with a Lease (15 s): requests per minute of each over 120 s.
//!
//! Needs the `tenantry` binary next to this one: build both with
//! `cargo build --release -p tenantry-cli --bin tenantry -p tenantry-bench --bin serve-bench`.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tenantry_testenv::kube_proxy::Proxy;

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("serve-bench: {message}");
    std::process::exit(1)
}

/// `users` namespace-owners, plus one power-user and one admin so the shared
/// ClusterRoles stay wanted (the apiserver is shared with other tests), on
/// a platform named `prefix`: its cluster-wide objects (admission policies)
/// are its own, and other tests' writes are not its drift.
fn roster(prefix: &str, users: usize) -> String {
    let mut text = format!(
        "platform: {{ name: {prefix} }}\nusers:\n  {prefix}p: {{ email: {prefix}p@bench.test, tier: power-user }}\n  {prefix}w: {{ email: {prefix}w@bench.test, tier: admin }}\n"
    );
    for i in 0..users {
        let key = format!("{prefix}{i:05}");
        text.push_str(&format!("  {key}: {{ email: {key}@bench.test, tier: namespace-owner, namespaces: [{key}] }}\n"));
    }
    text
}

fn tenantry_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(e));
    let binary = exe.with_file_name("tenantry");
    if !binary.is_file() {
        fail(format!("{} is missing: cargo build --release -p tenantry-cli --bin tenantry", binary.display()));
    }
    binary
}

fn write_kubeconfig(dir: &Path, name: &str, proxy: &Proxy) -> PathBuf {
    let path = dir.join(format!("{name}.kubeconfig"));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: p, cluster: {{server: \"{}\"}}}}]\nusers: [{{name: p, user: {{}}}}]\ncontexts: [{{name: p, context: {{cluster: p, user: p}}}}]\ncurrent-context: p\n",
        proxy.url
    );
    std::fs::write(&path, text).unwrap_or_else(|e| fail(e));
    path
}

fn write_config(dir: &Path, name: &str, kubeconfig: &Path, port: u16, serve: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "[local]\nenabled = false\nstate = \"{d}/{name}-state/state.db\"\n\n[kubernetes]\nkubeconfig = \"{k}\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\nconcurrency = 32\n{serve}",
        d = dir.display(),
        k = kubeconfig.display()
    );
    std::fs::write(&path, text).unwrap_or_else(|e| fail(e));
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(e))
}

struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(roster: &Path, config: &Path, port: u16, log: &Path) -> Serve {
        let file = std::fs::File::create(log).unwrap_or_else(|e| fail(e));
        let stderr = file.try_clone().unwrap_or_else(|e| fail(e));
        let child = Command::new(tenantry_binary())
            .args(["serve", "--log-format", "json", "--roster"])
            .arg(roster)
            .arg("--config")
            .arg(config)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| fail(e));
        Serve { child, port }
    }

    async fn status(&self, http: &reqwest::Client) -> Option<Value> {
        let response = http.get(format!("http://127.0.0.1:{}/api/status", self.port)).send().await.ok()?;
        response.json().await.ok()
    }

    /// (cpu seconds, rss KiB, peak rss KiB)
    fn usage(&self) -> (f64, u64, u64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of stat (11 and 12 after the command name).
        let cpu = (ticks(11) + ticks(12)) / 100.0;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (cpu, kib("VmRSS:"), kib("VmHWM:"))
    }

    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until the last pass converged and finished after `since` (status `finished_at`
/// is seconds-precise, so the pass count from metrics is used instead).
async fn wait_pass(serve: &Serve, http: &reqwest::Client, passes_before: f64, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if let Some(status) = serve.status(http).await
            && status["last_pass"]["converged"] == Value::Bool(true)
            && passes(serve, http).await > passes_before
        {
            return start.elapsed();
        }
        if start.elapsed() > within {
            fail(format!("no converged pass within {within:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn passes(serve: &Serve, http: &reqwest::Client) -> f64 {
    let Ok(response) = http.get(format!("http://127.0.0.1:{}/metrics", serve.port)).send().await else { return 0.0 };
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("tenantry_reconcile_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn per_minute(count: usize, window: Duration) -> f64 {
    count as f64 * 60.0 / window.as_secs_f64()
}

/// Requests by verb and resource (`WATCH rolebindings`, `LIST namespaces`,
/// `PATCH rolebindings`, …).
fn describe(seen: &[tenantry_testenv::kube_proxy::Seen]) -> String {
    let mut by: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for request in seen {
        let parts: Vec<&str> = request.path.split('/').filter(|p| !p.is_empty()).collect();
        // /api/v1[/namespaces/NS]/RESOURCE[/NAME] or /apis/GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME]
        let rest: &[&str] =
            if parts.first() == Some(&"api") { parts.get(2..).unwrap_or(&[]) } else { parts.get(3..).unwrap_or(&[]) };
        let rest = if rest.first() == Some(&"namespaces") && rest.len() > 2 { &rest[2..] } else { rest };
        let resource = rest.first().copied().unwrap_or("?");
        let verb = match (request.method.as_str(), request.watch, rest.len() > 1) {
            ("GET", true, _) => "WATCH",
            ("GET", false, true) => "GET",
            ("GET", false, false) => "LIST",
            (other, _, _) => other,
        };
        *by.entry(format!("{verb} {resource}")).or_default() += 1;
    }
    by.iter().map(|(k, n)| format!("{n}× {k}")).collect::<Vec<_>>().join(", ")
}

#[tokio::main]
async fn main() {
    tenantry_testenv::install_crypto_provider();
    let mut args = std::env::args().skip(1);
    let users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let idle = Duration::from_secs(args.next().and_then(|a| a.parse().ok()).unwrap_or(600));
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| fail(e));
    let admin = kube.client().await.unwrap_or_else(|e| fail(e));
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(e));
    let dir = dir.path();
    let id = format!("{:x}", std::process::id() % 4096);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_else(|e| fail(e));
    println!("serve-bench: {users} users, idle window {idle:?}, kube-apiserver {}", kube.url);

    // One-shot apply, as the CLI does it, through a counting proxy like serve's.
    let oneshot_proxy = Proxy::start(&kube, None).await.unwrap_or_else(|e| fail(e));
    let oneshot_kubeconfig = write_kubeconfig(dir, "oneshot", &oneshot_proxy);
    let oneshot_roster = dir.join("oneshot.yaml");
    std::fs::write(&oneshot_roster, roster(&format!("o{id}u"), users)).unwrap_or_else(|e| fail(e));
    let oneshot_config = dir.join("oneshot.toml");
    std::fs::write(
        &oneshot_config,
        format!(
            "[local]\nenabled = false\nstate = \"{}/oneshot-state/state.db\"\n\n[kubernetes]\nkubeconfig = \"{}\"\n",
            dir.display(),
            oneshot_kubeconfig.display()
        ),
    )
    .unwrap_or_else(|e| fail(e));
    let start = Instant::now();
    let status = Command::new(tenantry_binary())
        .args(["apply", "--yes", "--concurrency", "32", "--output", "json", "--roster"])
        .arg(&oneshot_roster)
        .arg("--config")
        .arg(&oneshot_config)
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| fail(e));
    let oneshot = start.elapsed();
    if !status.success() {
        fail("the one-shot apply failed");
    }
    println!(
        "one-shot: `tenantry apply --yes --concurrency 32` of {users} new users: {:.2} s, {} requests",
        oneshot.as_secs_f64(),
        oneshot_proxy.seen().len()
    );
    drop(oneshot_proxy);

    // serve, one replica, roster file.
    let proxy = Proxy::start(&kube, None).await.unwrap_or_else(|e| fail(e));
    let kubeconfig = write_kubeconfig(dir, "serve", &proxy);
    let roster_path = dir.join("roster.yaml");
    let prefix = format!("s{id}u");
    std::fs::write(&roster_path, roster(&prefix, 1)).unwrap_or_else(|e| fail(e));
    let port = free_port();
    let config =
        write_config(dir, "serve", &kubeconfig, port, &format!("interval = \"{}s\"\n", idle.as_secs() * 2 + 600));
    let serve = Serve::start(&roster_path, &config, port, &dir.join("serve.log"));
    wait_pass(&serve, &http, 0.0, Duration::from_secs(60)).await;
    let before = passes(&serve, &http).await;
    let start = Instant::now();
    std::fs::write(&roster_path, roster(&prefix, users + 1)).unwrap_or_else(|e| fail(e));
    wait_pass(&serve, &http, before, Duration::from_secs(600)).await;
    let onboarding = start.elapsed();
    println!(
        "onboarding: roster file gains {users} users while serve runs → pass converged after {:.2} s (one-shot: {:.2} s)",
        onboarding.as_secs_f64(),
        oneshot.as_secs_f64()
    );
    let (_, rss_after_onboarding, peak) = serve.usage();
    println!(
        "memory after onboarding: RSS {:.1} MiB, peak {:.1} MiB",
        rss_after_onboarding as f64 / 1024.0,
        peak as f64 / 1024.0
    );

    // Repair latency.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let user = format!("{prefix}00007");
    let bindings: kube::Api<k8s_openapi::api::rbac::v1::RoleBinding> = kube::Api::namespaced(admin.clone(), &user);
    let name = format!("namespace-owner-{user}");
    let start = Instant::now();
    bindings.delete(&name, &Default::default()).await.unwrap_or_else(|e| fail(e));
    loop {
        if bindings.get_opt(&name).await.ok().flatten().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            fail("the deleted RoleBinding did not come back");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("repair: deleted RoleBinding back after {:.3} s (watch → drift pass)", start.elapsed().as_secs_f64());

    // Idle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen_before = proxy.seen().len();
    let passes_before = passes(&serve, &http).await;
    let (cpu_before, _, _) = serve.usage();
    let start = Instant::now();
    tokio::time::sleep(idle).await;
    let window = start.elapsed();
    let idle_requests: Vec<_> = proxy.seen().into_iter().skip(seen_before).collect();
    let (cpu_after, rss, peak) = serve.usage();
    let idle_passes = passes(&serve, &http).await - passes_before;
    let watches = idle_requests.iter().filter(|r| r.watch).count();
    println!(
        "idle: {idle_passes} passes ran in the window (a watch relisting after a disconnect, or drift of this platform's objects); watch requests alone: {watches} = {:.2}/min",
        per_minute(watches, window)
    );
    println!(
        "idle (one replica, no lease, {} users, {:.0} s): {} requests = {:.2}/min [{}]; CPU {:.2} s = {:.3}% of a core; RSS {:.1} MiB (peak {:.1} MiB)",
        users + 1,
        window.as_secs_f64(),
        idle_requests.len(),
        per_minute(idle_requests.len(), window),
        describe(&idle_requests),
        cpu_after - cpu_before,
        (cpu_after - cpu_before) * 100.0 / window.as_secs_f64(),
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    drop(serve);

    // A safety-net pass with nothing to do.
    let safety_proxy = Proxy::start(&kube, None).await.unwrap_or_else(|e| fail(e));
    let kubeconfig = write_kubeconfig(dir, "safety", &safety_proxy);
    let port = free_port();
    let config = write_config(dir, "safety", &kubeconfig, port, "interval = \"20s\"\n");
    let safety = Serve::start(&roster_path, &config, port, &dir.join("safety.log"));
    wait_pass(&safety, &http, 0.0, Duration::from_secs(120)).await;
    let count_before = safety_proxy.seen().len();
    let mut status;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        status = safety.status(&http).await.unwrap_or_default();
        if status["last_pass"]["trigger"].to_string().contains("safety net") {
            break;
        }
    }
    let pass_requests: Vec<_> = safety_proxy.seen().into_iter().skip(count_before).collect();
    println!(
        "safety net (no-op, {} users): {:.3} s, {} requests since the previous pass ended [{}]",
        users + 1,
        status["last_pass"]["duration_seconds"].as_f64().unwrap_or(f64::NAN),
        pass_requests.len(),
        describe(&pass_requests)
    );
    drop(safety);

    // Two replicas with a Lease.
    let lease = format!("serve-bench-{id}");
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let proxy = Proxy::start(&kube, None).await.unwrap_or_else(|e| fail(e));
        let kubeconfig = write_kubeconfig(dir, &format!("lease-{name}"), &proxy);
        let port = free_port();
        let serve_section = format!(
            "interval = \"3600s\"\n[serve.leader_election]\nnamespace = \"default\"\nlease = \"{lease}\"\nidentity = \"{name}\"\n"
        );
        let config = write_config(dir, &format!("lease-{name}"), &kubeconfig, port, &serve_section);
        replicas.push((Serve::start(&roster_path, &config, port, &dir.join(format!("lease-{name}.log"))), proxy));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let window = Duration::from_secs(120);
    let marks: Vec<usize> = replicas.iter().map(|(_, p)| p.seen().len()).collect();
    tokio::time::sleep(window).await;
    for ((serve, proxy), mark) in replicas.iter().zip(marks) {
        let seen: Vec<_> = proxy.seen().into_iter().skip(mark).collect();
        let role = serve.status(&http).await.map(|s| s["role"].to_string()).unwrap_or_default();
        println!(
            "two replicas, lease 15 s: {role}: {} requests in {:.0} s = {:.2}/min [{}]",
            seen.len(),
            window.as_secs_f64(),
            per_minute(seen.len(), window),
            describe(&seen)
        );
    }
    for (mut serve, _) in replicas {
        serve.stop();
    }
    let _ = kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(admin.clone(), "default")
        .delete(&lease, &Default::default())
        .await;

    // Clean up the namespaces (best effort).
    let namespaces: Vec<String> =
        (0..users).map(|i| format!("o{id}u{i:05}")).chain((0..=users).map(|i| format!("{prefix}{i:05}"))).collect();
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(admin);
    for ns in namespaces {
        let _ = api.delete(&ns, &Default::default()).await;
    }
    // And the two platforms' cluster-wide objects.
    let _ = Command::new(kube.kubectl.clone().unwrap_or_else(|| PathBuf::from("kubectl")))
        .args([
            "delete",
            "validatingadmissionpolicybindings,validatingadmissionpolicies,clusterrolebindings,clusterroles",
            "--ignore-not-found",
            "-l",
            &format!("tenantry.dev/platform in (o{id}u,{prefix})"),
        ])
        .env("KUBECONFIG", &kube.kubeconfig)
        .status();
}
