//! The host target against a sandbox root with the real `useradd --root`
//! and real git on local bare repositories, driven by the real engine
//! (derive → observe → diff → apply) on small rosters. Needs root.
//!
//! The attacks of a hostile tenant (issue #11), each reproduced against the
//! target and shown blocked, are in `host/*.rs` (modules of this one binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "host/doctor.rs"]
mod doctor;
#[path = "host/git_crypt.rs"]
mod git_crypt;
#[path = "host/platforms.rs"]
mod platforms;
#[path = "host/sessions.rs"]
mod sessions;
#[path = "host/system_accounts.rs"]
mod system_accounts;
#[path = "host/system_files.rs"]
mod system_files;
#[path = "host/tenant_files.rs"]
mod tenant_files;
#[path = "host/tenant_git.rs"]
mod tenant_git;

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tenantry_core::{Action, Change, Content, Owner, Policy, ResourceId, Settings, Target};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};
use tenantry_host::{
    Cmd, CommandRunner as _, DispatchSource, EnvFilePorts, HostConfig, HostTarget, PortConflict, RefreshOutcome,
    SystemRunner, destroy_account, ports, reconcile_port_sources,
};
use tenantry_model::Roster;

const PLATFORM: &str = r#"platform:
  name: lab
  api_server: https://k8s.example.org:6443
  oidc: { issuer_url: https://auth.example.org/o/kubernetes/, client_id: kubernetes }
  workstation:
    shell: /bin/bash
    tier_groups: { admin: [sudo, docker, code-shared], power-user: [docker], namespace-owner: [docker] }
    port_pools: { terminal: 3773, browser: 8931 }
    main_repo: { name: infra, url: "file://@REPOS@/infra.git" }
    repo_base: "file://@REPOS@/"
    extra_remote: { name: forge, url: "file://@REPOS@/forge.git" }
    dispatch_path: /etc/t3-serve/dispatch.json
    managed_files: [{ source: files/AGENTS.md, dest: .codex/AGENTS.md }]
    skeleton_links: [{ link: .claude/skills, target: /opt/base/skills }]
users:
"#;

const AGENTS_V1: &str = "<!-- managed by tenantry: edit files/AGENTS.md in the roster repo -->\nBe kind.\n";

/// A sandbox root, bare repositories and a roster directory in one tempdir.
struct Sandbox {
    /// Owned by the test that made the sandbox; `None` in a child process reusing it.
    _dir: Option<tempfile::TempDir>,
    base: PathBuf,
    root: PathBuf,
    repos: PathBuf,
}

fn run_ok(cmd: &mut Command) -> String {
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// git as root, for fixtures (bare repositories are root's).
fn git(dir: &Path, args: &[&str]) -> String {
    run_ok(
        Command::new("git")
            .args(["-c", "safe.directory=*", "-c", "user.name=Test", "-c", "user.email=test@example.org", "-C"])
            .arg(dir)
            .args(args),
    )
}

impl Sandbox {
    /// The sandbox another process of this test made at `base`.
    fn reopen(base: &Path) -> Sandbox {
        Sandbox { _dir: None, base: base.to_path_buf(), root: base.join("root"), repos: base.join("repos") }
    }

    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        // Accounts created in the sandbox must be able to reach their homes and the repositories.
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nsudo:x:27:\ndocker:x:999:\naudio:x:29:\n").unwrap();
        std::fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        std::fs::write(root.join("etc/gshadow"), "root:*::\nsudo:*::\ndocker:!::\naudio:*::\n").unwrap();
        for name in ["shadow", "gshadow"] {
            std::fs::set_permissions(root.join("etc").join(name), std::fs::Permissions::from_mode(0o640)).unwrap();
        }

        let repos = base.join("repos");
        std::fs::create_dir_all(&repos).unwrap();
        run_ok(Command::new("git").args(["init", "--quiet", "--bare", "-b", "master"]).arg(repos.join("infra.git")));
        let seed = base.join("seed");
        run_ok(Command::new("git").args(["clone", "--quiet"]).arg(repos.join("infra.git")).arg(&seed));
        std::fs::write(seed.join("README.md"), "infra\n").unwrap();
        git(&seed, &["add", "README.md"]);
        git(&seed, &["commit", "--quiet", "-m", "first"]);
        git(&seed, &["push", "--quiet", "origin", "master"]);
        run_ok(
            Command::new("git")
                .args(["clone", "--quiet", "--bare"])
                .arg(repos.join("infra.git"))
                .arg(repos.join("forge.git")),
        );
        run_ok(
            Command::new("git")
                .args(["clone", "--quiet", "--bare"])
                .arg(repos.join("infra.git"))
                .arg(repos.join("tripit.git")),
        );

        std::fs::create_dir_all(base.join("roster/files")).unwrap();
        std::fs::write(base.join("roster/files/AGENTS.md"), AGENTS_V1).unwrap();
        // Bare repositories belong to root, the clones to the accounts: git refuses
        // that across owners unless told the directories are safe (real remotes are URLs).
        // (`-c` does not reach the upload-pack of a file:// clone; the system config does.)
        std::fs::write(base.join("gitconfig"), "[safe]\n\tdirectory = *\n").unwrap();
        let wrapper = base.join("git");
        // tenantry sets GIT_CONFIG_NOSYSTEM=1 for every git it runs; this root-owned file stands
        // for an admin's trusted system config and is the one thing the wrapper lets back in.
        let script = format!(
            "#!/bin/sh\nunset GIT_CONFIG_NOSYSTEM\nGIT_CONFIG_SYSTEM={} exec git \"$@\"\n",
            base.join("gitconfig").display()
        );
        std::fs::write(&wrapper, script).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        Sandbox { _dir: Some(dir), base, root, repos }
    }

    fn config(&self) -> HostConfig {
        HostConfig {
            source_dir: Some(self.base.join("roster")),
            backup_dir: Some(self.base.join("backups")),
            git: self.base.join("git"),
            ..HostConfig::sandbox(&self.root)
        }
    }

    fn target(&self) -> HostTarget {
        HostTarget::new(self.config())
    }

    fn roster(&self, users: &str) -> Roster {
        let text = format!("{}{users}", PLATFORM.replace("@REPOS@", &self.repos.display().to_string()));
        tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
    }

    /// A fresh engine on the persistent state database, as each CLI run would have.
    fn engine(&self, target: &HostTarget) -> Engine {
        let state = State::open(&self.base.join("state.db")).unwrap();
        let targets: Vec<Arc<dyn Target>> = vec![Arc::new(target.clone())];
        Engine::new(targets, state, Arc::new(FixedClock("2026-11-28T12:00:00Z".into())), Settings::default())
    }

    async fn plan(&self, roster: &Roster, policy: Policy) -> Prepared {
        self.engine(&self.target()).prepare(roster, policy).await.unwrap()
    }

    /// Plan and apply in one run; returns the report and the target's warnings.
    async fn apply_with(&self, roster: &Roster, policy: Policy) -> (ApplyReport, Vec<String>) {
        let target = self.target();
        let engine = self.engine(&target);
        let prepared = engine.prepare(roster, policy).await.unwrap();
        assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
        let report = engine.apply(roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
        let warnings = report.notes.iter().map(|note| note.message.clone()).collect();
        (report, warnings)
    }

    async fn apply(&self, roster: &Roster) -> ApplyReport {
        let (report, _) = self.apply_with(roster, Policy::default()).await;
        assert!(report.is_success(), "{:#?}", report.failures);
        report
    }

    async fn assert_no_changes(&self, roster: &Roster) {
        let prepared = self.plan(roster, Policy::default()).await;
        let changes: Vec<String> = prepared
            .plan
            .changes
            .iter()
            .filter(|c| c.action.is_change())
            .map(|c| format!("{} {}: {:?} -> {:?}", c.action.as_str(), c.id, c.before, c.after))
            .collect();
        assert!(changes.is_empty(), "expected a no-op plan, got {changes:#?}");
    }

    fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    fn ids(&self, os_user: &str) -> (u32, u32) {
        let passwd = std::fs::read_to_string(self.root.join("etc/passwd")).unwrap();
        let line = passwd.lines().find(|l| l.starts_with(&format!("{os_user}:"))).unwrap();
        let fields: Vec<&str> = line.split(':').collect();
        (fields[2].parse().unwrap(), fields[3].parse().unwrap())
    }

    /// git as the account, as the user would run it in their home.
    fn git_as(&self, os_user: &str, dir: &Path, args: &[&str]) -> String {
        let (uid, gid) = self.ids(os_user);
        run_ok(
            Command::new("git")
                .args(["-c", "safe.directory=*", "-c", "user.name=U", "-c", "user.email=u@example.org", "-C"])
                .arg(dir)
                .args(args)
                .env("HOME", self.path(&format!("/home/{os_user}")))
                .uid(uid)
                .gid(gid),
        )
    }

    fn group_members(&self, group: &str) -> BTreeSet<String> {
        let text = std::fs::read_to_string(self.root.join("etc/group")).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{group}:"))).unwrap();
        line.rsplit(':').next().unwrap().split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()
    }

    fn shadow(&self, os_user: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.root.join("etc/shadow")).unwrap();
        let line = text.lines().find(|l| l.starts_with(&format!("{os_user}:"))).unwrap();
        line.split(':').map(str::to_string).collect()
    }
}

fn change<'a>(prepared: &'a Prepared, id: &str) -> Option<&'a Change> {
    prepared.plan.changes.iter().find(|c| c.id.to_string() == id)
}

fn desired_text(prepared: &Prepared, id: &str) -> String {
    let id: ResourceId = id.parse().unwrap();
    prepared.desired.get(&id).unwrap().content.to_value()["text"].as_str().unwrap().to_string()
}

const ALICE_SINGLE: &str = "  alice: { email: alice@example.org, tier: admin, workstation: { code_layout: single } }\n";
const BOB: &str = "  bob: { email: bob@example.org, tier: power-user, workstation: {} }\n";

// ---- accounts ---------------------------------------------------------------

#[tokio::test]
async fn accounts_are_created_locked_with_a_private_home_and_a_second_apply_is_a_no_op() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    let (report, warnings) = sandbox.apply_with(&roster, Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);

    let passwd = std::fs::read_to_string(sandbox.root.join("etc/passwd")).unwrap();
    let alice = passwd.lines().find(|l| l.starts_with("alice:")).unwrap();
    assert!(alice.ends_with(":alice@example.org:/home/alice:/bin/bash"), "{alice}");
    let home = std::fs::metadata(sandbox.path("/home/alice")).unwrap();
    assert_eq!(home.permissions().mode() & 0o7777, 0o700);
    assert_eq!((home.uid(), home.gid()), sandbox.ids("alice"));
    // Password locked, login open.
    let shadow = sandbox.shadow("alice");
    assert!(shadow[1].starts_with('!'), "{shadow:?}");
    assert_eq!(shadow[7], "");
    // Tier groups that exist; the missing one is a warning, not a failure.
    assert!(sandbox.group_members("sudo").contains("alice"));
    assert!(sandbox.group_members("docker").contains("alice"));
    assert!(sandbox.group_members("docker").contains("bob"));
    assert!(!sandbox.group_members("sudo").contains("bob"));
    assert!(warnings.iter().any(|w| w.contains("`code-shared`") && w.contains("alice")), "{warnings:?}");

    sandbox.assert_no_changes(&roster).await;
}

#[tokio::test]
async fn groups_are_only_ever_added() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(ALICE_SINGLE);
    sandbox.apply(&roster).await;

    // The admin adds alice to a group by hand: tenantry leaves it.
    run_ok(Command::new("usermod").arg("--root").arg(&sandbox.root).args(["-a", "-G", "audio", "alice"]));
    sandbox.assert_no_changes(&roster).await;

    // The missing tier group appears on the host: the next apply adds alice.
    let mut group = std::fs::read_to_string(sandbox.root.join("etc/group")).unwrap();
    group.push_str("code-shared:x:1500:\n");
    std::fs::write(sandbox.root.join("etc/group"), group).unwrap();
    let mut gshadow = std::fs::read_to_string(sandbox.root.join("etc/gshadow")).unwrap();
    gshadow.push_str("code-shared:!::\n");
    std::fs::write(sandbox.root.join("etc/gshadow"), gshadow).unwrap();
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let account = change(&prepared, "host/Account/-/alice").unwrap();
    assert_eq!(account.action, Action::Update);
    let commands = sandbox.target().commands_for(account).unwrap();
    assert_eq!(
        commands,
        vec![format!("usermod --root {} --append --groups code-shared alice", sandbox.root.display())]
    );
    sandbox.apply(&roster).await;
    assert!(sandbox.group_members("code-shared").contains("alice"));

    // A demotion (admin → power-user) takes nothing away without --allow-revoke.
    let demoted = sandbox
        .roster("  alice: { email: alice@example.org, tier: power-user, workstation: { code_layout: single } }\n");
    sandbox.apply(&demoted).await;
    for group in ["sudo", "docker", "code-shared", "audio"] {
        assert!(sandbox.group_members(group).contains("alice"), "alice lost {group}");
    }
    sandbox.assert_no_changes(&demoted).await;
}

#[tokio::test]
async fn an_existing_account_is_adopted_without_relocking_or_rechmodding() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("/home/alice")).unwrap();
    std::fs::write(sandbox.path("/home/alice/.profile"), "# mine\n").unwrap();
    run_ok(
        Command::new("useradd")
            .arg("--root")
            .arg(&sandbox.root)
            .args(["--no-create-home", "--home-dir", "/home/alice", "--shell", "/bin/sh", "--user-group"])
            .args(["--password", "$6$salt$hash", "--groups", "audio", "alice"]),
    );
    std::fs::set_permissions(sandbox.path("/home/alice"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (uid, gid) = sandbox.ids("alice");
    std::os::unix::fs::chown(sandbox.path("/home/alice"), Some(uid), Some(gid)).unwrap();

    let roster = sandbox.roster(ALICE_SINGLE);
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let adopt = change(&prepared, "host/Account/-/alice").unwrap();
    assert_eq!(adopt.action, Action::Adopt);
    assert_eq!(
        sandbox.target().commands_for(adopt).unwrap()[1..],
        [format!(
            "usermod --root {} --append --groups sudo,docker --shell /bin/bash --comment alice@example.org alice",
            sandbox.root.display()
        )]
    );
    sandbox.apply(&roster).await;
    assert_eq!(sandbox.shadow("alice")[1], "$6$salt$hash", "the password is not locked again");
    assert_eq!(std::fs::metadata(sandbox.path("/home/alice")).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::read_to_string(sandbox.path("/home/alice/.profile")).unwrap(), "# mine\n");
    for group in ["audio", "sudo", "docker"] {
        assert!(sandbox.group_members(group).contains("alice"), "{group}");
    }
    sandbox.assert_no_changes(&roster).await;
}

#[tokio::test]
async fn the_cut_locks_the_login_keeps_the_home_and_unmaps_routing() {
    let sandbox = Sandbox::new();
    let both = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    sandbox.apply(&both).await;
    let dispatch = sandbox.path("/etc/t3-serve/dispatch.json");
    assert!(std::fs::read_to_string(&dispatch).unwrap().contains("\"bob\""));

    let alice_only = sandbox.roster(ALICE_SINGLE);
    // Without --offboard bob is only shown as departing.
    let prepared = sandbox.plan(&alice_only, Policy::default()).await;
    assert_eq!(change(&prepared, "host/Account/-/bob").unwrap().action, Action::Departing);

    let offboard = Policy { offboard: true, ..Policy::default() };
    let prepared = sandbox.plan(&alice_only, offboard.clone()).await;
    let cut = change(&prepared, "host/Account/-/bob").unwrap();
    assert_eq!(cut.action, Action::Cut);
    assert_eq!(
        sandbox.target().commands_for(cut).unwrap(),
        vec![format!("usermod --root {} --lock --expiredate 1 bob", sandbox.root.display())]
    );
    let (report, _) = sandbox.apply_with(&alice_only, offboard.clone()).await;
    assert!(report.is_success(), "{:#?}", report.failures);

    assert_eq!(sandbox.shadow("bob")[7], "1", "the account is expired, so keys stop working too");
    assert!(sandbox.shadow("bob")[1].starts_with('!'));
    assert!(sandbox.path("/home/bob/code/.git").exists(), "the home and its checkout are kept");
    assert!(!std::fs::read_to_string(&dispatch).unwrap().contains("\"bob\""));
    assert!(!std::fs::read_to_string(sandbox.path("/etc/ttyd-user-map")).unwrap().contains("bob=bob"));

    // Already cut: nothing left to do for bob.
    let again = sandbox.plan(&alice_only, offboard).await;
    assert_eq!(change(&again, "host/Account/-/bob").unwrap().action, Action::Kept);
    assert!(!again.plan.has_changes(), "{:#?}", again.plan.changes);
}

#[tokio::test]
async fn parking_locks_and_unparking_unlocks() {
    let sandbox = Sandbox::new();
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    let parked = sandbox.roster("  alice: { email: alice@example.org, tier: admin, workstation: { parked: true } }\n");
    sandbox.apply(&parked).await;
    assert_eq!(sandbox.shadow("alice")[7], "1");
    sandbox.assert_no_changes(&parked).await;
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    assert_eq!(sandbox.shadow("alice")[7], "");
    assert!(sandbox.shadow("alice")[1].starts_with('!'), "the password stays locked");
    sandbox.assert_no_changes(&sandbox.roster(ALICE_SINGLE)).await;
}

// ---- ports ------------------------------------------------------------------

#[tokio::test]
async fn ports_land_in_each_users_env_file_and_the_sources_must_agree() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    sandbox.apply(&roster).await;

    let env_path = |user: &str| sandbox.path(&format!("/home/{user}/{}", ports::PORTS_ENV_RELATIVE));
    let alice_env = std::fs::read_to_string(env_path("alice")).unwrap();
    assert!(alice_env.starts_with("# Generated by tenantry"));
    assert!(alice_env.ends_with("TENANTRY_PORT_BROWSER=8931\nTENANTRY_PORT_TERMINAL=3773\n"), "{alice_env}");
    assert!(std::fs::read_to_string(env_path("bob")).unwrap().contains("TENANTRY_PORT_TERMINAL=3774\n"));
    assert_eq!(std::fs::metadata(env_path("alice")).unwrap().uid(), sandbox.ids("alice").0);

    // The three sources agree after an apply.
    let state = sandbox.engine(&sandbox.target()).with_state(|s| s.ports()).unwrap();
    let read_env = |user: &str| {
        let path = env_path(user);
        let text = std::fs::read_to_string(&path).unwrap();
        EnvFilePorts {
            os_user: user.to_string(),
            path: path.display().to_string(),
            ports: ports::parse_ports_env(&text, ["terminal", "browser"]),
        }
    };
    let dispatch_text = std::fs::read_to_string(sandbox.path("/etc/t3-serve/dispatch.json")).unwrap();
    let dispatch = DispatchSource { path: "/etc/t3-serve/dispatch.json", pool: "terminal", json: &dispatch_text };
    let mut env_files =
        BTreeMap::from([("alice".to_string(), read_env("alice")), ("bob".to_string(), read_env("bob"))]);
    let agreed = reconcile_port_sources(&state, Some(&dispatch), &env_files).unwrap();
    assert_eq!((agreed.reservations, agreed.ignored), (state.clone(), Vec::new()));

    // bob's env file (his own to edit) claims alice's port: set aside, naming both and where;
    // bob keeps his port and alice hers. (It used to stop the whole run: issue #11.)
    std::fs::write(env_path("bob"), "TENANTRY_PORT_TERMINAL=3773\nTENANTRY_PORT_BROWSER=8932\n").unwrap();
    env_files.insert("bob".to_string(), read_env("bob"));
    let reconciled = reconcile_port_sources(&BTreeMap::new(), Some(&dispatch), &env_files).unwrap();
    let conflict = reconciled.ignored.iter().find(|c| matches!(c, PortConflict::Shared { .. })).unwrap();
    let message = conflict.to_string();
    assert!(message.contains("3773") && message.contains("`alice`") && message.contains("`bob`"), "{message}");
    assert!(message.contains(&env_path("bob").display().to_string()), "{message}");
    assert_eq!(reconciled.reservations["alice"]["terminal"], 3773);
    assert_eq!(reconciled.reservations["bob"]["terminal"], 3774);
    let reconciled = reconcile_port_sources(&state, None, &env_files).unwrap();
    let moved: Vec<String> = reconciled.ignored.iter().map(ToString::to_string).collect();
    assert!(
        moved.iter().any(|m| m.contains("`bob`'s terminal port is 3774 in the state database but 3773 in")),
        "{moved:#?}"
    );
    assert_eq!(reconciled.reservations, state);

    // Observe sees the edited file as drift; apply puts the sticky port back.
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    assert_eq!(change(&prepared, "host/Port/terminal/bob").unwrap().action, Action::Update);
    sandbox.apply(&roster).await;
    assert!(std::fs::read_to_string(env_path("bob")).unwrap().contains("TENANTRY_PORT_TERMINAL=3774\n"));
    sandbox.assert_no_changes(&roster).await;
}

#[test]
fn port_sources_that_disagree_are_refused() {
    let state = BTreeMap::from([("alice".to_string(), BTreeMap::from([("terminal".to_string(), 3773)]))]);
    let bad = DispatchSource { path: "/etc/t3-serve/dispatch.json", pool: "terminal", json: "[1, 2]" };
    assert!(matches!(
        reconcile_port_sources(&state, Some(&bad), &BTreeMap::new()),
        Err(PortConflict::Unreadable { .. })
    ));
    let moved = DispatchSource {
        path: "/etc/t3-serve/dispatch.json",
        pool: "terminal",
        json: r#"{"alice-idp": {"os_user": "alice", "port": 3775}}"#,
    };
    let message = reconcile_port_sources(&state, Some(&moved), &BTreeMap::new()).unwrap_err().to_string();
    assert!(message.contains("3773 in the state database but 3775 in /etc/t3-serve/dispatch.json"), "{message}");
}

fn pools() -> BTreeMap<String, u16> {
    // Close first ports, so the pools run into each other.
    BTreeMap::from([("terminal".to_string(), 3773), ("browser".to_string(), 3776)])
}

#[derive(Debug, Clone)]
enum Edit {
    Add(u8),
    /// Leaves the roster; the reservation is kept (a departed user keeps their port).
    Remove(u8),
    /// Destroyed: the reservation is released.
    Destroy(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (0u8..12).prop_map(Edit::Add),
        1 => (0u8..12).prop_map(Edit::Remove),
        1 => (0u8..12).prop_map(Edit::Destroy),
    ]
}

proptest! {
    #[test]
    fn sticky_ports_never_move_and_are_never_shared(edits in proptest::collection::vec(edit(), 1..40)) {
        let mut roster: BTreeSet<String> = BTreeSet::new();
        let mut reserved: BTreeMap<String, BTreeMap<String, u16>> = BTreeMap::new();
        for edit in edits {
            match edit {
                Edit::Add(n) => { roster.insert(format!("user{n}")); }
                Edit::Remove(n) => { roster.remove(&format!("user{n}")); }
                Edit::Destroy(n) => {
                    roster.remove(&format!("user{n}"));
                    reserved.remove(&format!("user{n}"));
                }
            }
            let next = tenantry_core::derive::allocate_ports(&pools(), roster.iter().map(String::as_str), &reserved);
            for (user, held) in &reserved {
                prop_assert_eq!(next.get(user), Some(held), "{}'s ports moved", user);
            }
            for user in &roster {
                prop_assert_eq!(next.get(user).map(BTreeMap::len), Some(2), "{} lacks a port", user);
            }
            let all: Vec<u16> = next.values().flat_map(|p| p.values().copied()).collect();
            let unique: BTreeSet<u16> = all.iter().copied().collect();
            prop_assert_eq!(all.len(), unique.len(), "a port is shared: {:?}", next);
            reserved = next;
        }
    }
}

// ---- generated files --------------------------------------------------------

#[tokio::test]
async fn generated_files_are_written_byte_for_byte() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    sandbox.apply(&roster).await;
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    for (name, path) in [
        ("ttyd-user-map", "/etc/ttyd-user-map"),
        ("ttyd-admins", "/etc/ttyd-admins"),
        ("dispatch.json", "/etc/t3-serve/dispatch.json"),
    ] {
        let on_disk = std::fs::read(sandbox.path(path)).unwrap();
        assert_eq!(on_disk, desired_text(&prepared, &format!("host/GeneratedFile/-/{name}")).into_bytes(), "{path}");
        assert_eq!(std::fs::metadata(sandbox.path(path)).unwrap().permissions().mode() & 0o7777, 0o644);
    }
    assert_eq!(std::fs::read_to_string(sandbox.path("/etc/ttyd-admins")).unwrap().lines().last(), Some("alice"));

    // A hand edit is drift, and is overwritten.
    std::fs::write(sandbox.path("/etc/ttyd-user-map"), "alice=root\n").unwrap();
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    assert_eq!(change(&prepared, "host/GeneratedFile/-/ttyd-user-map").unwrap().action, Action::Update);
    sandbox.apply(&roster).await;
    sandbox.assert_no_changes(&roster).await;
}

fn hand_change(id: &str, action: Action, after: serde_json::Value) -> Change {
    Change {
        target: "host".to_string(),
        id: id.parse().unwrap(),
        owner: Owner::Platform,
        action,
        before: None,
        after: Some(Content::from_value(&after)),
        reason: "test".into(),
        origin: tenantry_model::Span::UNKNOWN,
        rule: "test",
        deps: Arc::from([]),
        sensitive: false,
        rank: 1,
        platform: tenantry_core::DEFAULT_PLATFORM.into(),
    }
}

#[tokio::test]
async fn a_failed_write_leaves_the_good_file_intact() {
    let sandbox = Sandbox::new();
    let target = sandbox.target();
    // A name the file system accepts but its temp sibling exceeds: the write fails before the rename.
    let name = "g".repeat(240);
    let path = format!("/etc/{name}");
    let good = hand_change(
        "host/GeneratedFile/-/long",
        Action::Create,
        serde_json::json!({ "path": path, "mode": "0644", "text": "good\n" }),
    );
    std::fs::write(sandbox.path(&path), "good\n").unwrap();
    let bad = hand_change(
        "host/GeneratedFile/-/long",
        Action::Update,
        serde_json::json!({ "path": path, "mode": "0644", "text": "partial" }),
    );
    let error = target.apply(&bad, &tenantry_core::Snapshot::default()).await.unwrap_err();
    assert!(error.to_string().contains("writing"), "{error}");
    assert_eq!(std::fs::read_to_string(sandbox.path(&path)).unwrap(), "good\n");
    let leftovers: Vec<_> = std::fs::read_dir(sandbox.path("/etc"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tenantry-tmp"))
        .collect();
    assert!(leftovers.is_empty());
    // The same content applies fine (nothing to write).
    target.apply(&good, &tenantry_core::Snapshot::default()).await.unwrap();
}

// ---- checkouts --------------------------------------------------------------

#[tokio::test]
async fn single_checkout_migrates_to_workspace_with_branches_and_dirty_work() {
    let sandbox = Sandbox::new();
    let single = sandbox.roster(ALICE_SINGLE);
    sandbox.apply(&single).await;
    let code = sandbox.path("/home/alice/code");
    assert_eq!(
        sandbox.git_as("alice", &code, &["remote", "get-url", "origin"]),
        format!("file://{}/infra.git", sandbox.repos.display())
    );
    assert_eq!(
        sandbox.git_as("alice", &code, &["remote", "get-url", "forge"]),
        format!("file://{}/forge.git", sandbox.repos.display())
    );
    assert_eq!(std::fs::metadata(code.join("README.md")).unwrap().uid(), sandbox.ids("alice").0);
    sandbox.assert_no_changes(&single).await;

    // Work in progress: a local branch with a commit, an edit, an untracked file.
    sandbox.git_as("alice", &code, &["checkout", "--quiet", "-b", "feature"]);
    std::fs::write(code.join("notes.txt"), "committed on feature\n").unwrap();
    sandbox.git_as("alice", &code, &["add", "notes.txt"]);
    sandbox.git_as("alice", &code, &["commit", "--quiet", "-m", "wip"]);
    sandbox.git_as("alice", &code, &["checkout", "--quiet", "master"]);
    std::fs::write(code.join("README.md"), "infra, edited\n").unwrap();
    std::fs::write(code.join("scratch.txt"), "untracked\n").unwrap();
    let inode = std::fs::metadata(code.join(".git")).unwrap().ino();

    let workspace = sandbox.roster(
        "  alice: { email: alice@example.org, tier: admin, workstation: { code_layout: workspace, repos: [tripit] } }\n",
    );
    let prepared = sandbox.plan(&workspace, Policy::default()).await;
    let migrate = change(&prepared, "host/Checkout/alice/infra").unwrap();
    assert_eq!(migrate.action, Action::Update);
    let commands = sandbox.target().commands_for(migrate).unwrap();
    assert!(commands.iter().all(|c| !c.contains(" clone ")), "a migration never re-clones: {commands:#?}");
    assert!(commands.iter().any(|c| c.starts_with("mv ")), "{commands:#?}");
    sandbox.apply(&workspace).await;

    let infra = code.join("infra");
    assert_eq!(std::fs::metadata(infra.join(".git")).unwrap().ino(), inode, "moved, not re-cloned");
    assert!(!code.join(".git").exists(), "~/code is now a plain directory");
    assert_eq!(std::fs::read_to_string(infra.join("README.md")).unwrap(), "infra, edited\n");
    assert_eq!(std::fs::read_to_string(infra.join("scratch.txt")).unwrap(), "untracked\n");
    assert_eq!(sandbox.git_as("alice", &infra, &["rev-parse", "--abbrev-ref", "HEAD"]), "master");
    assert!(sandbox.git_as("alice", &infra, &["branch", "--list", "feature"]).contains("feature"));
    assert_eq!(sandbox.git_as("alice", &infra, &["log", "-1", "--format=%s", "feature"]), "wip");
    assert!(code.join("tripit/.git").exists());
    assert_eq!(
        sandbox.git_as("alice", &code.join("tripit"), &["remote", "get-url", "origin"]),
        format!("file://{}/tripit.git", sandbox.repos.display())
    );
    assert_eq!(std::fs::metadata(&code).unwrap().uid(), sandbox.ids("alice").0);
    sandbox.assert_no_changes(&workspace).await;
}

#[tokio::test]
async fn a_workspace_repo_applied_before_the_main_repo_still_migrates_it() {
    let sandbox = Sandbox::new();
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    let code = sandbox.path("/home/alice/code");
    std::fs::write(code.join("wip.txt"), "unsaved\n").unwrap();
    let inode = std::fs::metadata(code.join(".git")).unwrap().ino();

    let workspace = sandbox.roster(
        "  alice: { email: alice@example.org, tier: admin, workstation: { code_layout: workspace, repos: [tripit] } }\n",
    );
    let prepared = sandbox.plan(&workspace, Policy::default()).await;
    let target = sandbox.target();
    // The engine runs both in one wave in any order; force the awkward one.
    target
        .apply(change(&prepared, "host/Checkout/alice/tripit").unwrap(), &tenantry_core::Snapshot::default())
        .await
        .unwrap();
    let parked = sandbox.path("/home/alice/.tenantry-migrating-code");
    assert_eq!(std::fs::metadata(parked.join(".git")).unwrap().ino(), inode, "parked, as a killed migration leaves it");
    assert!(code.join("tripit/.git").exists());
    assert!(!code.join(".git").exists());

    target
        .apply(change(&prepared, "host/Checkout/alice/infra").unwrap(), &tenantry_core::Snapshot::default())
        .await
        .unwrap();
    assert_eq!(std::fs::metadata(code.join("infra/.git")).unwrap().ino(), inode);
    assert_eq!(std::fs::read_to_string(code.join("infra/wip.txt")).unwrap(), "unsaved\n");
    assert!(!parked.exists());
    sandbox.apply(&workspace).await;
    sandbox.assert_no_changes(&workspace).await;
}

#[tokio::test]
async fn refresh_fast_forwards_only_a_clean_default_branch() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    sandbox.apply(&roster).await;
    let alice = sandbox.path("/home/alice/code");
    let bob = sandbox.path("/home/bob/code");
    std::fs::write(bob.join("README.md"), "bob's edit\n").unwrap();
    let bob_head = sandbox.git_as("bob", &bob, &["rev-parse", "HEAD"]);

    // Upstream moves on.
    let seed = sandbox.base.join("seed");
    std::fs::write(seed.join("CHANGELOG"), "second\n").unwrap();
    git(&seed, &["add", "CHANGELOG"]);
    git(&seed, &["commit", "--quiet", "-m", "second"]);
    git(&seed, &["push", "--quiet", "origin", "master"]);
    let upstream = git(&seed, &["rev-parse", "HEAD"]);

    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let content = |id: &str| prepared.desired.get(&id.parse().unwrap()).unwrap().content.clone();
    let target = sandbox.target();
    let outcome = target.refresh(&content("host/Checkout/alice/infra")).await.unwrap();
    assert_eq!(outcome, RefreshOutcome::FastForwarded { commits: 1 });
    assert_eq!(sandbox.git_as("alice", &alice, &["rev-parse", "HEAD"]), upstream);
    assert_eq!(target.refresh(&content("host/Checkout/alice/infra")).await.unwrap(), RefreshOutcome::UpToDate);

    let outcome = target.refresh(&content("host/Checkout/bob/infra")).await.unwrap();
    assert!(matches!(&outcome, RefreshOutcome::LeftAlone { reason } if reason.contains("uncommitted")), "{outcome:?}");
    assert_eq!(sandbox.git_as("bob", &bob, &["rev-parse", "HEAD"]), bob_head);
    assert_eq!(std::fs::read_to_string(bob.join("README.md")).unwrap(), "bob's edit\n");
    // Fetched all the same: the new commit is known, just not merged.
    assert_eq!(sandbox.git_as("bob", &bob, &["rev-parse", "origin/master"]), upstream);

    // The whole roster at once: alice is up to date, bob still dirty.
    let all = target.refresh_all(&prepared.desired, 4).await;
    let ids: Vec<String> = all.iter().map(|(id, _)| id.to_string()).collect();
    assert_eq!(ids, vec!["host/Checkout/alice/infra", "host/Checkout/bob/infra"]);
    assert_eq!(all[0].1.as_ref().unwrap(), &RefreshOutcome::UpToDate);
    assert!(matches!(all[1].1.as_ref().unwrap(), RefreshOutcome::LeftAlone { .. }));

    // On another branch: untouched too.
    sandbox.git_as("bob", &bob, &["stash", "--quiet"]);
    sandbox.git_as("bob", &bob, &["checkout", "--quiet", "-b", "topic"]);
    let outcome = target.refresh(&content("host/Checkout/bob/infra")).await.unwrap();
    assert!(matches!(&outcome, RefreshOutcome::LeftAlone { reason } if reason.contains("`topic`")), "{outcome:?}");
    assert_eq!(sandbox.git_as("bob", &bob, &["rev-parse", "HEAD"]), bob_head);
}

#[tokio::test]
async fn extra_remotes_are_wired_idempotently() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(ALICE_SINGLE);
    sandbox.apply(&roster).await;
    let code = sandbox.path("/home/alice/code");
    let forge = format!("file://{}/forge.git", sandbox.repos.display());

    sandbox.git_as("alice", &code, &["remote", "set-url", "forge", "https://elsewhere.example.org/x.git"]);
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let update = change(&prepared, "host/Checkout/alice/infra").unwrap();
    assert_eq!(update.action, Action::Update);
    let commands = sandbox.target().commands_for(update).unwrap();
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert!(commands[0].starts_with("[as alice] "), "{}", commands[0]);
    assert!(commands[0].ends_with(&format!("-C {} remote set-url forge {forge}", code.display())), "{}", commands[0]);
    sandbox.apply(&roster).await;
    assert_eq!(sandbox.git_as("alice", &code, &["remote", "get-url", "forge"]), forge);

    sandbox.git_as("alice", &code, &["remote", "remove", "forge"]);
    sandbox.apply(&roster).await;
    assert_eq!(sandbox.git_as("alice", &code, &["remote", "get-url", "forge"]), forge);
    sandbox.assert_no_changes(&roster).await;
    let remotes = sandbox.git_as("alice", &code, &["remote"]);
    assert_eq!(remotes.lines().collect::<Vec<_>>(), vec!["forge", "origin"]);
}

#[tokio::test]
async fn a_failed_clone_fails_only_that_checkout_and_is_retried() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!(
        "  alice: {{ email: alice@example.org, tier: admin, workstation: {{ code_layout: workspace, repos: [later] }} }}\n{BOB}"
    ));
    let (report, _) = sandbox.apply_with(&roster, Policy::default()).await;
    let failed: Vec<&str> = report.failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(failed, vec!["host/Checkout/alice/later"], "{:#?}", report.failures);
    assert!(report.failures[0].error.contains("clone"), "{}", report.failures[0].error);
    assert!(sandbox.path("/home/bob/code/.git").exists());
    assert!(sandbox.path("/home/alice/code/infra/.git").exists());
    assert!(!sandbox.path("/home/alice/code/later").exists());

    run_ok(
        Command::new("git")
            .args(["clone", "--quiet", "--bare"])
            .arg(sandbox.repos.join("infra.git"))
            .arg(sandbox.repos.join("later.git")),
    );
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    assert_eq!(change(&prepared, "host/Checkout/alice/later").unwrap().action, Action::Create);
    sandbox.apply(&roster).await;
    assert!(sandbox.path("/home/alice/code/later/.git").exists());
    sandbox.assert_no_changes(&roster).await;
}

#[tokio::test]
async fn a_directory_in_the_way_is_refused_not_cloned_over() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(ALICE_SINGLE);
    sandbox.apply(&roster).await;
    // The user replaces the checkout with a directory of their own.
    std::fs::remove_dir_all(sandbox.path("/home/alice/code")).unwrap();
    std::fs::create_dir_all(sandbox.path("/home/alice/code")).unwrap();
    std::fs::write(sandbox.path("/home/alice/code/mine.txt"), "mine\n").unwrap();
    let (report, _) = sandbox.apply_with(&roster, Policy::default()).await;
    assert_eq!(report.failures.len(), 1, "{:#?}", report.failures);
    assert!(report.failures[0].error.contains("is not a git checkout"), "{}", report.failures[0].error);
    assert_eq!(std::fs::read_to_string(sandbox.path("/home/alice/code/mine.txt")).unwrap(), "mine\n");
}

// ---- files in homes ---------------------------------------------------------

#[tokio::test]
async fn managed_files_are_refreshed_unless_customised_and_links_made_once() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    sandbox.apply(&roster).await;
    let agents = |user: &str| sandbox.path(&format!("/home/{user}/.codex/AGENTS.md"));
    assert_eq!(std::fs::read_to_string(agents("alice")).unwrap(), AGENTS_V1);
    assert_eq!(std::fs::metadata(agents("alice")).unwrap().uid(), sandbox.ids("alice").0);
    let link = sandbox.path("/home/alice/.claude/skills");
    assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("/opt/base/skills"));

    // bob customises his copy; the source moves on.
    std::fs::write(agents("bob"), "my own rules\n").unwrap();
    let v2 = "<!-- managed by tenantry: edit files/AGENTS.md in the roster repo -->\nBe kind, and brief.\n";
    std::fs::write(sandbox.base.join("roster/files/AGENTS.md"), v2).unwrap();
    // alice replaces the skeleton link with her own directory.
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(&link).unwrap();

    let prepared = sandbox.plan(&roster, Policy::default()).await;
    assert_eq!(change(&prepared, "host/ManagedFile/alice/.codex/AGENTS.md").unwrap().action, Action::Update);
    assert!(change(&prepared, "host/ManagedFile/bob/.codex/AGENTS.md").is_none());
    assert!(change(&prepared, "host/SkeletonLink/alice/.claude/skills").is_none());
    sandbox.apply(&roster).await;
    assert_eq!(std::fs::read_to_string(agents("alice")).unwrap(), v2);
    assert_eq!(std::fs::read_to_string(agents("bob")).unwrap(), "my own rules\n");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_dir());
    sandbox.assert_no_changes(&roster).await;
}

#[tokio::test]
async fn a_link_dropped_from_the_roster_is_removed_only_with_allow_revoke() {
    let sandbox = Sandbox::new();
    sandbox.apply(&sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"))).await;
    // bob made the path his own; alice still has tenantry's link.
    let bob_link = sandbox.path("/home/bob/.claude/skills");
    std::fs::remove_file(&bob_link).unwrap();
    std::os::unix::fs::symlink("/srv/bobs-skills", &bob_link).unwrap();

    let without_links = {
        let roster_text = format!(
            "{}{ALICE_SINGLE}{BOB}",
            PLATFORM
                .replace("@REPOS@", &sandbox.repos.display().to_string())
                .replace("    skeleton_links: [{ link: .claude/skills, target: /opt/base/skills }]\n", "")
        );
        tenantry_model::load("roster.yaml", roster_text.as_bytes(), &Default::default()).unwrap()
    };
    let prepared = sandbox.plan(&without_links, Policy::default()).await;
    assert_eq!(change(&prepared, "host/SkeletonLink/alice/.claude/skills").unwrap().action, Action::Withheld);
    let revoke = Policy { allow_revoke: true, ..Policy::default() };
    let (report, _) = sandbox.apply_with(&without_links, revoke.clone()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(!sandbox.path("/home/alice/.claude/skills").exists());
    assert_eq!(std::fs::read_link(&bob_link).unwrap(), PathBuf::from("/srv/bobs-skills"), "not tenantry's link");
    assert!(!sandbox.plan(&without_links, revoke).await.plan.has_changes());
}

#[tokio::test]
async fn files_are_never_written_through_a_link_the_user_planted() {
    let sandbox = Sandbox::new();
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    let outside = sandbox.base.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::remove_dir_all(sandbox.path("/home/alice/.kube")).unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.path("/home/alice/.kube")).unwrap();
    let (report, _) = sandbox.apply_with(&sandbox.roster(ALICE_SINGLE), Policy::default()).await;
    let failure = report.failures.iter().find(|f| f.id == "host/Kubeconfig/alice/config").unwrap();
    assert!(failure.error.contains("not a directory"), "{}", failure.error);
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
}

#[tokio::test]
async fn kubeconfig_is_written_once_and_never_overwritten() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(ALICE_SINGLE);
    sandbox.apply(&roster).await;
    let path = sandbox.path("/home/alice/.kube/config");
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), desired_text(&prepared, "host/Kubeconfig/alice/config"));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!((meta.uid(), meta.gid()), sandbox.ids("alice"));

    std::fs::write(&path, "# alice's own contexts\n").unwrap();
    sandbox.assert_no_changes(&roster).await;
    sandbox.apply(&roster).await;
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# alice's own contexts\n");
}

// ---- destroy ----------------------------------------------------------------

#[tokio::test]
async fn destroy_archives_the_home_before_removing_the_account() {
    let sandbox = Sandbox::new();
    sandbox.apply(&sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"))).await;
    std::fs::write(sandbox.path("/home/alice/thesis.txt"), "years of work\n").unwrap();

    let without_backup = HostConfig { backup_dir: None, ..sandbox.config() };
    let refused = destroy_account(&without_backup, "alice").unwrap_err();
    assert!(refused.to_string().contains("backup_dir"), "{refused}");
    assert!(sandbox.path("/home/alice/thesis.txt").exists());

    let archive = destroy_account(&sandbox.config(), "alice").unwrap();
    assert!(archive.starts_with(sandbox.base.join("backups")));
    assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600);
    let listing = run_ok(Command::new("tar").arg("-tzf").arg(&archive));
    assert!(listing.lines().any(|l| l == "alice/thesis.txt"), "{listing}");
    let extracted = sandbox.base.join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    run_ok(Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&extracted));
    assert_eq!(std::fs::read_to_string(extracted.join("alice/thesis.txt")).unwrap(), "years of work\n");

    assert!(!std::fs::read_to_string(sandbox.root.join("etc/passwd")).unwrap().contains("alice:"));
    assert!(!sandbox.path("/home/alice").exists());
    assert!(sandbox.path("/home/bob").exists());
    assert!(destroy_account(&sandbox.config(), "alice").is_err(), "nothing left to destroy");
}

// ---- commands ---------------------------------------------------------------

#[tokio::test]
async fn the_dry_run_shows_what_apply_runs() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(ALICE_SINGLE);
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let target = sandbox.target();
    let root = sandbox.root.display().to_string();
    let account = target.commands_for(change(&prepared, "host/Account/-/alice").unwrap()).unwrap();
    assert_eq!(
        account,
        vec![
            "# warning: group `code-shared` of `alice`'s tier does not exist on the host; skipped (create it and the next apply adds `alice`)".to_string(),
            format!("useradd --root {root} --create-home --home-dir /home/alice --shell /bin/bash --comment alice@example.org --user-group --groups sudo,docker alice"),
            format!("chmod 0700 {root}/home/alice"),
            format!("write alice's reserved ports into {root}/home/alice/.config/tenantry/ports.env (owner alice)"),
        ]
    );
    // Nothing was run: the account does not exist yet.
    assert!(!std::fs::read_to_string(sandbox.root.join("etc/passwd")).unwrap().contains("alice"));
    assert!(target.observe(&Default::default()).await.unwrap().resources.is_empty());
}

#[test]
fn commands_print_as_a_shell_would_read_them() {
    let mut cmd = Cmd::new("usermod", ["--comment", "Alice O'Neil", "--expiredate", "", "alice"]);
    cmd.run_as = Some("alice".to_string());
    // A command run as an account runs in a session of its own (no controlling terminal): shown as run.
    assert_eq!(
        cmd.to_string(),
        r#"[as alice] setsid --wait usermod --comment 'Alice O'\''Neil' --expiredate '' alice"#
    );
}

#[test]
fn a_command_past_its_timeout_is_killed() {
    let mut cmd = Cmd::new("sleep", ["5"]);
    cmd.timeout = Some(std::time::Duration::from_millis(100));
    let started = std::time::Instant::now();
    let output = SystemRunner.run(&cmd).unwrap();
    assert!(!output.success());
    assert!(output.stderr.contains("timed out"));
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}
