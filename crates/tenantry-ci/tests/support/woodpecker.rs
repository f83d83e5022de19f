//! A local stand-in for Woodpecker's user API, on 127.0.0.1, following its
//! published routes and behaviour (server/api/users.go, user.go):
//! `Authorization: Bearer <token>`; `GET /api/user` (the token's user);
//! `GET /api/users?page=&perPage=` (paginated, capped at 2 per page here so
//! a few users span pages); `GET /api/users/{login}`; `PATCH
//! /api/users/{login}`, which — like Woodpecker — writes the body's
//! `email`, `avatar_url` and `admin` onto the user (a client sending only
//! `admin` blanks the email). Errors are Woodpecker's: 401 and 404 with
//! their status text, 400 for a body that is not a user, plain-text 500s.
//! Failures can be queued per login (`fail(login, [503, 429])`), a 429
//! with `Retry-After: 0`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "woodpecker-fixture-token-0123456789";
const ME: &str = "ci-admin";
const MAX_PER_PAGE: usize = 2;

#[derive(Default)]
struct Inner {
    users: BTreeMap<String, Value>,
    failures: HashMap<String, VecDeque<u16>>,
    requests: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct Woodpecker {
    addr: SocketAddr,
    shared: Shared,
}

impl Woodpecker {
    pub async fn start() -> Woodpecker {
        let shared: Shared = Arc::default();
        shared.lock().unwrap().users.insert(ME.to_string(), user(1, ME, true));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Woodpecker { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A user who signed in once (Woodpecker creates users at first login).
    pub fn add_user(&self, login: &str, admin: bool) {
        let mut inner = self.shared.lock().unwrap();
        let id = inner.users.len() as u64 + 1;
        inner.users.insert(login.to_string(), user(id, login, admin));
    }

    pub fn user(&self, login: &str) -> Option<Value> {
        self.shared.lock().unwrap().users.get(login).cloned()
    }

    /// The next requests about `login` answer these statuses, in order.
    pub fn fail(&self, login: &str, statuses: &[u16]) {
        self.shared.lock().unwrap().failures.entry(login.to_string()).or_default().extend(statuses);
    }

    /// (method, path) of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.shared.lock().unwrap().requests.clone()
    }
}

fn user(id: u64, login: &str, admin: bool) -> Value {
    json!({
        "id": id, "forge_id": 1, "forge_remote_id": id.to_string(), "login": login,
        "email": format!("{login}@example.org"), "avatar_url": format!("https://avatars.example.org/{login}"),
        "admin": admin, "org_id": id,
    })
}

fn text(status: StatusCode, body: &str) -> Response {
    (status, body.to_string()).into_response()
}

async fn handle(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    shared.lock().unwrap().requests.push((method.to_string(), uri.to_string()));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {TOKEN}")) {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let mut inner = shared.lock().unwrap();
    match (method.clone(), path.as_str()) {
        (Method::GET, "/api/user") => axum::Json(inner.users[ME].clone()).into_response(),
        (Method::GET, "/api/users") => {
            let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
            let per_page: usize =
                query.get("perPage").and_then(|p| p.parse().ok()).unwrap_or(50).clamp(1, MAX_PER_PAGE);
            let items: Vec<Value> = inner.users.values().skip((page - 1) * per_page).take(per_page).cloned().collect();
            axum::Json(Value::Array(items)).into_response()
        }
        (_, _) if path.starts_with("/api/users/") => {
            let login = path.trim_start_matches("/api/users/").to_string();
            if let Some(status) = inner.failures.get_mut(&login).and_then(VecDeque::pop_front) {
                let status = StatusCode::from_u16(status).unwrap();
                let mut response =
                    text(status, &format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")));
                if status == StatusCode::TOO_MANY_REQUESTS {
                    response.headers_mut().insert("retry-after", "0".parse().unwrap());
                }
                return response;
            }
            let Some(found) = inner.users.get_mut(&login) else { return text(StatusCode::NOT_FOUND, "Not Found") };
            match method {
                Method::GET => axum::Json(found.clone()).into_response(),
                Method::PATCH => {
                    let Ok(Value::Object(given)) = serde_json::from_slice::<Value>(&body) else {
                        return text(StatusCode::BAD_REQUEST, "");
                    };
                    // Woodpecker's PatchUser: email, avatar and admin come from the body.
                    found["email"] = given.get("email").cloned().unwrap_or(json!(""));
                    found["avatar_url"] = given.get("avatar_url").cloned().unwrap_or(json!(""));
                    found["admin"] = given.get("admin").cloned().unwrap_or(json!(false));
                    axum::Json(found.clone()).into_response()
                }
                _ => text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed"),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}
