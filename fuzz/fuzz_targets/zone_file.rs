//! The text of a zone file through the zone loader, then served: `signpost::fuzzing::zone_file`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = signpost::fuzzing::zone_file(data) {
        panic!("{failure}");
    }
});
