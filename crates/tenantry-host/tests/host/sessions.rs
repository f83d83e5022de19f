//! The session layer (`tenantry session save|restore`, SPEC §11.5, §8.5)
//! with the real tmux: a tmux server per test on a socket under the test's
//! tempdir, run as a sandbox account (never a real user's tmux).

use super::{Sandbox, run_ok};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use tenantry_host::session::{self, RestoreOutcome, SaveOutcome, Snapshot};
use tenantry_host::{HostConfig, SystemRunner};
use tenantry_model::SessionCommand;

/// A sandbox account with its own tmux socket; the server is killed when dropped.
struct Tenant {
    sandbox: Sandbox,
    user: &'static str,
    uid: u32,
    gid: u32,
    socket: PathBuf,
}

impl Drop for Tenant {
    fn drop(&mut self) {
        let _ = self.tmux_output(&["kill-server"]);
    }
}

impl Tenant {
    fn new(user: &'static str) -> Tenant {
        let sandbox = Sandbox::new();
        run_ok(Command::new("useradd").arg("--root").arg(&sandbox.root).args(["--create-home", "--user-group", user]));
        let (uid, gid) = sandbox.ids(user);
        let sockets = sandbox.base.join("tmux");
        std::fs::create_dir(&sockets).unwrap();
        std::os::unix::fs::chown(&sockets, Some(uid), Some(gid)).unwrap();
        let socket = sockets.join(format!("{user}.sock"));
        Tenant { sandbox, user, uid, gid, socket }
    }

    fn config(&self) -> HostConfig {
        HostConfig {
            tmux_socket: Some(self.sandbox.base.join("tmux/{user}.sock").display().to_string()),
            session_generations: 2,
            ..HostConfig::sandbox(&self.sandbox.root)
        }
    }

    fn home(&self) -> PathBuf {
        self.sandbox.path(&format!("/home/{}", self.user))
    }

    fn snapshot_file(&self, suffix: &str) -> PathBuf {
        PathBuf::from(format!("{}{suffix}", session::snapshot_path(&self.home()).display()))
    }

    /// tmux as the account, as the tenant would run it.
    fn tmux_output(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.home())
            .current_dir(self.home())
            .uid(self.uid)
            .gid(self.gid)
            .output()
            .unwrap()
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = self.tmux_output(args);
        assert!(output.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn start(&self, name: &str, dir: &Path, conversation: Option<&str>) {
        self.tmux(&["new-session", "-d", "-s", name, "-c", dir.to_str().unwrap()]);
        if let Some(id) = conversation {
            self.tmux(&["set-option", "-t", &format!("={name}:"), "@conversation", id]);
        }
    }

    fn running(&self) -> Vec<String> {
        let output = self.tmux_output(&["list-sessions", "-F", "#{session_name}"]);
        let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect();
        names.sort();
        names
    }

    fn mkdir(&self, name: &str) -> PathBuf {
        let dir = self.home().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(self.uid), Some(self.gid)).unwrap();
        dir
    }

    fn save(&self, config: &HostConfig) -> SaveOutcome {
        session::save(config, self.user, &SystemRunner).unwrap()
    }

    fn saved_names(&self, suffix: &str) -> Vec<String> {
        let bytes = std::fs::read(self.snapshot_file(suffix)).unwrap();
        Snapshot::parse(&bytes, self.user).unwrap().sessions.into_iter().map(|s| s.name).collect()
    }
}

/// A stand-in for the platform's agent: records its arguments, then waits.
fn fake_agent(tenant: &Tenant) -> PathBuf {
    let path = tenant.sandbox.base.join("agent");
    std::fs::write(&path, "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$HOME/resumed-$2\"\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn wait_for(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn sessions_are_saved_and_restored_after_the_tmux_server_is_killed_and_restore_twice_creates_nothing_twice() {
    let tenant = Tenant::new("alice");
    let config = tenant.config();
    let project = tenant.mkdir("project");
    tenant.start("work", &project, Some("conv-123"));
    tenant.start("notes", &tenant.home(), None);

    let saved = tenant.save(&config);
    assert!(matches!(saved, SaveOutcome::Saved { sessions: 2, .. }), "{saved:?}");
    let bytes = std::fs::read(tenant.snapshot_file("")).unwrap();
    let snapshot = Snapshot::parse(&bytes, "alice").unwrap();
    let work = snapshot.sessions.iter().find(|s| s.name == "work").unwrap();
    assert_eq!((work.dir.as_str(), work.conversation.as_deref()), (project.to_str().unwrap(), Some("conv-123")));
    // The tenant's file, private, in their home.
    let meta = std::fs::metadata(tenant.snapshot_file("")).unwrap();
    assert_eq!((std::os::unix::fs::MetadataExt::uid(&meta), meta_mode(&meta)), (tenant.uid, 0o600));
    assert!(matches!(tenant.save(&config), SaveOutcome::Unchanged { sessions: 2, .. }));

    tenant.tmux(&["kill-server"]);
    assert!(tenant.running().is_empty());
    // With no server, nothing is read: the snapshot stays.
    let kept = tenant.save(&config);
    assert!(matches!(kept, SaveOutcome::Kept { kept: 2, .. }), "{kept:?}");
    assert_eq!(std::fs::read(tenant.snapshot_file("")).unwrap(), bytes);

    let agent = fake_agent(&tenant);
    let command = SessionCommand {
        words: vec![agent.display().to_string(), "--resume".into(), "{conversation}".into()],
        span: Default::default(),
    };
    let restored = session::restore(&config, "alice", Some(&command), &SystemRunner).unwrap();
    assert_eq!(restored.created, ["notes", "work"], "{restored:?}");
    assert!(restored.failed.is_empty() && restored.present.is_empty(), "{restored:?}");
    assert_eq!(tenant.running(), ["notes", "work"]);
    // The conversation resumed as argv, in its directory, and recorded again for the next save.
    assert_eq!(wait_for(&tenant.home().join("resumed-conv-123")), "--resume\nconv-123\n");
    assert_eq!(
        tenant.tmux(&["display-message", "-p", "-t", "=work:", "#{pane_current_path}"]),
        project.to_str().unwrap()
    );
    assert_eq!(tenant.tmux(&["show-options", "-v", "-t", "=work:", "@conversation"]), "conv-123");

    let again = session::restore(&config, "alice", Some(&command), &SystemRunner).unwrap();
    assert_eq!(
        again,
        RestoreOutcome {
            from: restored.from.clone(),
            created: vec![],
            present: vec!["notes".into(), "work".into()],
            failed: vec![]
        }
    );
    assert_eq!(tenant.running(), ["notes", "work"]);
    // One session gone: only it comes back.
    tenant.tmux(&["kill-session", "-t", "=notes"]);
    let one = session::restore(&config, "alice", Some(&command), &SystemRunner).unwrap();
    assert_eq!((one.created, one.present), (vec!["notes".to_string()], vec!["work".to_string()]));
    assert!(matches!(tenant.save(&config), SaveOutcome::Unchanged { sessions: 2, .. }));
}

fn meta_mode(meta: &std::fs::Metadata) -> u32 {
    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
}

#[test]
fn a_failed_or_empty_read_keeps_the_last_good_snapshot_and_generations_rotate() {
    let tenant = Tenant::new("bob");
    let config = tenant.config();
    let home = tenant.home();
    tenant.start("a", &home, None);
    assert!(matches!(tenant.save(&config), SaveOutcome::Saved { sessions: 1, .. }));
    tenant.start("b", &home, None);
    assert!(matches!(tenant.save(&config), SaveOutcome::Saved { sessions: 2, .. }));
    tenant.start("c", &home, None);
    assert!(matches!(tenant.save(&config), SaveOutcome::Saved { sessions: 3, .. }));
    assert_eq!(tenant.saved_names(""), ["a", "b", "c"]);
    assert_eq!(tenant.saved_names(".1"), ["a", "b"]);
    assert_eq!(tenant.saved_names(".2"), ["a"]);
    tenant.start("d", &home, None);
    assert!(matches!(tenant.save(&config), SaveOutcome::Saved { sessions: 4, .. }));
    // Two generations kept: the oldest falls off.
    assert_eq!(tenant.saved_names(".1"), ["a", "b", "c"]);
    assert_eq!(tenant.saved_names(".2"), ["a", "b"]);
    assert!(!tenant.snapshot_file(".3").exists());

    let good = std::fs::read(tenant.snapshot_file("")).unwrap();
    let generation = std::fs::read(tenant.snapshot_file(".1")).unwrap();
    let scripts = tenant.sandbox.base.join("fake-tmux");
    std::fs::create_dir(&scripts).unwrap();
    let fake = |name: &str, body: &str| {
        let path = scripts.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        HostConfig { tmux: path, ..config.clone() }
    };
    let failing = [
        ("an empty listing", fake("empty", "exit 0")),
        ("a failing tmux", fake("fails", "echo 'lost server' >&2; exit 1")),
        ("a hanging tmux", HostConfig { session_timeout_secs: 1, ..fake("hangs", "exec sleep 30") }),
        ("garbage", fake("garbage", "echo 'not a session line'")),
        ("a missing tmux", HostConfig { tmux: scripts.join("absent"), ..config.clone() }),
    ];
    for (what, broken) in failing {
        let outcome = tenant.save(&broken);
        assert!(matches!(outcome, SaveOutcome::Kept { kept: 4, .. }), "{what}: {outcome:?}");
        assert_eq!(std::fs::read(tenant.snapshot_file("")).unwrap(), good, "{what}");
        assert_eq!(std::fs::read(tenant.snapshot_file(".1")).unwrap(), generation, "{what}");
        assert!(!tenant.snapshot_file(".new").exists(), "{what}");
    }
    tenant.tmux(&["kill-server"]);
    assert!(matches!(tenant.save(&config), SaveOutcome::Kept { kept: 4, .. }));
    assert_eq!(std::fs::read(tenant.snapshot_file("")).unwrap(), good);

    // A broken current file: restore falls back to the newest good generation.
    std::fs::write(tenant.snapshot_file(""), b"{\"version\": 1, \"user\": \"bob\", \"sess").unwrap();
    let restored = session::restore(&config, "bob", None, &SystemRunner).unwrap();
    assert_eq!(restored.from.as_deref(), Some(tenant.snapshot_file(".1").as_path()));
    assert_eq!(restored.created, ["a", "b", "c"]);
}

#[test]
fn the_snapshot_is_never_written_through_a_tenants_link() {
    let tenant = Tenant::new("carol");
    let config = tenant.config();
    tenant.start("work", &tenant.home(), None);
    let state = tenant.home().join(".local/state");
    std::fs::create_dir_all(&state).unwrap();
    let etc = tenant.sandbox.root.join("etc");
    std::os::unix::fs::symlink(&etc, state.join("tenantry")).unwrap();
    std::os::unix::fs::lchown(state.join("tenantry"), Some(tenant.uid), Some(tenant.gid)).unwrap();
    let error = session::save(&config, "carol", &SystemRunner).unwrap_err();
    assert!(error.to_string().contains("link"), "{error}");
    assert!(!etc.join("sessions.json").exists() && !etc.join("sessions.json.new").exists());
    // Nor restored from what a link points at.
    std::fs::write(etc.join("sessions.json"), b"{}").unwrap();
    let restored = session::restore(&config, "carol", None, &SystemRunner);
    assert!(restored.is_err(), "{restored:?}");
}

/// The timer and the boot service, generated from the roster, are accepted
/// by systemd itself, and go away when the roster stops configuring them.
#[tokio::test]
async fn the_session_units_are_verified_by_systemd_and_removed_when_no_longer_configured() {
    use std::sync::Arc;
    use tenantry_core::{Policy, Settings, Target};
    use tenantry_engine::{ApplyOptions, Engine, FixedClock, State};
    let sandbox = Sandbox::new();
    let text =
        format!("{}{}", super::PLATFORM.replace("@REPOS@", &sandbox.repos.display().to_string()), super::ALICE_SINGLE)
            .replace("    skeleton_links:", "    session_command: claude --resume {conversation}\n    skeleton_links:");
    let with = tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap();
    let without = sandbox.roster(super::ALICE_SINGLE);
    // A configuration path with a space and a `%`, to be quoted for systemd.
    let settings = Settings {
        host_tenantry_command: Some(vec!["/bin/true".into(), "--config".into(), "/etc/tenantry/50% of it.toml".into()]),
        ..Settings::default()
    };
    let apply = |roster: tenantry_model::Roster| {
        let targets: Vec<Arc<dyn Target>> = vec![Arc::new(sandbox.target())];
        let state = State::open(&sandbox.base.join("state.db")).unwrap();
        let engine = Engine::new(targets, state, Arc::new(FixedClock("2026-11-28T12:00:00Z".into())), settings.clone());
        async move {
            let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
            let report = engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
            assert!(report.is_success(), "{:#?}", report.failures);
            report.notes.into_iter().map(|note| note.message).collect::<Vec<_>>()
        }
    };
    let notes = apply(with).await;
    assert!(notes.iter().any(|n| n.contains("systemctl daemon-reload")), "{notes:#?}");
    let units = sandbox.path("/etc/systemd/system");
    let files = ["tenantry-session-save.service", "tenantry-session-save.timer", "tenantry-session-restore.service"];
    let verify = Command::new("systemd-analyze").arg("verify").args(files.map(|f| units.join(f))).output().unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let service = std::fs::read_to_string(units.join("tenantry-session-save.service")).unwrap();
    assert!(
        service.contains("ExecStart=/bin/true --config \"/etc/tenantry/50%% of it.toml\" session save\n"),
        "{service}"
    );
    let wants = std::fs::read_to_string(units.join("timers.target.d/tenantry-session.conf")).unwrap();
    assert!(wants.ends_with("[Unit]\nWants=tenantry-session-save.timer\n"), "{wants}");

    apply(without).await;
    for file in
        files.iter().chain(&["timers.target.d/tenantry-session.conf", "multi-user.target.d/tenantry-session.conf"])
    {
        assert!(!units.join(file).exists(), "{file} is still there");
    }
}

#[test]
fn a_fifo_or_a_hard_link_at_the_snapshot_never_hangs_or_leaks_a_root_file() {
    let tenant = Tenant::new("dave");
    let config = tenant.config();
    tenant.start("work", &tenant.home(), None);
    let dir = tenant.home().join(".local/state/tenantry");
    std::fs::create_dir_all(&dir).unwrap();
    run_ok(
        Command::new("chown").arg("-R").arg(format!("{}:{}", tenant.uid, tenant.gid)).arg(tenant.home().join(".local")),
    );
    // A FIFO where the snapshot goes: neither save nor restore waits on it.
    run_ok(Command::new("mkfifo").arg(tenant.snapshot_file("")));
    std::os::unix::fs::chown(tenant.snapshot_file(""), Some(tenant.uid), Some(tenant.gid)).unwrap();
    let started = std::time::Instant::now();
    let restored = session::restore(&config, "dave", None, &SystemRunner).unwrap();
    assert_eq!(restored, RestoreOutcome::default(), "nothing to restore from a FIFO");
    assert!(matches!(tenant.save(&config), SaveOutcome::Saved { sessions: 1, .. }));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(tenant.saved_names(""), ["work"]);
    // A hard link to a root file as a generation: root's file is neither read nor written.
    let secret = tenant.sandbox.root.join("etc/shadow");
    let before = std::fs::read(&secret).unwrap();
    std::fs::hard_link(&secret, tenant.snapshot_file(".1")).unwrap();
    tenant.start("more", &tenant.home(), None);
    assert!(matches!(tenant.save(&config), SaveOutcome::Saved { sessions: 2, .. }));
    assert_eq!(std::fs::read(&secret).unwrap(), before);
    assert_eq!(tenant.saved_names(".1"), ["work"]);
    assert_eq!(std::fs::read(tenant.snapshot_file(".2")).unwrap(), before, "the link itself moved, its file untouched");
}
