//! `platform.idp`, per-user `groups` and `platform.rbac_subjects` (issue #17).

use super::*;

#[test]
fn identity_provider_groups_are_read_with_their_positions() {
    let text = "platform:\n  idp:\n    tier_groups: { admin: [platform-admins], power-user: [readers, \"T3 Users\"] }\n    workstation_group: \"T3 Users\"\nusers:\n  alice: { email: alice@example.org, tier: power-user, groups: [billing, \"Ops (EU)\"] }\n";
    let roster = load_bytes(text.as_bytes()).unwrap();
    let idp = roster.platform.idp.as_ref().unwrap();
    let readers: Vec<&str> = idp.tier_groups[&Tier::PowerUser].iter().map(|g| g.value.as_str()).collect();
    assert_eq!(readers, ["readers", "T3 Users"]);
    assert_eq!(idp.workstation_group.as_ref().map(|g| (g.value.as_str(), g.span.line)), Some(("T3 Users", 4)));
    let alice = &roster.users["alice"];
    let groups: Vec<(&str, u32)> = alice.groups.iter().map(|g| (g.value.as_str(), g.span.line)).collect();
    assert_eq!(groups, [("billing", 6), ("Ops (EU)", 6)]);
    assert_eq!(roster.platform.rbac_subjects, RbacSubjects::Users, "per-user bindings stay the default");
}

#[test]
fn group_names_that_would_break_where_they_go_are_refused() {
    for (group, column) in [("ops/admins", 65), ("a\\\"b", 65), (" lead", 65), ("x,y", 65)] {
        let text =
            users(&format!("  alice: {{ email: alice@example.org, tier: power-user, groups: [\"{group}\"] }}\n"));
        let error = refused(&text, "invalid-idp-group", 2, column);
        says(&error, &["is not an identity-provider group name"], &["no `/`"]);
    }
    let twice = users("  alice: { email: alice@example.org, tier: power-user, groups: [ops, ops] }\n");
    says(&refused(&twice, "duplicate-idp-group", 2, 70), &["`ops` is listed twice"], &["remove one"]);
    let tier = "platform:\n  idp: { tier_groups: { power-users: [x] } }\nusers: {}\n";
    says(&refused(tier, "unknown-tier", 2, 25), &["unknown tier `power-users`"], &["did you mean `power-user`?"]);
}

#[test]
fn rbac_by_group_needs_a_group_for_every_tier_that_has_users() {
    let text = "platform:\n  rbac_subjects: groups\n  idp: { tier_groups: { admin: [platform-admins] } }\nusers:\n  a: { email: a@example.org, tier: admin }\n  b: { email: b@example.org, tier: power-user }\n";
    let error = refused(text, "rbac-groups-missing", 2, 18);
    says(&error, &["tier `power-user` has users"], &["add `power-user: [<group>]`", "rbac_subjects: users"]);
    let fixed = text.replace("admin: [platform-admins]", "admin: [platform-admins], power-user: [readers]");
    assert_eq!(load_bytes(fixed.as_bytes()).unwrap().platform.rbac_subjects, RbacSubjects::Groups);
    let typo = refused("platform:\n  rbac_subjects: group\nusers: {}\n", "unknown-value", 2, 18);
    says(&typo, &["unknown value `group`"], &["did you mean `groups`?"]);
}
