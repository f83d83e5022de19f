//! Every user's grants and why, from one derivation: the bulk form of
//! [`Session::explain`] for front ends that show everyone at once (the
//! portal builds its model from it once per roster or reconcile change).
//!
//! Besides the grants, a view carries what a person wants to read about
//! their access without knowing the catalog: the Vault policy's paths, the
//! workstation account, the quota tenantry sets. Each comes from the
//! resource tenantry applies (its content), not from a second derivation.

use crate::error::Result;
use crate::session::Session;
use crate::wire::origin_text;
use std::collections::{BTreeMap, HashMap};
use tenantry_core::{Domain, Resource, ResourceId, kind};
use tenantry_engine::RunRecord;
use tenantry_model::Tier;

/// One user, everything they get, and why.
#[derive(Debug, Clone)]
pub struct UserView {
    pub user: String,
    pub email: String,
    pub tier: Tier,
    /// The user's line in the roster.
    pub line: u32,
    pub namespaces: Vec<String>,
    pub domains: Vec<String>,
    /// The quota tenantry sets in each of the user's namespaces (defaults
    /// merged with the user's own), canonical quantities.
    pub quota: BTreeMap<String, String>,
    /// Sticky ports by pool (workstation users).
    pub ports: BTreeMap<String, u16>,
    pub workstation: Option<WorkstationView>,
    pub vault: Option<VaultView>,
    /// In id order (so grouped by domain).
    pub grants: Vec<GrantWhy>,
}

/// The account on the shared development host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkstationView {
    pub os_user: String,
    /// The web terminal's login name (dispatch maps it to the account).
    pub idp_user: String,
    pub home: String,
    pub shell: String,
    /// Supplementary groups of the user's tier.
    pub groups: Vec<String>,
    /// A parked account keeps its home and ports but cannot log in.
    pub parked: bool,
}

/// The user's Vault policy and the paths it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultView {
    pub policy: String,
    pub paths: Vec<VaultPath>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultPath {
    pub path: String,
    pub capabilities: Vec<String>,
}

/// One grant with its provenance (what `tenantry why` prints).
#[derive(Debug, Clone)]
pub struct GrantWhy {
    pub id: ResourceId,
    /// The catalog rule, in words.
    pub rule: &'static str,
    /// `roster.yaml:12:5`, or `None` when it came from defaults.
    pub origin: Option<String>,
    /// The roster line at `origin`.
    pub origin_line: Option<String>,
    /// The target that applies it, if one is configured.
    pub target: Option<String>,
}

impl Session {
    /// Every user's view, in roster key order, from one derivation (ports
    /// from the state, as `explain`).
    pub async fn user_views(&self) -> Result<Vec<UserView>> {
        let engine = self.engine().await?;
        let desired = engine.desired(self.roster()).await?;
        let routing = engine.routing();
        let source = &self.roster().source;
        let lines: Vec<&str> = self.roster_text().lines().collect();
        let mut owned: HashMap<&str, Vec<&Resource>> = HashMap::with_capacity(self.roster().users.len());
        for resource in desired.resources() {
            if let Some(user) = resource.owner.user() {
                owned.entry(user).or_default().push(resource);
            }
        }
        let views = self
            .roster()
            .users
            .values()
            .map(|person| {
                let resources = owned.remove(person.key.as_str()).unwrap_or_default();
                let grants = resources
                    .iter()
                    .map(|r| GrantWhy {
                        id: r.id.clone(),
                        rule: r.rule,
                        origin: origin_text(source, r.origin).as_str().map(str::to_string),
                        origin_line: r
                            .origin
                            .is_known()
                            .then(|| lines.get((r.origin.line as usize).saturating_sub(1)))
                            .flatten()
                            .map(|line| line.to_string()),
                        target: routing.target_for(r.id.domain).map(str::to_string),
                    })
                    .collect();
                UserView {
                    user: person.key.clone(),
                    email: person.email.value.clone(),
                    tier: person.tier.value,
                    line: person.span.line,
                    namespaces: person.namespaces.iter().map(|n| n.value.clone()).collect(),
                    domains: person.domains.iter().map(|d| d.value.clone()).collect(),
                    quota: person.quota.iter().map(|(k, q)| (k.clone(), q.value.canonical().to_string())).collect(),
                    ports: desired.ports.get(&person.key).cloned().unwrap_or_default(),
                    workstation: person.workstation.as_ref().map(|station| {
                        let account =
                            resources.iter().find(|r| r.id.domain == Domain::Host && &*r.id.kind == kind::ACCOUNT);
                        let content = account.map(|r| r.content.to_value()).unwrap_or_default();
                        let text =
                            |key: &str| content.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string();
                        WorkstationView {
                            os_user: station.os_user.value.clone(),
                            idp_user: station.idp_user.value.clone(),
                            home: text("home"),
                            shell: text("shell"),
                            groups: content
                                .get("groups")
                                .and_then(|g| serde_json::from_value(g.clone()).ok())
                                .unwrap_or_default(),
                            parked: station.parked,
                        }
                    }),
                    vault: resources.iter().find(|r| r.id.domain == Domain::Vault && &*r.id.kind == kind::POLICY).map(
                        |policy| {
                            let content = policy.content.to_value();
                            VaultView {
                                policy: content
                                    .get("name")
                                    .and_then(|v| v.as_str())
                                    .unwrap_or(&policy.id.name)
                                    .to_string(),
                                paths: policy_paths(content.get("policy").and_then(|v| v.as_str()).unwrap_or_default()),
                            }
                        },
                    ),
                    grants,
                }
            })
            .collect();
        Ok(views)
    }

    /// The most recent run recorded in the state database (an apply, a
    /// cut, a destroy), if any.
    pub async fn last_run(&self) -> Result<Option<RunRecord>> {
        let engine = self.engine().await?;
        let runs = engine.state_handle().call(|s| s.runs(1)).await?;
        Ok(runs.into_iter().next())
    }
}

/// The `path "…" { capabilities = [...] }` blocks of an ACL policy as
/// tenantry writes it (`tenantry_core::derive` vault policy text).
pub fn policy_paths(hcl: &str) -> Vec<VaultPath> {
    let mut paths = Vec::new();
    let mut current: Option<String> = None;
    for line in hcl.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("path \"") {
            current = rest.split('"').next().map(str::to_string);
        } else if let Some(list) = line.strip_prefix("capabilities = ")
            && let Some(path) = current.take()
        {
            let capabilities = serde_json::from_str(list).unwrap_or_default();
            paths.push(VaultPath { path, capabilities });
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SessionOptions;

    const ROSTER: &str = "platform:
  name: lab
  workstation: { tier_groups: { namespace-owner: [devs] } }
users:
  alice:
    email: alice@x.org
    tier: namespace-owner
    namespaces: [alice, alice-prod]
    quota: { pods: \"30\" }
    workstation: { os_user: alice }
  wizard: { email: w@x.org, tier: admin }
";

    fn session(dir: &std::path::Path) -> Session {
        std::fs::write(dir.join("roster.yaml"), ROSTER).unwrap();
        std::fs::write(dir.join("tenantry.toml"), "[local]\nout_dir = \"out\"\nstate = \"state.db\"\n").unwrap();
        let mut options = SessionOptions::new(dir.join("roster.yaml").display().to_string());
        options.config = Some(dir.join("tenantry.toml"));
        Session::open(options).unwrap()
    }

    #[tokio::test]
    async fn every_user_in_one_derivation_with_the_why_of_each_grant() {
        let dir = tempfile::tempdir().unwrap();
        let session = session(dir.path());
        let views = session.user_views().await.unwrap();
        assert_eq!(views.iter().map(|v| v.user.as_str()).collect::<Vec<_>>(), ["alice", "wizard"]);
        let alice = &views[0];
        // The same grants, rules and origins as `explain alice`.
        let explained = session.explain("alice").await.unwrap();
        assert_eq!(
            alice.grants.iter().map(|g| (g.id.to_string(), g.rule)).collect::<Vec<_>>(),
            explained.resources.iter().map(|g| (g.id.to_string(), g.rule)).collect::<Vec<_>>()
        );
        let quota =
            alice.grants.iter().find(|g| g.id.to_string() == "kubernetes/ResourceQuota/alice/user-quota").unwrap();
        assert!(quota.origin.as_deref().unwrap().contains("roster.yaml:9:"), "{:?}", quota.origin);
        assert_eq!(quota.origin_line.as_deref(), Some("    quota: { pods: \"30\" }"));
        assert_eq!(quota.target.as_deref(), Some("local"));
        assert_eq!(alice.quota.get("pods").map(String::as_str), Some("30"));
        assert_eq!(alice.quota.get("limits.memory").map(String::as_str), Some("8Gi"), "defaults merged");

        let vault = alice.vault.as_ref().unwrap();
        assert_eq!(vault.policy, "namespace-owner-alice");
        let listed: Vec<(&str, Vec<&str>)> = vault
            .paths
            .iter()
            .map(|p| (p.path.as_str(), p.capabilities.iter().map(String::as_str).collect()))
            .collect();
        let crud = vec!["create", "read", "update", "delete", "list"];
        assert_eq!(
            listed,
            vec![
                ("secret/data/alice", crud.clone()),
                ("secret/data/alice/*", crud),
                ("secret/metadata/alice", vec!["list", "read", "delete"]),
                ("secret/metadata/alice/*", vec!["list", "read", "delete"]),
                ("kubernetes/creds/alice-deployer", vec!["read", "update"]),
                ("kubernetes/creds/alice-prod-deployer", vec!["read", "update"]),
            ]
        );
        let station = alice.workstation.as_ref().unwrap();
        assert_eq!((station.home.as_str(), station.groups.clone()), ("/home/alice", vec!["devs".to_string()]));
        assert_eq!(alice.ports.keys().collect::<Vec<_>>(), ["browser", "terminal"]);
        assert!(views[1].vault.is_none() && views[1].workstation.is_none());
    }
}
