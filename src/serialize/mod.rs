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

use crate::record::{Event, Fields, ProcessInfo, Record};
use crate::topic::{Encoding, Topic, TopicError};
use crate::value::Value;
use std::fmt;

/// How far a decoder lets input go before refusing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Deepest nesting of lists, dicts, tuples and sets.
    pub max_depth: usize,
    /// Most values a body may decode to, counted over the whole record: JSON values and
    /// keys; pickle values as memo references (`BINGET`) expand them, with pushes and
    /// copies while parsing bounded at four per value (a set takes four pushes). Stops
    /// "billion laughs" inputs and bounds what decoding takes beyond the body itself:
    /// at the default, 91 MB for a pickle of a million values, 170 MB at most for any
    /// body (measured in `tests/hostile_memory.rs`).
    pub max_values: usize,
    /// Most decimal digits in an integer (Python 3.11 refuses more than 4300 too).
    pub max_int_digits: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 128,
            max_values: 1 << 20,
            max_int_digits: 4300,
        }
    }
}

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

/// Python's name for the type of a value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::None => "NoneType",
        Value::Bool(_) => "bool",
        Value::Int(_) | Value::BigInt(_) => "int",
        Value::Float(_) => "float",
        Value::Str(_) => "str",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "list",
        Value::Tuple(_) => "tuple",
        Value::Set(_) => "set",
        Value::Dict(_) => "dict",
    }
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

/// Why a message was rejected.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageError {
    /// Not exactly two frames.
    FrameCount(usize),
    /// The first frame is not a topic.
    Topic(TopicError),
    /// The body did not decode.
    Body(DecodeError),
}

impl MessageError {
    /// A short stable name for counting rejections by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            MessageError::FrameCount(_) => "frame_count",
            MessageError::Topic(_) => "bad_topic",
            MessageError::Body(e) => match e.kind {
                ErrorKind::TooDeep(_) | ErrorKind::TooManyValues(_) | ErrorKind::IntTooLong(_) => {
                    "too_large"
                }
                ErrorKind::ForbiddenOpcode { .. } => "forbidden_pickle",
                _ => "bad_body",
            },
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::FrameCount(n) => write!(f, "expected 2 frames [topic, body], got {n}"),
            MessageError::Topic(e) => write!(f, "{e}"),
            MessageError::Body(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::FrameCount(_) => None,
            MessageError::Topic(e) => Some(e),
            MessageError::Body(e) => Some(e),
        }
    }
}

/// A body that did not decode: which codec, where, and what was wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DecodeError {
    /// The codec that failed.
    pub encoding: Encoding,
    /// Byte offset in the body where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    pub(crate) fn new(encoding: Encoding, offset: usize, kind: ErrorKind) -> Self {
        DecodeError {
            encoding,
            offset,
            kind,
        }
    }
}

/// What was wrong with a body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ended inside a value.
    Eof,
    /// A byte that cannot start or continue what was being read.
    Unexpected {
        /// What the decoder found (a character or byte, shown readably).
        found: String,
        /// What it expected there.
        expected: &'static str,
    },
    /// Something followed the end of the value.
    TrailingData,
    /// The text was not UTF-8.
    InvalidUtf8,
    /// A string escape that is not valid.
    BadEscape(String),
    /// A number that is not valid.
    BadNumber(String),
    /// An integer with more digits than allowed.
    IntTooLong(usize),
    /// Nesting deeper than allowed.
    TooDeep(usize),
    /// More values than [`Limits::max_values`], as written or as memo references expand.
    TooManyValues(usize),
    /// A pickle opcode that would build or call an object: never executed.
    ForbiddenOpcode {
        /// The opcode byte.
        opcode: u8,
        /// Its pickletools name.
        name: &'static str,
    },
    /// A pickle opcode that is not known at all.
    UnknownOpcode(u8),
    /// A pickle protocol newer than 5.
    UnsupportedProtocol(u8),
    /// A pickle stack operation with too few items, or no mark.
    StackUnderflow(&'static str),
    /// A memo reference to an index never stored.
    MissingMemo(u64),
    /// A dict key that cannot be hashed in Python (a list or dict).
    UnhashableKey(&'static str),
    /// An operation applied to a value of the wrong type.
    WrongType {
        /// The operation.
        op: &'static str,
        /// The type it got.
        found: &'static str,
    },
    /// A declared length longer than the rest of the input.
    LengthPastEnd(u64),
    /// The body is valid but is not a dict, so not a record.
    NotADict(&'static str),
    /// A record key that is not a string.
    NonStringKey(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codec = match self.encoding {
            Encoding::Json => "JSON",
            Encoding::Pickle => "pickle",
        };
        write!(f, "invalid {codec} body at byte {}: ", self.offset)?;
        match &self.kind {
            ErrorKind::Eof => write!(f, "unexpected end of input"),
            ErrorKind::Unexpected { found, expected } => write!(f, "found {found}, expected {expected}"),
            ErrorKind::TrailingData => write!(f, "trailing data after the value"),
            ErrorKind::InvalidUtf8 => write!(f, "invalid UTF-8"),
            ErrorKind::BadEscape(e) => write!(f, "invalid string escape {e}"),
            ErrorKind::BadNumber(n) => write!(f, "invalid number {n:?}"),
            ErrorKind::IntTooLong(n) => write!(f, "integer of {n} digits exceeds the limit"),
            ErrorKind::TooDeep(d) => write!(f, "nesting deeper than {d} levels"),
            ErrorKind::TooManyValues(n) => write!(f, "more than {n} values"),
            ErrorKind::ForbiddenOpcode { opcode, name } => write!(
                f,
                "opcode 0x{opcode:02x} {name} would build an object; distlog decodes pickle as data only"
            ),
            ErrorKind::UnknownOpcode(op) => write!(f, "unknown opcode 0x{op:02x}"),
            ErrorKind::UnsupportedProtocol(p) => write!(f, "unsupported protocol {p}"),
            ErrorKind::StackUnderflow(op) => write!(f, "{op} with too few items on the stack"),
            ErrorKind::MissingMemo(i) => write!(f, "memo index {i} was never stored"),
            ErrorKind::UnhashableKey(t) => write!(f, "unhashable dict key of type {t}"),
            ErrorKind::WrongType { op, found } => write!(f, "{op} applied to a {found}"),
            ErrorKind::LengthPastEnd(n) => write!(f, "declared length {n} runs past the end of the input"),
            ErrorKind::NotADict(t) => write!(f, "a record must be a dict, got a {t}"),
            ErrorKind::NonStringKey(k) => write!(f, "record key {k} is not a string"),
        }
    }
}

impl std::error::Error for DecodeError {}
