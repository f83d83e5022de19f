//! CI (Woodpecker): admin rights for namespace-owners and extra admins, by
//! forge login (Woodpecker users are forge accounts).

use super::{Item, Out};
use crate::id::{Domain, ResourceId};
use crate::kinds::kind;
use crate::resource::Owner;
use serde_json::json;
use tenantry_model::{Roster, Tier};

pub(super) fn derive(roster: &Roster, out: &mut Out) {
    let Some(ci) = &roster.platform.ci else { return };
    for user in roster.users.values().filter(|u| u.tier.value == Tier::NamespaceOwner) {
        let owner = Owner::User(user.key.clone());
        let mut item = Item::new(
            ResourceId::global(Domain::Ci, kind::CI_ADMIN, &user.forge_user.value),
            &owner,
            user.forge_user.span,
            "namespace-owners administer CI under their forge login",
        );
        for dep in super::order::after_platform(roster, user) {
            item = item.after(dep);
        }
        out.push(item, &json!({ "login": user.forge_user.value, "admin": true }));
    }
    for admin in &ci.extra_admins {
        let id = ResourceId::global(Domain::Ci, kind::CI_ADMIN, &admin.value);
        out.push(
            Item::new(id, &Owner::Platform, admin.span, "listed in platform.ci.extra_admins"),
            &json!({ "login": admin.value, "admin": true }),
        );
    }
}
