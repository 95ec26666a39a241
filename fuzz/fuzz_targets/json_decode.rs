//! The JSON decoder on any bytes: never panics, never overflows the stack, and what it
//! accepts re-encodes to text that decodes and re-encodes to the same bytes.
#![no_main]

use distlog::serialize::{json, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    match json::decode_value(data, &limits) {
        Ok(v) => {
            let mut once = Vec::new();
            json::encode_value(&v, &mut once);
            let back = json::decode_value(&once, &limits).expect("re-encoded JSON decodes");
            let mut twice = Vec::new();
            json::encode_value(&back, &mut twice);
            assert!(once == twice, "JSON re-encoding is not stable");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
