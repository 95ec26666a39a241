//! Tasks: the context that ties log records into one tree, across threads, `.await`
//! points and processes, as Python distlog's `task`/`to`/`import_task` do.
//!
//! Every record logged while a task is current carries
//! `context = {"key": "<counter>@<task id>", **task data}`, exactly as Python writes
//! it. A top-level task's id is a UUID4; a subtask's id is `<parent id>/<n>`
//! (n = 1, 2, … per parent); a task continued in another process keeps the id its
//! parent handed out with [`Task::foreign_task_id`]. `counter` counts the records
//! logged in that task from 0; data bound to a task is not inherited by its subtasks.
//!
//! ```
//! use distlog::context::{self, task, to};
//!
//! let root = task("import orders", [("batch", 7)]).enter();
//! let ctx = context::current_context();
//! assert_eq!(ctx.get("batch"), Some(&distlog::Value::Int(7)));
//! {
//!     let sub = to("parse", ()).enter();
//!     assert_eq!(sub.id(), format!("{}/1", root.id()));
//!     context::bind("rows", 120);
//! } // leaving normally logs the `success` message, if one was set
//! let handed_over = root.foreign_task_id(); // `<root id>/2`, for another process
//! assert!(handed_over.ends_with("/2"));
//! ```
//!
//! # Where the task's own records go
//!
//! Entering a task logs its message at INFO; leaving it by an error logs
//! `FAILED <msg>` at ERROR with the error in `exc_text`; leaving normally logs the
//! [`Task::success`] message if one was set. Python sends these to the root logger,
//! where they are usually lost; here they go to the task's own target (set with
//! [`NewTask::target`], default: the parent task's target, else `distlog.task`), through
//! the handler given with [`NewTask::handler`], else the one installed by
//! [`crate::LogBuilder::install`] (respecting its level filter), else the `log` facade.
//!
//! # Differences from Python, on purpose
//!
//! - [`import_task`] really continues the id it is given (Python's ignores it).
//! - [`Task::foreign_task_id`] hands out `<own id>/<n>`. Python's `get_foreign_task`
//!   uses the *parent's* id (`None/<n>` at top level, and a subtask's hand-over can
//!   collide with a sibling's id). Rust continues whatever id Python hands over; to
//!   hand over from Python correctly compute `'%s/%d' % (t.id, t.get_next_task())`.
//! - Python's `import_task` being broken, continue a Rust id in Python with
//!   `distlog.Task(foreign_id, msg)` (which sets `_id`) entered at top level.
//! - Counters are atomic: one task may log from several threads at once.
//! - A task id bound under the data key `key` would overwrite the record's key in
//!   Python; here such data is sent as `data_key`.
//!
//! # OpenTelemetry `traceparent`
//!
//! A task maps onto a W3C trace context so that distlog trees join OpenTelemetry traces:
//!
//! - **trace id**: the root segment of the task id (the part before the first `/`)
//!   when it is a UUID, as 32 lowercase hex digits without dashes; any other root (such
//!   as Python's `None`) is hashed with 128-bit FNV-1a.
//! - **span id**: 64-bit FNV-1a of the full task id (UTF-8), as 16 hex digits. A
//!   collector can so derive every span id, and the parent's (drop the last segment),
//!   from the context key alone.
//! - **flags**: `01` (sampled), or those of the `traceparent` the task came from.
//! - [`Task::from_traceparent`] opens a task with id
//!   `<trace id as UUID>/<parent span id>-<8 random hex digits>`, and puts the incoming
//!   header in its data as `traceparent`: the one place the OpenTelemetry parent span
//!   cannot be derived from the id.
//!
//! An all-zero hash (never seen in practice) is replaced by 1, as zero ids are invalid.

use crate::fnv::{fnv1a_128, fnv1a_64};
use crate::handler::Handler;
use crate::record::Event;
use crate::value::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// The target of a task's own records when none is given and no parent has one.
///
/// ```
/// let t = distlog::context::task("t", ()).enter();
/// assert_eq!(t.target(), distlog::context::DEFAULT_TARGET);
/// ```
pub const DEFAULT_TARGET: &str = "distlog.task";

thread_local! {
    /// The tasks current on this thread, innermost last.
    static STACK: RefCell<Vec<Task>> = const { RefCell::new(Vec::new()) };
}

/// Data given when opening a task: `()` for none, or `(key, value)` pairs in an
/// array, a `Vec` or a slice.
///
/// ```
/// use distlog::context::TaskData;
/// assert!(().into_data().is_empty());
/// assert_eq!([("a", 1), ("b", 2)].into_data().len(), 2);
/// let pairs: Vec<(String, distlog::Value)> = vec![("k".into(), "v".into())];
/// assert_eq!(pairs.into_data()[0].0, "k");
/// ```
pub trait TaskData {
    /// The pairs, in order.
    fn into_data(self) -> Vec<(String, Value)>;
}

impl TaskData for () {
    fn into_data(self) -> Vec<(String, Value)> {
        Vec::new()
    }
}

impl<K: Into<String>, V: Into<Value>, const N: usize> TaskData for [(K, V); N] {
    fn into_data(self) -> Vec<(String, Value)> {
        self.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }
}

impl<K: Into<String>, V: Into<Value>> TaskData for Vec<(K, V)> {
    fn into_data(self) -> Vec<(String, Value)> {
        self.into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }
}

impl<K: Into<String> + Clone, V: Into<Value> + Clone> TaskData for &[(K, V)] {
    fn into_data(self) -> Vec<(String, Value)> {
        self.iter()
            .map(|(k, v)| (k.clone().into(), v.clone().into()))
            .collect()
    }
}

/// A task id that [`import_task`] refused, naming it.
///
/// ```
/// use distlog::context::{import_task, TaskIdError};
/// let err = import_task("abc/", "x", ()).unwrap_err();
/// assert_eq!(err, TaskIdError::EmptySegment { id: "abc/".into() });
/// assert_eq!(err.to_string(), "task id \"abc/\" has an empty segment");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskIdError {
    /// The id is empty.
    Empty,
    /// The id has an empty segment: it starts or ends with `/`, or has `//`.
    EmptySegment {
        /// The id as given.
        id: String,
    },
    /// The id contains whitespace or a control character.
    BadChar {
        /// The id as given.
        id: String,
        /// The offending character.
        ch: char,
    },
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// The first 64 characters of the id.
        start: String,
        /// Its length in bytes.
        len: usize,
    },
}

/// The longest task id accepted from outside, in bytes.
///
/// ```
/// use distlog::context::{check_task_id, TaskIdError, MAX_ID_LEN};
/// let long = "1/".repeat(MAX_ID_LEN);
/// assert!(matches!(check_task_id(&long), Err(TaskIdError::TooLong { .. })));
/// ```
pub const MAX_ID_LEN: usize = 4096;

impl fmt::Display for TaskIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskIdError::Empty => write!(f, "the task id is empty"),
            TaskIdError::EmptySegment { id } => {
                write!(f, "task id {id:?} has an empty segment")
            }
            TaskIdError::BadChar { id, ch } => {
                write!(f, "task id {id:?} contains the character {ch:?}")
            }
            TaskIdError::TooLong { start, len } => write!(
                f,
                "task id starting {start:?} is {len} bytes long, more than {MAX_ID_LEN}"
            ),
        }
    }
}

impl std::error::Error for TaskIdError {}

/// Checks the form of a task id received from another process.
///
/// ```
/// use distlog::context::{check_task_id, TaskIdError};
/// assert!(check_task_id("9f0c1d52-7d8e-4f1a-9b8e-2f8d1c3b4a5e/3/1").is_ok());
/// assert!(check_task_id("None/1").is_ok()); // what Python hands out at top level
/// assert!(matches!(check_task_id("a//1"), Err(TaskIdError::EmptySegment { .. })));
/// assert!(matches!(check_task_id("a b"), Err(TaskIdError::BadChar { ch: ' ', .. })));
/// ```
pub fn check_task_id(id: &str) -> Result<(), TaskIdError> {
    if id.is_empty() {
        return Err(TaskIdError::Empty);
    }
    if id.len() > MAX_ID_LEN {
        return Err(TaskIdError::TooLong {
            start: id.chars().take(64).collect(),
            len: id.len(),
        });
    }
    if let Some(ch) = id.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(TaskIdError::BadChar {
            id: id.to_string(),
            ch,
        });
    }
    if id.split('/').any(str::is_empty) {
        return Err(TaskIdError::EmptySegment { id: id.to_string() });
    }
    Ok(())
}

/// A `traceparent` header that [`Task::from_traceparent`] refused, naming it.
///
/// ```
/// use distlog::context::{Traceparent, TraceparentError};
/// let err = "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
///     .parse::<Traceparent>()
///     .unwrap_err();
/// assert!(matches!(err, TraceparentError::Version { .. }));
/// assert!(err.to_string().contains("ff-4bf9"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceparentError {
    /// Not four `-`-separated fields of 2, 32, 16 and 2 lowercase hex digits.
    Format {
        /// The header as given.
        value: String,
    },
    /// Version `ff`, which the W3C spec declares invalid.
    Version {
        /// The header as given.
        value: String,
    },
    /// Version `00` with more than four fields.
    TrailingData {
        /// The header as given.
        value: String,
    },
    /// The trace id is all zeros.
    ZeroTraceId {
        /// The header as given.
        value: String,
    },
    /// The parent span id is all zeros.
    ZeroSpanId {
        /// The header as given.
        value: String,
    },
}

impl fmt::Display for TraceparentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceparentError::Format { value } => write!(
                f,
                "traceparent {value:?} is not 00-<32 hex>-<16 hex>-<2 hex> in lowercase"
            ),
            TraceparentError::Version { value } => {
                write!(f, "traceparent {value:?} has the invalid version ff")
            }
            TraceparentError::TrailingData { value } => {
                write!(f, "traceparent {value:?} has data after the flags")
            }
            TraceparentError::ZeroTraceId { value } => {
                write!(f, "traceparent {value:?} has an all-zero trace id")
            }
            TraceparentError::ZeroSpanId { value } => {
                write!(f, "traceparent {value:?} has an all-zero parent span id")
            }
        }
    }
}

impl std::error::Error for TraceparentError {}

/// A parsed W3C `traceparent`.
///
/// ```
/// use distlog::context::Traceparent;
/// let tp: Traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
/// assert_eq!(tp.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// assert_eq!(tp.span_id, 0x00f067aa0ba902b7);
/// assert_eq!(tp.flags, 1);
/// assert_eq!(tp.to_string(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent {
    /// The 128-bit trace id.
    pub trace_id: u128,
    /// The 64-bit (parent) span id.
    pub span_id: u64,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl fmt::Display for Traceparent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

impl std::str::FromStr for Traceparent {
    type Err = TraceparentError;

    fn from_str(value: &str) -> Result<Self, TraceparentError> {
        let format = || TraceparentError::Format {
            value: value.to_string(),
        };
        let fields: Vec<&str> = value.split('-').collect();
        if fields.len() < 4 {
            return Err(format());
        }
        let lower_hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let (version, trace, span, flags) = (fields[0], fields[1], fields[2], fields[3]);
        if !lower_hex(version, 2)
            || !lower_hex(trace, 32)
            || !lower_hex(span, 16)
            || !lower_hex(flags, 2)
        {
            return Err(format());
        }
        if version == "ff" {
            return Err(TraceparentError::Version {
                value: value.to_string(),
            });
        }
        // Later versions may append fields; version 00 may not.
        if version == "00" && fields.len() > 4 {
            return Err(TraceparentError::TrailingData {
                value: value.to_string(),
            });
        }
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| format())?;
        let span_id = u64::from_str_radix(span, 16).map_err(|_| format())?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| format())?;
        if trace_id == 0 {
            return Err(TraceparentError::ZeroTraceId {
                value: value.to_string(),
            });
        }
        if span_id == 0 {
            return Err(TraceparentError::ZeroSpanId {
                value: value.to_string(),
            });
        }
        Ok(Traceparent {
            trace_id,
            span_id,
            flags,
        })
    }
}

/// The trace id of a task id: its root UUID, or a hash of a root that is none.
///
/// ```
/// use distlog::context::trace_id_of;
/// assert_eq!(
///     trace_id_of("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/2/1"),
///     0x4bf92f3577b34da6a3ce929d0e0e4736
/// );
/// ```
pub fn trace_id_of(task_id: &str) -> u128 {
    let root = task_id.split('/').next().unwrap_or(task_id);
    match uuid::Uuid::try_parse(root) {
        Ok(u) if !u.is_nil() => u.as_u128(),
        _ => nonzero128(fnv1a_128(root.as_bytes())),
    }
}

/// The span id of a task id: 64-bit FNV-1a of the whole id.
///
/// ```
/// use distlog::context::span_id_of;
/// // 64-bit FNV-1a of "abc/1"
/// assert_eq!(span_id_of("abc/1"), 0x63fc_f92d_76bc_9187);
/// ```
pub fn span_id_of(task_id: &str) -> u64 {
    match fnv1a_64(task_id.as_bytes()) {
        0 => 1,
        h => h,
    }
}

fn nonzero128(h: u128) -> u128 {
    if h == 0 {
        1
    } else {
        h
    }
}

/// The state of one running task, shared by every thread and future it runs on.
struct TaskState {
    id: String,
    msg: String,
    target: Cow<'static, str>,
    data: Mutex<Vec<(String, Value)>>,
    counter: AtomicU64,
    subtasks: AtomicU64,
    success: Mutex<Option<String>>,
    sink: Option<Handler>,
    flags: u8,
    location: Option<&'static Location<'static>>,
}

/// A handle to a task: its id, data and counters. Cheap to clone; all clones are the
/// same task, so records logged through any of them, on any thread, count together.
///
/// ```
/// use distlog::context::{current_task, task};
/// let guard = task("job", ()).enter();
/// let handle = current_task().expect("inside a task");
/// assert_eq!(handle.id(), guard.id());
/// handle.bind("user", "ann");
/// assert_eq!(distlog::context::current_context().get("user").and_then(|v| v.as_str()), Some("ann"));
/// ```
#[derive(Clone)]
pub struct Task {
    state: Arc<TaskState>,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.state.id)
            .field("msg", &self.state.msg)
            .field("target", &self.state.target)
            .field("counter", &self.counter())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Data stays consistent even if a thread panicked while holding the lock: every
    // critical section is a single push or replace.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Task {
    /// The task id: a UUID4 at top level, `<parent id>/<n>` below.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// assert!(uuid::Uuid::try_parse(t.id()).is_ok());
    /// ```
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The message logged when the task is entered.
    ///
    /// ```
    /// let t = distlog::context::task("load", ()).enter();
    /// assert_eq!(t.msg(), "load");
    /// ```
    pub fn msg(&self) -> &str {
        &self.state.msg
    }

    /// The target (logger name) of the task's own records.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).target("shop.orders").enter();
    /// assert_eq!(t.target(), "shop.orders");
    /// ```
    pub fn target(&self) -> &str {
        &self.state.target
    }

    /// How many records have been logged in this task so far.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// let before = t.counter();
    /// let _ = distlog::context::current_context();
    /// assert_eq!(t.counter(), before + 1);
    /// ```
    pub fn counter(&self) -> u64 {
        self.state.counter.load(Ordering::Relaxed)
    }

    /// Adds a key to the task's data, or replaces its value (Python's `bind`). The data
    /// is sent with every later record of this task, not of its subtasks.
    ///
    /// ```
    /// let t = distlog::context::task("t", [("a", 1)]).enter();
    /// t.bind("a", 2);
    /// t.bind("b", true);
    /// assert_eq!(t.data(), [("a".to_string(), 2.into()), ("b".to_string(), true.into())]);
    /// ```
    pub fn bind(&self, key: impl Into<String>, value: impl Into<Value>) {
        let mut key = key.into();
        if key == "key" {
            key = "data_key".into();
        }
        let value = value.into();
        let mut data = lock(&self.state.data);
        match data.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => data.push((key, value)),
        }
    }

    /// Sets the message logged at INFO when the task ends normally (Python's `success`).
    ///
    /// ```
    /// let t = distlog::context::task("sync mailbox", ()).enter();
    /// t.success("mailbox in sync");
    /// ```
    pub fn success(&self, msg: impl Into<String>) {
        *lock(&self.state.success) = Some(msg.into());
    }

    /// Hands out the id of a subtask that runs in another process, `<id>/<n>`; pass it
    /// to [`import_task`] there. Numbers are shared with [`to`], so ids never collide.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// assert_eq!(t.foreign_task_id(), format!("{}/1", t.id()));
    /// assert_eq!(t.subtask("local", ()).id(), format!("{}/2", t.id()));
    /// ```
    pub fn foreign_task_id(&self) -> String {
        format!("{}/{}", self.state.id, self.next_subtask())
    }

    /// The W3C `traceparent` naming this task as the parent span (see the module docs
    /// for the mapping).
    ///
    /// ```
    /// let t = distlog::context::import_task("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/1", "x", ())
    ///     .unwrap()
    ///     .enter();
    /// let tp = t.traceparent();
    /// assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    /// assert_eq!(tp.len(), 55);
    /// ```
    pub fn traceparent(&self) -> String {
        self.trace_context().to_string()
    }

    /// This task as a [`Traceparent`].
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// let tp = t.trace_context();
    /// assert_eq!(tp.span_id, distlog::context::span_id_of(t.id()));
    /// assert_eq!(tp.flags, 1);
    /// ```
    pub fn trace_context(&self) -> Traceparent {
        Traceparent {
            trace_id: trace_id_of(&self.state.id),
            span_id: span_id_of(&self.state.id),
            flags: self.state.flags,
        }
    }

    /// The task's data, as it would be sent now (without the `key`).
    ///
    /// ```
    /// let t = distlog::context::task("t", [("user", "ann")]).enter();
    /// assert_eq!(t.data()[0].0, "user");
    /// ```
    pub fn data(&self) -> Vec<(String, Value)> {
        lock(&self.state.data).clone()
    }

    /// Makes this task current on this thread until the returned guard drops, logging
    /// nothing: how one task logs from several threads.
    ///
    /// ```
    /// use distlog::context::{current_context, task};
    /// let job = task("parallel job", ()).enter();
    /// let handle = job.task().clone();
    /// std::thread::spawn(move || {
    ///     let _attached = handle.attach();
    ///     assert!(current_context().get("key").is_some());
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn attach(&self) -> Attached {
        push(self.clone());
        Attached {
            task: self.clone(),
            _not_send: PhantomData,
        }
    }

    /// The context of the next record logged in this task; counts it.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// let c = t.next_context();
    /// assert_eq!(c.get("key").and_then(|k| k.as_str()), Some(format!("0@{}", t.id()).as_str()));
    /// ```
    pub fn next_context(&self) -> Value {
        let n = self.state.counter.fetch_add(1, Ordering::Relaxed);
        let data = lock(&self.state.data);
        let mut items = Vec::with_capacity(1 + data.len());
        items.push((
            Value::from("key"),
            Value::Str(format!("{n}@{}", self.state.id)),
        ));
        items.extend(data.iter().map(|(k, v)| (Value::Str(k.clone()), v.clone())));
        Value::Dict(items)
    }

    fn next_subtask(&self) -> u64 {
        self.state.subtasks.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn same(&self, other: &Task) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Opens a task not yet entered, with everything known; `NewTask` builds on this.
    fn opened(spec: NewTask) -> Task {
        Task {
            state: Arc::new(TaskState {
                id: spec.id,
                msg: spec.msg,
                target: spec.target,
                data: Mutex::new(spec.data),
                counter: AtomicU64::new(0),
                subtasks: AtomicU64::new(0),
                success: Mutex::new(None),
                sink: spec.sink,
                flags: spec.flags,
                location: spec.location,
            }),
        }
    }

    /// Opens a task continuing a W3C `traceparent` from OpenTelemetry or another
    /// service (see the module docs for the id it gets). The header is kept in the
    /// task's data as `traceparent`.
    ///
    /// ```
    /// use distlog::context::{Task, TraceparentError};
    /// let t = Task::from_traceparent(
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ///     "handle request",
    ///     (),
    /// )
    /// .unwrap()
    /// .enter();
    /// assert!(t.id().starts_with("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/00f067aa0ba902b7-"));
    /// assert!(t.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    /// let bad = Task::from_traceparent("00-xyz", "x", ()).unwrap_err();
    /// assert!(matches!(bad, TraceparentError::Format { .. }));
    /// ```
    #[track_caller]
    pub fn from_traceparent(
        traceparent: &str,
        msg: impl Into<String>,
        data: impl TaskData,
    ) -> Result<NewTask, TraceparentError> {
        let tp: Traceparent = traceparent.parse()?;
        let root = uuid::Uuid::from_u128(tp.trace_id).hyphenated().to_string();
        let salt = uuid::Uuid::new_v4().as_u128() as u32;
        let id = format!("{root}/{:016x}-{salt:08x}", tp.span_id);
        let mut data = data.into_data();
        data.insert(0, ("traceparent".to_string(), Value::Str(tp.to_string())));
        let mut spec = NewTask::new(id, msg.into(), data, None);
        spec.flags = tp.flags;
        Ok(spec)
    }
}

/// A task opened but not entered yet: set its target or handler, then
/// [`enter`](NewTask::enter) it, [`run`](NewTask::run) a closure in it, or run a future
/// in it with [`InTask::in_task`].
///
/// ```
/// use distlog::context::task;
/// let spec = task("rebuild index", [("shard", 3)]).target("search.index");
/// let id = spec.id().to_string();
/// let out: Result<u32, std::io::Error> = spec.run(|| Ok(42));
/// assert_eq!(out.unwrap(), 42);
/// assert_eq!(id.len(), 36);
/// ```
#[must_use = "a task does nothing until it is entered or run"]
#[derive(Debug)]
pub struct NewTask {
    id: String,
    msg: String,
    target: Cow<'static, str>,
    data: Vec<(String, Value)>,
    sink: Option<Handler>,
    flags: u8,
    location: Option<&'static Location<'static>>,
}

impl NewTask {
    #[track_caller]
    fn new(id: String, msg: String, data: Vec<(String, Value)>, parent: Option<&Task>) -> Self {
        let data = data
            .into_iter()
            .map(|(k, v)| {
                if k == "key" {
                    ("data_key".into(), v)
                } else {
                    (k, v)
                }
            })
            .collect();
        NewTask {
            id,
            msg,
            target: parent.map_or(Cow::Borrowed(DEFAULT_TARGET), |p| p.state.target.clone()),
            data,
            sink: parent.and_then(|p| p.state.sink.clone()),
            flags: parent.map_or(1, |p| p.state.flags),
            location: Some(Location::caller()),
        }
    }

    /// The id the task will have.
    ///
    /// ```
    /// let spec = distlog::context::task("t", ());
    /// let id = spec.id().to_string();
    /// assert_eq!(spec.enter().id(), id);
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The target (logger name) for the task's own enter/exit records.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).target("billing").enter();
    /// assert_eq!(t.target(), "billing");
    /// ```
    pub fn target(mut self, target: impl Into<Cow<'static, str>>) -> Self {
        self.target = target.into();
        self
    }

    /// Sends the task's own records to this handler instead of the installed one
    /// (subtasks inherit it).
    ///
    /// ```
    /// use distlog::handler::Handler;
    /// let guard = Handler::builder().endpoint("tcp://127.0.0.1:5999").flush_timeout(std::time::Duration::from_millis(50)).spawn().unwrap();
    /// let t = distlog::context::task("t", ()).handler(guard.handler().clone()).enter();
    /// drop(t); // its records were queued on that handler
    /// ```
    pub fn handler(mut self, handler: Handler) -> Self {
        self.sink = Some(handler);
        self
    }

    /// Adds one more data pair.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).with("shard", 3).enter();
    /// assert_eq!(t.data(), [("shard".to_string(), 3.into())]);
    /// ```
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        let key = if key == "key" { "data_key".into() } else { key };
        self.data.push((key, value.into()));
        self
    }

    /// Creates the task without entering it or logging anything, for the `tracing`
    /// layer, which logs and enters on its own schedule.
    #[cfg(feature = "tracing")]
    pub(crate) fn open(self) -> Task {
        Task::opened(self)
    }

    /// Makes the task current on this thread and logs its message; the guard ends it.
    ///
    /// ```
    /// let t = distlog::context::task("t", ()).enter();
    /// assert_eq!(distlog::context::current_task().unwrap().id(), t.id());
    /// ```
    pub fn enter(self) -> TaskGuard {
        let task = Task::opened(self);
        push(task.clone());
        emit(&task, log::Level::Info, task.state.msg.clone(), None);
        TaskGuard {
            task,
            done: AtomicBool::new(false),
            _not_send: PhantomData,
        }
    }

    /// Runs `f` in the task: an `Err` logs `FAILED <msg>` with the error's Display and
    /// Debug text in `exc_text`, as does a panic (which then continues); `Ok` logs the
    /// success message if one was set.
    ///
    /// ```
    /// use distlog::context::task;
    /// let r: Result<(), String> = task("doomed", ()).run(|| Err("disk full".to_string()));
    /// assert_eq!(r.unwrap_err(), "disk full");
    /// ```
    pub fn run<T, E: fmt::Display + fmt::Debug>(
        self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let guard = self.enter();
        // Unwind safety: the payload is re-raised at once, nothing observes broken state.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(result) => guard.finish(result),
            Err(payload) => {
                guard.fail_text(panic_text(&*payload));
                drop(guard);
                std::panic::resume_unwind(payload)
            }
        }
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_string());
    format!("panic: {what}")
}

/// The text sent in `exc_text` for an error: its Display, then its Debug form (which
/// for `anyhow`-style errors carries the cause chain) when that says more.
///
/// ```
/// let e = std::io::Error::other("disk full");
/// let text = distlog::context::describe(&e);
/// assert!(text.starts_with("disk full\n"));
/// assert!(text.contains("Custom"));
/// ```
pub fn describe<E: fmt::Display + fmt::Debug + ?Sized>(e: &E) -> String {
    let display = e.to_string();
    let debug = format!("{e:?}");
    if debug == display || debug == format!("{display:?}") {
        display
    } else {
        format!("{display}\n{debug}")
    }
}

/// The text sent in `exc_text` for a `std::error::Error`: [`describe`] followed by
/// its `source()` chain.
///
/// ```
/// use std::fmt;
/// #[derive(Debug)]
/// struct Outer(std::io::Error);
/// impl fmt::Display for Outer {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("load failed") }
/// }
/// impl std::error::Error for Outer {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> { Some(&self.0) }
/// }
/// let text = distlog::context::describe_error(&Outer(std::io::Error::other("no disk")));
/// assert!(text.contains("Caused by:\n    0: no disk"));
/// ```
pub fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = describe(e);
    let mut source = e.source();
    let mut i = 0;
    if source.is_some() {
        text.push_str("\n\nCaused by:");
    }
    while let Some(s) = source {
        text.push_str(&format!("\n    {i}: {s}"));
        i += 1;
        source = s.source();
    }
    text
}

/// An entered task. Dropping it ends the task: logs the success message if one was set,
/// or `FAILED <msg>` if the thread is panicking; [`TaskGuard::fail`] ends it by an error.
/// It derefs to the [`Task`] handle. Not `Send`: a task is current per thread (use
/// [`Task::attach`] on other threads, [`InTask`] for futures).
///
/// ```
/// use distlog::context::task;
/// let guard = task("copy files", ()).enter();
/// guard.bind("files", 3);
/// guard.success("copied");
/// drop(guard); // logs "copied"
/// assert!(distlog::context::current_task().is_none());
/// ```
#[must_use = "dropping the guard ends the task at once"]
pub struct TaskGuard {
    task: Task,
    done: AtomicBool,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for TaskGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskGuard").field(&self.task).finish()
    }
}

impl std::ops::Deref for TaskGuard {
    type Target = Task;
    fn deref(&self) -> &Task {
        &self.task
    }
}

impl TaskGuard {
    /// The task handle, to clone for other threads or futures.
    ///
    /// ```
    /// let g = distlog::context::task("t", ()).enter();
    /// let handle: distlog::context::Task = g.task().clone();
    /// assert_eq!(handle.id(), g.id());
    /// ```
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// Ends the task by an error: logs `FAILED <msg>` at ERROR with [`describe`]`(err)`
    /// in `exc_text`. The guard's drop then logs nothing more.
    ///
    /// ```
    /// let g = distlog::context::task("upload", ()).enter();
    /// if let Err(e) = "x".parse::<i32>() {
    ///     g.fail(&e); // logs "FAILED upload" at ERROR
    /// }
    /// ```
    pub fn fail<E: fmt::Display + fmt::Debug + ?Sized>(&self, err: &E) {
        self.fail_text(describe(err));
    }

    /// Like [`fail`](TaskGuard::fail), with the error's `source()` chain.
    ///
    /// ```
    /// let g = distlog::context::task("read config", ()).enter();
    /// let err = std::io::Error::other("no such file");
    /// g.fail_error(&err);
    /// ```
    pub fn fail_error(&self, err: &(dyn std::error::Error + 'static)) {
        self.fail_text(describe_error(err));
    }

    fn fail_text(&self, text: String) {
        if !self.done.swap(true, Ordering::Relaxed) {
            log_failed(&self.task, text);
        }
    }

    /// Ends the task with a result: `Err` as [`fail`](TaskGuard::fail), `Ok` as a
    /// normal end. Returns the result unchanged.
    ///
    /// ```
    /// let guard = distlog::context::task("parse", ()).enter();
    /// let n = guard.finish("42".parse::<u32>());
    /// assert_eq!(n, Ok(42));
    /// ```
    pub fn finish<T, E: fmt::Display + fmt::Debug>(self, result: Result<T, E>) -> Result<T, E> {
        if let Err(e) = &result {
            self.fail(e);
        }
        result
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if !self.done.swap(true, Ordering::Relaxed) {
            if std::thread::panicking() {
                log_failed(
                    &self.task,
                    "panic: the thread panicked inside the task".into(),
                );
            } else {
                log_success(&self.task);
            }
        }
        pop(&self.task);
    }
}

/// A task made current on this thread by [`Task::attach`]; dropping it detaches.
///
/// ```
/// use distlog::context::{current_task, task};
/// let t = task("t", ()).enter();
/// let handle = t.task().clone();
/// drop(t);
/// {
///     let _attached = handle.attach();
///     assert!(current_task().is_some());
/// }
/// assert!(current_task().is_none());
/// ```
#[must_use = "dropping it detaches the task at once"]
pub struct Attached {
    task: Task,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for Attached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Attached").field(&self.task).finish()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        pop(&self.task);
    }
}

pub(crate) fn log_failed(task: &Task, exc_text: String) {
    emit(
        task,
        log::Level::Error,
        format!("FAILED {}", task.state.msg),
        Some(exc_text),
    );
}

pub(crate) fn log_success(task: &Task) {
    let msg = lock(&task.state.success).clone();
    if let Some(msg) = msg {
        emit(task, log::Level::Info, msg, None);
    }
}

/// Makes a task current on this thread (innermost). Internal: the guards pair it with
/// [`pop`].
pub(crate) fn push(task: Task) {
    let _ = STACK.try_with(|s| s.borrow_mut().push(task));
}

/// Removes a task from this thread's stack: the innermost entry that is this task, so
/// that guards dropped out of order still leave the right tasks current.
pub(crate) fn pop(task: &Task) {
    let _ = STACK.try_with(|s| {
        let mut s = s.borrow_mut();
        if let Some(i) = s.iter().rposition(|t| t.same(task)) {
            s.remove(i);
        }
    });
}

/// The innermost task current on this thread.
///
/// ```
/// use distlog::context::{current_task, task, to};
/// assert!(current_task().is_none());
/// let _root = task("root", ()).enter();
/// let sub = to("sub", ()).enter();
/// assert_eq!(current_task().unwrap().id(), sub.id());
/// ```
pub fn current_task() -> Option<Task> {
    STACK
        .try_with(|s| s.borrow().last().cloned())
        .ok()
        .flatten()
}

/// The `context` value for a record logged now on this thread: the current task's
/// `{"key": "<counter>@<id>", **data}` (counting the record), or `None` outside any
/// task. The `log` integration calls it for every record.
///
/// ```
/// use distlog::{context, Value};
/// assert_eq!(context::current_context(), Value::None);
/// let t = context::task("t", ()).enter();
/// let key = |v: Value| v.get("key").and_then(|k| k.as_str()).map(str::to_string);
/// assert_eq!(key(context::current_context()), Some(format!("0@{}", t.id())));
/// assert_eq!(key(context::current_context()), Some(format!("1@{}", t.id())));
/// ```
pub fn current_context() -> Value {
    current_task().map_or(Value::None, |t| t.next_context())
}

/// Adds data to the current task (see [`Task::bind`]); `false` outside any task.
///
/// ```
/// use distlog::context::{bind, task};
/// assert!(!bind("k", 1));
/// let t = task("t", ()).enter();
/// assert!(bind("k", 1));
/// assert_eq!(t.data(), [("k".to_string(), 1.into())]);
/// ```
pub fn bind(key: impl Into<String>, value: impl Into<Value>) -> bool {
    match current_task() {
        Some(t) => {
            t.bind(key, value);
            true
        }
        None => false,
    }
}

/// Sets the current task's success message (see [`Task::success`]); `false` outside
/// any task.
///
/// ```
/// use distlog::context::{success, task};
/// assert!(!success("done"));
/// let _t = task("t", ()).enter();
/// assert!(success("done"));
/// ```
pub fn success(msg: impl Into<String>) -> bool {
    match current_task() {
        Some(t) => {
            t.success(msg);
            true
        }
        None => false,
    }
}

/// A subtask id for another process (see [`Task::foreign_task_id`]); `None` outside any
/// task.
///
/// ```
/// use distlog::context::{foreign_task_id, task};
/// assert_eq!(foreign_task_id(), None);
/// let t = task("t", ()).enter();
/// assert_eq!(foreign_task_id(), Some(format!("{}/1", t.id())));
/// ```
pub fn foreign_task_id() -> Option<String> {
    current_task().map(|t| t.foreign_task_id())
}

/// Opens a top-level task with a fresh UUID4 id.
///
/// ```
/// let t = distlog::context::task("nightly report", [("day", "mon")]).enter();
/// assert_eq!(t.id().len(), 36);
/// ```
#[track_caller]
pub fn task(msg: impl Into<String>, data: impl TaskData) -> NewTask {
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    NewTask::new(id, msg.into(), data.into_data(), None)
}

/// Opens a subtask of the current task, id `<parent id>/<n>`; outside any task it opens
/// a top-level task instead (Python would raise).
///
/// ```
/// use distlog::context::{task, to};
/// let root = task("root", ()).enter();
/// let a = to("a", ()).enter();
/// assert_eq!(a.id(), format!("{}/1", root.id()));
/// drop(a);
/// let b = to("b", ()).enter();
/// assert_eq!(b.id(), format!("{}/2", root.id()));
/// ```
#[track_caller]
pub fn to(msg: impl Into<String>, data: impl TaskData) -> NewTask {
    match current_task() {
        Some(parent) => parent.subtask(msg, data),
        None => task(msg, data),
    }
}

impl Task {
    /// Opens a subtask of this task, whether or not it is current here.
    ///
    /// ```
    /// let root = distlog::context::task("root", ()).enter();
    /// let sub = root.subtask("sub", ()).enter();
    /// assert_eq!(sub.id(), format!("{}/1", root.id()));
    /// ```
    #[track_caller]
    pub fn subtask(&self, msg: impl Into<String>, data: impl TaskData) -> NewTask {
        let id = format!("{}/{}", self.state.id, self.next_subtask());
        NewTask::new(id, msg.into(), data.into_data(), Some(self))
    }
}

/// Continues, in this process, a task handed over from another one with
/// [`Task::foreign_task_id`] (or Python's `get_foreign_task()`); the id is used as
/// given, after a check of its form.
///
/// ```
/// use distlog::context::{import_task, TaskIdError};
/// let t = import_task("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/3", "child work", ()).unwrap().enter();
/// assert_eq!(t.id(), "4bf92f35-77b3-4da6-a3ce-929d0e0e4736/3");
/// assert_eq!(import_task("", "x", ()).unwrap_err(), TaskIdError::Empty);
/// ```
#[track_caller]
pub fn import_task(
    id: &str,
    msg: impl Into<String>,
    data: impl TaskData,
) -> Result<NewTask, TaskIdError> {
    check_task_id(id)?;
    Ok(NewTask::new(
        id.to_string(),
        msg.into(),
        data.into_data(),
        None,
    ))
}

/// The handler installed by [`crate::LogBuilder::install`], where task messages and
/// performance messages go by default.
fn default_handler() -> Option<&'static Handler> {
    crate::global::global_handler()
}

/// Logs one of a task's own records (enter, success, FAILED) in the task's context.
pub(crate) fn emit(task: &Task, level: log::Level, message: String, exc_text: Option<String>) {
    let state = &*task.state;
    let (handler, filtered) = match &state.sink {
        Some(h) => (Some(h), false),
        None => (default_handler(), true),
    };
    match handler {
        Some(handler) => {
            if filtered {
                let metadata = log::Metadata::builder()
                    .level(level)
                    .target(&state.target)
                    .build();
                if level > log::max_level() || !log::logger().enabled(&metadata) {
                    return;
                }
            }
            let mut event = Event::new(level, state.target.clone(), message);
            if let Some(loc) = state.location {
                event.file = Some(Cow::Borrowed(loc.file()));
                event.line = Some(loc.line());
            }
            event.context = task.next_context();
            event.exc_text = exc_text;
            handler.enqueue(event);
        }
        None => {
            // Some other logger (or none): it gets the record through the facade, and
            // the record's context comes from the stack, so make the task current.
            let _attached = task.attach();
            let exc = exc_text.unwrap_or_default();
            let kvs: [(&str, &str); 1] = [("exc_text", exc.as_str())];
            let kvs: &[(&str, &str)] = if exc.is_empty() { &[] } else { &kvs };
            let logger = log::logger();
            let loc = state.location;
            logger.log(
                &log::Record::builder()
                    .args(format_args!("{message}"))
                    .level(level)
                    .target(&state.target)
                    .file(loc.map(|l| l.file()))
                    .line(loc.map(|l| l.line()))
                    .key_values(&kvs)
                    .build(),
            );
        }
    }
}

/// Runs futures in a task: the task is current on whichever thread polls the future,
/// for the duration of each poll, so its context survives `.await` on multi-threaded
/// runtimes.
///
/// ```
/// use distlog::context::{current_context, task, InTask};
/// let fut = async {
///     current_context().get("key").and_then(|k| k.as_str()).map(str::to_string)
/// }
/// .in_task(task("async job", ()));
/// let key = futures::executor::block_on(fut).unwrap();
/// assert!(key.contains('@'));
/// ```
pub trait InTask: Future + Sized {
    /// Runs the future in the task: logs the message on the first poll and the success
    /// message when it completes.
    fn in_task(self, task: NewTask) -> TaskFuture<Self, Plain> {
        TaskFuture::new(self, task)
    }

    /// Like [`in_task`](InTask::in_task), for a future giving a `Result`: an `Err` logs
    /// `FAILED <msg>` with the error in `exc_text`.
    ///
    /// ```
    /// use distlog::context::{task, InTask};
    /// let fut = async { "x".parse::<u8>() }.try_in_task(task("parse", ()));
    /// assert!(futures::executor::block_on(fut).is_err());
    /// ```
    fn try_in_task(self, task: NewTask) -> TaskFuture<Self, Fallible> {
        TaskFuture::new(self, task)
    }
}

impl<F: Future> InTask for F {}

/// How a [`TaskFuture`] judges its output.
///
/// ```
/// use distlog::context::{Fallible, Outcome, Plain};
/// assert_eq!(<Plain as Outcome<u8>>::failure(&1), None);
/// let err: Result<(), String> = Err("late".into());
/// assert_eq!(<Fallible as Outcome<_>>::failure(&err), Some("late".to_string()));
/// ```
pub trait Outcome<T> {
    /// The `exc_text` of a failure, or `None` for success.
    fn failure(output: &T) -> Option<String>;
}

/// Every output is a success.
///
/// ```
/// use distlog::context::{task, InTask, Plain, TaskFuture};
/// let fut: TaskFuture<_, Plain> = async { 1 }.in_task(task("t", ()));
/// assert_eq!(futures::executor::block_on(fut), 1);
/// ```
#[derive(Debug)]
pub struct Plain;

/// An `Err` output is a failure.
///
/// ```
/// use distlog::context::{task, Fallible, InTask, TaskFuture};
/// let fut: TaskFuture<_, Fallible> = async { Err::<(), _>("no") }.try_in_task(task("t", ()));
/// assert!(futures::executor::block_on(fut).is_err()); // logged "FAILED t"
/// ```
#[derive(Debug)]
pub struct Fallible;

impl<T> Outcome<T> for Plain {
    fn failure(_: &T) -> Option<String> {
        None
    }
}

impl<T, E: fmt::Display + fmt::Debug> Outcome<Result<T, E>> for Fallible {
    fn failure(output: &Result<T, E>) -> Option<String> {
        output.as_ref().err().map(|e| describe(e))
    }
}

/// A future running in a task; see [`InTask`]. Dropped before completion after it
/// started, it logs `CANCELLED <msg>` at WARNING (or `FAILED <msg>` while panicking).
///
/// ```
/// use distlog::context::{task, InTask};
/// let fut = std::future::pending::<()>().in_task(task("waits forever", ()));
/// drop(fut); // never polled: never started, so nothing is logged
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct TaskFuture<F, O> {
    future: Pin<Box<F>>,
    spec: Option<NewTask>,
    task: Option<Task>,
    done: bool,
    _outcome: PhantomData<fn() -> O>,
}

impl<F, O> fmt::Debug for TaskFuture<F, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFuture")
            .field("task", &self.task)
            .field("done", &self.done)
            .finish()
    }
}

impl<F: Future, O> TaskFuture<F, O> {
    fn new(future: F, spec: NewTask) -> Self {
        TaskFuture {
            future: Box::pin(future),
            spec: Some(spec),
            task: None,
            done: false,
            _outcome: PhantomData,
        }
    }
}

impl<F: Future, O: Outcome<F::Output>> Future for TaskFuture<F, O> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let task = match (&this.task, this.spec.take()) {
            (Some(t), _) => t.clone(),
            (None, Some(spec)) => {
                let t = Task::opened(spec);
                emit(&t, log::Level::Info, t.state.msg.clone(), None);
                this.task = Some(t.clone());
                t
            }
            (None, None) => {
                // Unreachable by construction; polling on is still the sane answer.
                return this.future.as_mut().poll(cx);
            }
        };
        let attached = task.attach();
        let poll = this.future.as_mut().poll(cx);
        if let Poll::Ready(out) = &poll {
            this.done = true;
            match O::failure(out) {
                Some(text) => log_failed(&task, text),
                None => log_success(&task),
            }
        }
        drop(attached);
        poll
    }
}

impl<F, O> Drop for TaskFuture<F, O> {
    fn drop(&mut self) {
        if let (Some(task), false) = (&self.task, self.done) {
            if std::thread::panicking() {
                log_failed(task, "panic: the thread panicked inside the task".into());
            } else {
                emit(
                    task,
                    log::Level::Warn,
                    format!("CANCELLED {}", task.state.msg),
                    None,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &Value) -> String {
        v.get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn keys_data_and_subtasks_as_in_python() {
        let root = task("root", [("job", "x")]).enter();
        let id = root.id().to_string();
        assert!(uuid::Uuid::try_parse(&id).is_ok());
        let c = current_context();
        assert_eq!(key(&c), format!("0@{id}"));
        assert_eq!(c.get("job"), Some(&Value::from("x")));
        {
            let sub = to("sub", ()).enter();
            let c = current_context();
            assert_eq!(key(&c), format!("0@{id}/1"));
            // data is not inherited by subtasks
            assert_eq!(c.get("job"), None);
            bind("rows", 3);
            assert_eq!(current_context().get("rows"), Some(&Value::Int(3)));
            drop(sub);
        }
        assert_eq!(key(&current_context()), format!("1@{id}"));
        assert_eq!(foreign_task_id(), Some(format!("{id}/2")));
        assert_eq!(to("next", ()).id(), format!("{id}/3"));
        drop(root);
        assert_eq!(current_context(), Value::None);
    }

    #[test]
    fn binding_key_does_not_break_the_tree() {
        let t = task("t", [("key", 1)]).enter();
        t.bind("key", 2);
        let c = current_context();
        assert_eq!(key(&c), format!("0@{}", t.id()));
        assert_eq!(c.get("data_key"), Some(&Value::Int(2)));
    }

    #[test]
    fn guards_dropped_out_of_order_leave_the_right_task() {
        let a = task("a", ()).enter();
        let b = to("b", ()).enter();
        let b_id = b.id().to_string();
        drop(a);
        assert_eq!(current_task().map(|t| t.id().to_string()), Some(b_id));
        drop(b);
        assert!(current_task().is_none());
    }

    #[test]
    fn traceparent_round_trip_and_errors() {
        let t = import_task("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/2", "x", ())
            .unwrap()
            .enter();
        let tp: Traceparent = t.traceparent().parse().unwrap();
        assert_eq!(tp.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
        assert_eq!(
            tp.span_id,
            fnv1a_64(b"4bf92f35-77b3-4da6-a3ce-929d0e0e4736/2")
        );
        assert_eq!(tp.flags, 1);
        drop(t);
        let sub = Task::from_traceparent(&tp.to_string(), "remote", ())
            .unwrap()
            .enter();
        assert_eq!(sub.trace_context().trace_id, tp.trace_id);
        assert_eq!(
            sub.data()[0],
            ("traceparent".to_string(), Value::Str(tp.to_string()))
        );
        for (bad, want) in [
            ("", "Format"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "Format",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "Format",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "Version",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "ZeroTraceId",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "ZeroSpanId",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
                "TrailingData",
            ),
        ] {
            let err = bad.parse::<Traceparent>().unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{bad}: {err:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        // A later version may carry more fields.
        assert!("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"
            .parse::<Traceparent>()
            .is_ok());
        // A non-UUID root still gives a valid trace id.
        assert_ne!(trace_id_of("None/1"), 0);
    }

    #[test]
    fn run_logs_failure_and_passes_the_result() {
        let r: Result<(), String> = task("t", ()).run(|| Err("boom".into()));
        assert_eq!(r, Err("boom".into()));
        let caught = std::panic::catch_unwind(|| {
            let _: Result<(), String> = task("p", ()).run(|| panic!("kaput"));
        });
        assert!(caught.is_err());
        assert!(current_task().is_none());
    }

    #[test]
    fn future_carries_its_task_and_counts() {
        let fut = async {
            let a = key(&current_context());
            futures::future::ready(()).await;
            let b = key(&current_context());
            (a, b)
        }
        .in_task(task("f", ()));
        assert!(current_task().is_none());
        let (a, b) = futures::executor::block_on(fut);
        assert!(a.starts_with("0@"), "{a}"); // no logger: the enter message was not sent
        assert!(b.starts_with("1@"), "{b}");
        assert!(current_task().is_none());
    }
}
