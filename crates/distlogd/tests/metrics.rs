//! `distlogd --metrics-bind`: `/metrics` scraped over a raw TCP connection during a
//! run and after it, parsed as the Prometheus text format, and held against what was
//! sent; other paths and methods, and hostile clients that never finish a request.

mod collector_support;

use collector_support::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, Socket, SocketSend, ZmqMessage};

/// Far more than any test needs; a failure shows up as this timeout, not a hang.
const WAIT: Duration = Duration::from_secs(8);

/// The `ADDR` of `distlogd: metrics on http://ADDR/metrics`.
fn metrics_addr(d: &Daemon) -> String {
    let err = d.wait_stderr("metrics on http://");
    err.lines()
        .find_map(|l| l.split_once("metrics on http://"))
        .and_then(|(_, rest)| rest.trim().strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no metrics line in {err}"))
        .to_string()
}

/// One HTTP request written as is; the status code, the headers and the body.
fn request(addr: &str, raw: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to /metrics");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    s.write_all(raw.as_bytes()).expect("write request");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read response");
    let text = String::from_utf8(out).expect("utf-8 response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_string(), body.to_string())
}

/// `GET /metrics`, parsed: `name{labels}` to value, `#` lines skipped.
fn scrape(addr: &str) -> HashMap<String, f64> {
    let (status, head, body) = request(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    parse(&body)
}

/// The text format's samples: `name{labels} value` or `name value` per line.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // Label values may hold spaces: the value is after the last one.
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            out.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    out
}

fn get(m: &HashMap<String, f64>, series: &str) -> u64 {
    match m.get(series) {
        Some(v) => *v as u64,
        None => panic!("no {series} in {m:#?}"),
    }
}

/// Scrapes until `done` holds for a scrape; panics with the last one after `WAIT`.
fn scrape_until(addr: &str, done: impl Fn(&HashMap<String, f64>) -> bool) -> HashMap<String, f64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = scrape(addr);
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "never got there: {m:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("distlogd-metrics-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const RECEIVED: &str = "distlogd_records_received_total";
const ACCEPTED: &str = "distlogd_records_accepted_total";

fn rejected(reason: &str) -> String {
    format!("distlogd_records_rejected_total{{reason=\"{reason}\"}}")
}

#[test]
fn counters_match_what_was_sent_during_the_run_and_after() {
    let dir = temp_dir("counts");
    let path = dir.join("out.jsonl");
    let file = path.display().to_string();
    let mut d = Daemon::start(&[
        "--output",
        "none",
        "--file",
        &file,
        "--max-body-bytes",
        "4096",
        "--stats-interval",
        "0",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&d);
    let written = format!("distlogd_sink_records_written_total{{sink=\"file:{file}\"}}");
    let failed = format!("distlogd_sink_records_failed_total{{sink=\"file:{file}\"}}");
    let in_flight = format!("distlogd_sink_records_in_flight{{sink=\"file:{file}\"}}");

    let before = scrape(&addr);
    assert_eq!(get(&before, RECEIVED), 0);
    assert_eq!(
        get(&before, &rejected("bad_topic")),
        0,
        "known reasons show from the start"
    );
    assert_eq!(get(&before, &written), 0);
    assert!(
        !before.keys().any(|k| k.contains("producers_connected")),
        "no acknowledged input, no acknowledged-input metrics"
    );

    const N: u64 = 600;
    let mut push = Pusher::connect(&d.pull);
    let send_good = |push: &mut Pusher, range: std::ops::Range<u64>| {
        for i in range {
            let r = simple("shop.orders", &format!("order {i}"));
            if i % 3 == 0 {
                push.send(&[b"PLP", &pickle_body(&r)]);
            } else {
                push.send(&[b"PLJ", &json_body(&r)]);
            }
        }
    };
    send_good(&mut push, 0..N / 2);
    // During the run: live, not only at the end.
    let half = scrape_until(&addr, |m| {
        get(m, RECEIVED) == N / 2 && get(m, &written) == N / 2
    });
    assert_eq!(get(&half, ACCEPTED), N / 2);

    let body = json_body(&simple("shop", "bad"));
    push.send(&[b"XYZ", &body]); // bad_topic
    push.send(&[b"PLJ", b"{\"name\": "]); // bad_body
    push.send(&[b"PLJ", b"{\"name\": "]); // bad_body
    push.send(&[b"PLJ"]); // frame_count
    push.send(&[b"PLJ", &body, b"extra"]); // frame_count
    push.send(&[b"PLJ", &vec![b' '; 5000]]); // oversize
    const BAD: u64 = 6;
    send_good(&mut push, N / 2..N);

    let after = scrape_until(&addr, |m| {
        get(m, RECEIVED) == N + BAD && get(m, &written) == N && get(m, &in_flight) == 0
    });
    assert_eq!(get(&after, ACCEPTED), N);
    assert_eq!(get(&after, &rejected("bad_topic")), 1);
    assert_eq!(get(&after, &rejected("bad_body")), 2);
    assert_eq!(get(&after, &rejected("frame_count")), 2);
    assert_eq!(get(&after, &rejected("oversize")), 1);
    assert_eq!(get(&after, &rejected("forbidden_pickle")), 0);
    let rejected_sum: u64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("distlogd_records_rejected_total{"))
        .map(|(_, v)| *v as u64)
        .sum();
    assert_eq!(rejected_sum, BAD);
    assert_eq!(get(&after, &failed), 0);
    assert_eq!(get(&after, "distlogd_nats_publish_seconds_count"), 0);

    // The stats line says the same.
    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "received"), N + BAD, "{err}");
    assert_eq!(final_stat(&err, "rejected.bad_body"), 2, "{err}");
    let lines = std::fs::read_to_string(&path)
        .expect("file")
        .lines()
        .count();
    assert_eq!(lines as u64, N);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn other_paths_are_404_and_other_methods_405() {
    let d = Daemon::start(&[
        "--output",
        "none",
        "--stats-interval",
        "0",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&d);
    let (status, _, _) = request(&addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 404);
    let (status, _, _) = request(&addr, "GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 404);
    let (status, head, _) = request(&addr, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 405, "{head}");
    let (status, _, _) = request(&addr, "nonsense\r\n\r\n");
    assert_eq!(status, 400);
    // HTTP/1.0, no headers, a query string: still the metrics.
    let (status, head, body) = request(&addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    assert!(parse(&body).contains_key(RECEIVED));
}

#[test]
fn hostile_clients_do_not_stop_a_concurrent_scrape() {
    let d = Daemon::start(&[
        "--output",
        "none",
        "--stats-interval",
        "0",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&d);
    // One connects and says nothing at all.
    let silent = TcpStream::connect(&addr).expect("connect");
    // Another starts a request and never ends its header.
    let endless = {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(&addr).expect("connect");
            s.set_write_timeout(Some(WAIT)).expect("timeout");
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\n");
            let line = format!("X-Padding: {}\r\n", "a".repeat(1000));
            let started = Instant::now();
            // Until the server gives up on it; bounded in any case.
            while started.elapsed() < WAIT {
                if s.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
            s.set_read_timeout(Some(WAIT)).expect("timeout");
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out);
            String::from_utf8_lossy(&out).into_owned()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..3 {
        let started = Instant::now();
        let m = scrape(&addr);
        assert!(m.contains_key(RECEIVED));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a scrape took {:?} next to hostile clients",
            started.elapsed()
        );
    }
    let answer = endless.join().expect("endless client");
    // The server stopped reading at its bound: it said so, or reset the connection
    // while the client was still writing.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    drop(silent);
}

const PRODUCER: [u8; 16] = *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";

fn header(seq: u64, base: u64) -> Vec<u8> {
    let mut h = b"DLA\x01".to_vec();
    h.extend_from_slice(&PRODUCER);
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&base.to_be_bytes());
    // A single endpoint: seqs it settled and never sent count as gaps.
    h.push(1);
    h
}

#[test]
fn acknowledged_input_counts_acks_duplicates_gaps_and_producers() {
    let d = Daemon::start_acked(
        &[
            "--output",
            "none",
            "--stats-interval",
            "0",
            "--metrics-bind",
            "127.0.0.1:0",
        ],
        false,
    );
    let addr = metrics_addr(&d);
    let rt = Rt::new();
    let mut socket = rt.block_on(async {
        let mut s = DealerSocket::new();
        s.connect(d.ack.as_deref().expect("ack endpoint"))
            .await
            .expect("connect DEALER");
        s
    });
    let body = json_body(&simple("acked", "m"));
    let mut send = |frames: [&[u8]; 3]| {
        let mut message = ZmqMessage::from(frames[0].to_vec());
        for f in &frames[1..] {
            message.push_back(f.to_vec().into());
        }
        rt.block_on(async { socket.send(message).await })
            .expect("send");
    };
    for seq in 0..5 {
        send([&header(seq, 0), b"TLJ", &body]);
    }
    send([&header(2, 0), b"TLJ", &body]); // a duplicate
                                          // 5 and 6 never come; the base says everything below 7 is settled.
    send([&header(7, 7), b"TLJ", &body]);
    let m = scrape_until(&addr, |m| {
        get(m, "distlogd_records_acknowledged_total") == 7
            && get(m, "distlogd_gaps_total") == 2
            && get(m, "distlogd_producers_connected") == 1
    });
    assert_eq!(get(&m, "distlogd_duplicates_total"), 1);
    assert!(get(&m, "distlogd_acks_sent_total") >= 1);
    assert_eq!(get(&m, "distlogd_commit_failures_total"), 0);
    assert_eq!(get(&m, RECEIVED), 7);
    assert_eq!(get(&m, ACCEPTED), 6);
    drop(socket);
    scrape_until(&addr, |m| get(m, "distlogd_producers_connected") == 0);
}

/// The nats sink against a real `nats-server -js`: each PubAck's latency is in the
/// histogram, and the sink's own series count what JetStream stored.
#[cfg(feature = "nats")]
#[test]
fn nats_sink_publish_latency_and_counts_match_what_jetstream_stored() {
    distlog_testkit::require_nats_server!();
    let nats = distlog_testkit::NatsServer::start();
    let url = nats.url();
    let mut d = Daemon::start(&[
        "--output",
        "none",
        "--nats",
        &url,
        "--nats-stream",
        "METRICS",
        "--stats-interval",
        "0",
        "--metrics-bind",
        "127.0.0.1:0",
    ]);
    let addr = metrics_addr(&d);
    let written = "distlogd_sink_records_written_total{sink=\"nats:METRICS\"}";
    let failed = "distlogd_sink_records_failed_total{sink=\"nats:METRICS\"}";
    let in_flight = "distlogd_sink_records_in_flight{sink=\"nats:METRICS\"}";
    const COUNT: &str = "distlogd_nats_publish_seconds_count";
    let before = scrape(&addr);
    assert_eq!(
        get(&before, written),
        0,
        "the nats sink shows from the start"
    );
    assert_eq!(get(&before, COUNT), 0);

    const N: u64 = 400;
    let mut push = Pusher::connect(&d.pull);
    for i in 0..N {
        push.send(&[b"PLJ", &json_body(&simple("shop", &format!("order {i}")))]);
    }
    // Long enough for JetStream to create the stream and store them all.
    let deadline = Instant::now() + LONG;
    let m = loop {
        let m = scrape(&addr);
        if get(&m, written) == N && get(&m, in_flight) == 0 {
            break m;
        }
        assert!(Instant::now() < deadline, "never stored: {m:#?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(get(&m, failed), 0);
    assert_eq!(get(&m, COUNT), N, "one latency per PubAck");
    assert_eq!(
        get(&m, "distlogd_nats_publish_seconds_bucket{le=\"+Inf\"}"),
        N
    );
    let sum = m["distlogd_nats_publish_seconds_sum"];
    assert!(sum > 0.0 && sum < N as f64 * 5.0, "{sum} s for {N} PubAcks");
    // The buckets are cumulative, and the PubAcks of a local server are quick.
    let mut buckets: Vec<(f64, u64)> = m
        .iter()
        .filter_map(|(k, v)| {
            let le = k
                .strip_prefix("distlogd_nats_publish_seconds_bucket{le=\"")?
                .strip_suffix("\"}")?;
            Some((le.parse().ok()?, *v as u64))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert!(
        buckets.iter().any(|&(le, n)| le <= 1.0 && n > 0),
        "no PubAck within a second: {buckets:?}"
    );
    // The stats line counts the same.
    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "nats.published"), N, "{err}");
    assert_eq!(final_stat(&err, "nats.failed"), 0, "{err}");
}
