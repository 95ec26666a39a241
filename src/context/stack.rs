//! The tasks current on a thread: entering and leaving them (the guards), and the
//! records that entering and leaving log.

use super::exc_text::{describe, describe_error, panic_text};
use super::task::{lock, task, NewTask, Task, TaskData};
use crate::handler::Handler;
use crate::record::Event;
use crate::value::Value;
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// The tasks current on this thread, innermost last.
    static STACK: RefCell<Vec<Task>> = const { RefCell::new(Vec::new()) };
}

impl Task {
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
}

impl NewTask {
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

/// An entered task. Dropping it ends the task: logs the success message if one was set,
/// or `FAILED <msg>` if the thread is panicking; [`TaskGuard::fail`] ends it by an error.
/// It derefs to the [`Task`] handle. Not `Send`: a task is current per thread (use
/// [`Task::attach`] on other threads, [`InTask`](super::InTask) for futures).
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

    /// Ends the task by an error: logs `FAILED <msg>` at ERROR with the error's Display
    /// (and Debug form, when it says more) in `exc_text`. The guard's drop then logs
    /// nothing more.
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
