//! A peer that fails mid-apply (issue 20): retryable errors are tried again
//! with backoff, a peer that stays down costs a bounded number of tries
//! (the breaker), what may have happened is journalled `unknown` and kept
//! in the inventory, and the rerun after recovery converges with nothing
//! written twice.

use super::{MemoryTarget, ROSTER, roster};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenantry_core::{
    Action, Applied, Change, Domain, ObserveRequest, Observed, Policy, Settings, Snapshot, Target, TargetError,
};
use tenantry_engine::{ApplyOptions, Engine, FixedClock, RetryPolicy, State};

/// The memory target behind a peer that can fail: every call fails while
/// `down`, and the first `flaky` calls of each change fail once each.
#[derive(Default)]
struct FailingPeer {
    inner: MemoryTarget,
    /// Calls to apply, by resource id.
    calls: Mutex<HashMap<String, usize>>,
    /// Writes that succeed before the peer goes down (usize::MAX: never).
    down_after: AtomicUsize,
    succeeded: AtomicUsize,
    /// Every change fails its first try.
    flaky: bool,
    /// Rejections that retrying cannot fix.
    reject_all: bool,
}

#[async_trait::async_trait]
impl Target for FailingPeer {
    fn name(&self) -> &str {
        "memory"
    }
    fn domains(&self) -> &[Domain] {
        &Domain::ALL
    }
    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        self.inner.observe(request).await
    }
    async fn apply(&self, change: &Change, snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        let calls = {
            let mut calls = self.calls.lock().unwrap();
            let count = calls.entry(change.id.to_string()).or_default();
            *count += 1;
            *count
        };
        if self.reject_all {
            return Err(TargetError::rejected(change.id.to_string(), "forbidden"));
        }
        if self.flaky && calls == 1 {
            return Err(TargetError::unavailable("503 Service Unavailable"));
        }
        if self.succeeded.load(Ordering::SeqCst) >= self.down_after.load(Ordering::SeqCst) {
            return Err(TargetError::unavailable("connection refused"));
        }
        self.succeeded.fetch_add(1, Ordering::SeqCst);
        self.inner.apply(change, snapshot).await
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy { attempts: 3, first_wait: Duration::from_millis(5), max_wait: Duration::from_millis(20) }
}

fn engine(peer: Arc<FailingPeer>, state: State) -> Engine {
    Engine::new(vec![peer], state, Arc::new(FixedClock("2026-12-01T14:00:00Z".into())), Settings::default())
}

async fn apply(engine: &Engine, policy: RetryPolicy) -> tenantry_engine::ApplyReport {
    let roster = roster(ROSTER);
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let options = ApplyOptions { concurrency: 4, command: "test".into(), retry: policy, ..ApplyOptions::default() };
    engine.apply(&roster, &prepared, &options, &|_| {}).await.unwrap()
}

#[tokio::test]
async fn a_retryable_error_is_tried_again_and_the_apply_succeeds() {
    let peer = Arc::new(FailingPeer { flaky: true, down_after: AtomicUsize::new(usize::MAX), ..Default::default() });
    let engine = engine(Arc::clone(&peer), State::in_memory().unwrap());
    let report = apply(&engine, quick()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    let calls = peer.calls.lock().unwrap();
    assert!(!calls.is_empty() && calls.values().all(|&n| n == 2), "each change is tried exactly twice: {calls:?}");
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let peer =
        Arc::new(FailingPeer { reject_all: true, down_after: AtomicUsize::new(usize::MAX), ..Default::default() });
    let engine = engine(Arc::clone(&peer), State::in_memory().unwrap());
    let report = apply(&engine, quick()).await;
    assert!(!report.is_success());
    assert!(report.failures.iter().all(|f| !f.unknown), "a refusal is a known outcome");
    assert!(peer.calls.lock().unwrap().values().all(|&n| n == 1));
}

#[tokio::test]
async fn a_peer_that_dies_mid_apply_costs_a_bounded_number_of_tries_and_the_rerun_converges() {
    let peer = Arc::new(FailingPeer { down_after: AtomicUsize::new(5), ..Default::default() });
    let engine = engine(Arc::clone(&peer), State::in_memory().unwrap());
    let report = apply(&engine, quick()).await;
    let planned = report.applied_total() + report.failures.len();
    assert!(planned > 15, "the roster plans enough changes to see the breaker: {planned}");
    assert_eq!(report.applied_total(), 5);

    // Only changes in flight when the peer died were tried (each up to
    // three times); the rest were not attempted, and say why.
    let tries: usize = peer.calls.lock().unwrap().values().sum();
    assert!(tries <= 5 + 4 * 3, "{tries} tries for a dead peer");
    let unknown: Vec<_> = report.failures.iter().filter(|f| f.unknown).collect();
    let not_attempted: Vec<_> = report.failures.iter().filter(|f| f.error.starts_with("not attempted:")).collect();
    assert!((1..=4).contains(&unknown.len()), "{:?}", report.failures);
    assert!(unknown.iter().all(|f| f.error.contains("connection refused") && f.error.contains("after 3 tries")));
    assert!(
        not_attempted.iter().all(|f| f.skipped && f.error.contains("memory stopped answering earlier in this apply")),
        "{not_attempted:?}"
    );
    assert!(!not_attempted.is_empty());

    // The journal marks what may have happened, and the inventory keeps it
    // so that a prune can still find it.
    let (inventory, (_, unfinished)) = engine.with_state(|s| (s.inventory().unwrap(), s.unfinished().unwrap()));
    let unknown_in_journal: Vec<&str> =
        unfinished.iter().filter(|c| c.phase == "unknown").map(|c| c.id.as_str()).collect();
    assert_eq!(unknown_in_journal.len(), unknown.len(), "{unfinished:?}");
    for failure in &unknown {
        assert!(unknown_in_journal.contains(&failure.id.as_str()));
        if failure.action != Action::Delete {
            assert!(inventory.get(&failure.id.parse().unwrap()).is_some(), "{} is not in the inventory", failure.id);
        }
    }

    // The peer is back: the rerun applies exactly what is missing, once.
    peer.down_after.store(usize::MAX, Ordering::SeqCst);
    let writes_before = peer.inner.writes.lock().unwrap().len();
    let rerun = apply(&engine, quick()).await;
    assert!(rerun.is_success(), "{:?}", rerun.failures);
    assert_eq!(rerun.applied_total(), planned - 5);
    let writes = peer.inner.writes.lock().unwrap().clone();
    let mut ids: Vec<&String> = writes.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), writes.len(), "nothing was written twice");
    assert_eq!(writes.len() - writes_before, planned - 5);
    let roster = roster(ROSTER);
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(prepared.plan.changes.iter().all(|c| !c.action.is_change()), "converged");
}
