//! What DNS servers answer to a zone listing (PowerDNS and Cloudflare JSON,
//! AXFR wire format), and the ownership marks read from it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    tenantry_dns::fuzzing::records(bytes);
});
