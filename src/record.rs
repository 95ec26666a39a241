//! The log record: Python's `LogRecord.__dict__`, keys in the order Python emits them.
//!
//! A [`Record`] is an ordered list of `(key, value)` pairs rather than a struct, so that
//! a record decoded from any sender (CPython 3.12's `taskName`, user `extra=` fields,
//! a `lineno` that someone sent as a string) is kept exactly and re-encoded unchanged.
//! Typed accessors read the well-known keys.

use crate::value::Value;
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// A record key: the well-known ones are static strings, so building a record from a
/// `log` call allocates no key.
pub type Key = Cow<'static, str>;

/// The keys every Python distlog record has, in the order Python 3.11 emits them.
/// `context`, extra keys, then `message`, `asctime` and `hostname` follow `process`.
pub const STANDARD_KEYS: [&str; 25] = [
    "name",
    "msg",
    "args",
    "levelname",
    "levelno",
    "pathname",
    "filename",
    "module",
    "exc_info",
    "exc_text",
    "stack_info",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "processName",
    "process",
    "context",
    "message",
    "asctime",
    "hostname",
    "taskName",
];

/// The index of `key` in [`STANDARD_KEYS`], if it is one. Extra keys are looked up on
/// every record, so the names are told apart by length and first byte before any
/// comparison of their text.
///
/// ```
/// use distlog::record::{standard_index, STANDARD_KEYS};
/// assert_eq!(standard_index("msecs").map(|i| STANDARD_KEYS[i]), Some("msecs"));
/// assert_eq!(standard_index("order_id"), None);
/// ```
pub fn standard_index(key: &str) -> Option<usize> {
    standard_index_of(key.as_bytes())
}

/// [`standard_index`] of raw bytes, as decoders hold keys: only the standard keys of
/// the same length are compared, first byte first.
pub(crate) fn standard_index_of(raw: &[u8]) -> Option<usize> {
    /// Which standard keys (bit `i` for `STANDARD_KEYS[i]`) have each length.
    static BY_LEN: [u32; 16] = {
        let mut by_len = [0u32; 16];
        let mut i = 0;
        while i < STANDARD_KEYS.len() {
            by_len[STANDARD_KEYS[i].len()] |= 1 << i;
            i += 1;
        }
        by_len
    };
    let mut candidates = *BY_LEN.get(raw.len())?;
    while candidates != 0 {
        let i = candidates.trailing_zeros() as usize;
        let key = STANDARD_KEYS[i].as_bytes();
        if key.first() == raw.first() && key == raw {
            return Some(i);
        }
        candidates &= candidates - 1;
    }
    None
}

/// One log record.
///
/// ```
/// use distlog::{Record, Value};
/// let mut r = Record::new();
/// r.insert("name", "shop.orders");
/// r.insert("levelno", 20);
/// assert_eq!(r.name(), Some("shop.orders"));
/// assert_eq!(r.levelno(), Some(20));
/// r.insert("levelno", 30); // replaces in place, as a Python dict does
/// assert_eq!(r.len(), 2);
/// assert_eq!(r.get("levelno"), Some(&Value::Int(30)));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    fields: Vec<(Key, Value)>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Record::default()
    }

    /// An empty record with room for `n` fields.
    pub fn with_capacity(n: usize) -> Self {
        Record {
            fields: Vec::with_capacity(n),
        }
    }

    /// A record from pairs, kept in the given order. A repeated key keeps its first
    /// position and its last value, as a Python dict would.
    pub fn from_pairs<K: Into<Key>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Self {
        let mut r = Record::new();
        for (k, v) in pairs {
            r.insert(k, v);
        }
        r
    }

    /// Builds from pairs known to have no repeated key (the decoders check that).
    pub(crate) fn from_unique_pairs(fields: Vec<(Key, Value)>) -> Self {
        Record { fields }
    }

    /// Sets a key: replaces the value in place if the key is there, else appends.
    pub fn insert(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    /// Appends a key known not to be present yet; the record builder uses it.
    pub(crate) fn push(&mut self, key: impl Into<Key>, value: impl Into<Value>) {
        self.fields.push((key.into(), value.into()));
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Removes a key and returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.fields.iter().position(|(k, _)| k == key)?;
        Some(self.fields.remove(i).1)
    }

    /// The fields in order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (&str, &Value)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), v))
    }

    /// The fields, to take apart.
    pub fn into_fields(self) -> Vec<(Key, Value)> {
        self.fields
    }

    /// How many keys the record has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the record has no key.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The fields that are not among Python's standard keys: `extra=` data, `log`
    /// key-values, anything a newer Python adds.
    pub fn extras(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.fields().filter(|(k, _)| standard_index(k).is_none())
    }

    fn str_of(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// `name`: the logger name (the `log` target).
    pub fn name(&self) -> Option<&str> {
        self.str_of("name")
    }
    /// `message`: the interpolated message, newlines escaped as `\n`.
    pub fn message(&self) -> Option<&str> {
        self.str_of("message")
    }
    /// `levelname`, such as `INFO`.
    pub fn levelname(&self) -> Option<&str> {
        self.str_of("levelname")
    }
    /// `levelno`: 10 DEBUG … 50 CRITICAL, 5 TRACE.
    pub fn levelno(&self) -> Option<i64> {
        self.get("levelno").and_then(Value::as_i64)
    }
    /// `created`: seconds since the Unix epoch.
    pub fn created(&self) -> Option<f64> {
        self.get("created").and_then(Value::as_f64)
    }
    /// `hostname` of the sender.
    pub fn hostname(&self) -> Option<&str> {
        self.str_of("hostname")
    }
    /// `asctime`: local time as `YYYY-MM-DD HH:MM:SS,mmm`.
    pub fn asctime(&self) -> Option<&str> {
        self.str_of("asctime")
    }
    /// `exc_text`: the formatted error, if any.
    pub fn exc_text(&self) -> Option<&str> {
        self.str_of("exc_text")
    }
    /// `context`: the task context dict, `None` outside a task.
    pub fn context(&self) -> Option<&Value> {
        self.get("context").filter(|v| !v.is_none())
    }
    /// The task key of `context`, `<counter>@<task id>`.
    pub fn context_key(&self) -> Option<&str> {
        self.context()
            .and_then(|c| c.get("key"))
            .and_then(Value::as_str)
    }
    /// The task id: the context key without its counter.
    pub fn task_id(&self) -> Option<&str> {
        self.context_key()
            .map(|k| k.split_once('@').map_or(k, |(_, id)| id))
    }
}

impl serde::Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for (k, v) in &self.fields {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

/// Escapes newlines as Python distlog does (`\n` becomes the two characters `\` `n`);
/// borrows when there is nothing to escape.
///
/// ```
/// assert_eq!(distlog::record::escape_newlines("a\nb\tc"), "a\\nb\tc");
/// ```
pub fn escape_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\n') {
        Cow::Owned(s.replace('\n', "\\n"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Facts about the sending process that every record repeats.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// `process`: the process id.
    pub pid: u32,
    /// `processName`: the executable's file name (Python says `MainProcess`).
    pub name: String,
    /// `hostname`: the node name, as `os.uname().nodename`.
    pub hostname: String,
    /// Seconds since the epoch when distlog was installed, for `relativeCreated`.
    pub start: f64,
}

impl ProcessInfo {
    /// Reads the facts of this process now.
    ///
    /// ```
    /// let p = distlog::record::ProcessInfo::current();
    /// assert_eq!(p.pid, std::process::id());
    /// assert!(!p.hostname.is_empty());
    /// ```
    pub fn current() -> Self {
        let name = std::env::args_os()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "MainProcess".to_string());
        ProcessInfo {
            pid: std::process::id(),
            name,
            hostname: hostname(),
            start: epoch_seconds(SystemTime::now()),
        }
    }
}

/// The host's node name, as Python's `os.uname().nodename`.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Seconds since the Unix epoch as a float, Python's `time.time()`.
pub fn epoch_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The caller's thread: what `thread` and `threadName` hold.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    /// `thread`: `pthread_self()`, as Python's `threading.get_ident()`.
    pub id: u64,
    /// `threadName`: the Rust thread name; `MainThread` for `main`, as Python says.
    /// Interned, so handing it over costs no allocation and no reference count.
    pub name: Key,
}

impl ThreadInfo {
    /// The current thread, cached per thread so a log call pays no allocation for it.
    pub fn current() -> ThreadInfo {
        thread_local! {
            static CURRENT: ThreadInfo = {
                let t = std::thread::current();
                let name = match t.name() {
                    Some("main") => Cow::Borrowed("MainThread"),
                    Some(n) => crate::intern::intern(n),
                    None => Cow::Owned(format!("Thread-{:?}", t.id())),
                };
                // SAFETY: pthread_self has no preconditions.
                let id = unsafe { libc::pthread_self() } as u64;
                ThreadInfo { id, name }
            };
        }
        CURRENT.with(|t| t.clone())
    }
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
    pub fn fields<'a>(&'a self, process: &'a ProcessInfo) -> EventFields<'a> {
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

impl EventFields<'_> {
    /// Whether extra keys are renamed or merged (one repeats, or is named like a
    /// standard key): then the fields are not the usual 24 plus the extras in order.
    pub(crate) fn renames(&self) -> bool {
        self.needs_rename
    }
}

/// One field's value, borrowed: what encoders read from a [`Record`] or an [`Event`].
#[derive(Debug, Clone, Copy)]
pub enum FieldRef<'a> {
    /// `None`.
    None,
    /// A string.
    Str(&'a str),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (thread ids).
    U64(u64),
    /// A float.
    Float(f64),
    /// Any other value.
    Value(&'a Value),
}

impl FieldRef<'_> {
    /// The owned value.
    pub fn to_value(self) -> Value {
        match self {
            FieldRef::None => Value::None,
            FieldRef::Str(s) => Value::Str(s.to_string()),
            FieldRef::Int(i) => Value::Int(i),
            FieldRef::U64(u) => Value::from(u),
            FieldRef::Float(f) => Value::Float(f),
            FieldRef::Value(v) => v.clone(),
        }
    }
}

/// A field's key, and its index in [`STANDARD_KEYS`] when it is one of Python's, so
/// that encoders can write standard keys from a pre-encoded table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name<'a> {
    text: &'a str,
    standard: Option<u8>,
}

impl<'a> Name<'a> {
    /// Any key. Its standard index is looked up, so encoders still take the fast path.
    pub fn new(text: &'a str) -> Name<'a> {
        let standard = standard_index(text).map(|i| i as u8);
        Name { text, standard }
    }

    /// A standard key, resolved at compile time (see [`std_name!`](crate::std_name)).
    pub const fn standard(text: &'static str) -> Name<'static> {
        let mut i = 0;
        while i < STANDARD_KEYS.len() {
            if const_eq(STANDARD_KEYS[i], text) {
                return Name {
                    text,
                    standard: Some(i as u8),
                };
            }
            i += 1;
        }
        Name {
            text,
            standard: None,
        }
    }

    /// The key text.
    pub fn as_str(&self) -> &'a str {
        self.text
    }

    /// Its index in [`STANDARD_KEYS`], if it is one.
    pub fn standard_index(&self) -> Option<usize> {
        self.standard.map(usize::from)
    }
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A standard key [`Name`], resolved at compile time.
#[macro_export]
#[doc(hidden)]
macro_rules! std_name {
    ($k:literal) => {{
        const N: $crate::record::Name<'static> = $crate::record::Name::standard($k);
        N
    }};
}

/// The fields of a record in order, however they are held.
///
/// ```
/// use distlog::record::{Fields, Record};
/// let r = Record::from_pairs([("name", "app".into()), ("levelno", 20.into())]);
/// let mut keys = Vec::new();
/// r.for_each(&mut |k, _| keys.push(k.as_str().to_string()));
/// assert_eq!(keys, ["name", "levelno"]);
/// assert_eq!(Fields::len(&r), 2);
/// ```
pub trait Fields {
    /// How many fields `for_each` gives.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Calls `f` with each key and value, in order, each key once.
    fn for_each(&self, f: &mut dyn FnMut(Name<'_>, FieldRef<'_>));
}

impl Fields for Record {
    fn len(&self) -> usize {
        self.fields.len()
    }
    fn for_each(&self, f: &mut dyn FnMut(Name<'_>, FieldRef<'_>)) {
        for (k, v) in &self.fields {
            f(Name::new(k), FieldRef::Value(v));
        }
    }
}

/// The record an [`Event`] becomes, seen through [`Fields`].
#[derive(Debug, Clone, Copy)]
pub struct EventFields<'a> {
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
        f(crate::std_name!("name"), FieldRef::Str(&e.target));
        f(crate::std_name!("msg"), FieldRef::Str(&e.message));
        f(crate::std_name!("args"), FieldRef::None);
        f(crate::std_name!("levelname"), FieldRef::Str(e.levelname));
        f(crate::std_name!("levelno"), FieldRef::Int(e.levelno));
        f(crate::std_name!("pathname"), FieldRef::Str(pathname));
        f(crate::std_name!("filename"), FieldRef::Str(filename));
        f(crate::std_name!("module"), FieldRef::Str(module));
        f(crate::std_name!("exc_info"), FieldRef::None);
        let exc_text = e.exc_text.as_deref().map(escape_newlines);
        f(
            crate::std_name!("exc_text"),
            exc_text.as_deref().map_or(FieldRef::None, FieldRef::Str),
        );
        f(crate::std_name!("stack_info"), FieldRef::None);
        f(
            crate::std_name!("lineno"),
            FieldRef::Int(e.line.map_or(0, i64::from)),
        );
        f(
            crate::std_name!("funcName"),
            FieldRef::Str(e.module_path.as_deref().unwrap_or("")),
        );
        let [created, msecs, relative] = e.times(p);
        f(crate::std_name!("created"), FieldRef::Float(created));
        f(crate::std_name!("msecs"), FieldRef::Float(msecs));
        f(
            crate::std_name!("relativeCreated"),
            FieldRef::Float(relative),
        );
        f(crate::std_name!("thread"), FieldRef::U64(e.thread.id));
        f(
            crate::std_name!("threadName"),
            FieldRef::Str(&e.thread.name),
        );
        f(crate::std_name!("processName"), FieldRef::Str(&p.name));
        f(crate::std_name!("process"), FieldRef::Int(i64::from(p.pid)));
        f(crate::std_name!("context"), FieldRef::Value(&e.context));
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
            crate::std_name!("message"),
            FieldRef::Str(&escape_newlines(&e.message)),
        );
        let stamp = AscTime::of(e.time);
        f(crate::std_name!("asctime"), FieldRef::Str(stamp.as_str()));
        f(crate::std_name!("hostname"), FieldRef::Str(&p.hostname));
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

/// `asctime` text on the stack, cached per thread for the current second, since the
/// local-time conversion is the costly part and records come many to a second.
pub(crate) struct AscTime([u8; 23]);

impl AscTime {
    pub(crate) fn of(t: SystemTime) -> AscTime {
        use std::cell::RefCell;
        thread_local! {
            static LAST: RefCell<(i64, [u8; 19])> = const { RefCell::new((i64::MIN, [0; 19])) };
        }
        let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
            Err(_) => (0, 0),
        };
        let mut out = [b'0'; 23];
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            if last.0 != secs {
                let full = asctime(t);
                let b = full.as_bytes();
                if b.len() == 23 {
                    last.1.copy_from_slice(&b[..19]);
                    last.0 = secs;
                }
            }
            out[..19].copy_from_slice(&last.1);
        });
        out[19] = b',';
        out[20] = b'0' + (millis / 100) as u8;
        out[21] = b'0' + (millis / 10 % 10) as u8;
        out[22] = b'0' + (millis % 10) as u8;
        AscTime(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

/// Formats a time as Python's default `asctime`: `YYYY-MM-DD HH:MM:SS,mmm`, local time.
///
/// ```
/// let s = distlog::record::asctime(std::time::SystemTime::now());
/// assert_eq!(s.len(), 23);
/// assert_eq!(&s[19..20], ",");
/// ```
pub fn asctime(t: SystemTime) -> String {
    let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_millis()),
        Err(_) => (0, 0),
    };
    let time = secs as libc::time_t;
    // SAFETY: a zeroed tm is a valid value, and localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { !libc::localtime_r(&time, &mut tm).is_null() };
    if !ok {
        return format!("{secs},{millis:03}");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        millis
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_index_finds_exactly_the_standard_keys() {
        for (i, key) in STANDARD_KEYS.iter().enumerate() {
            assert_eq!(standard_index_of(key.as_bytes()), Some(i), "{key}");
            let mut other = key.as_bytes().to_vec();
            for at in [0, other.len() - 1] {
                other[at] ^= 0x20;
                assert_eq!(standard_index_of(&other), None);
                other[at] ^= 0x20;
            }
            assert_eq!(standard_index_of(&key.as_bytes()[1..]), None);
        }
        for extra in [
            "",
            "order_id",
            "user",
            "amount",
            "relativeCreatedX",
            "x".repeat(40).as_str(),
        ] {
            assert_eq!(standard_index_of(extra.as_bytes()), None, "{extra}");
        }
    }

    #[test]
    fn msecs_are_the_whole_milliseconds_of_created() {
        let process = ProcessInfo::current();
        let mut e = Event::new(log::Level::Info, "t", String::new());
        for secs in [0u64, 1, 1_764_090_000] {
            for nanos in [0u32, 999_999, 1_000_000, 123_456_789, 999_999_999] {
                e.time = UNIX_EPOCH + std::time::Duration::new(secs, nanos);
                let [created, msecs, _] = e.times(&process);
                assert_eq!(msecs, (created.fract() * 1000.0).floor(), "{secs}.{nanos}");
            }
        }
        e.time = UNIX_EPOCH - std::time::Duration::from_millis(1500);
        assert_eq!(e.times(&process)[1], 0.0);
    }

    #[test]
    fn event_builds_keys_in_python_order() {
        let mut e = Event::new(log::Level::Warn, "shop.orders", "a\nb".into());
        e.file = Some("src/shop/orders.rs".into());
        e.line = Some(42);
        e.module_path = Some("shop::orders".into());
        e.extra.push(("order_id".into(), Value::Int(7)));
        e.extra.push(("message".into(), Value::Int(1)));
        let r = e.into_record(&ProcessInfo::current());
        let keys: Vec<&str> = r.fields().map(|(k, _)| k).collect();
        let mut want: Vec<&str> = STANDARD_KEYS[..21].to_vec();
        want.extend([
            "order_id",
            "extra_message",
            "message",
            "asctime",
            "hostname",
        ]);
        assert_eq!(keys, want);
        assert_eq!(r.get("filename").and_then(Value::as_str), Some("orders.rs"));
        assert_eq!(r.get("module").and_then(Value::as_str), Some("orders"));
        assert_eq!(r.get("msg").and_then(Value::as_str), Some("a\nb"));
        assert_eq!(r.message(), Some("a\\nb"));
        assert_eq!(r.levelno(), Some(30));
        assert_eq!(
            r.get("msecs").and_then(Value::as_f64).map(|m| m.fract()),
            Some(0.0)
        );
    }

    #[test]
    fn task_id_from_context() {
        let mut r = Record::new();
        r.insert(
            "context",
            Value::Dict(vec![(Value::from("key"), Value::from("3@abc/1"))]),
        );
        assert_eq!(r.context_key(), Some("3@abc/1"));
        assert_eq!(r.task_id(), Some("abc/1"));
    }
}
