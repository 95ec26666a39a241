//! Decoding JSON bodies and values into records and values.

use super::duplicate_keys::dedup_fields;
use super::parser::{Parser, BUILD};
use crate::record::Record;
use crate::serialize::error::DecodeError;
use crate::serialize::limits::Limits;
use crate::value::Value;

/// Decodes a record: a JSON object whose keys become the record's keys. Python's
/// standard keys are matched to static strings, so they cost no allocation.
///
/// ```
/// use distlog::serialize::{json, Limits};
/// let r = json::decode_record(br#"{"name": "app", "x": 1}"#, &Limits::default()).unwrap();
/// assert_eq!(r.name(), Some("app"));
/// let err = json::decode_record(b"[1]", &Limits::default()).unwrap_err();
/// assert_eq!(err.to_string(), "invalid JSON body at byte 0: a record must be a dict, got a list");
/// ```
pub fn decode_record(input: &[u8], limits: &Limits) -> Result<Record, DecodeError> {
    let mut p = Parser::<BUILD>::new(input, limits)?;
    let fields = p.record()?;
    Ok(Record::from_unique_pairs(dedup_fields(fields)))
}

/// Decodes one JSON value, as `json.loads` would (see also [`decode_record`]).
///
/// ```
/// use distlog::serialize::{json, Limits};
/// use distlog::Value;
/// let v = json::decode_value(b"[NaN, 123456789012345678901234567890]", &Limits::default()).unwrap();
/// assert!(matches!(&v, Value::List(items) if matches!(items[1], Value::BigInt(_))));
///
/// let err = json::decode_value(b"{\"a\": 1,}", &Limits::default()).unwrap_err();
/// assert_eq!(err.to_string(), "invalid JSON body at byte 8: found '}', expected a string key");
/// ```
pub fn decode_value(input: &[u8], limits: &Limits) -> Result<Value, DecodeError> {
    let mut p = Parser::<BUILD>::new(input, limits)?;
    let v = p.value()?;
    p.finish()?;
    Ok(v)
}
