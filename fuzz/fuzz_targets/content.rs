//! Canonical content, the text every target's observation is compared in:
//! canonicalizing is idempotent, so equal meaning is equal bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenantry_core::Content;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(content) = Content::parse(text) {
        let again = Content::parse(content.as_str());
        assert_eq!(again.ok().as_ref(), Some(&content), "canonical text is not a fixed point");
        let pretty = Content::parse(&content.pretty());
        assert_eq!(pretty.ok().as_ref(), Some(&content), "the pretty form reads back differently");
    }
});
