//! The pure core in memory: the catalog's names, determinism, dependency
//! order, and the safety policy of SPEC §6 decided by `diff`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use tenantry_core::{
    Action, Content, Desired, Domain, Facts, Inventory, Observed, ObservedByTarget, Owner, Plan, Policy, ResourceId,
    Routing, Settings, derive, diff, kind_rank,
};
use tenantry_model::Roster;

#[path = "core/apps.rs"]
mod apps;
#[path = "core/idp.rs"]
mod idp;

const EXAMPLE: &str = include_str!("../../../examples/roster.yaml");

fn roster(text: &str) -> Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
}

/// The example as the origin platform runs it: no isolation, the origin's names.
fn origin(text: &str) -> String {
    assert!(text.contains("  isolation: standard "), "the example says its isolation");
    text.replacen("  isolation: standard ", "  isolation: none ", 1)
}

fn routing() -> Routing {
    let mut routing = Routing::default();
    routing.add("live", &Domain::ALL, false);
    routing
}

fn ids(desired: &Desired) -> BTreeSet<String> {
    desired.resources().iter().map(|r| r.id.to_string()).collect()
}

/// What a target would observe after applying `desired` faithfully.
fn applied(desired: &Desired, labelled: bool) -> (ObservedByTarget, Inventory) {
    let mut observed = Observed::default();
    let mut inventory = Inventory::default();
    for resource in desired.resources() {
        observed.insert(resource.id.clone(), resource.content.clone(), labelled.then(|| resource.owner.clone()));
        inventory.insert(resource.id.clone(), "live", resource.owner.clone());
    }
    (ObservedByTarget::from([("live".to_string(), observed)]), inventory)
}

fn action_of(plan: &Plan, id: &str) -> Option<Action> {
    plan.changes.iter().find(|c| c.id.to_string() == id).map(|c| c.action)
}

#[test]
fn the_catalog_uses_the_origin_platforms_names() {
    let desired = derive(&roster(&origin(EXAMPLE)), &Settings::default(), &Facts::default());
    let all = ids(&desired);
    for expected in [
        "kubernetes/Namespace/-/alice-prod",
        "kubernetes/RoleBinding/alice-prod/namespace-owner-alice",
        "kubernetes/ResourceQuota/alice/user-quota",
        "kubernetes/LimitRange/alice/user-limits",
        "kubernetes/Role/alice/alice-deployer",
        "kubernetes/RoleBinding/alice/alice-deployer",
        "kubernetes/Secret/alice/tls-secret",
        "kubernetes/ClusterRole/-/oidc-namespace-owner-readonly",
        "kubernetes/ClusterRole/-/oidc-power-user-readonly",
        "kubernetes/ClusterRoleBinding/-/oidc-admin-wizard",
        "kubernetes/ClusterRoleBinding/-/oidc-power-user-readonly-emo",
        "kubernetes/ClusterRoleBinding/-/oidc-ns-owner-readonly-alice",
        "vault/Policy/-/namespace-owner-alice",
        "vault/Entity/-/alice",
        "vault/EntityAlias/oidc/alice@example.org",
        "vault/KubernetesRole/kubernetes/alice-prod-deployer",
        "dns/CNAME/example.org/budget.alice.example.org",
        "ci/Admin/-/bob-dev",
        "ci/Admin/-/ops-bot",
        "forge/Collaborator/ebarzin/ops/infra",
        "host/Account/-/wizard",
        "host/GeneratedFile/-/ttyd-user-map",
        "host/Checkout/alice/infra",
        "host/Checkout/alice/tripit",
        "host/Kubeconfig/alice/config",
        "portal/UserView/-/carol",
    ] {
        assert!(all.contains(expected), "missing {expected}");
    }
    // Quota: defaults merged with the user's own values.
    let quota = desired.get(&"kubernetes/ResourceQuota/alice/user-quota".parse().unwrap()).unwrap();
    let hard = &quota.content.to_value()["spec"]["hard"];
    assert_eq!(hard["pods"], "30");
    assert_eq!(hard["requests.memory"], "4Gi");
    // Power-users: no secrets, no exec.
    let role = desired.get(&"kubernetes/ClusterRole/-/oidc-power-user-readonly".parse().unwrap()).unwrap();
    let text = role.content.as_str();
    assert!(!text.contains("\"secrets\"") && !text.contains("pods/exec") && !text.contains("\"*\""), "{text}");
    // The Vault policy: the user's KV subtree and deployer credentials.
    let policy = desired.get(&"vault/Policy/-/namespace-owner-alice".parse().unwrap()).unwrap().content.to_value();
    let hcl = policy["policy"].as_str().unwrap();
    for path in [
        "secret/data/alice\"",
        "secret/data/alice/*",
        "secret/metadata/alice/*",
        "kubernetes/creds/alice-prod-deployer",
    ] {
        assert!(hcl.contains(path), "{path} in {hcl}");
    }
    // Admins are not write collaborators (they own the repository); others are.
    assert!(!all.iter().any(|id| id.starts_with("forge/Collaborator/wizard/")));
}

#[test]
fn derivation_is_deterministic_and_every_dependency_comes_first() {
    let roster = roster(EXAMPLE);
    let first = derive(&roster, &Settings::default(), &Facts::default());
    let second = derive(&roster, &Settings::default(), &Facts::default());
    let view = |d: &Desired| d.resources().iter().map(|r| (r.id.to_string(), r.content.clone())).collect::<Vec<_>>();
    assert_eq!(view(&first), view(&second));
    for resource in first.resources() {
        for dep in resource.deps.iter() {
            let found = first.get(dep).unwrap_or_else(|| panic!("{} needs {dep}, which is not derived", resource.id));
            assert!(kind_rank(&found.id) < kind_rank(&resource.id), "{dep} must rank before {}", resource.id);
        }
        assert!(
            resource.origin.is_known()
                || resource.owner == Owner::Platform
                || resource.id.kind.as_ref() == "ResourceQuota",
            "{} has no roster line",
            resource.id
        );
        let labels = &resource.content.to_value()["metadata"]["labels"];
        if resource.id.domain == Domain::Kubernetes {
            assert_eq!(labels["app.kubernetes.io/managed-by"], "tenantry", "{}", resource.id);
        }
    }
}

#[test]
fn an_applied_roster_plans_no_changes() {
    let roster = roster(EXAMPLE);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    let (observed, inventory) = applied(&desired, true);
    let plan = diff(&roster, &desired, &observed, &inventory, &routing(), &Policy::default());
    assert!(plan.changes.is_empty(), "{:?}", plan.changes.first());
    assert_eq!(plan.unchanged.values().sum::<usize>(), desired.len());
}

#[test]
fn removals_are_withheld_until_allow_revoke_and_data_is_kept_on_live_targets() {
    let before = roster(EXAMPLE);
    let desired = derive(&before, &Settings::default(), &Facts::default());
    let (observed, inventory) = applied(&desired, true);
    let after = roster(&EXAMPLE.replace("[alice, alice-prod]", "[alice]"));
    let now = derive(&after, &Settings::default(), &Facts::default());

    let plan = diff(&after, &now, &observed, &inventory, &routing(), &Policy::default());
    assert_eq!(action_of(&plan, "kubernetes/RoleBinding/alice-prod/namespace-owner-alice"), Some(Action::Withheld));
    assert_eq!(action_of(&plan, "kubernetes/Namespace/-/alice-prod"), Some(Action::Withheld));
    assert!(!plan.changes.iter().any(|c| c.action == Action::Delete));

    let revoke = Policy { allow_revoke: true, ..Policy::default() };
    let plan = diff(&after, &now, &observed, &inventory, &routing(), &revoke);
    assert_eq!(action_of(&plan, "kubernetes/RoleBinding/alice-prod/namespace-owner-alice"), Some(Action::Delete));
    assert_eq!(
        action_of(&plan, "kubernetes/Namespace/-/alice-prod"),
        Some(Action::Kept),
        "a live namespace is only destroyed by the destroy stage"
    );
    assert_eq!(
        action_of(&plan, "vault/KubernetesRole/kubernetes/alice-prod-deployer"),
        Some(Action::Delete),
        "a revoked namespace's deployer role is a grant, not data"
    );
}

#[test]
fn departed_users_wait_for_offboard_then_get_the_reversible_cut() {
    let example = origin(EXAMPLE);
    let before = roster(&example);
    let desired = derive(&before, &Settings::default(), &Facts::default());
    let (observed, inventory) = applied(&desired, true);
    let start = example.find("  bob:\n").unwrap();
    let end = example.find("  carol:\n").unwrap();
    let after = roster(&format!("{}{}", &example[..start], &example[end..]));
    // The engine passes the reservations from state: nobody's port moves.
    let facts = Facts { ports: desired.ports.clone(), ..Facts::default() };
    let now = derive(&after, &Settings::default(), &facts);
    assert_eq!(now.ports.get("emo"), desired.ports.get("emo"));
    assert_eq!(now.ports.get("bob"), desired.ports.get("bob"), "a departed user keeps the reservation");

    let plan = diff(&after, &now, &observed, &inventory, &routing(), &Policy::default());
    assert!(plan.departing.contains("bob"));
    assert!(
        !plan.has_changes() || plan.changes.iter().filter(|c| c.action.is_change()).all(|c| c.owner == Owner::Platform)
    );
    assert_eq!(action_of(&plan, "kubernetes/RoleBinding/bob/namespace-owner-bob"), Some(Action::Departing));

    let offboard = Policy { offboard: true, ..Policy::default() };
    let plan = diff(&after, &now, &observed, &inventory, &routing(), &offboard);
    assert_eq!(action_of(&plan, "kubernetes/RoleBinding/bob/namespace-owner-bob"), Some(Action::Delete));
    assert_eq!(action_of(&plan, "kubernetes/ClusterRoleBinding/-/oidc-ns-owner-readonly-bob"), Some(Action::Delete));
    assert_eq!(action_of(&plan, "ci/Admin/-/bob-dev"), Some(Action::Delete));
    assert_eq!(action_of(&plan, "kubernetes/Namespace/-/bob"), Some(Action::Kept));
    assert_eq!(action_of(&plan, "dns/CNAME/example.org/notes.bob.example.org"), Some(Action::Kept));
    let entity = plan.changes.iter().find(|c| c.id.to_string() == "vault/Entity/-/bob").unwrap();
    assert_eq!(entity.action, Action::Cut);
    let after_cut = entity.after.as_ref().unwrap().to_value();
    assert_eq!(after_cut["disabled"], true);
    assert_eq!(after_cut["policies"], serde_json::json!([]));
    let account = plan.changes.iter().find(|c| c.id.to_string() == "host/Account/-/bob").unwrap();
    assert_eq!(account.action, Action::Cut);
    assert_eq!(account.after.as_ref().unwrap().to_value()["locked"], true);
}

#[test]
fn foreign_objects_are_never_deleted_and_unmarked_matches_are_adopted() {
    let roster = roster(EXAMPLE);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    let mut observed = Observed::default();
    // A namespace someone created by hand, with the name the roster wants.
    let ns: ResourceId = "kubernetes/Namespace/-/alice".parse().unwrap();
    observed.insert(ns.clone(), Content::parse(r#"{"kind":"Namespace"}"#).unwrap(), None);
    // A foreign object tenantry never created and the roster never asks for.
    let foreign: ResourceId = "kubernetes/RoleBinding/alice/someone-elses".parse().unwrap();
    observed.insert(foreign.clone(), Content::parse("{}").unwrap(), None);
    // A namespace the roster gives to alice but labelled for bob.
    let taken: ResourceId = "kubernetes/Namespace/-/alice-prod".parse().unwrap();
    observed.insert(taken.clone(), Content::parse("{}").unwrap(), Some(Owner::User("bob".into())));
    let observed = ObservedByTarget::from([("live".to_string(), observed)]);

    let plan = diff(
        &roster,
        &desired,
        &observed,
        &Inventory::default(),
        &routing(),
        &Policy { allow_revoke: true, offboard: true, only: None, with_platform: false, ..Policy::default() },
    );
    assert_eq!(action_of(&plan, "kubernetes/Namespace/-/alice"), Some(Action::Adopt));
    assert_eq!(action_of(&plan, "kubernetes/RoleBinding/alice/someone-elses"), None);
    let conflict = plan.changes.iter().find(|c| c.id == taken).unwrap();
    assert_eq!(conflict.action, Action::Conflict);
    assert!(conflict.reason.contains("user `bob`") && conflict.reason.contains("user `alice`"), "{}", conflict.reason);
}

#[test]
fn drift_is_an_update_and_only_restricts_to_the_named_users() {
    let roster = roster(EXAMPLE);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    let (mut observed, inventory) = applied(&desired, true);
    let quota: ResourceId = "kubernetes/ResourceQuota/alice/user-quota".parse().unwrap();
    let live = observed.get_mut("live").unwrap();
    live.resources.get_mut(&quota).unwrap().content = Content::parse(r#"{"spec":{"hard":{"pods":"999"}}}"#).unwrap();
    live.resources.remove(&"kubernetes/ClusterRoleBinding/-/oidc-admin-wizard".parse::<ResourceId>().unwrap());

    let plan = diff(&roster, &desired, &observed, &inventory, &routing(), &Policy::default());
    assert_eq!(action_of(&plan, "kubernetes/ResourceQuota/alice/user-quota"), Some(Action::Update));
    assert_eq!(action_of(&plan, "kubernetes/ClusterRoleBinding/-/oidc-admin-wizard"), Some(Action::Create));

    let only_alice = Policy { only: Some(["alice".to_string()].into()), ..Policy::default() };
    let plan = diff(&roster, &desired, &observed, &inventory, &routing(), &only_alice);
    assert!(plan.changes.iter().all(|c| c.owner == Owner::User("alice".into())));
    assert_eq!(plan.changes.len(), 1);
}

#[test]
fn the_record_budget_blocks_a_plan_that_would_exceed_it() {
    let mut text = EXAMPLE.replace("record_budget: 200", "record_budget: 3");
    text = text.replace("domains: [budget.alice]", "domains: [budget.alice, a1.alice, a2.alice]");
    let roster = roster(&text);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    let plan = diff(&roster, &desired, &ObservedByTarget::new(), &Inventory::default(), &routing(), &Policy::default());
    assert!(plan.is_blocked());
    let problem = &plan.problems[0];
    assert!(problem.message.contains("zone `example.org` would hold 5 records"), "{}", problem.message);
    assert!(problem.help.contains("wildcard"));
}

#[test]
fn ten_thousand_users_derive_and_diff_in_memory() {
    let mut text = String::from("platform: { domain: example.org }\nusers:\n");
    for i in 0..10_000 {
        text.push_str(&format!("  u{i}: {{ email: u{i}@example.org, tier: namespace-owner, namespaces: [u{i}] }}\n"));
    }
    let roster = roster(&text);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    assert_eq!(desired.resources().iter().filter(|r| &*r.id.kind == "Namespace").count(), 10_000);
    let (observed, inventory) = applied(&desired, true);
    let plan = diff(&roster, &desired, &observed, &inventory, &routing(), &Policy::default());
    assert!(!plan.has_changes());
    assert_eq!(plan.unchanged.len(), 10_001, "every user plus the platform");
}

#[test]
fn an_unmarked_dns_record_is_adopted_only_when_it_already_points_where_the_roster_wants() {
    let roster = roster(EXAMPLE);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    let id: ResourceId = "dns/CNAME/example.org/budget.alice.example.org".parse().unwrap();
    let wanted = desired.get(&id).unwrap().content.clone();
    let mut value = wanted.to_value();
    value["content"] = "someone-else.example.net".into();
    let elsewhere = Content::from_value(&value);
    let mut value = wanted.to_value();
    value["ttl"] = 3600.into();
    let same_target = Content::from_value(&value);

    // The DNS target marks an unmarked record that points elsewhere as foreign.
    let plan_with = |content: &Content, inventory: &Inventory, routing: &Routing| {
        let mut observed = Observed::default();
        observed.insert(id.clone(), content.clone(), None);
        if content == &elsewhere {
            observed.foreign.insert(id.clone(), "points elsewhere".to_string());
        }
        let observed = ObservedByTarget::from([("live".to_string(), observed)]);
        diff(&roster, &desired, &observed, inventory, routing, &Policy::default())
    };
    let none = Inventory::default();
    let plan = plan_with(&elsewhere, &none, &routing());
    let change = plan.changes.iter().find(|c| c.id == id).unwrap();
    assert_eq!(change.action, Action::Conflict, "never overwritten");
    assert!(change.reason.contains("points elsewhere"), "{}", change.reason);
    assert_eq!(action_of(&plan_with(&same_target, &none, &routing()), &id.to_string()), Some(Action::Adopt));

    // What tenantry remembers creating is its own: a changed target is drift.
    let mut remembered = Inventory::default();
    remembered.insert(id.clone(), "live", Owner::User("alice".into()));
    assert_eq!(action_of(&plan_with(&elsewhere, &remembered, &routing()), &id.to_string()), Some(Action::Update));

    // Rendered files are tenantry's output whatever they hold.
    let mut rendering = Routing::default();
    rendering.add("live", &Domain::ALL, true);
    assert_eq!(action_of(&plan_with(&elsewhere, &none, &rendering), &id.to_string()), Some(Action::Adopt));
}

#[test]
fn records_are_derived_unproxied_where_the_provider_cannot_proxy() {
    let roster = roster(EXAMPLE);
    let id: ResourceId = "dns/CNAME/example.org/budget.alice.example.org".parse().unwrap();
    let proxied = |supported: bool| {
        let settings = Settings { dns_proxy_supported: supported, ..Settings::default() };
        derive(&roster, &settings, &Facts::default()).get(&id).unwrap().content.to_value()["proxied"].clone()
    };
    assert_eq!(proxied(true), serde_json::json!(true));
    assert_eq!(proxied(false), serde_json::json!(false));
}

#[test]
fn every_derived_content_is_canonical_json() {
    // Content written directly (not through serde_json) must be byte-identical
    // to what parsing it back gives, or desired and observed never compare equal.
    let roster = roster(EXAMPLE);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    assert!(desired.len() > 50);
    for resource in desired.resources() {
        let reparsed = tenantry_core::Content::parse(resource.content.as_str()).unwrap();
        assert_eq!(reparsed, resource.content, "{} is not canonical", resource.id);
    }
}

#[test]
fn desired_from_two_parts_is_the_same_as_from_one() {
    let roster = roster(EXAMPLE);
    let desired = derive(&roster, &Settings::default(), &Facts::default());
    let all: Vec<_> = desired.resources().to_vec();
    // Interleave into two unsorted halves, with one resource in both.
    // (Even positions reversed, odd positions in order: every resource lands in
    // one half whatever the count's parity.)
    let mut first: Vec<_> = all.iter().step_by(2).rev().cloned().collect();
    let second: Vec<_> = all.iter().skip(1).step_by(2).cloned().collect();
    first.push(all[3].clone());
    let merged = tenantry_core::Desired::from_parts(first, second, Default::default());
    let ids = |d: &tenantry_core::Desired| d.resources().iter().map(|r| r.id.to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&merged), ids(&desired));
    assert_eq!(ids(&tenantry_core::Desired::new(all, Default::default())), ids(&desired));
}

/// The content of one derived resource, as JSON.
fn content_of(desired: &Desired, id: &str) -> serde_json::Value {
    let resource = desired.resources().iter().find(|r| r.id.to_string() == id).unwrap_or_else(|| panic!("no {id}"));
    serde_json::from_str(&resource.content.to_string()).unwrap()
}

#[test]
fn host_files_go_where_tenantry_toml_says_and_the_kubeconfig_is_the_serialized_one() {
    // Issue #11, finding 6: the dispatch file's place is tenantry.toml's (`[host] dispatch_path`,
    // through the validation context) or the roster's `.json` in /etc/t3-serve/; never other roster text.
    let text = EXAMPLE.replace("/etc/t3-serve/dispatch.json", "/etc/t3-serve/lab.json");
    let from_roster = derive(&roster(&text), &Settings::default(), &Facts::default());
    assert_eq!(content_of(&from_roster, "host/GeneratedFile/-/dispatch.json")["path"], "/etc/t3-serve/lab.json");
    let context = tenantry_model::ValidationContext {
        host_dispatch_path: Some("/srv/t3/dispatch.json".to_string()),
        ..Default::default()
    };
    let configured = tenantry_model::load("roster.yaml", text.as_bytes(), &context).unwrap();
    let desired = derive(&configured, &Settings::default(), &Facts::default());
    assert_eq!(content_of(&desired, "host/GeneratedFile/-/dispatch.json")["path"], "/srv/t3/dispatch.json");
    let hostile = EXAMPLE.replace("/etc/t3-serve/dispatch.json", "/etc/sudoers.d/zz-dispatch");
    let refused = tenantry_model::load("roster.yaml", hostile.as_bytes(), &Default::default()).unwrap_err();
    assert_eq!(refused.items.iter().map(|d| d.code).collect::<Vec<_>>(), ["host-path-not-allowed"]);

    // The workstation kubeconfig is the one generator's text, which kube-rs reads.
    let example = roster(EXAMPLE);
    let kubeconfig =
        content_of(&derive(&example, &Settings::default(), &Facts::default()), "host/Kubeconfig/alice/config");
    let text = kubeconfig["text"].as_str().unwrap();
    assert_eq!(text, tenantry_core::kubeconfig::oidc_kubeconfig(&example.platform).unwrap().unwrap());
    let parsed = kube::config::Kubeconfig::from_yaml(text).unwrap();
    assert_eq!(parsed.current_context.as_deref(), Some("homelab"));
    assert_eq!(parsed.clusters[0].cluster.as_ref().unwrap().server.as_deref(), Some("https://k8s.example.org:6443"));
}

/// `isolation: standard` (the default): each tenant namespace gets Pod
/// Security labels pinned to the cluster's version and the network
/// policies; the platform gets the admission policies; namespace-owners lose
/// the origin's read of every tenant's objects; quotas bound ephemeral
/// storage and object counts; `isolation: none` has none of it.
#[test]
fn standard_isolation_adds_its_objects_and_none_keeps_the_origins_catalog() {
    let facts = Facts { cluster_version: Some("v1.37.2".into()), ..Facts::default() };
    let standard = derive(&roster(EXAMPLE), &Settings::default(), &facts);
    let all = ids(&standard);
    for expected in [
        "kubernetes/NetworkPolicy/alice/tenantry-default-deny",
        "kubernetes/NetworkPolicy/alice/tenantry-allow-same-namespace",
        "kubernetes/NetworkPolicy/alice/tenantry-allow-dns",
        "kubernetes/NetworkPolicy/alice-prod/tenantry-allow-ingress-controller",
        "kubernetes/ValidatingAdmissionPolicy/-/tenantry-pod-restrictions-homelab",
        "kubernetes/ValidatingAdmissionPolicyBinding/-/tenantry-pod-restrictions-homelab",
        "kubernetes/ValidatingAdmissionPolicy/-/tenantry-service-restrictions-homelab",
        "kubernetes/ValidatingAdmissionPolicy/-/tenantry-protect-placed-objects-homelab",
    ] {
        assert!(all.contains(expected), "missing {expected}");
    }
    assert!(!all.contains("kubernetes/ClusterRole/-/oidc-namespace-owner-readonly"), "no read of other tenants");
    assert!(!all.iter().any(|id| id.contains("oidc-ns-owner-readonly-")));
    assert!(all.contains("kubernetes/ClusterRole/-/oidc-power-user-readonly"), "power-users keep their tier");

    let namespace = standard.get(&"kubernetes/Namespace/-/alice".parse().unwrap()).unwrap().content.to_value();
    let labels = &namespace["metadata"]["labels"];
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    assert_eq!(labels["pod-security.kubernetes.io/enforce-version"], "v1.37");
    assert_eq!(labels["pod-security.kubernetes.io/warn"], "restricted");
    assert_eq!(labels["pod-security.kubernetes.io/audit"], "restricted");
    let quota = standard.get(&"kubernetes/ResourceQuota/alice/user-quota".parse().unwrap()).unwrap();
    let hard = &quota.content.to_value()["spec"]["hard"];
    assert_eq!(hard["pods"], "30", "the user's own value still wins");
    for key in ["requests.ephemeral-storage", "limits.ephemeral-storage", "services.nodeports", "secrets", "configmaps"]
    {
        assert!(hard.get(key).is_some(), "quota bounds {key}: {hard}");
    }
    let limits = standard.get(&"kubernetes/LimitRange/alice/user-limits".parse().unwrap()).unwrap().content.to_value();
    assert!(limits["spec"]["limits"][0]["default"]["ephemeral-storage"].is_string());
    // Every object derived is canonical and deterministic (also under isolation).
    for resource in standard.resources() {
        assert_eq!(Content::parse(resource.content.as_str()).unwrap(), resource.content, "{}", resource.id);
    }

    // Options: NodePorts allowed, cluster reads granted, egress opened.
    let options = EXAMPLE.replacen(
        "platform:\n",
        "platform:\n  isolation_options: { allow_node_ports: true, cluster_reads: [namespaces], egress_cidrs: [0.0.0.0/0] }\n",
        1,
    );
    let opened = derive(&roster(&options), &Settings::default(), &facts);
    let opened_ids = ids(&opened);
    assert!(opened_ids.contains("kubernetes/NetworkPolicy/alice/tenantry-allow-egress"));
    assert!(opened_ids.contains("kubernetes/ClusterRoleBinding/-/tenantry-ns-owner-cluster-read-alice"));
    let role = opened.get(&"kubernetes/ClusterRole/-/tenantry-namespace-owner-cluster-read".parse().unwrap()).unwrap();
    assert_eq!(role.content.to_value()["rules"][0]["resources"], serde_json::json!(["namespaces"]));
    let services = opened
        .get(&"kubernetes/ValidatingAdmissionPolicy/-/tenantry-service-restrictions-homelab".parse().unwrap())
        .unwrap();
    assert!(!services.content.as_str().contains("NodePort'"), "NodePorts allowed, LoadBalancers still refused");
    let quota = opened.get(&"kubernetes/ResourceQuota/alice/user-quota".parse().unwrap()).unwrap();
    assert!(quota.content.to_value()["spec"]["hard"].get("services.nodeports").is_none());

    let none = derive(&roster(&origin(EXAMPLE)), &Settings::default(), &facts);
    let none_ids = ids(&none);
    assert!(!none_ids.iter().any(|id| id.contains("NetworkPolicy") || id.contains("AdmissionPolicy")));
    let namespace = none.get(&"kubernetes/Namespace/-/alice".parse().unwrap()).unwrap().content.to_value();
    assert!(namespace["metadata"]["labels"].get("pod-security.kubernetes.io/enforce").is_none());
    let quota = none.get(&"kubernetes/ResourceQuota/alice/user-quota".parse().unwrap()).unwrap();
    assert!(quota.content.to_value()["spec"]["hard"].get("secrets").is_none(), "the origin's quota unchanged");
}
