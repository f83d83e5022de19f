//! End-to-end tests of the `tenantry` binary on the local target: the
//! "done means" of the core issue, run exactly as an admin would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "cli/apps.rs"]
mod apps;
#[path = "cli/crds.rs"]
mod crds;
#[path = "cli/doctor.rs"]
mod doctor;
#[path = "cli/faults.rs"]
mod faults;
#[path = "cli/forge_ci.rs"]
mod forge_ci;
#[path = "cli/oidc.rs"]
mod oidc;
#[path = "cli/secrets.rs"]
mod secrets;
#[path = "cli/sessions.rs"]
mod sessions;
#[path = "cli/setup.rs"]
mod setup;

const EXAMPLE: &str = include_str!("../../../examples/roster.yaml");

fn tenantry(dir: &Path, args: &[&str]) -> Output {
    tenantry_with_env(dir, args, &[])
}

fn tenantry_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    tenantry_command(dir, args, env).output().unwrap()
}

/// The binary in `dir`, without colour and without the caller's roster or config.
fn tenantry_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tenantry"));
    command
        .args(args)
        .arg("--no-color")
        .current_dir(dir)
        .env_remove("TENANTRY_ROSTER")
        .env_remove("TENANTRY_CONFIG")
        .envs(env.iter().copied());
    command
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn workdir(roster: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("roster.yaml"), roster).unwrap();
    fs::create_dir_all(dir.path().join("files")).unwrap();
    dir
}

/// Every file under `root`, relative, with its bytes.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push((path.strip_prefix(root).unwrap().to_path_buf(), fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

#[test]
fn apply_is_idempotent_and_detailed_exitcode_tracks_changes() {
    let dir = workdir(EXAMPLE);
    let first = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(text(&first).contains("Apply complete"));
    assert!(dir.path().join("tenantry-out/kubernetes/alice/alice/rolebinding-namespace-owner-alice.yaml").exists());
    assert!(dir.path().join("tenantry-out/vault/alice/policy-namespace-owner-alice.hcl").exists());
    assert!(dir.path().join("tenantry-out/host/root/etc/ttyd-user-map").exists());

    let second = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(text(&second).contains("No changes."), "{}", text(&second));

    assert_eq!(tenantry(dir.path(), &["plan", "--detailed-exitcode"]).status.code(), Some(0));
    let roster = EXAMPLE.replace("namespaces: [bob]", "namespaces: [bob, bob-staging]");
    fs::write(dir.path().join("roster.yaml"), roster).unwrap();
    let plan = tenantry(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(text(&plan).contains("+ create    kubernetes/Namespace/-/bob-staging"), "{}", text(&plan));
    // Without --detailed-exitcode a plan with changes is still a success.
    assert_eq!(tenantry(dir.path(), &["plan"]).status.code(), Some(0));
}

#[test]
fn a_removed_namespace_is_withheld_until_allow_revoke() {
    let dir = workdir(EXAMPLE);
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    let namespace = dir.path().join("tenantry-out/kubernetes/alice/cluster/namespace-alice-prod.yaml");
    assert!(namespace.exists());
    fs::write(dir.path().join("roster.yaml"), EXAMPLE.replace("[alice, alice-prod]", "[alice]")).unwrap();

    let plan = tenantry(dir.path(), &["plan", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let alice = json["owners"].as_array().unwrap().iter().find(|o| o["owner"] == "alice").unwrap();
    let namespace_change =
        alice["changes"].as_array().unwrap().iter().find(|c| c["id"] == "kubernetes/Namespace/-/alice-prod").unwrap();
    assert_eq!(namespace_change["action"], "withheld");

    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    assert!(namespace.exists(), "withheld removals must not be applied");
    let policy = dir.path().join("tenantry-out/vault/alice/policy-namespace-owner-alice.hcl");
    assert!(
        fs::read_to_string(&policy).unwrap().contains("kubernetes/creds/alice-prod-deployer"),
        "the policy keeps the withheld namespace"
    );
    assert_eq!(tenantry(dir.path(), &["plan", "--detailed-exitcode"]).status.code(), Some(0));

    let revoke = tenantry(dir.path(), &["apply", "--yes", "--allow-revoke"]);
    assert_eq!(revoke.status.code(), Some(0), "{}", text(&revoke));
    assert!(!namespace.exists());
    assert!(!dir.path().join("tenantry-out/kubernetes/alice/alice-prod").exists());
    assert!(!fs::read_to_string(&policy).unwrap().contains("alice-prod"), "--allow-revoke narrows the policy");
    assert!(dir.path().join("tenantry-out/kubernetes/alice/cluster/namespace-alice.yaml").exists());
}

#[test]
fn departing_users_wait_for_offboard_and_the_cut_is_reversible() {
    let dir = workdir(EXAMPLE);
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    let without_bob: String = {
        let start = EXAMPLE.find("  bob:\n").unwrap();
        let end = EXAMPLE.find("  carol:\n").unwrap();
        format!("{}{}", &EXAMPLE[..start], &EXAMPLE[end..])
    };
    fs::write(dir.path().join("roster.yaml"), &without_bob).unwrap();
    let binding = dir.path().join("tenantry-out/kubernetes/bob/bob/rolebinding-namespace-owner-bob.yaml");
    let namespace = dir.path().join("tenantry-out/kubernetes/bob/cluster/namespace-bob.yaml");
    let user_map = dir.path().join("tenantry-out/host/root/etc/ttyd-user-map");

    let plan = tenantry(dir.path(), &["plan"]);
    assert!(text(&plan).contains("bob — departing"), "{}", text(&plan));
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    assert!(binding.exists());
    assert!(fs::read_to_string(&user_map).unwrap().contains("bob=bob"), "routing kept until the cut");

    let cut = tenantry(dir.path(), &["apply", "--yes", "--offboard"]);
    assert_eq!(cut.status.code(), Some(0), "{}", text(&cut));
    assert!(!binding.exists(), "the cut removes bindings");
    assert!(namespace.exists(), "the cut keeps namespaces (data)");
    let entity: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("tenantry-out/vault/bob/entity-bob.json")).unwrap()).unwrap();
    assert_eq!(entity["disabled"], true);
    assert_eq!(entity["policies"], serde_json::json!([]));
    assert!(!fs::read_to_string(&user_map).unwrap().contains("bob=bob"), "the cut unmaps routing");
    assert_eq!(tenantry(dir.path(), &["plan", "--detailed-exitcode"]).status.code(), Some(0));

    // Bob comes back: everything is restored, his port included.
    fs::write(dir.path().join("roster.yaml"), EXAMPLE).unwrap();
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    assert!(binding.exists());
    let dispatch: serde_json::Value = serde_json::from_slice(
        &fs::read(dir.path().join("tenantry-out/host/root/etc/t3-serve/dispatch.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dispatch["bob"]["port"], 3774, "bob keeps his port across the cut");
}

#[test]
fn files_tenantry_did_not_write_are_never_removed() {
    let dir = workdir(EXAMPLE);
    let foreign = dir.path().join("tenantry-out/kubernetes/alice/alice/hand-made.yaml");
    fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    fs::write(&foreign, "kind: ConfigMap\n").unwrap();
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    fs::write(dir.path().join("roster.yaml"), EXAMPLE.replace("[alice, alice-prod]", "[alice-prod]")).unwrap();
    assert_eq!(tenantry(dir.path(), &["apply", "--yes", "--allow-revoke"]).status.code(), Some(0));
    assert_eq!(fs::read_to_string(&foreign).unwrap(), "kind: ConfigMap\n");
}

#[test]
fn drift_in_a_rendered_file_is_planned_and_repaired() {
    let dir = workdir(EXAMPLE);
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    let quota = dir.path().join("tenantry-out/kubernetes/alice/alice/resourcequota-user-quota.yaml");
    let original = fs::read_to_string(&quota).unwrap();
    fs::write(&quota, original.replace("pods: \"30\"", "pods: \"999\"")).unwrap();
    let plan = tenantry(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2));
    assert!(text(&plan).contains("~ update    kubernetes/ResourceQuota/alice/user-quota"), "{}", text(&plan));
    assert!(text(&plan).contains("999"));
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    assert_eq!(fs::read_to_string(&quota).unwrap(), original);
}

#[test]
fn every_kind_of_bad_roster_exits_1_with_a_positioned_diagnostic() {
    let user = |body: &str| format!("users:\n{body}");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown tier",
            user("  a:\n    email: a@x.org\n    tier: namespace-ownr\n    namespaces: [a]\n"),
            "roster.yaml:4:11",
        ),
        (
            "namespace claimed twice",
            user(
                "  a: { email: a@x.org, tier: namespace-owner, namespaces: [shared] }\n  b: { email: b@x.org, tier: namespace-owner, namespaces: [shared] }\n",
            ),
            "roster.yaml:3:",
        ),
        (
            "reserved namespace",
            user("  a: { email: a@x.org, tier: namespace-owner, namespaces: [kube-system] }\n"),
            "roster.yaml:2:",
        ),
        (
            "bad quantity",
            user("  a: { email: a@x.org, tier: namespace-owner, namespaces: [a], quota: { requests.memory: 4GB } }\n"),
            "roster.yaml:2:",
        ),
        ("misspelled field", user("  a:\n    emial: a@x.org\n    tier: admin\n"), "roster.yaml:3:5"),
        (
            "os_user collision",
            user(
                "  a: { email: a@x.org, tier: admin, workstation: { os_user: b } }\n  b: { email: b@x.org, tier: admin, workstation: {} }\n",
            ),
            "roster.yaml:3:",
        ),
        (
            "path-unsafe repo",
            user("  a: { email: a@x.org, tier: admin, workstation: { code_layout: workspace, repos: [../etc] } }\n"),
            "roster.yaml:2:",
        ),
        (
            "namespaces on a non-owner tier",
            user("  a: { email: a@x.org, tier: power-user, namespaces: [a] }\n"),
            "roster.yaml:2:",
        ),
        (
            "duplicate email",
            user("  a: { email: a@x.org, tier: admin }\n  b: { email: A@x.org, tier: admin }\n"),
            "roster.yaml:3:",
        ),
        (
            "alias bomb",
            format!(
                "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n{}",
                user("  a: { email: a@x.org, tier: admin }\n")
            ),
            "roster.yaml:",
        ),
    ];
    for (kind, roster, position) in cases {
        let dir = workdir(&roster);
        let output = tenantry(dir.path(), &["validate"]);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(1), "{kind}: {all}");
        assert!(all.contains(position), "{kind}: expected {position} in\n{all}");
        assert!(all.contains("help:"), "{kind}: no fix offered\n{all}");
        assert!(!all.contains("panicked"), "{kind}: {all}");
        // plan and apply refuse the same roster the same way.
        assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(1), "{kind}");
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("roster.yaml"), [0xff_u8, 0xfe, 0x00, 0x13, 0x88, 0x9a, 0x01]).unwrap();
    let garbage = tenantry(dir.path(), &["validate"]);
    assert_eq!(garbage.status.code(), Some(1));
    assert!(text(&garbage).contains("not UTF-8"), "{}", text(&garbage));
}

#[test]
fn hostile_rosters_exit_1_naming_the_rule_and_the_position() {
    // Issue #11: each attack of a careless or hostile roster author is refused before anything runs.
    let user = |body: &str| format!("users:\n{body}");
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "user keyed like a platform path",
            user("  platform: { email: p@x.org, tier: namespace-owner, namespaces: [p] }\n"),
            "reserved-user-key",
            "roster.yaml:2:3",
        ),
        (
            "platform namespace",
            user("  a: { email: a@x.org, tier: namespace-owner, namespaces: [cert-manager] }\n"),
            "reserved-namespace",
            "roster.yaml:2:60",
        ),
        (
            "client id carrying a command",
            format!(
                "platform:\n  oidc: {{ issuer_url: https://a.x.org/, client_id: \"k\\ntouch /tmp/pwned\" }}\n{}",
                user("  a: { email: a@x.org, tier: admin }\n")
            ),
            "control-character",
            "roster.yaml:2:52",
        ),
        (
            "managed file outside the source directory",
            format!(
                "platform:\n  workstation:\n    managed_files: [{{ source: /root/.ssh/id_ed25519, dest: k }}]\n{}",
                user("  a: { email: a@x.org, tier: admin }\n")
            ),
            "unsafe-path",
            "roster.yaml:3:31",
        ),
        (
            "dispatch file anywhere",
            format!(
                "platform:\n  workstation:\n    dispatch_path: /etc/sudoers.d/zz-dispatch\n{}",
                user("  a: { email: a@x.org, tier: admin }\n")
            ),
            "host-path-not-allowed",
            "roster.yaml:3:20",
        ),
        (
            "root as a host account",
            user("  a: { email: a@x.org, tier: admin, workstation: { os_user: root } }\n"),
            "reserved-os-user",
            "roster.yaml:2:61",
        ),
        (
            "idp_user with a line separator",
            user("  a: { email: a@x.org, tier: admin, workstation: { idp_user: \"a\\u2028b\" } }\n"),
            "control-character",
            "roster.yaml:2:62",
        ),
        (
            "TLS source in a platform namespace",
            format!(
                "platform:\n  tls: {{ source: {{ namespace: cert-manager, name: ca-key-pair }} }}\n{}",
                user("  a: { email: a@x.org, tier: admin }\n")
            ),
            "reserved-tls-source",
            "roster.yaml:2:31",
        ),
    ];
    for (kind, roster, code, position) in cases {
        let dir = workdir(&roster);
        let output = tenantry(dir.path(), &["validate"]);
        let all = text(&output);
        assert_eq!(output.status.code(), Some(1), "{kind}: {all}");
        assert!(all.contains(&format!("error[{code}]")), "{kind}: expected {code} in\n{all}");
        assert!(all.contains(&format!("--> {position}\n")), "{kind}: expected {position} in\n{all}");
        assert!(all.contains("help:"), "{kind}: no fix offered\n{all}");
        assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(1), "{kind}");
    }
}

#[test]
fn validate_json_is_machine_readable() {
    let dir = workdir("users:\n  a:\n    email: a@x.org\n    tier: admn\n");
    let output = tenantry(dir.path(), &["validate", "--output", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["diagnostics"][0]["code"], "unknown-value");
    assert_eq!(json["diagnostics"][0]["line"], 4);
    assert_eq!(json["diagnostics"][0]["column"], 11);
    assert_eq!(json["diagnostics"][0]["help"], "did you mean `admin`?");
}

#[test]
fn why_and_explain_name_the_roster_line() {
    let dir = workdir(EXAMPLE);
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    let why = tenantry(dir.path(), &["why", "kubernetes/Namespace/-/alice-prod"]);
    let out = text(&why);
    assert_eq!(why.status.code(), Some(0), "{out}");
    let line = EXAMPLE.lines().position(|l| l.contains("namespaces: [alice, alice-prod]")).unwrap() + 1;
    assert!(out.contains(&format!("roster.yaml:{line}:")), "{out}");
    assert!(out.contains("owner:   alice"));
    assert!(out.contains("create on local: done"), "{out}");

    let explain = tenantry(dir.path(), &["explain", "bob", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&explain.stdout).unwrap();
    let ids: Vec<&str> = json["resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"ci/Admin/-/bob-dev"), "CI access uses the forge login: {ids:?}");
    assert!(ids.contains(&"kubernetes/RoleBinding/bob/namespace-owner-bob"));
    assert_eq!(tenantry(dir.path(), &["explain", "bbo"]).status.code(), Some(1));
    assert!(text(&tenantry(dir.path(), &["explain", "bbo"])).contains("did you mean `bob`?"));
}

#[test]
fn render_writes_everything_and_prunes_only_its_own_files() {
    let dir = workdir(EXAMPLE);
    let out = dir.path().join("gitops");
    assert_eq!(tenantry(dir.path(), &["render", "gitops"]).status.code(), Some(0));
    let first = tree(&out);
    assert!(first.iter().any(|(p, _)| p.ends_with("namespace-alice-prod.yaml")));
    fs::write(out.join("README.md"), "mine").unwrap();
    fs::write(dir.path().join("roster.yaml"), EXAMPLE.replace("[alice, alice-prod]", "[alice]")).unwrap();
    assert_eq!(tenantry(dir.path(), &["render", "gitops"]).status.code(), Some(0));
    let second = tree(&out);
    assert!(!second.iter().any(|(p, _)| p.ends_with("namespace-alice-prod.yaml")));
    assert_eq!(fs::read_to_string(out.join("README.md")).unwrap(), "mine");
}

/// A roster big enough that apply takes a while, so kills land mid-run.
fn big_roster(users: usize) -> String {
    let mut roster = String::from(
        "platform:\n  domain: example.org\n  workstation:\n    main_repo: { name: infra, url: https://forge.example.org/ops/infra.git }\nusers:\n",
    );
    for i in 0..users {
        roster.push_str(&format!(
            "  u{i}: {{ email: u{i}@example.org, tier: namespace-owner, namespaces: [u{i}, u{i}-b], domains: [app.u{i}], workstation: {{}} }}\n"
        ));
    }
    roster
}

#[test]
fn sigkill_at_any_point_then_rerun_converges() {
    let roster = big_roster(150);
    let reference = workdir(&roster);
    assert_eq!(tenantry(reference.path(), &["apply", "--yes"]).status.code(), Some(0));
    let expected = tree(&reference.path().join("tenantry-out"));

    let dir = workdir(&roster);
    for delay_ms in [5_u64, 20, 40, 80, 120, 200, 300, 500] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(["apply", "--yes", "--no-color", "--concurrency", "16"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // Every file present under its real name is whole: it parses.
        // (A killed writer may leave a temp file; the next run sweeps it.)
        for (path, bytes) in tree(&dir.path().join("tenantry-out")) {
            if path.to_string_lossy().contains(".tenantry-tmp-") {
                continue;
            }
            if path.extension().is_some_and(|e| e == "json") {
                assert!(
                    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
                    "half-written {path:?} after kill at {delay_ms} ms"
                );
            }
        }
    }
    let rerun = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert_eq!(tenantry(dir.path(), &["plan", "--detailed-exitcode"]).status.code(), Some(0));
    let actual = tree(&dir.path().join("tenantry-out"));
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&actual), names(&expected), "no duplicated, missing or stray files");
    assert_eq!(actual, expected, "byte-identical to an uninterrupted apply");
}

/// A sandbox machine root with the files `useradd --root` needs.
fn sandbox_root(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let root = dir.join("machine");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("home")).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nsudo:x:27:\ndocker:x:999:\n").unwrap();
    fs::write(root.join("etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
    fs::write(root.join("etc/gshadow"), "root:*::\nsudo:*::\ndocker:!::\n").unwrap();
    for name in ["shadow", "gshadow"] {
        fs::set_permissions(root.join("etc").join(name), fs::Permissions::from_mode(0o640)).unwrap();
    }
    root
}

const WORKSTATION_ROSTER: &str = r#"platform:
  name: lab
  api_server: https://k8s.lab.test:6443
  oidc: { issuer_url: https://auth.lab.test/o/kubernetes/, client_id: kubernetes }
  workstation:
    shell: /bin/sh
    tier_groups: { admin: [sudo, docker, code-shared] }
    port_pools: { terminal: 3773 }
users:
  alice:
    email: alice@lab.test
    tier: namespace-owner
    namespaces: [alice]
    workstation: {}
  wizard: { email: wizard@lab.test, tier: admin, workstation: { os_user: wizard } }
"#;

#[test]
fn the_host_target_plans_the_commands_it_runs_and_cuts_departed_logins() {
    let dir = workdir(WORKSTATION_ROSTER);
    let root = sandbox_root(dir.path());
    fs::write(dir.path().join("tenantry.toml"), format!("[host]\nroot = \"{}\"\n", root.display())).unwrap();

    let plan = tenantry(dir.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let shown = text(&plan);
    assert!(shown.contains("[host]"), "{shown}");
    assert!(shown.contains(&format!("$ useradd --root {}", root.display())), "{shown}");
    let json = tenantry(dir.path(), &["plan", "--output", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let steps: Vec<String> = value["owners"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["changes"].as_array().unwrap().iter())
        .filter(|c| c["id"] == "host/Account/-/wizard")
        .flat_map(|c| c["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()))
        .collect();
    assert!(steps.iter().any(|s| s.starts_with("useradd") && s.contains("wizard")), "{steps:?}");
    // Nothing ran during plan.
    assert!(!fs::read_to_string(root.join("etc/passwd")).unwrap().contains("wizard"));

    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("alice:") && passwd.contains("wizard:"), "{passwd}");
    let group = fs::read_to_string(root.join("etc/group")).unwrap();
    assert!(group.lines().any(|l| l.starts_with("sudo:") && l.contains("wizard")), "{group}");
    // A tier group missing on the host is a warning, never an error.
    assert!(text(&apply).contains("code-shared"), "{}", text(&apply));
    assert_eq!(
        fs::read_to_string(root.join("etc/ttyd-user-map")).unwrap().lines().filter(|l| !l.starts_with('#')).count(),
        2
    );
    // The host domain went to the host target, not into tenantry-out.
    assert!(!dir.path().join("tenantry-out/host").exists());

    let again = tenantry(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // alice leaves: her login is cut only with --offboard; her home stays.
    fs::write(dir.path().join("roster.yaml"), WORKSTATION_ROSTER.replace("  alice:\n    email: alice@lab.test\n    tier: namespace-owner\n    namespaces: [alice]\n    workstation: {}\n", "")).unwrap();
    let pending = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(pending.status.code(), Some(0), "{}", text(&pending));
    assert!(fs::read_to_string(root.join("etc/ttyd-user-map")).unwrap().contains("alice=alice"));
    let backups = dir.path().join("backups");
    let backup_arg = backups.to_str().unwrap();
    let early = tenantry(dir.path(), &["offboard", "alice", "--stage", "destroy", "--backup", backup_arg, "--yes"]);
    assert_eq!(early.status.code(), Some(1), "{}", text(&early));
    assert!(text(&early).contains("reversible cut of `alice` is not complete"), "{}", text(&early));
    let present = tenantry(dir.path(), &["offboard", "wizard", "--yes"]);
    assert_eq!(present.status.code(), Some(1), "{}", text(&present));
    assert!(text(&present).contains("still in the roster"), "{}", text(&present));

    let cut = tenantry(dir.path(), &["offboard", "alice", "--yes"]);
    assert_eq!(cut.status.code(), Some(0), "{}", text(&cut));
    let shadow = fs::read_to_string(root.join("etc/shadow")).unwrap();
    let alice = shadow.lines().find(|l| l.starts_with("alice:")).unwrap();
    assert!(alice.split(':').nth(1).unwrap().starts_with('!'), "{alice}");
    assert!(!fs::read_to_string(root.join("etc/ttyd-user-map")).unwrap().contains("alice="));
    assert!(root.join("home/alice").is_dir());
    fs::write(root.join("home/alice/notes.txt"), "keep me\n").unwrap();

    // The destroy stage: the home is archived first, then the account is deleted.
    let destroy = tenantry(dir.path(), &["offboard", "alice", "--stage", "destroy", "--backup", backup_arg, "--yes"]);
    assert_eq!(destroy.status.code(), Some(0), "{}", text(&destroy));
    assert!(text(&destroy).contains("Destroyed alice"), "{}", text(&destroy));
    assert!(!fs::read_to_string(root.join("etc/passwd")).unwrap().contains("alice:"));
    assert!(!root.join("home/alice").exists());
    let archive = fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .unwrap();
    let listing = Command::new("tar").arg("-xzOf").arg(&archive).arg("alice/notes.txt").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout), "keep me\n");
    // Nothing of alice is left to plan, and a second destroy has nothing to do.
    let after = tenantry(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
    assert!(!text(&after).contains("alice"), "{}", text(&after));
    let again = tenantry(dir.path(), &["offboard", "alice", "--stage", "destroy", "--backup", backup_arg, "--yes"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("nothing recorded"), "{}", text(&again));
}

#[test]
fn kubeconfig_and_setup_script_give_the_users_own_identity_and_never_overwrite() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = workdir(WORKSTATION_ROSTER);
    let printed = tenantry(dir.path(), &["kubeconfig", "alice"]);
    assert_eq!(printed.status.code(), Some(0), "{}", text(&printed));
    let kubeconfig = String::from_utf8(printed.stdout.clone()).unwrap();
    assert!(kubeconfig.contains("server: https://k8s.lab.test:6443"), "{kubeconfig}");
    assert!(kubeconfig.contains("--oidc-issuer-url=https://auth.lab.test/o/kubernetes/"), "{kubeconfig}");
    let unknown = tenantry(dir.path(), &["kubeconfig", "alcie"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown).contains("did you mean `alice`?"), "{}", text(&unknown));

    let path = dir.path().join("kube.config");
    let write = tenantry(dir.path(), &["kubeconfig", "alice", "--write", path.to_str().unwrap()]);
    assert_eq!(write.status.code(), Some(0), "{}", text(&write));
    assert_eq!(fs::read_to_string(&path).unwrap(), kubeconfig);
    assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    fs::write(&path, "mine\n").unwrap();
    let refused = tenantry(dir.path(), &["kubeconfig", "alice", "--write", path.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("never overwrites"), "{}", text(&refused));
    assert_eq!(fs::read_to_string(&path).unwrap(), "mine\n");

    // The Linux script, run for real with kubectl and kubelogin already on PATH
    // (so it installs nothing), writes ~/.kube/config once and then leaves it.
    let script = tenantry(dir.path(), &["setup-script", "--os", "linux"]);
    assert_eq!(script.status.code(), Some(0), "{}", text(&script));
    let script_path = dir.path().join("setup.sh");
    fs::write(&script_path, &script.stdout).unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in ["kubectl", "kubectl-oidc_login"] {
        fs::write(bin.join(tool), "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(bin.join(tool), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let home = dir.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let run = || {
        Command::new("sh")
            .arg(&script_path)
            .env("HOME", &home)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(fs::read_to_string(home.join(".kube/config")).unwrap(), kubeconfig);
    assert_eq!(fs::metadata(home.join(".kube/config")).unwrap().permissions().mode() & 0o777, 0o600);
    fs::write(home.join(".kube/config"), "other clusters\n").unwrap();
    let second = run();
    assert!(second.status.success(), "{}", text(&second));
    assert_eq!(fs::read_to_string(home.join(".kube/config")).unwrap(), "other clusters\n");
    assert_eq!(fs::read_to_string(home.join(".kube/lab.config")).unwrap(), kubeconfig);
    assert!(text(&second).contains("export KUBECONFIG="), "{}", text(&second));

    let mac = tenantry(dir.path(), &["setup-script", "--os", "mac"]);
    assert_eq!(mac.status.code(), Some(0));
    let syntax = Command::new("sh").arg("-n").arg("-c").arg(String::from_utf8(mac.stdout).unwrap()).output().unwrap();
    assert!(syntax.status.success(), "{}", text(&syntax));
}

/// kubectl (from the test environment) with a clean environment: only `PATH` and `HOME` as given.
fn kubectl_in(path: &str, home: &Path, args: &[&str]) -> Output {
    let kubectl = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}")).kubectl;
    let kubectl = kubectl.unwrap_or_else(|| panic!("$KUBECTL is not set: source target/testenv/env.sh"));
    Command::new(kubectl).args(args).env_clear().env("PATH", path).env("HOME", home).output().unwrap()
}

/// The admin's kubectl against the test apiserver.
fn kubectl_admin(args: &[&str]) -> String {
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(kube.kubectl.unwrap())
        .args(args)
        .arg("--kubeconfig")
        .arg(&kube.kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "kubectl {args:?}: {}", text(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_generated_kubeconfig_logs_in_to_the_apiserver_through_kubectl_and_the_setup_script() {
    use std::os::unix::fs::PermissionsExt as _;
    // Issue #11, finding 10: the kubeconfig had lost its indentation and kubectl rejected it.
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let env = tenantry_testenv::TestEnv::load();
    let ca = fs::read_to_string(env.get("KUBE_CA_FILE").expect("KUBE_CA_FILE: source target/testenv/env.sh")).unwrap();
    let id = run_id();
    let namespace = format!("kc-{id}");
    kubectl_admin(&["create", "namespace", &namespace]);
    kubectl_admin(&["create", "serviceaccount", "whoami", "-n", &namespace]);
    let token = kubectl_admin(&["create", "token", "whoami", "-n", &namespace, "--duration", "10m"]);
    let identity = format!("system:serviceaccount:{namespace}:whoami");

    let ca_block: String = ca.lines().map(|l| format!("    {l}\n")).collect();
    let roster = format!(
        "platform:\n  name: lab\n  api_server: {}\n  api_server_ca: |\n{ca_block}  oidc: {{ issuer_url: https://auth.lab.test/o/kubernetes/, client_id: kubernetes }}\nusers:\n  alice: {{ email: alice@lab.test, tier: admin }}\n",
        kube.url
    );
    let dir = workdir(&roster);
    let config = dir.path().join("alice.kubeconfig");
    let write = tenantry(dir.path(), &["kubeconfig", "alice", "--write", config.to_str().unwrap()]);
    assert_eq!(write.status.code(), Some(0), "{}", text(&write));

    // kubelogin stands in as a plugin that records its arguments and returns a real token.
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(kube.kubectl.clone().unwrap(), bin.join("kubectl")).unwrap();
    let recorded = dir.path().join("plugin-args");
    let plugin = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nprintf '%s' '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
        recorded.display(),
        token.trim()
    );
    fs::write(bin.join("kubectl-oidc_login"), plugin).unwrap();
    fs::set_permissions(bin.join("kubectl-oidc_login"), fs::Permissions::from_mode(0o700)).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let nowhere = dir.path().join("no-home");
    fs::create_dir_all(&nowhere).unwrap();

    let view = kubectl_in(
        &path,
        &nowhere,
        &["config", "view", "--raw", "-o", "json", "--kubeconfig", config.to_str().unwrap()],
    );
    assert!(view.status.success(), "{}", text(&view));
    let view: serde_json::Value = serde_json::from_slice(&view.stdout).unwrap();
    assert_eq!(view["current-context"], "lab");
    assert_eq!(view["clusters"][0]["cluster"]["server"], kube.url.as_str());
    let whoami =
        kubectl_in(&path, &nowhere, &["auth", "whoami", "-o", "json", "--kubeconfig", config.to_str().unwrap()]);
    assert!(whoami.status.success(), "{}", text(&whoami));
    let whoami: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], identity.as_str());
    assert_eq!(
        fs::read_to_string(&recorded).unwrap(),
        "get-token\n--oidc-issuer-url=https://auth.lab.test/o/kubernetes/\n--oidc-client-id=kubernetes\n--oidc-extra-scope=email\n",
        "kubectl ran kubelogin with exactly the roster's OIDC settings"
    );

    // The setup script writes the same file into a fresh HOME, with bash and with sh, and kubectl uses it there.
    let script = tenantry(dir.path(), &["setup-script", "--os", "linux"]);
    assert_eq!(script.status.code(), Some(0), "{}", text(&script));
    let script_path = dir.path().join("setup.sh");
    fs::write(&script_path, &script.stdout).unwrap();
    for shell in ["bash", "sh"] {
        let home = dir.path().join(format!("home-{shell}"));
        fs::create_dir_all(&home).unwrap();
        let run =
            Command::new(shell).arg(&script_path).env_clear().env("HOME", &home).env("PATH", &path).output().unwrap();
        assert!(run.status.success(), "{shell}: {}", text(&run));
        assert_eq!(fs::read(home.join(".kube/config")).unwrap(), fs::read(&config).unwrap(), "{shell}");
        fs::remove_file(&recorded).unwrap();
        let whoami = kubectl_in(&path, &home, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]);
        assert!(whoami.status.success(), "{shell}: {}", text(&whoami));
        assert_eq!(String::from_utf8_lossy(&whoami.stdout), identity, "{shell}");
        assert!(recorded.exists(), "{shell}: the login went through the kubeconfig's exec plugin");
    }
    kubectl_admin(&["delete", "namespace", &namespace, "--wait=false"]);
}

#[test]
fn a_roster_that_would_inject_into_kubeconfigs_or_scripts_gives_neither() {
    // Issue #11, finding 4: a client id with a newline injected a command into the setup script.
    for (field, line) in [
        ("issuer_url: \"https://auth.lab.test/\\nrm -rf ~\", client_id: kubernetes", "roster.yaml:4:23"),
        ("issuer_url: https://auth.lab.test/, client_id: \"k8s\\u2028$(touch /tmp/pwned)\"", "roster.yaml:4:58"),
        ("issuer_url: https://auth.lab.test/, client_id: \"k8s'; touch /tmp/pwned; '\"", "roster.yaml:4:58"),
    ] {
        let roster = format!(
            "platform:\n  name: lab\n  api_server: https://k8s.lab.test:6443\n  oidc: {{ {field} }}\nusers:\n  alice: {{ email: alice@lab.test, tier: admin }}\n"
        );
        let dir = workdir(&roster);
        for args in [&["setup-script", "--os", "linux"][..], &["kubeconfig", "alice"][..]] {
            let refused = tenantry(dir.path(), args);
            assert_eq!(refused.status.code(), Some(1), "{args:?}: {}", text(&refused));
            assert!(refused.stdout.is_empty(), "{args:?}: nothing is printed to run or save");
            assert!(text(&refused).contains(line), "{args:?}: expected {line} in {}", text(&refused));
            assert!(text(&refused).contains("help:"), "{}", text(&refused));
        }
    }
}

#[test]
fn ports_survive_a_lost_state_database_and_disagreeing_sources_stop_the_run() {
    let dir = workdir(WORKSTATION_ROSTER);
    let root = sandbox_root(dir.path());
    fs::write(dir.path().join("tenantry.toml"), format!("[host]\nroot = \"{}\"\n", root.display())).unwrap();
    let first = tenantry(dir.path(), &["apply", "--yes", "--no-refresh"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let dispatch = fs::read_to_string(root.join("etc/t3-serve/dispatch.json")).unwrap();
    assert!(dispatch.contains(r#""alice":{"os_user":"alice","port":3773}"#), "{dispatch}");
    assert!(dispatch.contains(r#""wizard":{"os_user":"wizard","port":3774}"#), "{dispatch}");

    // The state database is lost, and a user who sorts first joins: the host's
    // own records (env files, dispatch map) keep everyone's port where it was.
    fs::remove_dir_all(dir.path().join(".tenantry")).unwrap();
    let roster = WORKSTATION_ROSTER
        .replace("users:\n", "users:\n  aaron: { email: aaron@lab.test, tier: power-user, workstation: {} }\n");
    fs::write(dir.path().join("roster.yaml"), roster).unwrap();
    let second = tenantry(dir.path(), &["apply", "--yes", "--no-refresh"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let dispatch = fs::read_to_string(root.join("etc/t3-serve/dispatch.json")).unwrap();
    assert!(dispatch.contains(r#""alice":{"os_user":"alice","port":3773}"#), "{dispatch}");
    assert!(dispatch.contains(r#""wizard":{"os_user":"wizard","port":3774}"#), "{dispatch}");
    assert!(dispatch.contains(r#""aaron":{"os_user":"aaron","port":3775}"#), "{dispatch}");

    // alice hand-edits her own env file onto wizard's port. The file is hers to edit, so it is
    // only ever a hint: it is set aside with a warning (the state database decides), nobody's
    // port moves, the run goes on and rewrites it. (It used to stop the run for everyone: #11.)
    let env = root.join("home/alice/.config/tenantry/ports.env");
    let edited = fs::read_to_string(&env).unwrap().replace("3773", "3774");
    fs::write(&env, edited).unwrap();
    let dispatch_path = root.join("etc/t3-serve/dispatch.json");
    let before = fs::read(&dispatch_path).unwrap();
    let set_aside = tenantry(dir.path(), &["apply", "--yes", "--no-refresh"]);
    assert_eq!(set_aside.status.code(), Some(0), "{}", text(&set_aside));
    assert!(text(&set_aside).contains("not used as a port source"), "{}", text(&set_aside));
    assert!(text(&set_aside).contains("3774"), "{}", text(&set_aside));
    assert_eq!(fs::read(&dispatch_path).unwrap(), before);
    assert!(fs::read_to_string(&env).unwrap().contains("TENANTRY_PORT_TERMINAL=3773\n"));

    // root's own sources disagreeing (the dispatch map edited onto another port): nothing is applied.
    let moved = String::from_utf8(before.clone()).unwrap().replace(r#""port":3773"#, r#""port":3779"#);
    fs::write(&dispatch_path, &moved).unwrap();
    let refused = tenantry(dir.path(), &["apply", "--yes", "--no-refresh"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("port reservations disagree"), "{}", text(&refused));
    assert!(text(&refused).contains("3779"), "{}", text(&refused));
    assert_eq!(fs::read_to_string(&dispatch_path).unwrap(), moved);
    fs::write(&dispatch_path, &before).unwrap();

    // A roster that fails to derive never replaces the good routing files.
    fs::write(&env, fs::read_to_string(&env).unwrap().replace("3774", "3773")).unwrap();
    let map = fs::read(root.join("etc/ttyd-user-map")).unwrap();
    fs::write(dir.path().join("roster.yaml"), WORKSTATION_ROSTER.replace("tier: admin", "tier: admn")).unwrap();
    let invalid = tenantry(dir.path(), &["apply", "--yes", "--no-refresh"]);
    assert_eq!(invalid.status.code(), Some(1), "{}", text(&invalid));
    assert_eq!(fs::read(root.join("etc/ttyd-user-map")).unwrap(), map);
    assert_eq!(fs::read(root.join("etc/t3-serve/dispatch.json")).unwrap(), before);
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tenantry-import/tests/fixtures");

#[test]
fn import_merges_the_origins_two_rosters_into_one_that_plans() {
    let dir = workdir("");
    let out = dir.path().join("imported.yaml");
    let args = [
        "import",
        "--k8s-users",
        &format!("{FIXTURES}/k8s_users.json"),
        "--workstation",
        &format!("{FIXTURES}/workstation_roster.yaml"),
        "--platform-from",
        &format!("{FIXTURES}/platform_roster.yaml"),
        "-o",
        out.to_str().unwrap(),
    ];
    let import = tenantry(dir.path(), &args);
    assert_eq!(import.status.code(), Some(0), "{}", text(&import));
    assert!(text(&import).contains("wrote"), "{}", text(&import));
    let validate = tenantry(dir.path(), &["--roster", out.to_str().unwrap(), "validate"]);
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    let plan = tenantry(dir.path(), &["--roster", out.to_str().unwrap(), "plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));

    // Never replaces a file unless told to.
    let again = tenantry(dir.path(), &args);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));

    // A tier that differs between the two sources is an error naming both.
    let k8s = fs::read_to_string(format!("{FIXTURES}/k8s_users.json")).unwrap();
    assert!(k8s.contains("\"role\": \"power-user\""), "the fixture has a power-user (emo)");
    fs::write(dir.path().join("k8s.json"), k8s.replacen("\"role\": \"power-user\"", "\"role\": \"admin\"", 1)).unwrap();
    let mismatch = tenantry(
        dir.path(),
        &["import", "--k8s-users", "k8s.json", "--workstation", &format!("{FIXTURES}/workstation_roster.yaml")],
    );
    assert_eq!(mismatch.status.code(), Some(1), "{}", text(&mismatch));
    assert!(text(&mismatch).contains("emo"), "{}", text(&mismatch));
    assert!(text(&mismatch).contains("power-user") && text(&mismatch).contains("admin"), "{}", text(&mismatch));
    let nothing = tenantry(dir.path(), &["import"]);
    assert_eq!(nothing.status.code(), Some(2), "clap usage error: {}", text(&nothing));
}

fn vault_env() -> tenantry_testenv::Vault {
    tenantry_testenv::vault().unwrap_or_else(|e| panic!("{e}"))
}

/// One request to the test OpenBao as root; panics on a non-2xx answer.
fn bao(method: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let vault = vault_env();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = vault.http().unwrap();
        let request = client.request(method.parse().unwrap(), vault.url(path)).json(&body);
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    })
}

fn tenantry_with_vault(dir: &Path, args: &[&str]) -> Output {
    let vault = vault_env();
    tenantry_with_env(dir, args, &[("VAULT_ADDR", &vault.addr), ("VAULT_TOKEN", &vault.token)])
}

pub(crate) use tenantry_testenv::run_id;

#[test]
fn the_roster_can_be_read_from_the_origins_k8s_users_in_vault() {
    let id = run_id();
    let k8s = fs::read_to_string(format!("{FIXTURES}/k8s_users.json")).unwrap();
    bao("POST", &format!("secret/data/tenantry-cli-{id}"), serde_json::json!({ "data": { "k8s_users": k8s } }));
    let dir = workdir("");
    let source = format!("vault://secret/tenantry-cli-{id}#k8s_users");
    let platform = format!("{FIXTURES}/platform_roster.yaml");
    let validate = tenantry_with_vault(dir.path(), &["--roster", &source, "--platform-from", &platform, "validate"]);
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    assert!(text(&validate).contains("valid"), "{}", text(&validate));
    let plan = tenantry_with_vault(dir.path(), &["--roster", &source, "--platform-from", &platform, "plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains("kubernetes/Namespace/-/"), "{}", text(&plan));

    let missing = tenantry_with_vault(dir.path(), &["--roster", &format!("{source}-nope"), "validate"]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(text(&missing).contains("k8s_users-nope"), "{}", text(&missing));
    let malformed = tenantry_with_vault(dir.path(), &["--roster", "vault://secret#k8s_users", "validate"]);
    assert_eq!(malformed.status.code(), Some(1), "{}", text(&malformed));
    assert!(text(&malformed).contains("vault://<kv-mount>/<path>#<key>"), "{}", text(&malformed));
}

#[test]
fn a_vault_roster_refuses_a_user_keyed_like_its_own_path() {
    // Issue #11, finding 3: keyed like the roster's path, a namespace-owner's policy
    // (`secret/data/<key>/*`) covered the roster; their token rewrote it.
    let id = run_id();
    let segment = format!("tcli-{id}");
    let k8s = format!(
        "{{\n  \"alice\": {{\"role\": \"namespace-owner\", \"email\": \"alice@example.org\", \"namespaces\": [\"alice-{id}\"]}},\n  \"{segment}\": {{\"role\": \"namespace-owner\", \"email\": \"x@example.org\", \"namespaces\": [\"x-{id}\"]}}\n}}\n"
    );
    bao("POST", &format!("secret/data/{segment}"), serde_json::json!({ "data": { "k8s_users": k8s } }));
    let dir = workdir("");
    let source = format!("vault://secret/{segment}#k8s_users");
    let validate = tenantry_with_vault(dir.path(), &["--roster", &source, "validate"]);
    let all = text(&validate);
    assert_eq!(validate.status.code(), Some(1), "{all}");
    assert!(all.contains("error[reserved-user-key]"), "{all}");
    assert!(all.contains(&format!("{source}:3:3")), "points at the key in the JSON: {all}");
    assert!(all.contains(&format!("the roster itself is stored at `{source}`")), "{all}");
}

#[test]
fn vault_and_dns_targets_apply_converge_and_destroy_through_the_cli() {
    let id = run_id();
    let bind = tenantry_testenv::bind().unwrap_or_else(|e| panic!("{e}"));
    let vault = vault_env();
    bao("POST", &format!("sys/auth/cli-oidc-{id}"), serde_json::json!({ "type": "oidc" }));
    bao("POST", &format!("sys/mounts/cli-k8s-{id}"), serde_json::json!({ "type": "kubernetes" }));
    let roster = format!(
        r#"platform:
  name: lab
  domain: lab.test
  dns: {{ cname_target: tunnel.lab.test }}
users:
  ann{id}: {{ email: ann{id}@lab.test, tier: namespace-owner, namespaces: [ann{id}], domains: [app-ann{id}.lab.test] }}
  ben{id}: {{ email: ben{id}@lab.test, tier: namespace-owner, namespaces: [ben{id}], domains: [app-ben{id}.lab.test] }}
"#
    );
    let dir = workdir(&roster);
    fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[vault]\naddress = \"{}\"\noidc_mount = \"cli-oidc-{id}\"\nkubernetes_secrets_mount = \"cli-k8s-{id}\"\n\n[dns]\nprovider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"{}\"\ntsig_key_file = \"{}\"\n",
            vault.addr,
            bind.addr,
            bind.tsig_key_file.display()
        ),
    )
    .unwrap();

    let apply = tenantry_with_vault(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let shown = text(&apply);
    assert!(shown.contains(&format!("vault/Entity/-/ann{id}  [vault]")), "{shown}");
    assert!(shown.contains(&format!("dns/CNAME/lab.test/app-ann{id}.lab.test  [dns]")), "{shown}");
    let entity = bao("GET", &format!("identity/entity/name/ann{id}"), serde_json::Value::Null);
    assert_eq!(entity["data"]["policies"], serde_json::json!([format!("namespace-owner-ann{id}")]));
    let plan = tenantry_with_vault(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "a second plan has nothing to do: {}", text(&plan));

    // ben leaves; the cut disables his entity and keeps his record; destroy removes both.
    fs::write(
        dir.path().join("roster.yaml"),
        roster.lines().filter(|l| !l.contains(&format!("ben{id}"))).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let cut = tenantry_with_vault(dir.path(), &["offboard", &format!("ben{id}"), "--yes"]);
    assert_eq!(cut.status.code(), Some(0), "{}", text(&cut));
    let ben = bao("GET", &format!("identity/entity/name/ben{id}"), serde_json::Value::Null);
    assert_eq!(ben["data"]["disabled"], true);
    let backups = dir.path().join("backups");
    let destroy = tenantry_with_vault(
        dir.path(),
        &["offboard", &format!("ben{id}"), "--stage", "destroy", "--backup", backups.to_str().unwrap(), "--yes"],
    );
    assert_eq!(destroy.status.code(), Some(0), "{}", text(&destroy));
    let listing: Vec<String> =
        fs::read_dir(&backups).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(listing.iter().any(|f| f.contains("dns")), "{listing:?}");
    assert!(listing.iter().any(|f| f.contains("vault") || f.contains(&format!("ben{id}"))), "{listing:?}");
    let after = tenantry_with_vault(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));

    // Leave the shared zone as it was: ann leaves too and is destroyed.
    fs::write(dir.path().join("roster.yaml"), "users: {}\n").unwrap();
    let ann = format!("ann{id}");
    assert_eq!(tenantry_with_vault(dir.path(), &["offboard", &ann, "--yes"]).status.code(), Some(0));
    let gone = tenantry_with_vault(
        dir.path(),
        &["offboard", &ann, "--stage", "destroy", "--backup", backups.to_str().unwrap(), "--yes"],
    );
    assert_eq!(gone.status.code(), Some(0), "{}", text(&gone));
}

#[test]
fn two_applies_on_one_state_database_never_interleave() {
    let roster = big_roster(120);
    let reference = workdir(&roster);
    assert_eq!(tenantry(reference.path(), &["apply", "--yes"]).status.code(), Some(0));
    let expected = tree(&reference.path().join("tenantry-out"));

    let dir = workdir(&roster);
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(["apply", "--yes", "--no-color", "--output", "json"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Both read at once: the one holding the lock may print more than a pipe holds.
    let (first, second) = (spawn(), spawn());
    let second = std::thread::spawn(move || second.wait_with_output().unwrap());
    let first = first.wait_with_output().unwrap();
    let second = second.join().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let waited: Vec<&Output> =
        [&first, &second].into_iter().filter(|o| text(o).contains("waiting for the state database")).collect();
    assert_eq!(waited.len(), 1, "exactly one run waits for the other:\n{}\n{}", text(&first), text(&second));
    assert!(text(waited[0]).contains("apply --yes"), "it names what it waits for: {}", text(waited[0]));

    // Whichever ran second found nothing to do: the result is one apply.
    let applied = |o: &Output| {
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        json["applied"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum::<u64>()
    };
    let mut counts = [applied(&first), applied(&second)];
    counts.sort();
    assert_eq!(counts[0], 0, "the second apply changes nothing");
    assert!(counts[1] > 1000, "the first applies everything: {counts:?}");
    assert_eq!(tree(&dir.path().join("tenantry-out")), expected, "the same files as one apply");

    // The journal shows the runs one after the other, never interleaved.
    let db = rusqlite::Connection::open(dir.path().join(".tenantry/state.db")).unwrap();
    let span = |run: i64| -> (i64, i64) {
        db.query_row("SELECT MIN(seq), MAX(seq) FROM journal WHERE run = ?1", [run], |r| {
            Ok((r.get::<_, Option<i64>>(0)?.unwrap_or(0), r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
        })
        .unwrap()
    };
    let runs: Vec<(i64, String, Option<String>)> = db
        .prepare("SELECT run, started_at, finished_at FROM runs ORDER BY run")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|(_, _, finished)| finished.is_some()), "both runs finished: {runs:?}");
    let (first_run, second_run) = (span(runs[0].0), span(runs[1].0));
    assert!(
        second_run == (0, 0) || first_run.1 < second_run.0,
        "journal entries interleave: {first_run:?} {second_run:?}"
    );
}

/// Every command that prints, with its standard output closed before it
/// writes: the reader went away (`| head -1`), which is no reason to panic.
#[test]
fn every_printing_command_survives_a_closed_stdout() {
    let dir = workdir(EXAMPLE);
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    fs::write(
        dir.path().join("k8s_users.json"),
        r#"{"dana": {"role": "namespace-owner", "email": "dana@example.org", "namespaces": ["dana"]}}"#,
    )
    .unwrap();
    let cases: &[(&[&str], i32)] = &[
        (&["validate"], 0),
        (&["validate", "--output", "json"], 0),
        (&["plan"], 0),
        (&["plan", "--output", "json"], 0),
        (&["plan", "--output", "markdown"], 0),
        (&["apply", "--yes"], 0),
        (&["render", "gitops"], 0),
        (&["why", "kubernetes/RoleBinding/bob/namespace-owner-bob"], 0),
        (&["explain", "bob"], 0),
        (&["explain", "bob", "--output", "json"], 0),
        (&["kubeconfig", "bob"], 0),
        (&["setup-script", "--os", "linux"], 0),
        (&["schema"], 0),
        (&["crds"], 0),
        (&["import", "--to-crds"], 0),
        (&["completions", "bash"], 0),
        (&["import", "--k8s-users", "k8s_users.json"], 0),
        (&["--help"], 0),
        (&["--roster", "missing.yaml", "plan", "--output", "json"], 1),
    ];
    for (args, code) in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(*args)
            .arg("--no-color")
            .current_dir(dir.path())
            .env("RUST_BACKTRACE", "1")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "tenantry {args:?} panicked on a closed pipe:\n{stderr}");
        assert_eq!(output.status.code(), Some(*code), "tenantry {args:?}:\n{stderr}");
    }
}

/// The CLI parses, calls a use case and renders: it never derives, diffs,
/// touches the state or a target itself (that is tenantry-app's job, so
/// `serve` and the portal do exactly the same).
#[test]
fn the_cli_only_calls_use_cases() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = fs::read_to_string(crate_dir.join("Cargo.toml")).unwrap();
    let dependencies = manifest.split("[dev-dependencies]").next().unwrap();
    for forbidden in
        ["tenantry-engine", "tenantry-kubernetes", "tenantry-vault", "tenantry-dns", "tenantry-host", "tenantry-local"]
    {
        assert!(!dependencies.contains(forbidden), "tenantry-cli depends on {forbidden}");
    }
    let mut sources = Vec::new();
    let mut pending = vec![crate_dir.join("src")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources.push(path);
            }
        }
    }
    assert!(sources.len() > 10, "{sources:?}");
    for path in sources {
        let code = fs::read_to_string(&path).unwrap();
        for forbidden in [
            "tenantry_core::derive",
            "tenantry_core::diff",
            "derive(&",
            " diff(&",
            "with_state",
            "tenantry_engine",
            "State::open",
            "Engine",
            "Target::",
            "facts(",
        ] {
            assert!(!code.contains(forbidden), "{} calls `{forbidden}`", path.display());
        }
    }
}

/// `tenantry serve` from the command line: with the local target only, it
/// renders the roster, answers health and status, logs JSON lines with
/// `--log-format json`, applies a roster edit, and exits 0 on SIGTERM.
#[test]
fn serve_renders_answers_serves_the_portal_and_stops_cleanly_on_sigterm() {
    // The issuer is only asked at sign-in (the portal's own tests sign in
    // through Keycloak); here serve must mount the portal's pages.
    let platform = "platform:\n  oidc: { issuer_url: https://auth.example.org/, client_id: kubernetes }\n";
    let dir = workdir(&format!(
        "{platform}users:\n  alice: {{ email: alice@example.org, tier: namespace-owner, namespaces: [alice] }}\n"
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let secret = dir.path().join("portal-client.secret");
    fs::write(&secret, "not-a-real-secret").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[local]\nout_dir = \"out\"\n\n[serve]\nlisten = \"127.0.0.1:{port}\"\ndebounce = \"100ms\"\n\n[portal]\npublic_url = \"http://127.0.0.1:{port}/\"\nclient_id = \"tenantry-portal\"\nclient_secret_file = \"{}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let log = fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["serve", "--log-format", "json"])
        .current_dir(dir.path())
        .env_remove("TENANTRY_ROSTER")
        .env_remove("TENANTRY_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let get = |path: &str| -> Option<(u16, String)> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.ok()?;
            let code = response.status().as_u16();
            Some((code, response.text().await.ok()?))
        })
    };
    let wait = |what: &str, check: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !check() {
            assert!(start.elapsed() < std::time::Duration::from_secs(30), "{what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait("serve renders alice", &|| dir.path().join("out/kubernetes/alice").is_dir());
    wait("serve is ready", &|| get("/readyz").is_some_and(|(code, _)| code == 200));
    assert_eq!(get("/healthz").map(|(code, _)| code), Some(200));
    let status: serde_json::Value = serde_json::from_str(&get("/api/status").unwrap().1).unwrap();
    assert_eq!(status["role"], "standalone", "{status}");
    assert_eq!(status["last_pass"]["converged"], true, "{status}");
    assert_eq!(status["last_pass"]["report"]["format_version"], "1", "the apply report's JSON: {status}");

    // The portal on the same listener: the sign-in page with its strict CSP,
    // and a tenant page that sends a browser without a session to sign in.
    let portal = |path: &str| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let response = client.get(format!("http://127.0.0.1:{port}{path}")).send().await.unwrap();
            let header =
                |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let (csp, location) = (header("content-security-policy"), header("location"));
            (response.status().as_u16(), csp, location, response.text().await.unwrap())
        })
    };
    let (code, csp, _, page) = portal("/signin");
    assert_eq!(code, 200, "{page}");
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(page.contains("<form") || page.contains("/auth/login"), "a sign-in page: {page}");
    let (code, _, location, _) = portal("/users/alice");
    assert!((300..400).contains(&code), "{code}");
    assert_eq!(location, "/signin?next=%2Fusers%2Falice");

    fs::write(
        dir.path().join("roster.yaml"),
        "users:\n  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice] }\n  bob: { email: bob@example.org, tier: namespace-owner, namespaces: [bob] }\n",
    )
    .unwrap();
    wait("serve renders bob after the roster edit", &|| dir.path().join("out/kubernetes/bob").is_dir());

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "serve still runs 5 s after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let log = fs::read_to_string(dir.path().join("serve.log")).unwrap();
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|l| l["message"] == "serving"), "{log}");
    assert!(lines.iter().any(|l| l["message"] == "shutting down"), "{log}");
}

/// `plan --out FILE` + `apply FILE` applies exactly the reviewed plan, and
/// refuses — changing nothing — once the roster or an observed object moved.
#[test]
fn a_saved_plan_applies_exactly_or_refuses_when_anything_moved() {
    let dir = workdir(EXAMPLE);
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    fs::write(dir.path().join("roster.yaml"), EXAMPLE.replace("namespaces: [bob]", "namespaces: [bob, bob-staging]"))
        .unwrap();
    let saved = tenantry(dir.path(), &["plan", "--out", "reviewed.plan"]);
    assert_eq!(saved.status.code(), Some(0), "{}", text(&saved));
    let file: serde_json::Value = serde_json::from_slice(&fs::read(dir.path().join("reviewed.plan")).unwrap()).unwrap();
    let planned: Vec<&String> = file["changes"].as_object().unwrap().keys().collect();
    assert!(planned.iter().any(|id| id.contains("bob-staging")), "{planned:?}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir.path().join("reviewed.plan")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Something it observed moved (a rendered file edited): refused, nothing applied.
    let quota = dir.path().join("tenantry-out/kubernetes/alice/alice/resourcequota-user-quota.yaml");
    let original = fs::read_to_string(&quota).unwrap();
    fs::write(&quota, original.replace("pods: \"30\"", "pods: \"999\"")).unwrap();
    let before = tree(&dir.path().join("tenantry-out"));
    let refused = tenantry(dir.path(), &["apply", "reviewed.plan"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("stale plan"), "{}", text(&refused));
    // (miette wraps long messages: join its continuation lines before looking.)
    let flat = text(&refused).replace("\n  | ", "");
    assert!(flat.contains("kubernetes/ResourceQuota/alice/user-quota"), "it names what moved: {flat}");
    assert_eq!(tree(&dir.path().join("tenantry-out")), before, "nothing was applied");

    // Put back, the plan applies exactly, without asking again.
    fs::write(&quota, &original).unwrap();
    let applied = tenantry(dir.path(), &["apply", "reviewed.plan", "--output", "json"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let report: serde_json::Value = serde_json::from_slice(&applied.stdout).unwrap();
    let total: u64 = report["applied"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total as usize, planned.len(), "exactly the saved changes");
    assert!(dir.path().join("tenantry-out/kubernetes/bob/bob-staging").exists());
    assert_eq!(tenantry(dir.path(), &["plan", "--detailed-exitcode"]).status.code(), Some(0));

    // A roster edit after the plan: refused by name.
    let saved = tenantry(dir.path(), &["plan", "--out", "reviewed.plan"]);
    assert_eq!(saved.status.code(), Some(0));
    fs::write(dir.path().join("roster.yaml"), EXAMPLE.replace("pods: \"30\"", "pods: \"31\"")).unwrap();
    let refused = tenantry(dir.path(), &["apply", "reviewed.plan"]);
    assert_eq!(refused.status.code(), Some(1));
    let flat = text(&refused).replace("\n  | ", " ");
    assert!(flat.contains("the roster roster.yaml changed since the plan was saved"), "{flat}");
    // A plan file with policy flags is refused by the command line itself.
    let mixed = tenantry(dir.path(), &["apply", "reviewed.plan", "--allow-revoke"]);
    assert_eq!(mixed.status.code(), Some(2), "{}", text(&mixed));
}

/// The pull-request summary parses as the Markdown it claims to be: a table
/// with a row per owner, what needs a human listed first, diffs folded.
#[test]
fn plan_markdown_is_a_compact_summary_for_a_pull_request() {
    let dir = workdir(EXAMPLE);
    assert_eq!(tenantry(dir.path(), &["apply", "--yes"]).status.code(), Some(0));
    let edited = EXAMPLE.replace("[alice, alice-prod]", "[alice]").replace("pods: \"30\"", "pods: \"31\"");
    fs::write(dir.path().join("roster.yaml"), edited).unwrap();
    let output = tenantry(dir.path(), &["plan", "--output", "markdown"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let markdown = String::from_utf8(output.stdout).unwrap();

    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let mut rows = 0;
    let mut strong = Vec::new();
    let mut in_strong = false;
    let mut html = String::new();
    let mut code_blocks = 0;
    for event in Parser::new_ext(&markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::TableRow) => rows += 1,
            Event::Start(Tag::Strong) => in_strong = true,
            Event::End(TagEnd::Strong) => in_strong = false,
            Event::Text(text) if in_strong => strong.push(text.to_string()),
            Event::Html(text) | Event::InlineHtml(text) => html.push_str(&text),
            Event::Start(Tag::CodeBlock(_)) => code_blocks += 1,
            _ => {}
        }
    }
    let owners = 6; // alice, bob, carol, emo, wizard and the platform
    assert_eq!(rows, owners, "one table row per owner:\n{markdown}");
    assert!(strong.iter().any(|s| s.starts_with("Withheld removals")), "{strong:?}");
    let withheld_at = markdown.find("Withheld removals").unwrap();
    let details_at = markdown.find("<details>").unwrap();
    assert!(withheld_at < details_at, "what needs a human comes first");
    assert_eq!(html.matches("<details>").count(), code_blocks, "each owner's changes are folded");
    assert!(
        markdown.lines().any(|l| l.starts_with('+') && l.contains("\"pods\": \"31\"")),
        "the diff is there, folded:\n{markdown}"
    );
    let refused = tenantry(dir.path(), &["apply", "--output", "markdown"]);
    assert_eq!(refused.status.code(), Some(1));
}

/// An API server that accepts connections and never answers costs a run
/// `request_timeout`, not kube's five minutes, and the error says it timed
/// out and what to check; a timeout that is not a duration is refused.
#[test]
fn a_kubernetes_api_server_that_never_answers_costs_only_the_request_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept every connection and hold it open without a byte in reply.
    std::thread::spawn(move || {
        let held: Vec<std::net::TcpStream> = listener.incoming().take(32).filter_map(Result::ok).collect();
        drop(held);
    });
    let dir = workdir("users:\n  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice] }\n");
    fs::write(
        dir.path().join("stall.kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: stall, cluster: {{server: \"http://127.0.0.1:{port}\"}}}}]\nusers: [{{name: u, user: {{token: not-a-token}}}}]\ncontexts: [{{name: stall, context: {{cluster: stall, user: u}}}}]\ncurrent-context: stall\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join("tenantry.toml"),
        "[kubernetes]\nkubeconfig = \"stall.kubeconfig\"\nrequest_timeout = \"2s\"\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let plan = tenantry(dir.path(), &["plan"]);
    let took = started.elapsed();
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan));
    assert!(took < std::time::Duration::from_secs(15), "the stalled server held the run for {took:?}");
    let shown = text(&plan);
    assert!(shown.contains("timed out"), "{shown}");
    assert!(shown.contains("request timeouts"), "the fix names the setting: {shown}");

    fs::write(dir.path().join("tenantry.toml"), "[kubernetes]\nrequest_timeout = \"soon\"\n").unwrap();
    let refused = tenantry(dir.path(), &["plan"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("`request_timeout = \"soon\"` is not a duration"), "{}", text(&refused));
}
