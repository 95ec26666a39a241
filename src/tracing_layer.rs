//! A `tracing` layer: `tracing` events become distlog records, spans become tasks.
//!
//! - An event becomes a log record: its target is the record's `name`, its `message`
//!   field the `message` (and `msg`), its other fields extra keys with their types
//!   kept (integers, floats, bools, strings; anything else as its `Debug` text). File,
//!   line and module path come from the callsite. Events bridged from `log` by
//!   `tracing-log` get their `log.target`, `log.file`, `log.line` and
//!   `log.module_path` back.
//! - Levels map as in Python, with `TRACE` at levelno 5, levelname `TRACE`.
//! - Events and spans from distlog's own sender thread, and from the crates under it
//!   (`zeromq`, `async_io`, `polling`, `tokio`, …), are ignored: sending them would
//!   make every send produce more records.
//! - A span becomes a task: its fields (and later `span.record(..)` calls) become the
//!   task's data; a span inside another span becomes its subtask, `<parent id>/<n>`; a
//!   span with no parent span becomes a subtask of the current distlog task if there is
//!   one, else a top-level task. Creating the span logs its name at the span's level
//!   (as entering a `task` logs its message); closing it logs the success message if
//!   [`crate::context::success`] was called inside it. While a span is entered its task
//!   is current on the thread, so `log` records and explicit [`crate::context::to`]
//!   calls inside it join the same tree: `#[instrument]`ed code gets the same ids and
//!   context keys as explicit tasks.
//! - Opt-in with [`DistlogLayer::with_span_timings`]: closing a span sends a
//!   performance message named after the span, with its lifetime (creation to close)
//!   in seconds and the tag `target`.
//!
//! ```no_run
//! use distlog::{handler::Handler, tracing_layer::DistlogLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let guard = Handler::builder().endpoint("tcp://127.0.0.1:5010").spawn().unwrap();
//! let layer = DistlogLayer::new(guard.handler().clone()).with_span_timings(true);
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("checkout", order = 42);
//!     let _entered = span.enter();
//!     tracing::info!(items = 3, "basket priced");
//! });
//! ```

use crate::context::{self, Task};
use crate::handler::Handler;
use crate::perf::Measurement;
use crate::record::{Event, Key};
use crate::value::Value;
use std::borrow::Cow;
use std::fmt;
use std::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The layer; see the module docs.
///
/// ```
/// use distlog::{handler::Handler, tracing_layer::DistlogLayer};
/// use tracing_subscriber::layer::SubscriberExt;
/// let guard = Handler::builder().endpoint("tcp://127.0.0.1:5999").flush_timeout(std::time::Duration::from_millis(50)).spawn().unwrap();
/// let layer = DistlogLayer::new(guard.handler().clone());
/// let _subscriber = tracing_subscriber::registry().with(layer);
/// ```
#[derive(Debug, Clone)]
pub struct DistlogLayer {
    handler: Handler,
    timings: bool,
}

impl DistlogLayer {
    /// A layer sending to `handler`, without span timings.
    ///
    /// ```no_run
    /// use tracing_subscriber::layer::SubscriberExt;
    /// let guard = distlog::handler::Handler::builder()
    ///     .endpoint("tcp://127.0.0.1:5010")
    ///     .spawn()
    ///     .unwrap();
    /// let layer = distlog::tracing_layer::DistlogLayer::new(guard.handler().clone());
    /// tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
    ///     .unwrap();
    /// ```
    pub fn new(handler: Handler) -> Self {
        DistlogLayer {
            handler,
            timings: false,
        }
    }

    /// Whether closing a span sends its duration as a performance message.
    ///
    /// ```
    /// let guard = distlog::handler::Handler::builder().endpoint("tcp://127.0.0.1:5999").flush_timeout(std::time::Duration::from_millis(50)).spawn().unwrap();
    /// let _layer = distlog::tracing_layer::DistlogLayer::new(guard.handler().clone())
    ///     .with_span_timings(true);
    /// ```
    pub fn with_span_timings(mut self, on: bool) -> Self {
        self.timings = on;
        self
    }
}

/// Stored in each span's extensions.
struct SpanTask {
    task: Task,
    level: tracing::Level,
    start: Instant,
}

/// The `log` level for a `tracing` level; TRACE stays TRACE (levelno 5).
///
/// ```
/// use distlog::tracing_layer::log_level;
/// assert_eq!(log_level(tracing::Level::TRACE), log::Level::Trace);
/// assert_eq!(distlog::level::of(log_level(tracing::Level::TRACE)), (5, "TRACE"));
/// assert_eq!(log_level(tracing::Level::WARN), log::Level::Warn);
/// ```
pub fn log_level(level: tracing::Level) -> log::Level {
    match level {
        tracing::Level::ERROR => log::Level::Error,
        tracing::Level::WARN => log::Level::Warn,
        tracing::Level::INFO => log::Level::Info,
        tracing::Level::DEBUG => log::Level::Debug,
        tracing::Level::TRACE => log::Level::Trace,
    }
}

/// Collects fields as typed values; `message` apart.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    pairs: Vec<(String, Value)>,
    log_target: Option<String>,
    log_file: Option<String>,
    log_module: Option<String>,
    log_line: Option<u32>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            "message" => {
                self.message = Some(match value {
                    Value::Str(s) => s,
                    other => other.to_string(),
                })
            }
            "log.target" => self.log_target = value.as_str().map(str::to_string),
            "log.file" => self.log_file = value.as_str().map(str::to_string),
            "log.module_path" => self.log_module = value.as_str().map(str::to_string),
            "log.line" => self.log_line = value.as_i64().and_then(|l| u32::try_from(l).ok()),
            name => self.pairs.push((name.to_string(), value)),
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::Float(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::Int(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.put(field, Value::from(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::Str(value.to_string()));
    }
    fn record_bytes(&mut self, field: &Field, value: &[u8]) {
        self.put(field, Value::Bytes(value.to_vec()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::Str(format!("{value:?}")));
    }
}

impl DistlogLayer {
    /// The parent of a new span's task. A contextual span belongs to the current task
    /// of the thread, which is the innermost entered span's unless an explicit task was
    /// entered inside it; an explicitly parented span to its parent's task.
    fn parent_task<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: &Context<'_, S>) -> Option<Task>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let from_spans = || {
            ctx.span(id)?
                .scope()
                .skip(1)
                .find_map(|s| s.extensions().get::<SpanTask>().map(|t| t.task.clone()))
        };
        if attrs.is_contextual() {
            context::current_task().or_else(from_spans)
        } else {
            from_spans()
        }
    }
}

impl<S> Layer<S> for DistlogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let meta = attrs.metadata();
        if crate::loop_guard::is_internal(meta.target()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let parent = self.parent_task(attrs, id, &ctx);
        let msg = fields
            .message
            .take()
            .unwrap_or_else(|| meta.name().to_string());
        let spec = match &parent {
            Some(p) => p.subtask(msg, fields.pairs),
            None => context::task(msg, fields.pairs),
        };
        let task = spec
            .target(Cow::Borrowed(meta.target()))
            .handler(self.handler.clone())
            .open();
        context::emit(
            &task,
            log_level(*meta.level()),
            task.msg().to_string(),
            None,
        );
        span.extensions_mut().insert(SpanTask {
            task,
            level: *meta.level(),
            start: Instant::now(),
        });
    }

    fn on_record(&self, id: &Id, values: &SpanRecord<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        let extensions = span.extensions();
        if let Some(t) = extensions.get::<SpanTask>() {
            for (k, v) in fields.pairs {
                t.task.bind(k, v);
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions().get::<SpanTask>() {
                context::push(t.task.clone());
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions().get::<SpanTask>() {
                context::pop(&t.task);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(t) = span.extensions_mut().remove::<SpanTask>() else {
            return;
        };
        context::log_success(&t.task);
        if self.timings {
            Measurement::with_context(
                span.name().to_string(),
                t.start.elapsed().as_secs_f64(),
                "s".to_string(),
                t.task.next_context(),
            )
            .tag("target", t.task.target())
            .tag("level", t.level.as_str())
            .send_to(&self.handler);
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if crate::loop_guard::is_internal(meta.target()) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields
            .log_target
            .as_deref()
            .is_some_and(crate::loop_guard::is_internal)
        {
            return;
        }
        let from_spans = || {
            ctx.event_span(event)?
                .scope()
                .find_map(|s| s.extensions().get::<SpanTask>().map(|t| t.task.clone()))
        };
        // Same rule as for spans: contextual events belong to the thread's current task.
        let task = if event.is_contextual() {
            context::current_task().or_else(from_spans)
        } else {
            from_spans()
        };
        let context = task.map_or(Value::None, |t| t.next_context());
        let target: Key = match fields.log_target.take() {
            Some(t) => Cow::Owned(t),
            None => Cow::Borrowed(meta.target()),
        };
        let mut out = Event::new(
            log_level(*meta.level()),
            target,
            fields.message.take().unwrap_or_default(),
        );
        out.file = match fields.log_file.take() {
            Some(f) => Some(Cow::Owned(f)),
            None => meta.file().map(Cow::Borrowed),
        };
        out.line = fields.log_line.or(meta.line());
        out.module_path = match fields.log_module.take() {
            Some(m) => Some(Cow::Owned(m)),
            None => meta.module_path().map(Cow::Borrowed),
        };
        out.context = context;
        out.extra = fields
            .pairs
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k), v))
            .collect();
        self.handler.enqueue(out);
    }
}
