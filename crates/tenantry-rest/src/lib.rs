//! A small JSON REST client for targets whose peer is an HTTP API with a
//! token (the forge, Woodpecker): every request has a timeout, is counted
//! (a no-op plan is proved by its request count), and is retried with
//! exponential backoff while the peer answers 429 (any method: the request
//! was not processed) or 5xx (idempotent methods only), honouring
//! `Retry-After`. What the peer said on failure is quoted in the error.
//! The token is never printed: it lives in a [`Secret`].

use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tenantry_core::target::unparsed_excerpt;
use tenantry_core::{ErrorKind, TargetError};
pub use tenantry_secret::Secret;

/// How a failed request ended.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The peer answered, and refused.
    #[error("{method} {path}: HTTP {status}: {message}")]
    Status { method: Method, path: String, status: u16, message: String },
    /// The peer kept answering 429 or 5xx.
    #[error("{method} {path}: HTTP {status} after {attempts} attempts (retried with backoff): {message}")]
    Exhausted { method: Method, path: String, status: u16, attempts: u32, message: String },
    /// The peer could not be reached (or timed out).
    #[error("{method} {path}: {message}")]
    Unreachable { method: Method, path: String, message: String },
    /// The answer was not the JSON expected.
    #[error("{method} {path}: unexpected answer: {message}")]
    Decode { method: Method, path: String, message: String },
}

impl RestError {
    /// A GET whose answer parsed but is not the `expected` shape, quoted in
    /// part (read as empty instead, the plan would create what exists).
    pub fn unexpected(path: &str, expected: &str, body: &Value) -> RestError {
        RestError::Decode {
            method: Method::GET,
            path: path.to_string(),
            message: format!("expected {expected}, got {}", excerpt(&body.to_string())),
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. } | RestError::Exhausted { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// As a target error: 401/403 forbidden, 404 not found, 409 conflict,
    /// other 4xx invalid, exhausted retries and unreachable peers unavailable
    /// (exhausted ones not retryable: they were retried here).
    pub fn into_target_error(self) -> TargetError {
        let kind = match &self {
            RestError::Status { status: 401 | 403, .. } => ErrorKind::Forbidden,
            RestError::Status { status: 404, .. } => ErrorKind::NotFound,
            RestError::Status { status: 409, .. } => ErrorKind::Conflict,
            RestError::Status { .. } | RestError::Decode { .. } => ErrorKind::Invalid,
            RestError::Exhausted { .. } | RestError::Unreachable { .. } => ErrorKind::Unavailable,
        };
        // This client has already retried an exhausted request: the engine
        // trying the change again would multiply the attempts.
        let retried = matches!(self, RestError::Exhausted { .. });
        let error = TargetError::new(kind, self.to_string());
        if retried { error.retryable(false) } else { error }
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all (the first one included).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles each time.
    pub first_backoff: Duration,
    /// The longest wait honoured (a longer `Retry-After` fails the request).
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 4, first_backoff: Duration::from_millis(250), max_wait: Duration::from_secs(30) }
    }
}

/// Requests sent, and how many of them could change something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub requests: u64,
    /// Everything but GET.
    pub writes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    writes: AtomicU64,
}

/// How requests authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: token <secret>` (Gitea, Forgejo).
    Token,
    /// `Authorization: Bearer <secret>` (Woodpecker).
    Bearer,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The JSON body (`Null` when empty).
    pub body: Value,
    /// `X-Total-Count`, when the peer sent it (paginated lists).
    pub total_count: Option<u64>,
}

impl Reply {
    /// The items of a list answer: a JSON array, `null` (Go's empty slice)
    /// or `{"data": [...]}` (Gitea's searches). Anything else is refused —
    /// read as an empty page, it would end the list early and the plan would
    /// create what exists. `request` names the request in the error.
    pub fn into_items(self, request: &str) -> Result<Vec<Value>, RestError> {
        match self.body {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            Value::Object(mut fields) => match fields.remove("data") {
                Some(Value::Array(items)) => Ok(items),
                Some(Value::Null) => Ok(Vec::new()),
                Some(other) => {
                    // Put back, so the error quotes what came.
                    fields.insert("data".to_string(), other);
                    Err(RestError::unexpected(request, "a list", &Value::Object(fields)))
                }
                None => Err(RestError::unexpected(request, "a list", &Value::Object(fields))),
            },
            other => Err(RestError::unexpected(request, "a list", &other)),
        }
    }
}

#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    base: String,
    secret: Secret,
    scheme: Scheme,
    retry: Retry,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient").field("base", &self.base).field("scheme", &self.scheme).finish_non_exhaustive()
    }
}

/// Basic credentials for one request instead of the token header (Gitea
/// mints and lists tokens only for basic authentication; its password may
/// be the token itself).
#[derive(Debug, Clone, Copy)]
pub struct Basic<'a> {
    pub user: &'a str,
}

impl RestClient {
    /// `base` is the API root (`https://forge.example.org/api/v1`), without a trailing slash.
    pub fn new(base: &str, secret: Secret, scheme: Scheme, timeout: Duration) -> Result<RestClient, String> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("`{base}` must start with http:// or https://"));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(RestClient { http, base, secret, scheme, retry: Retry::default(), counters: Arc::default() })
    }

    pub fn with_retry(mut self, retry: Retry) -> RestClient {
        self.retry = retry;
        self
    }

    pub fn counts(&self) -> RequestCounts {
        RequestCounts {
            requests: self.counters.requests.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    pub async fn get(&self, path: &str) -> Result<Reply, RestError> {
        self.send(Method::GET, path, None, None).await
    }

    /// A GET whose 404 means "absent" rather than an error.
    pub async fn get_optional(&self, path: &str) -> Result<Option<Reply>, RestError> {
        match self.get(path).await {
            Ok(reply) => Ok(Some(reply)),
            Err(RestError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Send one request, retrying as the module doc says. A 2xx answer is a
    /// [`Reply`]; anything else an error quoting the peer's message.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        basic: Option<Basic<'_>>,
    ) -> Result<Reply, RestError> {
        let url = format!("{}{path}", self.base);
        let idempotent = method != Method::POST;
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(method.clone(), &url).header("Accept", "application/json");
            request = match (basic, self.scheme) {
                (Some(basic), _) => request.basic_auth(basic.user, Some(self.secret.expose())),
                (None, Scheme::Token) => request.header("Authorization", format!("token {}", self.secret.expose())),
                (None, Scheme::Bearer) => request.bearer_auth(self.secret.expose()),
            };
            if let Some(body) = body {
                request = request.json(body);
            }
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            if method != Method::GET {
                self.counters.writes.fetch_add(1, Ordering::Relaxed);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) => return Err(unreachable(method, path, &e)),
            };
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let total_count = response
                .headers()
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            // A body cut off or timed out is the peer gone mid-answer, not an
            // empty answer: read as empty, a list would end early and the plan
            // would create what exists.
            let text = match response.text().await {
                Ok(text) => text,
                Err(e) => return Err(unreachable(method, path, &e)),
            };
            let retryable = status == 429 || (status >= 500 && idempotent);
            if retryable {
                let wait = retry_after.unwrap_or(backoff);
                if attempt >= self.retry.attempts || wait > self.retry.max_wait {
                    return Err(RestError::Exhausted {
                        method,
                        path: path.to_string(),
                        status,
                        attempts: attempt,
                        message: error_message(&text),
                    });
                }
                tokio::time::sleep(wait).await;
                backoff = backoff.saturating_mul(2);
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(RestError::Status {
                    method,
                    path: path.to_string(),
                    status,
                    message: error_message(&text),
                });
            }
            let body = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|e| RestError::Decode {
                    method: method.clone(),
                    path: path.to_string(),
                    message: format!("{e}: {}", unparsed_excerpt(&text, 200)),
                })?
            };
            return Ok(Reply { status, body, total_count });
        }
    }
}

/// A request that got no (whole) answer, with every cause reqwest knows
/// (`error sending request …: client error (Connect): … Connection refused`).
fn unreachable(method: Method, path: &str, error: &reqwest::Error) -> RestError {
    let chain = tenantry_core::target::error_chain(error);
    let message = if error.is_timeout() { format!("timed out: {chain}") } else { chain };
    RestError::Unreachable { method, path: path.to_string(), message }
}

/// The peer's own words: `message` (Gitea, Woodpecker JSON errors), else
/// the body's start (Woodpecker also answers plain text).
fn error_message(text: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        v.get("message").and_then(Value::as_str).or_else(|| v.get("error").and_then(Value::as_str)).map(str::to_string)
    });
    match from_json {
        Some(message) if !message.is_empty() => message,
        _ if text.trim().is_empty() => "(empty answer)".to_string(),
        _ => excerpt(text),
    }
}

fn excerpt(text: &str) -> String {
    let line: String = text.trim().chars().filter(|c| !c.is_control()).take(200).collect();
    line
}

/// `a/b c` → `a%2Fb%20c`: a path segment from roster text.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded_and_messages_quoted() {
        assert_eq!(segment("ops/infra x"), "ops%2Finfra%20x");
        assert_eq!(segment("a.b_c-d"), "a.b_c-d");
        assert_eq!(
            error_message(r#"{"message":"user does not exist [uid: 0, name: x]"}"#),
            "user does not exist [uid: 0, name: x]"
        );
        assert_eq!(error_message("user not found\n"), "user not found");
        assert_eq!(error_message(""), "(empty answer)");
    }

    fn reply(body: Value) -> Reply {
        Reply { status: 200, body, total_count: None }
    }

    #[test]
    fn list_answers_are_arrays_null_or_data_and_nothing_else() {
        use serde_json::json;
        assert_eq!(reply(json!([1, 2])).into_items("/x").unwrap(), vec![json!(1), json!(2)]);
        assert!(reply(Value::Null).into_items("/x").unwrap().is_empty());
        assert_eq!(reply(json!({"data": [3], "ok": true})).into_items("/x").unwrap(), vec![json!(3)]);
        assert!(reply(json!({"data": null})).into_items("/x").unwrap().is_empty());
        for wrong in [json!({"message": "maintenance"}), json!("busy"), json!({"data": {"a": 1}})] {
            let error = reply(wrong.clone()).into_items("/users?page=1").unwrap_err();
            assert!(matches!(error, RestError::Decode { .. }), "{error}");
            assert!(error.to_string().starts_with("GET /users?page=1: unexpected answer: expected a list"), "{error}");
            assert!(error.to_string().contains(&wrong.to_string()), "what came is quoted: {error}");
        }
    }
}
