//! Desired resources and the per-kind rules that govern their lifecycle.

use crate::content::Content;
use crate::id::{Domain, ResourceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tenantry_model::Span;

/// Who a resource exists for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "user")]
pub enum Owner {
    /// Shared by every user (ClusterRoles, generated host files).
    Platform,
    User(String),
}

impl Owner {
    pub fn user(&self) -> Option<&str> {
        match self {
            Owner::Platform => None,
            Owner::User(key) => Some(key),
        }
    }

    /// The text stored in labels and the state database.
    pub fn as_label(&self) -> &str {
        match self {
            Owner::Platform => "(platform)",
            Owner::User(key) => key,
        }
    }

    pub fn from_label(label: &str) -> Owner {
        if label == "(platform)" { Owner::Platform } else { Owner::User(label.to_string()) }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_label())
    }
}

/// One thing a user (or the platform) should have.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: ResourceId,
    pub owner: Owner,
    pub content: Content,
    /// The roster position that produced it (`tenantry why`).
    pub origin: Span,
    /// The catalog rule, in words.
    pub rule: &'static str,
    /// Resources that must exist first (shared with the plan's changes).
    pub deps: std::sync::Arc<[ResourceId]>,
    /// Content must never be printed (shown as `(sensitive)`).
    pub sensitive: bool,
    /// For an app instance's object: the template file and line of its
    /// document (`apps/budget/deployment.yaml:1`), shown by `why`.
    pub template: Option<std::sync::Arc<str>>,
}

/// A part of the roster derivation could not turn into resources: one
/// user's app instance (a template that does not render, or that would
/// exceed the namespace's quota). Only that instance fails; the plan says
/// why and apply fails its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeriveFailure {
    pub owner: String,
    pub app: String,
    pub namespace: String,
    /// The user's entry in the roster.
    pub origin: Span,
    pub message: String,
    pub help: String,
}

/// Everything the roster asks for, sorted by id.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    /// Sorted by id, so lookups are binary searches.
    resources: Vec<Resource>,
    /// Sticky ports by user and pool, including newly allocated ones.
    pub ports: BTreeMap<String, BTreeMap<String, u16>>,
    /// Limits on how many objects one scope of a domain may hold.
    pub budgets: Vec<ObjectBudget>,
    /// App instances that could not be derived, in user order.
    pub failures: Vec<DeriveFailure>,
}

/// At most `limit` objects of `domain` per scope (a DNS zone's record cap,
/// SPEC §8.6), foreign objects included: exceeding it blocks the plan.
#[derive(Debug, Clone)]
pub struct ObjectBudget {
    pub domain: Domain,
    pub limit: u32,
    /// The roster setting that sets it.
    pub origin: Span,
    /// Its name in messages: "record budget".
    pub name: &'static str,
    /// What a scope is ("zone") and what its objects are ("records").
    pub scope_noun: &'static str,
    pub object_noun: &'static str,
    /// The fix, for a scope over budget.
    pub help: fn(&str) -> String,
}

/// The order of desired resources: by id; ties only between identical
/// derivations, so unstable sorts are deterministic.
fn resource_order(a: &Resource, b: &Resource) -> std::cmp::Ordering {
    a.id.cmp(&b.id).then_with(|| a.owner.cmp(&b.owner))
}

impl Desired {
    pub fn new(mut resources: Vec<Resource>, ports: BTreeMap<String, BTreeMap<String, u16>>) -> Desired {
        resources.sort_unstable_by(resource_order);
        resources.dedup_by(|a, b| a.id == b.id);
        Desired { resources, ports, budgets: Vec::new(), failures: Vec::new() }
    }

    /// From two parts derived on two threads: each is sorted on its own
    /// thread, then they are merged (the same result as [`Desired::new`]).
    pub fn from_parts(
        mut first: Vec<Resource>,
        mut second: Vec<Resource>,
        ports: BTreeMap<String, BTreeMap<String, u16>>,
    ) -> Desired {
        let sorted = std::thread::scope(|scope| {
            let sorting = scope.spawn(|| second.sort_unstable_by(resource_order));
            first.sort_unstable_by(resource_order);
            sorting.join()
        });
        if sorted.is_err() {
            // Sorting cannot fail; if the thread died anyway, the slice still
            // holds every element (a permutation): sort it here.
            second.sort_unstable_by(resource_order);
        }
        let mut resources = Vec::with_capacity(first.len() + second.len());
        let (mut left, mut right) = (first.into_iter().peekable(), second.into_iter().peekable());
        loop {
            let take_left = match (left.peek(), right.peek()) {
                (Some(a), Some(b)) => resource_order(a, b).is_le(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if let Some(next) = if take_left { left.next() } else { right.next() } {
                resources.push(next);
            }
        }
        resources.dedup_by(|a, b| a.id == b.id);
        Desired { resources, ports, budgets: Vec::new(), failures: Vec::new() }
    }

    pub fn resources(&self) -> &[Resource] {
        &self.resources
    }

    pub fn get(&self, id: &ResourceId) -> Option<&Resource> {
        self.resources.binary_search_by(|r| r.id.cmp(id)).ok().and_then(|i| self.resources.get(i))
    }

    pub fn contains(&self, id: &ResourceId) -> bool {
        self.resources.binary_search_by(|r| r.id.cmp(id)).is_ok()
    }

    pub fn len(&self) -> usize {
        self.resources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    pub fn owned_by<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.owner.user() == Some(user))
    }
}
