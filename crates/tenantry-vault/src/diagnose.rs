//! `tenantry doctor` on Vault: each user's entity exists, is enabled and
//! carries its policy (which exists); the OIDC alias (the email on the
//! OIDC auth mount) exists and sits on that entity, not on another one (the
//! auto-created entity of a first login, SPEC §8.2).

use crate::{Result, VaultTarget};
use serde_json::Value;
use tenantry_core::doctor::{CheckInfo, DiagnoseRequest, Diagnosis, Finding};
use tenantry_core::{Owner, Resource, kind};

pub const IDENTITY: &str = "vault-identity";

pub const CHECKS: &[CheckInfo] =
    &[CheckInfo { name: IDENTITY, about: "each user's Vault entity, its policy, and its alias on the OIDC mount" }];

fn apply_fix(owner: &Owner) -> String {
    match owner.user() {
        Some(user) => format!("tenantry apply --only {user}"),
        None => "tenantry apply".to_string(),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl VaultTarget {
    pub(crate) async fn diagnose_inner(&self, request: &DiagnoseRequest) -> Result<Diagnosis> {
        let mut diagnosis = Diagnosis::default();
        diagnosis.ran(IDENTITY);
        let mut accessors = None;
        for resource in &request.desired {
            match &*resource.id.kind {
                kind::ENTITY => self.check_entity(resource, &mut diagnosis).await?,
                kind::ENTITY_ALIAS => {
                    if accessors.is_none() {
                        accessors = Some(self.auth_accessors().await?);
                    }
                    let accessors = accessors.as_ref().map(|a| a.get(resource.id.scope.trim_matches('/')).cloned());
                    self.check_alias(resource, accessors.flatten(), &mut diagnosis).await?;
                }
                _ => {}
            }
        }
        Ok(diagnosis)
    }

    async fn check_entity(&self, resource: &Resource, diagnosis: &mut Diagnosis) -> Result<()> {
        let name = &resource.id.name;
        let owner = resource.owner.clone();
        let Some(entity) = self.client.read(&format!("identity/entity/name/{name}")).await? else {
            diagnosis.found(
                Finding::problem(
                    IDENTITY,
                    owner.clone(),
                    format!("Vault entity `{name}` does not exist"),
                    apply_fix(&owner),
                )
                .about(&resource.id)
                .evidence(format!("GET identity/entity/name/{name} → 404")),
            );
            return Ok(());
        };
        if entity["disabled"].as_bool() == Some(true) {
            diagnosis.found(
                Finding::problem(
                    IDENTITY,
                    owner.clone(),
                    format!("Vault entity `{name}` is disabled: its tokens are refused"),
                    apply_fix(&owner),
                )
                .about(&resource.id)
                .evidence(format!("entity {} disabled = true", entity["id"].as_str().unwrap_or("?"))),
            );
        }
        let have = strings(&entity["policies"]);
        for policy in strings(&resource.content.to_value()["policies"]) {
            if !have.contains(&policy) {
                diagnosis.found(
                    Finding::problem(
                        IDENTITY,
                        owner.clone(),
                        format!("Vault entity `{name}` lacks its policy `{policy}`"),
                        apply_fix(&owner),
                    )
                    .about(&resource.id)
                    .evidence(format!("policies: [{}], wanted [{policy}]", have.join(", "))),
                );
            } else if self.client.read(&format!("sys/policies/acl/{policy}")).await?.is_none() {
                diagnosis.found(
                    Finding::problem(
                        IDENTITY,
                        owner.clone(),
                        format!("policy `{policy}` of Vault entity `{name}` does not exist"),
                        apply_fix(&owner),
                    )
                    .about(&resource.id)
                    .evidence(format!("GET sys/policies/acl/{policy} → 404")),
                );
            }
        }
        Ok(())
    }

    async fn check_alias(
        &self,
        resource: &Resource,
        accessor: Option<String>,
        diagnosis: &mut Diagnosis,
    ) -> Result<()> {
        let (mount, email) = (resource.id.scope.trim_matches('/'), &resource.id.name);
        let owner = resource.owner.clone();
        let wanted_entity = resource.content.to_value()["entity"].as_str().unwrap_or_default().to_string();
        let Some(accessor) = accessor else {
            diagnosis.found(
                Finding::problem(
                    IDENTITY,
                    owner,
                    format!("the OIDC auth mount `{mount}` does not exist: nobody can sign in to Vault"),
                    format!("`bao auth enable -path={mount} oidc` and configure it, or set [vault] oidc_mount in tenantry.toml"),
                )
                .about(&resource.id)
                .evidence("GET sys/auth lists no such mount"),
            );
            return Ok(());
        };
        match self.entity_by_alias(email, &accessor).await? {
            None => diagnosis.found(
                Finding::problem(
                    IDENTITY,
                    owner.clone(),
                    format!("Vault entity `{wanted_entity}` has no alias `{email}` on the OIDC mount `{mount}`: the user's login gets an entity without policies"),
                    apply_fix(&owner),
                )
                .about(&resource.id)
                .evidence(format!("identity/lookup/entity alias_name={email} on {accessor} → none")),
            ),
            Some(holder) if holder["name"].as_str() != Some(wanted_entity.as_str()) => {
                let holder_name = holder["name"].as_str().unwrap_or("?");
                diagnosis.found(
                    Finding::problem(
                        IDENTITY,
                        owner.clone(),
                        format!("the alias `{email}` on `{mount}` sits on entity `{holder_name}`, not on `{wanted_entity}`"),
                        format!(
                            "{} moves it onto `{wanted_entity}` (an auto-created entity is removed when empty); if `{holder_name}` is someone else's, correct the email in the roster",
                            apply_fix(&owner)
                        ),
                    )
                    .about(&resource.id)
                    .evidence(format!(
                        "alias on entity {holder_name} ({}), policies [{}]",
                        holder["id"].as_str().unwrap_or("?"),
                        strings(&holder["policies"]).join(", ")
                    )),
                );
            }
            Some(_) => diagnosis.ran(IDENTITY),
        }
        Ok(())
    }
}
