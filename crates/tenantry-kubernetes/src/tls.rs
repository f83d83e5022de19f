//! The TLS Secret copy's guard (SPEC §3 "PEM validated", §8.4): the source
//! Secret is checked by `tenantry-tls` before its data is copied, at apply
//! (a bad source fails that user's copy, the old copy stays as it was) and,
//! for copies that exist, already at observe (problems in the plan).

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::SystemTime;
use tenantry_core::PlanProblem;
use tenantry_tls::{Source, TlsError, TlsReport};

/// The annotations derive sets on a copy: one definition, so they never drift.
pub use tenantry_core::derive::{COPIED_FROM, TLS_DOMAINS};

/// The domains a copy must cover, from its annotations.
pub fn domains(annotations: &Value) -> Vec<String> {
    annotations[TLS_DOMAINS]
        .as_str()
        .map(|list| list.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// Parse the `tls.crt`/`tls.key` of a Secret's `data` (base64, as the API
/// serves it). A missing field reads as empty, which the check names.
pub fn parse(data: &Value) -> Result<Source, TlsError> {
    let field = |key: &str| -> Vec<u8> {
        data.get(key)
            .and_then(|encoded| serde_json::from_value::<k8s_openapi::ByteString>(encoded.clone()).ok())
            .map(|bytes| bytes.0)
            .unwrap_or_default()
    };
    Source::parse(&field("tls.crt"), &field("tls.key"))
}

/// Check a parsed source for one copy's domains now.
pub fn check(source: &Result<Source, TlsError>, domains: &[String], now: SystemTime) -> Result<TlsReport, TlsError> {
    let source = source.as_ref().map_err(Clone::clone)?;
    let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
    source.check(&domains, now)
}

/// The fix to suggest for an invalid source.
pub fn help(error: &TlsError) -> &'static str {
    match error {
        TlsError::GitCrypt => {
            "unlock the checkout (`git-crypt unlock`), re-create the source Secret from the decrypted files, then apply; the copies keep their current data until then"
        }
        TlsError::NotCovered { .. } => {
            "use a certificate that names these domains (or a wildcard one level above them), or change the user's domains; the copies keep their current data until then"
        }
        _ => {
            "put a valid chain (leaf first) and its unencrypted key into the source Secret, then apply; the copies keep their current data until then"
        }
    }
}

/// What observe found about existing copies, grouped so that one bad source
/// is one problem however many namespaces hold a copy of it.
#[derive(Debug, Default)]
pub struct Findings {
    /// (source, message, help) → the copies (`namespace/name`) concerned.
    found: BTreeMap<(String, String, &'static str), Vec<String>>,
}

impl Findings {
    pub fn refused(&mut self, source: &str, copy: String, error: &TlsError) {
        self.found.entry((source.to_string(), error.to_string(), help(error))).or_default().push(copy);
    }

    pub fn unreadable(&mut self, source: &str, copy: String, error: &str) {
        self.found
            .entry((
                source.to_string(),
                format!("cannot be read: {error}"),
                "create the source Secret (or fix `platform.tls.source`), then apply",
            ))
            .or_default()
            .push(copy);
    }

    pub fn warned(&mut self, source: &str, copy: String, warning: &str) {
        self.found
            .entry((
                source.to_string(),
                format!("warning: {warning}"),
                "renew the certificate in the source Secret; the next apply copies the renewal",
            ))
            .or_default()
            .push(copy);
    }

    /// One problem per source and finding, naming a few of the copies.
    pub fn into_problems(self) -> Vec<PlanProblem> {
        self.found
            .into_iter()
            .map(|((source, message, help), mut copies)| {
                copies.sort();
                let shown: Vec<&str> = copies.iter().take(3).map(String::as_str).collect();
                let more = copies.len().saturating_sub(shown.len());
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                PlanProblem {
                    message: format!("TLS source `{source}` (copied to {}{more}): {message}", shown.join(", ")),
                    help: help.to_string(),
                    // Only the copies fail at apply; everything else goes ahead.
                    blocking: false,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    #[test]
    fn domains_come_from_the_annotation() {
        let annotations = json!({ TLS_DOMAINS: "a.example.org, b.example.org,", COPIED_FROM: "certs/wildcard" });
        assert_eq!(domains(&annotations), vec!["a.example.org", "b.example.org"]);
        assert!(domains(&json!({ COPIED_FROM: "certs/wildcard" })).is_empty());
    }

    #[test]
    fn a_secret_without_its_fields_is_named() {
        assert_eq!(parse(&json!({})).unwrap_err(), TlsError::Empty("certificate (tls.crt)"));
        assert_eq!(parse(&json!({ "tls.crt": "aGVsbG8=" })).unwrap_err(), TlsError::Empty("private key (tls.key)"));
    }

    #[test]
    fn one_bad_source_is_one_problem_however_many_copies() {
        let mut findings = Findings::default();
        for ns in ["d", "a", "c", "b", "e"] {
            findings.refused("certs/wildcard", format!("{ns}/tls-secret"), &TlsError::GitCrypt);
        }
        findings.warned("certs/other", "a/tls-secret".into(), "expires in 3 days");
        let problems = findings.into_problems();
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems[1].message,
            "TLS source `certs/wildcard` (copied to a/tls-secret, b/tls-secret, c/tls-secret and 2 more): the TLS source is git-crypt ciphertext: the checkout is locked; run `git-crypt unlock`"
        );
        assert!(problems[1].help.contains("git-crypt unlock") && !problems[1].blocking);
        assert_eq!(
            problems[0].message,
            "TLS source `certs/other` (copied to a/tls-secret): warning: expires in 3 days"
        );
    }
}
