//! The few things derivation needs from what earlier runs remembered,
//! computed purely from the stored records the engine reads.

use crate::derive::{Facts, RetainedRoute};
use crate::diff::Policy;
use crate::kinds::is_namespace;
use crate::observed::Inventory;
use std::collections::BTreeMap;
use tenantry_model::{Roster, Tier};

/// Sticky port reservations by user and pool.
pub type Reservations = BTreeMap<String, BTreeMap<String, u16>>;

/// What the state database remembers that derivation depends on.
#[derive(Debug, Clone, Default)]
pub struct Remembered {
    pub ports: Reservations,
    /// Routing entries of workstation users, kept for users who depart.
    pub routes: BTreeMap<String, RetainedRoute>,
}

/// The facts for one run under `policy`.
pub fn facts(roster: &Roster, policy: &Policy, remembered: Remembered, inventory: &Inventory) -> Facts {
    let Remembered { ports, mut routes } = remembered;
    // Departed users being cut in this run lose their routes now.
    if policy.offboard {
        routes.retain(|user, _| {
            roster.users.contains_key(user) || policy.only.as_ref().is_some_and(|only| !only.contains(user))
        });
    }
    let mut withheld_namespaces: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if !policy.allow_revoke {
        for (id, entry) in &inventory.entries {
            let Some(user) = entry.owner.user().and_then(|u| roster.users.get(u)) else { continue };
            if is_namespace(id) && !user.namespaces.iter().any(|n| *n.value == *id.name) {
                withheld_namespaces.entry(user.key.clone()).or_default().push(id.name.to_string());
            }
        }
        for list in withheld_namespaces.values_mut() {
            list.sort();
            list.dedup();
        }
    }
    Facts { ports, retained_routes: routes, withheld_namespaces, cluster_version: None }
}

/// Routing entries of present workstation users, remembered so a departed
/// user keeps theirs until the reversible cut.
pub fn current_routes(roster: &Roster) -> BTreeMap<String, RetainedRoute> {
    roster
        .users
        .values()
        .filter_map(|user| {
            let station = user.workstation.as_ref().filter(|w| !w.parked)?;
            Some((
                user.key.clone(),
                RetainedRoute {
                    idp_user: station.idp_user.value.clone(),
                    os_user: station.os_user.value.clone(),
                    admin: user.tier.value == Tier::Admin,
                },
            ))
        })
        .collect()
}
