//! The `vault` target: applies the Vault/OpenBao side of the catalog
//! (SPEC §3): per-user ACL policies, identity entities, the OIDC alias that
//! maps a login to its entity, and kubernetes secrets-engine roles.
//!
//! Observes with one LIST per kind (policies, entities, aliases, roles) and
//! the mount tables (`sys/auth`, `sys/mounts`), then reads the requested
//! objects with bounded concurrency, projecting each onto the canonical
//! content the derivation produces, so an unchanged roster plans no change
//! and applies no write (`observe.rs`). Whose an object is comes from
//! tenantry's marks (`tenantry_core::marks`), which carry the platform:
//! entity metadata (`managed-by`, `tenantry-user`, `tenantry-platform`),
//! alias custom metadata (the same keys), the managed header line of a
//! policy (`… for user <user> on platform <name>; …`), and the
//! `extra_annotations` of a role (the Kubernetes label keys). Every write
//! sets this platform's marks; another platform's objects are never taken.
//!
//! An alias that already exists for the email on the OIDC mount — created
//! at the user's first login, attached to an auto-created entity — is
//! adopted (SPEC §8.2): moved onto the managed entity, never duplicated.

mod client;
pub mod config;
mod destroy;
mod diagnose;
mod kv;
mod observe;
mod plugin;
pub mod project;

pub use client::RequestCounts;
pub use config::{Token, VaultConfig};
pub use destroy::DestroyReport;
pub use diagnose::CHECKS;
pub use kv::{kv_version, read_kv_field};
pub use plugin::{PLUGIN, load_config};

use client::Client;
use futures::stream::{self, StreamExt as _};
use project::{claims, role_marks};
use serde_json::{Value, json};
use std::path::PathBuf;
use tenantry_core::marks::{METADATA, Mark};
use tenantry_core::{
    Action, Applied, Change, Content, Destroyed, Domain, ErrorKind, ObserveRequest, Observed, Owner, ResourceId,
    Snapshot, Target, TargetError,
};

const NAME: &str = "vault";
/// Reads in flight at once while observing: enough to hide latency, few
/// enough not to flood a shared Vault.
const READ_CONCURRENCY: usize = 16;

/// Why the vault target could not do something.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no Vault token: set `token_file` in the [vault] section of tenantry.toml, or export VAULT_TOKEN (or BAO_TOKEN)"
    )]
    NoToken,
    /// The token file is unreadable, shared with others, or empty.
    #[error(transparent)]
    TokenFile(#[from] tenantry_secret::SecretError),
    #[error(
        "Vault at {address} rejected the token ({reason}); log in again (`bao login` / `vault login`) or fix the token source"
    )]
    TokenRejected { address: String, reason: String },
    #[error("cannot reach Vault at {address}: {message}")]
    Unreachable { address: String, message: String },
    #[error("permission denied: {method} {path}; the token's policies do not allow it")]
    PermissionDenied { method: String, path: String },
    #[error(
        "{method} {path}: Vault has no such path ({message}); check that the mount exists (`bao secrets list`, `bao auth list`) and matches [vault] in tenantry.toml"
    )]
    NoRoute { method: String, path: String, message: String },
    #[error("{method} {path} failed with HTTP {status}: {message}")]
    Http { method: String, path: String, status: u16, message: String },
    /// A success whose answer is not what the call returns (a proxy's page,
    /// a wrong shape): never read as "absent" or "empty".
    #[error("{method} {path}: unexpected answer: {message}; is [vault] address a Vault server?")]
    Unexpected { method: String, path: String, message: String },
    #[error(
        "no KV v2 secret at {mount}/{path} (read {mount}/data/{path}); check the path, and that `{mount}` is a KV v2 mount"
    )]
    MissingPath { mount: String, path: String },
    #[error("the secret {mount}/{path} has no key `{key}`; it has: {}", if available.is_empty() { "no keys".to_string() } else { available.join(", ") })]
    MissingKey { mount: String, path: String, key: String, available: Vec<String> },
    #[error(
        "auth mount `{mount}` is not enabled in Vault; enable it (`bao auth enable -path={mount} oidc`) or set `oidc_mount` in [vault]"
    )]
    MissingAuthMount { mount: String },
    #[error("entity `{0}` does not exist yet; it is created before its alias, so apply again")]
    MissingEntity(String),
    #[error("{0}")]
    Conflict(String),
    #[error("backup {}: {source}", path.display())]
    Backup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn target_error(id: &ResourceId, error: Error) -> TargetError {
    match error {
        Error::Unreachable { .. } | Error::NoToken | Error::TokenRejected { .. } => {
            TargetError::unavailable(error.to_string())
        }
        other => {
            let kind = match &other {
                Error::PermissionDenied { .. } => ErrorKind::Forbidden,
                Error::NoRoute { .. }
                | Error::MissingPath { .. }
                | Error::MissingKey { .. }
                | Error::MissingAuthMount { .. }
                | Error::MissingEntity(_) => ErrorKind::NotFound,
                Error::Conflict(_) => ErrorKind::Conflict,
                Error::Http { status, .. } if *status == 429 || *status >= 500 => ErrorKind::Unavailable,
                _ => ErrorKind::Invalid,
            };
            // An entity created earlier in the same apply may lag; the alias is retried next run.
            let retryable = matches!(kind, ErrorKind::Unavailable) || matches!(other, Error::MissingEntity(_));
            TargetError::rejected(id.to_string(), other.to_string()).with_kind(kind).retryable(retryable)
        }
    }
}

fn unavailable(error: Error) -> TargetError {
    TargetError::unavailable(error.to_string())
}

/// The Vault/OpenBao target.
#[derive(Debug, Clone)]
pub struct VaultTarget {
    client: Client,
    config: VaultConfig,
    platform: String,
}

/// One alias as Vault's alias listing (or an entity read) shows it.
#[derive(Debug, Clone)]
struct AliasInfo {
    id: String,
    name: String,
    accessor: String,
    entity_id: String,
    custom_metadata: serde_json::Map<String, Value>,
}

impl AliasInfo {
    fn from_value(id: &str, value: &Value) -> AliasInfo {
        AliasInfo {
            id: value["id"].as_str().unwrap_or(id).to_string(),
            name: value["name"].as_str().unwrap_or_default().to_string(),
            accessor: value["mount_accessor"].as_str().unwrap_or_default().to_string(),
            entity_id: value["canonical_id"].as_str().unwrap_or_default().to_string(),
            custom_metadata: value["custom_metadata"].as_object().cloned().unwrap_or_default(),
        }
    }
}

impl VaultTarget {
    /// Read the token (file or env), and check it with `auth/token/lookup-self`.
    pub async fn connect(config: &VaultConfig) -> Result<VaultTarget> {
        let token = config.token()?;
        Self::connect_with_token(config, token).await
    }

    /// Like [`VaultTarget::connect`] with a token the caller already has.
    pub async fn connect_with_token(config: &VaultConfig, token: Token) -> Result<VaultTarget> {
        let client = Client::new(config, token)?;
        match client.get("auth/token/lookup-self").await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Error::TokenRejected {
                    address: client.address().to_string(),
                    reason: "auth/token/lookup-self not found: is this a Vault/OpenBao address?".to_string(),
                });
            }
            Err(Error::PermissionDenied { .. }) => {
                return Err(Error::TokenRejected {
                    address: client.address().to_string(),
                    reason: "invalid or expired token".to_string(),
                });
            }
            Err(other) => return Err(other),
        }
        Ok(VaultTarget { client, config: config.clone(), platform: tenantry_core::DEFAULT_PLATFORM.to_string() })
    }

    /// The platform (roster `platform.name`) whose objects this target
    /// manages: its marks are written on, and read from, every object. The
    /// composition root sets it from the roster when it connects the target.
    pub fn with_platform(mut self, platform: &str) -> Self {
        self.platform = platform.to_string();
        self
    }

    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// Requests sent so far by this target (and its clones).
    pub fn request_counts(&self) -> RequestCounts {
        self.client.counts()
    }

    async fn accessor(&self, mount: &str) -> Result<String> {
        self.auth_accessors()
            .await?
            .remove(mount.trim_end_matches('/'))
            .ok_or_else(|| Error::MissingAuthMount { mount: mount.to_string() })
    }

    /// Read many paths with bounded concurrency; absent ones are left out.
    async fn read_many<K: Send>(&self, paths: Vec<(K, String)>) -> Result<Vec<(K, Value)>> {
        let results: Vec<Result<Option<(K, Value)>>> = stream::iter(paths)
            .map(|(key, path)| async move { Ok(self.client.read(&path).await?.map(|data| (key, data))) })
            .buffer_unordered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut found = Vec::new();
        for result in results {
            if let Some(item) = result? {
                found.push(item);
            }
        }
        Ok(found)
    }

    async fn apply_inner(&self, change: &Change) -> Result<()> {
        let id = &change.id;
        let write = matches!(change.action, Action::Create | Action::Update | Action::Adopt | Action::Cut);
        let delete = change.action == Action::Delete;
        if !write && !delete {
            return Ok(());
        }
        let after = match (&change.after, write) {
            (Some(after), true) => after.to_value(),
            (None, true) => return Err(Error::Invalid(format!("{id} has no content to apply"))),
            _ => Value::Null,
        };
        match (&*id.kind, write) {
            ("Policy", true) => {
                let text = after["policy"].as_str().unwrap_or_default();
                self.client.put(&format!("sys/policies/acl/{}", id.name), &json!({ "policy": text })).await.map(|_| ())
            }
            ("Policy", false) => self.client.delete(&format!("sys/policies/acl/{}", id.name)).await,
            ("Entity", true) => self.write_entity(&id.name, &after, &change.owner).await,
            ("Entity", false) => self.client.delete(&format!("identity/entity/name/{}", id.name)).await,
            ("EntityAlias", true) => self.ensure_alias(&id.scope, &after, &change.owner).await,
            ("EntityAlias", false) => self.delete_alias(&id.scope, &id.name, &change.owner).await,
            ("KubernetesRole", true) => {
                let mut body = after.clone();
                if let Some(fields) = body.as_object_mut() {
                    fields.remove("name");
                    fields.insert("extra_annotations".to_string(), role_marks(&change.owner, &self.platform));
                }
                let path = format!("{}/roles/{}", id.scope.trim_end_matches('/'), id.name);
                self.client.post(&path, &body).await.map(|_| ())
            }
            ("KubernetesRole", false) => {
                self.client.delete(&format!("{}/roles/{}", id.scope.trim_end_matches('/'), id.name)).await
            }
            (kind, _) => Err(Error::Invalid(format!("the vault target does not manage kind `{kind}`"))),
        }
    }

    /// Create or update an entity by name, marked as this platform's.
    /// Metadata keys that are not tenantry's are kept: Vault replaces the
    /// whole map on write. The marks are set whatever the content says (a
    /// cut's content is the observed one, which may carry an earlier
    /// version's marks).
    async fn write_entity(&self, name: &str, after: &Value, owner: &Owner) -> Result<()> {
        let path = format!("identity/entity/name/{name}");
        let mut metadata = match self.client.read(&path).await? {
            Some(current) => current["metadata"].as_object().cloned().unwrap_or_default(),
            None => serde_json::Map::new(),
        };
        if let Some(ours) = after["metadata"].as_object() {
            metadata.extend(ours.clone());
        }
        metadata.extend(METADATA.write(owner, &self.platform));
        let mut policies = after["policies"].as_array().cloned().unwrap_or_default();
        if policies.is_empty() {
            // Vault ignores an empty list on update; a list of one empty
            // name clears the policies on Vault and OpenBao alike.
            policies.push(Value::String(String::new()));
        }
        let body = json!({
            "policies": policies,
            "metadata": metadata,
            "disabled": after["disabled"].as_bool().unwrap_or(false),
        });
        self.client.post(&path, &body).await.map(|_| ())
    }

    /// The entity holding the alias `name` on the mount with `accessor`, if any.
    async fn entity_by_alias(&self, name: &str, accessor: &str) -> Result<Option<Value>> {
        let body = json!({ "alias_name": name, "alias_mount_accessor": accessor });
        Ok(self.client.post("identity/lookup/entity", &body).await?.and_then(|v| v.get("data").cloned()))
    }

    /// Make `alias` (`{name, mount, entity}`) exist exactly once, on the
    /// managed entity. An alias Vault created at a first login (on an
    /// auto-created entity) is moved onto the managed entity, and the empty
    /// auto-created entity is removed: adopted, never duplicated (SPEC §8.2).
    async fn ensure_alias(&self, mount: &str, alias: &Value, owner: &Owner) -> Result<()> {
        let name = alias["name"].as_str().unwrap_or_default();
        let entity_name = alias["entity"].as_str().unwrap_or_default();
        let accessor = self.accessor(mount).await?;
        let entity = self
            .client
            .read(&format!("identity/entity/name/{entity_name}"))
            .await?
            .ok_or_else(|| Error::MissingEntity(entity_name.to_string()))?;
        let entity_id = entity["id"].as_str().unwrap_or_default().to_string();
        let on_mount = |data: &Value| -> Vec<AliasInfo> {
            data["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| AliasInfo::from_value("", a))
                .filter(|a| a.accessor == accessor)
                .collect()
        };
        let custom_metadata = METADATA.write(owner, &self.platform);
        let update = |alias_id: &str| {
            let body = json!({
                "name": name,
                "mount_accessor": accessor,
                "canonical_id": entity_id,
                "custom_metadata": custom_metadata,
            });
            let path = format!("identity/entity-alias/id/{alias_id}");
            async move { self.client.post(&path, &body).await.map(|_| ()) }
        };
        // Vault allows one alias per mount on an entity: an older alias of
        // ours on this mount (the email changed) is renamed or removed.
        let stale: Vec<AliasInfo> = on_mount(&entity).into_iter().filter(|a| a.name != name).collect();
        for alias in &stale {
            if !claims(&METADATA.read(&alias.custom_metadata, &self.platform), owner) {
                return Err(Error::Conflict(format!(
                    "entity `{entity_name}` already has alias `{}` on mount `{mount}`, which tenantry did not create; Vault allows one alias per mount on an entity — remove it or change the roster email",
                    alias.name
                )));
            }
        }

        match self.entity_by_alias(name, &accessor).await? {
            None => match stale.first() {
                Some(old) => update(&old.id).await,
                None => {
                    let body = json!({
                        "name": name,
                        "mount_accessor": accessor,
                        "canonical_id": entity_id,
                        "custom_metadata": custom_metadata,
                    });
                    self.client.post("identity/entity-alias", &body).await.map(|_| ())
                }
            },
            Some(holder) => {
                let holder_id = holder["id"].as_str().unwrap_or_default().to_string();
                let Some(found) = on_mount(&holder).into_iter().find(|a| a.name == name) else {
                    return Err(Error::Invalid(format!("Vault found alias `{name}` but did not return it")));
                };
                if holder_id == entity_id {
                    if METADATA.read(&found.custom_metadata, &self.platform) == Mark::Ours(owner.clone()) {
                        return Ok(());
                    }
                    return update(&found.id).await;
                }
                let holder_metadata = holder["metadata"].as_object().cloned().unwrap_or_default();
                let whose = match (
                    METADATA.read(&found.custom_metadata, &self.platform),
                    METADATA.read(&holder_metadata, &self.platform),
                ) {
                    (Mark::Foreign { platform }, _) | (_, Mark::Foreign { platform }) => {
                        Some(format!("the platform `{platform}` (another roster on this Vault)"))
                    }
                    (_, Mark::Ours(other) | Mark::Legacy(other)) if other != *owner => {
                        Some(format!("the entity of {other}"))
                    }
                    _ => None,
                };
                if let Some(whose) = whose {
                    return Err(Error::Conflict(format!(
                        "alias `{name}` on mount `{mount}` belongs to {whose}; tenantry will not move it"
                    )));
                }
                for old in &stale {
                    self.client.delete(&format!("identity/entity-alias/id/{}", old.id)).await?;
                }
                update(&found.id).await?;
                // The alias is adopted now; an auto-created shell left behind
                // is tidied up when possible, and never fails the adoption.
                if let Err(error) = self.remove_if_empty(&holder_id, &holder).await {
                    tracing::warn!(entity = %holder_id, %error, "could not remove the entity emptied by adopting its alias");
                }
                Ok(())
            }
        }
    }

    /// Remove an unmarked entity left with nothing (the shell a first login
    /// auto-created). One that has policies, metadata, groups or other
    /// aliases holds something an admin gave it and is kept.
    async fn remove_if_empty(&self, entity_id: &str, before: &Value) -> Result<()> {
        let Some(now) = self.client.read(&format!("identity/entity/id/{entity_id}")).await? else { return Ok(()) };
        let empty = |key: &str| now[key].as_array().is_none_or(|a| a.iter().all(|v| v == "" || v.is_null()));
        let no_metadata = now["metadata"].as_object().is_none_or(|m| m.is_empty());
        if empty("aliases") && empty("policies") && empty("direct_group_ids") && no_metadata {
            tracing::debug!(entity = %entity_id, name = %before["name"], "removing the entity emptied by adopting its alias");
            self.client.delete(&format!("identity/entity/id/{entity_id}")).await?;
        }
        Ok(())
    }

    async fn delete_alias(&self, mount: &str, name: &str, owner: &Owner) -> Result<()> {
        let accessor = match self.accessor(mount).await {
            Ok(accessor) => accessor,
            Err(Error::MissingAuthMount { .. }) => return Ok(()),
            Err(other) => return Err(other),
        };
        let Some(holder) = self.entity_by_alias(name, &accessor).await? else { return Ok(()) };
        let aliases = holder["aliases"].as_array().cloned().unwrap_or_default();
        for alias in aliases.iter().map(|a| AliasInfo::from_value("", a)) {
            if alias.name == name && alias.accessor == accessor {
                let holder_mark =
                    METADATA.read(holder["metadata"].as_object().unwrap_or(&serde_json::Map::new()), &self.platform);
                let alias_mark = METADATA.read(&alias.custom_metadata, &self.platform);
                let theirs = matches!(alias_mark, Mark::Foreign { .. });
                if theirs || !(claims(&alias_mark, owner) || claims(&holder_mark, owner)) {
                    return Err(Error::Conflict(format!(
                        "alias `{name}` on mount `{mount}` is not tenantry's for {owner}; not deleted"
                    )));
                }
                self.client.delete(&format!("identity/entity-alias/id/{}", alias.id)).await?;
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Target for VaultTarget {
    fn name(&self) -> &str {
        NAME
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Vault]
    }

    /// Spell out the two changes whose diff alone does not say what happens.
    fn describe(&self, change: &Change) -> Vec<String> {
        let value = |content: &Option<Content>, key: &str| {
            content.as_ref().and_then(|c| c.to_value()[key].as_str().map(String::from)).unwrap_or_default()
        };
        match (&*change.id.kind, change.action) {
            ("EntityAlias", Action::Adopt | Action::Update) => {
                let (from, to) = (value(&change.before, "entity"), value(&change.after, "entity"));
                if from.is_empty() || from == to {
                    return Vec::new();
                }
                vec![
                    format!(
                        "move alias `{}` on auth mount `{}` from entity `{from}` onto `{to}`",
                        change.id.name, change.id.scope
                    ),
                    format!(
                        "remove entity `{from}` if that leaves it empty (no aliases, policies, groups or metadata)"
                    ),
                ]
            }
            ("Entity", Action::Cut) => vec![format!(
                "disable entity `{}` and detach its policies; the policy text and the user's secrets are kept until the destroy stage",
                change.id.name
            )],
            _ => Vec::new(),
        }
    }

    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        self.observe_inner(request).await.map_err(unavailable)
    }

    async fn diagnose(
        &self,
        request: &tenantry_core::doctor::DiagnoseRequest,
    ) -> tenantry_core::target::Result<tenantry_core::doctor::Diagnosis> {
        self.diagnose_inner(request).await.map_err(unavailable)
    }

    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        self.apply_inner(change).await.map(|()| Applied::done()).map_err(|e| target_error(&change.id, e))
    }

    async fn destroy(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> tenantry_core::target::Result<Destroyed> {
        let report = self.destroy_resources(user, resources, backups).await.map_err(|e| match e {
            Error::Backup { path, source } => TargetError::io(format!("writing the backup {}", path.display()), source),
            other => TargetError::other(other.to_string()),
        })?;
        Ok(Destroyed { backups: vec![report.backup], removed: report.removed, notes: report.notes })
    }
}
