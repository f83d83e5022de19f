//! The forge target against the real Gitea of `testenv/up gitea`: every
//! test makes its own organization, repositories, team and users
//! (`f<run>…`), so tests run concurrently and rerun cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use tenantry_core::{Action, Policy, Settings, Target};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};
use tenantry_forge::{ForgeConfig, ForgeTarget, Provider};
use tenantry_testenv::Gitea;

fn run_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}", (nanos ^ (u128::from(std::process::id()) << 40)) % 0xff_ffff_ffff)
}

fn gitea() -> Gitea {
    tenantry_testenv::gitea().unwrap_or_else(|e| panic!("{e}"))
}

fn roster(text: &str) -> tenantry_model::Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap_or_else(|e| panic!("{e:?}"))
}

async fn target(gitea: &Gitea) -> Arc<ForgeTarget> {
    let config = ForgeConfig {
        url: gitea.url.clone(),
        token_file: Some(gitea.token_file.clone().into()),
        provider: Provider::Gitea,
        timeout_secs: None,
    };
    Arc::new(ForgeTarget::connect(&config, &|_| None).await.unwrap())
}

fn engine(target: &Arc<ForgeTarget>, state: State) -> Engine {
    Engine::new(
        vec![Arc::clone(target) as Arc<dyn Target>],
        state,
        Arc::new(FixedClock("2026-12-01T04:00:00Z".into())),
        Settings::default(),
    )
}

async fn apply(engine: &Engine, roster: &tenantry_model::Roster, policy: Policy) -> (Prepared, ApplyReport) {
    let prepared = engine.prepare(roster, policy).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
    let options = ApplyOptions { concurrency: 4, command: "test".into(), ..ApplyOptions::default() };
    let report = engine.apply(roster, &prepared, &options, &|_| {}).await.unwrap();
    (prepared, report)
}

fn action(prepared: &Prepared, id: &str) -> Option<Action> {
    prepared.plan.changes.iter().find(|c| c.id.to_string() == id).map(|c| c.action)
}

/// An organization with repositories `infra` and `apps` (branch `master`),
/// team `contributors`, and the given users.
async fn forge_setup(gitea: &Gitea, org: &str, users: &[&str]) {
    gitea.create_org(org).await.unwrap();
    for repo in ["infra", "apps"] {
        gitea.create_repo(org, repo, "master").await.unwrap();
    }
    gitea.create_team(org, "contributors").await.unwrap();
    for user in users {
        gitea.create_user(user).await.unwrap();
    }
}

async fn logins(gitea: &Gitea, path: &str) -> Vec<String> {
    let list = gitea.call(Method::GET, path, None).await.unwrap();
    let mut names: Vec<String> =
        list.as_array().unwrap().iter().map(|u| u["login"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

async fn team_members(gitea: &Gitea, org: &str) -> Vec<String> {
    let teams = gitea.call(Method::GET, &format!("/orgs/{org}/teams"), None).await.unwrap();
    let id = teams.as_array().unwrap().iter().find(|t| t["name"] == "contributors").unwrap()["id"].as_i64().unwrap();
    logins(gitea, &format!("/teams/{id}/members")).await
}

async fn protection(gitea: &Gitea, repo: &str) -> Value {
    gitea.call(Method::GET, &format!("/repos/{repo}/branch_protections/master"), None).await.unwrap()
}

fn platform(org: &str, push_users: &str) -> String {
    format!(
        "platform:\n  forge:\n    repos: [{org}/infra, {org}/apps]\n    protected_branch: master\n    push_users: [{push_users}]\n    team: {org}/contributors\n"
    )
}

#[tokio::test]
async fn two_users_two_repos_then_a_no_op_costs_only_list_requests_and_the_cut_takes_it_back() {
    let gitea = gitea();
    let id = run_id();
    let org = format!("f{id}o");
    let (alice, bob, carol) = (format!("f{id}a"), format!("f{id}b"), format!("f{id}c"));
    forge_setup(&gitea, &org, &[&alice, &bob, &carol]).await;
    let users = |extra: &str| {
        format!(
            "users:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  bob{id}: {{ email: b{id}@example.org, tier: power-user, forge_user: {bob} }}\n{extra}"
        )
    };
    let two = roster(&format!("{}{}", platform(&org, &format!("alice{id}")), users("")));
    let forge = target(&gitea).await;
    let engine = engine(&forge, State::in_memory().unwrap());

    let (prepared, report) = apply(&engine, &two, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert!(prepared.plan.problems.is_empty(), "{:?}", prepared.plan.problems);
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{alice}/{org}/infra")), Some(Action::Create));
    for repo in ["infra", "apps"] {
        let repo = format!("{org}/{repo}");
        assert_eq!(logins(&gitea, &format!("/repos/{repo}/collaborators")).await, vec![alice.clone(), bob.clone()]);
        for user in [&alice, &bob] {
            let permission =
                gitea.call(Method::GET, &format!("/repos/{repo}/collaborators/{user}/permission"), None).await.unwrap();
            assert_eq!(permission["permission"], "write", "{user} on {repo}");
        }
        let protected = protection(&gitea, &repo).await;
        assert_eq!(protected["enable_push"], true);
        assert_eq!(protected["enable_push_whitelist"], true);
        assert_eq!(protected["enable_force_push"], false);
        assert_eq!(protected["push_whitelist_usernames"], json!([alice]));
        assert_eq!(protected["merge_whitelist_usernames"], json!([alice]));
    }
    assert_eq!(team_members(&gitea, &org).await, vec![alice.clone(), bob.clone()]);

    // A second plan is a no-op that only lists: per repository its
    // collaborators and protections, per team its lookup and members.
    let before = forge.request_counts();
    let again = engine.prepare(&two, Policy::default()).await.unwrap();
    assert!(!again.plan.has_changes(), "{:?}", again.plan.changes);
    let spent = forge.request_counts();
    assert_eq!(spent.writes - before.writes, 0);
    assert_eq!(spent.requests - before.requests, 2 * 2 + 2, "2 repos × (collaborators + protections) + team lookup + members");

    // A third user costs no request more.
    let three = roster(&format!(
        "{}{}",
        platform(&org, &format!("alice{id}")),
        users(&format!("  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n"))
    ));
    assert!(apply(&engine, &three, Policy::default()).await.1.is_success());
    let before = forge.request_counts();
    assert!(!engine.prepare(&three, Policy::default()).await.unwrap().plan.has_changes());
    assert_eq!(forge.request_counts().requests - before.requests, 6, "requests grow with repos and teams, not users");

    // Additive-only: bob leaving is shown, not done; the cut takes his grants.
    let (prepared, _) = apply(&engine, &roster(&format!("{}{}", platform(&org, &format!("alice{id}")), users("").replace(&format!("  bob{id}: {{ email: b{id}@example.org, tier: power-user, forge_user: {bob} }}\n"), &format!("  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n")))), Policy::default()).await;
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{bob}/{org}/infra")), Some(Action::Departing));
    assert!(logins(&gitea, &format!("/repos/{org}/infra/collaborators")).await.contains(&bob));
    let without_bob = roster(&format!(
        "{}users:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n",
        platform(&org, &format!("alice{id}"))
    ));
    let (prepared, report) = apply(&engine, &without_bob, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("forge/TeamMember/{bob}/{org}/contributors")), Some(Action::Delete));
    assert_eq!(logins(&gitea, &format!("/repos/{org}/apps/collaborators")).await, vec![alice.clone(), carol.clone()]);
    assert_eq!(team_members(&gitea, &org).await, vec![alice.clone(), carol.clone()]);

    // Alice leaves: her whitelist entries go with the cut, the protection stays.
    let only_carol = roster(&format!(
        "{}users:\n  carol{id}: {{ email: c{id}@example.org, tier: power-user, forge_user: {carol} }}\n",
        platform(&org, "")
    ));
    let (prepared, report) = apply(&engine, &only_carol, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(
        action(&prepared, &format!("forge/PushWhitelistEntry/{alice}/{org}/infra@master")),
        Some(Action::Delete)
    );
    let protected = protection(&gitea, &format!("{org}/infra")).await;
    assert_eq!(protected["push_whitelist_usernames"], json!([]));
    assert_eq!(protected["enable_force_push"], false);
    assert!(!engine.prepare(&only_carol, Policy::default()).await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn an_unknown_forge_login_fails_at_plan_with_its_roster_line_and_only_its_changes_fail() {
    let gitea = gitea();
    let id = run_id();
    let org = format!("f{id}o");
    let alice = format!("f{id}a");
    forge_setup(&gitea, &org, &[&alice]).await;
    let text = format!(
        "{}users:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  ghost{id}:\n    email: g{id}@example.org\n    tier: power-user\n    forge_user: nobody{id}\n",
        platform(&org, &format!("alice{id}"))
    );
    let line = text.lines().position(|l| l.contains(&format!("forge_user: nobody{id}"))).unwrap() + 1;
    let forge = target(&gitea).await;
    let engine = engine(&forge, State::in_memory().unwrap());
    let (prepared, report) = apply(&engine, &roster(&text), Policy::default()).await;
    let problem = prepared.plan.problems.iter().find(|p| p.message.contains(&format!("nobody{id}"))).unwrap();
    assert!(problem.message.contains(&format!("roster line {line}")), "{}", problem.message);
    assert!(problem.message.contains(&format!("user `ghost{id}`")), "{}", problem.message);
    assert!(problem.help.contains("forge_user"), "{}", problem.help);
    // Only ghost's changes fail, each saying why; alice's are applied.
    assert!(!report.failures.is_empty());
    for failure in &report.failures {
        assert_eq!(failure.owner.user(), Some(format!("ghost{id}").as_str()), "{failure:?}");
        assert!(failure.error.contains("does not exist"), "{}", failure.error);
    }
    assert_eq!(logins(&gitea, &format!("/repos/{org}/infra/collaborators")).await, vec![alice.clone()]);
}

#[tokio::test]
async fn an_existing_collaborator_is_adopted_and_an_admin_keeps_admin() {
    let gitea = gitea();
    let id = run_id();
    let org = format!("f{id}o");
    let (alice, bob) = (format!("f{id}a"), format!("f{id}b"));
    forge_setup(&gitea, &org, &[&alice, &bob]).await;
    for (user, permission) in [(&alice, "write"), (&bob, "admin")] {
        gitea
            .call(
                Method::PUT,
                &format!("/repos/{org}/infra/collaborators/{user}"),
                Some(json!({ "permission": permission })),
            )
            .await
            .unwrap();
    }
    let text = format!(
        "platform:\n  forge: {{ repos: [{org}/infra] }}\nusers:\n  alice{id}: {{ email: a{id}@example.org, tier: power-user, forge_user: {alice} }}\n  bob{id}: {{ email: b{id}@example.org, tier: power-user, forge_user: {bob} }}\n"
    );
    let forge = target(&gitea).await;
    let engine = engine(&forge, State::in_memory().unwrap());
    let (prepared, report) = apply(&engine, &roster(&text), Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{alice}/{org}/infra")), Some(Action::Adopt));
    assert_eq!(action(&prepared, &format!("forge/Collaborator/{bob}/{org}/infra")), Some(Action::Adopt));
    let permission =
        gitea.call(Method::GET, &format!("/repos/{org}/infra/collaborators/{bob}/permission"), None).await.unwrap();
    assert_eq!(permission["permission"], "admin", "adoption never lowers a permission");
    assert!(!engine.prepare(&roster(&text), Policy::default()).await.unwrap().plan.has_changes());
}
