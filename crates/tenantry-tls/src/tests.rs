//! Certificates are generated with rcgen for a fixed `now`, so every case is
//! reproducible and none depends on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};

/// 2026-11-28T00:00:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(date_time_ymd(2026, 11, 28).unix_timestamp()).unwrap())
}

fn params(names: &[&str], not_after: (i32, u8, u8)) -> CertificateParams {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = date_time_ymd(2026, 1, 1);
    params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
    params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("no-name"));
    params
}

/// A leaf for `names` signed by a CA: (chain PEM leaf first, leaf key PEM, CA PEM).
fn issued(names: &[&str], not_after: (i32, u8, u8)) -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = params(&[], (2030, 1, 1));
    ca_params.distinguished_name = rcgen::DistinguishedName::new();
    ca_params.distinguished_name.push(DnType::CommonName, "Test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = params(names, not_after).signed_by(&key, &issuer).unwrap();
    (format!("{}{}", leaf.pem(), ca.pem()), key.serialize_pem(), ca.pem())
}

fn self_signed(names: &[&str], not_after: (i32, u8, u8)) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = params(names, not_after).self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn a_valid_chain_and_key_pass_with_their_names() {
    let (chain, key, _) = issued(&["*.example.org", "example.org"], (2027, 6, 1));
    let report = validate(chain.as_bytes(), key.as_bytes(), &["budget.example.org", "example.org"], now()).unwrap();
    assert_eq!(report.chain_len, 2);
    assert_eq!(report.dns_names, vec!["*.example.org", "example.org"]);
    assert_eq!(report.subject, "CN=*.example.org");
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.remaining > Duration::from_secs(180 * 86_400));
}

#[test]
fn an_rsa_key_matches_its_certificate() {
    let key = KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let cert = params(&["a.example.org"], (2027, 1, 1)).self_signed(&key).unwrap();
    validate(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), &["a.example.org"], now()).unwrap();
}

#[test]
fn an_ec_key_in_sec1_form_matches_its_certificate() {
    use aws_lc_rs::encoding::AsDer;
    let key = KeyPair::generate().unwrap();
    let cert = params(&["a.example.org"], (2027, 1, 1)).self_signed(&key).unwrap();
    let pair =
        signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &key.serialize_der()).unwrap();
    let sec1 = pair.private_key().as_der().unwrap();
    let lines: Vec<String> =
        base64(sec1.as_ref()).as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into()).collect();
    let text = format!("-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n", lines.join("\n"));
    validate(cert.pem().as_bytes(), text.as_bytes(), &["a.example.org"], now()).unwrap();
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let (cert, key) = self_signed(&["a.example.org"], (2026, 11, 1));
    let error = validate(cert.as_bytes(), key.as_bytes(), &["a.example.org"], now()).unwrap_err();
    assert!(matches!(error, TlsError::Expired { index: 1, .. }), "{error:?}");
    assert_eq!(error.to_string(), "certificate 1 (`CN=a.example.org`) expired on 2026-11-01");
}

#[test]
fn an_expired_intermediate_is_refused_too() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = params(&[], (2026, 11, 2));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = params(&["a.example.org"], (2027, 1, 1)).signed_by(&key, &issuer).unwrap();
    let chain = format!("{}{}", leaf.pem(), ca.pem());
    let error = validate(chain.as_bytes(), key.serialize_pem().as_bytes(), &[], now()).unwrap_err();
    assert!(matches!(error, TlsError::Expired { index: 2, .. }), "{error:?}");
}

#[test]
fn a_certificate_not_yet_valid_is_refused() {
    let key = KeyPair::generate().unwrap();
    let mut p = params(&["a.example.org"], (2028, 1, 1));
    p.not_before = date_time_ymd(2027, 1, 1);
    let cert = p.self_signed(&key).unwrap();
    let error = validate(cert.pem().as_bytes(), key.serialize_pem().as_bytes(), &[], now()).unwrap_err();
    assert!(matches!(error, TlsError::NotYetValid { .. }), "{error:?}");
}

#[test]
fn expiring_within_fourteen_days_is_a_warning_not_an_error() {
    let (cert, key) = self_signed(&["a.example.org"], (2026, 12, 8));
    let report = validate(cert.as_bytes(), key.as_bytes(), &["a.example.org"], now()).unwrap();
    assert_eq!(report.remaining, Duration::from_secs(10 * 86_400));
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].contains("expires in 10 days (on 2026-12-08)"), "{}", report.warnings[0]);
    let (cert, key) = self_signed(&["a.example.org"], (2026, 12, 13));
    assert!(validate(cert.as_bytes(), key.as_bytes(), &[], now()).unwrap().warnings.is_empty(), "15 days is fine");
}

#[test]
fn a_key_of_another_certificate_is_a_mismatch() {
    let (cert, _) = self_signed(&["a.example.org"], (2027, 1, 1));
    let (_, other_key) = self_signed(&["a.example.org"], (2027, 1, 1));
    let error = validate(cert.as_bytes(), other_key.as_bytes(), &["a.example.org"], now()).unwrap_err();
    assert_eq!(error.to_string(), "the private key does not match the leaf certificate (`CN=a.example.org`)");
}

#[test]
fn wildcards_cover_exactly_one_label() {
    assert!(covers("*.example.org", "a.example.org"));
    assert!(covers("*.Example.org", "A.example.org."), "case and the root dot do not matter");
    assert!(!covers("*.example.org", "example.org"), "not the apex");
    assert!(!covers("*.example.org", "a.b.example.org"), "not two labels");
    assert!(!covers("*.example.org", "a.example.net"));
    assert!(!covers("a*.example.org", "ab.example.org"), "partial-label wildcards are not honoured");
    assert!(!covers("*.*.example.org", "a.b.example.org"));
    assert!(covers("example.org", "example.org"));

    let (cert, key) = self_signed(&["*.example.org"], (2027, 1, 1));
    validate(cert.as_bytes(), key.as_bytes(), &["budget.example.org", "shop.example.org"], now()).unwrap();
    let error = validate(cert.as_bytes(), key.as_bytes(), &["budget.alice.example.org"], now()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the certificate does not cover `budget.alice.example.org` (it names `*.example.org`)"
    );
    assert!(matches!(
        validate(cert.as_bytes(), key.as_bytes(), &["example.org"], now()),
        Err(TlsError::NotCovered { .. })
    ));
}

#[test]
fn a_domain_outside_the_names_is_not_covered() {
    let (chain, key, _) = issued(&["shop.example.org"], (2027, 1, 1));
    let error = validate(chain.as_bytes(), key.as_bytes(), &["shop.example.org", "blog.example.org"], now());
    assert_eq!(
        error,
        Err(TlsError::NotCovered { domain: "blog.example.org".into(), names: "`shop.example.org`".into() })
    );
}

#[test]
fn garbage_is_not_pem() {
    let (_, key) = self_signed(&["a.example.org"], (2027, 1, 1));
    let error = validate(b"hello, this is not a certificate", key.as_bytes(), &[], now()).unwrap_err();
    assert_eq!(error.to_string(), "the certificate (tls.crt) holds no PEM `CERTIFICATE` block");
    let error = validate(b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", key.as_bytes(), &[], now())
        .unwrap_err();
    assert!(matches!(error, TlsError::CertificatePem(_) | TlsError::Certificate { .. }), "{error:?}");
    let (cert, _) = self_signed(&["a.example.org"], (2027, 1, 1));
    let error = validate(cert.as_bytes(), cert.as_bytes(), &[], now()).unwrap_err();
    assert_eq!(error.to_string(), "the private key (tls.key) holds no PEM private key block (found `CERTIFICATE`)");
    let error = validate(cert.as_bytes(), &[0xff, 0xfe, 0x00, 0x01], &[], now()).unwrap_err();
    assert!(matches!(error, TlsError::NoPrivateKey { .. } | TlsError::PrivateKey(_)), "{error:?}");
}

#[test]
fn empty_files_are_named() {
    let (cert, key) = self_signed(&["a.example.org"], (2027, 1, 1));
    assert_eq!(validate(b" \n", key.as_bytes(), &[], now()), Err(TlsError::Empty("certificate (tls.crt)")));
    let error = validate(cert.as_bytes(), b"", &[], now()).unwrap_err();
    assert_eq!(error.to_string(), "the private key (tls.key) is empty");
}

#[test]
fn git_crypt_ciphertext_says_the_checkout_is_locked() {
    let mut locked = b"\0GITCRYPT\0".to_vec();
    locked.extend_from_slice(&[0x8a, 0x11, 0x42, 0x00, 0xfe, 0x07]);
    let (cert, key) = self_signed(&["a.example.org"], (2027, 1, 1));
    for (cert, key) in [(locked.as_slice(), key.as_bytes()), (cert.as_bytes(), locked.as_slice())] {
        let error = validate(cert, key, &["a.example.org"], now()).unwrap_err();
        assert_eq!(error, TlsError::GitCrypt);
        assert_eq!(
            error.to_string(),
            "the TLS source is git-crypt ciphertext: the checkout is locked; run `git-crypt unlock`"
        );
    }
}

#[test]
fn the_chain_must_start_with_the_leaf() {
    let (chain, key, ca) = issued(&["a.example.org"], (2027, 1, 1));
    let leaf = chain.strip_suffix(&ca).unwrap();
    let reversed = format!("{ca}{leaf}");
    let error = validate(reversed.as_bytes(), key.as_bytes(), &["a.example.org"], now()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the chain is out of order: certificate 1 (`CN=Test CA`) was not issued by certificate 2 (`CN=a.example.org`); put the leaf first, then each issuer"
    );
    // A leaf alone (the CA left out) is a valid chain of one.
    assert_eq!(validate(leaf.as_bytes(), key.as_bytes(), &["a.example.org"], now()).unwrap().chain_len, 1);
    // A certificate of an unrelated CA after the leaf is not its issuer.
    let (_, _, other_ca) = issued(&["b.example.org"], (2027, 1, 1));
    let wrong = format!("{leaf}{other_ca}");
    assert!(matches!(
        validate(wrong.as_bytes(), key.as_bytes(), &[], now()),
        Err(TlsError::ChainOrder { index: 1, next: 2, .. })
    ));
}

#[test]
fn the_key_of_the_issuer_is_named_as_the_wrong_key() {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = params(&[], (2030, 1, 1));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = params(&["a.example.org"], (2027, 1, 1)).signed_by(&key, &issuer).unwrap();
    let chain = format!("{}{}", leaf.pem(), ca.pem());
    let error = validate(chain.as_bytes(), issuer_key_pem(&issuer).as_bytes(), &[], now()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the private key does not match the leaf certificate (`CN=a.example.org`); it is the key of certificate 2: put the leaf first"
    );
}

fn issuer_key_pem(issuer: &Issuer<'_, KeyPair>) -> String {
    issuer.key().serialize_pem()
}

#[test]
fn an_encrypted_key_is_named_as_such() {
    let (cert, _) = self_signed(&["a.example.org"], (2027, 1, 1));
    let key = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(validate(cert.as_bytes(), key.as_bytes(), &[], now()), Err(TlsError::EncryptedKey));
}

/// Standard base64 with padding, for building PEM in a test.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
