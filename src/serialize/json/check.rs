//! Checking and validating record bodies without building the record, for a
//! collector that only counts or copies records.

use super::decode::decode_record;
use super::parser::{after_utf8, Parser, CHECK, NAMED, VALIDATE};
use crate::serialize::error::DecodeError;
use crate::serialize::limits::Limits;

/// What [`check_record`] found out about a body that decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Checked {
    /// Whether the body is byte for byte what [`encode_record`](super::encode_record)
    /// writes for the record it decodes to (as it is for every body Python's
    /// `json.dumps` or distlog wrote), so a JSON output can copy it instead of decoding
    /// and encoding it again.
    pub canonical: bool,
    name: Option<(usize, usize)>,
}

impl Checked {
    /// The record's `name` (its logger), found while checking, when it is a JSON
    /// string without escapes, as logger names nearly always are: a collector that
    /// routes records by logger can do so without decoding them. `None` when the
    /// record has no `name`, its value is anything else, or some key of the record
    /// has an escape and might spell `name` (decode the record to see it). `body`
    /// must be the body that was checked.
    ///
    /// ```
    /// use distlog::serialize::{json, Limits};
    /// let body = br#"{"name": "shop.orders", "msg": "paid"}"#;
    /// let checked = json::check_record(body, &Limits::default()).unwrap();
    /// assert_eq!(checked.plain_name(body), Some("shop.orders"));
    /// let escaped = br#"{"name": "shop\u002eorders"}"#;
    /// let checked = json::check_record(escaped, &Limits::default()).unwrap();
    /// assert_eq!(checked.plain_name(escaped), None);
    /// ```
    pub fn plain_name<'a>(&self, body: &'a [u8]) -> Option<&'a str> {
        name_in(self.name, body)
    }
}

fn name_in(name: Option<(usize, usize)>, body: &[u8]) -> Option<&str> {
    let (start, end) = name?;
    std::str::from_utf8(body.get(start..end)?).ok()
}

/// The pass that checking, naming and validating share: the parser in mode `M` on a
/// record body, with the same verdicts and errors as [`decode_record`]. What it found
/// is a [`Checked`], whose `canonical` means something only when checking.
fn examine<const M: u8>(input: &[u8], limits: &Limits) -> Result<Checked, DecodeError> {
    let mut p = Parser::<M>::new(input, limits)?;
    if p.s.get(p.pos) != Some(&b'{') {
        // The error names the type of what was sent, which takes decoding it.
        return decode_record(input, limits).map(|_| Checked {
            canonical: false,
            name: None,
        });
    }
    let result = p.record();
    after_utf8(input, result.is_err() || p.non_ascii)?;
    result.map(|_| Checked {
        canonical: p.canonical,
        // A key with an escape may spell `name`: the name found may not be the last.
        name: p.name.filter(|_| !p.escaped_key),
    })
}

/// What [`validate_named`] found out about a body that decodes: where its logger's
/// name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Named {
    name: Option<(usize, usize)>,
}

impl Named {
    /// The record's `name`, as [`Checked::plain_name`] gives it: `None` when the
    /// record has no `name`, its value is not a string without escapes, or some
    /// key of the record has an escape (it might spell `name`). `body` must be the
    /// body that was validated.
    ///
    /// ```
    /// use distlog::serialize::{json, Limits};
    /// let body = br#"{"msg": "paid", "name": "shop.orders"}"#;
    /// let named = json::validate_named(body, &Limits::default()).unwrap();
    /// assert_eq!(named.plain_name(body), Some("shop.orders"));
    /// ```
    pub fn plain_name<'a>(&self, body: &'a [u8]) -> Option<&'a str> {
        name_in(self.name, body)
    }
}

/// Checks a record body without building the record: it accepts and rejects exactly
/// what [`decode_record`] does, with the same errors, and allocates nothing for a
/// well-formed body. This is how a collector that only counts or copies records
/// validates them.
///
/// ```
/// use distlog::serialize::{json, Limits};
/// let limits = Limits::default();
/// let ok = json::check_record(br#"{"name": "app", "msecs": 5.0}"#, &limits).unwrap();
/// assert!(ok.canonical);
/// // Valid, but json.dumps would write it differently.
/// let spaced = json::check_record(br#"{"name":"app"}"#, &limits).unwrap();
/// assert!(!spaced.canonical);
/// let err = json::check_record(br#"{"name": "app",}"#, &limits).unwrap_err();
/// assert_eq!(err.to_string(), "invalid JSON body at byte 15: found '}', expected a string key");
/// ```
pub fn check_record(input: &[u8], limits: &Limits) -> Result<Checked, DecodeError> {
    examine::<CHECK>(input, limits)
}

/// Validates a record body and finds its logger's name, without finding out whether
/// it is canonical (no float is parsed): it accepts and rejects exactly what
/// [`decode_record`] does, with the same errors. This is how a collector that routes
/// records by logger, and copies them as they came, checks them.
///
/// ```
/// use distlog::serialize::{json, Limits};
/// let limits = Limits::default();
/// let body = br#"{"name":"shop.orders","msecs":5.00}"#;
/// let named = json::validate_named(body, &limits).unwrap();
/// assert_eq!(named.plain_name(body), Some("shop.orders"));
/// let err = json::validate_named(br#"{"name": 1,}"#, &limits).unwrap_err();
/// assert_eq!(err.to_string(), "invalid JSON body at byte 11: found '}', expected a string key");
/// ```
pub fn validate_named(input: &[u8], limits: &Limits) -> Result<Named, DecodeError> {
    examine::<NAMED>(input, limits).map(|c| Named { name: c.name })
}

/// Validates a record body and nothing more: it accepts and rejects exactly what
/// [`decode_record`] does, with the same errors, and neither builds the record nor
/// finds out whether the body is canonical (no float is even parsed). This is how a
/// collector that only counts records checks them.
///
/// ```
/// use distlog::serialize::{json, Limits};
/// let limits = Limits::default();
/// assert!(json::validate_record(br#"{"name":"app","msecs":5.00}"#, &limits).is_ok());
/// let err = json::validate_record(br#"{"name": "app" "x": 1}"#, &limits).unwrap_err();
/// assert_eq!(err.to_string(), "invalid JSON body at byte 15: found '\"', expected ',' or '}'");
/// ```
pub fn validate_record(input: &[u8], limits: &Limits) -> Result<(), DecodeError> {
    examine::<VALIDATE>(input, limits).map(|_| ())
}
