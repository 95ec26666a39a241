//! Issue 15 names the queue between callers and the sender as the suspect for the
//! caller's tail (tracing issue 3446: a crossbeam channel at p99 26 µs against an SPSC
//! ring's 0.79 µs). These sections time the hand-over alone, one push every 10 µs
//! from one thread, in three shapes, against a timer with nothing between its reads:
//!
//! - `channel_polled`: distlog's shape. A bounded crossbeam channel, and a consumer
//!   that drains it and then sleeps 500 µs, as the sender thread does while records
//!   keep coming (`POLL_EVERY` in `handler/worker.rs`).
//! - `channel_blocking`: tracing-appender's shape. The same channel, and a consumer
//!   that blocks on it for the first item of a batch, so a push into an empty channel
//!   wakes it.
//! - `ring_polled`: a per-thread SPSC ring (`rtrb`), polled like distlog's channel.
//!
//! The items are pointer-sized, as distlog's queue slots are (the event travels
//! boxed), and allocate nothing: what is timed is the queue alone. The consumer spends about 1 µs on each item, about what the sender spends
//! encoding and framing one record, so that it touches the queue at the pace it
//! does in the pipeline.

use std::time::{Duration, Instant};

/// The capacity of every queue: distlog's default.
const CAPACITY: usize = 65_536;
/// What a polling consumer sleeps when it found nothing.
const POLL_EVERY: Duration = Duration::from_micros(500);
/// The consumer's work per item.
const WORK: Duration = Duration::from_micros(1);

/// The shapes, as `--section` names: the parent alternates them.
pub(crate) const SHAPES: [(&str, &str); 4] = [
    ("queue_none", "no queue: the timer's two reads alone"),
    (
        "queue_channel_polled",
        "crossbeam channel, polled (distlog)",
    ),
    (
        "queue_channel_blocking",
        "crossbeam channel, blocking consumer (tracing-appender)",
    ),
    ("queue_ring_polled", "SPSC ring (rtrb), polled"),
];

/// Runs one shape's section, `n` pushes paced at one every 10 µs, and prints their
/// percentiles; `false` if `section` is not one of [`SHAPES`].
pub(crate) fn run_section(section: &str, n: u64) -> bool {
    let ns = match section {
        "queue_none" => paced(n, |_| {}),
        "queue_channel_polled" => channel(n, false),
        "queue_channel_blocking" => channel(n, true),
        "queue_ring_polled" => ring(n),
        _ => return false,
    };
    super::percentiles(ns);
    true
}

/// Times `push(i)` for `i` in `0..n`, one call every 10 µs.
fn paced(n: u64, mut push: impl FnMut(u64)) -> Vec<u64> {
    let mut ns = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_micros(10 * i);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let t = Instant::now();
        push(std::hint::black_box(i));
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns
}

fn work(item: u64) {
    std::hint::black_box(item);
    let until = Instant::now() + WORK;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

fn channel(n: u64, blocking: bool) -> Vec<u64> {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    // Every slot once, before the timing, as for the ring: see `ring`.
    for i in 0..CAPACITY as u64 {
        let _ = tx.try_send(i);
    }
    while rx.try_recv().is_ok() {}
    let consumer = std::thread::spawn(move || {
        let mut taken = 0;
        while taken < n {
            let first = if blocking {
                match rx.recv() {
                    Ok(item) => Some(item),
                    Err(_) => break,
                }
            } else {
                rx.try_recv().ok()
            };
            let Some(first) = first else {
                std::thread::sleep(POLL_EVERY);
                continue;
            };
            work(first);
            taken += 1;
            while let Ok(item) = rx.try_recv() {
                work(item);
                taken += 1;
            }
        }
    });
    let ns = paced(n, |i| {
        if tx.try_send(i).is_err() {
            eprintln!("bench_pipeline: the channel was full");
        }
    });
    drop(tx);
    let _ = consumer.join();
    ns
}

fn ring(n: u64) -> Vec<u64> {
    let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(CAPACITY);
    // The ring's slots are allocated, not written, so the first pass through them
    // would fault in a fresh page every 512 pushes: enough to set the p99.9 alone.
    // distlog's channel writes every slot when it is made.
    for i in 0..CAPACITY as u64 {
        let _ = tx.push(i);
    }
    while rx.pop().is_ok() {}
    let consumer = std::thread::spawn(move || {
        let mut taken = 0;
        while taken < n {
            let mut any = false;
            while let Ok(item) = rx.pop() {
                work(item);
                taken += 1;
                any = true;
            }
            if !any {
                if rx.is_abandoned() {
                    break;
                }
                std::thread::sleep(POLL_EVERY);
            }
        }
    });
    let ns = paced(n, |i| {
        if tx.push(i).is_err() {
            eprintln!("bench_pipeline: the ring was full");
        }
    });
    drop(tx);
    let _ = consumer.join();
    ns
}

/// The parent's rows: each shape run three times, alternated so that all see the same
/// load, and the median of the three runs' median, p99 and p99.9.
pub(crate) fn rows(row: &mut impl FnMut(&str, String)) {
    let mut runs: Vec<Vec<[f64; 3]>> = vec![Vec::new(); SHAPES.len()];
    for _ in 0..3 {
        for (shape, (section, _)) in SHAPES.iter().enumerate() {
            let out = super::child_output(&["--section", section, "--records", "100000"]);
            let at = |name| super::metric(&out, name).unwrap_or(f64::NAN);
            runs[shape].push([at("median_ns"), at("p99_ns"), at("p999_ns")]);
        }
    }
    let medians: Vec<[f64; 3]> = runs
        .iter()
        .map(|r| [0, 1, 2].map(|q| super::median(r.iter().map(|p| p[q]).collect())))
        .collect();
    for ((_, name), m) in SHAPES.iter().zip(&medians) {
        row(
            &format!("push paced, {name}: median / p99 / p99.9 ns"),
            format!("{:.0} / {:.0} / {:.0}", m[0], m[1], m[2]),
        );
    }
    let (polled, ring) = (medians[1], medians[3]);
    row(
        "  SPSC ring / distlog's channel, p99.9",
        format!("{:.2}", ring[2] / polled[2]),
    );
}
