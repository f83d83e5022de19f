//! Observe: one LIST per kind (policies, entities, aliases, roles), the
//! mount tables (`sys/auth` for the aliases' accessor, `sys/mounts` for the
//! secrets engines), then one read per requested policy, entity and role.
//!
//! Every object is reported through its marks as seen by this platform
//! (`Observed::insert_marked`): another platform's and unmarked objects
//! only when the plan asked about their id. A mount the plan needs that
//! does not exist is a plan problem naming the fix, found here, before
//! anything is applied.

use crate::project::{project_alias, project_entity, project_policy, project_role};
use crate::{AliasInfo, Error, Result, VaultTarget};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tenantry_core::marks::{METADATA, Mark};
use tenantry_core::{Content, Domain, ObserveRequest, Observed, PlanProblem, ResourceId};

/// What one observe read is for.
#[derive(Debug)]
enum ReadOf {
    Policy(String),
    Entity(String),
    /// Mount and role name.
    Role(String, String),
}

/// A secrets engine as `sys/mounts` lists it.
#[derive(Debug, Clone)]
struct Engine {
    kind: String,
    /// `options.version` of a KV mount (`"2"` for KV v2).
    version: Option<String>,
}

/// Mount path without slashes, as ids and `[vault]` name it.
fn bare(mount: &str) -> &str {
    mount.trim_matches('/')
}

impl VaultTarget {
    /// Auth mount path (without the trailing `/`) → accessor.
    pub(crate) async fn auth_accessors(&self) -> Result<HashMap<String, String>> {
        let answer = self.client.get("sys/auth").await?.unwrap_or(Value::Null);
        Ok(mount_table(&answer, "sys/auth", "token")?
            .into_iter()
            .filter_map(|(path, mount)| Some((path, mount.get("accessor")?.as_str()?.to_string())))
            .collect())
    }

    /// Secrets engines by path (without the trailing `/`).
    async fn secret_engines(&self) -> Result<HashMap<String, Engine>> {
        let answer = self.client.get("sys/mounts").await?.unwrap_or(Value::Null);
        Ok(mount_table(&answer, "sys/mounts", "sys")?
            .into_iter()
            .map(|(path, mount)| {
                let kind = mount["type"].as_str().unwrap_or_default().to_string();
                let version = mount["options"]["version"].as_str().map(str::to_string);
                (path, Engine { kind, version })
            })
            .collect())
    }

    pub(crate) async fn observe_inner(&self, request: &ObserveRequest) -> Result<Observed> {
        let platform = self.platform.as_str();
        let requested: HashSet<&ResourceId> = request.resources.iter().map(|(id, _)| id).collect();
        let mut policies = BTreeSet::new();
        let mut entities = BTreeSet::new();
        let mut alias_mounts = BTreeSet::new();
        let mut role_mounts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (id, _) in &request.resources {
            match &*id.kind {
                "Policy" => {
                    policies.insert(id.name.to_string());
                }
                "Entity" => {
                    entities.insert(id.name.to_string());
                }
                "EntityAlias" => {
                    alias_mounts.insert(id.scope.to_string());
                }
                "KubernetesRole" => {
                    role_mounts.entry(id.scope.to_string()).or_default().insert(id.name.to_string());
                }
                _ => {}
            }
        }
        let need_entities = !entities.is_empty() || !alias_mounts.is_empty();
        // The secrets engines matter to roles (their mount) and policies (the KV mount they grant).
        let need_engines = !role_mounts.is_empty() || !policies.is_empty();
        let empty = || async { Ok((Vec::new(), serde_json::Map::new())) };
        // One listing per kind and the mount tables, all at once.
        let (policy_list, entity_list, alias_list, accessors, engines, role_lists) = futures::join!(
            async { if policies.is_empty() { empty().await } else { self.client.list("sys/policies/acl").await } },
            async { if need_entities { self.client.list("identity/entity/id").await } else { empty().await } },
            async {
                if alias_mounts.is_empty() { empty().await } else { self.client.list("identity/entity-alias/id").await }
            },
            async { if alias_mounts.is_empty() { Ok(HashMap::new()) } else { self.auth_accessors().await } },
            async { if need_engines { self.secret_engines().await.map(Some) } else { Ok(None) } },
            futures::future::join_all(role_mounts.keys().map(|mount| async move {
                (mount.clone(), self.client.list(&format!("{}/roles", bare(mount))).await)
            })),
        );
        let (policy_names, _) = policy_list?;
        let (_, entity_info) = entity_list?;
        let (_, alias_info) = alias_list?;
        let accessors = accessors?;

        let mut observed = Observed::default();
        self.check_mounts(request, &accessors, engines, &mut observed.problems)?;

        // Then read what was asked for and exists.
        let existing: BTreeSet<&str> = policy_names.iter().map(String::as_str).collect();
        let mut reads: Vec<(ReadOf, String)> = policies
            .iter()
            .filter(|name| existing.contains(name.as_str()))
            .map(|name| (ReadOf::Policy(name.clone()), format!("sys/policies/acl/{name}")))
            .collect();
        let entity_names: HashMap<String, String> = entity_info
            .iter()
            .filter_map(|(id, info)| info["name"].as_str().map(|name| (id.clone(), name.to_string())))
            .collect();
        let existing_entities: BTreeSet<&str> = entity_names.values().map(String::as_str).collect();
        reads.extend(
            entities
                .iter()
                .filter(|name| existing_entities.contains(name.as_str()))
                .map(|name| (ReadOf::Entity(name.clone()), format!("identity/entity/name/{name}"))),
        );
        for (mount, listed) in role_lists {
            let (names, _) = listed?;
            let names: BTreeSet<String> = names.into_iter().collect();
            for role in role_mounts.get(&mount).into_iter().flatten().filter(|r| names.contains(*r)) {
                let mount = bare(&mount);
                reads.push((ReadOf::Role(mount.to_string(), role.clone()), format!("{mount}/roles/{role}")));
            }
        }

        // Only requested ids are read, so each is reported whatever its marks say.
        let mut entity_marks: HashMap<String, Mark> = HashMap::new();
        for (read, data) in self.read_many(reads).await? {
            match read {
                ReadOf::Policy(name) => {
                    let text = data["policy"].as_str().or_else(|| data["rules"].as_str()).unwrap_or_default();
                    let (content, mark) = project_policy(&name, text, platform);
                    let id = ResourceId::global(Domain::Vault, "Policy", &name);
                    observed.insert_marked(id, Content::from_value(&content), mark, true);
                }
                ReadOf::Entity(name) => {
                    let (content, mark) = project_entity(&data, platform);
                    if let Some(id) = data["id"].as_str() {
                        entity_marks.insert(id.to_string(), mark.clone());
                    }
                    let id = ResourceId::global(Domain::Vault, "Entity", &name);
                    observed.insert_marked(id, Content::from_value(&content), mark, true);
                }
                ReadOf::Role(mount, role) => {
                    let (content, mark) = project_role(&role, &data, platform);
                    let id = ResourceId::new(Domain::Vault, "KubernetesRole", &mount, &role);
                    observed.insert_marked(id, Content::from_value(&content), mark, true);
                }
            }
        }

        // Aliases come whole from the one listing: this platform's wherever
        // they are (a leftover on a mount no longer configured), the rest
        // only when asked about.
        let mounts_by_accessor: HashMap<&str, &str> =
            accessors.iter().map(|(mount, accessor)| (accessor.as_str(), mount.as_str())).collect();
        for (id, info) in &alias_info {
            let alias = AliasInfo::from_value(id, info);
            let Some(mount) = mounts_by_accessor.get(alias.accessor.as_str()) else { continue };
            let id = ResourceId::new(Domain::Vault, "EntityAlias", mount, &alias.name);
            let mark = match METADATA.read(&alias.custom_metadata, platform) {
                // An unmarked alias on an entity read above is as that entity's marks say.
                Mark::Unmarked => entity_marks.get(&alias.entity_id).cloned().unwrap_or(Mark::Unmarked),
                marked => marked,
            };
            let entity = entity_names.get(&alias.entity_id).cloned().unwrap_or_else(|| alias.entity_id.clone());
            let content = Content::from_value(&project_alias(&alias.name, mount, &entity));
            let asked = requested.contains(&id);
            observed.insert_marked(id, content, mark, asked);
        }
        Ok(observed)
    }

    /// The mounts the roster's objects live on, checked against Vault's
    /// mount tables: a missing one is a problem for the plan (not blocking:
    /// only the changes on it fail at apply, with the same advice).
    fn check_mounts(
        &self,
        request: &ObserveRequest,
        accessors: &HashMap<String, String>,
        engines: Result<Option<HashMap<String, Engine>>>,
        problems: &mut Vec<PlanProblem>,
    ) -> Result<()> {
        let mut wanted: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for (id, _) in &request.desired {
            *wanted.entry((&*id.kind, bare(&id.scope))).or_default() += 1;
        }
        let count = |kind: &str| wanted.iter().filter(|((k, _), _)| *k == kind).map(|(_, n)| n).sum::<usize>();
        for ((kind, mount), n) in &wanted {
            if *kind == "EntityAlias" && !accessors.contains_key(*mount) {
                problems.push(PlanProblem {
                    message: format!(
                        "Vault auth mount `{mount}` does not exist: the login aliases of {n} user(s) cannot be written, so their logins would not reach their entities"
                    ),
                    help: format!(
                        "enable it (`bao auth enable -path={mount} oidc`, then configure it), or set `oidc_mount` in [vault] of tenantry.toml"
                    ),
                    blocking: false,
                });
            }
        }
        let engines = match engines {
            Ok(Some(engines)) => engines,
            Ok(None) => return Ok(()),
            Err(Error::PermissionDenied { .. }) => {
                problems.push(PlanProblem {
                    message: "the Vault token may not read `sys/mounts`, so the secrets engines the roster needs are not checked before apply".to_string(),
                    help: "add `path \"sys/mounts\" { capabilities = [\"read\"] }` to the token's policy (see tenantry-vault-policy.hcl)".to_string(),
                    blocking: false,
                });
                return Ok(());
            }
            Err(other) => return Err(other),
        };
        for ((kind, mount), n) in &wanted {
            if *kind != "KubernetesRole" {
                continue;
            }
            let message = match engines.get(*mount) {
                None => {
                    format!("Vault secrets engine `{mount}` does not exist: {n} deployer role(s) cannot be written")
                }
                Some(engine) if engine.kind != "kubernetes" => format!(
                    "Vault mount `{mount}` is a `{}` secrets engine, not `kubernetes`: {n} deployer role(s) cannot be written",
                    engine.kind
                ),
                Some(_) => continue,
            };
            problems.push(PlanProblem {
                message,
                help: format!(
                    "enable it (`bao secrets enable -path={mount} kubernetes`, then write `{mount}/config`), or set `kubernetes_secrets_mount` in [vault] of tenantry.toml"
                ),
                blocking: false,
            });
        }
        let kv = bare(&self.config.kv_mount);
        let policies = count("Policy");
        if policies > 0 {
            let message = match engines.get(kv) {
                None => Some(format!(
                    "Vault KV mount `{kv}` does not exist: the policies of {policies} user(s) grant `{kv}/data/<user>`, where nothing can be stored"
                )),
                Some(engine) if engine.kind != "kv" || engine.version.as_deref() != Some("2") => Some(format!(
                    "Vault mount `{kv}` is not a KV version 2 engine (type `{}`, version {}): the users' policies grant KV v2 paths (`{kv}/data/<user>`)",
                    engine.kind,
                    engine.version.as_deref().unwrap_or("none")
                )),
                Some(_) => None,
            };
            if let Some(message) = message {
                problems.push(PlanProblem {
                    message,
                    help: format!(
                        "enable it (`bao secrets enable -path={kv} kv-v2`, or `bao kv enable-versioning {kv}`), or set `kv_mount` in [vault] of tenantry.toml"
                    ),
                    blocking: false,
                });
            }
        }
        Ok(())
    }
}

/// A mount table (`sys/auth`, `sys/mounts`) by path without the trailing
/// `/`. Newer servers put the mounts under `data`, older ones at the top
/// level too. Every table has mounts Vault cannot be without (`always`:
/// `token` among auth methods, `sys` among engines); a table without it is
/// not one — read as empty, every alias would be planned anew.
fn mount_table(answer: &Value, path: &str, always: &str) -> Result<BTreeMap<String, Value>> {
    let mounts = answer.get("data").filter(|d| d.is_object()).unwrap_or(answer);
    let table: BTreeMap<String, Value> = mounts
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, mount)| mount.is_object())
        .map(|(path, mount)| (path.trim_end_matches('/').to_string(), mount.clone()))
        .collect();
    if !table.contains_key(always) {
        return Err(Error::Unexpected {
            method: "GET".to_string(),
            path: path.to_string(),
            message: format!("not a mount table: it has no `{always}/` mount"),
        });
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::mount_table;
    use serde_json::json;

    #[test]
    fn a_mount_table_must_hold_the_mount_vault_cannot_be_without() {
        let auth =
            json!({ "data": { "token/": { "accessor": "auth_token_1" }, "oidc/": { "accessor": "auth_oidc_2" } } });
        assert_eq!(mount_table(&auth, "sys/auth", "token").unwrap().len(), 2);
        // Older servers also (or only) put the mounts at the top level.
        let top = json!({ "token/": { "accessor": "auth_token_1" }, "request_id": "x" });
        assert!(mount_table(&top, "sys/auth", "token").unwrap().contains_key("token"));
        for odd in [json!(null), json!({ "data": {} }), json!({ "data": { "oidc/": { "accessor": "a" } } })] {
            let error = mount_table(&odd, "sys/auth", "token").unwrap_err().to_string();
            assert!(error.contains("not a mount table") && error.contains("token/"), "{error}");
        }
    }
}
