//! Plan: each change → the steps (`Op`) that carry it out, from what the
//! host holds now. Apply executes exactly this list and a dry run prints it.
//! (Checkouts have their own module, `checkout`.)

use crate::error::{Error, Result};
use crate::etc::{self, Etc};
use crate::home::under_root;
use crate::inner::Inner;
use crate::observe::carries_mark;
use crate::ops::Op;
use crate::ports::PORTS_ENV_RELATIVE;
use crate::routing;
use crate::spec::{self, AccountSpec, FileSpec, Kind, KubeconfigSpec, LinkSpec, ManagedSpec, PortSpec};
use serde_json::Value;
use std::path::Path;
use tenantry_core::{Action, Change, Content};
use tenantry_fs::EntryKind;

impl Inner {
    pub fn ops_for(&self, change: &Change, etc: &Etc) -> Result<Vec<Op>> {
        let id = &change.id;
        let kind = Kind::of(id).ok_or_else(|| Error::Content(format!("the host target does not apply {}", id.kind)))?;
        let content = match change.action {
            Action::Create | Action::Update | Action::Adopt | Action::Cut => change.after.as_ref(),
            Action::Delete => return self.delete_ops(kind, change, etc),
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
                let (text, warnings) = routing::checked(&id.name, &file.path, &file.text, etc);
                let mut ops: Vec<Op> = warnings.into_iter().map(Op::Warn).collect();
                if file.path.starts_with("/etc/systemd/") {
                    // tenantry runs no systemctl: the admin (or the next boot) loads the units.
                    ops.push(Op::Warn(format!(
                        "{} changes a systemd unit: run `systemctl daemon-reload` (and `systemctl start \
                         tenantry-session-save.timer` the first time), or it takes effect at the next boot",
                        file.path
                    )));
                }
                ops.push(Op::Write {
                    path: under_root(self.root(), &file.path)?,
                    owner: None,
                    bytes: text.into_bytes(),
                    mode: spec::mode(&file.mode)?,
                    create_only: false,
                });
                ops
            }
            Kind::Checkout => self.checkout_ops(&spec::parse(id, content)?, etc)?,
            Kind::Kubeconfig => {
                let file: KubeconfigSpec = spec::parse(id, content)?;
                let home = self.home(etc, &file.os_user)?;
                let path = under_root(self.root(), &file.path)?;
                if home.entry(&path)?.is_some() {
                    Vec::new()
                } else {
                    // Never overwritten: one that appears before the write is kept.
                    vec![Op::Write {
                        path,
                        owner: Some(file.os_user),
                        bytes: file.text.into_bytes(),
                        mode: spec::mode(&file.mode)?,
                        create_only: true,
                    }]
                }
            }
            Kind::ManagedFile => self.managed_ops(&spec::parse(id, content)?, etc)?,
            Kind::SystemFile => return self.system_file_ops(change, &spec::parse(id, content)?, content),
            Kind::ContributeAccess => self.contribute_ops(&spec::parse(id, content)?, etc)?,
            Kind::SkeletonLink => {
                let link: LinkSpec = spec::parse(id, content)?;
                let home = self.home(etc, &link.os_user)?;
                let path = under_root(self.root(), &link.path)?;
                if home.entry(&path)?.is_some() {
                    Vec::new()
                } else {
                    vec![Op::Symlink { path, target: link.target, owner: link.os_user }]
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
    fn delete_ops(&self, kind: Kind, change: &Change, etc: &Etc) -> Result<Vec<Op>> {
        let before = change.before.as_ref().map(Content::to_value).unwrap_or(Value::Null);
        let text = |key: &str| before.get(key).and_then(Value::as_str);
        let path = text("path").map(|p| under_root(self.root(), p)).transpose()?;
        let mut ops = Vec::new();
        match (kind, path) {
            (Kind::GeneratedFile, Some(path)) => ops.push(Op::Remove { path, owner: None, link_target: None }),
            (Kind::SkeletonLink, Some(path)) => {
                let target = text("target").unwrap_or_default();
                let os_user = text("os_user").unwrap_or_default();
                // Only tenantry's link, as it made it; gone with the account, or replaced by the tenant: left.
                if let Ok(home) = self.home(etc, os_user)
                    && let Ok(Some((dir, name))) = home.parent_of(&path)
                    && dir.read_link(&name).ok().flatten().is_some_and(|t| t == Path::new(target))
                {
                    ops.push(Op::Remove {
                        path,
                        owner: Some(os_user.to_string()),
                        link_target: Some(target.to_string()),
                    });
                }
            }
            _ => ops.push(Op::Warn(format!("{} is no longer managed by the host target; its data is kept", change.id))),
        }
        ops.push(Op::Forget { id: change.id.clone() });
        Ok(ops)
    }

    /// Create a missing account; for an existing one only add what is
    /// missing (groups, and shell/comment as the roster says). Never removes
    /// a group, never locks a password again, never touches the home, and
    /// never acts on a system account (root, a daemon, a service).
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
                let create_home = std::fs::symlink_metadata(&home).is_err();
                let mut args: Vec<String> = vec!["--root".into(), root];
                args.push(if create_home { "--create-home" } else { "--no-create-home" }.into());
                args.extend(["--home-dir".into(), account.home.clone(), "--shell".into(), account.shell.clone()]);
                args.extend(["--comment".into(), account.comment.clone()]);
                match etc.group(os_user) {
                    Some(group) if group.gid < etc.defs().gid_min => {
                        return Err(Error::Refused(format!(
                            "a group `{os_user}` exists and is a system group (gid {}, below GID_MIN {} of /etc/login.defs); \
                             tenantry will not make it the primary group of a new account",
                            group.gid,
                            etc.defs().gid_min
                        )));
                    }
                    Some(_) => args.extend(["--gid".into(), os_user.to_string()]),
                    None => args.push("--user-group".into()),
                }
                if !present.is_empty() {
                    args.extend(["--groups".into(), join(&present)]);
                }
                if account.locked {
                    args.extend(["--expiredate".into(), "1".into()]);
                }
                // The password stays locked: useradd without --password disables it.
                args.push(os_user.to_string());
                ops.push(Op::Run(self.tool(&self.config.useradd, args)));
                if create_home {
                    ops.push(Op::ChmodHome { path: home.clone(), owner: os_user.to_string(), mode: 0o700 });
                }
                // Port changes do not wait for the account (they need no
                // order in the state database); those that ran first only
                // recorded their port, which the new home gets now.
                ops.push(Op::WritePorts {
                    user: account.user.clone(),
                    os_user: os_user.to_string(),
                    path: home.join(PORTS_ENV_RELATIVE),
                    set: None,
                });
            }
            Some(entry) => {
                if !etc.is_regular(entry) {
                    return Err(Error::Refused(etc.system_account_reason(entry)));
                }
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
                    ops.push(Op::Run(self.tool(&self.config.usermod, full)));
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
        let home = self.home_path(etc, &port.os_user)?;
        Ok(vec![Op::WritePorts {
            user: port.user.clone(),
            os_user: port.os_user.clone(),
            path: home.join(PORTS_ENV_RELATIVE),
            set: Some((port.pool.clone(), port.port)),
        }])
    }

    /// Copy when absent, or when the copy still carries the mark and differs;
    /// anything else at the path (a customised copy, a link, a FIFO) is the tenant's.
    fn managed_ops(&self, file: &ManagedSpec, etc: &Etc) -> Result<Vec<Op>> {
        let home = self.home(etc, &file.os_user)?;
        let source_path = self.source_path(&file.source);
        let source = std::fs::read(&source_path)
            .map_err(|e| Error::io(format!("reading the managed file source {}", source_path.display()), e))?;
        let path = under_root(self.root(), &file.path)?;
        let rewrite = match home.entry(&path)? {
            None => true,
            Some(info) if info.kind != EntryKind::File => false,
            Some(_) => {
                home.read(&path).ok().flatten().is_some_and(|on_disk| on_disk != source && carries_mark(&on_disk))
            }
        };
        Ok(if rewrite {
            vec![Op::Write { path, owner: Some(file.os_user.clone()), bytes: source, mode: 0o644, create_only: false }]
        } else {
            Vec::new()
        })
    }
}
