//! The host target: observe against the records, plan each change as steps, run them.

use crate::HostConfig;
use crate::command::{Cmd, CommandRunner, SystemRunner};
use crate::error::{Error, Result};
use crate::etc::{self, Etc};
use crate::fsx::{self, exists_no_follow, under_root};
use crate::git;
use crate::ops::Op;
use crate::ports::{self, PORTS_ENV_RELATIVE};
use crate::records::{Record, Records, remove_if_present};
use crate::spec::{self, AccountSpec, CheckoutSpec, FileSpec, Kind, KubeconfigSpec, LinkSpec, ManagedSpec, PortSpec};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tenantry_core::{
    Action, Applied, Change, Content, Desired, Domain, ErrorKind, Facts, Note, ObserveRequest, Observed, Owner,
    ResourceId, Snapshot, Target, TargetError,
};
use tenantry_local::AtomicWriter;
use tenantry_model::Roster;

/// The first line of a managed file that tenantry may rewrite.
const MANAGED_MARK: &str = "managed by tenantry";
/// Where an interrupted single → workspace migration parks the old checkout.
const MIGRATING_PREFIX: &str = ".tenantry-migrating-";
/// Where a clone is made before it is moved into place, so a killed clone is never mistaken for a checkout.
const CLONING_PREFIX: &str = ".tenantry-clone-";

/// Applies host resources to `/` or a sandbox root.
#[derive(Debug, Clone)]
pub struct HostTarget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: HostConfig,
    records: Records,
    runner: Arc<dyn CommandRunner>,
    /// Running as root: commands in homes run as their owner, and files are chowned to it.
    privileged: bool,
    /// The account tools lock /etc/passwd and fail rather than wait: one at a time.
    accounts: Mutex<()>,
    /// One change per account at a time: its env file and checkouts are read, then rewritten.
    users: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

/// What a refresh did to one checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    FastForwarded {
        commits: u64,
    },
    UpToDate,
    /// Not touched (dirty tree, another branch, local commits, no upstream); the reason says which.
    LeftAlone {
        reason: String,
    },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another change cannot leave these guards' data inconsistent.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

impl HostTarget {
    pub fn new(config: HostConfig) -> HostTarget {
        HostTarget::with_runner(config, Arc::new(SystemRunner))
    }

    /// With another command runner (tests, or a runner that logs every command).
    pub fn with_runner(config: HostConfig, runner: Arc<dyn CommandRunner>) -> HostTarget {
        HostTarget {
            inner: Arc::new(Inner {
                records: Records::new(config.records_path()),
                config,
                runner,
                privileged: running_as_root(),
                accounts: Mutex::new(()),
                users: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The content of every account tenantry recorded applying (present or departed users).
    pub(crate) fn account_records(&self) -> Vec<Value> {
        self.inner.records.read_kind("Account").into_iter().map(|record| record.content).collect()
    }

    /// Exactly what applying `change` would run now, one line per step.
    pub fn commands_for(&self, change: &Change) -> Result<Vec<String>> {
        let etc = Etc::read(&self.inner.config.root)?;
        Ok(self.inner.ops_for(change, &etc)?.iter().filter_map(Op::describe).collect())
    }

    /// Fetch a checkout (content of a `host/Checkout`) and fast-forward it
    /// only when it is on its default branch with a clean tree and an
    /// upstream; otherwise nothing is touched and the reason is returned.
    pub async fn refresh(&self, checkout: &Content) -> Result<RefreshOutcome, TargetError> {
        let inner = Arc::clone(&self.inner);
        let content = checkout.clone();
        tokio::task::spawn_blocking(move || inner.refresh(&content))
            .await
            .map_err(|e| TargetError::other(format!("refresh task failed: {e}")))?
    }

    /// Refresh every checkout the roster derives, `concurrency` at a time
    /// (apply never refreshes: an existing checkout is a no-op in the plan).
    /// One checkout's failure (an offline remote) does not stop the others.
    pub async fn refresh_all(
        &self,
        desired: &Desired,
        concurrency: usize,
    ) -> Vec<(ResourceId, Result<RefreshOutcome, TargetError>)> {
        let checkouts: Vec<(ResourceId, Content)> = desired
            .resources()
            .iter()
            .filter(|r| r.id.domain == Domain::Host && Kind::of(&r.id) == Some(Kind::Checkout))
            .map(|r| (r.id.clone(), r.content.clone()))
            .collect();
        let mut pending = checkouts.into_iter();
        let mut running = tokio::task::JoinSet::new();
        let mut out = Vec::new();
        loop {
            while running.len() < concurrency.max(1) {
                let Some((id, content)) = pending.next() else { break };
                let this = self.clone();
                running.spawn(async move { (id, this.refresh(&content).await) });
            }
            let Some(done) = running.join_next().await else { break };
            if let Ok(result) = done {
                out.push(result);
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[async_trait::async_trait]
impl Target for HostTarget {
    fn name(&self) -> &str {
        "host"
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Host]
    }

    async fn observe(&self, request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        let inner = Arc::clone(&self.inner);
        let resources = request.resources.clone();
        tokio::task::spawn_blocking(move || inner.observe(&resources))
            .await
            .map_err(|e| TargetError::other(format!("observer task failed: {e}")))?
            .map_err(|e| TargetError::unavailable(e.to_string()))
    }

    /// The sticky ports: the state's reservations checked against the
    /// dispatch map and the users' env files (`reconcile_ports`); a
    /// reservation only the host remembers (a lost state database) is kept.
    async fn reconcile_facts(&self, roster: &Roster, facts: &mut Facts) -> tenantry_core::target::Result<Vec<Note>> {
        let this = self.clone();
        let (roster, state) = (roster.clone(), facts.ports.clone());
        let merged = tokio::task::spawn_blocking(move || this.reconcile_ports(&roster, &state))
            .await
            .map_err(|e| TargetError::other(format!("port reconciliation task failed: {e}")))?
            .map_err(|conflict| {
                TargetError::new(ErrorKind::Conflict, format!("port reservations disagree: {conflict}"))
            })?;
        facts.ports = merged;
        Ok(Vec::new())
    }

    /// Fetch every checkout and fast-forward the ones that can be; what was
    /// left alone or failed is reported and never fails the run (a remote
    /// that is offline today is tried again next time).
    async fn after_apply(&self, desired: &Desired, concurrency: usize) -> Vec<Note> {
        let mut notes = Vec::new();
        for (id, outcome) in self.refresh_all(desired, concurrency).await {
            match outcome {
                Ok(RefreshOutcome::FastForwarded { commits }) => {
                    notes.push(Note::info(format!("refreshed {id}: fast-forwarded {commits} commit(s)")))
                }
                Ok(RefreshOutcome::UpToDate) => {}
                Ok(RefreshOutcome::LeftAlone { reason }) => {
                    notes.push(Note::warning(format!("{id} not refreshed: {reason}")))
                }
                Err(error) => notes.push(Note::warning(format!("{id} not refreshed: {}", error.in_target("host")))),
            }
        }
        notes
    }

    fn describe(&self, change: &Change) -> Vec<String> {
        match self.commands_for(change) {
            Ok(steps) => steps,
            // The usual case in a first plan: the account is created earlier in the same apply.
            Err(Error::MissingAccount { os_user }) => {
                vec![format!("# after `{os_user}` is created: the steps depend on its home and ids")]
            }
            Err(error) => vec![format!("# cannot tell what would run: {error}")],
        }
    }

    /// Every account of the user is archived and deleted (`destroy_account`);
    /// everything else tenantry recorded for them lived in those homes.
    async fn destroy(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> tenantry_core::target::Result<tenantry_core::Destroyed> {
        // A home is streamed by tar into the backup directory, not held in memory.
        let config = HostConfig { backup_dir: Some(backups.dir().to_path_buf()), ..self.inner.config.clone() };
        let resources = resources.to_vec();
        let user = user.to_string();
        let failed = |message: String| TargetError::rejected(format!("host/Account (user {user})"), message);
        let task = tokio::task::spawn_blocking(move || {
            let mut done = tenantry_core::Destroyed::default();
            for id in resources.iter().filter(|id| Kind::of(id) == Some(Kind::Account)) {
                let os_user = id.name.to_string();
                let present = Etc::read(&config.root)?.user(&os_user).is_some();
                if present {
                    done.backups.push(crate::destroy_account(&config, &os_user)?);
                } else {
                    // A rerun after `userdel` succeeded: nothing left to archive.
                    done.notes.push(format!("account `{os_user}` was already gone; nothing to archive"));
                }
            }
            done.removed = resources;
            Ok::<_, Error>(done)
        });
        match task.await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(error)) => Err(error.into_target_error("host/Account")),
            Err(error) => Err(failed(format!("destroy task failed: {error}"))),
        }
    }

    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        let inner = Arc::clone(&self.inner);
        let change = change.clone();
        tokio::task::spawn_blocking(move || {
            let id = change.id.to_string();
            let warnings = inner.apply(&change).map_err(|e| e.into_target_error(&id))?;
            Ok(Applied { notes: warnings.into_iter().map(Note::warning).collect() })
        })
        .await
        .map_err(|e| TargetError::other(format!("apply task failed: {e}")))?
    }
}

impl Inner {
    fn root(&self) -> &Path {
        &self.config.root
    }

    fn user_lock(&self, os_user: &str) -> Arc<Mutex<()>> {
        Arc::clone(lock(&self.users).entry(os_user.to_string()).or_default())
    }

    fn home_of(&self, etc: &Etc, os_user: &str) -> Result<PathBuf> {
        let entry = etc.user(os_user).ok_or_else(|| Error::MissingAccount { os_user: os_user.to_string() })?;
        under_root(self.root(), &entry.home)
    }

    // ---- observe ----------------------------------------------------------

    fn observe(&self, resources: &[(ResourceId, Owner)]) -> Result<Observed> {
        let etc = Etc::read(self.root())?;
        let today = etc::today();
        let mut observed = Observed::default();
        for (id, owner) in resources {
            let Some(kind) = Kind::of(id) else { continue };
            let record = self.records.read(id);
            let found = match kind {
                Kind::Account => self.observe_account(id, owner, record.as_ref(), &etc, today),
                _ => record
                    .as_ref()
                    .and_then(|r| self.observe_recorded(kind, r, &etc))
                    .map(|v| (v, record.map(|r| r.owner()))),
            };
            if let Some((value, found_owner)) = found {
                observed.insert(id.clone(), Content::from_value(&value), found_owner);
            }
        }
        Ok(observed)
    }

    /// The account as it is, projected onto the fields tenantry manages. Tier
    /// groups count as held when the account is in them or they do not exist
    /// on the host (they are skipped with a warning), so a satisfied account
    /// observes exactly as desired; other groups of the account are ignored.
    fn observe_account(
        &self,
        id: &ResourceId,
        expected: &Owner,
        record: Option<&Record>,
        etc: &Etc,
        today: i64,
    ) -> Option<(Value, Option<Owner>)> {
        let os_user = &*id.name;
        let entry = etc.user(os_user)?;
        let (user, groups, owner) = match record {
            Some(record) => {
                let groups: Vec<Value> = record
                    .content
                    .get("groups")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter(|g| etc.group(g).is_none() || etc.is_member(os_user, g))
                    .map(|g| Value::String(g.to_string()))
                    .collect();
                (record.content.get("user").cloned().unwrap_or(Value::Null), groups, Some(record.owner()))
            }
            None => (
                json!(expected.user().unwrap_or(os_user)),
                etc.groups_of(os_user).into_iter().map(Value::String).collect(),
                None,
            ),
        };
        Some((
            json!({
                "user": user,
                "os_user": os_user,
                "comment": entry.gecos,
                "shell": entry.shell,
                "home": entry.home,
                "groups": groups,
                "locked": etc.is_locked(os_user, today),
            }),
            owner,
        ))
    }

    /// A recorded resource checked against the host: the record's content
    /// when it still holds, what is there instead when it drifted, `None` when gone.
    fn observe_recorded(&self, kind: Kind, record: &Record, etc: &Etc) -> Option<Value> {
        let recorded = &record.content;
        let text = |key: &str| recorded.get(key).and_then(Value::as_str);
        let path = text("path").and_then(|p| under_root(self.root(), p).ok());
        match kind {
            Kind::Account => None,
            Kind::Port => {
                let os_user = text("os_user")?;
                let pool = text("pool")?;
                let home = etc.user(os_user).map_or_else(|| format!("/home/{os_user}"), |u| u.home.clone());
                let env = under_root(self.root(), &home).ok()?.join(PORTS_ENV_RELATIVE);
                let on_disk = std::fs::read_to_string(env).ok()?;
                let port = ports::parse_ports_env(&on_disk, [pool]).get(pool).copied();
                let mut value = recorded.clone();
                value["port"] = port.map_or(Value::Null, |p| json!(p));
                Some(value)
            }
            Kind::GeneratedFile => {
                let path = path?;
                let bytes = std::fs::read(&path).ok()?;
                let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o7777;
                let mut value = recorded.clone();
                value["mode"] = json!(format!("{mode:04o}"));
                value["text"] = json!(String::from_utf8_lossy(&bytes));
                Some(value)
            }
            Kind::Checkout => {
                let path = path?;
                if !git::is_checkout(&path) {
                    return None;
                }
                let remotes = git::remotes(&path);
                let mut value = recorded.clone();
                value["url"] = remotes.get("origin").map_or(Value::Null, |u| json!(u));
                let extras: Map<String, Value> = recorded
                    .get("extra_remotes")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(name, _)| Some((name.clone(), json!(remotes.get(name)?))))
                    .collect();
                value["extra_remotes"] = Value::Object(extras);
                Some(value)
            }
            Kind::Kubeconfig | Kind::SkeletonLink => exists_no_follow(&path?).then(|| recorded.clone()),
            Kind::ManagedFile => {
                let on_disk = std::fs::read(path?).ok()?;
                let source = text("source").and_then(|s| std::fs::read(self.source_path(s)).ok());
                let mut value = recorded.clone();
                if source.is_some_and(|s| s != on_disk) && carries_mark(&on_disk) {
                    value["stale"] = json!(true);
                }
                Some(value)
            }
        }
    }

    fn source_path(&self, source: &str) -> PathBuf {
        self.config.source_dir.clone().unwrap_or_else(|| PathBuf::from(".")).join(source)
    }

    // ---- plan -------------------------------------------------------------

    fn ops_for(&self, change: &Change, etc: &Etc) -> Result<Vec<Op>> {
        let id = &change.id;
        let kind = Kind::of(id).ok_or_else(|| Error::Content(format!("the host target does not apply {}", id.kind)))?;
        let content = match change.action {
            Action::Create | Action::Update | Action::Adopt | Action::Cut => change.after.as_ref(),
            Action::Delete => return self.delete_ops(kind, change),
            Action::Withheld | Action::Departing | Action::Kept | Action::Conflict | Action::NoOp => {
                return Ok(Vec::new());
            }
        };
        let content = content.ok_or_else(|| Error::Content(format!("{id} has no content to apply")))?;
        if change.action == Action::Cut && kind != Kind::Account {
            return Err(Error::Content(format!("{id}: only accounts are cut")));
        }
        let mut ops = match kind {
            Kind::Account => self.account_ops(&spec::parse(id, content)?, etc, change.action != Action::Cut)?,
            Kind::Port => self.port_ops(&spec::parse(id, content)?, etc)?,
            Kind::GeneratedFile => {
                let file: FileSpec = spec::parse(id, content)?;
                vec![Op::Write {
                    path: under_root(self.root(), &file.path)?,
                    within: None,
                    bytes: file.text.into_bytes(),
                    mode: spec::mode(&file.mode)?,
                    owner: None,
                }]
            }
            Kind::Checkout => self.checkout_ops(&spec::parse(id, content)?, etc)?,
            Kind::Kubeconfig => {
                let file: KubeconfigSpec = spec::parse(id, content)?;
                let home = self.home_of(etc, &file.os_user)?;
                let path = under_root(self.root(), &file.path)?;
                if exists_no_follow(&path) {
                    Vec::new()
                } else {
                    vec![Op::Write {
                        path,
                        within: Some(home),
                        bytes: file.text.into_bytes(),
                        mode: spec::mode(&file.mode)?,
                        owner: Some(file.os_user),
                    }]
                }
            }
            Kind::ManagedFile => self.managed_ops(&spec::parse(id, content)?, etc)?,
            Kind::SkeletonLink => {
                let link: LinkSpec = spec::parse(id, content)?;
                let home = self.home_of(etc, &link.os_user)?;
                let path = under_root(self.root(), &link.path)?;
                if exists_no_follow(&path) {
                    Vec::new()
                } else {
                    vec![Op::Symlink { path, within: home, target: link.target, owner: link.os_user }]
                }
            }
        };
        ops.push(Op::Record { id: id.clone(), owner: change.owner.clone(), content: content.clone() });
        Ok(ops)
    }

    /// Removing a resource the roster no longer asks for. Only routing
    /// files and links are ever deleted (core's retire policy); for the
    /// others (data: homes, checkouts, files in homes) only tenantry's
    /// record goes, which happens when another target takes the domain over.
    fn delete_ops(&self, kind: Kind, change: &Change) -> Result<Vec<Op>> {
        let before = change.before.as_ref().map(Content::to_value).unwrap_or(Value::Null);
        let path = before.get("path").and_then(Value::as_str).map(|p| under_root(self.root(), p)).transpose()?;
        let mut ops = Vec::new();
        match (kind, path) {
            (Kind::GeneratedFile, Some(path)) => ops.push(Op::Remove { path }),
            (Kind::SkeletonLink, Some(path)) => {
                let target = before.get("target").and_then(Value::as_str).unwrap_or_default();
                if std::fs::read_link(&path).is_ok_and(|t| t == Path::new(target)) {
                    ops.push(Op::Remove { path });
                }
            }
            _ => ops.push(Op::Warn(format!("{} is no longer managed by the host target; its data is kept", change.id))),
        }
        ops.push(Op::Forget { id: change.id.clone() });
        Ok(ops)
    }

    /// Create a missing account; for an existing one only add what is
    /// missing (groups, and shell/comment as the roster says). Never removes
    /// a group, never locks a password again, never touches the home.
    fn account_ops(&self, account: &AccountSpec, etc: &Etc, warn: bool) -> Result<Vec<Op>> {
        let root = self.root().to_string_lossy().into_owned();
        let os_user = account.os_user.as_str();
        let mut ops = Vec::new();
        let (present, missing): (Vec<&String>, Vec<&String>) =
            account.groups.iter().partition(|g| etc.group(g).is_some());
        if warn {
            for group in missing {
                ops.push(Op::Warn(format!(
                    "group `{group}` of `{os_user}`'s tier does not exist on the host; skipped (create it and the next apply adds `{os_user}`)"
                )));
            }
        }
        let join = |groups: &[&String]| groups.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(",");
        match etc.user(os_user) {
            None => {
                let home = under_root(self.root(), &account.home)?;
                let create_home = !exists_no_follow(&home);
                let mut args: Vec<String> = vec!["--root".into(), root];
                args.push(if create_home { "--create-home" } else { "--no-create-home" }.into());
                args.extend(["--home-dir".into(), account.home.clone(), "--shell".into(), account.shell.clone()]);
                args.extend(["--comment".into(), account.comment.clone()]);
                if etc.group(os_user).is_some() {
                    args.extend(["--gid".into(), os_user.to_string()]);
                } else {
                    args.push("--user-group".into());
                }
                if !present.is_empty() {
                    args.extend(["--groups".into(), join(&present)]);
                }
                if account.locked {
                    args.extend(["--expiredate".into(), "1".into()]);
                }
                // The password stays locked: useradd without --password disables it.
                args.push(os_user.to_string());
                ops.push(Op::Run(Cmd::new(&self.config.useradd, args)));
                if create_home {
                    ops.push(Op::Chmod { path: home.clone(), mode: 0o700 });
                }
                // Port changes do not wait for the account (they need no
                // order in the state database); those that ran first only
                // recorded their port, which the new home gets now.
                ops.push(Op::SyncPorts {
                    user: account.user.clone(),
                    os_user: os_user.to_string(),
                    path: home.join(PORTS_ENV_RELATIVE),
                    within: home,
                });
            }
            Some(entry) => {
                if entry.home != account.home {
                    return Err(Error::Refused(format!(
                        "`{os_user}` has home {} but the roster derives {}; tenantry never moves a home \
                         (move it yourself: usermod --home {} --move-home {os_user})",
                        entry.home, account.home, account.home
                    )));
                }
                let mut args: Vec<String> = Vec::new();
                let add: Vec<&String> = present.into_iter().filter(|g| !etc.is_member(os_user, g)).collect();
                if !add.is_empty() {
                    args.extend(["--append".into(), "--groups".into(), join(&add)]);
                }
                if entry.shell != account.shell {
                    args.extend(["--shell".into(), account.shell.clone()]);
                }
                if entry.gecos != account.comment {
                    args.extend(["--comment".into(), account.comment.clone()]);
                }
                let locked = etc.is_locked(os_user, etc::today());
                if account.locked && !locked {
                    // Expiry stops key-based logins too; --lock covers the password.
                    args.extend(["--lock".into(), "--expiredate".into(), "1".into()]);
                } else if !account.locked && locked {
                    args.extend(["--expiredate".into(), String::new()]);
                    // Undo only a lock the cut added in front of a real password hash.
                    if etc.shadow(os_user).is_some_and(|s| s.password.starts_with('!') && s.password.len() > 1) {
                        args.push("--unlock".into());
                    }
                }
                if !args.is_empty() {
                    let mut full = vec!["--root".to_string(), root];
                    full.extend(args);
                    full.push(os_user.to_string());
                    ops.push(Op::Run(Cmd::new(&self.config.usermod, full)));
                }
            }
        }
        Ok(ops)
    }

    fn port_ops(&self, port: &PortSpec, etc: &Etc) -> Result<Vec<Op>> {
        if etc.user(&port.os_user).is_none() {
            // The account's creation writes the recorded ports into its home.
            return Ok(Vec::new());
        }
        let home = self.home_of(etc, &port.os_user)?;
        Ok(vec![Op::SetPort {
            path: home.join(PORTS_ENV_RELATIVE),
            within: home,
            pool: port.pool.clone(),
            port: port.port,
            owner: port.os_user.clone(),
        }])
    }

    fn managed_ops(&self, file: &ManagedSpec, etc: &Etc) -> Result<Vec<Op>> {
        let home = self.home_of(etc, &file.os_user)?;
        let source_path = self.source_path(&file.source);
        let source = std::fs::read(&source_path)
            .map_err(|e| Error::io(format!("reading the managed file source {}", source_path.display()), e))?;
        let path = under_root(self.root(), &file.path)?;
        let rewrite = match std::fs::symlink_metadata(&path) {
            Err(_) => true,
            Ok(meta) if !meta.is_file() => false,
            Ok(_) => std::fs::read(&path).is_ok_and(|on_disk| on_disk != source && carries_mark(&on_disk)),
        };
        Ok(if rewrite {
            vec![Op::Write { path, within: Some(home), bytes: source, mode: 0o644, owner: Some(file.os_user.clone()) }]
        } else {
            Vec::new()
        })
    }

    fn git(&self, home: &Path, os_user: &str, args: Vec<String>) -> Cmd {
        let mut cmd = Cmd::new(&self.config.git, args);
        cmd.cwd = Some(home.to_path_buf());
        cmd.env = vec![
            ("HOME".to_string(), home.to_string_lossy().into_owned()),
            // A clone that needs credentials fails instead of waiting for a prompt nobody answers.
            ("GIT_TERMINAL_PROMPT".to_string(), "0".to_string()),
        ];
        cmd.run_as = Some(os_user.to_string());
        cmd.timeout = Some(Duration::from_secs(self.config.git_timeout_secs));
        cmd
    }

    /// Clone when missing, migrate `single` → `workspace` by moving (never
    /// re-cloning), and wire the remotes. An interrupted migration resumes.
    fn checkout_ops(&self, checkout: &CheckoutSpec, etc: &Etc) -> Result<Vec<Op>> {
        let os_user = checkout.os_user.as_str();
        let home = self.home_of(etc, os_user)?;
        let path = under_root(self.root(), &checkout.path)?;
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_else(|| home.clone());
        let dir = |path: &Path| Op::Dir {
            path: path.to_path_buf(),
            within: Some(home.clone()),
            owner: Some(os_user.to_string()),
            mode: 0o755,
        };
        let mut ops = Vec::new();
        let existing: Option<PathBuf> = if git::is_checkout(&path) {
            Some(path.clone())
        } else {
            if exists_no_follow(&path) && !fsx::is_empty_dir(&path) {
                return Err(Error::Refused(format!(
                    "{} exists and is not a git checkout; tenantry will not clone over it (move it away)",
                    path.display()
                )));
            }
            let from = checkout.migrate_from.as_deref().map(|m| under_root(self.root(), m)).transpose()?;
            let staging = from.as_deref().and_then(staging_of);
            if let Some(staging) = staging.filter(|s| git::is_checkout(s)) {
                ops.push(dir(&parent));
                ops.push(Op::Rename { from: staging.clone(), to: path.clone() });
                Some(staging)
            } else if let Some(from) = from.filter(|f| git::is_checkout(f)) {
                if path.starts_with(&from) {
                    // ~/code becomes a plain directory holding the old checkout as ~/code/<main>.
                    let staging = staging_of(&from)
                        .ok_or_else(|| Error::Content(format!("{} cannot be migrated", from.display())))?;
                    ops.push(Op::Rename { from: from.clone(), to: staging.clone() });
                    ops.push(dir(&from));
                    ops.push(dir(&parent));
                    ops.push(Op::Rename { from: staging, to: path.clone() });
                } else {
                    ops.push(dir(&parent));
                    ops.push(Op::Rename { from: from.clone(), to: path.clone() });
                }
                Some(from)
            } else {
                // A workspace repository whose ~/code is still the single-layout
                // checkout: park that checkout where the main repository's change resumes it.
                if checkout.layout == "workspace"
                    && parent != home
                    && git::is_checkout(&parent)
                    && let Some(staging) = staging_of(&parent)
                {
                    ops.push(Op::Rename { from: parent.clone(), to: staging });
                }
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let temp = parent.join(format!("{CLONING_PREFIX}{name}"));
                if exists_no_follow(&temp) {
                    ops.push(Op::RemoveTree { path: temp.clone() });
                }
                ops.push(dir(&parent));
                let args = vec![
                    "clone".to_string(),
                    "--origin".to_string(),
                    "origin".to_string(),
                    "--".to_string(),
                    checkout.url.clone(),
                    temp.to_string_lossy().into_owned(),
                ];
                ops.push(Op::Run(self.git(&home, os_user, args)));
                if exists_no_follow(&path) {
                    ops.push(Op::RemoveTree { path: path.clone() });
                }
                ops.push(Op::Rename { from: temp, to: path.clone() });
                None
            }
        };
        let remotes = match &existing {
            Some(found) => git::remotes(found),
            None => [("origin".to_string(), checkout.url.clone())].into_iter().collect(),
        };
        let wanted = std::iter::once(("origin", checkout.url.as_str()))
            .chain(checkout.extra_remotes.iter().map(|(n, u)| (n.as_str(), u.as_str())));
        let target = path.to_string_lossy().into_owned();
        for (name, url) in wanted {
            let verb = match remotes.get(name) {
                None => "add",
                Some(current) if current != url => "set-url",
                Some(_) => continue,
            };
            let args = ["-C", &target, "remote", verb, name, url].map(str::to_string).to_vec();
            ops.push(Op::Run(self.git(&home, os_user, args)));
        }
        Ok(ops)
    }

    // ---- apply ------------------------------------------------------------

    /// Apply one change; returns its warnings (a tier group missing on the
    /// host, a routed-away resource whose data is kept).
    fn apply(&self, change: &Change) -> Result<Vec<String>> {
        let content = change.after.as_ref().or(change.before.as_ref());
        let _accounts = (Kind::of(&change.id) == Some(Kind::Account)).then(|| lock(&self.accounts));
        let user_lock = content.and_then(spec::os_user_of).map(|u| self.user_lock(&u));
        let _user = user_lock.as_ref().map(|l| lock(l));
        let etc = Etc::read(self.root())?;
        let ops = self.ops_for(change, &etc)?;
        self.execute(&ops)
    }

    fn ids(&self, os_user: Option<&str>, etc: &mut Option<Etc>) -> Result<Option<(u32, u32)>> {
        let Some(os_user) = os_user.filter(|_| self.privileged) else { return Ok(None) };
        if etc.as_ref().and_then(|e| e.user(os_user)).is_none() {
            *etc = Some(Etc::read(self.root())?);
        }
        let entry = etc
            .as_ref()
            .and_then(|e| e.user(os_user))
            .ok_or_else(|| Error::MissingAccount { os_user: os_user.to_string() })?;
        Ok(Some((entry.uid, entry.gid)))
    }

    fn execute(&self, ops: &[Op]) -> Result<Vec<String>> {
        let mut etc: Option<Etc> = None;
        let mut warnings = Vec::new();
        for op in ops {
            match op {
                Op::Run(cmd) => {
                    let mut cmd = cmd.clone();
                    cmd.ids = self.ids(cmd.run_as.as_deref(), &mut etc)?;
                    self.run(&cmd)?;
                }
                Op::Dir { path, within, owner, mode } => {
                    let ids = self.ids(owner.as_deref(), &mut etc)?;
                    fsx::ensure_dir(path, within.as_deref(), ids, *mode)?;
                }
                Op::Write { path, within, bytes, mode, owner } => {
                    let ids = self.ids(owner.as_deref(), &mut etc)?;
                    write_file(path, within.as_deref(), bytes, *mode, ids)?;
                }
                Op::SetPort { path, within, pool, port, owner } => {
                    let ids = self.ids(Some(owner), &mut etc)?;
                    let existing = match std::fs::symlink_metadata(path) {
                        Ok(meta) if meta.is_file() => std::fs::read_to_string(path).unwrap_or_default(),
                        _ => String::new(),
                    };
                    let text = ports::render_env(&existing, pool, *port);
                    write_file(path, Some(within), text.as_bytes(), 0o644, ids)?;
                }
                Op::SyncPorts { user, os_user, path, within } => {
                    let ports: Vec<(String, u16)> = self
                        .records
                        .read_named("Port", user)
                        .into_iter()
                        .filter_map(|r| {
                            let pool = r.content.get("pool")?.as_str()?.to_string();
                            let port = u16::try_from(r.content.get("port")?.as_u64()?).ok()?;
                            Some((pool, port))
                        })
                        .collect();
                    if ports.is_empty() {
                        continue;
                    }
                    let ids = self.ids(Some(os_user), &mut etc)?;
                    let text =
                        ports.iter().fold(String::new(), |text, (pool, port)| ports::render_env(&text, pool, *port));
                    write_file(path, Some(within), text.as_bytes(), 0o644, ids)?;
                }
                Op::Symlink { path, within, target, owner } => {
                    let ids = self.ids(Some(owner), &mut etc)?;
                    if let Some(parent) = path.parent() {
                        fsx::ensure_dir(parent, Some(within), ids, 0o700)?;
                    }
                    std::os::unix::fs::symlink(target, path)
                        .map_err(|e| Error::io(format!("linking {} → {target}", path.display()), e))?;
                    fsx::chown(path, ids)?;
                }
                Op::Rename { from, to } => std::fs::rename(from, to)
                    .map_err(|e| Error::io(format!("moving {} to {}", from.display(), to.display()), e))?,
                Op::RemoveTree { path } => {
                    std::fs::remove_dir_all(path).map_err(|e| Error::io(format!("removing {}", path.display()), e))?
                }
                Op::Remove { path } => remove_if_present(path)?,
                Op::Chmod { path, mode } => fsx::set_mode(path, *mode)?,
                Op::Warn(message) => {
                    tracing::warn!(target: "tenantry::host", "{message}");
                    warnings.push(message.clone());
                }
                Op::Record { id, owner, content } => self.records.write(id, owner, content)?,
                Op::Forget { id } => self.records.remove(id)?,
            }
        }
        Ok(warnings)
    }

    fn run(&self, cmd: &Cmd) -> Result<String> {
        let output = self.runner.run(cmd).map_err(|e| Error::io(format!("running `{}`", cmd.program.display()), e))?;
        if !output.success() {
            return Err(Error::Command {
                command: cmd.to_string(),
                status: output.status_text(),
                stderr: output.stderr.trim().to_string(),
            });
        }
        Ok(output.stdout)
    }

    // ---- refresh ----------------------------------------------------------

    fn refresh(&self, content: &Content) -> Result<RefreshOutcome, TargetError> {
        let checkout: CheckoutSpec =
            spec::parse(&"the checkout to refresh", content).map_err(|e| e.into_target_error("host/Checkout"))?;
        let id = ResourceId::new(Domain::Host, "Checkout", &checkout.os_user, &checkout.repo);
        self.refresh_checkout(&checkout).map_err(|e| e.into_target_error(&id.to_string()))
    }

    fn refresh_checkout(&self, checkout: &CheckoutSpec) -> Result<RefreshOutcome> {
        let os_user = checkout.os_user.as_str();
        let user_lock = self.user_lock(os_user);
        let _user = lock(&user_lock);
        let now = Etc::read(self.root())?;
        let home = self.home_of(&now, os_user)?;
        let mut etc = Some(now);
        let path = under_root(self.root(), &checkout.path)?;
        let left_alone = |reason: String| {
            tracing::warn!(target: "tenantry::host", path = %path.display(), "checkout not refreshed: {reason}");
            Ok(RefreshOutcome::LeftAlone { reason })
        };
        if !git::is_checkout(&path) {
            return left_alone("not checked out yet".to_string());
        }
        let ids = self.ids(Some(os_user), &mut etc)?;
        let target = path.to_string_lossy().into_owned();
        let git = |args: &[&str]| {
            let mut full = vec!["-C".to_string(), target.clone()];
            full.extend(args.iter().map(|a| a.to_string()));
            let mut cmd = self.git(&home, os_user, full);
            cmd.ids = ids;
            cmd
        };
        self.run(&git(&["fetch", "--all", "--prune", "--quiet"]))?;
        let quiet = |args: &[&str]| self.run(&git(args)).ok().map(|out| out.trim().to_string());
        let Some(branch) = quiet(&["symbolic-ref", "--quiet", "--short", "HEAD"]) else {
            return left_alone("HEAD is detached".to_string());
        };
        let default = quiet(&["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"])
            .map(|d| d.strip_prefix("origin/").unwrap_or(&d).to_string());
        let Some(default) = default else {
            return left_alone("the default branch is unknown (run `git remote set-head origin --auto`)".to_string());
        };
        if branch != default {
            return left_alone(format!("on branch `{branch}`, not the default branch `{default}`"));
        }
        if !quiet(&["status", "--porcelain"]).unwrap_or_default().is_empty() {
            return left_alone("the work tree has uncommitted changes".to_string());
        }
        if quiet(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"]).is_none() {
            return left_alone(format!("`{branch}` has no upstream"));
        }
        let counts = quiet(&["rev-list", "--left-right", "--count", "HEAD...@{upstream}"]).unwrap_or_default();
        let mut numbers = counts.split_whitespace().map(|n| n.parse::<u64>().unwrap_or(0));
        let (ahead, behind) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
        if ahead > 0 {
            return left_alone(format!("`{branch}` has {ahead} local commit(s) not upstream"));
        }
        if behind == 0 {
            return Ok(RefreshOutcome::UpToDate);
        }
        self.run(&git(&["merge", "--ff-only", "--quiet", "@{upstream}"]))?;
        Ok(RefreshOutcome::FastForwarded { commits: behind })
    }
}

fn carries_mark(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(fsx::first_line(bytes)).to_ascii_lowercase().contains(MANAGED_MARK)
}

/// Where the checkout at `from` waits during a migration: beside it, same filesystem.
fn staging_of(from: &Path) -> Option<PathBuf> {
    let name = from.file_name()?.to_string_lossy().into_owned();
    Some(from.parent()?.join(format!("{MIGRATING_PREFIX}{name}")))
}

fn write_file(path: &Path, within: Option<&Path>, bytes: &[u8], mode: u32, ids: Option<(u32, u32)>) -> Result<()> {
    if let Some(parent) = path.parent() {
        fsx::ensure_dir(parent, within, ids, 0o700)?;
    }
    // The rename would replace a link anyway; removing it first keeps the
    // unchanged-content shortcut and the chmod from following it.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        remove_if_present(path)?;
    }
    AtomicWriter::write(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    fsx::set_mode(path, mode)?;
    fsx::chown(path, ids)
}
