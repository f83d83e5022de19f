//! The roster as custom resources on the real apiserver: the definitions
//! `tenantry crds` prints install and refuse invalid `Tenant`s (schema and
//! CEL); a `serve` replica with `kubernetes://tenants` converges `Tenant`
//! objects created with kubectl, reports `Ready` (`kubectl wait` succeeds)
//! with `observedGeneration`, reconciles an edit, holds back only the two
//! tenants claiming one namespace, reads the objects with one list per
//! kind per pass, refuses to delete a `Tenant` annotated
//! `tenantry.dev/prevent-deletion`, and lets a deleted one go once its
//! user is departing.

use crate::support::{Cluster, Replica, eventually, free_port, namespace_exists};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tenantry_testenv::kube_proxy::Proxy;

/// Install (or update) the definitions exactly as printed by `tenantry crds`.
pub fn install_crds(c: &Cluster) {
    let path = c.dir.path().join("crds.yaml");
    std::fs::write(&path, tenantry_app::custom_resource_definitions()).unwrap();
    let out = c.kubectl(&["apply", "--server-side", "--force-conflicts", "-f", path.to_str().unwrap()]);
    assert!(out.status.success(), "kubectl apply crds: {}", String::from_utf8_lossy(&out.stderr));
    let out = c.kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=30s",
        "crd/tenants.tenantry.dev",
        "crd/platforms.tenantry.dev",
    ]);
    assert!(out.status.success(), "CRDs not established: {}", String::from_utf8_lossy(&out.stderr));
}

/// `kubectl create --dry-run=server` of `object`: Ok, or the apiserver's refusal.
fn dry_run(c: &Cluster, name: &str, object: &Value) -> Result<(), String> {
    let path = c.dir.path().join(format!("{name}.json"));
    std::fs::write(&path, object.to_string()).unwrap();
    let out = c.kubectl(&["create", "--dry-run=server", "-f", path.to_str().unwrap()]);
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

fn tenant(name: &str, labels: &Value, spec: Value) -> Value {
    json!({ "apiVersion": "tenantry.dev/v1alpha1", "kind": "Tenant",
            "metadata": { "name": name, "labels": labels }, "spec": spec })
}

pub async fn crds_install_and_refuse_invalid_tenants(c: Arc<Cluster>) {
    install_crds(&c);
    let id = format!("{}k", c.id);
    let labels = json!({});
    let valid = tenant(
        &format!("{id}a"),
        &labels,
        json!({ "email": "a@example.org", "tier": "namespace-owner", "namespaces": [format!("{id}-a")],
                "quota": { "pods": 30, "limits.memory": "8Gi" }, "workstation": { "code_layout": "workspace", "repos": ["x"] } }),
    );
    dry_run(&c, "valid", &valid).unwrap_or_else(|e| panic!("a valid Tenant is refused: {e}"));

    let refused = |case: &str, object: Value, expected: &str| {
        let error = dry_run(&c, case, &object).err().unwrap_or_else(|| panic!("{case}: accepted"));
        assert!(error.contains(expected), "{case}: {error}");
    };
    let owner =
        |namespaces: Value| json!({ "email": "a@example.org", "tier": "namespace-owner", "namespaces": namespaces });
    // CEL rules.
    refused(
        "no-namespaces",
        tenant(&format!("{id}b"), &labels, json!({ "email": "b@example.org", "tier": "namespace-owner" })),
        "a namespace-owner needs `namespaces`",
    );
    refused(
        "namespaces-of-admin",
        tenant(&format!("{id}c"), &labels, json!({ "email": "c@example.org", "tier": "admin", "namespaces": ["x"] })),
        "only a namespace-owner has `namespaces`",
    );
    refused(
        "kube-namespace",
        tenant(&format!("{id}d"), &labels, owner(json!(["kube-system"]))),
        "belong to the platform",
    );
    refused(
        "name-not-a-label",
        tenant(&format!("{id}.e"), &labels, json!({ "email": "e@example.org", "tier": "admin" })),
        "a Tenant's name is the user's key",
    );
    // The schema.
    refused(
        "unknown-tier",
        tenant(&format!("{id}f"), &labels, json!({ "email": "f@example.org", "tier": "admn" })),
        "Unsupported value: \"admn\"",
    );
    refused(
        "missing-email",
        tenant(&format!("{id}g"), &labels, json!({ "tier": "admin" })),
        "spec.email: Required value",
    );
    refused("bad-namespace", tenant(&format!("{id}h"), &labels, owner(json!(["Not_A_Label"]))), "spec.namespaces[0]");
    refused("duplicate-namespace", tenant(&format!("{id}i"), &labels, owner(json!(["x1", "x1"]))), "Duplicate value");
    refused(
        "unknown-field",
        tenant(&format!("{id}j"), &labels, json!({ "email": "j@example.org", "tier": "admin", "emial": "x" })),
        "unknown field \"spec.emial\"",
    );
}

fn condition(object: &Value, kind: &str) -> Option<Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind).cloned()
}

pub async fn tenants_converge_report_ready_and_hold_back_conflicts(c: Arc<Cluster>) {
    install_crds(&c);
    let id = format!("{}t", c.id);
    let label = format!("tenantry.dev/test-roster={id}");
    let labels = json!({ "tenantry.dev/test-roster": id });
    let dir = c.dir.path().join("tenants");
    std::fs::create_dir_all(&dir).unwrap();
    let apply = |name: &str, object: &Value| {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, object.to_string()).unwrap();
        let out = c.kubectl(&["apply", "--server-side", "-f", path.to_str().unwrap()]);
        assert!(out.status.success(), "kubectl apply {name}: {}", String::from_utf8_lossy(&out.stderr));
    };
    apply(
        "platform",
        &json!({ "apiVersion": "tenantry.dev/v1alpha1", "kind": "Platform",
                 "metadata": { "name": id, "labels": labels },
                 "spec": { "name": id, "domain": "lab.test", "isolation_options": { "trusted_users": [c.identity.0] } } }),
    );
    let owner = |user: &str, namespaces: &[String]| {
        tenant(
            &format!("{id}{user}"),
            &labels,
            json!({ "email": format!("{id}{user}@example.org"), "tier": "namespace-owner", "namespaces": namespaces }),
        )
    };
    apply("a", &owner("a", &[format!("{id}-a")]));
    apply("w", &tenant(&format!("{id}w"), &labels, json!({ "email": format!("{id}w@example.org"), "tier": "admin" })));
    // Two tenants claiming one namespace.
    apply("x", &owner("x", &[format!("{id}-shared")]));
    apply("y", &owner("y", &[format!("{id}-y"), format!("{id}-shared")]));

    let proxy = Proxy::start(&c.kube, Some(c.identity.clone())).await.unwrap();
    let kubeconfig = c.proxy_kubeconfig(&proxy, "tenants");
    let port = free_port();
    let config = crate::cases::config(&dir, "tenants", &kubeconfig, port, "");
    let source = format!("kubernetes://tenants?selector={label}");
    let replica = Replica::start("tenants", &dir, &source, &config, port, &[]);

    let ready = c.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=90s",
        &format!("tenant/{id}a"),
        &format!("tenant/{id}w"),
    ]);
    assert!(
        ready.status.success(),
        "kubectl wait --for=condition=Ready: {}\n{}",
        String::from_utf8_lossy(&ready.stderr),
        replica.log_text()
    );
    assert!(namespace_exists(&c.admin, &format!("{id}-a")).await);
    let get = |name: String| {
        let out = c.kubectl(&["get", "tenant", &name, "-o", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let a = get(format!("{id}a"));
    assert_eq!(a["status"]["observedGeneration"], a["metadata"]["generation"]);
    assert_eq!(condition(&a, "Ready").unwrap()["observedGeneration"], a["metadata"]["generation"]);
    assert_eq!(condition(&a, "Stalled").unwrap()["status"], "False");
    assert!(a["status"]["targets"]["kubernetes"]["applied"].as_u64().unwrap() > 0, "{a}");

    // The conflicting pair: both report it, neither is applied.
    for user in ["x", "y"] {
        let name = format!("{id}{user}");
        eventually(Duration::from_secs(30), &format!("{name} reports the conflict"), || {
            let object = get(name.clone());
            async move { condition(&object, "Stalled").is_some_and(|s| s["reason"] == "NamespaceClaimedTwice") }
        })
        .await;
        let object = get(name.clone());
        let other = if user == "x" { "y" } else { "x" };
        let message = condition(&object, "Stalled").unwrap()["message"].as_str().unwrap().to_string();
        assert!(message.contains(&format!("tenant/{id}{other}")), "{message}");
        assert_eq!(condition(&object, "Ready").unwrap()["status"], "False");
    }
    assert!(!namespace_exists(&c.admin, &format!("{id}-shared")).await, "a held-back user's namespace was created");
    assert!(!namespace_exists(&c.admin, &format!("{id}-y")).await, "a held-back user was applied in part");
    // Events were recorded for the changes.
    let events = c.kubectl(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        &format!("involvedObject.name={id}x"),
        "-o",
        "json",
    ]);
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "NamespaceClaimedTwice" && e["type"] == "Warning"),
        "{events}"
    );

    // An edit reconciles: a new namespace, the new generation observed.
    apply("a", &owner("a", &[format!("{id}-a"), format!("{id}-a2")]));
    let a2 = format!("{id}-a2");
    eventually(Duration::from_secs(30), "the edit is applied", || namespace_exists(&c.admin, &a2)).await;
    eventually(Duration::from_secs(30), "the new generation is observed", || {
        let a = get(format!("{id}a"));
        async move {
            a["metadata"]["generation"] == json!(2)
                && a["status"]["observedGeneration"] == json!(2)
                && condition(&a, "Ready").is_some_and(|r| r["status"] == "True")
        }
    })
    .await;
    // Resolving the conflict releases both.
    apply("y", &owner("y", &[format!("{id}-y")]));
    let y = format!("{id}-y");
    eventually(Duration::from_secs(30), "the released user converges", || namespace_exists(&c.admin, &y)).await;

    // The objects are read with one list per kind per pass, whatever their number.
    let lists: Vec<String> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET" && !s.watch && s.path.contains("/apis/tenantry.dev/"))
        .map(|s| s.path)
        .collect();
    assert!(lists.iter().all(|p| p.ends_with("/tenants") || p.ends_with("/platforms")), "{lists:?}");

    // tenantry.dev/prevent-deletion: the admission policy refuses the delete.
    let w = format!("tenant/{id}w");
    let out = c.kubectl(&["annotate", &w, "tenantry.dev/prevent-deletion=true"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refused = c.kubectl(&["delete", &w, "--wait=false"]);
    let error = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success() && error.contains("remove the annotation first"), "{error}");
    let out = c.kubectl(&["annotate", &w, "tenantry.dev/prevent-deletion-"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Deletion is departure: the finalizer holds the object until serve has
    // taken the user out of the roster, then lets it go.
    assert_eq!(get(format!("{id}a"))["metadata"]["finalizers"], json!(["tenantry.dev/departure"]));
    let deleted = c.kubectl(&["delete", &format!("tenant/{id}a"), "--wait=true", "--timeout=60s"]);
    assert!(
        deleted.status.success(),
        "the finalizer was not released: {}\n{}",
        String::from_utf8_lossy(&deleted.stderr),
        replica.log_text()
    );
    assert!(replica.log_text().contains("departure recorded"), "{}", replica.log_text());
    let user = json!(format!("{id}a"));
    eventually(Duration::from_secs(20), "the deleted user is departing in the last pass", || {
        let status = replica.status();
        let user = user.clone();
        async move {
            let Some(status) = status.await else { return false };
            let owners = status["last_pass"]["report"]["plan"]["owners"].as_array().cloned().unwrap_or_default();
            owners.iter().any(|o| o["owner"] == user && o["departing"] == true)
        }
    })
    .await;
    assert!(namespace_exists(&c.admin, &format!("{id}-a")).await, "departure is not destruction");

    drop(replica);
    // Without serve nobody releases the finalizers: take them off, then delete.
    let remaining = c.kubectl(&["get", "tenants", "-l", &label, "-o", "name"]);
    for object in String::from_utf8_lossy(&remaining.stdout).lines() {
        let _ = c.kubectl(&["patch", object, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    }
    let _ = c.kubectl(&["delete", "tenants,platforms", "-l", &label, "--wait=false"]);
    let namespaces: Vec<String> = ["a", "a2", "y", "shared"].iter().map(|n| format!("{id}-{n}")).collect();
    let mut args = vec!["delete", "namespace", "--ignore-not-found", "--wait=false"];
    args.extend(namespaces.iter().map(String::as_str));
    let _ = c.kubectl(&args);
}

/// 1,000 `Tenant`s: each roster read costs one list per kind, the first
/// pass writes each status once (bounded concurrency), and a pass after
/// one edit writes one status. Prints the figures.
pub async fn a_thousand_objects_cost_one_list_per_kind_per_read(c: Arc<Cluster>) {
    const USERS: usize = 1000;
    install_crds(&c);
    let id = format!("{}m", c.id);
    let label = format!("tenantry.dev/test-roster={id}");
    let labels = json!({ "tenantry.dev/test-roster": id });
    let dir = c.dir.path().join("thousand");
    std::fs::create_dir_all(&dir).unwrap();
    let items: Vec<Value> = (0..USERS)
        .map(|n| {
            tenant(
                &format!("{id}u{n}"),
                &labels,
                json!({ "email": format!("{id}u{n}@example.org"), "tier": "power-user" }),
            )
        })
        .collect();
    let list = dir.join("tenants.json");
    std::fs::write(&list, json!({ "apiVersion": "v1", "kind": "List", "items": items }).to_string()).unwrap();
    let created = std::time::Instant::now();
    let out = c.kubectl(&["apply", "--server-side", "-f", list.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    println!("  created {USERS} Tenants with kubectl in {:.1}s", created.elapsed().as_secs_f64());

    let proxy = Proxy::start(&c.kube, Some(c.identity.clone())).await.unwrap();
    let kubeconfig = c.proxy_kubeconfig(&proxy, "thousand");
    let port = free_port();
    // Only the local target: the cost measured is the roster's and the statuses'.
    let config = dir.join("thousand.toml");
    std::fs::write(
        &config,
        format!(
            "[local]\nout_dir = \"{d}/out\"\nstate = \"{d}/state/state.db\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ninterval = \"300s\"\ndebounce = \"200ms\"\nconcurrency = 16\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let source = format!("kubernetes://tenants?selector={label}");
    let replica =
        Replica::start("thousand", &dir, &source, &config, port, &[("KUBECONFIG", kubeconfig.to_str().unwrap())]);
    let status_patches = |proxy: &Proxy| {
        proxy.seen().into_iter().filter(|s| s.method == "PATCH" && s.path.ends_with("/status")).collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(300), "every Tenant's status is written", || {
        let written = status_patches(&proxy).len();
        async move { written >= USERS }
    })
    .await;
    let finalizer_patches = |proxy: &Proxy| {
        proxy
            .seen()
            .into_iter()
            .filter(|s| s.method == "PATCH" && !s.path.ends_with("/status") && s.path.contains("/tenants/"))
            .count()
    };
    eventually(Duration::from_secs(300), "every Tenant holds the finalizer", || {
        let held = finalizer_patches(&proxy);
        async move { held >= USERS }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = c.kubectl(&["get", "tenants", "-l", &label, "-o", "json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ready = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| condition(t, "Ready").is_some_and(|r| r["status"] == "True"))
        .count();
    assert_eq!(ready, USERS, "{}", replica.log_text());

    let seen = proxy.seen();
    let lists = |kind: &str| {
        seen.iter()
            .filter(|s| s.method == "GET" && !s.watch && s.path.ends_with(&format!("/tenantry.dev/v1alpha1/{kind}")))
            .count()
    };
    let passes = replica.log_text().matches("reconcile pass").count();
    let patches = status_patches(&proxy);
    let span = patches.last().unwrap().at.duration_since(patches.first().unwrap().at);
    let finalizers = seen
        .iter()
        .filter(|s| s.method == "PATCH" && !s.path.ends_with("/status") && s.path.contains("/tenants/"))
        .count();
    let events = seen.iter().filter(|s| s.method == "POST" && s.path.ends_with("/events")).count();
    println!(
        "  {USERS} Tenants, {passes} pass(es): {} Tenant list(s), {} Platform list(s) (one per roster read, plus the watches' first lists, paged by 500); {} status PATCHes in {:.2}s (concurrency 16); {finalizers} finalizer PATCHes; {events} Events",
        lists("tenants"),
        lists("platforms"),
        patches.len(),
        span.as_secs_f64()
    );
    assert_eq!(patches.len(), USERS, "each status written once");
    // Each roster read lists each kind once; the watches list each kind once when they start.
    assert!(lists("tenants") <= passes + 2 && lists("platforms") <= passes + 2, "lists grow with objects: {seen:?}");

    // One edit: one roster read more, one status written.
    let before = proxy.seen().len();
    let edited = tenant(
        &format!("{id}u7"),
        &labels,
        json!({ "email": format!("{id}u7@example.org"), "tier": "power-user", "groups": ["edited"] }),
    );
    let path = dir.join("edit.json");
    std::fs::write(&path, edited.to_string()).unwrap();
    let out = c.kubectl(&["apply", "--server-side", "-f", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually(Duration::from_secs(120), "the edit's status is written", || {
        let patches = status_patches(&proxy).len();
        async move { patches > USERS }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after: Vec<_> = proxy.seen().into_iter().skip(before).collect();
    let status_after = after.iter().filter(|s| s.method == "PATCH" && s.path.ends_with("/status")).count();
    let lists_after =
        after.iter().filter(|s| s.method == "GET" && !s.watch && s.path.contains("/tenantry.dev/")).count();
    println!("  after one edit: {lists_after} list(s), {status_after} status PATCH(es)");
    assert_eq!(status_after, 1, "only the edited Tenant's status changes: {after:?}");
    assert!(lists_after <= 4, "{after:?}");

    drop(replica);
    let out = c.kubectl(&["get", "tenants", "-l", &label, "-o", "name"]);
    for object in String::from_utf8_lossy(&out.stdout).lines() {
        let _ = c.kubectl(&["patch", object, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
    }
    let _ = c.kubectl(&["delete", "tenants", "-l", &label, "--wait=false"]);
}
