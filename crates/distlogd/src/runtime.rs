//! The async runtime under the collector's sockets, chosen by cargo feature: `tokio`
//! (the default) or `async-std`, the same one the library and zeromq use.

use std::future::Future;
use std::time::Duration;

#[cfg(all(feature = "async-std", feature = "tokio"))]
compile_error!(
    "distlogd: enable exactly one runtime feature, `tokio` (default) or `async-std`; \
     with async-std use `--no-default-features --features async-std`"
);

#[cfg(not(any(feature = "async-std", feature = "tokio")))]
compile_error!("distlogd: enable one runtime feature, `tokio` (default) or `async-std`");

/// Runs a future on the current thread, with a worker thread for zeromq's tasks
/// (`distlog tail` waits on its terminal while they run).
#[cfg(feature = "async-std")]
pub(crate) fn block_on<F: Future>(f: F) -> std::io::Result<F::Output> {
    Ok(async_std::task::block_on(f))
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
pub(crate) fn block_on<F: Future>(f: F) -> std::io::Result<F::Output> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.worker_threads(1).thread_name("distlogd-rt");
    Ok(runtime.enable_all().build()?.block_on(f))
}

/// [`block_on`] for the receive loop, which only waits on sockets: with tokio the
/// thread drives its own I/O instead of being woken by a worker for every readiness
/// event (BENCHMARKS.md measured the difference).
#[cfg(feature = "async-std")]
pub(crate) fn block_on_here<F: Future>(f: F) -> std::io::Result<F::Output> {
    Ok(async_std::task::block_on(f))
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
pub(crate) fn block_on_here<F: Future>(f: F) -> std::io::Result<F::Output> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f))
}

/// Waits for a duration.
pub(crate) async fn sleep(d: Duration) {
    #[cfg(feature = "async-std")]
    async_std::task::sleep(d).await;
    #[cfg(all(feature = "tokio", not(feature = "async-std")))]
    tokio::time::sleep(d).await;
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
