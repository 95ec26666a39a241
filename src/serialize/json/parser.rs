//! The one JSON grammar, in four modes: building values, checking a body (and
//! whether it is canonical), validating it while finding its logger's name, or only
//! validating it.

use super::duplicate_keys::{all_distinct, dedup_keys};
use super::encode::ENCODED_KEYS;
use super::scan::{
    ends_ascii_run, ends_plain_run, is_plain, needs_escape, non_digits, scan, ESCAPE,
};
use crate::record::{standard_index_of, Key, STANDARD_KEYS};
use crate::serialize::error::{DecodeError, ErrorKind};
use crate::serialize::limits::Limits;
use crate::topic::Encoding;
use crate::value::{PyFloat, Value};
use num_bigint::BigInt;

/// The parser's modes: build values; check the input and whether it is canonical;
/// validate it and find the record's `name`; or only validate it. Except building,
/// every value is a placeholder `Value::None`. One grammar serves all four, so they
/// cannot disagree on what is valid.
pub(super) const BUILD: u8 = 0;

pub(super) const CHECK: u8 = 1;

pub(super) const VALIDATE: u8 = 2;

pub(super) const NAMED: u8 = 3;

pub(super) struct Parser<'a, const M: u8> {
    pub(super) s: &'a [u8],
    /// Building, `s` as text. Checking and validating, it is empty and never read:
    /// the input is checked for UTF-8 only at the end, if at all (see [`after_utf8`]).
    text: &'a str,
    pub(super) pos: usize,
    depth: usize,
    /// How many more values and keys may be read: `max_values` to start with.
    values_left: usize,
    limits: &'a Limits,
    /// Checking: whether everything so far is exactly what the encoder writes.
    pub(super) canonical: bool,
    /// Checking: the raw keys of the objects being read, innermost last (standard
    /// keys of the record itself are in `standard_seen` instead).
    keys: Vec<&'a [u8]>,
    /// Checking: which standard keys the record has, by index in `STANDARD_KEYS`.
    standard_seen: u32,
    /// Checking and validating: whether a string held a non-ASCII byte.
    pub(super) non_ascii: bool,
    /// Checking and naming: whether the record key just read is `name`.
    at_name: bool,
    /// Checking and naming: a record key had an escape, so it may have been `name`
    /// written otherwise, and the name found (if any) may not be the record's.
    pub(super) escaped_key: bool,
    /// Checking and naming: where the text of the record's `name` is, when its
    /// (last) value is a string without escapes, so a collector that routes by logger
    /// need not decode the record.
    pub(super) name: Option<(usize, usize)>,
}

impl<'a, const M: u8> Parser<'a, M> {
    /// Whether values are built.
    const B: bool = M == BUILD;
    /// Whether `canonical` is kept up to date.
    const C: bool = M == CHECK;
    /// Whether the record's `name` is looked for.
    const N: bool = M == CHECK || M == NAMED;

    /// A parser at the first non-blank byte of `input`, which must be UTF-8 (but
    /// checking and validating, that is found out later).
    pub(super) fn new(input: &'a [u8], limits: &'a Limits) -> Result<Parser<'a, M>, DecodeError> {
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
            at_name: false,
            escaped_key: false,
            name: None,
        };
        p.ws(0);
        Ok(p)
    }

    /// The end of a top-level value: only blanks may follow.
    pub(super) fn finish(&mut self) -> Result<(), DecodeError> {
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

    pub(super) fn value(&mut self) -> Result<Value, DecodeError> {
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
    pub(super) fn record(&mut self) -> Result<Vec<(Key, Value)>, DecodeError> {
        if self.s.get(self.pos) != Some(&b'{') {
            // Not an object: decode it anyway, so the error says what is wrong with it.
            let v = self.value()?;
            self.finish()?;
            return Err(DecodeError::new(
                Encoding::Json,
                0,
                ErrorKind::NotADict(crate::serialize::error::type_name(&v)),
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
                if !p.at_name {
                    return p.skip();
                }
                let start = p.pos;
                p.skip()?;
                // The last one counts: Python's json keeps the last of repeated keys.
                p.name = plain_string(p.s, start, p.pos);
                return Ok(());
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
                self.at_name = Self::N && *hint == NAME;
                *hint += 1;
                return Ok(true);
            }
        }
        let start = self.pos + 1;
        self.string()?;
        self.at_name = false;
        if !Self::N {
            return Ok(false);
        }
        let raw = &self.s[start..self.pos - 1];
        self.escaped_key |= raw.contains(&b'\\');
        if !Self::C {
            self.at_name = raw == b"name";
            return Ok(false);
        }
        match standard_index_of(raw) {
            Some(i) => {
                self.see_standard(i);
                self.at_name = i == NAME;
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
            VALIDATE | NAMED => ends_ascii_run,
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
            if M == VALIDATE || M == NAMED {
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

/// Checking and validating, the input's UTF-8 is checked last, and only `if_needed`:
/// outside strings the grammar accepts only ASCII, and a string's non-ASCII bytes
/// are noticed, so the input can only fail to be UTF-8 then or when it is rejected
/// anyway, and not being UTF-8 is the error that decoding reports first.
pub(super) fn after_utf8(input: &[u8], if_needed: bool) -> Result<(), DecodeError> {
    if if_needed {
        utf8(input)?;
    }
    Ok(())
}

pub(super) fn utf8(input: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(input)
        .map_err(|e| DecodeError::new(Encoding::Json, e.valid_up_to(), ErrorKind::InvalidUtf8))
}

/// `name`'s place in `STANDARD_KEYS`.
const NAME: usize = 0;
const _: () = assert!(matches!(STANDARD_KEYS[NAME].as_bytes(), b"name"));

/// The text between the quotes of `s[start..end]` when it is one JSON string without
/// escapes.
fn plain_string(s: &[u8], start: usize, end: usize) -> Option<(usize, usize)> {
    match s.get(start..end)? {
        [b'"', text @ .., b'"'] if !text.contains(&b'\\') => Some((start + 1, end - 1)),
        _ => None,
    }
}
