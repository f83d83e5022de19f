//! The plan: what would change, per resource, and in which order to apply it.

use crate::content::Content;
use crate::id::ResourceId;
use crate::resource::Owner;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tenantry_model::Span;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Missing: will be created.
    Create,
    /// Exists with other content: our fields will be set.
    Update,
    /// Exists without tenantry's marks and fits the user: will be labelled and taken over.
    Adopt,
    /// The reversible cut: disabled in place (a locked login, a disabled entity).
    Cut,
    /// Will be deleted (tenantry created it, and the policy allows removing it).
    Delete,
    /// A removal held back: the user is still in the roster (needs `--allow-revoke`).
    Withheld,
    /// The user left the roster: kept until `--offboard`.
    Departing,
    /// Holds data: kept until the destroy stage.
    Kept,
    /// Exists but belongs to someone else: never touched; the user's apply fails.
    Conflict,
    /// Already as desired.
    NoOp,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Adopt => "adopt",
            Action::Cut => "cut",
            Action::Delete => "delete",
            Action::Withheld => "withheld",
            Action::Departing => "departing",
            Action::Kept => "kept",
            Action::Conflict => "conflict",
            Action::NoOp => "no-op",
        }
    }

    /// Whether `apply` acts on it (a conflict is "acted on" by failing).
    pub fn is_applied(self) -> bool {
        matches!(
            self,
            Action::Create | Action::Update | Action::Adopt | Action::Cut | Action::Delete | Action::Conflict
        )
    }

    /// Whether `plan --detailed-exitcode` counts it as a change.
    pub fn is_change(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Adopt | Action::Cut | Action::Delete)
    }
}

/// One resource's line in the plan.
#[derive(Debug, Clone)]
pub struct Change {
    /// The target that applies it.
    pub target: String,
    pub id: ResourceId,
    pub owner: Owner,
    pub action: Action,
    pub before: Option<Content>,
    pub after: Option<Content>,
    /// Why this action, in words.
    pub reason: std::borrow::Cow<'static, str>,
    pub origin: Span,
    pub rule: &'static str,
    pub deps: std::sync::Arc<[ResourceId]>,
    pub sensitive: bool,
    pub rank: u8,
    /// The platform (roster `platform.name`) whose marks apply writes.
    pub platform: std::sync::Arc<str>,
}

impl Change {
    /// A change with nothing but its target, id, owner and action: no
    /// content, roster position, rule or dependencies. What a summary of
    /// changes reads (audit events, plan grouping), and what their tests build.
    pub fn bare(target: &str, id: ResourceId, owner: Owner, action: Action) -> Change {
        Change {
            target: target.to_string(),
            rank: crate::kinds::kind_rank(&id),
            id,
            owner,
            action,
            before: None,
            after: None,
            reason: std::borrow::Cow::Borrowed(""),
            origin: Span::default(),
            rule: "",
            deps: std::sync::Arc::from(Vec::new()),
            sensitive: false,
            platform: std::sync::Arc::from(""),
        }
    }
}

/// Something that blocks applying part or all of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanProblem {
    pub message: String,
    pub help: String,
    /// Blocks the whole apply (true) or only what it names.
    pub blocking: bool,
}

/// Counts of one owner's changes by action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub counts: BTreeMap<Action, usize>,
    pub departing: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every resource whose action is not a no-op, sorted by owner then id.
    pub changes: Vec<Change>,
    /// No-ops per owner (kept as counts: at 10,000 users they are most of the plan).
    pub unchanged: BTreeMap<Owner, usize>,
    /// No-op resources the inventory does not know yet (target, id, owner): recorded on apply.
    pub record: Vec<(String, ResourceId, Owner)>,
    /// Inventory entries whose object is gone and no longer wanted: dropped on apply.
    pub forget: Vec<(String, ResourceId)>,
    /// Users in the inventory but not in the roster.
    pub departing: BTreeSet<String>,
    /// Domains with resources but no configured target.
    pub unrouted: BTreeMap<crate::id::Domain, usize>,
    pub problems: Vec<PlanProblem>,
}

impl Plan {
    /// True when applying would change something.
    pub fn has_changes(&self) -> bool {
        self.changes.iter().any(|c| c.action.is_change())
    }

    pub fn has_conflicts(&self) -> bool {
        self.changes.iter().any(|c| c.action == Action::Conflict)
    }

    pub fn is_blocked(&self) -> bool {
        self.problems.iter().any(|p| p.blocking)
    }

    /// Per-owner counts, including no-ops.
    pub fn summary(&self) -> BTreeMap<Owner, UserSummary> {
        let mut out: BTreeMap<Owner, UserSummary> = BTreeMap::new();
        for change in &self.changes {
            *out.entry(change.owner.clone()).or_default().counts.entry(change.action).or_default() += 1;
        }
        for (owner, count) in &self.unchanged {
            *out.entry(owner.clone()).or_default().counts.entry(Action::NoOp).or_default() += count;
        }
        for user in &self.departing {
            out.entry(Owner::User(user.clone())).or_default().departing = true;
        }
        out
    }

    /// Totals by action over the whole plan.
    pub fn totals(&self) -> BTreeMap<Action, usize> {
        let mut out: BTreeMap<Action, usize> = BTreeMap::new();
        for change in &self.changes {
            *out.entry(change.action).or_default() += 1;
        }
        let unchanged: usize = self.unchanged.values().sum();
        if unchanged > 0 {
            out.insert(Action::NoOp, unchanged);
        }
        out
    }

    /// The applied changes in waves: within a wave nothing depends on
    /// anything else in it. Additions and updates first (by rank), then
    /// removals in reverse rank, so a binding goes before its namespace.
    pub fn waves(&self) -> Vec<Vec<&Change>> {
        let mut waves: BTreeMap<(u8, i16), Vec<&Change>> = BTreeMap::new();
        for change in self.changes.iter().filter(|c| c.action.is_applied()) {
            let key = match change.action {
                Action::Delete => (1, -i16::from(change.rank)),
                _ => (0, i16::from(change.rank)),
            };
            waves.entry(key).or_default().push(change);
        }
        waves.into_values().collect()
    }
}
