//! Importing the origin's `k8s_users` JSON and workstation roster (SPEC §2.3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tenantry_import::*;
use tenantry_model::{CodeLayout, Span, Tier, ValidationContext};

const K8S_USERS: &str = include_str!("fixtures/k8s_users.json");
const WORKSTATION: &str = include_str!("fixtures/workstation_roster.yaml");
const PLATFORM: &str = include_str!("fixtures/platform_roster.yaml");
const K8S_SOURCE: &str = "vault://secret/platform#k8s_users";
const WS_SOURCE: &str = "scripts/workstation/roster.yaml";

fn options() -> ImportOptions {
    ImportOptions::new("2026-11-29T03:00:00Z")
}

fn template() -> PlatformTemplate<'static> {
    PlatformTemplate { source_name: "old/roster.yaml", text: PLATFORM }
}

fn k8s() -> K8sUsers {
    parse_k8s_users(K8S_USERS, K8S_SOURCE).unwrap()
}

fn ws() -> WorkstationRoster {
    parse_workstation_roster(WORKSTATION, WS_SOURCE).unwrap()
}

/// The output must load with tenantry_model exactly as `tenantry validate` would.
fn load(yaml: &str) -> tenantry_model::Roster {
    match tenantry_model::load("imported.yaml", yaml.as_bytes(), &ValidationContext::default()) {
        Ok(roster) => roster,
        Err(diagnostics) => panic!("{diagnostics}\n---\n{yaml}"),
    }
}

fn user<'a>(report: &'a ImportReport, key: &str) -> &'a UserReport {
    report.users.iter().find(|u| u.user == key).unwrap()
}

#[test]
fn parses_k8s_users_with_positions_and_roster_quota_names() {
    let k8s = k8s();
    assert_eq!(k8s.users.keys().collect::<Vec<_>>(), ["alice", "anca", "emo", "vabbit81"]);
    let anca = &k8s.users["anca"];
    assert_eq!(anca.tier, Tier::NamespaceOwner);
    assert_eq!(anca.span, Span::new(11, 3));
    assert_eq!(anca.tier_span, Span::new(12, 5));
    assert_eq!(anca.quota["requests.cpu"].0, "2");
    assert_eq!(anca.quota["requests.memory"].0, "4Gi");
    assert_eq!(anca.quota["limits.memory"].0, "8Gi");
    assert_eq!(anca.quota["pods"], ("20".to_string(), Span::new(20, 7)));
    assert_eq!(k8s.users["emo"].tier, Tier::PowerUser);
}

#[test]
fn roles_map_to_tiers_by_name() {
    for (role, tier) in
        [("admin", Tier::Admin), ("power-user", Tier::PowerUser), ("namespace-owner", Tier::NamespaceOwner)]
    {
        let json = format!(r#"{{"u": {{"role": "{role}", "email": "u@example.org", "namespaces": ["u"]}}}}"#);
        assert_eq!(parse_k8s_users(&json, "k").unwrap().users["u"].tier, tier);
    }
    // Numbers and the older cpu_limits field are accepted.
    let json = r#"{"u": {"role": "admin", "email": "u@example.org", "quota": {"pods": 20, "cpu_limits": "4"}}}"#;
    let users = parse_k8s_users(json, "k").unwrap();
    assert_eq!(users.users["u"].quota["pods"].0, "20");
    assert_eq!(users.users["u"].quota["limits.cpu"].0, "4");
}

#[test]
fn parses_the_workstation_roster() {
    let ws = ws();
    assert_eq!(ws.users.keys().collect::<Vec<_>>(), ["ancamilea", "emo", "wizard"]);
    let anca = &ws.users["ancamilea"];
    assert_eq!(anca.k8s_user, "anca");
    assert_eq!(anca.authentik_user, "ancaelena98");
    assert_eq!(anca.code_layout, Some(CodeLayout::Workspace));
    assert_eq!(anca.repos, ["tripit"]);
    assert_eq!(anca.parked, Some(true));
    assert_eq!(anca.claude_auth, Some(false));
    assert_eq!(anca.span.line, 11);
    assert_eq!(ws.users["wizard"].tier, Tier::Admin);
}

#[test]
fn merges_both_sources_into_a_valid_roster() {
    let import = merge(Some(&k8s()), Some(&ws()), Some(template()), &options()).unwrap();
    let yaml = &import.roster_yaml;
    assert!(yaml.starts_with("# tenantry roster imported from the origin platform"), "{yaml}");
    assert!(yaml.contains("# Generated at 2026-11-29T03:00:00Z."), "{yaml}");
    assert!(yaml.contains(K8S_SOURCE) && yaml.contains(WS_SOURCE), "{yaml}");
    assert!(yaml.contains("  name: homelab                       # cluster/context name in kubeconfigs"), "{yaml}");
    assert!(!yaml.contains("someone"), "template users are not imported:\n{yaml}");

    let roster = load(yaml);
    assert_eq!(roster.users.keys().collect::<Vec<_>>(), ["alice", "anca", "emo", "vabbit81", "wizard"]);
    let anca = &roster.users["anca"];
    assert_eq!(anca.email.value, "ancaelena98@example.org");
    let namespaces: Vec<&str> = anca.namespaces.iter().map(|n| n.value.as_str()).collect();
    assert_eq!(namespaces, ["plotting-book", "tripit-dev"]);
    assert_eq!(anca.domains[0].value, "plotting-book.example.org");
    assert_eq!(anca.quota["requests.memory"].value.as_str(), "4Gi");
    let station = anca.workstation.as_ref().unwrap();
    assert_eq!(station.os_user.value, "ancamilea");
    assert_eq!(station.idp_user.value, "ancaelena98");
    assert_eq!(station.code_layout, CodeLayout::Workspace);
    assert_eq!(station.repos[0].value, "tripit");
    assert!(station.parked);
    assert_eq!(roster.users["emo"].workstation.as_ref().unwrap().idp_user.value, "emil.barzin");
    assert_eq!(roster.users["alice"].quota["pods"].value.as_str(), "30");
    assert!(roster.users["alice"].workstation.is_none());
    assert_eq!(roster.users["wizard"].tier.value, Tier::Admin);

    let report = &import.report;
    assert_eq!(report.platform, "copied from old/roster.yaml");
    let anca = user(report, "anca");
    assert_eq!(anca.sources, [SourceKind::K8sUsers, SourceKind::WorkstationRoster]);
    assert_eq!(anca.os_user.as_deref(), Some("ancamilea"));
    assert!(anca.fields.iter().any(|f| f.field == "email" && f.from == SourceKind::K8sUsers));
    assert!(anca.fields.iter().any(|f| f.field == "workstation.idp_user" && f.at == format!("{WS_SOURCE}:11:31")));
    assert!(anca.resolutions.iter().any(|r| r.field == "namespaces" && r.detail.contains("tripit-dev")));
    assert!(anca.resolutions.iter().any(|r| r.field == "claude_auth" && r.rule.starts_with("not carried")));
    assert!(anca.actions.is_empty(), "{:?}", anca.actions);
    assert_eq!(user(report, "alice").sources, [SourceKind::K8sUsers]);
    let wizard = user(report, "wizard");
    assert_eq!(wizard.sources, [SourceKind::WorkstationRoster]);
    assert!(wizard.actions.iter().any(|a| a.contains("set the real email")));
    assert!(wizard.actions.iter().any(|a| a.contains("cluster-admin")));
    assert!(report.needs_attention());
    assert_eq!(report.users_from(SourceKind::K8sUsers), 4);
    let text = report.to_string();
    assert!(
        text.contains("5 users: 2 in both sources, 2 in k8s_users only, 1 in the workstation roster only"),
        "{text}"
    );
    assert!(text.contains("wizard (from workstation roster), os_user wizard"), "{text}");
}

#[test]
fn output_is_deterministic() {
    let first = merge(Some(&k8s()), Some(&ws()), Some(template()), &options()).unwrap();
    let second = merge(Some(&k8s()), Some(&ws()), Some(template()), &options()).unwrap();
    assert_eq!(first.roster_yaml.as_bytes(), second.roster_yaml.as_bytes());
    assert_eq!(first.report, second.report);
    let keys: Vec<&str> = first.report.users.iter().map(|u| u.user.as_str()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted);
}

#[test]
fn tier_mismatch_is_an_error_naming_user_tiers_and_sources() {
    let yaml = WORKSTATION.replace("k8s_user: emo,    tier: power-user", "k8s_user: emo,    tier: namespace-owner");
    let ws = parse_workstation_roster(&yaml, WS_SOURCE).unwrap();
    let error = merge(Some(&k8s()), Some(&ws), None, &options()).unwrap_err();
    let ImportError::TierMismatch(list) = &error else { panic!("{error}") };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].user, "emo");
    assert_eq!(list[0].k8s_users_tier, Tier::PowerUser);
    assert_eq!(list[0].workstation_tier, Tier::NamespaceOwner);
    let text = error.to_string();
    for needle in ["emo", "power-user", "namespace-owner", K8S_SOURCE, WS_SOURCE, "tier-mismatch"] {
        assert!(text.contains(needle), "{needle} missing in: {text}");
    }
    assert_eq!(error.diagnostics().items[0].span.line, 10);
}

#[test]
fn imports_k8s_users_alone_with_a_placeholder_platform() {
    let import = merge(Some(&k8s()), None, None, &options()).unwrap();
    let roster = load(&import.roster_yaml);
    assert_eq!(roster.users.len(), 4);
    assert!(import.roster_yaml.contains("domain: example.invalid   # TODO"), "{}", import.roster_yaml);
    assert_eq!(roster.users["vabbit81"].domains[0].value, "vabbit.example.invalid");
    assert!(roster.users.values().all(|u| u.workstation.is_none()));
    assert!(import.report.platform.starts_with("placeholder"));
    assert!(user(&import.report, "vabbit81").actions.iter().any(|a| a.contains("placeholder platform.domain")));
    assert!(import.report.users.iter().all(|u| u.sources == [SourceKind::K8sUsers]));
}

#[test]
fn imports_the_workstation_roster_alone() {
    let import = merge(None, Some(&ws()), None, &options()).unwrap();
    let yaml = &import.roster_yaml;
    let roster = load(yaml);
    assert_eq!(roster.users.keys().collect::<Vec<_>>(), ["anca", "emo", "wizard"]);
    assert_eq!(roster.users["emo"].email.value, "emo@example.invalid");
    assert!(yaml.contains("repo_base: https://forge.example.invalid/"), "{yaml}");
    let emo = user(&import.report, "emo");
    assert_eq!(emo.sources, [SourceKind::WorkstationRoster]);
    assert!(emo.actions.iter().any(|a| a.contains("set the real email")));
    assert!(
        user(&import.report, "anca").actions.iter().any(|a| a.contains("placeholder platform.workstation.repo_base"))
    );
    // No k8s_users given at all: no "grant pending" noise.
    assert!(!emo.actions.iter().any(|a| a.contains("not in k8s_users")));
}

#[test]
fn malformed_json_reports_line_and_column() {
    let broken = K8S_USERS.replacen("\"role\": \"namespace-owner\",", "\"role\": \"namespace-owner\"", 1);
    let error = parse_k8s_users(&broken, K8S_SOURCE).unwrap_err();
    let diagnostic = &error.diagnostics().items[0];
    assert_eq!(diagnostic.code, "json-syntax");
    assert_eq!((diagnostic.span.line, diagnostic.source.as_str()), (4, K8S_SOURCE));
    assert!(error.to_string().starts_with(&format!("{K8S_SOURCE}:4:")), "{error}");

    let error = parse_k8s_users("{\"a\": {\"role\": \"namespace_owner\", \"email\": \"a@b.c\"}}", "k").unwrap_err();
    let text = error.to_string();
    assert!(text.contains("k:1:8") && text.contains("did you mean `namespace-owner`?"), "{text}");

    let error = parse_k8s_users("{\"a\": {\"role\": \"admin\", \"emial\": \"a@b.c\"}}", "k").unwrap_err();
    assert!(error.to_string().contains("unknown field `emial`"), "{error}");

    let json = "{\n \"a\": {\"role\": \"admin\", \"email\": \"a@b.c\",\n  \"quota\": {\"pods\": \"20\", \"memory_limits\": \"8GB\"}}}";
    let error = parse_k8s_users(json, "k").unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("k:3:27: error[invalid-quantity]") && text.contains("did you mean `Gi`"), "{text}");

    let json =
        "{\"a\": {\"role\": \"admin\", \"email\": \"a@b.c\"},\n \"a\": {\"role\": \"admin\", \"email\": \"a@b.c\"}}";
    let text = parse_k8s_users(json, "k").unwrap_err().to_string();
    assert!(text.starts_with("k:2:2: error[duplicate-key]"), "{text}");

    let text = parse_k8s_users("\"{\\\"a\\\": {}}\"", "k").unwrap_err().to_string();
    assert!(text.contains("json-double-encoded"), "{text}");
    assert!(parse_k8s_users("  ", "k").is_err());
}

#[test]
fn malformed_yaml_reports_line_and_column() {
    let error =
        parse_workstation_roster("users:\n  emo: {authentik_user: x, k8s_user: emo, tier: power-user\n", WS_SOURCE)
            .unwrap_err();
    let diagnostic = &error.diagnostics().items[0];
    assert_eq!(diagnostic.source, WS_SOURCE);
    assert!(diagnostic.span.is_known(), "{error}");

    let error = parse_workstation_roster("users:\n  emo: {authentik_user: x, k8s_usr: emo, tier: power-user}\n", "r")
        .unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("r:2:") && text.contains("did you mean `k8s_user`?"), "{text}");

    let error = parse_workstation_roster("users:\n  emo: {authentik_user: x, k8s_user: emo, tier: poweruser}\n", "r")
        .unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("r:2:49:") && text.contains("did you mean `power-user`?"), "{text}");

    let error = parse_workstation_roster("users:\n  emo: {authentik_user: x, tier: admin}\n", "r").unwrap_err();
    assert!(error.to_string().contains("k8s_user"), "{error}");

    // All rows commented out (as the origin does to remove someone) is an empty roster, not an error.
    assert!(parse_workstation_roster("users:\n# emo: {}\n", "r").unwrap().users.is_empty());
}

#[test]
fn roster_rule_errors_point_back_at_the_origin() {
    let json = "{\n  \"a\": {\"role\": \"namespace-owner\", \"email\": \"x@example.org\", \"namespaces\": [\"kube-a\"]},\n  \"b\": {\"role\": \"power-user\", \"email\": \"x@example.org\"}\n}";
    let k8s = parse_k8s_users(json, "k.json").unwrap();
    let error = merge(Some(&k8s), None, None, &options()).unwrap_err();
    let ImportError::Invalid(diagnostics) = &error else { panic!("{error}") };
    let reserved = diagnostics.items.iter().find(|d| d.code == "reserved-namespace").unwrap();
    assert_eq!((reserved.source.as_str(), reserved.span), ("k.json", Span::new(2, 62)));
    let duplicate = diagnostics.items.iter().find(|d| d.code == "duplicate-email").unwrap();
    assert_eq!((duplicate.source.as_str(), duplicate.span), ("k.json", Span::new(3, 31)));
    assert!(duplicate.message.contains("(k.json:2:36)"), "{}", duplicate.message);
}

#[test]
fn vault_source_gives_a_validated_roster_with_json_positions() {
    let roster = k8s_users_to_roster(K8S_USERS, K8S_SOURCE, Some(template()), &ValidationContext::default()).unwrap();
    assert_eq!(roster.source, K8S_SOURCE);
    let anca = &roster.users["anca"];
    assert_eq!(anca.span, Span::new(11, 3));
    assert_eq!(anca.email.span, Span::new(13, 5));
    assert_eq!(anca.quota["pods"].span, Span::new(20, 7));
    assert_eq!(anca.domains[0].value, "plotting-book.example.org");
    assert_eq!(roster.platform.name, "homelab");

    // Without a platform, short domains need a zone from tenantry.toml …
    let error = k8s_users_to_roster(K8S_USERS, K8S_SOURCE, None, &ValidationContext::default()).unwrap_err();
    let diagnostic = error.diagnostics().items.into_iter().find(|d| d.code == "invalid-domain").unwrap();
    assert_eq!(diagnostic.source, K8S_SOURCE);
    assert_eq!(diagnostic.span, Span::new(6, 5));
    // … and full names inside a configured zone work without one.
    let json = r#"{"a": {"role": "namespace-owner", "email": "a@example.org", "namespaces": ["a"], "domains": ["x.example.org"]}}"#;
    let context = ValidationContext { dns_zones: vec!["example.org".to_string()], ..ValidationContext::default() };
    let roster = k8s_users_to_roster(json, "vault://secret/platform#k8s_users", None, &context).unwrap();
    assert_eq!(roster.users["a"].domains[0].value, "x.example.org");
    assert_eq!(roster.users["a"].span, Span::new(1, 2));
}

#[test]
fn platform_template_errors_point_into_the_template() {
    let bad = PlatformTemplate { source_name: "t.yaml", text: "# c\nplatform:\n  name: Not_Valid\nusers: {}\n" };
    let error = merge(Some(&k8s()), None, Some(bad), &options()).unwrap_err();
    let ImportError::Template(diagnostics) = &error else { panic!("{error}") };
    assert_eq!((diagnostics.items[0].source.as_str(), diagnostics.items[0].span.line), ("t.yaml", 3));

    let none = PlatformTemplate { source_name: "t.yaml", text: "users: {}\n" };
    let error = merge(Some(&k8s()), None, Some(none), &options()).unwrap_err();
    assert!(error.to_string().contains("no top-level `platform:`"), "{error}");
}

#[test]
fn nothing_to_import_is_an_error() {
    assert!(merge(None, None, None, &options()).is_err());
}

#[test]
fn hostile_inputs_are_errors_not_panics() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for json in ["[]", "1", "null", "{\"a\": 1}", "{\"a\": {\"role\": 1}}", "{", "\u{0}", deep.as_str()] {
        assert!(parse_k8s_users(json, "k").is_err(), "{json:.40}");
    }
    assert!(parse_k8s_users("{}", "k").unwrap().users.is_empty());
    let bomb = "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n";
    for yaml in [
        "users: [1, 2]",
        "users: 5",
        "- a",
        ":",
        "users: {a: 1}",
        bomb,
        "users:\n  a: {authentik_user: [x], k8s_user: a, tier: admin}",
    ] {
        assert!(parse_workstation_roster(yaml, "r").is_err(), "{yaml}");
    }
}

#[test]
fn a_user_keyed_like_the_rosters_own_vault_path_is_refused_at_the_json_line() {
    // Issue #11: a namespace-owner's policy covers `secret/data/<key>/*`. Keyed like the
    // roster's own path, the user could rewrite the roster and grant themselves cluster-admin.
    let json = concat!(
        "{\n",
        "  \"alice\": {\"role\": \"namespace-owner\", \"email\": \"a@example.org\", \"namespaces\": [\"alice\"]},\n",
        "  \"teams\": {\"role\": \"namespace-owner\", \"email\": \"t@example.org\", \"namespaces\": [\"t\"]}\n",
        "}\n",
    );
    let source = "vault://secret/teams/roster#k8s_users";
    let error = k8s_users_to_roster(json, source, None, &ValidationContext::default()).unwrap_err();
    let found = error.diagnostics().items;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].code, found[0].source.as_str(), found[0].span),
        ("reserved-user-key", source, Span::new(3, 3))
    );
    assert!(found[0].message.contains("stored at `vault://secret/teams/roster#k8s_users`"), "{}", found[0]);
    // `platform` is reserved wherever the roster lives; other keys are fine.
    let json = r#"{"platform": {"role": "power-user", "email": "p@example.org"}}"#;
    let error =
        k8s_users_to_roster(json, "vault://kv/elsewhere#k8s_users", None, &ValidationContext::default()).unwrap_err();
    assert_eq!(error.diagnostics().items[0].code, "reserved-user-key");
    let json = r#"{"alice": {"role": "power-user", "email": "a@example.org"}}"#;
    assert!(k8s_users_to_roster(json, source, None, &ValidationContext::default()).is_ok());
}

/// Migrating a running origin platform changes nothing until the admin
/// decides: every imported roster says `isolation: none` (unless the
/// template already says something), and the report recommends `standard`.
#[test]
fn an_imported_roster_keeps_the_origins_isolation_until_the_admin_decides() {
    use tenantry_model::IsolationLevel;
    for import in [
        merge(Some(&k8s()), Some(&ws()), Some(template()), &options()).unwrap(),
        merge(Some(&k8s()), None, None, &options()).unwrap(),
    ] {
        assert_eq!(load(&import.roster_yaml).platform.isolation.level, IsolationLevel::None, "{}", import.roster_yaml);
        assert!(import.report.actions.iter().any(|a| a.contains("isolation: standard")), "{:?}", import.report.actions);
        assert!(import.report.to_string().contains("\nACTION: the imported roster keeps the origin's behaviour"));
    }
    // A one-line template, and a template that already decided.
    let flow = PlatformTemplate {
        source_name: "flow.yaml",
        text: "platform: { name: homelab, domain: example.org }\nusers: {}\n",
    };
    let import = merge(Some(&k8s()), None, Some(flow), &options()).unwrap();
    let roster = load(&import.roster_yaml);
    assert_eq!((roster.platform.name.as_str(), roster.platform.isolation.level), ("homelab", IsolationLevel::None));
    let decided = PlatformTemplate {
        source_name: "std.yaml",
        text: "platform:\n  domain: example.org\n  isolation: standard\nusers: {}\n",
    };
    let import = merge(Some(&k8s()), None, Some(decided), &options()).unwrap();
    assert_eq!(load(&import.roster_yaml).platform.isolation.level, IsolationLevel::Standard);
}
