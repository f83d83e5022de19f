//! The account databases of a root (`etc/passwd`, `etc/group`, `etc/shadow`,
//! and the uid/gid ranges of `etc/login.defs`), read directly: the sandbox
//! has no NSS, and one read serves every account.
//!
//! Only a *regular* account (uid within `UID_MIN..=UID_MAX`, never 0) is a
//! tenant's: tenantry never adopts, changes, runs commands as, writes into the
//! home of or routes a login to any other (root, daemons, service accounts).

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

/// The ranges of `login.defs` that tell tenant accounts from system ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginDefs {
    pub uid_min: u32,
    pub uid_max: u32,
    pub gid_min: u32,
}

impl Default for LoginDefs {
    /// shadow-utils' own defaults, used when the file or a key is missing.
    fn default() -> Self {
        LoginDefs { uid_min: 1000, uid_max: 60000, gid_min: 1000 }
    }
}

impl LoginDefs {
    pub fn parse(text: &str) -> LoginDefs {
        let mut defs = LoginDefs::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let (Some(key), Some(value)) = (words.next(), words.next()) else { continue };
            let Ok(value) = value.parse::<u32>() else { continue };
            match key {
                "UID_MIN" => defs.uid_min = value,
                "UID_MAX" => defs.uid_max = value,
                "GID_MIN" => defs.gid_min = value,
                _ => {}
            }
        }
        defs
    }
}

/// Accounts and groups of one root at one moment.
#[derive(Debug, Clone, Default)]
pub struct Etc {
    users: HashMap<String, PasswdEntry>,
    groups: HashMap<String, GroupEntry>,
    shadow: HashMap<String, ShadowEntry>,
    defs: LoginDefs,
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
        let defs = LoginDefs::parse(&read_optional(&root.join("etc/login.defs"))?);
        Ok(Etc { defs, ..Etc::parse(&passwd, &group, &shadow) })
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

    /// The account with `uid` (the first by name when several share it).
    pub fn user_by_uid(&self, uid: u32) -> Option<&PasswdEntry> {
        self.users.values().filter(|e| e.uid == uid).min_by(|a, b| a.name.cmp(&b.name))
    }

    pub fn defs(&self) -> LoginDefs {
        self.defs
    }

    /// A tenant's account: uid within `UID_MIN..=UID_MAX`, and never root.
    pub fn is_regular(&self, entry: &PasswdEntry) -> bool {
        entry.uid != 0 && (self.defs.uid_min..=self.defs.uid_max).contains(&entry.uid)
    }

    /// The account `name` when it exists and is *not* a tenant's (root, a daemon, a service).
    pub fn system_account(&self, name: &str) -> Option<&PasswdEntry> {
        self.user(name).filter(|entry| !self.is_regular(entry))
    }

    /// Why tenantry leaves a system account alone, for messages.
    pub fn system_account_reason(&self, entry: &PasswdEntry) -> String {
        format!(
            "`{}` is a system account (uid {}, outside UID_MIN {}..UID_MAX {} of /etc/login.defs); \
             tenantry never adopts or changes it, runs nothing as it and routes no login to it",
            entry.name, entry.uid, self.defs.uid_min, self.defs.uid_max
        )
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
