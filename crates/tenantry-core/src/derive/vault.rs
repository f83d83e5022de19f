//! Vault/OpenBao: per-user ACL policy, identity entity and OIDC alias,
//! kubernetes secrets-engine deployer roles.

use super::{Facts, Item, Out, Settings};
use crate::content::Content;
use crate::id::{Domain, ResourceId};
use crate::resource::Owner;
use serde_json::json;
use std::fmt::Write as _;
use tenantry_model::{Roster, Tier, User};

pub fn policy_name(user: &str) -> String {
    format!("namespace-owner-{user}")
}

/// The ACL policy text (HCL) of a namespace-owner: their KV subtree and their deployer credentials.
pub fn policy_hcl(user: &User, settings: &Settings, withheld: &[String]) -> String {
    let kv = &settings.vault_kv_mount;
    let key = &user.key;
    let mut hcl = format!("# Managed by tenantry for user {key}; edits are overwritten on the next apply.\n");
    for path in [format!("{kv}/data/{key}"), format!("{kv}/data/{key}/*")] {
        let _ = writeln!(
            hcl,
            "path \"{path}\" {{\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n}}"
        );
    }
    for path in [format!("{kv}/metadata/{key}"), format!("{kv}/metadata/{key}/*")] {
        let _ = writeln!(hcl, "path \"{path}\" {{\n  capabilities = [\"list\", \"read\", \"delete\"]\n}}");
    }
    let namespaces =
        user.namespaces.iter().map(|n| (n.value.as_str(), false)).chain(withheld.iter().map(|n| (n.as_str(), true)));
    for (namespace, is_withheld) in namespaces {
        if is_withheld {
            let _ = writeln!(hcl, "# {namespace}: removed from the roster; kept until apply --allow-revoke");
        }
        // Minting credentials is a write to the creds endpoint; `read` alone cannot.
        let _ = writeln!(
            hcl,
            "path \"{}/creds/{namespace}-deployer\" {{\n  capabilities = [\"read\", \"update\"]\n}}",
            settings.vault_kubernetes_mount
        );
    }
    hcl
}

pub(super) fn derive(roster: &Roster, settings: &Settings, facts: &Facts, out: &mut Out) {
    for user in roster.users.values().filter(|u| u.tier.value == Tier::NamespaceOwner) {
        let owner = Owner::User(user.key.clone());
        let policy = policy_name(&user.key);
        let policy_id = ResourceId::global(Domain::Vault, "Policy", &policy);
        out.push(
            Item::new(policy_id.clone(), &owner, user.tier.span, "namespace-owners get their KV subtree and deployer credentials"),
            &json!({
                "name": policy,
                "policy": policy_hcl(user, settings, facts.withheld_namespaces.get(&user.key).map(Vec::as_slice).unwrap_or_default()),
            }),
        );
        let entity_id = ResourceId::global(Domain::Vault, "Entity", &user.key);
        out.push_content(
            Item::new(entity_id.clone(), &owner, user.span, "one identity entity per user, carrying their policies")
                .after(policy_id),
            Content::object(160, |o| {
                o.bool("disabled", false)
                    .object("metadata", |m| {
                        m.str("managed-by", "tenantry").str("tenantry-user", &user.key);
                    })
                    .str("name", &user.key)
                    .strs("policies", [policy.as_str()]);
            }),
        );
        out.push_content(
            Item::new(
                ResourceId::new(Domain::Vault, "EntityAlias", &settings.vault_oidc_mount, &user.email),
                &owner,
                user.email.span,
                "the OIDC login (email) maps to the user's entity; an existing alias is adopted",
            )
            .after(entity_id),
            Content::object(96, |o| {
                o.str("entity", &user.key).str("mount", &settings.vault_oidc_mount).str("name", &user.email.value);
            }),
        );
        for namespace in &user.namespaces {
            let role = format!("{}-deployer", namespace.value);
            out.push_content(
                Item::new(
                    ResourceId::new(Domain::Vault, "KubernetesRole", &settings.vault_kubernetes_mount, &role),
                    &owner,
                    namespace.span,
                    "Vault mints short-lived deployer tokens per namespace",
                ),
                Content::object(192, |o| {
                    o.strs("allowed_kubernetes_namespaces", [namespace.value.as_str()])
                        .str("kubernetes_role_name", &role)
                        .str("kubernetes_role_type", "Role")
                        .str("name", &role)
                        .str("token_default_ttl", "30m")
                        .str("token_max_ttl", "1h");
                }),
            );
        }
    }
}
