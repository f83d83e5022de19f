//! The engine against an in-memory target: ordering, failure isolation
//! (SPEC §8.1), journal recovery after a kill, and no-op reconciles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "engine/faults.rs"]
mod faults;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenantry_core::{
    Action, Applied, Change, Content, Domain, ObserveRequest, Observed, Owner, Policy, Settings, Snapshot, Target,
    TargetError,
};
use tenantry_engine::{ApplyOptions, Engine, FixedClock, State};

/// A target that keeps objects in memory, counts writes, and rejects
/// every object of the users listed in `reject`.
#[derive(Default)]
struct MemoryTarget {
    objects: Mutex<HashMap<String, Content>>,
    writes: Mutex<Vec<(Action, String)>>,
    reject: Vec<String>,
}

#[async_trait::async_trait]
impl Target for MemoryTarget {
    fn name(&self) -> &str {
        "memory"
    }
    fn domains(&self) -> &[Domain] {
        &Domain::ALL
    }
    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        let objects = self.objects.lock().unwrap();
        let mut observed = Observed::default();
        for (id, _) in &request.resources {
            if let Some(content) = objects.get(&id.to_string()) {
                observed.insert(id.clone(), content.clone(), None);
            }
        }
        Ok(observed)
    }
    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        if let Some(user) = change.owner.user()
            && self.reject.iter().any(|r| r == user)
        {
            return Err(TargetError::rejected(change.id.to_string(), format!("admission webhook denied {user}")));
        }
        // Dependencies must already exist when a change runs.
        for dep in change.deps.iter() {
            assert!(
                self.objects.lock().unwrap().contains_key(&dep.to_string()),
                "{} applied before its dependency {dep}",
                change.id
            );
        }
        self.writes.lock().unwrap().push((change.action, change.id.to_string()));
        let mut objects = self.objects.lock().unwrap();
        match change.action {
            Action::Delete => {
                objects.remove(&change.id.to_string());
            }
            _ => {
                objects.insert(change.id.to_string(), change.after.clone().unwrap());
            }
        }
        Ok(Applied::done())
    }
}

const ROSTER: &str = "
users:
  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice, alice-prod] }
  bob: { email: bob@example.org, tier: namespace-owner, namespaces: [bob] }
  carol: { email: carol@example.org, tier: power-user }
";

fn roster(text: &str) -> tenantry_model::Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
}

fn engine(target: Arc<MemoryTarget>, state: State) -> Engine {
    Engine::new(vec![target], state, Arc::new(FixedClock("2026-11-28T12:00:00Z".into())), Settings::default())
}

#[tokio::test]
async fn one_users_failure_never_stops_the_others() {
    let target = Arc::new(MemoryTarget { reject: vec!["bob".into()], ..Default::default() });
    let engine = engine(Arc::clone(&target), State::in_memory().unwrap());
    let roster = roster(ROSTER);
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let report = engine
        .apply(
            &roster,
            &prepared,
            &ApplyOptions { concurrency: 4, command: "test".into(), ..ApplyOptions::default() },
            &|_| {},
        )
        .await
        .unwrap();

    assert!(!report.is_success());
    let failed: Vec<&str> = report.failed_users().into_iter().map(|o| o.as_label()).collect();
    assert_eq!(failed, vec!["bob"], "only bob fails");
    assert!(
        report.failures.iter().all(|f| if f.skipped {
            f.error.contains("which failed")
        } else {
            f.error.contains("admission webhook denied bob")
        }),
        "{:?}",
        report.failures
    );
    let alice = report.applied.get(&Owner::User("alice".into())).copied().unwrap_or(0);
    let carol = report.applied.get(&Owner::User("carol".into())).copied().unwrap_or(0);
    assert!(alice >= 14 && carol >= 1, "alice {alice}, carol {carol}");

    // The rerun after bob's fix applies only bob.
    let target =
        Arc::new(MemoryTarget { objects: Mutex::new(target.objects.lock().unwrap().clone()), ..Default::default() });
    let engine2 = Engine::new(
        vec![Arc::clone(&target) as Arc<dyn Target>],
        State::in_memory().unwrap(),
        Arc::new(FixedClock("t".into())),
        Settings::default(),
    );
    let prepared = engine2.prepare(&roster, Policy::default()).await.unwrap();
    assert!(
        prepared
            .plan
            .changes
            .iter()
            .filter(|c| c.action.is_change())
            .all(|c| c.owner == Owner::User("bob".into()) || c.action == Action::Adopt)
    );
}

#[tokio::test]
async fn a_failed_dependency_skips_its_dependents_and_says_why() {
    // Reject only bob's namespace: everything inside it must be skipped, not attempted.
    struct RejectNamespace(MemoryTarget);
    #[async_trait::async_trait]
    impl Target for RejectNamespace {
        fn name(&self) -> &str {
            "memory"
        }
        fn domains(&self) -> &[Domain] {
            &Domain::ALL
        }
        async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
            self.0.observe(request).await
        }
        async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
            if change.id.to_string() == "kubernetes/Namespace/-/bob" {
                return Err(TargetError::rejected(change.id.to_string(), "quota on namespaces"));
            }
            self.0.apply(change, &Snapshot::default()).await
        }
    }
    let target = Arc::new(RejectNamespace(MemoryTarget::default()));
    let engine = Engine::new(
        vec![target.clone()],
        State::in_memory().unwrap(),
        Arc::new(FixedClock("t".into())),
        Settings::default(),
    );
    let roster = roster(ROSTER);
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let report = engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    let skipped: Vec<&str> = report.failures.iter().filter(|f| f.skipped).map(|f| f.id.as_str()).collect();
    assert!(skipped.contains(&"kubernetes/RoleBinding/bob/namespace-owner-bob"), "{skipped:?}");
    let direct = report.failures.iter().find(|f| f.id == "kubernetes/RoleBinding/bob/namespace-owner-bob").unwrap();
    assert_eq!(direct.error, "skipped: it needs kubernetes/Namespace/-/bob, which failed");
    assert!(report.failures.iter().all(|f| f.owner == Owner::User("bob".into())));
    // Bob's Vault policy does not depend on the namespace: it was applied.
    assert!(target.0.objects.lock().unwrap().contains_key("vault/Policy/-/namespace-owner-bob"));
}

#[tokio::test]
async fn a_second_prepare_is_a_no_op_with_no_writes() {
    let target = Arc::new(MemoryTarget::default());
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(Arc::clone(&target), State::open(&dir.path().join("state.db")).unwrap());
    let roster = roster(ROSTER);
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap().is_success());
    let writes = target.writes.lock().unwrap().len();
    let again = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(!again.plan.has_changes(), "{:?}", again.plan.changes);
    engine.apply(&roster, &again, &ApplyOptions::default(), &|_| {}).await.unwrap();
    assert_eq!(target.writes.lock().unwrap().len(), writes, "a no-op reconcile makes no writes");
}

#[tokio::test]
async fn interrupted_intents_join_the_inventory_so_prune_still_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let roster = roster(ROSTER);
    let target = Arc::new(MemoryTarget::default());
    {
        // Simulate a kill after intents were committed and objects written,
        // but before outcomes were recorded.
        let engine = engine(Arc::clone(&target), State::open(&path).unwrap());
        let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
        let waves = prepared.plan.waves();
        let first: Vec<&Change> = waves[0].clone();
        engine.with_state(|s| {
            let run = s.begin_run(&"killed".into(), "t").unwrap();
            s.record_intents(run, &first, "t").unwrap();
        });
        for change in &first {
            target.apply(change, &Snapshot::default()).await.unwrap();
        }
    }
    let mut state = State::open(&path).unwrap();
    assert!(state.inventory().unwrap().entries.is_empty());
    let recovered = state.recover("t2").unwrap();
    assert!(recovered > 0);
    let inventory = state.inventory().unwrap();
    assert_eq!(inventory.entries.len(), recovered);

    // Bob leaves: what the killed run created for him is known and shown as departing.
    let engine = engine(Arc::clone(&target), state);
    let without_bob = roster_without_bob();
    let prepared = engine.prepare(&without_bob, Policy::default()).await.unwrap();
    assert!(prepared.plan.departing.contains("bob"), "{:?}", prepared.plan.departing);
}

fn roster_without_bob() -> tenantry_model::Roster {
    roster(&ROSTER.lines().filter(|l| !l.contains("bob")).collect::<Vec<_>>().join("\n"))
}

#[tokio::test]
async fn the_destroy_stage_never_forgets_what_a_target_it_cannot_reach_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let target = Arc::new(MemoryTarget::default());
    {
        let engine = engine(Arc::clone(&target), State::open(&path).unwrap());
        let roster = roster(ROSTER);
        let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
        assert!(engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap().is_success());
        let cut = engine.prepare(&roster_without_bob(), Policy { offboard: true, ..Policy::default() }).await.unwrap();
        assert!(
            engine.apply(&roster_without_bob(), &cut, &ApplyOptions::default(), &|_| {}).await.unwrap().is_success()
        );
        // Still in the roster: refused.
        assert!(engine.destroy_plan(&roster, "bob").await.is_err());
    }
    // A run where the target that holds bob's namespace is not configured.
    let engine = Engine::new(
        vec![],
        State::open(&path).unwrap(),
        Arc::new(FixedClock("2026-11-28T13:00:00Z".into())),
        Settings::default(),
    );
    let plan = engine.destroy_plan(&roster_without_bob(), "bob").await.unwrap();
    assert!(plan.by_target["memory"].iter().any(|id| id.to_string() == "kubernetes/Namespace/-/bob"));
    let backups = tempfile::tempdir().unwrap();
    let report = engine.destroy(&plan, backups.path(), "test").await.unwrap();
    assert!(!report.is_success());
    assert!(report.targets["memory"].as_ref().unwrap_err().contains("not configured"), "{:?}", report.targets);
    let left = engine.with_state(|s| s.inventory()).unwrap();
    assert!(left.entries.keys().any(|id| id.to_string() == "kubernetes/Namespace/-/bob"), "nothing forgotten");
    assert!(target.objects.lock().unwrap().contains_key("kubernetes/Namespace/-/bob"), "nothing deleted");
}

/// A state database written by the first releases (schema without a
/// version: `tests/fixtures/state-schema-0.sql` is a `sqlite3 .dump` of one,
/// made by that release's `tenantry apply`) upgrades in place, nothing lost.
#[test]
fn a_state_database_of_the_first_schema_upgrades_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(include_str!("fixtures/state-schema-0.sql")).unwrap();
        let version: i64 = old.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, 0, "the fixture is the unversioned first schema");
    }
    let mut state = State::open(&path).unwrap();
    assert_eq!(state.schema_version().unwrap(), tenantry_engine::SCHEMA_VERSION);

    let inventory = state.inventory().unwrap();
    assert_eq!(inventory.entries.len(), 96, "every inventory entry survives");
    assert!(inventory.contains(&"kubernetes/Namespace/-/alice-prod".parse().unwrap()), "withheld namespace kept");
    let ports = state.ports().unwrap();
    assert_eq!(ports["emo"]["terminal"], 3775, "a departed user keeps their port");
    assert_eq!(ports.values().map(|p| p.len()).sum::<usize>(), 8);
    let routes = state.routes().unwrap();
    assert_eq!(routes["emo"].idp_user, "ebarzin");
    assert!(routes["wizard"].admin);
    let entry = &state.history(&"kubernetes/Namespace/-/alice".parse().unwrap(), 10).unwrap()[0];
    assert_eq!((entry.run, entry.action.as_str(), entry.phase.as_str()), (1, "create", "done"));

    // The old runs are there, without the new columns' values; new runs fill them.
    let runs = state.runs(10).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].summary.as_deref(), Some("97 applied, 0 failed"));
    assert_eq!(runs[1].actor, None);
    let info = tenantry_engine::RunInfo {
        command: "tenantry apply".into(),
        actor: Some("wizard".into()),
        roster_digest: Some("ab12".into()),
    };
    let run = state.begin_run(&info, "2026-12-01T00:00:00Z").unwrap();
    assert_eq!(run, 3);
    assert_eq!(state.runs(1).unwrap()[0].actor.as_deref(), Some("wizard"));
    drop(state);

    // Opening again is a no-op; a database from a newer release is refused, untouched.
    assert_eq!(State::open(&path).unwrap().schema_version().unwrap(), tenantry_engine::SCHEMA_VERSION);
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let error = State::open(&path).unwrap_err().to_string();
    assert!(error.contains("newer tenantry (schema 99"), "{error}");
}
