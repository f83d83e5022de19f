//! Forge (Forgejo/Gitea, SPEC §11.3): write collaborators on the platform
//! repositories, membership of the platform team, protected branches with
//! their push whitelists, and — with a host target — contribute access on
//! the workstation: a token minted per user and the git setup that uses it.

use super::{Item, Out, Settings};
use crate::id::{Domain, ResourceId};
use crate::kinds::kind;
use crate::resource::Owner;
use serde_json::json;
use std::collections::BTreeMap;
use tenantry_model::{Roster, Tier, User};

/// Scopes of the workstation token: push and pull, nothing else.
pub const CONTRIBUTE_TOKEN_SCOPES: &[&str] = &["write:repository"];

/// The name of a workstation user's token on the forge: tenantry finds it
/// (and rotates it) by this name.
pub fn contribute_token_name(platform: &str) -> String {
    format!("tenantry-{platform}-workstation")
}

/// The branch the workstation's main checkout tracks on the extra remote.
pub const DEFAULT_TRACKED_BRANCH: &str = "master";

pub(super) fn derive(roster: &Roster, settings: &Settings, out: &mut Out) {
    let Some(forge) = &roster.platform.forge else { return };
    let mut collaborators: BTreeMap<(&str, &str), ResourceId> = BTreeMap::new();
    for user in roster.users.values().filter(|u| u.tier.value != Tier::Admin) {
        let owner = Owner::User(user.key.clone());
        let login = user.forge_user.value.as_str();
        let after = super::order::after_platform(roster, user);
        for repo in &forge.repos {
            let id = ResourceId::new(Domain::Forge, kind::COLLABORATOR, login, &repo.value);
            collaborators.insert((login, repo.value.as_str()), id.clone());
            out.push(
                with_deps(
                    Item::new(
                        id,
                        &owner,
                        user.forge_user.span,
                        "non-admin users are write collaborators on the platform repositories",
                    ),
                    &after,
                ),
                &json!({ "repo": repo.value, "login": login }),
            );
        }
        if let Some(team) = &forge.team {
            out.push(
                with_deps(
                    Item::new(
                        ResourceId::new(Domain::Forge, kind::TEAM_MEMBER, login, &team.value),
                        &owner,
                        user.forge_user.span,
                        "non-admin users are members of the platform team",
                    ),
                    &after,
                ),
                &json!({ "team": team.value, "login": login }),
            );
        }
    }
    for branch in &forge.protected_branches {
        let name = format!("{}@{}", branch.repo.value, branch.branch.value);
        let protection = ResourceId::global(Domain::Forge, kind::BRANCH_PROTECTION, &name);
        out.push(
            Item::new(
                protection.clone(),
                &Owner::Platform,
                branch.branch.span,
                "protected branches: pushes only from the whitelist, no force pushes",
            ),
            &json!({
                "repo": branch.repo.value,
                "branch": branch.branch.value,
                "push": "whitelist",
                "merge": "whitelist",
                "force_push": false,
            }),
        );
        for key in &branch.push_users {
            let Some(user) = roster.users.get(&key.value) else { continue };
            let login = user.forge_user.value.as_str();
            let mut item = Item::new(
                ResourceId::new(Domain::Forge, kind::PUSH_WHITELIST_ENTRY, login, &name),
                &Owner::User(user.key.clone()),
                key.span,
                "listed in the branch's push_users: may push and merge to it",
            )
            .after(protection.clone());
            // The forge whitelists only users with write access.
            if let Some(collaborator) = collaborators.get(&(login, branch.repo.value.as_str())) {
                item = item.after(collaborator.clone());
            }
            out.push(
                with_deps(item, &super::order::after_platform(roster, user)),
                &json!({ "repo": branch.repo.value, "branch": branch.branch.value, "login": login }),
            );
        }
    }
    if let (Some(url), true) = (&settings.forge_url, settings.host_applies) {
        for user in roster.users.values() {
            contribute_access(roster, user, url, out);
        }
    }
}

fn with_deps(mut item: Item, deps: &[ResourceId]) -> Item {
    for dep in deps {
        item = item.after(dep.clone());
    }
    item
}

/// A workstation user's token (minted on the forge, content without the
/// secret) and the host resource that writes it into their home.
fn contribute_access(roster: &Roster, user: &User, forge_url: &str, out: &mut Out) {
    let Some(station) = &user.workstation else { return };
    let platform = &roster.platform;
    let owner = Owner::User(user.key.clone());
    let login = user.forge_user.value.as_str();
    let token_name = contribute_token_name(&platform.name);
    let token = ResourceId::new(Domain::Forge, kind::ACCESS_TOKEN, login, &token_name);
    out.push(
        with_deps(
            Item::new(
                token.clone(),
                &owner,
                user.forge_user.span,
                "workstation users get a forge token for git (push and pull only)",
            )
            .sensitive(),
            &super::order::after_platform(roster, user),
        ),
        &json!({ "login": login, "name": token_name, "scopes": CONTRIBUTE_TOKEN_SCOPES }),
    );
    let os_user = station.os_user.value.as_str();
    let home = super::host::home_of(os_user);
    let account = ResourceId::global(Domain::Host, kind::ACCOUNT, os_user);
    let mut item = Item::new(
        ResourceId::new(Domain::Host, kind::CONTRIBUTE_ACCESS, os_user, "git"),
        &owner,
        station.span,
        "workstation users push with their forge token: ~/.git-credentials, git identity, the extra remote tracked",
    )
    .after(account)
    .after(token.clone());
    // The main checkout's branch tracks the extra remote (the forge).
    let tracking = match (&platform.workstation.main_repo, &platform.workstation.extra_remote) {
        (Some(main), Some(remote)) => {
            let checkout = ResourceId::new(Domain::Host, kind::CHECKOUT, os_user, &main.name);
            item = item.after(checkout);
            let path = match station.code_layout {
                tenantry_model::CodeLayout::Single => format!("{home}/code"),
                tenantry_model::CodeLayout::Workspace => format!("{home}/code/{}", main.name),
            };
            let branch = forge_branch(roster);
            json!({ "checkout": path, "remote": remote.name, "branch": branch })
        }
        _ => serde_json::Value::Null,
    };
    out.push(
        item,
        &json!({
            "os_user": os_user,
            "home": home,
            "forge_url": forge_url,
            "login": login,
            "token": token.to_string(),
            "git_name": user.key,
            "git_email": user.email.value,
            "tracking": tracking,
        }),
    );
}

/// The branch contributors push to: the protected branch when one is set.
fn forge_branch(roster: &Roster) -> String {
    roster
        .platform
        .forge
        .as_ref()
        .and_then(|f| f.protected_branches.first())
        .map(|b| b.branch.value.clone())
        .unwrap_or_else(|| DEFAULT_TRACKED_BRANCH.to_string())
}
