//! The forge target (SPEC §11.3): Gitea or Forgejo through their shared API.
//!
//! | resource | apply | observe |
//! |---|---|---|
//! | `forge/Collaborator/<login>/<owner/repo>` | `PUT …/collaborators/<login>` with write (an adopted admin keeps admin); cut: `DELETE` | the repository's collaborator list |
//! | `forge/TeamMember/<login>/<org/team>` | `PUT /teams/<id>/members/<login>`; cut: `DELETE` | the team's member list |
//! | `forge/BranchProtection/-/<repo>@<branch>` | create or edit: pushes and merges by whitelist, no force push (whitelists untouched) | the repository's protections |
//! | `forge/PushWhitelistEntry/<login>/<repo>@<branch>` | add the login to (cut: remove it from) the push and merge whitelists, one protection at a time | the same protections |
//! | `forge/AccessToken/<login>/<name>` | revoke a token of that name, mint a new one: its secret goes to the changes depending on it (the host's `~/.git-credentials`) and nowhere else; cut: revoke | the user's tokens (names, scopes; never secrets) |
//!
//! Nothing on a forge can carry tenantry's marks: what is tenantry's comes
//! from the inventory, and an unmarked grant that fits the roster is adopted.
//! A login the roster names that the forge does not know is a plan problem
//! naming the login and its roster line (SPEC §8.8), and its changes fail.

mod api;
mod config;
mod observe;
mod plugin;

pub use config::{ForgeConfig, Provider};
pub use plugin::PLUGIN;
pub use tenantry_rest::RequestCounts;

use api::{Api, repo_path};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tenantry_core::kinds::kind;
use tenantry_core::target::Result;
use tenantry_core::{
    Action, Applied, Change, Domain, ErrorKind, Note, ObserveRequest, Observed, ResourceId, Snapshot, Target,
    TargetError,
};
use tenantry_rest::{RestClient, RestError, Scheme};

/// What observe learned that apply needs again.
#[derive(Debug, Default)]
pub(crate) struct ForgeSnapshot {
    /// Logins the forge does not know (lowercase), with the plan's message.
    pub(crate) missing_logins: BTreeMap<String, String>,
    /// Team ids by `org/team`.
    pub(crate) team_ids: BTreeMap<String, i64>,
}

/// A forge resource id, parsed.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    pub(crate) login: String,
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Collaborator { repo: String },
    TeamMember { team: String },
    Protection { repo: String, branch: String },
    WhitelistEntry { repo: String, branch: String },
    Token { name: String },
}

impl Parsed {
    pub(crate) fn of(id: &ResourceId) -> Option<Parsed> {
        if id.domain != Domain::Forge {
            return None;
        }
        let login = id.scope.to_string();
        let branch_of = |name: &str| name.split_once('@').map(|(r, b)| (r.to_string(), b.to_string()));
        let kind = match &*id.kind {
            kind::COLLABORATOR => Kind::Collaborator { repo: id.name.to_string() },
            kind::TEAM_MEMBER => Kind::TeamMember { team: id.name.to_string() },
            kind::BRANCH_PROTECTION => {
                let (repo, branch) = branch_of(&id.name)?;
                Kind::Protection { repo, branch }
            }
            kind::PUSH_WHITELIST_ENTRY => {
                let (repo, branch) = branch_of(&id.name)?;
                Kind::WhitelistEntry { repo, branch }
            }
            kind::ACCESS_TOKEN => Kind::Token { name: id.name.to_string() },
            _ => return None,
        };
        Some(Parsed { login, kind })
    }
}

pub(crate) fn rest_error(error: RestError) -> TargetError {
    error.into_target_error()
}

/// The forge target.
#[derive(Debug)]
pub struct ForgeTarget {
    api: Api,
    provider: Provider,
    /// One whitelist edit per protection at a time: an edit is read, change, write.
    protection_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ForgeTarget {
    /// Read the token and check it belongs to a site administrator.
    pub async fn connect(config: &ForgeConfig, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<ForgeTarget> {
        let token =
            tenantry_secret::secret(config.token_file.as_deref(), &["FORGE_TOKEN"], "forge token", "token_file", env)
                .map_err(|e| TargetError::new(ErrorKind::Forbidden, e.to_string()))?;
        let timeout = Duration::from_secs(config.timeout_secs.unwrap_or(30));
        let rest = RestClient::new(&format!("{}/api/v1", config.base_url()), token, Scheme::Token, timeout)
            .map_err(TargetError::unavailable)?;
        let me = rest.get("/user").await.map_err(rest_error)?.body;
        let login = me.get("login").and_then(Value::as_str).unwrap_or_default().to_string();
        if me.get("is_admin").and_then(Value::as_bool) != Some(true) {
            return Err(TargetError::new(
                ErrorKind::Forbidden,
                format!(
                    "the [forge] token belongs to `{login}`, who is not a site administrator of the {}: tenantry \
                     manages collaborators and teams and mints users' tokens, which needs one",
                    config.provider.as_str()
                ),
            ));
        }
        Ok(ForgeTarget {
            api: Api { rest, admin: login },
            provider: config.provider,
            protection_locks: Mutex::default(),
        })
    }

    /// Requests sent so far (a no-op plan costs only list requests).
    pub fn request_counts(&self) -> RequestCounts {
        self.api.rest.counts()
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.protection_locks.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(locks.entry(key.to_string()).or_default())
    }

    async fn team_id(&self, team: &str, snapshot: &ForgeSnapshot) -> Result<i64> {
        if let Some(id) = snapshot.team_ids.get(team) {
            return Ok(*id);
        }
        self.api.team_id(team).await.map_err(rest_error)?.ok_or_else(|| {
            TargetError::new(
                ErrorKind::NotFound,
                format!("team `{team}` does not exist on the {}", self.provider.as_str()),
            )
        })
    }

    /// Add or remove a login on a protection's push and merge whitelists.
    async fn edit_whitelist(&self, repo: &str, branch: &str, login: &str, add: bool) -> Result<()> {
        let lock = self.lock_for(&format!("{repo}@{branch}"));
        let _held = lock.lock().await;
        let Some(found) = self.api.protection(repo, branch).await.map_err(rest_error)? else {
            if add {
                return Err(TargetError::new(
                    ErrorKind::NotFound,
                    format!("branch `{branch}` of `{repo}` is not protected (its BranchProtection failed?)"),
                ));
            }
            return Ok(());
        };
        let edit = |key: &str| {
            let mut names: Vec<String> =
                observe::whitelist(&found, key).into_iter().filter(|n| !n.eq_ignore_ascii_case(login)).collect();
            if add {
                names.push(login.to_string());
            }
            names
        };
        let settings = json!({
            "push_whitelist_usernames": edit("push_whitelist_usernames"),
            "merge_whitelist_usernames": edit("merge_whitelist_usernames"),
        });
        self.api.edit_protection(repo, branch, &settings).await.map_err(rest_error)
    }

    async fn apply_change(&self, change: &Change, parsed: &Parsed, snapshot: &ForgeSnapshot) -> Result<Applied> {
        let login = parsed.login.as_str();
        let remove = matches!(change.action, Action::Delete | Action::Cut);
        let mut applied = Applied::done();
        match &parsed.kind {
            Kind::Collaborator { repo } if remove => self.api.remove_collaborator(repo, login).await,
            Kind::Collaborator { repo } => {
                // An adopted collaborator who is an admin keeps admin: write is a minimum.
                let current = if change.action == Action::Adopt {
                    self.api.permission(repo, login).await.map_err(rest_error)?
                } else {
                    None
                };
                if matches!(current.as_deref(), Some("admin" | "owner")) {
                    applied.notes.push(Note::info(format!("{login} keeps admin permission on {repo}")));
                    Ok(())
                } else {
                    self.api.add_collaborator(repo, login).await
                }
            }
            Kind::TeamMember { team } => {
                let id = self.team_id(team, snapshot).await?;
                if remove {
                    self.api.remove_team_member(id, login).await
                } else {
                    self.api.add_team_member(id, login).await
                }
            }
            Kind::Protection { repo, branch } if remove => self.api.delete_protection(repo, branch).await,
            Kind::Protection { repo, branch } => {
                let flags = json!({
                    "enable_push": true,
                    "enable_push_whitelist": true,
                    "enable_merge_whitelist": true,
                    "enable_force_push": false,
                });
                if self.api.protection(repo, branch).await.map_err(rest_error)?.is_some() {
                    self.api.edit_protection(repo, branch, &flags).await
                } else {
                    let mut create = flags;
                    create["rule_name"] = json!(branch);
                    create["branch_name"] = json!(branch);
                    create["push_whitelist_usernames"] = json!([]);
                    create["merge_whitelist_usernames"] = json!([]);
                    self.api.create_protection(repo, &create).await
                }
            }
            Kind::WhitelistEntry { repo, branch } => {
                return self.edit_whitelist(repo, branch, login, !remove).await.map(|()| applied);
            }
            Kind::Token { name } => {
                let existing = self.api.tokens(login).await.map_err(rest_error)?.unwrap_or_default();
                for token in existing.iter().filter(|t| &t.name == name) {
                    self.api.delete_token(login, token.id).await.map_err(rest_error)?;
                }
                if !remove {
                    let scopes: Vec<String> = change
                        .after
                        .as_ref()
                        .and_then(|c| c.to_value().get("scopes").and_then(Value::as_array).cloned())
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect();
                    let secret = self.api.create_token(login, name, &scopes).await.map_err(rest_error)?;
                    applied.minted = Some(tenantry_core::MintedSecret::new(secret));
                }
                Ok(())
            }
        }
        .map_err(rest_error)?;
        Ok(applied)
    }
}

#[async_trait::async_trait]
impl Target for ForgeTarget {
    fn name(&self) -> &str {
        "forge"
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Forge]
    }

    fn describe(&self, change: &Change) -> Vec<String> {
        let Some(parsed) = Parsed::of(&change.id) else { return Vec::new() };
        let remove = matches!(change.action, Action::Delete | Action::Cut);
        let login = &parsed.login;
        let step = match (&parsed.kind, remove) {
            (Kind::Collaborator { repo }, false) => {
                format!("PUT {}/collaborators/{login} (write; an admin keeps admin)", repo_path(repo))
            }
            (Kind::Collaborator { repo }, true) => format!("DELETE {}/collaborators/{login}", repo_path(repo)),
            (Kind::TeamMember { team }, false) => format!("PUT /teams/<{team}>/members/{login}"),
            (Kind::TeamMember { team }, true) => format!("DELETE /teams/<{team}>/members/{login}"),
            (Kind::Protection { repo, branch }, false) => {
                format!("protect {branch} of {repo}: pushes and merges by whitelist, force pushes refused")
            }
            (Kind::Protection { repo, branch }, true) => {
                format!("DELETE {}/branch_protections/{branch}", repo_path(repo))
            }
            (Kind::WhitelistEntry { repo, branch }, false) => {
                format!("add {login} to the push and merge whitelists of {repo}@{branch}")
            }
            (Kind::WhitelistEntry { repo, branch }, true) => {
                format!("remove {login} from the push and merge whitelists of {repo}@{branch}")
            }
            (Kind::Token { name }, false) => format!(
                "revoke {login}'s token `{name}` if present and mint a new one; its secret goes only to the workstation's ~/.git-credentials"
            ),
            (Kind::Token { name }, true) => format!("revoke {login}'s token `{name}`"),
        };
        vec![step]
    }

    async fn observe(&self, request: &ObserveRequest) -> Result<Observed> {
        observe::observe(&self.api, self.provider.as_str(), request).await
    }

    async fn apply(&self, change: &Change, snapshot: &Snapshot) -> Result<Applied> {
        let id = change.id.to_string();
        let parsed = Parsed::of(&change.id)
            .ok_or_else(|| TargetError::rejected(&id, "not a resource the forge target knows"))?;
        let empty = ForgeSnapshot::default();
        let snapshot = snapshot.get::<ForgeSnapshot>().unwrap_or(&empty);
        let remove = matches!(change.action, Action::Delete | Action::Cut);
        if !remove && let Some(message) = snapshot.missing_logins.get(&parsed.login.to_ascii_lowercase()) {
            return Err(TargetError::rejected(&id, message.clone()).with_kind(ErrorKind::NotFound));
        }
        self.apply_change(change, &parsed, snapshot).await.map_err(|mut e| {
            e.id.get_or_insert(id);
            e
        })
    }
}
