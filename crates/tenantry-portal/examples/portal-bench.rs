//! The portal's benchmark: server time of the tenant page and the admin
//! table with a 10,000-user roster, p99 over 1,000 requests from `wrk` on
//! loopback, with a valid session cookie.
//!
//! It generates the roster, builds the model once (a plan through the
//! local target), serves the portal on 127.0.0.1 with live quota usage read
//! from the test apiserver (so each tenant page makes its real list calls),
//! runs wrk against each page, prints the figures and stops. The tenant
//! page is measured twice: with its two live ResourceQuota lists (the
//! shared test apiserver's latency included) and with quota usage from
//! memory (the portal's own time: lookup, session, rendering five bars per
//! namespace).
//!
//! ```sh
//! . target/testenv/env.sh   # or TENANTRY_TESTENV_DIR=…/target/testenv
//! cargo run --release -p tenantry-portal --example portal-bench [-- USERS]
//! ```

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tenantry_app::{Session, SessionOptions};
use tenantry_portal::live::{NamespaceUsage, QuotaUsage, UsageItem};
use tenantry_portal::{
    KubeQuotas, Portal, PortalSettings, QuotaSource, ReconcileSource, model_from_session, router, system_clock,
};

const REQUESTS: usize = 1000;

/// Stops wrk's (single) thread after REQUESTS responses (wrk itself still
/// waits out its `-d`, a bound for a slow server); prints the latency
/// percentiles wrk measured (microseconds) and any non-2xx answer.
const SCRIPT: &str = r#"
local count = 0
response = function(status, headers, body)
  count = count + 1
  if count >= REQUESTS then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d non2xx=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    summary.requests, summary.errors.status, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"#;

fn roster(users: usize) -> String {
    let mut text = String::from(
        "platform:\n  name: bench\n  api_server: https://127.0.0.1:26443\n  oidc: { issuer_url: https://127.0.0.1:28443/realms/tenantry, client_id: kubernetes }\n  domain: bench.test\n  dns: { cname_target: tunnel.bench.test }\nusers:\n",
    );
    for i in 0..users {
        let team = i % 50;
        match i % 100 {
            0 => text.push_str(&format!("  admin{i:05}: {{ email: admin{i:05}@bench.test, tier: admin }}\n")),
            1..=9 => text.push_str(&format!(
                "  power{i:05}: {{ email: power{i:05}@bench.test, tier: power-user, workstation: {{ code_layout: single }} }}\n"
            )),
            _ => text.push_str(&format!(
                "  user{i:05}:\n    email: user{i:05}@bench.test\n    tier: namespace-owner\n    namespaces: [bench-u{i:05}, bench-u{i:05}-team-{team}]\n    domains: [app-{i:05}]\n    quota: {{ pods: \"30\" }}\n    workstation: {{ code_layout: single }}\n"
            )),
        }
    }
    text
}

/// Quota usage from memory, as the apiserver would report it.
struct InMemory;

#[async_trait::async_trait]
impl QuotaSource for InMemory {
    async fn usage(&self, namespaces: &[String]) -> Result<Vec<NamespaceUsage>, String> {
        let items = [("pods", "3", "30"), ("configmaps", "4", "50"), ("requests.cpu", "500m", "2")]
            .into_iter()
            .chain([("requests.memory", "1Gi", "4Gi"), ("limits.memory", "2Gi", "8Gi")])
            .map(|(resource, used, hard)| UsageItem::new(resource.into(), used.into(), hard.into()))
            .collect::<Vec<_>>();
        Ok(namespaces
            .iter()
            .map(|namespace| NamespaceUsage {
                namespace: namespace.clone(),
                quotas: vec![QuotaUsage { name: "user-quota".into(), items: items.clone() }],
            })
            .collect())
    }
}

fn wrk(url: &str, cookie: &str, script: &std::path::Path) -> Result<String, String> {
    let output = std::process::Command::new("wrk")
        .args(["-t1", "-c4", "-d30s", "--timeout", "10s", "-s"])
        .arg(script)
        .args(["-H", &format!("Cookie: {cookie}"), url])
        .output()
        .map_err(|e| format!("cannot run wrk ({e}); apt-get install wrk"))?;
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    text.lines()
        .find(|l| l.starts_with("RESULT"))
        .map(str::to_string)
        .ok_or_else(|| format!("wrk said: {text}{}", String::from_utf8_lossy(&output.stderr)))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    tenantry_testenv::install_crypto_provider();
    let users: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("roster.yaml"), roster(users)).map_err(|e| e.to_string())?;
    let secret = dir.path().join("client.secret");
    std::fs::write(&secret, "not-used-by-the-benchmark").map_err(|e| e.to_string())?;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[local]\nout_dir = \"out\"\nstate = \"state.db\"\n\n[portal]\npublic_url = \"http://{addr}/\"\nclient_id = \"bench\"\nclient_secret_file = \"client.secret\"\n"
        ),
    )
    .map_err(|e| e.to_string())?;

    let mut options = SessionOptions::new(dir.path().join("roster.yaml").display().to_string());
    options.config = Some(dir.path().join("tenantry.toml"));
    let started = Instant::now();
    let session = Session::open(options).map_err(|e| e.to_string())?;
    let settings = PortalSettings::from_config(session.config()).map_err(|e| e.to_string())?.ok_or("no [portal]")?;
    let model =
        model_from_session(&session, ReconcileSource::Plan, SystemTime::now()).await.map_err(|e| e.to_string())?;
    drop(session);
    println!(
        "model of {} users built in {:.1} s (roster, derivation, a plan through the local target)",
        model.len(),
        started.elapsed().as_secs_f64()
    );

    let kube = tenantry_testenv::kube().map_err(|e| e.to_string())?;
    let client = kube::Client::try_from(kube.config().await.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let quotas = Arc::new(KubeQuotas::new(client, Duration::from_secs(3)));
    let offline =
        Portal::new(settings.clone(), model.clone(), Arc::new(InMemory), system_clock()).map_err(|e| e.to_string())?;
    let portal = Portal::new(settings, model, quotas, system_clock()).map_err(|e| e.to_string())?;
    let tenant = "user05042";
    let admin = "admin05000";
    let tenant_cookie = portal.session_cookie(tenant).ok_or("no tenant")?;
    let admin_cookie = portal.session_cookie(admin).ok_or("no admin")?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(portal)).await;
    });
    let offline_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let offline_addr = offline_listener.local_addr().map_err(|e| e.to_string())?;
    let offline_cookie = offline.session_cookie(tenant).ok_or("no tenant")?;
    tokio::spawn(async move {
        let _ = axum::serve(offline_listener, router(offline)).await;
    });

    let script = dir.path().join("count.lua");
    let mut file = std::fs::File::create(&script).map_err(|e| e.to_string())?;
    file.write_all(SCRIPT.replace("REQUESTS", &REQUESTS.to_string()).as_bytes()).map_err(|e| e.to_string())?;
    let pages = [
        (
            "tenant page (2 namespaces, live quota from the apiserver)",
            format!("http://{addr}/users/{tenant}"),
            tenant_cookie.clone(),
        ),
        (
            "tenant page (2 namespaces, quota usage from memory: the portal's own time)",
            format!("http://{offline_addr}/users/{tenant}"),
            offline_cookie,
        ),
        ("admin table, page 1", format!("http://{addr}/admin"), admin_cookie.clone()),
        ("admin table, search + page 3", format!("http://{addr}/admin?q=team-7&page=3"), admin_cookie.clone()),
        ("admin explain page", format!("http://{addr}/admin/users/{tenant}"), admin_cookie.clone()),
    ];
    let wrk_run = tokio::task::spawn_blocking(move || {
        for (name, url, cookie) in pages {
            match wrk(&url, &cookie, &script) {
                Ok(result) => {
                    println!("{name}: {result}\n  wrk -t1 -c4 -d30s --timeout 10s -s count.lua -H 'Cookie: …' {url}")
                }
                Err(error) => println!("{name}: {error}"),
            }
        }
    });
    wrk_run.await.map_err(|e| e.to_string())?;
    Ok(())
}
