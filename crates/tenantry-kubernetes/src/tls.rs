//! The TLS Secret copy's guard (SPEC §3 "PEM validated", §8.4): the source
//! Secret is checked by `tenantry-tls` before its data is copied, at apply
//! (a bad source fails that user's copy, the old copy stays as it was) and,
//! for copies that exist, already at observe (problems in the plan).

use serde_json::Value;
use std::collections::BTreeMap;
use std::time::SystemTime;
use tenantry_core::PlanProblem;
use tenantry_tls::{Source, TlsError, TlsReport};

/// Annotation of a copied TLS Secret: `namespace/name` of its source (set by derive).
pub const COPIED_FROM: &str = "tenantry.dev/copied-from";
/// Annotation of a copied TLS Secret: the owner's domains, comma-separated (set by derive).
pub const TLS_DOMAINS: &str = "tenantry.dev/tls-domains";

/// The domains a copy must cover, from its annotations.
pub fn domains(annotations: &Value) -> Vec<String> {
    annotations[TLS_DOMAINS]
        .as_str()
        .map(|list| list.split(',').map(str::trim).filter(|d| !d.is_empty()).map(String::from).collect())
        .unwrap_or_default()
}

/// Parse the `tls.crt`/`tls.key` of a Secret's `data` (base64, as the API serves it).
pub fn parse(data: &Value) -> Result<Source, TlsError> {
    let field = |key: &str| -> Result<Vec<u8>, TlsError> {
        let Some(encoded) = data.get(key).filter(|v| !v.is_null()) else {
            return Err(missing(key));
        };
        serde_json::from_value::<k8s_openapi::ByteString>(encoded.clone()).map(|b| b.0).map_err(|_| missing(key))
    };
    Source::parse(&field("tls.crt")?, &field("tls.key")?)
}

fn missing(key: &str) -> TlsError {
    let message =
        format!("the source Secret has no `{key}` (a kubernetes.io/tls Secret holds `tls.crt` and `tls.key`)");
    if key == "tls.key" { TlsError::PrivateKey(message) } else { TlsError::CertificatePem(message) }
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
