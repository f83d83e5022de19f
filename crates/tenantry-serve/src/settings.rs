//! `[serve]` in tenantry.toml (SPEC §11.1): where to listen, how often the
//! safety net runs, the offboarding policy, and the Lease to lead on.

use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::time::Duration;

/// What `serve` does with users who left the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Offboard {
    /// Only report them (`tenantry_departing_users`, `/api/status`).
    #[default]
    Never,
    /// Perform the reversible cut. The destroy stage is never automatic.
    Reversible,
}

/// `[serve]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSettings {
    /// Address of `/healthz`, `/readyz`, `/metrics` and `/api/status`.
    pub listen: SocketAddr,
    /// The safety net: a full pass this often, for what cannot be watched (Vault, DNS, host).
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    pub offboard: Offboard,
    /// Quiet time after a roster file event or a watch event before acting.
    #[serde(deserialize_with = "duration")]
    pub debounce: Duration,
    /// How often a `vault://` roster's version is checked.
    #[serde(deserialize_with = "duration")]
    pub roster_poll: Duration,
    /// Changes in flight at once.
    pub concurrency: usize,
    /// First retry delay of a failing target; doubled per failure, with jitter.
    #[serde(deserialize_with = "duration")]
    pub backoff_min: Duration,
    /// Longest retry delay of a failing target.
    #[serde(deserialize_with = "duration")]
    pub backoff_max: Duration,
    /// Absent: a single replica that always applies, no Lease.
    pub leader_election: Option<LeaderElection>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            interval: Duration::from_secs(600),
            offboard: Offboard::Never,
            debounce: Duration::from_millis(300),
            roster_poll: Duration::from_secs(30),
            concurrency: 8,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            leader_election: None,
        }
    }
}

/// `[serve.leader_election]`: the `coordination.k8s.io/v1` Lease.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElection {
    pub namespace: String,
    pub lease: String,
    /// This replica's name in the Lease; default `$POD_NAME`, else host name and process id.
    #[serde(default)]
    pub identity: Option<String>,
    /// How long a lease holds without renewal: a killed leader is replaced after this.
    #[serde(default = "LeaderElection::default_duration", deserialize_with = "duration")]
    pub lease_duration: Duration,
    /// How often the leader renews; default a third of the duration.
    #[serde(default, deserialize_with = "optional_duration")]
    pub renew_interval: Option<Duration>,
    /// A leader that has not renewed for this long stops applying; default
    /// two thirds of the duration, and always less than it, so it stops
    /// before anyone else may take the lease.
    #[serde(default, deserialize_with = "optional_duration")]
    pub renew_deadline: Option<Duration>,
}

impl LeaderElection {
    fn default_duration() -> Duration {
        Duration::from_secs(15)
    }

    pub fn renew_interval(&self) -> Duration {
        self.renew_interval.unwrap_or(self.lease_duration / 3)
    }

    pub fn renew_deadline(&self) -> Duration {
        self.renew_deadline.unwrap_or(self.lease_duration * 2 / 3)
    }
}

impl ServeSettings {
    /// Read `[serve]` (given as JSON; `Null` when absent) and check it.
    pub fn from_section(section: serde_json::Value) -> Result<ServeSettings, String> {
        let settings: ServeSettings = if section.is_null() {
            ServeSettings::default()
        } else {
            serde_json::from_value(section).map_err(|e| e.to_string())?
        };
        if settings.interval < Duration::from_secs(1) {
            return Err("interval must be at least 1s".to_string());
        }
        if settings.concurrency == 0 {
            return Err("concurrency must be at least 1".to_string());
        }
        if settings.backoff_min.is_zero() || settings.backoff_max < settings.backoff_min {
            return Err("backoff_min must be above zero and at most backoff_max".to_string());
        }
        if let Some(election) = &settings.leader_election {
            if election.lease_duration.as_secs() < 2 {
                return Err("leader_election.lease_duration must be at least 2s".to_string());
            }
            if election.renew_deadline() >= election.lease_duration {
                return Err(
                    "leader_election.renew_deadline must be shorter than lease_duration (a leader must stop applying before its lease can expire)"
                        .to_string(),
                );
            }
            if election.renew_interval() >= election.renew_deadline() || election.renew_interval().is_zero() {
                return Err(
                    "leader_election.renew_interval must be above zero and shorter than renew_deadline".to_string()
                );
            }
        }
        Ok(settings)
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a duration ({e}); write e.g. \"10m\", \"30s\", \"500ms\""))
    })
}

fn optional_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    duration(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_durations_in_words() {
        let defaults = ServeSettings::from_section(serde_json::Value::Null).unwrap();
        assert_eq!(defaults.interval, Duration::from_secs(600));
        assert_eq!(defaults.offboard, Offboard::Never);
        let set = ServeSettings::from_section(json!({
            "listen": "127.0.0.1:9000", "interval": "90s", "offboard": "reversible",
            "leader_election": { "namespace": "tenantry", "lease": "tenantry", "lease_duration": "6s" }
        }))
        .unwrap();
        assert_eq!(set.interval, Duration::from_secs(90));
        assert_eq!(set.offboard, Offboard::Reversible);
        let election = set.leader_election.unwrap();
        assert_eq!(election.renew_interval(), Duration::from_secs(2));
        assert_eq!(election.renew_deadline(), Duration::from_secs(4));
    }

    #[test]
    fn settings_that_would_break_the_lease_promise_are_refused() {
        let error = ServeSettings::from_section(json!({
            "leader_election": { "namespace": "t", "lease": "t", "lease_duration": "10s", "renew_deadline": "10s" }
        }))
        .unwrap_err();
        assert!(error.contains("shorter than lease_duration"), "{error}");
        let error = ServeSettings::from_section(json!({ "interval": "ten minutes" })).unwrap_err();
        assert!(error.contains("is not a duration"), "{error}");
        let error = ServeSettings::from_section(json!({ "offboard": "destroy" })).unwrap_err();
        assert!(error.contains("unknown variant"), "{error}");
        let error = ServeSettings::from_section(json!({ "listen": "0.0.0.0:80", "intervall": "1m" })).unwrap_err();
        assert!(error.contains("unknown field"), "{error}");
    }
}
