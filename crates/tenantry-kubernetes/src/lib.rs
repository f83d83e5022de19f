//! The `kubernetes` target: applies the cluster side of the catalog.
//!
//! Observes with label-selected, paged lists per kind (this platform's
//! objects and unmarked-platform ones of earlier versions; cluster-scoped
//! kinds unfiltered, so unlabelled namespaces can be adopted), projects each object onto
//! the fields tenantry owns (its server-side-apply managed fields), and
//! applies with server-side apply under the field manager `tenantry`.
//!
//! A TLS Secret copy (`copyFrom` in the desired content) is checked by
//! `tenantry-tls` before its source's data is copied (see `tls.rs`); a kind
//! the cluster does not serve (the cert-manager `Certificate` without its
//! CRD) is a plan problem and a per-change rejection, not an outage of the
//! whole target.

mod destroy;
mod diagnose;
mod extract;
mod kinds;
mod observe;
mod plugin;
pub mod tenants;
mod tls;
pub mod watch;

pub use diagnose::CHECKS;
pub use extract::project_owned_fields;
pub use kinds::{KINDS, KindInfo};
pub use plugin::{PLUGIN, load_config};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind, ObjectList};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tenantry_core::derive::{MANAGED_BY_LABEL, MANAGED_BY_VALUE, PLATFORM_LABEL};
use tenantry_core::target::Result;
use tenantry_core::{
    Action, Applied, Change, Domain, ErrorKind, Facts, Note, ObserveRequest, Observed, ResourceId, Snapshot, Target,
    TargetError,
};

/// The field manager of every server-side apply tenantry makes.
pub const FIELD_MANAGER: &str = "tenantry";
const NAME: &str = "kubernetes";

/// Settings of `[kubernetes]` in tenantry.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Path of the kubeconfig; default `$KUBECONFIG` or `~/.kube/config`, or in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig; default its current context.
    pub context: Option<String>,
    /// How long connecting to the API server may take (`10s` by default).
    pub connect_timeout: Option<String>,
    /// How long one request (a list, a get, an apply) may wait for the API
    /// server's answer (`30s` by default). A stalled server then fails the
    /// run's cluster changes in bounded time instead of kube's five minutes.
    /// Watches (`serve`) are long polls and use their own, longer bound.
    pub request_timeout: Option<String>,
}

/// Defaults of `connect_timeout` and `request_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A watch's long poll lasts up to 290 s (kube-runtime's server-side
/// timeout): its read bound must exceed that.
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(300);

impl KubernetesConfig {
    /// The connect and request timeouts, or what is wrong with them.
    pub fn timeouts(&self) -> std::result::Result<(Duration, Duration), String> {
        let parse = |value: &Option<String>, key: &str, default: Duration| match value {
            None => Ok(default),
            Some(text) => match humantime::parse_duration(text) {
                Ok(duration) if !duration.is_zero() => Ok(duration),
                _ => Err(format!("`{key} = \"{text}\"` is not a duration; write e.g. `{key} = \"30s\"`")),
            },
        };
        Ok((
            parse(&self.connect_timeout, "connect_timeout", DEFAULT_CONNECT_TIMEOUT)?,
            parse(&self.request_timeout, "request_timeout", DEFAULT_REQUEST_TIMEOUT)?,
        ))
    }
}

#[derive(Clone)]
pub struct KubernetesTarget {
    client: kube::Client,
    /// Objects per list request ([`LIST_PAGE`]; smaller in tests, to prove paging).
    list_page: u32,
}

/// The snapshot observe hands to apply: TLS sources it read and parsed, by
/// `namespace/name`, so apply copies exactly what the plan checked, with one
/// read per source rather than one per copy.
#[derive(Debug, Default)]
struct TlsSources(HashMap<String, Arc<SourceRead>>);

/// A TLS source's `data` as served, and what checking it found.
type SourceRead = (Value, observe::SourceCheck);

impl std::fmt::Debug for KubernetesTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesTarget").finish_non_exhaustive()
    }
}

fn unavailable(message: impl std::fmt::Display) -> TargetError {
    TargetError::unavailable(message.to_string())
}

/// A client for the kubeconfig and context of `config`, or `$KUBECONFIG`,
/// `~/.kube/config`, or the in-cluster service account, with the config's
/// connect and request timeouts. Building it reads credentials but sends
/// nothing.
pub async fn client(config: &KubernetesConfig) -> Result<kube::Client> {
    let (connect, request) = config.timeouts().map_err(unavailable)?;
    client_with(config, connect, request).await
}

/// A client for watches and other long polls (`serve`'s drift and roster
/// watches, its Lease): the connect timeout of `config`, a read bound
/// longer than a watch's long poll.
pub async fn watch_client(config: &KubernetesConfig) -> Result<kube::Client> {
    let (connect, _) = config.timeouts().map_err(unavailable)?;
    client_with(config, connect, WATCH_READ_TIMEOUT).await
}

async fn client_with(config: &KubernetesConfig, connect: Duration, read: Duration) -> Result<kube::Client> {
    let options = kube::config::KubeConfigOptions { context: config.context.clone(), ..Default::default() };
    let usable = |e: kube::config::KubeconfigError| unavailable(format!("no usable kubeconfig: {e}"));
    let mut client_config = match &config.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| unavailable(format!("cannot read kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(usable)?
        }
        None if config.context.is_some() => kube::Config::from_kubeconfig(&options).await.map_err(usable)?,
        None => {
            kube::Config::infer().await.map_err(|e| unavailable(format!("no kubeconfig and not in a cluster: {e}")))?
        }
    };
    client_config.connect_timeout = Some(connect);
    client_config.read_timeout = Some(read);
    client_config.write_timeout = Some(read);
    // kube's own retry of 429/503/504 waits up to 1,000 s between 15 tries
    // and knows nothing of the timeouts above: an apiserver answering 503
    // held every change for minutes. The engine retries a change with a
    // capped backoff and stops trying a peer found down (issue 20).
    client_config.default_retry = false;
    kube::Client::try_from(client_config).map_err(unavailable)
}

/// A kube client error in words: its chain of causes (a timeout says so),
/// not only the outermost "client error (SendRequest)".
pub(crate) fn describe_kube_error(error: &kube::Error) -> String {
    tenantry_core::target::error_chain(error)
}

/// What listing one kind found.
/// Objects per list request (kubectl asks for 500). Observe's lists are
/// paged so their memory stays bounded however many users there are.
pub const LIST_PAGE: u32 = 1000;

pub(crate) enum Listing<T> {
    Items(Vec<T>),
    /// The server does not serve the kind (a CRD that is not installed).
    NotServed,
    /// tenantry's credentials may not list it (the shipped RBAC without the
    /// TLS-copies component cannot list Secrets).
    Forbidden(String),
}

impl KubernetesTarget {
    /// Connect using the kubeconfig and context of the config, or in-cluster.
    pub async fn connect(config: &KubernetesConfig) -> Result<KubernetesTarget> {
        Ok(KubernetesTarget::from_client(client(config).await?))
    }

    pub fn from_client(client: kube::Client) -> KubernetesTarget {
        KubernetesTarget { client, list_page: LIST_PAGE }
    }

    /// Ask for at most `objects` per list request (at least 1).
    pub fn with_list_page(mut self, objects: u32) -> KubernetesTarget {
        self.list_page = objects.max(1);
        self
    }

    fn api(&self, info: &KindInfo, namespace: Option<&str>) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(info.group, info.version, info.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, info.plural);
        match namespace {
            Some(ns) if info.namespaced => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Every object of a kind that observe must see: for namespaced kinds
    /// this platform's objects and those an earlier version wrote without a
    /// platform mark (two label-selected lists, so other rosters' objects
    /// on a shared cluster cost nothing), for cluster-scoped kinds every
    /// object, so a same-named object tenantry did not write is seen without
    /// a request per object (within namespaces, `observe` looks those up by
    /// name).
    ///
    /// Lists are read a page ([`LIST_PAGE`] objects) at a time, as plain JSON (no
    /// typed object to convert back): `keep` turns each object into what
    /// observe needs, or drops it, while the next page is already being
    /// fetched — so observing 50,000 objects never holds them all at once.
    async fn list_kind<T>(
        &self,
        info: &'static KindInfo,
        platform: &str,
        mut keep: impl FnMut(Value) -> Option<T>,
    ) -> Result<Listing<T>> {
        let url = self.api(info, None).resource_url().to_string();
        let marked = format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}");
        let selectors = if info.namespaced {
            vec![Some(format!("{marked},{PLATFORM_LABEL}={platform}")), Some(format!("{marked},!{PLATFORM_LABEL}"))]
        } else {
            vec![None]
        };
        let mut kept = Vec::new();
        for selector in selectors {
            let params = match &selector {
                Some(selector) => ListParams::default().labels(selector),
                None => ListParams::default(),
            };
            match self.list_pages(&url, params.limit(self.list_page), &mut keep, &mut kept).await {
                Ok(()) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => return Ok(Listing::NotServed),
                Err(kube::Error::Api(status)) if status.code == 403 => return Ok(Listing::Forbidden(status.message)),
                Err(error) => return Err(map_error(&format!("list {}", info.plural), error)),
            }
        }
        Ok(Listing::Items(kept))
    }

    /// Every page of one list, each handed to `keep` while the next is fetched.
    async fn list_pages<T>(
        &self,
        url: &str,
        mut params: ListParams,
        keep: &mut impl FnMut(Value) -> Option<T>,
        kept: &mut Vec<T>,
    ) -> kube::Result<()> {
        let mut page = self.list_page(url, &params).await?;
        loop {
            let next = page.metadata.continue_.filter(|token| !token.is_empty());
            let items = page.items;
            let Some(token) = next else {
                kept.extend(items.into_iter().filter_map(&mut *keep));
                return Ok(());
            };
            params = params.continue_token(&token);
            // Polled first, the next request is on its way before this page is processed.
            let (next_page, ()) = futures::join!(self.list_page(url, &params), async {
                kept.extend(items.into_iter().filter_map(&mut *keep));
            });
            page = next_page?;
        }
    }

    /// A Secret as apply sends it: a TLS copy (`copyFrom`) gets its
    /// source's data once the source passes the checks a client would make;
    /// any other Secret is sent as planned. The only content apply changes.
    async fn secret_body(
        &self,
        change: &Change,
        after: &tenantry_core::Content,
        snapshot: &Snapshot,
    ) -> Result<Vec<u8>> {
        let mut manifest = after.to_value();
        let domains = tls::domains(&manifest["metadata"]["annotations"]);
        if let Some(object) = manifest.as_object_mut()
            && let Some(source) = object.remove("copyFrom")
        {
            let reference =
                format!("{}/{}", source["namespace"].as_str().unwrap_or("?"), source["name"].as_str().unwrap_or("?"));
            // What observe read and checked; read now only when this
            // change comes without its plan's snapshot.
            let planned = snapshot.get::<TlsSources>().and_then(|s| s.0.get(&reference)).cloned();
            let read = match planned {
                Some(read) => read,
                None => {
                    let data = self.source_data(&source).await?;
                    let parsed = tls::parse(&data);
                    Arc::new((data, parsed))
                }
            };
            let (data, parsed) = &*read;
            // SPEC §8.4: never copy what a client would refuse (git-crypt
            // ciphertext above all); the existing copy stays as it was.
            match tls::check(parsed, &domains, std::time::SystemTime::now()) {
                Ok(report) => {
                    for warning in &report.warnings {
                        tracing::warn!(copy = %change.id, source = %reference, "{warning}");
                    }
                }
                Err(error) => {
                    return Err(TargetError::rejected(
                        change.id.to_string(),
                        format!("TLS source `{reference}` not copied: {error}; {}", tls::help(&error)),
                    ));
                }
            }
            object.insert("data".to_string(), data.clone());
        }
        serde_json::to_vec(&manifest).map_err(|e| TargetError::other(format!("{}: {e}", change.id)))
    }

    /// Server-side apply of `body` (JSON). The answer — the whole object,
    /// managed fields and all — is not parsed: nothing in it is needed, and
    /// on a small host that CPU is the apiserver's. Errors are the server's
    /// status, as from `Api::patch`.
    async fn server_side_apply(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        params: &PatchParams,
        body: Vec<u8>,
    ) -> kube::Result<()> {
        let mut request = kube::core::Request::new(api.resource_url())
            .patch(name, params, &Patch::Apply(()))
            .map_err(kube::Error::BuildRequest)?;
        *request.body_mut() = body;
        self.client.request_text(request).await.map(drop)
    }

    async fn list_page(&self, url: &str, params: &ListParams) -> kube::Result<ObjectList<Value>> {
        let request = kube::core::Request::new(url).list(params).map_err(kube::Error::BuildRequest)?;
        self.client.request::<ObjectList<Value>>(request).await
    }

    /// The Secret a `copyFrom` points at, as `data` to copy (base64 values, as served).
    async fn source_data(&self, source: &Value) -> Result<Value> {
        let (Some(namespace), Some(name)) = (source["namespace"].as_str(), source["name"].as_str()) else {
            return Err(TargetError::other("copyFrom needs namespace and name".to_string()));
        };
        let info = kinds::info("Secret").ok_or_else(|| unavailable("Secret kind missing"))?;
        let secret = self
            .api(info, Some(namespace))
            .get(name)
            .await
            .map_err(|e| map_error(&format!("read TLS source {namespace}/{name}"), e))?;
        Ok(secret.data.get("data").cloned().unwrap_or(Value::Null))
    }
}

/// Whether a 404 means the kind itself is not served (a CRD that is not
/// installed answers "404 page not found" without details), not that one
/// object or its namespace is missing (those 404s name their kind).
pub(crate) fn is_not_served(status: &kube::core::Status) -> bool {
    status.code == 404 && status.details.as_ref().is_none_or(|d| d.kind.is_empty())
}

/// What to say when the cluster does not serve a kind tenantry wants to apply.
fn not_served(info: &KindInfo) -> String {
    let fix = if info.group == "cert-manager.io" {
        "install cert-manager (its CRDs) in the cluster, or unset `platform.tls.issuer` in the roster"
    } else {
        "install the CRD that serves it"
    };
    format!("the cluster does not serve `{}` {} (kind {}): {fix}", info.api_version(), info.plural, info.kind)
}

pub(crate) fn map_error(context: &str, error: kube::Error) -> TargetError {
    match error {
        kube::Error::Api(status) => {
            let kind = match status.code {
                403 | 401 => ErrorKind::Forbidden,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                429 | 500..=599 => ErrorKind::Unavailable,
                _ => ErrorKind::Invalid,
            };
            let message = format!("{} ({}, HTTP {})", status.message, status.reason, status.code);
            TargetError::rejected(context.to_string(), message)
                .with_kind(kind)
                .retryable(matches!(kind, ErrorKind::Unavailable | ErrorKind::Conflict))
        }
        other => unavailable(format!("{context}: {}", describe_kube_error(&other))),
    }
}

fn id_of(info: &KindInfo, object: &Value) -> Option<ResourceId> {
    let name = object["metadata"]["name"].as_str()?;
    let scope = if info.namespaced { object["metadata"]["namespace"].as_str()? } else { "-" };
    Some(ResourceId::new(Domain::Kubernetes, info.kind, scope, name))
}

#[async_trait::async_trait]
impl Target for KubernetesTarget {
    fn name(&self) -> &str {
        NAME
    }

    fn domains(&self) -> &[Domain] {
        &[Domain::Kubernetes]
    }

    /// The cluster's version, to which tenant namespaces' Pod Security
    /// labels are pinned (one request).
    async fn reconcile_facts(&self, _roster: &tenantry_model::Roster, facts: &mut Facts) -> Result<Vec<Note>> {
        let version = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| unavailable(format!("reading the API server's version: {}", describe_kube_error(&e))))?;
        facts.cluster_version = Some(version.git_version);
        Ok(Vec::new())
    }

    async fn observe(&self, request: &ObserveRequest) -> Result<Observed> {
        observe::observe(self, request).await
    }

    async fn diagnose(
        &self,
        request: &tenantry_core::doctor::DiagnoseRequest,
    ) -> Result<tenantry_core::doctor::Diagnosis> {
        diagnose::diagnose(self, request).await
    }

    /// Each departed user's namespace is backed up (every listable object in
    /// it) before it is deleted; other leftovers are deleted one by one.
    async fn destroy(
        &self,
        user: &str,
        resources: &[ResourceId],
        backups: &dyn tenantry_core::Backups,
    ) -> Result<tenantry_core::Destroyed> {
        destroy::destroy(&self.client, user, resources, backups).await
    }

    async fn apply(&self, change: &Change, snapshot: &Snapshot) -> Result<Applied> {
        let info = kinds::info(&change.id.kind)
            .ok_or_else(|| TargetError::other(format!("unknown kind {}", change.id.kind)))?;
        let namespace = (!change.id.is_global()).then_some(&*change.id.scope);
        let api = self.api(info, namespace);
        let name = &*change.id.name;
        match change.action {
            Action::Create | Action::Update | Action::Adopt | Action::Cut => {
                let Some(after) = &change.after else {
                    return Err(TargetError::other(format!("{} has no content", change.id)));
                };
                let body = if info.kind == tenantry_core::kind::SECRET {
                    self.secret_body(change, after, snapshot).await?
                } else {
                    // Sent as the canonical JSON the plan showed, as it is.
                    after.as_str().as_bytes().to_vec()
                };
                let params = PatchParams::apply(FIELD_MANAGER).force();
                self.server_side_apply(&api, name, &params, body).await.map(|()| Applied::done()).map_err(|e| match e {
                    kube::Error::Api(status) if crate::is_not_served(&status) => {
                        TargetError::rejected(change.id.to_string(), not_served(info))
                    }
                    other => map_error(&change.id.to_string(), other),
                })
            }
            Action::Delete => match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => Ok(Applied::done()),
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(Applied::done()),
                Err(error) => Err(map_error(&change.id.to_string(), error)),
            },
            Action::Withheld | Action::Departing | Action::Kept | Action::Conflict | Action::NoOp => {
                Ok(Applied::done())
            }
        }
    }
}
