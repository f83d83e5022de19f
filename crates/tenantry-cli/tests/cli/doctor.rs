//! `tenantry doctor` and the audit trail through the binary, on the real
//! peers: each fault is made on the apiserver (with the controller-manager
//! computing quota usage), OpenBao or BIND, and doctor must name it with
//! its fix; a healthy user reports nothing. The webhook gets one message
//! per apply from a receiver on 127.0.0.1, and one that fails or hangs
//! costs the apply no more than its bounded timeout.

use super::*;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

fn kubectl(kube: &tenantry_testenv::Kube, args: &[&str]) -> String {
    let output = Command::new(kube.kubectl.clone().unwrap_or_else(|| "kubectl".into()))
        .arg("--kubeconfig")
        .arg(&kube.kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "kubectl {args:?}: {}", text(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn findings(report: &Value) -> Vec<Value> {
    report["findings"].as_array().cloned().unwrap_or_default()
}

/// The one finding of `check` about `resource` (panics with the report otherwise).
fn finding<'a>(report: &'a Value, check: &str, resource: &str) -> &'a Value {
    let all = report["findings"].as_array().unwrap();
    let found: Vec<&Value> =
        all.iter().filter(|f| f["check"] == check && f["resource"].as_str() == Some(resource)).collect();
    assert_eq!(found.len(), 1, "one `{check}` finding about {resource}: {report:#}");
    found[0]
}

#[test]
fn doctor_names_each_fault_on_the_real_peers_with_its_fix_and_a_healthy_user_reports_nothing() {
    let id = run_id();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let bind = tenantry_testenv::bind().unwrap_or_else(|e| panic!("{e}"));
    let vault = vault_env();
    bao("POST", &format!("sys/auth/doc-oidc-{id}"), json!({ "type": "oidc" }));
    bao("POST", &format!("sys/mounts/doc-k8s-{id}"), json!({ "type": "kubernetes" }));
    let (ann, hal, pat) = (format!("ann{id}"), format!("hal{id}"), format!("pat{id}"));
    let roster = |ann_domains: &str| {
        format!(
            "platform:\n  name: doc{id}\n  domain: lab.test\n  dns: {{ cname_target: tunnel.lab.test }}\nusers:\n  {ann}: {{ email: {ann}@lab.test, tier: namespace-owner, namespaces: [{ann}, {ann}-b], quota: {{ services: \"1\" }}{ann_domains} }}\n  {hal}: {{ email: {hal}@lab.test, tier: namespace-owner, namespaces: [{hal}] }}\n  {pat}: {{ email: {pat}@lab.test, tier: power-user }}\n"
        )
    };
    let dir = workdir(&roster(""));
    fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n\n[vault]\naddress = \"{}\"\noidc_mount = \"doc-oidc-{id}\"\nkubernetes_secrets_mount = \"doc-k8s-{id}\"\n\n[dns]\nprovider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"{}\"\ntsig_key_file = \"{}\"\n",
            kube.kubeconfig.display(),
            vault.addr,
            bind.addr,
            bind.tsig_key_file.display()
        ),
    )
    .unwrap();
    // Only the users' own objects: the cluster's shared ones belong to other tests.
    let apply = tenantry_with_vault(dir.path(), &["apply", "--yes", "--only", &ann, "--only", &hal, "--only", &pat]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));

    // A healthy user: every check ran, nothing found, exit 0.
    let healthy = tenantry_with_vault(dir.path(), &["doctor", &hal, "--output", "json"]);
    let report: Value = serde_json::from_slice(&healthy.stdout).unwrap_or_else(|_| panic!("{}", text(&healthy)));
    assert_eq!(healthy.status.code(), Some(0), "{report:#}");
    assert_eq!(report["healthy"], true);
    assert_eq!(findings(&report), Vec::<Value>::new());
    let status = |check: &str| {
        report["checks"].as_array().unwrap().iter().find(|c| c["check"] == check).unwrap()["status"].clone()
    };
    for check in
        ["quota", "tls", "rbac", "namespace", "vault-identity", "dns-server", "dns-resolver", "state", "targets"]
    {
        assert_eq!(status(check), "ok", "{check}: {report:#}");
    }
    // Not configured: listed as skipped, not passed.
    let skipped: Vec<&Value> =
        report["checks"].as_array().unwrap().iter().filter(|c| c["status"] == "skipped").collect();
    assert!(skipped.iter().all(|c| c["reason"].as_str().unwrap().contains("is not configured")), "{report:#}");

    // The faults, each made on its peer.
    kubectl(&kube, &["create", "service", "clusterip", "web", "--tcp=80:80", "-n", &ann]);
    kubectl(
        &kube,
        &[
            "patch",
            "rolebinding",
            &format!("namespace-owner-{ann}"),
            "-n",
            &ann,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/subjects/0/name","value":"mallory@lab.test"}]"#,
        ],
    );
    kubectl(&kube, &["delete", "clusterrolebinding", &format!("oidc-power-user-readonly-{pat}")]);
    kubectl(&kube, &["label", "namespace", &format!("{ann}-b"), "--overwrite", "tenantry.dev/user=mallory"]);
    // Vault: the policy taken off the entity; the alias moved to an auto-created entity.
    let entity = bao("GET", &format!("identity/entity/name/{ann}"), Value::Null);
    bao("POST", &format!("identity/entity/name/{ann}"), json!({ "policies": [""] }));
    let alias_id = entity["data"]["aliases"][0]["id"].as_str().unwrap().to_string();
    let other = bao("POST", "identity/entity", json!({ "name": format!("entity_auto_{id}") }));
    bao(
        "POST",
        &format!("identity/entity-alias/id/{alias_id}"),
        json!({ "canonical_id": other["data"]["id"], "name": format!("{ann}@lab.test"), "mount_accessor": entity["data"]["aliases"][0]["mount_accessor"] }),
    );
    // DNS: a domain the roster gained but the server does not have.
    fs::write(dir.path().join("roster.yaml"), roster(&format!(", domains: [doc-{ann}.lab.test]"))).unwrap();
    // Quota usage is computed by the controller-manager: wait for it.
    let deadline = Instant::now() + Duration::from_secs(90);
    while kubectl(&kube, &["get", "resourcequota", "user-quota", "-n", &ann, "-o", "jsonpath={.status.used.services}"])
        .trim()
        != "1"
    {
        assert!(Instant::now() < deadline, "the controller-manager did not count the service (is it running?)");
        std::thread::sleep(Duration::from_millis(500));
    }

    let sick = tenantry_with_vault(dir.path(), &["doctor", &ann, "--output", "json"]);
    let report: Value = serde_json::from_slice(&sick.stdout).unwrap_or_else(|_| panic!("{}", text(&sick)));
    assert_eq!(sick.status.code(), Some(3), "problems found: exit 3: {report:#}");
    assert_eq!(report["healthy"], false);

    let quota = finding(&report, "quota", &format!("kubernetes/ResourceQuota/{ann}/user-quota"));
    assert_eq!(quota["severity"], "problem");
    assert_eq!(quota["evidence"], json!(["services: 1 used of 1 (100 %)"]));
    assert!(quota["fix"].as_str().unwrap().contains(&format!("users.{ann}.quota.services")), "{quota:#}");

    let binding = finding(&report, "rbac", &format!("kubernetes/RoleBinding/{ann}/namespace-owner-{ann}"));
    assert!(binding["cause"].as_str().unwrap().contains("bound to another subject"), "{binding:#}");
    assert!(binding["evidence"][0].as_str().unwrap().contains("User mallory@lab.test"), "{binding:#}");
    assert!(
        binding["fix"]
            .as_str()
            .unwrap()
            .starts_with(&format!("kubectl delete rolebinding namespace-owner-{ann} -n {ann}")),
        "{binding:#}"
    );
    let power: Value =
        serde_json::from_slice(&tenantry_with_vault(dir.path(), &["doctor", &pat, "--output", "json"]).stdout).unwrap();
    let missing = finding(&power, "rbac", &format!("kubernetes/ClusterRoleBinding/-/oidc-power-user-readonly-{pat}"));
    assert!(missing["cause"].as_str().unwrap().contains("does not exist"), "{missing:#}");
    assert_eq!(missing["fix"], format!("tenantry apply --only {pat}"));
    assert_eq!(findings(&power).len(), 1, "{power:#}");

    let namespace = finding(&report, "namespace", &format!("kubernetes/Namespace/-/{ann}-b"));
    assert!(namespace["cause"].as_str().unwrap().contains("belongs to `mallory`"), "{namespace:#}");

    let vault_findings: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "vault-identity").collect();
    assert!(
        vault_findings
            .iter()
            .any(|f| f["cause"] == format!("Vault entity `{ann}` lacks its policy `namespace-owner-{ann}`")),
        "{report:#}"
    );
    let alias = finding(&report, "vault-identity", &format!("vault/EntityAlias/doc-oidc-{id}/{ann}@lab.test"));
    assert!(alias["cause"].as_str().unwrap().contains(&format!("sits on entity `entity_auto_{id}`")), "{alias:#}");
    assert!(alias["fix"].as_str().unwrap().starts_with(&format!("tenantry apply --only {ann}")), "{alias:#}");

    let record = finding(&report, "dns-server", &format!("dns/CNAME/lab.test/doc-{ann}.lab.test"));
    assert!(record["cause"].as_str().unwrap().contains("does not exist on the DNS server"), "{record:#}");
    let resolver = finding(&report, "dns-resolver", &format!("dns/CNAME/lab.test/doc-{ann}.lab.test"));
    assert_eq!(resolver["severity"], "warning", "asked separately, of the system resolver: {resolver:#}");
    // Nothing about the healthy user in a report on everyone else.
    assert!(findings(&report).iter().all(|f| f["owner"] == ann.as_str()), "{report:#}");

    // Human form: grouped by user, with evidence and fix.
    let human = tenantry_with_vault(dir.path(), &["doctor", &ann]);
    assert_eq!(human.status.code(), Some(3));
    let shown = text(&human);
    assert!(shown.starts_with(&format!("{ann}\n  problem [")), "{shown}");
    assert!(shown.contains("evidence: services: 1 used of 1 (100 %)"), "{shown}");

    // Fixing it the way doctor says: apply (the RoleBinding re-created first), then doctor is quiet about the cluster.
    kubectl(&kube, &["delete", "rolebinding", &format!("namespace-owner-{ann}"), "-n", &ann]);
    kubectl(&kube, &["label", "namespace", &format!("{ann}-b"), "--overwrite", &format!("tenantry.dev/user={ann}")]);
    let fix = tenantry_with_vault(dir.path(), &["apply", "--yes", "--only", &ann]);
    assert_eq!(fix.status.code(), Some(0), "{}", text(&fix));
    let after: Value =
        serde_json::from_slice(&tenantry_with_vault(dir.path(), &["doctor", &ann, "--output", "json"]).stdout).unwrap();
    let left: Vec<String> = findings(&after).iter().map(|f| f["check"].as_str().unwrap().to_string()).collect();
    assert!(
        left.iter().all(|c| c == "quota" || c == "dns-resolver"),
        "only the quota and the public DNS remain: {after:#}"
    );

    // The history has both applies, who ran them and from which roster.
    let history = tenantry_with_vault(dir.path(), &["history", &ann, "--output", "json"]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap_or_else(|_| panic!("{}", text(&history)));
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{history:#}");
    assert!(runs[1]["changes"].as_array().unwrap().iter().any(|c| c["id"]
        == format!("kubernetes/RoleBinding/{ann}/namespace-owner-{ann}")
        && c["outcome"] == "done"));
    assert!(runs.iter().all(|r| r["roster_digest"].as_str().is_some_and(|d| d.len() == 64)), "{history:#}");
    let audit = fs::read_to_string(dir.path().join(".tenantry/audit.jsonl")).unwrap();
    assert!(audit.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{audit}");

    // Leave the shared peers as they were.
    kubectl(&kube, &["delete", "namespace", &ann, &format!("{ann}-b"), &hal, "--wait=false"]);
    let _ = Command::new(kube.kubectl.clone().unwrap_or_else(|| "kubectl".into()))
        .arg("--kubeconfig")
        .arg(&kube.kubeconfig)
        .args(["delete", "clusterrolebinding", &format!("oidc-power-user-readonly-{pat}"), "--ignore-not-found"])
        .output();
}

/// A webhook receiver on 127.0.0.1: answers `status` (or never, when
/// `None`), and hands every request body it read to the test.
fn receiver(status: Option<u16>) -> (String, std::sync::mpsc::Receiver<Value>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook/secret-path", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let Ok(n) = stream.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_string();
                        }
                    }
                };
                let _ = tx.send(serde_json::from_str(&body).unwrap_or(Value::Null));
                match status {
                    Some(code) => {
                        let _ = write!(stream, "HTTP/1.1 {code} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
                    }
                    None => std::thread::sleep(Duration::from_secs(60)),
                }
            });
        }
    });
    (url, rx)
}

fn with_webhook(url: &str, timeout: u64) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = workdir("users:\n  ada: { email: ada@example.org, tier: namespace-owner, namespaces: [ada] }\n");
    let file = dir.path().join("webhook.url");
    fs::write(&file, format!("{url}\n")).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(
        dir.path().join("tenantry.toml"),
        format!("[audit]\nwebhook_url_file = \"webhook.url\"\nwebhook_timeout_seconds = {timeout}\n"),
    )
    .unwrap();
    dir
}

#[test]
fn every_apply_posts_one_slack_message_and_a_failing_or_hanging_webhook_never_holds_up_the_apply() {
    let (url, messages) = receiver(Some(200));
    let dir = with_webhook(&url, 5);
    let apply = tenantry_with_env(dir.path(), &["apply", "--yes"], &[("USER", "ada-admin")]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let message = messages.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(message.as_object().unwrap().keys().collect::<Vec<_>>(), ["text"], "Slack's format: {message:#}");
    let body = message["text"].as_str().unwrap();
    assert!(body.starts_with("tenantry run 1 by "), "{body}");
    assert!(body.contains("• ada create kubernetes/Namespace/-/ada [local]"), "{body}");
    assert!(messages.recv_timeout(Duration::from_millis(500)).is_err(), "one message per apply");
    // The audit log has one line per applied change, with who and the roster digest.
    let audit = fs::read_to_string(dir.path().join(".tenantry/audit.jsonl")).unwrap();
    let events: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() > 3, "{audit}");
    assert!(
        events
            .iter()
            .all(|e| e["outcome"] == "done" && e["run"] == 1 && e["roster"]["digest"].as_str().unwrap().len() == 64)
    );
    // The URL is a secret: never printed.
    assert!(!text(&apply).contains("secret-path"), "{}", text(&apply));
    // A second apply with nothing to do announces nothing.
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    assert!(messages.recv_timeout(Duration::from_millis(500)).is_err(), "no changes, no message");

    // 500: retried, then given up within the timeout; the apply succeeds with a warning.
    let (url, messages) = receiver(Some(500));
    let dir = with_webhook(&url, 3);
    let started = Instant::now();
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert!(started.elapsed() < Duration::from_secs(15), "bounded: {:?}", started.elapsed());
    assert!(messages.try_iter().count() >= 2, "retried");
    assert!(
        text(&apply).contains("warning: the audit webhook was not told about run 1: the webhook answered HTTP 500"),
        "{}",
        text(&apply)
    );
    assert!(!text(&apply).contains("secret-path"), "{}", text(&apply));

    // A receiver that never answers costs at most the timeout.
    let (url, _messages) = receiver(None);
    let dir = with_webhook(&url, 2);
    let started = Instant::now();
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    let took = started.elapsed();
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert!(took < Duration::from_secs(12), "the hanging webhook held the apply for {took:?}");
    assert!(text(&apply).contains("no answer within 2 s"), "{}", text(&apply));
    assert!(dir.path().join("tenantry-out").exists(), "the apply itself happened");
}

/// What a run killed after writing its intents leaves in the journal,
/// through the engine's own API (begin the run, record the intent, stop).
fn leave_a_killed_run(state: &Path, id: &str) -> i64 {
    let mut state = tenantry_engine::State::open(state).unwrap();
    let info = tenantry_engine::RunInfo {
        command: "tenantry apply --yes".to_string(),
        actor: Some("ada-admin".to_string()),
        roster_digest: None,
    };
    let run = state.begin_run(&info, "2026-12-01T10:00:00Z").unwrap();
    let change = tenantry_core::Change {
        target: "local".to_string(),
        id: id.parse().unwrap(),
        owner: tenantry_core::Owner::User("ada".to_string()),
        action: tenantry_core::Action::Create,
        before: None,
        after: Some(tenantry_core::Content::from_value(&json!({ "metadata": { "name": "cm" } }))),
        reason: "test".into(),
        origin: tenantry_model::Span::UNKNOWN,
        rule: "test",
        deps: std::sync::Arc::from([]),
        sensitive: false,
        rank: 1,
        platform: tenantry_core::DEFAULT_PLATFORM.into(),
    };
    state.record_intents(run, &[&change], "2026-12-01T10:00:01Z").unwrap();
    run
}

#[test]
fn doctor_names_a_killed_runs_changes_and_an_unreachable_target_with_their_fixes_and_never_hangs() {
    let dir = workdir("users:\n  ada: { email: ada@example.org, tier: namespace-owner, namespaces: [ada] }\n");
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let healthy = tenantry(dir.path(), &["doctor", "--output", "json"]);
    let report: Value = serde_json::from_slice(&healthy.stdout).unwrap_or_else(|_| panic!("{}", text(&healthy)));
    assert_eq!(healthy.status.code(), Some(0), "{report:#}");

    let run = leave_a_killed_run(&dir.path().join(".tenantry/state.db"), "kubernetes/ConfigMap/ada/cm");
    let killed = tenantry(dir.path(), &["doctor", "--output", "json"]);
    let report: Value = serde_json::from_slice(&killed.stdout).unwrap_or_else(|_| panic!("{}", text(&killed)));
    assert_eq!(killed.status.code(), Some(3), "{report:#}");
    let state: Vec<&Value> = report["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "state").collect();
    assert_eq!(state.len(), 1, "{report:#}");
    assert_eq!(state[0]["target"], "tenantry");
    assert_eq!(
        state[0]["cause"],
        format!(
            "run {run} (`tenantry apply --yes`, started 2026-12-01T10:00:00Z) left 1 change(s) without a known outcome: it was killed, is still running, or a peer stopped answering"
        )
    );
    assert_eq!(state[0]["evidence"], json!(["create kubernetes/ConfigMap/ada/cm [local]: intent"]));
    assert_eq!(
        state[0]["fix"],
        "when no tenantry run is going on, run `tenantry plan`, then `tenantry apply`: a rerun converges"
    );
    // Doing what it says: the rerun recovers the intent, and doctor is quiet again.
    let rerun = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert_eq!(tenantry(dir.path(), &["doctor"]).status.code(), Some(0));

    // A target that cannot be reached: Vault at a closed port on 127.0.0.1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    fs::write(
        dir.path().join("tenantry.toml"),
        format!("[vault]\naddress = \"http://127.0.0.1:{closed}\"\noidc_mount = \"oidc\"\n"),
    )
    .unwrap();
    let started = Instant::now();
    let unreachable = tenantry_with_env(dir.path(), &["doctor", "--output", "json"], &[("VAULT_TOKEN", "root")]);
    let took = started.elapsed();
    let report: Value =
        serde_json::from_slice(&unreachable.stdout).unwrap_or_else(|_| panic!("{}", text(&unreachable)));
    assert_eq!(unreachable.status.code(), Some(3), "{report:#}");
    assert!(took < Duration::from_secs(60), "doctor took {took:?} on a closed port");
    let targets: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["check"] == "targets").collect();
    assert_eq!(targets.len(), 1, "{report:#}");
    assert_eq!(targets[0]["severity"], "problem");
    assert_eq!(targets[0]["owner"], "(platform)");
    assert_eq!(targets[0]["cause"], "target `vault` cannot be reached");
    assert_eq!(targets[0]["fix"], "check [vault] address and the token (VAULT_TOKEN or token_file, mode 0600)");
    assert!(targets[0]["evidence"][0].as_str().unwrap().contains(&format!("127.0.0.1:{closed}")), "{report:#}");
    // Its checks did not run: skipped with the reason, never passed.
    let identity = report["checks"].as_array().unwrap().iter().find(|c| c["check"] == "vault-identity").unwrap();
    assert_eq!(identity["status"], "skipped");
    assert_eq!(identity["reason"], "its target cannot be reached (see the `targets` finding)");
}

#[test]
fn a_destroy_whose_audit_cannot_be_announced_says_so_in_its_report() {
    use std::os::unix::fs::PermissionsExt as _;
    let id = run_id();
    let vault = vault_env();
    bao("POST", &format!("sys/auth/dn-oidc-{id}"), json!({ "type": "oidc" }));
    bao("POST", &format!("sys/mounts/dn-k8s-{id}"), json!({ "type": "kubernetes" }));
    let (dee, dex) = (format!("dee{id}"), format!("dex{id}"));
    let dir = workdir(&format!(
        "users:\n  {dee}: {{ email: {dee}@lab.test, tier: namespace-owner, namespaces: [{dee}] }}\n  {dex}: {{ email: {dex}@lab.test, tier: namespace-owner, namespaces: [{dex}] }}\n"
    ));
    let config = format!(
        "[vault]\naddress = \"{}\"\noidc_mount = \"dn-oidc-{id}\"\nkubernetes_secrets_mount = \"dn-k8s-{id}\"\n",
        vault.addr
    );
    fs::write(dir.path().join("tenantry.toml"), &config).unwrap();
    assert_eq!(tenantry_with_vault(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    fs::write(dir.path().join("roster.yaml"), "users: {}\n").unwrap();
    for user in [&dee, &dex] {
        let cut = tenantry_with_vault(dir.path(), &["offboard", user, "--yes"]);
        assert_eq!(cut.status.code(), Some(0), "{}", text(&cut));
    }

    // The webhook URL file may be read by others: refused, so the webhook is not told.
    let hook = dir.path().join("hook.url");
    fs::write(&hook, "http://127.0.0.1:9/hook\n").unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(dir.path().join("tenantry.toml"), format!("{config}\n[audit]\nwebhook_url_file = \"hook.url\"\n"))
        .unwrap();
    let backups = dir.path().join("backups");
    let args = ["offboard", &dee, "--stage", "destroy", "--backup", backups.to_str().unwrap(), "--yes"];
    let destroy = tenantry_with_vault(dir.path(), &[&args[..], &["--output", "json"]].concat());
    let report: Value = serde_json::from_slice(&destroy.stdout).unwrap_or_else(|_| panic!("{}", text(&destroy)));
    assert_eq!(destroy.status.code(), Some(0), "the audit never fails a destroy: {report:#}");
    assert_eq!(report["success"], true);
    let notes = report["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{report:#}");
    assert_eq!(notes[0]["level"], "warning");
    let message = notes[0]["message"].as_str().unwrap();
    assert!(message.starts_with("the audit webhook was not told: "), "{message}");
    assert!(message.contains("run `chmod 600"), "{message}");
    // The audit log has the destroy all the same.
    let audit = fs::read_to_string(dir.path().join(".tenantry/audit.jsonl")).unwrap();
    let destroyed: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "destroy" && e["owner"] == dee.as_str())
        .collect();
    assert!(!destroyed.is_empty() && destroyed.iter().all(|e| e["outcome"] == "done"), "{audit}");

    // The human form prints the warning to standard error, after the report.
    let human = tenantry_with_vault(
        dir.path(),
        &["offboard", &dex, "--stage", "destroy", "--backup", backups.to_str().unwrap(), "--yes"],
    );
    assert_eq!(human.status.code(), Some(0), "{}", text(&human));
    assert!(String::from_utf8_lossy(&human.stdout).contains(&format!("Destroyed {dex}")), "{}", text(&human));
    let stderr = String::from_utf8_lossy(&human.stderr);
    assert!(stderr.contains("warning: the audit webhook was not told: "), "{stderr}");
}
