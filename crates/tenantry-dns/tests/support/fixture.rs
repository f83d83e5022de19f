//! A local stand-in for the Cloudflare API v4 (DNS records), on 127.0.0.1,
//! following the documented request and response shapes: the envelope
//! `{success, errors: [{code, message}], messages, result, result_info}`,
//! zone lookup by `?name=`, paginated record listing (`page`, `per_page`,
//! capped at 3 here so small zones span pages), POST/PUT/DELETE of records,
//! `Authorization: Bearer`, error 81053 for a CNAME next to other records at
//! a name, 429 with `Retry-After`, and proxied records reported with ttl 1.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub const TOKEN: &str = "fixture-token-0123456789";
const ZONE_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const ZONE: &str = "lab.test";
const MAX_PER_PAGE: usize = 3;

#[derive(Default)]
struct Inner {
    records: Vec<Value>,
    next_id: u64,
    throttle: usize,
    /// Record listings left to answer `success: true` without `result`.
    listings_without_result: usize,
    log: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct Cloudflare {
    addr: SocketAddr,
    shared: Shared,
}

impl Cloudflare {
    pub async fn start() -> Cloudflare {
        let shared: Shared = Arc::default();
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Cloudflare { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.lock().unwrap()
    }

    pub fn seed(&self, name: &str, rtype: &str, content: &str, comment: Option<&str>) {
        let mut inner = self.inner();
        let record = new_record(
            &mut inner,
            &json!({ "name": name, "type": rtype, "content": content, "ttl": 60,
            "proxied": false, "comment": comment }),
        );
        inner.records.push(record);
    }

    pub fn record(&self, name: &str) -> Option<Value> {
        self.inner().records.iter().find(|r| r["name"] == name).cloned()
    }

    /// Change a record's comment behind the client's back.
    pub fn set_comment(&self, id: &str, comment: &str) {
        let mut inner = self.inner();
        let record = inner.records.iter_mut().find(|r| r["id"] == id).unwrap();
        record["comment"] = json!(comment);
    }

    pub fn count(&self) -> usize {
        self.inner().records.len()
    }

    pub fn log(&self) -> Vec<(String, String)> {
        self.inner().log.clone()
    }

    pub fn clear_log(&self) {
        self.inner().log.clear();
    }

    /// Answer the next `n` requests with 429 and `Retry-After: 1`.
    pub fn throttle(&self, n: usize) {
        self.inner().throttle = n;
    }

    /// Answer the next `n` zone or record listings with an envelope that
    /// says success and holds no `result` (a broken proxy, an API change).
    pub fn drop_listing_results(&self, n: usize) {
        self.inner().listings_without_result = n;
    }
}

fn new_record(inner: &mut Inner, body: &Value) -> Value {
    inner.next_id += 1;
    let proxied = body["proxied"].as_bool().unwrap_or(false);
    json!({
        "id": format!("{:032x}", inner.next_id),
        "zone_id": ZONE_ID,
        "zone_name": ZONE,
        "name": body["name"],
        "type": body["type"],
        "content": body["content"],
        "proxiable": true,
        "proxied": proxied,
        // Proxied records have an automatic TTL, reported as 1.
        "ttl": if proxied { json!(1) } else { body["ttl"].clone() },
        "comment": body.get("comment").cloned().unwrap_or(Value::Null),
        "tags": [],
        "meta": {},
        "created_on": "2026-11-29T04:00:00.000000Z",
        "modified_on": "2026-11-29T04:00:00.000000Z",
    })
}

fn failure(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "success": false, "errors": [{ "code": code, "message": message }],
        "messages": [], "result": null })),
    )
        .into_response()
}

fn success(result: Value, result_info: Option<Value>) -> Response {
    let mut body = json!({ "success": true, "errors": [], "messages": [], "result": result });
    if let Some(info) = result_info {
        body["result_info"] = info;
    }
    axum::Json(body).into_response()
}

fn paginate(items: Vec<Value>, query: &HashMap<String, String>) -> Response {
    let per_page = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(100_usize).clamp(1, MAX_PER_PAGE);
    let page = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1_usize).max(1);
    let total = items.len();
    let chunk: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let info = json!({ "page": page, "per_page": per_page, "count": chunk.len(), "total_count": total,
        "total_pages": total.div_ceil(per_page).max(1) });
    success(Value::Array(chunk), Some(info))
}

async fn handle(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let mut inner = shared.lock().unwrap();
    inner.log.push((method.to_string(), uri.to_string()));
    if inner.throttle > 0 {
        inner.throttle -= 1;
        let mut response =
            failure(StatusCode::TOO_MANY_REQUESTS, 971, "Please wait and consider throttling your request speed");
        response.headers_mut().insert("retry-after", "1".parse().unwrap());
        return response;
    }
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        return failure(StatusCode::FORBIDDEN, 10000, "Authentication error");
    }
    let query: HashMap<String, String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let path = uri.path().strip_prefix("/client/v4/").unwrap_or_default().to_string();
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() >= 2 && segments[1] != ZONE_ID {
        return failure(
            StatusCode::NOT_FOUND,
            7003,
            "Could not route to /zones, perhaps your object identifier is invalid?",
        );
    }
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match (method, segments.as_slice()) {
        (Method::GET, ["zones"] | ["zones", _, "dns_records"]) if inner.listings_without_result > 0 => {
            inner.listings_without_result -= 1;
            axum::Json(json!({ "success": true, "errors": [], "messages": [] })).into_response()
        }
        (Method::GET, ["zones"]) => {
            let zones: Vec<Value> = [json!({ "id": ZONE_ID, "name": ZONE, "status": "active" })]
                .into_iter()
                .filter(|z| query.get("name").is_none_or(|n| z["name"] == n.as_str()))
                .collect();
            paginate(zones, &query)
        }
        (Method::GET, ["zones", _, "dns_records"]) => {
            let matching: Vec<Value> = inner
                .records
                .iter()
                .filter(|r| query.get("name").is_none_or(|n| r["name"] == n.as_str()))
                .filter(|r| query.get("type").is_none_or(|t| r["type"] == t.as_str()))
                .cloned()
                .collect();
            paginate(matching, &query)
        }
        (Method::POST, ["zones", _, "dns_records"]) => {
            let clash = inner
                .records
                .iter()
                .any(|r| r["name"] == parsed["name"] && (r["type"] == "CNAME" || parsed["type"] == "CNAME"));
            if clash {
                return failure(
                    StatusCode::BAD_REQUEST,
                    81053,
                    "An A, AAAA, or CNAME record with that host already exists.",
                );
            }
            let record = new_record(&mut inner, &parsed);
            inner.records.push(record.clone());
            success(record, None)
        }
        (Method::PUT, ["zones", _, "dns_records", id]) => {
            let Some(index) = inner.records.iter().position(|r| r["id"] == *id) else {
                return failure(StatusCode::NOT_FOUND, 81044, "Record does not exist.");
            };
            let mut record = new_record(&mut inner, &parsed);
            record["id"] = json!(id);
            inner.records[index] = record.clone();
            success(record, None)
        }
        (Method::DELETE, ["zones", _, "dns_records", id]) => {
            let before = inner.records.len();
            inner.records.retain(|r| r["id"] != *id);
            if inner.records.len() == before {
                return failure(StatusCode::NOT_FOUND, 81044, "Record does not exist.");
            }
            success(json!({ "id": id }), None)
        }
        _ => failure(StatusCode::NOT_FOUND, 7000, "No route for that URI"),
    }
}
