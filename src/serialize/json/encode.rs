//! Writing JSON exactly as Python's `json.dumps` does.

use super::scan::{is_plain, needs_escape, scan, word, ESCAPE};
use crate::record::{FieldRef, Fields, Name, Record, STANDARD_KEYS};
use crate::value::{PyFloat, Value};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends a record as a JSON object.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) {
    encode_fields(record, out)
}

/// Appends any [`Fields`] as a JSON object: how the handler writes an event without
/// building a record first.
pub(crate) fn encode_fields(fields: &dyn Fields, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    fields.for_each(&mut |k, v| {
        write_member(first, k, v, out);
        first = false;
    });
    out.push(b'}');
}

/// Appends one `"key": value` of an object, after `, ` unless it is the first.
fn write_member(first: bool, k: Name<'_>, v: FieldRef<'_>, out: &mut Vec<u8>) {
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
pub(super) static ENCODED_KEYS: [EncodedKey; STANDARD_KEYS.len()] = {
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
pub(super) struct EncodedKey {
    /// `"key": `, padded with zeros.
    text: [u8; 24],
    pub(super) len: usize,
    /// `text` as little-endian words.
    words: [u64; 3],
    /// The bytes of each word that are the key's.
    keep: [u64; 3],
}

impl EncodedKey {
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }

    /// Whether `s` starts with the key.
    #[inline(always)]
    pub(super) fn starts(&self, s: &[u8]) -> bool {
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
