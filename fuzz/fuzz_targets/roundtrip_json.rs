//! Any record survives JSON as far as JSON can carry it. JSON has no tuples, bytes,
//! sets or non-string keys, so the check is idempotence: the text decodes, and
//! encode(decode(encode(r))) == encode(r) byte for byte.
//!
//! One exception is JSON's, not ours: `json.dumps` turns keys into strings, so `1` and
//! `"1"` in one dict both become `"1"` and the decoder keeps the last. For such a
//! record the check is that the second encoding is a fixed point.
#![no_main]

use distlog::serialize::{decode, encode, json};
use distlog::topic::Encoding;
use distlog::{Record, Value};
use libfuzzer_sys::fuzz_target;

/// The key as JSON writes it, through the public encoder: `{<key>: null}`.
fn json_key(k: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    json::encode_value(&Value::Dict(vec![(k.clone(), Value::None)]), &mut out);
    out
}

/// Whether some dict in the value has two keys that JSON writes the same.
fn keys_collide(v: &Value) -> bool {
    match v {
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            items.iter().any(keys_collide)
        }
        Value::Dict(items) => {
            let mut seen: Vec<Vec<u8>> = items.iter().map(|(k, _)| json_key(k)).collect();
            seen.sort_unstable();
            let n = seen.len();
            seen.dedup();
            seen.len() != n || items.iter().any(|(_, v)| keys_collide(v))
        }
        _ => false,
    }
}

fn json_decode(body: &[u8], what: &str) -> Record {
    match decode(body, Encoding::Json) {
        Ok(r) => r,
        Err(e) => panic!(
            "{what} does not decode: {e}\n{}",
            String::from_utf8_lossy(body)
        ),
    }
}

fuzz_target!(|record: Record| {
    let mut once = Vec::new();
    encode(&record, Encoding::Json, &mut once);
    let back = json_decode(&once, "encoded record");
    let mut twice = Vec::new();
    encode(&back, Encoding::Json, &mut twice);
    if record.fields().any(|(_, v)| keys_collide(v)) {
        let mut thrice = Vec::new();
        encode(
            &json_decode(&twice, "re-encoded record"),
            Encoding::Json,
            &mut thrice,
        );
        assert!(twice == thrice, "JSON re-encoding is not a fixed point");
    } else {
        let checked = json::check_record(&once, &Default::default());
        assert!(
            checked.is_ok_and(|c| c.canonical),
            "the checker does not call our own encoding canonical:\n{}",
            String::from_utf8_lossy(&once)
        );
        assert!(
            once == twice,
            "JSON round trip is not idempotent:\n{}\n{}",
            String::from_utf8_lossy(&once),
            String::from_utf8_lossy(&twice)
        );
    }
});
