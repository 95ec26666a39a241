//! Issue 13's cluster test: three `nats-server -js` on loopback and a stream of 3
//! replicas, two `distlogd` publishing to it, an acknowledged `emit` sending to both.
//! Mid-stream one distlogd and the stream's leader node are SIGKILLed, the node the
//! other distlogd is connected to (the test moves the leader there first), so the
//! survivor loses its server and the stream's leader at once. emit must still have
//! every record acknowledged, and afterwards the stream must hold every record
//! exactly once. The last word is an independent reader's: Python's nats-py
//! (`py/nats_check.py`), not our code. Without `nats-server` or nats-py the tests say
//! they were skipped (with `DISTLOG_REQUIRE_PEERS=1`, they fail).
#![cfg(feature = "nats")]

mod collector_support;

use collector_support::*;
use distlog::Value;
use distlog_testkit::{
    require_nats_server, require_python_nats, spawn_python, NatsCluster, NatsServer, StreamState,
};
use std::time::{Duration, Instant};

const STREAM: &str = "DISTLOG";
/// What `emit --system T` publishes on, with distlogd's default prefix.
const SUBJECT: &str = "distlog.T.L.emit";

/// nats-py's verdict on the stream (see `py/nats_check.py`), read from `urls`.
fn python_check(urls: &[String], count: u64) -> serde_json::Value {
    let count = count.to_string();
    let mut args = vec![STREAM, SUBJECT, &count];
    args.extend(urls.iter().map(String::as_str));
    let out = distlog_testkit::finish(spawn_python("nats_check.py", &args));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("nats_check.py said {out:?}: {e}"))
}

/// Waits until `state` holds for what the cluster says of the stream.
fn wait_stream(cluster: &NatsCluster, what: &str, state: impl Fn(&StreamState) -> bool) {
    let deadline = Instant::now() + LONG;
    loop {
        let now = cluster.stream(STREAM);
        if now.as_ref().is_some_and(&state) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: the stream is {now:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until each of the processes is connected to a node, then moves the stream's
/// leader (asking it to step down, through `url`) until it is on a node that one of
/// them is connected to; that node.
fn leader_under_a_collector(cluster: &NatsCluster, url: &str, pids: &[u32]) -> usize {
    assert!(
        wait_until(LONG, || pids.iter().all(|&p| cluster.node_of(p).is_some())),
        "a distlogd is connected to no node"
    );
    let used: Vec<usize> = pids.iter().filter_map(|&p| cluster.node_of(p)).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let client = rt
        .block_on(async_nats::connect(url))
        .expect("connect to nats");
    for _ in 0..20 {
        wait_stream(cluster, "a stream leader", |s| s.leader.is_some());
        let leader = cluster
            .stream(STREAM)
            .and_then(|s| s.leader)
            .expect("a leader");
        if used.contains(&leader) {
            return leader;
        }
        let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}");
        rt.block_on(client.request(subject, "".into()))
            .expect("stream leader stepdown");
        wait_stream(cluster, "a new stream leader", |s| {
            s.leader.is_some_and(|l| l != leader)
        });
    }
    panic!("the stream leader never went to a node of {used:?}");
}

#[test]
fn one_collector_and_the_stream_leader_sigkilled_every_record_is_stored_once() {
    require_nats_server!();
    require_python_nats!();
    let started = Instant::now();
    let mut cluster = NatsCluster::start();
    let cluster_ready = started.elapsed();
    let urls = cluster.urls();
    let mut args = vec![
        "--output",
        "none",
        "--stats-interval",
        "0",
        "--nats-replicas",
        "3",
    ];
    for url in &urls {
        args.extend(["--nats", url]);
    }
    let a = Daemon::start_acked(&args, false);
    let b = Daemon::start_acked(&args, false);
    // One of them creates it, the other finds it (or both create the same: that is
    // the same stream).
    a.wait_stderr("stream DISTLOG");
    b.wait_stderr("stream DISTLOG");
    let leader = leader_under_a_collector(&cluster, &urls[0], &[a.pid(), b.pid()]);
    // The one to survive is the one on the leader's node: it loses its server and
    // the stream's leader at once, and must go on through another node.
    let (mut victim, mut survivor) = if cluster.node_of(b.pid()) == Some(leader) {
        (a, b)
    } else {
        (b, a)
    };
    let (ea, eb) = (
        victim.ack.clone().expect("ack"),
        survivor.ack.clone().expect("ack"),
    );
    // Paced (about 900 a second here), so that emit is still logging through the
    // election that follows the kills (seconds: raft's election timeout), and its
    // flush at the end has only the last moments' records left to wait for.
    const N: u64 = 20_000;
    let sending = Instant::now();
    let producer = emit(&[&ea, &eb], N, &["--acked", "--interval-ms", "1"]);
    // Mid-stream: some of it stored, most of it still to come.
    wait_stream(&cluster, "a fifth stored", |s| s.messages >= N / 5);
    let before = cluster.stream(STREAM).expect("the stream");
    assert_eq!(before.leader, Some(leader), "the leader moved by itself");
    victim.sigkill();
    cluster.kill(leader);
    let killed_at = sending.elapsed();
    assert!(
        emit_ok(producer),
        "emit --acked exits 0: every record acknowledged"
    );
    let took = sending.elapsed();
    let after = cluster.stream(STREAM);
    let moved_to = cluster.node_of(survivor.pid());
    survivor.terminate();
    let err = survivor.stderr();
    assert_eq!(final_stat(&err, "sink_errors"), 0, "{err}");
    assert!(
        err.contains("nats: disconnected") && moved_to.is_some_and(|n| n != leader),
        "the surviving distlogd went on through another node (now on {moved_to:?}): {err}"
    );
    let survivors: Vec<String> = (0..urls.len())
        .filter(|&i| cluster.running(i))
        .map(|i| cluster.url(i))
        .collect();
    let checking = Instant::now();
    let verdict = python_check(&survivors, N);
    let checked = checking.elapsed();
    eprintln!(
        "3-node cluster ready in {cluster_ready:?}; {N} acked records; killed one distlogd \
         and node {} (the stream leader, and the other distlogd's server) at {killed_at:?} \
         with {} stored; emit done at {took:?}; new leader {:?}, surviving distlogd now on \
         {:?}: nats.published={} nats.duplicates={} nats.failed={}; nats-py in {checked:?}: \
         {verdict}; in all {:?}",
        cluster.node_name(leader),
        before.messages,
        after
            .and_then(|s| s.leader)
            .map(|l| cluster.node_name(l).to_string()),
        moved_to.map(|n| cluster.node_name(n).to_string()),
        final_stat(&err, "nats.published"),
        final_stat(&err, "nats.duplicates"),
        final_stat(&err, "nats.failed"),
        started.elapsed()
    );
    assert!(
        before.messages < N * 9 / 10,
        "the kills came too late to be mid-stream: {} of {N} stored",
        before.messages
    );
    assert_eq!(
        verdict["missing"], 0,
        "acknowledged and not stored: {verdict}"
    );
    assert_eq!(
        verdict["duplicate_records"], 0,
        "stored more than once: {verdict}"
    );
    assert_eq!(
        verdict["messages"], N,
        "the stream holds N messages: {verdict}"
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
}

/// The checker can fail: a stream with a record stored twice (under two ids) and one
/// missing is not passed.
#[test]
fn the_independent_check_sees_a_duplicate_and_a_loss() {
    require_nats_server!();
    require_python_nats!();
    let nats = NatsServer::start();
    const N: u64 = 50;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        use async_nats::jetstream::{self, stream};
        let js = jetstream::new(async_nats::connect(nats.url()).await.expect("connect"));
        js.create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec!["distlog.>".into()],
            ..Default::default()
        })
        .await
        .expect("stream");
        // Record 7 is lost; record 3 comes again under another seq.
        let records = (0..N).filter(|&i| i != 7).chain([3]);
        for (seq, i) in records.enumerate() {
            let record = distlog::Record::from_pairs([
                ("name", Value::from("emit")),
                ("msg", format!("record {i} of {N}").into()),
            ]);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Distlog-Topic", "TLJ");
            headers.insert("Nats-Msg-Id", format!("{}:{seq}", "ab".repeat(16)).as_str());
            js.publish_with_headers(SUBJECT, headers, json_body(&record).into())
                .await
                .expect("publish")
                .await
                .expect("PubAck");
        }
    });
    let verdict = python_check(&[nats.url()], N);
    assert_eq!(verdict["ok"], false, "{verdict}");
    assert_eq!(
        verdict["missing_first"],
        serde_json::json!([7]),
        "{verdict}"
    );
    assert_eq!(
        verdict["duplicate_first"],
        serde_json::json!([[3, 2]]),
        "{verdict}"
    );
    assert_eq!(verdict["messages"], N, "{verdict}");
}
