//! Tenant isolation by default (issue #15, SPEC §11.4): every rule proven by
//! the tenant's own request, impersonated, as a server-side dry run.

use super::*;

/// A dry run as the tenant: the server decides, nothing is stored.
fn dry_run() -> PostParams {
    PostParams { dry_run: true, ..PostParams::default() }
}

/// The message of a refusal, or `None` when the request was accepted.
async fn refusal<T>(result: Result<T, kube::Error>) -> Option<String> {
    match result {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => Some(status.message),
        Err(other) => panic!("not an answer of the server: {other}"),
    }
}

fn pod(name: &str, container: serde_json::Value, spec: serde_json::Value) -> Pod {
    let mut value = json!({
        "metadata": { "name": name },
        "spec": { "automountServiceAccountToken": false, "containers": [container] },
    });
    if let (Some(fields), Some(extra)) = (value["spec"].as_object_mut(), spec.as_object()) {
        fields.extend(extra.clone());
    }
    serde_json::from_value(value).unwrap()
}

/// A container that meets Pod Security `restricted` and tenantry's rules.
fn compliant() -> serde_json::Value {
    json!({
        "name": "app", "image": "example.invalid/app",
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
            "capabilities": { "drop": ["ALL"] }, "seccompProfile": { "type": "RuntimeDefault" },
        },
    })
}

/// A privileged container (privileged needs privilege escalation allowed).
fn privileged() -> serde_json::Value {
    with(
        with(compliant(), "securityContext.privileged", json!(true)),
        "securityContext.allowPrivilegeEscalation",
        json!(true),
    )
}

fn with(mut container: serde_json::Value, path: &str, value: serde_json::Value) -> serde_json::Value {
    let mut at = &mut container;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        at = &mut at[*part];
    }
    at[parts[parts.len() - 1]] = value;
    container
}

fn standard_roster(id: &str, options: &str) -> tenantry_model::Roster {
    roster(&format!(
        "platform: {{ name: iso{id}{options} }}
users:
  tena{id}: {{ email: tena{id}@example.org, tier: namespace-owner, namespaces: [tena{id}], quota: {{ requests.ephemeral-storage: 1Gi, limits.ephemeral-storage: 2Gi }} }}
  tenb{id}: {{ email: tenb{id}@example.org, tier: namespace-owner, namespaces: [tenb{id}] }}
"
    ))
}

#[tokio::test]
async fn a_tenant_cannot_run_privileged_workloads_open_node_ports_or_undo_the_platform() {
    let id = run_id();
    let admin = client(None).await;
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    let roster = standard_roster(&id, "");
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    let (mine, theirs) = (format!("tena{id}"), format!("tenb{id}"));
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let labels = namespaces.get(&mine).await.unwrap().metadata.labels.unwrap();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    let version = admin.apiserver_version().await.unwrap();
    assert_eq!(labels["pod-security.kubernetes.io/enforce-version"], format!("v{}.{}", version.major, version.minor));
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
    let rule = |id: &str| prepared.desired.get(&id.parse().unwrap()).unwrap().rule;
    assert!(
        rule(&format!("kubernetes/NetworkPolicy/{mine}/tenantry-default-deny"))
            .contains("accept and open no connection")
    );

    let tenant = client(Some(&format!("tena{id}@example.org"))).await;
    let pods: Api<Pod> = Api::namespaced(tenant.clone(), &mine);

    // Pod Security baseline refuses these.
    let baseline_refused = [
        ("privileged", pod("p1", privileged(), json!({}))),
        ("host-path", pod("p2", compliant(), json!({ "volumes": [{ "name": "h", "hostPath": { "path": "/etc" } }] }))),
        ("host-network", pod("p3", compliant(), json!({ "hostNetwork": true }))),
        ("host-pid", pod("p4", compliant(), json!({ "hostPID": true }))),
        ("host-ipc", pod("p5", compliant(), json!({ "hostIPC": true }))),
        (
            "net-admin",
            pod("p6", with(compliant(), "securityContext.capabilities.add", json!(["NET_ADMIN"])), json!({})),
        ),
    ];
    for (what, pod) in baseline_refused {
        let message = refusal(pods.create(&dry_run(), &pod).await).await;
        assert!(message.as_deref().is_some_and(|m| m.contains("PodSecurity")), "{what}: {message:?}");
    }
    // What baseline lets through, tenantry's admission policies refuse, saying
    // what to change. A new policy takes effect once the API server has loaded
    // it (its informer): wait for that, a few seconds at most.
    let probe = pod("probe", with(compliant(), "securityContext.capabilities.add", json!(["SETPCAP"])), json!({}));
    let mut effective = false;
    for _ in 0..40 {
        if refusal(pods.create(&dry_run(), &probe).await).await.is_some() {
            effective = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert!(effective, "the admission policies never took effect");
    let policy_refused = [
        ("SETPCAP", with(compliant(), "securityContext.capabilities.add", json!(["SETPCAP"])), "capabilities.add"),
        (
            "escalation",
            with(compliant(), "securityContext.allowPrivilegeEscalation", json!(true)),
            "allowPrivilegeEscalation: false",
        ),
        (
            "root",
            with(
                with(compliant(), "securityContext.runAsUser", json!(0)),
                "securityContext.runAsNonRoot",
                json!(false),
            ),
            "runAsNonRoot: true",
        ),
    ];
    for (what, container, fix) in policy_refused {
        let message = refusal(pods.create(&dry_run(), &pod("q", container, json!({}))).await).await;
        assert!(message.as_deref().is_some_and(|m| m.contains(fix)), "{what}: {message:?}");
    }
    assert_eq!(refusal(pods.create(&dry_run(), &pod("ok", compliant(), json!({}))).await).await, None);

    let services: Api<k8s_openapi::api::core::v1::Service> = Api::namespaced(tenant.clone(), &mine);
    let service = |kind: &str| -> k8s_openapi::api::core::v1::Service {
        serde_json::from_value(
            json!({ "metadata": { "name": "web" }, "spec": { "type": kind, "ports": [{ "port": 80 }] } }),
        )
        .unwrap()
    };
    for kind in ["NodePort", "LoadBalancer"] {
        let message = refusal(services.create(&dry_run(), &service(kind)).await).await;
        assert!(
            message.as_deref().is_some_and(|m| m.contains(&format!("{kind} Services are not allowed"))),
            "{message:?}"
        );
    }
    assert_eq!(refusal(services.create(&dry_run(), &service("ClusterIP")).await).await, None);

    // What tenantry placed stays: the tenant can neither change nor delete it.
    let dry_delete = DeleteParams { dry_run: true, ..DeleteParams::default() };
    let bindings: Api<RoleBinding> = Api::namespaced(tenant.clone(), &mine);
    let message = refusal(bindings.delete(&format!("namespace-owner-tena{id}"), &dry_delete).await).await;
    assert!(message.as_deref().is_some_and(|m| m.contains("placed by the platform")), "{message:?}");
    let policies: Api<k8s_openapi::api::networking::v1::NetworkPolicy> = Api::namespaced(tenant.clone(), &mine);
    let message = refusal(policies.delete("tenantry-default-deny", &dry_delete).await).await;
    assert!(message.as_deref().is_some_and(|m| m.contains("placed by the platform")), "{message:?}");
    let open = json!({ "spec": { "podSelector": {}, "policyTypes": [] } });
    let message = refusal(
        policies
            .patch(
                "tenantry-default-deny",
                &PatchParams { dry_run: true, ..PatchParams::default() },
                &Patch::Merge(&open),
            )
            .await,
    )
    .await;
    assert!(message.is_some(), "the tenant opened the default deny");
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(tenant.clone(), &mine);
    assert!(refusal(roles.delete(&format!("tena{id}-deployer"), &dry_delete).await).await.is_some());
    let quotas: Api<ResourceQuota> = Api::namespaced(tenant.clone(), &mine);
    assert!(refusal(quotas.delete("user-quota", &dry_delete).await).await.is_some());
    let limits: Api<k8s_openapi::api::core::v1::LimitRange> = Api::namespaced(tenant.clone(), &mine);
    assert!(refusal(limits.delete("user-limits", &dry_delete).await).await.is_some());
    for kind in ["validatingadmissionpolicies", "validatingadmissionpolicybindings"] {
        for verb in ["delete", "update"] {
            let allowed = can_in_group(&tenant, verb, "admissionregistration.k8s.io", kind, None).await;
            assert!(!allowed, "the tenant may {verb} {kind}");
        }
    }

    // Nothing of another tenant, and no cluster reads unless granted.
    for (verb, resource) in [("list", "pods"), ("get", "configmaps"), ("watch", "events"), ("list", "secrets")] {
        assert!(!can(&tenant, verb, resource, None, Some(&theirs)).await, "{verb} {resource} of the other tenant");
    }
    assert!(!can(&tenant, "list", "nodes", None, None).await);
    assert!(!can(&tenant, "list", "namespaces", None, None).await);

    // No escalation: no binding to cluster-admin, no role beyond their own rights.
    let escalate: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "mine-admin" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": format!("tena{id}@example.org") }],
    }))
    .unwrap();
    assert!(refusal(bindings.create(&dry_run(), &escalate).await).await.is_some_and(|m| m.contains("forbidden")));
    let everything: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(json!({
        "metadata": { "name": "everything" },
        "rules": [{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] }],
    }))
    .unwrap();
    assert!(refusal(roles.create(&dry_run(), &everything).await).await.is_some());
    // But their own bindings and network policies are theirs to make.
    let own_binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": "colleague-edit" },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "colleague@example.org" }],
    }))
    .unwrap();
    assert_eq!(refusal(bindings.create(&dry_run(), &own_binding).await).await, None);
    let own_policy: k8s_openapi::api::networking::v1::NetworkPolicy = serde_json::from_value(json!({
        "metadata": { "name": "allow-web" },
        "spec": { "podSelector": { "matchLabels": { "app": "web" } }, "ingress": [{}] },
    }))
    .unwrap();
    assert_eq!(refusal(policies.create(&dry_run(), &own_policy).await).await, None);
}

/// Quotas carry CPU, memory, ephemeral storage and object counts, and the
/// server refuses a pod over the ephemeral-storage quota.
#[tokio::test]
async fn the_quota_bounds_ephemeral_storage_and_object_counts() {
    let id = run_id();
    let admin = client(None).await;
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    assert!(apply(&engine, &standard_roster(&id, ""), Policy::default()).await.1.is_success());
    let mine = format!("tena{id}");
    let quotas: Api<ResourceQuota> = Api::namespaced(admin.clone(), &mine);
    let hard = quotas.get("user-quota").await.unwrap().spec.unwrap().hard.unwrap();
    for key in [
        "requests.cpu",
        "requests.memory",
        "limits.memory",
        "requests.ephemeral-storage",
        "limits.ephemeral-storage",
        "services",
        "services.nodeports",
        "services.loadbalancers",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "replicationcontrollers",
        "resourcequotas",
    ] {
        assert!(hard.contains_key(key), "quota lacks {key}: {hard:?}");
    }
    // The quota's status must be computed before the admission plugin admits anything.
    for _ in 0..60 {
        let quota = quotas.get("user-quota").await.unwrap();
        if quota.status.and_then(|s| s.hard).is_some_and(|h| h.contains_key("requests.ephemeral-storage")) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin.clone(), &mine);
    for _ in 0..60 {
        if accounts.get("default").await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let tenant = client(Some(&format!("tena{id}@example.org"))).await;
    let pods: Api<Pod> = Api::namespaced(tenant, &mine);
    let greedy = with(
        compliant(),
        "resources",
        json!({ "requests": { "ephemeral-storage": "5Gi" }, "limits": { "ephemeral-storage": "5Gi" } }),
    );
    let message = refusal(pods.create(&dry_run(), &pod("greedy", greedy, json!({}))).await).await;
    assert!(
        message.as_deref().is_some_and(|m| m.contains("exceeded quota") && m.contains("ephemeral-storage")),
        "{message:?}"
    );
    // Within the quota (the LimitRange's ephemeral defaults make it fit).
    assert_eq!(refusal(pods.create(&dry_run(), &pod("fits", compliant(), json!({}))).await).await, None);
}

/// Adopting a namespace whose workloads the new rules would refuse: the plan
/// says which, from the server's own Pod Security answer.
#[tokio::test]
async fn adopting_a_namespace_with_violating_workloads_is_a_plan_warning() {
    let id = run_id();
    let admin = client(None).await;
    let mine = format!("tena{id}");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": mine } })).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(admin.clone(), &mine);
    for _ in 0..60 {
        if accounts.get("default").await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &mine);
    pods.create(&PostParams::default(), &pod("legacy-daemon", privileged(), json!({}))).await.unwrap();

    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    let prepared = engine.prepare(&standard_roster(&id, ""), Policy::default()).await.unwrap();
    let warning = prepared.plan.problems.iter().find(|p| p.message.contains(&format!("namespace `{mine}`")));
    let warning = warning.unwrap_or_else(|| panic!("no warning: {:#?}", prepared.plan.problems));
    assert!(warning.message.contains("legacy-daemon"), "{}", warning.message);
    assert!(!warning.blocking);
    assert_eq!(
        prepared
            .plan
            .changes
            .iter()
            .find(|c| c.id.to_string() == format!("kubernetes/Namespace/-/{mine}"))
            .unwrap()
            .action,
        Action::Adopt
    );
}

/// `isolation: none` places none of it (the origin's behaviour).
#[tokio::test]
async fn isolation_none_places_none_of_it() {
    let id = run_id();
    let admin = client(None).await;
    let engine = engine(KubernetesTarget::from_client(admin.clone()), State::in_memory().unwrap());
    assert!(apply(&engine, &standard_roster(&id, ", isolation: none"), Policy::default()).await.1.is_success());
    let mine = format!("tena{id}");
    let policies: Api<k8s_openapi::api::networking::v1::NetworkPolicy> = Api::namespaced(admin.clone(), &mine);
    assert!(policies.list(&ListParams::default()).await.unwrap().items.is_empty());
    let labels = Api::<Namespace>::all(admin.clone()).get(&mine).await.unwrap().metadata.labels.unwrap();
    assert!(!labels.contains_key("pod-security.kubernetes.io/enforce"));
    let tenant = client(Some(&format!("tena{id}@example.org"))).await;
    assert!(can(&tenant, "list", "pods", None, Some(&format!("tenb{id}"))).await, "the origin's wide read");
}
