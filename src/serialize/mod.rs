//! Record bodies: JSON as Python's `json.dumps` writes it, and pickle protocol 3.
//!
//! Both codecs are written here rather than taken from `serde_json` and `serde-pickle`
//! because the wire needs what those cannot give: `serde_json` rejects the `NaN` and
//! `Infinity` that Python writes and cannot keep integers beyond 64 bits without a
//! feature that changes it for every crate in the build; `serde-pickle` decodes dicts
//! into a `BTreeMap`, losing the key order the format fixes, and drops deep values
//! recursively. Both decoders here bound nesting depth and expansion, so hostile input
//! gets a typed error, never a stack overflow or an unbounded allocation. [`Record`] and
//! [`Value`] implement `serde::Serialize`, so they still go to any serde format.
//!
//! ```
//! use distlog::serialize::{decode, encode};
//! use distlog::topic::Encoding;
//! use distlog::Record;
//!
//! let record = Record::from_pairs([("name", "app".into()), ("levelno", 20.into())]);
//! for encoding in [Encoding::Json, Encoding::Pickle] {
//!     let mut body = Vec::new();
//!     encode(&record, encoding, &mut body);
//!     assert_eq!(decode(&body, encoding).unwrap(), record);
//! }
//! ```

pub(crate) mod callsite;
pub mod json;
pub mod pickle;

mod error;
mod limits;

pub(crate) use error::type_name;
pub use error::{DecodeError, ErrorKind, MessageError};
pub use limits::Limits;

use crate::record::{Event, Fields, ProcessInfo, Record};
use crate::topic::{Encoding, Topic};
use crate::value::Value;

/// Encodes a record body in the given encoding, appending to `out`.
pub fn encode(record: &Record, encoding: Encoding, out: &mut Vec<u8>) {
    encode_fields(record, encoding, out)
}

/// Encodes the record an [`Event`] becomes, without building it: what the handler's
/// sender thread does with every log call.
///
/// ```
/// use distlog::record::{Event, ProcessInfo};
/// use distlog::serialize::{decode, encode_event};
/// use distlog::topic::Encoding;
/// let event = Event::new(log::Level::Warn, "shop", "stock low".into());
/// let mut body = Vec::new();
/// encode_event(&event, &ProcessInfo::current(), Encoding::Json, &mut body);
/// let record = decode(&body, Encoding::Json).unwrap();
/// assert_eq!(record.levelname(), Some("WARNING"));
/// ```
#[inline]
pub fn encode_event(event: &Event, process: &ProcessInfo, encoding: Encoding, out: &mut Vec<u8>) {
    encode_fields(&event.fields(process), encoding, out)
}

/// Encodes any [`Fields`] (a record, or an event not yet built into one).
pub(crate) fn encode_fields(fields: &dyn Fields, encoding: Encoding, out: &mut Vec<u8>) {
    match encoding {
        Encoding::Json => json::encode_fields(fields, out),
        Encoding::Pickle => pickle::encode_fields(fields, out),
    }
}

/// Decodes a record body with the default [`Limits`].
pub fn decode(body: &[u8], encoding: Encoding) -> Result<Record, DecodeError> {
    decode_with(body, encoding, &Limits::default())
}

/// Decodes a record body with explicit limits.
pub fn decode_with(
    body: &[u8],
    encoding: Encoding,
    limits: &Limits,
) -> Result<Record, DecodeError> {
    match encoding {
        Encoding::Json => json::decode_record(body, limits),
        Encoding::Pickle => record_from_value(pickle::decode_value(body, limits)?, encoding),
    }
}

/// Turns a decoded top-level value into a record: it must be a dict with string keys.
fn record_from_value(value: Value, encoding: Encoding) -> Result<Record, DecodeError> {
    let items = match value {
        Value::Dict(items) => items,
        other => {
            return Err(DecodeError::new(
                encoding,
                0,
                ErrorKind::NotADict(type_name(&other)),
            ));
        }
    };
    let mut fields = Vec::with_capacity(items.len());
    for (k, v) in items {
        match k {
            Value::Str(k) => fields.push((k.into(), v)),
            other => {
                return Err(DecodeError::new(
                    encoding,
                    0,
                    ErrorKind::NonStringKey(other.to_string()),
                ));
            }
        }
    }
    Ok(Record::from_unique_pairs(fields))
}

/// Decodes a whole message as the collector receives it: exactly two frames, a valid
/// topic, a body that decodes by the topic's encoding.
///
/// ```
/// use distlog::serialize::{decode_message, MessageError};
/// let err = decode_message(&[b"TLJ".as_slice()], &Default::default()).unwrap_err();
/// assert!(matches!(err, MessageError::FrameCount(1)));
/// let (topic, record) = decode_message(&[b"TLJ".as_slice(), br#"{"name": "x"}"#], &Default::default()).unwrap();
/// assert_eq!(topic.to_string(), "TLJ");
/// assert_eq!(record.name(), Some("x"));
/// ```
pub fn decode_message<F: AsRef<[u8]>>(
    frames: &[F],
    limits: &Limits,
) -> Result<(Topic, Record), MessageError> {
    if frames.len() != 2 {
        return Err(MessageError::FrameCount(frames.len()));
    }
    let topic = Topic::parse(frames[0].as_ref()).map_err(MessageError::Topic)?;
    let record =
        decode_with(frames[1].as_ref(), topic.encoding, limits).map_err(MessageError::Body)?;
    Ok((topic, record))
}
