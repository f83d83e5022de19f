//! `platform.apps` and per-user `apps` (SPEC §11.5, issue #21): instances
//! resolved per user, and every wrong entry refused at its position.

use super::*;

const APPS: &str = "platform:
  domain: example.org
  apps:
    budget: { template: apps/budget, host: \"budget.{user}\", values: { replicas: 1, image: budget:1 } }
    wiki: { template: apps/wiki, namespace: \"{user}-apps\" }
users:
";

fn with_users(body: &str) -> String {
    format!("{APPS}{body}")
}

#[test]
fn an_instance_resolves_namespace_host_and_merged_values() {
    let text = with_users(
        "  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice, alice-apps], apps: [budget, { name: wiki, values: { theme: dark } }] }\n  bob: { email: bob@example.org, tier: namespace-owner, namespaces: [bob], apps: [{ name: budget, values: { replicas: 2 } }] }\n",
    );
    let roster = load_bytes(text.as_bytes()).unwrap();
    let budget = &roster.platform.apps["budget"];
    assert_eq!((budget.template.value.as_str(), budget.span.line), ("apps/budget", 4));
    assert_eq!(roster.platform.apps["wiki"].namespace.value, "{user}-apps");

    let alice = &roster.users["alice"];
    let instances: Vec<(&str, &str, Option<&str>, u32)> =
        alice.apps.iter().map(|i| (i.app.as_str(), i.namespace.as_str(), i.host.as_deref(), i.span.line)).collect();
    assert_eq!(instances, [("budget", "alice", Some("budget.alice.example.org"), 7), ("wiki", "alice-apps", None, 7)]);
    assert_eq!(alice.apps[1].values["theme"], "dark");
    assert!(
        alice.domains.iter().any(|d| d.value == "budget.alice.example.org"),
        "the instance's host is routed like a user domain (DNS record, TLS coverage)"
    );
    let bob = &roster.users["bob"];
    assert_eq!(bob.apps[0].values["replicas"], 2, "the user's values win");
    assert_eq!(bob.apps[0].values["image"], "budget:1", "the app's values stay under the user's");
}

#[test]
fn an_unknown_app_is_refused_with_the_nearest_name() {
    let text = with_users(
        "  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [budgte] }\n",
    );
    let error = refused(&text, "unknown-app", 7, 89);
    says(&error, &["`budgte` is not an app of `platform.apps`"], &["did you mean `budget`?"]);
    let none =
        users("  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [budget] }\n");
    says(&refused(&none, "unknown-app", 2, 89), &["`budget`"], &["define it under `platform.apps`"]);
}

#[test]
fn an_app_namespace_the_user_does_not_own_is_refused() {
    let text =
        with_users("  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [wiki] }\n");
    let error = refused(&text, "app-namespace-not-owned", 7, 89);
    says(&error, &["namespace `alice-apps`", "does not own", "they own `alice`"], &["add `alice-apps`"]);
    let admin = with_users("  ops: { email: ops@example.org, tier: admin, apps: [budget] }\n");
    says(&refused(&admin, "app-namespace-not-owned", 7, 54), &["namespace `ops`"], &["namespaces"]);
}

#[test]
fn a_host_outside_the_managed_zones_is_refused() {
    let text = "platform:\n  apps:\n    budget: { template: apps/budget, host: \"budget.{user}.elsewhere.net\" }\nusers:\n  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [budget] }\n";
    let error = refused(text, "invalid-app-host", 5, 89);
    says(&error, &["app `budget`", "outside every zone tenantry manages"], &["[dns] zones"]);
    let inside = load(
        SOURCE,
        text.as_bytes(),
        &ValidationContext { dns_zones: vec!["elsewhere.net".to_string()], ..Default::default() },
    )
    .unwrap();
    assert_eq!(inside.users["alice"].apps[0].host.as_deref(), Some("budget.alice.elsewhere.net"));
}

#[test]
fn a_host_claimed_twice_and_an_app_listed_twice_are_refused() {
    let clash = with_users(
        "  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], domains: [budget.alice], apps: [budget] }\n",
    );
    says(&refused(&clash, "duplicate-domain", 7, 114), &["host `budget.alice.example.org` is already claimed"], &[]);
    let twice = with_users(
        "  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [budget, budget] }\n",
    );
    says(&refused(&twice, "duplicate-app", 7, 97), &["listed twice"], &["remove one"]);
}

#[test]
fn bad_app_definitions_are_refused_where_written() {
    let path = "platform:\n  apps:\n    budget: { template: ../outside }\nusers: {}\n";
    says(&refused(path, "invalid-app-template", 3, 25), &["inside the roster's directory"], &["without `..`"]);
    let name = "platform:\n  apps:\n    Budget_App: { template: apps/b }\nusers: {}\n";
    says(&refused(name, "invalid-app-name", 3, 5), &["not a DNS-1123 label"], &[]);
    let pattern = "platform:\n  apps:\n    budget: { template: apps/b, host: \"{name}.{user}\" }\nusers: {}\n";
    says(&refused(pattern, "invalid-app-pattern", 3, 39), &["placeholder other than `{user}`"], &[]);
    let field = "platform:\n  apps:\n    budget: { template: apps/b, hots: x }\nusers: {}\n";
    assert!(!errors(field.as_bytes()).is_empty(), "unknown fields are refused");
}
