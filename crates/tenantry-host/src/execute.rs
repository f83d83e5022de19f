//! Apply: plan a change against the host as it is now, then run its steps.
//! Every step inside a home reopens and verifies the home and goes through
//! its handles (`tenantry-fs`); system files go through root's directories.

use crate::error::{Error, Result};
use crate::etc::Etc;
use crate::home::{self, Home};
use crate::inner::{Inner, lock};
use crate::ops::Op;
use crate::ports;
use crate::spec::{self, Kind};
use std::collections::BTreeMap;
use std::path::Path;
use tenantry_core::Change;
use tenantry_fs::{WriteOptions, Written};

/// What an executed step needs to know about accounts: read once, and again
/// when a step names an account an earlier step created.
struct Accounts<'a> {
    inner: &'a Inner,
    etc: Option<Etc>,
}

impl Accounts<'_> {
    fn etc_for(&mut self, os_user: &str) -> Result<&Etc> {
        if self.etc.as_ref().and_then(|e| e.user(os_user)).is_none() {
            self.etc = Some(Etc::read(self.inner.root())?);
        }
        self.etc.as_ref().ok_or_else(|| Error::MissingAccount { os_user: os_user.to_string() })
    }

    fn home(&mut self, os_user: &str) -> Result<Home> {
        let inner = self.inner;
        inner.home(self.etc_for(os_user)?, os_user)
    }

    fn ids(&mut self, os_user: &str) -> Result<Option<(u32, u32)>> {
        let inner = self.inner;
        inner.ids(self.etc_for(os_user)?, os_user)
    }
}

impl Inner {
    /// Apply one change; returns its warnings (a tier group missing on the
    /// host, a routing entry left out, a routed-away resource whose data is kept).
    ///
    /// `minted`: the secret a dependency minted in this apply (the forge
    /// token of a `ContributeAccess`).
    pub fn apply_minted(&self, change: &Change, minted: Option<&str>) -> Result<Vec<String>> {
        let content = change.after.as_ref().or(change.before.as_ref());
        let _accounts = (Kind::of(&change.id) == Some(Kind::Account)).then(|| lock(&self.accounts));
        let user_lock = content.and_then(spec::os_user_of).map(|u| self.user_lock(&u));
        let _user = user_lock.as_ref().map(|l| lock(l));
        let etc = Etc::read(self.root())?;
        let ops = self.ops_for(change, &etc)?;
        self.execute(&ops, minted)
    }

    fn execute(&self, ops: &[Op], minted: Option<&str>) -> Result<Vec<String>> {
        let mut accounts = Accounts { inner: self, etc: None };
        let mut warnings = Vec::new();
        for op in ops {
            match op {
                Op::Run(cmd) => {
                    let mut cmd = cmd.clone();
                    if let Some(os_user) = &cmd.run_as {
                        cmd.ids = accounts.ids(os_user)?;
                    }
                    self.run(&cmd)?;
                }
                Op::Dir { path, owner: os_user, mode } => {
                    let home = accounts.home(os_user)?;
                    if path != home.path() {
                        let (parent, name) = home.parent_for_write(path, 0o700)?;
                        parent.ensure_dir(&name, *mode, home.ids())?;
                    }
                }
                Op::Write { path, owner: Some(os_user), bytes, mode, create_only } => {
                    accounts.home(os_user)?.write(path, bytes, *mode, !create_only)?;
                }
                Op::Write { path, owner: None, bytes, mode, create_only } => {
                    self.write_system(path, bytes, *mode, !create_only)?;
                }
                Op::WritePorts { user, os_user, path, set } => {
                    let mut held: BTreeMap<String, u16> = self
                        .records
                        .read_named("Port", user)
                        .into_iter()
                        .filter(|r| r.is_for(&self.platform))
                        .filter(|r| r.content.get("os_user").and_then(|o| o.as_str()) == Some(os_user.as_str()))
                        .filter_map(|r| {
                            let pool = r.content.get("pool")?.as_str()?.to_string();
                            let port = u16::try_from(r.content.get("port")?.as_u64()?).ok()?;
                            Some((pool, port))
                        })
                        .collect();
                    held.extend(set.clone());
                    if held.is_empty() {
                        continue;
                    }
                    accounts.home(os_user)?.write(path, ports::render_env(&held).as_bytes(), 0o644, true)?;
                }
                Op::Symlink { path, target, owner } => {
                    let home = accounts.home(owner)?;
                    let (parent, name) = home.parent_for_write(path, 0o700)?;
                    parent.symlink(&name, target.as_ref(), home.ids())?;
                }
                Op::Rename { from, to, owner } => {
                    let home = accounts.home(owner)?;
                    let missing = |path: &Path| Error::Refused(format!("{} is not there (any more)", path.display()));
                    let (from_dir, from_name) = home.parent_of(from)?.ok_or_else(|| missing(from))?;
                    let (to_dir, to_name) = home.parent_of(to)?.ok_or_else(|| missing(to))?;
                    from_dir.rename(&from_name, &to_dir, &to_name)?;
                }
                Op::Remove { path, owner: Some(os_user), link_target } => {
                    let home = accounts.home(os_user)?;
                    if let Some((dir, name)) = home.parent_of(path)? {
                        let target = dir.read_link(&name)?;
                        // Still the link tenantry made (checked again now, not only at plan time).
                        if link_target.as_deref().is_none_or(|wanted| target.as_deref() == Some(Path::new(wanted))) {
                            dir.remove_file(&name)?;
                        }
                    }
                }
                Op::Remove { path, owner: None, .. } => {
                    let relative = path.strip_prefix(self.root()).unwrap_or(path).to_string_lossy().into_owned();
                    if let Some((dir, name)) = home::system_parent(self.root(), &format!("/{relative}"), false)? {
                        dir.remove_file(&name)?;
                    }
                }
                Op::ChmodHome { path, owner, mode } => {
                    let home = accounts.home(owner)?;
                    if home.path() != path {
                        return Err(Error::Refused(format!("{} is not the home of `{owner}`", path.display())));
                    }
                    home.dir().set_mode(*mode)?;
                }
                Op::WriteCredential { path, owner, url, login } => {
                    let home = accounts.home(owner)?;
                    self.write_credential(&home, path, url, login, minted)?;
                }
                Op::Warn(message) => {
                    tracing::warn!(target: "tenantry::host", "{message}");
                    warnings.push(message.clone());
                }
                Op::Record { id, owner, content } => self.records.write(id, owner, &self.platform, content)?,
                Op::Forget { id } => self.records.remove(id)?,
            }
        }
        Ok(warnings)
    }

    /// A system file (a routing file), through root's directories.
    fn write_system(&self, path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<Written> {
        let relative = path
            .strip_prefix(self.root())
            .map_err(|_| Error::Refused(format!("{} is outside the root {}", path.display(), self.root().display())))?;
        let absolute = format!("/{}", relative.to_string_lossy());
        let (dir, name) = home::system_parent(self.root(), &absolute, true)?
            .ok_or_else(|| Error::Content(format!("{} has no directory", path.display())))?;
        let written = dir.write_file(&name, bytes, WriteOptions { mode: Some(mode), owner: None, replace }).map_err(
            |e| match e {
                tenantry_fs::Error::Io { source, .. } => Error::io(format!("writing {}", path.display()), source),
                refused => Error::from(refused),
            },
        )?;
        Ok(written)
    }
}
