//! The JSON decoder on any bytes: never panics, never overflows the stack, and what it
//! accepts re-encodes to text that decodes and re-encodes to the same bytes.
//!
//! The record checker, validators and namer on the same bytes: they accept and reject exactly
//! what the record decoder does, with the same error, and when the checker calls a body
//! canonical, re-encoding the decoded record gives back that body byte for byte.
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
    let checked = json::check_record(data, &limits);
    let validated = json::validate_record(data, &limits);
    let named = json::validate_named(data, &limits);
    assert_eq!(
        named.as_ref().map(|_| ()).map_err(Clone::clone),
        validated.clone(),
        "validate_named's verdict differs from the validator's"
    );
    let decoded = json::decode_record(data, &limits);
    assert_eq!(
        validated,
        decoded.as_ref().map(|_| ()).map_err(Clone::clone),
        "the validator's verdict differs"
    );
    match decoded {
        Ok(record) => {
            let checked = checked.expect("the checker accepts what the decoder accepts");
            let mut again = Vec::new();
            json::encode_record(&record, &mut again);
            assert_eq!(
                checked.canonical,
                again == data,
                "canonical is wrong for {:?}",
                String::from_utf8_lossy(data)
            );
            // A name read while checking or naming is the record's name (collectors
            // route by it).
            let named = named.expect("validate_named accepts what the decoder accepts");
            if let Some(name) = named.plain_name(data) {
                assert_eq!(
                    record.name(),
                    Some(name),
                    "validate_named's name is wrong for {:?}",
                    String::from_utf8_lossy(data)
                );
            }
            if let Some(name) = checked.plain_name(data) {
                assert_eq!(
                    record.name(),
                    Some(name),
                    "plain_name is wrong for {:?}",
                    String::from_utf8_lossy(data)
                );
            }
        }
        Err(e) => assert_eq!(checked, Err(e), "the checker's error differs"),
    }
});
