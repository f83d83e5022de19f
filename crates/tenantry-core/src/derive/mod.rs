//! Roster → desired state: the whole resource catalog of SPEC §3.
//!
//! Every name the catalog produces is computed here and nowhere else, so
//! `why`, `explain`, render and every target agree. One submodule per domain.

pub mod apps;
mod ci;
mod dns;
mod forge;
mod host;
pub mod idp;
pub mod isolation;
mod kubernetes;
mod order;
mod portal;
pub mod session_units;
mod vault;

use crate::content::Content;
use crate::id::ResourceId;
use crate::resource::{DeriveFailure, Desired, Owner, Resource};
use serde_json::Value;
use std::collections::BTreeMap;
use tenantry_model::{Roster, Span};

pub use forge::{CONTRIBUTE_TOKEN_SCOPES, DEFAULT_TRACKED_BRANCH, contribute_token_name};
pub use host::{allocate_ports, dispatch_pool};
pub use kubernetes::{COPIED_FROM, TLS_DOMAINS};
pub use vault::{POLICY_HEADER, policy_header, policy_mark};

/// Label every managed object carries.
pub const MANAGED_BY_LABEL: &str = crate::marks::LABELS.managed_by;
pub const MANAGED_BY_VALUE: &str = crate::marks::MANAGED_BY_VALUE;
/// Label naming the user an object exists for (absent on shared objects).
pub const USER_LABEL: &str = crate::marks::LABELS.user;
/// Label marking an object shared by the whole platform.
pub const SHARED_LABEL: &str = "tenantry.dev/shared";
/// Label naming the platform (the roster's `platform.name`) that applied an object.
pub const PLATFORM_LABEL: &str = crate::marks::LABELS.platform;

/// Settings from tenantry.toml that change what is derived (not where it goes).
#[derive(Debug, Clone)]
pub struct Settings {
    pub vault_kv_mount: String,
    pub vault_kubernetes_mount: String,
    pub vault_oidc_mount: String,
    /// Zones the DNS target manages, besides `platform.domain`.
    pub dns_zones: Vec<String>,
    /// Whether the DNS provider can proxy records (Cloudflare). Where it
    /// cannot (RFC 2136, PowerDNS) records are derived unproxied — SPEC §3
    /// "proxied where supported" — so they do not look like drift forever.
    pub dns_proxy_supported: bool,
    /// Whether the `[idp]` target disables an account at the reversible cut
    /// (`disable_on_cut`); carried in each account's content.
    pub idp_disable_on_cut: bool,
    /// `[forge] url` when a forge target applies. With `host_applies`,
    /// workstation users get contribute access: a token minted on the
    /// forge, written into their `~/.git-credentials`.
    pub forge_url: Option<String>,
    /// Whether a host target applies (not only renders) the workstation.
    pub host_applies: bool,
    /// `[host] tenantry_command`: what the session units run (argv; `None`:
    /// [`session_units::DEFAULT_TENANTRY_COMMAND`]).
    pub host_tenantry_command: Option<Vec<String>>,
    /// `[host] git_crypt_key_file` is set: the admin tier's main checkout is unlocked.
    pub host_git_crypt_unlock: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            vault_kv_mount: "secret".to_string(),
            vault_kubernetes_mount: "kubernetes".to_string(),
            vault_oidc_mount: "oidc".to_string(),
            dns_zones: Vec::new(),
            dns_proxy_supported: true,
            idp_disable_on_cut: false,
            forge_url: None,
            host_applies: false,
            host_tenantry_command: None,
            host_git_crypt_unlock: false,
        }
    }
}

/// What derivation needs from the state: facts, passed in as data.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Ports already reserved, by user and pool. Reservations of departed
    /// users are included: a port is never reused while its user exists.
    pub ports: BTreeMap<String, BTreeMap<String, u16>>,
    /// Departed users not yet cut: their routing entries stay until `--offboard`.
    pub retained_routes: BTreeMap<String, RetainedRoute>,
    /// Namespaces removed from a present user's list whose removal is withheld
    /// (no `--allow-revoke`): grants that span namespaces keep covering them.
    pub withheld_namespaces: BTreeMap<String, Vec<String>>,
    /// The cluster's Kubernetes version (`v1.37.2`), from the Kubernetes
    /// target's facts hook: Pod Security labels are pinned to its minor
    /// version. Unknown when no cluster is configured (`latest`).
    pub cluster_version: Option<String>,
}

/// A departed user's place in the host routing files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetainedRoute {
    pub idp_user: String,
    pub os_user: String,
    pub admin: bool,
}

/// Derive everything the roster asks for. Pure and deterministic: the same
/// roster, settings and facts always give the same resources in the same order.
pub fn derive(roster: &Roster, settings: &Settings, facts: &Facts) -> Desired {
    // The domains are independent, and Kubernetes (most of the resources)
    // splits by user: two threads, each half of Kubernetes plus other domains.
    let (first, second, ports) = std::thread::scope(|scope| {
        let second = scope.spawn(|| {
            let mut out = Out::default();
            kubernetes::derive(roster, facts, 1, 2, &mut out);
            vault::derive(roster, settings, facts, &mut out);
            out
        });
        let mut out = Out::default();
        kubernetes::derive(roster, facts, 0, 2, &mut out);
        dns::derive(roster, settings, &mut out);
        ci::derive(roster, &mut out);
        forge::derive(roster, settings, &mut out);
        idp::derive(roster, settings, &mut out);
        let ports = host::derive(roster, settings, facts, &mut out);
        session_units::derive(roster, settings, &mut out);
        portal::derive(roster, &mut out);
        apps::derive(roster, &mut out);
        let second = second.join().unwrap_or_else(|_| {
            // A panic in derivation is a bug; derive again here to surface it.
            let mut out = Out::default();
            kubernetes::derive(roster, facts, 1, 2, &mut out);
            vault::derive(roster, settings, facts, &mut out);
            out
        });
        (out, second, ports)
    });
    let (mut first, second) = (first, second);
    let mut failures = std::mem::take(&mut first.failures);
    let apps = std::mem::take(&mut first.apps);
    if !apps.is_empty() {
        let taken: std::collections::HashSet<&ResourceId> =
            first.resources.iter().chain(&second.resources).map(|r| &r.id).collect();
        let kept = apps::resolve_collisions(apps, &|id| taken.contains(id), &mut failures, roster);
        drop(taken);
        for (item, content) in kept {
            first.push(item, &content);
        }
    }
    let mut desired = Desired::from_parts(first.resources, second.resources, ports);
    desired.budgets = dns::budgets(roster);
    failures.sort_by(|a, b| (&a.owner, a.origin, &a.app).cmp(&(&b.owner, b.origin, &b.app)));
    desired.failures = failures;
    desired
}

/// Collects resources while deriving.
#[derive(Default)]
pub(crate) struct Out {
    resources: Vec<Resource>,
    /// The dependencies of the resource pushed last: a namespace's objects
    /// all wait for the namespace (and many resources for nothing), so
    /// neighbours share one allocation instead of one each.
    last_deps: Option<std::sync::Arc<[ResourceId]>>,
    /// App instances' objects, checked against the rest before they join `resources`.
    apps: Vec<(Item, Value)>,
    failures: Vec<DeriveFailure>,
}

/// A resource under construction.
pub(crate) struct Item {
    pub id: ResourceId,
    pub owner: Owner,
    pub origin: Span,
    pub rule: &'static str,
    pub deps: Vec<ResourceId>,
    pub sensitive: bool,
    pub template: Option<std::sync::Arc<str>>,
}

impl Out {
    pub(crate) fn push(&mut self, item: Item, content: &Value) {
        let deps = self.shared_deps(item.deps);
        self.resources.push(Resource {
            id: item.id,
            owner: item.owner,
            content: Content::from_value(content),
            origin: item.origin,
            rule: item.rule,
            deps,
            sensitive: item.sensitive,
            template: item.template,
        });
    }
}

impl Out {
    /// `deps` as an `Arc`, the previous resource's when they are the same.
    fn shared_deps(&mut self, deps: Vec<ResourceId>) -> std::sync::Arc<[ResourceId]> {
        match &self.last_deps {
            Some(last) if **last == *deps => std::sync::Arc::clone(last),
            _ => {
                let shared: std::sync::Arc<[ResourceId]> = deps.into();
                self.last_deps = Some(std::sync::Arc::clone(&shared));
                shared
            }
        }
    }

    /// A resource whose canonical content was written directly (`Content::object`).
    pub(crate) fn push_content(&mut self, item: Item, content: Content) {
        let deps = self.shared_deps(item.deps);
        self.resources.push(Resource {
            id: item.id,
            owner: item.owner,
            content,
            origin: item.origin,
            rule: item.rule,
            deps,
            sensitive: item.sensitive,
            template: item.template,
        });
    }
}

impl Item {
    pub(crate) fn new(id: ResourceId, owner: &Owner, origin: Span, rule: &'static str) -> Item {
        Item { id, owner: owner.clone(), origin, rule, deps: Vec::new(), sensitive: false, template: None }
    }

    pub(crate) fn rendered_at(mut self, at: std::sync::Arc<str>) -> Item {
        self.template = Some(at);
        self
    }

    pub(crate) fn after(mut self, dep: ResourceId) -> Item {
        self.deps.push(dep);
        self
    }

    pub(crate) fn sensitive(mut self) -> Item {
        self.sensitive = true;
        self
    }
}

/// tenantry's labels for an owner on a platform.
pub(crate) fn labels(owner: &Owner, platform: &str) -> Value {
    Value::Object(crate::marks::LABELS.write(owner, platform))
}

/// The owner an object's labels name, if it carries tenantry's marks.
pub fn owner_from_labels(labels: &serde_json::Map<String, Value>) -> Option<Owner> {
    if labels.get(MANAGED_BY_LABEL).and_then(Value::as_str) != Some(MANAGED_BY_VALUE) {
        return None;
    }
    match labels.get(USER_LABEL).and_then(Value::as_str) {
        Some(user) => Some(Owner::User(user.to_string())),
        None => Some(Owner::Platform),
    }
}
