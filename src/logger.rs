//! distlog as the `log` crate's global logger.

use crate::filter::{TargetFilter, TargetFilterError};
use crate::global::set_global_handler;
use crate::handler::{self, BuildError, Guard, Handler, Overflow, Spent};
use crate::loop_guard::{is_internal_target, on_internal_thread};
use crate::record::{Event, PackedEvent};
use crate::topic::{Encoding, System};
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// Configures distlog as the global `log` logger. See [`crate::init`] for the one-call
/// form.
///
/// ```no_run
/// use distlog::topic::{Encoding, System};
/// let _guard = distlog::builder()
///     .endpoint("tcp://127.0.0.1:5010")
///     .system(System::Staging)
///     .encoding(Encoding::Pickle)
///     .filter("info,shop::db=debug")
///     .install()
///     .expect("distlog configured");
/// log::info!(target: "shop", order_id = 42; "order paid");
/// // dropping the guard delivers what is queued, within the flush timeout
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogBuilder {
    handler: handler::Builder,
    filter: Option<String>,
}

/// Why distlog could not be installed. The error it wraps, if any, is its `source()`.
///
/// ```
/// use distlog::InitError;
/// let err = distlog::builder().filter("shop=loud").install().unwrap_err();
/// assert!(matches!(err, InitError::Filter(_)));
/// assert!(err.to_string().contains("shop=loud"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// The handler configuration was refused.
    Build(BuildError),
    /// The level filter (given, or from `DISTLOG_LOG`/`RUST_LOG`) did not parse.
    Filter(TargetFilterError),
    /// Another logger is already installed.
    AlreadyInstalled,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Build(e) => write!(f, "{e}"),
            InitError::Filter(e) => write!(f, "{e}"),
            InitError::AlreadyInstalled => write!(f, "a global logger is already installed"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Build(e) => Some(e),
            InitError::Filter(e) => Some(e),
            InitError::AlreadyInstalled => None,
        }
    }
}

impl LogBuilder {
    /// Adds a collector endpoint (`tcp://host:port` or `ipc://path`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.handler = self.handler.endpoint(endpoint);
        self
    }
    /// The SYSTEM letter of the topic.
    pub fn system(mut self, system: System) -> Self {
        self.handler = self.handler.system(system);
        self
    }
    /// JSON or pickle bodies.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.handler = self.handler.encoding(encoding);
        self
    }
    /// Queue capacity, in records.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.handler = self.handler.queue_capacity(capacity);
        self
    }
    /// What a log call does when the queue is full.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.handler = self.handler.overflow(overflow);
        self
    }
    /// How long flush and shutdown may take.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.handler = self.handler.flush_timeout(timeout);
        self
    }
    /// How long the sender waits on a stuck collector.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.handler = self.handler.send_timeout(timeout);
        self
    }
    /// ZMTP heartbeats on every link: a PING each `interval`, and a connection from
    /// which nothing comes back within `timeout` is dropped and made again (see
    /// [`handler::Builder::heartbeat`]).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let _guard = distlog::builder()
    ///     .endpoint("tcp://collector.example:5010")
    ///     .heartbeat(Duration::from_secs(1), Duration::from_secs(3))
    ///     .install()
    ///     .expect("distlog installed");
    /// ```
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.handler = self.handler.heartbeat(interval, timeout);
        self
    }
    /// Acknowledged delivery: records are kept until the collector (`distlogd
    /// --ack-bind`) says its sinks hold them, and resent or failed over otherwise
    /// (see [`handler::Builder::acknowledged`]).
    ///
    /// ```no_run
    /// let _guard = distlog::builder()
    ///     .endpoint("tcp://collector.example:5012")
    ///     .acknowledged(true)
    ///     .install()
    ///     .expect("distlog installed");
    /// ```
    pub fn acknowledged(mut self, on: bool) -> Self {
        self.handler = self.handler.acknowledged(on);
        self
    }
    /// In acknowledged mode, how long a link may leave records unacknowledged before
    /// they go to another endpoint (see [`handler::Builder::ack_timeout`]).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let _guard = distlog::builder()
    ///     .endpoint("tcp://collector.example:5012")
    ///     .acknowledged(true)
    ///     .ack_timeout(Duration::from_millis(500))
    ///     .install()
    ///     .expect("distlog installed");
    /// ```
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.handler = self.handler.ack_timeout(timeout);
        self
    }
    /// CURVE on every link: the collector's public key and this sender's secret key
    /// or key pair (see [`handler::Builder::curve`]).
    ///
    /// ```no_run
    /// use distlog::curve;
    /// let server = curve::read_public_key("collector.pub".as_ref()).expect("server key");
    /// let me = curve::read_secret_key("shop.key".as_ref()).expect("client key");
    /// let _guard = distlog::builder()
    ///     .endpoint("tcp://collector.example:5010")
    ///     .curve(server, me)
    ///     .install()
    ///     .expect("distlog installed");
    /// ```
    pub fn curve(
        mut self,
        server: crate::curve::CurvePublicKey,
        client: impl Into<crate::curve::CurveKeyPair>,
    ) -> Self {
        self.handler = self.handler.curve(server, client);
        self
    }
    /// Level filters in `RUST_LOG` syntax. Without this, `DISTLOG_LOG` is read, then
    /// `RUST_LOG`, then INFO and up is the default.
    pub fn filter(mut self, spec: impl Into<String>) -> Self {
        self.filter = Some(spec.into());
        self
    }

    /// Builds the logger without installing it, for use inside another logger.
    pub fn build(self) -> Result<(Logger, Guard), InitError> {
        let filter = match &self.filter {
            Some(spec) => spec.parse().map_err(InitError::Filter)?,
            None => TargetFilter::from_env().map_err(InitError::Filter)?,
        };
        let guard = self.handler.spawn().map_err(InitError::Build)?;
        guard.handler().prefill_spent(PREFILLED);
        let logger = Logger {
            handler: guard.handler().clone(),
            filter,
        };
        Ok((logger, guard))
    }

    /// Installs distlog as the global logger and returns the guard that flushes on
    /// drop. Keep the guard alive as long as the program logs.
    pub fn install(self) -> Result<Guard, InitError> {
        let (logger, guard) = self.build()?;
        let max = logger.filter.max_level();
        let handler = logger.handler.clone();
        log::set_boxed_logger(Box::new(logger)).map_err(|_| InitError::AlreadyInstalled)?;
        set_global_handler(handler);
        log::set_max_level(max);
        Ok(guard)
    }
}

/// How many log calls find an event to write over from the start, before the sender
/// hands its first ones back. Paced at 100,000 calls a second, 330-3,000 calls of
/// 100,000 allocated without them, most in the first 5,000 (`bench_pipeline
/// --section caller_tail`); 512 take about 290 KiB.
const PREFILLED: usize = 512;

/// A `log::Log` that queues every enabled record on a distlog [`Handler`]; from
/// [`LogBuilder::build`], to use inside another logger.
///
/// ```
/// use log::Log;
/// let (logger, _guard) = distlog::builder()
///     .endpoint("tcp://127.0.0.1:5999")
///     .filter("warn")
///     .build()
///     .unwrap();
/// let metadata = log::Metadata::builder().level(log::Level::Info).target("shop").build();
/// assert!(!logger.enabled(&metadata));
/// ```
#[derive(Debug)]
pub struct Logger {
    handler: Handler,
    filter: TargetFilter,
}

impl Logger {
    /// The handler behind this logger.
    pub fn handler(&self) -> &Handler {
        &self.handler
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.filter.enabled(metadata.level(), metadata.target())
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) || on_internal_thread() {
            return;
        }
        if is_internal_target(record.target()) {
            return;
        }
        let event = capture(record, self.handler.spent_buffers());
        self.handler.enqueue_packed(event);
    }

    fn flush(&self) {
        self.handler.flush();
    }
}

/// Captures a `log` record: the message is formatted here (Rust has no lazy args to
/// send); the target is interned, so it costs no allocation.
pub fn event_from(record: &log::Record<'_>) -> Event {
    capture(record, None).into_event()
}

/// [`event_from`], packed: written over a sent event when one is at hand, whose
/// buffer is then reused, and the box is the one that goes on the queue.
fn capture(record: &log::Record<'_>, spent: Option<Spent>) -> Spent {
    // A fresh event reads the clock twice (in `Event::new`, then here): it is the
    // path that allocates, which costs far more.
    let mut packed = spent.unwrap_or_else(|| {
        Box::new(PackedEvent::new(Event::new(
            record.level(),
            "",
            String::new(),
        )))
    });
    write_head(packed.reuse(), record);
    packed.message(*record.args());
    let _ = record.key_values().visit(&mut Pack(&mut packed));
    packed.finish();
    packed
}

/// Writes all of `record` but its message and key-values over `event`, field by
/// field. A sent event is written over in place: building a new head and moving it
/// in cost a copy of it and a drop of the old one, a sixth of a call's instructions
/// (callgrind). What the sender leaves in a sent event needs no drop: it takes its
/// buffers back from the message and key-values, and lets the context and the
/// exception text go.
fn write_head(event: &mut Event, record: &log::Record<'_>) {
    (event.levelno, event.levelname) = crate::level::of(record.level());
    event.target = crate::intern::intern(record.target());
    event.file = record
        .file_static()
        .map(Cow::Borrowed)
        .or_else(|| record.file().map(|f| Cow::Owned(f.to_string())));
    event.line = record.line();
    event.module_path = record
        .module_path_static()
        .map(Cow::Borrowed)
        .or_else(|| record.module_path().map(|m| Cow::Owned(m.to_string())));
    event.time = std::time::SystemTime::now();
    event.thread = crate::record::ThreadInfo::current();
    // As `current_context`, but outside a task (the common case) with nothing to drop.
    match crate::context::current_task() {
        Some(task) => event.context = task.next_context(),
        None if !matches!(event.context, crate::Value::None) => event.context = crate::Value::None,
        None => {}
    }
    if event.exc_text.is_some() {
        event.exc_text = None;
    }
    event.message.clear();
    event.extra.clear();
}

/// Packs key-values. A `log` key-value keeps its type: bools, integers, floats and
/// strings map to the Python types; anything else is sent as its `Display` text.
struct Pack<'a>(&'a mut PackedEvent);

impl<'kvs> log::kv::VisitSource<'kvs> for Pack<'_> {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.key(key.as_str());
        // One dispatch on the value's type instead of trying each conversion in turn.
        if value.visit(&mut *self).is_err() {
            // Every value needs one: a visit that failed before packing any.
            self.0.null();
        }
        Ok(())
    }
}

impl<'v> log::kv::VisitValue<'v> for Pack<'_> {
    fn visit_any(&mut self, value: log::kv::Value<'_>) -> Result<(), log::kv::Error> {
        self.0.display(&value);
        Ok(())
    }
    fn visit_null(&mut self) -> Result<(), log::kv::Error> {
        self.0.null();
        Ok(())
    }
    fn visit_u64(&mut self, v: u64) -> Result<(), log::kv::Error> {
        self.0.u64(v);
        Ok(())
    }
    fn visit_i64(&mut self, v: i64) -> Result<(), log::kv::Error> {
        self.0.i64(v);
        Ok(())
    }
    fn visit_u128(&mut self, v: u128) -> Result<(), log::kv::Error> {
        self.0.u128(v);
        Ok(())
    }
    fn visit_i128(&mut self, v: i128) -> Result<(), log::kv::Error> {
        self.0.i128(v);
        Ok(())
    }
    fn visit_f64(&mut self, v: f64) -> Result<(), log::kv::Error> {
        self.0.f64(v);
        Ok(())
    }
    fn visit_bool(&mut self, v: bool) -> Result<(), log::kv::Error> {
        self.0.bool(v);
        Ok(())
    }
    fn visit_str(&mut self, v: &str) -> Result<(), log::kv::Error> {
        self.0.str(v);
        Ok(())
    }
    fn visit_char(&mut self, v: char) -> Result<(), log::kv::Error> {
        self.0.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_event_keeps_nothing_of_the_last_one() {
        let process = crate::record::ProcessInfo::current();
        let fields = |e: &Event| {
            let mut out = Vec::new();
            crate::record::Fields::for_each(&e.fields(&process), &mut |k, v| {
                if !["created", "msecs", "relativeCreated", "asctime"].contains(&k.as_str()) {
                    out.push(format!("{}={v:?}", k.as_str()));
                }
            });
            out
        };
        let more = [
            ("n", log::kv::Value::from(7i64)),
            ("user", log::kv::Value::from("alice")),
            ("grade", log::kv::Value::from('b')),
        ];
        let fewer = [("n", log::kv::Value::from("seven"))];
        // More key-values than the spent event had, then fewer.
        for kvs in [&more[..], &fewer[..]] {
            let old_kvs = [
                ("stale", log::kv::Value::from(1i64)),
                ("n", log::kv::Value::from("old")),
                ("more", log::kv::Value::from(2.5f64)),
            ];
            let old_args = format_args!("old message, longer than the new one {}", 1);
            let old = log::Record::builder()
                .args(old_args)
                .level(log::Level::Error)
                .target("old.target")
                .line(Some(99))
                .key_values(&old_kvs)
                .build();
            // Logged in a task, so the spent event holds a context the new one must not.
            let task = crate::context::task("old", ()).enter();
            let mut spent = capture(&old, None);
            drop(task);
            assert_ne!(spent.head.context, crate::Value::None);
            spent.head.exc_text = Some("old traceback".into());
            let args = format_args!("new {}", 5);
            let record = log::Record::builder()
                .args(args)
                .level(log::Level::Info)
                .target("shop")
                .key_values(&kvs)
                .build();
            let reused = capture(&record, Some(spent)).into_event();
            let fresh = capture(&record, None).into_event();
            assert_eq!(fields(&reused), fields(&fresh));
            assert_eq!(reused.message, "new 5");
            assert_eq!(reused.exc_text, None);
            assert_eq!(reused.extra.len(), kvs.len());
            assert_eq!(reused.context, crate::Value::None);
        }
    }

    #[test]
    fn a_reused_event_takes_the_context_of_the_task_it_is_logged_in() {
        let args = format_args!("in a task");
        let record = log::Record::builder().args(args).target("shop").build();
        let spent = capture(&record, None);
        let task = crate::context::task("t", ()).enter();
        let reused = capture(&record, Some(spent)).into_event();
        let key = reused.context.get("key").and_then(|k| k.as_str());
        assert_eq!(key, Some(format!("0@{}", task.id()).as_str()));
    }

    #[test]
    fn the_first_calls_find_events_to_write_over() {
        let built = LogBuilder::default()
            .endpoint("tcp://127.0.0.1:1")
            .queue_capacity(100)
            .filter("info")
            .build();
        let Ok((logger, _guard)) = built else {
            panic!("the logger did not build");
        };
        // Nothing was logged, so the sender has handed nothing back: these are the
        // blank ones, as many as the queue holds when that is fewer than PREFILLED.
        let mut waiting = 0;
        while logger.handler().spent_buffers().is_some() {
            waiting += 1;
        }
        assert_eq!(waiting, 100);
    }

    #[test]
    fn a_bad_filter_is_the_source_of_the_init_error() {
        let err = LogBuilder::default()
            .endpoint("tcp://127.0.0.1:1")
            .filter("shop=loud")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("\"shop=loud\""), "{err}");
        let source = std::error::Error::source(&err).map(|e| e.to_string());
        assert_eq!(source, Some(err.to_string()));
    }

    #[test]
    fn kv_values_keep_their_types() {
        let kvs = [
            ("n", log::kv::Value::from(7i64)),
            ("ok", true.into()),
            ("f", 1.5f64.into()),
            ("s", "x".into()),
            ("big", u64::MAX.into()),
        ];
        let args = format_args!("paid {}", 3);
        let record = log::Record::builder()
            .args(args)
            .level(log::Level::Info)
            .target("shop")
            .file_static(Some("src/shop.rs"))
            .line(Some(9))
            .module_path_static(Some("shop"))
            .key_values(&kvs)
            .build();
        let e = event_from(&record);
        assert_eq!(e.message, "paid 3");
        assert_eq!(e.file.as_deref(), Some("src/shop.rs"));
        let vals: Vec<String> = e.extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            vals,
            [
                "n=7",
                "ok=True",
                "f=1.5",
                "s='x'",
                "big=18446744073709551615"
            ]
        );
    }
}
