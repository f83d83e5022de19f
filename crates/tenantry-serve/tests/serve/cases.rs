//! The cases (see main.rs).

use crate::support::{
    Cluster, Replica, eventually, exists, free_port, metric, namespace_exists, relative, repo_root, roster,
};
use k8s_openapi::api::core::v1::{ConfigMap, ResourceQuota, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenantry_testenv::kube_proxy::Proxy;
use tenantry_testenv::private_vault::PrivateVault;

fn forbidden<T>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

/// tenantry.toml for a replica talking to the cluster through `kubeconfig`.
pub(crate) fn config(dir: &Path, name: &str, kubeconfig: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[local]\nout_dir = \"{d}/{name}-out\"\nstate = \"{d}/{name}-state/state.db\"\n\n[kubernetes]\nkubeconfig = \"{k}\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"300s\"\ndebounce = \"200ms\"\nbackoff_min = \"500ms\"\nbackoff_max = \"2s\"\n{extra}",
            d = dir.display(),
            k = kubeconfig.display()
        ),
    )
    .unwrap();
    path
}

fn last_pass_converged(status: &Option<serde_json::Value>) -> bool {
    status.as_ref().is_some_and(|s| s["last_pass"]["converged"] == json!(true))
}

// ---------------------------------------------------------------- RBAC

/// The example roster (its TLS copy aside: see the tls-copies component)
/// converges as the controller's ServiceAccount with the shipped RBAC; the
/// same identity reads no Secret where tenantry manages nothing, deletes no
/// namespace, and binds no ClusterRole tenantry does not grant.
pub async fn shipped_rbac_is_enough_and_no_more(c: Arc<Cluster>) {
    let id = format!("{}e", c.id);
    // The example roster with unique names, without the TLS copy.
    let text = std::fs::read_to_string(repo_root().join("examples/roster.yaml")).unwrap();
    let mut value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    value["platform"].as_object_mut().unwrap().remove("tls");
    value["platform"]["workstation"].as_object_mut().unwrap().remove("managed_files");
    value["platform"].as_object_mut().unwrap().remove("forge");
    // A platform of its own (its admission policies trust this run's ServiceAccount).
    value["platform"]["name"] = json!(id);
    value["platform"]["isolation_options"]["trusted_users"] = json!([c.identity.0]);
    let users = value["users"].as_object().unwrap().clone();
    let mut renamed = serde_json::Map::new();
    for (key, mut user) in users {
        if let Some(namespaces) = user.get_mut("namespaces").and_then(|n| n.as_array_mut()) {
            for ns in namespaces.iter_mut() {
                *ns = json!(format!("{id}-{}", ns.as_str().unwrap()));
            }
        }
        user["email"] = json!(format!("{id}{}", user["email"].as_str().unwrap()));
        if let Some(workstation) = user.get_mut("workstation").and_then(|w| w.as_object_mut()) {
            workstation.remove("os_user");
        }
        renamed.insert(format!("{id}{key}"), user);
    }
    value["users"] = serde_json::Value::Object(renamed);
    let dir = c.dir.path().join("rbac");
    std::fs::create_dir_all(&dir).unwrap();
    let roster_path = dir.join("roster.yaml");
    std::fs::write(&roster_path, serde_json::to_string(&value).unwrap()).unwrap();

    let proxy = Proxy::start(&c.kube, Some(c.identity.clone())).await.unwrap();
    let kubeconfig = c.proxy_kubeconfig(&proxy, "rbac");
    let config_path = config(&dir, "rbac", &kubeconfig, free_port(), "");
    let mut options = tenantry_app::SessionOptions::new(roster_path.display().to_string());
    options.config = Some(config_path.clone());
    let session = tenantry_app::Session::open(options.clone()).unwrap();
    let planned = session.plan(&tenantry_app::PlanRequest::default()).await.unwrap();
    assert!(planned.plan().problems.is_empty(), "{:?}", planned.plan().problems);
    let outcome = session
        .apply(&planned, &tenantry_app::ApplyRequest { concurrency: 8, after_apply: false }, &|_| {})
        .await
        .unwrap();
    assert!(outcome.report.is_success(), "as the ServiceAccount: {:?}", outcome.report.failures);
    drop(session);
    let again = tenantry_app::Session::open(options).unwrap();
    let replan = again.plan(&tenantry_app::PlanRequest::default()).await.unwrap();
    let pending: Vec<String> = replan
        .plan()
        .changes
        .iter()
        .filter(|c| c.target == "kubernetes" && c.action.is_change())
        .map(|c| c.id.to_string())
        .collect();
    assert!(pending.is_empty(), "converged, yet a second plan changes {pending:?}");
    assert!(namespace_exists(&c.admin, &format!("{id}-alice-prod")).await);

    let as_controller = c
        .kube
        .impersonating(&c.identity.0, &c.identity.1.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(as_controller.clone(), "kube-system");
    assert!(forbidden(secrets.list(&Default::default()).await), "the controller lists Secrets in kube-system");
    let secrets: Api<Secret> = Api::namespaced(as_controller.clone(), &c.ns);
    assert!(forbidden(secrets.get("anything").await), "the controller reads a Secret in its own namespace");
    let all_secrets: Api<Secret> = Api::all(as_controller.clone());
    assert!(forbidden(all_secrets.list(&Default::default()).await), "the controller lists every Secret");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(as_controller.clone());
    assert!(
        forbidden(namespaces.delete(&format!("{id}-alice"), &DeleteParams::default()).await),
        "the controller deletes namespaces (only the destroy stage may, with an admin's credentials)"
    );
    let bindings: Api<ClusterRoleBinding> = Api::all(as_controller.clone());
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    let bind = |role: &str| {
        serde_json::from_value::<ClusterRoleBinding>(json!({
            "metadata": { "name": format!("{id}-probe-{role}") },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role },
            "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory@example.org" }],
        }))
        .unwrap()
    };
    for role in ["edit", "system:node", "system:controller:clusterrole-aggregation-controller"] {
        assert!(
            forbidden(bindings.create(&dry_run, &bind(role)).await),
            "the controller may bind `{role}`, which tenantry never grants"
        );
    }
    // The documented limit: RBAC restricts `bind` by role, never by subject.
    // Whoever holds the ServiceAccount can make anyone cluster-admin.
    assert!(
        bindings.create(&dry_run, &bind("cluster-admin")).await.is_ok(),
        "README says the controller can bind cluster-admin to anyone; if RBAC now prevents it, update the README"
    );
    let namespaces: Vec<String> =
        ["alice", "alice-prod", "bob", "carol-lab"].iter().map(|n| format!("{id}-{n}")).collect();
    for ns in namespaces {
        let _ = c.kubectl(&["delete", "namespace", "--wait=false", &ns]);
    }
}

/// `kubectl apply --dry-run=server -k deploy/kustomize`, into a namespace of
/// this run (the base's own namespace, `tenantry`, is replaced by an overlay
/// so the shared apiserver is left as it was).
pub async fn kustomize_passes_a_server_side_dry_run(c: Arc<Cluster>) {
    let overlay = c.dir.path().join("dry-run");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "resources: [{}]\nnamePrefix: {id}-dry-\ncomponents: [{}]\n{}patches:\n  - target: {{ kind: Namespace }}\n    patch: |\n      - op: replace\n        path: /metadata/name\n        value: {ns}\n",
            relative(&overlay, &repo_root().join("deploy/kustomize")),
            relative(&overlay, &repo_root().join("deploy/kustomize/components/tls-copies")),
            crate::support::namespace_transformer(&c.ns),
            ns = c.ns,
            id = c.id,
        ),
    )
    .unwrap();
    let out = c.kubectl(&["apply", "--dry-run=server", "-k", overlay.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for object in [
        "deployment.apps/",
        "service/",
        "poddisruptionbudget.policy/",
        "clusterrole.rbac.authorization.k8s.io/",
        "configmap/",
    ] {
        assert!(stdout.contains(object), "{object} missing from:\n{stdout}");
    }
}

// ---------------------------------------------------------------- replicas

pub async fn two_replicas_one_applies_and_the_other_takes_over(c: Arc<Cluster>) {
    let id = format!("{}r", c.id);
    let dir = c.dir.path().join("replicas");
    std::fs::create_dir_all(&dir).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(c.admin.clone(), &c.ns);
    let put_roster = |text: String| {
        let maps = maps.clone();
        async move {
            let map: ConfigMap =
                serde_json::from_value(json!({ "metadata": { "name": "roster" }, "data": { "roster.yaml": text } }))
                    .unwrap();
            maps.patch("roster", &PatchParams::apply("test").force(), &Patch::Apply(&map)).await.unwrap();
        }
    };
    let with_quota = |extra: &[&str]| {
        roster(&id, &c.identity.0, extra).replace("namespaces: [", "quota: { pods: \"7\" }, namespaces: [")
    };
    put_roster(with_quota(&[])).await;
    let source = format!("kubernetes://{}/roster#roster.yaml", c.ns);
    let lease = format!("{}-lease", c.id);
    let election = |name: &str| {
        format!(
            "\n[serve.leader_election]\nnamespace = \"{}\"\nlease = \"{lease}\"\nidentity = \"{name}\"\nlease_duration = \"4s\"\n",
            c.ns
        )
    };
    let start = |name: &'static str| {
        let c = Arc::clone(&c);
        let dir = dir.clone();
        let source = source.clone();
        let extra = election(name);
        async move {
            let proxy = Proxy::start(&c.kube, Some(c.identity.clone())).await.unwrap();
            let kubeconfig = c.proxy_kubeconfig(&proxy, name);
            let port = free_port();
            let config = config(&dir, name, &kubeconfig, port, &extra);
            (Replica::start(name, &dir, &source, &config, port, &[]), proxy)
        }
    };

    let (a, proxy_a) = start("a").await;
    eventually(Duration::from_secs(60), "replica a leads and converges", || async {
        let status = a.status().await;
        Replica::role(&status).as_deref() == Some("leader") && last_pass_converged(&status)
    })
    .await;
    let (b, proxy_b) = start("b").await;
    eventually(Duration::from_secs(20), "replica b follows a", || async {
        let status = b.status().await;
        Replica::role(&status).as_deref() == Some("follower")
            && status.as_ref().is_some_and(|s| s["leader"] == json!("a"))
    })
    .await;
    assert_eq!(b.readyz().await.map(|(code, _)| code), Some(200), "a follower that knows the leader is ready");
    let owner_ns = format!("{id}-o");
    let owner_binding = format!("namespace-owner-{id}o");
    assert!(exists::<RoleBinding>(&c.admin, &owner_ns, &owner_binding).await, "a applied the roster");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!proxy_a.writes().is_empty(), "the leader wrote nothing");
    assert_eq!(proxy_b.writes(), Vec::<(String, String)>::new(), "the follower wrote to the cluster");
    let metrics_a = a.metrics().await;
    let metrics_b = b.metrics().await;
    assert_eq!(metric(&metrics_a, "tenantry_is_leader", &[]), 1.0);
    assert_eq!(metric(&metrics_b, "tenantry_is_leader", &[]), 0.0);
    assert_eq!(metric(&metrics_b, "tenantry_reconcile", &[]), 0.0, "the follower ran a pass");
    let converged_before = metric(&metrics_a, "tenantry_reconcile", &[("result", "converged")]);
    let created_before =
        metric(&metrics_a, "tenantry_changes_applied", &[("target", "kubernetes"), ("action", "create")]);
    assert!(converged_before >= 1.0 && created_before >= 7.0, "{converged_before} {created_before}");
    assert_eq!(metric(&metrics_a, "tenantry_users", &[("tier", "admin")]), 1.0);

    // A roster edit is applied within 5 s.
    let edited = Instant::now();
    put_roster(with_quota(&["n"])).await;
    let (new_ns, new_binding) = (format!("{id}-n"), format!("namespace-owner-{id}n"));
    let took = eventually(Duration::from_secs(5), "the new user's namespace", || {
        let admin = c.admin.clone();
        let (ns, name) = (new_ns.clone(), new_binding.clone());
        async move { exists::<RoleBinding>(&admin, &ns, &name).await }
    })
    .await;
    println!("roster edit applied in {took:?} (since the edit: {:?})", edited.elapsed());
    eventually(Duration::from_secs(5), "the onboarding's creates are counted when its pass ends", || async {
        let metrics = a.metrics().await;
        metric(&metrics, "tenantry_changes_applied", &[("target", "kubernetes"), ("action", "create")])
            >= created_before + 7.0
    })
    .await;

    // A deleted RoleBinding and an edited quota are restored through the watch.
    eventually(Duration::from_secs(10), "a idle after the edit", || async { last_pass_converged(&a.status().await) })
        .await;
    let drift_before = metric(&a.metrics().await, "tenantry_drift_detected", &[("target", "kubernetes")]);
    let bindings: Api<RoleBinding> = Api::namespaced(c.admin.clone(), &owner_ns);
    bindings.delete(&owner_binding, &DeleteParams::default()).await.unwrap();
    let took = eventually(Duration::from_secs(5), "the deleted RoleBinding comes back", || {
        let bindings = bindings.clone();
        let name = owner_binding.clone();
        async move { bindings.get_opt(&name).await.ok().flatten().is_some() }
    })
    .await;
    println!("deleted RoleBinding restored in {took:?}");
    let quotas: Api<ResourceQuota> = Api::namespaced(c.admin.clone(), &owner_ns);
    quotas
        .patch(
            "user-quota",
            &PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() },
            &Patch::Merge(json!({ "spec": { "hard": { "pods": "99" } } })),
        )
        .await
        .unwrap();
    let took = eventually(Duration::from_secs(5), "the edited quota is restored", || {
        let quotas = quotas.clone();
        async move {
            let quota = quotas.get("user-quota").await.unwrap();
            quota.spec.and_then(|s| s.hard).and_then(|h| h.get("pods").map(|q| q.0.clone())).as_deref() == Some("7")
        }
    })
    .await;
    println!("edited ResourceQuota restored in {took:?}");
    eventually(Duration::from_secs(5), "two repairs counted as drift when their passes end", || async {
        metric(&a.metrics().await, "tenantry_drift_detected", &[("target", "kubernetes")]) >= drift_before + 2.0
    })
    .await;
    let metrics_a = a.metrics().await;
    assert!(metric(&metrics_a, "tenantry_watch_events", &[("kind", "RoleBinding")]) >= 1.0);
    assert!(metric(&metrics_a, "tenantry_watch_events", &[("kind", "ResourceQuota")]) >= 1.0);
    assert_eq!(proxy_b.writes(), Vec::<(String, String)>::new(), "the follower repaired something");

    // a is cut off from the apiserver: it stops applying before its lease
    // can expire, and only then does b take over.
    proxy_a.refuse(true);
    let cut_off = Instant::now();
    let (mut a_stopped, mut b_leads) = (None, None);
    while a_stopped.is_none() || b_leads.is_none() {
        assert!(
            cut_off.elapsed() < Duration::from_secs(15),
            "no handover after cutting a off: a {a_stopped:?}, b {b_leads:?}"
        );
        if a_stopped.is_none() && Replica::role(&a.status().await).as_deref() != Some("leader") {
            a_stopped = Some(cut_off.elapsed());
        }
        if b_leads.is_none() && Replica::role(&b.status().await).as_deref() == Some("leader") {
            b_leads = Some(cut_off.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (a_stopped, b_leads) = (a_stopped.unwrap(), b_leads.unwrap());
    println!("a cut off: it stopped applying after {a_stopped:?}, b leads after {b_leads:?}");
    assert!(a_stopped < b_leads, "a still led when b took over ({a_stopped:?} ≥ {b_leads:?})");
    assert!(a_stopped < Duration::from_secs(4), "a led past its lease duration ({a_stopped:?})");
    let attempted_after: Vec<_> = proxy_a
        .seen()
        .into_iter()
        .filter(|s| s.at > cut_off + a_stopped + Duration::from_millis(100))
        .filter(|s| s.method != "GET" && !s.path.contains("/leases"))
        .map(|s| (s.method, s.path))
        .collect();
    assert_eq!(attempted_after, Vec::<(String, String)>::new(), "a tried to write after it stopped leading");
    proxy_a.refuse(false);
    eventually(Duration::from_secs(20), "a follows b once reconnected", || async {
        let status = a.status().await;
        Replica::role(&status).as_deref() == Some("follower")
            && status.as_ref().is_some_and(|s| s["leader"] == json!("b"))
    })
    .await;
    eventually(Duration::from_secs(10), "b converges", || async { last_pass_converged(&b.status().await) }).await;

    // kill -9 the leader (b): a takes over within the lease duration + 5 s and converges.
    let (mut a, mut b) = (a, b);
    let killed = Instant::now();
    b.signal("KILL");
    let took = eventually(Duration::from_secs(4 + 5), "a takes over after kill -9", || async {
        Replica::role(&a.status().await).as_deref() == Some("leader")
    })
    .await;
    println!("takeover after kill -9 in {took:?}");
    let writes_before = proxy_a.writes().len();
    bindings.delete(&owner_binding, &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(10), "a repairs drift as the leader again", || {
        let bindings = bindings.clone();
        let name = owner_binding.clone();
        async move { bindings.get_opt(&name).await.ok().flatten().is_some() }
    })
    .await;
    eventually(Duration::from_secs(10), "a converges", || async { last_pass_converged(&a.status().await) }).await;
    assert!(proxy_a.writes().len() > writes_before, "the new leader wrote nothing");
    let _ = b.wait_exit(Duration::from_secs(1));
    assert!(killed.elapsed() < Duration::from_secs(30));

    // SIGTERM the leader (a): it releases the lease and exits 0; c takes over at once.
    let (c_replica, proxy_c) = start("c").await;
    eventually(Duration::from_secs(20), "c follows a", || async {
        Replica::role(&c_replica.status().await).as_deref() == Some("follower")
    })
    .await;
    assert!(proxy_c.writes().is_empty());
    let terminated = Instant::now();
    a.signal("TERM");
    let took = eventually(Duration::from_secs(2), "c takes over at once after SIGTERM", || async {
        Replica::role(&c_replica.status().await).as_deref() == Some("leader")
    })
    .await;
    println!("takeover after SIGTERM in {took:?}");
    let exit = a
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("a still runs 5 s after SIGTERM:\n{}", a.log_text()));
    assert!(exit.success(), "a exited with {exit:?}:\n{}", a.log_text());
    println!("a exited {:?} after SIGTERM", terminated.elapsed());
    assert!(a.log_text().contains("released the lease"), "{}", a.log_text());
    eventually(Duration::from_secs(10), "c converges", || async { last_pass_converged(&c_replica.status().await) })
        .await;
    for ns in [format!("{id}-o"), format!("{id}-n")] {
        let _ = c.kubectl(&["delete", "namespace", "--wait=false", &ns]);
    }
}

// ---------------------------------------------------------------- vault

pub async fn a_vault_outage_stays_with_vault_and_a_broken_roster_is_never_applied(c: Arc<Cluster>) {
    let id = format!("{}v", c.id);
    let dir = c.dir.path().join("vault");
    std::fs::create_dir_all(&dir).unwrap();
    let bind = tenantry_testenv::bind().unwrap_or_else(|e| panic!("{e}"));
    let bao_port = free_port();
    let mut bao = PrivateVault::start_on(bao_port).await.unwrap_or_else(|e| panic!("{e}"));
    bao.mount_defaults().await.unwrap();
    let with_domains = |extra: &[&str]| {
        roster(&id, &c.identity.0, extra)
            .replace("namespaces: [", "domains: [DOMAIN], namespaces: [")
            .replace("DOMAIN", &format!("web-{id}"))
    };
    // One domain per user would collide; give each its own.
    let unique = |text: String| {
        let mut n = 0;
        text.lines()
            .map(|line| {
                if line.contains(&format!("domains: [web-{id}]")) {
                    n += 1;
                    line.replace(&format!("web-{id}]"), &format!("web{n}-{id}]"))
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let roster_path = dir.join("roster.yaml");
    std::fs::write(&roster_path, unique(with_domains(&[]))).unwrap();
    let proxy = Proxy::start(&c.kube, Some(c.identity.clone())).await.unwrap();
    let kubeconfig = c.proxy_kubeconfig(&proxy, "v");
    let port = free_port();
    let extra = format!(
        "\n[vault]\naddress = \"http://127.0.0.1:{bao_port}\"\n\n[dns]\nprovider = \"rfc2136\"\nzones = [\"{zone}\"]\nserver = \"{server}\"\ntsig_key_file = \"{key}\"\n",
        zone = bind.zone,
        server = bind.addr,
        key = bind.tsig_key_file.display()
    );
    // The [serve] table comes before [vault] and [dns] in the file.
    let config_path = config(&dir, "v", &kubeconfig, port, &extra);
    let replica =
        Replica::start("v", &dir, roster_path.to_str().unwrap(), &config_path, port, &[("VAULT_TOKEN", &bao.token)]);
    eventually(Duration::from_secs(60), "serve converges on kubernetes, vault and dns", || async {
        let status = replica.status().await;
        last_pass_converged(&status) && status.as_ref().is_some_and(|s| s["targets"]["vault"]["up"] == json!(true))
    })
    .await;
    assert_eq!(replica.readyz().await.map(|(code, _)| code), Some(200));
    assert_eq!(replica.healthz().await, Some(200));

    // A half-written roster: reported on /readyz and in metrics, nothing applied from it.
    let writes_before = proxy.writes().len();
    let errors_before = metric(&replica.metrics().await, "tenantry_roster_errors", &[]);
    std::fs::write(
        &roster_path,
        format!(
            "{}  {id}x: {{ email: {id}x@example.org, tier: namespace-owner, namespaces: [{id}-x",
            unique(with_domains(&[]))
        ),
    )
    .unwrap();
    eventually(Duration::from_secs(5), "the broken roster is reported on /readyz", || async {
        replica
            .readyz()
            .await
            .is_some_and(|(code, body)| code == 503 && body["reasons"].to_string().contains("the roster is invalid"))
    })
    .await;
    let metrics = replica.metrics().await;
    assert_eq!(metric(&metrics, "tenantry_roster_valid", &[]), 0.0);
    assert!(metric(&metrics, "tenantry_roster_errors", &[]) > errors_before);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(proxy.writes().len(), writes_before, "something was applied while the roster was broken");
    assert!(!namespace_exists(&c.admin, &format!("{id}-x")).await);

    // Vault stops while serving: its target fails and backs off, Kubernetes and DNS still converge.
    bao.stop().await;
    std::fs::write(&roster_path, unique(with_domains(&["n"]))).unwrap();
    eventually(Duration::from_secs(5), "the new user's namespace, without Vault", || {
        let admin = c.admin.clone();
        let ns = format!("{id}-n");
        async move { namespace_exists(&admin, &ns).await }
    })
    .await;
    eventually(Duration::from_secs(5), "/readyz says vault is down", || async {
        replica
            .readyz()
            .await
            .is_some_and(|(code, body)| code == 503 && body["reasons"].to_string().contains("target `vault` is down"))
    })
    .await;
    let status = replica.status().await.unwrap();
    assert_eq!(status["targets"]["kubernetes"]["up"], json!(true), "{status}");
    assert_eq!(status["targets"]["dns"]["up"], json!(true), "{status}");
    assert_eq!(status["targets"]["dns"]["failures"], json!(0), "{status}");
    let metrics = replica.metrics().await;
    assert_eq!(metric(&metrics, "tenantry_target_up", &[("target", "vault")]), 0.0);
    assert_eq!(metric(&metrics, "tenantry_target_up", &[("target", "kubernetes")]), 1.0);
    let failures = metric(&metrics, "tenantry_target_failures", &[("target", "vault")]);
    assert!(failures >= 1.0);
    assert!(metric(&metrics, "tenantry_target_backoff_seconds", &[("target", "vault")]) > 0.0);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        metric(&replica.metrics().await, "tenantry_target_failures", &[("target", "vault")]) > failures,
        "vault is retried (with backoff) while down"
    );

    // Vault back (a fresh dev server: empty): it converges without a restart.
    let bao = PrivateVault::start_on(bao_port).await.unwrap_or_else(|e| panic!("{e}"));
    bao.mount_defaults().await.unwrap();
    eventually(Duration::from_secs(15), "vault converges again", || async {
        let status = replica.status().await;
        status.as_ref().is_some_and(|s| {
            s["targets"]["vault"]["up"] == json!(true) && s["targets"]["vault"]["failures"] == json!(0)
        }) && replica.readyz().await.is_some_and(|(code, _)| code == 200)
    })
    .await;
    assert_eq!(metric(&replica.metrics().await, "tenantry_target_up", &[("target", "vault")]), 1.0);
    for ns in [format!("{id}-o"), format!("{id}-n")] {
        let _ = c.kubectl(&["delete", "namespace", "--wait=false", &ns]);
    }
}
