//! Observe by listing: collaborators per repository, members per team,
//! protections per repository, tokens per workstation user. The requests
//! grow with repositories and teams, not with users; logins seen in no list
//! are looked up one by one — only those, so a no-op plan makes none.

use crate::api::{Api, TokenInfo};
use crate::{ForgeSnapshot, Kind, Parsed, rest_error};
use futures::future::join_all;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenantry_core::{Content, ObserveRequest, Observed, Owner, PlanProblem, ResourceId, Snapshot};
use tenantry_model::Span;

/// A branch protection projected onto the shape derivation produces.
pub(crate) fn protection_content(repo: &str, branch: &str, found: &Value) -> Content {
    let flag = |key: &str| found.get(key).and_then(Value::as_bool).unwrap_or(false);
    let push = match (flag("enable_push"), flag("enable_push_whitelist")) {
        (false, _) => "none",
        (true, true) => "whitelist",
        (true, false) => "all",
    };
    let merge = if flag("enable_merge_whitelist") { "whitelist" } else { "all" };
    Content::from_value(&json!({
        "repo": repo, "branch": branch, "push": push, "merge": merge, "force_push": flag("enable_force_push"),
    }))
}

/// The usernames of one whitelist of a protection.
pub(crate) fn whitelist(found: &Value, key: &str) -> Vec<String> {
    found
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn protected_branch(found: &Value) -> Option<&str> {
    found.get("rule_name").or_else(|| found.get("branch_name")).and_then(Value::as_str)
}

pub(crate) async fn observe(
    api: &Api,
    provider: &str,
    request: &ObserveRequest,
) -> tenantry_core::target::Result<Observed> {
    let wanted: Vec<(ResourceId, Parsed)> =
        request.resources.iter().filter_map(|(id, _)| Parsed::of(id).map(|p| (id.clone(), p))).collect();
    let mut collab_repos = BTreeSet::new();
    let mut protect_repos = BTreeSet::new();
    let mut teams = BTreeSet::new();
    let mut token_logins = BTreeSet::new();
    for (_, parsed) in &wanted {
        match &parsed.kind {
            Kind::Collaborator { repo } => {
                collab_repos.insert(repo.clone());
            }
            Kind::TeamMember { team } => {
                teams.insert(team.clone());
            }
            Kind::Protection { repo, .. } | Kind::WhitelistEntry { repo, .. } => {
                protect_repos.insert(repo.clone());
            }
            Kind::Token { .. } => {
                token_logins.insert(parsed.login.clone());
            }
        }
    }

    let collaborators = join_all(collab_repos.iter().map(|repo| async move { (repo, api.collaborators(repo).await) }));
    let protections = join_all(protect_repos.iter().map(|repo| async move { (repo, api.protections(repo).await) }));
    let team_members = join_all(teams.iter().map(|team| async move {
        let members = match api.team_id(team).await {
            Ok(Some(id)) => api.team_members(id).await.map(|m| Some((id, m))),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        (team, members)
    }));
    let tokens = join_all(token_logins.iter().map(|login| async move { (login, api.tokens(login).await) }));
    let (collaborators, protections, team_members, tokens) =
        futures::join!(collaborators, protections, team_members, tokens);

    let mut observed = Observed::default();
    let mut snapshot = ForgeSnapshot::default();
    // Every login some list showed exists (lowercase: logins are case-insensitive).
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut present: HashMap<String, Content> = HashMap::new();
    for (repo, result) in collaborators {
        let Some(list) = result.map_err(rest_error)? else {
            observed.problems.push(missing_repo(provider, repo));
            continue;
        };
        for login in list {
            let login = login.to_ascii_lowercase();
            present.insert(format!("c|{repo}|{login}"), Content::from_value(&json!({ "repo": repo, "login": login })));
            seen.insert(login);
        }
    }
    for (team, result) in team_members {
        let Some((id, members)) = result.map_err(rest_error)? else {
            observed.problems.push(PlanProblem {
                message: format!("team `{team}` (platform.forge.team) does not exist on the {provider}"),
                help: format!("create the team on the {provider}, or fix `team:` in the roster; until then its memberships fail at apply"),
                blocking: false,
            });
            continue;
        };
        snapshot.team_ids.insert(team.clone(), id);
        for login in members {
            let login = login.to_ascii_lowercase();
            present.insert(format!("t|{team}|{login}"), Content::from_value(&json!({ "team": team, "login": login })));
            seen.insert(login);
        }
    }
    for (repo, result) in protections {
        let Some(list) = result.map_err(rest_error)? else {
            if !collab_repos.contains(repo) {
                observed.problems.push(missing_repo(provider, repo));
            }
            continue;
        };
        for found in list {
            let Some(branch) = protected_branch(&found) else { continue };
            present.insert(format!("p|{repo}|{branch}"), protection_content(repo, branch, &found));
            for login in whitelist(&found, "push_whitelist_usernames") {
                let login = login.to_ascii_lowercase();
                let content = json!({ "repo": repo, "branch": branch, "login": login });
                present.insert(format!("w|{repo}|{branch}|{login}"), Content::from_value(&content));
                seen.insert(login);
            }
        }
    }
    let mut token_lists: BTreeMap<String, Vec<TokenInfo>> = BTreeMap::new();
    for (login, result) in tokens {
        if let Some(list) = result.map_err(rest_error)? {
            seen.insert(login.to_ascii_lowercase());
            token_lists.insert(login.to_ascii_lowercase(), list);
        }
    }

    for (id, parsed) in &wanted {
        let login = parsed.login.to_ascii_lowercase();
        let key = match &parsed.kind {
            Kind::Collaborator { repo } => format!("c|{repo}|{login}"),
            Kind::TeamMember { team } => format!("t|{team}|{login}"),
            Kind::Protection { repo, branch } => format!("p|{repo}|{branch}"),
            Kind::WhitelistEntry { repo, branch } => format!("w|{repo}|{branch}|{login}"),
            Kind::Token { name } => {
                if let Some(token) = token_lists.get(&login).and_then(|l| l.iter().find(|t| &t.name == name)) {
                    let mut scopes = token.scopes.clone();
                    scopes.sort();
                    let content = json!({ "login": parsed.login, "name": name, "scopes": scopes });
                    observed.insert(id.clone(), Content::from_value(&content), None);
                }
                continue;
            }
        };
        if let Some(content) = present.get(&key) {
            // Report the roster's spelling of the login (the forge's may differ in case).
            let mut value = content.to_value();
            if let Some(object) = value.as_object_mut()
                && object.contains_key("login")
            {
                object.insert("login".to_string(), Value::String(parsed.login.clone()));
            }
            observed.insert(id.clone(), Content::from_value(&value), None);
        }
    }

    // SPEC §8.8: a login the roster names that the forge does not know is a
    // plan error naming the login and its roster line, never a silent skip.
    let desired: BTreeSet<&ResourceId> = request.desired.iter().map(|(id, _)| id).collect();
    let origins: HashMap<&ResourceId, Span> = request.origins.iter().map(|(id, span)| (id, *span)).collect();
    let owners: HashMap<&ResourceId, &Owner> = request.resources.iter().map(|(id, owner)| (id, owner)).collect();
    let mut unseen: BTreeMap<String, (String, Span, Option<String>)> = BTreeMap::new();
    for (id, parsed) in &wanted {
        let login = parsed.login.to_ascii_lowercase();
        if !desired.contains(id) || seen.contains(&login) || matches!(parsed.kind, Kind::Protection { .. }) {
            continue;
        }
        let span = origins.get(id).copied().unwrap_or(Span::UNKNOWN);
        let user = owners.get(id).and_then(|o| o.user()).map(str::to_string);
        let entry = unseen.entry(login).or_insert_with(|| (parsed.login.clone(), span, user.clone()));
        // The login's own line (forge_user) rather than a whitelist entry's.
        if !matches!(parsed.kind, Kind::WhitelistEntry { .. }) && (entry.1.line > span.line || !entry.1.is_known()) {
            *entry = (parsed.login.clone(), span, user);
        }
    }
    let lookups =
        join_all(unseen.keys().map(|login| async move { (login.clone(), api.user_exists(login).await) })).await;
    for (login, exists) in lookups {
        if exists.map_err(rest_error)? {
            continue;
        }
        let Some((spelled, span, user)) = unseen.get(&login) else { continue };
        let whose = user.as_deref().map(|u| format!(" of user `{u}`")).unwrap_or_default();
        let message =
            format!("forge login `{spelled}`{whose} (roster line {}) does not exist on the {provider}", span.line);
        observed.problems.push(PlanProblem {
            message: message.clone(),
            help: format!(
                "set `forge_user:` to their {provider} login, or create the account (or have them sign in once); \
                 until then their forge changes fail at apply, the rest of the plan is applied"
            ),
            blocking: false,
        });
        snapshot.missing_logins.insert(login, message);
    }
    observed.snapshot = Snapshot::new(snapshot);
    Ok(observed)
}

fn missing_repo(provider: &str, repo: &str) -> PlanProblem {
    PlanProblem {
        message: format!(
            "repository `{repo}` (platform.forge) does not exist on the {provider}, or the token cannot see it"
        ),
        help: format!("create it on the {provider} or fix the roster; until then its changes fail at apply"),
        blocking: false,
    }
}
