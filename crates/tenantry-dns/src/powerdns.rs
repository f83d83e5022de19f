//! The PowerDNS Authoritative HTTP API (`/api/v1/servers/<id>/zones/<zone>`):
//! one GET lists a zone with all its rrsets; one PATCH replaces or deletes
//! a record's rrset together with its ownership TXT rrset (`_tenantry.<name>`,
//! see `marks.rs`): PowerDNS applies a PATCH's rrsets all or none.
//!
//! Ownership TXT rather than PowerDNS's rrset comments: comments are not DNS
//! data, so a zone served through RFC 2136 (the `rfc2136` provider against
//! the same server) or transferred elsewhere would lose its owners, and one
//! mark format serves both providers.

use crate::config::{self, Secret};
use crate::marks;
use crate::{Counters, Error, Found, Listing, Result, Wanted};
use serde_json::{Value, json};
use std::time::Duration;
use tenantry_core::target::error_chain;

#[derive(Debug)]
pub(crate) struct PowerDns {
    http: reqwest::Client,
    base: String,
    server_id: String,
    key: Secret,
    writing: tokio::sync::Mutex<()>,
}

impl PowerDns {
    pub(crate) fn new(config: &crate::DnsConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<PowerDns> {
        let base = config
            .api_url
            .as_deref()
            .ok_or_else(|| Error::Config("provider `powerdns` needs `api_url`".to_string()))?
            .trim_end_matches('/')
            .trim_end_matches("/api/v1")
            .to_string();
        let key =
            config::secret(config.api_key_file.as_deref(), "PDNS_API_KEY", "PowerDNS API key", "api_key_file", env)?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(PowerDns {
            http,
            base,
            server_id: config.server_id.clone().unwrap_or_else(|| "localhost".to_string()),
            key,
            writing: tokio::sync::Mutex::new(()),
        })
    }

    fn zone_url(&self, zone: &str) -> String {
        format!("{}/api/v1/servers/{}/zones/{zone}.", self.base, self.server_id)
    }

    async fn send(&self, request: reqwest::RequestBuilder, operation: &str) -> Result<reqwest::Response> {
        let response = request.header("X-API-Key", self.key.expose()).send().await.map_err(|e| Error::Unavailable {
            server: self.base.clone(),
            message: format!("{operation}: {}", error_chain(&e)),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        // PowerDNS answers errors as {"error": "..."}.
        let detail = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect());
        let message = format!("HTTP {}: {detail}", status.as_u16());
        Err(match status.as_u16() {
            401 | 403 => Error::Unavailable {
                server: self.base.clone(),
                message: format!("{operation}: {message} (check `api_key_file` or PDNS_API_KEY)"),
            },
            404 => Error::Refused {
                server: self.base.clone(),
                operation: operation.to_string(),
                message: format!("{message} (is the zone on server `{}`?)", self.server_id),
            },
            500.. => Error::Unavailable { server: self.base.clone(), message: format!("{operation}: {message}") },
            _ => Error::Refused { server: self.base.clone(), operation: operation.to_string(), message },
        })
    }

    pub(crate) async fn list(&self, zone: &str, counters: &Counters) -> Result<Listing> {
        counters.read();
        let operation = format!("listing zone {zone}");
        let response = match self.send(self.http.get(self.zone_url(zone)), &operation).await {
            Err(Error::Refused { message, .. }) if message.starts_with("HTTP 404") => {
                return Err(Error::NoZone {
                    zone: zone.to_string(),
                    server: format!("{} (server `{}`)", self.base, self.server_id),
                    detail: message,
                });
            }
            other => other?,
        };
        let body: Value = response.json().await.map_err(|e| Error::Unavailable {
            server: self.base.clone(),
            message: format!("{operation}: unreadable answer: {}", error_chain(&e)),
        })?;
        // A zone always has rrsets (its SOA at least): an answer without
        // them is not "no records", which would plan every record anew.
        if !body.get("rrsets").is_some_and(Value::is_array) {
            let excerpt: String = body.to_string().chars().take(200).collect();
            return Err(Error::Unavailable {
                server: self.base.clone(),
                message: format!("{operation}: the answer has no rrsets: {excerpt}"),
            });
        }
        Ok(listing_from(&body))
    }

    /// One rrset change. Changes are sent one at a time per target, and a
    /// server error is retried a few times: with the SQLite backend PowerDNS
    /// answers concurrent writes with HTTP 500 "database is locked", and
    /// REPLACE and DELETE are idempotent.
    async fn patch(&self, zone: &str, rrsets: Vec<Value>, operation: &str, counters: &Counters) -> Result<()> {
        let _one_at_a_time = self.writing.lock().await;
        let body = json!({ "rrsets": rrsets });
        let mut attempt = 0_u64;
        loop {
            attempt += 1;
            counters.write();
            match self.send(self.http.patch(self.zone_url(zone)).json(&body), operation).await {
                Err(Error::Unavailable { message, .. }) if attempt < 6 && message.contains("HTTP 5") => {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                result => return result.map(drop),
            }
        }
    }

    /// Replace the rrset of the type with the one record, and its ownership
    /// record with this owner's, in one PATCH. PowerDNS itself refuses a
    /// CNAME next to other data (and then writes neither).
    pub(crate) async fn put(&self, wanted: &Wanted, counters: &Counters) -> Result<()> {
        let content = if wanted.rtype == "CNAME" { format!("{}.", wanted.content) } else { wanted.content.clone() };
        let mark: Vec<String> =
            marks::txt_strings(&wanted.mark_words()).iter().map(|word| format!("\"{word}\"")).collect();
        let rrsets = vec![
            json!({
                "name": format!("{}.", wanted.name),
                "type": wanted.rtype,
                "ttl": wanted.ttl,
                "changetype": "REPLACE",
                "records": [{ "content": content, "disabled": false }],
            }),
            json!({
                "name": format!("{}.", marks::mark_name(&wanted.name)),
                "type": "TXT",
                "ttl": wanted.ttl,
                "changetype": "REPLACE",
                "records": [{ "content": mark.join(" "), "disabled": false }],
            }),
        ];
        let operation = format!("setting {} {} → {}", wanted.name, wanted.rtype, wanted.content);
        self.patch(&wanted.zone, rrsets, &operation, counters).await
    }

    /// Delete the rrset of one type at one name, and its ownership record.
    pub(crate) async fn remove(&self, zone: &str, name: &str, rtype: &str, counters: &Counters) -> Result<()> {
        let rrsets = vec![
            json!({ "name": format!("{name}."), "type": rtype, "changetype": "DELETE" }),
            json!({ "name": format!("{}.", marks::mark_name(name)), "type": "TXT", "changetype": "DELETE" }),
        ];
        self.patch(zone, rrsets, &format!("deleting {name} {rtype}"), counters).await
    }
}

/// The character-strings of a TXT record in zone-file form (`"a" "b"`);
/// text outside quotes is taken as it is.
/// A zone's records from the body of `GET /zones/<zone>` (its `rrsets`).
pub(crate) fn listing_from(body: &Value) -> Listing {
    let mut listing = Listing::default();
    for rrset in body.get("rrsets").and_then(Value::as_array).into_iter().flatten() {
        let name = config::normalize_name(rrset.get("name").and_then(Value::as_str).unwrap_or_default());
        let rtype = rrset.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        let ttl = rrset.get("ttl").and_then(Value::as_u64).and_then(|t| u32::try_from(t).ok()).unwrap_or(0);
        for record in rrset.get("records").and_then(Value::as_array).into_iter().flatten() {
            let content = record.get("content").and_then(Value::as_str).unwrap_or_default();
            let content = match rtype.as_str() {
                "CNAME" => config::normalize_name(content),
                "TXT" => marks::txt_text(quoted_strings(content).iter().map(String::as_str)),
                _ => content.to_string(),
            };
            listing.records.push(Found {
                name: name.clone(),
                rtype: rtype.clone(),
                content,
                ttl,
                proxied: false,
                comment_marks: None,
                provider_id: None,
            });
        }
    }
    listing
}

fn quoted_strings(content: &str) -> Vec<String> {
    if !content.trim_start().starts_with('"') {
        return vec![content.to_string()];
    }
    let (mut strings, mut current, mut inside, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in content.chars() {
        match (inside, escaped, c) {
            (true, true, _) => {
                current.push(c);
                escaped = false;
            }
            (true, false, '\\') => escaped = true,
            (true, false, '"') => {
                strings.push(std::mem::take(&mut current));
                inside = false;
            }
            (true, false, _) => current.push(c),
            (false, _, '"') => inside = true,
            (false, _, _) => {}
        }
    }
    strings
}

#[cfg(test)]
mod tests {
    #[test]
    fn txt_content_is_read_as_its_strings() {
        let strings = super::quoted_strings("\"managed-by=tenantry\" \"user=alice\" \"say \\\"hi\\\"\"");
        assert_eq!(strings, ["managed-by=tenantry", "user=alice", "say \"hi\""]);
        assert_eq!(super::quoted_strings("bare"), ["bare"]);
    }
}
