//! App instances (SPEC §11.5): each user's instance of a `platform.apps`
//! template, rendered with minijinja and parsed back into objects.
//!
//! Roster text reaches a manifest only as a template value: the rendered
//! text is parsed as YAML again and each object is checked (its kind among
//! [`APP_KINDS`], its namespace the instance's, tenantry's labels its own)
//! before it becomes a resource. A value holding a line break is refused
//! (it could add lines to the YAML); `tojson` writes any value safely.
//!
//! An instance that cannot be rendered, or whose workloads would request
//! more than the namespace's quota, fails alone: none of its objects are
//! derived, a [`DeriveFailure`] says why, and its objects already in the
//! cluster are left as they are.

use super::{Item, Out};
use crate::id::{Domain, ResourceId};
use crate::kinds::kind;
use crate::marks::LABELS;
use crate::resource::{DeriveFailure, Owner};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tenantry_model::names::is_dns1123_subdomain;
use tenantry_model::quantity::quantity_value;
use tenantry_model::{App, AppInstance, Roster, Span, User};

/// Label naming the app an object belongs to (the instance is this app of its owner).
pub const APP_LABEL: &str = "tenantry.dev/app";
/// The kinds an app template may hold, with the API version the cluster target serves them at.
pub const APP_KINDS: &[(&str, &str)] = &[
    (kind::CONFIG_MAP, "v1"),
    (kind::DEPLOYMENT, "apps/v1"),
    (kind::INGRESS, "networking.k8s.io/v1"),
    (kind::PERSISTENT_VOLUME_CLAIM, "v1"),
    (kind::SERVICE, "v1"),
    (kind::SERVICE_ACCOUNT, "v1"),
    (kind::STATEFUL_SET, "apps/v1"),
];
/// Template operations one file may take (loops included): a runaway
/// template is an error, not a hung plan.
const FUEL: u64 = 200_000;
const RULE: &str = "each app instance is rendered from its template";
/// Characters a value may not bring into a manifest unescaped.
const UNSAFE_IN_YAML: &[char] = &['\n', '\r', '"', '\\'];

/// How an app instance is named where it has no resource of its own (an
/// apply failure of an instance that could not be derived).
pub fn instance_id(namespace: &str, app: &str) -> String {
    format!("kubernetes/App/{namespace}/{app}")
}

/// One object of an instance, with where it came from.
struct Rendered {
    id: ResourceId,
    object: Value,
    /// `<template file>:<line>` of the object's document.
    template: Arc<str>,
}

pub(super) fn derive(roster: &Roster, out: &mut Out) {
    for user in roster.users.values() {
        // Requests of the instances derived so far, per namespace (quota check).
        let mut requested: BTreeMap<&str, Requests> = BTreeMap::new();
        for instance in &user.apps {
            let Some(app) = roster.platform.apps.get(&instance.app) else { continue };
            let owner = Owner::User(user.key.clone());
            let fail = |message: String, help: &str| DeriveFailure {
                owner: user.key.clone(),
                app: instance.app.clone(),
                namespace: instance.namespace.clone(),
                origin: instance.span,
                message,
                help: help.to_string(),
            };
            let objects = match render_instance(app, instance, user, &roster.platform.name) {
                Ok(objects) => objects,
                Err((message, help)) => {
                    out.failures.push(fail(message, help));
                    continue;
                }
            };
            let before = requested.get(instance.namespace.as_str()).cloned().unwrap_or_default();
            let mut after = before.clone();
            for object in &objects {
                after.add(&object.object);
            }
            if let Some(message) = over_quota(&after, &before, user, instance) {
                out.failures.push(fail(
                    message,
                    "lower the instance's requests (its values), or raise the user's `quota` in the roster",
                ));
                continue;
            }
            requested.insert(instance.namespace.as_str(), after);
            let namespace = ResourceId::global(Domain::Kubernetes, kind::NAMESPACE, &instance.namespace);
            for object in objects {
                out.apps.push((
                    Item::new(object.id, &owner, instance.span, RULE)
                        .after(namespace.clone())
                        .rendered_at(object.template),
                    object.object,
                ));
            }
        }
    }
}

/// Render every file of the template for one instance and check each object.
fn render_instance(
    app: &App,
    instance: &AppInstance,
    user: &User,
    platform: &str,
) -> Result<Vec<Rendered>, (String, &'static str)> {
    if app.files.is_empty() {
        return Err((
            format!("the template directory `{}` holds no manifests (`*.yaml`, `*.yml`)", app.template.value),
            "put the app's Kubernetes manifests in the directory named by `platform.apps.<name>.template`",
        ));
    }
    let environment = environment();
    let mut context = BTreeMap::new();
    context.insert("user", Value::String(user.key.clone()));
    context.insert("namespace", Value::String(instance.namespace.clone()));
    context.insert("email", Value::String(user.email.value.clone()));
    context.insert("app", Value::String(instance.app.clone()));
    if let Some(host) = &instance.host {
        context.insert("host", Value::String(host.clone()));
    }
    let values: Map<String, Value> = instance.values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    context.insert("values", Value::Object(values));
    let context = minijinja::Value::from_serialize(&context);

    let mut objects: Vec<Rendered> = Vec::new();
    for file in &app.files {
        let text = environment
            .template_from_named_str(&file.path, &file.text)
            .and_then(|template| template.render(&context))
            .map_err(|error| (render_error(&file.path, &file.text, &error), RENDER_HELP))?;
        for (line, document) in documents(&file.path, &text)? {
            let at = format!("{}:{line}", file.path);
            let object = checked_object(document, instance, &user.key, platform, &at)?;
            let id = ResourceId::new(
                Domain::Kubernetes,
                object["kind"].as_str().unwrap_or_default(),
                &instance.namespace,
                object["metadata"]["name"].as_str().unwrap_or_default(),
            );
            if let Some(earlier) = objects.iter().find(|o| o.id == id) {
                return Err((
                    format!("{at}: `{id}` is already defined at {}", earlier.template),
                    "give each object of the template its own name",
                ));
            }
            objects.push(Rendered { id, object, template: Arc::from(at) });
        }
    }
    Ok(objects)
}

const RENDER_HELP: &str = "every variable must be defined: `user`, `namespace`, `email`, `app`, `host` (when the app \
                           has one) and the `values` of the app and of the user's entry; write a value that holds \
                           line breaks or quotes with `| tojson`";

fn environment() -> minijinja::Environment<'static> {
    let mut environment = minijinja::Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    environment.set_fuel(Some(FUEL));
    // Values are written as they are (minijinja would JSON-quote them in a
    // `.yaml` file, which breaks `name: {{ app }}-{{ user }}`), but never in
    // a form that changes the YAML around them: no line break (a new line,
    // key or document) and no `"` or `\` (out of a double-quoted scalar).
    // `tojson` writes any value safely (its output is marked safe).
    environment.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    environment.set_formatter(|out, state, value| {
        if !value.is_safe()
            && let Some(text) = value.as_str()
            && let Some(found) = text.chars().find(|c| UNSAFE_IN_YAML.contains(c))
        {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                format!(
                    "the value {} holds {}, which would change the YAML around it; write it with `| tojson`",
                    serde_json::Value::String(text.chars().take(40).collect()),
                    match found {
                        '\n' | '\r' => "a line break",
                        '"' => "a double quote",
                        _ => "a backslash",
                    }
                ),
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    environment
}

fn render_error(path: &str, text: &str, error: &minijinja::Error) -> String {
    let line = error.line().map(|line| format!(":{line}")).unwrap_or_default();
    let detail = error.detail().map(|d| format!(": {d}")).unwrap_or_default();
    // The expression that failed ("undefined value" alone does not say which).
    let at = error
        .range()
        .and_then(|range| text.get(range))
        .filter(|snippet| !snippet.is_empty() && snippet.len() <= 80 && !snippet.contains('\n'))
        .map(|snippet| format!(" in `{snippet}`"))
        .unwrap_or_default();
    format!("{path}{line}: cannot render the template: {}{detail}{at}", error.kind())
}

/// The YAML documents of a rendered file, with the line each starts on
/// (empty documents skipped).
fn documents(path: &str, text: &str) -> Result<Vec<(u32, Value)>, (String, &'static str)> {
    let parsed: Vec<serde_saphyr::Spanned<Value>> = serde_saphyr::from_multiple(text).map_err(|error| {
        (
            format!("{path}: the rendered template is not YAML: {error}"),
            "check the template's YAML; a value that holds YAML syntax is best written with `| tojson`",
        )
    })?;
    Ok(parsed
        .into_iter()
        .filter(|document| !document.value.is_null())
        .map(|document| (u32::try_from(document.referenced.line()).unwrap_or(u32::MAX), document.value))
        .collect())
}

/// A rendered document as a resource's content: a namespaced object of an
/// allowed kind in the instance's namespace, with tenantry's labels.
fn checked_object(
    document: Value,
    instance: &AppInstance,
    user: &str,
    platform: &str,
    at: &str,
) -> Result<Value, (String, &'static str)> {
    let Value::Object(mut object) = document else {
        return Err((format!("{at}: a document is not a Kubernetes object (a mapping)"), OBJECT_HELP));
    };
    let kind_name = object.get("kind").and_then(Value::as_str).unwrap_or_default().to_string();
    let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some((_, served)) = APP_KINDS.iter().find(|(k, _)| *k == kind_name) else {
        let help = if CLUSTER_SCOPED.contains(&kind_name.as_str()) {
            "an app instance lives in its user's namespace: cluster-scoped objects belong to the platform"
        } else if kind_name == kind::SECRET {
            "secret data does not belong in the roster's repository: keep it in Vault (the user's KV path)"
        } else {
            "an app template may hold ConfigMap, Deployment, Ingress, PersistentVolumeClaim, Service, \
             ServiceAccount and StatefulSet objects"
        };
        return Err((format!("{at}: kind `{kind_name}` is not allowed in an app template"), help));
    };
    if api_version != *served {
        return Err((
            format!("{at}: {kind_name} must be `apiVersion: {served}`, not `{api_version}`"),
            "write the API version the cluster serves the kind at",
        ));
    }
    let Some(Value::Object(metadata)) = object.get_mut("metadata") else {
        return Err((format!("{at}: the {kind_name} has no `metadata`"), OBJECT_HELP));
    };
    let name = metadata.get("name").and_then(Value::as_str).unwrap_or_default();
    if !is_dns1123_subdomain(name) {
        return Err((format!("{at}: `metadata.name` `{name}` is not a DNS-1123 name"), OBJECT_HELP));
    }
    match metadata.get("namespace") {
        None => {
            metadata.insert("namespace".to_string(), Value::String(instance.namespace.clone()));
        }
        Some(Value::String(namespace)) if *namespace == instance.namespace => {}
        Some(other) => {
            return Err((
                format!(
                    "{at}: the {kind_name} `{name}` names namespace {other}, not the instance's `{}`",
                    instance.namespace
                ),
                "leave `metadata.namespace` out (the instance's namespace is set), or write `{{ namespace }}`",
            ));
        }
    }
    let labels = metadata.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(labels) = labels else {
        return Err((format!("{at}: `metadata.labels` is not a mapping"), OBJECT_HELP));
    };
    if let Some(taken) = labels.keys().find(|key| key.starts_with("tenantry.dev/") || key.as_str() == LABELS.managed_by)
    {
        return Err((
            format!("{at}: label `{taken}` is tenantry's own"),
            "remove it from the template; tenantry labels every object with its owner, platform and app",
        ));
    }
    labels.extend(LABELS.write(&Owner::User(user.to_string()), platform));
    labels.insert(APP_LABEL.to_string(), Value::String(instance.app.clone()));
    object.remove("status");
    Ok(Value::Object(object))
}

const OBJECT_HELP: &str =
    "each YAML document of the template is one Kubernetes object with `apiVersion`, `kind` and `metadata.name`";
const CLUSTER_SCOPED: &[&str] = &[
    kind::NAMESPACE,
    kind::CLUSTER_ROLE,
    kind::CLUSTER_ROLE_BINDING,
    kind::VALIDATING_ADMISSION_POLICY,
    kind::VALIDATING_ADMISSION_POLICY_BINDING,
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
    "Node",
];

/// Resource requests and limits summed over workloads (replicas × containers).
#[derive(Debug, Clone, Default)]
struct Requests {
    /// By quota key: `requests.cpu`, `requests.memory`, `limits.cpu`, `limits.memory`.
    totals: BTreeMap<String, f64>,
}

impl Requests {
    fn add(&mut self, object: &Value) {
        let kind = object["kind"].as_str().unwrap_or_default();
        if kind != kind::DEPLOYMENT && kind != kind::STATEFUL_SET {
            return;
        }
        let replicas = object["spec"]["replicas"].as_f64().unwrap_or(1.0);
        let containers = object["spec"]["template"]["spec"]["containers"].as_array().cloned().unwrap_or_default();
        for container in &containers {
            for (section, prefix) in [("requests", "requests"), ("limits", "limits")] {
                let Some(resources) = container["resources"][section].as_object() else { continue };
                for (resource, quantity) in resources {
                    let amount = match quantity {
                        Value::String(text) => quantity_value(text),
                        Value::Number(number) => number.as_f64(),
                        _ => None,
                    };
                    if let Some(amount) = amount {
                        *self.totals.entry(format!("{prefix}.{resource}")).or_default() += amount * replicas;
                    }
                }
            }
        }
    }
}

/// The first quota key the namespace's requests would exceed with this instance, in words.
fn over_quota(after: &Requests, before: &Requests, user: &User, instance: &AppInstance) -> Option<String> {
    after.totals.iter().find_map(|(key, total)| {
        // `requests.cpu` is also bounded by a bare `cpu` key (ResourceQuota's alias).
        let bare = key.strip_prefix("requests.");
        let (quota_key, hard) =
            user.quota.get_key_value(key.as_str()).or_else(|| bare.and_then(|b| user.quota.get_key_value(b)))?;
        let limit = quantity_value(hard.value.as_str())?;
        (*total > limit + f64::EPSILON).then(|| {
            let others = before.totals.get(key).copied().unwrap_or_default();
            format!(
                "app `{}` would bring {key} in namespace `{}` to {} (this instance {}, other instances {}), over the \
                 namespace's ResourceQuota {quota_key}: {}",
                instance.app,
                instance.namespace,
                number(*total),
                number(total - others),
                number(others),
                hard.value.as_str()
            )
        })
    })
}

/// A quantity sum, without float noise (`0.30000000000000004` → `0.3`).
fn number(value: f64) -> String {
    let rounded = (value * 1000.0).round() / 1000.0;
    format!("{rounded}")
}

/// Drop app objects whose id another derivation already produced (a
/// template ConfigMap named like tenantry's own), failing their instance.
pub(super) fn resolve_collisions(
    apps: Vec<(Item, Value)>,
    taken: &dyn Fn(&ResourceId) -> bool,
    failures: &mut Vec<DeriveFailure>,
    roster: &Roster,
) -> Vec<(Item, Value)> {
    let mut failed: BTreeMap<(String, Span), String> = BTreeMap::new();
    for (item, _) in &apps {
        if taken(&item.id)
            && let Owner::User(user) = &item.owner
        {
            failed.entry((user.clone(), item.origin)).or_insert_with(|| item.id.to_string());
        }
    }
    for ((user, origin), id) in &failed {
        let Some(instance) = roster.users.get(user).and_then(|u| u.apps.iter().find(|i| i.span == *origin)) else {
            continue;
        };
        failures.push(DeriveFailure {
            owner: user.clone(),
            app: instance.app.clone(),
            namespace: instance.namespace.clone(),
            origin: *origin,
            message: format!("`{id}` is also derived by tenantry for the user (or the platform)"),
            help: "rename the template's object: tenantry's own objects in the namespace keep their names".to_string(),
        });
    }
    apps.into_iter()
        .filter(|(item, _)| match &item.owner {
            Owner::User(user) => !failed.contains_key(&(user.clone(), item.origin)),
            Owner::Platform => true,
        })
        .collect()
}
