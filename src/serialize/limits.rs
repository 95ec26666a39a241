//! How far a decoder lets hostile input go.

/// How far a decoder lets input go before refusing it.
///
/// ```
/// use distlog::serialize::{decode_with, ErrorKind, Limits};
/// use distlog::topic::Encoding;
/// let mut limits = Limits::default();
/// limits.max_depth = 2;
/// let err = decode_with(br#"{"a": [[1]]}"#, Encoding::Json, &limits).unwrap_err();
/// assert_eq!(err.kind, ErrorKind::TooDeep(2));
/// ```
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
