//! A task: its id, data and counters ([`Task`]), and the builder that opens one
//! ([`NewTask`]).

use crate::handler::Handler;
use crate::value::Value;
use std::borrow::Cow;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The target of a task's own records when none is given and no parent has one.
///
/// ```
/// let t = distlog::context::task("t", ()).enter();
/// assert_eq!(t.target(), distlog::context::DEFAULT_TARGET);
/// ```
pub const DEFAULT_TARGET: &str = "distlog.task";

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

/// The state of one running task, shared by every thread and future it runs on.
pub(super) struct TaskState {
    pub(super) id: String,
    pub(super) msg: String,
    pub(super) target: Cow<'static, str>,
    pub(super) data: Mutex<Vec<(String, Value)>>,
    pub(super) counter: AtomicU64,
    pub(super) subtasks: AtomicU64,
    pub(super) success: Mutex<Option<String>>,
    pub(super) sink: Option<Handler>,
    pub(super) flags: u8,
    pub(super) location: Option<&'static Location<'static>>,
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
    pub(super) state: Arc<TaskState>,
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

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

    /// The task's data, as it would be sent now (without the `key`).
    ///
    /// ```
    /// let t = distlog::context::task("t", [("user", "ann")]).enter();
    /// assert_eq!(t.data()[0].0, "user");
    /// ```
    pub fn data(&self) -> Vec<(String, Value)> {
        lock(&self.state.data).clone()
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

    pub(super) fn next_subtask(&self) -> u64 {
        self.state.subtasks.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(super) fn same(&self, other: &Task) -> bool {
        Arc::ptr_eq(&self.state, &other.state)
    }

    /// Opens a task not yet entered, with everything known; `NewTask` builds on this.
    pub(super) fn opened(spec: NewTask) -> Task {
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
}

/// A task opened but not entered yet: set its target or handler, then
/// [`enter`](NewTask::enter) it, [`run`](NewTask::run) a closure in it, or run a future
/// in it with [`InTask::in_task`](super::InTask::in_task).
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
    pub(super) id: String,
    pub(super) msg: String,
    pub(super) target: Cow<'static, str>,
    pub(super) data: Vec<(String, Value)>,
    pub(super) sink: Option<Handler>,
    pub(super) flags: u8,
    pub(super) location: Option<&'static Location<'static>>,
}

impl NewTask {
    #[track_caller]
    pub(super) fn new(
        id: String,
        msg: String,
        data: Vec<(String, Value)>,
        parent: Option<&Task>,
    ) -> Self {
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
