//! tenantry.toml: parsed into a configuration or refused with a message
//! and a fix, never a panic; an accepted one gives settings and context.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    if let Ok(config) = tenantry_app::Config::parse(text, "tenantry.toml", Default::default()) {
        let _ = config.settings();
        let _ = config.validation_context();
    }
});
