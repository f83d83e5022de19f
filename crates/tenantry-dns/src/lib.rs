//! The `dns` target: one record per user domain (SPEC §3 dns row), applied
//! through RFC 2136 with TSIG, the PowerDNS HTTP API or the Cloudflare API.
//!
//! This module owns what is common to the providers: the config-to-backend
//! wiring, observing (one listing per managed zone, projected onto the
//! canonical content the derivation produces, plus the zone's total record
//! count for the record budget of SPEC §8.6), ownership, and mapping plan
//! actions onto record writes. Each provider module only lists, writes and
//! deletes records.
//!
//! Ownership: RFC 2136 and PowerDNS records carry no labels, so they are
//! reported without an owner and the inventory decides; the core refuses to
//! adopt an unmarked record that points elsewhere (a conflict). Cloudflare
//! records carry the comment `managed-by tenantry user=<user>`, read back as
//! the owner.

mod cloudflare;
mod config;
mod plugin;
mod powerdns;
mod rfc2136;

pub use config::{CLOUDFLARE_API_URL, DnsConfig, Provider};
pub use plugin::PLUGIN;

use futures::future::join_all;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use tenantry_core::{
    Action, Applied, Change, Content, Destroyed, Domain, ObserveRequest, Observed, Owner, ResourceId, Snapshot, Target,
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
    /// A resource this target cannot handle.
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn into_target(self, id: Option<&ResourceId>) -> TargetError {
        match (self, id) {
            (error @ (Error::Refused { .. } | Error::Unsupported(_)), Some(id)) => {
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
    /// From tenantry's mark on the record (Cloudflare's comment); None elsewhere.
    pub(crate) owner: Option<Owner>,
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
}

impl Wanted {
    fn from_change(change: &Change) -> Result<Wanted> {
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
        Ok(DnsTarget { provider: config.provider, zones: config.zones(), backend, counters: Counters::default() })
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

    async fn remove(&self, zone: &str, record: &Found) -> Result<()> {
        match &self.backend {
            Backend::Rfc2136(b) => b.remove(zone, &record.name, &record.rtype, &self.counters).await,
            Backend::PowerDns(b) => b.remove(zone, &record.name, &record.rtype, &self.counters).await,
            Backend::Cloudflare(b) => b.remove(zone, record, &self.counters).await,
        }
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
        let mut unique: Vec<&str> = zones.into_iter().collect();
        unique.sort_unstable();
        unique.dedup();
        let results = join_all(unique.iter().map(|zone| async move { (*zone, self.list(zone).await) })).await;
        results.into_iter().map(|(zone, listing)| listing.map(|l| (zone.to_string(), l))).collect()
    }

    /// The destroy stage without a backup: remove exactly the given records
    /// (the inventory's entries of a departed user), after one listing per
    /// zone. A record already gone counts as removed. On Cloudflare a record
    /// without tenantry's comment is left alone and named in `notes`.
    /// `Target::destroy` does the same after writing a backup.
    pub async fn destroy_user_records(&self, records: &[ResourceId]) -> Result<Destroyed> {
        let (removed, notes) = self.destroy_records(None, records).await?;
        Ok(Destroyed { backups: Vec::new(), removed, notes })
    }

    /// Remove `records`; with `user`, Cloudflare records marked for someone
    /// else are kept (and named in the notes).
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
            let matching: Vec<&Found> = listings
                .get(zone)
                .map(|l| l.records.iter().filter(|r| r.name == name && *r.rtype == *id.kind).collect())
                .unwrap_or_default();
            let (mine, foreign): (Vec<&Found>, Vec<&Found>) = matching.into_iter().partition(|r| match &r.owner {
                None => self.provider != Provider::Cloudflare,
                Some(owner) => user.is_none_or(|u| owner.user() == Some(u)),
            });
            for record in &foreign {
                notes.push(format!(
                    "{id}: kept {} {} → {}: it is not marked as tenantry's{}",
                    record.name,
                    record.rtype,
                    record.content,
                    user.map(|u| format!(" for `{u}`")).unwrap_or_default()
                ));
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

/// Whether a found record already points where the desired one does (same
/// type and target; TTL and proxying may differ and are simply updated).
fn same_target(found: &Content, desired: &Content) -> bool {
    let (found, desired) = (found.to_value(), desired.to_value());
    found.get("type") == desired.get("type") && found.get("content") == desired.get("content")
}

/// The canonical content of what a name holds for one type, in the shape
/// `derive/dns.rs` produces. Several records of one type are joined, so
/// they never look equal to the single record the roster asks for.
fn project(zone: &str, records: &[&Found]) -> Content {
    let mut contents: Vec<&str> = records.iter().map(|r| r.content.as_str()).collect();
    contents.sort_unstable();
    let first = records.first();
    Content::from_value(&json!({
        "zone": zone,
        "name": first.map(|r| r.name.as_str()).unwrap_or_default(),
        "type": first.map(|r| r.rtype.as_str()).unwrap_or_default(),
        "content": contents.join(","),
        "proxied": first.is_some_and(|r| r.proxied),
        "ttl": first.map(|r| r.ttl).unwrap_or_default(),
    }))
}

/// Types that cannot share a name with a CNAME, i.e. everything the admin
/// could have put there (DNSSEC bookkeeping aside).
fn blocks(desired_type: &str, found_type: &str) -> bool {
    if is_bookkeeping(found_type) || found_type == desired_type {
        return false;
    }
    desired_type == "CNAME" || found_type == "CNAME"
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
        let listings = self.list_zones(self.zones.iter().map(String::as_str)).await.map_err(|e| e.into_target(None))?;
        let mut observed = Observed::default();
        for (zone, listing) in &listings {
            observed.scope_totals.insert(zone.clone(), listing.total());
        }
        let mut by_name: HashMap<(&str, &str), Vec<&Found>> = HashMap::new();
        for (zone, listing) in &listings {
            for record in &listing.records {
                by_name.entry((zone.as_str(), record.name.as_str())).or_default().push(record);
            }
        }
        let wanted: HashMap<&ResourceId, &Content> = request.desired.iter().map(|(id, c)| (id, c)).collect();
        for (id, _) in request.resources.iter().filter(|(id, _)| id.domain == Domain::Dns) {
            let zone = config::normalize_name(&id.scope);
            let name = config::normalize_name(&id.name);
            let Some(at_name) = by_name.get(&(zone.as_str(), name.as_str())) else { continue };
            let same: Vec<&Found> = at_name.iter().copied().filter(|r| *r.rtype == *id.kind).collect();
            // A record of another type in the way (an A where a CNAME is wanted)
            // is reported under the wanted id: the plan then shows a conflict
            // instead of a create the server would refuse or silently ignore.
            let in_the_way = || -> Vec<&Found> {
                let Some(kind) = at_name.iter().find(|r| blocks(&id.kind, &r.rtype)).map(|r| r.rtype.as_str()) else {
                    return Vec::new();
                };
                at_name.iter().copied().filter(|r| r.rtype == kind).collect()
            };
            let shown = if same.is_empty() { in_the_way() } else { same };
            if let Some(first) = shown.first() {
                let found = project(&zone, &shown);
                // A record carries no labels, so its name alone is no proof it
                // is ours: unmarked and pointing elsewhere, it is someone else's.
                if first.owner.is_none()
                    && let Some(desired) = wanted.get(id)
                    && !same_target(&found, desired)
                {
                    observed.foreign.insert(
                        id.clone(),
                        "exists without tenantry's marks and points elsewhere; tenantry will not overwrite what it did not create".to_string(),
                    );
                }
                observed.insert(id.clone(), found, first.owner.clone());
            }
        }
        // Records marked as tenantry's that nobody asked about (a lost state
        // database): reported so the plan still sees them as tenantry's.
        for (zone, listing) in &listings {
            for record in listing.records.iter().filter(|r| r.owner.is_some() && matches!(&*r.rtype, "CNAME" | "A")) {
                let id = ResourceId::new(Domain::Dns, &record.rtype, zone, &record.name);
                if observed.get(&id).is_none() {
                    observed.insert(id, project(zone, &[record]), record.owner.clone());
                }
            }
        }
        Ok(observed)
    }

    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        let rejected = |e: Error| e.into_target(Some(&change.id));
        match change.action {
            Action::Create | Action::Update | Action::Adopt => {
                self.managed_zone(&change.id).map_err(rejected)?;
                let wanted = Wanted::from_change(change).map_err(rejected)?;
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
