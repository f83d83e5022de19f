//! The TSIG key file (`tsig-keygen` format) named in tenantry.toml.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(text) = std::str::from_utf8(bytes) {
        tenantry_dns::fuzzing::tsig_key(text);
    }
});
