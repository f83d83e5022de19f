//! `tenantry session save|restore` as root against a sandbox root, with the
//! real tmux on a socket under the test's tempdir (never a real user's tmux).

use super::{sandbox_root, tenantry, text, workdir};
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

const ROSTER: &str = r#"platform:
  workstation:
    session_command: sleep 600
users:
  alice: { email: alice@lab.test, tier: power-user, workstation: { os_user: alice } }
  bob: { email: bob@lab.test, tier: power-user }
"#;

struct Server<'a> {
    socket: &'a Path,
    home: &'a Path,
    ids: (u32, u32),
}

impl Server<'_> {
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(self.socket)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.home)
            .current_dir(self.home)
            .uid(self.ids.0)
            .gid(self.ids.1)
            .output()
            .unwrap()
    }
}

impl Drop for Server<'_> {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

#[test]
fn session_save_then_restore_after_the_server_died_recreates_the_sessions_once() {
    let dir = workdir(ROSTER);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = sandbox_root(dir.path());
    let sockets = dir.path().join("tmux");
    fs::create_dir(&sockets).unwrap();
    fs::write(
        dir.path().join("tenantry.toml"),
        format!("[host]\nroot = \"{}\"\ntmux_socket = \"{}/{{user}}.sock\"\n", root.display(), sockets.display()),
    )
    .unwrap();
    let useradd = Command::new("useradd")
        .arg("--root")
        .arg(&root)
        .args(["--create-home", "--user-group", "alice"])
        .output()
        .unwrap();
    assert!(useradd.status.success(), "{}", String::from_utf8_lossy(&useradd.stderr));
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    let fields: Vec<&str> = passwd.lines().find(|l| l.starts_with("alice:")).unwrap().split(':').collect();
    let ids: (u32, u32) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    std::os::unix::fs::chown(&sockets, Some(ids.0), Some(ids.1)).unwrap();
    let home = root.join("home/alice");
    let socket = sockets.join("alice.sock");
    let server = Server { socket: &socket, home: &home, ids };
    assert!(server.tmux(&["new-session", "-d", "-s", "main"]).status.success());

    let save = tenantry(dir.path(), &["session", "save", "--output", "json"]);
    assert_eq!(save.status.code(), Some(0), "{}", text(&save));
    let report: serde_json::Value = serde_json::from_slice(&save.stdout).unwrap();
    assert_eq!(report["action"], "save");
    assert_eq!(report["users"].as_array().unwrap().len(), 1, "only workstation users: {report}");
    assert_eq!(
        (&report["users"][0]["outcome"], &report["users"][0]["sessions"]),
        (&"saved".into(), &1.into()),
        "{report}"
    );

    assert!(server.tmux(&["kill-server"]).status.success());
    let again = tenantry(dir.path(), &["session", "save", "alice"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("kept the last snapshot (1 session(s))"), "{}", text(&again));

    let restore = tenantry(dir.path(), &["session", "restore"]);
    assert_eq!(restore.status.code(), Some(0), "{}", text(&restore));
    assert!(text(&restore).contains("alice: 1 created, 0 running already (created: main)"), "{}", text(&restore));
    let listed = server.tmux(&["list-sessions", "-F", "#{session_name} #{pane_start_command}"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), "main sleep 600");
    let twice = tenantry(dir.path(), &["session", "restore", "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&twice.stdout).unwrap();
    assert_eq!(report["users"][0]["created"], serde_json::json!([]), "{report}");
    assert_eq!(report["users"][0]["present"], serde_json::json!(["main"]), "{report}");

    // Run by the user themself (no privilege change): their own sessions only.
    let as_alice = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(args)
            .arg("--no-color")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .uid(ids.0)
            .gid(ids.1)
            .output()
            .unwrap()
    };
    let own = as_alice(&["session", "save", "--output", "json"]);
    assert_eq!(own.status.code(), Some(0), "{}", text(&own));
    let report: serde_json::Value = serde_json::from_slice(&own.stdout).unwrap();
    assert_eq!(report["users"][0]["outcome"], "unchanged", "{report}");
    let other = as_alice(&["session", "restore", "wizard"]);
    assert_eq!(other.status.code(), Some(1), "{}", text(&other));
    assert!(text(&other).contains("not your workstation account (`alice`)"), "{}", text(&other));

    // `--root` overrides `[host] root` (here pointing nowhere).
    fs::write(
        dir.path().join("tenantry.toml"),
        format!("[host]\nroot = \"/nonexistent\"\ntmux_socket = \"{}/{{user}}.sock\"\n", sockets.display()),
    )
    .unwrap();
    assert!(server.tmux(&["kill-session", "-t", "=main"]).status.success());
    let rooted = tenantry(dir.path(), &["session", "restore", "--root", root.to_str().unwrap(), "--output", "json"]);
    assert_eq!(rooted.status.code(), Some(0), "{}", text(&rooted));
    let report: serde_json::Value = serde_json::from_slice(&rooted.stdout).unwrap();
    assert_eq!(report["users"][0]["created"], serde_json::json!(["main"]), "{report}");
    let unrooted = tenantry(dir.path(), &["session", "restore"]);
    assert_eq!(unrooted.status.code(), Some(1), "{}", text(&unrooted));

    let unknown = tenantry(dir.path(), &["session", "save", "bob"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown).contains("`bob` is not a workstation user"), "{}", text(&unknown));
}
