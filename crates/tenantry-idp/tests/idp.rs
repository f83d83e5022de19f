//! The idp target against the real Keycloak (`testenv/up keycloak`) and
//! against a local Authentik API fixture (`support/authentik.rs`): groups
//! applied, a no-op costed in requests, the cut, a missing account failing
//! only its user at plan, accounts created and disabled when configured,
//! and destroy keeping accounts unless asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tenantry_core::{Action, Policy, Settings, Target};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};
use tenantry_idp::{IdpConfig, IdpTarget, Provider};

#[path = "idp/authentik.rs"]
mod authentik;
#[path = "support/authentik.rs"]
mod fixture;
#[path = "idp/keycloak.rs"]
mod keycloak;

use tenantry_testenv::run_id;

fn roster(text: &str) -> tenantry_model::Roster {
    tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default())
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

/// A file only its owner reads, as the target requires for secrets.
fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn engine(target: &Arc<IdpTarget>) -> Engine {
    let settings = Settings { idp_disable_on_cut: target.config().disable_on_cut, ..Settings::default() };
    Engine::new(
        vec![Arc::clone(target) as Arc<dyn Target>],
        State::in_memory().unwrap(),
        Arc::new(FixedClock("2026-12-01T04:00:00Z".into())),
        settings,
    )
}

async fn apply(engine: &Engine, roster: &tenantry_model::Roster, policy: Policy) -> (Prepared, ApplyReport) {
    let prepared = engine.prepare(roster, policy).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
    let options = ApplyOptions { concurrency: 4, command: "test".into(), ..ApplyOptions::default() };
    let report = engine.apply(roster, &prepared, &options, &|_| {}).await.unwrap();
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

#[test]
fn config_is_checked_before_anything_connects() {
    let mut config = IdpConfig::new(Provider::Keycloak, "https://auth.example.org");
    assert_eq!(config.check().unwrap_err(), "`realm` is required for provider = \"keycloak\"");
    config.realm = Some("platform".into());
    assert!(config.check().is_ok());
    config.client_id = Some("tenantry".into());
    assert_eq!(config.check().unwrap_err(), "`client_id` and `client_secret_file` go together");
    let authentik = IdpConfig { client_id: Some("x".into()), ..IdpConfig::new(Provider::Authentik, "https://a") };
    assert!(authentik.check().unwrap_err().contains("takes an API token"));
    let plain = IdpConfig::new(Provider::Authentik, "auth.example.org");
    assert!(plain.check().unwrap_err().contains("must start with https://"));
    let context = tenantry_core::plugin::LoadContext { base: PathBuf::from("/etc/tenantry"), roster_dir: None };
    let loaded = tenantry_idp::load_config(
        serde_json::json!({ "provider": "keycloak", "url": "https://a", "realm": "r", "token_file": "idp.token" }),
        &context,
    )
    .unwrap();
    assert_eq!(loaded.token_file.as_deref(), Some(Path::new("/etc/tenantry/idp.token")));
    let unknown = tenantry_idp::load_config(serde_json::json!({ "provider": "okta", "url": "https://a" }), &context);
    assert!(unknown.unwrap_err().contains("unknown variant `okta`"));
}
