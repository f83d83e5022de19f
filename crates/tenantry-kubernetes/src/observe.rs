//! Observing the cluster: label-selected lists per kind (this platform's
//! objects, and those an earlier version wrote without a platform mark),
//! then a GET by name for each wanted object the lists did not show — an
//! object of the same name without tenantry's marks (a tenant's own Secret,
//! a hand-made binding) or another platform's — so the plan says *adopt* or
//! *conflict* with the diff, never a *create* that server-side apply would
//! turn into a silent takeover.
//!
//! A no-op reconcile finds everything in the lists: it costs two requests
//! per namespaced kind and one per cluster-scoped kind (more only when a
//! list has more than a page of objects). Cluster-scoped kinds are listed
//! whole; the GETs happen only for namespaced objects missing from the
//! lists whose namespace exists (a new user's namespace holds nothing).

use crate::extract::project_owned_fields;
use crate::{
    FIELD_MANAGER, KINDS, KindInfo, KubernetesTarget, Listing, SourceRead, TlsSources, id_of, kinds, not_served, tls,
};
use futures::stream::{self, StreamExt as _};
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tenantry_core::marks::LABELS;
use tenantry_core::target::Result;
use tenantry_core::{Content, Domain, Mark, ObserveRequest, Observed, PlanProblem, ResourceId, Snapshot};

/// GETs in flight at once for objects the lists did not show.
const GET_CONCURRENCY: usize = 16;

pub(crate) type SourceCheck = std::result::Result<tenantry_tls::Source, tenantry_tls::TlsError>;

pub(crate) async fn observe(target: &KubernetesTarget, request: &ObserveRequest) -> Result<Observed> {
    let wanted_kinds: HashSet<&str> = request.resources.iter().map(|(id, _)| &*id.kind).collect();
    let requested: HashSet<&ResourceId> = request.resources.iter().map(|(id, _)| id).collect();
    let desired: HashMap<&ResourceId, &Content> = request.desired.iter().map(|(id, c)| (id, c)).collect();
    let platform = request.platform.as_str();
    let lists = futures::future::join_all(KINDS.iter().map(|info| {
        let (requested, desired) = (&requested, &desired);
        async move {
            (info, target.list_kind(info, platform, |object| listed(info, object, platform, requested, desired)).await)
        }
    }))
    .await;
    let mut observed = Observed::default();
    let mut sources = SourceCache::default();
    let mut served: HashSet<&str> = HashSet::new();
    for (info, result) in lists {
        let objects = match result? {
            Listing::Items(objects) => objects,
            // Only a problem when the roster asks for this kind; the
            // changes of that kind then fail at apply, one by one.
            missing => {
                if wanted_kinds.contains(info.kind) {
                    let message = match missing {
                        Listing::Forbidden(reason) => format!(
                            "tenantry may not list {} ({reason}): what exists of this kind is not known",
                            info.plural
                        ),
                        _ => not_served(info),
                    };
                    observed.problems.push(PlanProblem {
                        message,
                        help: format!(
                            "until then every {} change fails at apply; the rest of the plan is applied",
                            info.kind
                        ),
                        blocking: false,
                    });
                }
                continue;
            }
        };
        served.insert(info.kind);
        for object in objects {
            let (id, content, mark) = match object {
                Listed::Projected { id, content, mark } => (id, content, mark),
                Listed::Secret { id, value, mark } => {
                    let projected = match (&mark, desired.get(&id)) {
                        (Mark::Unmarked, Some(wanted)) => {
                            project_unmarked(target, info, &value, wanted, &mut sources).await
                        }
                        _ => project_marked(target, info, &value, &mut sources).await,
                    };
                    (id, Content::from_value(&projected), mark)
                }
            };
            let wanted = requested.contains(&id);
            observed.insert_marked(id, content, mark, wanted);
        }
    }

    // Wanted objects the lists did not show may exist without tenantry's marks.
    let missing: Vec<(ResourceId, Content)> = request
        .desired
        .iter()
        .filter(|(id, _)| id.domain == Domain::Kubernetes && !observed.resources.contains_key(id))
        // Cluster-scoped kinds were listed whole.
        .filter(|(id, _)| !id.is_global() && served.contains(&*id.kind))
        .filter(|(id, _)| namespace_exists(&observed, &id.scope))
        .cloned()
        .collect();
    let fetched: Vec<(ResourceId, Content, Result<Option<Value>>)> = stream::iter(missing)
        .map(|(id, content)| async move {
            let found = target.get_unlisted(&id).await;
            (id, content, found)
        })
        .buffer_unordered(GET_CONCURRENCY)
        .collect()
        .await;
    let mut found = Vec::new();
    for (id, content, result) in fetched {
        if let Some(value) = result? {
            found.push((id, content, value));
        }
    }
    for (id, wanted, value) in found {
        let Some(info) = kinds::info(&id.kind) else { continue };
        let mark = mark_of(&value, &request.platform);
        let projected = project_unmarked(target, info, &value, &wanted, &mut sources).await;
        observed.insert_marked(id.clone(), Content::from_value(&projected), mark, true);
    }

    // Pod Security labels about to be set on a namespace that exists: the
    // server says (by a dry run) which of its workloads they would refuse.
    for (id, content) in &request.desired {
        if let Some(found) = observed.get(id).filter(|_| tenantry_core::kinds::is_namespace(id))
            && enforces_more(&found.content, content)
            && let Some(problem) = target.pod_security_preview(id, content).await
        {
            observed.problems.push(problem);
        }
    }

    // A copy that does not exist yet is checked too, from its desired
    // annotations, so the plan shows a bad source before the first apply.
    for (id, content) in &request.desired {
        if &*id.kind == tenantry_core::kind::SECRET && !observed.resources.contains_key(id) {
            let desired = content.to_value();
            let _ = project_secret_copy(target, &desired, &desired, Value::Null, &mut sources).await;
        }
    }
    let read: HashMap<String, Arc<SourceRead>> =
        sources.read.into_iter().filter_map(|(reference, read)| Some((reference, Arc::new(read.ok()?)))).collect();
    observed.snapshot = Snapshot::new(TlsSources(read));
    observed.problems.extend(sources.findings.into_problems());
    Ok(observed)
}

/// One listed object as observe keeps it: projected to the fields that
/// matter on the spot, so the page it came in can be dropped — except a
/// Secret, whose projection may read its TLS source (async, cached).
enum Listed {
    Projected { id: ResourceId, content: Content, mark: Mark },
    Secret { id: ResourceId, value: Value, mark: Mark },
}

/// What observe keeps of a listed object: nothing when it is another
/// platform's or nobody's and not asked about (not looked at).
fn listed(
    info: &'static KindInfo,
    value: Value,
    platform: &str,
    requested: &HashSet<&ResourceId>,
    desired: &HashMap<&ResourceId, &Content>,
) -> Option<Listed> {
    let id = id_of(info, &value)?;
    let mark = mark_of(&value, platform);
    if !matches!(mark, Mark::Ours(_)) && !requested.contains(&id) {
        return None;
    }
    if info.kind == tenantry_core::kind::SECRET {
        return Some(Listed::Secret { id, value, mark });
    }
    let projected = match (&mark, desired.get(&id)) {
        // Not written by tenantry's field manager: shown in the shape the roster wants.
        (Mark::Unmarked, Some(wanted)) => wanted_fields(info, &value, &wanted.to_value()),
        _ => owned_fields(info, &value),
    };
    Some(Listed::Projected { id, content: Content::from_value(&projected), mark })
}

fn namespace_exists(observed: &Observed, namespace: &str) -> bool {
    observed.resources.contains_key(&ResourceId::global(Domain::Kubernetes, tenantry_core::kind::NAMESPACE, namespace))
}

fn mark_of(object: &Value, platform: &str) -> Mark {
    LABELS.read(object["metadata"]["labels"].as_object().unwrap_or(&Map::new()), platform)
}

/// Items of a list carry no type; the kind we listed is their type.
fn with_type(mut projected: Value, info: &KindInfo) -> Value {
    if let Some(fields) = projected.as_object_mut() {
        fields.insert("apiVersion".to_string(), Value::String(info.api_version()));
        fields.insert("kind".to_string(), Value::String(info.kind.to_string()));
    }
    projected
}

/// The fields tenantry's field manager owns (an object it applied).
fn owned_fields(info: &KindInfo, value: &Value) -> Value {
    with_type(project_owned_fields(value, FIELD_MANAGER), info)
}

/// The fields `shape` (the roster's wish) has, as they are now (an object
/// tenantry did not write).
fn wanted_fields(info: &KindInfo, value: &Value, shape: &Value) -> Value {
    with_type(shaped_like(value, shape), info)
}

/// An object tenantry applied: the fields its field manager owns.
async fn project_marked(target: &KubernetesTarget, info: &KindInfo, value: &Value, cache: &mut SourceCache) -> Value {
    let projected = owned_fields(info, value);
    if info.kind == tenantry_core::kind::SECRET {
        return project_secret_copy(target, value, value, projected, cache).await;
    }
    projected
}

/// An object tenantry did not write: the fields the roster wants, as they
/// are now, so adopting it shows exactly what would change. A Secret
/// compares its data with the source the roster copies (never printed: the
/// copy is sensitive).
async fn project_unmarked(
    target: &KubernetesTarget,
    info: &KindInfo,
    value: &Value,
    wanted: &Content,
    cache: &mut SourceCache,
) -> Value {
    let shape = wanted.to_value();
    let projected = wanted_fields(info, value, &shape);
    if info.kind == tenantry_core::kind::SECRET {
        return project_secret_copy(target, &shape, value, projected, cache).await;
    }
    projected
}

/// The parts of `live` at the paths `shape` has (lists taken whole).
pub(crate) fn shaped_like(live: &Value, shape: &Value) -> Value {
    match (live, shape) {
        (Value::Object(live), Value::Object(shape)) => Value::Object(
            shape.iter().filter_map(|(key, sub)| live.get(key).map(|v| (key.clone(), shaped_like(v, sub)))).collect(),
        ),
        _ => live.clone(),
    }
}

/// Sources of TLS copies read during one observe: each read and parsed
/// once, however many namespaces hold a copy.
#[derive(Default)]
pub(crate) struct SourceCache {
    /// `namespace/name` → its `data`, parsed, or why it could not be read.
    read: HashMap<String, std::result::Result<SourceRead, String>>,
    findings: tls::Findings,
}

/// A copied TLS Secret is observed in its desired shape — the `copyFrom`
/// reference — when its data (`live`) equals the source's that `annotated`'s
/// annotation names; otherwise the data difference shows as drift (or, for
/// a Secret tenantry did not write, as data that differs). The source is
/// checked as apply would check it, so a source that will be refused (or
/// expires soon) is a problem in the plan already.
async fn project_secret_copy(
    target: &KubernetesTarget,
    annotated: &Value,
    live: &Value,
    mut projected: Value,
    cache: &mut SourceCache,
) -> Value {
    let annotations = &annotated["metadata"]["annotations"];
    let Some(reference) = annotations[tls::COPIED_FROM].as_str() else { return projected };
    let Some((namespace, name)) = reference.split_once('/') else { return projected };
    let source = json!({ "namespace": namespace, "name": name });
    if !cache.read.contains_key(reference) {
        let read = target.source_data(&source).await.map_err(|e| e.to_string()).map(|data| {
            let parsed = tls::parse(&data);
            (data, parsed)
        });
        cache.read.insert(reference.to_string(), read);
    }
    let copy = format!(
        "{}/{}",
        annotated["metadata"]["namespace"].as_str().unwrap_or("-"),
        annotated["metadata"]["name"].as_str().unwrap_or("-")
    );
    let source_data = match cache.read.get(reference) {
        Some(Ok((data, parsed))) => {
            match tls::check(parsed, &tls::domains(annotations), std::time::SystemTime::now()) {
                Ok(report) => {
                    for warning in &report.warnings {
                        cache.findings.warned(reference, copy.clone(), warning);
                    }
                }
                Err(error) => cache.findings.refused(reference, copy.clone(), &error),
            }
            Some(data.clone())
        }
        Some(Err(error)) => {
            cache.findings.unreadable(reference, copy, error);
            None
        }
        None => None,
    };
    if let Some(fields) = projected.as_object_mut() {
        fields.remove("data");
        if source_data.is_some_and(|data| live["data"] == data) {
            fields.insert("copyFrom".to_string(), source);
        } else {
            fields.insert("copyFrom".to_string(), json!({ "stale-copy-of": reference }));
        }
    }
    projected
}

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// Whether the wanted namespace sets a Pod Security `enforce` level the
/// existing one does not have.
fn enforces_more(found: &Content, wanted: &Content) -> bool {
    let label = |content: &Content| content.to_value()["metadata"]["labels"][ENFORCE].as_str().map(str::to_string);
    let wanted = label(wanted);
    wanted.is_some() && label(found) != wanted
}

impl KubernetesTarget {
    /// Dry-run the namespace's labels and collect the server's warnings: the
    /// pods already there that the new Pod Security level would refuse.
    async fn pod_security_preview(&self, id: &ResourceId, wanted: &Content) -> Option<PlanProblem> {
        let request = kube::core::Request::new("/api/v1/namespaces")
            .patch(
                &id.name,
                &kube::api::PatchParams::apply(FIELD_MANAGER).force().dry_run(),
                &kube::api::Patch::Apply(&wanted.to_value()),
            )
            .ok()?;
        let response = self.client.send(request.map(kube::client::Body::from)).await.ok()?;
        let warnings: Vec<String> = response
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|value| value.to_str().ok())
            // `299 - "text"`: the text, unquoted.
            .map(|value| value.splitn(3, ' ').nth(2).unwrap_or(value).trim_matches('"').to_string())
            .collect();
        (!warnings.is_empty()).then(|| PlanProblem {
            message: format!(
                "namespace `{}` has workloads that Pod Security `baseline` would refuse once tenantry labels it: {}",
                id.name,
                warnings.join("; ")
            ),
            help: "fix those workloads, or keep the platform on `isolation: none` until they are fixed; existing pods keep running, new ones are refused"
                .to_string(),
            blocking: false,
        })
    }

    /// One object by name, `None` when it does not exist.
    async fn get_unlisted(&self, id: &ResourceId) -> Result<Option<Value>> {
        let Some(info) = kinds::info(&id.kind) else { return Ok(None) };
        let namespace = (!id.is_global()).then_some(&*id.scope);
        match self.api(info, namespace).get_opt(&id.name).await {
            Ok(Some(object)) => Ok(Some(serde_json::to_value::<DynamicObject>(object).map_err(crate::unavailable)?)),
            Ok(None) => Ok(None),
            Err(error) => Err(crate::map_error(&format!("get {id}"), error)),
        }
    }
}
