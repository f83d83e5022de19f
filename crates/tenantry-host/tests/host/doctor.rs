//! `tenantry doctor` on the host (issue #19): checkouts made dirty, moved
//! to another branch or diverged by their accounts with real git, a real
//! listener on 127.0.0.1 at a port a user's env file assigns, and a
//! hostile home (the checkout a link to /etc, a FIFO for the env file)
//! that must be reported, not followed or waited on.

use super::*;
use std::time::{Duration, Instant};
use tenantry_core::doctor::{DiagnoseRequest, Diagnosis, Finding};

/// The host's checks on every desired resource of `roster`, as `tenantry doctor` asks them.
async fn doctor(sandbox: &Sandbox, roster: &Roster) -> Diagnosis {
    let prepared = sandbox.plan(roster, Policy::default()).await;
    let request = DiagnoseRequest {
        platform: "lab".to_string(),
        desired: prepared.desired.resources().to_vec(),
        now: std::time::SystemTime::now(),
        emails: BTreeMap::new(),
    };
    let started = Instant::now();
    let diagnosis = tokio::time::timeout(Duration::from_secs(90), sandbox.target().diagnose(&request))
        .await
        .expect("doctor must not hang on a tenant's home")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "doctor took {:?}", started.elapsed());
    diagnosis
}

/// The findings of `check` about `resource`.
fn about<'a>(diagnosis: &'a Diagnosis, check: &str, resource: &str) -> Vec<&'a Finding> {
    diagnosis.findings.iter().filter(|f| f.check == check && f.resource.as_deref() == Some(resource)).collect()
}

/// The one finding of `check` about `resource`.
fn one<'a>(diagnosis: &'a Diagnosis, check: &str, resource: &str) -> &'a Finding {
    let found = about(diagnosis, check, resource);
    assert_eq!(found.len(), 1, "one `{check}` finding about {resource}: {:#?}", diagnosis.findings);
    found[0]
}

fn user(name: &str) -> String {
    format!("  {name}: {{ email: {name}@example.org, tier: power-user, workstation: {{ code_layout: single }} }}\n")
}

/// The machine's /proc, where the host's root keeps it.
fn mount_proc(sandbox: &Sandbox) {
    std::os::unix::fs::symlink("/proc", sandbox.root.join("proc")).unwrap();
}

#[tokio::test]
async fn doctor_names_dirty_off_default_and_diverged_checkouts_with_their_fixes() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&["alice", "bob", "carol", "dave"].map(user).concat());
    sandbox.apply(&roster).await;

    // Healthy after an apply; without /proc under the root the port check is skipped, not passed.
    let healthy = doctor(&sandbox, &roster).await;
    assert_eq!(healthy.findings, [], "a fresh apply is healthy");
    assert!(healthy.ran.contains("checkout"));
    assert!(healthy.skipped["ports"].contains("is /proc mounted under the host root?"), "{:?}", healthy.skipped);

    let code = |user: &str| sandbox.path(&format!("/home/{user}/code"));
    // alice: an edit and an untracked file.
    std::fs::write(code("alice").join("README.md"), "alice's edit\n").unwrap();
    std::fs::write(code("alice").join("scratch.txt"), "untracked\n").unwrap();
    // bob: on a topic branch.
    sandbox.git_as("bob", &code("bob"), &["checkout", "--quiet", "-b", "topic"]);
    // carol: a local commit, while upstream moved on (and she fetched).
    std::fs::write(code("carol").join("local.txt"), "mine\n").unwrap();
    sandbox.git_as("carol", &code("carol"), &["add", "local.txt"]);
    sandbox.git_as("carol", &code("carol"), &["commit", "--quiet", "-m", "local"]);
    let seed = sandbox.base.join("seed");
    std::fs::write(seed.join("UPSTREAM"), "moved on\n").unwrap();
    git(&seed, &["add", "UPSTREAM"]);
    git(&seed, &["commit", "--quiet", "-m", "upstream"]);
    git(&seed, &["push", "--quiet", "origin", "master"]);
    // (through the sandbox's git: its system config lets the account read root's bare repository)
    let carol = sandbox.ids("carol");
    run_ok(
        Command::new(sandbox.base.join("git"))
            .arg("-C")
            .arg(code("carol"))
            .args(["fetch", "--quiet"])
            .env("HOME", sandbox.path("/home/carol"))
            .uid(carol.0)
            .gid(carol.1),
    );
    let carol_index = std::fs::metadata(code("carol").join(".git/index")).unwrap().modified().unwrap();

    mount_proc(&sandbox);
    let sick = doctor(&sandbox, &roster).await;
    assert!(sick.ran.contains("ports") && sick.ran.contains("checkout"), "{:?}", sick.skipped);

    let dirty = one(&sick, "checkout", "host/Checkout/alice/infra");
    assert_eq!(dirty.cause, "/home/alice/code has uncommitted changes");
    assert_eq!(dirty.evidence, ["`git status --porcelain`: 2 changed or untracked path(s)"]);
    assert!(dirty.fix.starts_with("`alice` commits or stashes them (`sudo -u alice git -C /home/alice/code status`"));

    let topic = one(&sick, "checkout", "host/Checkout/bob/infra");
    assert_eq!(topic.cause, "/home/bob/code is on branch `topic`, not its default branch `master`");
    assert!(topic.fix.contains("`sudo -u bob git -C /home/bob/code switch master`"), "{}", topic.fix);

    let diverged = one(&sick, "checkout", "host/Checkout/carol/infra");
    assert_eq!(diverged.cause, "/home/carol/code has diverged: `master` has 1 local commit(s) not upstream");
    assert_eq!(diverged.evidence, ["1 ahead of, 1 behind its upstream (as of the last fetch)"]);
    assert!(diverged.fix.contains("`sudo -u carol git -C /home/carol/code pull --rebase`"), "{}", diverged.fix);

    assert!(sick.findings.iter().all(|f| f.severity == tenantry_core::doctor::Severity::Warning), "{sick:#?}");
    let dave: Vec<_> = sick.findings.iter().filter(|f| f.owner.user() == Some("dave")).collect();
    assert_eq!(dave, Vec::<&Finding>::new(), "a healthy user reports nothing");
    assert_eq!(sick.findings.len(), 3, "{:#?}", sick.findings);
    // Doctor wrote nothing into the checkout (no index refresh, no fetch).
    assert_eq!(std::fs::metadata(code("carol").join(".git/index")).unwrap().modified().unwrap(), carol_index);
}

/// Two free ports in a row on 127.0.0.1; the first stays bound (by root, this test).
fn taken_port_and_a_free_one() -> (std::net::TcpListener, u16) {
    for _ in 0..50 {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (taken, port);
        }
    }
    panic!("no two free ports in a row on 127.0.0.1");
}

/// A listener on 127.0.0.1:`port` run as `ids` (perl: a process of the account's own).
fn listen_as(ids: (u32, u32), port: u16) -> std::process::Child {
    let script = format!(
        "use IO::Socket::INET; my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => {port}, Listen => 5, ReuseAddr => 1) or die $!; sleep 120;"
    );
    let child = Command::new("perl").args(["-e", &script]).uid(ids.0).gid(ids.1).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the account's listener on {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test]
async fn a_port_of_the_env_file_another_user_listens_on_is_named_with_evidence() {
    let (taken, port) = taken_port_and_a_free_one();
    let sandbox = Sandbox::new();
    mount_proc(&sandbox);
    // One pool, starting at the port this test holds: alice gets it, erin the next.
    let pools = format!("port_pools: {{ terminal: {port} }}");
    let roster_text = format!(
        "{}{}",
        PLATFORM
            .replace("@REPOS@", &sandbox.repos.display().to_string())
            .replace("port_pools: { terminal: 3773, browser: 8931 }", &pools),
        ["alice", "erin"].map(user).concat()
    );
    let roster = tenantry_model::load("roster.yaml", roster_text.as_bytes(), &Default::default()).unwrap();
    sandbox.apply(&roster).await;
    let env = |user: &str| {
        std::fs::read_to_string(sandbox.path(&format!("/home/{user}/{}", ports::PORTS_ENV_RELATIVE))).unwrap()
    };
    assert!(env("alice").contains(&format!("TENANTRY_PORT_TERMINAL={port}\n")), "{}", env("alice"));
    assert!(env("erin").contains(&format!("TENANTRY_PORT_TERMINAL={}\n", port + 1)), "{}", env("erin"));
    // erin's own service on her own port: her business, not a finding.
    let mut own = listen_as(sandbox.ids("erin"), port + 1);

    let diagnosis = doctor(&sandbox, &roster).await;
    let _ = own.kill();
    let _ = own.wait();
    assert!(diagnosis.ran.contains("ports"), "{:?}", diagnosis.skipped);
    let busy = one(&diagnosis, "ports", "host/Port/terminal/alice");
    assert_eq!(busy.severity, tenantry_core::doctor::Severity::Problem);
    assert_eq!(
        busy.cause,
        format!("port {port} (TENANTRY_PORT_TERMINAL of `alice`) is taken: uid 0 (`root`) is listening on it")
    );
    let inode = std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .find(|l| l.contains(&format!("0100007F:{port:04X} 00000000:0000 0A")))
        .map(|l| l.split_whitespace().nth(9).unwrap().to_string())
        .unwrap();
    assert_eq!(
        busy.evidence,
        [
            format!("listening on 127.0.0.1 port {port}, uid 0 (`root`), socket inode {inode}"),
            format!("`alice` is uid {}", sandbox.ids("alice").0),
        ]
    );
    assert!(
        busy.fix.starts_with(&format!("stop that process (`ss -ltnp 'sport = :{port}'` names it)")),
        "{}",
        busy.fix
    );
    assert_eq!(diagnosis.findings.len(), 1, "erin listening on her own port is fine: {:#?}", diagnosis.findings);

    // The listener gone, the port is free again: nothing to report.
    drop(taken);
    assert_eq!(doctor(&sandbox, &roster).await.findings, []);
}

#[tokio::test]
async fn a_hostile_home_is_reported_never_followed_or_waited_on() {
    let sandbox = Sandbox::new();
    mount_proc(&sandbox);
    let roster = sandbox.roster(&["alice", "bob"].map(user).concat());
    sandbox.apply(&roster).await;
    let alice = sandbox.ids("alice");
    // alice swaps her checkout for a link to /etc, and her env file for a FIFO nobody writes.
    let code = sandbox.path("/home/alice/code");
    std::fs::rename(&code, sandbox.path("/home/alice/code.mine")).unwrap();
    std::os::unix::fs::symlink("/etc", &code).unwrap();
    std::os::unix::fs::lchown(&code, Some(alice.0), Some(alice.1)).unwrap();
    let env = sandbox.path(&format!("/home/alice/{}", ports::PORTS_ENV_RELATIVE));
    std::fs::remove_file(&env).unwrap();
    run_ok(Command::new("mkfifo").arg(&env));
    std::os::unix::fs::chown(&env, Some(alice.0), Some(alice.1)).unwrap();
    // bob's .git is a link into root's repository.
    let bob_code = sandbox.path("/home/bob/code");
    std::fs::rename(bob_code.join(".git"), sandbox.path("/home/bob/dot-git")).unwrap();
    std::os::unix::fs::symlink(sandbox.repos.join("infra.git"), bob_code.join(".git")).unwrap();

    let diagnosis = doctor(&sandbox, &roster).await;
    let link = one(&diagnosis, "checkout", "host/Checkout/alice/infra");
    assert_eq!(
        link.cause,
        "/home/alice/code cannot be looked at safely: something in the way is not a plain directory"
    );
    assert!(link.evidence[0].contains("link"), "the refusal names the link: {:?}", link.evidence);
    assert!(
        link.fix.starts_with("`alice` moves what is at /home/alice/code out of the way (`sudo -u alice mv /home/alice/code /home/alice/code.old`)"),
        "{}",
        link.fix
    );
    // (reported once, about the first of her ports)
    let fifo = one(&diagnosis, "ports", "host/Port/browser/alice");
    assert_eq!(
        fifo.cause,
        "the port env file /home/alice/.config/tenantry/ports.env cannot be read safely; it is not used"
    );
    assert!(
        fifo.fix
            .starts_with("`alice` removes what is there (`sudo -u alice rm /home/alice/.config/tenantry/ports.env`)")
    );
    let dot_git = one(&diagnosis, "checkout", "host/Checkout/bob/infra");
    assert_eq!(
        dot_git.cause, "/home/bob/code exists but is not a git checkout (no .git directory of its own)",
        "a linked .git is not followed: {dot_git:#?}"
    );
    assert!(dot_git.fix.contains("`sudo -u bob mv /home/bob/code /home/bob/code.old`"), "{}", dot_git.fix);
    // Nothing was followed: /etc and root's repository are as they were.
    assert!(!sandbox.path("/home/alice/code.mine/.git/index.lock").exists());
    assert_eq!(std::fs::metadata("/etc").unwrap().uid(), 0);
}
