//! Hostile input is bounded: huge declared lengths, deep nesting and enormous bodies
//! give a typed error without overflowing the stack or allocating without bound.
//!
//! Each case runs in a child process (this test binary, re-run with one case chosen
//! by an environment variable), so a stack overflow or an abort is seen as a failed
//! case instead of taking the whole test run down. A counting global allocator in the
//! child reports the peak of live heap bytes and the largest single request during
//! the decode, which is exact where RSS is not (an untouched `calloc` costs no RSS).
//!
//! The same harness measures serde-pickle 1.x on the same inputs, for the README's
//! account of why distlog has its own pickle decoder:
//! `cargo test --test hostile_memory -- --ignored --nocapture serde_pickle`.

use distlog::serialize::{decode_with, Limits};
use distlog::topic::Encoding;
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Counts live heap bytes, their peak, and the largest single request.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        // SAFETY: same layout the caller gave us.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: the pointer came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Relaxed);
        note_alloc(new_size);
        // SAFETY: the pointer came from `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note_alloc(size: usize) {
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
    LARGEST.fetch_max(size, Relaxed);
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1 << 20;
const CASE_ENV: &str = "DISTLOG_HOSTILE_CASE";
/// Stack for the decoding thread in the child: what a main thread usually has.
const STACK: usize = 8 * MIB;

/// A 4 GiB declared length (BINUNICODE 0xffffffff) with 16 bytes behind it.
fn declared_4gib() -> Vec<u8> {
    let mut p = b"\x80\x03X\xff\xff\xff\xff".to_vec();
    p.extend_from_slice(&[b'a'; 16]);
    p
}

/// `n` nested lists, as Python writes them (EMPTY_LIST LONG_BINPUT, closed by APPEND).
fn nested_lists(n: u32) -> Vec<u8> {
    let mut p = b"\x80\x03".to_vec();
    for i in 0..n {
        p.push(b']');
        p.push(b'r');
        p.extend_from_slice(&i.to_le_bytes());
    }
    p.extend(std::iter::repeat_n(b'a', n as usize - 1));
    p.push(b'.');
    p
}

fn nested_lists_pickle() -> Vec<u8> {
    nested_lists(200_000)
}

/// Less deep nestings, to find where serde-pickle's recursion gives out.
fn nested_lists_10k() -> Vec<u8> {
    nested_lists(10_000)
}

fn nested_lists_50k() -> Vec<u8> {
    nested_lists(50_000)
}

/// A 64 MiB pickle of `None`s pushed on the stack: many tiny values.
fn pickle_64mib_nones() -> Vec<u8> {
    let mut p = b"\x80\x03".to_vec();
    p.resize(64 * MIB, b'N');
    p.push(b'.');
    p
}

/// A 64 MiB pickle of empty lists: a container per byte.
fn pickle_64mib_lists() -> Vec<u8> {
    let mut p = b"\x80\x03".to_vec();
    p.resize(64 * MIB, b']');
    p.push(b'.');
    p
}

/// One LONG_BINPUT to a memo index near the end of a 64 MiB body.
fn pickle_64mib_memo_index() -> Vec<u8> {
    let mut p = b"\x80\x03N".to_vec();
    p.push(b'r');
    p.extend_from_slice(&(60 * MIB as u32).to_le_bytes());
    p.resize(64 * MIB, b'N');
    p.push(b'.');
    p
}

/// A dict holding one 64 MiB string.
fn pickle_64mib_string() -> Vec<u8> {
    let n = 64 * MIB;
    let mut p = b"\x80\x03}X\x01\x00\x00\x00sX".to_vec();
    p.extend_from_slice(&(n as u32).to_le_bytes());
    p.resize(p.len() + n, b'x');
    p.extend_from_slice(b"s.");
    p
}

/// `set(list)` of one 500,000-item list, 2,000 times: a 514 KB body that asked for
/// 8 GB of copies before copies counted against `max_values`.
fn pickle_set_copies() -> Vec<u8> {
    let mut p = b"\x80\x03c__builtin__\nset\nq\x00]q\x01(".to_vec();
    p.extend(std::iter::repeat_n(b'N', 500_000));
    p.push(b'e');
    for _ in 0..2_000 {
        p.extend_from_slice(b"h\x00h\x01\x85R0");
    }
    p.extend_from_slice(b"0}.");
    p
}

/// The largest record the default limits let through: a list of a million `None`s.
fn pickle_1m_values() -> Vec<u8> {
    let mut p = b"\x80\x03}X\x01\x00\x00\x00a](".to_vec();
    p.extend(std::iter::repeat_n(b'N', 1_000_000));
    p.extend_from_slice(b"es.");
    p
}

/// The same in JSON: a million zeros.
fn json_1m_values() -> Vec<u8> {
    let mut j = b"{\"a\": [0".to_vec();
    for _ in 1..1_000_000 {
        j.extend_from_slice(b",0");
    }
    j.extend_from_slice(b"]}");
    j
}

/// A 64 MiB JSON list of zeros: `[0, 0, ...]`.
fn json_64mib_zeros() -> Vec<u8> {
    let mut j = b"{\"a\": [0".to_vec();
    while j.len() < 64 * MIB {
        j.extend_from_slice(b",0");
    }
    j.extend_from_slice(b"]}");
    j
}

/// 200,000 nested JSON arrays.
fn json_nested() -> Vec<u8> {
    let mut j = vec![b'['; 200_000];
    j.extend(std::iter::repeat_n(b']', 200_000));
    j
}

/// A 64 MiB JSON string value.
fn json_64mib_string() -> Vec<u8> {
    let mut j = b"{\"s\": \"".to_vec();
    j.resize(64 * MIB, b'x');
    j.extend_from_slice(b"\"}");
    j
}

type Input = fn() -> Vec<u8>;

const CASES: &[(&str, Encoding, Input)] = &[
    ("pickle-declared-4gib", Encoding::Pickle, declared_4gib),
    ("pickle-nested-10k", Encoding::Pickle, nested_lists_10k),
    ("pickle-nested-50k", Encoding::Pickle, nested_lists_50k),
    ("pickle-nested-200k", Encoding::Pickle, nested_lists_pickle),
    ("pickle-64mib-nones", Encoding::Pickle, pickle_64mib_nones),
    ("pickle-64mib-lists", Encoding::Pickle, pickle_64mib_lists),
    (
        "pickle-64mib-memo-index",
        Encoding::Pickle,
        pickle_64mib_memo_index,
    ),
    ("pickle-64mib-string", Encoding::Pickle, pickle_64mib_string),
    ("pickle-set-copies", Encoding::Pickle, pickle_set_copies),
    ("pickle-1m-values", Encoding::Pickle, pickle_1m_values),
    ("json-1m-values", Encoding::Json, json_1m_values),
    ("json-nested-200k", Encoding::Json, json_nested),
    ("json-64mib-zeros", Encoding::Json, json_64mib_zeros),
    ("json-64mib-string", Encoding::Json, json_64mib_string),
];

/// What a child reports: the outcome, peak heap during the decode beyond what was live
/// before it (the input), and the largest single allocation request.
#[derive(Debug)]
struct Report {
    outcome: String,
    peak: usize,
    largest: usize,
}

/// Runs one case in a child process; `Err` says how the child died.
fn run_child(test: &str, case: &str) -> Result<Report, String> {
    let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .arg("--include-ignored")
        .env(CASE_ENV, case)
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints `test name ... ` before the test's own output, on the same line.
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("HOSTILE-RESULT ").map(|(_, r)| r));
    match line {
        Some(line) => {
            let mut parts = line.splitn(3, ' ');
            let peak = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let largest = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let outcome = parts.next().unwrap_or("").to_string();
            Ok(Report {
                outcome,
                peak,
                largest,
            })
        }
        None => {
            use std::os::unix::process::ExitStatusExt;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = if stderr.contains("has overflowed its stack") {
                "stack overflow".to_string()
            } else if let Some(sig) = out.status.signal() {
                format!("killed by signal {sig}")
            } else {
                format!("exit {:?}", out.status.code())
            };
            Err(format!(
                "{why}; stderr tail: {}",
                stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
            ))
        }
    }
}

/// In the child: builds the input, then decodes it on a thread with an ordinary stack
/// and prints the counters.
fn child_run(decode: impl FnOnce(&[u8]) -> String + Send + 'static, input: Input) {
    let input = input();
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    LARGEST.store(0, Relaxed);
    let outcome = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || decode(&input))
        .expect("spawn decoder thread")
        .join()
        .unwrap_or_else(|_| "panicked".to_string());
    println!(
        "HOSTILE-RESULT {} {} {}",
        PEAK.load(Relaxed).saturating_sub(base),
        LARGEST.load(Relaxed),
        outcome
    );
}

fn find(case: &str) -> (Encoding, Input) {
    CASES
        .iter()
        .find(|(name, _, _)| *name == case)
        .map(|(_, e, i)| (*e, *i))
        .expect("known case")
}

#[test]
fn child_distlog() {
    let Ok(case) = std::env::var(CASE_ENV) else {
        return; // only does something when `distlog_decoders_are_bounded` runs it
    };
    let (encoding, input) = find(&case);
    child_run(
        move |body| match decode_with(body, encoding, &Limits::default()) {
            Ok(r) => format!("ok: {} keys", r.len()),
            Err(e) => format!("error: {:?}", e.kind),
        },
        input,
    );
}

#[test]
fn distlog_decoders_are_bounded() {
    let mut failures = Vec::new();
    for (case, _, _) in CASES {
        let report = run_child("child_distlog", case);
        println!("distlog {case}: {report:?}");
        match report {
            Ok(r) => {
                let accepted = case.ends_with("-string") || case.ends_with("-1m-values");
                if r.outcome.starts_with("error:") == accepted {
                    failures.push(format!("{case}: unexpected outcome {}", r.outcome));
                }
                // Bounded: a 64 MiB string is copied once; a flood of pushes stops at
                // 4 per value of max_values (2^22 nodes, 164 MiB with the stack).
                if r.peak > 200 * MIB {
                    failures.push(format!("{case}: peak heap {} MiB", r.peak / MIB));
                }
                // No allocation is sized by a declared length or index before the
                // bytes are there; the largest is the pickle node vector at its bound.
                if r.largest > 128 * MIB {
                    failures.push(format!("{case}: allocated {} MiB at once", r.largest / MIB));
                }
            }
            Err(why) => failures.push(format!("{case}: {why}")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
#[ignore = "measures serde-pickle for the README; run by name"]
fn child_serde_pickle() {
    let Ok(case) = std::env::var(CASE_ENV) else {
        return;
    };
    let (_, input) = find(&case);
    child_run(
        |body| match serde_pickle::value_from_slice(body, serde_pickle::DeOptions::new()) {
            Ok(_) => "ok".to_string(),
            Err(e) => format!("error: {e}"),
        },
        input,
    );
}

#[test]
#[ignore = "measures serde-pickle for the README; run by name"]
fn serde_pickle_findings() {
    for (case, encoding, _) in CASES {
        if *encoding == Encoding::Pickle {
            let report = run_child("child_serde_pickle", case);
            println!("serde-pickle {case}: {report:?}");
        }
    }
}
