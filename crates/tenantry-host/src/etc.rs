//! The account databases of a root (`etc/passwd`, `etc/group`, `etc/shadow`),
//! read directly: the sandbox has no NSS, and one read serves every account.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowEntry {
    pub password: String,
    /// Days since the epoch after which the account is expired; `None` when unset.
    pub expire: Option<i64>,
}

/// Accounts and groups of one root at one moment.
#[derive(Debug, Clone, Default)]
pub struct Etc {
    users: HashMap<String, PasswdEntry>,
    groups: HashMap<String, GroupEntry>,
    shadow: HashMap<String, ShadowEntry>,
}

fn read_optional(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(Error::io(format!("reading {}", path.display()), error)),
    }
}

impl Etc {
    pub fn read(root: &Path) -> Result<Etc> {
        let passwd = std::fs::read_to_string(root.join("etc/passwd"))
            .map_err(|e| Error::io(format!("reading {}", root.join("etc/passwd").display()), e))?;
        let group = read_optional(&root.join("etc/group"))?;
        let shadow = read_optional(&root.join("etc/shadow"))?;
        Ok(Etc::parse(&passwd, &group, &shadow))
    }

    pub fn parse(passwd: &str, group: &str, shadow: &str) -> Etc {
        let fields = |line: &str| line.split(':').map(str::to_string).collect::<Vec<_>>();
        let mut etc = Etc::default();
        for line in passwd.lines().filter(|l| !l.starts_with('#')) {
            let f = fields(line);
            let (Some(name), Some(uid), Some(gid)) =
                (f.first(), f.get(2).and_then(|u| u.parse().ok()), f.get(3).and_then(|g| g.parse().ok()))
            else {
                continue;
            };
            let get = |i: usize| f.get(i).cloned().unwrap_or_default();
            etc.users.insert(
                name.clone(),
                PasswdEntry { name: name.clone(), uid, gid, gecos: get(4), home: get(5), shell: get(6) },
            );
        }
        for line in group.lines().filter(|l| !l.starts_with('#')) {
            let f = fields(line);
            let (Some(name), Some(gid)) = (f.first(), f.get(2).and_then(|g| g.parse().ok())) else { continue };
            let members = f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            etc.groups.insert(name.clone(), GroupEntry { name: name.clone(), gid, members });
        }
        for line in shadow.lines() {
            let f = fields(line);
            let Some(name) = f.first() else { continue };
            let expire = f.get(7).and_then(|e| e.parse().ok());
            etc.shadow.insert(name.clone(), ShadowEntry { password: f.get(1).cloned().unwrap_or_default(), expire });
        }
        etc
    }

    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.users.get(name)
    }

    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.get(name)
    }

    pub fn shadow(&self, name: &str) -> Option<&ShadowEntry> {
        self.shadow.get(name)
    }

    /// Whether the account belongs to the group, as a listed member or by its primary group.
    pub fn is_member(&self, user: &str, group: &str) -> bool {
        let Some(entry) = self.groups.get(group) else { return false };
        entry.members.iter().any(|m| m == user) || self.users.get(user).is_some_and(|u| u.gid == entry.gid)
    }

    /// Supplementary groups of an account, sorted.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        let mut names: Vec<String> =
            self.groups.values().filter(|g| g.members.iter().any(|m| m == user)).map(|g| g.name.clone()).collect();
        names.sort();
        names
    }

    /// The cut expires the account (so key-based logins stop too); an expiry
    /// date on or before `today` (days since the epoch) is a locked login.
    pub fn is_locked(&self, user: &str, today: i64) -> bool {
        self.shadow.get(user).and_then(|s| s.expire).is_some_and(|expire| expire <= today)
    }
}

/// Days since the Unix epoch, as shadow counts them.
pub fn today() -> i64 {
    let seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    i64::try_from(seconds / 86_400).unwrap_or(i64::MAX)
}
