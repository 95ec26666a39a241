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

mod exc_text;
mod future;
mod handoff;
mod outcome;
mod stack;
mod task;
mod traceparent;

pub use future::{InTask, TaskFuture};
pub use handoff::{check_task_id, foreign_task_id, import_task, TaskIdError, MAX_ID_LEN};
pub use stack::{bind, current_context, current_task, success, to, Attached, TaskGuard};
#[cfg(feature = "tracing")]
pub(crate) use stack::{emit, log_success, pop, push};
pub use task::{task, NewTask, Task, TaskData, DEFAULT_TARGET};
pub use traceparent::{span_id_of, trace_id_of, Traceparent, TraceparentError};

#[cfg(test)]
mod tests;
