//! The Prometheus metrics `/metrics` serves (OpenMetrics text, through the
//! `prometheus-client` crate). Names are documented in docs/OUTPUT.md.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use tenantry_app::{PassReport, TargetOutcome};

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Every metric, cheap to clone (each is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: std::sync::Arc<Registry>,
    pub reconciles: Family<Labels, Counter>,
    pub reconcile_duration: Histogram,
    pub changes_applied: Family<Labels, Counter>,
    pub drift_detected: Family<Labels, Counter>,
    pub watch_events: Family<Labels, Counter>,
    pub users: Family<Labels, Gauge>,
    pub target_up: Family<Labels, Gauge>,
    pub target_failures: Family<Labels, Counter>,
    pub target_backoff: Family<Labels, Gauge<f64, AtomicU64>>,
    pub withheld: Gauge,
    pub departing: Gauge,
    pub is_leader: Gauge,
    pub roster_valid: Gauge,
    pub roster_errors: Counter,
    pub last_success: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("tenantry");
        let metrics = Metrics {
            registry: std::sync::Arc::new(Registry::default()),
            reconciles: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            changes_applied: Family::default(),
            drift_detected: Family::default(),
            watch_events: Family::default(),
            users: Family::default(),
            target_up: Family::default(),
            target_failures: Family::default(),
            target_backoff: Family::default(),
            withheld: Gauge::default(),
            departing: Gauge::default(),
            is_leader: Gauge::default(),
            roster_valid: Gauge::default(),
            roster_errors: Counter::default(),
            last_success: Gauge::default(),
        };
        let m = &metrics;
        registry.register(
            "reconcile",
            "Reconcile passes by result (converged, failed, blocked, error)",
            m.reconciles.clone(),
        );
        registry.register("reconcile_duration_seconds", "Duration of a reconcile pass", m.reconcile_duration.clone());
        registry.register("changes_applied", "Changes applied, by target and action", m.changes_applied.clone());
        registry.register(
            "drift_detected",
            "Changes that repaired drift (applied while the roster had not changed), by target",
            m.drift_detected.clone(),
        );
        registry.register("watch_events", "Watch events that looked like drift, by kind", m.watch_events.clone());
        registry.register("users", "Users in the roster in force, by tier", m.users.clone());
        registry.register("target_up", "1 when the last pass that included the target reached it", m.target_up.clone());
        registry.register(
            "target_failures",
            "Passes in which the target was down or a change on it failed",
            m.target_failures.clone(),
        );
        registry.register(
            "target_backoff_seconds",
            "Current retry delay of a failing target (0: not failing)",
            m.target_backoff.clone(),
        );
        registry.register(
            "withheld_changes",
            "Changes withheld by the additive-only policy in the last pass",
            m.withheld.clone(),
        );
        registry.register("departing_users", "Users who left the roster and are only reported", m.departing.clone());
        registry.register("is_leader", "1 when this replica holds the lease (or runs alone)", m.is_leader.clone());
        registry.register("roster_valid", "1 when the latest roster read is valid", m.roster_valid.clone());
        registry.register("roster_errors", "Roster reads that were invalid or failed", m.roster_errors.clone());
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last pass that converged every target",
            m.last_success.clone(),
        );
        Metrics { registry: std::sync::Arc::new(registry), ..metrics }
    }

    /// The OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Count a pass's outcome. `drift`: the roster had not changed since the
    /// last converged pass, so whatever it applied repaired drift.
    pub fn record_pass(&self, report: &PassReport, seconds: f64, drift: bool) {
        let result = if report.blocked {
            "blocked"
        } else if report.converged() {
            "converged"
        } else {
            "failed"
        };
        self.reconciles.get_or_create(&labels(&[("result", result)])).inc();
        self.reconcile_duration.observe(seconds);
        for ((target, action), count) in &report.applied {
            let n = u64::try_from(*count).unwrap_or(u64::MAX);
            self.changes_applied.get_or_create(&labels(&[("target", target), ("action", action)])).inc_by(n);
            if drift {
                self.drift_detected.get_or_create(&labels(&[("target", target)])).inc_by(n);
            }
        }
        for (target, outcome) in &report.targets {
            let up = match outcome {
                TargetOutcome::Held => continue,
                TargetOutcome::Reached { .. } => 1,
                TargetOutcome::Down(_) => 0,
            };
            self.target_up.get_or_create(&labels(&[("target", target)])).set(up);
            if !matches!(outcome, TargetOutcome::Reached { failures: 0 }) {
                self.target_failures.get_or_create(&labels(&[("target", target)])).inc();
            }
        }
        self.withheld.set(i64::try_from(report.withheld).unwrap_or(i64::MAX));
        self.departing.set(i64::try_from(report.departing.len()).unwrap_or(i64::MAX));
    }

    /// A pass that could not even start (the state database, a config error).
    pub fn record_error(&self, seconds: f64) {
        self.reconciles.get_or_create(&labels(&[("result", "error")])).inc();
        self.reconcile_duration.observe(seconds);
    }

    pub fn set_backoff(&self, target: &str, seconds: f64) {
        self.target_backoff.get_or_create(&labels(&[("target", target)])).set(seconds);
    }

    pub fn set_users(&self, tiers: &std::collections::BTreeMap<&'static str, usize>) {
        for tier in ["admin", "power-user", "namespace-owner"] {
            let count = tiers.get(tier).copied().unwrap_or(0);
            self.users.get_or_create(&labels(&[("tier", tier)])).set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    pub fn watch_event(&self, kind: &str) {
        self.watch_events.get_or_create(&labels(&[("kind", kind)])).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
