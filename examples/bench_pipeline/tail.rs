//! What the slowest paced calls met. The paced `log::info!` again, with the calling
//! thread's page faults, preemptions and allocations read around each call (outside
//! the timed part); then, of the calls at or above the p99.9, how many took a page
//! fault, how many allocated, how many were preempted, and how many fell in the
//! first 5 % of the run (start-up), and the p99 of those first calls.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The system allocator, counting the calling thread's allocations while `COUNTING`
/// is set: only `caller_tail` sets it, so other sections pay one relaxed load.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if COUNTING.load(Ordering::Relaxed) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's guarantees are System's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What happened to the calling thread during one call.
#[derive(Clone, Copy)]
struct Events {
    faults: i64,
    preemptions: i64,
    allocations: u64,
}

fn events() -> Events {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut u);
        u
    };
    Events {
        faults: usage.ru_minflt,
        preemptions: usage.ru_nivcsw,
        allocations: ALLOCATIONS.try_with(Cell::get).unwrap_or(0),
    }
}

/// `n` paced calls into the collector at `endpoint`; prints the p99.9 and what the
/// calls at or above it met.
pub(crate) fn caller_tail(endpoint: &str, n: u64) {
    let guard = super::install_with(endpoint, super::QUEUE, |b| b);
    log::info!(target: "bench", "warm up");
    guard.handler().flush_within(Duration::from_secs(30));
    COUNTING.store(true, Ordering::Relaxed);
    let mut calls = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_micros(10 * i);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        let before = events();
        let t = Instant::now();
        log::info!(target: "bench", order_id = i, amount = 9.5, user = "alice"; "order {i} paid");
        let took = t.elapsed().as_nanos() as u64;
        let after = events();
        let met = Events {
            faults: after.faults - before.faults,
            preemptions: after.preemptions - before.preemptions,
            allocations: after.allocations - before.allocations,
        };
        calls.push((took, met));
    }
    COUNTING.store(false, Ordering::Relaxed);
    drop(guard);
    let mut ns: Vec<u64> = calls.iter().map(|c| c.0).collect();
    ns.sort_unstable();
    let Some(&p999) = ns.get((ns.len() as f64 * 0.999) as usize) else {
        return;
    };
    let early = calls.len() / 20;
    let slow: Vec<(usize, Events)> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.0 >= p999)
        .map(|(i, c)| (i, c.1))
        .collect();
    let how_many = |f: &dyn Fn(&(usize, Events)) -> bool| slow.iter().filter(|c| f(c)).count();
    println!("p999_ns {p999}");
    println!("slow_calls {}", slow.len());
    println!("slow_faulted {}", how_many(&|c| c.1.faults > 0));
    println!("slow_allocated {}", how_many(&|c| c.1.allocations > 0));
    println!("slow_preempted {}", how_many(&|c| c.1.preemptions > 0));
    println!("slow_early {}", how_many(&|c| c.0 < early));
    let mut first: Vec<u64> = calls[..early].iter().map(|c| c.0).collect();
    first.sort_unstable();
    if let Some(p99) = first.get(first.len() * 99 / 100) {
        println!("early_p99_ns {p99}");
    }
    println!(
        "allocating_calls {}",
        calls.iter().filter(|c| c.1.allocations > 0).count()
    );
}

/// The parent's part: one `caller_tail` child against the collector at `endpoint`.
pub(crate) fn child(endpoint: &str) -> String {
    super::child_output(&[
        "--section",
        "caller_tail",
        "--endpoint",
        endpoint,
        "--records",
        "100000",
    ])
}

/// The row of a [`child`]'s output.
pub(crate) fn row(out: &str, row: &mut impl FnMut(&str, String)) {
    let at = |name| super::metric(out, name).unwrap_or(f64::NAN);
    row(
        "  its calls at or above the p99.9: how many / faulted / allocated / preempted / in the first 5 %",
        format!(
            "{:.0} / {:.0} / {:.0} / {:.0} / {:.0} (p99.9 {:.0} ns; {:.0} calls allocated; p99 of the first 5 % {:.0} ns)",
            at("slow_calls"),
            at("slow_faulted"),
            at("slow_allocated"),
            at("slow_preempted"),
            at("slow_early"),
            at("p999_ns"),
            at("allocating_calls"),
            at("early_p99_ns"),
        ),
    );
}
