//! The attacks a tenant can mount on root's file operations in their
//! directory, each run against `tenantry-fs` and shown blocked. Needs root
//! (ownership is part of every check); the attacker runs as another uid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rustix::fs::inotify;
use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tenantry_fs::{
    AtomicWriter, Dir, EntryKind, Ids, ReadRules, Refusal, TEMP_PREFIX, WriteOptions, Written, sweep_stale_temp_files,
};

/// A tenant who is not root: never a real account, only ids on files.
const TENANT: Ids = Ids { uid: 47_001, gid: 47_001 };

struct Scene {
    _dir: tempfile::TempDir,
    /// Root's: stands for /etc.
    system: PathBuf,
    /// The tenant's: stands for a home.
    home: PathBuf,
}

fn scene() -> Scene {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let system = dir.path().join("system");
    let home = dir.path().join("home");
    std::fs::create_dir(&system).unwrap();
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(TENANT.uid), Some(TENANT.gid)).unwrap();
    Scene { _dir: dir, system, home }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn os(name: &str) -> &OsStr {
    OsStr::new(name)
}

fn refusal(result: tenantry_fs::Result<impl std::fmt::Debug>) -> Refusal {
    match result {
        Err(error) => error.refusal().cloned().unwrap_or_else(|| panic!("not a refusal: {error}")),
        Ok(value) => panic!("expected a refusal, got {value:?}"),
    }
}

const HOME_FILE: WriteOptions = WriteOptions { mode: Some(0o644), owner: Some(TENANT), replace: true };

// ---- writes -----------------------------------------------------------------

#[test]
fn a_link_at_the_name_is_replaced_never_written_through() {
    let scene = scene();
    let victim = scene.system.join("profile");
    std::fs::write(&victim, "root's\n").unwrap();
    std::os::unix::fs::symlink(&victim, scene.home.join("ports.env")).unwrap();

    let home = Dir::open_anchor(&scene.home).unwrap();
    assert_eq!(home.write_file(os("ports.env"), b"mine\n", HOME_FILE).unwrap(), Written::Written);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's\n");
    let written = std::fs::symlink_metadata(scene.home.join("ports.env")).unwrap();
    assert!(written.is_file());
    assert_eq!((written.uid(), written.gid(), mode_of(&scene.home.join("ports.env"))), (TENANT.uid, TENANT.gid, 0o644));
    // Unchanged content, owner and mode: nothing is written.
    assert_eq!(home.write_file(os("ports.env"), b"mine\n", HOME_FILE).unwrap(), Written::Unchanged);
}

#[test]
fn a_hard_link_to_a_root_file_is_replaced_and_the_root_file_keeps_its_mode() {
    let scene = scene();
    let secret = scene.home.join("..").join("system").join("shadow");
    std::fs::write(&secret, "hash\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Same bytes as the root file: the unchanged-file shortcut must not touch the root file's mode either.
    std::fs::hard_link(&secret, scene.home.join("ports.env")).unwrap();
    let home = Dir::open_anchor(&scene.home).unwrap();
    assert_eq!(home.write_file(os("ports.env"), b"hash\n", HOME_FILE).unwrap(), Written::Written);
    let root_file = std::fs::metadata(&secret).unwrap();
    assert_eq!((root_file.uid(), mode_of(&secret), root_file.nlink()), (0, 0o600, 1));
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "hash\n");
}

#[test]
fn create_only_keeps_a_file_that_is_already_there() {
    let scene = scene();
    std::fs::write(scene.home.join("config"), "the tenant's own\n").unwrap();
    let home = Dir::open_anchor(&scene.home).unwrap();
    let once = WriteOptions { replace: false, ..HOME_FILE };
    assert_eq!(home.write_file(os("config"), b"ours\n", once).unwrap(), Written::KeptExisting);
    assert_eq!(std::fs::read_to_string(scene.home.join("config")).unwrap(), "the tenant's own\n");
    assert_eq!(home.write_file(os("fresh"), b"ours\n", once).unwrap(), Written::Written);
    assert!(
        std::fs::read_dir(&scene.home)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
    );
}

/// The reported attack: a tenant watching their directory swaps each of
/// root's temporary files for a link to a root file as soon as it appears,
/// and plants links at the names the old writer would have used. Root's
/// writes must never reach the root files.
#[test]
fn a_tenant_racing_every_temporary_file_never_reaches_a_root_file() {
    let scene = scene();
    let victim = scene.system.join("secret");
    std::fs::write(&victim, "root only\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let planted_target = scene.system.join("profile.d-evil.sh");
    // The old writer's names were `<prefix><pid>-<counter>-<file>`: plant them all.
    for counter in 0..400 {
        let name = format!("{TEMP_PREFIX}{}-{counter}-ports.env", std::process::id());
        std::os::unix::fs::symlink(&planted_target, scene.home.join(name)).unwrap();
    }

    let stop = Arc::new(AtomicBool::new(false));
    let attacker = {
        let (home, victim, stop) = (scene.home.clone(), victim.clone(), Arc::clone(&stop));
        std::thread::spawn(move || swap_every_temp_file(&home, &victim, &stop))
    };
    let home = Dir::open_anchor(&scene.home).unwrap();
    let started = Instant::now();
    let mut writes = 0;
    while writes < 300 && started.elapsed() < Duration::from_secs(5) {
        let bytes = format!("TENANTRY_PORT_TERMINAL={}\n", 3000 + writes);
        // A lost race is the tenant's own file being replaced by their link: fine, and retried next round.
        let _ = home.write_file(os("ports.env"), bytes.as_bytes(), HOME_FILE);
        writes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = attacker.join().unwrap();

    assert!(!planted_target.exists(), "root followed a planted link");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root only\n");
    let meta = std::fs::metadata(&victim).unwrap();
    assert_eq!((meta.uid(), mode_of(&victim)), (0, 0o600), "the root file's owner or mode changed");
    // The attack really ran against these writes (it is not a test of an idle directory).
    assert!(swaps > 0, "the attacker never caught a temporary file in {writes} writes");
    eprintln!("{writes} writes, {swaps} temporary files swapped by the attacker");
}

/// As the tenant (this thread only): whenever a temporary file appears,
/// replace it with a link to `victim`. Returns how many it swapped.
fn swap_every_temp_file(home: &Path, victim: &Path, stop: &AtomicBool) -> usize {
    rustix::thread::set_thread_gid(rustix::fs::Gid::from_raw(TENANT.gid)).unwrap();
    rustix::thread::set_thread_uid(rustix::fs::Uid::from_raw(TENANT.uid)).unwrap();
    let watch = inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
    inotify::add_watch(&watch, home, inotify::WatchFlags::CREATE).unwrap();
    let mut buffer = [MaybeUninit::<u8>::uninit(); 8192];
    let mut swaps = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut reader = inotify::Reader::new(&watch, &mut buffer);
        let mut names = Vec::new();
        while let Ok(event) = reader.next() {
            if let Some(name) = event.file_name() {
                names.push(name.to_string_lossy().into_owned());
            }
        }
        for name in names.iter().filter(|n| n.starts_with(TEMP_PREFIX)) {
            let path = home.join(name);
            // Only root's files: the links it plants raise events too.
            let roots = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if roots && std::fs::remove_file(&path).is_ok() && std::os::unix::fs::symlink(victim, &path).is_ok() {
                swaps += 1;
            }
        }
        std::thread::yield_now();
    }
    swaps
}

// ---- reads ------------------------------------------------------------------

const TENANT_READ: ReadRules = ReadRules { owner: Some(TENANT.uid), max_bytes: 64 * 1024 };

#[test]
fn reads_refuse_fifos_devices_links_other_owners_and_big_files_at_once() {
    let scene = scene();
    let home = Dir::open_anchor(&scene.home).unwrap();
    let started = Instant::now();

    let fifo = scene.home.join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::os::unix::fs::chown(&fifo, Some(TENANT.uid), Some(TENANT.gid)).unwrap();
    assert_eq!(refusal(home.read_file(os("fifo"), TENANT_READ)), Refusal::NotRegularFile);

    std::os::unix::fs::symlink("/dev/zero", scene.home.join("zero")).unwrap();
    assert_eq!(refusal(home.read_file(os("zero"), TENANT_READ)), Refusal::NotRegularFile);

    std::fs::write(scene.system.join("root-file"), "root's\n").unwrap();
    std::fs::hard_link(scene.system.join("root-file"), scene.home.join("linked")).unwrap();
    assert_eq!(
        refusal(home.read_file(os("linked"), TENANT_READ)),
        Refusal::WrongOwner { found: 0, expected: TENANT.uid }
    );

    let big = std::fs::File::create(scene.home.join("big")).unwrap();
    big.set_len(4 << 30).unwrap();
    std::os::unix::fs::chown(scene.home.join("big"), Some(TENANT.uid), Some(TENANT.gid)).unwrap();
    assert_eq!(refusal(home.read_file(os("big"), TENANT_READ)), Refusal::TooLarge { limit: 64 * 1024 });

    std::fs::write(scene.home.join("ok"), "fine\n").unwrap();
    std::os::unix::fs::chown(scene.home.join("ok"), Some(TENANT.uid), Some(TENANT.gid)).unwrap();
    assert_eq!(home.read_file(os("ok"), TENANT_READ).unwrap(), Some(b"fine\n".to_vec()));
    assert_eq!(home.read_file(os("absent"), TENANT_READ).unwrap(), None);
    assert!(started.elapsed() < Duration::from_secs(2), "a read blocked: {:?}", started.elapsed());
}

// ---- directories ------------------------------------------------------------

#[test]
fn a_link_on_the_way_down_is_refused_and_nothing_is_made_behind_it() {
    let scene = scene();
    std::os::unix::fs::symlink(&scene.system, scene.home.join(".kube")).unwrap();
    let home = Dir::open_anchor(&scene.home).unwrap();
    assert_eq!(refusal(home.ensure_path(Path::new(".kube/sub"), 0o700, Some(TENANT))), Refusal::NotDirectory);
    assert_eq!(refusal(home.walk(Path::new(".kube"))), Refusal::NotDirectory);
    assert_eq!(refusal(home.walk(Path::new("../system"))), Refusal::BadName);
    assert!(std::fs::read_dir(&scene.system).unwrap().next().is_none());
}

#[test]
fn new_directories_and_links_get_their_owner_on_themselves() {
    let scene = scene();
    let home = Dir::open_anchor(&scene.home).unwrap();
    let made = home.ensure_path(Path::new(".config/tenantry"), 0o755, Some(TENANT)).unwrap();
    for dir in [".config", ".config/tenantry"] {
        let meta = std::fs::symlink_metadata(scene.home.join(dir)).unwrap();
        assert_eq!((meta.uid(), meta.gid(), mode_of(&scene.home.join(dir))), (TENANT.uid, TENANT.gid, 0o755), "{dir}");
    }
    made.symlink(os("skills"), os("/opt/base/skills"), Some(TENANT)).unwrap();
    let link = scene.home.join(".config/tenantry/skills");
    assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("/opt/base/skills"));
    assert_eq!(std::fs::symlink_metadata(&link).unwrap().uid(), TENANT.uid);
    assert_eq!(made.read_link(os("skills")).unwrap(), Some(PathBuf::from("/opt/base/skills")));
    assert_eq!(refusal(made.symlink(os("skills"), os("/elsewhere"), Some(TENANT))), Refusal::Exists);
}

#[test]
fn the_homes_parent_must_be_roots_and_not_writable_by_others() {
    let scene = scene();
    let anchor = Dir::open_anchor(scene.home.parent().unwrap()).unwrap();
    anchor.walk_trusted(Path::new("system")).unwrap();
    assert!(matches!(refusal(anchor.walk_trusted(Path::new("home"))), Refusal::Untrusted { uid: TENANT_UID, .. }));
    // Root's own link (`/home → /data/home`) is followed to a trusted directory…
    std::os::unix::fs::symlink("system", scene.home.parent().unwrap().join("linked")).unwrap();
    anchor.walk_trusted(Path::new("linked")).unwrap();
    // …a link of anyone else's is not, nor one leading to a tenant's directory.
    std::os::unix::fs::lchown(scene.home.parent().unwrap().join("linked"), Some(TENANT.uid), None).unwrap();
    assert_eq!(refusal(anchor.walk_trusted(Path::new("linked"))), Refusal::NotDirectory);
    std::os::unix::fs::symlink("home", scene.home.parent().unwrap().join("to-home")).unwrap();
    assert!(matches!(refusal(anchor.walk_trusted(Path::new("to-home"))), Refusal::Untrusted { .. }));
    std::fs::set_permissions(&scene.system, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(refusal(anchor.walk_trusted(Path::new("system"))), Refusal::Untrusted { .. }));
}
const TENANT_UID: u32 = TENANT.uid;

/// The suspected migration race: the tenant swaps the directory tenantry
/// checked for a link after the check. The rename goes through the handle
/// of the directory that was checked, so it cannot land behind the link.
#[test]
fn a_rename_goes_to_the_checked_directory_even_when_its_path_is_swapped() {
    let scene = scene();
    std::fs::create_dir(scene.home.join(".tenantry-migrating-code")).unwrap();
    std::fs::create_dir(scene.home.join("code")).unwrap();
    let home = Dir::open_anchor(&scene.home).unwrap();
    let code = home.open_dir(os("code")).unwrap();
    // The swap, after the check.
    std::fs::rename(scene.home.join("code"), scene.home.join("moved-away")).unwrap();
    std::os::unix::fs::symlink(&scene.system, scene.home.join("code")).unwrap();
    home.rename(os(".tenantry-migrating-code"), &code, os("infra")).unwrap();
    assert!(!scene.system.join("infra").exists(), "the rename followed the swapped-in link");
    assert!(scene.home.join("moved-away/infra").is_dir());
    // And a fresh walk refuses the link.
    assert_eq!(refusal(home.walk(Path::new("code"))), Refusal::NotDirectory);
}

// ---- the path writer and the sweep ------------------------------------------

#[test]
fn the_path_writer_uses_random_names_and_the_sweep_removes_leftovers_only() {
    let scene = scene();
    let out = scene.system.join("out");
    AtomicWriter::write(&out.join("a/b.json"), b"{}\n").unwrap();
    assert_eq!(std::fs::read_to_string(out.join("a/b.json")).unwrap(), "{}\n");
    // A killed writer's leftover is swept; a link to a directory holding temp-looking files is not entered.
    std::fs::write(out.join(format!("a/{TEMP_PREFIX}0123456789abcdef-b.json")), "half").unwrap();
    std::fs::write(scene.home.join(format!("{TEMP_PREFIX}keep")), "not ours to sweep").unwrap();
    std::os::unix::fs::symlink(&scene.home, out.join("elsewhere")).unwrap();
    sweep_stale_temp_files(&out);
    let names: Vec<String> = std::fs::read_dir(out.join("a"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["b.json".to_string()]);
    assert!(scene.home.join(format!("{TEMP_PREFIX}keep")).exists());
    let anchor = Dir::open_anchor(&out).unwrap();
    let kinds: Vec<EntryKind> = anchor.entries().unwrap().into_iter().map(|(_, kind)| kind).collect();
    assert!(kinds.contains(&EntryKind::Link) && kinds.contains(&EntryKind::Dir), "{kinds:?}");
}
