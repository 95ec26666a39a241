//! Task context across threads and `.await` points; no network needed.

use distlog::context::{current_context, current_task, task, InTask};
use distlog::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn key() -> String {
    current_context()
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn split(key: &str) -> (u64, String) {
    let (n, id) = key.split_once('@').expect("a context key");
    (n.parse().expect("a counter"), id.to_string())
}

#[test]
fn one_task_logging_from_many_threads_counts_right() {
    const THREADS: usize = 8;
    const EACH: usize = 500;
    let job = task("parallel job", [("kind", "threads")]).enter();
    let id = job.id().to_string();
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let t = job.task().clone();
            std::thread::spawn(move || {
                let _attached = t.attach();
                (0..EACH).map(|_| key()).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counters = BTreeSet::new();
    for h in handles {
        for k in h.join().expect("thread") {
            let (n, kid) = split(&k);
            assert_eq!(kid, id);
            assert!(counters.insert(n), "counter {n} given twice");
        }
    }
    // No logger in this test binary: the enter record went nowhere and counted nothing.
    assert_eq!(counters, (0..(THREADS * EACH) as u64).collect());
    assert_eq!(job.counter(), (THREADS * EACH) as u64);
}

/// Records keys around several `.await`s, sleeping so the runtime may move the task to
/// another worker thread.
async fn steps(n: usize) -> Vec<(String, std::thread::ThreadId)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push((key(), std::thread::current().id()));
        sleep(Duration::from_millis(2)).await;
    }
    seen
}

#[cfg(feature = "async-std")]
async fn sleep(d: Duration) {
    async_std::task::sleep(d).await
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
async fn sleep(d: Duration) {
    tokio::time::sleep(d).await
}

type Seen = Vec<(String, std::thread::ThreadId)>;
type Fut = std::pin::Pin<Box<dyn std::future::Future<Output = Seen> + Send>>;
/// A future running in its task, boxed like any other.
type Job = Fut;

/// Spawns the futures on the enabled runtime's multi-threaded executor, outside any
/// task on this thread.
#[cfg(feature = "async-std")]
fn run_all(futs: Vec<Job>) -> Vec<Seen> {
    async_std::task::block_on(async {
        let handles: Vec<_> = futs.into_iter().map(async_std::task::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await);
        }
        // A plain task on the same executor sees no leftover context.
        let stray = async_std::task::spawn(async { current_task().is_none() }).await;
        assert!(stray);
        out
    })
}

#[cfg(all(feature = "tokio", not(feature = "async-std")))]
fn run_all(futs: Vec<Job>) -> Vec<Seen> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task"));
        }
        let stray = tokio::spawn(async { current_task().is_none() }).await;
        assert!(stray.expect("task"));
        out
    })
}

#[test]
fn futures_keep_their_task_across_await_on_a_multi_threaded_runtime() {
    const FUTURES: usize = 8;
    const STEPS: usize = 20;
    let outer = task("outer", ()).enter();
    let futs: Vec<_> = (0..FUTURES)
        .map(|i| {
            let fut: Fut = Box::pin(steps(STEPS));
            // Subtasks of the outer task, opened here, run on the runtime's threads.
            let job: Job =
                Box::pin(fut.in_task(distlog::context::to(format!("step {i}"), [("i", i as i64)])));
            job
        })
        .collect();
    drop(outer);
    assert!(current_task().is_none());
    let results = run_all(futs);
    let mut ids = BTreeSet::new();
    let mut threads = BTreeSet::new();
    for seen in results {
        let first_id = split(&seen[0].0).1;
        for (n, (k, thread)) in seen.iter().enumerate() {
            assert_eq!(split(k), (n as u64, first_id.clone()), "{seen:?}");
            threads.insert(format!("{thread:?}"));
        }
        ids.insert(first_id);
    }
    assert_eq!(ids.len(), FUTURES, "each future has its own subtask");
    assert!(ids.iter().all(|id| id.matches('/').count() == 1));
    eprintln!("futures ran on {} threads", threads.len());
}
