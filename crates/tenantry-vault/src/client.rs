//! The HTTP client for Vault's API: token and namespace headers, error
//! mapping, and the request counter that proves a no-op reconcile writes nothing.

use crate::config::{Token, VaultConfig};
use crate::{Error, Result};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many requests this target sent, and how many of them could change something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every request (GET, LIST, POST, PUT, DELETE).
    pub requests: u64,
    /// Requests other than GET and LIST. Some POSTs only read (an alias
    /// lookup); they are counted here anyway, so zero means nothing was written.
    pub writes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    writes: AtomicU64,
}

#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Token,
    namespace: Option<String>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("namespace", &self.namespace).finish_non_exhaustive()
    }
}

fn list_method() -> Result<Method> {
    Method::from_bytes(b"LIST").map_err(|e| Error::Invalid(format!("LIST method: {e}")))
}

impl Client {
    pub(crate) fn new(config: &VaultConfig, token: Token) -> Result<Client> {
        let address = config.address.trim_end_matches('/');
        if !(address.starts_with("http://") || address.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "[vault] address `{address}` must start with http:// or https:// (e.g. https://vault.example.org)"
            )));
        }
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(ca_file) = &config.ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|e| Error::Invalid(format!("cannot read the [vault] ca_file {}: {e}", ca_file.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Invalid(format!(
                    "the [vault] ca_file {} is not a PEM certificate bundle: {e}",
                    ca_file.display()
                ))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| Error::Invalid(format!("building the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: format!("{address}/v1/"),
            token,
            namespace: config.namespace.clone(),
            counters: Arc::default(),
        })
    }

    pub(crate) fn address(&self) -> &str {
        self.base.trim_end_matches("/v1/")
    }

    pub(crate) fn counts(&self) -> RequestCounts {
        RequestCounts {
            requests: self.counters.requests.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// One request. `Ok(None)` when the path does not exist (404 to a read or
    /// a delete) or a write answered without a body (204); the JSON body
    /// otherwise.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Option<Value>> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let method_name = method.as_str().to_string();
        if method_name != "GET" && method_name != "LIST" {
            self.counters.writes.fetch_add(1, Ordering::Relaxed);
        }
        let mut request = self.http.request(method, format!("{}{}", self.base, path.trim_start_matches('/')));
        request = request.header("X-Vault-Token", self.token.expose());
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| Error::Unreachable {
            address: self.address().to_string(),
            // reqwest's message names the URL, never the headers; its causes
            // say why (refused, timed out, a certificate).
            message: tenantry_core::target::error_chain(&e),
        })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| Error::Unreachable {
            address: self.address().to_string(),
            message: format!("reading the answer to {method_name} {path}: {}", tenantry_core::target::error_chain(&e)),
        })?;
        let json: Option<Value> = if text.trim().is_empty() { None } else { serde_json::from_str(&text).ok() };
        let reads = method_name == "GET" || method_name == "LIST" || method_name == "DELETE";
        match status {
            // An answer that is not JSON (a proxy's page, a truncated body)
            // is not "nothing": a list read as None would say all is absent.
            200..=299 if json.is_none() && !text.trim().is_empty() => Err(Error::Unexpected {
                method: method_name,
                path: path.to_string(),
                message: format!("HTTP {status}, not JSON: {}", tenantry_core::target::unparsed_excerpt(&text, 120)),
            }),
            // Vault says "absent" to a read with 404; an empty success to a
            // GET or LIST (a proxy's 204) is not that, and read as absent
            // the plan would create what exists.
            200..=299 if json.is_none() && (method_name == "GET" || method_name == "LIST") => Err(Error::Unexpected {
                method: method_name,
                path: path.to_string(),
                message: format!("HTTP {status} without a body to a read"),
            }),
            200..=299 => Ok(json),
            // Absent is an answer for a read or a delete; for a write it means
            // the mount is missing, and the write must not pass as done.
            404 if reads => Ok(None),
            404 => Err(Error::NoRoute { method: method_name, path: path.to_string(), message: messages(&json, &text) }),
            403 => Err(Error::PermissionDenied { method: method_name, path: path.to_string() }),
            _ => Err(Error::Http {
                method: method_name,
                path: path.to_string(),
                status,
                message: messages(&json, &text),
            }),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Option<Value>> {
        self.call(Method::GET, path, None).await
    }

    /// The `data` of a read, or `None` when absent. A found object always
    /// has `data`: without it, it would read as empty and be overwritten.
    pub(crate) async fn read(&self, path: &str) -> Result<Option<Value>> {
        let Some(mut answer) = self.get(path).await? else { return Ok(None) };
        if !answer.get("data").is_some_and(Value::is_object) {
            return Err(unexpected("GET", path, "no data object", &answer));
        }
        Ok(answer.get_mut("data").map(Value::take))
    }

    /// `LIST path`: the keys and, where the endpoint returns it, `key_info`.
    pub(crate) async fn list(&self, path: &str) -> Result<(Vec<String>, serde_json::Map<String, Value>)> {
        let Some(answer) = self.call(list_method()?, path, None).await? else {
            return Ok((Vec::new(), Default::default()));
        };
        // A wrapped answer holds the list elsewhere: refused first, whatever
        // else it carries.
        if answer.get("wrap_info").is_some_and(|w| !w.is_null()) {
            let what = "a response-wrapped answer (wrap_info) instead of data.keys; tenantry's token must not be forced to wrap LIST";
            return Err(unexpected("LIST", path, what, &answer));
        }
        let data = answer.get("data").cloned().unwrap_or(Value::Null);
        let Some(keys) = data["keys"].as_array() else {
            // Vault answers an empty LIST with 404 (above), or with 200, no
            // data and the warnings it had to give.
            let no_data = data.is_null() || data.as_object().is_some_and(serde_json::Map::is_empty);
            if no_data && answer["warnings"].as_array().is_some_and(|w| !w.is_empty()) {
                return Ok((Vec::new(), Default::default()));
            }
            // Anything else is not an empty list: read as one, the plan would
            // create what exists.
            return Err(unexpected("LIST", path, "no data.keys", &answer));
        };
        let keys = keys.iter().filter_map(Value::as_str).map(String::from).collect();
        let info = data["key_info"].as_object().cloned().unwrap_or_default();
        Ok((keys, info))
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Result<Option<Value>> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub(crate) async fn put(&self, path: &str, body: &Value) -> Result<Option<Value>> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// Delete; deleting what is absent succeeds (idempotent apply).
    pub(crate) async fn delete(&self, path: &str) -> Result<()> {
        self.call(Method::DELETE, path, None).await.map(|_| ())
    }
}

/// An answer of the wrong shape, named by its fields only: the values of a
/// Vault answer may be secrets.
fn unexpected(method: &str, path: &str, what: &str, answer: &Value) -> Error {
    let fields =
        |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default();
    Error::Unexpected {
        method: method.to_string(),
        path: path.to_string(),
        message: format!("{what} (fields: {}; data fields: {})", fields(answer), fields(&answer["data"])),
    }
}

/// Vault's `errors` array as one line, or the raw text when it sent none.
fn messages(json: &Option<Value>, text: &str) -> String {
    let joined = json
        .as_ref()
        .and_then(|j| j["errors"].as_array())
        .map(|errors| errors.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "))
        .unwrap_or_default();
    if joined.is_empty() { text.chars().take(300).collect() } else { joined }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_testenv::fixed_answer::{fixed_answer, json_ok, ok_head};

    fn client(address: &str) -> Client {
        let config = VaultConfig::new(address);
        let token = config.token_from(|_| Some("s.not-a-real-token".to_string())).unwrap();
        Client::new(&config, token).unwrap()
    }

    #[tokio::test]
    async fn an_empty_list_with_warnings_is_empty_and_other_shapes_are_refused_by_their_fields() {
        let warned = json_ok(r#"{"data":null,"warnings":["no entries under this prefix"]}"#).unwrap();
        let (keys, info) = client(&warned).list("identity/entity/id").await.unwrap();
        assert!(keys.is_empty() && info.is_empty());

        let wrapped =
            json_ok(r#"{"data":null,"warnings":["w"],"wrap_info":{"token":"hvs.wrapping-token-value"}}"#).unwrap();
        let error = client(&wrapped).list("identity/entity/id").await.unwrap_err().to_string();
        assert!(error.contains("wrap_info") && !error.contains("hvs.wrapping"), "{error}");

        // A read without data is not an empty object; its values stay unquoted.
        let odd = json_ok(r#"{"auth":{"client_token":"hvs.secret-value"}}"#).unwrap();
        let error = client(&odd).read("sys/policies/acl/x").await.unwrap_err().to_string();
        assert!(error.contains("no data object") && error.contains("fields: auth"), "{error}");
        let listed_as_text = json_ok(r#"{"data":"keys: a, b","warnings":["w"]}"#).unwrap();
        let error = client(&listed_as_text).list("identity/entity/id").await.unwrap_err().to_string();
        assert!(error.contains("no data.keys"), "{error}");
        assert!(!error.contains("hvs.secret"), "{error}");
    }

    #[tokio::test]
    async fn an_empty_success_to_a_read_is_not_absent() {
        let empty = fixed_answer("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n".to_string(), "").unwrap();
        let error = client(&empty).read("sys/policies/acl/x").await.unwrap_err().to_string();
        assert!(error.contains("HTTP 204 without a body"), "{error}");
        let error = client(&empty).list("identity/entity/id").await.unwrap_err().to_string();
        assert!(error.contains("HTTP 204 without a body"), "{error}");
    }

    #[tokio::test]
    async fn broken_json_is_described_not_quoted() {
        let body = r#"{"data":{"value":"s3cret-kv-value""#;
        let broken = fixed_answer(ok_head("application/json", body), body).unwrap();
        let error = client(&broken).read("kv/data/app").await.unwrap_err().to_string();
        assert!(error.contains("bytes of broken JSON") && !error.contains("s3cret"), "{error}");
    }
}
