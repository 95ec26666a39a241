//! [`PackedEvent`]: a log call's message and key-values written as bytes into one
//! buffer on the caller's thread, and unpacked into an [`Event`]'s own fields on the
//! sender thread.
//!
//! Why: a caller that outruns the sender gets no spent buffers back, and then every
//! string and list of an [`Event`] is an allocation of its own (the message, the
//! key-value list and its growth, each string value): five or six calls into malloc
//! per log call, over a quarter of its cost. Packed, a log call writes one buffer that is
//! sized once, and none when the buffer comes back for reuse.

use super::event::Event;
use super::log_record::Key;
use crate::value::Value;
use std::cell::Cell;
use std::fmt;

thread_local! {
    /// How many bytes this thread's last log call packed: a fresh buffer is sized by
    /// it, so that a call site that repeats allocates once, and a queue of small
    /// records holds small buffers (a fixed size would hold the largest for all).
    static LAST_LEN: Cell<usize> = const { Cell::new(FIRST_LEN) };
}

/// A fresh buffer's size on a thread's first log call.
const FIRST_LEN: usize = 64;

/// The tags of packed values; a value's bytes follow its tag.
mod tag {
    pub(super) const NULL: u8 = 0;
    pub(super) const U64: u8 = 1;
    pub(super) const I64: u8 = 2;
    pub(super) const U128: u8 = 3;
    pub(super) const I128: u8 = 4;
    pub(super) const F64: u8 = 5;
    pub(super) const BOOL: u8 = 6;
    pub(super) const STR: u8 = 7;
}

/// An event whose message and key-values travel packed in `bytes`: a length and the
/// message's text, then for each pair a length and the key's text, a tag and the
/// value. `head` holds the rest, with an empty `message` and `extra` until
/// [`PackedEvent::unpack`] fills them.
#[derive(Debug)]
pub(crate) struct PackedEvent {
    pub(crate) head: Event,
    bytes: Vec<u8>,
}

impl PackedEvent {
    /// A packed event with `head`'s fixed fields and nothing packed yet.
    pub(crate) fn new(head: Event) -> PackedEvent {
        let len = LAST_LEN.try_with(Cell::get).unwrap_or(FIRST_LEN);
        PackedEvent {
            head,
            bytes: Vec::with_capacity(len),
        }
    }

    /// A blank packed event with room for `len` bytes, for a log call to write over.
    pub(crate) fn blank(len: usize) -> PackedEvent {
        PackedEvent {
            head: Event::new(log::Level::Info, "", String::new()),
            bytes: Vec::with_capacity(len),
        }
    }

    /// Ends the packing of an event: its size is the next fresh buffer's.
    pub(crate) fn finish(&mut self) {
        let _ = LAST_LEN.try_with(|last| last.set(self.bytes.len()));
    }

    /// Makes this a new event, keeping the buffer for its bytes: the head is the
    /// caller's to write over, field by field.
    pub(crate) fn reuse(&mut self) -> &mut Event {
        self.bytes.clear();
        &mut self.head
    }

    /// The buffer's capacity, so that a sender can let a huge one go rather than
    /// hand it back for reuse.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Packs the message: must come first, once.
    pub(crate) fn message(&mut self, args: fmt::Arguments<'_>) {
        match args.as_str() {
            Some(s) => self.text(s),
            None => self.formatted(|w| fmt::Write::write_fmt(w, args)),
        }
    }

    /// Packs a pair's key; its value must follow.
    pub(crate) fn key(&mut self, key: &str) {
        self.text(key);
    }

    /// Packs `None`.
    pub(crate) fn null(&mut self) {
        self.bytes.push(tag::NULL);
    }

    /// Packs an unsigned integer.
    pub(crate) fn u64(&mut self, v: u64) {
        self.tagged(tag::U64, &v.to_le_bytes());
    }

    /// Packs a signed integer.
    pub(crate) fn i64(&mut self, v: i64) {
        self.tagged(tag::I64, &v.to_le_bytes());
    }

    /// Packs a 128-bit unsigned integer.
    pub(crate) fn u128(&mut self, v: u128) {
        self.tagged(tag::U128, &v.to_le_bytes());
    }

    /// Packs a 128-bit signed integer.
    pub(crate) fn i128(&mut self, v: i128) {
        self.tagged(tag::I128, &v.to_le_bytes());
    }

    /// Packs a float.
    pub(crate) fn f64(&mut self, v: f64) {
        self.tagged(tag::F64, &v.to_le_bytes());
    }

    /// Packs a bool.
    pub(crate) fn bool(&mut self, v: bool) {
        self.tagged(tag::BOOL, &[u8::from(v)]);
    }

    /// Packs a value of fixed size: its tag, then its bytes.
    fn tagged(&mut self, tag: u8, bytes: &[u8]) {
        self.bytes.push(tag);
        self.bytes.extend_from_slice(bytes);
    }

    /// Packs a string.
    pub(crate) fn str(&mut self, v: &str) {
        self.bytes.push(tag::STR);
        self.text(v);
    }

    /// Packs a value's `Display` text as a string.
    pub(crate) fn display(&mut self, v: &dyn fmt::Display) {
        self.bytes.push(tag::STR);
        self.formatted(|w| fmt::Write::write_fmt(w, format_args!("{v}")));
    }

    fn text(&mut self, s: &str) {
        self.bytes.extend_from_slice(&s.len().to_le_bytes());
        self.bytes.extend_from_slice(s.as_bytes());
    }

    /// Packs what `write` writes, its length written in front once it is known.
    fn formatted(&mut self, write: impl FnOnce(&mut Bytes<'_>) -> fmt::Result) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&0usize.to_le_bytes());
        // A failing `Display` leaves what it wrote, as `to_string` would panic
        // instead; the length below covers whatever is there.
        let _ = write(&mut Bytes(&mut self.bytes));
        let len = self.bytes.len() - at - LEN;
        self.bytes[at..at + LEN].copy_from_slice(&len.to_le_bytes());
    }

    /// Writes the packed message and key-values into `head.message` and
    /// `head.extra`, over what they held (a string value reuses the buffer of the
    /// string it replaces), with the keys interned.
    pub(crate) fn unpack(&mut self) {
        unpack(&self.bytes, &mut self.head.message, &mut self.head.extra);
    }

    /// The event, unpacked into its own fields.
    pub(crate) fn into_event(mut self) -> Event {
        self.unpack();
        self.head
    }
}

/// [`PackedEvent::unpack`]: the packed `bytes` into `message` and `extra`.
fn unpack(bytes: &[u8], message: &mut String, extra: &mut Vec<(Key, Value)>) {
    let mut r = Reader { bytes, at: 0 };
    message.clear();
    if let Some(m) = r.text() {
        message.push_str(m);
    }
    let mut written = 0;
    while let Some(key) = r.raw() {
        let Some(t) = r.byte() else { break };
        if written == extra.len() {
            extra.push((Key::Borrowed(""), Value::None));
        }
        let (slot_key, slot) = &mut extra[written];
        // The same call site packs the same keys: most are the slot's already.
        if slot_key.as_bytes() != key {
            let Ok(key) = std::str::from_utf8(key) else {
                break;
            };
            *slot_key = crate::intern::intern(key);
        }
        // Written in place when the slot holds the same type, as it does for the
        // same call site: no drop of the old value, no new string.
        match t {
            tag::U64 => match r.array().map(u64::from_le_bytes) {
                Some(v) => match (slot, i64::try_from(v)) {
                    (Value::Int(old), Ok(v)) => *old = v,
                    (slot, _) => *slot = Value::from(v),
                },
                None => break,
            },
            tag::I64 => match r.array().map(i64::from_le_bytes) {
                Some(v) => match slot {
                    Value::Int(old) => *old = v,
                    slot => *slot = Value::Int(v),
                },
                None => break,
            },
            tag::F64 => match r.array().map(f64::from_le_bytes) {
                Some(v) => match slot {
                    Value::Float(old) => *old = v,
                    slot => *slot = Value::Float(v),
                },
                None => break,
            },
            tag::STR => match r.text() {
                Some(v) => set_str(slot, v),
                None => break,
            },
            tag::U128 => match r.array().map(u128::from_le_bytes) {
                Some(v) => *slot = Value::from(v),
                None => break,
            },
            tag::I128 => match r.array().map(i128::from_le_bytes) {
                Some(v) => *slot = Value::from(v),
                None => break,
            },
            tag::BOOL => match r.byte() {
                Some(b) => *slot = Value::Bool(b != 0),
                None => break,
            },
            _ => *slot = Value::None,
        }
        // Counted once whole: a pair cut short would be left out.
        written += 1;
    }
    extra.truncate(written);
}

/// The width of a packed length.
const LEN: usize = std::mem::size_of::<usize>();

/// Makes `slot` the string `s`, in the slot's old buffer if it held a string.
fn set_str(slot: &mut Value, s: &str) {
    match slot {
        Value::Str(old) => {
            old.clear();
            old.push_str(s);
        }
        _ => *slot = Value::Str(s.to_string()),
    }
}

/// `fmt::Write` into the packed bytes.
struct Bytes<'a>(&'a mut Vec<u8>);

impl fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Reads packed bytes back. Only this module writes them, always whole; a reader
/// that found them cut short would stop there rather than fail.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b = self.bytes.get(self.at..self.at + N)?;
        self.at += N;
        b.try_into().ok()
    }

    fn byte(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn raw(&mut self) -> Option<&'a [u8]> {
        let len = usize::from_le_bytes(self.array()?);
        let end = self.at.checked_add(len)?;
        let b = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(b)
    }

    fn text(&mut self) -> Option<&'a str> {
        // Written from `&str`s and `fmt`, so always UTF-8.
        std::str::from_utf8(self.raw()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(fill: impl FnOnce(&mut PackedEvent)) -> PackedEvent {
        let mut p = PackedEvent::new(Event::new(log::Level::Info, "t", String::new()));
        fill(&mut p);
        p
    }

    #[test]
    fn every_kind_of_value_comes_back() {
        let p = packed(|p| {
            p.message(format_args!("paid {}", 5));
            p.key("n");
            p.i64(-7);
            p.key("big");
            p.u64(u64::MAX);
            p.key("huge");
            p.u128(u128::MAX);
            p.key("neg");
            p.i128(i128::MIN);
            p.key("f");
            p.f64(1.5);
            p.key("ok");
            p.bool(true);
            p.key("user");
            p.str("alice");
            p.key("shown");
            p.display(&std::net::Ipv4Addr::LOCALHOST);
            p.key("none");
            p.null();
        });
        let event = p.into_event();
        assert_eq!(event.message, "paid 5");
        let got: Vec<String> = event
            .extra
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            got,
            [
                "n=-7".to_string(),
                "big=18446744073709551615".into(),
                format!("huge={}", u128::MAX),
                format!("neg={}", i128::MIN),
                "f=1.5".into(),
                "ok=True".into(),
                "user='alice'".into(),
                "shown='127.0.0.1'".into(),
                "none=None".into(),
            ]
        );
    }

    #[test]
    fn unpacking_over_old_fields_leaves_nothing_of_them() {
        let mut p = packed(|p| {
            p.message(format_args!("new"));
            p.key("b");
            p.str("x");
            p.key("a");
            p.u64(3);
        });
        p.head.message = "an old message, longer than the new".to_string();
        p.head.extra = vec![
            (Key::Borrowed("a"), Value::Str("old".into())),
            (Key::Borrowed("b"), Value::Int(1)),
            (Key::Borrowed("c"), Value::Int(2)),
        ];
        p.unpack();
        assert_eq!(p.head.message, "new");
        assert_eq!(
            p.head.extra,
            [
                (Key::Borrowed("b"), Value::Str("x".into())),
                (Key::Borrowed("a"), Value::Int(3)),
            ]
        );
    }

    #[test]
    fn a_fresh_buffer_is_sized_by_the_last_call() {
        let long = "x".repeat(1000);
        let mut p = packed(|p| p.message(format_args!("{long}")));
        p.finish();
        let next = PackedEvent::new(Event::new(log::Level::Info, "t", String::new()));
        assert!(next.capacity() >= 1000, "{}", next.capacity());
        let mut small = packed(|p| p.message(format_args!("hi")));
        small.finish();
        let next = PackedEvent::new(Event::new(log::Level::Info, "t", String::new()));
        assert!(next.capacity() < 64, "{}", next.capacity());
    }

    #[test]
    fn a_reset_starts_from_nothing() {
        let mut p = packed(|p| {
            p.message(format_args!("first"));
            p.key("k");
            p.bool(false);
        });
        *p.reuse() = Event::new(log::Level::Warn, "u", String::new());
        p.message(format_args!("second {}", 2));
        let event = p.into_event();
        assert_eq!((event.message.as_str(), event.extra.len()), ("second 2", 0));
        assert_eq!(event.levelname, "WARNING");
    }
}
