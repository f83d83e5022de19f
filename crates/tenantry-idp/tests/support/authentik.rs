//! A local stand-in for Authentik's API v3 (core users and groups), on
//! 127.0.0.1, following the published shapes: `Authorization: Bearer`,
//! paginated lists `{pagination: {next, previous, count, current,
//! total_pages, start_index, end_index}, results}` with `page`/`page_size`
//! (capped at 2 here so small groups span pages), filters `email`,
//! `groups_by_name` and `name`, `add_user`/`remove_user` by user `pk`
//! (204), PATCH of `is_active`, and error bodies: `{"detail": …}` for
//! 403/404, field errors `{"username": ["…"]}` for 400.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "authentik-fixture-token-0123456789";
const MAX_PAGE_SIZE: usize = 2;

#[derive(Default)]
struct Inner {
    users: Vec<Value>,
    groups: Vec<Value>,
    next_pk: u64,
    log: Vec<(String, String)>,
    /// Lists answer 200 without `results`, as a broken proxy or an API
    /// change might.
    lists_without_results: bool,
}

type Shared = Arc<Mutex<Inner>>;

pub struct Authentik {
    addr: SocketAddr,
    shared: Shared,
}

impl Authentik {
    pub async fn start() -> Authentik {
        let shared: Shared = Arc::default();
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Authentik { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.lock().unwrap()
    }

    /// A user as an admin created it in Authentik; returns its pk.
    pub fn seed_user(&self, username: &str, email: &str) -> u64 {
        let mut inner = self.inner();
        inner.next_pk += 1;
        let pk = inner.next_pk;
        inner.users.push(user(pk, username, email));
        pk
    }

    pub fn seed_group(&self, name: &str, members: &[u64]) {
        let mut inner = self.inner();
        let uuid = format!("00000000-0000-4000-8000-{:012x}", inner.groups.len() + 1);
        inner.groups.push(json!({ "pk": uuid, "name": name }));
        for user in inner.users.iter_mut().filter(|u| members.contains(&u["pk"].as_u64().unwrap())) {
            user["groups"].as_array_mut().unwrap().push(json!(uuid));
        }
    }

    /// Usernames of a group's members, sorted.
    pub fn members(&self, group: &str) -> Vec<String> {
        let inner = self.inner();
        let Some(uuid) = inner.groups.iter().find(|g| g["name"] == group).map(|g| g["pk"].clone()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = inner
            .users
            .iter()
            .filter(|u| u["groups"].as_array().unwrap().contains(&uuid))
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    pub fn user(&self, username: &str) -> Option<Value> {
        self.inner().users.iter().find(|u| u["username"] == username).cloned()
    }

    pub fn log(&self) -> Vec<(String, String)> {
        self.inner().log.clone()
    }

    pub fn answer_lists_without_results(&self) {
        self.inner().lists_without_results = true;
    }

    pub fn clear_log(&self) {
        self.inner().log.clear();
    }
}

fn user(pk: u64, username: &str, email: &str) -> Value {
    json!({ "pk": pk, "username": username, "name": username, "email": email, "is_active": true,
            "path": "users", "type": "internal", "groups": [], "attributes": {} })
}

fn detail(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "detail": text, "code": "error" }))).into_response()
}

fn page(items: Vec<Value>, query: &HashMap<String, String>) -> Response {
    let size = query.get("page_size").and_then(|s| s.parse().ok()).unwrap_or(20_usize).clamp(1, MAX_PAGE_SIZE);
    let current = query.get("page").and_then(|s| s.parse().ok()).unwrap_or(1_usize).max(1);
    let total_pages = items.len().div_ceil(size).max(1);
    let start = (current - 1) * size;
    let results: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let next = if current < total_pages { current + 1 } else { 0 };
    let pagination = json!({
        "next": next, "previous": current - 1, "count": items.len(), "current": current,
        "total_pages": total_pages, "start_index": if results.is_empty() { 0 } else { start + 1 },
        "end_index": start + results.len(),
    });
    axum::Json(json!({ "pagination": pagination, "results": results })).into_response()
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = shared.lock().unwrap();
    inner.log.push((method.to_string(), uri.to_string()));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
        return detail(StatusCode::FORBIDDEN, "Authentication credentials were not provided.");
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(path) = uri.path().strip_prefix("/api/v3/") else { return detail(StatusCode::NOT_FOUND, "Not found.") };
    if inner.lists_without_results && method == Method::GET && !path.starts_with("core/users/me") {
        return axum::Json(json!({ "detail": "read-only maintenance" })).into_response();
    }
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let group_uuid = |inner: &Inner, name: &str| {
        inner.groups.iter().find(|g| g["name"] == name).map(|g| g["pk"].clone()).unwrap_or(Value::Null)
    };
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["core", "users", "me"]) => axum::Json(json!({ "user": inner.users.first() })).into_response(),
        ("GET", ["core", "users"]) => {
            let in_group = query.get("groups_by_name").map(|name| group_uuid(&inner, name));
            let found = inner
                .users
                .iter()
                .filter(|u| query.get("email").is_none_or(|e| u["email"] == e.as_str()))
                .filter(|u| in_group.as_ref().is_none_or(|g| u["groups"].as_array().unwrap().contains(g)))
                .cloned()
                .collect();
            page(found, &query)
        }
        ("POST", ["core", "users"]) => {
            let username = body["username"].as_str().unwrap_or_default().to_string();
            if inner.users.iter().any(|u| u["username"] == username.as_str()) {
                return (StatusCode::BAD_REQUEST, axum::Json(json!({ "username": ["This field must be unique."] })))
                    .into_response();
            }
            inner.next_pk += 1;
            let mut created = user(inner.next_pk, &username, body["email"].as_str().unwrap_or_default());
            created["is_active"] = body["is_active"].clone();
            inner.users.push(created.clone());
            (StatusCode::CREATED, axum::Json(created)).into_response()
        }
        (verb @ ("GET" | "PATCH" | "DELETE"), ["core", "users", pk]) => {
            let Some(index) = inner.users.iter().position(|u| pk.parse::<u64>().is_ok_and(|p| u["pk"] == p)) else {
                return detail(StatusCode::NOT_FOUND, "No User matches the given query.");
            };
            match verb {
                "GET" => axum::Json(inner.users[index].clone()).into_response(),
                "PATCH" => {
                    for (key, value) in body.as_object().into_iter().flatten() {
                        inner.users[index][key] = value.clone();
                    }
                    axum::Json(inner.users[index].clone()).into_response()
                }
                _ => {
                    inner.users.remove(index);
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        }
        ("GET", ["core", "groups"]) => {
            let found = inner
                .groups
                .iter()
                .filter(|g| query.get("name").is_none_or(|n| g["name"] == n.as_str()))
                .cloned()
                .collect();
            page(found, &query)
        }
        ("POST", ["core", "groups"]) => {
            let name = body["name"].as_str().unwrap_or_default().to_string();
            if inner.groups.iter().any(|g| g["name"] == name.as_str()) {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "name": ["group with this name already exists."] })),
                )
                    .into_response();
            }
            let uuid = format!("00000000-0000-4000-8000-{:012x}", inner.groups.len() + 1);
            let group = json!({ "pk": uuid, "name": name });
            inner.groups.push(group.clone());
            (StatusCode::CREATED, axum::Json(group)).into_response()
        }
        ("POST", ["core", "groups", uuid, verb @ ("add_user" | "remove_user")]) => {
            if !inner.groups.iter().any(|g| g["pk"] == *uuid) {
                return detail(StatusCode::NOT_FOUND, "No Group matches the given query.");
            }
            let Some(user) = inner.users.iter_mut().find(|u| u["pk"] == body["pk"]) else {
                return detail(StatusCode::NOT_FOUND, "User not found");
            };
            let groups = user["groups"].as_array_mut().unwrap();
            groups.retain(|g| g != *uuid);
            if *verb == "add_user" {
                groups.push(json!(uuid));
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => detail(StatusCode::NOT_FOUND, "Not found."),
    }
}
