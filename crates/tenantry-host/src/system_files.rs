//! `platform.workstation.system_files`: files installed on the host itself
//! (e.g. `/etc/claude-code/managed-settings.json`), through directories
//! that must be root's all the way down.
//!
//! Ownership without a header: many of these formats (JSON) have no
//! comments, so tenantry records the SHA-256 of the bytes it wrote in its
//! record of the file. A copy whose first line carries "managed by
//! tenantry", or whose bytes are the ones tenantry wrote, is tenantry's and
//! follows its source; any other copy (an admin's edit, a file that was
//! there first) is left alone, with a warning.

use crate::error::{Error, Result};
use crate::home::{self, under_root};
use crate::inner::Inner;
use crate::observe::carries_mark;
use crate::ops::Op;
use crate::spec::SystemFileSpec;
use serde_json::{Value, json};
use sha2::Digest as _;
use tenantry_core::{Change, Content};

/// The record's field holding the SHA-256 of what tenantry wrote.
pub(crate) const WRITTEN_DIGEST: &str = "written_sha256";

pub(crate) fn digest(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Whether the copy on disk is tenantry's: marked, or the bytes it wrote.
pub(crate) fn is_ours(on_disk: &[u8], recorded: &Value) -> bool {
    carries_mark(on_disk) || recorded.get(WRITTEN_DIGEST).and_then(Value::as_str) == Some(digest(on_disk).as_str())
}

impl Inner {
    /// Write when absent, or when tenantry's copy differs from the source;
    /// record the digest of what is tenantry's on disk.
    pub(crate) fn system_file_ops(&self, change: &Change, file: &SystemFileSpec, content: &Content) -> Result<Vec<Op>> {
        let source_path = self.source_path(&file.source);
        let source = std::fs::read(&source_path)
            .map_err(|e| Error::io(format!("reading the system file source {}", source_path.display()), e))?;
        let path = under_root(self.root(), &file.path)?;
        let recorded = self.records.read(&change.id).map(|r| r.content).unwrap_or(Value::Null);
        let mut ops = Vec::new();
        let written = match home::read_system(self.root(), &file.path)? {
            None => true,
            Some((on_disk, _)) if on_disk == source => false,
            Some((on_disk, _)) if is_ours(&on_disk, &recorded) => true,
            Some(_) => {
                ops.push(Op::Warn(format!(
                    "{} was changed by someone else (or was there first): left alone; remove it to have tenantry install {}",
                    file.path, file.source
                )));
                let mut record = content.to_value();
                record[WRITTEN_DIGEST] = recorded.get(WRITTEN_DIGEST).cloned().unwrap_or(Value::Null);
                ops.push(Op::Record {
                    id: change.id.clone(),
                    owner: change.owner.clone(),
                    content: Content::from_value(&record),
                });
                return Ok(ops);
            }
        };
        if written {
            ops.push(Op::Write { path, owner: None, bytes: source.clone(), mode: 0o644, create_only: false });
        }
        let mut record = content.to_value();
        record[WRITTEN_DIGEST] = json!(digest(&source));
        ops.push(Op::Record {
            id: change.id.clone(),
            owner: change.owner.clone(),
            content: Content::from_value(&record),
        });
        Ok(ops)
    }
}
