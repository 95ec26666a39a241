//! Acknowledged delivery, the producer's half (README, "Acknowledged delivery"),
//! against a real libzmq ROUTER (pyzmq, `crates/testkit/py/ack_router.py`) that
//! speaks protocol version 1: headers, cumulative acknowledgements, resends after the
//! ack timeout, failover from a stuck endpoint, the window counted against the queue
//! capacity. distlogd's own acknowledged input has its tests in crates/distlogd.

use distlog::handler::{Handler, Overflow};
use distlog::record::Event;
use distlog_testkit as testkit;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

fn event(i: usize) -> Event {
    Event::new(log::Level::Info, "acked", format!("record {i}"))
}

/// A ROUTER on a free port in `mode` (see the script), ready to take connections.
/// Its output is read as it comes, so that it never waits on a full pipe.
fn router(mode: &str, silence_s: &str) -> (String, Router) {
    let port = testkit::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut child = testkit::spawn_python("ack_router.py", &[&endpoint, mode, silence_s]);
    let stdout = child.stdout.take().expect("the router's stdout");
    let lines = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    testkit::wait_listening(port);
    (endpoint, Router { child, lines })
}

struct Router {
    child: Child,
    lines: std::thread::JoinHandle<Vec<String>>,
}

/// What the router printed: its records, and how many acknowledgements it sent.
struct Seen {
    records: Vec<serde_json::Value>,
    acks: u64,
}

fn seen(mut router: Router) -> Seen {
    let status = router.child.wait().expect("wait for the router");
    assert!(status.success(), "the router failed: {status:?}");
    let lines = router.lines.join().expect("the router's output");
    let mut records = Vec::new();
    let mut acks = None;
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert!(
            v.get("bad").is_none(),
            "a malformed header reached the router: {v}"
        );
        if let Some(n) = v.get("acks") {
            acks = n.as_u64();
        } else if v.get("seq").is_some() {
            records.push(v);
        }
    }
    Seen {
        records,
        acks: acks.expect("the router's final line"),
    }
}

fn seqs(records: &[serde_json::Value]) -> Vec<u64> {
    records.iter().filter_map(|r| r["seq"].as_u64()).collect()
}

#[test]
fn records_carry_a_header_and_flush_waits_for_their_acknowledgement() {
    testkit::require_python!();
    let (endpoint, child) = router("all", "1.5");
    let n = 2000;
    let guard = Handler::builder()
        .endpoint(&endpoint)
        .acknowledged(true)
        .spawn()
        .expect("handler");
    for i in 0..n {
        assert!(guard.handler().enqueue(event(i)));
    }
    let report = guard.handler().flush();
    drop(guard);
    let seen = seen(child);
    assert_eq!(
        (report.sent, report.dropped, report.unsent),
        (n as u64, 0, 0)
    );
    assert_eq!(
        seqs(&seen.records),
        (0..n as u64).collect::<Vec<_>>(),
        "each seq once, in order"
    );
    let producers: BTreeSet<&str> = seen
        .records
        .iter()
        .filter_map(|r| r["producer"].as_str())
        .collect();
    assert_eq!(producers.len(), 1, "one producer id: {producers:?}");
    assert_eq!(
        producers.iter().next().map(|p| p.len()),
        Some(32),
        "128 bits"
    );
    for r in &seen.records {
        assert_eq!(r["flags"], 1, "a single endpoint: {r}");
        assert!(
            r["base"].as_u64() <= r["seq"].as_u64(),
            "base above its own seq: {r}"
        );
        assert_eq!(r["topic"], "PLJ");
    }
    let i = seen.records.iter().position(|r| r["msg"] == "record 1234");
    assert_eq!(
        i,
        Some(1234),
        "the record behind the header is the plain one"
    );
    assert!(
        seen.acks > 0 && seen.acks < n as u64 / 10,
        "acknowledgements are batched: {} for {n} records",
        seen.acks
    );
}

#[test]
fn records_never_acknowledged_are_resent_after_the_ack_timeout() {
    testkit::require_python!();
    // The first connection is never acknowledged: a collector that is stuck.
    let (endpoint, child) = router("none-first", "2");
    let n = 500;
    let guard = Handler::builder()
        .endpoint(&endpoint)
        .acknowledged(true)
        .ack_timeout(Duration::from_millis(300))
        .flush_timeout(Duration::from_secs(10))
        .spawn()
        .expect("handler");
    for i in 0..n {
        assert!(guard.handler().enqueue(event(i)));
    }
    let report = guard.handler().flush();
    assert_eq!(
        (report.sent, report.dropped, report.unsent),
        (n as u64, 0, 0)
    );
    assert!(
        guard.handler().stats().connects >= 2,
        "the stuck connection was replaced"
    );
    drop(guard);
    let seen = seen(child);
    let mut by_peer: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in &seen.records {
        by_peer
            .entry(r["peer"].as_str().expect("peer"))
            .or_default()
            .push(r["seq"].as_u64().expect("seq"));
    }
    assert!(by_peer.len() >= 2, "a second connection: {by_peer:?}");
    let all: BTreeSet<u64> = seqs(&seen.records).into_iter().collect();
    assert_eq!(all, (0..n as u64).collect(), "every seq arrived");
    assert!(
        seen.records.len() > n,
        "what the first connection held came again, with the same seqs"
    );
}

#[test]
fn a_stuck_endpoint_fails_over_to_one_that_acknowledges() {
    testkit::require_python!();
    let (stuck, stuck_child) = router("none", "2");
    let (good, good_child) = router("all", "2");
    let n = 1000;
    let guard = Handler::builder()
        .endpoint(&stuck)
        .endpoint(&good)
        .acknowledged(true)
        .ack_timeout(Duration::from_millis(300))
        .flush_timeout(Duration::from_secs(10))
        .spawn()
        .expect("handler");
    for i in 0..n {
        assert!(guard.handler().enqueue(event(i)));
    }
    let report = guard.handler().flush();
    assert_eq!(
        (report.sent, report.dropped, report.unsent),
        (n as u64, 0, 0)
    );
    drop(guard);
    let (stuck, good) = (seen(stuck_child), seen(good_child));
    assert!(
        !stuck.records.is_empty(),
        "the stuck endpoint got its share first"
    );
    assert_eq!(
        seqs(&good.records).into_iter().collect::<BTreeSet<_>>(),
        (0..n as u64).collect(),
        "the endpoint that acknowledges ends up with every record"
    );
    assert!(
        stuck.records.iter().all(|r| r["flags"] == 0),
        "two endpoints: no flag"
    );
}

#[test]
fn unacknowledged_records_count_against_the_capacity_and_are_dropped_at_shutdown() {
    testkit::require_python!();
    let (endpoint, child) = router("none", "1.5");
    let n = 1000;
    let guard = Handler::builder()
        .endpoint(&endpoint)
        .acknowledged(true)
        .queue_capacity(100)
        .overflow(Overflow::DropNewest)
        .flush_timeout(Duration::from_millis(500))
        .spawn()
        .expect("handler");
    let queued = (0..n)
        .filter(|&i| guard.handler().enqueue(event(i)))
        .count();
    std::thread::sleep(Duration::from_millis(300));
    let report = guard.shutdown();
    let seen = seen(child);
    // The drop report is a record too: once a link was up it went out, was never
    // acknowledged either, and counts as dropped like the others.
    let reports = seen
        .records
        .iter()
        .filter(|r| {
            r["msg"]
                .as_str()
                .is_some_and(|m| m.starts_with("distlog dropped"))
        })
        .filter_map(|r| r["seq"].as_u64())
        .collect::<BTreeSet<_>>()
        .len() as u64;
    assert_eq!(report.sent, 0, "nothing was acknowledged");
    assert_eq!(
        report.dropped,
        n as u64 + reports,
        "every record counted as dropped: {report:?}"
    );
    assert!(
        queued <= 200,
        "the queue took {queued} of {n}: more than its capacity allows"
    );
    let distinct: BTreeSet<u64> = seqs(&seen.records).into_iter().collect();
    assert!(
        !distinct.is_empty() && distinct.len() <= 50,
        "at most half the capacity may wait for acknowledgement: {} seqs went out",
        distinct.len()
    );
}

/// An acknowledged handler pointed at a plain PULL (libzmq's) cannot connect: DEALER
/// and PULL do not fit. Nothing is delivered, every record counts as dropped, and the
/// handler says why, naming the endpoint and what to point it at.
#[test]
fn an_acknowledged_handler_against_a_plain_pull_says_why_nothing_arrives() {
    testkit::require_python!();
    let endpoint = format!("tcp://127.0.0.1:{}", testkit::free_port());
    let pull = testkit::PyCollector::start(&endpoint, 1, 2);
    let guard = Handler::builder()
        .endpoint(&endpoint)
        .acknowledged(true)
        .flush_timeout(Duration::from_millis(800))
        .spawn()
        .expect("handler");
    assert!(guard.handler().enqueue(event(0)));
    let handler = guard.handler().clone();
    let report = guard.shutdown();
    assert_eq!((report.sent, report.dropped), (0, 1));
    assert!(handler.stats().failed_connects > 0);
    let why = handler.last_connect_error().expect("a reason");
    assert!(
        why.starts_with(&format!("{endpoint}: ")) && why.contains("--ack-bind"),
        "{why}"
    );
    drop(pull);
}
