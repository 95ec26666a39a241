//! The async runtime under zeromq, chosen by cargo feature and never exposed: distlog
//! runs its sockets on threads of its own, so callers need no runtime.
//!
//! `tokio` (the default) and `async-std` are alternatives; zeromq allows exactly one.

use std::future::Future;
use std::time::Duration;

#[cfg(all(feature = "async-std", feature = "tokio"))]
compile_error!(
    "distlog: enable exactly one runtime feature, `tokio` (default) or `async-std`; \
     with async-std use `default-features = false, features = [\"async-std\", ...]`"
);

#[cfg(not(any(feature = "async-std", feature = "tokio")))]
compile_error!("distlog: enable one runtime feature, `tokio` (default) or `async-std`");

/// Runs a future to completion on the current thread.
#[cfg(feature = "async-std")]
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    async_std::task::block_on(f)
}

/// Runs a future to completion on the current thread.
#[cfg(all(feature = "tokio", not(feature = "async-std")))]
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    // A runtime per distlog thread, on that thread: zeromq spawns its socket writers
    // onto it, and they run whenever the distlog thread waits, which it does
    // asynchronously (handler/wake.rs). A worker thread of its own would be a third
    // thread per producer, and a wake-up per batch handed to it.
    run_on(tokio::runtime::Builder::new_current_thread(), f)
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
fn run_on<F: Future>(mut runtime: tokio::runtime::Builder, f: F) -> F::Output {
    match runtime.enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("distlog: cannot start a tokio runtime: {e}"),
    }
}

/// Waits for a duration.
#[cfg(feature = "async-std")]
pub(crate) async fn sleep(d: Duration) {
    async_std::task::sleep(d).await
}

/// Waits for a duration.
#[cfg(all(feature = "tokio", not(feature = "async-std")))]
pub(crate) async fn sleep(d: Duration) {
    tokio::time::sleep(d).await
}

/// Lets the other tasks of this thread's runtime, and its I/O driver, run once
/// before going on.
#[cfg(feature = "async-std")]
pub(crate) async fn yield_now() {
    async_std::task::yield_now().await
}

/// Lets the other tasks of this thread's runtime, and its I/O driver, run once
/// before going on.
#[cfg(all(feature = "tokio", not(feature = "async-std")))]
pub(crate) async fn yield_now() {
    // tokio's own, not a self-wake: it defers the wake-up until the driver has
    // polled for I/O, so sockets' readiness is seen even by a loop that only yields.
    tokio::task::yield_now().await
}

/// Runs `f` for at most `d`; `None` if the time ran out first.
pub(crate) async fn timeout<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    use futures::future::{select, Either};
    let f = std::pin::pin!(f);
    let t = std::pin::pin!(sleep(d));
    match select(f, t).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}
