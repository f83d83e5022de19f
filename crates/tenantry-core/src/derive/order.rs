//! SPEC §8.7, one apply in one order: Vault, then the cluster, then CI and
//! the forge. A user's CI and forge grants depend on their Vault entity and
//! their cluster binding, so the engine applies them in a later wave and
//! skips them — only them — when either failed.

use crate::id::{Domain, ResourceId};
use crate::kinds::kind;
use tenantry_model::{Roster, Tier, User};

/// What a user's CI and forge grants are applied after.
pub(super) fn after_platform(roster: &Roster, user: &User) -> Vec<ResourceId> {
    let mut deps = Vec::with_capacity(2);
    // Only namespace-owners have a Vault entity (derive/vault.rs).
    if user.tier.value == Tier::NamespaceOwner {
        deps.push(ResourceId::global(Domain::Vault, kind::ENTITY, &user.key));
    }
    deps.extend(super::kubernetes::cluster_binding_id(roster, user));
    deps
}
