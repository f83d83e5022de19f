//! Per-target retry timing: exponential backoff with jitter, so a target
//! that keeps failing is retried ever less often (and two replicas or many
//! targets do not retry in lockstep), while the others go on as usual.
//!
//! Time and randomness are parameters: callers pass the instant and a
//! jitter factor; tests pass fixed ones.

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// The retry state of every target that is failing.
#[derive(Debug, Clone)]
pub struct Backoffs {
    min: Duration,
    max: Duration,
    failing: BTreeMap<String, Failing>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failing {
    /// Failed passes in a row.
    pub failures: u32,
    /// When it is tried again.
    pub retry_at: Instant,
    /// The delay chosen after the last failure.
    pub delay: Duration,
}

impl Backoffs {
    pub fn new(min: Duration, max: Duration) -> Backoffs {
        Backoffs { min, max, failing: BTreeMap::new() }
    }

    /// The delay after `failures` failures in a row: `min · 2^(failures-1)`,
    /// capped at `max`, scaled by `jitter` (in [0.5, 1.0]: "equal jitter").
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        tenantry_app::backoff_delay(self.min, self.max, failures, jitter)
    }

    /// `target` failed at `now`; returns when to try it again.
    pub fn failed(&mut self, target: &str, now: Instant, jitter: f64) -> Failing {
        let failures = self.failing.get(target).map_or(0, |f| f.failures) + 1;
        let delay = self.delay(failures, jitter);
        let state = Failing { failures, retry_at: now + delay, delay };
        self.failing.insert(target.to_string(), state);
        state
    }

    /// `target` converged: forget its failures.
    pub fn succeeded(&mut self, target: &str) {
        self.failing.remove(target);
    }

    /// Targets still waiting for their retry at `now` (left out of passes).
    pub fn waiting(&self, now: Instant) -> impl Iterator<Item = &str> {
        self.failing.iter().filter(move |(_, f)| f.retry_at > now).map(|(t, _)| t.as_str())
    }

    /// Targets whose retry is due at `now`.
    pub fn due(&self, now: Instant) -> Vec<String> {
        self.failing.iter().filter(|(_, f)| f.retry_at <= now).map(|(t, _)| t.clone()).collect()
    }

    /// The next retry, if any target is failing.
    pub fn next_retry(&self) -> Option<Instant> {
        self.failing.values().map(|f| f.retry_at).min()
    }

    pub fn get(&self, target: &str) -> Option<&Failing> {
        self.failing.get(target)
    }
}

/// A jitter factor in [0.5, 1.0] from the thread's random generator.
pub fn random_jitter() -> f64 {
    use rand::Rng as _;
    rand::rng().random_range(0.5..=1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_scales_them() {
        let backoffs = Backoffs::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<u64> = (1..=8).map(|n| backoffs.delay(n, 1.0).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoffs.delay(3, 0.5), Duration::from_secs(2));
        assert_eq!(backoffs.delay(3, 0.0), Duration::from_secs(2), "jitter never goes below half");
        assert_eq!(backoffs.delay(u32::MAX, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn one_failing_target_waits_alone_and_is_forgotten_when_it_converges() {
        let mut backoffs = Backoffs::new(Duration::from_secs(1), Duration::from_secs(60));
        let now = Instant::now();
        backoffs.failed("vault", now, 1.0);
        let second = backoffs.failed("vault", now, 1.0);
        assert_eq!((second.failures, second.delay), (2, Duration::from_secs(2)));
        assert_eq!(backoffs.waiting(now).collect::<Vec<_>>(), ["vault"]);
        assert!(backoffs.due(now).is_empty());
        assert_eq!(backoffs.due(now + Duration::from_secs(2)), ["vault"]);
        assert_eq!(backoffs.next_retry(), Some(now + Duration::from_secs(2)));
        backoffs.succeeded("vault");
        assert_eq!(backoffs.next_retry(), None);
        assert_eq!(backoffs.failed("vault", now, 1.0).failures, 1, "failures count again from one");
    }
}
