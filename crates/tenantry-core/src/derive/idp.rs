//! Identity provider: the groups each user belongs to (SPEC §11.3) — the
//! tier's groups (`platform.idp.tier_groups`), the workstation group for
//! users with a workstation, and the user's own `groups` — the groups
//! themselves (shared, never deleted) and the user's account.

use super::{Item, Out, Settings};
use crate::id::{Domain, ResourceId};
use crate::kinds::kind;
use crate::resource::Owner;
use serde_json::json;
use std::collections::BTreeMap;
use tenantry_model::{Roster, Span, User};

/// The groups a user belongs to, each with the roster position and rule that put them there.
pub fn user_groups<'a>(roster: &'a Roster, user: &'a User) -> BTreeMap<&'a str, (Span, &'static str)> {
    let mut groups = BTreeMap::new();
    if let Some(idp) = &roster.platform.idp {
        for group in idp.tier_groups.get(&user.tier.value).into_iter().flatten() {
            groups.entry(group.value.as_str()).or_insert((group.span, "the tier's identity-provider groups"));
        }
        if user.workstation.is_some()
            && let Some(group) = &idp.workstation_group
        {
            groups.entry(group.value.as_str()).or_insert((group.span, "users with a workstation join its group"));
        }
    }
    for group in &user.groups {
        groups.entry(group.value.as_str()).or_insert((group.span, "the user's own identity-provider groups"));
    }
    groups
}

/// The account id of a user (by email: the OIDC identity).
pub fn account_id(user: &User) -> ResourceId {
    ResourceId::global(Domain::Idp, kind::IDP_ACCOUNT, &user.email.value)
}

pub(super) fn derive(roster: &Roster, settings: &Settings, out: &mut Out) {
    let mut all_groups: BTreeMap<&str, Span> = BTreeMap::new();
    for user in roster.users.values() {
        let groups = user_groups(roster, user);
        if groups.is_empty() {
            continue;
        }
        let owner = Owner::User(user.key.clone());
        let account = account_id(user);
        let mut content = json!({
            "email": user.email.value,
            "enabled": true,
            "disable_on_cut": settings.idp_disable_on_cut,
        });
        // The login matters where the workstation's web terminal maps it to an account.
        if let (Some(workstation), Some(fields)) = (&user.workstation, content.as_object_mut()) {
            fields.insert("login".to_string(), json!(workstation.idp_user.value));
        }
        out.push(
            Item::new(account.clone(), &owner, user.email.span, "a user in identity-provider groups has an account"),
            &content,
        );
        for (group, (origin, rule)) in groups {
            all_groups.entry(group).or_insert(origin);
            let group_id = ResourceId::global(Domain::Idp, kind::IDP_GROUP, group);
            out.push(
                Item::new(
                    ResourceId::new(Domain::Idp, kind::IDP_GROUP_MEMBER, group, &user.email.value),
                    &owner,
                    origin,
                    rule,
                )
                .after(account.clone())
                .after(group_id),
                &json!({ "group": group, "email": user.email.value }),
            );
        }
    }
    for (group, origin) in all_groups {
        out.push(
            Item::new(
                ResourceId::global(Domain::Idp, kind::IDP_GROUP, group),
                &Owner::Platform,
                origin,
                "identity-provider groups the roster names exist",
            ),
            &json!({ "name": group }),
        );
    }
}
