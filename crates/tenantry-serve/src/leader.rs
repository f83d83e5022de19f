//! Leader election on a `coordination.k8s.io/v1` Lease: only the leader
//! applies.
//!
//! The algorithm is client-go's: the holder renews the Lease every
//! `renew_interval` by an optimistic-concurrency replace (its last known
//! `resourceVersion`); a replica takes the Lease when it is free (released
//! or never held) or when its record has not changed for `lease_duration`
//! as this replica observed it (its own clock, never the holder's
//! timestamps, so clock skew does not matter). Every replica watches the
//! Lease, so a release is seen at once and followers send no polling
//! requests; a leader spends one request per renewal.
//!
//! The promise: a leader that cannot renew steps down `renew_deadline`
//! after the start of its last successful renewal, which is before anyone
//! else may take the Lease (`renew_deadline < lease_duration`, and the
//! others start counting only when they see that renewal). Every request
//! is bounded by that deadline. On shutdown the holder releases the Lease
//! (holder cleared) so a follower takes over without waiting.
//!
//! No maintained crate gave that promise with kube 5: kube-leader-election
//! targets kube 4, and kube-lease-manager reports only changes of holder —
//! a renewal that fails on an API error is retried without telling the
//! holder, which would go on applying after its lease expired.

use crate::settings::LeaderElection;
use futures::StreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt as _;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// This replica's part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// It holds the Lease and may apply.
    Leader,
    /// Another replica (or nobody yet) holds it.
    Follower { leader: Option<String> },
}

impl Role {
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader)
    }
}

/// The election running in the background.
#[derive(Debug)]
pub struct Election {
    role: watch::Receiver<Role>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub identity: String,
}

impl Election {
    /// Start campaigning for `settings`' Lease as `identity`.
    pub fn start(client: kube::Client, settings: &LeaderElection, identity: String) -> Election {
        let (role_tx, role) = watch::channel(Role::Follower { leader: None });
        let (stop, stop_rx) = watch::channel(false);
        let campaign = Campaign {
            api: Api::namespaced(client, &settings.namespace),
            name: settings.lease.clone(),
            identity: identity.clone(),
            duration: settings.lease_duration,
            renew_interval: settings.renew_interval(),
            renew_deadline: settings.renew_deadline(),
            role: role_tx,
        };
        let task = tokio::spawn(campaign.run(stop_rx));
        Election { role, stop, task, identity }
    }

    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Stop campaigning and release the Lease if held (bounded: a few seconds).
    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// This replica's default identity: `$POD_NAME`, else host name and pid.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "tenantry".to_string());
    format!("{host}-{}", std::process::id())
}

/// What this replica last saw of the Lease.
#[derive(Debug, Clone, Default)]
struct Seen {
    /// `None`: the Lease does not exist (or was not read yet).
    lease: Option<Lease>,
    /// Whether the watch has answered at least once.
    known: bool,
    /// When its record (holder, renew time) last changed, on our clock.
    changed_at: Option<Instant>,
}

impl Seen {
    fn holder(&self) -> Option<&str> {
        let spec = self.lease.as_ref()?.spec.as_ref()?;
        spec.holder_identity.as_deref().filter(|h| !h.is_empty())
    }

    fn record(lease: &Option<Lease>) -> Option<(Option<String>, Option<MicroTime>)> {
        let spec = lease.as_ref()?.spec.as_ref()?;
        Some((spec.holder_identity.clone(), spec.renew_time.clone()))
    }

    /// Take in a new reading at `now`.
    fn update(&mut self, lease: Option<Lease>, now: Instant) {
        if !self.known || Seen::record(&self.lease) != Seen::record(&lease) {
            self.changed_at = Some(now);
        }
        self.lease = lease;
        self.known = true;
    }
}

/// What a replica that does not lead should do at `now`.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Try to take the Lease now.
    Take,
    /// Someone holds it; look again at this instant (when it would expire).
    WaitUntil(Instant),
    /// Nothing known yet: wait for the watch.
    Wait,
}

fn decide(seen: &Seen, identity: &str, duration: Duration, now: Instant) -> Next {
    if !seen.known {
        return Next::Wait;
    }
    match seen.holder() {
        None => Next::Take,
        Some(holder) if holder == identity => Next::Take,
        Some(_) => {
            let held_for = seen
                .lease
                .as_ref()
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.lease_duration_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .map_or(duration, Duration::from_secs);
            let expires = seen.changed_at.unwrap_or(now) + held_for;
            if expires <= now { Next::Take } else { Next::WaitUntil(expires) }
        }
    }
}

struct Campaign {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    renew_interval: Duration,
    renew_deadline: Duration,
    role: watch::Sender<Role>,
}

impl Campaign {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        // The watch never ends (it reconnects with backoff); chained with a
        // pending stream so the loop below never polls a finished stream.
        let mut events = kube::runtime::watcher::watch_object(self.api.clone(), &self.name)
            .default_backoff()
            .chain(futures::stream::pending())
            .boxed();
        let mut seen = Seen::default();
        // While leading: when the last successful renewal started.
        let mut renewed: Option<Instant> = None;
        // After a failed attempt, do not try again before this.
        let mut quiet_until = Instant::now();
        loop {
            let now = Instant::now();
            let wake = match renewed {
                Some(at) => (at + self.renew_interval).max(quiet_until),
                None => match decide(&seen, &self.identity, self.duration, now) {
                    Next::Take => quiet_until.max(now),
                    Next::WaitUntil(at) => at.max(quiet_until),
                    Next::Wait => now + Duration::from_secs(3600),
                },
            };
            let deadline = renewed.map(|at| at + self.renew_deadline);
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                _ = async { if let Some(at) = deadline { tokio::time::sleep_until(at).await } else { std::future::pending().await } } => {
                    tracing::warn!(lease = %self.name, "could not renew the lease in time: stopping to apply before it can expire");
                    renewed = None;
                    self.publish(Role::Follower { leader: None });
                }
                event = events.next() => match event {
                    Some(Ok(lease)) => {
                        seen.update(lease, Instant::now());
                        let holder = seen.holder().map(str::to_string);
                        if renewed.is_some() && holder.as_deref() != Some(&self.identity) {
                            tracing::warn!(lease = %self.name, holder = ?holder, "the lease was taken over: stopping to apply");
                            renewed = None;
                        }
                        if renewed.is_none() {
                            self.publish(Role::Follower { leader: holder });
                        }
                    }
                    Some(Err(error)) => tracing::debug!(%error, "lease watch interrupted; it reconnects"),
                    None => {}
                },
                _ = tokio::time::sleep_until(wake) => {
                    let started = Instant::now();
                    let budget = match renewed {
                        Some(at) => (at + self.renew_deadline).saturating_duration_since(started),
                        None => self.renew_deadline,
                    };
                    match tokio::time::timeout(budget, self.write(&seen, renewed.is_none())).await {
                        Ok(Ok(lease)) => {
                            seen.update(Some(lease), Instant::now());
                            if renewed.is_none() {
                                tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
                            }
                            renewed = Some(started);
                            self.publish(Role::Leader);
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(lease = %self.name, %error, "lease not taken or renewed");
                            quiet_until = Instant::now() + self.renew_interval.min(Duration::from_secs(2));
                        }
                        Err(_) => {
                            tracing::warn!(lease = %self.name, "lease request timed out");
                            quiet_until = Instant::now() + self.renew_interval.min(Duration::from_secs(2));
                        }
                    }
                }
            }
        }
        if renewed.is_some() {
            self.publish(Role::Follower { leader: None });
            match tokio::time::timeout(Duration::from_secs(3), self.release(&seen)).await {
                Ok(Ok(())) => tracing::info!(lease = %self.name, "released the lease"),
                Ok(Err(error)) => {
                    tracing::warn!(lease = %self.name, %error, "could not release the lease; it expires by itself")
                }
                Err(_) => tracing::warn!(lease = %self.name, "releasing the lease timed out; it expires by itself"),
            }
        }
    }

    fn publish(&self, role: Role) {
        self.role.send_if_modified(|current| {
            let changed = *current != role;
            *current = role;
            changed
        });
    }

    /// Take or renew: create the Lease when absent, else replace it at the
    /// version last seen (a concurrent writer makes this fail with 409).
    async fn write(&self, seen: &Seen, taking: bool) -> Result<Lease, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let seconds = i32::try_from(self.duration.as_secs()).unwrap_or(i32::MAX);
        match &seen.lease {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(seconds),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(current) => {
                let mut lease = current.clone();
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                let was_ours = spec.holder_identity.as_deref() == Some(self.identity.as_str());
                if taking && !was_ours {
                    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                if taking {
                    spec.acquire_time = Some(now.clone());
                }
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(seconds);
                spec.renew_time = Some(now);
                self.api.replace(&self.name, &PostParams::default(), &lease).await
            }
        }
    }

    /// Clear the holder, so followers take the Lease without waiting.
    async fn release(&self, seen: &Seen) -> Result<(), kube::Error> {
        let mut lease = match &seen.lease {
            Some(lease) => lease.clone(),
            None => self.api.get(&self.name).await?,
        };
        let Some(spec) = lease.spec.as_mut() else { return Ok(()) };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            // Our copy was stale: read it again once.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let mut lease = self.api.get(&self.name).await?;
                if let Some(spec) = lease.spec.as_mut()
                    && spec.holder_identity.as_deref() == Some(self.identity.as_str())
                {
                    spec.holder_identity = None;
                    spec.lease_duration_seconds = Some(1);
                    self.api.replace(&self.name, &PostParams::default(), &lease).await?;
                }
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renew_second: i64) -> Option<Lease> {
        Some(Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: Some(10),
                renew_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::from_second(renew_second).unwrap())),
                ..LeaseSpec::default()
            }),
        })
    }

    #[test]
    fn a_held_lease_is_taken_only_after_its_record_stood_still_for_its_duration() {
        let start = Instant::now();
        let duration = Duration::from_secs(10);
        let mut seen = Seen::default();
        assert_eq!(decide(&seen, "b", duration, start), Next::Wait, "nothing read yet");
        seen.update(lease(Some("a"), 100), start);
        assert_eq!(decide(&seen, "b", duration, start), Next::WaitUntil(start + duration));
        // A renewal seen later restarts the count, whatever the holder's clock says.
        let later = start + Duration::from_secs(8);
        seen.update(lease(Some("a"), 50), later);
        assert_eq!(decide(&seen, "b", duration, later + Duration::from_secs(9)), Next::WaitUntil(later + duration));
        assert_eq!(decide(&seen, "b", duration, later + duration), Next::Take);
        // The same reading again does not restart it.
        seen.update(lease(Some("a"), 50), later + Duration::from_secs(5));
        assert_eq!(decide(&seen, "b", duration, later + duration), Next::Take);
    }

    #[test]
    fn a_released_absent_or_own_lease_is_taken_at_once() {
        let now = Instant::now();
        let duration = Duration::from_secs(10);
        let mut seen = Seen::default();
        seen.update(None, now);
        assert_eq!(decide(&seen, "b", duration, now), Next::Take, "absent");
        seen.update(lease(None, 1), now);
        assert_eq!(decide(&seen, "b", duration, now), Next::Take, "released");
        seen.update(lease(Some(""), 2), now);
        assert_eq!(decide(&seen, "b", duration, now), Next::Take, "released with an empty holder");
        seen.update(lease(Some("b"), 3), now);
        assert_eq!(decide(&seen, "b", duration, now), Next::Take, "ours from before a restart");
    }
}
