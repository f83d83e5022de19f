//! Observe: one listing per managed zone (AXFR, one GET, or Cloudflare's
//! pages), projected onto the canonical content `derive/dns.rs` produces,
//! with each record's marks read as this platform sees them
//! (`Observed::insert_marked`), and the zone's record count for the budget.
//!
//! A configured zone the server does not serve is a plan problem for that
//! zone's records only; every other failure makes the target unavailable.

use crate::marks;
use crate::{DnsTarget, Error, Found, Result, config, is_bookkeeping};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use tenantry_core::{Content, Domain, Mark, ObserveRequest, Observed, PlanProblem, ResourceId};

/// Why an unmarked record that points elsewhere is not adopted.
const POINTS_ELSEWHERE: &str =
    "exists without tenantry's marks and points elsewhere; tenantry will not overwrite what it did not create";

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

impl DnsTarget {
    pub(crate) async fn observe_zones(&self, request: &ObserveRequest) -> Result<Observed> {
        let mut observed = Observed::default();
        let mut listings = BTreeMap::new();
        for (zone, listing) in self.list_each(self.zones.iter().map(String::as_str)).await {
            match listing {
                Ok(listing) => {
                    listings.insert(zone, listing);
                }
                Err(Error::NoZone { zone, server, detail }) => {
                    observed.problems.push(missing_zone(request, &zone, &server, &detail));
                }
                Err(other) => return Err(other),
            }
        }
        for (zone, listing) in &listings {
            observed.scope_totals.insert(zone.clone(), listing.total());
        }
        let marks: HashMap<&str, HashMap<&str, &str>> =
            listings.iter().map(|(zone, listing)| (zone.as_str(), marks::by_name(&listing.records))).collect();
        let no_marks = HashMap::new();
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
            let Some(first) = shown.first() else { continue };
            let found = project(&zone, &shown);
            let zone_marks = marks.get(zone.as_str()).unwrap_or(&no_marks);
            match self.mark_of(first, zone_marks) {
                // Unmarked, its name alone is no proof it is ours: pointing
                // elsewhere, it is someone else's.
                Mark::Unmarked if wanted.get(id).is_some_and(|desired| !same_target(&found, desired)) => {
                    observed.foreign.insert(id.clone(), POINTS_ELSEWHERE.to_string());
                    observed.insert(id.clone(), found, None);
                }
                Mark::Unmarked => {
                    // RFC 2136 and PowerDNS records of earlier versions carry
                    // no mark: the inventory claims them (and the plan marks
                    // them); otherwise they are adopted.
                    if self.marks_in_txt() {
                        observed.legacy.insert(id.clone());
                    }
                    observed.insert(id.clone(), found, None);
                }
                mark => observed.insert_marked(id.clone(), found, mark, true),
            }
        }
        // This platform's records that nobody asked about (a lost state
        // database): reported so the plan still sees them as tenantry's.
        for (zone, listing) in &listings {
            let zone_marks = marks.get(zone.as_str()).unwrap_or(&no_marks);
            for record in listing.records.iter().filter(|r| matches!(&*r.rtype, "CNAME" | "A")) {
                let id = ResourceId::new(Domain::Dns, &record.rtype, zone, &record.name);
                if observed.get(&id).is_none() {
                    observed.insert_marked(id, project(zone, &[record]), self.mark_of(record, zone_marks), false);
                }
            }
        }
        if self.marks_in_txt() {
            for (zone, pending) in pending_marks(request, &marks, &observed) {
                if let Some(total) = observed.scope_totals.get_mut(&zone) {
                    *total += pending;
                }
            }
        }
        Ok(observed)
    }
}

/// The ownership records apply will add, per zone. The budget check counts
/// a create as one record, but on RFC 2136 and PowerDNS every record
/// tenantry writes brings its ownership TXT record: the zone's count
/// includes one per wanted record without a mark that is not someone
/// else's (a conflict writes nothing). A deleted record's mark goes too,
/// which the check does not subtract: it errs on the safe side.
fn pending_marks(
    request: &ObserveRequest,
    marks: &HashMap<&str, HashMap<&str, &str>>,
    observed: &Observed,
) -> BTreeMap<String, usize> {
    let mut pending = BTreeMap::new();
    for (id, _) in request.desired.iter().filter(|(id, _)| id.domain == Domain::Dns) {
        let zone = config::normalize_name(&id.scope);
        let name = config::normalize_name(&id.name);
        let Some(zone_marks) = marks.get(zone.as_str()) else { continue };
        if !zone_marks.contains_key(name.as_str()) && !observed.foreign.contains_key(id) {
            *pending.entry(zone).or_default() += 1;
        }
    }
    pending
}

/// The plan problem for a configured zone the server does not serve.
fn missing_zone(request: &ObserveRequest, zone: &str, server: &str, detail: &str) -> PlanProblem {
    let wanted =
        request.desired.iter().filter(|(id, _)| id.domain == Domain::Dns && config::normalize_name(&id.scope) == zone);
    let count = wanted.count();
    let what = if count == 0 {
        String::new()
    } else {
        format!(": the {count} record(s) the roster wants in it cannot be written")
    };
    PlanProblem {
        message: format!("DNS zone `{zone}` (in `[dns] zones`) does not exist on {server} ({detail}){what}"),
        help: format!(
            "create the zone `{zone}` on the DNS server (or in the provider's account), or remove it from `[dns] zones` in tenantry.toml; the rest of the plan is not affected"
        ),
        blocking: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wanted_record_without_a_mark_brings_one_unless_it_is_someone_elses() {
        let id = |name: &str| -> ResourceId { format!("dns/CNAME/lab.test/{name}.lab.test").parse().unwrap() };
        let content = Content::from_value(&json!({}));
        let request = ObserveRequest {
            resources: Vec::new(),
            desired: ["new", "marked", "theirs", "legacy"].map(|n| (id(n), content.clone())).to_vec(),
            platform: tenantry_core::DEFAULT_PLATFORM.to_string(),
            origins: Vec::new(),
        };
        let zone_marks: HashMap<&str, &str> = HashMap::from([("marked.lab.test", "managed-by=tenantry")]);
        let marks = HashMap::from([("lab.test", zone_marks)]);
        let mut observed = Observed::default();
        observed.foreign.insert(id("theirs"), "points elsewhere".to_string());
        let pending = pending_marks(&request, &marks, &observed);
        assert_eq!(pending, BTreeMap::from([("lab.test".to_string(), 2)]), "new and legacy get a mark");
    }
}
