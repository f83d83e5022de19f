//! The roster parser and validator: any bytes are either a roster (read the
//! same way twice, and derivable) or refused with errors that each point
//! inside the input and offer a fix.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tenantry_model::{Span, ValidationContext, load};

/// Codes about the file as a whole, which have no one position.
const WHOLE_FILE: &[&str] = &["roster-too-large", "empty-roster"];

fuzz_target!(|bytes: &[u8]| {
    let context = ValidationContext::default();
    match load("fuzz.yaml", bytes, &context) {
        Ok(roster) => {
            let again = load("fuzz.yaml", bytes, &context).map(|r| format!("{r:?}"));
            assert_eq!(again.ok(), Some(format!("{roster:?}")), "the same bytes read differently");
            let desired = tenantry_core::derive(&roster, &Default::default(), &Default::default());
            assert!(desired.resources().windows(2).all(|w| w[0].id < w[1].id), "resources not sorted by id");
        }
        Err(found) => {
            assert!(found.has_errors(), "refused without an error");
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.split('\n').collect();
            for error in found.errors() {
                assert!(error.help.is_some() && !error.message.is_empty(), "no message or fix: {error}");
                if WHOLE_FILE.contains(&error.code) {
                    continue;
                }
                let Span { line, column } = error.span;
                assert!(line >= 1 && column >= 1, "no position: {error}");
                let width = lines.get(line as usize - 1).map(|l| l.len());
                assert!(width.is_some_and(|w| column as usize <= w + 1), "position past the input: {error}");
            }
        }
    }
});
