//! Against the Authentik API fixture (Authentik cannot run here).

use super::fixture::{Authentik, TOKEN};
use super::*;

async fn target(fixture: &Authentik, dir: &Path, configure: impl FnOnce(&mut IdpConfig)) -> Arc<IdpTarget> {
    let mut config = IdpConfig {
        token_file: Some(secret_file(dir, "authentik-token", TOKEN)),
        ..IdpConfig::new(Provider::Authentik, fixture.url())
    };
    configure(&mut config);
    Arc::new(IdpTarget::connect_with(&config, &|_| None).await.unwrap())
}

fn team(users: &[(&str, &str)]) -> tenantry_model::Roster {
    let mut text = String::from(
        "platform:\n  idp: { tier_groups: { power-user: [platform-readers] }, workstation_group: \"T3 Users\" }\nusers:\n",
    );
    for (name, tier) in users {
        let namespaces = if *tier == "namespace-owner" { format!(", namespaces: [{name}]") } else { String::new() };
        text.push_str(&format!(
            "  {name}: {{ email: {name}@example.org, tier: {tier}{namespaces}, workstation: {{ idp_user: {name} }} }}\n"
        ));
    }
    roster(&text)
}

#[tokio::test]
async fn memberships_span_pages_a_noop_lists_each_group_and_the_cut_keeps_others_members() {
    let fixture = Authentik::start().await;
    let dir = tempfile::tempdir().unwrap();
    let names = ["alice", "bob", "carol", "dave"];
    let pks: Vec<u64> = names.iter().map(|n| fixture.seed_user(n, &format!("{n}@example.org"))).collect();
    let outsider = fixture.seed_user("outsider", "outsider@example.org");
    fixture.seed_group("T3 Users", &[outsider, pks[0]]);
    let target = target(&fixture, dir.path(), |_| {}).await;
    let engine = engine(&target);
    let roster =
        team(&[("alice", "namespace-owner"), ("bob", "power-user"), ("carol", "power-user"), ("dave", "admin")]);

    let plan = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert_eq!(action(&plan, "idp/Group/-/platform-readers"), Some(Action::Create));
    assert_eq!(action(&plan, "idp/Group/-/T3 Users"), None, "an existing group is taken as it is");
    assert_eq!(action(&plan, "idp/GroupMember/T3 Users/alice@example.org"), None, "already a member");
    assert_eq!(action(&plan, "idp/GroupMember/T3 Users/dave@example.org"), Some(Action::Create));
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(fixture.members("T3 Users"), ["alice", "bob", "carol", "dave", "outsider"]);
    assert_eq!(fixture.members("platform-readers"), ["bob", "carol"]);

    // The no-op: each group looked up once and its members read page by page
    // (5 members in pages of 2 = 3 pages; 2 members = 1 page): 6 GETs, no write.
    fixture.clear_log();
    let before = target.request_counts();
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());
    let after = target.request_counts();
    assert_eq!((after.requests - before.requests, after.writes - before.writes), (6, 0), "{:#?}", fixture.log());
    assert!(fixture.log().iter().all(|(method, _)| method == "GET"));

    // Dave leaves: the cut removes him; the outsider (not tenantry's) stays.
    let without_dave = team(&[("alice", "namespace-owner"), ("bob", "power-user"), ("carol", "power-user")]);
    let (plan, report) = apply(&engine, &without_dave, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(action(&plan, "idp/GroupMember/T3 Users/dave@example.org"), Some(Action::Delete));
    assert_eq!(fixture.members("T3 Users"), ["alice", "bob", "carol", "outsider"]);
    assert_eq!(fixture.user("dave").unwrap()["is_active"], true, "disable_on_cut is off");

    // A list answered without its items is an error, not "no members": read
    // as empty, the plan would add every member again.
    fixture.answer_lists_without_results();
    let prepared = engine.prepare(&without_dave, Policy::default()).await.unwrap();
    assert!(changes(&prepared).is_empty(), "nothing is planned from a listing that failed");
    let why = prepared.unavailable.get("idp").map(String::as_str).unwrap_or_default();
    assert!(why.contains("expected a list in `results`") && why.contains("read-only maintenance"), "{why}");
}

#[tokio::test]
async fn missing_users_fail_alone_and_the_apis_error_bodies_reach_the_admin() {
    let fixture = Authentik::start().await;
    let dir = tempfile::tempdir().unwrap();
    fixture.seed_user("alice", "alice@example.org");
    // Someone else already holds the login the roster gives eve.
    fixture.seed_user("eve", "eve.other@example.org");
    let roster = team(&[("alice", "power-user"), ("eve", "power-user")]);

    let strict = target(&fixture, dir.path(), |_| {}).await;
    let plan = engine(&strict).prepare(&roster, Policy::default()).await.unwrap();
    let messages: Vec<&str> = plan.plan.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("user `eve` (roster line 5") && messages[0].contains("Authentik at"), "{messages:?}");

    let creating = target(&fixture, dir.path(), |c| c.create_users = true).await;
    let engine = engine(&creating);
    let plan = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(plan.plan.problems.is_empty(), "create_users: no problem");
    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    let failure = report.failures.iter().find(|f| !f.skipped).unwrap();
    assert_eq!(failure.id, "idp/Account/-/eve@example.org");
    assert!(failure.error.contains("HTTP 400: username: This field must be unique."), "{}", failure.error);
    assert!(report.failures.iter().filter(|f| f.skipped).all(|f| f.owner.user() == Some("eve")));
    assert_eq!(fixture.members("T3 Users"), ["alice"], "alice is applied anyway");

    let bad = IdpConfig {
        token_file: Some(secret_file(dir.path(), "wrong", "not-the-token")),
        ..IdpConfig::new(Provider::Authentik, fixture.url())
    };
    let refused = IdpTarget::connect_with(&bad, &|_| None).await.unwrap_err().to_string();
    assert!(
        refused.contains("refused the API token (HTTP 403: Authentication credentials were not provided.)"),
        "{refused}"
    );
}
