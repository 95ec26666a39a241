//! Running futures in a task, so that its context survives `.await`.

use super::outcome::{Fallible, Outcome, Plain};
use super::stack::{emit, log_failed, log_success};
use super::task::{NewTask, Task};
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

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
