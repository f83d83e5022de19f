//! The TLS source checks: certificate and key PEM (or git-crypt ciphertext,
//! or anything) are accepted only as a matching, unexpired pair covering
//! the domains, and never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fuzz_target!(|bytes: &[u8]| {
    // The first byte says where the certificate ends and the key begins.
    let Some((&split, rest)) = bytes.split_first() else { return };
    let (cert, key) = rest.split_at((split as usize * rest.len()) / 256);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = tenantry_tls::is_git_crypt(cert);
    if let Ok(report) = tenantry_tls::validate(cert, key, &["app.example.org", "*.example.org"], now) {
        // Accepted: the report must be about a certificate that parses again.
        assert!(tenantry_tls::Source::parse(cert, key).is_ok(), "validated but does not parse: {report:?}");
    }
    if let Ok(source) = tenantry_tls::Source::parse(cert, key) {
        for name in source.dns_names() {
            let _ = tenantry_tls::covers(name, "app.example.org");
        }
    }
});
