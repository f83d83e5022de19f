//! Entry points for the coverage-guided fuzz targets in `fuzz/` (feature
//! `fuzzing`, never in a release build): everything a DNS server or the
//! admin's key file hands this crate, parsed as observe and setup parse it.
//! Each function panics only where the crate would have a bug.

use crate::{Listing, cloudflare, config, marks, powerdns, rfc2136};
use serde_json::Value;
use std::path::Path;
use tenantry_core::Mark;

/// A TSIG key file as `tsig-keygen` writes it: parsed or refused with a
/// message naming the file, never a panic; an accepted key has a name and
/// a secret, and its `Debug` form never shows the secret.
pub fn tsig_key(text: &str) {
    if let Ok(key) = config::parse_tsig_key(text, Path::new("fuzz.key")) {
        assert!(!key.name.trim().is_empty(), "a key without a name was accepted");
        assert!(!key.secret.is_empty(), "a key without a secret was accepted");
        let shown = format!("{key:?}");
        assert!(shown.contains("(redacted)"), "the key's Debug form shows more than it should: {shown}");
    }
}

/// A server's answer to a zone listing: a PowerDNS zone body, a Cloudflare
/// result page (JSON), or an AXFR response (DNS wire format).
pub fn records(bytes: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<Value>(bytes) {
        marks_of(&powerdns::listing_from(&body));
        let page = body.get("result").and_then(Value::as_array).into_iter().flatten();
        let records = page.filter_map(cloudflare::found).collect();
        marks_of(&Listing { records });
    }
    marks_of(&rfc2136::listing_from_wire(bytes));
}

/// Each marked name's words read as this platform and another would.
fn marks_of(listing: &Listing) {
    for words in marks::by_name(&listing.records).into_values() {
        for platform in ["default", "homelab"] {
            if let Mark::Ours(owner) = Mark::from_words(words, platform) {
                let written = Mark::words(&owner, platform);
                assert_eq!(Mark::from_words(&written, platform), Mark::Ours(owner), "marks do not round-trip");
            }
        }
    }
    let _ = listing.total();
}
