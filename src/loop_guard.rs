//! Loop protection: records that distlog's own sending produces (on its sender
//! thread, or from the crates it sends with) must not be sent again.

use std::cell::Cell;

thread_local! {
    /// Set on distlog's own threads, whose log calls (and zeromq's) must not loop back.
    static INSIDE_DISTLOG: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one of distlog's own.
pub(crate) fn mark_internal_thread() {
    INSIDE_DISTLOG.with(|c| c.set(true));
}

/// Whether the current thread is one of distlog's own.
#[inline]
pub(crate) fn on_internal_thread() -> bool {
    INSIDE_DISTLOG.with(Cell::get)
}

/// Crates whose records would feed back into distlog's own sending.
const INTERNAL_TARGETS: [&str; 7] = [
    "zeromq",
    "async_io",
    "async_std",
    "async_global_executor",
    "polling",
    "tokio",
    "mio",
];

/// Whether `target` is one of the crates distlog sends with.
#[inline]
pub(crate) fn is_internal_target(target: &str) -> bool {
    INTERNAL_TARGETS.iter().any(|t| target.starts_with(t))
}

/// Whether an event from `target` on this thread must not be sent: the `tracing`
/// layer needs the same loop protection as the `log` logger, since `polling` and
/// bridged `log` records reach it from distlog's own sender thread.
#[cfg(feature = "tracing")]
pub(crate) fn is_internal(target: &str) -> bool {
    on_internal_thread() || is_internal_target(target)
}
