//! `tenantry doctor` on DNS: each user domain is asked of the configured
//! server (its zone as the provider lists it: AXFR, API) and, separately,
//! of this machine's system resolver, which is what users' clients see —
//! a record that exists but has not propagated, or is shadowed, shows only
//! there.

use crate::{DnsTarget, Result, config};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;
use tenantry_core::doctor::{CheckInfo, DiagnoseRequest, Diagnosis, Finding};
use tenantry_core::{Owner, kind};

pub const SERVER: &str = "dns-server";
pub const RESOLVER: &str = "dns-resolver";

pub const CHECKS: &[CheckInfo] = &[
    CheckInfo {
        name: SERVER,
        about: "each user domain exists on the configured DNS server and points at the platform",
    },
    CheckInfo {
        name: RESOLVER,
        about: "each user domain resolves through this machine's resolver to where the platform is",
    },
];

/// How long the system resolver may take per name.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

async fn resolve(name: &str) -> std::result::Result<BTreeSet<IpAddr>, String> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, 0))).await {
        Ok(Ok(addresses)) => Ok(addresses.map(|a| a.ip()).collect()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs())),
    }
}

fn listed(addresses: &BTreeSet<IpAddr>) -> String {
    addresses.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn apply_fix(owner: &Owner) -> String {
    match owner.user() {
        Some(user) => format!("tenantry apply --only {user}"),
        None => "tenantry apply".to_string(),
    }
}

impl DnsTarget {
    pub(crate) async fn diagnose_inner(&self, request: &DiagnoseRequest) -> Result<Diagnosis> {
        let mut diagnosis = Diagnosis::default();
        diagnosis.ran(SERVER);
        diagnosis.ran(RESOLVER);
        let records: Vec<_> = request
            .desired
            .iter()
            .filter(|r| matches!(&*r.id.kind, kind::CNAME | kind::A))
            .map(|r| {
                let content = r.content.to_value();
                let text = |key: &str| content[key].as_str().map(str::to_string).unwrap_or_default();
                let rtype = text("type");
                let target =
                    if rtype == kind::CNAME { config::normalize_name(&text("content")) } else { text("content") };
                (r, config::normalize_name(&text("zone")), config::normalize_name(&text("name")), rtype, target)
            })
            .collect();
        let zones: BTreeSet<&str> = records.iter().map(|(_, zone, ..)| zone.as_str()).collect();
        let mut listings = BTreeMap::new();
        for zone in zones {
            listings.insert(zone.to_string(), self.list(zone).await?);
        }
        for (resource, zone, name, rtype, target) in &records {
            let owner = resource.owner.clone();
            let found: Vec<_> = listings
                .get(zone)
                .map(|l| {
                    l.records.iter().filter(|f| f.name == *name && matches!(f.rtype.as_str(), "CNAME" | "A")).collect()
                })
                .unwrap_or_default();
            if found.is_empty() {
                diagnosis.found(
                    Finding::problem(
                        SERVER,
                        owner.clone(),
                        format!("`{name}` does not exist on the DNS server"),
                        apply_fix(&owner),
                    )
                    .about(&resource.id)
                    .evidence(format!("zone `{zone}` has no CNAME or A record `{name}`; wanted {rtype} {target}")),
                );
            } else if !found
                .iter()
                .any(|f| f.rtype == *rtype && config::normalize_name(&f.content) == config::normalize_name(target))
            {
                let have: Vec<String> = found.iter().map(|f| format!("{} {}", f.rtype, f.content)).collect();
                diagnosis.found(
                    Finding::problem(
                        SERVER,
                        owner.clone(),
                        format!("`{name}` points somewhere else on the DNS server"),
                        format!("`tenantry plan` shows whether it is tenantry's to change ({}); a record someone else made must be removed at the DNS provider first", apply_fix(&owner)),
                    )
                    .about(&resource.id)
                    .evidence(format!("{name} {}; wanted {rtype} {target}", have.join(", "))),
                );
            }
            // What clients see: the system resolver, asked separately.
            match resolve(name).await {
                Err(error) => diagnosis.found(
                    Finding::warning(
                        RESOLVER,
                        owner.clone(),
                        format!("`{name}` does not resolve through this machine's resolver"),
                        format!("check that the zone `{zone}` is delegated to the server tenantry writes to (`dig NS {zone}`), and wait for the record's TTL; `dig {name}` shows what resolvers answer"),
                    )
                    .about(&resource.id)
                    .evidence(format!("getaddrinfo({name}): {error}")),
                ),
                Ok(addresses) => {
                    let expected = if *rtype == kind::A {
                        target.parse::<IpAddr>().map(|a| BTreeSet::from([a])).map_err(|e| e.to_string())
                    } else {
                        resolve(target).await
                    };
                    if let Ok(expected) = expected
                        && !expected.is_empty()
                        && addresses.is_disjoint(&expected)
                    {
                        diagnosis.found(
                            Finding::warning(
                                RESOLVER,
                                owner.clone(),
                                format!("`{name}` resolves somewhere else than `{target}` through this machine's resolver"),
                                format!("find who answers for it (`dig +trace {name}`): an old record elsewhere, a split-horizon view or a cache; then `tenantry plan`"),
                            )
                            .about(&resource.id)
                            .evidence(format!("{name} → {}; {target} → {}", listed(&addresses), listed(&expected))),
                        );
                    }
                }
            }
        }
        Ok(diagnosis)
    }
}
