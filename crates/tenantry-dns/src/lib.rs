//! The `dns` target: one record per user domain (SPEC §3 dns row), applied
//! through RFC 2136 with TSIG, the PowerDNS HTTP API or the Cloudflare API.
//!
//! This module owns what is common to the providers: the config-to-backend
//! wiring, ownership, and mapping plan actions onto record writes;
//! `observe.rs` owns observing (one listing per managed zone, projected onto
//! the canonical content the derivation produces, plus the zone's total
//! record count for the record budget of SPEC §8.6). Each provider module
//! only lists, writes and deletes records.
//!
//! Ownership (`marks.rs`): every record tenantry writes carries its marks —
//! owner and platform — in Cloudflare's record comment, or in an ownership
//! TXT record `_tenantry.<name>` beside it on RFC 2136 and PowerDNS. A record
//! of another platform is a conflict, never taken, pruned or destroyed; an
//! unmarked one that points elsewhere is someone else's (a conflict); an
//! unmarked one that already points where the roster wants is adopted, or,
//! when the inventory remembers it (RFC 2136 and PowerDNS records written
//! before marks existed), claimed and marked.

mod cloudflare;
mod config;
mod marks;
mod observe;
mod plugin;
mod powerdns;
mod rfc2136;

pub use config::{CLOUDFLARE_API_URL, DnsConfig, Provider};
pub use marks::MARK_LABEL;
pub use plugin::PLUGIN;

use futures::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use tenantry_core::{
    Action, Applied, Change, Destroyed, Domain, Mark, ObserveRequest, Observed, Owner, ResourceId, Snapshot, Target,
    TargetError,
};

const NAME: &str = "dns";

/// Why the DNS target could not do something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("[dns]: {0}")]
    Config(String),
    /// A key or token file is unreadable, shared with others, or empty; or no secret is configured.
    #[error(transparent)]
    Secret(#[from] tenantry_secret::SecretError),
    /// The server cannot be reached or used at all.
    #[error("{server} is unavailable: {message}")]
    Unavailable { server: String, message: String },
    /// The server did not accept the TSIG key.
    #[error(
        "TSIG key `{key}` was not accepted by {server} ({detail}); check that `tsig_key_file` holds the key the server has (name, algorithm and secret)"
    )]
    Tsig { key: String, server: String, detail: String },
    /// The server refused one operation.
    #[error("{server} refused {operation}: {message}")]
    Refused { server: String, operation: String, message: String },
    /// A configured zone the server does not serve.
    #[error("zone `{zone}` does not exist on {server} ({detail})")]
    NoZone { zone: String, server: String, detail: String },
    /// A resource this target cannot handle.
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn into_target(self, id: Option<&ResourceId>) -> TargetError {
        match (self, id) {
            (error @ (Error::Refused { .. } | Error::Unsupported(_) | Error::NoZone { .. }), Some(id)) => {
                TargetError::rejected(id.to_string(), error.to_string())
            }
            (error, _) => TargetError::unavailable(error.to_string()),
        }
    }
}

/// One record as a provider lists it, names normalised (lowercase, no root dot).
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) name: String,
    pub(crate) rtype: String,
    pub(crate) content: String,
    pub(crate) ttl: u32,
    pub(crate) proxied: bool,
    /// tenantry's marks kept on the record itself, as words (Cloudflare's
    /// comment); `None` there without them, and always on RFC 2136 and
    /// PowerDNS, whose marks are TXT records of their own (`marks.rs`).
    pub(crate) comment_marks: Option<String>,
    /// The provider's id for the record (Cloudflare), to update or delete it.
    pub(crate) provider_id: Option<String>,
}

/// A zone as one listing returned it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    pub(crate) records: Vec<Found>,
}

impl Listing {
    /// Records counted against the budget: everything but the SOA (one per
    /// zone, never the admin's) and DNSSEC bookkeeping the server makes itself.
    pub(crate) fn total(&self) -> usize {
        self.records.iter().filter(|r| !is_bookkeeping(&r.rtype)).count()
    }
}

fn is_bookkeeping(rtype: &str) -> bool {
    matches!(rtype, "SOA" | "RRSIG" | "NSEC" | "NSEC3" | "NSEC3PARAM" | "DNSKEY" | "CDS" | "CDNSKEY" | "TSIG")
}

/// The record a change asks for.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub(crate) zone: String,
    pub(crate) name: String,
    pub(crate) rtype: String,
    pub(crate) content: String,
    pub(crate) ttl: u32,
    pub(crate) proxied: bool,
    pub(crate) owner: Owner,
    /// The platform whose marks the record gets.
    pub(crate) platform: String,
}

impl Wanted {
    /// The record's marks, as words.
    pub(crate) fn mark_words(&self) -> String {
        Mark::words(&self.owner, &self.platform)
    }

    /// Whether `mark` says this record is already this owner's on this platform.
    pub(crate) fn is_marked_by(&self, mark: Option<&str>) -> bool {
        mark.is_some_and(|words| Mark::from_words(words, &self.platform) == Mark::Ours(self.owner.clone()))
    }

    fn from_change(change: &Change, platform: &str) -> Result<Wanted> {
        let content = change
            .after
            .as_ref()
            .ok_or_else(|| Error::Unsupported(format!("{} has no content to apply", change.id)))?
            .to_value();
        let text = |key: &str| content.get(key).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(zone), Some(name), Some(rtype), Some(target)) =
            (text("zone"), text("name"), text("type"), text("content"))
        else {
            return Err(Error::Unsupported(format!("{} lacks zone, name, type or content", change.id)));
        };
        let ttl = content.get("ttl").and_then(|v| v.as_u64()).and_then(|t| u32::try_from(t).ok()).unwrap_or(300);
        let proxied = content.get("proxied").and_then(|v| v.as_bool()).unwrap_or(false);
        if !matches!(rtype.as_str(), "CNAME" | "A") {
            return Err(Error::Unsupported(format!("{}: record type {rtype} is not managed", change.id)));
        }
        let content = if rtype == "CNAME" { config::normalize_name(&target) } else { target };
        Ok(Wanted {
            zone: config::normalize_name(&zone),
            name: config::normalize_name(&name),
            rtype,
            content,
            ttl,
            proxied,
            owner: change.owner.clone(),
            platform: platform.to_string(),
        })
    }
}

/// Requests made so far, for tests and `doctor`: a no-op run should cost
/// one listing per zone and no writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Listings and lookups (AXFR, API GETs).
    pub reads: usize,
    /// Updates, creates and deletes.
    pub writes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    reads: AtomicUsize,
    writes: AtomicUsize,
}

impl Counters {
    pub(crate) fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
enum Backend {
    Rfc2136(rfc2136::Rfc2136),
    PowerDns(powerdns::PowerDns),
    Cloudflare(cloudflare::Cloudflare),
}

/// The DNS target.
#[derive(Debug)]
pub struct DnsTarget {
    provider: Provider,
    zones: Vec<String>,
    backend: Backend,
    counters: Counters,
    platform: String,
}

impl DnsTarget {
    /// Check the config, read its secrets (files must be mode 0600) and make
    /// the client. Nothing is sent to the server yet.
    pub async fn connect(config: &DnsConfig) -> Result<DnsTarget> {
        Self::connect_with_env(config, &|name| std::env::var(name).ok()).await
    }

    /// [`DnsTarget::connect`] with the environment given explicitly
    /// (`PDNS_API_KEY`, `CLOUDFLARE_API_TOKEN`), so tests need not mutate the process's.
    pub async fn connect_with_env(
        config: &DnsConfig,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<DnsTarget> {
        config.check()?;
        let backend = match config.provider {
            Provider::Rfc2136 => Backend::Rfc2136(rfc2136::Rfc2136::new(config).await?),
            Provider::Powerdns => Backend::PowerDns(powerdns::PowerDns::new(config, env)?),
            Provider::Cloudflare => Backend::Cloudflare(cloudflare::Cloudflare::new(config, env)?),
        };
        Ok(DnsTarget {
            provider: config.provider,
            zones: config.zones(),
            backend,
            counters: Counters::default(),
            platform: tenantry_core::DEFAULT_PLATFORM.to_string(),
        })
    }

    /// The platform (roster `platform.name`) whose objects this target
    /// manages: its marks are written on, and read from, every object. The
    /// composition root sets it from the roster when it connects the target.
    pub fn with_platform(mut self, platform: &str) -> Self {
        self.platform = platform.to_string();
        self
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The managed zones (normalised).
    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// Requests sent since the target was made.
    pub fn requests(&self) -> RequestCounts {
        RequestCounts {
            reads: self.counters.reads.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    async fn list(&self, zone: &str) -> Result<Listing> {
        match &self.backend {
            Backend::Rfc2136(b) => b.list(zone, &self.counters).await,
            Backend::PowerDns(b) => b.list(zone, &self.counters).await,
            Backend::Cloudflare(b) => b.list(zone, &self.counters).await,
        }
    }

    async fn put(&self, wanted: &Wanted, create: bool) -> Result<()> {
        match &self.backend {
            Backend::Rfc2136(b) => b.put(wanted, create, &self.counters).await,
            Backend::PowerDns(b) => b.put(wanted, &self.counters).await,
            Backend::Cloudflare(b) => b.put(wanted, create, &self.counters).await,
        }
    }

    /// Remove the record's rrset, and with it its ownership TXT record
    /// (RFC 2136, PowerDNS) in the same message.
    async fn remove(&self, zone: &str, record: &Found) -> Result<()> {
        match &self.backend {
            Backend::Rfc2136(b) => b.remove(zone, &record.name, &record.rtype, &self.counters).await,
            Backend::PowerDns(b) => b.remove(zone, &record.name, &record.rtype, &self.counters).await,
            Backend::Cloudflare(b) => b.remove(zone, record, &self.counters).await,
        }
    }

    /// Whether this provider keeps marks in ownership TXT records (else in the record's comment).
    pub(crate) fn marks_in_txt(&self) -> bool {
        self.provider != Provider::Cloudflare
    }

    /// What a record's marks say, as seen by this platform: `marks` is the
    /// zone's ownership TXT records by name (`marks::by_name`).
    pub(crate) fn mark_of(&self, record: &Found, marks: &std::collections::HashMap<&str, &str>) -> Mark {
        let words = if self.marks_in_txt() {
            marks.get(record.name.as_str()).copied()
        } else {
            record.comment_marks.as_deref()
        };
        words.map_or(Mark::Unmarked, |words| Mark::from_words(words, &self.platform))
    }

    fn managed_zone(&self, id: &ResourceId) -> Result<&str> {
        let zone = config::normalize_name(&id.scope);
        self.zones.iter().find(|z| **z == zone).map(String::as_str).ok_or_else(|| {
            Error::Unsupported(format!(
                "{id}: zone `{}` is not managed by the dns target; add it to `[dns] zones` in tenantry.toml",
                id.scope
            ))
        })
    }

    /// One listing of every managed zone a request touches, concurrently.
    async fn list_zones<'a>(&self, zones: impl IntoIterator<Item = &'a str>) -> Result<BTreeMap<String, Listing>> {
        self.list_each(zones).await.into_iter().map(|(zone, listing)| listing.map(|l| (zone, l))).collect()
    }

    /// [`DnsTarget::list_zones`] with each zone's own outcome.
    pub(crate) async fn list_each<'a>(
        &self,
        zones: impl IntoIterator<Item = &'a str>,
    ) -> BTreeMap<String, Result<Listing>> {
        let mut unique: Vec<&str> = zones.into_iter().collect();
        unique.sort_unstable();
        unique.dedup();
        let results = join_all(unique.iter().map(|zone| async move { (*zone, self.list(zone).await) })).await;
        results.into_iter().map(|(zone, listing)| (zone.to_string(), listing)).collect()
    }

    /// The destroy stage without a backup: remove exactly the given records
    /// (the inventory's entries of a departed user) and their marks, after
    /// one listing per zone. A record already gone counts as removed. A
    /// record marked for another platform or user, or on Cloudflare one
    /// without tenantry's comment, is left alone and named in `notes`.
    /// `Target::destroy` does the same after writing a backup.
    pub async fn destroy_user_records(&self, records: &[ResourceId]) -> Result<Destroyed> {
        let (removed, notes) = self.destroy_records(None, records).await?;
        Ok(Destroyed { backups: Vec::new(), removed, notes })
    }

    /// Remove `records`; records of another platform, and with `user` those
    /// marked for someone else, are kept (and named in the notes). Unmarked
    /// RFC 2136 and PowerDNS records are an earlier version's: the
    /// inventory that named them decides.
    async fn destroy_records(
        &self,
        user: Option<&str>,
        records: &[ResourceId],
    ) -> Result<(Vec<ResourceId>, Vec<String>)> {
        let mut zones = Vec::new();
        for id in records.iter().filter(|id| id.domain == Domain::Dns) {
            zones.push(self.managed_zone(id)?);
        }
        let listings = self.list_zones(zones).await?;
        let (mut gone, mut notes) = (Vec::new(), Vec::new());
        for id in records.iter().filter(|id| id.domain == Domain::Dns) {
            let zone = self.managed_zone(id)?;
            let name = config::normalize_name(&id.name);
            let Some(listing) = listings.get(zone) else { continue };
            let marks = marks::by_name(&listing.records);
            let matching = listing.records.iter().filter(|r| r.name == name && *r.rtype == *id.kind);
            let (mine, foreign): (Vec<&Found>, Vec<&Found>) = matching.partition(|r| match self.mark_of(r, &marks) {
                Mark::Unmarked => self.marks_in_txt(),
                Mark::Ours(owner) | Mark::Legacy(owner) => user.is_none_or(|u| owner.user() == Some(u)),
                Mark::Foreign { .. } => false,
            });
            for record in &foreign {
                let whose = match self.mark_of(record, &marks) {
                    Mark::Foreign { platform } => {
                        format!("it belongs to the platform `{platform}` (another roster on this zone)")
                    }
                    _ => format!(
                        "it is not marked as tenantry's{}",
                        user.map(|u| format!(" for `{u}`")).unwrap_or_default()
                    ),
                };
                notes.push(format!("{id}: kept {} {} → {}: {whose}", record.name, record.rtype, record.content));
            }
            if !foreign.is_empty() {
                continue;
            }
            for record in mine {
                self.remove(zone, record).await?;
            }
            gone.push(id.clone());
        }
        Ok((gone, notes))
    }
}

#[async_trait::async_trait]
impl Target for DnsTarget {
    fn name(&self) -> &str {
        NAME
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Dns]
    }

    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        self.observe_zones(request).await.map_err(|e| e.into_target(None))
    }

    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        let rejected = |e: Error| e.into_target(Some(&change.id));
        match change.action {
            Action::Create | Action::Update | Action::Adopt => {
                self.managed_zone(&change.id).map_err(rejected)?;
                let wanted = Wanted::from_change(change, &self.platform).map_err(rejected)?;
                self.put(&wanted, change.action == Action::Create).await.map(|()| Applied::done()).map_err(rejected)
            }
            Action::Delete => {
                let zone = self.managed_zone(&change.id).map_err(rejected)?.to_string();
                let (_, notes) = self
                    .destroy_records(change.owner.user(), std::slice::from_ref(&change.id))
                    .await
                    .map_err(rejected)?;
                match notes.first() {
                    Some(note) => Err(rejected(Error::Refused {
                        server: zone,
                        operation: format!("deleting {}", change.id),
                        message: note.clone(),
                    })),
                    None => Ok(Applied::done()),
                }
            }
            // The reversible cut leaves names resolving (DNS names hold data:
            // `retire_policy` keeps them); only the destroy stage removes them.
            Action::Cut | Action::Withheld | Action::Departing | Action::Kept | Action::Conflict | Action::NoOp => {
                Ok(Applied::done())
            }
        }
    }

    async fn destroy(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> tenantry_core::target::Result<Destroyed> {
        // Back up what is there before removing anything.
        let mut zones = Vec::new();
        for id in resources.iter().filter(|id| id.domain == Domain::Dns) {
            zones.push(self.managed_zone(id).map_err(|e| e.into_target(Some(id)))?);
        }
        let listings = self.list_zones(zones).await.map_err(|e| e.into_target(None))?;
        let mut backup = Vec::new();
        for id in resources.iter().filter(|id| id.domain == Domain::Dns) {
            let name = config::normalize_name(&id.name);
            for (zone, listing) in &listings {
                for r in listing.records.iter().filter(|r| r.name == name && *r.rtype == *id.kind) {
                    backup.push(json!({ "id": id.to_string(), "zone": zone, "name": r.name, "type": r.rtype,
                        "content": r.content, "ttl": r.ttl, "proxied": r.proxied }));
                }
            }
        }
        let text = serde_json::to_vec_pretty(&backup).unwrap_or_else(|_| b"[]".to_vec());
        let path = backups.write(&format!("dns-{user}.json"), &text).map_err(|source| {
            TargetError::io(format!("writing the backup into {}", backups.dir().display()), source)
        })?;
        let (removed, notes) = self.destroy_records(Some(user), resources).await.map_err(|e| e.into_target(None))?;
        Ok(Destroyed { backups: vec![path], removed, notes })
    }
}
