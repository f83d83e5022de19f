//! tenantry's own custom resources (`tenantry_model::crd`): reading the
//! `Tenant` and `Platform` objects of a `kubernetes://tenants` roster (one
//! list per kind, whatever the number of users), watching them for changes
//! a pass must act on, and writing each `Tenant`'s status with server-side
//! apply to the status subresource, a bounded number at a time.

use crate::map_error;
use futures::stream::{BoxStream, StreamExt};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tenantry_core::derive::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use tenantry_core::target::Result;
use tenantry_model::crd::{self, TenantStatus};

/// `tenants.tenantry.dev`.
pub fn tenant_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(crd::GROUP, crd::VERSION, "Tenant"), "tenants")
}

/// `platforms.tenantry.dev`.
pub fn platform_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(crd::GROUP, crd::VERSION, "Platform"), "platforms")
}

/// One `Tenant` as read.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub name: String,
    pub uid: String,
    /// `metadata.generation`: what a status's `observedGeneration` answers.
    pub generation: i64,
    pub spec: Value,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// tenantry's finalizer (`tenantry.dev/departure`) is on it.
    pub finalizer: bool,
    /// The status tenantry wrote last, if any.
    pub status: Option<TenantStatus>,
}

/// Every object of a `kubernetes://tenants` roster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RosterObjects {
    /// The `Platform` named `platform`'s spec, if it exists.
    pub platform: Option<Value>,
    /// Every `Tenant`, by name.
    pub tenants: Vec<TenantRecord>,
}

fn list_params(selector: Option<&str>) -> ListParams {
    match selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    }
}

/// Read the roster's objects (those with the labels of `selector`, if any):
/// one list of `Tenant`s and one of `Platform`s. More than one `Platform`
/// is an error: a roster has one `platform:` block.
pub async fn read_roster_objects(client: &kube::Client, selector: Option<&str>) -> Result<RosterObjects> {
    let tenants: Api<DynamicObject> = Api::all_with(client.clone(), &tenant_resource());
    let platforms: Api<DynamicObject> = Api::all_with(client.clone(), &platform_resource());
    let listed = tenants.list(&list_params(selector)).await.map_err(|e| map_error("list Tenants", e))?;
    let mut found = platforms.list(&list_params(selector)).await.map_err(|e| map_error("list Platforms", e))?.items;
    if found.len() > 1 {
        let names: Vec<String> = found.iter().filter_map(|p| p.metadata.name.clone()).collect();
        return Err(crate::unavailable(format!(
            "{} Platform objects ({}) make one roster; keep one, or label each roster's objects and select them with kubernetes://tenants?selector=…",
            found.len(),
            names.join(", ")
        )));
    }
    let platform = found.pop().map(|p| p.data.get("spec").cloned().unwrap_or_else(|| json!({})));
    let mut records: Vec<TenantRecord> = listed.items.into_iter().map(record).collect();
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(RosterObjects { platform, tenants: records })
}

fn record(object: DynamicObject) -> TenantRecord {
    TenantRecord {
        name: object.metadata.name.clone().unwrap_or_default(),
        uid: object.metadata.uid.clone().unwrap_or_default(),
        generation: object.metadata.generation.unwrap_or_default(),
        spec: object.data.get("spec").cloned().unwrap_or_else(|| json!({})),
        deleting: object.metadata.deletion_timestamp.is_some(),
        finalizer: object.metadata.finalizers.iter().flatten().any(|f| f == crd::FINALIZER),
        status: object.data.get("status").and_then(|s| serde_json::from_value(s.clone()).ok()),
    }
}

/// A stream that yields when a `Tenant` or the `Platform` changes in a way
/// a pass acts on: created, deleted, its `generation` (spec) changed or its
/// deletion began. Status writes (tenantry's own) do not wake it.
pub fn roster_object_changes(client: &kube::Client, selector: Option<&str>) -> BoxStream<'static, ()> {
    let config = match selector {
        Some(selector) => watcher::Config::default().labels(selector),
        None => watcher::Config::default(),
    };
    let watch = |resource: ApiResource| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let mut seen: BTreeMap<String, (i64, bool)> = BTreeMap::new();
        let mut listed_once = false;
        watcher::watcher(api, config.clone())
            .default_backoff()
            .filter_map(move |event| {
                let changed = match event {
                    Ok(Event::Apply(object) | Event::InitApply(object)) => {
                        let key = object.metadata.name.clone().unwrap_or_default();
                        let now = (
                            object.metadata.generation.unwrap_or_default(),
                            object.metadata.deletion_timestamp.is_some(),
                        );
                        let before = seen.insert(key, now);
                        listed_once && before != Some(now)
                    }
                    Ok(Event::Delete(object)) => {
                        seen.remove(&object.metadata.name.clone().unwrap_or_default());
                        true
                    }
                    Ok(Event::InitDone) => std::mem::replace(&mut listed_once, true),
                    Ok(Event::Init) | Err(_) => false,
                };
                futures::future::ready(changed.then_some(()))
            })
            .boxed()
    };
    futures::stream::select(watch(tenant_resource()), watch(platform_resource())).boxed()
}

/// What writing statuses cost: for `bench` and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusWrites {
    /// Statuses written (one PATCH each).
    pub written: usize,
    /// Statuses left alone because they were already as wanted.
    pub unchanged: usize,
    /// Failures by tenant name.
    pub failed: BTreeMap<String, String>,
}

/// Write each `(tenant, status)` whose status differs from what the object
/// holds (`current`), with server-side apply on the status subresource,
/// `concurrency` at a time.
pub async fn write_statuses(
    client: &kube::Client,
    statuses: Vec<(String, TenantStatus)>,
    current: &BTreeMap<String, Option<TenantStatus>>,
    concurrency: usize,
) -> StatusWrites {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &tenant_resource());
    let mut outcome = StatusWrites::default();
    let mut pending = Vec::new();
    for (name, status) in statuses {
        if current.get(&name).and_then(Option::as_ref) == Some(&status) {
            outcome.unchanged += 1;
        } else {
            pending.push((name, status));
        }
    }
    let params = PatchParams::apply(crd::FIELD_MANAGER).force();
    let writes = futures::stream::iter(pending)
        .map(|(name, status)| {
            let api = api.clone();
            let params = params.clone();
            async move {
                let patch = json!({
                    "apiVersion": crd::API_VERSION,
                    "kind": "Tenant",
                    "metadata": { "name": name },
                    "status": status,
                });
                let result = api.patch_status(&name, &params, &Patch::Apply(&patch)).await;
                (name, result.map(|_| ()).map_err(|e| map_error("write Tenant status", e).to_string()))
            }
        })
        .buffer_unordered(concurrency.max(1));
    let results: Vec<(String, std::result::Result<(), String>)> = writes.collect().await;
    for (name, result) in results {
        match result {
            Ok(()) => outcome.written += 1,
            Err(error) => {
                outcome.failed.insert(name, error);
            }
        }
    }
    outcome
}

/// Put tenantry's finalizer on (`hold`) or take it off each named `Tenant`,
/// `concurrency` at a time (server-side apply of `metadata.finalizers` under
/// a field manager of its own, so taking it off removes only tenantry's).
/// Failures by tenant name.
pub async fn set_finalizers(
    client: &kube::Client,
    names: Vec<String>,
    hold: bool,
    concurrency: usize,
) -> BTreeMap<String, String> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &tenant_resource());
    let params = PatchParams::apply(&format!("{}-finalizer", crd::FIELD_MANAGER)).force();
    let finalizers: Vec<&str> = if hold { vec![crd::FINALIZER] } else { Vec::new() };
    let writes = futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            let params = params.clone();
            let finalizers = finalizers.clone();
            async move {
                let patch = json!({
                    "apiVersion": crd::API_VERSION,
                    "kind": "Tenant",
                    "metadata": { "name": name, "finalizers": finalizers },
                });
                let result = api.patch(&name, &params, &Patch::Apply(&patch)).await;
                (name, result.map(|_| ()).map_err(|e| map_error("set the Tenant's finalizer", e).to_string()))
            }
        })
        .buffer_unordered(concurrency.max(1));
    let results: Vec<(String, std::result::Result<(), String>)> = writes.collect().await;
    results.into_iter().filter_map(|(name, result)| result.err().map(|error| (name, error))).collect()
}

/// Record a Kubernetes Event about a `Tenant` (in `default`, where `kubectl
/// describe` looks for a cluster-scoped object's events).
pub async fn record_event(
    client: &kube::Client,
    tenant: &TenantRecord,
    warning: bool,
    reason: &str,
    message: &str,
) -> Result<()> {
    use k8s_openapi::api::core::v1::Event;
    let now =
        k8s_openapi::jiff::Timestamp::now().round(k8s_openapi::jiff::Unit::Second).unwrap_or_default().to_string();
    let event: Event = serde_json::from_value(json!({
        "metadata": {
            "generateName": format!("{}.", tenant.name),
            "namespace": "default",
            "labels": { MANAGED_BY_LABEL: MANAGED_BY_VALUE },
        },
        "involvedObject": {
            "apiVersion": crd::API_VERSION,
            "kind": "Tenant",
            "name": tenant.name,
            "uid": tenant.uid,
        },
        "reason": reason,
        "message": message.chars().take(1024).collect::<String>(),
        "type": if warning { "Warning" } else { "Normal" },
        "source": { "component": "tenantry" },
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }))
    .map_err(|e| crate::unavailable(format!("cannot build an Event: {e}")))?;
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &event).await.map_err(|e| map_error("record Event", e))?;
    Ok(())
}
