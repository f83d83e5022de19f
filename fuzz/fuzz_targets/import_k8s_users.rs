//! `tenantry import`'s reading of the origin's `k8s_users` JSON: refused
//! with a position, or turned into a roster that loads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenantry_model::ValidationContext;

fuzz_target!(|bytes: &[u8]| {
    let Ok(json) = std::str::from_utf8(bytes) else { return };
    if tenantry_import::parse_k8s_users(json, "fuzz.json").is_ok() {
        // Whatever parsed becomes a roster, or a refusal naming what is wrong.
        if let Err(found) = tenantry_import::k8s_users_to_roster(json, "fuzz.json", None, &ValidationContext::default())
        {
            assert!(found.diagnostics().has_errors(), "refused without an error");
        }
    }
});
