//! What the process knows about itself, shared by the reconcile loop (which
//! writes it) and the HTTP handlers (which read it): the roster in force,
//! this replica's role, each target's health and the last pass.

use crate::metrics::Metrics;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Shared between the loop and the HTTP server.
#[derive(Debug)]
pub struct Shared {
    pub metrics: Metrics,
    status: RwLock<Status>,
}

#[derive(Debug, Clone, Default)]
pub struct Status {
    pub identity: String,
    pub roster: RosterStatus,
    pub role: RoleStatus,
    /// Configured targets in routing order, with what is known of each.
    pub targets: BTreeMap<String, TargetStatus>,
    /// The last pass: `{trigger, finished_at, duration_seconds, converged,
    /// report}`, serialized once (it can be large: every change of an
    /// onboarding), shared by every `/api/status` answer.
    pub last_pass: Option<Arc<RawValue>>,
}

#[derive(Debug, Clone, Default)]
pub struct RosterStatus {
    pub source: String,
    /// SHA-256 of the roster in force; `None` until a valid one was read.
    pub in_force: Option<String>,
    /// Its `platform.name`: the cluster's watch events of other platforms
    /// are dropped before they reach the loop.
    pub platform: Option<String>,
    /// The latest read: `None` when valid, else what was wrong (JSON: the
    /// diagnostics of `validate --output json`, or `{message, help}`).
    pub problem: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoleStatus {
    /// No leader election: this process applies.
    #[default]
    Standalone,
    Leader,
    Follower {
        leader: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    /// `None` until a pass included it.
    pub up: Option<bool>,
    pub error: Option<String>,
    /// Failed passes in a row.
    pub failures: u32,
    /// Seconds until it is retried, when failing.
    pub retry_in_seconds: Option<f64>,
}

impl Shared {
    pub fn new(metrics: Metrics, status: Status) -> Shared {
        Shared { metrics, status: RwLock::new(status) }
    }

    /// Look at the status without copying it.
    pub fn view<T>(&self, look: impl FnOnce(&Status) -> T) -> T {
        match self.status.read() {
            Ok(status) => look(&status),
            Err(poisoned) => look(&poisoned.into_inner()),
        }
    }

    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        let mut guard = self.status.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut guard);
    }
}

impl Status {
    /// Why this replica is not ready; empty when it is. Ready: the roster
    /// parsed, and as the applying replica the last pass reached every
    /// target, or as a follower the leader is known.
    pub fn not_ready(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        match (&self.roster.in_force, &self.roster.problem) {
            (None, Some(problem)) => reasons.push(format!("no valid roster yet: {}", summary(problem))),
            (None, None) => reasons.push("the roster has not been read yet".to_string()),
            (Some(_), Some(problem)) => reasons.push(format!(
                "the roster is invalid: {}; the last valid roster stays in force and nothing is applied from this one",
                summary(problem)
            )),
            (Some(_), None) => {}
        }
        match &self.role {
            RoleStatus::Follower { leader: None } => reasons.push("no leader is known yet".to_string()),
            RoleStatus::Follower { leader: Some(_) } => {}
            RoleStatus::Standalone | RoleStatus::Leader => {
                if self.last_pass.is_none() && self.roster.in_force.is_some() {
                    reasons.push("no reconcile has finished yet".to_string());
                }
                for (name, target) in &self.targets {
                    if target.up == Some(false) {
                        reasons.push(format!(
                            "target `{name}` is down: {}",
                            target.error.as_deref().unwrap_or("its last pass failed")
                        ));
                    }
                }
            }
        }
        reasons
    }

    /// `/api/status`, as JSON text (the last pass is embedded as it was
    /// serialized, never parsed again).
    pub fn to_json_text(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            head: Value,
            last_pass: Option<&'a RawValue>,
        }
        let body = Body { head: self.head_json(), last_pass: self.last_pass.as_deref() };
        serde_json::to_string(&body).unwrap_or_else(|e| json!({ "error": e.to_string() }).to_string())
    }

    /// Everything of `/api/status` but the last pass.
    fn head_json(&self) -> Value {
        let (role, leader) = match &self.role {
            RoleStatus::Standalone => ("standalone", Some(self.identity.clone())),
            RoleStatus::Leader => ("leader", Some(self.identity.clone())),
            RoleStatus::Follower { leader } => ("follower", leader.clone()),
        };
        let targets: serde_json::Map<String, Value> = self
            .targets
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    json!({ "up": t.up, "error": t.error, "failures": t.failures, "retry_in_seconds": t.retry_in_seconds }),
                )
            })
            .collect();
        json!({
            "format_version": tenantry_app::wire::FORMAT_VERSION,
            "identity": self.identity,
            "role": role,
            "leader": leader,
            "ready": self.not_ready().is_empty(),
            "not_ready": self.not_ready(),
            "roster": {
                "source": self.roster.source,
                "in_force": self.roster.in_force,
                "platform": self.roster.platform,
                "valid": self.roster.problem.is_none(),
                "problem": self.roster.problem,
            },
            "targets": targets,
        })
    }
}

/// One line for a roster problem: its first diagnostic, or its message.
fn summary(problem: &Value) -> String {
    if let Some(first) = problem["diagnostics"].as_array().and_then(|d| d.first()) {
        let count = problem["diagnostics"].as_array().map_or(0, Vec::len);
        let location = first["location"].as_str().unwrap_or_default();
        let message = first["message"].as_str().unwrap_or_default();
        let more = if count > 1 { format!(" (and {} more)", count - 1) } else { String::new() };
        return format!("{location}: {message}{more}");
    }
    problem["message"].as_str().unwrap_or("unreadable").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_says_why_not() {
        let mut status = Status::default();
        assert_eq!(status.not_ready(), ["the roster has not been read yet"]);
        status.roster.in_force = Some("abc".into());
        assert_eq!(status.not_ready(), ["no reconcile has finished yet"]);
        status.last_pass = Some(Arc::from(RawValue::from_string("{}".to_string()).unwrap()));
        status.targets.insert(
            "vault".into(),
            TargetStatus { up: Some(false), error: Some("connection refused".into()), ..Default::default() },
        );
        assert_eq!(status.not_ready(), ["target `vault` is down: connection refused"]);
        status.role = RoleStatus::Follower { leader: Some("other".into()) };
        assert!(status.not_ready().is_empty(), "a follower with a known leader is ready");
        status.roster.problem =
            Some(json!({ "diagnostics": [{ "location": "roster.yaml:3:5", "message": "bad tier" }] }));
        assert_eq!(status.not_ready().len(), 1);
        assert!(status.not_ready()[0].contains("roster.yaml:3:5: bad tier"), "{:?}", status.not_ready());
    }
}
