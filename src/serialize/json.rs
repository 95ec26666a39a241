//! JSON bodies, byte for byte as Python's `json.dumps` writes them: `", "` and `": "`
//! separators, every non-ASCII character escaped as `\uXXXX` (surrogate pairs beyond
//! the BMP), `NaN`/`Infinity`, floats as `repr(float)`, integers of any size.
//!
//! The decoder reads what `json.loads` reads, with the same strictness (no control
//! characters inside strings), and bounds nesting depth and integer length.
//!
//! Two choices where Python would raise instead: `bytes` are written as a string with
//! one character per byte (Latin-1), and dict keys that are not strings, numbers, bools
//! or `None` are written as their `repr`.
//!
//! ```
//! use distlog::serialize::json;
//! use distlog::Value;
//! let v = Value::Dict(vec![("ü".into(), Value::Float(f64::NAN))]);
//! let mut out = Vec::new();
//! json::encode_value(&v, &mut out);
//! assert_eq!(out, br#"{"\u00fc": NaN}"#);
//! ```

use super::{DecodeError, ErrorKind, Limits};
use crate::record::{standard_index_of, FieldRef, Fields, Key, Name, Record, STANDARD_KEYS};
use crate::topic::Encoding;
use crate::value::{PyFloat, Value};
use num_bigint::BigInt;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends a record as a JSON object.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    encode_fields(record, out)
}

/// Appends any [`Fields`] as a JSON object: how the handler writes an event without
/// building a record first.
pub fn encode_fields(fields: &dyn Fields, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    fields.for_each(&mut |k, v| {
        write_member(first, k, v, out);
        first = false;
    });
    out.push(b'}');
}

/// Appends one `"key": value` of an object, after `, ` unless it is the first.
pub(crate) fn write_member(first: bool, k: Name<'_>, v: FieldRef<'_>, out: &mut Vec<u8>) {
    write_name(first, k, out);
    write_field(v, out);
}

/// What [`write_member`] writes before the value.
pub(crate) fn write_name(first: bool, k: Name<'_>, out: &mut Vec<u8>) {
    if !first {
        out.extend_from_slice(b", ");
    }
    match k.standard_index().and_then(|i| ENCODED_KEYS.get(i)) {
        Some(encoded) => out.extend_from_slice(encoded.as_bytes()),
        None => {
            write_str(k.as_str(), out);
            out.extend_from_slice(b": ");
        }
    }
}

/// Python's standard keys, each already written as `"key": `.
static ENCODED_KEYS: [EncodedKey; STANDARD_KEYS.len()] = {
    let mut keys = [EncodedKey {
        text: [0; 24],
        len: 0,
        words: [0; 3],
        keep: [0; 3],
    }; STANDARD_KEYS.len()];
    let mut i = 0;
    while i < STANDARD_KEYS.len() {
        let key = STANDARD_KEYS[i].as_bytes();
        let len = key.len() + 4;
        assert!(len <= 24, "a standard key is longer than EncodedKey holds");
        let text = &mut keys[i].text;
        text[0] = b'"';
        let mut j = 0;
        while j < key.len() {
            let b = key[j];
            assert!(
                b >= 0x20 && b < 0x7f && b != b'"' && b != b'\\',
                "needs an escape"
            );
            text[1 + j] = b;
            j += 1;
        }
        text[len - 3] = b'"';
        text[len - 2] = b':';
        text[len - 1] = b' ';
        let mut w = 0;
        while w < 3 {
            let mut bytes = [0u8; 8];
            let mut j = 0;
            while j < 8 {
                bytes[j] = keys[i].text[8 * w + j];
                j += 1;
            }
            keys[i].words[w] = u64::from_le_bytes(bytes);
            let in_word = len.saturating_sub(8 * w);
            keys[i].keep[w] = if in_word >= 8 {
                u64::MAX
            } else {
                (1u64 << (8 * in_word)) - 1
            };
            w += 1;
        }
        keys[i].len = len;
        i += 1;
    }
    keys
};

/// A standard key as the encoder writes it, and as the record checker looks for it:
/// three words to compare with the input's, masked to the key's length, without a
/// call to `memcmp` or a loop.
#[derive(Clone, Copy)]
struct EncodedKey {
    /// `"key": `, padded with zeros.
    text: [u8; 24],
    len: usize,
    /// `text` as little-endian words.
    words: [u64; 3],
    /// The bytes of each word that are the key's.
    keep: [u64; 3],
}

impl EncodedKey {
    fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }

    /// Whether `s` starts with the key.
    #[inline(always)]
    fn starts(&self, s: &[u8]) -> bool {
        let Some(head) = s.get(..24) else {
            // Within three words of the end: rare enough for `memcmp`.
            return s.starts_with(self.as_bytes());
        };
        let differ = |w: usize| (word(&head[8 * w..]) ^ self.words[w]) & self.keep[w];
        differ(0) | differ(1) | differ(2) == 0
    }
}

pub(crate) fn write_field(v: FieldRef<'_>, out: &mut Vec<u8>) {
    match v {
        FieldRef::None => out.extend_from_slice(b"null"),
        FieldRef::Str(s) => write_str(s, out),
        FieldRef::Int(i) => write_int(i, out),
        FieldRef::U64(u) => match i64::try_from(u) {
            Ok(i) => write_int(i, out),
            Err(_) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
        },
        FieldRef::Float(f) => write_float(f, out),
        FieldRef::Value(v) => encode_value(v, out),
    }
}

/// Appends one value.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::None => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => write_int(*i, out),
        Value::BigInt(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Float(f) => write_float(*f, out),
        Value::Str(s) => write_str(s, out),
        Value::Bytes(b) => {
            let latin1: String = b.iter().map(|&c| c as char).collect();
            write_str(&latin1, out);
        }
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                encode_value(item, out);
            }
            out.push(b']');
        }
        Value::Dict(items) => {
            out.push(b'{');
            for (i, (k, val)) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_key(k, out);
                out.extend_from_slice(b": ");
                encode_value(val, out);
            }
            out.push(b'}');
        }
    }
}

/// Dict keys as `json.dumps` coerces them: numbers, bools and `None` become strings.
fn write_key(k: &Value, out: &mut Vec<u8>) {
    match k {
        Value::Str(s) => write_str(s, out),
        Value::None | Value::Bool(_) | Value::Int(_) | Value::BigInt(_) | Value::Float(_) => {
            let mut tmp = Vec::new();
            encode_value(k, &mut tmp);
            out.push(b'"');
            out.extend_from_slice(&tmp);
            out.push(b'"');
        }
        other => write_str(&other.to_string(), out),
    }
}

fn write_int(i: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
}

fn write_float(f: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(PyFloat::new(f, "NaN", "Infinity").as_bytes());
}

/// Which ASCII bytes `ensure_ascii=True` escapes, and how: 0 copies the byte, `u`
/// writes `\u00XX`, anything else is the letter after the backslash. Non-ASCII bytes
/// are marked `u` too: their whole character becomes `\uXXXX` escapes.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20 || i >= 0x7f { b'u' } else { 0 };
        i += 1;
    }
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t
};

/// Which of eight bytes (little-endian lanes, high bit set) are ones `ensure_ascii`
/// escapes: a control character, `"`, `\\`, DEL, or a byte of a non-ASCII character
/// (bit 7 set). SWAR: the classic "has a byte less than n" and "has a zero byte"
/// tricks, on all lanes at once. A borrow can only flag a lane above one that is
/// flagged rightly, so the lowest flagged lane is exact, which is what scans need.
fn needs_escape(x: u64) -> u64 {
    // Non-ASCII lanes are flagged anyway, so the tricks' usual `& !x` can go.
    (ascii_stops(x) | (x ^ (ONES * 0x7f)).wrapping_sub(ONES) | x) & HIGH
}

/// Whether a string needs no escape at all, the common case, checked eight bytes at a
/// time.
fn is_plain(bytes: &[u8]) -> bool {
    scan(bytes, 0, needs_escape) == bytes.len()
}

/// A string with `ensure_ascii=True` escaping.
pub(crate) fn write_str(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    if is_plain(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Plain bytes eight at a time: most of a record is plain ASCII. The scan stops
        // exactly at the next byte that needs an escape.
        i = scan(bytes, i, needs_escape);
        let Some(&b) = bytes.get(i) else { break };
        let esc = ESCAPE[b as usize];
        out.extend_from_slice(&bytes[start..i]);
        if esc != b'u' {
            out.extend_from_slice(&[b'\\', esc]);
            i += 1;
        } else if b < 0x80 {
            write_u16_escape(b as u16, out);
            i += 1;
        } else {
            let ch = s[i..].chars().next().unwrap_or('\u{fffd}');
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write_u16_escape(*unit, out);
            }
            i += ch.len_utf8().max(1);
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_u16_escape(u: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[(u >> 12) as usize & 0xf],
        HEX[(u >> 8) as usize & 0xf],
        HEX[(u >> 4) as usize & 0xf],
        HEX[u as usize & 0xf],
    ]);
}

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

/// What [`check_record`] found out about a body that decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Whether the body is byte for byte what [`encode_record`] writes for the record
    /// it decodes to (as it is for every body Python's `json.dumps` or distlog wrote),
    /// so a JSON output can copy it instead of decoding and encoding it again.
    pub canonical: bool,
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
    let mut p = Parser::<CHECK>::new(input, limits)?;
    if p.s.get(p.pos) != Some(&b'{') {
        // The error names the type of what was sent, which takes decoding it.
        return decode_record(input, limits).map(|_| Checked { canonical: false });
    }
    let result = p.record();
    after_utf8(input, result.is_err() || p.non_ascii)?;
    result.map(|_| Checked {
        canonical: p.canonical,
    })
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
    let mut p = Parser::<VALIDATE>::new(input, limits)?;
    if p.s.get(p.pos) != Some(&b'{') {
        return decode_record(input, limits).map(|_| ());
    }
    let result = p.record().map(|_| ());
    after_utf8(input, result.is_err() || p.non_ascii)?;
    result
}

/// Checking and validating, the input's UTF-8 is checked last, and only `if_needed`:
/// outside strings the grammar accepts only ASCII, and a string's non-ASCII bytes
/// are noticed, so the input can only fail to be UTF-8 then or when it is rejected
/// anyway, and not being UTF-8 is the error that decoding reports first.
fn after_utf8(input: &[u8], if_needed: bool) -> Result<(), DecodeError> {
    if if_needed {
        utf8(input)?;
    }
    Ok(())
}

fn utf8(input: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(input)
        .map_err(|e| DecodeError::new(Encoding::Json, e.valid_up_to(), ErrorKind::InvalidUtf8))
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

/// The parser's modes: build values; check the input and whether it is canonical; or
/// only validate it. Checking and validating, every value is a placeholder
/// `Value::None`. One grammar serves all three, so they cannot disagree on what is
/// valid.
const BUILD: u8 = 0;
const CHECK: u8 = 1;
const VALIDATE: u8 = 2;

struct Parser<'a, const M: u8> {
    s: &'a [u8],
    /// Building, `s` as text. Checking and validating, it is empty and never read:
    /// the input is checked for UTF-8 only at the end, if at all (see [`after_utf8`]).
    text: &'a str,
    pos: usize,
    depth: usize,
    /// How many more values and keys may be read: `max_values` to start with.
    values_left: usize,
    limits: &'a Limits,
    /// Checking: whether everything so far is exactly what the encoder writes.
    canonical: bool,
    /// Checking: the raw keys of the objects being read, innermost last (standard
    /// keys of the record itself are in `standard_seen` instead).
    keys: Vec<&'a [u8]>,
    /// Checking: which standard keys the record has, by index in `STANDARD_KEYS`.
    standard_seen: u32,
    /// Checking and validating: whether a string held a non-ASCII byte.
    non_ascii: bool,
}

impl<'a, const M: u8> Parser<'a, M> {
    /// Whether values are built.
    const B: bool = M == BUILD;
    /// Whether `canonical` is kept up to date.
    const C: bool = M == CHECK;

    /// A parser at the first non-blank byte of `input`, which must be UTF-8 (but
    /// checking and validating, that is found out later).
    fn new(input: &'a [u8], limits: &'a Limits) -> Result<Parser<'a, M>, DecodeError> {
        let text = if Self::B { utf8(input)? } else { "" };
        let mut p = Parser {
            s: input,
            text,
            pos: 0,
            depth: 0,
            values_left: limits.max_values,
            limits,
            canonical: true,
            keys: Vec::new(),
            standard_seen: 0,
            non_ascii: false,
        };
        p.ws(0);
        Ok(p)
    }

    /// The end of a top-level value: only blanks may follow.
    fn finish(&mut self) -> Result<(), DecodeError> {
        self.ws(0);
        if self.pos != self.s.len() {
            return Err(self.err(ErrorKind::TrailingData));
        }
        Ok(())
    }

    fn err(&self, kind: ErrorKind) -> DecodeError {
        DecodeError::new(Encoding::Json, self.pos, kind)
    }

    fn unexpected(&self, expected: &'static str) -> DecodeError {
        // Checking and validating, the input may not be UTF-8, but then this error is
        // replaced (see `after_utf8`).
        let next = self.s.get(self.pos..).unwrap_or_default();
        let next = next[..next.len().min(4)].utf8_chunks().next();
        match next.and_then(|chunk| chunk.valid().chars().next()) {
            None => self.err(ErrorKind::Eof),
            Some(c) => self.err(ErrorKind::Unexpected {
                found: format!("{c:?}"),
                expected,
            }),
        }
    }

    /// Skips blanks. `json.dumps` writes `spaces` single spaces at this place: one
    /// after `,` and `:`, none elsewhere.
    #[inline(always)]
    fn ws(&mut self, spaces: usize) {
        debug_assert!(spaces <= 1);
        // Nearly always just those spaces are there, which a load or two tells.
        let at = self.pos + spaces;
        if (spaces == 0 || self.s.get(self.pos) == Some(&b' '))
            && !matches!(self.s.get(at), Some(b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos = at;
            return;
        }
        self.more_ws(spaces);
    }

    /// [`Self::ws`] when there are other blanks: rare, so kept out of line.
    #[inline(never)]
    fn more_ws(&mut self, spaces: usize) {
        let start = self.pos;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
        if Self::C
            && (self.pos - start != spaces || self.s[start..self.pos].iter().any(|&b| b != b' '))
        {
            self.canonical = false;
        }
    }

    /// Its length known, the comparison is a load or two, not a call to `memcmp`.
    #[inline(always)]
    fn eat_literal<const N: usize>(
        &mut self,
        lit: &[u8; N],
        v: Value,
    ) -> Result<Value, DecodeError> {
        if self.s.get(self.pos..self.pos + N) == Some(lit) {
            self.pos += N;
            Ok(v)
        } else {
            Err(self.unexpected("a JSON value"))
        }
    }

    /// Counts one more value or key. Without a bound, `[0,0,...]` holds a 32-byte
    /// value per two input bytes: 1 GiB for a 64 MiB body.
    fn count(&mut self) -> Result<(), DecodeError> {
        let Some(left) = self.values_left.checked_sub(1) else {
            return Err(self.err(ErrorKind::TooManyValues(self.limits.max_values)));
        };
        self.values_left = left;
        Ok(())
    }

    fn value(&mut self) -> Result<Value, DecodeError> {
        self.value_here()
    }

    /// [`Self::value`], inlined into [`Self::skip`] so that checking builds no
    /// placeholder.
    #[inline(always)]
    fn value_here(&mut self) -> Result<Value, DecodeError> {
        self.count()?;
        match self.s.get(self.pos) {
            None => Err(self.err(ErrorKind::Eof)),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => {
                let s = self.string()?;
                Ok(if Self::B { Value::Str(s) } else { Value::None })
            }
            Some(b't') => self.eat_literal(b"true", Value::Bool(true)),
            Some(b'f') => self.eat_literal(b"false", Value::Bool(false)),
            Some(b'n') => self.eat_literal(b"null", Value::None),
            Some(b'N') => self.eat_literal(b"NaN", Value::Float(f64::NAN)),
            Some(b'I') => self.eat_literal(b"Infinity", Value::Float(f64::INFINITY)),
            Some(b'-') if self.s[self.pos..].starts_with(b"-Infinity") => {
                self.pos += 9;
                Ok(Value::Float(f64::NEG_INFINITY))
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.unexpected("a JSON value")),
        }
    }

    fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.err(ErrorKind::TooDeep(self.limits.max_depth)));
        }
        Ok(())
    }

    fn array(&mut self) -> Result<Value, DecodeError> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.ws(0);
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(if Self::B {
                Value::List(items)
            } else {
                Value::None
            });
        }
        loop {
            if Self::B {
                items.push(self.value()?);
            } else {
                self.skip()?;
            }
            self.ws(0);
            match self.s.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.ws(1);
                }
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(if Self::B {
                        Value::List(items)
                    } else {
                        Value::None
                    });
                }
                _ => return Err(self.unexpected("',' or ']'")),
            }
        }
    }

    /// The top-level object of a record, its keys matched to the standard ones.
    fn record(&mut self) -> Result<Vec<(Key, Value)>, DecodeError> {
        if self.s.get(self.pos) != Some(&b'{') {
            // Not an object: decode it anyway, so the error says what is wrong with it.
            let v = self.value()?;
            self.finish()?;
            return Err(DecodeError::new(
                Encoding::Json,
                0,
                ErrorKind::NotADict(super::type_name(&v)),
            ));
        }
        self.count()?;
        let mut fields = Vec::with_capacity(if Self::B { 32 } else { 0 });
        let mut hint = 0;
        self.members(|p| {
            if !Self::B {
                if !p.check_key(&mut hint)? {
                    p.colon()?;
                }
                return p.skip();
            }
            let key = p.key(&mut hint)?;
            p.colon()?;
            let v = p.value()?;
            fields.push((key, v));
            Ok(())
        })?;
        self.finish()?;
        Ok(fields)
    }

    fn object(&mut self) -> Result<Value, DecodeError> {
        let mut items: Vec<(Value, Value)> = Vec::new();
        self.members(|p| {
            let key = p.key_string()?;
            p.colon()?;
            if Self::B {
                items.push((Value::Str(key), p.value()?));
                Ok(())
            } else {
                p.skip()
            }
        })?;
        Ok(if Self::B {
            Value::Dict(dedup_keys(items))
        } else {
            Value::None
        })
    }

    /// Reads `{"key": value, ...}`, calling `member` at each key; it reads the key,
    /// the colon and the value.
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        self.enter()?;
        self.pos += 1;
        let first_key = self.keys.len();
        self.ws(0);
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        if self.s.get(self.pos) != Some(&b'"') {
            return Err(self.unexpected("a string key"));
        }
        loop {
            self.count()?;
            member(self)?;
            // Nearly always the encoder's separator and the next key: nothing to judge.
            if self.s.get(self.pos..self.pos + 3) == Some(b", \"") {
                self.pos += 2;
                continue;
            }
            self.ws(0);
            match self.s.get(self.pos) {
                Some(b',') => {
                    self.pos += 1;
                    self.ws(1);
                }
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected("',' or '}'")),
            }
            if self.s.get(self.pos) != Some(&b'"') {
                return Err(self.unexpected("a string key"));
            }
        }
        self.depth -= 1;
        if Self::C {
            // A repeated key is merged on decoding, so the copy would differ.
            if !all_distinct(&self.keys[first_key..]) {
                self.canonical = false;
            }
            self.keys.truncate(first_key);
        }
        Ok(())
    }

    /// The `: ` between a key and its value.
    #[inline(always)]
    fn colon(&mut self) -> Result<(), DecodeError> {
        self.ws(0);
        if self.s.get(self.pos) != Some(&b':') {
            return Err(self.unexpected("':'"));
        }
        self.pos += 1;
        self.ws(1);
        Ok(())
    }

    /// Checking: reads a value, keeping nothing.
    #[inline(always)]
    fn skip(&mut self) -> Result<(), DecodeError> {
        let v = self.value_here()?;
        // Checking, values are placeholders that own nothing: no need to run the
        // (not inlined, and per value) drop.
        debug_assert!(matches!(
            v,
            Value::None | Value::Bool(_) | Value::Float(_) | Value::Int(_)
        ));
        std::mem::forget(v);
        Ok(())
    }

    /// A key of a nested object; when checking, its raw text is kept to find repeats.
    fn key_string(&mut self) -> Result<String, DecodeError> {
        let start = self.pos + 1;
        let key = self.string()?;
        if Self::C {
            self.keys.push(&self.s[start..self.pos - 1]);
        }
        Ok(key)
    }

    fn hex4(&mut self) -> Result<u16, DecodeError> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.err(ErrorKind::Eof))?;
        let text = std::str::from_utf8(digits).unwrap_or("");
        let v = u16::from_str_radix(text, 16)
            .ok()
            .filter(|_| digits.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| {
                self.err(ErrorKind::BadEscape(format!(
                    "\\u{}",
                    String::from_utf8_lossy(digits)
                )))
            })?;
        if Self::C && digits.iter().any(u8::is_ascii_uppercase) {
            self.canonical = false;
        }
        self.pos += 4;
        Ok(v)
    }

    /// Checking: a record key. The standard keys come in Python's order, so the
    /// next one is tried first, whole with its colon as the encoder writes it
    /// (`"name": `): true when that matched and the value comes next.
    fn check_key(&mut self, hint: &mut usize) -> Result<bool, DecodeError> {
        if let Some(encoded) = ENCODED_KEYS.get(*hint) {
            if encoded.starts(&self.s[self.pos..]) {
                self.pos += encoded.len;
                // More blanks may follow the one space (valid, but not canonical).
                self.ws(0);
                self.see_standard(*hint);
                *hint += 1;
                return Ok(true);
            }
        }
        let start = self.pos + 1;
        self.string()?;
        if !Self::C {
            return Ok(false);
        }
        let raw = &self.s[start..self.pos - 1];
        match standard_index_of(raw) {
            Some(i) => {
                self.see_standard(i);
                *hint = i + 1;
            }
            None => self.keys.push(raw),
        }
        Ok(false)
    }

    /// Checking: a standard key of the record; a second one would be merged.
    fn see_standard(&mut self, i: usize) {
        const _: () = assert!(STANDARD_KEYS.len() <= 32, "standard_seen is a u32");
        if !Self::C {
            return;
        }
        let bit = 1u32 << i;
        if self.standard_seen & bit != 0 {
            self.canonical = false;
        }
        self.standard_seen |= bit;
    }

    /// A record key: borrowed as a static standard key when it is one (they come in
    /// Python's order, so `hint` tries the one after the last match first).
    fn key(&mut self, hint: &mut usize) -> Result<Key, DecodeError> {
        let start = self.pos + 1;
        let end = scan(self.s, start, ends_plain_run);
        if self.s.get(end) != Some(&b'"') {
            return self.string().map(Key::Owned);
        }
        let text = &self.text[start..end];
        self.pos = end + 1;
        let found = Some(*hint)
            .filter(|&i| STANDARD_KEYS.get(i) == Some(&text))
            .or_else(|| standard_index_of(text.as_bytes()));
        Ok(match found {
            Some(i) => {
                *hint = i + 1;
                Key::Borrowed(STANDARD_KEYS[i])
            }
            None => Key::Owned(text.to_string()),
        })
    }

    #[inline(always)]
    fn string(&mut self) -> Result<String, DecodeError> {
        // Most strings are exactly as the encoder writes them: plain ASCII up to the
        // closing quote. One scan finds it (checking, the first byte that needs an
        // escape being that quote also says the string is canonical; validating, it
        // also stops at non-ASCII bytes, so that they are noticed) and building
        // copies the text once, at its exact size.
        self.pos += 1;
        let stops: fn(u64) -> u64 = match M {
            CHECK => needs_escape,
            VALIDATE => ends_ascii_run,
            _ => ends_plain_run,
        };
        let end = scan(self.s, self.pos, stops);
        if self.s.get(end) == Some(&b'"') {
            let start = self.pos;
            self.pos = end + 1;
            return Ok(if Self::B {
                self.text[start..end].to_string()
            } else {
                String::new()
            });
        }
        self.escaped_string(end)
    }

    /// The rest of a string that is not one plain run: the bytes from `self.pos` to
    /// `plain_to` end no run (the first scan stopped there, at the latest).
    #[inline(never)]
    fn escaped_string(&mut self, plain_to: usize) -> Result<String, DecodeError> {
        let mut out = String::new();
        let mut start = self.pos;
        let mut from = plain_to;
        loop {
            let stops = if !Self::B && !self.non_ascii {
                ends_ascii_run
            } else {
                ends_plain_run
            };
            let end = scan(self.s, from, stops);
            // The encoder escapes DEL and every non-ASCII character.
            if Self::C && !is_plain(&self.s[from..end]) {
                self.canonical = false;
            }
            self.pos = end;
            match self.s.get(end) {
                None => return Err(self.err(ErrorKind::Eof)),
                Some(b'"') => {
                    if Self::B {
                        out.push_str(&self.text[start..end]);
                    }
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    if Self::B {
                        out.push_str(&self.text[start..end]);
                    }
                    self.pos += 1;
                    let c = self.escape()?;
                    if Self::B {
                        out.push(c);
                    }
                    start = self.pos;
                    from = self.pos;
                }
                Some(0x80..) if !Self::B => {
                    // The encoder escapes every non-ASCII character.
                    self.canonical = false;
                    self.non_ascii = true;
                    from = end + 1;
                }
                Some(_) => {
                    return Err(
                        self.unexpected("a string character (control characters must be escaped)")
                    );
                }
            }
        }
    }

    /// The character of an escape, read after its backslash.
    fn escape(&mut self) -> Result<char, DecodeError> {
        let Some(&e) = self.s.get(self.pos) else {
            return Err(self.err(ErrorKind::Eof));
        };
        self.pos += 1;
        let c = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let c = if (0xD800..0xDC00).contains(&hi) && self.s[self.pos..].starts_with(b"\\u")
                {
                    let save = self.pos;
                    self.pos += 2;
                    let lo = self.hex4()?;
                    if (0xDC00..0xE000).contains(&lo) {
                        let cp = 0x10000 + (((hi as u32) - 0xD800) << 10) + ((lo as u32) - 0xDC00);
                        char::from_u32(cp)
                    } else {
                        self.pos = save;
                        None
                    }
                } else {
                    char::from_u32(hi as u32)
                };
                // The encoder writes `\u` only for characters it cannot write plain or
                // with a short escape.
                if Self::C && c.is_none_or(|c| c.is_ascii() && ESCAPE[c as usize] != b'u') {
                    self.canonical = false;
                }
                // Python keeps a lone surrogate in its str; Rust strings cannot hold
                // one, so it becomes U+FFFD.
                return Ok(c.unwrap_or('\u{fffd}'));
            }
            other => {
                self.pos -= 1;
                return Err(self.err(ErrorKind::BadEscape(format!("\\{}", other as char))));
            }
        };
        if Self::C && ESCAPE[c as usize] != e {
            self.canonical = false;
        }
        Ok(c)
    }

    #[inline(always)]
    fn number(&mut self) -> Result<Value, DecodeError> {
        let start = self.pos;
        let s = self.s;
        let mut i = self.pos;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        match s.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = scan(self.s, i + 1, non_digits),
            _ => {
                self.pos = i;
                return Err(self.unexpected("a digit"));
            }
        }
        let int_digits = i - int_start;
        let mut is_float = false;
        if s.get(i) == Some(&b'.') && matches!(s.get(i + 1), Some(b'0'..=b'9')) {
            is_float = true;
            i = scan(self.s, i + 2, non_digits);
        }
        if let Some(b'e' | b'E') = s.get(i) {
            let mut j = i + 1;
            if let Some(b'+' | b'-') = s.get(j) {
                j += 1;
            }
            if matches!(s.get(j), Some(b'0'..=b'9')) {
                is_float = true;
                i = scan(self.s, j + 1, non_digits);
            }
        }
        self.pos = i;
        if is_float {
            if M == VALIDATE {
                // Any text of this grammar reads as a float (at worst as inf or 0.0).
                return Ok(Value::None);
            }
            let text = if Self::B {
                &self.text[start..i]
            } else {
                // Only ASCII digits, signs, points and exponents came this far.
                std::str::from_utf8(&s[start..i]).unwrap_or_default()
            };
            let f = text.parse::<f64>().map_err(|_| {
                DecodeError::new(
                    Encoding::Json,
                    start,
                    ErrorKind::BadNumber(text.to_string()),
                )
            })?;
            if Self::C {
                // The encoder writes `repr(float)`: `1e5` and `1.50` come back otherwise.
                self.canonical &= PyFloat::new(f, "NaN", "Infinity").as_bytes() == text.as_bytes();
                return Ok(Value::None);
            }
            return Ok(Value::Float(f));
        }
        if int_digits > self.limits.max_int_digits {
            return Err(DecodeError::new(
                Encoding::Json,
                start,
                ErrorKind::IntTooLong(int_digits),
            ));
        }
        if !Self::B {
            // `-0` is the one integer the encoder writes otherwise.
            self.canonical &= !Self::C || &s[start..i] != b"-0";
            return Ok(Value::None);
        }
        let text = &self.text[start..i];
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Value::Int(i));
        }
        text.parse::<BigInt>().map(Value::BigInt).map_err(|_| {
            DecodeError::new(
                Encoding::Json,
                start,
                ErrorKind::BadNumber(text.to_string()),
            )
        })
    }
}

/// The first byte from `from` on that `stops` flags, or the end of the input,
/// found eight bytes at a time, for the parser and the encoder alike. `stops` flags a zero byte, which lets the last
/// word be read padded with zeros.
#[inline(always)]
fn scan(s: &[u8], from: usize, stops: impl Fn(u64) -> u64) -> usize {
    let Some(tail) = s.get(from..) else {
        return s.len();
    };
    let mut at = from;
    let mut words = tail.chunks_exact(8);
    for chunk in words.by_ref() {
        let lanes = stops(word(chunk));
        if lanes != 0 {
            return at + (lanes.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let rest = words.remainder();
    if rest.is_empty() {
        return s.len();
    }
    // Fewer than eight bytes left: the input's last word shifted down to them (the
    // bytes before them might flag the lanes above with a borrow), or for a
    // shorter input a copy.
    let last = match s.len().checked_sub(8) {
        Some(start) => word(&s[start..]) >> (8 * (at - start)),
        None => {
            let mut padded = [0u8; 8];
            padded[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(padded)
        }
    };
    (at + (stops(last).trailing_zeros() / 8) as usize).min(s.len())
}

/// Which of eight bytes end a plain run inside a JSON string: a quote, a backslash,
/// or a control character (which is an error there). Lanes as [`needs_escape`]'s.
fn ends_plain_run(x: u64) -> u64 {
    ascii_stops(x) & !x & HIGH
}

/// Which of eight bytes are not ASCII digits, as lanes like [`needs_escape`]'s: a
/// lane below `0` borrows, and one above `9` gets its high bit from adding 0x46
/// (carrying out only from 0xba up), so again only lanes above a flagged one can be
/// wrong.
fn non_digits(x: u64) -> u64 {
    (x.wrapping_sub(ONES * b'0' as u64) | x.wrapping_add(ONES * 0x46)) & HIGH
}

/// [`ends_plain_run`], flagging non-ASCII bytes too.
fn ends_ascii_run(x: u64) -> u64 {
    (ascii_stops(x) | x) & HIGH
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The borrows of "has a byte below 0x20", "has a zero byte" after xor with `"` and
/// with `\\`, in one: those tricks each mask with `!v & HIGH`, where `v` is `x` or
/// `x` xor an ASCII byte, all of which have the high bits of `x`.
fn ascii_stops(x: u64) -> u64 {
    x.wrapping_sub(ONES * 0x20)
        | (x ^ (ONES * b'"' as u64)).wrapping_sub(ONES)
        | (x ^ (ONES * b'\\' as u64)).wrapping_sub(ONES)
}

/// Eight bytes as a little-endian word: the first byte is the lowest lane.
fn word(eight: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&eight[..8]);
    u64::from_le_bytes(w)
}

/// Whether the keys are certainly distinct, judged by a cheap signature (length and
/// three bytes) of each string key: records almost never repeat a key, so this saves
/// the pairwise comparison. False means "maybe": the exact check follows.
fn certainly_distinct<'k>(keys: impl ExactSizeIterator<Item = Option<&'k [u8]>>) -> bool {
    if keys.len() > 32 {
        return false;
    }
    let mut sigs = [0u64; 32];
    let n = keys.len();
    for (slot, k) in sigs.iter_mut().zip(keys) {
        let Some(b) = k else { return false };
        let at = |i: usize| b.get(i).copied().unwrap_or(0) as u64;
        *slot = (b.len() as u64) << 24
            | at(0) << 16
            | at(b.len() / 2) << 8
            | at(b.len().saturating_sub(1));
    }
    let sigs = &mut sigs[..n];
    sigs.sort_unstable();
    sigs.windows(2).all(|w| w[0] != w[1])
}

/// Whether no key repeats, exactly.
fn all_distinct(keys: &[&[u8]]) -> bool {
    if keys.len() <= 8 {
        return keys
            .iter()
            .enumerate()
            .all(|(i, k)| !keys[i + 1..].contains(k));
    }
    if certainly_distinct(keys.iter().map(|k| Some(*k))) {
        return true;
    }
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[0] != w[1])
}

/// Record fields with a repeated key merged: first position, last value, as
/// `json.loads` keeps them.
fn dedup_fields(fields: Vec<(Key, Value)>) -> Vec<(Key, Value)> {
    if certainly_distinct(fields.iter().map(|(k, _)| Some(k.as_bytes()))) {
        return fields;
    }
    let mut out: Vec<(Key, Value)> = Vec::with_capacity(fields.len());
    let mut index: std::collections::HashMap<Key, usize> =
        std::collections::HashMap::with_capacity(fields.len());
    for (k, v) in fields {
        match index.get(&k) {
            Some(&i) => out[i].1 = v,
            None => {
                index.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// A repeated key keeps its first position and its last value, as `json.loads` does.
/// Records have a couple of dozen keys, so the quadratic check is cheap there; large
/// objects go through a hash map so hostile input cannot make it quadratic. Both ways
/// compare keys by `==`, so a dict means the same whatever its size.
pub(crate) fn dedup_keys(items: Vec<(Value, Value)>) -> Vec<(Value, Value)> {
    use std::collections::hash_map::{HashMap, RandomState};
    use std::hash::{BuildHasher, Hasher};
    if items.len() <= 32 {
        if certainly_distinct(items.iter().map(|(k, _)| k.as_str().map(str::as_bytes))) {
            return items;
        }
        let mut out: Vec<(Value, Value)> = Vec::with_capacity(items.len());
        for (k, v) in items {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        return out;
    }
    let state = RandomState::new();
    let mut index: HashMap<u64, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<(Value, Value)> = Vec::with_capacity(items.len());
    for (k, v) in items {
        let mut h = state.build_hasher();
        if !hash_key(&k, &mut h) {
            out.push((k, v)); // holds a NaN, so equal to no other key
            continue;
        }
        let hash = h.finish();
        match index.get(&hash) {
            Some(&i) if out[i].0 == k => out[i].1 = v,
            // Two different keys with one 64-bit keyed hash: too rare to optimise.
            Some(_) => match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            },
            None => {
                index.insert(hash, out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// Hashes a dict key consistently with `==` (`-0.0` as `0.0`). False when the key holds
/// a NaN: such a key equals nothing, itself included, so it needs no lookup.
fn hash_key(v: &Value, h: &mut impl std::hash::Hasher) -> bool {
    use std::hash::Hash;
    std::mem::discriminant(v).hash(h);
    match v {
        Value::None => {}
        Value::Bool(b) => b.hash(h),
        Value::Int(i) => i.hash(h),
        Value::BigInt(i) => i.hash(h),
        Value::Float(f) if f.is_nan() => return false,
        Value::Float(f) => (if *f == 0.0 { 0.0f64 } else { *f }).to_bits().hash(h),
        Value::Str(s) => s.hash(h),
        Value::Bytes(b) => b.hash(h),
        Value::List(items) | Value::Tuple(items) | Value::Set(items) => {
            items.len().hash(h);
            return items.iter().all(|item| hash_key(item, h));
        }
        Value::Dict(pairs) => {
            pairs.len().hash(h);
            return pairs.iter().all(|(k, v)| hash_key(k, h) && hash_key(v, h));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &Value) -> String {
        let mut out = Vec::new();
        encode_value(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn dec(s: &str) -> Result<Value, DecodeError> {
        decode_value(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn ascii_escapes_like_python() {
        assert_eq!(
            enc(&"ünï ✓ 😀 \u{7f}\"\\\n\t\u{1}".into()),
            r#""\u00fcn\u00ef \u2713 \ud83d\ude00 \u007f\"\\\n\t\u0001""#
        );
    }

    #[test]
    fn record_keys_repeat_like_a_python_dict() {
        let r = decode_record(
            br#"{"a": 1, "name": "x", "a": 2, "n\u0061me": "y"}"#,
            &Limits::default(),
        )
        .unwrap();
        let keys: Vec<String> = r.fields().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(keys, ["a=2", "name='y'"]);
        let many: Vec<String> = (0..100).map(|i| format!("\"k{}\": {i}", i % 50)).collect();
        let r = decode_record(
            format!("{{{}}}", many.join(", ")).as_bytes(),
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(r.len(), 50);
        assert_eq!(r.get("k0"), Some(&Value::Int(50)));
    }

    /// Re-encoding the decoded record, to compare with what the checker says.
    fn reencoded(body: &[u8]) -> Option<Vec<u8>> {
        let r = decode_record(body, &Limits::default()).ok()?;
        let mut out = Vec::new();
        encode_record(&r, &mut out);
        Some(out)
    }

    #[test]
    fn check_says_canonical_exactly_when_the_copy_equals_the_reencoding() {
        let cases: &[(&str, bool)] = &[
            (r#"{}"#, true),
            (
                r#"{"a": 1, "b": [1, 2.5, -3, "x"], "c": {"d": null, "e": true}}"#,
                true,
            ),
            (
                r#"{"f": NaN, "g": -Infinity, "h": Infinity, "i": -0.0, "j": 1e+16}"#,
                true,
            ),
            (
                r#"{"big": 123456789012345678901234567890, "neg": -9223372036854775808}"#,
                true,
            ),
            (
                r#"{"s": "\u00fcn \ud83d\ude00 \u007f\"\\\n\r\t\b\f\u0001 \ufffd"}"#,
                true,
            ),
            (r#"{"e": [], "o": {}, "n": [[{}]]}"#, true),
            (r#"{"name": 1, "msg": 2, "zzz": 3, "args": 4}"#, true),
            (r#"{"levelno": 1, "name": 2, "x": {"name": 3}}"#, true),
            (r#"{"name": "a", "name": "b"}"#, false),
            (r#"{"msg": 1, "name": 2, "msg": 3}"#, false),
            (r#"{"name":1, "name": 2}"#, false),
            (r#"{"extra": 1, "name": 2, "extra": 3}"#, false),
            (r#"{"n\u0061me": 1, "name": 2}"#, false),
            (r#" {"a": 1}"#, false),
            (r#"{"a": 1} "#, false),
            (r#"{"a":1}"#, false),
            (r#"{"a" : 1}"#, false),
            (r#"{"a": 1,"b": 2}"#, false),
            (r#"{"a":  1}"#, false),
            (r#"{"a":	1}"#, false),
            (r#"{ "a": 1}"#, false),
            (r#"{"a": [1,2]}"#, false),
            (r#"{"a": [ 1]}"#, false),
            (r#"{"a": 1, "a": 2}"#, false),
            (r#"{"o": {"k": 1, "k": 1}}"#, false),
            (r#"{"a": -0}"#, false),
            (r#"{"a": 1E5}"#, false),
            (r#"{"a": 1.50}"#, false),
            (r#"{"a": 1e999}"#, false),
            (r#"{"a": 0.1e1}"#, false),
            (r#"{"s": "\/"}"#, false),
            (r#"{"s": "\u0041"}"#, false),
            (r#"{"s": "\u000a"}"#, false),
            (r#"{"s": "\u00FC"}"#, false),
            (r#"{"s": "\ud800"}"#, false),
            (r#"{"s": "\ud800\u0041"}"#, false),
            (r#"{"s": "\udc00"}"#, false),
            (r#"{"s": "\u0022"}"#, false),
            ("{\"s\": \"\u{fc}\"}", false),
            ("{\"s\": \"\u{7f}\"}", false),
            ("{\"s\": \"a\\n\u{e9}\"}", false),
        ];
        for (body, canonical) in cases {
            let checked = check_record(body.as_bytes(), &Limits::default())
                .unwrap_or_else(|e| panic!("{body}: {e}"));
            assert_eq!(checked.canonical, *canonical, "{body}");
            let again = reencoded(body.as_bytes()).unwrap();
            assert_eq!(again == body.as_bytes(), *canonical, "{body}");
        }
    }

    #[test]
    fn encoded_keys_are_what_the_encoder_writes_and_match_like_starts_with() {
        let text =
            b"\"relativeCreated\": 1.5, \"name\": \"x\", \"msgs\": 1, \"msg\":1, \"msg\": 1, \
            \"process\": \"processName\": 2, \"taskName\": 1";
        for (key, encoded) in STANDARD_KEYS.iter().zip(&ENCODED_KEYS) {
            let mut want = Vec::new();
            write_str(key, &mut want);
            want.extend_from_slice(b": ");
            assert_eq!(encoded.as_bytes(), want);
            for at in 0..=text.len() {
                assert_eq!(
                    encoded.starts(&text[at..]),
                    text[at..].starts_with(&want),
                    "{key} at {at}"
                );
            }
        }
        let i = STANDARD_KEYS.iter().position(|k| *k == "relativeCreated");
        assert!(ENCODED_KEYS[i.unwrap()].starts(text));
    }

    #[test]
    fn check_and_validate_reject_what_decode_rejects_with_the_same_error() {
        let limits = Limits {
            max_depth: 3,
            max_values: 12,
            max_int_digits: 5,
        };
        let cases = [
            "",
            "[1]",
            "\"x\"",
            "{",
            "{\"a\"",
            "{\"a\": }",
            "{\"a\": 1,}",
            "{1: 2}",
            "{\"a\": [1, 2,]}",
            "{\"a\": 123456}",
            "{\"a\": [[[1]]]}",
            "{\"a\": \"\\x\"}",
            "{\"a\": \"\\u12\"}",
            "{\"a\": \"\u{1}\"}",
            "{\"a\": tru}",
            "{\"a\": 1} x",
            "{\"a\": -}",
            "{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4, \"e\": [1, 2, 3]}",
            "{\"a\": {\"b\": 1}, \"a\": 2}",
            "\u{feff}{}",
            "{\"a\": 1.}",
            "{\"name\": \n\nt",
            "{\"name\":  tru",
            "{\"msg\": ]",
        ];
        for body in cases {
            let want = decode_record(body.as_bytes(), &limits).map(|_| ());
            let got = check_record(body.as_bytes(), &limits).map(|_| ());
            assert_eq!(got, want, "{body:?}");
            assert_eq!(validate_record(body.as_bytes(), &limits), want, "{body:?}");
        }
        let bad_utf8 = b"{\"a\": \"\xff\"}";
        assert_eq!(
            check_record(bad_utf8, &limits).map(|_| ()),
            decode_record(bad_utf8, &limits).map(|_| ())
        );
    }

    /// Checking and validating look at UTF-8 only when a string holds a non-ASCII
    /// byte or the body is rejected, yet must fail exactly where and how decoding does.
    #[test]
    fn check_and_validate_check_utf8_as_decode_does() {
        let limits = Limits::default();
        let cases: &[&[u8]] = &[
            b"{\"a\": \"\xff\"}",
            b"{\"a\": \"\xc3\xa9\"}",
            b"{\"a\": \"\\n\xc3\xa9\"}",
            b"{\"a\": \"\\n\xc3\"}",
            b"{\"a\": \"\xc3\xa9\", \"b\": \"\xed\xa0\x80\"}",
            b"{\"a\": \"long enough for a word \xc3\xa9\\t then \xff and more\"}",
            b"{\"a\": \"\xc3\xa9\"} \xff",
            b"{\"\xe2\x9c\x93\": 1, \"b\": [1, \xff]}",
            b"{\"a\": 1\xff}",
            b"{\"a\": \xc3\xa9}",
            b"{\"a\": \xc3}",
            b"{\"a\": \"\xf0\x9f\x98\x80\"}",
            b"{\"a\": \"\xf0\x9f\x98\"}",
            b"\xef\xbb\xbf{}",
            b"{\"a\": \"x\\\xc3\xa9\"}",
            b"{\"a\": \"\x01\xc3\xa9\"}",
            b"{\"a\": tru\xc3\xa9}",
            b"{\"\xc3\xa9",
            b"{\"name\": \"\xc3\xa9\", \"msg\": \xe2\x9c\x93}",
        ];
        for body in cases {
            let text = String::from_utf8_lossy(body);
            let decoded = decode_record(body, &limits);
            assert_eq!(
                validate_record(body, &limits),
                decoded.as_ref().map(|_| ()).map_err(Clone::clone),
                "{text:?}"
            );
            let checked = check_record(body, &limits);
            match decoded {
                Ok(_) => assert_eq!(checked, Ok(Checked { canonical: false }), "{text:?}"),
                Err(e) => assert_eq!(checked, Err(e), "{text:?}"),
            }
        }
    }

    #[test]
    fn string_scan_stops_at_quote_backslash_and_control_in_every_lane() {
        for b in 0..=255u8 {
            for lane in 0..8 {
                let mut word = [b'a'; 8];
                word[lane] = b;
                let want = b == b'"' || b == b'\\' || b < 0x20;
                assert_eq!(
                    ends_plain_run(u64::from_le_bytes(word)) != 0,
                    want,
                    "byte {b:#x} lane {lane}"
                );
            }
        }
    }

    #[test]
    fn swar_check_agrees_with_the_table_for_every_byte_in_every_lane() {
        for b in 0..=255u8 {
            for lane in 0..8 {
                let mut word = [b'a'; 8];
                word[lane] = b;
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)) != 0,
                    ESCAPE[b as usize] != 0,
                    "byte {b:#x} lane {lane}"
                );
            }
        }
    }

    /// Scans take the lowest flagged lane as the first stop, so it must be exact
    /// whatever the lanes below and above it hold.
    #[test]
    fn swar_lowest_flagged_lane_is_the_first_stop() {
        let string_stop = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        let escaped = |b: u8| ESCAPE[b as usize] != 0;
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for (lo, hi) in [(0, 1), (2, 3), (3, 7), (6, 7)] {
                    let mut bytes = [b'a'; 8];
                    bytes[lo] = a;
                    bytes[hi] = b;
                    let x = u64::from_le_bytes(bytes);
                    let first = |stop: &dyn Fn(u8) -> bool| {
                        bytes.iter().position(|&c| stop(c)).unwrap_or(8) as u32
                    };
                    assert_eq!(ends_plain_run(x).trailing_zeros() / 8, first(&string_stop));
                    assert_eq!(
                        ends_ascii_run(x).trailing_zeros() / 8,
                        first(&|c| string_stop(c) || !c.is_ascii())
                    );
                    assert_eq!(needs_escape(x).trailing_zeros() / 8, first(&escaped));
                }
            }
        }
    }

    #[test]
    fn scans_stop_at_the_same_byte_near_the_end_of_any_input() {
        for len in 0..20 {
            for stop_at in 0..=len {
                for stop in [b'"', b'\\', 0x1f, 0x7f, 0xc3] {
                    let mut s = vec![b'x'; len];
                    if stop_at < len {
                        s[stop_at] = stop;
                    }
                    for from in 0..=len {
                        let first = |stops: &dyn Fn(u8) -> bool| {
                            (from..len).find(|&i| stops(s[i])).unwrap_or(len)
                        };
                        assert_eq!(
                            scan(&s, from, ends_plain_run),
                            first(&|b| b == b'"' || b == b'\\' || b < 0x20)
                        );
                        assert_eq!(
                            scan(&s, from, needs_escape),
                            first(&|b| ESCAPE[b as usize] != 0)
                        );
                        assert_eq!(
                            scan(&s, from, ends_ascii_run),
                            first(&|b| b == b'"' || b == b'\\' || b < 0x20 || !b.is_ascii())
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn digit_scan_lowest_flagged_lane_is_the_first_non_digit() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for (lo, hi) in [(0, 1), (2, 3), (3, 7), (6, 7)] {
                    let mut bytes = [b'5'; 8];
                    bytes[lo] = a;
                    bytes[hi] = b;
                    let first = bytes.iter().position(|c| !c.is_ascii_digit());
                    assert_eq!(
                        non_digits(u64::from_le_bytes(bytes)).trailing_zeros() / 8,
                        first.unwrap_or(8) as u32,
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn numbers_round_trip() {
        for s in [
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "1.5",
            "1e+16",
            "NaN",
            "-Infinity",
            "Infinity",
        ] {
            let v = dec(s).unwrap();
            assert_eq!(enc(&v), s, "{s}");
        }
        assert_eq!(dec("1E5").unwrap(), Value::Float(100000.0));
        assert_eq!(dec("1e999").unwrap(), Value::Float(f64::INFINITY));
    }

    #[test]
    fn strings_with_surrogates() {
        assert_eq!(dec(r#""\ud83d\ude00""#).unwrap(), Value::from("😀"));
        assert_eq!(dec(r#""\ud83d""#).unwrap(), Value::from("\u{fffd}"));
        assert_eq!(dec("\"😀\"").unwrap(), Value::from("😀"));
    }

    #[test]
    fn errors_say_where() {
        let e = dec("[1, 2").unwrap_err();
        assert_eq!((e.offset, &e.kind), (5, &ErrorKind::Eof));
        let e = dec("{\"a\" 1}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid JSON body at byte 5: found '1', expected ':'"
        );
        assert!(matches!(
            dec("\"a\u{1}\"").unwrap_err().kind,
            ErrorKind::Unexpected { .. }
        ));
        assert!(matches!(
            dec("\"\\x\"").unwrap_err().kind,
            ErrorKind::BadEscape(_)
        ));
        assert!(matches!(
            dec("1 2").unwrap_err().kind,
            ErrorKind::TrailingData
        ));
        assert!(matches!(dec("-").unwrap_err().kind, ErrorKind::Eof));
        assert!(matches!(
            dec("01").unwrap_err().kind,
            ErrorKind::TrailingData
        ));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            dec(&deep).unwrap_err().kind,
            ErrorKind::TooDeep(128)
        ));
        let long = "1".repeat(5000);
        assert!(matches!(
            dec(&long).unwrap_err().kind,
            ErrorKind::IntTooLong(5000)
        ));
        let e = decode_value(b"\"\xff\"", &Limits::default()).unwrap_err();
        assert_eq!((e.offset, e.kind), (1, ErrorKind::InvalidUtf8));
    }

    #[test]
    fn duplicate_keys_keep_first_place_last_value() {
        let v = dec(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(enc(&v), r#"{"a": 3, "b": 2}"#);
        let many: Vec<String> = (0..100).map(|i| format!("\"k{}\": {i}", i % 50)).collect();
        let v = dec(&format!("{{{}}}", many.join(", "))).unwrap();
        assert!(
            matches!(&v, Value::Dict(items) if items.len() == 50 && items[0].1 == Value::Int(50))
        );
    }
}
