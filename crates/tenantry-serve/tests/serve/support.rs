//! The cluster set up for one test run (the shipped RBAC in a namespace of
//! its own, names prefixed so runs never collide on the shared apiserver),
//! `serve` replicas as child processes, and polling helpers.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tenantry_testenv::kube_proxy::Proxy;

pub const CHILD_ENV: &str = "TENANTRY_SERVE_TEST_CHILD";

/// A run id for this test's objects on the shared peers (`s…`).
pub fn run_id() -> String {
    format!("s{}", tenantry_testenv::run_id())
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `target` as a path relative to `dir` (kustomize refuses absolute roots).
pub fn relative(dir: &Path, target: &Path) -> String {
    let dir = dir.canonicalize().unwrap();
    let up = "../".repeat(dir.components().count().saturating_sub(1));
    format!("{up}{}", target.display().to_string().trim_start_matches('/'))
}

pub struct Cluster {
    pub kube: tenantry_testenv::Kube,
    pub admin: kube::Client,
    pub id: String,
    /// The namespace of the controller (Lease, roster ConfigMap).
    pub ns: String,
    /// The controller's ServiceAccount, as the apiserver names it, and its groups.
    pub identity: (String, Vec<String>),
    pub kubectl: PathBuf,
    /// Kept when a case fails (the replicas' logs are there); removed otherwise.
    pub dir: KeptDir,
}

pub struct KeptDir(PathBuf);

impl KeptDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Cluster {
    /// Apply the shipped RBAC (deploy/kustomize/rbac) under a unique name
    /// prefix and namespace, as the admin.
    pub async fn setup() -> Cluster {
        tenantry_testenv::install_crypto_provider();
        let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
        let admin = kube.client().await.unwrap();
        let id = run_id();
        let ns = format!("{id}-ctl");
        let dir = KeptDir(tempfile::tempdir().unwrap().keep());
        let kubectl = kube.kubectl.clone().unwrap_or_else(|| PathBuf::from("kubectl"));
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(admin.clone());
        let namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": ns } })).unwrap();
        namespaces.create(&Default::default(), &namespace).await.unwrap();
        let overlay = dir.path().join("overlay");
        std::fs::create_dir_all(&overlay).unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            format!(
                "resources: [{}]\nnamePrefix: {id}-\n{}",
                relative(&overlay, &repo_root().join("deploy/kustomize/rbac")),
                namespace_transformer(&ns)
            ),
        )
        .unwrap();
        let cluster = Cluster {
            identity: (
                format!("system:serviceaccount:{ns}:{id}-tenantry"),
                vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                    "system:authenticated".into(),
                ],
            ),
            kube,
            admin,
            id,
            ns,
            kubectl,
            dir,
        };
        let out = cluster.kubectl(&["apply", "-k", overlay.to_str().unwrap()]);
        assert!(out.status.success(), "kubectl apply -k: {}", String::from_utf8_lossy(&out.stderr));
        cluster
    }

    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new(&self.kubectl).args(args).env("KUBECONFIG", &self.kube.kubeconfig).output().unwrap()
    }

    /// A kubeconfig for a proxy (plain HTTP on 127.0.0.1, no credentials:
    /// the proxy adds them).
    pub fn proxy_kubeconfig(&self, proxy: &Proxy, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: p, cluster: {{server: \"{}\"}}}}]\nusers: [{{name: p, user: {{}}}}]\ncontexts: [{{name: p, context: {{cluster: p, user: p}}}}]\ncurrent-context: p\n",
                proxy.url
            ),
        )
        .unwrap();
        path
    }

    /// Best effort: remove what this run created (and its files, unless `keep_files`).
    pub fn cleanup(&self, namespaces: &[String], keep_files: bool) {
        if keep_files {
            eprintln!("logs and files of this run: {}", self.dir.path().display());
        } else {
            let _ = std::fs::remove_dir_all(self.dir.path());
        }
        let mut args = vec!["delete", "namespace", "--wait=false", "--ignore-not-found"];
        args.push(&self.ns);
        for ns in namespaces {
            args.push(ns);
        }
        let _ = self.kubectl(&args);
        for kind in ["clusterrole", "clusterrolebinding"] {
            let _ = self.kubectl(&["delete", kind, "--ignore-not-found", &format!("{}-tenantry", self.id)]);
        }
        // The Tenant cases' objects: without serve nobody releases their
        // finalizers (a failed case leaves them behind).
        let roster = format!("tenantry.dev/test-roster in ({id}t,{id}m)", id = self.id);
        let left = self.kubectl(&["get", "tenants", "-l", &roster, "-o", "name", "--ignore-not-found"]);
        for object in String::from_utf8_lossy(&left.stdout).lines() {
            let _ = self.kubectl(&["patch", object, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
        }
        let _ = self.kubectl(&["delete", "tenants,platforms", "--ignore-not-found", "--wait=false", "-l", &roster]);
        // The cluster-wide objects the cases' platforms (named after the
        // run id and a letter) applied.
        let platforms: Vec<String> = ["e", "r", "v", "t"].iter().map(|case| format!("{}{case}", self.id)).collect();
        let selector = format!("tenantry.dev/platform in ({})", platforms.join(","));
        let _ = self.kubectl(&[
            "delete",
            "validatingadmissionpolicybindings,validatingadmissionpolicies,clusterrolebindings,clusterroles",
            "--ignore-not-found",
            "-l",
            &selector,
        ]);
    }
}

/// Moves everything, ServiceAccount subjects of bindings included, into
/// `namespace` (kustomize's `namespace:` field only rewrites subjects named
/// `default`).
pub fn namespace_transformer(namespace: &str) -> String {
    format!(
        "transformers:\n  - |-\n    apiVersion: builtin\n    kind: NamespaceTransformer\n    metadata:\n      name: namespace\n      namespace: {namespace}\n    setRoleBindingSubjects: allServiceAccounts\n    fieldSpecs:\n      - path: metadata/namespace\n        create: true\n"
    )
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One `serve` process (this test binary, re-run in child mode).
pub struct Replica {
    pub name: String,
    pub port: u16,
    pub child: Child,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

impl Replica {
    pub fn start(name: &str, dir: &Path, roster: &str, config: &Path, port: u16, env: &[(&str, &str)]) -> Replica {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env(CHILD_ENV, "1")
            .env("TENANTRY_SERVE_TEST_ROSTER", roster)
            .env("TENANTRY_SERVE_TEST_CONFIG", config)
            .env("RUST_LOG", "info,tenantry_serve=debug")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        Replica { name: name.to_string(), port, child, log, http }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = self.http.get(format!("http://127.0.0.1:{}{path}", self.port)).send().await.ok()?;
        let code = response.status().as_u16();
        Some((code, response.text().await.ok()?))
    }

    pub async fn status(&self) -> Option<Value> {
        let (_, text) = self.get("/api/status").await?;
        serde_json::from_str(&text).ok()
    }

    pub async fn readyz(&self) -> Option<(u16, Value)> {
        let (code, text) = self.get("/readyz").await?;
        Some((code, serde_json::from_str(&text).ok()?))
    }

    pub async fn healthz(&self) -> Option<u16> {
        Some(self.get("/healthz").await?.0)
    }

    /// `/metrics`, parsed by a Prometheus text-format parser.
    pub async fn metrics(&self) -> prometheus_parse::Scrape {
        let (code, text) =
            self.get("/metrics").await.unwrap_or_else(|| panic!("{} does not answer /metrics", self.name));
        assert_eq!(code, 200);
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn role(status: &Option<Value>) -> Option<String> {
        status.as_ref()?.get("role")?.as_str().map(str::to_string)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Wait for the process to exit, at most `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of a metric (a counter's `_total` sample included) summed over
/// the samples whose labels include `labels`.
pub fn metric(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name || s.metric == format!("{name}_total"))
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            _ => 0.0,
        })
        .sum()
}

/// Poll `check` every 100 ms until it holds; the time it took, or a panic
/// saying what did not happen.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A roster of one user per tier (so the shared ClusterRoles are always
/// wanted and never pruned under other tests), plus `extra` namespace-owners.
/// A roster of platform `id` (its own, so its cluster-wide objects — the
/// admission policies and their trusted identities — never collide with
/// another test's), trusting `controller` as tenantry's own identity.
pub fn roster(id: &str, controller: &str, extra: &[&str]) -> String {
    let mut text = format!(
        "platform:\n  name: {id}\n  domain: lab.test\n  isolation_options: {{ trusted_users: [\"{controller}\"] }}\nusers:\n  {id}o: {{ email: {id}o@example.org, tier: namespace-owner, namespaces: [{id}-o] }}\n  {id}p: {{ email: {id}p@example.org, tier: power-user }}\n  {id}w: {{ email: {id}w@example.org, tier: admin }}\n"
    );
    for name in extra {
        text.push_str(&format!(
            "  {id}{name}: {{ email: {id}{name}@example.org, tier: namespace-owner, namespaces: [{id}-{name}] }}\n"
        ));
    }
    text
}

/// Whether a namespaced object exists.
pub async fn exists<K>(admin: &kube::Client, namespace: &str, name: &str) -> bool
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: kube::Api<K> = kube::Api::namespaced(admin.clone(), namespace);
    api.get_opt(name).await.ok().flatten().is_some()
}

pub async fn namespace_exists(admin: &kube::Client, name: &str) -> bool {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(admin.clone());
    api.get_opt(name).await.ok().flatten().is_some()
}
