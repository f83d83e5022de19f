//! The HTTP side shared by both providers: bearer tokens (a static token,
//! or Keycloak's client-credentials grant, refreshed before it expires),
//! timeouts, error bodies in the admin's words, and the request counter
//! that proves a no-op reconcile costs O(groups) requests and no write.

use crate::{Error, Result};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tenantry_core::target::error_chain;
use tenantry_secret::Secret;
use tokio::sync::Mutex;

/// How many requests the target sent, and how many could change something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every request to the identity provider's API (token requests excluded).
    pub requests: u64,
    /// Requests other than GET.
    pub writes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    writes: AtomicU64,
}

/// Where the bearer token comes from.
pub(crate) enum Auth {
    /// A token from a file or the environment.
    Static(Secret),
    /// Keycloak's client-credentials grant at `token_url`.
    ClientCredentials { token_url: String, client_id: String, secret: Secret, cached: Mutex<Option<(String, Instant)>> },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Static(_) => f.write_str("Auth::Static(<redacted>)"),
            Auth::ClientCredentials { client_id, .. } => write!(f, "Auth::ClientCredentials({client_id})"),
        }
    }
}

/// An answer: status and JSON body (`Null` when empty, a string when not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    /// Base of every API path, without a trailing `/`.
    base: String,
    auth: Arc<Auth>,
    counters: Arc<Counters>,
}

impl Http {
    pub(crate) fn new(base: String, auth: Auth, ca_file: Option<&std::path::Path>) -> Result<Http> {
        Ok(Http { client: client(ca_file)?, base, auth: Arc::new(auth), counters: Arc::default() })
    }

    pub(crate) fn counts(&self) -> RequestCounts {
        RequestCounts {
            requests: self.counters.requests.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    async fn bearer(&self) -> Result<String> {
        match &*self.auth {
            Auth::Static(secret) => Ok(secret.expose().to_string()),
            Auth::ClientCredentials { token_url, client_id, secret, cached } => {
                let mut cached = cached.lock().await;
                if let Some((token, until)) = &*cached
                    && Instant::now() < *until
                {
                    return Ok(token.clone());
                }
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", secret.expose()),
                ];
                let response = self
                    .client
                    .post(token_url)
                    .form(&form)
                    .send()
                    .await
                    .map_err(|e| Error::Unreachable { url: token_url.clone(), message: error_chain(&e) })?;
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let token = body["access_token"].as_str().filter(|_| status == 200).ok_or_else(|| {
                    Error::Credentials(format!(
                        "the client-credentials grant of client `{client_id}` was refused (HTTP {status}: {})",
                        message(&body, "")
                    ))
                })?;
                // Refresh a little before the server's expiry.
                let lifetime = body["expires_in"].as_u64().unwrap_or(60).saturating_sub(20).max(5);
                *cached = Some((token.to_string(), Instant::now() + Duration::from_secs(lifetime)));
                Ok(token.to_string())
            }
        }
    }

    /// One request to `<base>/<path>` with `query`; any status is an answer,
    /// only a transport failure is an error.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer> {
        let token = self.bearer().await?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if method != Method::GET {
            self.counters.writes.fetch_add(1, Ordering::Relaxed);
        }
        let url = format!("{}/{}", self.base, path.trim_start_matches('/'));
        let mut request = self.client.request(method, &url).bearer_auth(token).query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response =
            request.send().await.map_err(|e| Error::Unreachable { url: url.clone(), message: error_chain(&e) })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| Error::Unreachable {
            url: url.clone(),
            message: format!("reading the answer: {}", error_chain(&e)),
        })?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body })
    }

    /// A GET that must answer a JSON array, or, with `field`, an object
    /// holding one there (Authentik's `results`). Anything else is refused:
    /// read as empty, a listing would say "absent" about what exists.
    pub(crate) async fn expect_list(
        &self,
        path: &str,
        query: &[(&str, &str)],
        field: Option<&str>,
    ) -> Result<(Vec<Value>, Value)> {
        let mut answer = self.expect(Method::GET, path, query, None).await?;
        let list = match field {
            Some(field) => answer.body.get_mut(field),
            None => Some(&mut answer.body),
        };
        // Taken only once it is a list, so an error quotes what came.
        match list {
            Some(Value::Array(items)) => {
                let items = std::mem::take(items);
                Ok((items, answer.body))
            }
            _ => Err(Error::Http {
                method: "GET".to_string(),
                path: path.to_string(),
                status: answer.status,
                message: format!(
                    "expected a list{}, got: {}",
                    field.map(|f| format!(" in `{f}`")).unwrap_or_default(),
                    message(&answer.body, "(empty answer)")
                ),
            }),
        }
    }

    /// A request that must succeed (2xx); the error names the call and the server's words.
    pub(crate) async fn expect(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer> {
        let name = method.as_str().to_string();
        let answer = self.send(method, path, query, body).await?;
        if (200..300).contains(&answer.status) {
            return Ok(answer);
        }
        Err(Error::Http {
            method: name,
            path: path.to_string(),
            status: answer.status,
            message: message(&answer.body, ""),
        })
    }
}

fn client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client> {
    let mut builder =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).connect_timeout(Duration::from_secs(10));
    if let Some(ca_file) = ca_file {
        let pem = std::fs::read(ca_file)
            .map_err(|e| Error::Invalid(format!("cannot read the [idp] ca_file {}: {e}", ca_file.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::Invalid(format!("the [idp] ca_file {} is not a PEM certificate bundle: {e}", ca_file.display()))
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder.build().map_err(|e| Error::Invalid(format!("building the HTTP client: {e}")))
}

/// The server's own words from an error body: Keycloak's `errorMessage` /
/// `error_description` / `error`, Authentik's `detail` or field errors.
pub(crate) fn message(body: &Value, fallback: &str) -> String {
    for key in ["errorMessage", "error_description", "error", "detail"] {
        if let Some(text) = body[key].as_str() {
            return text.to_string();
        }
    }
    if let Some(fields) = body.as_object() {
        let parts: Vec<String> = fields
            .iter()
            .filter_map(|(field, value)| {
                let texts: Vec<&str> = value.as_array()?.iter().filter_map(Value::as_str).collect();
                (!texts.is_empty()).then(|| format!("{field}: {}", texts.join(" ")))
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    match body {
        Value::String(text) => text.chars().take(300).collect(),
        Value::Null => fallback.to_string(),
        other => other.to_string().chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_testenv::fixed_answer::json_ok;

    fn http(base: String) -> Http {
        let token =
            tenantry_secret::secret(None, &["T"], "token", "token_file", &|_| Some("idp-token".into())).unwrap();
        Http::new(base, Auth::Static(token), None).unwrap()
    }

    #[tokio::test]
    async fn a_list_of_the_wrong_shape_is_refused_quoting_what_came() {
        let base = json_ok(r#"{"errorMessage":"realm is being migrated"}"#).unwrap();
        let error = http(base.clone()).expect_list("users", &[], None).await.unwrap_err().to_string();
        assert!(error.contains("expected a list, got: realm is being migrated"), "{error}");
        let error = http(base).expect_list("core/users/", &[], Some("results")).await.unwrap_err().to_string();
        assert!(error.contains("expected a list in `results`, got: realm is being migrated"), "{error}");

        let page = json_ok(r#"{"pagination":{"next":0},"results":[{"pk":1}]}"#).unwrap();
        let (items, rest) = http(page).expect_list("core/users/", &[], Some("results")).await.unwrap();
        assert_eq!((items.len(), rest["pagination"]["next"].as_u64()), (1, Some(0)));
    }
}
