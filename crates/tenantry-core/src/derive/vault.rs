//! Vault/OpenBao: per-user ACL policy, identity entity and OIDC alias,
//! kubernetes secrets-engine deployer roles.

use super::{Facts, Item, Out, Settings};
use crate::content::Content;
use crate::id::{Domain, ResourceId};
use crate::marks::{MANAGED_BY_VALUE, METADATA, Mark};
use crate::resource::Owner;
use std::fmt::Write as _;
use tenantry_model::{Roster, Tier, User};

pub fn policy_name(user: &str) -> String {
    format!("namespace-owner-{user}")
}

/// How the first line of every policy tenantry writes starts: an ACL policy
/// has no metadata, so its marks are this header line (then the user key,
/// ` on platform <name>`, and `; edits are overwritten…`).
pub const POLICY_HEADER: &str = "# Managed by tenantry for user ";
/// Between the user key and the platform name in the header.
const POLICY_PLATFORM: &str = " on platform ";

/// The managed header line of `user`'s policy on `platform`.
pub fn policy_header(user: &str, platform: &str) -> String {
    format!("{POLICY_HEADER}{user}{POLICY_PLATFORM}{platform}; edits are overwritten on the next apply.")
}

/// What a policy's header line says, as seen by `platform`: the header of
/// an earlier version names the user without a platform (`Legacy`).
pub fn policy_mark(text: &str, platform: &str) -> Mark {
    let Some(rest) = text.lines().next().and_then(|line| line.strip_prefix(POLICY_HEADER)) else {
        return Mark::Unmarked;
    };
    let named = rest.split(';').next().unwrap_or_default();
    let (user, theirs) = match named.split_once(POLICY_PLATFORM) {
        Some((user, theirs)) => (user.trim(), Some(theirs.trim())),
        None => (named.trim(), None),
    };
    if user.is_empty() {
        return Mark::Unmarked;
    }
    let owner = Owner::User(user.to_string());
    match theirs {
        Some(theirs) if theirs == platform => Mark::Ours(owner),
        Some(theirs) => Mark::Foreign { platform: theirs.to_string() },
        None => Mark::Legacy(owner),
    }
}

/// The ACL policy text (HCL) of a namespace-owner on `platform`: their KV
/// subtree and their deployer credentials.
pub fn policy_hcl(user: &User, platform: &str, settings: &Settings, withheld: &[String]) -> String {
    let kv = &settings.vault_kv_mount;
    let key = &user.key;
    let mut hcl = policy_header(key, platform);
    hcl.push('\n');
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
        let withheld = facts.withheld_namespaces.get(&user.key).map(Vec::as_slice).unwrap_or_default();
        let hcl = policy_hcl(user, &roster.platform.name, settings, withheld);
        out.push_content(
            Item::new(
                policy_id.clone(),
                &owner,
                user.tier.span,
                "namespace-owners get their KV subtree and deployer credentials",
            ),
            Content::object(hcl.len() + 64, |o| {
                o.str("name", &policy).str("policy", &hcl);
            }),
        );
        let entity_id = ResourceId::global(Domain::Vault, "Entity", &user.key);
        out.push_content(
            Item::new(entity_id.clone(), &owner, user.span, "one identity entity per user, carrying their policies")
                .after(policy_id),
            Content::object(160, |o| {
                o.bool("disabled", false)
                    // Keys in order: managed-by, tenantry-platform, tenantry-user.
                    .object("metadata", |m| {
                        m.str(METADATA.managed_by, MANAGED_BY_VALUE)
                            .str(METADATA.platform, &roster.platform.name)
                            .str(METADATA.user, &user.key);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_header_names_user_and_platform_and_old_headers_read_as_legacy() {
        let alice = Owner::User("alice".to_string());
        let text = format!("{}\npath \"x\" {{}}\n", policy_header("alice", "homelab"));
        assert_eq!(policy_mark(&text, "homelab"), Mark::Ours(alice.clone()));
        assert_eq!(policy_mark(&text, "staging"), Mark::Foreign { platform: "homelab".to_string() });
        let old = "# Managed by tenantry for user alice; edits are overwritten on the next apply.\npath \"x\" {}";
        assert_eq!(policy_mark(old, "homelab"), Mark::Legacy(alice));
        assert_eq!(policy_mark("path \"x\" {}", "homelab"), Mark::Unmarked);
        assert_eq!(policy_mark("# Managed by tenantry for user ; x", "homelab"), Mark::Unmarked);
    }
}
