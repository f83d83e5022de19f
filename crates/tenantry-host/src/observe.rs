//! Observe: the host checked against tenantry's records, read through the
//! same safe handles apply writes through. What cannot be looked at safely
//! (a link in the way, a hostile file) observes as absent or drifted, so
//! the plan proposes the change and apply refuses it with the reason.

use crate::error::Result;
use crate::etc::{self, Etc};
use crate::git;
use crate::home::{self, Home, first_line, under_root};
use crate::inner::Inner;
use crate::ports::{self, PORTS_ENV_RELATIVE};
use crate::records::Record;
use crate::redact;
use crate::spec::Kind;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use tenantry_core::{Content, Mark, Observed, Owner, ResourceId};

/// The first line of a managed file that tenantry may rewrite.
pub(crate) const MANAGED_MARK: &str = "managed by tenantry";

pub(crate) fn carries_mark(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(first_line(bytes)).to_ascii_lowercase().contains(MANAGED_MARK)
}

impl Inner {
    pub fn observe(&self, resources: &[(ResourceId, Owner)]) -> Result<Observed> {
        let etc = Etc::read(self.root())?;
        let today = etc::today();
        let mut observed = Observed::default();
        for (id, owner) in resources {
            let Some(kind) = Kind::of(id) else { continue };
            if kind == Kind::Account
                && let Some(system) = etc.system_account(&id.name)
            {
                // Root, a daemon or a service account: someone else's, never adopted (a Conflict).
                let content = json!({ "os_user": system.name, "uid": system.uid, "home": system.home });
                observed.insert(id.clone(), Content::from_value(&content), None);
                observed.foreign.insert(
                    id.clone(),
                    format!(
                        "{}; give the user another `workstation.os_user` in the roster",
                        etc.system_account_reason(system)
                    ),
                );
                continue;
            }
            let record = self.records.read(id);
            let found = match kind {
                Kind::Account => self.observe_account(id, owner, record.as_ref(), &etc, today),
                _ => record.as_ref().and_then(|r| self.observe_recorded(kind, r, &etc)),
            };
            if let Some(value) = found {
                // The record is the mark: none (an account found live) is unmarked.
                let mark = record.map_or(Mark::Unmarked, |r| r.mark(&self.platform));
                // Only requested ids are observed.
                observed.insert_marked(id.clone(), Content::from_value(&value), mark, true);
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
    ) -> Option<Value> {
        let os_user = &*id.name;
        let entry = etc.user(os_user)?;
        let (user, groups) = match record {
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
                (record.content.get("user").cloned().unwrap_or(Value::Null), groups)
            }
            None => (
                json!(expected.user().unwrap_or(os_user)),
                etc.groups_of(os_user).into_iter().map(Value::String).collect(),
            ),
        };
        Some(json!({
            "user": user,
            "os_user": os_user,
            "comment": entry.gecos,
            "shell": entry.shell,
            "home": entry.home,
            "groups": groups,
            "locked": etc.is_locked(os_user, today),
        }))
    }

    /// The home of a recorded per-account resource; `None` (absent) when it
    /// cannot be opened safely or the account is not a tenant's.
    fn observed_home(&self, etc: &Etc, recorded: &Value) -> Option<Home> {
        let os_user = recorded.get("os_user").and_then(Value::as_str)?;
        self.home(etc, os_user).ok()
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
                let pool = text("pool")?;
                let home = self.observed_home(etc, recorded)?;
                let env = home.path().join(PORTS_ENV_RELATIVE);
                let mut value = recorded.clone();
                value["port"] = match home.read(&env) {
                    Ok(Some(bytes)) => ports::parse_ports_env(&String::from_utf8_lossy(&bytes), [pool])
                        .get(pool)
                        .map_or(Value::Null, |p| json!(p)),
                    Ok(None) => return None,
                    // A FIFO, a link, another owner's or a huge file: drift, rewritten by apply.
                    Err(_) => Value::Null,
                };
                Some(value)
            }
            Kind::GeneratedFile => {
                let (bytes, mode) = home::read_system(self.root(), text("path")?).ok()??;
                let mut value = recorded.clone();
                value["mode"] = json!(format!("{mode:04o}"));
                value["text"] = json!(String::from_utf8_lossy(&bytes));
                Some(value)
            }
            Kind::Checkout => {
                let path = path?;
                let home = self.observed_home(etc, recorded)?;
                if !git::is_checkout(&home, &path) {
                    return None;
                }
                let remotes = git::remotes(&home, &path).unwrap_or_default();
                // What the host holds is shown as is only when it is what tenantry wrote;
                // anything else (the tenant's own URL) may carry credentials: redacted.
                let shown = |name: &str, wanted: Option<&Value>| match remotes.get(name) {
                    None => Value::Null,
                    Some(url) if wanted.and_then(Value::as_str) == Some(url.as_str()) => json!(url),
                    Some(url) => json!(redact::urls(url)),
                };
                let mut value = recorded.clone();
                value["url"] = shown("origin", recorded.get("url"));
                let extras: Map<String, Value> = recorded
                    .get("extra_remotes")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter(|(name, _)| remotes.contains_key(name.as_str()))
                    .map(|(name, wanted)| (name.clone(), shown(name, Some(wanted))))
                    .collect();
                value["extra_remotes"] = Value::Object(extras);
                // Only where tenantry unlocked it: someone else's unlock is not tenantry's business.
                if recorded.get("git_crypt").is_some() && !git::is_unlocked(&home, &path) {
                    value["git_crypt"] = json!("locked");
                }
                Some(value)
            }
            Kind::ContributeAccess => {
                let home = self.observed_home(etc, recorded)?;
                self.observe_contribute(recorded, &home)
            }
            Kind::Kubeconfig | Kind::SkeletonLink => {
                let home = self.observed_home(etc, recorded)?;
                matches!(home.entry(&path?), Ok(Some(_))).then(|| recorded.clone())
            }
            Kind::SystemFile => {
                let (on_disk, _) = home::read_system(self.root(), text("path")?).ok()??;
                let ours = crate::system_files::is_ours(&on_disk, recorded);
                let source = text("source").and_then(|s| std::fs::read(self.source_path(s)).ok());
                let mut value = recorded.clone();
                if let Some(object) = value.as_object_mut() {
                    object.remove(crate::system_files::WRITTEN_DIGEST);
                }
                if source.is_some_and(|s| s != on_disk) && ours {
                    value["stale"] = json!(true);
                }
                Some(value)
            }
            Kind::ManagedFile => {
                let home = self.observed_home(etc, recorded)?;
                let path = path?;
                let on_disk = match home.read(&path) {
                    Ok(bytes) => bytes?,
                    // Something of the tenant's that is not a plain copy (a link, a FIFO): customised.
                    Err(_) => return matches!(home.entry(&path), Ok(Some(_))).then(|| recorded.clone()),
                };
                let source = text("source").and_then(|s| std::fs::read(self.source_path(s)).ok());
                let mut value = recorded.clone();
                if source.is_some_and(|s| s != on_disk) && carries_mark(&on_disk) {
                    value["stale"] = json!(true);
                }
                Some(value)
            }
        }
    }

    pub fn source_path(&self, source: &str) -> PathBuf {
        self.config.source_dir.clone().unwrap_or_else(|| PathBuf::from(".")).join(source)
    }
}
