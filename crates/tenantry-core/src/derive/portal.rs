//! Portal: what each tenant sees about themselves in `tenantry serve`.

use super::{Item, Out};
use crate::id::{Domain, ResourceId};
use crate::resource::Owner;
use serde_json::json;
use tenantry_model::Roster;

pub(super) fn derive(roster: &Roster, out: &mut Out) {
    for user in roster.users.values() {
        let owner = Owner::User(user.key.clone());
        let namespaces: Vec<&str> = user.namespaces.iter().map(|n| n.value.as_str()).collect();
        let domains: Vec<&str> = user.domains.iter().map(|d| d.value.as_str()).collect();
        out.push(
            Item::new(
                ResourceId::global(Domain::Portal, "UserView", &user.key),
                &owner,
                user.span,
                "every user sees their own access in the portal",
            ),
            &json!({
                "user": user.key,
                "email": user.email.value,
                "tier": user.tier.value.as_str(),
                "namespaces": namespaces,
                "domains": domains,
            }),
        );
    }
}
