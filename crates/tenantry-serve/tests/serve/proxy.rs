//! A counting proxy in front of the test apiserver: each `serve` replica
//! talks to its own proxy (plain HTTP on 127.0.0.1), which forwards with the
//! admin's client certificate — impersonating the controller's
//! ServiceAccount when asked — and records every request's method and
//! path. That is how the tests count the write requests of each process.

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode};
use base64::Engine as _;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Forward {
    client: reqwest::Client,
    upstream: String,
    impersonate: Option<(String, Vec<String>)>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

/// A running proxy.
pub struct Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The admin's client identity and the CA, from the testenv kubeconfig.
pub fn admin_client(kube: &tenantry_testenv::Kube) -> reqwest::Client {
    let text = std::fs::read_to_string(&kube.kubeconfig).unwrap();
    let config: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let decode =
        |value: &serde_json::Value| base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap()).unwrap();
    let user = &config["users"][0]["user"];
    let mut pem = decode(&user["client-certificate-data"]);
    pem.extend(decode(&user["client-key-data"]));
    let ca = decode(&config["clusters"][0]["cluster"]["certificate-authority-data"]);
    reqwest::Client::builder()
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap()
}

impl Proxy {
    /// Start a proxy to the test apiserver; with `impersonate`, every
    /// request is made as that user and groups.
    pub async fn start(kube: &tenantry_testenv::Kube, impersonate: Option<(String, Vec<String>)>) -> Proxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = Forward {
            client: admin_client(kube),
            upstream: kube.url.trim_end_matches('/').to_string(),
            impersonate,
            seen: Arc::clone(&seen),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy { url, seen, task }
    }

    /// Requests so far, as (method, path).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().clone()
    }

    /// Write requests so far that are not about a Lease (leader election).
    pub fn writes(&self) -> Vec<(String, String)> {
        self.requests()
            .into_iter()
            .filter(|(method, path)| method != "GET" && !path.contains("/leases"))
            .filter(|(_, path)| !path.contains("selfsubjectaccessreviews"))
            .collect()
    }
}

async fn forward(State(state): State<Forward>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    state.seen.lock().unwrap().push((parts.method.to_string(), parts.uri.path().to_string()));
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return Response::builder().status(StatusCode::BAD_REQUEST).body(Body::empty()).unwrap();
    };
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
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
            builder.body(Body::from_stream(response.bytes_stream())).unwrap()
        }
        Err(error) => Response::builder().status(StatusCode::BAD_GATEWAY).body(Body::from(error.to_string())).unwrap(),
    }
}
