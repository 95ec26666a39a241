//! The `nats` sink against a real `nats-server -js` (Debian's 2.9 in CI), with real
//! processes: records pushed to `distlogd` come out of the JetStream stream with
//! their subject, headers and body as sent; acknowledged `emit` lands each record
//! exactly once; JetStream down at start and killed mid-stream loses nothing
//! acknowledged, with distlogd's memory bounded meanwhile. Without `nats-server` the
//! tests say they were skipped (with `DISTLOG_REQUIRE_PEERS=1`, they fail).
#![cfg(feature = "nats")]

mod collector_support;

use async_nats::jetstream::{self, consumer};
use collector_support::*;
use distlog::Value;
use distlog_testkit::{require_nats_server, NatsServer};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One message as stored.
#[derive(Debug, Clone)]
struct Stored {
    subject: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Every message of `stream`, read with async-nats through an ordered pass of an
/// ephemeral consumer, once the stream holds at least `at_least` (waiting up to
/// `wait` for that).
fn read_stream(url: &str, stream: &str, at_least: u64, wait: Duration) -> Vec<Stored> {
    runtime().block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let js = jetstream::new(client);
        let deadline = Instant::now() + wait;
        let (s, count) = loop {
            if let Ok(mut s) = js.get_stream(stream).await {
                let n = s.info().await.map_or(0, |i| i.state.messages);
                if n >= at_least || Instant::now() > deadline {
                    break (s, n);
                }
            }
            assert!(
                Instant::now() <= deadline,
                "stream {stream} never showed up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let consumer = s
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut out = Vec::new();
        while (out.len() as u64) < count {
            let m = tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .expect("stream messages in time")
                .expect("more messages")
                .expect("message");
            let mut headers = BTreeMap::new();
            if let Some(h) = &m.headers {
                for (k, v) in h.iter() {
                    let v = v
                        .first()
                        .map(|v| v.as_str().to_string())
                        .unwrap_or_default();
                    headers.insert(k.to_string(), v);
                }
            }
            out.push(Stored {
                subject: m.subject.to_string(),
                headers,
                body: m.payload.to_vec(),
            });
        }
        out
    })
}

fn named(name: &str, msg: &str) -> distlog::Record {
    simple(name, msg)
}

#[test]
fn every_record_arrives_with_subject_headers_and_its_body_byte_for_byte() {
    require_nats_server!();
    let started = Instant::now();
    let nats = NatsServer::start();
    let url = nats.url();
    let mut d = Daemon::start(&["--output", "none", "--nats", &url, "--stats-interval", "0"]);
    let mut p = Pusher::connect(&d.pull);
    let loggers = ["shop.orders", "a b", "café.x", "..", "100%", "x*>y"];
    let mut sent = Vec::new();
    for (i, logger) in loggers.iter().cycle().take(60).enumerate() {
        let record = named(logger, &format!("record {i}"));
        let (topic, body) = if i % 2 == 0 {
            (&b"PLJ"[..], json_body(&record))
        } else {
            (&b"SPP"[..], pickle_body(&record))
        };
        p.send(&[topic, &body]);
        sent.push((topic.to_vec(), logger.to_string(), body));
    }
    // Bodies no encoder writes: compact, with floats json.dumps would write otherwise
    // (the name is read without finding out whether the body is canonical), and with
    // an escaped name (decoded to find it). Both are stored as they came.
    let hand_written: [(&str, &[u8]); 2] = [
        (
            "hand.written",
            br#"{"name":"hand.written","msg":"compact","msecs":5.00,"created":1e9}"#,
        ),
        (
            "esc\u{e9}.x",
            br#"{"name": "esc\u00e9.x", "msg": "escaped name", "msecs": 1.50}"#,
        ),
    ];
    for (logger, body) in hand_written {
        p.send(&[b"PLJ", body]);
        sent.push((b"PLJ".to_vec(), logger.to_string(), body.to_vec()));
    }
    let stored = read_stream(&url, "DISTLOG", sent.len() as u64, LONG);
    assert_eq!(stored.len(), sent.len(), "{stored:?}");
    let mut by_body: BTreeMap<Vec<u8>, Stored> =
        stored.into_iter().map(|s| (s.body.clone(), s)).collect();
    for (topic, logger, body) in &sent {
        let s = by_body
            .remove(body)
            .unwrap_or_else(|| panic!("body of {logger:?} not stored byte for byte"));
        let topic = std::str::from_utf8(topic).expect("ascii");
        assert_eq!(
            s.headers.get("Distlog-Topic").map(String::as_str),
            Some(topic)
        );
        assert!(
            !s.headers.contains_key("Nats-Msg-Id"),
            "plain input has no id"
        );
        let parsed = distlog::topic::Topic::parse(topic.as_bytes()).expect("topic");
        assert_eq!(
            s.subject,
            distlogd::subject::record_subject("distlog", parsed, logger)
        );
        assert_eq!(
            distlogd::subject::logger_from_subject("distlog", &s.subject).as_deref(),
            Some(logger.as_str())
        );
    }
    assert_eq!(
        read_stream(&url, "DISTLOG", 0, LONG)
            .iter()
            .filter(|s| s.subject.starts_with("distlog.P.L.shop.orders"))
            .count(),
        10
    );
    d.terminate();
    let err = d.stderr();
    assert!(err.contains("created stream DISTLOG"), "{err}");
    assert_eq!(final_stat(&err, "nats.published"), 62, "{err}");
    assert_eq!(final_stat(&err, "sink_errors"), 0, "{err}");
    eprintln!("one node, both encodings: {:?}", started.elapsed());
}

/// For each `record i of count` of an acknowledged producer: its copies, checking
/// that every such message has a `Nats-Msg-Id` and no two share one.
fn acked_copies(stored: &[Stored], count: u64) -> BTreeMap<u64, usize> {
    let suffix = format!(" of {count}");
    let mut ids = std::collections::BTreeSet::new();
    let mut copies = BTreeMap::new();
    for s in stored {
        let Some(id) = s.headers.get("Nats-Msg-Id") else {
            continue;
        };
        assert!(ids.insert(id.clone()), "two messages with id {id}");
        let (producer, seq) = id.split_once(':').expect("producer:seq");
        assert_eq!(producer.len(), 32, "{id}");
        seq.parse::<u64>().expect("seq");
        let record = distlog::serialize::json::decode_record(&s.body, &Default::default())
            .expect("a JSON body");
        let msg = match record.get("msg") {
            Some(Value::Str(m)) => m.to_string(),
            _ => continue,
        };
        if let Some(i) = msg
            .strip_prefix("record ")
            .and_then(|m| m.strip_suffix(suffix.as_str()))
            .and_then(|i| i.parse().ok())
        {
            *copies.entry(i).or_insert(0usize) += 1;
        }
    }
    copies
}

#[test]
fn acknowledged_emit_lands_in_the_stream_exactly_once() {
    require_nats_server!();
    let started = Instant::now();
    let nats = NatsServer::start();
    let url = nats.url();
    let mut d = Daemon::start_acked(
        &["--output", "none", "--nats", &url, "--stats-interval", "0"],
        false,
    );
    let ack = d.ack.clone().expect("ack endpoint");
    const N: u64 = 3000;
    assert!(
        emit_ok(emit(&[&ack], N, &["--acked"])),
        "emit --acked exits 0"
    );
    // Acknowledged means stored: the stream has them all before distlogd stops.
    let stored = read_stream(&url, "DISTLOG", N, Duration::from_secs(1));
    let copies = acked_copies(&stored, N);
    assert_eq!(copies.len() as u64, N, "every record is in the stream");
    assert!(copies.values().all(|&c| c == 1), "each exactly once");
    assert!(stored.iter().all(|s| s.subject == "distlog.T.L.emit"));
    // The independent reader (nats-py) sees the same.
    if distlog_testkit::python_nats_or_skip(module_path!()) {
        let out = distlog_testkit::finish(distlog_testkit::spawn_python(
            "nats_read.py",
            &[&url, "DISTLOG"],
        ));
        let mut ids = std::collections::BTreeSet::new();
        let mut lines = 0;
        for line in out.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            assert_eq!(v["subject"], "distlog.T.L.emit", "{line}");
            assert_eq!(v["headers"]["Distlog-Topic"], "TLJ", "{line}");
            let id = v["headers"]["Nats-Msg-Id"]
                .as_str()
                .expect("an id")
                .to_string();
            assert!(ids.insert(id), "{line}");
            assert!(v["body"].as_str().is_some_and(|b| !b.is_empty()));
            lines += 1;
        }
        assert_eq!(lines as usize, stored.len(), "nats-py reads what we read");
    }
    d.terminate();
    let err = d.stderr();
    assert_eq!(final_stat(&err, "sink_errors"), 0, "{err}");
    eprintln!(
        "acked emit -> distlogd -> JetStream, {N} records: {:?}",
        started.elapsed()
    );
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn jetstream_down_at_start_and_killed_mid_stream_loses_nothing_acknowledged() {
    require_nats_server!();
    let started = Instant::now();
    // Its port and store, not running yet.
    let mut nats = NatsServer::start();
    nats.stop();
    let url = nats.url();
    let mut d = Daemon::start_acked(
        &["--output", "none", "--nats", &url, "--stats-interval", "1"],
        true,
    );
    let ack = d.ack.clone().expect("ack endpoint");
    const N: u64 = 6000;
    // Paced, so that it is still sending when JetStream dies and comes back.
    let acked = emit(&[&ack], N, &["--acked", "--interval-ms", "1"]);
    // And a plain flood while JetStream is down: distlogd must stop reading.
    let flood = emit(&[&d.pull], 30_000, &["--encoding", "pickle"]);
    let mut peak = 0;
    let down_until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < down_until {
        peak = peak.max(rss_kib(d.pid()));
        std::thread::sleep(Duration::from_millis(50));
    }
    nats.restart();
    // Mid-stream: some stored, then SIGKILL and back a second later.
    let _ = read_stream(&url, "DISTLOG", 500, LONG);
    nats.stop();
    std::thread::sleep(Duration::from_secs(1));
    nats.restart();
    assert!(
        emit_ok(acked),
        "emit --acked exits 0: every record acknowledged"
    );
    let _ = wait_bounded(&mut { flood }, "flood emit");
    let stored = read_stream(&url, "DISTLOG", N, Duration::from_secs(1));
    let copies = acked_copies(&stored, N);
    let missing: Vec<u64> = (0..N).filter(|i| !copies.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged and not stored: {missing:?}"
    );
    assert!(
        copies.values().all(|&c| c == 1),
        "each acknowledged record once"
    );
    d.terminate();
    let err = d.stderr();
    eprintln!(
        "JetStream down 2.5 s at start and killed mid-stream: {N} acked records stored once, \
         {} messages in all, distlogd peak VmRSS while down {} MiB, nats.failed={}, {:?}",
        stored.len(),
        peak / 1024,
        final_stat(&err, "nats.failed"),
        started.elapsed()
    );
    assert!(
        peak < 200 * 1024,
        "VmRSS {peak} KiB while JetStream was down"
    );
}

#[test]
fn a_producer_that_never_pauses_is_acknowledged_as_jetstream_stores() {
    require_nats_server!();
    let started = Instant::now();
    let nats = NatsServer::start();
    let url = nats.url();
    let mut d = Daemon::start_acked(
        &["--output", "none", "--nats", &url, "--stats-interval", "0"],
        false,
    );
    let ack = d.ack.clone().expect("ack endpoint");
    // Unpaced, and fewer than emit's window of unacknowledged records, so that it
    // never waits for an acknowledgement before it has sent them all: there is
    // always a newer record behind the PubAcks.
    const N: u64 = 20_000;
    assert!(
        emit_ok(emit(&[&ack], N, &["--acked", "--ack-timeout-ms", "1000"])),
        "emit --acked exits 0"
    );
    let took = started.elapsed();
    d.terminate();
    let err = d.stderr();
    // An acknowledgement that waited for the whole flow to stop (more than a
    // second of it) would come after emit's ack timeout, and emit would have sent
    // what it had not had acknowledged again.
    assert_eq!(final_stat(&err, "duplicates"), 0, "{err}");
    assert_eq!(final_stat(&err, "acked"), N, "{err}");
    assert_eq!(final_stat(&err, "nats.published"), N, "{err}");
    eprintln!("acked emit at full speed, {N} records: {took:?}");
}
