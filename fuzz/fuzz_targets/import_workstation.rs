//! `tenantry import`'s reading of the origin's workstation roster YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(bytes) else { return };
    if let Err(error) = tenantry_import::parse_workstation_roster(yaml, "fuzz.yaml") {
        assert!(error.diagnostics().has_errors(), "refused without an error");
    }
});
