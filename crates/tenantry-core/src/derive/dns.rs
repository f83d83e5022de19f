//! DNS: one record per user domain, pointing at the platform's ingress.

use super::{Item, Out, Settings};
use crate::id::{Domain, ResourceId};
use crate::resource::Owner;
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
                DnsTarget::Cname(target) => ("CNAME", target.clone()),
                DnsTarget::A(address) => ("A", address.to_string()),
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
