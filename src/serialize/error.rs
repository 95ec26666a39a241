//! Why a body or a message was refused: typed errors that name the bad value.

use crate::topic::{Encoding, TopicError};
use crate::value::Value;
use std::fmt;

/// Why a message was rejected. The error it wraps, if any, is its `source()`.
///
/// ```
/// use distlog::serialize::{decode_message, Limits, MessageError};
/// use std::error::Error;
/// let err = decode_message(&[b"XLJ".as_slice(), b"{}"], &Limits::default()).unwrap_err();
/// assert!(matches!(err, MessageError::Topic(_)));
/// assert_eq!(err.reason(), "bad_topic");
/// assert!(err.to_string().contains("'X'"));
/// assert!(err.source().is_some());
/// ```
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
///
/// ```
/// use distlog::serialize::{decode, ErrorKind};
/// use distlog::topic::Encoding;
/// let err = decode(b"{\"a\": tru}", Encoding::Json).unwrap_err();
/// assert_eq!(err.offset, 6);
/// assert!(matches!(err.kind, ErrorKind::Unexpected { .. }));
/// ```
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
    /// More values than [`Limits::max_values`](super::Limits::max_values), as written or
    /// as memo references expand.
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
