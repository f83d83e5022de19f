//! Whose an object is (issue #12, SPEC §6): same-named objects tenantry did
//! not write are adopted with their diff or, when they hold data, are a
//! conflict; two platforms on one cluster never see, prune or cut each
//! other's objects; a no-op reconcile costs a few lists per kind, whatever the number of users.

use super::*;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use tenantry_core::ResourceId;

fn state() -> State {
    State::in_memory().unwrap()
}

fn change<'a>(prepared: &'a Prepared, id: &str) -> &'a tenantry_core::Change {
    prepared.plan.changes.iter().find(|c| c.id.to_string() == id).unwrap_or_else(|| {
        let ids: Vec<String> =
            prepared.plan.changes.iter().map(|c| format!("{} {}", c.action.as_str(), c.id)).collect();
        panic!("{id} is not in the plan: {ids:#?}")
    })
}

#[tokio::test]
async fn a_tenants_own_secret_is_a_conflict_and_an_unlabelled_binding_is_adopted_with_its_diff() {
    let admin = client(None).await;
    let id = run_id();
    let (namespace, certs) = (format!("carol{id}"), format!("certs{id}"));
    let (platform_crt, platform_key) = certificate(&["*.example.org"], 90);
    tls_source(&admin, &certs, platform_crt.as_bytes(), platform_key.as_bytes()).await;

    // carol's namespace already holds her own certificate and a binding to someone else.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": namespace } })).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let (own_crt, own_key) = certificate(&["carol.example.net"], 90);
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &namespace);
    let own: Secret = serde_json::from_value(json!({
        "metadata": { "name": "tls-secret" }, "type": "kubernetes.io/tls",
        "stringData": { "tls.crt": own_crt, "tls.key": own_key },
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &own).await.unwrap();
    let before = secret_data(&admin, &namespace).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &namespace);
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": { "name": format!("namespace-owner-carol{id}") },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin" },
        "subjects": [ { "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory@example.org" } ],
    }))
    .unwrap();
    bindings.create(&PostParams::default(), &binding).await.unwrap();

    let roster = roster(&format!(
        "platform:
  name: own{id}
  domain: example.org
  tls: {{ source: {{ namespace: {certs}, name: wildcard }} }}
users:
  carol{id}: {{ email: carol{id}@example.org, tier: namespace-owner, namespaces: [{namespace}] }}
"
    ));
    let engine = engine(KubernetesTarget::from_client(admin.clone()), state());
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;

    let secret_id = format!("kubernetes/Secret/{namespace}/tls-secret");
    let secret = change(&prepared, &secret_id);
    assert_eq!(secret.action, Action::Conflict, "{}", secret.reason);
    assert!(secret.reason.contains(&format!("--adopt {secret_id}")), "{}", secret.reason);
    assert!(secret.sensitive, "the tenant's certificate is never printed");
    let binding_id = format!("kubernetes/RoleBinding/{namespace}/namespace-owner-carol{id}");
    let binding = change(&prepared, &binding_id);
    assert_eq!(binding.action, Action::Adopt, "{}", binding.reason);
    let before_text = binding.before.as_ref().unwrap().to_value().to_string();
    assert!(before_text.contains("mallory@example.org"), "the adopt diff shows the old subject: {before_text}");
    assert!(binding.after.as_ref().unwrap().to_value().to_string().contains(&format!("carol{id}@example.org")));
    assert!(!prepared.plan.changes.iter().any(|c| c.action == Action::Create && c.id.to_string() == secret_id));

    // Only the conflict fails; carol's certificate is exactly hers; the binding is tenantry's now.
    let failed: Vec<&str> = report.failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(failed, vec![secret_id.as_str()], "{:#?}", report.failures);
    assert_eq!(secret_data(&admin, &namespace).await.unwrap(), before, "carol's certificate survives");
    let adopted = bindings.get(&format!("namespace-owner-carol{id}")).await.unwrap();
    assert_eq!(adopted.subjects.unwrap()[0].name, format!("carol{id}@example.org"));
    let labels = adopted.metadata.labels.unwrap();
    assert_eq!(labels["tenantry.dev/user"], format!("carol{id}"));
    assert_eq!(labels["tenantry.dev/platform"], format!("own{id}"));
    let history = engine.with_state(|s| s.history(&binding_id.parse().unwrap(), 10)).unwrap();
    assert_eq!(history[0].action, "adopt", "why's history tells the truth: {history:?}");

    // The admin decides to replace it: named by id, the copy goes in.
    let adopt: BTreeSet<ResourceId> = [secret_id.parse().unwrap()].into();
    let (prepared, report) = apply(&engine, &roster, Policy { adopt, ..Policy::default() }).await;
    assert_eq!(change(&prepared, &secret_id).action, Action::Adopt);
    assert!(report.is_success(), "{:#?}", report.failures);
    let copied = secret_data(&admin, &namespace).await.unwrap();
    assert_eq!(copied["tls.crt"].0, platform_crt.as_bytes());
    assert!(!engine.prepare(&roster, Policy::default()).await.unwrap().plan.has_changes());
}

fn platform_roster(platform: &str, users: &[&str]) -> tenantry_model::Roster {
    let mut text = format!("platform: {{ name: {platform} }}\nusers:\n");
    for user in users {
        text.push_str(&format!(
            "  {user}: {{ email: {user}@example.org, tier: namespace-owner, namespaces: [{user}] }}\n"
        ));
    }
    roster(&text)
}

#[tokio::test]
async fn two_platforms_on_one_cluster_never_see_prune_or_cut_each_others_objects() {
    let admin = client(None).await;
    let id = run_id();
    let (pa, pb) = (format!("pa{id}"), format!("pb{id}"));
    let (a1, a2, b1) = (format!("a1{id}"), format!("a2{id}"), format!("b1{id}"));
    let target = |_platform: &str| KubernetesTarget::from_client(admin.clone());
    let a = engine(target(&pa), state());
    let b = engine(target(&pb), state());
    let roster_a = platform_roster(&pa, &[&a1, &a2]);
    let roster_b = platform_roster(&pb, &[&b1]);
    assert!(apply(&a, &roster_a, Policy::default()).await.1.is_success());
    let (_, report) = apply(&b, &roster_b, Policy::default()).await;
    assert!(
        report.is_success(),
        "the shared ClusterRole of the other platform is used as it is: {:#?}",
        report.failures
    );

    // A's plan — even from a lost state database — shows nothing of B's, and B's nothing of A's.
    let fresh_a = engine(target(&pa), state());
    for (engine, roster, other) in [(&a, &roster_a, &b1), (&fresh_a, &roster_a, &b1), (&b, &roster_b, &a1)] {
        let plan = engine.prepare(roster, Policy { offboard: true, ..Policy::default() }).await.unwrap().plan;
        assert!(plan.departing.is_empty(), "{:?}", plan.departing);
        assert!(!plan.changes.iter().any(|c| c.id.to_string().contains(other.as_str())), "{:#?}", plan.changes);
        assert!(!plan.has_changes(), "{:#?}", plan.changes);
    }

    // a2 leaves A's roster: the cut takes a2's bindings only.
    let without_a2 = platform_roster(&pa, &[&a1]);
    let (prepared, report) = apply(&a, &without_a2, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    let cut: Vec<String> =
        prepared.plan.changes.iter().filter(|c| c.action.is_change()).map(|c| c.id.to_string()).collect();
    assert!(!cut.is_empty() && cut.iter().all(|c| c.contains(a2.as_str())), "{cut:#?}");
    let b_binding: Api<RoleBinding> = Api::namespaced(admin.clone(), &b1);
    assert!(b_binding.get_opt(&format!("namespace-owner-{b1}")).await.unwrap().is_some(), "B's binding stays");

    // B's roster naming A's namespace: a conflict that says whose it is, never a takeover.
    let greedy = roster(&format!(
        "platform: {{ name: {pb} }}\nusers:\n  {b1}: {{ email: {b1}@example.org, tier: namespace-owner, namespaces: [{b1}, {a1}] }}\n"
    ));
    let prepared = b.prepare(&greedy, Policy::default()).await.unwrap();
    let taken = change(&prepared, &format!("kubernetes/Namespace/-/{a1}"));
    assert_eq!(taken.action, Action::Conflict);
    assert!(taken.reason.contains(&format!("platform `{pa}`")), "{}", taken.reason);
}

/// A client to the test apiserver that counts the requests it sends.
async fn counting_client() -> (kube::Client, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let layer = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        counted.fetch_add(1, Ordering::SeqCst);
        request
    });
    (kube::client::ClientBuilder::try_from(config(None).await).unwrap().with_layer(&layer).build(), requests)
}

/// Lists are read in pages: with two objects a page, the no-op plan of
/// three users sees exactly what one page a list sees — nothing to change —
/// having asked for every page.
#[tokio::test]
async fn paged_lists_see_every_object_of_every_page() {
    let id = run_id();
    let (client, requests) = counting_client().await;
    let names: Vec<String> = (0..3).map(|n| format!("page{n}x{id}")).collect();
    let roster = platform_roster(&format!("paged{id}"), &names.iter().map(String::as_str).collect::<Vec<_>>());
    let whole = engine(KubernetesTarget::from_client(client.clone()), state());
    assert!(apply(&whole, &roster, Policy::default()).await.1.is_success());
    requests.store(0, Ordering::SeqCst);
    assert!(!whole.prepare(&roster, Policy::default()).await.unwrap().plan.has_changes());
    let one_page_each = requests.load(Ordering::SeqCst);

    let paged = engine(KubernetesTarget::from_client(client).with_list_page(2), state());
    requests.store(0, Ordering::SeqCst);
    let prepared = paged.prepare(&roster, Policy::default()).await.unwrap();
    assert!(!prepared.plan.has_changes(), "a page was missed: {:#?}", prepared.plan.changes);
    let unchanged: usize = prepared.plan.unchanged.values().sum();
    assert!(unchanged >= 3 * 8, "every user's objects were seen: {unchanged} unchanged");
    let pages = requests.load(Ordering::SeqCst);
    assert!(pages > one_page_each + 10, "two objects a page take more requests: {pages} vs {one_page_each}");
}

#[tokio::test]
async fn a_no_op_reconcile_costs_the_same_few_lists_whatever_the_number_of_users() {
    let id = run_id();
    let (client, requests) = counting_client().await;
    let mut costs = Vec::new();
    for users in [2, 12] {
        let names: Vec<String> = (0..users).map(|n| format!("nop{users}u{n}x{id}")).collect();
        let roster = platform_roster(&format!("nop{users}{id}"), &names.iter().map(String::as_str).collect::<Vec<_>>());
        let engine = engine(KubernetesTarget::from_client(client.clone()), state());
        requests.store(0, Ordering::SeqCst);
        engine.prepare(&roster, Policy::default()).await.unwrap();
        let first_plan = requests.load(Ordering::SeqCst);
        assert!(apply(&engine, &roster, Policy::default()).await.1.is_success());
        requests.store(0, Ordering::SeqCst);
        let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
        assert!(!prepared.plan.has_changes(), "{:#?}", prepared.plan.changes);
        costs.push((first_plan, requests.load(Ordering::SeqCst)));
    }
    // Per namespaced kind this platform's list and the earlier versions' (no
    // platform mark); one list per cluster-scoped kind; and the server's
    // version (Pod Security labels are pinned to it). Other platforms'
    // namespaced objects on the shared test cluster are never listed; the
    // namespaces are all listed, a page per LIST_PAGE of them.
    let namespaces = Api::<Namespace>::all(client.clone()).list(&ListParams::default()).await.unwrap().items.len();
    let namespace_pages = namespaces.div_ceil(tenantry_kubernetes::LIST_PAGE as usize).max(1);
    let namespaced = tenantry_kubernetes::KINDS.iter().filter(|kind| kind.namespaced).count();
    let expected = tenantry_kubernetes::KINDS.len() + namespaced + 1 + (namespace_pages - 1);
    // A kind the cluster does not serve is known from its first list: the
    // Certificate CRD, which the issuer test removes and restores while
    // this one may run, then costs one request instead of two.
    let crds =
        tenantry_kubernetes::KINDS.iter().filter(|kind| kind.namespaced && kind.group == "cert-manager.io").count();
    for (first_plan, no_op) in &costs {
        // New users' namespaces do not exist yet: nothing in them is looked up by name.
        assert!((expected - crds..=expected).contains(first_plan), "expected {expected}: {costs:?}");
        assert!(
            (expected - crds..=expected).contains(no_op),
            "a no-op costs its lists and nothing per user; expected {expected}: {costs:?}"
        );
    }
}
