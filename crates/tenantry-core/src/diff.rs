//! Desired vs observed → plan, under the safety policy of SPEC §6.

use crate::content::Content;
use crate::id::{Domain, ResourceId};
use crate::kinds::{Retire, data_differs, kind_rank, retire_policy};
use crate::marks::same_but_marks;
use crate::observed::{Inventory, Observed};
use crate::plan::{Action, Change, Plan, PlanProblem};
use crate::resource::{Desired, Owner, Resource};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenantry_model::{Roster, Span};

/// What the admin allowed for this run.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Take away what present users no longer have in the roster.
    pub allow_revoke: bool,
    /// Perform the reversible cut for users who left the roster.
    pub offboard: bool,
    /// Restrict the plan to these users (platform resources are left out too,
    /// unless `with_platform`).
    pub only: Option<BTreeSet<String>>,
    /// Under `only`, still bring the shared platform resources (routing files)
    /// in line: offboarding one user must unmap them from the routing.
    pub with_platform: bool,
    /// Objects the admin asked to take over although they hold data that
    /// differs from the roster's (`--adopt <id>`).
    pub adopt: BTreeSet<ResourceId>,
}

impl Policy {
    pub(crate) fn includes(&self, owner: &Owner) -> bool {
        match (&self.only, owner) {
            (None, _) => true,
            (Some(users), Owner::User(key)) => users.contains(key),
            (Some(_), Owner::Platform) => self.with_platform,
        }
    }
}

/// Which configured target applies each domain.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    // Looked up once per desired resource: a cheap hash, not SipHash.
    by_domain: rustc_hash::FxHashMap<Domain, String>,
    renders_only: rustc_hash::FxHashMap<String, bool>,
}

impl Routing {
    /// Register a target for domains; the first registration of a domain wins.
    pub fn add(&mut self, name: &str, domains: &[Domain], renders_only: bool) {
        for domain in domains {
            self.by_domain.entry(*domain).or_insert_with(|| name.to_string());
        }
        self.renders_only.insert(name.to_string(), renders_only);
    }

    pub fn target_for(&self, domain: Domain) -> Option<&str> {
        self.by_domain.get(&domain).map(String::as_str)
    }

    fn renders_only(&self, target: &str) -> bool {
        self.renders_only.get(target).copied().unwrap_or(false)
    }

    /// Whether a target of this name is part of this run.
    pub fn is_configured(&self, target: &str) -> bool {
        self.renders_only.contains_key(target)
    }
}

/// What each configured target observed, by target name.
pub type ObservedByTarget = HashMap<String, Observed>;

/// Compare desired with observed and decide, per resource, what apply does.
pub fn diff(
    roster: &Roster,
    desired: &Desired,
    observed: &ObservedByTarget,
    inventory: &Inventory,
    routing: &Routing,
    policy: &Policy,
) -> Plan {
    let mut plan = Plan::default();
    let nothing = Observed::default();
    let observed_on = |target: &str| observed.get(target).unwrap_or(&nothing);

    // At thousands of users the desired side is most of the work: two halves
    // on two threads, merged in order (the result is the same either way).
    let resources = desired.resources();
    let platform: std::sync::Arc<str> = std::sync::Arc::from(roster.platform.name.as_str());
    // A first apply (nothing remembered) changes everything: the first part's
    // changes get room for the whole plan, so the second's are appended
    // without a copy of both. Otherwise most resources are no-ops, and room
    // for all of them would be most of a no-op plan's memory.
    let room = |part: &[Resource]| if inventory.entries.is_empty() { part.len() } else { 0 };
    let desired_side = |part, room| diff_desired(part, room, observed, inventory, routing, policy, &platform);
    let parts = if resources.len() > 20_000 {
        let (first, second) = resources.split_at(resources.len() / 2);
        std::thread::scope(|scope| {
            let second_part = scope.spawn(|| desired_side(second, room(second)));
            let first_part = desired_side(first, room(resources));
            // Diffing cannot fail; if the thread died anyway, do its half here.
            vec![first_part, second_part.join().unwrap_or_else(|_| desired_side(second, room(second)))]
        })
    } else {
        vec![desired_side(resources, room(resources))]
    };
    let mut unchanged: rustc_hash::FxHashMap<&Owner, usize> = rustc_hash::FxHashMap::default();
    // Inventory entries matched by a desired resource on the same target:
    // when they account for the whole inventory, nothing is left over.
    let mut remembered_matches = 0_usize;
    for mut part in parts {
        if plan.changes.is_empty() {
            std::mem::swap(&mut plan.changes, &mut part.changes);
        }
        plan.changes.append(&mut part.changes);
        plan.record.extend(part.record);
        for (domain, count) in part.unrouted {
            *plan.unrouted.entry(domain).or_default() += count;
        }
        for (owner, count) in part.unchanged {
            *unchanged.entry(owner).or_default() += count;
        }
        remembered_matches += part.remembered_matches;
    }

    // Whatever tenantry manages on a configured target that the roster no
    // longer asks of that target: remembered in the inventory, or found
    // carrying tenantry's marks.
    plan.unchanged = unchanged.into_iter().map(|(owner, count)| (owner.clone(), count)).collect();
    let wanted_here =
        |target: &str, id: &ResourceId| desired.contains(id) && routing.target_for(id.domain) == Some(target);
    let mut leftovers: BTreeMap<(&str, &ResourceId), Owner> = BTreeMap::new();
    let scoped_out = policy.only.is_some();
    if scoped_out || remembered_matches < inventory.entries.len() {
        for (id, entry) in &inventory.entries {
            if routing.is_configured(&entry.target) && !wanted_here(&entry.target, id) {
                leftovers.insert((entry.target.as_str(), id), entry.owner.clone());
            }
        }
    }
    for (target, found) in observed {
        for (id, resource) in &found.resources {
            if let Some(owner) = &resource.owner
                && !wanted_here(target, id)
            {
                leftovers.entry((target.as_str(), id)).or_insert_with(|| owner.clone());
            }
        }
    }
    // An app instance that could not be derived keeps what it has: its
    // objects are neither withheld nor removed (with `--allow-revoke`) for it.
    let failed_instances: BTreeSet<(&str, &str)> =
        desired.failures.iter().map(|f| (f.owner.as_str(), f.app.as_str())).collect();
    for ((target, id), owner) in leftovers {
        let routed_to = routing.target_for(id.domain);
        if (desired.contains(id) && routed_to == Some(target)) || !policy.includes(&owner) {
            continue;
        }
        let Some(found) = observed_on(target).get(id) else {
            plan.forget.push((target.to_string(), id.clone()));
            continue;
        };
        if !failed_instances.is_empty()
            && let Some(user) = owner.user()
            && let Some(app) = app_of(&found.content)
            && failed_instances.contains(&(user, app.as_str()))
        {
            continue;
        }
        if observed_on(target).foreign.contains_key(id) {
            // Another platform's now (or never ours): never pruned or cut,
            // and no longer ours to destroy.
            plan.forget.push((target.to_string(), id.clone()));
            continue;
        }
        let renders_only = routing.renders_only(target);
        let (action, after, reason) = if desired.contains(id) {
            (Action::Delete, None, Cow::Owned(format!("now applied by target `{}`", routed_to.unwrap_or("none"))))
        } else {
            retire(roster, policy, &mut plan, id, &owner, &found.content, renders_only)
        };
        plan.changes.push(Change {
            target: target.to_string(),
            id: id.clone(),
            owner,
            action,
            before: Some(found.content.clone()),
            after,
            reason,
            origin: Span::UNKNOWN,
            rule: "no longer derived from the roster",
            deps: std::sync::Arc::from([]),
            sensitive: false,
            rank: kind_rank(id),
            platform: std::sync::Arc::clone(&platform),
        });
    }

    for failure in desired.failures.iter().filter(|f| policy.includes(&Owner::User(f.owner.clone()))) {
        plan.problems.push(PlanProblem {
            message: format!(
                "user `{}`: app `{}` (line {}) cannot be derived: {}",
                failure.owner, failure.app, failure.origin.line, failure.message
            ),
            help: format!(
                "{}; the instance's objects in namespace `{}` stay as they are, and apply fails this user",
                failure.help, failure.namespace
            ),
            blocking: false,
        });
    }
    crate::minted::pair(desired, observed, routing, policy, &mut plan, &platform);
    check_budgets(desired, observed, &mut plan);
    // Problems the targets found while observing, in target order so the plan is stable.
    let mut targets: Vec<&String> = observed.keys().collect();
    targets.sort();
    for target in targets {
        plan.problems.extend(observed[target].problems.iter().cloned());
    }
    crate::plan_order::sort_changes(&mut plan.changes);
    plan
}

/// The app an observed object belongs to (its `tenantry.dev/app` label).
fn app_of(content: &Content) -> Option<String> {
    content.to_value()["metadata"]["labels"][crate::derive::apps::APP_LABEL].as_str().map(str::to_string)
}

/// The desired side of one share of the resources.
struct DesiredPart<'a> {
    changes: Vec<Change>,
    record: Vec<(String, ResourceId, Owner)>,
    unrouted: BTreeMap<Domain, usize>,
    unchanged: rustc_hash::FxHashMap<&'a Owner, usize>,
    remembered_matches: usize,
}

/// Each desired resource against what its target observed.
fn diff_desired<'a>(
    resources: &'a [Resource],
    room: usize,
    observed: &ObservedByTarget,
    inventory: &Inventory,
    routing: &Routing,
    policy: &Policy,
    platform: &std::sync::Arc<str>,
) -> DesiredPart<'a> {
    let mut part = DesiredPart {
        changes: Vec::with_capacity(room),
        record: Vec::new(),
        unrouted: BTreeMap::new(),
        unchanged: rustc_hash::FxHashMap::default(),
        remembered_matches: 0,
    };
    let nothing = Observed::default();
    let observed_on = |target: &str| observed.get(target).unwrap_or(&nothing);
    for resource in resources {
        if !policy.includes(&resource.owner) {
            continue;
        }
        let Some(target) = routing.target_for(resource.id.domain) else {
            *part.unrouted.entry(resource.id.domain).or_default() += 1;
            continue;
        };
        let make = |action: Action, before: Option<Content>, reason: Cow<'static, str>| Change {
            target: target.to_string(),
            id: resource.id.clone(),
            owner: resource.owner.clone(),
            action,
            before,
            after: Some(resource.content.clone()),
            reason,
            origin: resource.origin,
            rule: resource.rule,
            deps: std::sync::Arc::clone(&resource.deps),
            sensitive: resource.sensitive,
            rank: kind_rank(&resource.id),
            platform: std::sync::Arc::clone(platform),
        };
        let remembered = inventory.get(&resource.id).filter(|e| e.target == target);
        part.remembered_matches += usize::from(remembered.is_some());
        let on = observed_on(target);
        let change = match on.get(&resource.id) {
            None => make(Action::Create, None, Cow::Borrowed("does not exist")),
            Some(found) => {
                let claimed = remembered.is_some();
                let foreign = on.foreign.get(&resource.id).filter(|_| !routing.renders_only(target));
                // Marks of an earlier version, or of another platform name,
                // on an object this platform's inventory remembers creating.
                let reclaimed = claimed && (on.legacy.contains(&resource.id) || foreign.is_some());
                match (&found.owner, foreign) {
                    (_, Some(_))
                        if resource.owner == Owner::Platform && same_but_marks(&found.content, &resource.content) =>
                    {
                        // A shared object of another platform (a ClusterRole two
                        // rosters on one cluster both derive) that is already
                        // exactly what this platform needs: used as it is, never touched.
                        *part.unchanged.entry(&resource.owner).or_default() += 1;
                        continue;
                    }
                    (_, Some(reason)) if !claimed => {
                        make(Action::Conflict, Some(found.content.clone()), Cow::Owned(reason.clone()))
                    }
                    (Some(other), _) if *other != resource.owner && !reclaimed => make(
                        Action::Conflict,
                        Some(found.content.clone()),
                        format!(
                            "already belongs to {} but the roster gives it to {}; tenantry will not take it over",
                            describe(other),
                            describe(&resource.owner)
                        )
                        .into(),
                    ),
                    (owner, _) if (owner.is_none() || on.legacy.contains(&resource.id)) && !claimed => {
                        // Legacy without an owner: a peer where earlier versions
                        // wrote no marks at all (RFC 2136 DNS records); outside
                        // the inventory it is simply unmarked.
                        let legacy = on.legacy.contains(&resource.id) && owner.is_some();
                        adoption(resource, found, legacy, policy, &make)
                    }
                    _ if reclaimed => make(
                        Action::Update,
                        Some(found.content.clone()),
                        Cow::Borrowed(
                            "carries an earlier version's or another platform name's marks, and this platform's inventory remembers it: it is marked as this platform's",
                        ),
                    ),
                    _ if found.content != resource.content => make(
                        Action::Update,
                        Some(found.content.clone()),
                        Cow::Borrowed("differs from the roster (drift or a roster edit)"),
                    ),
                    _ => {
                        if remembered.is_none() {
                            part.record.push((target.to_string(), resource.id.clone(), resource.owner.clone()));
                        }
                        *part.unchanged.entry(&resource.owner).or_default() += 1;
                        continue;
                    }
                }
            }
        };
        part.changes.push(change);
    }
    part
}

/// An object that exists without this platform's marks and that tenantry
/// does not remember: taken over (adopted, labelled) when it fits — unless
/// its content is someone's data that differs from what the roster wants,
/// which is never overwritten without the admin naming it (`--adopt <id>`).
fn adoption(
    resource: &Resource,
    found: &crate::observed::ObservedResource,
    legacy: bool,
    policy: &Policy,
    make: &dyn Fn(Action, Option<Content>, Cow<'static, str>) -> Change,
) -> Change {
    let before = Some(found.content.clone());
    if data_differs(&resource.id, &found.content, &resource.content) && !policy.adopt.contains(&resource.id) {
        return make(
            Action::Conflict,
            before,
            format!(
                "exists without tenantry's marks and holds data that differs from what the roster wants; tenantry never overwrites data it did not write: delete it, or replace it with `--adopt {}`",
                resource.id
            )
            .into(),
        );
    }
    let reason = match (legacy, policy.adopt.contains(&resource.id)) {
        (_, true) => "adopted as asked (--adopt): it will be labelled and replaced by what the roster wants",
        (true, false) => {
            "carries an earlier version's marks but is not in this platform's inventory; it fits the roster and will be marked and taken over"
        }
        (false, false) => "exists without tenantry's marks; it fits the roster and will be labelled and taken over",
    };
    make(Action::Adopt, before, Cow::Borrowed(reason))
}

/// The action for a managed resource the roster no longer derives.
fn retire(
    roster: &Roster,
    policy: &Policy,
    plan: &mut Plan,
    id: &ResourceId,
    owner: &Owner,
    before: &Content,
    renders_only: bool,
) -> (Action, Option<Content>, Cow<'static, str>) {
    let user = match owner {
        // A shared object that may hold what others put there (an identity-provider group) stays.
        Owner::Platform if retire_policy(id) == Retire::Keep && !renders_only => {
            return (Action::Kept, None, Cow::Borrowed("shared and may hold others' data; never deleted by tenantry"));
        }
        Owner::Platform => return (Action::Delete, None, Cow::Borrowed("no longer needed by any user")),
        Owner::User(user) => user,
    };
    let cut = cut_content(id, before);
    let already_cut = cut.as_ref() == Some(before);
    if roster.users.contains_key(user) {
        if !policy.allow_revoke {
            return (
                Action::Withheld,
                None,
                Cow::Borrowed("no longer in the roster for this user; removals need --allow-revoke"),
            );
        }
        let reason = "removed from the roster (--allow-revoke)";
        // A present user's deployer role for a removed namespace is a grant,
        // and a removed app's workloads and routes are not data: revoking
        // takes them away (a departed user's wait for destroy).
        let retire_as = crate::kinds::revoked_from_present_user(id);
        return match retire_as {
            Retire::Delete => (Action::Delete, None, Cow::Borrowed(reason)),
            Retire::Keep if renders_only => (Action::Delete, None, Cow::Borrowed(reason)),
            Retire::Keep => (Action::Kept, None, Cow::Borrowed("holds data; removed only by the destroy stage")),
            Retire::Disable if already_cut => {
                (Action::Kept, None, Cow::Borrowed("already disabled; removed only by the destroy stage"))
            }
            Retire::Disable => (Action::Cut, cut, Cow::Owned(format!("{reason}: disabled, data kept"))),
        };
    }
    plan.departing.insert(user.clone());
    let reason = "user left the roster: reversible cut (--offboard)";
    match retire_policy(id) {
        Retire::Keep => (Action::Kept, None, Cow::Borrowed("holds data; removed only by the destroy stage")),
        Retire::Disable if already_cut => {
            (Action::Kept, None, Cow::Borrowed("already cut; removed only by the destroy stage"))
        }
        Retire::Delete | Retire::Disable if !policy.offboard => {
            (Action::Departing, None, Cow::Borrowed("user left the roster; cut with --offboard"))
        }
        Retire::Delete => (Action::Delete, None, Cow::Borrowed(reason)),
        Retire::Disable => (Action::Cut, cut, Cow::Borrowed(reason)),
    }
}

fn describe(owner: &Owner) -> String {
    match owner {
        Owner::Platform => "the platform".to_string(),
        Owner::User(user) => format!("user `{user}`"),
    }
}

/// The content a resource has after the reversible cut, for kinds that are disabled rather than deleted.
pub fn cut_content(id: &ResourceId, before: &Content) -> Option<Content> {
    let cut = crate::kinds::rule_of(id).cut?;
    let mut value = before.to_value();
    cut(value.as_object_mut()?);
    Some(Content::from_value(&value))
}

/// SPEC §8.6: a scope must not silently exceed its object budget (a DNS
/// provider's record cap). Counts start from what the target counted in
/// each scope (foreign objects included) and follow the plan's creates and deletes.
fn check_budgets(desired: &Desired, observed: &ObservedByTarget, plan: &mut Plan) {
    for budget in &desired.budgets {
        let mut after: BTreeMap<String, i64> = BTreeMap::new();
        for (scope, total) in observed.values().flat_map(|o| o.scope_totals.iter()) {
            after.insert(scope.clone(), i64::try_from(*total).unwrap_or(i64::MAX));
        }
        let counted: BTreeSet<String> = after.keys().cloned().collect();
        for resource in desired.resources().iter().filter(|r| r.id.domain == budget.domain) {
            if !counted.contains(&*resource.id.scope) {
                *after.entry(resource.id.scope.to_string()).or_default() += 1;
            }
        }
        for change in plan.changes.iter().filter(|c| c.id.domain == budget.domain) {
            if !counted.contains(&*change.id.scope) {
                if change.action != Action::Delete && !desired.contains(&change.id) {
                    *after.entry(change.id.scope.to_string()).or_default() += 1;
                }
                continue;
            }
            match change.action {
                Action::Create => *after.entry(change.id.scope.to_string()).or_default() += 1,
                Action::Delete => *after.entry(change.id.scope.to_string()).or_default() -= 1,
                _ => {}
            }
        }
        for (scope, count) in after {
            if count > i64::from(budget.limit) {
                plan.problems.push(PlanProblem {
                    message: format!(
                        "{} `{scope}` would hold {count} {} after apply, over the {} of {} (roster line {})",
                        budget.scope_noun, budget.object_noun, budget.name, budget.limit, budget.origin.line
                    ),
                    help: (budget.help)(&scope),
                    blocking: true,
                });
            }
        }
    }
}
