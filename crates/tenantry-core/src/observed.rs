//! What targets report and what the state remembers.

use crate::content::Content;
use crate::id::ResourceId;
use crate::marks::Mark;
use crate::resource::Owner;
use rustc_hash::FxHashMap as HashMap;

/// The current state of one resource as a target sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedResource {
    /// The fields tenantry manages, projected by the target into the same
    /// canonical shape as the desired content.
    pub content: Content,
    /// The owner recorded on the object itself (tenantry's labels), if any.
    /// `None` means the object carries no tenantry marks.
    pub owner: Option<Owner>,
}

/// Observed resources of one run, by id. Absent means "does not exist".
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub resources: HashMap<ResourceId, ObservedResource>,
    /// Objects per scope, foreign ones included, for targets whose scopes
    /// have an object budget (a DNS zone's record cap): the budget check
    /// counts from here. Empty when the target does not count.
    pub scope_totals: std::collections::BTreeMap<String, usize>,
    /// Objects that exist and are someone else's, never adopted, with why:
    /// another platform's marks, an unmarked DNS record that points
    /// elsewhere, a system account. The target decides, since only it knows
    /// what "the same" means for its kind; the plan shows them as conflicts.
    pub foreign: HashMap<ResourceId, String>,
    /// Objects with tenantry's marks but no platform mark: an earlier
    /// version wrote them. They are this platform's only when the state's
    /// inventory says so (the plan then adds the platform mark). On a peer
    /// where earlier versions wrote no marks at all (RFC 2136 and PowerDNS
    /// records), an unmarked object is reported here without an owner.
    pub legacy: rustc_hash::FxHashSet<ResourceId>,
    /// What the target found wrong while observing, for the plan (e.g. a TLS
    /// source that will be refused at apply): problems show at `plan`, not
    /// only as failures of `apply`.
    pub problems: Vec<crate::plan::PlanProblem>,
    /// What the target will need again to apply this plan (handed back by the engine).
    pub snapshot: crate::target::Snapshot,
}

impl Observed {
    pub fn insert(&mut self, id: ResourceId, content: Content, owner: Option<Owner>) {
        self.resources.insert(id, ObservedResource { content, owner });
    }

    /// Record an object by what its marks say, as seen by this platform.
    /// `requested` says whether the plan asked about its id (desired or in
    /// the inventory): another platform's objects and unmarked ones are
    /// reported only then, so they are never mistaken for leftovers.
    pub fn insert_marked(&mut self, id: ResourceId, content: Content, mark: Mark, requested: bool) {
        match mark {
            Mark::Ours(owner) => self.insert(id, content, Some(owner)),
            _ if !requested => {}
            Mark::Legacy(owner) => {
                self.legacy.insert(id.clone());
                self.insert(id, content, Some(owner));
            }
            Mark::Foreign { platform } => {
                self.foreign.insert(
                    id.clone(),
                    format!("belongs to the platform `{platform}` (another roster on the same peer); tenantry never takes it over"),
                );
                self.insert(id, content, None);
            }
            Mark::Unmarked => self.insert(id, content, None),
        }
    }

    pub fn get(&self, id: &ResourceId) -> Option<&ObservedResource> {
        self.resources.get(id)
    }

    pub fn extend(&mut self, other: Observed) {
        self.resources.extend(other.resources);
        self.scope_totals.extend(other.scope_totals);
        self.foreign.extend(other.foreign);
        self.legacy.extend(other.legacy);
        self.problems.extend(other.problems);
    }
}

/// One resource tenantry created or adopted, and on which target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryEntry {
    pub target: String,
    pub owner: Owner,
}

/// Everything tenantry created or adopted and has not deleted: the only
/// things prune and offboarding may ever touch.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub entries: HashMap<ResourceId, InventoryEntry>,
}

impl Inventory {
    pub fn insert(&mut self, id: ResourceId, target: &str, owner: Owner) {
        self.entries.insert(id, InventoryEntry { target: target.to_string(), owner });
    }

    pub fn get(&self, id: &ResourceId) -> Option<&InventoryEntry> {
        self.entries.get(id)
    }

    pub fn contains(&self, id: &ResourceId) -> bool {
        self.entries.contains_key(id)
    }

    /// Users that have something in the inventory.
    pub fn users(&self) -> std::collections::BTreeSet<&str> {
        self.entries.values().filter_map(|e| e.owner.user()).collect()
    }
}
