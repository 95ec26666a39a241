//! The caller-side cost of one `log::info!` with distlog installed, and end-to-end
//! records per second from `log::info!` to a zeromq PULL socket.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zeromq::{Socket, SocketRecv};

#[path = "../tests/common/block_on.rs"]
mod block_on;
use block_on::block_on;

/// A PULL socket on its own thread that counts what it receives.
fn sink(endpoint: String) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        block_on(async move {
            let mut pull = zeromq::PullSocket::new();
            if pull.bind(&endpoint).await.is_err() {
                return;
            }
            let _ = ready_tx.send(());
            while pull.recv().await.is_ok() {
                c.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(10));
    count
}

fn bench(c: &mut Criterion) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(5799);
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let received = sink(endpoint.clone());
    let guard = distlog::builder()
        .endpoint(&endpoint)
        .queue_capacity(1 << 20)
        .overflow(distlog::handler::Overflow::Block(Duration::from_secs(5)))
        .filter("info")
        .install()
        .expect("install distlog");
    let handler = guard.handler().clone();
    let wait_until = |n: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while received.load(Ordering::Relaxed) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    // Let the connection come up before measuring.
    log::info!(target: "bench", "warm up");
    wait_until(1);

    let mut g = c.benchmark_group("log::info! caller cost");
    g.bench_function("3 key-values, collector up", |b| {
        let mut i = 0u64;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                i += 1;
                log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid");
            }
            let t = start.elapsed();
            // Drain between samples so the queue never fills and only the caller is timed.
            handler.flush_within(Duration::from_secs(30));
            t
        })
    });
    g.finish();

    let mut g = c.benchmark_group("end to end");
    let n = 20_000u64;
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("log::info! to PULL socket", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before = received.load(Ordering::Relaxed);
                let start = Instant::now();
                for i in 0..n {
                    log::info!(target: "bench", order_id = i; "record {i} of {n}");
                }
                wait_until(before + n);
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
    drop(guard);
}

criterion_group!(benches, bench);
criterion_main!(benches);
