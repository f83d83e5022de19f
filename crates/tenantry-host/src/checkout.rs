//! Planning a checkout: clone when missing (as the account, into a temp
//! sibling, then moved into place), migrate `single` → `workspace` by moving
//! (never re-cloning), and wire the remotes. An interrupted migration
//! resumes. Every look at the home goes through its verified handle, and
//! every move is a rename between verified directory handles (`execute`).

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::etc::Etc;
use crate::git;
use crate::home::{Home, under_root};
use crate::inner::Inner;
use crate::ops::Op;
use crate::spec::CheckoutSpec;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tenantry_fs::EntryKind;

/// Where an interrupted single → workspace migration parks the old checkout.
const MIGRATING_PREFIX: &str = ".tenantry-migrating-";
/// Where a clone is made before it is moved into place, so a killed clone is never mistaken for a checkout.
const CLONING_PREFIX: &str = ".tenantry-clone-";

/// Where the checkout at `from` waits during a migration: beside it, same filesystem.
fn staging_of(from: &Path) -> Option<PathBuf> {
    let name = from.file_name()?.to_string_lossy().into_owned();
    Some(from.parent()?.join(format!("{MIGRATING_PREFIX}{name}")))
}

impl Inner {
    /// `rm -rf` of something the account made in its home, run as the account
    /// (root never deletes a tree a tenant controls).
    fn remove_tree(&self, home: &Home, os_user: &str, path: &Path) -> Op {
        let args = ["-rf", "--", &path.to_string_lossy()].map(str::to_string);
        Op::Run(
            Cmd::new("rm", args)
                .as_user(os_user, home.path())
                .with_timeout(Duration::from_secs(self.config.command_timeout_secs)),
        )
    }

    pub fn checkout_ops(&self, checkout: &CheckoutSpec, etc: &Etc) -> Result<Vec<Op>> {
        let os_user = checkout.os_user.as_str();
        let home = self.home(etc, os_user)?;
        let path = under_root(self.root(), &checkout.path)?;
        let parent = path.parent().map(Path::to_path_buf).unwrap_or_else(|| home.path().to_path_buf());
        let dir = |path: &Path| Op::Dir { path: path.to_path_buf(), owner: os_user.to_string(), mode: 0o755 };
        let rename = |from: &Path, to: &Path| Op::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            owner: os_user.to_string(),
        };
        let mut ops = Vec::new();
        // A `.git` pointing outside, or a link on the way, is refused here with its reason.
        let existing: Option<PathBuf> = if git::git_dir(&home, &path)?.is_some() {
            Some(path.clone())
        } else {
            match home.entry(&path)?.map(|info| info.kind) {
                None => {}
                Some(EntryKind::Dir) if home.open_dir(&path)?.map(|d| d.is_empty()).transpose()?.unwrap_or(true) => {}
                Some(_) => {
                    return Err(Error::Refused(format!(
                        "{} exists and is not a git checkout; tenantry will not clone over it (move it away)",
                        path.display()
                    )));
                }
            }
            let from = checkout.migrate_from.as_deref().map(|m| under_root(self.root(), m)).transpose()?;
            let staging = from.as_deref().and_then(staging_of);
            if let Some(staging) = staging.filter(|s| git::is_checkout(&home, s)) {
                ops.push(dir(&parent));
                ops.push(rename(&staging, &path));
                Some(staging)
            } else if let Some(from) = from.filter(|f| git::is_checkout(&home, f)) {
                if path.starts_with(&from) {
                    // ~/code becomes a plain directory holding the old checkout as ~/code/<main>.
                    let staging = staging_of(&from)
                        .ok_or_else(|| Error::Content(format!("{} cannot be migrated", from.display())))?;
                    ops.push(rename(&from, &staging));
                    ops.push(dir(&from));
                    ops.push(dir(&parent));
                    ops.push(rename(&staging, &path));
                } else {
                    ops.push(dir(&parent));
                    ops.push(rename(&from, &path));
                }
                Some(from)
            } else {
                // A workspace repository whose ~/code is still the single-layout
                // checkout: park that checkout where the main repository's change resumes it.
                if checkout.layout == "workspace"
                    && parent != home.path()
                    && git::is_checkout(&home, &parent)
                    && let Some(staging) = staging_of(&parent)
                {
                    ops.push(rename(&parent, &staging));
                }
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let temp = parent.join(format!("{CLONING_PREFIX}{name}"));
                if home.entry(&temp).ok().flatten().is_some() {
                    ops.push(self.remove_tree(&home, os_user, &temp));
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
                ops.push(Op::Run(self.git(home.path(), os_user, args)));
                if home.entry(&path)?.is_some() {
                    ops.push(self.remove_tree(&home, os_user, &path));
                }
                ops.push(rename(&temp, &path));
                None
            }
        };
        let remotes = match &existing {
            Some(found) => git::remotes(&home, found).unwrap_or_default(),
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
            ops.push(Op::Run(self.git(home.path(), os_user, args)));
        }
        let locked = existing.is_none() || !git::is_unlocked(&home, &path);
        if checkout.git_crypt.as_deref() == Some("unlocked") && locked {
            ops.push(Op::Run(self.git_crypt_unlock(home.path(), os_user, &path)?));
        }
        Ok(ops)
    }
}

/// The largest git-crypt key file read (a key is under 200 bytes).
const KEY_LIMIT: u64 = 64 << 10;

impl Inner {
    /// `git-crypt unlock -` as the account in its checkout, the key on stdin
    /// (never in an argument, the environment or any output). git-crypt's own
    /// git runs get the hardening of tenantry's git through `GIT_CONFIG_*`.
    fn git_crypt_unlock(&self, home: &Path, os_user: &str, checkout: &Path) -> Result<Cmd> {
        let key_file = self.config.git_crypt_key_file.as_deref().ok_or_else(|| {
            Error::Refused("the checkout is to be unlocked but [host] git_crypt_key_file is not set".to_string())
        })?;
        let key = read_key(key_file)?;
        let mut cmd = Cmd::new(&self.config.git_crypt, ["unlock", "-"]).as_user(os_user, home);
        cmd.cwd = Some(checkout.to_path_buf());
        let hardening = [("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false")];
        cmd.env.push(("GIT_CONFIG_COUNT".to_string(), hardening.len().to_string()));
        for (index, (key, value)) in hardening.iter().enumerate() {
            cmd.env.push((format!("GIT_CONFIG_KEY_{index}"), key.to_string()));
            cmd.env.push((format!("GIT_CONFIG_VALUE_{index}"), value.to_string()));
        }
        cmd.env.extend(
            [("GIT_CONFIG_NOSYSTEM", "1"), ("GIT_TERMINAL_PROMPT", "0")].map(|(k, v)| (k.to_string(), v.to_string())),
        );
        cmd.stdin = Some(crate::command::Sensitive(key));
        Ok(cmd.with_timeout(Duration::from_secs(self.config.git_timeout_secs)))
    }
}

/// The key file: a regular file of root's (tenantry's own uid), not a link,
/// readable by its owner only. Errors name the file, never its bytes.
fn read_key(path: &Path) -> Result<Vec<u8>> {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read as _;
    let refuse = |why: String| Error::Refused(format!("the git-crypt key file {}: {why}", path.display()));
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| refuse(format!("cannot be opened ({e})")))?;
    let stat = rustix::fs::fstat(&fd).map_err(|e| refuse(format!("cannot be examined ({e})")))?;
    let euid = rustix::process::geteuid().as_raw();
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(refuse("is not a regular file".to_string()));
    }
    if stat.st_uid != euid {
        return Err(refuse(format!("belongs to uid {}, not to tenantry's uid {euid}", stat.st_uid)));
    }
    if stat.st_mode & 0o077 != 0 {
        return Err(refuse(format!("has mode {:04o}; make it 0600 (`chmod 600`)", stat.st_mode & 0o7777)));
    }
    let mut key = Vec::new();
    std::fs::File::from(fd)
        .take(KEY_LIMIT + 1)
        .read_to_end(&mut key)
        .map_err(|e| refuse(format!("cannot be read ({e})")))?;
    if key.is_empty() || key.len() as u64 > KEY_LIMIT {
        return Err(refuse("is empty or too large to be a git-crypt key".to_string()));
    }
    Ok(key)
}
