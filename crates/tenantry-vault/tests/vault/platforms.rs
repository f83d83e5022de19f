//! Issue #12 on the real OpenBao: two rosters with different `platform.name`
//! sharing one Vault (and its mounts) never see, take, prune or cut each
//! other's objects; objects an earlier version wrote (marks without a
//! platform) are claimed only through the inventory.

use super::*;
use std::collections::BTreeSet;
use tenantry_core::{Change, Owner};

fn platform_roster(platform: &str, users: &str) -> tenantry_model::Roster {
    roster(&format!("platform:\n  name: {platform}\n{users}"))
}

/// The four ids of a namespace-owner `vt-<name>-<id>` with one namespace.
fn user_ids(config: &VaultConfig, user: &str) -> [String; 4] {
    [
        format!("vault/Policy/-/namespace-owner-{user}"),
        format!("vault/Entity/-/{user}"),
        format!("vault/EntityAlias/{}/{user}@example.org", config.oidc_mount),
        format!("vault/KubernetesRole/{}/{user}-deployer", config.kubernetes_secrets_mount),
    ]
}

fn find<'a>(prepared: &'a Prepared, id: &str) -> &'a Change {
    prepared
        .plan
        .changes
        .iter()
        .find(|c| c.id.to_string() == id)
        .unwrap_or_else(|| panic!("no change for {id}: {:#?}", changes(prepared)))
}

/// Users named by any line of the plan (every action, shown-only ones included).
fn users_in(prepared: &Prepared) -> BTreeSet<String> {
    prepared.plan.changes.iter().filter_map(|c| c.owner.user().map(str::to_string)).collect()
}

/// The marks of `user`'s four objects as Vault holds them, each as the platform it names (or "none").
async fn platforms_of(config: &VaultConfig, user: &str) -> Vec<String> {
    let (_, policy) = bao("GET", &format!("sys/policies/acl/namespace-owner-{user}"), None).await;
    let header = policy["data"]["policy"].as_str().unwrap().lines().next().unwrap().to_string();
    let on_policy = header.split(" on platform ").nth(1).map(|rest| rest.split(';').next().unwrap().to_string());
    let (_, entity) = bao("GET", &format!("identity/entity/name/{user}"), None).await;
    let alias = aliases_named(&format!("{user}@example.org"), &accessor(&config.oidc_mount).await).await;
    let (_, role) = bao("GET", &format!("{}/roles/{user}-deployer", config.kubernetes_secrets_mount), None).await;
    let text = |value: &Value| value.as_str().map(str::to_string);
    [
        on_policy,
        text(&entity["data"]["metadata"]["tenantry-platform"]),
        text(&alias[0]["custom_metadata"]["tenantry-platform"]),
        text(&role["data"]["extra_annotations"]["tenantry.dev/platform"]),
    ]
    .into_iter()
    .map(|platform| platform.unwrap_or_else(|| "none".to_string()))
    .collect()
}

/// Rewrite `user`'s four objects as the version before platform marks wrote them.
async fn as_an_earlier_version_wrote_them(config: &VaultConfig, user: &str) {
    let path = format!("sys/policies/acl/namespace-owner-{user}");
    let (_, policy) = bao("GET", &path, None).await;
    let text = policy["data"]["policy"].as_str().unwrap();
    let body = text.split_once('\n').unwrap().1;
    let old = format!("# Managed by tenantry for user {user}; edits are overwritten on the next apply.\n{body}");
    ok("PUT", &path, json!({ "policy": old })).await;
    let old_marks = json!({ "managed-by": "tenantry", "tenantry-user": user });
    ok("POST", &format!("identity/entity/name/{user}"), json!({ "metadata": old_marks })).await;
    let accessor = accessor(&config.oidc_mount).await;
    let alias = &aliases_named(&format!("{user}@example.org"), &accessor).await[0];
    let body = json!({ "name": alias["name"], "mount_accessor": accessor, "canonical_id": alias["canonical_id"],
        "custom_metadata": old_marks });
    ok("POST", &format!("identity/entity-alias/id/{}", alias["id"].as_str().unwrap()), body).await;
    let role = format!("{}/roles/{user}-deployer", config.kubernetes_secrets_mount);
    let body = json!({ "allowed_kubernetes_namespaces": [user], "kubernetes_role_type": "Role",
        "kubernetes_role_name": format!("{user}-deployer"), "token_default_ttl": "30m", "token_max_ttl": "1h",
        "extra_annotations": { "app.kubernetes.io/managed-by": "tenantry", "tenantry.dev/user": user } });
    ok("POST", &role, body).await;
    assert_eq!(platforms_of(config, user).await, ["none"; 4], "the objects carry no platform mark now");
}

#[tokio::test]
async fn two_platforms_on_one_vault_never_see_take_prune_or_cut_each_others_objects() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let (lab, prod) = (format!("lab-{id}"), format!("prod-{id}"));
    let lab_vault = target(&config).await.with_platform(&lab);
    let prod_vault = target(&config).await.with_platform(&prod);
    let lab_engine = engine(vec![Arc::new(lab_vault.clone())], &config);
    let prod_engine = engine(vec![Arc::new(prod_vault.clone())], &config);
    let [alice, bob, carol, sam] = ["alice", "bob", "carol", "sam"].map(|name| format!("vt-{name}-{id}"));
    let lab_roster = platform_roster(&lab, &owners(&id, &["alice", "bob", "sam"]));
    let prod_roster = platform_roster(&prod, &owners(&id, &["carol", "sam"]));

    // Each platform converges on the shared mounts.
    let (prepared, _) = apply(&lab_engine, &lab_roster, Policy::default()).await;
    assert_eq!(changes(&prepared).len(), 12, "{:#?}", changes(&prepared));
    for user in [&alice, &bob, &sam] {
        assert_eq!(platforms_of(&config, user).await, [lab.as_str(); 4]);
    }

    // `sam` exists in both rosters: for prod, each of his objects is lab's, a conflict naming lab.
    let prepared = prod_engine.prepare(&prod_roster, Policy::default()).await.unwrap();
    for id in user_ids(&config, &sam) {
        let change = find(&prepared, &id);
        assert_eq!(change.action, Action::Conflict, "{id}: {change:?}");
        assert!(change.reason.contains(&format!("platform `{lab}`")), "{id}: {}", change.reason);
    }
    assert_eq!(users_in(&prepared), BTreeSet::from([carol.clone(), sam.clone()]), "nothing of lab's other users");
    let report = prod_engine.apply(&prod_roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec![sam.clone()], "{:#?}", report.failures);
    assert_eq!(platforms_of(&config, &carol).await, [prod.as_str(); 4]);
    assert_eq!(platforms_of(&config, &sam).await, [lab.as_str(); 4], "never taken over");
    let (_, entity) = bao("GET", &format!("identity/entity/name/{sam}"), None).await;
    assert_eq!(entity["data"]["policies"], json!([format!("namespace-owner-{sam}")]));

    // A no-op plan of either shows nothing of the other's users, even with a lost state database.
    let again = lab_engine.prepare(&lab_roster, Policy::default()).await.unwrap();
    assert!(changes(&again).is_empty(), "{:#?}", changes(&again));
    assert!(!users_in(&again).contains(&carol), "{:#?}", again.plan.changes);
    let fresh = engine(vec![Arc::new(prod_vault.clone())], &config);
    let forgetful = fresh.prepare(&prod_roster, Policy { offboard: true, ..Policy::default() }).await.unwrap();
    // carol's objects are prod's and as wanted (no line); sam's are still lab's.
    assert_eq!(users_in(&forgetful), BTreeSet::from([sam.clone()]), "{:#?}", forgetful.plan.changes);
    assert!(forgetful.plan.departing.is_empty(), "{:?}", forgetful.plan.departing);

    // --offboard of lab (bob left) cuts bob only; prod's carol is untouched.
    let without_bob = platform_roster(&lab, &owners(&id, &["alice", "sam"]));
    let (prepared, _) = apply(&lab_engine, &without_bob, Policy { offboard: true, ..Policy::default() }).await;
    let touched: BTreeSet<String> = prepared
        .plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .filter_map(|c| c.owner.user().map(str::to_string))
        .collect();
    assert_eq!(touched, BTreeSet::from([bob.clone()]), "{:#?}", changes(&prepared));
    assert_eq!(action(&prepared, &format!("vault/Entity/-/{bob}")), Some(Action::Cut));
    let (_, bob_entity) = bao("GET", &format!("identity/entity/name/{bob}"), None).await;
    assert_eq!(bob_entity["data"]["disabled"], true);
    let (_, carol_entity) = bao("GET", &format!("identity/entity/name/{carol}"), None).await;
    assert_eq!(carol_entity["data"]["disabled"], false, "another platform's user is never cut");
    assert_eq!(carol_entity["data"]["policies"], json!([format!("namespace-owner-{carol}")]));

    // --offboard of prod (carol left) cuts carol only: lab's sam (prod's conflict) is not prod's.
    let only_sam = platform_roster(&prod, &owners(&id, &["sam"]));
    let prepared = prod_engine.prepare(&only_sam, Policy { offboard: true, ..Policy::default() }).await.unwrap();
    let touched: BTreeSet<String> = prepared
        .plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .filter_map(|c| c.owner.user().map(str::to_string))
        .collect();
    assert_eq!(touched, BTreeSet::from([carol.clone()]), "{:#?}", changes(&prepared));
    let report = prod_engine.apply(&only_sam, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec![sam.clone()], "only the conflict fails: {:#?}", report.failures);
    let (_, carol_entity) = bao("GET", &format!("identity/entity/name/{carol}"), None).await;
    assert_eq!(carol_entity["data"]["disabled"], true);
    for user in [&sam, &alice] {
        let (_, entity) = bao("GET", &format!("identity/entity/name/{user}"), None).await;
        assert_eq!(entity["data"]["disabled"], false, "{user}");
    }

    // The destroy stage of prod leaves lab's objects and lab's user's secrets alone.
    ok("POST", &format!("secret/data/{sam}/db"), json!({ "data": { "password": "lab's" } })).await;
    let dir = tempfile::tempdir().unwrap();
    let report = prod_vault.destroy_user(&sam, &tenantry_engine::BackupDir::new(dir.path())).await.unwrap();
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    assert_eq!(report.secrets, 0, "{:?}", report.notes);
    assert_eq!(platforms_of(&config, &sam).await, [lab.as_str(); 4]);
    assert_eq!(bao("GET", &format!("secret/data/{sam}/db"), None).await.0, 200);
}

#[tokio::test]
async fn objects_an_earlier_version_wrote_are_claimed_through_the_inventory_or_adopted() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let lab = format!("lab-{id}");
    let vault = target(&config).await.with_platform(&lab);
    let engine = engine(vec![Arc::new(vault.clone())], &config);
    let dora = format!("vt-dora-{id}");
    let roster = platform_roster(&lab, &owners(&id, &["dora"]));
    apply(&engine, &roster, Policy::default()).await;

    // In this platform's inventory: each is claimed with a plan line saying so, then carries the mark.
    as_an_earlier_version_wrote_them(&config, &dora).await;
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    for id in user_ids(&config, &dora) {
        let change = find(&prepared, &id);
        assert_eq!(change.action, Action::Update, "{id}: {change:?}");
        assert!(change.reason.contains("inventory remembers it"), "{id}: {}", change.reason);
        assert_eq!(change.owner, Owner::User(dora.clone()));
    }
    apply(&engine, &roster, Policy::default()).await;
    assert_eq!(platforms_of(&config, &dora).await, [lab.as_str(); 4]);
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());

    // Not in the inventory (a fresh state database): the same objects are adopted, shown in the plan.
    as_an_earlier_version_wrote_them(&config, &dora).await;
    let fresh = super::engine(vec![Arc::new(vault.clone())], &config);
    let prepared = fresh.prepare(&roster, Policy::default()).await.unwrap();
    for id in user_ids(&config, &dora) {
        let change = find(&prepared, &id);
        assert_eq!(change.action, Action::Adopt, "{id}: {change:?}");
        assert!(change.reason.contains("earlier version's marks"), "{id}: {}", change.reason);
    }
    apply(&fresh, &roster, Policy::default()).await;
    assert_eq!(platforms_of(&config, &dora).await, [lab.as_str(); 4]);
    assert!(changes(&fresh.prepare(&roster, Policy::default()).await.unwrap()).is_empty());
}
