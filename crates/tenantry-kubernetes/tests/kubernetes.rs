//! The Kubernetes target against a real kube-apiserver (started by
//! `testenv/up kube`), acting as each tier by impersonation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ResourceQuota, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use tenantry_core::{Action, Policy, Settings};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};
use tenantry_kubernetes::KubernetesTarget;

#[path = "kubernetes/doctor.rs"]
mod doctor;
#[path = "kubernetes/isolation.rs"]
mod isolation;
#[path = "kubernetes/ownership.rs"]
mod ownership;

/// The admin kubeconfig written by testenv, or a clear failure saying how to start it.
fn kubeconfig_path() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("KUBECONFIG") {
        return path.into();
    }
    let env_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/testenv/env.sh");
    if let Ok(text) = std::fs::read_to_string(&env_file) {
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("export KUBECONFIG=") {
                return value.trim_matches(['"', '\'']).into();
            }
        }
    }
    panic!(
        "kube-apiserver is not running: start it with `testenv/up kube` (or run `bash scripts/test.sh`), then rerun"
    );
}

async fn config(impersonate: Option<&str>) -> kube::Config {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let path = kubeconfig_path();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; start the cluster with `testenv/up kube`", path.display()));
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    if let Some(user) = impersonate {
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = Some(vec!["system:authenticated".to_string()]);
    }
    config
}

async fn client(impersonate: Option<&str>) -> kube::Client {
    let client = kube::Client::try_from(config(impersonate).await).unwrap();
    if impersonate.is_none() && client.apiserver_version().await.is_err() {
        panic!("kube-apiserver is not reachable with {}: start it with `testenv/up kube`", kubeconfig_path().display());
    }
    client
}

use tenantry_testenv::run_id;

fn roster(text: &str) -> tenantry_model::Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
}

fn engine(target: KubernetesTarget, state: State) -> Engine {
    Engine::new(vec![Arc::new(target)], state, Arc::new(FixedClock("2026-11-28T12:00:00Z".into())), Settings::default())
}

async fn apply(engine: &Engine, roster: &tenantry_model::Roster, policy: Policy) -> (Prepared, ApplyReport) {
    let prepared = engine.prepare(roster, policy).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
    let report = engine
        .apply(
            roster,
            &prepared,
            &ApplyOptions { concurrency: 8, command: "test".into(), ..ApplyOptions::default() },
            &|_| {},
        )
        .await
        .unwrap();
    (prepared, report)
}

/// Four users, one per tier, on the origin's model (`isolation: none`):
/// the tests that use it check the origin's rights; isolation has its own.
fn team(id: &str) -> String {
    format!(
        "platform: {{ name: team{id}, isolation: none }}
users:
  alice{id}: {{ email: alice{id}@example.org, tier: namespace-owner, namespaces: [alice{id}, alice{id}-prod], quota: {{ pods: \"1\" }} }}
  bob{id}: {{ email: bob{id}@example.org, tier: namespace-owner, namespaces: [bob{id}] }}
  emo{id}: {{ email: emo{id}@example.org, tier: power-user }}
  wiz{id}: {{ email: wiz{id}@example.org, tier: admin }}
"
    )
}

async fn can(
    client: &kube::Client,
    verb: &str,
    resource: &str,
    subresource: Option<&str>,
    namespace: Option<&str>,
) -> bool {
    can_review(client, verb, None, resource, subresource, namespace).await
}

/// Whether `client` may `verb` a resource of an API group (cluster-wide when `namespace` is none).
async fn can_in_group(client: &kube::Client, verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> bool {
    can_review(client, verb, Some(group), resource, None, namespace).await
}

async fn can_review(
    client: &kube::Client,
    verb: &str,
    group: Option<&str>,
    resource: &str,
    subresource: Option<&str>,
    namespace: Option<&str>,
) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: group.map(Into::into),
                resource: Some(resource.into()),
                subresource: subresource.map(Into::into),
                namespace: namespace.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    api.create(&PostParams::default(), &review).await.unwrap().status.unwrap().allowed
}

fn deployment(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": name },
        "spec": { "replicas": 0, "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } },
                                "spec": { "containers": [{ "name": "c", "image": "example.invalid/none" }] } } }
    })
}

async fn create_deployment(client: &kube::Client, namespace: &str, name: &str) -> Result<(), kube::Error> {
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &kube::core::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk("apps", "v1", "Deployment")),
    );
    api.create(&PostParams::default(), &serde_json::from_value(deployment(name)).unwrap()).await.map(|_| ())
}

fn forbidden(result: Result<(), kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

#[tokio::test]
async fn the_whole_catalog_applies_and_each_tier_has_exactly_its_rights() {
    let id = run_id();
    let admin = client(None).await;
    let roster = roster(&team(&id));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);

    // A second run is a no-op.
    let again = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(
        !again.plan.has_changes(),
        "{:#?}",
        again.plan.changes.iter().filter(|c| c.action.is_change()).collect::<Vec<_>>()
    );

    let namespace: Api<Namespace> = Api::all(admin.clone());
    let ns = namespace.get(&format!("alice{id}-prod")).await.unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "tenantry");
    assert_eq!(labels["tenantry.dev/user"], format!("alice{id}"));

    let alice = client(Some(&format!("alice{id}@example.org"))).await;
    for ns in [format!("alice{id}"), format!("alice{id}-prod")] {
        create_deployment(&alice, &ns, "web").await.unwrap_or_else(|e| panic!("alice cannot deploy in {ns}: {e}"));
    }
    assert!(
        forbidden(create_deployment(&alice, &format!("bob{id}"), "web").await),
        "alice must not deploy in bob's namespace"
    );
    let quota: Api<ResourceQuota> = Api::namespaced(alice.clone(), &format!("alice{id}"));
    let patch = json!({ "spec": { "hard": { "pods": "100" } } });
    assert!(
        matches!(quota.patch("user-quota", &PatchParams::default(), &Patch::Merge(&patch)).await, Err(kube::Error::Api(s)) if s.code == 403),
        "alice must not raise her own quota"
    );
    let bindings: Api<ClusterRoleBinding> = Api::all(alice.clone());
    let escalate: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": format!("steal-{id}") },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": format!("alice{id}@example.org") }]
    }))
    .unwrap();
    assert!(
        matches!(bindings.create(&PostParams::default(), &escalate).await, Err(kube::Error::Api(s)) if s.code == 403)
    );
    let local: Api<RoleBinding> = Api::namespaced(alice.clone(), &format!("alice{id}"));
    let local_escalate: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "me-admin" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": format!("alice{id}@example.org") }]
    }))
    .unwrap();
    assert!(
        matches!(local.create(&PostParams::default(), &local_escalate).await, Err(kube::Error::Api(s)) if s.code == 403),
        "alice must not bind cluster-admin in her namespace"
    );

    let emo = client(Some(&format!("emo{id}@example.org"))).await;
    let pods: Api<Pod> = Api::all(emo.clone());
    pods.list(&ListParams::default()).await.expect("power-users list pods everywhere");
    assert!(!can(&emo, "get", "secrets", None, Some(&format!("bob{id}"))).await, "power-users never read secrets");
    assert!(!can(&emo, "create", "pods", Some("exec"), Some(&format!("bob{id}"))).await, "power-users never exec");
    assert!(!can(&emo, "create", "deployments", None, Some(&format!("bob{id}"))).await);

    let wiz = client(Some(&format!("wiz{id}@example.org"))).await;
    assert!(can(&wiz, "*", "*", None, None).await, "admins are cluster-admin");
    assert!(
        can(&alice, "list", "pods", None, Some(&format!("bob{id}"))).await,
        "namespace-owners see the cluster read-only"
    );
    assert!(!can(&alice, "get", "secrets", None, Some(&format!("bob{id}"))).await);
}

#[tokio::test]
async fn drift_is_planned_and_restored_and_deleted_bindings_come_back() {
    let id = run_id();
    let admin = client(None).await;
    let roster = roster(&team(&id));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    assert!(apply(&engine, &roster, Policy::default()).await.1.is_success());

    // A hand edit (another field manager) of the quota, and a deleted binding.
    let quota: Api<ResourceQuota> = Api::namespaced(admin.clone(), &format!("bob{id}"));
    let edit = json!({ "spec": { "hard": { "pods": "500" } } });
    quota
        .patch(
            "user-quota",
            &PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() },
            &Patch::Merge(&edit),
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &format!("bob{id}"));
    bindings.delete(&format!("namespace-owner-bob{id}"), &DeleteParams::default()).await.unwrap();

    let plan = engine.prepare(&roster, Policy::default()).await.unwrap().plan;
    let action = |name: &str| plan.changes.iter().find(|c| c.id.to_string() == name).map(|c| c.action);
    assert_eq!(action(&format!("kubernetes/ResourceQuota/bob{id}/user-quota")), Some(Action::Update));
    assert_eq!(action(&format!("kubernetes/RoleBinding/bob{id}/namespace-owner-bob{id}")), Some(Action::Create));

    assert!(apply(&engine, &roster, Policy::default()).await.1.is_success());
    assert_eq!(quota.get("user-quota").await.unwrap().spec.unwrap().hard.unwrap()["pods"].0, "20");
    bindings.get(&format!("namespace-owner-bob{id}")).await.unwrap();
    assert!(!engine.prepare(&roster, Policy::default()).await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn existing_namespaces_are_adopted_and_a_namespace_of_another_user_is_a_conflict() {
    let id = run_id();
    let admin = client(None).await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let hand_made: Namespace = serde_json::from_value(json!({ "metadata": { "name": format!("bob{id}") } })).unwrap();
    namespaces.create(&PostParams::default(), &hand_made).await.unwrap();
    let foreign: Namespace = serde_json::from_value(json!({ "metadata": { "name": format!("alice{id}-prod"),
        "labels": { "app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/user": "mallory" } } }))
    .unwrap();
    namespaces.create(&PostParams::default(), &foreign).await.unwrap();

    let roster = roster(&team(&id));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    let change = |name: String| prepared.plan.changes.iter().find(|c| c.id.to_string() == name).unwrap().clone();
    assert_eq!(change(format!("kubernetes/Namespace/-/bob{id}")).action, Action::Adopt);
    let conflict = change(format!("kubernetes/Namespace/-/alice{id}-prod"));
    assert_eq!(conflict.action, Action::Conflict);
    assert!(
        conflict.reason.contains("`mallory`") && conflict.reason.contains(&format!("`alice{id}`")),
        "{}",
        conflict.reason
    );

    // Only alice fails (and only what needs that namespace); the others are applied.
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec![format!("alice{id}")]);
    let adopted = namespaces.get(&format!("bob{id}")).await.unwrap();
    assert_eq!(adopted.metadata.labels.unwrap()["tenantry.dev/user"], format!("bob{id}"));
    assert_eq!(
        namespaces.get(&format!("alice{id}-prod")).await.unwrap().metadata.labels.unwrap()["tenantry.dev/user"],
        "mallory",
        "never taken over"
    );
}

#[tokio::test]
async fn a_server_rejection_fails_one_user_and_the_summary_says_why() {
    let id = run_id();
    let admin = client(None).await;
    // roleRef is immutable: a hand-made binding with tenantry's name and another role makes the server reject our apply.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": format!("bob{id}") } })).unwrap(),
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &format!("bob{id}"));
    let odd: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": format!("namespace-owner-bob{id}") },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view" },
        "subjects": [{ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "someone@example.org" }]
    }))
    .unwrap();
    bindings.create(&PostParams::default(), &odd).await.unwrap();

    let roster = roster(&team(&id));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec![format!("bob{id}")], "{:?}", report.failures);
    let failure = report.failures.iter().find(|f| !f.skipped).unwrap();
    assert!(
        failure.error.contains("roleRef") || failure.error.contains("immutable") || failure.error.contains("Invalid"),
        "{}",
        failure.error
    );
    for user in [format!("alice{id}"), format!("emo{id}"), format!("wiz{id}")] {
        assert!(report.applied.keys().any(|o| o.to_string() == user), "{user} applied");
    }
}

#[tokio::test]
async fn offboarding_cuts_bindings_and_keeps_namespaces() {
    let id = run_id();
    let admin = client(None).await;
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    assert!(apply(&engine, &roster(&team(&id)), Policy::default()).await.1.is_success());
    let without_bob: String =
        team(&id).lines().filter(|l| !l.contains(&format!("bob{id}"))).collect::<Vec<_>>().join("\n");
    let after = roster(&without_bob);

    let (prepared, _) = apply(&engine, &after, Policy::default()).await;
    assert!(prepared.plan.departing.contains(&format!("bob{id}")));
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &format!("bob{id}"));
    bindings.get(&format!("namespace-owner-bob{id}")).await.expect("kept until --offboard");

    let (_, report) = apply(&engine, &after, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert!(
        matches!(bindings.get(&format!("namespace-owner-bob{id}")).await, Err(kube::Error::Api(s)) if s.code == 404)
    );
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    assert!(crbs.get(&format!("oidc-ns-owner-readonly-bob{id}")).await.is_err());
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.get(&format!("bob{id}")).await.expect("the cut keeps namespaces");
}

#[tokio::test]
async fn the_server_rejects_a_pod_over_the_users_quota() {
    let id = run_id();
    let admin = client(None).await;
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    assert!(apply(&engine, &roster(&team(&id)), Policy::default()).await.1.is_success());
    let namespace = format!("alice{id}");

    // The quota controller must have computed usage before admission counts pods.
    let quotas: Api<ResourceQuota> = Api::namespaced(admin.clone(), &namespace);
    let mut synced = false;
    for _ in 0..60 {
        let quota = quotas.get("user-quota").await.unwrap();
        if quota.status.and_then(|s| s.hard).is_some_and(|hard| hard.contains_key("pods")) {
            synced = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        synced,
        "quota status never computed: kube-controller-manager is not running; start it with `testenv/up kube`"
    );

    // Pods need the namespace's default service account, created by the controller-manager.
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin.clone(), &namespace);
    for _ in 0..60 {
        if accounts.get("default").await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    let alice = client(Some(&format!("alice{id}@example.org"))).await;
    let pods: Api<Pod> = Api::namespaced(alice, &namespace);
    let pod = |name: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "automountServiceAccountToken": false, "containers": [{ "name": "c", "image": "example.invalid/none" }] }
        }))
        .unwrap()
    };
    pods.create(&PostParams::default(), &pod("first"))
        .await
        .expect("the first pod fits the quota (LimitRange supplies requests)");
    let mut rejected = None;
    for _ in 0..20 {
        match pods.create(&PostParams::default(), &pod("second")).await {
            Err(kube::Error::Api(status)) if status.code == 403 && status.message.contains("exceeded quota") => {
                rejected = Some(status.message);
                break;
            }
            Err(kube::Error::Api(status)) if status.message.contains("status unknown") => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            other => panic!("a second pod must exceed pods: 1, got {other:?}"),
        }
    }
    let message = rejected.expect("the server never rejected the pod over quota");
    assert!(message.contains("user-quota"), "{message}");
}

// ---- TLS: the copy of `platform.tls.source` is validated (SPEC §3, §8.4); cert-manager mode.

/// A certificate for `names` valid from a day ago until `days_left` days from
/// now (negative: expired), with its key, as PEM. Relative to the real clock,
/// which is what the target checks against.
fn certificate(names: &[&str], days_left: i64) -> (String, String) {
    let day = std::time::Duration::from_secs(86_400);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let now = rcgen::date_time_ymd(1970, 1, 1) + now;
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, names[0]);
    params.not_before = now - day * 60;
    params.not_after = if days_left >= 0 {
        now + day * u32::try_from(days_left).unwrap() + std::time::Duration::from_secs(3600)
    } else {
        now - day * u32::try_from(-days_left).unwrap()
    };
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Create (or replace) the TLS source Secret `wildcard` in `namespace`.
async fn tls_source(admin: &kube::Client, namespace: &str, crt: &[u8], key: &[u8]) {
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": namespace } })).unwrap();
    let _ = namespaces.create(&PostParams::default(), &ns).await;
    let mut data = std::collections::BTreeMap::new();
    data.insert("tls.crt".to_string(), k8s_openapi::ByteString(crt.to_vec()));
    data.insert("tls.key".to_string(), k8s_openapi::ByteString(key.to_vec()));
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("wildcard".into()), ..Default::default() },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(data),
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), namespace);
    let mut value = serde_json::to_value(&secret).unwrap();
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Secret");
    secrets.patch("wildcard", &PatchParams::apply("platform-admin").force(), &Patch::Apply(&value)).await.unwrap();
}

/// alice's domain is under the wildcard, bob's is one label too deep; emo has no namespace.
fn tls_team(id: &str, tls: &str) -> String {
    format!(
        "platform:
  name: tls{id}
  domain: example.org
  tls: {tls}
users:
  tlsa{id}: {{ email: tlsa{id}@example.org, tier: namespace-owner, namespaces: [tlsa{id}, tlsa{id}-prod], domains: [shop{id}] }}
  tlsb{id}: {{ email: tlsb{id}@example.org, tier: namespace-owner, namespaces: [tlsb{id}], domains: [blog.tlsb{id}] }}
  tlse{id}: {{ email: tlse{id}@example.org, tier: power-user }}
"
    )
}

fn failure_of<'a>(report: &'a ApplyReport, id: &str) -> Option<&'a tenantry_engine::Failure> {
    report.failures.iter().find(|f| f.id == id)
}

async fn secret_data(
    admin: &kube::Client,
    namespace: &str,
) -> Option<std::collections::BTreeMap<String, k8s_openapi::ByteString>> {
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), namespace);
    secrets.get_opt("tls-secret").await.unwrap().and_then(|s| s.data)
}

#[tokio::test]
async fn a_valid_tls_source_is_copied_only_where_it_covers_the_domains_and_ciphertext_never_replaces_it() {
    let id = run_id();
    let admin = client(None).await;
    let source_ns = format!("tls-src-{id}");
    let (crt, key) = certificate(&["*.example.org"], 90);
    tls_source(&admin, &source_ns, crt.as_bytes(), key.as_bytes()).await;
    let roster = roster(&tls_team(&id, &format!("{{ source: {{ namespace: {source_ns}, name: wildcard }} }}")));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    let (_, report) = apply(&engine, &roster, Policy::default()).await;

    // alice's copies hold the source's data, and say where from and for which domains.
    for ns in [format!("tlsa{id}"), format!("tlsa{id}-prod")] {
        let data = secret_data(&admin, &ns).await.unwrap_or_else(|| panic!("no copy in {ns}: {:?}", report.failures));
        assert_eq!(data["tls.crt"].0, crt.as_bytes());
        assert_eq!(data["tls.key"].0, key.as_bytes());
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
        let annotations = secrets.get("tls-secret").await.unwrap().metadata.annotations.unwrap();
        assert_eq!(annotations["tenantry.dev/copied-from"], format!("{source_ns}/wildcard"));
        assert_eq!(annotations["tenantry.dev/tls-domains"], format!("shop{id}.example.org"));
    }
    // bob's domain is two labels under the wildcard: only his copy is refused, with the reason.
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec![format!("tlsb{id}")], "{:?}", report.failures);
    let refusal = failure_of(&report, &format!("kubernetes/Secret/tlsb{id}/tls-secret")).unwrap();
    assert!(
        refusal.error.contains(&format!("does not cover `blog.tlsb{id}.example.org`"))
            && refusal.error.contains("`*.example.org`"),
        "{}",
        refusal.error
    );
    assert!(secret_data(&admin, &format!("tlsb{id}")).await.is_none());
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.get(&format!("tlsb{id}")).await.expect("bob's other resources are applied");
    assert!(report.applied.keys().any(|o| o.to_string() == format!("tlse{id}")));

    // A second plan: alice's copies are no-ops; bob's refused copy, which
    // does not exist, is named in the plan before it is tried again.
    let again = engine.prepare(&roster, Policy::default()).await.unwrap().plan;
    let pending: Vec<String> =
        again.changes.iter().filter(|c| c.action.is_change()).map(|c| c.id.to_string()).collect();
    assert_eq!(pending, vec![format!("kubernetes/Secret/tlsb{id}/tls-secret")]);
    let about_source: Vec<&str> =
        again.problems.iter().map(|p| p.message.as_str()).filter(|m| m.contains(&source_ns)).collect();
    assert_eq!(about_source.len(), 1, "{about_source:?}");
    assert!(
        about_source[0].contains(&format!("tlsb{id}/tls-secret")) && about_source[0].contains("does not cover"),
        "{about_source:?}"
    );

    // SPEC §8.4: the source is replaced from a locked git-crypt checkout.
    let mut ciphertext = b"\0GITCRYPT\0".to_vec();
    ciphertext.extend_from_slice(&[0x13, 0x9f, 0x00, 0xe2, 0x41]);
    tls_source(&admin, &source_ns, &ciphertext, &ciphertext).await;
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let problem = prepared.plan.problems.iter().find(|p| p.message.contains(&source_ns)).expect("the plan says so");
    assert!(
        problem.message.contains("git-crypt ciphertext: the checkout is locked; run `git-crypt unlock`")
            && problem.message.contains(&format!("tlsa{id}/tls-secret")),
        "{}",
        problem.message
    );
    assert!(!problem.blocking, "only the copies fail");
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    let refusal = failure_of(&report, &format!("kubernetes/Secret/tlsa{id}/tls-secret")).unwrap();
    assert!(refusal.error.contains("the checkout is locked; run `git-crypt unlock`"), "{}", refusal.error);
    for ns in [format!("tlsa{id}"), format!("tlsa{id}-prod")] {
        assert_eq!(secret_data(&admin, &ns).await.unwrap()["tls.crt"].0, crt.as_bytes(), "the good copy is kept");
    }
}

#[tokio::test]
async fn an_expired_or_mismatched_source_is_refused_and_the_rest_still_applies() {
    let id = run_id();
    let admin = client(None).await;
    let source_ns = format!("tls-src-{id}");
    let (crt, key) = certificate(&["*.example.org", &format!("*.tlsb{id}.example.org")], -3);
    tls_source(&admin, &source_ns, crt.as_bytes(), key.as_bytes()).await;
    let roster = roster(&tls_team(&id, &format!("{{ source: {{ namespace: {source_ns}, name: wildcard }} }}")));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    // The plan already says so, before any copy exists.
    let first_plan = engine.prepare(&roster, Policy::default()).await.unwrap();
    let problems: Vec<&str> = first_plan.plan.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        problems.iter().any(|m| m.contains(&format!("{source_ns}/wildcard")) && m.contains("expired on")),
        "{problems:?}"
    );
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    let copies = [format!("tlsa{id}/tls-secret"), format!("tlsa{id}-prod/tls-secret"), format!("tlsb{id}/tls-secret")];
    let refused: Vec<&str> = report.failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(refused.len(), 3, "only the three copies fail: {:?}", report.failures);
    for copy in &copies {
        let failure = failure_of(&report, &format!("kubernetes/Secret/{copy}")).unwrap();
        assert!(failure.error.contains("expired on"), "{}", failure.error);
        assert!(failure.error.contains(&format!("TLS source `{source_ns}/wildcard` not copied")), "{}", failure.error);
    }
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for ns in [format!("tlsa{id}"), format!("tlsa{id}-prod"), format!("tlsb{id}")] {
        namespaces.get(&ns).await.expect("namespaces are applied");
        assert!(secret_data(&admin, &ns).await.is_none(), "no expired copy in {ns}");
    }
    let bindings: Api<ClusterRoleBinding> = Api::all(admin.clone());
    bindings.get(&format!("oidc-power-user-readonly-tlse{id}")).await.expect("other users still apply");

    // A fresh certificate with the key of another one.
    let (fresh, _) = certificate(&["*.example.org"], 90);
    let (_, other_key) = certificate(&["*.example.org"], 90);
    tls_source(&admin, &source_ns, fresh.as_bytes(), other_key.as_bytes()).await;
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    let failure = failure_of(&report, &format!("kubernetes/Secret/tlsa{id}/tls-secret")).unwrap();
    assert!(
        failure.error.contains("the private key does not match the leaf certificate (`CN=*.example.org`)"),
        "{}",
        failure.error
    );
    assert!(secret_data(&admin, &format!("tlsa{id}")).await.is_none());
}

#[tokio::test]
async fn a_source_expiring_within_fourteen_days_is_copied_with_a_warning_in_the_plan() {
    let id = run_id();
    let admin = client(None).await;
    let source_ns = format!("tls-src-{id}");
    let (crt, key) = certificate(&["*.example.org", &format!("*.tlsb{id}.example.org")], 10);
    tls_source(&admin, &source_ns, crt.as_bytes(), key.as_bytes()).await;
    let roster = roster(&tls_team(&id, &format!("{{ source: {{ namespace: {source_ns}, name: wildcard }} }}")));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "a warning does not stop the copy: {:?}", report.failures);
    assert_eq!(secret_data(&admin, &format!("tlsb{id}")).await.unwrap()["tls.crt"].0, crt.as_bytes());

    let plan = engine.prepare(&roster, Policy::default()).await.unwrap().plan;
    assert!(!plan.has_changes());
    let warnings: Vec<&tenantry_core::PlanProblem> =
        plan.problems.iter().filter(|p| p.message.contains(&source_ns)).collect();
    assert_eq!(warnings.len(), 1, "one problem for every copy of one source: {warnings:?}");
    assert!(
        warnings[0].message.contains("warning: the certificate `CN=*.example.org` expires in 10 days")
            && warnings[0].message.contains("(copied to "),
        "{}",
        warnings[0].message
    );
    assert!(!warnings[0].blocking && !plan.is_blocked());
}

const CERTIFICATE_CRD: &str = "certificates.cert-manager.io";

async fn certificate_crd(admin: &kube::Client, installed: bool) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    if installed {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": { "name": CERTIFICATE_CRD },
            "spec": {
                "group": "cert-manager.io", "scope": "Namespaced",
                "names": { "kind": "Certificate", "listKind": "CertificateList", "plural": "certificates", "singular": "certificate" },
                "versions": [{ "name": "v1", "served": true, "storage": true,
                    "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }]
            }
        }))
        .unwrap();
        let _ = crds.create(&PostParams::default(), &crd).await;
    } else {
        let _ = crds.delete(CERTIFICATE_CRD, &DeleteParams::default()).await;
    }
    // Until the API serves (or stops serving) the kind.
    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
        "certificates",
    );
    let certificates: Api<kube::api::DynamicObject> = Api::all_with(admin.clone(), &resource);
    for _ in 0..120 {
        let served = certificates.list(&ListParams::default()).await.is_ok();
        if served == installed && crds.get_opt(CERTIFICATE_CRD).await.unwrap().is_some() == installed {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    panic!("the Certificate CRD never became {}", if installed { "served" } else { "unserved" });
}

/// One test for both states of the CRD: the tests of this binary run in
/// parallel, and no other one touches Certificates.
#[tokio::test]
async fn with_an_issuer_each_namespace_gets_a_cert_manager_certificate_and_a_missing_crd_is_named() {
    let id = run_id();
    let admin = client(None).await;
    let roster = roster(&tls_team(&id, "{ issuer: { name: letsencrypt, kind: ClusterIssuer } }"));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());

    // Without the CRD: a plan problem, each Certificate fails with the fix, the rest applies.
    certificate_crd(&admin, false).await;
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    let problem =
        prepared.plan.problems.iter().find(|p| p.message.contains("certificates")).expect("named in the plan");
    assert!(
        problem.message.contains("the cluster does not serve `cert-manager.io/v1` certificates")
            && problem.message.contains("install cert-manager"),
        "{}",
        problem.message
    );
    let certificate_ids =
        [format!("tlsa{id}/tls-secret"), format!("tlsa{id}-prod/tls-secret"), format!("tlsb{id}/tls-secret")];
    for certificate in &certificate_ids {
        let failure = failure_of(&report, &format!("kubernetes/Certificate/{certificate}")).unwrap();
        assert!(failure.error.contains("unset `platform.tls.issuer`"), "{}", failure.error);
    }
    assert_eq!(report.failures.len(), 3, "{:?}", report.failures);
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.get(&format!("tlsa{id}")).await.expect("namespaces are applied without the CRD");

    // With the CRD: one Certificate per namespace for the owner's domains.
    certificate_crd(&admin, true).await;
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    for (ns, domain) in [
        (format!("tlsa{id}"), format!("shop{id}.example.org")),
        (format!("tlsa{id}-prod"), format!("shop{id}.example.org")),
        (format!("tlsb{id}"), format!("blog.tlsb{id}.example.org")),
    ] {
        let resource = kube::core::ApiResource::from_gvk_with_plural(
            &kube::core::GroupVersionKind::gvk("cert-manager.io", "v1", "Certificate"),
            "certificates",
        );
        let certificates: Api<kube::api::DynamicObject> = Api::namespaced_with(admin.clone(), &ns, &resource);
        let certificate = certificates.get("tls-secret").await.unwrap();
        assert_eq!(
            certificate.data["spec"],
            json!({
                "secretName": "tls-secret",
                "dnsNames": [domain],
                "issuerRef": { "name": "letsencrypt", "kind": "ClusterIssuer", "group": "cert-manager.io" },
            })
        );
        assert_eq!(certificate.metadata.labels.unwrap()["app.kubernetes.io/managed-by"], "tenantry");
        assert!(secret_data(&admin, &ns).await.is_none(), "no copy in issuer mode");
    }
    let again = engine.prepare(&roster, Policy::default()).await.unwrap().plan;
    assert!(!again.has_changes(), "{:#?}", again.changes.iter().filter(|c| c.action.is_change()).collect::<Vec<_>>());
    assert!(again.problems.iter().all(|p| !p.message.contains("certificates")), "{:?}", again.problems);
}

#[tokio::test]
async fn the_destroy_stage_backs_up_each_namespace_before_deleting_it() {
    let id = run_id();
    let bob = format!("bob{id}");
    let admin = client(None).await;
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    assert!(apply(&engine, &roster(&team(&id)), Policy::default()).await.1.is_success());
    let notes: Api<ConfigMap> = Api::namespaced(admin.clone(), &bob);
    let data =
        serde_json::from_value(json!({ "metadata": { "name": "notes" }, "data": { "todo": "keep me" } })).unwrap();
    notes.create(&PostParams::default(), &data).await.unwrap();

    let without_bob: String = team(&id).lines().filter(|l| !l.contains(&bob)).collect::<Vec<_>>().join("\n");
    let after = roster(&without_bob);
    // Not before the reversible cut.
    let early = engine.destroy_plan(&after, &bob).await.unwrap_err();
    assert!(early.to_string().contains("reversible cut"), "{early}");
    assert!(apply(&engine, &after, Policy { offboard: true, ..Policy::default() }).await.1.is_success());

    let plan = engine.destroy_plan(&after, &bob).await.unwrap();
    assert!(plan.by_target["kubernetes"].iter().any(|r| r.to_string() == format!("kubernetes/Namespace/-/{bob}")));
    let backups = tempfile::tempdir().unwrap();
    let report = engine.destroy(&plan, backups.path(), "test").await.unwrap();
    assert!(report.is_success(), "{:?}", report.targets);
    let done = report.targets["kubernetes"].as_ref().unwrap();
    assert_eq!(done.backups.len(), 1);
    let backup: serde_json::Value = serde_json::from_slice(&std::fs::read(&done.backups[0]).unwrap()).unwrap();
    let items = backup["items"].as_array().unwrap();
    assert!(items.iter().any(|o| o["kind"] == "ConfigMap" && o["data"]["todo"] == "keep me"), "{backup}");
    assert!(items.iter().any(|o| o["kind"] == "ResourceQuota"), "{backup}");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&done.backups[0]).unwrap().permissions().mode() & 0o777, 0o600);

    // The namespace is gone or going; alice's are untouched.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    match namespaces.get(&bob).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404),
        Ok(namespace) => assert!(namespace.metadata.deletion_timestamp.is_some(), "{namespace:?}"),
        Err(other) => panic!("{other}"),
    }
    namespaces.get(&format!("alice{id}")).await.expect("other users keep their namespaces");
    // Nothing of bob is left for tenantry to plan.
    let again = engine.destroy_plan(&after, &bob).await.unwrap_err();
    assert!(again.to_string().contains("nothing recorded"), "{again}");
}
