//! Forge (Forgejo/Gitea): write collaborators and protected-branch push lists.

use super::{Item, Out};
use crate::id::{Domain, ResourceId};
use crate::resource::Owner;
use serde_json::json;
use std::collections::BTreeSet;
use tenantry_model::{Roster, Tier};

pub(super) fn derive(roster: &Roster, out: &mut Out) {
    let Some(forge) = &roster.platform.forge else { return };
    for user in roster.users.values().filter(|u| u.tier.value != Tier::Admin) {
        let owner = Owner::User(user.key.clone());
        for repo in &forge.repos {
            out.push(
                Item::new(
                    ResourceId::new(Domain::Forge, "Collaborator", &user.forge_user.value, &repo.value),
                    &owner,
                    repo.span,
                    "non-admin users are write collaborators on the platform repositories",
                ),
                &json!({ "repo": repo.value, "login": user.forge_user.value, "permission": "write" }),
            );
        }
    }
    for branch in &forge.protected_branches {
        let logins: BTreeSet<&str> = branch
            .push_users
            .iter()
            .filter_map(|key| roster.users.get(&key.value))
            .map(|user| user.forge_user.value.as_str())
            .collect();
        let name = format!("{}@{}", branch.repo.value, branch.branch);
        out.push(
            Item::new(
                ResourceId::global(Domain::Forge, "BranchPushWhitelist", &name),
                &Owner::Platform,
                branch.repo.span,
                "users allowed to push to a protected branch",
            ),
            &json!({ "repo": branch.repo.value, "branch": branch.branch, "push_users": logins, "merge_users": logins }),
        );
    }
}
