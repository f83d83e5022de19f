//! What tenantry last applied to each host resource, kept under the root.
//!
//! Accounts and files carry no labels, and `observe` is only given ids: the
//! record is tenantry's mark on a resource — its owner and the platform
//! (`platform.name` of the roster) that applied it — and remembers where
//! the resource lives and what was asked of it (a checkout's path, an
//! account's tier groups), so observe can check the host against it and
//! report the same content when nothing drifted. A record without a
//! platform was written by an earlier version; one of another platform
//! (another roster applied to the same root) makes the resource foreign.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tenantry_core::{Content, Mark, Owner, ResourceId};
use tenantry_fs::AtomicWriter;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub owner: String,
    /// The platform that wrote it; absent in records of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub content: Value,
}

impl Record {
    pub fn owner(&self) -> Owner {
        Owner::from_label(&self.owner)
    }

    /// What the record says about its resource, as seen by `platform`.
    pub fn mark(&self, platform: &str) -> Mark {
        match &self.platform {
            Some(theirs) if theirs == platform => Mark::Ours(self.owner()),
            Some(theirs) => Mark::Foreign { platform: theirs.clone() },
            None => Mark::Legacy(self.owner()),
        }
    }

    /// Whether the record is `platform`'s to act on: its own, or an earlier version's.
    pub fn is_for(&self, platform: &str) -> bool {
        !matches!(self.mark(platform), Mark::Foreign { .. })
    }
}

/// A name made safe as one path component, reversibly.
fn escape(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

#[derive(Debug, Clone)]
pub(crate) struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(dir: PathBuf) -> Records {
        Records { dir }
    }

    pub fn path(&self, id: &ResourceId) -> PathBuf {
        self.dir.join(&*id.kind).join(escape(&id.scope)).join(format!("{}.json", escape(&id.name)))
    }

    /// The record, or `None` when absent or unreadable (an unreadable record
    /// only costs a re-apply, which rewrites it).
    pub fn read(&self, id: &ResourceId) -> Option<Record> {
        let path = self.path(id);
        let text = std::fs::read_to_string(&path).ok()?;
        match serde_json::from_str(&text) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring an unreadable host record");
                None
            }
        }
    }

    pub fn write(&self, id: &ResourceId, owner: &Owner, platform: &str, content: &Content) -> Result<()> {
        let record = Record {
            owner: owner.as_label().to_string(),
            platform: Some(platform.to_string()),
            content: content.to_value(),
        };
        let text = serde_json::to_string_pretty(&record).map_err(|e| Error::Content(e.to_string()))?;
        let path = self.path(id);
        AtomicWriter::write(&path, format!("{text}\n").as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    pub fn remove(&self, id: &ResourceId) -> Result<()> {
        remove_if_present(&self.path(id))
    }

    /// Every record of one kind and scope (an account's checkouts, files, links).
    pub fn remove_scope(&self, kind: &str, scope: &str) -> Result<()> {
        let dir = self.dir.join(kind).join(escape(scope));
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(Error::io(format!("removing {}", dir.display()), error)),
        }
    }

    /// The records of one name in every scope (a user's port in each pool).
    pub fn read_named(&self, kind: &str, name: &str) -> Vec<Record> {
        let Ok(scopes) = std::fs::read_dir(self.dir.join(kind)) else { return Vec::new() };
        let file = format!("{}.json", escape(name));
        scopes
            .flatten()
            .filter_map(|scope| std::fs::read_to_string(scope.path().join(&file)).ok())
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }

    /// Every readable record of one kind, in every scope.
    pub fn read_kind(&self, kind: &str) -> Vec<Record> {
        let Ok(scopes) = std::fs::read_dir(self.dir.join(kind)) else { return Vec::new() };
        scopes
            .flatten()
            .filter_map(|scope| std::fs::read_dir(scope.path()).ok())
            .flat_map(|files| files.flatten())
            .filter(|file| file.path().extension().is_some_and(|e| e == "json"))
            .filter_map(|file| std::fs::read_to_string(file.path()).ok())
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }

    pub fn remove_named(&self, kind: &str, name: &str) -> Result<()> {
        let Ok(scopes) = std::fs::read_dir(self.dir.join(kind)) else { return Ok(()) };
        for scope in scopes.flatten() {
            remove_if_present(&scope.path().join(format!("{}.json", escape(name))))?;
        }
        Ok(())
    }
}

pub(crate) fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(Error::io(format!("removing {}", path.display()), error)),
    }
}
