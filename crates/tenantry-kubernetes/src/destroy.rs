//! The destroy stage on the cluster (SPEC §6): every object in a departed
//! user's namespaces is written to a backup file first, then the namespace
//! is deleted (which deletes what is in it). Other leftover objects of the
//! user are deleted one by one. Nothing outside the given ids is touched.

use crate::kinds::info;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::discovery::{Discovery, Scope, verbs};
use serde_json::{Value, json};
use tenantry_core::{Backups, Destroyed, ResourceId, TargetError};

fn failed(id: &str, message: impl Into<String>) -> TargetError {
    TargetError::rejected(id.to_string(), message.into())
}

/// Every object of every listable namespaced kind in `namespace`, without
/// server-managed noise, as one `v1/List` document.
async fn snapshot(client: &kube::Client, discovery: &Discovery, namespace: &str) -> Result<Value, TargetError> {
    let mut items = Vec::new();
    for group in discovery.groups() {
        for (resource, capabilities) in group.recommended_resources() {
            if capabilities.scope != Scope::Namespaced || !capabilities.supports_operation(verbs::LIST) {
                continue;
            }
            // Events are history, not data; they expire on their own.
            if resource.kind == "Event" {
                continue;
            }
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
            let list = match api.list(&ListParams::default()).await {
                Ok(list) => list,
                // Discovered, then no longer served (its CRD was removed
                // meanwhile, and every object of it with the CRD): nothing to keep.
                Err(kube::Error::Api(status)) if crate::is_not_served(&status) => {
                    continue;
                }
                Err(error) => {
                    return Err(failed(
                        &format!("kubernetes/Namespace/-/{namespace}"),
                        format!("backing up {} in {namespace}: {error}; nothing was deleted", resource.plural),
                    ));
                }
            };
            for mut object in list.items {
                object.metadata.managed_fields = None;
                let mut value = serde_json::to_value(&object).map_err(|e| {
                    failed(&format!("kubernetes/Namespace/-/{namespace}"), format!("serialising a backup: {e}"))
                })?;
                if let Some(map) = value.as_object_mut() {
                    map.insert("apiVersion".to_string(), json!(resource.api_version));
                    map.insert("kind".to_string(), json!(resource.kind));
                }
                items.push(value);
            }
        }
    }
    Ok(json!({ "apiVersion": "v1", "kind": "List", "items": items }))
}

pub(crate) async fn destroy(
    client: &kube::Client,
    user: &str,
    resources: &[ResourceId],
    backups: &dyn Backups,
) -> Result<Destroyed, TargetError> {
    let mut done = Destroyed::default();
    let namespaces: Vec<&ResourceId> = resources.iter().filter(|id| &*id.kind == "Namespace").collect();
    if !namespaces.is_empty() {
        let discovery = Discovery::new(client.clone())
            .run()
            .await
            .map_err(|e| failed("kubernetes/Namespace", format!("discovering the API's kinds for the backup: {e}")))?;
        // Every backup is written before any namespace is deleted.
        for id in &namespaces {
            let namespace = &*id.name;
            let snapshot = snapshot(client, &discovery, namespace).await?;
            let count = snapshot["items"].as_array().map_or(0, Vec::len);
            let bytes = serde_json::to_vec_pretty(&snapshot)
                .map_err(|e| failed(&id.to_string(), format!("encoding the backup: {e}; nothing was deleted")))?;
            let name = format!("kubernetes-{user}-namespace-{namespace}.json");
            let path = backups.write(&name, &bytes).map_err(|e| {
                let into = backups.dir().display();
                failed(&id.to_string(), format!("writing the backup into {into}: {e}; nothing was deleted"))
            })?;
            done.notes.push(format!("{namespace}: {count} objects backed up"));
            done.backups.push(path);
        }
    }
    let namespace_names: Vec<&str> = namespaces.iter().map(|id| &*id.name).collect();
    let params = DeleteParams::background();
    for id in resources {
        let Some(kind) = info(&id.kind) else {
            done.notes.push(format!("{id}: not a kind this target manages; left alone"));
            continue;
        };
        // Objects inside a namespace that is deleted go with it.
        if kind.namespaced && namespace_names.contains(&&*id.scope) {
            done.removed.push(id.clone());
            continue;
        }
        let gvk = kube::core::GroupVersionKind::gvk(kind.group, kind.version, kind.kind);
        let resource = kube::core::ApiResource::from_gvk_with_plural(&gvk, kind.plural);
        let api: Api<DynamicObject> = if kind.namespaced {
            Api::namespaced_with(client.clone(), &id.scope, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
        match api.delete(&id.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(failed(&id.to_string(), format!("deleting: {e}"))),
        }
        if &*id.kind == "Namespace" {
            done.notes.push(format!("{}: deleted (terminating until its objects are gone)", id.name));
        }
        done.removed.push(id.clone());
    }
    Ok(done)
}
