//! Checks a TLS certificate chain and its private key before tenantry copies
//! them into a user's namespace (SPEC §3 "PEM validated", §8.4).
//!
//! The origin platform once copied git-crypt ciphertext from a locked
//! checkout into every namespace's TLS secret; ingress controllers then
//! served nothing. This crate refuses such a source, and any source a client
//! would refuse: not PEM, a chain out of order, a key of another
//! certificate, outside its validity period, or not naming the user's
//! domains. It does no I/O and reads no clock: the caller passes the bytes
//! and `now`.

use aws_lc_rs::signature::{self, KeyPair};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;

/// Under this much validity left, a certificate is reported with a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// Every git-crypt encrypted file starts with these bytes.
const GIT_CRYPT_HEADER: &[u8] = b"\0GITCRYPT\0";

/// Why a certificate chain and key must not be copied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("the TLS source is git-crypt ciphertext: the checkout is locked; run `git-crypt unlock`")]
    GitCrypt,
    #[error("the {0} is empty")]
    Empty(&'static str),
    #[error("the certificate (tls.crt) holds no PEM `CERTIFICATE` block{found}")]
    NoCertificate { found: String },
    #[error("the certificate (tls.crt) is not valid PEM: {0}")]
    CertificatePem(String),
    #[error("certificate {index} of the chain cannot be parsed: {message}")]
    Certificate { index: usize, message: String },
    #[error("the private key (tls.key) holds no PEM private key block{found}")]
    NoPrivateKey { found: String },
    #[error("the private key (tls.key) is encrypted; a Kubernetes TLS secret needs the unencrypted key")]
    EncryptedKey,
    #[error("the private key (tls.key) cannot be read: {0}")]
    PrivateKey(String),
    #[error(
        "the chain is out of order: certificate {index} (`{subject}`) was not issued by certificate {next} (`{next_subject}`); put the leaf first, then each issuer"
    )]
    ChainOrder { index: usize, subject: String, next: usize, next_subject: String },
    #[error("the private key does not match the leaf certificate (`{subject}`){hint}")]
    KeyMismatch { subject: String, hint: String },
    #[error("certificate {index} (`{subject}`) is not valid before {not_before}")]
    NotYetValid { index: usize, subject: String, not_before: String },
    #[error("certificate {index} (`{subject}`) expired on {not_after}")]
    Expired { index: usize, subject: String, not_after: String },
    #[error("the certificate does not cover `{domain}` (it names {names})")]
    NotCovered { domain: String, names: String },
}

pub type Result<T, E = TlsError> = std::result::Result<T, E>;

/// What a valid source holds, and what an admin should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReport {
    /// The leaf's subject, e.g. `CN=*.example.org`.
    pub subject: String,
    /// The leaf's DNS names (subjectAltName).
    pub dns_names: Vec<String>,
    /// Certificates in the chain, the leaf included.
    pub chain_len: usize,
    /// The earliest end of validity in the chain.
    pub not_after: SystemTime,
    /// Time left until `not_after`, from `now`.
    pub remaining: Duration,
    /// Reasons to act soon that do not prevent the copy (expiry within 14 days).
    pub warnings: Vec<String>,
}

/// Check `cert_pem` (a chain, leaf first) and `key_pem` for `domains` at `now`.
pub fn validate(cert_pem: &[u8], key_pem: &[u8], domains: &[&str], now: SystemTime) -> Result<TlsReport> {
    Source::parse(cert_pem, key_pem)?.check(domains, now)
}

/// A parsed chain whose key matches its leaf: parse once, then check the
/// domains of each user against it.
#[derive(Debug, Clone)]
pub struct Source {
    subject: String,
    dns_names: Vec<String>,
    /// (index, subject, not_before, not_after) of every certificate, in seconds since the epoch.
    validity: Vec<(usize, String, i64, i64)>,
}

impl Source {
    /// Parse and check everything that does not depend on the time or the domains.
    pub fn parse(cert_pem: &[u8], key_pem: &[u8]) -> Result<Source> {
        if is_git_crypt(cert_pem) || is_git_crypt(key_pem) {
            return Err(TlsError::GitCrypt);
        }
        if cert_pem.trim_ascii().is_empty() {
            return Err(TlsError::Empty("certificate (tls.crt)"));
        }
        if key_pem.trim_ascii().is_empty() {
            return Err(TlsError::Empty("private key (tls.key)"));
        }
        let ders = certificate_ders(cert_pem)?;
        let mut chain = Vec::with_capacity(ders.len());
        for (index, der) in ders.iter().enumerate() {
            let (_, cert) = X509Certificate::from_der(der)
                .map_err(|e| TlsError::Certificate { index: index + 1, message: e.to_string() })?;
            chain.push(cert);
        }
        check_order(&chain)?;
        let key = private_key_public_bytes(key_pem)?;
        let Some(leaf) = chain.first() else { return Err(TlsError::NoCertificate { found: String::new() }) };
        if leaf.public_key().subject_public_key.data.as_ref() != key.as_slice() {
            // A key of another certificate in the chain means the chain starts with the wrong one.
            let hint = chain
                .iter()
                .position(|c| c.public_key().subject_public_key.data.as_ref() == key.as_slice())
                .map(|i| format!("; it is the key of certificate {}: put the leaf first", i + 1))
                .unwrap_or_default();
            return Err(TlsError::KeyMismatch { subject: leaf.subject().to_string(), hint });
        }
        let dns_names = match leaf.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(name) => Some(normalise(name)),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(TlsError::Certificate { index: 1, message: format!("subjectAltName: {e}") }),
        };
        let validity = chain
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let v = c.validity();
                (i + 1, c.subject().to_string(), v.not_before.timestamp(), v.not_after.timestamp())
            })
            .collect();
        Ok(Source { subject: leaf.subject().to_string(), dns_names, validity })
    }

    /// The leaf's DNS names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// Check validity at `now` and coverage of `domains`.
    pub fn check(&self, domains: &[&str], now: SystemTime) -> Result<TlsReport> {
        let now_secs = unix_seconds(now);
        let mut earliest = i64::MAX;
        for (index, subject, not_before, not_after) in &self.validity {
            if now_secs < *not_before {
                return Err(TlsError::NotYetValid {
                    index: *index,
                    subject: subject.clone(),
                    not_before: date(*not_before),
                });
            }
            if now_secs > *not_after {
                return Err(TlsError::Expired { index: *index, subject: subject.clone(), not_after: date(*not_after) });
            }
            earliest = earliest.min(*not_after);
        }
        for domain in domains {
            if !self.dns_names.iter().any(|name| covers(name, domain)) {
                let names = if self.dns_names.is_empty() {
                    "no DNS names in subjectAltName".to_string()
                } else {
                    self.dns_names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                };
                return Err(TlsError::NotCovered { domain: normalise(domain), names });
            }
        }
        let remaining = Duration::from_secs(u64::try_from(earliest.saturating_sub(now_secs)).unwrap_or(0));
        let mut warnings = Vec::new();
        if remaining < EXPIRY_WARNING {
            warnings.push(format!(
                "the certificate `{}` expires in {} days (on {}); renew the TLS source",
                self.subject,
                remaining.as_secs() / 86_400,
                date(earliest)
            ));
        }
        Ok(TlsReport {
            subject: self.subject.clone(),
            dns_names: self.dns_names.clone(),
            chain_len: self.validity.len(),
            not_after: from_unix_seconds(earliest),
            remaining,
            warnings,
        })
    }
}

/// Whether these bytes are a git-crypt encrypted file (a locked checkout).
pub fn is_git_crypt(bytes: &[u8]) -> bool {
    bytes.starts_with(GIT_CRYPT_HEADER)
}

/// Whether the certificate name `name` (possibly `*.zone`) covers `domain`.
/// A wildcard stands for exactly one whole leftmost label (RFC 6125 §6.4.3):
/// `*.example.org` covers `a.example.org`, not `example.org` nor `a.b.example.org`.
pub fn covers(name: &str, domain: &str) -> bool {
    let (name, domain) = (normalise(name), normalise(domain));
    if name == domain {
        return true;
    }
    let Some(zone) = name.strip_prefix("*.") else { return false };
    match domain.split_once('.') {
        Some((label, rest)) => !label.is_empty() && label != "*" && rest == zone && !zone.contains('*'),
        None => false,
    }
}

/// DNS names compare case-insensitively and without the root's trailing dot.
fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn blocks(pem: &[u8]) -> std::result::Result<Vec<Pem>, String> {
    Pem::iter_from_buffer(pem).map(|block| block.map_err(|e| e.to_string())).collect()
}

fn labels(blocks: &[Pem]) -> String {
    if blocks.is_empty() {
        return String::new();
    }
    let found: Vec<String> = blocks.iter().map(|b| format!("`{}`", b.label)).collect();
    format!(" (found {})", found.join(", "))
}

fn certificate_ders(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    let blocks = blocks(pem).map_err(TlsError::CertificatePem)?;
    let ders: Vec<Vec<u8>> = blocks.iter().filter(|b| b.label == "CERTIFICATE").map(|b| b.contents.clone()).collect();
    if ders.is_empty() {
        return Err(TlsError::NoCertificate { found: labels(&blocks) });
    }
    Ok(ders)
}

/// Each certificate must be issued — by name and by signature — by the next one.
fn check_order(chain: &[X509Certificate<'_>]) -> Result<()> {
    for (index, pair) in chain.windows(2).enumerate() {
        let [cert, issuer] = pair else { continue };
        let issued = cert.issuer() == issuer.subject() && cert.verify_signature(Some(issuer.public_key())).is_ok();
        if !issued {
            return Err(TlsError::ChainOrder {
                index: index + 1,
                subject: cert.subject().to_string(),
                next: index + 2,
                next_subject: issuer.subject().to_string(),
            });
        }
    }
    Ok(())
}

/// The public key of the PEM private key, in the form a certificate's
/// subjectPublicKey holds it (RSAPublicKey DER, an uncompressed EC point, or
/// the raw Ed25519 key), so comparing bytes tells whether they belong together.
fn private_key_public_bytes(pem: &[u8]) -> Result<Vec<u8>> {
    let blocks = blocks(pem).map_err(|e| TlsError::PrivateKey(format!("not valid PEM: {e}")))?;
    if blocks.iter().any(|b| b.label == "ENCRYPTED PRIVATE KEY") {
        return Err(TlsError::EncryptedKey);
    }
    let Some(block) = blocks.iter().find(|b| b.label.ends_with("PRIVATE KEY")) else {
        return Err(TlsError::NoPrivateKey { found: labels(&blocks) });
    };
    let der = block.contents.as_slice();
    let rsa = match block.label.as_str() {
        "RSA PRIVATE KEY" => signature::RsaKeyPair::from_der(der),
        _ => signature::RsaKeyPair::from_pkcs8(der),
    };
    if let Ok(key) = rsa {
        return Ok(key.public_key().as_ref().to_vec());
    }
    for algorithm in [
        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
    ] {
        if let Ok(key) = signature::EcdsaKeyPair::from_private_key_der(algorithm, der) {
            return Ok(key.public_key().as_ref().to_vec());
        }
    }
    if let Ok(key) = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
        return Ok(key.public_key().as_ref().to_vec());
    }
    Err(TlsError::PrivateKey(format!(
        "the `{}` block is not an RSA (2048–8192 bits), ECDSA (P-256/384/521) or Ed25519 key",
        block.label
    )))
}

fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map(|s| -s).unwrap_or(i64::MIN),
    }
}

fn from_unix_seconds(seconds: i64) -> SystemTime {
    match u64::try_from(seconds) {
        Ok(after) => UNIX_EPOCH + Duration::from_secs(after),
        Err(_) => UNIX_EPOCH - Duration::from_secs(seconds.unsigned_abs()),
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time, for messages.
fn date(seconds: i64) -> String {
    ASN1Time::from_timestamp(seconds)
        .map(|t| t.to_datetime().date().to_string())
        .unwrap_or_else(|_| seconds.to_string())
}

#[cfg(test)]
mod tests;
