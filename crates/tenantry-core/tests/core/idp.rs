//! Identity-provider groups and RBAC by group (issue #17), in memory.

use super::*;

const TEAM: &str = "platform:\n  idp:\n    tier_groups: { namespace-owner: [owners], power-user: [readers] }\n    workstation_group: \"T3 Users\"\nusers:\n  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], groups: [billing], workstation: {} }\n  emo: { email: emo@example.org, tier: power-user }\n  wizard: { email: wizard@example.org, tier: admin }\n";

#[test]
fn each_user_gets_the_tiers_the_workstations_and_their_own_groups() {
    let desired = derive(&roster(TEAM), &Settings::default(), &Facts::default());
    let idp: BTreeSet<String> = ids(&desired).into_iter().filter(|id| id.starts_with("idp/")).collect();
    let expected: BTreeSet<String> = [
        "idp/Group/-/owners",
        "idp/Group/-/readers",
        "idp/Group/-/T3 Users",
        "idp/Group/-/billing",
        "idp/Account/-/alice@example.org",
        "idp/Account/-/emo@example.org",
        "idp/GroupMember/owners/alice@example.org",
        "idp/GroupMember/T3 Users/alice@example.org",
        "idp/GroupMember/billing/alice@example.org",
        "idp/GroupMember/readers/emo@example.org",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(idp, expected, "wizard has no group, so no account is needed");
    let alice = content_of(&desired, "idp/Account/-/alice@example.org");
    assert_eq!(alice["login"], "alice", "the workstation's identity-provider login");
    assert_eq!(alice["disable_on_cut"], false);
    assert!(content_of(&desired, "idp/Account/-/emo@example.org").get("login").is_none());
    let member = desired.resources().iter().find(|r| r.id.to_string() == "idp/GroupMember/owners/alice@example.org");
    let deps: Vec<String> = member.unwrap().deps.iter().map(ToString::to_string).collect();
    assert_eq!(deps, ["idp/Account/-/alice@example.org", "idp/Group/-/owners"]);
    let with_cut = Settings { idp_disable_on_cut: true, ..Settings::default() };
    let desired = derive(&roster(TEAM), &with_cut, &Facts::default());
    assert_eq!(content_of(&desired, "idp/Account/-/emo@example.org")["disable_on_cut"], true);
}

#[test]
fn the_cut_removes_memberships_disables_accounts_only_when_configured_and_never_deletes_a_group() {
    let gone = roster("users:\n  wizard: { email: wizard@example.org, tier: admin }\n");
    for disable in [false, true] {
        let settings = Settings { idp_disable_on_cut: disable, ..Settings::default() };
        let (observed, inventory) = applied(&derive(&roster(TEAM), &settings, &Facts::default()), true);
        let offboard = Policy { offboard: true, ..Policy::default() };
        let plan =
            diff(&gone, &derive(&gone, &settings, &Facts::default()), &observed, &inventory, &routing(), &offboard);
        assert_eq!(action_of(&plan, "idp/GroupMember/readers/emo@example.org"), Some(Action::Delete));
        let account = plan.changes.iter().find(|c| c.id.to_string() == "idp/Account/-/emo@example.org").unwrap();
        if disable {
            assert_eq!(account.action, Action::Cut);
            assert_eq!(account.after.as_ref().unwrap().to_value()["enabled"], false);
        } else {
            assert_eq!(account.action, Action::Kept, "the account is left as it is");
        }
        assert_eq!(action_of(&plan, "idp/Group/-/readers"), Some(Action::Kept), "groups are never deleted");
    }
}

#[test]
fn rbac_by_group_binds_each_tier_once_to_its_groups() {
    let by_group = TEAM
        .replace("platform:\n", "platform:\n  rbac_subjects: groups\n")
        .replace("power-user: [readers] }", "power-user: [readers, auditors], admin: [platform-admins] }");
    let tier_bindings = |desired: &Desired| -> Vec<String> {
        ids(desired).into_iter().filter(|id| id.starts_with("kubernetes/ClusterRoleBinding/")).collect()
    };
    // Under the default isolation namespace-owners read nothing cluster-wide,
    // so their tier has no binding at all.
    let isolated = derive(&roster(&by_group), &Settings::default(), &Facts::default());
    assert_eq!(
        tier_bindings(&isolated),
        ["kubernetes/ClusterRoleBinding/-/oidc-admin", "kubernetes/ClusterRoleBinding/-/oidc-power-user-readonly"]
    );
    // The origin's layout (`isolation: none`) binds every tier.
    let by_group = by_group.replace("platform:\n", "platform:\n  isolation: none\n");
    let desired = derive(&roster(&by_group), &Settings::default(), &Facts::default());
    assert_eq!(
        tier_bindings(&desired),
        [
            "kubernetes/ClusterRoleBinding/-/oidc-admin",
            "kubernetes/ClusterRoleBinding/-/oidc-ns-owner-readonly",
            "kubernetes/ClusterRoleBinding/-/oidc-power-user-readonly",
        ]
    );
    let readers = content_of(&desired, "kubernetes/ClusterRoleBinding/-/oidc-power-user-readonly");
    assert_eq!(
        readers["subjects"],
        serde_json::json!([
            { "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "readers" },
            { "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "auditors" },
        ])
    );
    assert_eq!(readers["roleRef"]["name"], "oidc-power-user-readonly");
    assert_eq!(readers["metadata"]["labels"]["tenantry.dev/shared"], "true");
    // The namespace-owner's own RoleBinding in her namespace stays per user.
    assert!(ids(&desired).contains("kubernetes/RoleBinding/alice/namespace-owner-alice"));

    // Switching back to per-user bindings plans the per-user ones and deletes the tier ones.
    let (observed, inventory) = applied(&desired, true);
    let per_user = roster(TEAM);
    let back = derive(&per_user, &Settings::default(), &Facts::default());
    let plan = diff(&per_user, &back, &observed, &inventory, &routing(), &Policy::default());
    assert_eq!(action_of(&plan, "kubernetes/ClusterRoleBinding/-/oidc-power-user-readonly"), Some(Action::Delete));
    assert_eq!(action_of(&plan, "kubernetes/ClusterRoleBinding/-/oidc-power-user-readonly-emo"), Some(Action::Create));
}
