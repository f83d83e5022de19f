//! A tenant against the git tenantry runs for them and the checkouts it
//! reads (issue #11, findings 2 and 9).

use super::*;
use std::sync::Mutex;

const VAULT_TOKEN: &str = "hvs.the-admins-vault-token";
const PDNS_API_KEY: &str = "the-admins-pdns-key";
/// Set (to the sandbox's base) in the copy of this test that runs under a pseudo-terminal.
const UNDER_PTY: &str = "TENANTRY_TEST_UNDER_PTY";
const PTY_TEST: &str = "tenant_git::git_run_for_a_tenant_gets_no_hooks_no_secrets_and_no_terminal";

/// A script that records what it can get at into `dir`: its environment,
/// whether it could open the controlling terminal (the `TIOCSTI` attack needs
/// it), whether any of its standard streams is a terminal.
fn spy(dir: &Path) -> String {
    format!(
        "#!/bin/sh\nd='{}'\nmkdir -p \"$d\"\necho \"$0\" >> \"$d/ran\"\nenv > \"$d/env.$$\"\n\
         if (exec 3</dev/tty) 2>/dev/null; then echo '/dev/tty opened' >> \"$d/tty\"; fi\n\
         for fd in 0 1 2; do if [ -t $fd ]; then echo \"fd $fd is a terminal\" >> \"$d/tty\"; fi; done\nexit 0\n",
        dir.display()
    )
}

fn install(path: &Path, text: &str, owner: (u32, u32)) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)).unwrap();
}

/// Everything `dir` recorded, file name → content (empty when the spy never ran).
fn loot(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return BTreeMap::new() };
    entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap_or_default()))
        .collect()
}

fn leaked(found: &BTreeMap<String, String>) -> bool {
    found.values().any(|text| text.contains(VAULT_TOKEN) || text.contains(PDNS_API_KEY))
}

/// The alice of the attack: every hook and the fsmonitor of her
/// `~/.gitconfig` (and of XDG's) run the spy.
fn plant_git_config(sandbox: &Sandbox, hooks_loot: &Path) {
    let alice = sandbox.ids("alice");
    let home = sandbox.path("/home/alice");
    install(&home.join(".spy"), &spy(hooks_loot), alice);
    for hook in ["post-checkout", "post-merge", "reference-transaction", "post-index-change", "pre-auto-gc"] {
        install(&home.join(".hooks").join(hook), &spy(hooks_loot), alice);
    }
    let config = format!("[core]\n\thooksPath = {0}/.hooks\n\tfsmonitor = {0}/.spy\n", home.display());
    for path in [home.join(".gitconfig"), home.join(".config/git/config")] {
        install(&path, &config, alice);
    }
    run_ok(Command::new("chown").arg("-R").arg(format!("{}:{}", alice.0, alice.1)).arg(home.join(".config")));
}

/// Finding 2: git run for a tenant (a re-clone forced by deleting ~/code,
/// a refresh) under an admin's terminal with secrets in the environment. The
/// tenant's hooks and fsmonitor never run; a command run as the tenant sees
/// none of root's environment and has no terminal to push keystrokes into.
/// The operation runs in a copy of this test under a pseudo-terminal
/// (`script`), so a controlling terminal really exists.
#[tokio::test]
async fn git_run_for_a_tenant_gets_no_hooks_no_secrets_and_no_terminal() {
    if let Ok(base) = std::env::var(UNDER_PTY) {
        return under_the_admins_terminal(Path::new(&base)).await;
    }
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(ALICE_SINGLE);
    sandbox.apply(&roster).await;
    let alice = sandbox.ids("alice");
    let hooks_loot = sandbox.base.join("loot/hooks");
    plant_git_config(&sandbox, &hooks_loot);
    std::fs::create_dir_all(sandbox.base.join("loot")).unwrap();
    run_ok(Command::new("chown").arg(format!("{}:{}", alice.0, alice.1)).arg(sandbox.base.join("loot")));

    // The planted configuration works: git run the old way (as alice, root's environment) runs the spy.
    let control = sandbox.path("/home/alice/control");
    run_ok(
        Command::new(sandbox.base.join("git"))
            .args(["clone", "--quiet"])
            .arg(format!("file://{}/infra.git", sandbox.repos.display()))
            .arg(&control)
            .env("HOME", sandbox.path("/home/alice"))
            .env("VAULT_TOKEN", VAULT_TOKEN)
            .uid(alice.0)
            .gid(alice.1),
    );
    let found = loot(&hooks_loot);
    assert!(found.contains_key("ran") && leaked(&found), "the planted hooks did not run for plain git: {found:#?}");
    std::fs::remove_dir_all(&hooks_loot).unwrap();
    std::fs::remove_dir_all(&control).unwrap();
    // The tenant deletes their checkout to force a re-clone.
    std::fs::remove_dir_all(sandbox.path("/home/alice/code")).unwrap();

    let exe = std::env::current_exe().unwrap();
    let inner = format!("{} --exact {PTY_TEST} --nocapture --test-threads=1", shell_quote(&exe.display().to_string()));
    let output = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env(UNDER_PTY, &sandbox.base)
        .env("VAULT_TOKEN", VAULT_TOKEN)
        .env("PDNS_API_KEY", PDNS_API_KEY)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && shown.contains("1 passed"), "the run under a terminal failed:\n{shown}");

    // Under the terminal, the old way leaked (so this harness sees a leak when there is one)…
    let control = loot(&sandbox.base.join("loot/control"));
    assert!(leaked(&control), "{control:#?}");
    assert!(control.get("tty").is_some_and(|t| t.contains("/dev/tty opened")), "{control:#?}");
    // …and tenantry's git ran no hook and no fsmonitor, and its command saw nothing of root's.
    let hooks = loot(&hooks_loot);
    assert!(hooks.is_empty(), "a tenant's hook or fsmonitor ran: {hooks:#?}");
    let probe = loot(&sandbox.base.join("loot/probe"));
    assert!(probe.contains_key("ran"), "the probe did not run: {probe:#?}");
    assert!(!leaked(&probe), "root's secrets reached a tenant's command: {probe:#?}");
    assert!(!probe.contains_key("tty"), "a tenant's command had a terminal: {:?}", probe.get("tty"));
    let env = probe.iter().find(|(name, _)| name.starts_with("env.")).map(|(_, text)| text.clone()).unwrap();
    let mut names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    names.sort();
    // Exactly the clean environment (the shell adds PWD, SHLVL and `_` itself).
    names.retain(|n| !["PWD", "SHLVL", "_", "OLDPWD"].contains(n));
    assert_eq!(names, vec!["HOME", "LANG", "LOGNAME", "PATH", "USER"], "{env}");
    assert!(env.contains(&format!("PATH={}\n", tenantry_host::SAFE_PATH)), "{env}");
}

/// The copy of the test above running under `script`'s pseudo-terminal, with root's secrets set.
async fn under_the_admins_terminal(base: &Path) {
    // The harness itself: a controlling terminal and the secrets must be here, or nothing is proven.
    std::fs::File::open("/dev/tty").expect("no controlling terminal under script(1)");
    assert_eq!(std::env::var("VAULT_TOKEN").as_deref(), Ok(VAULT_TOKEN));
    let sandbox = Sandbox::reopen(base);
    let alice = sandbox.ids("alice");
    let probe = sandbox.base.join("loot/probe.sh");
    install(&probe, &spy(&sandbox.base.join("loot/probe")), alice);
    let control = sandbox.base.join("loot/control.sh");
    install(&control, &spy(&sandbox.base.join("loot/control")), alice);

    // Control: a command started the old way inherits the terminal and the environment.
    let status = Command::new(&control).uid(alice.0).gid(alice.1).status().unwrap();
    assert!(status.success());

    // tenantry re-clones alice's checkout…
    let roster = sandbox.roster(ALICE_SINGLE);
    sandbox.apply(&roster).await;
    assert!(sandbox.path("/home/alice/code/.git").is_dir());
    // …and refreshes it (fetch, then a fast-forward merge), with hooks in the checkout itself too.
    for hook in ["post-merge", "post-checkout", "reference-transaction"] {
        install(&sandbox.path("/home/alice/code/.git/hooks").join(hook), &spy(&sandbox.base.join("loot/hooks")), alice);
    }
    let seed = sandbox.base.join("seed");
    std::fs::write(seed.join("CHANGELOG"), "second\n").unwrap();
    git(&seed, &["add", "CHANGELOG"]);
    git(&seed, &["commit", "--quiet", "-m", "second"]);
    git(&seed, &["push", "--quiet", "origin", "master"]);
    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let checkout = prepared.desired.get(&"host/Checkout/alice/infra".parse().unwrap()).unwrap().content.clone();
    let outcome = sandbox.target().refresh(&checkout).await.unwrap();
    assert_eq!(outcome, RefreshOutcome::FastForwarded { commits: 1 });

    // And a command run as alice by the runner itself.
    let mut cmd = Cmd::new(&probe, Vec::<String>::new()).as_user("alice", sandbox.path("/home/alice"));
    cmd.ids = Some(alice);
    let output = SystemRunner.run(&cmd).unwrap();
    assert!(output.success(), "{output:?}");
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Every command tenantry runs has a timeout, and every git run as a tenant
/// carries the hardening (configuration that would run a program is off).
#[tokio::test]
async fn every_command_has_a_timeout_and_every_git_is_hardened() {
    #[derive(Debug, Default)]
    struct Recording(Mutex<Vec<Cmd>>);
    impl tenantry_host::CommandRunner for Recording {
        fn run(&self, cmd: &Cmd) -> std::io::Result<tenantry_host::CmdOutput> {
            self.0.lock().unwrap().push(cmd.clone());
            SystemRunner.run(cmd)
        }
    }
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    let recording = Arc::new(Recording::default());
    let target = HostTarget::with_runner(sandbox.config(), recording.clone());
    let engine = sandbox.engine(&target);
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let report = engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    assert!(report.is_success(), "{:#?}", report.failures);
    target.refresh_all(&prepared.desired, 2).await;

    let commands = recording.0.lock().unwrap().clone();
    assert!(commands.iter().any(|c| c.program.ends_with("useradd")), "{commands:#?}");
    assert!(commands.iter().filter(|c| c.args.iter().any(|a| a == "clone")).count() == 2, "{commands:#?}");
    for cmd in &commands {
        assert!(cmd.timeout.is_some(), "no timeout: {cmd}");
        if cmd.program.ends_with("git") {
            assert!(cmd.run_as.is_some(), "git as root: {cmd}");
            let env: BTreeMap<&str, &str> = cmd.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(env.get("GIT_CONFIG_NOSYSTEM"), Some(&"1"), "{cmd}");
            assert_eq!(env.get("GIT_CONFIG_GLOBAL"), Some(&"/dev/null"), "{cmd}");
            assert_eq!(env.get("GIT_TERMINAL_PROMPT"), Some(&"0"), "{cmd}");
            for setting in
                ["core.hooksPath=/dev/null", "core.fsmonitor=false", "protocol.ext.allow=never", "credential.helper="]
            {
                assert!(cmd.args.windows(2).any(|w| w[0] == "-c" && w[1] == setting), "{setting} missing: {cmd}");
            }
        }
        if cmd.run_as.is_some() {
            assert!(cmd.to_string().contains("setsid --wait "), "{cmd}");
        }
    }
}

/// Finding 9: a `.git` *file* pointing at root's repository made `plan`
/// print that repository's remote URL, token included. It is never followed
/// outside the checkout, and credentials in a tenant's own URL are shown as `***`.
#[tokio::test]
async fn a_git_dir_outside_the_checkout_is_never_read_and_credentials_are_never_shown() {
    let sandbox = Sandbox::new();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}"));
    sandbox.apply(&roster).await;
    let root_repo = sandbox.base.join("root-only");
    run_ok(Command::new("git").args(["init", "--quiet"]).arg(&root_repo));
    git(&root_repo, &["remote", "add", "origin", "https://deploy:ROOTS-TOKEN-1@forge.example.org/ops.git"]);
    std::fs::set_permissions(&root_repo, std::fs::Permissions::from_mode(0o700)).unwrap();
    let root_config = std::fs::read_to_string(root_repo.join(".git/config")).unwrap();

    let code = sandbox.path("/home/alice/code");
    std::fs::remove_dir_all(code.join(".git")).unwrap();
    std::fs::write(code.join(".git"), format!("gitdir: {}/.git\n", root_repo.display())).unwrap();
    let alice = sandbox.ids("alice");
    std::os::unix::fs::chown(code.join(".git"), Some(alice.0), Some(alice.1)).unwrap();
    let bob_code = sandbox.path("/home/bob/code");
    sandbox.git_as(
        "bob",
        &bob_code,
        &["remote", "set-url", "origin", "https://bob:BOBS-TOKEN-2@elsewhere.example.org/x.git"],
    );

    let prepared = sandbox.plan(&roster, Policy::default()).await;
    let target = sandbox.target();
    let mut shown = format!("{:#?}", prepared.plan.problems);
    for change in &prepared.plan.changes {
        shown.push_str(&format!("{change:#?}\n{}\n", target.describe(change).join("\n")));
    }
    assert!(!shown.contains("ROOTS-TOKEN-1"), "root's repository was read:\n{shown}");
    assert!(!shown.contains("BOBS-TOKEN-2"), "a credential was shown:\n{shown}");
    assert!(shown.contains("https://bob:***@elsewhere.example.org/x.git"), "{shown}");
    let steps = target.describe(change(&prepared, "host/Checkout/alice/infra").unwrap());
    assert!(steps.iter().any(|s| s.contains("points outside the checkout")), "{steps:#?}");

    let (report, _) = sandbox.apply_with(&roster, Policy::default()).await;
    let failed: Vec<(&str, &str)> = report.failures.iter().map(|f| (f.id.as_str(), f.error.as_str())).collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0].0, "host/Checkout/alice/infra");
    assert!(failed[0].1.contains("points outside the checkout") && !failed[0].1.contains("ROOTS-TOKEN"), "{failed:?}");
    assert_eq!(std::fs::read_to_string(root_repo.join(".git/config")).unwrap(), root_config);
    assert_eq!(
        sandbox.git_as("bob", &bob_code, &["remote", "get-url", "origin"]),
        format!("file://{}/infra.git", sandbox.repos.display())
    );
}

#[test]
fn credentials_in_urls_are_redacted_wherever_they_are_shown() {
    use tenantry_host::redact_urls;
    assert_eq!(
        redact_urls("https://x-access-token:s3cret@forge.example.org/a.git"),
        "https://x-access-token:***@forge.example.org/a.git"
    );
    assert_eq!(redact_urls("fetch https://s3cret@forge/a.git failed"), "fetch https://***@forge/a.git failed");
    assert_eq!(redact_urls("ssh://git@forge:22/a.git"), "ssh://git@forge:22/a.git");
    assert_eq!(redact_urls("ssh://git:pw@forge/a.git"), "ssh://git:***@forge/a.git");
    assert_eq!(redact_urls("file:///srv/a.git and http://h/p"), "file:///srv/a.git and http://h/p");
    assert_eq!(redact_urls("git@forge:a.git"), "git@forge:a.git");
    let cmd = Cmd::new("git", ["clone", "--", "https://u:tok3n@forge/x.git", "/home/a/code"]);
    let shown = cmd.to_string();
    assert!(!shown.contains("tok3n") && shown.contains("'https://u:***@forge/x.git'"), "{shown}");
}
