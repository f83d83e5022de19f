//! DNS: one record per user domain, pointing at the platform's ingress.

use super::{Item, Out, Settings};
use crate::id::{Domain, ResourceId};
use crate::kinds::kind;
use crate::resource::{ObjectBudget, Owner};
use serde_json::json;
use tenantry_model::{DnsTarget, Roster};

/// The managed zone a name falls in: the longest matching zone.
pub fn zone_of<'a>(name: &str, zones: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    zones.into_iter().filter(|zone| name == *zone || name.ends_with(&format!(".{zone}"))).max_by_key(|zone| zone.len())
}

pub(super) fn derive(roster: &Roster, settings: &Settings, out: &mut Out) {
    let Some(dns) = &roster.platform.dns else { return };
    let zones: Vec<&str> =
        settings.dns_zones.iter().map(String::as_str).chain(roster.platform.domain.as_deref()).collect();
    for user in roster.users.values() {
        let owner = Owner::User(user.key.clone());
        for domain in &user.domains {
            let Some(zone) = zone_of(&domain.value, zones.iter().copied()) else { continue };
            let (kind, content) = match &dns.target {
                DnsTarget::Cname(target) => (kind::CNAME, target.clone()),
                DnsTarget::A(address) => (kind::A, address.to_string()),
            };
            out.push(
                Item::new(
                    ResourceId::new(Domain::Dns, kind, zone, &domain.value),
                    &owner,
                    domain.span,
                    "each user domain routes to the platform",
                ),
                &json!({
                    "zone": zone,
                    "name": domain.value,
                    "type": kind,
                    "content": content,
                    "proxied": dns.proxied && settings.dns_proxy_supported,
                    "ttl": dns.ttl,
                }),
            );
        }
    }
}

/// The provider's record cap per zone (`platform.dns.record_budget`), if set.
pub(super) fn budgets(roster: &Roster) -> Vec<ObjectBudget> {
    let Some(budget) = roster.platform.dns.as_ref().and_then(|d| d.record_budget.as_ref()) else { return Vec::new() };
    vec![ObjectBudget {
        domain: Domain::Dns,
        limit: budget.value,
        origin: budget.span,
        name: "record budget",
        scope_noun: "zone",
        object_noun: "records",
        help: |zone| {
            format!(
                "route users through one wildcard record (`*.{zone}` → the tunnel) instead of a record per domain, or raise `platform.dns.record_budget` if the provider allows it"
            )
        },
    }]
}
