//! Secrets a peer shows only once (a forge token) travel from the change
//! that mints them to the changes that consume them, inside one apply
//! (`Applied::minted` → `Target::apply_with`). So the two go together: a
//! consumer is written only when its secret is minted in the same apply,
//! and a secret minted anew is written again. This pass pairs them, so the
//! plan shows both changes — it never lies about a rotation.

use crate::diff::{ObservedByTarget, Policy, Routing};
use crate::id::ResourceId;
use crate::kinds::{kind_rank, mints_secret};
use crate::plan::{Action, Change, Plan};
use crate::resource::{Desired, Resource};
use std::borrow::Cow;

/// Add the missing half of each (minting, consuming) pair to the plan.
pub(crate) fn pair(
    desired: &Desired,
    observed: &ObservedByTarget,
    routing: &Routing,
    policy: &Policy,
    plan: &mut Plan,
    platform: &std::sync::Arc<str>,
) {
    let mut added: Vec<Change> = Vec::new();
    for consumer in desired.resources() {
        for minter in consumer.deps.iter().filter(|dep| mints_secret(dep)).filter_map(|dep| desired.get(dep)) {
            if !policy.includes(&consumer.owner) || !policy.includes(&minter.owner) {
                continue;
            }
            let action =
                |id: &ResourceId| plan.changes.iter().chain(added.iter()).find(|c| &c.id == id).map(|c| c.action);
            let writes = |a: Option<Action>| matches!(a, Some(Action::Create | Action::Update | Action::Adopt));
            let (minted, consumed) = (action(&minter.id), action(&consumer.id));
            if writes(minted) && consumed.is_none() {
                let reason =
                    "its token is minted anew in this apply (the forge shows a token only once): written again";
                added.extend(update(consumer, observed, routing, reason, platform));
            } else if writes(consumed) && minted.is_none() {
                let reason = "revoked and minted anew: the forge shows a token only once, and it is written again";
                added.extend(update(minter, observed, routing, reason, platform));
            }
        }
    }
    for change in &added {
        if let Some(count) = plan.unchanged.get_mut(&change.owner) {
            *count = count.saturating_sub(1);
        }
        plan.unchanged.retain(|_, count| *count > 0);
        plan.record.retain(|(_, id, _)| id != &change.id);
    }
    plan.changes.extend(added);
}

/// An update of a resource the diff found unchanged.
fn update(
    resource: &Resource,
    observed: &ObservedByTarget,
    routing: &Routing,
    reason: &'static str,
    platform: &std::sync::Arc<str>,
) -> Option<Change> {
    let target = routing.target_for(resource.id.domain)?;
    let before = observed.get(target)?.get(&resource.id)?.content.clone();
    Some(Change {
        target: target.to_string(),
        id: resource.id.clone(),
        owner: resource.owner.clone(),
        action: Action::Update,
        before: Some(before),
        after: Some(resource.content.clone()),
        reason: Cow::Borrowed(reason),
        origin: resource.origin,
        rule: resource.rule,
        deps: std::sync::Arc::clone(&resource.deps),
        sensitive: resource.sensitive,
        rank: kind_rank(&resource.id),
        platform: std::sync::Arc::clone(platform),
    })
}
