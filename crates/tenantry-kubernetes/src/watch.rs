//! Drift, as the cluster reports it: one watch per managed kind on
//! tenantry's label (metadata only), so `serve` repairs a deleted binding or
//! an edited quota within seconds instead of waiting for its safety net.
//!
//! A watch event is drift only when someone else touched the object:
//! deletions always, and changes whose newest write (outside status
//! subresources) is not tenantry's own server-side apply — so tenantry's
//! applies and the quota controller's status updates never start a pass.
//! A watch that had to list again (it missed events while disconnected)
//! reports a resync, since deletions during the gap are not replayed.

use crate::kinds::{KINDS, KindInfo};
use crate::{FIELD_MANAGER, unavailable};
use futures::stream::{BoxStream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind, ObjectMeta, PartialObjectMeta};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tenantry_core::derive::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use tenantry_core::marks::LABELS;
use tenantry_core::target::Result;

/// Something changed in the cluster that tenantry may need to repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// An object of `kind` was deleted or changed by another writer;
    /// `platform` is its platform mark (`None`: unmarked, an earlier
    /// version's object), so a controller ignores other platforms' drift.
    Object { kind: &'static str, namespace: Option<String>, name: String, deleted: bool, platform: Option<String> },
    /// The watch of `kind` started over; events may have been missed.
    Resync { kind: &'static str },
}

/// One merged stream of drift for every kind tenantry manages that the
/// cluster serves (asked once, by API discovery). Watches reconnect by
/// themselves with kube-runtime's default backoff; a kind tenantry may not
/// list (403) is logged once and no longer watched — the safety net still
/// covers it — so a refused watch costs no requests while idle.
pub async fn drift(client: &kube::Client) -> BoxStream<'static, Drift> {
    let mut served: Vec<&'static KindInfo> = Vec::new();
    let mut versions: std::collections::HashMap<String, Option<Vec<String>>> = std::collections::HashMap::new();
    for info in KINDS {
        let api_version = info.api_version();
        if !versions.contains_key(&api_version) {
            let resources = if info.group.is_empty() {
                client.list_core_api_resources(info.version).await
            } else {
                client.list_api_group_resources(&api_version).await
            };
            let plurals = match resources {
                Ok(list) => Some(list.resources.into_iter().map(|r| r.name).collect()),
                // The group is not served at all (cert-manager not installed).
                Err(kube::Error::Api(status)) if status.code == 404 => Some(Vec::new()),
                // Unknown (the server is unreachable now): watch it anyway.
                Err(_) => None,
            };
            versions.insert(api_version.clone(), plurals);
        }
        match versions.get(&api_version) {
            Some(Some(plurals)) if !plurals.iter().any(|p| p == info.plural) => {
                tracing::debug!(kind = info.kind, "not served by the cluster: not watched");
            }
            _ => served.push(info),
        }
    }
    let streams = served.into_iter().map(|info| watch_kind(client.clone(), info));
    futures::stream::select_all(streams).boxed()
}

/// Whether a watch error says tenantry may not list or watch the kind.
fn refused(error: &watcher::Error) -> bool {
    let code = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code,
        watcher::Error::WatchError(status) => status.code,
        _ => 0,
    };
    code == 403
}

fn watch_kind(client: kube::Client, info: &'static KindInfo) -> BoxStream<'static, Drift> {
    let gvk = GroupVersionKind::gvk(info.group, info.version, info.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, info.plural);
    // Metadata only: the managed fields are all a drift check needs.
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &resource);
    let config = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"));
    let mut listed_once = false;
    watcher::watcher(api, config)
        .default_backoff()
        .take_while(move |event| {
            let go_on = !matches!(event, Err(error) if refused(error));
            if !go_on {
                tracing::warn!(
                    kind = info.kind,
                    "tenantry may not watch {}: its drift is found by the safety net only",
                    info.plural
                );
            }
            futures::future::ready(go_on)
        })
        .filter_map(move |event| {
            let drift = match event {
                Ok(Event::Apply(object)) => {
                    foreign_write(&object.metadata).then(|| object_drift(info, &object.metadata, false))
                }
                Ok(Event::Delete(object)) => Some(object_drift(info, &object.metadata, true)),
                Ok(Event::InitDone) => {
                    let again = listed_once;
                    listed_once = true;
                    again.then_some(Drift::Resync { kind: info.kind })
                }
                Ok(Event::Init | Event::InitApply(_)) => None,
                Err(error) => {
                    tracing::debug!(kind = info.kind, %error, "watch interrupted; it reconnects with backoff");
                    None
                }
            };
            futures::future::ready(drift)
        })
        .boxed()
}

fn object_drift(info: &'static KindInfo, meta: &ObjectMeta, deleted: bool) -> Drift {
    Drift::Object {
        kind: info.kind,
        namespace: meta.namespace.clone(),
        name: meta.name.clone().unwrap_or_default(),
        deleted,
        platform: meta.labels.as_ref().and_then(|labels| labels.get(LABELS.platform)).cloned(),
    }
}

/// Whether the newest write to the object (status subresources aside) came
/// from someone other than tenantry's server-side apply.
pub fn foreign_write(meta: &ObjectMeta) -> bool {
    let entries = meta.managed_fields.as_deref().unwrap_or_default();
    let newest =
        entries.iter().filter(|entry| entry.subresource.as_deref().is_none_or(str::is_empty)).max_by(|a, b| {
            let ours = |e: &&k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry| {
                e.manager.as_deref() == Some(FIELD_MANAGER)
            };
            // At equal times another writer wins: an edit in the same second as an apply is drift.
            (a.time.as_ref().map(|t| t.0), !ours(a)).cmp(&(b.time.as_ref().map(|t| t.0), !ours(b)))
        });
    match newest {
        Some(entry) => {
            !(entry.manager.as_deref() == Some(FIELD_MANAGER) && entry.operation.as_deref() == Some("Apply"))
        }
        None => true,
    }
}

/// Read one key of a ConfigMap (a `kubernetes://` roster source), with the
/// ConfigMap's resourceVersion.
pub async fn read_config_map_key(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<(String, String)> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map = api.get(name).await.map_err(|e| crate::map_error(&format!("read ConfigMap {namespace}/{name}"), e))?;
    let version = map.metadata.resource_version.clone().unwrap_or_default();
    let data = map.data.unwrap_or_default();
    match data.get(key) {
        Some(text) => Ok((text.clone(), version)),
        None => {
            let keys: Vec<&str> = data.keys().map(String::as_str).collect();
            Err(unavailable(format!(
                "ConfigMap {namespace}/{name} has no key `{key}` (it has: {})",
                if keys.is_empty() { "none".to_string() } else { keys.join(", ") }
            )))
        }
    }
}

/// A stream that yields whenever the named ConfigMap changes (or appears,
/// or goes away), after the first listing.
pub fn config_map_changes(client: &kube::Client, namespace: &str, name: &str) -> BoxStream<'static, ()> {
    let api: Api<PartialObjectMeta<k8s_openapi::api::core::v1::ConfigMap>> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut listed_once = false;
    watcher::watcher(api, config)
        .default_backoff()
        .filter_map(move |event| {
            let changed = match event {
                Ok(Event::Apply(_) | Event::Delete(_)) => true,
                Ok(Event::InitDone) => std::mem::replace(&mut listed_once, true),
                Ok(Event::Init | Event::InitApply(_)) | Err(_) => false,
            };
            futures::future::ready(changed.then_some(()))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, Time};

    fn entry(manager: &str, operation: &str, second: i64, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_string()),
            operation: Some(operation.to_string()),
            subresource: subresource.map(str::to_string),
            time: Some(Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())),
            ..ManagedFieldsEntry::default()
        }
    }

    fn meta(entries: Vec<ManagedFieldsEntry>) -> ObjectMeta {
        ObjectMeta { managed_fields: Some(entries), ..ObjectMeta::default() }
    }

    #[test]
    fn only_another_writers_newest_change_is_drift() {
        let applied = entry(FIELD_MANAGER, "Apply", 100, None);
        assert!(!foreign_write(&meta(vec![applied.clone()])), "tenantry's own apply");
        let status = entry("kube-controller-manager", "Update", 200, Some("status"));
        assert!(!foreign_write(&meta(vec![applied.clone(), status])), "a status update is not drift");
        let edit = entry("kubectl-edit", "Update", 200, None);
        assert!(foreign_write(&meta(vec![applied.clone(), edit])), "a later hand edit is drift");
        let same_second = entry("kubectl-edit", "Update", 100, None);
        assert!(foreign_write(&meta(vec![applied.clone(), same_second])), "an edit in the same second is drift");
        let older_edit = entry("kubectl-edit", "Update", 50, None);
        assert!(!foreign_write(&meta(vec![applied, older_edit])), "tenantry applied after the edit");
        assert!(foreign_write(&meta(vec![])), "an object without managed fields was written by someone else");
    }
}
