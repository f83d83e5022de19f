//! The Cloudflare API v4: zone id by name (`GET /zones?name=`), records by
//! paginated listing (`GET /zones/<id>/dns_records?page=&per_page=`), and
//! `POST`/`PUT`/`DELETE` of single records.
//!
//! Every response is the envelope `{success, errors: [{code, message}],
//! result, result_info}`; `success: false` becomes an error quoting each
//! code and message. HTTP 429 is retried after `Retry-After`.
//!
//! Ownership is the record's comment, `managed-by tenantry user=<user>
//! platform=<platform.name>` (earlier versions wrote no `platform=`: such a
//! record is an earlier version's, claimed only through the inventory).
//! A proxied record's TTL is automatic (the API reports 1), so the roster's
//! TTL rides in the comment (`ttl=<n>`) and is read back from there.

use crate::config::{self, Secret};
use crate::{Counters, Error, Found, Listing, Result, Wanted};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tenantry_core::target::error_chain;

/// Records per listing page (the API's maximum is far above any zone budget).
const PER_PAGE: usize = 5000;
/// Attempts of one request while the API answers 429.
const ATTEMPTS: usize = 5;
/// The longest `Retry-After` honoured; longer waits fail the request instead.
const MAX_WAIT: Duration = Duration::from_secs(120);
const COMMENT_PREFIX: &str = "managed-by tenantry ";
/// Cloudflare's codes for "a record is already at that name" (81053/81054:
/// an A, AAAA or CNAME with that host; 81057/81058: an identical record).
const EXISTS: [&str; 4] = ["error 81053:", "error 81054:", "error 81057:", "error 81058:"];

#[derive(Debug)]
pub(crate) struct Cloudflare {
    http: reqwest::Client,
    base: String,
    token: Secret,
    /// Zone ids by zone name: they never change, so one lookup per zone and process.
    zone_ids: Mutex<HashMap<String, String>>,
    /// Record ids from the last listing, by (zone, name, type), for updates and deletes.
    record_ids: Mutex<HashMap<(String, String, String), String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only plain maps behind it: a panic elsewhere cannot leave them half-written.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Cloudflare {
    pub(crate) fn new(config: &crate::DnsConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Cloudflare> {
        let base = config.api_url.as_deref().unwrap_or(config::CLOUDFLARE_API_URL).trim_end_matches('/').to_string();
        let token = config::secret(
            config.api_token_file.as_deref(),
            "CLOUDFLARE_API_TOKEN",
            "Cloudflare API token",
            "api_token_file",
            env,
        )?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Cloudflare {
            http,
            base,
            token,
            zone_ids: Mutex::new(HashMap::new()),
            record_ids: Mutex::new(HashMap::new()),
        })
    }

    /// The `result` list of a listing. An answer without one is not an
    /// empty list, which would end a listing early, make a zone "missing" or
    /// a record absent — and the plan or a put create what exists.
    fn results<'a>(&self, envelope: &'a Value, operation: &str) -> Result<&'a Vec<Value>> {
        envelope.get("result").and_then(Value::as_array).ok_or_else(|| {
            let excerpt: String = envelope.to_string().chars().take(200).collect();
            self.unavailable(operation, format!("the answer has no `result` list: {excerpt}"))
        })
    }

    fn unavailable(&self, operation: &str, message: impl std::fmt::Display) -> Error {
        Error::Unavailable { server: "Cloudflare".to_string(), message: format!("{operation}: {message}") }
    }

    /// One API call, retried while rate limited; returns the envelope.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        operation: &str,
        counters: &Counters,
        write: bool,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        for attempt in 1..=ATTEMPTS {
            let mut request = self.http.request(method.clone(), &url).bearer_auth(self.token.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            if write {
                counters.write();
            } else {
                counters.read();
            }
            let response = request.send().await.map_err(|e| self.unavailable(operation, error_chain(&e)))?;
            let status = response.status();
            if status.as_u16() == 429 {
                let wait = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(1));
                if attempt == ATTEMPTS || wait > MAX_WAIT {
                    return Err(self.unavailable(
                        operation,
                        format!("rate limited (HTTP 429, Retry-After {}s) after {attempt} attempts", wait.as_secs()),
                    ));
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = response.text().await.map_err(|e| self.unavailable(operation, error_chain(&e)))?;
            let envelope: Value = serde_json::from_str(&text).map_err(|_| {
                self.unavailable(
                    operation,
                    format!(
                        "HTTP {}: not an API answer: {}",
                        status.as_u16(),
                        text.chars().take(200).collect::<String>()
                    ),
                )
            })?;
            if status.is_success() && envelope.get("success").and_then(Value::as_bool) == Some(true) {
                return Ok(envelope);
            }
            let errors: Vec<String> = envelope
                .get("errors")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| {
                    let code = e.get("code").map(Value::to_string).unwrap_or_default();
                    let message = e.get("message").and_then(Value::as_str).unwrap_or("(no message)");
                    format!("error {code}: {message}")
                })
                .collect();
            let message = format!(
                "HTTP {}: {}",
                status.as_u16(),
                if errors.is_empty() { "success is false".to_string() } else { errors.join("; ") }
            );
            return Err(match status.as_u16() {
                401 | 403 => self.unavailable(
                    operation,
                    format!("{message} (check the token in `api_token_file` or CLOUDFLARE_API_TOKEN and its DNS:Edit permission)"),
                ),
                500.. => self.unavailable(operation, message),
                _ => Error::Refused { server: "Cloudflare".to_string(), operation: operation.to_string(), message },
            });
        }
        Err(self.unavailable(operation, "rate limited"))
    }

    async fn zone_id(&self, zone: &str, counters: &Counters) -> Result<String> {
        if let Some(id) = lock(&self.zone_ids).get(zone) {
            return Ok(id.clone());
        }
        let operation = format!("looking up zone {zone}");
        let envelope =
            self.call(reqwest::Method::GET, &format!("/zones?name={zone}"), None, &operation, counters, false).await?;
        let id = self
            .results(&envelope, &operation)?
            .iter()
            .find(|z| z.get("name").and_then(Value::as_str).map(config::normalize_name).as_deref() == Some(zone))
            .and_then(|z| z.get("id").and_then(Value::as_str))
            .ok_or_else(|| Error::NoZone {
                zone: zone.to_string(),
                server: "Cloudflare".to_string(),
                detail: "no zone of that name is visible to this token".to_string(),
            })?
            .to_string();
        lock(&self.zone_ids).insert(zone.to_string(), id.clone());
        Ok(id)
    }

    pub(crate) async fn list(&self, zone: &str, counters: &Counters) -> Result<Listing> {
        let zone_id = self.zone_id(zone, counters).await?;
        let mut listing = Listing::default();
        let mut page = 1_u64;
        loop {
            let operation = format!("listing records of {zone} (page {page})");
            let path = format!("/zones/{zone_id}/dns_records?page={page}&per_page={PER_PAGE}");
            let envelope = self.call(reqwest::Method::GET, &path, None, &operation, counters, false).await?;
            let results = self.results(&envelope, &operation)?;
            let empty = results.is_empty();
            listing.records.extend(results.iter().filter_map(found));
            let total_pages = envelope.pointer("/result_info/total_pages").and_then(Value::as_u64).unwrap_or(page);
            if page >= total_pages || empty {
                break;
            }
            page += 1;
        }
        let mut ids = lock(&self.record_ids);
        ids.retain(|(z, _, _), _| z != zone);
        for record in &listing.records {
            if let Some(id) = &record.provider_id {
                ids.insert((zone.to_string(), record.name.clone(), record.rtype.clone()), id.clone());
            }
        }
        Ok(listing)
    }

    fn body(wanted: &Wanted) -> Value {
        let user = wanted.owner.as_label();
        let marks = format!("{COMMENT_PREFIX}user={user} platform={}", wanted.platform);
        // Proxied records have an automatic TTL; keep the roster's in the comment.
        let (ttl, comment) =
            if wanted.proxied { (1, format!("{marks} ttl={}", wanted.ttl)) } else { (wanted.ttl, marks) };
        json!({
            "type": wanted.rtype,
            "name": wanted.name,
            "content": wanted.content,
            "ttl": ttl,
            "proxied": wanted.proxied,
            "comment": comment,
        })
    }

    /// The records at `name` of `rtype`, by one filtered listing.
    async fn lookup(&self, zone_id: &str, name: &str, rtype: &str, counters: &Counters) -> Result<Vec<Found>> {
        let operation = format!("looking up {name} {rtype}");
        let path = format!("/zones/{zone_id}/dns_records?name={name}&type={rtype}");
        let envelope = self.call(reqwest::Method::GET, &path, None, &operation, counters, false).await?;
        Ok(self
            .results(&envelope, &operation)?
            .iter()
            .filter_map(found)
            .filter(|r| r.name == name && r.rtype == rtype)
            .collect())
    }

    /// Create the record (POST), or overwrite it (PUT: content, proxied, TTL,
    /// comment) for an update or adoption. A create never overwrites: when the
    /// API says the name is taken, it is success only if the record there is
    /// already exactly this one of this owner (a retried create).
    pub(crate) async fn put(&self, wanted: &Wanted, create: bool, counters: &Counters) -> Result<()> {
        let zone_id = self.zone_id(&wanted.zone, counters).await?;
        let key = (wanted.zone.clone(), wanted.name.clone(), wanted.rtype.clone());
        let body = Self::body(wanted);
        let operation = format!("setting {} {} → {}", wanted.name, wanted.rtype, wanted.content);
        let existing = if create {
            None
        } else {
            // Bound first: a guard in the match scrutinee would live across the await.
            let cached = lock(&self.record_ids).get(&key).cloned();
            match cached {
                Some(id) => Some(id),
                // Applied without a listing first: find it.
                None => self
                    .lookup(&zone_id, &wanted.name, &wanted.rtype, counters)
                    .await?
                    .into_iter()
                    .find_map(|r| r.provider_id),
            }
        };
        let result = match &existing {
            Some(id) => {
                let path = format!("/zones/{zone_id}/dns_records/{id}");
                self.call(reqwest::Method::PUT, &path, Some(&body), &operation, counters, true).await
            }
            None => {
                let path = format!("/zones/{zone_id}/dns_records");
                self.call(reqwest::Method::POST, &path, Some(&body), &operation, counters, true).await
            }
        };
        let envelope = match result {
            Err(Error::Refused { message, .. }) if create && EXISTS.iter().any(|code| message.contains(code)) => {
                let there = self.lookup(&zone_id, &wanted.name, &wanted.rtype, counters).await?;
                let same = there.len() == 1
                    && there.iter().all(|r| {
                        r.content == wanted.content
                            && r.proxied == wanted.proxied
                            && wanted.is_marked_by(r.comment_marks.as_deref())
                    });
                if !same {
                    return Err(Error::Refused { server: "Cloudflare".to_string(), operation, message });
                }
                return Ok(());
            }
            other => other?,
        };
        if let Some(id) = envelope.pointer("/result/id").and_then(Value::as_str) {
            lock(&self.record_ids).insert(key, id.to_string());
        }
        Ok(())
    }

    pub(crate) async fn remove(&self, zone: &str, record: &Found, counters: &Counters) -> Result<()> {
        let zone_id = self.zone_id(zone, counters).await?;
        let Some(id) = &record.provider_id else {
            return Err(Error::Unsupported(format!("{} {} has no Cloudflare record id", record.name, record.rtype)));
        };
        let operation = format!("deleting {} {}", record.name, record.rtype);
        let path = format!("/zones/{zone_id}/dns_records/{id}");
        self.call(reqwest::Method::DELETE, &path, None, &operation, counters, true).await?;
        lock(&self.record_ids).remove(&(zone.to_string(), record.name.clone(), record.rtype.clone()));
        Ok(())
    }
}

/// The marks (as the words `Mark::from_words` reads) and the roster TTL
/// from a comment `managed-by tenantry user=<user>[ platform=<name>][ ttl=<n>]`.
fn parse_comment(comment: &str) -> (Option<String>, Option<u32>) {
    let Some(rest) = comment.trim().strip_prefix(COMMENT_PREFIX) else { return (None, None) };
    let ttl = rest.split_whitespace().find_map(|w| w.strip_prefix("ttl=")).and_then(|t| t.parse().ok());
    (Some(format!("managed-by={} {rest}", tenantry_core::marks::MANAGED_BY_VALUE)), ttl)
}

pub(crate) fn found(record: &Value) -> Option<Found> {
    let text = |key: &str| record.get(key).and_then(Value::as_str);
    let rtype = text("type")?.to_string();
    let content = text("content")?;
    let proxied = record.get("proxied").and_then(Value::as_bool).unwrap_or(false);
    let ttl = record.get("ttl").and_then(Value::as_u64).and_then(|t| u32::try_from(t).ok()).unwrap_or(1);
    let (comment_marks, comment_ttl) = parse_comment(text("comment").unwrap_or_default());
    Some(Found {
        name: config::normalize_name(text("name")?),
        content: if rtype == "CNAME" { config::normalize_name(content) } else { content.to_string() },
        rtype,
        ttl: match comment_ttl {
            Some(roster_ttl) if proxied && ttl == 1 => roster_ttl,
            _ => ttl,
        },
        proxied,
        comment_marks,
        provider_id: text("id").map(str::to_string),
    })
}
