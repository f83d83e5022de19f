//! Portal: what each tenant sees about themselves in `tenantry serve`.

use super::{Item, Out};
use crate::content::Content;
use crate::id::{Domain, ResourceId};
use crate::resource::Owner;
use tenantry_model::Roster;

pub(super) fn derive(roster: &Roster, out: &mut Out) {
    for user in roster.users.values() {
        let owner = Owner::User(user.key.clone());
        let namespaces: Vec<&str> = user.namespaces.iter().map(|n| n.value.as_str()).collect();
        let domains: Vec<&str> = user.domains.iter().map(|d| d.value.as_str()).collect();
        out.push_content(
            Item::new(
                ResourceId::global(Domain::Portal, "UserView", &user.key),
                &owner,
                user.span,
                "every user sees their own access in the portal",
            ),
            Content::object(160, |o| {
                o.strs("domains", domains)
                    .str("email", &user.email.value)
                    .strs("namespaces", namespaces)
                    .str("tier", user.tier.value.as_str())
                    .str("user", &user.key);
            }),
        );
    }
}
