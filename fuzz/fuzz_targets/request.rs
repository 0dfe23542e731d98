//! A DNS message in, the answer out (UDP and TCP), every answer parsed back and checked: `signpost::fuzzing::request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = signpost::fuzzing::request(data) {
        panic!("{failure}");
    }
});
