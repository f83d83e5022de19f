//! What a long-running front end (`tenantry serve`) keeps between passes:
//! tenantry.toml read once, each target connected once and kept (its
//! credentials are not read again every pass), and one [`Session`] per
//! pass — so the state database's run lock is held only while a pass runs,
//! and a CLI run can take it in between.
//!
//! A pass may be limited to some targets (a drift pass after a watch event
//! only observes the cluster; a retry after a target's backoff only that
//! target): the others are *held* — they keep their place in the routing,
//! so their resources are never handed to another target, but they are not
//! observed and none of their changes is planned.

use crate::config::Config;
use crate::error::{AppError, Result};
use crate::plan::PlanRequest;
use crate::session::{Session, SessionOptions, roster_dir};
use crate::source::{ConfigMapSource, LoadedRoster, TenantsSource, VaultSource, load_roster};
use crate::{ApplyRequest, wire};
use futures::stream::BoxStream;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;
use std::sync::Arc;
use tenantry_core::kinds::mints_secret;
use tenantry_core::{
    Action, Applied, Change, Desired, Domain, Facts, Note, ObserveRequest, Observed, Snapshot, Target, TargetError,
};
use tenantry_model::Roster;

/// Words a held target's observe answers with (the plan leaves it out
/// without calling it a problem).
const HELD: &str = "held: not part of this pass";

/// One configured target, connected or not yet.
struct Slot {
    section: &'static str,
    /// Connected as the target of this platform (the roster's
    /// `platform.name`, which its marks carry).
    target: Option<(String, Arc<dyn Target>)>,
    /// Why the last connection attempt failed.
    error: Option<String>,
}

/// A long-running process's context. See the module documentation.
pub struct Controller {
    pub(crate) config: Arc<Config>,
    options: SessionOptions,
    slots: tokio::sync::Mutex<Vec<Slot>>,
    /// What this process last wrote on `Tenant`s: a pass on the same read
    /// of the objects then writes only what changed since.
    pub(crate) tenants_written: tokio::sync::Mutex<crate::tenant_status::TenantsWritten>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").field("roster", &self.options.roster).finish_non_exhaustive()
    }
}

/// What a pass is asked to do.
#[derive(Debug, Clone)]
pub struct PassRequest {
    /// Why it runs, recorded with the run (`tenantry serve: roster changed`).
    pub reason: String,
    /// Perform the reversible cut for users who left the roster (`[serve] offboard = "reversible"`).
    pub offboard: bool,
    /// Only these targets; `None`: every target.
    pub targets: Option<BTreeSet<String>>,
    /// Changes in flight at once.
    pub concurrency: usize,
    /// Run the targets' after-apply work (the host's checkout refresh).
    pub after_apply: bool,
}

/// How one target fared in a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetOutcome {
    /// Observed; `failures` of its changes failed (0: converged).
    Reached { failures: usize },
    /// Could not be connected or observed: none of its changes was applied.
    Down(String),
    /// Not part of this pass.
    Held,
}

/// What one pass did, for metrics and `/api/status`.
#[derive(Debug, Clone)]
pub struct PassReport {
    /// The apply report's JSON (`docs/OUTPUT.md`, the shape of `apply
    /// --output json`, with `run: null` when nothing had to be applied).
    pub json: Value,
    /// Every configured target, in routing order.
    pub targets: Vec<(String, TargetOutcome)>,
    /// Changes that succeeded, by (target, action).
    pub applied: BTreeMap<(String, &'static str), usize>,
    /// Changes withheld (a user still in the roster lost something; `--allow-revoke` is never automatic).
    pub withheld: usize,
    /// Users in the inventory who left the roster.
    pub departing: BTreeSet<String>,
    /// The plan had blocking problems: nothing was applied.
    pub blocked: bool,
}

impl PassReport {
    /// Every target reached, no failure, not blocked.
    pub fn converged(&self) -> bool {
        !self.blocked
            && self
                .targets
                .iter()
                .all(|(_, o)| matches!(o, TargetOutcome::Reached { failures: 0 } | TargetOutcome::Held))
    }
}

impl Controller {
    /// Read tenantry.toml for the roster source of `options`. Nothing is
    /// connected yet.
    pub fn open(options: SessionOptions) -> Result<Controller> {
        let config = Config::load(options.config.as_deref(), roster_dir(&options.roster).as_deref())?;
        let slots = config.targets.iter().map(|(section, _)| Slot { section, target: None, error: None }).collect();
        Ok(Controller {
            config: Arc::new(config),
            options,
            slots: tokio::sync::Mutex::new(slots),
            tenants_written: tokio::sync::Mutex::new(Default::default()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The roster source (`roster.yaml`, `vault://…`, `kubernetes://…`).
    pub fn source(&self) -> &str {
        &self.options.roster
    }

    /// The configured targets' names, in routing order.
    pub fn target_names(&self) -> Vec<String> {
        self.config.targets.iter().map(|(section, _)| section.to_string()).collect()
    }

    /// Read and validate the roster now. Blocking (a file, Vault or the
    /// cluster is read): call it off the async executor.
    pub fn load_roster(&self) -> Result<LoadedRoster> {
        load_roster(
            &self.options.roster,
            &self.config.validation_context(),
            &self.config,
            self.options.platform_from.as_deref(),
        )
    }

    /// A cheap token that changes when a `vault://` roster changes (the KV
    /// entry's version, read from its metadata). `None` for other sources:
    /// a file and a ConfigMap are watched instead.
    pub async fn roster_revision(&self) -> Result<Option<String>> {
        let Some(source) = VaultSource::parse(&self.options.roster)? else { return Ok(None) };
        let vault = self.config.vault()?.or_else(tenantry_vault::VaultConfig::from_env).ok_or_else(|| {
            AppError::config(
                format!("cannot read `{}`: no Vault is configured", self.options.roster),
                "add [vault] address to tenantry.toml, or export VAULT_ADDR (and VAULT_TOKEN)",
            )
        })?;
        let version = tenantry_vault::kv_version(&vault, &source.mount, &source.path).await.map_err(|e| {
            AppError::config(
                format!("cannot read the roster's version from Vault: {e}"),
                "check the path and the token",
            )
        })?;
        Ok(Some(version.to_string()))
    }

    /// For a `kubernetes://` roster: a stream that yields when the ConfigMap
    /// changes, or (`kubernetes://tenants`) when a `Tenant`'s or the
    /// `Platform`'s spec changes or a deletion begins.
    pub async fn roster_changes(&self) -> Result<Option<BoxStream<'static, ()>>> {
        if let Some(tenants) = TenantsSource::parse(&self.options.roster)? {
            let client = self.config.kube_client().await?;
            let selector = tenants.selector.as_deref();
            return Ok(Some(tenantry_kubernetes::tenants::roster_object_changes(&client, selector)));
        }
        let Some(source) = ConfigMapSource::parse(&self.options.roster)? else { return Ok(None) };
        let client = self.config.kube_client().await?;
        Ok(Some(tenantry_kubernetes::watch::config_map_changes(&client, &source.namespace, &source.name)))
    }

    /// Drift reported by watches on tenantry's labelled objects, when the
    /// cluster target is configured; other targets cannot be watched.
    pub async fn drift(&self) -> Result<Option<BoxStream<'static, crate::Drift>>> {
        if !self.config.applies_kubernetes() {
            return Ok(None);
        }
        let client = self.config.kube_client().await?;
        Ok(Some(tenantry_kubernetes::watch::drift(&client).await))
    }

    /// Connect what is not connected yet as the target of `platform`
    /// (again when the roster's platform was renamed); a target that cannot
    /// connect now stands in as down (its resources stay routed to it) and
    /// is tried again next pass.
    async fn targets(&self, platform: &str) -> Result<Vec<Arc<dyn Target>>> {
        let mut slots = self.slots.lock().await;
        let mut targets = Vec::with_capacity(slots.len());
        for (slot, (_, setup)) in slots.iter_mut().zip(&self.config.targets) {
            if slot.target.as_ref().is_some_and(|(connected_for, _)| connected_for != platform) {
                slot.target = None;
            }
            if slot.target.is_none() {
                match setup.connect(platform).await {
                    Ok(target) => {
                        slot.target = Some((platform.to_string(), target));
                        slot.error = None;
                    }
                    Err(error) => {
                        let message = if error.message.is_empty() { error.to_string() } else { error.message };
                        slot.error = Some(format!("cannot connect: {message}; {}", setup.connect_help()));
                    }
                }
            }
            match (&slot.target, &slot.error) {
                (Some((_, target)), _) => targets.push(Arc::clone(target)),
                (None, error) => {
                    let domain = Domain::from_str(slot.section).map_err(|_| {
                        AppError::config(
                            format!("[{}]: {}", slot.section, error.clone().unwrap_or_default()),
                            setup.connect_help(),
                        )
                    })?;
                    targets.push(Arc::new(Unconnected {
                        name: slot.section,
                        domains: [domain],
                        error: error.clone().unwrap_or_default(),
                    }));
                }
            }
        }
        Ok(targets)
    }

    /// One pass: plan under the serve policy (additive-only; departing
    /// users only reported unless `request.offboard`) and apply it. The
    /// run lock is held for the pass only. Dropping the future stops the
    /// pass between changes; the journal marks what was in flight as
    /// interrupted, as after a crash.
    pub async fn pass(&self, loaded: &LoadedRoster, request: &PassRequest) -> Result<PassReport> {
        let all = self.targets(&loaded.roster.platform.name).await?;
        let mut held: BTreeSet<String> = match &request.targets {
            Some(only) => self.target_names().into_iter().filter(|name| !only.contains(name)).collect(),
            None => BTreeSet::new(),
        };
        // Never automatic: revoking, adopting an object whose data differs
        // (`--adopt` is an admin's decision after reading the diff).
        // A held-back `Tenant` is missing from the roster but has not left:
        // while any is held back, nobody is cut (departing users stay shown).
        let offboard = request.offboard && loaded.held_back.is_empty();
        if request.offboard && !offboard {
            tracing::warn!(held_back = ?loaded.held_back.keys().collect::<Vec<_>>(), "users are held back: no departing user is cut this pass");
        }
        let policy =
            PlanRequest { allow_revoke: false, offboard, only: Vec::new(), with_platform: false, adopt: Vec::new() };
        let (session, mut planned) = loop {
            let targets: Vec<Arc<dyn Target>> = all
                .iter()
                .map(|target| match held.contains(target.name()) {
                    true => Arc::new(Held(Arc::clone(target))) as Arc<dyn Target>,
                    false => Arc::clone(target),
                })
                .collect();
            let mut options = self.options.clone();
            options.command = request.reason.clone();
            let session = Session::with_targets(options, Arc::clone(&self.config), loaded.clone(), targets);
            let planned = session.plan(&policy).await?;
            // A secret shown once travels from the change that mints it to
            // its consumers inside one apply: a pass that would write one
            // half of such a pair takes the other half's target in too.
            let partners = mint_partners(&planned.prepared.desired, &planned.prepared.plan, &all, &held);
            if partners.is_empty() {
                break (session, planned);
            }
            tracing::info!(targets = ?partners, "a minted secret's partner targets join the pass");
            drop((planned, session));
            held.retain(|name| !partners.contains(name));
        };
        planned.prepared.plan.problems.retain(|problem| !problem.message.contains(HELD));
        let unavailable: BTreeMap<String, String> = std::mem::take(&mut planned.prepared.unavailable)
            .into_iter()
            .filter(|(name, _)| !held.contains(name))
            .collect();
        planned.prepared.unavailable = unavailable.clone();
        // The diff forgets inventory entries it did not find; a target that
        // was not observed found nothing, and its entries must stay known
        // (a departed user's objects are still there to cut or destroy).
        planned.prepared.plan.forget.retain(|(target, _)| !held.contains(target) && !unavailable.contains_key(target));

        let plan = planned.plan();
        let blocked = plan.is_blocked();
        let withheld = plan.changes.iter().filter(|c| c.action == Action::Withheld).count();
        let departing = plan.departing.clone();
        let needs_apply = !blocked && (planned.acts() || !plan.record.is_empty() || !plan.forget.is_empty());
        let (json, failures) = if needs_apply {
            let apply = ApplyRequest { concurrency: request.concurrency, after_apply: request.after_apply };
            let outcome = session.apply(&planned, &apply, &|_| {}).await?;
            (outcome.to_json(), outcome.report.failures.clone())
        } else {
            (not_applied_json(&planned.to_json(), !blocked), Vec::new())
        };

        let mut applied: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
        if needs_apply {
            let failed: BTreeSet<&str> = failures.iter().map(|f| f.id.as_str()).collect();
            for change in planned.plan().changes.iter().filter(|c| c.action.is_change()) {
                if !failed.contains(change.id.to_string().as_str()) {
                    *applied.entry((change.target.clone(), change.action.as_str())).or_default() += 1;
                }
            }
        }
        let targets = self
            .target_names()
            .into_iter()
            .map(|name| {
                let outcome = if held.contains(&name) {
                    TargetOutcome::Held
                } else if let Some(error) = unavailable.get(&name) {
                    TargetOutcome::Down(error.clone())
                } else {
                    TargetOutcome::Reached { failures: failures.iter().filter(|f| f.target == name).count() }
                };
                (name, outcome)
            })
            .collect();
        Ok(PassReport { json, targets, applied, withheld, departing, blocked })
    }
}

/// Held targets that a pass must take in because it writes one half of a
/// (minting, consuming) pair routed to them (SPEC §8.7: a forge token is
/// shown once and must reach the workstation in the same apply).
fn mint_partners(
    desired: &Desired,
    plan: &tenantry_core::Plan,
    targets: &[Arc<dyn Target>],
    held: &BTreeSet<String>,
) -> BTreeSet<String> {
    let route =
        |id: &tenantry_core::ResourceId| targets.iter().find(|t| t.domains().contains(&id.domain)).map(|t| t.name());
    let mut partners = BTreeSet::new();
    let writes = plan.changes.iter().filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Adopt));
    for change in writes {
        let consumers = desired.resources().iter().filter(|r| r.deps.contains(&change.id)).map(|r| &r.id);
        let minters = desired.get(&change.id).into_iter().flat_map(|r| r.deps.iter());
        let pairs: Vec<&tenantry_core::ResourceId> = if mints_secret(&change.id) {
            consumers.collect()
        } else {
            minters.filter(|dep| mints_secret(dep)).collect()
        };
        partners.extend(pairs.into_iter().filter_map(route).filter(|name| held.contains(*name)).map(str::to_string));
    }
    partners
}

/// Users of `roster` by tier (`admin`, `power-user`, `namespace-owner`).
pub fn users_by_tier(roster: &Roster) -> BTreeMap<&'static str, usize> {
    let mut tiers = BTreeMap::new();
    for user in roster.users.values() {
        *tiers.entry(user.tier.value.as_str()).or_default() += 1;
    }
    tiers
}

/// The apply report's shape for a pass that had nothing to apply (or was blocked).
fn not_applied_json(plan: &Value, success: bool) -> Value {
    json!({
        "format_version": wire::FORMAT_VERSION,
        "run": null,
        "success": success,
        "applied": {},
        "failures": [],
        "notes": [],
        "plan": plan,
    })
}

/// A target left out of this pass: it keeps its place in the routing but
/// is neither observed nor applied to.
struct Held(Arc<dyn Target>);

#[async_trait::async_trait]
impl Target for Held {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn domains(&self) -> &[Domain] {
        self.0.domains()
    }
    fn renders_only(&self) -> bool {
        self.0.renders_only()
    }
    fn describe(&self, change: &Change) -> Vec<String> {
        self.0.describe(change)
    }
    async fn reconcile_facts(&self, _roster: &Roster, _facts: &mut Facts) -> tenantry_core::target::Result<Vec<Note>> {
        Ok(Vec::new())
    }
    async fn observe(&self, _request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        Err(TargetError::unavailable(HELD))
    }
    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        Err(TargetError::unavailable(HELD).about(change.id.to_string()))
    }
    async fn after_apply(&self, _desired: &Desired, _concurrency: usize) -> Vec<Note> {
        Vec::new()
    }
}

/// A target whose connection failed: it stands in for the target's domain
/// (so nothing else renders or applies it) and reports itself down.
struct Unconnected {
    name: &'static str,
    domains: [Domain; 1],
    error: String,
}

#[async_trait::async_trait]
impl Target for Unconnected {
    fn name(&self) -> &str {
        self.name
    }
    fn domains(&self) -> &[Domain] {
        &self.domains
    }
    async fn observe(&self, _request: &ObserveRequest) -> tenantry_core::target::Result<Observed> {
        Err(TargetError::unavailable(self.error.clone()))
    }
    async fn apply(&self, change: &Change, _snapshot: &Snapshot) -> tenantry_core::target::Result<Applied> {
        Err(TargetError::unavailable(self.error.clone()).about(change.id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_core::kinds::kind;
    use tenantry_core::{Content, Owner, Resource, ResourceId};

    fn resource(id: &ResourceId, deps: &[ResourceId]) -> Resource {
        Resource {
            id: id.clone(),
            owner: Owner::from_label("alice"),
            content: Content::from_value(&json!({})),
            origin: Default::default(),
            rule: "test",
            deps: deps.into(),
            sensitive: false,
            template: None,
        }
    }

    fn create(target: &str, resource: &Resource) -> Change {
        Change {
            target: target.to_string(),
            id: resource.id.clone(),
            owner: resource.owner.clone(),
            action: Action::Create,
            before: None,
            after: Some(resource.content.clone()),
            reason: "test".into(),
            origin: Default::default(),
            rule: "test",
            deps: Arc::clone(&resource.deps),
            sensitive: false,
            rank: 0,
            platform: "test".into(),
        }
    }

    fn target(name: &'static str, domain: Domain) -> Arc<dyn Target> {
        Arc::new(Unconnected { name, domains: [domain], error: String::new() })
    }

    #[test]
    fn a_scoped_pass_takes_in_the_other_half_of_a_minted_secret() {
        let token = ResourceId::new(Domain::Forge, kind::ACCESS_TOKEN, "-", "alice");
        let credentials = ResourceId::new(Domain::Host, kind::CONTRIBUTE_ACCESS, "-", "alice");
        let namespace = ResourceId::global(Domain::Kubernetes, kind::NAMESPACE, "alice");
        let desired = Desired::new(
            vec![
                resource(&token, &[]),
                resource(&credentials, std::slice::from_ref(&token)),
                resource(&namespace, &[]),
            ],
            Default::default(),
        );
        let targets =
            [target("host", Domain::Host), target("kubernetes", Domain::Kubernetes), target("forge", Domain::Forge)];
        let held = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<String>>();
        let plan_of = |changes: Vec<Change>| tenantry_core::Plan { changes, ..Default::default() };

        // A retry of the forge alone mints a token: the host must write it in the same apply.
        let minting = plan_of(vec![create("forge", desired.get(&token).unwrap())]);
        assert_eq!(mint_partners(&desired, &minting, &targets, &held(&["host", "kubernetes"])), held(&["host"]));
        // A retry of the host alone writes the credentials: the forge mints the token anew.
        let consuming = plan_of(vec![create("host", desired.get(&credentials).unwrap())]);
        assert_eq!(mint_partners(&desired, &consuming, &targets, &held(&["forge", "kubernetes"])), held(&["forge"]));
        // Nothing held, or no pair written: the pass stays as asked.
        assert!(mint_partners(&desired, &minting, &targets, &held(&[])).is_empty());
        let cluster_only = plan_of(vec![create("kubernetes", desired.get(&namespace).unwrap())]);
        assert!(mint_partners(&desired, &cluster_only, &targets, &held(&["forge", "host"])).is_empty());
    }
}
