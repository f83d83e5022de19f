//! The `idp` target (SPEC §11.3): keeps each roster user in the
//! identity-provider groups the roster gives them — the tier's groups, the
//! workstation group, the user's own — in Keycloak (admin REST API) or
//! Authentik (API v3).
//!
//! Observe lists the members of each managed group (requests grow with the
//! groups, not the users) and looks up by email only the accounts no such
//! listing showed. A roster user without an account is a plan problem
//! naming the roster line — only that user's changes fail — unless
//! `create_users` is set. Memberships are additive; the reversible cut
//! removes the managed memberships (and, with `disable_on_cut`, disables
//! the account). Groups are created when missing and never deleted;
//! accounts are deleted only by the destroy stage with
//! `delete_accounts_on_destroy`, after a backup.

mod authentik;
pub mod config;
mod directory;
mod http;
mod keycloak;
mod plugin;

pub use config::{IdpConfig, Provider};
pub use http::RequestCounts;
pub use plugin::{PLUGIN, load_config};

use directory::{Account, Directory};
use futures::stream::{self, StreamExt as _};
use http::{Auth, Http};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use tenantry_core::kinds::kind;
use tenantry_core::{
    Action, Applied, Change, Content, Destroyed, Domain, ErrorKind, ObserveRequest, Observed, Owner, PlanProblem,
    ResourceId, Snapshot, Target, TargetError,
};

const NAME: &str = "idp";
/// Lookups in flight at once while observing.
const CONCURRENCY: usize = 8;

/// Why the idp target could not do something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Secret(#[from] tenantry_secret::SecretError),
    #[error("{0}")]
    Credentials(String),
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("{method} {path} failed with HTTP {status}: {message}")]
    Http { method: String, path: String, status: u16, message: String },
    #[error(
        "`{email}` has no account in {directory}; create the account (or fix the roster email), or set `create_users = true` in [idp]"
    )]
    MissingAccount { email: String, directory: String },
    #[error("group `{group}` does not exist in {directory}; it is created before its members, so apply again")]
    MissingGroup { group: String, directory: String },
    #[error("backup {}: {source}", path.display())]
    Backup {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn target_error(id: &ResourceId, error: Error) -> TargetError {
    let kind = match &error {
        Error::Unreachable { .. } => return TargetError::unavailable(error.to_string()),
        Error::Credentials(_) => ErrorKind::Forbidden,
        Error::Http { status: 401 | 403, .. } => ErrorKind::Forbidden,
        Error::Http { status, .. } if *status == 429 || *status >= 500 => ErrorKind::Unavailable,
        Error::Http { status: 409, .. } => ErrorKind::Conflict,
        Error::MissingAccount { .. } | Error::MissingGroup { .. } => ErrorKind::NotFound,
        _ => ErrorKind::Invalid,
    };
    let retryable = matches!(kind, ErrorKind::Unavailable) || matches!(error, Error::MissingGroup { .. });
    TargetError::rejected(id.to_string(), error.to_string()).with_kind(kind).retryable(retryable)
}

/// One group's listing: its name, and its id and members when it exists.
type Listing = (String, Option<(String, Vec<Account>)>);

/// What observe learnt and apply needs again: group ids and accounts by email.
#[derive(Debug, Default)]
struct Seen {
    groups: HashMap<String, String>,
    /// By lowercased email.
    accounts: HashMap<String, Account>,
}

/// The identity-provider target.
#[derive(Debug, Clone)]
pub struct IdpTarget {
    directory: Arc<dyn Directory>,
    http: Http,
    config: IdpConfig,
}

impl IdpTarget {
    /// Read the credentials (file or env) and check them with one read.
    pub async fn connect(config: &IdpConfig) -> Result<IdpTarget> {
        Self::connect_with(config, &|name| std::env::var(name).ok()).await
    }

    /// Like [`IdpTarget::connect`], with the environment given (tests never race on the process's).
    pub async fn connect_with(config: &IdpConfig, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Result<IdpTarget> {
        config.check().map_err(Error::Invalid)?;
        let url = config.url.trim_end_matches('/').to_string();
        let realm = config.realm.clone().unwrap_or_default();
        let auth = match (&config.client_id, &config.client_secret_file) {
            (Some(client_id), Some(file)) => Auth::ClientCredentials {
                token_url: format!("{url}/realms/{realm}/protocol/openid-connect/token"),
                client_id: client_id.clone(),
                secret: tenantry_secret::secret(
                    Some(file),
                    &[],
                    "identity-provider client secret file",
                    "client_secret_file",
                    env,
                )?,
                cached: tokio::sync::Mutex::default(),
            },
            _ => Auth::Static(tenantry_secret::secret(
                config.token_file.as_deref(),
                &["IDP_TOKEN"],
                "identity-provider token file",
                "token_file",
                env,
            )?),
        };
        let base = match config.provider {
            Provider::Keycloak => format!("{url}/admin/realms/{realm}"),
            Provider::Authentik => format!("{url}/api/v3"),
        };
        let http = Http::new(base, auth, config.ca_file.as_deref())?;
        let directory: Arc<dyn Directory> = match config.provider {
            Provider::Keycloak => Arc::new(keycloak::Keycloak { http: http.clone(), url, realm }),
            Provider::Authentik => Arc::new(authentik::Authentik { http: http.clone(), url }),
        };
        directory.check().await?;
        Ok(IdpTarget { directory, http, config: config.clone() })
    }

    pub fn config(&self) -> &IdpConfig {
        &self.config
    }

    /// Requests sent so far by this target (and its clones).
    pub fn request_counts(&self) -> RequestCounts {
        self.http.counts()
    }

    async fn observe_inner(&self, request: &ObserveRequest) -> Result<Observed> {
        let mut groups: BTreeSet<&str> = BTreeSet::new();
        let mut accounts: BTreeMap<String, (&ResourceId, &Owner)> = BTreeMap::new();
        let mut members: HashMap<(&str, String), (&ResourceId, &Owner)> = HashMap::new();
        for (id, owner) in &request.resources {
            match &*id.kind {
                kind::IDP_GROUP => {
                    groups.insert(&id.name);
                }
                kind::IDP_ACCOUNT => {
                    accounts.insert(id.name.to_ascii_lowercase(), (id, owner));
                }
                kind::IDP_GROUP_MEMBER => {
                    groups.insert(&id.scope);
                    members.insert((&id.scope, id.name.to_ascii_lowercase()), (id, owner));
                }
                _ => {}
            }
        }
        let desired: HashMap<&ResourceId, Value> = request.desired.iter().map(|(id, c)| (id, c.to_value())).collect();

        let mut observed = Observed::default();
        let mut seen = Seen::default();
        // One lookup and one (paged) member listing per group.
        let directory = &self.directory;
        let listings: Vec<Result<Listing>> = stream::iter(groups.into_iter().map(str::to_string))
            .map(move |group: String| async move {
                let Some(id) = directory.find_group(&group).await? else { return Ok((group, None)) };
                let found = directory.members(&id, &group).await?;
                Ok((group, Some((id, found))))
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for listing in listings {
            let (group, found) = listing?;
            let group = group.as_str();
            let Some((group_id, found)) = found else { continue };
            observed.insert(
                ResourceId::global(Domain::Idp, kind::IDP_GROUP, group),
                Content::from_value(&json!({ "name": group })),
                Some(Owner::Platform),
            );
            seen.groups.insert(group.to_string(), group_id);
            for account in found {
                let email = account.email.to_ascii_lowercase();
                if let Some((id, owner)) = members.get(&(group, email.clone())).copied() {
                    let content = json!({ "group": group, "email": id.name });
                    observed.insert((*id).clone(), Content::from_value(&content), Some((*owner).clone()));
                }
                seen.accounts.entry(email).or_insert(account);
            }
        }
        // Accounts no listing showed: one lookup each (none in a steady state).
        let unseen: Vec<String> =
            accounts.keys().filter(|email| !seen.accounts.contains_key(*email)).cloned().collect();
        let lookups: Vec<Result<Option<Account>>> = stream::iter(unseen)
            .map(move |email: String| async move { directory.find_account(&email).await })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for found in lookups {
            if let Some(account) = found? {
                seen.accounts.insert(account.email.to_ascii_lowercase(), account);
            }
        }
        let origins: HashMap<&ResourceId, tenantry_model::Span> =
            request.origins.iter().map(|(id, at)| (id, *at)).collect();
        for (email, (id, owner)) in &accounts {
            let Some(account) = seen.accounts.get(email) else {
                if desired.contains_key(*id) && !self.config.create_users {
                    observed.problems.push(self.missing_problem(id, owner, origins.get(*id).copied()));
                }
                continue;
            };
            let mut content = json!({
                "email": id.name,
                "enabled": account.enabled,
                "disable_on_cut": self.config.disable_on_cut,
            });
            // The login is compared only where the roster sets one (workstation users).
            if desired.get(*id).is_some_and(|d| d.get("login").is_some())
                && let Some(fields) = content.as_object_mut()
            {
                fields.insert("login".to_string(), json!(account.username));
            }
            observed.insert((*id).clone(), Content::from_value(&content), Some((*owner).clone()));
        }
        observed.snapshot = Snapshot::new(seen);
        Ok(observed)
    }

    fn missing_problem(&self, id: &ResourceId, owner: &Owner, at: Option<tenantry_model::Span>) -> PlanProblem {
        let user = owner.user().unwrap_or("-");
        let line = at.filter(|s| s.is_known()).map(|s| format!(" (roster line {}, column {})", s.line, s.column));
        PlanProblem {
            message: format!(
                "user `{user}`{}: `{}` has no account in {}; that user's identity-provider changes fail at apply",
                line.unwrap_or_default(),
                id.name,
                self.directory.describe()
            ),
            help: "create the account (or fix the roster email), or set `create_users = true` in [idp] to have tenantry create it".to_string(),
            blocking: false,
        }
    }

    async fn group_id(&self, name: &str, seen: Option<&Seen>) -> Result<Option<String>> {
        if let Some(id) = seen.and_then(|s| s.groups.get(name)) {
            return Ok(Some(id.clone()));
        }
        self.directory.find_group(name).await
    }

    async fn account(&self, email: &str, seen: Option<&Seen>) -> Result<Option<Account>> {
        if let Some(account) = seen.and_then(|s| s.accounts.get(&email.to_ascii_lowercase())) {
            return Ok(Some(account.clone()));
        }
        self.directory.find_account(email).await
    }

    fn missing_account(&self, email: &str) -> Error {
        Error::MissingAccount { email: email.to_string(), directory: self.directory.describe() }
    }

    async fn apply_inner(&self, change: &Change, seen: Option<&Seen>) -> Result<()> {
        let id = &change.id;
        let after = change.after.as_ref().map(Content::to_value).unwrap_or(Value::Null);
        let write = matches!(change.action, Action::Create | Action::Update | Action::Adopt | Action::Cut);
        match (&*id.kind, write, change.action) {
            (kind::IDP_GROUP, true, _) => {
                if self.group_id(&id.name, seen).await?.is_none() {
                    self.directory.create_group(&id.name).await?;
                }
                Ok(())
            }
            (kind::IDP_ACCOUNT, true, _) => {
                let login = after["login"].as_str();
                let enabled = after["enabled"].as_bool().unwrap_or(true);
                match self.account(&id.name, seen).await? {
                    Some(account) => {
                        let rename = login.filter(|l| *l != account.username);
                        if account.enabled != enabled || rename.is_some() {
                            self.directory.update_account(&account, enabled, rename).await?;
                        }
                        Ok(())
                    }
                    None if self.config.create_users && change.action == Action::Create => {
                        self.directory.create_account(login.unwrap_or(&id.name), &id.name).await.map(drop)
                    }
                    None => Err(self.missing_account(&id.name)),
                }
            }
            (kind::IDP_GROUP_MEMBER, true, _) => {
                let directory = self.directory.describe();
                let group = self
                    .group_id(&id.scope, seen)
                    .await?
                    .ok_or_else(|| Error::MissingGroup { group: id.scope.to_string(), directory })?;
                let account = self.account(&id.name, seen).await?.ok_or_else(|| self.missing_account(&id.name))?;
                self.directory.add_member(&group, &account.id).await
            }
            (kind::IDP_GROUP_MEMBER, false, Action::Delete) => {
                let (Some(group), Some(account)) =
                    (self.group_id(&id.scope, seen).await?, self.account(&id.name, seen).await?)
                else {
                    return Ok(());
                };
                self.directory.remove_member(&group, &account.id).await
            }
            (_, false, Action::Delete) => Err(Error::Invalid(format!(
                "the idp target never deletes {} `{}`; remove it in the identity provider by hand if it must go",
                id.kind, id.name
            ))),
            (_, false, _) => Ok(()),
            (other, true, _) => Err(Error::Invalid(format!("the idp target does not manage kind `{other}`"))),
        }
    }

    async fn destroy_inner(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> Result<Destroyed> {
        let mut destroyed = Destroyed::default();
        for id in resources.iter().filter(|id| &*id.kind == kind::IDP_GROUP_MEMBER) {
            if let (Some(group), Some(account)) =
                (self.group_id(&id.scope, None).await?, self.account(&id.name, None).await?)
            {
                self.directory.remove_member(&group, &account.id).await?;
            }
            destroyed.removed.push(id.clone());
        }
        for id in resources.iter().filter(|id| &*id.kind == kind::IDP_ACCOUNT) {
            destroyed.removed.push(id.clone());
            let Some(account) = self.account(&id.name, None).await? else { continue };
            if !self.config.delete_accounts_on_destroy {
                destroyed.notes.push(format!(
                    "account `{}` kept in {} (set delete_accounts_on_destroy = true in [idp] to delete accounts)",
                    id.name,
                    self.directory.describe()
                ));
                continue;
            }
            let export = self.directory.export_account(&account).await?;
            let bytes = serde_json::to_vec_pretty(&export).map_err(|e| Error::Invalid(e.to_string()))?;
            let path = backups
                .write(&format!("idp-{user}.json"), &bytes)
                .map_err(|source| Error::Backup { path: backups.dir().join(format!("idp-{user}.json")), source })?;
            destroyed.backups.push(path);
            self.directory.delete_account(&account).await?;
            destroyed.notes.push(format!("account `{}` deleted from {}", id.name, self.directory.describe()));
        }
        Ok(destroyed)
    }
}

#[async_trait::async_trait]
impl Target for IdpTarget {
    fn name(&self) -> &str {
        NAME
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Idp]
    }

    fn describe(&self, change: &Change) -> Vec<String> {
        let directory = self.directory.describe();
        let id = &change.id;
        match (&*id.kind, change.action) {
            (kind::IDP_GROUP, Action::Create) => vec![format!("create group `{}` in {directory}", id.name)],
            (kind::IDP_ACCOUNT, Action::Create) if self.config.create_users => {
                let after = change.after.as_ref().map(Content::to_value).unwrap_or(Value::Null);
                let login = after["login"].as_str().unwrap_or(&id.name).to_string();
                vec![format!(
                    "create account `{login}` with email `{}` in {directory}, without a password: usable once the person sets one",
                    id.name
                )]
            }
            (kind::IDP_ACCOUNT, Action::Create) => {
                vec![format!("fails: `{}` has no account in {directory} and create_users is off", id.name)]
            }
            (kind::IDP_ACCOUNT, Action::Cut) => vec![format!("disable account `{}` in {directory}", id.name)],
            (kind::IDP_GROUP_MEMBER, Action::Delete) => {
                vec![format!("remove `{}` from group `{}` in {directory}", id.name, id.scope)]
            }
            _ => Vec::new(),
        }
    }

    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        self.observe_inner(request).await.map_err(|e| TargetError::unavailable(e.to_string()))
    }

    async fn apply(&self, change: &Change, snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        self.apply_inner(change, snapshot.get::<Seen>())
            .await
            .map(|()| Applied::done())
            .map_err(|e| target_error(&change.id, e))
    }

    async fn destroy(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> tenantry_core::target::Result<Destroyed> {
        self.destroy_inner(user, resources, backups).await.map_err(|e| match e {
            Error::Backup { path, source } => TargetError::io(format!("writing the backup {}", path.display()), source),
            other => TargetError::other(other.to_string()),
        })
    }
}
