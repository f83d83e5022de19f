//! How an apply treats a peer that fails: a change whose error is
//! retryable (a timeout, a refused connection, a 5xx, a 409 on a
//! read-modify-write) is tried again after a capped exponential backoff with
//! jitter; once a change has used up its attempts because its peer is
//! unavailable, the peer is taken to be down for the rest of the apply and
//! its remaining changes are not attempted (the circuit breaker), so a dead
//! apiserver costs a few timeouts, not one per change.
//!
//! The jitter is a pure function of the change and the attempt — spread
//! enough to keep concurrent changes from retrying in lockstep, and the same
//! on every run, so nothing here reads a clock or a random source.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tenantry_core::ResourceId;

/// How often and how patiently a change is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries per change, the first included (1: no retry).
    pub attempts: u32,
    /// The wait before the second try; doubled before each further one.
    pub first_wait: Duration,
    /// No wait is longer than this.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 3, first_wait: Duration::from_millis(400), max_wait: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// The wait after failed try number `attempt` (1-based) of `id`: the
    /// capped exponential backoff, scaled by a jitter in [0.5, 1.0).
    pub fn wait(&self, id: &ResourceId, attempt: u32) -> Duration {
        backoff_delay(self.first_wait, self.max_wait, attempt, 0.5 + 0.5 * jitter(id, attempt))
    }
}

/// The delay after `failures` failures in a row: `first · 2^(failures-1)`,
/// capped at `max`, scaled by `jitter` (clamped to [0.5, 1.0]: "equal
/// jitter"). One formula for the engine's retries and serve's per-target
/// backoff.
pub fn backoff_delay(first: Duration, max: Duration, failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    first.saturating_mul(1u32 << exponent).min(max).mul_f64(jitter.clamp(0.5, 1.0))
}

/// A number in [0, 1) from the change and the attempt (FNV-1a).
fn jitter(id: &ResourceId, attempt: u32) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.to_string().bytes().chain(attempt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// The targets found down during one apply, with the error that showed it.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    down: Mutex<BTreeMap<String, String>>,
}

impl Breaker {
    /// Why `target` is down, if it is.
    pub(crate) fn down(&self, target: &str) -> Option<String> {
        self.down.lock().ok().and_then(|down| down.get(target).cloned())
    }

    /// Take `target` down; the first cause is kept.
    pub(crate) fn trip(&self, target: &str, cause: &str) {
        if let Ok(mut down) = self.down.lock() {
            down.entry(target.to_string()).or_insert_with(|| cause.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> ResourceId {
        format!("kubernetes/Namespace/-/{name}").parse().unwrap()
    }

    #[test]
    fn waits_double_up_to_the_cap_and_are_jittered_per_change() {
        let policy =
            RetryPolicy { attempts: 6, first_wait: Duration::from_millis(100), max_wait: Duration::from_secs(1) };
        let alice: Vec<Duration> = (1..=6).map(|attempt| policy.wait(&id("alice"), attempt)).collect();
        for (attempt, wait) in alice.iter().enumerate() {
            let full = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(1));
            assert!(
                *wait >= full / 2 && *wait < full,
                "attempt {}: {wait:?} outside [{:?}, {full:?})",
                attempt + 1,
                full / 2
            );
        }
        // The same change waits the same on every run…
        assert_eq!(alice, (1..=6).map(|attempt| policy.wait(&id("alice"), attempt)).collect::<Vec<_>>());
        // …and a hundred changes failing together do not retry in lockstep.
        let first_waits: std::collections::BTreeSet<Duration> =
            (0..100).map(|n| policy.wait(&id(&format!("user{n}")), 1)).collect();
        assert!(first_waits.len() > 90, "only {} distinct waits", first_waits.len());
    }

    #[test]
    fn a_huge_attempt_number_neither_overflows_nor_exceeds_the_cap() {
        let policy = RetryPolicy::default();
        assert!(policy.wait(&id("alice"), u32::MAX) < policy.max_wait);
    }

    #[test]
    fn the_breaker_keeps_the_first_cause() {
        let breaker = Breaker::default();
        assert_eq!(breaker.down("kubernetes"), None);
        breaker.trip("kubernetes", "connection refused");
        breaker.trip("kubernetes", "timed out");
        assert_eq!(breaker.down("kubernetes").as_deref(), Some("connection refused"));
        assert_eq!(breaker.down("vault"), None);
    }
}
