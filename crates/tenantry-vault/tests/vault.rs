//! The vault target against the real OpenBao dev server (`testenv/up vault`),
//! and end to end with the real kube-apiserver (`testenv/up kube`): a user
//! logs in, mints a deployer token through the kubernetes secrets engine,
//! and reaches exactly their own namespace and KV subtree. `vault/oidc.rs`
//! signs a person in through Keycloak (`testenv/up keycloak`) for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "vault/platforms.rs"]
mod platforms;

use serde_json::{Value, json};
use std::sync::Arc;
use tenantry_core::{Action, Policy, Settings, Target};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};
use tenantry_vault::{Error, VaultConfig, VaultTarget};

#[path = "vault/oidc.rs"]
mod oidc;

fn peer() -> tenantry_testenv::Vault {
    tenantry_testenv::vault().unwrap_or_else(|e| panic!("{e}"))
}

use tenantry_testenv::run_id;

/// Raw calls to OpenBao with the root token, for setting up and checking.
async fn bao(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    bao_as(&peer().token, method, path, body).await
}

async fn bao_as(token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let vault = peer();
    let http = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = http.request(method, vault.url(path)).header("X-Vault-Token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ok(method: &str, path: &str, body: Value) -> Value {
    let (status, answer) = bao(method, path, Some(body)).await;
    assert!((200..300).contains(&status), "{method} {path}: HTTP {status} {answer}");
    answer
}

async fn enable_auth(path: &str, kind: &str) {
    ok("POST", &format!("sys/auth/{path}"), json!({ "type": kind })).await;
}

async fn enable_secrets(path: &str, kind: &str) {
    ok("POST", &format!("sys/mounts/{path}"), json!({ "type": kind })).await;
}

fn config(id: &str) -> VaultConfig {
    VaultConfig {
        oidc_mount: format!("vt-oidc-{id}"),
        kubernetes_secrets_mount: format!("vt-k8s-{id}"),
        ..VaultConfig::new(peer().addr)
    }
}

/// Mounts of one test: an OIDC auth mount and a kubernetes secrets engine.
async fn mounts(config: &VaultConfig) {
    enable_auth(&config.oidc_mount, "oidc").await;
    enable_secrets(&config.kubernetes_secrets_mount, "kubernetes").await;
}

async fn target(config: &VaultConfig) -> VaultTarget {
    let root = peer().token;
    let token = config.token_from(|name| (name == "VAULT_TOKEN").then(|| root.clone())).unwrap();
    VaultTarget::connect_with_token(config, token).await.unwrap()
}

fn roster(text: &str) -> tenantry_model::Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
}

fn owners(id: &str, names: &[&str]) -> String {
    let mut text = String::from("users:\n");
    for name in names {
        let user = format!("vt-{name}-{id}");
        text.push_str(&format!(
            "  {user}: {{ email: {user}@example.org, tier: namespace-owner, namespaces: [{user}] }}\n"
        ));
    }
    text
}

fn engine(targets: Vec<Arc<dyn Target>>, config: &VaultConfig) -> Engine {
    Engine::new(
        targets,
        State::in_memory().unwrap(),
        Arc::new(FixedClock("2026-11-29T04:00:00Z".into())),
        config.settings(Settings::default()),
    )
}

async fn apply(engine: &Engine, roster: &tenantry_model::Roster, policy: Policy) -> (Prepared, ApplyReport) {
    let prepared = engine.prepare(roster, policy).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
    let report = engine
        .apply(
            roster,
            &prepared,
            &ApplyOptions { concurrency: 8, command: "test".into(), ..ApplyOptions::default() },
            &|_| {},
        )
        .await
        .unwrap();
    assert!(report.is_success(), "{:#?}", report.failures);
    (prepared, report)
}

fn action(prepared: &Prepared, id: &str) -> Option<Action> {
    prepared.plan.changes.iter().find(|c| c.id.to_string() == id).map(|c| c.action)
}

fn changes(prepared: &Prepared) -> Vec<String> {
    prepared
        .plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .map(|c| format!("{} {}", c.action.as_str(), c.id))
        .collect()
}

async fn accessor(mount: &str) -> String {
    let (_, auth) = bao("GET", "sys/auth", None).await;
    auth["data"][format!("{mount}/")]["accessor"].as_str().unwrap().to_string()
}

/// Every alias named `name` on the mount with `accessor` (its `id` added).
async fn aliases_named(name: &str, accessor: &str) -> Vec<Value> {
    let (_, list) = bao("LIST", "identity/entity-alias/id", None).await;
    list["data"]["key_info"]
        .as_object()
        .map(|info| {
            info.iter()
                .filter(|(_, a)| a["name"] == name && a["mount_accessor"] == accessor)
                .map(|(id, a)| {
                    let mut alias = a.clone();
                    alias["id"] = json!(id);
                    alias
                })
                .collect()
        })
        .unwrap_or_default()
}

// ------------------------------------------------------------ configuration

#[test]
fn config_defaults_unknown_fields_and_token_sources() {
    let parsed: VaultConfig = toml::from_str("address = \"https://vault.example.org\"").unwrap();
    assert_eq!(parsed, VaultConfig::new("https://vault.example.org"));
    assert_eq!(
        (parsed.oidc_mount.as_str(), parsed.kv_mount.as_str(), parsed.kubernetes_secrets_mount.as_str()),
        ("oidc", "secret", "kubernetes")
    );
    let typo = toml::from_str::<VaultConfig>("address = \"x\"\noidc_mnt = \"oidc\"").unwrap_err().to_string();
    assert!(typo.contains("oidc_mnt"), "{typo}");

    // Env: VAULT_TOKEN first, then BAO_TOKEN; nothing at all says where to put one.
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    assert!(parsed.token_from(env(&[("VAULT_TOKEN", "a"), ("BAO_TOKEN", "b")])).is_ok());
    assert!(parsed.token_from(env(&[("BAO_TOKEN", "b")])).is_ok());
    let none = parsed.token_from(env(&[])).unwrap_err();
    assert!(matches!(none, Error::NoToken), "{none}");
    assert!(none.to_string().contains("token_file") && none.to_string().contains("VAULT_TOKEN"));

    // A token file readable by others is refused, with the fix; 0600 is read (and `~` is the home).
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join(".vault-token");
    std::fs::write(&file, "s.secret-token\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let with_file = VaultConfig { token_file: Some("~/.vault-token".into()), ..parsed.clone() };
    let home_env = {
        let home = home.path().to_string_lossy().to_string();
        move |name: &str| (name == "HOME").then(|| home.clone())
    };
    let refused = with_file.token_from(&home_env).unwrap_err().to_string();
    assert!(refused.contains("chmod 600") && refused.contains("644"), "{refused}");
    assert!(!refused.contains("s.secret-token"), "the token is never printed");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token = with_file.token_from(&home_env).unwrap();
    assert_eq!(format!("{token:?}"), "Token(<redacted>)");
}

#[tokio::test]
async fn connect_checks_the_token() {
    let id = run_id();
    let config = config(&id);
    target(&config).await;
    let bad = config.token_from(|name| (name == "VAULT_TOKEN").then(|| "not-a-token".to_string())).unwrap();
    let error = VaultTarget::connect_with_token(&config, bad).await.unwrap_err();
    assert!(matches!(error, Error::TokenRejected { .. }), "{error}");
    assert!(!error.to_string().contains("not-a-token"));
    let no_ca = VaultConfig { ca_file: Some("/nonexistent/ca.pem".into()), ..config.clone() };
    let token = no_ca.token_from(|_| Some("x".to_string())).unwrap();
    let error = VaultTarget::connect_with_token(&no_ca, token).await.unwrap_err().to_string();
    assert!(error.contains("ca_file") && error.contains("/nonexistent/ca.pem"), "{error}");
    let nowhere = VaultConfig::new("http://127.0.0.1:9");
    let token = nowhere.token_from(|_| Some("x".to_string())).unwrap();
    let error = VaultTarget::connect_with_token(&nowhere, token).await.unwrap_err();
    assert!(matches!(error, Error::Unreachable { .. }), "{error}");
    assert!(error.to_string().to_lowercase().contains("connection refused"), "the cause is named: {error}");
    // Something that answers 200 with a web page is not a Vault saying "nothing here".
    let page = "<html>down for maintenance</html>";
    let page =
        tenantry_testenv::fixed_answer::fixed_answer(tenantry_testenv::fixed_answer::ok_head("text/html", page), page)
            .unwrap();
    let not_vault = VaultConfig::new(&page);
    let token = not_vault.token_from(|_| Some("x".to_string())).unwrap();
    let error = VaultTarget::connect_with_token(&not_vault, token).await.unwrap_err().to_string();
    assert!(error.contains("not JSON") && error.contains("maintenance"), "{error}");
}

/// A LIST answered 200 without `data.keys` is an error, not an empty list:
/// read as one, the plan would create every policy, entity and role again.
#[tokio::test]
async fn a_list_answer_without_keys_is_an_error_not_an_empty_list() {
    let address = tenantry_testenv::fixed_answer::json_ok(r#"{"data":{"note":"not a list"}}"#).unwrap();
    let config = VaultConfig::new(&address);
    let token = config.token_from(|_| Some("x".to_string())).unwrap();
    let target: Arc<dyn Target> = Arc::new(VaultTarget::connect_with_token(&config, token).await.unwrap());
    let engine = engine(vec![target], &config);
    let prepared = engine.prepare(&roster(&owners("nokeys", &["alice"])), Policy::default()).await.unwrap();
    assert!(changes(&prepared).is_empty(), "nothing is planned from a listing that failed");
    let why = prepared.unavailable.values().cloned().collect::<Vec<_>>().join("; ");
    assert!(why.contains("LIST") && why.contains("no data.keys"), "{why}");
}

// ------------------------------------------------------------ reconcile

#[tokio::test]
async fn apply_creates_the_catalog_and_a_noop_reconcile_writes_nothing() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let vault = target(&config).await;
    let roster = roster(&owners(&id, &["alice", "bob", "carol"]));
    let engine = engine(vec![Arc::new(vault.clone())], &config);
    let (prepared, _) = apply(&engine, &roster, Policy::default()).await;
    assert_eq!(changes(&prepared).len(), 12, "{:#?}", changes(&prepared));

    let alice = format!("vt-alice-{id}");
    let (_, entity) = bao("GET", &format!("identity/entity/name/{alice}"), None).await;
    assert_eq!(entity["data"]["policies"], json!([format!("namespace-owner-{alice}")]));
    assert_eq!(
        entity["data"]["metadata"],
        json!({ "managed-by": "tenantry", "tenantry-user": alice, "tenantry-platform": "kubernetes" })
    );
    let aliases = aliases_named(&format!("{alice}@example.org"), &accessor(&config.oidc_mount).await).await;
    assert_eq!(aliases.len(), 1);
    assert_eq!(aliases[0]["canonical_id"], entity["data"]["id"]);
    let (_, role) = bao("GET", &format!("{}/roles/{alice}-deployer", config.kubernetes_secrets_mount), None).await;
    assert_eq!(role["data"]["allowed_kubernetes_namespaces"], json!([alice]));
    assert_eq!(role["data"]["kubernetes_role_name"], format!("{alice}-deployer"));
    assert_eq!(
        (role["data"]["token_default_ttl"].as_u64(), role["data"]["token_max_ttl"].as_u64()),
        (Some(1800), Some(3600))
    );
    assert_eq!(role["data"]["extra_annotations"]["tenantry.dev/user"], alice);
    assert_eq!(role["data"]["extra_labels"], Value::Null, "minted objects carry no tenantry labels");

    // Unchanged roster: no change planned, and applying it sends no write.
    let before = vault.request_counts();
    let again = engine.prepare(&roster, Policy::default()).await.unwrap();
    let observe = vault.request_counts();
    assert!(changes(&again).is_empty(), "{:#?}", changes(&again));
    engine.apply(&roster, &again, &ApplyOptions::default(), &|_| {}).await.unwrap();
    let after = vault.request_counts();
    assert_eq!(after.writes, before.writes, "a no-op reconcile writes nothing");
    // 6 listings (policies, entities, aliases, sys/auth, sys/mounts, roles) + one read per policy, entity and role.
    let users = 3;
    assert_eq!(observe.requests - before.requests, 6 + 3 * users);
    assert_eq!(after.requests, observe.requests, "applying an empty plan sends nothing");
    println!("no-op reconcile of {users} users: {} requests, 0 writes", observe.requests - before.requests);

    // Drift (a hand edit of the policy, a policy added to the entity) is planned and restored.
    ok(
        "PUT",
        &format!("sys/policies/acl/namespace-owner-{alice}"),
        json!({ "policy": "path \"*\" { capabilities = [\"sudo\"] }" }),
    )
    .await;
    ok(
        "POST",
        &format!("identity/entity/name/{alice}"),
        json!({ "policies": [format!("namespace-owner-{alice}"), "root-ish"] }),
    )
    .await;
    let drift = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert_eq!(action(&drift, &format!("vault/Entity/-/{alice}")), Some(Action::Update));
    // The hand-written policy lost the managed header: an unmarked object tenantry remembers is updated.
    assert_eq!(action(&drift, &format!("vault/Policy/-/namespace-owner-{alice}")), Some(Action::Update));
    apply(&engine, &roster, Policy::default()).await;
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());
    let (_, policy) = bao("GET", &format!("sys/policies/acl/namespace-owner-{alice}"), None).await;
    assert!(policy["data"]["policy"].as_str().unwrap().starts_with("# Managed by tenantry for user"));
}

#[tokio::test]
async fn the_documented_token_policy_is_enough_to_apply_adopt_and_destroy() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let policy = include_str!("../tenantry-vault-policy.hcl")
        .replace("\"kubernetes/", &format!("\"{}/", config.kubernetes_secrets_mount));
    ok("PUT", &format!("sys/policies/acl/vt-tenantry-{id}"), json!({ "policy": policy })).await;
    let created =
        ok("POST", "auth/token/create", json!({ "policies": [format!("vt-tenantry-{id}")], "ttl": "10m" })).await;
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    let restricted = config.token_from(|name| (name == "VAULT_TOKEN").then(|| token.clone())).unwrap();
    let vault = VaultTarget::connect_with_token(&config, restricted).await.unwrap();

    // A first login's alias, to adopt.
    let alice = format!("vt-alice-{id}");
    let accessor = accessor(&config.oidc_mount).await;
    let auto = ok("POST", "identity/entity", json!({ "name": format!("entity_{id}") })).await;
    let body = json!({ "name": format!("{alice}@example.org"), "mount_accessor": accessor, "canonical_id": auto["data"]["id"] });
    ok("POST", "identity/entity-alias", body).await;

    let engine = engine(vec![Arc::new(vault.clone())], &config);
    let roster = roster(&owners(&id, &["alice", "bob"]));
    let (prepared, _) = apply(&engine, &roster, Policy::default()).await;
    assert!(
        prepared.plan.problems.is_empty(),
        "the policy lets the plan check the mounts: {:#?}",
        prepared.plan.problems
    );
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());
    ok("POST", &format!("secret/data/{alice}/x"), json!({ "data": { "k": "v" } })).await;
    let dir = tempfile::tempdir().unwrap();
    let report = vault.destroy_user(&alice, &tenantry_engine::BackupDir::new(dir.path())).await.unwrap();
    assert_eq!((report.removed.len(), report.secrets), (3, 1));
}

#[tokio::test]
async fn an_alias_created_at_first_login_is_adopted_never_duplicated() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let alice = format!("vt-alice-{id}");
    let email = format!("{alice}@example.org");
    let accessor = accessor(&config.oidc_mount).await;

    // What a first OIDC login does: an entity named entity_<random> and the alias on it.
    let auto_name = format!("entity_{id}");
    let auto = ok("POST", "identity/entity", json!({ "name": auto_name })).await;
    let auto_id = auto["data"]["id"].as_str().unwrap().to_string();
    ok("POST", "identity/entity-alias", json!({ "name": email, "mount_accessor": accessor, "canonical_id": auto_id }))
        .await;

    let vault = target(&config).await;
    let roster = roster(&owners(&id, &["alice"]));
    let engine = engine(vec![Arc::new(vault)], &config);
    let alias_id = format!("vault/EntityAlias/{}/{email}", config.oidc_mount);
    let plan = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert_eq!(action(&plan, &alias_id), Some(Action::Adopt), "{:#?}", changes(&plan));
    let before = plan.plan.changes.iter().find(|c| c.id.to_string() == alias_id).unwrap().before.clone().unwrap();
    assert!(before.as_str().contains(&auto_name), "the plan shows the auto-created entity: {before}");

    let steps = engine.describe(&plan.plan);
    let step = steps.iter().find(|(id, _)| id.to_string() == alias_id).map(|(_, s)| s.join("\n")).unwrap_or_default();
    assert!(step.contains(&format!("from entity `{auto_name}` onto `{alice}`")), "{step}");

    let (_, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success());
    let found = aliases_named(&email, &accessor).await;
    assert_eq!(found.len(), 1, "exactly one alias for the email: {found:#?}");
    let (_, managed) = bao("GET", &format!("identity/entity/name/{alice}"), None).await;
    assert_eq!(found[0]["canonical_id"], managed["data"]["id"], "the alias now maps to the managed entity");
    assert_eq!(found[0]["custom_metadata"]["tenantry-user"], alice);
    let (status, _) = bao("GET", &format!("identity/entity/id/{auto_id}"), None).await;
    assert_eq!(status, 404, "the emptied auto-created entity is gone");
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_missing_mount_fails_only_the_changes_that_need_it_and_says_how_to_fix_it() {
    let id = run_id();
    // Neither the OIDC auth mount nor the kubernetes secrets engine is enabled.
    let config = config(&id);
    let vault = target(&config).await;
    let engine = engine(vec![Arc::new(vault)], &config);
    let roster = roster(&owners(&id, &["alice", "bob"]));
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "observing copes with missing mounts: {:?}", prepared.unavailable);
    // The plan already says which mounts are missing and how to make them, without blocking the rest.
    let problems = &prepared.plan.problems;
    assert!(!prepared.plan.is_blocked(), "{problems:#?}");
    let auth = problems.iter().find(|p| p.message.contains(&format!("auth mount `{}`", config.oidc_mount))).unwrap();
    assert!(auth.message.contains("2 user(s)"), "{}", auth.message);
    assert!(auth.help.contains(&format!("bao auth enable -path={}", config.oidc_mount)), "{}", auth.help);
    let engine_problem = problems
        .iter()
        .find(|p| p.message.contains(&format!("secrets engine `{}`", config.kubernetes_secrets_mount)))
        .unwrap();
    assert!(engine_problem.message.contains("2 deployer role(s)"), "{}", engine_problem.message);
    assert!(
        engine_problem
            .help
            .contains(&format!("bao secrets enable -path={} kubernetes", config.kubernetes_secrets_mount)),
        "{}",
        engine_problem.help
    );
    assert_eq!(problems.len(), 2, "the KV mount exists: {problems:#?}");
    let report = engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    let failed: Vec<&str> = report.failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(report.failures.len(), 4, "{:#?}", report.failures);
    for failure in &report.failures {
        if failure.id.contains("/EntityAlias/") {
            assert!(
                failure.error.contains(&format!("bao auth enable -path={}", config.oidc_mount)),
                "{}",
                failure.error
            );
        } else {
            assert!(failure.id.contains("/KubernetesRole/"), "{failed:?}");
            assert!(
                failure.error.contains("no such path") && failure.error.contains("bao secrets list"),
                "{}",
                failure.error
            );
        }
    }
    let alice = format!("vt-alice-{id}");
    assert_eq!(bao("GET", &format!("identity/entity/name/{alice}"), None).await.0, 200, "the rest is applied");
    assert_eq!(bao("GET", &format!("sys/policies/acl/namespace-owner-{alice}"), None).await.0, 200);

    // Once the mounts exist, the plan has no problem and the next apply completes the catalog.
    mounts(&config).await;
    let (prepared, _) = apply(&engine, &roster, Policy::default()).await;
    assert!(prepared.plan.problems.is_empty(), "{:#?}", prepared.plan.problems);
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());
}

#[tokio::test]
async fn an_email_change_renames_the_alias_vault_allows_one_per_mount() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let vault = target(&config).await;
    let engine = engine(vec![Arc::new(vault)], &config);
    let alice = format!("vt-alice-{id}");
    apply(&engine, &roster(&owners(&id, &["alice"])), Policy::default()).await;
    let renamed = roster(&format!(
        "users:\n  {alice}: {{ email: alice.new-{id}@example.org, tier: namespace-owner, namespaces: [{alice}] }}\n"
    ));
    let (prepared, _) = apply(&engine, &renamed, Policy::default()).await;
    let new_alias = format!("vault/EntityAlias/{}/alice.new-{id}@example.org", config.oidc_mount);
    assert_eq!(action(&prepared, &new_alias), Some(Action::Create));
    let accessor = accessor(&config.oidc_mount).await;
    let (_, entity) = bao("GET", &format!("identity/entity/name/{alice}"), None).await;
    let on_mount: Vec<&Value> =
        entity["data"]["aliases"].as_array().unwrap().iter().filter(|a| a["mount_accessor"] == accessor).collect();
    assert_eq!(on_mount.len(), 1, "{on_mount:#?}");
    assert_eq!(on_mount[0]["name"], format!("alice.new-{id}@example.org"));
    assert!(aliases_named(&format!("{alice}@example.org"), &accessor).await.is_empty());
    assert!(changes(&engine.prepare(&renamed, Policy::default()).await.unwrap()).is_empty());
}

#[tokio::test]
async fn an_alias_on_another_users_entity_is_a_conflict_and_is_not_moved() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let vault = target(&config).await;
    let engine = engine(vec![Arc::new(vault)], &config);
    apply(&engine, &roster(&owners(&id, &["bob"])), Policy::default()).await;
    let (alice, bob) = (format!("vt-alice-{id}"), format!("vt-bob-{id}"));
    let accessor = accessor(&config.oidc_mount).await;
    let (_, bob_entity) = bao("GET", &format!("identity/entity/name/{bob}"), None).await;
    // Someone attached alice's login to bob's entity by hand (bob has no alias on
    // this mount then: Vault allows one per mount).
    let bob_alias = aliases_named(&format!("{bob}@example.org"), &accessor).await;
    ok("DELETE", &format!("identity/entity-alias/id/{}", bob_alias[0]["id"].as_str().unwrap()), json!({})).await;
    let body = json!({ "name": format!("{alice}@example.org"), "mount_accessor": accessor, "canonical_id": bob_entity["data"]["id"] });
    ok("POST", "identity/entity-alias", body).await;

    let roster = roster(&owners(&id, &["alice", "bob"]));
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let alias_id = format!("vault/EntityAlias/{}/{alice}@example.org", config.oidc_mount);
    let conflict = prepared.plan.changes.iter().find(|c| c.id.to_string() == alias_id).unwrap();
    assert_eq!(conflict.action, Action::Conflict);
    assert!(conflict.reason.contains(&format!("`{bob}`")), "{}", conflict.reason);
    let report = engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    // Bob fails too, and says why: his entity holds that foreign alias on the
    // mount, and Vault allows one alias per mount on an entity.
    assert_eq!(failed, vec![alice.clone(), bob.clone()]);
    let bob_failure = report.failures.iter().find(|f| f.owner.to_string() == bob).unwrap();
    assert!(bob_failure.error.contains("one alias per mount"), "{}", bob_failure.error);
    let still = aliases_named(&format!("{alice}@example.org"), &accessor).await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0]["canonical_id"], bob_entity["data"]["id"], "never taken from bob");
}

#[test]
fn projections_match_the_derived_shapes() {
    use tenantry_core::{Mark, Owner};
    use tenantry_vault::project::{duration, policy_mark, project_entity, project_role};
    assert_eq!(duration(&json!(1800)), json!("30m"));
    assert_eq!(duration(&json!(3600)), json!("1h"));
    assert_eq!(duration(&json!(90)), json!("90s"));
    assert_eq!(duration(&json!("30m")), json!("30m"));
    // The header of an earlier version (no platform) names the user; it is claimed only through the inventory.
    assert_eq!(
        policy_mark(
            "# Managed by tenantry for user alice; edits are overwritten on the next apply.\npath \"x\" {}",
            "kubernetes"
        ),
        Mark::Legacy(Owner::User("alice".into()))
    );
    assert_eq!(
        policy_mark(
            "# Managed by tenantry for user alice on platform lab; edits are overwritten on the next apply.\n",
            "lab"
        ),
        Mark::Ours(Owner::User("alice".into()))
    );
    assert_eq!(policy_mark("path \"x\" {}", "lab"), Mark::Unmarked);
    let (entity, mark) = project_entity(
        &json!({
            "name": "alice", "policies": ["p2", "p1", ""], "disabled": false, "id": "x",
            "metadata": { "managed-by": "tenantry", "tenantry-user": "alice", "team": "blue" }
        }),
        "lab",
    );
    assert_eq!(
        entity,
        json!({ "name": "alice", "policies": ["p1", "p2"], "disabled": false,
                "metadata": { "managed-by": "tenantry", "tenantry-user": "alice" } })
    );
    assert_eq!(mark, Mark::Legacy(Owner::User("alice".into())));
    let (_, mark) = project_entity(
        &json!({ "name": "alice", "metadata": { "managed-by": "tenantry", "tenantry-user": "alice", "tenantry-platform": "prod" } }),
        "lab",
    );
    assert_eq!(mark, Mark::Foreign { platform: "prod".into() });
    let (role, mark) = project_role(
        "a-deployer",
        &json!({
            "allowed_kubernetes_namespaces": ["a"], "kubernetes_role_type": "role", "kubernetes_role_name": "a-deployer",
            "token_default_ttl": 1800, "token_max_ttl": 3600, "extra_annotations": {}
        }),
        "lab",
    );
    assert_eq!(role["kubernetes_role_type"], "Role");
    assert_eq!((role["token_default_ttl"].as_str(), role["token_max_ttl"].as_str()), (Some("30m"), Some("1h")));
    assert_eq!(mark, Mark::Unmarked, "an unmarked role is adopted, not claimed");
}

#[tokio::test]
async fn offboarding_disables_the_entity_and_detaches_its_policies() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let vault = target(&config).await;
    let engine = engine(vec![Arc::new(vault)], &config);
    apply(&engine, &roster(&owners(&id, &["alice", "bob"])), Policy::default()).await;
    let after = roster(&owners(&id, &["alice"]));
    let bob = format!("vt-bob-{id}");

    let departing = engine.prepare(&after, Policy::default()).await.unwrap();
    assert_eq!(action(&departing, &format!("vault/Entity/-/{bob}")), Some(Action::Departing));
    let (prepared, _) = apply(&engine, &after, Policy { offboard: true, ..Policy::default() }).await;
    assert_eq!(action(&prepared, &format!("vault/Entity/-/{bob}")), Some(Action::Cut));
    assert_eq!(action(&prepared, &format!("vault/Policy/-/namespace-owner-{bob}")), Some(Action::Kept));
    let (_, entity) = bao("GET", &format!("identity/entity/name/{bob}"), None).await;
    assert_eq!(entity["data"]["disabled"], true);
    assert_eq!(entity["data"]["policies"], json!([]));
    assert_eq!(entity["data"]["metadata"]["tenantry-user"], bob, "the cut keeps the marks");
    let (status, _) = bao("GET", &format!("sys/policies/acl/namespace-owner-{bob}"), None).await;
    assert_eq!(status, 200, "data-bearing grants are kept until the destroy stage");
    let settled = engine.prepare(&after, Policy { offboard: true, ..Policy::default() }).await.unwrap();
    assert!(changes(&settled).is_empty(), "{:#?}", changes(&settled));
}

#[tokio::test]
async fn destroy_user_backs_up_every_secret_then_removes_everything() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let vault = target(&config).await;
    let engine = engine(vec![Arc::new(vault.clone())], &config);
    apply(&engine, &roster(&owners(&id, &["alice", "bob"])), Policy::default()).await;
    let alice = format!("vt-alice-{id}");
    let bob = format!("vt-bob-{id}");
    for (path, value) in
        [(alice.clone(), "root"), (format!("{alice}/db"), "hunter2"), (format!("{alice}/apps/web/api"), "k-123")]
    {
        ok("POST", &format!("secret/data/{path}"), json!({ "data": { "value": value } })).await;
    }
    ok("POST", &format!("secret/data/{bob}/db"), json!({ "data": { "value": "bobs" } })).await;

    let dir = tempfile::tempdir().unwrap();
    let report =
        vault.destroy_user(&alice, &tenantry_engine::BackupDir::new(dir.path().join("backups"))).await.unwrap();
    assert_eq!(report.secrets, 3);
    assert_eq!(report.removed.len(), 3, "policy, entity, role: {:?}", report.removed);

    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&report.backup).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let backup: Value = serde_json::from_slice(&std::fs::read(&report.backup).unwrap()).unwrap();
    assert_eq!(backup["kv"]["secrets"][format!("{alice}/apps/web/api")]["value"], "k-123");
    assert_eq!(backup["kv"]["secrets"][&alice]["value"], "root");
    assert!(
        backup["policies"][format!("namespace-owner-{alice}")]
            .as_str()
            .unwrap()
            .contains(&format!("secret/data/{alice}"))
    );
    assert_eq!(backup["entities"][&alice]["metadata"]["tenantry-user"], alice);
    assert_eq!(backup["aliases"][0]["name"], format!("{alice}@example.org"));
    assert!(backup["kubernetes_roles"].as_object().unwrap().keys().any(|k| k.ends_with(&format!("{alice}-deployer"))));

    for path in [
        format!("sys/policies/acl/namespace-owner-{alice}"),
        format!("identity/entity/name/{alice}"),
        format!("{}/roles/{alice}-deployer", config.kubernetes_secrets_mount),
        format!("secret/metadata/{alice}/db"),
        format!("secret/metadata/{alice}"),
        format!("secret/metadata/{alice}/apps/web/api"),
    ] {
        assert_eq!(bao("GET", &path, None).await.0, 404, "{path} is gone");
    }
    assert!(aliases_named(&format!("{alice}@example.org"), &accessor(&config.oidc_mount).await).await.is_empty());
    assert_eq!(bao("GET", &format!("secret/data/{bob}/db"), None).await.0, 200, "bob is untouched");

    // A second destroy finds nothing left and never overwrites the first backup.
    let second =
        vault.destroy_user(&alice, &tenantry_engine::BackupDir::new(dir.path().join("backups"))).await.unwrap();
    assert_ne!(second.backup, report.backup);
    assert!(second.removed.is_empty() && second.secrets == 0);
}

#[tokio::test]
async fn the_engine_destroy_stage_uses_the_inventory() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let vault = target(&config).await;
    let engine = engine(vec![Arc::new(vault)], &config);
    apply(&engine, &roster(&owners(&id, &["alice", "bob"])), Policy::default()).await;
    let bob = format!("vt-bob-{id}");
    ok("POST", &format!("secret/data/{bob}/x"), json!({ "data": { "k": "v" } })).await;
    let after = roster(&owners(&id, &["alice"]));
    apply(&engine, &after, Policy { offboard: true, ..Policy::default() }).await;

    let plan = engine.destroy_plan(&after, &bob).await.unwrap();
    assert_eq!(plan.by_target["vault"].len(), 4, "{:?}", plan.by_target);
    let dir = tempfile::tempdir().unwrap();
    let report = engine.destroy(&plan, dir.path(), "test").await.unwrap();
    assert!(report.is_success(), "{:?}", report.targets);
    let done = report.targets["vault"].as_ref().unwrap();
    assert_eq!(done.backups.len(), 1);
    assert_eq!(bao("GET", &format!("secret/data/{bob}/x"), None).await.0, 404);
    assert_eq!(bao("GET", &format!("identity/entity/name/{bob}"), None).await.0, 404);
}

// ------------------------------------------------------------ KV roster source

#[tokio::test]
async fn read_kv_field_reads_one_field_and_explains_each_failure() {
    let id = run_id();
    let path = format!("vt-platform-{id}");
    ok("POST", &format!("secret/data/{path}"), json!({ "data": { "k8s_users": "{\"alice\":{}}", "count": 3 } })).await;
    let root = peer().token;
    let dir = tempfile::tempdir().unwrap();
    let token_file = |token: &str, name: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        let file = dir.path().join(name);
        std::fs::write(&file, token).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        VaultConfig { token_file: Some(file), ..VaultConfig::new(peer().addr) }
    };
    let config = token_file(&root, "root-token");

    assert_eq!(tenantry_vault::read_kv_field(&config, "secret", &path, "k8s_users").await.unwrap(), "{\"alice\":{}}");
    assert_eq!(tenantry_vault::read_kv_field(&config, "secret", &path, "count").await.unwrap(), "3");
    let missing =
        tenantry_vault::read_kv_field(&config, "secret", &format!("{path}-nope"), "k8s_users").await.unwrap_err();
    assert!(matches!(missing, Error::MissingPath { .. }), "{missing}");
    let no_key = tenantry_vault::read_kv_field(&config, "secret", &path, "k8s_user").await.unwrap_err();
    assert!(matches!(no_key, Error::MissingKey { .. }), "{no_key}");
    assert!(no_key.to_string().contains("count, k8s_users"), "{no_key}");
    assert!(!no_key.to_string().contains("alice"), "values are never shown");

    let (_, limited) = bao("POST", "auth/token/create", Some(json!({ "policies": ["default"], "ttl": "10m" }))).await;
    let limited = token_file(limited["auth"]["client_token"].as_str().unwrap(), "limited-token");
    let denied = tenantry_vault::read_kv_field(&limited, "secret", &path, "k8s_users").await.unwrap_err();
    assert!(matches!(denied, Error::PermissionDenied { .. }), "{denied}");
    assert!(denied.to_string().contains(&format!("secret/data/{path}")), "{denied}");
}

/// Issue #11, finding 3, on the real OpenBao. A namespace-owner's policy covers
/// `secret/data/<key>/*`: keyed like the roster's own KV path, a user could rewrite the
/// roster and grant themselves cluster-admin at the next apply.
#[tokio::test]
async fn a_user_keyed_like_the_rosters_vault_path_is_refused_and_accepted_users_cannot_write_the_roster() {
    let id = run_id();
    let config = config(&id);
    mounts(&config).await;
    let path = format!("vt-roster-{id}");
    let source = format!("vault://secret/{path}#roster");
    let store = |text: String| {
        let path = path.clone();
        async move { ok("POST", &format!("secret/data/{path}"), json!({ "data": { "roster": text } })).await }
    };

    // The attack, reproduced where validation cannot see the path (the same text read from a file):
    // the policy tenantry derives for this key lets its token write the roster.
    let hostile =
        format!("users:\n  {path}: {{ email: {path}@example.org, tier: namespace-owner, namespaces: [{path}] }}\n");
    store(hostile.clone()).await;
    let engine = engine(vec![Arc::new(target(&config).await)], &config);
    apply(&engine, &roster(&hostile), Policy::default()).await;
    let token = policy_token(&format!("namespace-owner-{path}")).await;
    let (status, _) =
        bao_as(&token, "POST", &format!("secret/data/{path}"), Some(json!({ "data": { "roster": "rewritten" } })))
            .await;
    assert_eq!(status, 200, "the precondition: this key's policy covers the roster's entry");
    store(hostile.clone()).await;

    // Read from where it lives, the roster is refused at validation.
    let text = kv_roster(&path).await;
    let refused = tenantry_model::load(&source, text.as_bytes(), &Default::default()).unwrap_err();
    let codes: Vec<_> = refused.items.iter().map(|d| (d.code, d.span.line, d.span.column)).collect();
    assert_eq!(codes, [("reserved-user-key", 2, 3)], "{refused}");
    assert!(refused.items[0].message.contains(&format!("stored at `{source}`")), "{refused}");

    // An accepted roster at the same place: its user's token reaches their own subtree, never the roster.
    let accepted = owners(&id, &["alice"]);
    store(accepted.clone()).await;
    let text = kv_roster(&path).await;
    let roster = tenantry_model::load(&source, text.as_bytes(), &Default::default()).unwrap();
    apply(&engine, &roster, Policy::default()).await;
    let alice = format!("vt-alice-{id}");
    let token = policy_token(&format!("namespace-owner-{alice}")).await;
    let (own, _) =
        bao_as(&token, "POST", &format!("secret/data/{alice}/app"), Some(json!({ "data": { "k": "v" } }))).await;
    assert_eq!(own, 200, "the user's own subtree is writable: the token works");
    for (method, target_path) in [
        ("POST", format!("secret/data/{path}")),
        ("PUT", format!("secret/data/{path}")),
        ("DELETE", format!("secret/data/{path}")),
        ("DELETE", format!("secret/metadata/{path}")),
        ("POST", format!("secret/data/{path}/x")),
        ("GET", format!("secret/data/{path}")),
    ] {
        let body = (method != "GET" && method != "DELETE").then(|| json!({ "data": { "roster": "rewritten" } }));
        let (status, answer) = bao_as(&token, method, &target_path, body).await;
        assert_eq!(status, 403, "{method} {target_path}: {answer}");
    }
    assert_eq!(kv_roster(&path).await, accepted, "the roster is untouched");
}

/// A token carrying exactly `policy` (what the user's entity carries at login).
async fn policy_token(policy: &str) -> String {
    let created =
        ok("POST", "auth/token/create", json!({ "policies": [policy], "no_default_policy": true, "ttl": "10m" })).await;
    created["auth"]["client_token"].as_str().unwrap().to_string()
}

/// The roster text at `secret/<path>`, read the way tenantry reads a `vault://` source
/// (the token from a file only its owner reads).
async fn kv_roster(path: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, peer().token).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = VaultConfig { token_file: Some(file), ..VaultConfig::new(peer().addr) };
    tenantry_vault::read_kv_field(&config, "secret", path, "roster").await.unwrap()
}

// ------------------------------------------------------------ end to end

/// Kubernetes objects the secrets engine needs: a service account allowed to
/// create service accounts, their tokens and role bindings to existing roles.
async fn engine_service_account(admin: &kube::Client, id: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    use kube::api::{Api, PostParams};
    let ns = format!("vt-sys-{id}");
    let pp = PostParams::default();
    Api::<Namespace>::all(admin.clone())
        .create(&pp, &serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap())
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
    accounts.create(&pp, &serde_json::from_value(json!({ "metadata": { "name": "bao" } })).unwrap()).await.unwrap();
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": { "name": format!("vt-bao-{id}") },
        "rules": [
            { "apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"] },
            { "apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "delete", "get"] },
            { "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "clusterrolebindings"], "verbs": ["create", "delete", "get"] },
            { "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "clusterroles"], "verbs": ["bind", "escalate", "create", "delete", "get"] },
        ]
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone()).create(&pp, &role).await.unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": { "name": format!("vt-bao-{id}") },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("vt-bao-{id}") },
        "subjects": [{ "kind": "ServiceAccount", "name": "bao", "namespace": ns }]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone()).create(&pp, &binding).await.unwrap();
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 3600 } })).unwrap();
    let token = accounts.create_token_request("bao", &pp, &request).await.unwrap();
    token.status.unwrap().token.unwrap()
}

/// A kube client that authenticates with a bearer token (the one Vault minted).
async fn client_with_token(token: &str) -> kube::Client {
    let env = tenantry_testenv::TestEnv::load();
    let server = env.get("KUBE_APISERVER_URL").unwrap().to_string();
    let ca = env.get("KUBE_CA_FILE").unwrap().to_string();
    let kubeconfig = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "minted",
        "clusters": [{ "name": "test", "cluster": { "server": server, "certificate-authority": ca } }],
        "users": [{ "name": "minted", "user": { "token": token } }],
        "contexts": [{ "name": "minted", "context": { "cluster": "test", "user": "minted" } }],
    }))
    .unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    kube::Client::try_from(config).unwrap()
}

fn deployments(client: &kube::Client, namespace: &str) -> kube::Api<kube::api::DynamicObject> {
    let gvk = kube::core::GroupVersionKind::gvk("apps", "v1", "Deployment");
    kube::Api::namespaced_with(client.clone(), namespace, &kube::core::ApiResource::from_gvk(&gvk))
}

fn deployment(name: &str) -> kube::api::DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": name },
        "spec": { "replicas": 0, "selector": { "matchLabels": { "app": name } },
                  "template": { "metadata": { "labels": { "app": name } },
                                "spec": { "containers": [{ "name": "c", "image": "example.invalid/none" }] } } }
    }))
    .unwrap()
}

/// Log in through an AppRole whose role_id is the email: like an OIDC login,
/// Vault maps it to the alias named by the email on that mount (auto-creating
/// entity and alias on the first login).
async fn login(mount: &str, role_id: &str, secret_id: &str) -> Value {
    let body = json!({ "role_id": role_id, "secret_id": secret_id });
    let (status, answer) = bao_as("", "POST", &format!("auth/{mount}/login"), Some(body)).await;
    assert_eq!(status, 200, "login as {role_id}: {answer}");
    answer["auth"].clone()
}

#[tokio::test]
async fn end_to_end_a_login_mints_a_deployer_token_for_exactly_the_users_namespace() {
    use kube::api::{Patch, PatchParams, PostParams};
    tenantry_testenv::install_crypto_provider();
    let id = run_id();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let admin = kube.client().await.unwrap();

    // The login mount is AppRole here, to keep this deployer-token test
    // independent of the identity provider; its alias name is the role_id,
    // set to the email, so a login resolves through the alias tenantry manages
    // on its `oidc_mount` as an OIDC login with the email claim does. The real
    // OIDC sign-in through Keycloak and its adoption are in `vault/oidc.rs`.
    let config = VaultConfig { oidc_mount: format!("vt-login-{id}"), ..config(&id) };
    enable_auth(&config.oidc_mount, "approle").await;
    enable_secrets(&config.kubernetes_secrets_mount, "kubernetes").await;
    let jwt = engine_service_account(&admin, &id).await;
    let env = tenantry_testenv::TestEnv::load();
    let ca = std::fs::read_to_string(env.get("KUBE_CA_FILE").unwrap()).unwrap();
    ok(
        "POST",
        &format!("{}/config", config.kubernetes_secrets_mount),
        json!({ "kubernetes_host": kube.url, "kubernetes_ca_cert": ca, "service_account_jwt": jwt, "disable_local_ca_jwt": true }),
    )
    .await;

    let alice = format!("vt-alice-{id}");
    let bob = format!("vt-bob-{id}");
    let email = format!("{alice}@example.org");
    let role = format!("auth/{}/role/{alice}", config.oidc_mount);
    ok("POST", &role, json!({ "token_ttl": "10m" })).await;
    ok("POST", &format!("{role}/role-id"), json!({ "role_id": email })).await;
    let secret = ok("POST", &format!("{role}/secret-id"), json!({})).await;
    let secret = secret["data"]["secret_id"].as_str().unwrap().to_string();
    // A first login before tenantry ever ran: Vault auto-creates an entity and the alias.
    let first = login(&config.oidc_mount, &email, &secret).await;
    assert!(!first["policies"].as_array().unwrap().iter().any(|p| p == &json!(format!("namespace-owner-{alice}"))));

    let vault = target(&config).await;
    let kubernetes = tenantry_kubernetes::KubernetesTarget::from_client(admin.clone());
    let engine = engine(vec![Arc::new(kubernetes), Arc::new(vault)], &config);
    let roster = roster(&owners(&id, &["alice", "bob"]));
    let (prepared, _) = apply(&engine, &roster, Policy::default()).await;
    assert_eq!(action(&prepared, &format!("vault/EntityAlias/{}/{email}", config.oidc_mount)), Some(Action::Adopt));
    assert!(changes(&engine.prepare(&roster, Policy::default()).await.unwrap()).is_empty());

    // The same login now lands on alice's entity and carries her policy.
    let auth = login(&config.oidc_mount, &email, &secret).await;
    let token = auth["client_token"].as_str().unwrap().to_string();
    let (_, me) = bao_as(&token, "GET", "auth/token/lookup-self", None).await;
    let (_, entity) = bao("GET", &format!("identity/entity/name/{alice}"), None).await;
    assert_eq!(me["data"]["entity_id"], entity["data"]["id"]);
    assert_eq!(me["data"]["identity_policies"], json!([format!("namespace-owner-{alice}")]));
    assert_eq!(aliases_named(&email, &accessor(&config.oidc_mount).await).await.len(), 1);

    // Alias → entity → policy: her KV subtree only.
    let (status, answer) =
        bao_as(&token, "POST", &format!("secret/data/{alice}/x"), Some(json!({ "data": { "v": "1" } }))).await;
    assert_eq!(status, 200, "{answer}");
    ok("POST", &format!("secret/data/{bob}/x"), json!({ "data": { "v": "bob" } })).await;
    assert_eq!(bao_as(&token, "GET", &format!("secret/data/{bob}/x"), None).await.0, 403);
    assert_eq!(bao_as(&token, "GET", &format!("secret/data/{alice}/x"), None).await.0, 200);

    // Deployer credentials: for her namespace's role only.
    let creds_path = |ns: &str| format!("{}/creds/{ns}-deployer", config.kubernetes_secrets_mount);
    let (status, creds) =
        bao_as(&token, "POST", &creds_path(&alice), Some(json!({ "kubernetes_namespace": alice }))).await;
    assert_eq!(status, 200, "{creds}");
    assert_eq!(bao_as(&token, "POST", &creds_path(&bob), Some(json!({ "kubernetes_namespace": bob }))).await.0, 403);
    let minted = creds["data"]["service_account_token"].as_str().unwrap();

    for ns in [&alice, &bob] {
        deployments(&admin, ns).create(&PostParams::default(), &deployment("web")).await.unwrap();
    }
    // What Vault minted (a service account and a binding in alice's
    // namespace) is the lease's, not tenantry's: the next plan is empty.
    let replan = engine.prepare(&roster, Policy::default()).await.unwrap();
    let ours: Vec<String> = replan
        .plan
        .changes
        .iter()
        .filter(|c| c.owner.user() == Some(alice.as_str()) || c.owner.user() == Some(bob.as_str()))
        .map(|c| format!("{} {}", c.action.as_str(), c.id))
        .collect();
    // (The cluster is shared: other tests' users show up as departed.)
    assert!(ours.is_empty(), "{ours:#?}");
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> = kube::Api::namespaced(admin.clone(), &alice);
    let minted_account = accounts
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|a| a.metadata.annotations.as_ref().is_some_and(|n| n.get("tenantry.dev/user") == Some(&alice)))
        .expect("the minted service account is annotated with its user");
    assert!(
        minted_account.metadata.labels.unwrap_or_default().get("app.kubernetes.io/managed-by")
            != Some(&"tenantry".to_string()),
        "and not labelled as tenantry's"
    );

    let deployer = client_with_token(minted).await;
    let patch = json!({ "metadata": { "annotations": { "deployed-by": "vault" } } });
    deployments(&deployer, &alice)
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("the minted token must patch alice's deployment: {e}"));
    match deployments(&deployer, &bob).patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("the minted token must be forbidden in bob's namespace, got {other:?}"),
    }
}

#[test]
fn mount_paths_reach_derivation_in_the_form_the_target_uses() {
    let config = VaultConfig {
        kv_mount: "secret/".into(),
        kubernetes_secrets_mount: "/kubernetes/".into(),
        ..VaultConfig::new("http://127.0.0.1:1")
    };
    let settings = config.settings(Settings::default());
    assert_eq!((settings.vault_kv_mount.as_str(), settings.vault_kubernetes_mount.as_str()), ("secret", "kubernetes"));
}
