//! The destroy stage (SPEC §6) on Vault: back up everything the user has —
//! policy text, entity, aliases, deployer roles and every current secret of
//! their KV v2 subtree — to a 0600 file, fsynced, and only then delete it.

use crate::kv::subtree;
use crate::project::{claims, policy_mark, project_role};
use crate::{Error, Result, VaultTarget};
use serde_json::json;
use std::path::PathBuf;
use tenantry_core::marks::{METADATA, Mark};
use tenantry_core::{Backups, Domain, Owner, ResourceId};

/// What the destroy stage did for one user.
#[derive(Debug, Clone, Default)]
pub struct DestroyReport {
    /// The backup written before anything was removed.
    pub backup: PathBuf,
    /// Ids now gone.
    pub removed: Vec<ResourceId>,
    /// KV v2 secrets backed up and deleted (metadata and all versions).
    pub secrets: usize,
    /// Anything the admin should know, one line each.
    pub notes: Vec<String>,
}

impl VaultTarget {
    /// Destroy everything this platform manages in Vault for `user`: their
    /// policy, entity (and its aliases), deployer roles (found by their
    /// marks: this platform's, or an earlier version's) and the KV subtree
    /// `<kv_mount>/<user>`. The backup is written to `backups` first;
    /// nothing is deleted if it cannot be written.
    pub async fn destroy_user(&self, user: &str, backups: &dyn Backups) -> Result<DestroyReport> {
        let owner = Owner::User(user.to_string());
        let mut ids = Vec::new();
        let policy = format!("namespace-owner-{user}");
        if let Some(data) = self.client.read(&format!("sys/policies/acl/{policy}")).await?
            && claims(&policy_mark(data["policy"].as_str().unwrap_or_default(), &self.platform), &owner)
        {
            ids.push(ResourceId::global(Domain::Vault, "Policy", &policy));
        }
        if let Some(entity) = self.client.read(&format!("identity/entity/name/{user}")).await?
            && claims(
                &METADATA.read(entity["metadata"].as_object().unwrap_or(&Default::default()), &self.platform),
                &owner,
            )
        {
            ids.push(ResourceId::global(Domain::Vault, "Entity", user));
        }
        let mount = self.config.kubernetes_secrets_mount.trim_end_matches('/').to_string();
        let (roles, _) = self.client.list(&format!("{mount}/roles")).await?;
        for role in roles {
            if let Some(data) = self.client.read(&format!("{mount}/roles/{role}")).await?
                && claims(&project_role(&role, &data, &self.platform).1, &owner)
            {
                ids.push(ResourceId::new(Domain::Vault, "KubernetesRole", &mount, &role));
            }
        }
        self.destroy_resources(user, &ids, backups).await
    }

    /// Back up, then remove, `resources` of `user` and the user's KV subtree.
    pub(crate) async fn destroy_resources(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn Backups,
    ) -> Result<DestroyReport> {
        let kv_mount = self.config.kv_mount.trim_end_matches('/').to_string();
        let mut policies = serde_json::Map::new();
        let mut roles = serde_json::Map::new();
        let mut entities = serde_json::Map::new();
        let mut aliases = Vec::new();
        // Marked as another platform's since it was inventoried: not this platform's to destroy.
        let mut theirs: Vec<(&ResourceId, String)> = Vec::new();
        for id in resources {
            match &*id.kind {
                "Policy" => {
                    if let Some(data) = self.client.read(&format!("sys/policies/acl/{}", id.name)).await? {
                        if let Mark::Foreign { platform } =
                            policy_mark(data["policy"].as_str().unwrap_or_default(), &self.platform)
                        {
                            theirs.push((id, platform));
                            continue;
                        }
                        policies.insert(id.name.to_string(), data["policy"].clone());
                    }
                }
                "Entity" => {
                    if let Some(data) = self.client.read(&format!("identity/entity/name/{}", id.name)).await? {
                        let metadata = data["metadata"].as_object().cloned().unwrap_or_default();
                        if let Mark::Foreign { platform } = METADATA.read(&metadata, &self.platform) {
                            theirs.push((id, platform));
                            continue;
                        }
                        aliases.extend(data["aliases"].as_array().cloned().unwrap_or_default());
                        entities.insert(id.name.to_string(), data);
                    }
                }
                "KubernetesRole" => {
                    let path = format!("{}/roles/{}", id.scope, id.name);
                    if let Some(data) = self.client.read(&path).await? {
                        if let Mark::Foreign { platform } = project_role(&id.name, &data, &self.platform).1 {
                            theirs.push((id, platform));
                            continue;
                        }
                        roles.insert(path, data);
                    }
                }
                _ => {}
            }
        }
        // The KV subtree is the one the user's policy grants: another
        // platform's policy means another platform's user, and their secrets.
        let policy = self.client.read(&format!("sys/policies/acl/namespace-owner-{user}")).await?;
        let granted_by = policy.map(|data| policy_mark(data["policy"].as_str().unwrap_or_default(), &self.platform));
        let secrets = match granted_by {
            Some(Mark::Foreign { .. }) => Default::default(),
            _ => subtree(&self.client, &kv_mount, user).await?,
        };
        let resources: Vec<&ResourceId> =
            resources.iter().filter(|id| !theirs.iter().any(|(other, _)| other == id)).collect();
        let backup = json!({
            "format": "tenantry-vault-backup/1",
            "user": user,
            "address": self.client.address(),
            "policies": policies,
            "entities": entities,
            "aliases": aliases,
            "kubernetes_roles": roles,
            "kv": { "mount": kv_mount, "secrets": secrets },
        });
        let bytes =
            serde_json::to_vec_pretty(&backup).map_err(|e| Error::Invalid(format!("encoding the backup: {e}")))?;
        let path = backups
            .write(&format!("vault-{user}.json"), &bytes)
            .map_err(|source| Error::Backup { path: backups.dir().to_path_buf(), source })?;

        let mut report = DestroyReport { backup: path, secrets: secrets.len(), ..DestroyReport::default() };
        for (id, platform) in &theirs {
            report.notes.push(format!(
                "{id}: left alone, it now carries the marks of the platform `{platform}` (another roster on this Vault)"
            ));
        }
        if let Some(Mark::Foreign { platform }) = &granted_by {
            report.notes.push(format!(
                "{kv_mount}/{user}: left alone, the policy granting it belongs to the platform `{platform}`"
            ));
        }
        // Roles and policies first, so nothing can mint or grant while the rest goes.
        for id in resources.iter().filter(|id| &*id.kind == "KubernetesRole") {
            self.client.delete(&format!("{}/roles/{}", id.scope, id.name)).await?;
            report.removed.push((*id).clone());
        }
        for id in resources.iter().filter(|id| &*id.kind == "Policy") {
            self.client.delete(&format!("sys/policies/acl/{}", id.name)).await?;
            report.removed.push((*id).clone());
        }
        for alias in &aliases {
            if let Some(alias_id) = alias["id"].as_str() {
                self.client.delete(&format!("identity/entity-alias/id/{alias_id}")).await?;
            }
        }
        for id in resources.iter().filter(|id| &*id.kind == "Entity") {
            self.client.delete(&format!("identity/entity/name/{}", id.name)).await?;
            report.removed.push((*id).clone());
        }
        // Usually gone with the entity; one that moved elsewhere is deleted only if it is still ours.
        let owner = Owner::User(user.to_string());
        for id in resources.iter().filter(|id| &*id.kind == "EntityAlias") {
            match self.delete_alias(&id.scope, &id.name, &owner).await {
                Ok(()) => report.removed.push((*id).clone()),
                Err(Error::Conflict(message)) => report.notes.push(message),
                Err(other) => return Err(other),
            }
        }
        // Deleting the metadata removes every version of a secret.
        for secret in secrets.keys() {
            self.client.delete(&format!("{kv_mount}/metadata/{secret}")).await?;
        }
        if report.secrets > 0 {
            report.notes.push(format!("{} secret(s) under {kv_mount}/{user} deleted", report.secrets));
        }
        for id in resources {
            if !report.removed.contains(id) {
                report.notes.push(format!("{id}: not a kind the vault target manages; left alone"));
            }
        }
        Ok(report)
    }
}
