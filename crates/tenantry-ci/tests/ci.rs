//! The CI target against a local Woodpecker fixture (tests/support):
//! grant, no-op, adoption, the cut, a login Woodpecker does not know, and
//! 5xx / 429 answers retried with backoff, then failing only that change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/woodpecker.rs"]
mod woodpecker;

use std::os::unix::fs::PermissionsExt as _;
use std::sync::Arc;
use std::time::Duration;
use tenantry_ci::{CiConfig, CiTarget, Retry};
use tenantry_core::{Action, Policy, Settings, Target};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};
use woodpecker::Woodpecker;

fn roster(text: &str) -> tenantry_model::Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap_or_else(|e| panic!("{e:?}"))
}

async fn target(fixture: &Woodpecker, dir: &tempfile::TempDir) -> Arc<CiTarget> {
    let token_file = dir.path().join("woodpecker.token");
    std::fs::write(&token_file, woodpecker::TOKEN).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = CiConfig { url: fixture.url(), token_file: Some(token_file), timeout_secs: Some(5) };
    let retry = Retry { attempts: 4, first_backoff: Duration::from_millis(20), max_wait: Duration::from_secs(2) };
    Arc::new(CiTarget::connect_with(&config, &|_| None, retry).await.unwrap())
}

fn engine(target: &Arc<CiTarget>) -> Engine {
    Engine::new(
        vec![Arc::clone(target) as Arc<dyn Target>],
        State::in_memory().unwrap(),
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

const ROSTER: &str = "platform:
  ci: { extra_admins: [ops-bot] }
users:
  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], forge_user: alice-dev }
  bob: { email: bob@example.org, tier: namespace-owner, namespaces: [bob] }
  emo: { email: emo@example.org, tier: power-user }
";

#[tokio::test]
async fn grant_no_op_adopt_and_cut() {
    let fixture = Woodpecker::start().await;
    for (login, admin) in [("alice-dev", false), ("bob", false), ("emo", false), ("ops-bot", true), ("a1", false)] {
        fixture.add_user(login, admin);
    }
    let dir = tempfile::tempdir().unwrap();
    let ci = target(&fixture, &dir).await;
    let engine = engine(&ci);

    let (prepared, report) = apply(&engine, &roster(ROSTER), Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert!(prepared.plan.problems.is_empty(), "{:?}", prepared.plan.problems);
    assert_eq!(action(&prepared, "ci/Admin/-/alice-dev"), Some(Action::Create));
    assert_eq!(action(&prepared, "ci/Admin/-/bob"), Some(Action::Create));
    assert_eq!(action(&prepared, "ci/Admin/-/ops-bot"), Some(Action::Adopt), "an existing admin is adopted");
    assert_eq!(action(&prepared, "ci/Admin/-/emo"), None, "power-users are not CI admins");
    let alice = fixture.user("alice-dev").unwrap();
    assert_eq!(alice["admin"], true);
    assert_eq!(alice["email"], "alice-dev@example.org", "the PATCH sends the user back whole");
    assert_eq!(alice["avatar_url"], "https://avatars.example.org/alice-dev");
    assert_eq!(fixture.user("emo").unwrap()["admin"], false);

    // A second plan: one paginated listing (6 users, 2 per page: 4 requests), no write.
    let before = ci.request_counts();
    let again = engine.prepare(&roster(ROSTER), Policy::default()).await.unwrap();
    assert!(!again.plan.has_changes(), "{:?}", again.plan.changes);
    let after = ci.request_counts();
    assert_eq!((after.requests - before.requests, after.writes - before.writes), (4, 0));

    // Bob leaves: departing without --offboard, admin dropped with it.
    let without_bob =
        ROSTER.replace("  bob: { email: bob@example.org, tier: namespace-owner, namespaces: [bob] }\n", "");
    let (prepared, _) = apply(&engine, &roster(&without_bob), Policy::default()).await;
    assert_eq!(action(&prepared, "ci/Admin/-/bob"), Some(Action::Departing));
    assert_eq!(fixture.user("bob").unwrap()["admin"], true);
    let (prepared, report) =
        apply(&engine, &roster(&without_bob), Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, "ci/Admin/-/bob"), Some(Action::Delete));
    let bob = fixture.user("bob").unwrap();
    assert_eq!(
        (bob["admin"].clone(), bob["email"].clone()),
        (serde_json::json!(false), serde_json::json!("bob@example.org"))
    );
    assert!(!engine.prepare(&roster(&without_bob), Policy::default()).await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn a_login_woodpecker_does_not_know_is_a_plan_problem_with_its_roster_line() {
    let fixture = Woodpecker::start().await;
    fixture.add_user("alice-dev", false);
    let dir = tempfile::tempdir().unwrap();
    let ci = target(&fixture, &dir).await;
    let engine = engine(&ci);
    let (prepared, report) = apply(&engine, &roster(ROSTER), Policy::default()).await;
    let messages: Vec<&str> = prepared.plan.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages.contains(&"forge login `bob` of user `bob` (roster line 5) is not a Woodpecker user"),
        "{messages:?}"
    );
    assert!(
        messages
            .contains(&"forge login `ops-bot` in platform.ci.extra_admins (roster line 2) is not a Woodpecker user"),
        "{messages:?}"
    );
    // Those two fail at apply, each with the reason; alice's grant is applied.
    let mut failed: Vec<&str> = report.failures.iter().map(|f| f.id.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["ci/Admin/-/bob", "ci/Admin/-/ops-bot"]);
    assert!(report.failures.iter().all(|f| f.error.contains("is not a Woodpecker user")), "{:?}", report.failures);
    assert_eq!(fixture.user("alice-dev").unwrap()["admin"], true);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_with_backoff_then_fail_only_that_change() {
    let fixture = Woodpecker::start().await;
    for login in ["alice-dev", "bob", "ops-bot"] {
        fixture.add_user(login, false);
    }
    // alice: two 503s, then it works; bob: rate limited for good.
    fixture.fail("alice-dev", &[503, 502]);
    fixture.fail("bob", &[429; 12]);
    let dir = tempfile::tempdir().unwrap();
    let ci = target(&fixture, &dir).await;
    let engine = engine(&ci);
    let (_, report) = apply(&engine, &roster(ROSTER), Policy::default()).await;
    assert_eq!(fixture.user("alice-dev").unwrap()["admin"], true, "retried past the 5xx answers");
    assert_eq!(fixture.user("ops-bot").unwrap()["admin"], true);
    assert_eq!(fixture.user("bob").unwrap()["admin"], false);
    assert_eq!(report.failures.len(), 1, "{:?}", report.failures);
    let failure = &report.failures[0];
    assert_eq!(failure.id, "ci/Admin/-/bob");
    assert!(failure.error.contains("HTTP 429 after 4 attempts"), "{}", failure.error);
    assert!(failure.error.contains("Too Many Requests"), "the server's own words: {}", failure.error);
    let tries = fixture.requests().iter().filter(|(_, path)| path == "/api/users/bob").count();
    assert_eq!(tries, 4, "one try and three retries");
    let alice_tries = fixture.requests().iter().filter(|(_, path)| path == "/api/users/alice-dev").count();
    assert_eq!(alice_tries, 4, "two failed reads, one read, one PATCH");
}
