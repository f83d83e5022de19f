//! A counting proxy in front of the test apiserver (feature `proxy`): a
//! process under test talks to its own proxy (plain HTTP on 127.0.0.1),
//! which forwards with the admin's client certificate — impersonating
//! another identity when asked — and records every request's method, path
//! and time. That is how `serve`'s tests count each replica's write
//! requests, how its benchmark counts idle API requests, and how the fault
//! tests cut a peer off after a number of writes (it also fronts a
//! plain-HTTP peer such as a private OpenBao).

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode};
use base64::Engine as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Clone)]
struct Forward {
    client: reqwest::Client,
    upstream: String,
    impersonate: Option<(String, Vec<String>)>,
    seen: Arc<Mutex<Vec<Seen>>>,
    refusing: Arc<AtomicBool>,
}

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// A watch (`?watch=true`), not a list or a get.
    pub watch: bool,
    pub at: Instant,
}

/// A running proxy; dropping it stops it.
#[derive(Debug)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    refusing: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn proxy_error(detail: impl std::fmt::Display) -> crate::Error {
    crate::Error::Client { peer: "kube-apiserver", detail: format!("counting proxy: {detail}") }
}

/// The admin's client identity and the CA, from the testenv kubeconfig.
fn admin_client(kube: &crate::Kube) -> crate::Result<reqwest::Client> {
    let text = std::fs::read_to_string(&kube.kubeconfig).map_err(proxy_error)?;
    let config: serde_json::Value = serde_saphyr::from_str(&text).map_err(proxy_error)?;
    let decode = |value: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or_default()).map_err(proxy_error)
    };
    let user = &config["users"][0]["user"];
    let mut pem = decode(&user["client-certificate-data"])?;
    pem.extend(decode(&user["client-key-data"])?);
    let ca = decode(&config["clusters"][0]["cluster"]["certificate-authority-data"])?;
    reqwest::Client::builder()
        .identity(reqwest::Identity::from_pem(&pem).map_err(proxy_error)?)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).map_err(proxy_error)?)
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(proxy_error)
}

impl Proxy {
    /// Start a proxy to the test apiserver; with `impersonate`, every
    /// request is made as that user and groups.
    pub async fn start(kube: &crate::Kube, impersonate: Option<(String, Vec<String>)>) -> crate::Result<Proxy> {
        Proxy::serve(admin_client(kube)?, &kube.url, impersonate).await
    }

    /// Start a proxy to a plain-HTTP peer (a private OpenBao), passing every
    /// header through.
    pub async fn start_plain(upstream: &str) -> crate::Result<Proxy> {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(5))
            .build()
            .map_err(proxy_error)?;
        Proxy::serve(client, upstream, None).await
    }

    async fn serve(
        client: reqwest::Client,
        upstream: &str,
        impersonate: Option<(String, Vec<String>)>,
    ) -> crate::Result<Proxy> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let refusing = Arc::new(AtomicBool::new(false));
        let state = Forward {
            refusing: Arc::clone(&refusing),
            client,
            upstream: upstream.trim_end_matches('/').to_string(),
            impersonate,
            seen: Arc::clone(&seen),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(proxy_error)?;
        let url = format!("http://{}", listener.local_addr().map_err(proxy_error)?);
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Proxy { url, seen, refusing, task })
    }

    /// While set, every request is recorded and answered 503 at once, as if
    /// the apiserver were cut off from this process.
    pub fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Requests so far, as (method, path).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.seen().into_iter().map(|s| (s.method, s.path)).collect()
    }

    /// Write requests so far that are not about a Lease (leader election).
    pub fn writes(&self) -> Vec<(String, String)> {
        self.requests().into_iter().filter(|(method, path)| method != "GET" && !path.contains("/leases")).collect()
    }
}

async fn forward(State(state): State<Forward>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    if let Ok(mut seen) = state.seen.lock() {
        let watch = parts.uri.query().is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        seen.push(Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            watch,
            at: Instant::now(),
        });
    }
    if state.refusing.load(Ordering::SeqCst) {
        return status_only(StatusCode::SERVICE_UNAVAILABLE, "refused by the test proxy".to_string());
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return status_only(StatusCode::BAD_REQUEST, String::new());
    };
    let Ok(method) = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()) else {
        return status_only(StatusCode::METHOD_NOT_ALLOWED, String::new());
    };
    let mut upstream = state.client.request(method, format!("{}{path}", state.upstream));
    for (name, value) in &parts.headers {
        if name != "host" && name != "authorization" && !name.as_str().starts_with("impersonate-") {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    if let Some((user, groups)) = &state.impersonate {
        upstream = upstream.header("Impersonate-User", user);
        for group in groups {
            upstream = upstream.header("Impersonate-Group", group);
        }
    }
    match upstream.body(bytes).send().await {
        Ok(response) => {
            let mut builder = Response::builder().status(response.status().as_u16());
            for (name, value) in response.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    builder = builder.header(name.as_str(), value.as_bytes());
                }
            }
            // A stream already open (a watch) is cut too when refusing starts.
            let refusing = Arc::clone(&state.refusing);
            let stream = futures::StreamExt::take_while(response.bytes_stream(), move |_| {
                futures::future::ready(!refusing.load(Ordering::SeqCst))
            });
            builder
                .body(Body::from_stream(stream))
                .unwrap_or_else(|e| status_only(StatusCode::BAD_GATEWAY, e.to_string()))
        }
        Err(error) => status_only(StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

fn status_only(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
}
