//! The pickle decoder on any bytes: never panics, never runs anything, stays within its
//! limits, and what it accepts re-encodes as protocol 3 and decodes to the same bytes.
#![no_main]

use distlog::serialize::{pickle, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match pickle::decode_value(data, &limits) {
        Ok(v) => {
            let mut once = Vec::new();
            pickle::encode_value(&v, &mut once);
            let back = pickle::decode_value(&once, &limits).expect("re-encoded pickle decodes");
            let mut twice = Vec::new();
            pickle::encode_value(&back, &mut twice);
            // Bytes, not `==`: NaN is not equal to itself but encodes the same.
            assert!(once == twice, "pickle re-encoding is not stable");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
