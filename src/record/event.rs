//! [`Event`]: what a log call hands over, and the record it becomes.

use super::fields::{FieldRef, Fields, Name};
use super::log_record::{escape_newlines, Key, Record};
use super::process::{ProcessInfo, ThreadInfo};
use super::standard_keys::{standard_index, STANDARD_KEYS};
use super::time::{epoch_seconds, AscTime};
use crate::value::Value;
use std::borrow::Cow;
use std::time::SystemTime;

/// A standard key [`Name`], resolved at compile time.
macro_rules! std_name {
    ($k:literal) => {{
        const N: $crate::record::Name<'static> = $crate::record::Name::standard($k);
        N
    }};
}

/// Everything a log call hands over, captured cheaply on the caller's thread; the
/// background thread turns it into a [`Record`] with [`Event::into_record`].
///
/// ```
/// use distlog::record::{Event, ProcessInfo};
/// let event = Event::new(log::Level::Info, "shop.orders", "paid\n42".to_string());
/// let record = event.into_record(&ProcessInfo::current());
/// assert_eq!(record.message(), Some("paid\\n42"));
/// assert_eq!(record.levelname(), Some("INFO"));
/// ```
#[derive(Debug, Clone)]
pub struct Event {
    /// `levelno`.
    pub levelno: i64,
    /// `levelname`.
    pub levelname: &'static str,
    /// `name`.
    pub target: Key,
    /// The message, already formatted (Rust formats at the call site).
    pub message: String,
    /// Source file, for `pathname`, `filename` and `module`.
    pub file: Option<Key>,
    /// `lineno`.
    pub line: Option<u32>,
    /// The module path, for `funcName` (Rust has no function name at run time).
    pub module_path: Option<Key>,
    /// When the call happened.
    pub time: SystemTime,
    /// The calling thread.
    pub thread: ThreadInfo,
    /// `context`: the task context, `None` outside a task.
    pub context: Value,
    /// `exc_text`, newlines not yet escaped.
    pub exc_text: Option<String>,
    /// Extra keys, placed between `context` and `message`.
    pub extra: Vec<(Key, Value)>,
}

impl Event {
    /// An event at a `log` level, now, on this thread, with no source location.
    pub fn new(level: log::Level, target: impl Into<Key>, message: String) -> Event {
        let (levelno, levelname) = crate::level::of(level);
        Event::with_level(levelno, levelname, target, message)
    }

    /// An event at any Python level number and name.
    pub fn with_level(
        levelno: i64,
        levelname: &'static str,
        target: impl Into<Key>,
        message: String,
    ) -> Event {
        Event {
            levelno,
            levelname,
            target: target.into(),
            message,
            file: None,
            line: None,
            module_path: None,
            time: SystemTime::now(),
            thread: ThreadInfo::current(),
            context: Value::None,
            exc_text: None,
            extra: Vec::new(),
        }
    }

    /// `created`, `msecs` and `relativeCreated`, as Python's `LogRecord` computes them.
    // Called once a record by the encoder, in another module: without the hint it
    // is no longer inlined there.
    #[inline]
    pub(crate) fn times(&self, process: &ProcessInfo) -> [f64; 3] {
        let created = epoch_seconds(self.time);
        // Truncating casts instead of `fract` and `floor`, calls into libm on
        // baseline x86-64; for a negative `created` both give 0 after the `max`.
        let fraction = created - (created as i64) as f64;
        [
            created,
            (((fraction * 1000.0) as i64) as f64).max(0.0),
            (created - process.start) * 1000.0,
        ]
    }

    /// Builds the record, keys in Python's order.
    pub fn into_record(self, process: &ProcessInfo) -> Record {
        let fields = self.fields(process);
        let mut r = Record::with_capacity(fields.len());
        fields.for_each(&mut |k, v| {
            let key: Key = match k.standard_index() {
                Some(i) => Cow::Borrowed(STANDARD_KEYS[i]),
                None => Cow::Owned(k.as_str().to_string()),
            };
            r.push(key, v.to_value());
        });
        r
    }

    /// A view of the record this event becomes, for encoders to write without
    /// building it: no allocation beyond escaping a message that has newlines.
    pub(crate) fn fields<'a>(&'a self, process: &'a ProcessInfo) -> EventFields<'a> {
        let clash = self.extra.iter().enumerate().any(|(i, (k, _))| {
            standard_index(k).is_some() || self.extra[..i].iter().any(|(prev, _)| prev == k)
        });
        EventFields {
            event: self,
            process,
            needs_rename: clash,
        }
    }
}

/// The record an [`Event`] becomes, seen through [`Fields`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventFields<'a> {
    event: &'a Event,
    process: &'a ProcessInfo,
    /// An extra key repeats, or is named like a standard key: take the slow path.
    needs_rename: bool,
}

impl Fields for EventFields<'_> {
    fn len(&self) -> usize {
        if self.needs_rename {
            let mut n = 0;
            self.extras(&mut |_, _| n += 1);
            24 + n
        } else {
            24 + self.event.extra.len()
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(Name<'_>, FieldRef<'_>)) {
        let e = self.event;
        let p = self.process;
        let pathname = e.file.as_deref().unwrap_or("");
        let filename = match pathname.bytes().rposition(|b| b == b'/' || b == b'\\') {
            Some(i) => &pathname[i + 1..],
            None => pathname,
        };
        let module = match filename.bytes().rposition(|b| b == b'.') {
            Some(i) => &filename[..i],
            None => filename,
        };
        f(std_name!("name"), FieldRef::Str(&e.target));
        f(std_name!("msg"), FieldRef::Str(&e.message));
        f(std_name!("args"), FieldRef::None);
        f(std_name!("levelname"), FieldRef::Str(e.levelname));
        f(std_name!("levelno"), FieldRef::Int(e.levelno));
        f(std_name!("pathname"), FieldRef::Str(pathname));
        f(std_name!("filename"), FieldRef::Str(filename));
        f(std_name!("module"), FieldRef::Str(module));
        f(std_name!("exc_info"), FieldRef::None);
        let exc_text = e.exc_text.as_deref().map(escape_newlines);
        f(
            std_name!("exc_text"),
            exc_text.as_deref().map_or(FieldRef::None, FieldRef::Str),
        );
        f(std_name!("stack_info"), FieldRef::None);
        f(
            std_name!("lineno"),
            FieldRef::Int(e.line.map_or(0, i64::from)),
        );
        f(
            std_name!("funcName"),
            FieldRef::Str(e.module_path.as_deref().unwrap_or("")),
        );
        let [created, msecs, relative] = e.times(p);
        f(std_name!("created"), FieldRef::Float(created));
        f(std_name!("msecs"), FieldRef::Float(msecs));
        f(std_name!("relativeCreated"), FieldRef::Float(relative));
        f(std_name!("thread"), FieldRef::U64(e.thread.id));
        f(std_name!("threadName"), FieldRef::Str(&e.thread.name));
        f(std_name!("processName"), FieldRef::Str(&p.name));
        f(std_name!("process"), FieldRef::Int(i64::from(p.pid)));
        f(std_name!("context"), FieldRef::Value(&e.context));
        if self.needs_rename {
            self.extras(f);
        } else {
            for (k, v) in &e.extra {
                f(
                    Name {
                        text: k,
                        standard: None,
                    },
                    FieldRef::Value(v),
                );
            }
        }
        f(
            std_name!("message"),
            FieldRef::Str(&escape_newlines(&e.message)),
        );
        let stamp = AscTime::of(e.time);
        f(std_name!("asctime"), FieldRef::Str(stamp.as_str()));
        f(std_name!("hostname"), FieldRef::Str(&p.hostname));
    }
}

impl EventFields<'_> {
    /// Whether extra keys are renamed or merged (one repeats, or is named like a
    /// standard key): then the fields are not the usual 24 plus the extras in order.
    pub(crate) fn renames(&self) -> bool {
        self.needs_rename
    }
}

impl EventFields<'_> {
    /// Extra keys with clashes resolved: a key named like a standard key must not
    /// shadow it (Python refuses such `extra=` keys outright; the data is kept under
    /// an `extra_` prefix), and a repeated key keeps its first place and last value,
    /// as a Python dict would.
    fn extras(&self, f: &mut dyn FnMut(Name<'_>, FieldRef<'_>)) {
        let mut merged: Vec<(Cow<'_, str>, &Value)> = Vec::new();
        for (k, v) in &self.event.extra {
            let key: Cow<'_, str> = if standard_index(k).is_some() {
                Cow::Owned(format!("extra_{k}"))
            } else {
                Cow::Borrowed(k.as_ref())
            };
            match merged.iter_mut().find(|(m, _)| *m == key) {
                Some(slot) => slot.1 = v,
                None => merged.push((key, v)),
            }
        }
        for (k, v) in merged {
            f(
                Name {
                    text: &k,
                    standard: None,
                },
                FieldRef::Value(v),
            );
        }
    }
}
