//! What an apply reports as it goes and when it ends.

use std::collections::{BTreeMap, BTreeSet};
use tenantry_core::{Action, Note, Owner, ResourceId};

/// Progress events for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    Started { total: usize },
    Finished { id: ResourceId, owner: Owner, ok: bool },
}

/// A change that did not happen, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub owner: Owner,
    pub target: String,
    pub id: String,
    pub action: Action,
    pub error: String,
    /// True when it was not attempted: something it needs failed, or its
    /// peer was found down earlier in the apply.
    pub skipped: bool,
    /// True when the peer may have applied it all the same (it stopped
    /// answering): the journal says `unknown`, the inventory keeps the
    /// object, and the next plan observes what is really there.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ApplyReport {
    pub run: i64,
    pub applied: BTreeMap<Owner, usize>,
    pub failures: Vec<Failure>,
    /// What targets said while applying, then what their after-apply work
    /// said (a checkout left alone), in that order.
    pub notes: Vec<Note>,
}

impl ApplyReport {
    pub fn failed_users(&self) -> BTreeSet<&Owner> {
        self.failures.iter().map(|f| &f.owner).collect()
    }

    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn applied_total(&self) -> usize {
        self.applied.values().sum()
    }
}
