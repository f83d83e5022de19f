//! Against the real Keycloak of the test environment.

use super::*;
use serde_json::Value;
use tenantry_testenv::Keycloak;

fn peer() -> Keycloak {
    tenantry_testenv::keycloak().unwrap_or_else(|e| panic!("{e}"))
}

/// The target, signed in with the realm's admin client (client credentials).
async fn target(dir: &Path, configure: impl FnOnce(&mut IdpConfig)) -> Arc<IdpTarget> {
    let kc = peer();
    let mut config = IdpConfig {
        realm: Some(kc.realm.clone()),
        client_id: Some(kc.admin_client_id.clone()),
        client_secret_file: Some(secret_file(dir, "client-secret", &kc.admin_client_secret)),
        ca_file: Some(kc.ca_file.clone()),
        ..IdpConfig::new(Provider::Keycloak, kc.url.clone())
    };
    configure(&mut config);
    Arc::new(IdpTarget::connect_with(&config, &|_| None).await.unwrap())
}

/// Names of the groups a user is in.
async fn groups_of(kc: &Keycloak, user_id: &str) -> Vec<String> {
    let (_, groups) = kc.admin("GET", &format!("users/{user_id}/groups"), None).await.unwrap();
    let mut names: Vec<String> =
        groups.as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

async fn user(kc: &Keycloak, user_id: &str) -> Value {
    kc.admin("GET", &format!("users/{user_id}"), None).await.unwrap().1
}

#[tokio::test]
async fn groups_are_applied_a_noop_costs_one_listing_per_group_and_the_cut_removes_them() {
    tenantry_testenv::install_crypto_provider();
    let kc = peer();
    let id = run_id();
    let dir = tempfile::tempdir().unwrap();
    let (owners, ws, extra) = (format!("kc-owners-{id}"), format!("kc ws {id}"), format!("kc-extra-{id}"));
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let login = format!("{name}-{id}");
        ids.push(kc.create_user(&login, &format!("{login}@example.org"), "pw-unused-1").await.unwrap());
    }
    let text = |with_bob: bool, alice_extra: bool| {
        let mut text = format!(
            "platform:\n  idp: {{ tier_groups: {{ namespace-owner: [{owners}] }}, workstation_group: \"{ws}\" }}\nusers:\n"
        );
        let extra_groups = if alice_extra { format!("[\"{extra}\"]") } else { "[]".to_string() };
        text.push_str(&format!(
            "  alice-{id}: {{ email: alice-{id}@example.org, tier: namespace-owner, namespaces: [kc-a-{id}], groups: {extra_groups}, workstation: {{ idp_user: alice-{id} }} }}\n"
        ));
        text.push_str(&format!(
            "  carol-{id}: {{ email: carol-{id}@example.org, tier: namespace-owner, namespaces: [kc-c-{id}] }}\n"
        ));
        if with_bob {
            text.push_str(&format!(
                "  bob-{id}: {{ email: bob-{id}@example.org, tier: power-user, groups: [\"{extra}\"] }}\n"
            ));
        }
        roster(&text)
    };
    let target = target(dir.path(), |_| {}).await;
    let engine = engine(&target);
    let full = text(true, true);

    let plan = engine.prepare(&full, Policy::default()).await.unwrap();
    for group in [&owners, &ws, &extra] {
        assert_eq!(action(&plan, &format!("idp/Group/-/{group}")), Some(Action::Create), "{:#?}", changes(&plan));
    }
    assert_eq!(action(&plan, &format!("idp/GroupMember/{ws}/alice-{id}@example.org")), Some(Action::Create));
    assert_eq!(action(&plan, &format!("idp/Account/-/bob-{id}@example.org")), None, "existing accounts are no-ops");
    assert!(plan.plan.problems.is_empty(), "{:?}", plan.plan.problems);
    let (_, report) = apply(&engine, &full, Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(groups_of(&kc, &ids[0]).await, {
        let mut v = vec![extra.clone(), ws.clone(), owners.clone()];
        v.sort();
        v
    });
    assert_eq!(groups_of(&kc, &ids[1]).await, vec![extra.clone()]);
    assert_eq!(groups_of(&kc, &ids[2]).await, vec![owners.clone()]);

    // The no-op: one group lookup and one member page per group, nothing written.
    let before = target.request_counts();
    let again = engine.prepare(&full, Policy::default()).await.unwrap();
    assert!(changes(&again).is_empty(), "{:#?}", changes(&again));
    let cost = target.request_counts();
    assert_eq!((cost.requests - before.requests, cost.writes - before.writes), (6, 0), "3 groups x (lookup + members)");

    // Additive: alice's extra group leaves the roster, but is withheld.
    let fewer = text(true, false);
    let withheld = engine.prepare(&fewer, Policy::default()).await.unwrap();
    assert_eq!(action(&withheld, &format!("idp/GroupMember/{extra}/alice-{id}@example.org")), Some(Action::Withheld));

    // Bob leaves: departing until --offboard; the cut removes him from the groups, the account stays enabled.
    let without_bob = text(false, true);
    let plan = engine.prepare(&without_bob, Policy::default()).await.unwrap();
    assert_eq!(action(&plan, &format!("idp/GroupMember/{extra}/bob-{id}@example.org")), Some(Action::Departing));
    let cut = Policy { offboard: true, ..Policy::default() };
    let (plan, report) = apply(&engine, &without_bob, cut).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(action(&plan, &format!("idp/GroupMember/{extra}/bob-{id}@example.org")), Some(Action::Delete));
    assert_eq!(action(&plan, &format!("idp/Account/-/bob-{id}@example.org")), Some(Action::Kept), "not disabled");
    assert!(groups_of(&kc, &ids[1]).await.is_empty());
    assert_eq!(user(&kc, &ids[1]).await["enabled"], true);
    assert_eq!(groups_of(&kc, &ids[0]).await.len(), 3, "alice keeps hers");

    // Destroy never deletes the account unless asked.
    let destroy = engine.destroy_plan(&without_bob, &format!("bob-{id}")).await.unwrap();
    let backups = tempfile::tempdir().unwrap();
    let report = engine.destroy(&destroy, backups.path(), "test").await.unwrap();
    assert!(format!("{report:?}").contains("kept in Keycloak realm"), "{report:?}");
    assert_eq!(user(&kc, &ids[1]).await["username"], format!("bob-{id}"), "the account is still there");
}

#[tokio::test]
async fn a_user_missing_in_keycloak_fails_only_that_user_and_the_plan_names_the_roster_line() {
    tenantry_testenv::install_crypto_provider();
    let kc = peer();
    let id = run_id();
    let dir = tempfile::tempdir().unwrap();
    let group = format!("kc-miss-{id}");
    let alice =
        kc.create_user(&format!("alice-{id}"), &format!("alice-{id}@example.org"), "pw-unused-1").await.unwrap();
    let text = format!(
        "users:\n  alice-{id}: {{ email: alice-{id}@example.org, tier: power-user, groups: [{group}] }}\n  ghost-{id}: {{ email: ghost-{id}@example.org, tier: power-user, groups: [{group}] }}\n"
    );
    let roster = roster(&text);
    let target = target(dir.path(), |_| {}).await;
    let engine = engine(&target);
    let plan = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert_eq!(plan.plan.problems.len(), 1, "{:?}", plan.plan.problems);
    let problem = &plan.plan.problems[0];
    assert!(!problem.blocking, "only that user fails");
    assert!(
        problem.message.contains(&format!("user `ghost-{id}` (roster line 3, column"))
            && problem.message.contains(&format!("`ghost-{id}@example.org` has no account in Keycloak realm")),
        "{}",
        problem.message
    );
    assert!(problem.help.contains("create_users = true"), "{}", problem.help);
    let steps = engine.describe(&plan.plan);
    let ghost_account = format!("idp/Account/-/ghost-{id}@example.org");
    let step = steps.iter().find(|(i, _)| i.to_string() == ghost_account).map(|(_, s)| s.join(" ")).unwrap();
    assert!(step.contains("fails") && step.contains("create_users is off"), "{step}");

    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    let failed: Vec<String> = report.failures.iter().map(|f| format!("{} {}", f.id, f.skipped)).collect();
    assert_eq!(
        failed,
        vec![format!("{ghost_account} false"), format!("idp/GroupMember/{group}/ghost-{id}@example.org true")],
        "{:#?}",
        report.failures
    );
    assert!(report.failures[0].error.contains("create_users = true"), "{}", report.failures[0].error);
    assert_eq!(groups_of(&kc, &alice).await, vec![group.clone()], "alice is applied anyway");
}

#[tokio::test]
async fn create_users_creates_the_account_and_disable_on_cut_disables_it() {
    tenantry_testenv::install_crypto_provider();
    let kc = peer();
    let id = run_id();
    let dir = tempfile::tempdir().unwrap();
    let group = format!("kc-new-{id}");
    let text = format!(
        "users:\n  newbie-{id}: {{ email: newbie-{id}@example.org, tier: power-user, groups: [{group}], workstation: {{ idp_user: newbie-{id} }} }}\n"
    );
    let target = target(dir.path(), |c| {
        c.create_users = true;
        c.disable_on_cut = true;
    })
    .await;
    let engine = engine(&target);
    let roster = roster(&text);
    let plan = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(plan.plan.problems.is_empty(), "{:?}", plan.plan.problems);
    let account = format!("idp/Account/-/newbie-{id}@example.org");
    assert_eq!(action(&plan, &account), Some(Action::Create));
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    let user_id = kc.user_id(&format!("newbie-{id}")).await.unwrap().expect("the account was created");
    let created = user(&kc, &user_id).await;
    assert_eq!(created["email"], format!("newbie-{id}@example.org"));
    assert_eq!(created["enabled"], true);
    assert_eq!(created["requiredActions"], serde_json::json!(["VERIFY_EMAIL", "UPDATE_PASSWORD"]));
    assert_eq!(groups_of(&kc, &user_id).await, vec![group.clone()]);
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());

    let empty = tenantry_model::load("roster.yaml", b"users: {}\n", &Default::default()).unwrap();
    let (plan, report) = apply(&engine, &empty, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(action(&plan, &account), Some(Action::Cut));
    assert_eq!(user(&kc, &user_id).await["enabled"], false, "disabled by the cut");
    assert!(groups_of(&kc, &user_id).await.is_empty());
}
