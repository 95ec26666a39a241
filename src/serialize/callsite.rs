//! JSON for events, with each call site's constant fields encoded once.
//!
//! Sixteen of an event's fields depend only on where and on which thread it was
//! logged: `name`, `levelname`, `pathname`, `lineno`, `threadName`, `hostname` and
//! the like. The first event of a call site is encoded by [`json::encode_fields`]
//! while the byte ranges of those fields are noted; later events of the same site
//! copy these ranges and encode only the fields that change. What comes out is byte
//! for byte what `encode_fields` writes: the cached bytes were written by it.
//!
//! A call site is recognised by the identity of its static strings (the `log` crate
//! hands over `&'static str` for targets, files and module paths; distlog interns
//! thread names): an event with any owned string among them is encoded the plain way.

use super::json;
use crate::record::{escape_newlines, Event, Fields, ProcessInfo};
use std::borrow::Cow;

/// Call sites remembered at once; a new one replaces the one in its slot.
const SLOTS: usize = 256;

/// The constant runs of an event's fields, by field index: `name`; `args` to
/// `exc_info`; `stack_info` to `funcName`; `thread` to `process`. `hostname`, the last
/// field, is a run too, placed after the extras.
const RUNS: [(usize, usize); 4] = [(0, 0), (2, 8), (10, 12), (16, 19)];
/// Fields before the extras: the extras start at this index.
const EXTRAS_AT: usize = 21;

/// The identity of a call site on a thread: pointers and lengths of its static
/// strings, level, line and thread id.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Site {
    strings: [(usize, usize); 5],
    levelno: i64,
    line: Option<u32>,
    thread: u64,
}

impl Site {
    fn of(e: &Event) -> Option<Site> {
        fn opt(s: &Option<Cow<'static, str>>) -> Option<(usize, usize)> {
            s.as_ref().map_or(Some((0, 0)), static_id)
        }
        Some(Site {
            strings: [
                static_id(&e.target)?,
                opt(&e.file)?,
                opt(&e.module_path)?,
                static_id(&e.thread.name)?,
                (e.levelname.as_ptr() as usize, e.levelname.len()),
            ],
            levelno: e.levelno,
            line: e.line,
            thread: e.thread.id,
        })
    }

    fn slot(&self) -> usize {
        let mut h: u64 = 0;
        for (p, n) in self.strings {
            h = (h ^ p as u64 ^ (n as u64) << 48).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
        h ^= self.line.unwrap_or(0) as u64 ^ self.thread.rotate_left(17);
        (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize % SLOTS
    }
}

/// The encoded runs of one call site.
struct Entry {
    site: Site,
    /// The runs' bytes, one after another, then the extras' keys.
    bytes: Vec<u8>,
    /// Where each run (the four of `RUNS`, then `hostname`) ends in `bytes`.
    ends: [usize; 5],
    /// The identity of each extra key the site was learnt with, and where its
    /// `, "key": ` ends in `bytes`: a call site of the `log` macros names the same
    /// static keys every time, so that they need neither a clash check nor escaping
    /// again.
    keys: Vec<((usize, usize), usize)>,
}

impl Entry {
    fn run(&self, r: usize) -> &[u8] {
        let start = if r == 0 { 0 } else { self.ends[r - 1] };
        &self.bytes[start..self.ends[r]]
    }

    /// Whether the event's extra keys are the very strings this site was learnt with.
    fn same_keys(&self, event: &Event) -> bool {
        event.extra.len() == self.keys.len()
            && event
                .extra
                .iter()
                .zip(&self.keys)
                .all(|((k, _), (id, _))| static_id(k) == Some(*id))
    }

    /// Writes the event: the remembered runs and keys, and the fields that change.
    /// Standard keys are written as literals, as `json::write_member` writes them.
    fn write(&self, event: &Event, process: &ProcessInfo, out: &mut Vec<u8>) {
        use crate::record::{AscTime, FieldRef};
        let [created, msecs, relative] = event.times(process);
        out.push(b'{');
        out.extend_from_slice(self.run(0));
        out.extend_from_slice(b", \"msg\": ");
        let msg = out.len();
        json::write_str(&event.message, out);
        let msg = msg..out.len();
        out.extend_from_slice(self.run(1));
        out.extend_from_slice(b", \"exc_text\": ");
        match &event.exc_text {
            Some(text) => json::write_str(&escape_newlines(text), out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(self.run(2));
        out.extend_from_slice(b", \"created\": ");
        json::write_field(FieldRef::Float(created), out);
        out.extend_from_slice(b", \"msecs\": ");
        json::write_field(FieldRef::Float(msecs), out);
        out.extend_from_slice(b", \"relativeCreated\": ");
        json::write_field(FieldRef::Float(relative), out);
        out.extend_from_slice(self.run(3));
        out.extend_from_slice(b", \"context\": ");
        json::encode_value(&event.context, out);
        let mut key_start = self.ends[4];
        for ((_, v), (_, key_end)) in event.extra.iter().zip(&self.keys) {
            out.extend_from_slice(&self.bytes[key_start..*key_end]);
            json::encode_value(v, out);
            key_start = *key_end;
        }
        out.extend_from_slice(b", \"message\": ");
        if event.message.contains('\n') {
            json::write_str(&escape_newlines(&event.message), out);
        } else {
            // The same text as `msg`, so the same JSON.
            out.extend_from_within(msg);
        }
        out.extend_from_slice(b", \"asctime\": ");
        json::write_str(AscTime::of(event.time).as_str(), out);
        out.extend_from_slice(self.run(4));
        out.push(b'}');
    }
}

/// The address and length of a static string, which stand for its call site.
// Whether the string is borrowed (static) is the point, so not `&str`.
#[allow(clippy::ptr_arg)]
fn static_id(s: &Cow<'static, str>) -> Option<(usize, usize)> {
    match s {
        Cow::Borrowed(b) => Some((b.as_ptr() as usize, b.len())),
        Cow::Owned(_) => None,
    }
}

/// Encodes events as JSON, remembering the constant fields of recent call sites.
pub(crate) struct CallSites {
    slots: Vec<Option<Entry>>,
    /// Events encoded from a remembered call site.
    hits: u64,
}

impl CallSites {
    pub(crate) fn new() -> CallSites {
        CallSites {
            slots: (0..SLOTS).map(|_| None).collect(),
            hits: 0,
        }
    }

    /// Appends the event as a JSON object, exactly as [`json::encode_fields`] would.
    /// `process` must be the same for every call: its fields are remembered too.
    pub(crate) fn encode(&mut self, event: &Event, process: &ProcessInfo, out: &mut Vec<u8>) {
        let Some(site) = Site::of(event) else {
            json::encode_fields(&event.fields(process), out);
            return;
        };
        let slot = site.slot();
        if let Some(entry) = &self.slots[slot] {
            if entry.site == site && entry.same_keys(event) {
                self.hits += 1;
                entry.write(event, process, out);
                return;
            }
        }
        let fields = event.fields(process);
        match Self::learn(site, event, &fields, out) {
            Some(entry) => self.slots[slot] = Some(entry),
            None => json::encode_fields(&fields, out),
        }
    }

    /// Encodes the event the plain way, noting where each field starts and ends.
    /// `None`, having written nothing, if the event cannot be remembered: its extra
    /// keys are renamed, or one of them is not static.
    fn learn(
        site: Site,
        event: &Event,
        fields: &crate::record::EventFields<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Entry> {
        if fields.renames() {
            return None;
        }
        let ids = event
            .extra
            .iter()
            .map(|(k, _)| static_id(k))
            .collect::<Option<Vec<_>>>()?;
        // Each field's start, end of key and end.
        let mut spans = Vec::with_capacity(EXTRAS_AT + event.extra.len() + 3);
        let base = out.len();
        out.push(b'{');
        fields.for_each(&mut |k, v| {
            let start = out.len();
            json::write_name(start == base + 1, k, out);
            let key_end = out.len();
            json::write_field(v, out);
            spans.push((start, key_end, out.len()));
        });
        out.push(b'}');
        let hostname = spans.len() - 1;
        let mut bytes = Vec::new();
        let mut ends = [0; 5];
        let runs = RUNS.iter().copied().chain([(hostname, hostname)]);
        for (r, (a, b)) in runs.enumerate() {
            bytes.extend_from_slice(&out[spans[a].0..spans[b].2]);
            ends[r] = bytes.len();
        }
        let mut keys = Vec::with_capacity(ids.len());
        for (id, &(start, key_end, _)) in ids.into_iter().zip(&spans[EXTRAS_AT..]) {
            bytes.extend_from_slice(&out[start..key_end]);
            keys.push((id, bytes.len()));
        }
        Some(Entry {
            site,
            bytes,
            ends,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ThreadInfo;
    use crate::Value;

    fn plain(e: &Event, p: &ProcessInfo) -> Vec<u8> {
        let mut out = Vec::new();
        json::encode_fields(&e.fields(p), &mut out);
        out
    }

    #[test]
    fn cached_sites_encode_exactly_as_the_plain_encoder() {
        let process = ProcessInfo::current();
        let mut sites = CallSites::new();
        let other_thread = ThreadInfo {
            id: 7,
            name: Cow::Borrowed("worker-7"),
        };
        let mut events = Vec::new();
        for i in 0..600i64 {
            let level = [log::Level::Info, log::Level::Warn][(i % 2) as usize];
            let target: &'static str = ["shop", "shop.orders", "db"][(i % 3) as usize];
            let message = match i % 3 {
                0 => format!("order {i}\nline two \u{e9}"),
                1 => format!("order {i} \u{e9} \"quoted\""),
                _ => format!("order {i}"),
            };
            let mut e = Event::new(level, target, message);
            e.file = Some(Cow::Borrowed(["src/a.rs", "src/b.rs"][(i % 2) as usize]));
            e.line = Some((i % 5) as u32);
            e.module_path = (i % 4 != 0).then_some(Cow::Borrowed("shop::orders"));
            if i % 7 == 0 {
                e.thread = other_thread.clone();
            }
            if i % 11 == 0 {
                e.exc_text = Some("Traceback\n  boom".into());
            }
            if i % 13 == 0 {
                e.context = Value::Dict(vec![("key".into(), "1@t/1".into())]);
            }
            // A call site names the same keys each time, mostly.
            let keys = if i % 23 == 0 { 3 } else { i % 5 % 4 };
            for k in 0..keys {
                e.extra
                    .push((Cow::Borrowed(["a", "b", "c"][k as usize % 3]), i.into()));
            }
            if i % 29 == 0 {
                e.extra.push((Cow::Owned("owned".into()), "x".into()));
            }
            if i % 17 == 0 {
                // Renamed extras: the plain path.
                e.extra.push((Cow::Borrowed("name"), "x".into()));
            }
            if i % 19 == 0 {
                e.target = Cow::Owned(format!("owned{i}"));
            }
            events.push(e);
        }
        for e in events.iter().chain(events.iter()) {
            // Appended to what the buffer holds, whichever path is taken.
            let mut cached = b"[".to_vec();
            sites.encode(e, &process, &mut cached);
            assert_eq!(cached[0], b'[');
            assert_eq!(
                String::from_utf8_lossy(&cached[1..]),
                String::from_utf8_lossy(&plain(e, &process))
            );
        }
        // Most of the second pass took the cached path. How many exactly depends on
        // where the call sites' strings sit in memory (their addresses are the cache's
        // keys, and collide or not from one run to the next): 595 was seen in CI, so the
        // bound is "most of one pass", not a count.
        assert!(sites.hits > events.len() as u64 / 2, "{} hits", sites.hits);
    }
}
