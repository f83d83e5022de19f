//! Faults on the real peers (issue 20): an apiserver cut off mid-apply and
//! back, an apiserver killed mid-apply and restarted, an OpenBao sealed mid-apply and unsealed, BIND stopped mid-apply
//! and started, a DNS server that accepts and never answers. Each run ends
//! within a bound, names the failed changes by peer and cause (grouped,
//! not one line each), lets the other targets finish, journals what may
//! have happened as `unknown`, and the rerun after recovery converges with
//! nothing duplicated or lost.
//!
//! The shared peers keep serving the other tests: the faults are made in
//! proxies of this test's own (and a private OpenBao), never in the peers.

use super::{kubectl_admin, run_id, workdir};
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tenantry_testenv::kube_proxy::Proxy;
use tenantry_testenv::private_vault::PrivateVault;
use tenantry_testenv::tcp_proxy::{Mode, TcpProxy};

/// How a run ended.
struct Ran {
    code: Option<i32>,
    text: String,
    took: Duration,
}

/// Run tenantry (output to files: a full pipe must never stall it) and
/// call `during` every 5 ms while it runs; killed after `limit`.
fn run_while(dir: &Path, args: &[&str], env: &[(&str, &str)], limit: Duration, mut during: impl FnMut()) -> Ran {
    let (out, err) = (dir.join("run.out"), dir.join("run.err"));
    let started = Instant::now();
    let mut child = super::tenantry_command(dir, args, env)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let shown = format!(
                "{}{}",
                fs::read_to_string(&out).unwrap_or_default(),
                fs::read_to_string(&err).unwrap_or_default()
            );
            let _ = fs::write(std::env::temp_dir().join("tenantry-faults-hung.log"), &shown);
            let tail = shown.char_indices().rev().nth(4000).map_or(shown.as_str(), |(at, _)| &shown[at..]);
            panic!("`tenantry {}` was still running after {limit:?}; it printed, last:\n{tail}", args.join(" "));
        }
        during();
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = format!("{}{}", fs::read_to_string(&out).unwrap(), fs::read_to_string(&err).unwrap());
    Ran { code: status.code(), text, took: started.elapsed() }
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
    run_while(dir, args, env, Duration::from_secs(180), || {})
}

/// `users` namespace-owners; the first `with_domains` have a domain each.
/// The reversible cut of `user`, who has left the roster, then the destroy
/// stage (backups under `dir/backups`): how a test leaves a shared peer as
/// it found it.
fn offboard_and_destroy(dir: &Path, user: &str, env: &[(&str, &str)]) {
    let cut = run(dir, &["offboard", user, "--yes"], env);
    assert_eq!(cut.code, Some(0), "{}", cut.text);
    let backups = dir.join("backups");
    let gone = run(dir, &["offboard", user, "--stage", "destroy", "--backup", backups.to_str().unwrap(), "--yes"], env);
    assert_eq!(gone.code, Some(0), "{}", gone.text);
}

fn roster(prefix: &str, users: usize, with_domains: usize) -> String {
    let mut text = format!(
        "platform:\n  name: {prefix}\n  domain: lab.test\n  dns: {{ cname_target: tunnel.lab.test }}\nusers:\n",
    );
    for n in 0..users {
        let user = format!("{prefix}{n}");
        let domains = if n < with_domains { format!(", domains: [app-{user}.lab.test]") } else { String::new() };
        text.push_str(&format!(
            "  {user}: {{ email: {user}@lab.test, tier: namespace-owner, namespaces: [{user}]{domains} }}\n"
        ));
    }
    text
}

/// A kubeconfig for a proxy that adds the credentials itself.
fn proxy_kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters: [{{name: p, cluster: {{server: \"{server}\"}}}}]\nusers: [{{name: u, user: {{token: unused}}}}]\ncontexts: [{{name: p, context: {{cluster: p, user: u}}}}]\ncurrent-context: p\n"
    )
}

/// Every user's namespaced objects (kind and name, the user's key
/// replaced) are the first user's: nothing lost, nothing twice.
fn assert_every_user_has_the_same_objects(prefix: &str, users: usize) {
    let shape = |n: usize| -> Vec<String> {
        let user = format!("{prefix}{n}");
        let listing = kubectl_admin(&[
            "get",
            "rolebindings,resourcequotas,limitranges,networkpolicies,serviceaccounts,roles",
            "-n",
            &user,
            "-o",
            "name",
        ]);
        let mut names: Vec<String> = listing.lines().map(|l| l.replace(&user, "USER")).collect();
        names.sort();
        names
    };
    let first = shape(0);
    assert!(first.iter().any(|n| n.contains("rolebinding")), "{first:?}");
    for n in 1..users {
        assert_eq!(shape(n), first, "{prefix}{n} differs from {prefix}0");
    }
}

/// Leave the shared cluster as it was: the users' namespaces go.
fn delete_namespaces(prefix: &str, users: std::ops::Range<usize>) {
    let namespaces: Vec<String> = users.map(|n| format!("{prefix}{n}")).collect();
    let mut delete = vec!["delete", "namespace", "--wait=false"];
    delete.extend(namespaces.iter().map(String::as_str));
    kubectl_admin(&delete);
}

/// The journal's outcome of every change of the last run, from `history`.
fn last_run_outcomes(dir: &Path, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let history = run(dir, &["history", "--output", "json"], env);
    assert_eq!(history.code, Some(0), "{}", history.text);
    let json: serde_json::Value = serde_json::from_str(&history.text).unwrap();
    let runs = json["runs"].as_array().unwrap();
    let last = runs.last().unwrap();
    last["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["outcome"].as_str().unwrap().to_string()))
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    // Multi-threaded: the proxies keep serving while this thread waits on the child.
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn an_apiserver_cut_off_mid_apply_fails_its_rest_at_once_while_vault_finishes_and_the_rerun_converges() {
    tenantry_testenv::install_crypto_provider();
    let id = run_id();
    let prefix = format!("fk{id}u");
    let users = 12;
    let runtime = runtime();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let vault = super::vault_env();
    let bind = tenantry_testenv::bind().unwrap_or_else(|e| panic!("{e}"));
    let proxy = runtime.block_on(Proxy::start(&kube, None)).unwrap();
    // BIND behind a proxy that accepts and never answers, from the start.
    let dns = runtime.block_on(TcpProxy::start(bind.addr)).unwrap();
    dns.set(Mode::Stall);
    super::bao("POST", &format!("sys/auth/fk-oidc-{id}"), serde_json::json!({ "type": "oidc" }));
    super::bao("POST", &format!("sys/mounts/fk-k8s-{id}"), serde_json::json!({ "type": "kubernetes" }));

    let dir = workdir(&roster(&prefix, users, 2));
    fs::write(dir.path().join("proxy.kubeconfig"), proxy_kubeconfig(&proxy.url)).unwrap();
    fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[kubernetes]\nkubeconfig = \"proxy.kubeconfig\"\nrequest_timeout = \"5s\"\n\n[vault]\naddress = \"{}\"\noidc_mount = \"fk-oidc-{id}\"\nkubernetes_secrets_mount = \"fk-k8s-{id}\"\n\n[dns]\nprovider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"{}\"\ntsig_key_file = \"{}\"\n",
            vault.addr,
            dns.addr,
            bind.tsig_key_file.display()
        ),
    )
    .unwrap();
    let env = [("VAULT_ADDR", vault.addr.as_str()), ("VAULT_TOKEN", vault.token.as_str())];

    // The apiserver goes away after 30 writes.
    let mut cut_after = None;
    let apply = run_while(dir.path(), &["apply", "--yes"], &env, Duration::from_secs(90), || {
        if cut_after.is_none() && proxy.writes().len() >= 30 {
            proxy.refuse(true);
            cut_after = Some(proxy.writes().len());
        }
    });
    let shown = &apply.text;
    assert_eq!(apply.code, Some(1), "{shown}");
    assert!(cut_after.is_some(), "the apply ended before the cut: {shown}");
    // Bounded: the stalled DNS server costs one timeout (10 s) at observe,
    // the dead apiserver a few quick retries, not one timeout per change.
    assert!(apply.took < Duration::from_secs(60), "took {:?}: {shown}", apply.took);
    let after_cut = proxy.writes().len() - cut_after.unwrap_or(0);
    assert!(after_cut <= 8 * 3 + 8, "{after_cut} requests reached the dead apiserver: {shown}");
    // Named by peer and cause, once per cause.
    assert!(
        shown.contains("dns is unavailable") || shown.contains("[dns]"),
        "the stalled DNS server is named: {shown}"
    );
    assert!(shown.contains("timed out"), "{shown}");
    assert_eq!(shown.matches("kubernetes stopped answering earlier in this apply").count(), 1, "grouped: {shown}");
    assert!(shown.contains("refused by the test proxy"), "{shown}");
    assert!(shown.contains("outcome unknown"), "{shown}");
    // Vault finished every user meanwhile.
    for n in 0..users {
        let entity = super::bao("GET", &format!("identity/entity/name/{prefix}{n}"), serde_json::Value::Null);
        assert_eq!(entity["data"]["policies"], serde_json::json!([format!("namespace-owner-{prefix}{n}")]));
    }
    // The journal says which changes may have happened.
    let outcomes = last_run_outcomes(dir.path(), &env);
    let unknown: Vec<&(String, String)> = outcomes.iter().filter(|(_, o)| o == "unknown").collect();
    assert!(!unknown.is_empty() && unknown.iter().all(|(id, _)| id.starts_with("kubernetes/")), "{outcomes:?}");
    assert!(outcomes.iter().any(|(id, o)| id.starts_with("kubernetes/") && o == "skipped"), "{outcomes:?}");
    assert!(outcomes.iter().any(|(id, o)| id.starts_with("vault/") && o == "done"), "{outcomes:?}");

    // Both peers are back: the rerun converges, and every user has the same
    // objects (nothing lost, nothing twice).
    proxy.refuse(false);
    dns.set(Mode::Forward);
    let rerun = run(dir.path(), &["apply", "--yes"], &env);
    assert_eq!(rerun.code, Some(0), "{}", rerun.text);
    let plan = run(dir.path(), &["plan", "--detailed-exitcode"], &env);
    assert_eq!(plan.code, Some(0), "converged: {}", plan.text);
    assert_every_user_has_the_same_objects(&prefix, users);

    // Leave the shared peers as they were: the two users with DNS records
    // leave through offboarding (their records go with them), the others'
    // namespaces are deleted.
    let leaving = [format!("  {prefix}0:"), format!("  {prefix}1:")];
    let all = roster(&prefix, users, 0);
    let staying: Vec<&str> = all.lines().filter(|l| !leaving.iter().any(|p| l.starts_with(p.as_str()))).collect();
    fs::write(dir.path().join("roster.yaml"), staying.join("\n")).unwrap();
    for n in 0..2 {
        offboard_and_destroy(dir.path(), &format!("{prefix}{n}"), &env);
    }
    delete_namespaces(&prefix, 2..users);
}

/// The apiserver killed mid-apply and started again, as the process dying
/// looks from the client: the connections it had open are cut and new ones
/// are refused (a TCP proxy in front of the counting proxy, switched to
/// `Refuse` after 30 writes, then back to `Forward`).
#[test]
fn an_apiserver_killed_mid_apply_and_restarted_loses_nothing() {
    tenantry_testenv::install_crypto_provider();
    let id = run_id();
    let prefix = format!("fx{id}u");
    let users = 10;
    let runtime = runtime();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let counting = runtime.block_on(Proxy::start(&kube, None)).unwrap();
    let upstream: std::net::SocketAddr =
        counting.url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let wire = runtime.block_on(TcpProxy::start(upstream)).unwrap();

    let dir = workdir(&roster(&prefix, users, 0));
    fs::write(dir.path().join("wire.kubeconfig"), proxy_kubeconfig(&format!("http://{}", wire.addr))).unwrap();
    fs::write(
        dir.path().join("tenantry.toml"),
        "[kubernetes]\nkubeconfig = \"wire.kubeconfig\"\nrequest_timeout = \"5s\"\n",
    )
    .unwrap();

    let mut killed_after = None;
    let apply = run_while(dir.path(), &["apply", "--yes"], &[], Duration::from_secs(90), || {
        if killed_after.is_none() && counting.writes().len() >= 30 {
            wire.set(Mode::Refuse);
            killed_after = Some(counting.writes().len());
        }
    });
    let shown = &apply.text;
    assert_eq!(apply.code, Some(1), "{shown}");
    assert!(killed_after.is_some(), "the apply ended before the kill: {shown}");
    // Bounded: a refused connection fails at once; a few retries, not a
    // timeout per change.
    assert!(apply.took < Duration::from_secs(45), "took {:?}: {shown}", apply.took);
    // Named by peer and cause, the rest of its changes grouped in one line.
    assert_eq!(shown.matches("kubernetes stopped answering earlier in this apply").count(), 1, "grouped: {shown}");
    assert!(shown.contains("Connection refused"), "the cause is named: {shown}");
    let outcomes = last_run_outcomes(dir.path(), &[]);
    assert!(outcomes.iter().any(|(id, o)| id.starts_with("kubernetes/") && o == "done"), "{outcomes:?}");
    assert!(
        outcomes.iter().any(|(id, o)| id.starts_with("kubernetes/") && (o == "unknown" || o == "skipped")),
        "{outcomes:?}"
    );

    // Started again: the rerun converges, and every user has the same objects.
    wire.set(Mode::Forward);
    let rerun = run(dir.path(), &["apply", "--yes"], &[]);
    assert_eq!(rerun.code, Some(0), "{}", rerun.text);
    let plan = run(dir.path(), &["plan", "--detailed-exitcode"], &[]);
    assert_eq!(plan.code, Some(0), "converged: {}", plan.text);
    assert_every_user_has_the_same_objects(&prefix, users);

    delete_namespaces(&prefix, 0..users);
}

#[test]
fn an_openbao_sealed_and_a_bind_stopped_mid_apply_lose_nothing_and_the_rerun_converges() {
    tenantry_testenv::install_crypto_provider();
    let id = run_id();
    let prefix = format!("fv{id}u");
    let users = 10;
    let runtime = runtime();
    let bind = tenantry_testenv::bind().unwrap_or_else(|e| panic!("{e}"));
    let vault = runtime.block_on(PrivateVault::start()).unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(vault.mount_defaults()).unwrap();
    // tenantry reaches OpenBao through a counting proxy (to seal it after a
    // number of writes) and BIND through a TCP proxy (to stop it).
    let vault_proxy = runtime.block_on(Proxy::start_plain(&vault.addr)).unwrap();
    let dns = runtime.block_on(TcpProxy::start(bind.addr)).unwrap();

    let dir = workdir(&roster(&prefix, users, users));
    fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[vault]\naddress = \"{}\"\n\n[dns]\nprovider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"{}\"\ntsig_key_file = \"{}\"\n",
            vault_proxy.url,
            dns.addr,
            bind.tsig_key_file.display()
        ),
    )
    .unwrap();
    let env = [("VAULT_ADDR", vault_proxy.url.as_str()), ("VAULT_TOKEN", vault.token.as_str())];

    // OpenBao is sealed after 8 writes; BIND stops after 4 connections (the
    // plan's reads and the first of the 10 record changes).
    dns.refuse_after(4);
    let mut sealed = false;
    let apply = run_while(dir.path(), &["apply", "--yes"], &env, Duration::from_secs(90), || {
        if !sealed && vault_proxy.writes().len() >= 8 {
            runtime.block_on(vault.seal()).unwrap();
            sealed = true;
        }
    });
    let stopped = dns.accepted() > 4;
    let shown = &apply.text;
    assert_eq!(apply.code, Some(1), "{shown}");
    assert!(sealed && stopped, "the apply ended before both faults (sealed {sealed}, stopped {stopped}): {shown}");
    assert!(apply.took < Duration::from_secs(60), "took {:?}: {shown}", apply.took);
    assert!(shown.contains("vault stopped answering earlier in this apply"), "{shown}");
    assert!(shown.contains("dns stopped answering earlier in this apply"), "{shown}");
    assert!(shown.contains("Vault is sealed") || shown.contains("sealed"), "the cause is named: {shown}");
    assert!(shown.contains("outcome unknown"), "{shown}");
    let outcomes = last_run_outcomes(dir.path(), &env);
    assert!(outcomes.iter().any(|(id, o)| id.starts_with("vault/") && o == "unknown"), "{outcomes:?}");
    assert!(outcomes.iter().any(|(id, o)| id.starts_with("vault/") && o == "done"), "{outcomes:?}");
    assert!(outcomes.iter().any(|(id, o)| id.starts_with("dns/") && o == "unknown"), "{outcomes:?}");

    // Unsealed and started again: the rerun converges.
    runtime.block_on(vault.unseal()).unwrap();
    dns.set(Mode::Forward);
    let rerun = run(dir.path(), &["apply", "--yes"], &env);
    assert_eq!(rerun.code, Some(0), "{}", rerun.text);
    let plan = run(dir.path(), &["plan", "--detailed-exitcode"], &env);
    assert_eq!(plan.code, Some(0), "converged: {}", plan.text);
    // Nothing twice: each user is one entity with one alias and its policy.
    runtime.block_on(async {
        let listed = vault.request("LIST", "identity/entity/name", None).await.unwrap();
        let names = listed["data"]["keys"].as_array().unwrap();
        assert_eq!(names.len(), users, "{listed}");
        for n in 0..users {
            let entity = vault.request("GET", &format!("identity/entity/name/{prefix}{n}"), None).await.unwrap();
            let aliases = entity["data"]["aliases"].as_array().unwrap();
            assert_eq!(aliases.len(), 1, "{entity}");
            assert_eq!(entity["data"]["policies"], serde_json::json!([format!("namespace-owner-{prefix}{n}")]));
        }
    });

    // Leave the shared zone as it was: everyone leaves and is destroyed.
    fs::write(
        dir.path().join("roster.yaml"),
        format!("platform:\n  name: {prefix}\n  domain: lab.test\nusers: {{}}\n"),
    )
    .unwrap();
    for n in 0..users {
        offboard_and_destroy(dir.path(), &format!("{prefix}{n}"), &env);
    }
}
