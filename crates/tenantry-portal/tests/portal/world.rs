//! What every case shares: Keycloak users of this run, a roster applied to
//! the test apiserver and BIND (so quota usage and DNS are real), the
//! portal serving it on 127.0.0.1 with a clock the cases move, and
//! chromedriver. Names carry a per-run suffix: other tests share the peers.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tenantry_app::{ApplyRequest, PlanRequest, Session, SessionOptions};
use tenantry_portal::{KubeQuotas, Portal, PortalSettings, ReconcileSource, model_from_session};

/// A person of this run: roster key, Keycloak login, email, password.
#[derive(Debug, Clone)]
pub struct Person {
    /// The roster key: `alice<run>` (cluster-scoped names carry it, and other tests share the cluster).
    pub key: String,
    pub login: String,
    pub email: String,
    pub password: String,
}

pub struct World {
    pub run: String,
    pub dir: tempfile::TempDir,
    pub keycloak: tenantry_testenv::Keycloak,
    pub alice: Person,
    pub bob: Person,
    pub wizard: Person,
    pub stranger: Person,
    pub base: String,
    /// Seconds added to the real time: the portal's clock.
    pub skew: Arc<AtomicU64>,
    pub session: Session,
    pub kube: tenantry_testenv::Kube,
    pub kubectl: PathBuf,
    pub screenshots: PathBuf,
    pub driver: std::process::Child,
    pub driver_url: String,
    pub bind: tenantry_testenv::Bind,
}

pub fn person(key: &str, run: &str) -> Person {
    Person {
        key: format!("{key}{run}"),
        login: format!("portal-{run}-{key}"),
        email: format!("{key}.{run}@portal.test"),
        password: format!("pw-{}", tenantry_portal::session::random_hex(8)),
    }
}

impl World {
    pub fn ns(&self, name: &str) -> String {
        format!("p{}-{name}", self.run)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    pub fn domain(&self, name: &str) -> String {
        format!("{name}-{}.{}", self.run, self.bind.zone)
    }
}

fn roster(run: &str, people: &[&Person], first: bool, kube_url: &str, issuer: &str, zone: &str) -> String {
    let [alice, bob, wizard, dave] = people else { return String::new() };
    let alice_namespaces = if first {
        format!("[p{run}-alice, p{run}-alice-prod, p{run}-alice-old]")
    } else {
        format!("[p{run}-alice, p{run}-alice-prod]")
    };
    let bob_domains = if first { format!("[blog-{run}]") } else { format!("[blog-{run}, notes-{run}]") };
    let dave = if first {
        format!("  {}: {{ email: {}, tier: namespace-owner, namespaces: [p{run}-dave] }}\n", dave.key, dave.email)
    } else {
        String::new()
    };
    format!(
        "platform:
  name: portal-{run}
  api_server: {kube_url}
  oidc: {{ issuer_url: {issuer}, client_id: kubernetes }}
  domain: {zone}
  isolation: none
  dns: {{ cname_target: tunnel.{zone} }}
users:
  {alice_key}:
    email: {alice_email}
    tier: namespace-owner
    namespaces: {alice_namespaces}
    domains: [budget-{run}]
    quota: {{ configmaps: \"10\", pods: \"20\" }}
    workstation: {{ os_user: {alice_key}, idp_user: {alice_key} }}
  {bob_key}:
    email: {bob_email}
    tier: namespace-owner
    namespaces: [p{run}-bob]
    domains: {bob_domains}
  {wizard_key}: {{ email: {wizard_email}, tier: admin, workstation: {{ os_user: {wizard_key} }} }}
  emo{run}: {{ email: emo.{run}@portal.test, tier: power-user }}
  frank{run}: {{ email: frank.{run}@portal.test, tier: power-user }}
{dave}",
        alice_key = alice.key,
        alice_email = alice.email,
        bob_key = bob.key,
        bob_email = bob.email,
        wizard_key = wizard.key,
        wizard_email = wizard.email,
    )
}

/// Something in alice's namespace for the quota to count: two config maps
/// and a pod (no node runs it; a pending pod counts).
async fn workload(client: &kube::Client, namespace: &str) -> Result<(), String> {
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    let post = kube::api::PostParams::default();
    let maps: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), namespace);
    for name in ["app-settings", "feature-flags"] {
        let map: ConfigMap =
            serde_json::from_value(serde_json::json!({ "metadata": { "name": name }, "data": { "k": "v" } }))
                .map_err(|e| e.to_string())?;
        maps.create(&post, &map).await.map_err(|e| format!("config map {name}: {e}"))?;
    }
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "containers": [ { "name": "web", "image": "registry.invalid/web:1",
            "resources": { "requests": { "cpu": "500m", "memory": "1Gi" }, "limits": { "cpu": "1", "memory": "1Gi" } } } ] }
    }))
    .map_err(|e| e.to_string())?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    // The quota admits pods once its controller has computed the quota's status.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match pods.create(&post, &pod).await {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() > deadline => return Err(format!("pod in {namespace}: {e}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Debian's Chromium and its WebDriver server.
pub const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const BROWSER_HOW: &str = "`testenv/up keycloak` installs it, or: apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core";

fn private_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| e.to_string())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn open(dir: &Path) -> Result<Session, String> {
    let mut options = SessionOptions::new(dir.join("roster.yaml").display().to_string());
    options.config = Some(dir.join("tenantry.toml"));
    options.command = "portal test".to_string();
    Session::open(options).map_err(|e| format!("{e} ({:?})", e.help()))
}

impl World {
    pub async fn set_up() -> Result<World, String> {
        // The browser first: nothing is created on the shared peers for a run that cannot start.
        for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            if !Path::new(binary).is_file() {
                return Err(format!("{binary} is missing (Debian package `{package}`); {BROWSER_HOW}"));
            }
        }
        let keycloak = crate::keycloak::find().await?;
        let kube = tenantry_testenv::kube().map_err(|e| e.to_string())?;
        let bind = tenantry_testenv::bind().map_err(|e| e.to_string())?;
        let kubectl = kube
            .kubectl
            .clone()
            .ok_or("KUBECTL is not set in the test environment; start it with `testenv/up kube`")?;
        let run = tenantry_portal::session::random_hex(3);
        let (alice, bob, wizard, stranger, dave) = (
            person("alice", &run),
            person("bob", &run),
            person("wizard", &run),
            person("stranger", &run),
            person("dave", &run),
        );
        for p in [&alice, &bob, &wizard, &stranger] {
            keycloak.create_user(&p.login, &p.email, &p.password).await.map_err(|e| e.to_string())?;
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}/");
        private_file(&dir.path().join("portal.secret"), &keycloak.portal_client_secret)?;
        let tsig = std::fs::read_to_string(&bind.tsig_key_file).map_err(|e| e.to_string())?;
        private_file(&dir.path().join("tsig.key"), &tsig)?;
        std::fs::write(
            dir.path().join("tenantry.toml"),
            format!(
                "[local]\nout_dir = \"out\"\nstate = \"state.db\"\n\n[kubernetes]\nkubeconfig = \"{kubeconfig}\"\n\n\
                 [dns]\nprovider = \"rfc2136\"\nzones = [\"{zone}\"]\nserver = \"{server}\"\ntsig_key_file = \"tsig.key\"\n\n\
                 [portal]\npublic_url = \"{base}\"\nclient_id = \"{client}\"\nclient_secret_file = \"portal.secret\"\n\
                 issuer_ca_file = \"{ca}\"\nsession_ttl = \"1h\"\npage_size = 3\n\n[portal.links]\nterminal = \"https://t3.{zone}/?port={{port}}\"\n",
                kubeconfig = kube.kubeconfig.display(),
                zone = bind.zone,
                server = bind.addr,
                client = keycloak.portal_client_id,
                ca = keycloak.ca_file.display(),
            ),
        )
        .map_err(|e| e.to_string())?;
        let people = [&alice, &bob, &wizard, &dave];
        let write_roster = |first: bool| {
            std::fs::write(
                dir.path().join("roster.yaml"),
                roster(&run, &people, first, &kube.url, &keycloak.issuer, &bind.zone),
            )
            .map_err(|e| e.to_string())
        };
        // First the roster as it was (dave, and a namespace alice has since given up), applied for
        // alice, bob and dave; then the roster as it is: dave departing, alice's old namespace withheld,
        // bob's new domain pending.
        write_roster(true)?;
        {
            let session = open(dir.path())?;
            let request = PlanRequest {
                only: vec![alice.key.clone(), bob.key.clone(), dave.key.clone()],
                ..PlanRequest::default()
            };
            let planned = session.plan(&request).await.map_err(|e| format!("plan: {e}"))?;
            let outcome = session
                .apply(&planned, &ApplyRequest { concurrency: 8, after_apply: false }, &|_| {})
                .await
                .map_err(|e| format!("apply: {e}"))?;
            if !outcome.report.is_success() {
                return Err(format!("the setup apply failed: {:?}", outcome.report.failures));
            }
        }
        write_roster(false)?;
        let client =
            kube::Client::try_from(kube.config().await.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        workload(&client, &format!("p{run}-alice")).await?;
        let session = open(dir.path())?;
        let settings = PortalSettings::from_config(session.config())
            .map_err(|e| e.to_string())?
            .ok_or("no [portal] in the test's tenantry.toml")?;
        let model = model_from_session(&session, ReconcileSource::Plan, SystemTime::now())
            .await
            .map_err(|e| format!("building the model: {e}"))?;
        let skew = Arc::new(AtomicU64::new(0));
        let clock_skew = Arc::clone(&skew);
        let clock: tenantry_portal::Clock =
            Arc::new(move || SystemTime::now() + Duration::from_secs(clock_skew.load(Ordering::SeqCst)));
        let portal = Portal::new(settings, model, Arc::new(KubeQuotas::new(client, Duration::from_secs(5))), clock)
            .map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        let app = tenantry_portal::router(portal);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let driver_port = free_port()?;
        let driver = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={driver_port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {CHROMEDRIVER} ({e}); {BROWSER_HOW}"))?;
        let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/portal-screenshots");
        std::fs::create_dir_all(&screenshots).map_err(|e| e.to_string())?;
        Ok(World {
            run,
            dir,
            keycloak,
            alice,
            bob,
            wizard,
            stranger,
            base,
            skew,
            session,
            kube,
            kubectl,
            screenshots,
            driver,
            driver_url: format!("http://127.0.0.1:{driver_port}"),
            bind,
        })
    }

    /// Remove what this run left on the shared peers.
    pub async fn tear_down(mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for p in [&self.alice, &self.bob, &self.wizard, &self.stranger] {
            if let Err(e) = crate::keycloak::delete_user(&self.keycloak, &p.login).await {
                eprintln!("cleanup: {e}");
            }
        }
        // Everything this run's platform applied carries its mark.
        let _ = std::process::Command::new(&self.kubectl)
            .args(["--kubeconfig", &self.kube.kubeconfig.display().to_string(), "delete"])
            .args(["namespace,clusterrolebinding", "-l"])
            .arg(format!("tenantry.dev/platform=portal-{}", self.run))
            .args(["--wait=false", "--ignore-not-found"])
            .output();
        let mut update = format!("server {} {}\n", self.bind.addr.ip(), self.bind.addr.port());
        for name in [self.domain("budget"), self.domain("blog")] {
            update.push_str(&format!("update delete {name}. CNAME\n"));
        }
        update.push_str("send\n");
        let nsupdate = std::process::Command::new("nsupdate")
            .arg("-k")
            .arg(self.dir.path().join("tsig.key"))
            .stdin(std::process::Stdio::piped())
            .spawn();
        if let Ok(mut child) = nsupdate {
            if let Some(stdin) = child.stdin.as_mut() {
                use std::io::Write as _;
                let _ = stdin.write_all(update.as_bytes());
            }
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}
