//! The text of a config file through the config loader and the model's compilation, then served: `signpost::fuzzing::config`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = signpost::fuzzing::config(data) {
        panic!("{failure}");
    }
});
