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
use crate::record::{Event, Fields, ProcessInfo};
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
        // Whether the string is borrowed (static) is the point, so not `&str`.
        #[allow(clippy::ptr_arg)]
        fn id(s: &Cow<'static, str>) -> Option<(usize, usize)> {
            match s {
                Cow::Borrowed(b) => Some((b.as_ptr() as usize, b.len())),
                Cow::Owned(_) => None,
            }
        }
        fn opt(s: &Option<Cow<'static, str>>) -> Option<(usize, usize)> {
            s.as_ref().map_or(Some((0, 0)), id)
        }
        Some(Site {
            strings: [
                id(&e.target)?,
                opt(&e.file)?,
                opt(&e.module_path)?,
                id(&e.thread.name)?,
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
    /// The runs' bytes, one after another.
    bytes: Vec<u8>,
    /// Where each run (the four of `RUNS`, then `hostname`) ends in `bytes`.
    ends: [usize; 5],
}

impl Entry {
    fn run(&self, r: usize) -> &[u8] {
        let start = if r == 0 { 0 } else { self.ends[r - 1] };
        &self.bytes[start..self.ends[r]]
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
        let fields = event.fields(process);
        let Some(site) = Site::of(event).filter(|_| !fields.renames()) else {
            json::encode_fields(&fields, out);
            return;
        };
        let slot = site.slot();
        match &self.slots[slot] {
            Some(entry) if entry.site == site => {
                self.hits += 1;
                let hostname = EXTRAS_AT + event.extra.len() + 2;
                let mut i = 0;
                out.push(b'{');
                fields.for_each(&mut |k, v| {
                    match RUNS.iter().position(|&(a, b)| (a..=b).contains(&i)) {
                        Some(r) if RUNS[r].0 == i => out.extend_from_slice(entry.run(r)),
                        Some(_) => {}
                        None if i == hostname => out.extend_from_slice(entry.run(4)),
                        None => json::write_member(i == 0, k, v, out),
                    }
                    i += 1;
                });
                out.push(b'}');
            }
            _ => {
                let entry = Self::learn(site, event, &fields, out);
                self.slots[slot] = Some(entry);
            }
        }
    }

    /// Encodes the event the plain way, noting where each field starts and ends.
    fn learn(
        site: Site,
        event: &Event,
        fields: &crate::record::EventFields<'_>,
        out: &mut Vec<u8>,
    ) -> Entry {
        let mut spans = Vec::with_capacity(EXTRAS_AT + event.extra.len() + 3);
        out.push(b'{');
        let mut first = true;
        fields.for_each(&mut |k, v| {
            let start = out.len();
            json::write_member(first, k, v, out);
            first = false;
            spans.push((start, out.len()));
        });
        out.push(b'}');
        let hostname = spans.len() - 1;
        let mut bytes = Vec::new();
        let mut ends = [0; 5];
        let runs = RUNS.iter().copied().chain([(hostname, hostname)]);
        for (r, (a, b)) in runs.enumerate() {
            bytes.extend_from_slice(&out[spans[a].0..spans[b].1]);
            ends[r] = bytes.len();
        }
        Entry { site, bytes, ends }
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
            let mut e = Event::new(level, target, format!("order {i}\nline two \u{e9}"));
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
            for k in 0..(i % 4) {
                e.extra
                    .push((Cow::Borrowed(["a", "b", "c"][k as usize % 3]), i.into()));
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
            let mut cached = Vec::new();
            sites.encode(e, &process, &mut cached);
            assert_eq!(
                String::from_utf8_lossy(&cached),
                String::from_utf8_lossy(&plain(e, &process))
            );
        }
        // Most of the second pass, and repeats within the first, took the cached path.
        assert!(sites.hits > 600, "{} hits", sites.hits);
    }
}
