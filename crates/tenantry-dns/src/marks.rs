//! Whose a DNS record is: where each provider keeps tenantry's marks (the
//! words of `tenantry_core::Mark::words`: `managed-by=tenantry user=<user>
//! platform=<platform.name>`).
//!
//! - **Cloudflare** keeps them on the record itself, in its comment
//!   (`managed-by tenantry user=<user> platform=<name>[ ttl=<n>]`, see
//!   `cloudflare.rs`).
//! - **RFC 2136 and PowerDNS** records have nowhere to put them, so each
//!   record tenantry writes gets an ownership TXT record beside it at
//!   `_tenantry.<name>` (as external-dns does with its registry TXT), each
//!   word one character-string. Not at `<name>` itself: a TXT cannot sit
//!   beside a CNAME. The underscore label (RFC 8552) can never be a user
//!   domain (the roster allows letters, digits and `-` only), and it is the
//!   usual place for data about a name (`_dmarc`, `_acme-challenge`). The
//!   mark is written in the same UPDATE message or PATCH as its record and
//!   removed with it, and read from the same AXFR or zone listing, so it
//!   costs no request. It lives in DNS data, so a zone keeps its owners
//!   when it moves between the `rfc2136` and `powerdns` providers, and
//!   `dig TXT _tenantry.<name>` shows whose a name is.
//!
//! Records written before marks existed (RFC 2136 and PowerDNS) have no
//! mark: they are an earlier version's, claimed only through the inventory.

use std::collections::HashMap;

/// The label under a record's name where its ownership TXT record lives.
pub const MARK_LABEL: &str = "_tenantry";

/// The name of the ownership TXT record of the record at `name`.
pub(crate) fn mark_name(name: &str) -> String {
    format!("{MARK_LABEL}.{name}")
}

/// The record name an ownership TXT record at `name` is about.
fn marked_name(name: &str) -> Option<&str> {
    name.strip_prefix(MARK_LABEL)?.strip_prefix('.')
}

/// The character-strings of an ownership TXT record: one word each.
pub(crate) fn txt_strings(words: &str) -> Vec<String> {
    words.split_whitespace().map(str::to_string).collect()
}

/// A TXT record's character-strings as one text (words separated by a
/// space), the way both providers report TXT content.
pub(crate) fn txt_text<'a>(strings: impl IntoIterator<Item = &'a str>) -> String {
    strings.into_iter().collect::<Vec<_>>().join(" ")
}

/// The marks of each name in a zone listing, from its ownership TXT
/// records: record name → words.
pub(crate) fn by_name(records: &[crate::Found]) -> HashMap<&str, &str> {
    records
        .iter()
        .filter(|r| r.rtype == "TXT")
        .filter_map(|r| Some((marked_name(&r.name)?, r.content.as_str())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_core::{Mark, Owner};

    #[test]
    fn a_mark_round_trips_through_txt_strings_and_names() {
        let alice = Owner::User("alice".to_string());
        let words = Mark::words(&alice, "homelab");
        let strings = txt_strings(&words);
        assert_eq!(strings, ["managed-by=tenantry", "user=alice", "platform=homelab"]);
        let text = txt_text(strings.iter().map(String::as_str));
        assert_eq!(Mark::from_words(&text, "homelab"), Mark::Ours(alice));
        assert_eq!(mark_name("a.lab.test"), "_tenantry.a.lab.test");
        assert_eq!(marked_name("_tenantry.a.lab.test"), Some("a.lab.test"));
        assert_eq!(marked_name("_tenantryx.a.lab.test"), None);
        assert_eq!(marked_name("a.lab.test"), None);
    }
}
