//! The admin tier's unlocked checkout (`git-crypt unlock`, the key from
//! `[host] git_crypt_key_file`, never the roster), with the real git-crypt:
//! other tiers keep the locked clone (ciphertext, SPEC §8.4).

use super::{ALICE_SINGLE, BOB, PLATFORM, Sandbox, git, run_ok};
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::sync::Arc;
use tenantry_core::{Policy, Settings, Target};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, State};
use tenantry_host::{HostConfig, HostTarget};

const SECRET: &str = "password = hunter2\n";

/// A repository with one git-crypt-encrypted file, and its key (0600).
fn crypt_repo(sandbox: &Sandbox) -> std::path::PathBuf {
    let bare = sandbox.repos.join("crypt.git");
    run_ok(Command::new("git").args(["init", "--quiet", "--bare", "-b", "master"]).arg(&bare));
    let seed = sandbox.base.join("crypt-seed");
    run_ok(Command::new("git").args(["clone", "--quiet"]).arg(&bare).arg(&seed));
    run_ok(Command::new("git-crypt").arg("init").current_dir(&seed));
    std::fs::write(seed.join(".gitattributes"), "secret.txt filter=git-crypt diff=git-crypt\n").unwrap();
    std::fs::write(seed.join("secret.txt"), SECRET).unwrap();
    std::fs::write(seed.join("README.md"), "plain\n").unwrap();
    git(&seed, &["add", ".gitattributes", "secret.txt", "README.md"]);
    git(&seed, &["commit", "--quiet", "-m", "secrets"]);
    git(&seed, &["push", "--quiet", "origin", "master"]);
    let key = sandbox.base.join("git-crypt.key");
    run_ok(Command::new("git-crypt").arg("export-key").arg(&key).current_dir(&seed));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    key
}

fn engine(sandbox: &Sandbox, config: HostConfig) -> Engine {
    let targets: Vec<Arc<dyn Target>> = vec![Arc::new(HostTarget::new(config))];
    let state = State::open(&sandbox.base.join("state.db")).unwrap();
    let settings = Settings { host_git_crypt_unlock: true, ..Settings::default() };
    Engine::new(targets, state, Arc::new(FixedClock("2026-11-28T12:00:00Z".into())), settings)
}

async fn apply(sandbox: &Sandbox, config: HostConfig, roster: &tenantry_model::Roster) -> ApplyReport {
    let engine = engine(sandbox, config);
    let prepared = engine.prepare(roster, Policy::default()).await.unwrap();
    engine.apply(roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap()
}

#[tokio::test]
async fn the_admin_checkout_is_unlocked_and_the_others_stay_locked() {
    if Command::new("git-crypt").arg("--version").output().is_err() {
        panic!("git-crypt is missing: install it (`sudo apt-get install -y git-crypt`; testenv/up installs it)");
    }
    let sandbox = Sandbox::new();
    let key = crypt_repo(&sandbox);
    let text = format!("{}{ALICE_SINGLE}{BOB}", PLATFORM.replace("@REPOS@", &sandbox.repos.display().to_string()))
        .replace("/infra.git\" }", "/crypt.git\" }");
    let roster = tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap();

    // A key file others can read is refused, and its bytes never show.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = HostConfig { git_crypt_key_file: Some(key.clone()), ..sandbox.config() };
    let refused = apply(&sandbox, config.clone(), &roster).await;
    let failures = format!("{:?}", refused.failures);
    assert!(failures.contains("has mode 0644"), "{failures}");
    let key_bytes = std::fs::read(&key).unwrap();
    assert!(!failures.contains(&String::from_utf8_lossy(&key_bytes[key_bytes.len() - 16..]).to_string()));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let report = apply(&sandbox, config.clone(), &roster).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    let alice = std::fs::read(sandbox.path("/home/alice/code/secret.txt")).unwrap();
    assert_eq!(String::from_utf8_lossy(&alice), SECRET, "the admin's checkout is unlocked");
    let bob = std::fs::read(sandbox.path("/home/bob/code/secret.txt")).unwrap();
    assert!(bob.starts_with(b"\0GITCRYPT"), "the power user's checkout stays locked: {bob:?}");
    assert_eq!(std::fs::read_to_string(sandbox.path("/home/bob/code/README.md")).unwrap(), "plain\n");

    // Converged: a second run changes nothing.
    let prepared = engine(&sandbox, config).prepare(&roster, Policy::default()).await.unwrap();
    let changed: Vec<String> =
        prepared.plan.changes.iter().filter(|c| c.action.is_change()).map(|c| c.id.to_string()).collect();
    assert!(changed.is_empty(), "{changed:?}");
}
