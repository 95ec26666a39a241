//! Performance messages: measurements sent with KIND `P` on the same link as the log
//! records (Python distlog declares the kind but never sends it).
//!
//! A message's body is a dict, JSON or pickle like the log records, with these keys in
//! this order:
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `name` | str | what was measured, dotted (`db.query`, `handoff.duration`) |
//! | `value` | float | the measurement |
//! | `unit` | str | its unit: `s` for durations, else free text (`bytes`, `rows`, `1`) |
//! | `tags` | dict | string keys to any value, `{}` if none |
//! | `context` | dict or null | the task context as in log records, null outside any task |
//! | `created` | float | seconds since the Unix epoch when measured |
//! | `asctime` | str | `created` as `YYYY-MM-DD HH:MM:SS,mmm`, local time |
//! | `hostname` | str | the node name |
//! | `process` / `processName` | int / str | as in log records |
//! | `thread` / `threadName` | int / str | as in log records |
//!
//! A performance message counts as a record of its task: its `context` key takes the
//! next counter, so keys stay unique over a task's log and performance messages.
//!
//! ```no_run
//! use distlog::perf;
//! let _guard = distlog::init("tcp://127.0.0.1:5010").unwrap();
//! perf::measure("cache.size", 5120.0, "bytes").tag("cache", "users").send();
//! {
//!     let _t = perf::timer("db.query").tag("table", "orders");
//!     // ... the work; dropping the timer sends its duration in seconds
//! }
//! ```

use crate::handler::Handler;
use crate::record::{asctime, epoch_seconds, ProcessInfo, Record, ThreadInfo};
use crate::topic::Kind;
use crate::value::Value;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// One measurement, with the task context and thread captured when it was made.
///
/// ```
/// use distlog::{perf::Measurement, record::ProcessInfo, Value};
/// let m = Measurement::new("queue.depth", 12.0, "items").tag("queue", "mail");
/// let r = m.into_record(&ProcessInfo::current());
/// let keys: Vec<&str> = r.fields().map(|(k, _)| k).collect();
/// assert_eq!(&keys[..6], ["name", "value", "unit", "tags", "context", "created"]);
/// assert_eq!(r.get("value"), Some(&Value::Float(12.0)));
/// assert_eq!(r.get("context"), Some(&Value::None));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a measurement is sent only by send() or send_to()"]
pub struct Measurement {
    name: String,
    value: f64,
    unit: String,
    tags: Vec<(String, Value)>,
    context: Value,
    time: SystemTime,
    thread: ThreadInfo,
}

impl Measurement {
    /// A measurement made now, in the current task.
    ///
    /// ```
    /// let _t = distlog::context::task("t", ()).enter();
    /// let m = distlog::perf::Measurement::new("rows", 10.0, "rows");
    /// let r = m.into_record(&distlog::record::ProcessInfo::current());
    /// assert!(r.context_key().is_some());
    /// ```
    pub fn new(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Measurement::with_context(
            name.into(),
            value,
            unit.into(),
            crate::context::current_context(),
        )
    }

    pub(crate) fn with_context(name: String, value: f64, unit: String, context: Value) -> Self {
        Measurement {
            name,
            value,
            unit,
            tags: Vec::new(),
            context,
            time: SystemTime::now(),
            thread: ThreadInfo::current(),
        }
    }

    /// Adds a tag (replacing one of the same key).
    ///
    /// ```
    /// use distlog::{perf::measure, record::ProcessInfo, Value};
    /// let r = measure("m", 1.0, "1").tag("a", 1).tag("a", 2).into_record(&ProcessInfo::current());
    /// assert_eq!(r.get("tags"), Some(&Value::Dict(vec![("a".into(), 2.into())])));
    /// ```
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.tags.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.tags.push((key, value)),
        }
        self
    }

    /// The body, keys in the documented order.
    ///
    /// ```
    /// use distlog::{perf::measure, record::ProcessInfo};
    /// let r = measure("m", 1.0, "s").into_record(&ProcessInfo::current());
    /// assert_eq!(r.len(), 12);
    /// assert_eq!(r.hostname(), Some(ProcessInfo::current().hostname.as_str()));
    /// ```
    pub fn into_record(self, process: &ProcessInfo) -> Record {
        let mut r = Record::with_capacity(12);
        r.insert("name", self.name);
        r.insert("value", self.value);
        r.insert("unit", self.unit);
        r.insert(
            "tags",
            Value::Dict(
                self.tags
                    .into_iter()
                    .map(|(k, v)| (Value::Str(k), v))
                    .collect(),
            ),
        );
        r.insert("context", self.context);
        r.insert("created", epoch_seconds(self.time));
        r.insert("asctime", asctime(self.time));
        r.insert("hostname", process.hostname.as_str());
        r.insert("process", process.pid);
        r.insert("processName", process.name.as_str());
        r.insert("thread", self.thread.id);
        r.insert("threadName", Value::Str(self.thread.name.to_string()));
        r
    }

    /// Sends it through the handler of the installed logger. Returns whether it was
    /// queued: `false` when no distlog logger is installed or the queue is full.
    ///
    /// ```
    /// assert!(!distlog::perf::measure("m", 1.0, "s").send()); // nothing installed here
    /// ```
    pub fn send(self) -> bool {
        match crate::global::global_handler() {
            Some(h) => self.send_to(h),
            None => false,
        }
    }

    /// Sends it through a given handler; returns whether it was queued.
    ///
    /// ```no_run
    /// use distlog::{handler::Handler, perf::measure};
    /// let guard = Handler::builder().endpoint("tcp://127.0.0.1:5010").spawn().unwrap();
    /// measure("batch.rows", 1200.0, "rows").send_to(guard.handler());
    /// ```
    pub fn send_to(self, handler: &Handler) -> bool {
        handler.enqueue_record(Kind::Performance, self.into_record(process()))
    }
}

/// Facts about this process, read once: measurements are built on the caller's thread.
fn process() -> &'static ProcessInfo {
    static PROCESS: OnceLock<ProcessInfo> = OnceLock::new();
    PROCESS.get_or_init(ProcessInfo::current)
}

/// A measurement made now, in the current task; send it with
/// [`send`](Measurement::send).
///
/// ```
/// let m = distlog::perf::measure("http.latency", 0.031, "s").tag("route", "/orders");
/// assert!(!m.send()); // no distlog logger installed in this example
/// ```
pub fn measure(name: impl Into<String>, value: f64, unit: impl Into<String>) -> Measurement {
    Measurement::new(name, value, unit)
}

/// Starts a [`Timer`] in the current task.
///
/// ```
/// let t = distlog::perf::timer("resize").tag("px", 1024);
/// let elapsed = t.stop(); // sends the duration in seconds (here: nowhere, no logger)
/// assert!(elapsed.as_secs() < 5);
/// ```
pub fn timer(name: impl Into<String>) -> Timer {
    Timer {
        name: name.into(),
        start: Instant::now(),
        context: crate::context::current_task(),
        tags: Vec::new(),
        handler: None,
        sent: false,
    }
}

/// Measures the time until it is dropped or stopped, then sends it in seconds, in the
/// task that was current when it started.
///
/// ```
/// {
///     let _t = distlog::perf::timer("scope"); // sent when the scope ends
/// }
/// ```
#[derive(Debug)]
#[must_use = "dropping the timer at once measures nothing"]
pub struct Timer {
    name: String,
    start: Instant,
    context: Option<crate::context::Task>,
    tags: Vec<(String, Value)>,
    handler: Option<Handler>,
    sent: bool,
}

impl Timer {
    /// Adds a tag to the measurement.
    ///
    /// ```
    /// let _timer = distlog::perf::timer("render").tag("page", "home");
    /// ```
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Sends through this handler instead of the installed logger's.
    ///
    /// ```
    /// let guard = distlog::handler::Handler::builder().endpoint("tcp://127.0.0.1:5999").flush_timeout(std::time::Duration::from_millis(50)).spawn().unwrap();
    /// let t = distlog::perf::timer("job").handler(guard.handler().clone());
    /// t.stop();
    /// ```
    pub fn handler(mut self, handler: Handler) -> Self {
        self.handler = Some(handler);
        self
    }

    /// The time so far.
    ///
    /// ```
    /// let t = distlog::perf::timer("job");
    /// assert!(t.elapsed() <= t.elapsed());
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Stops the timer, sends the measurement, and returns the duration.
    ///
    /// ```
    /// let d = distlog::perf::timer("job").stop();
    /// assert!(d.as_secs() < 60);
    /// ```
    pub fn stop(mut self) -> Duration {
        self.send_now()
    }

    fn send_now(&mut self) -> Duration {
        let elapsed = self.start.elapsed();
        if std::mem::replace(&mut self.sent, true) {
            return elapsed;
        }
        let context = self
            .context
            .as_ref()
            .map_or(Value::None, |t| t.next_context());
        let mut m = Measurement::with_context(
            std::mem::take(&mut self.name),
            elapsed.as_secs_f64(),
            "s".to_string(),
            context,
        );
        m.tags = std::mem::take(&mut self.tags);
        match &self.handler {
            Some(h) => m.send_to(h),
            None => m.send(),
        };
        elapsed
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.send_now();
    }
}
