//! `distlog replay` against a real `nats-server -js`, with real processes: records
//! pushed to `distlogd --nats` come back from the stream printed exactly as a
//! `distlog tail` printed them live (readable and JSON lines, JSON and pickle bodies,
//! the task tree of the `handoff` example); filters, `--from-seq`, `--since` and
//! `--follow` work; bad input is refused naming the bad value. Without `nats-server`
//! the tests say they were skipped (with `DISTLOG_REQUIRE_PEERS=1`, they fail).
#![cfg(feature = "nats")]

mod collector_support;

use collector_support::*;
use distlog::{Record, Value};
use distlog_testkit::{require_nats_server, NatsServer};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// `distlogd` with the nats sink (and a PUB endpoint, for tails), nothing on stdout.
fn collector(nats: &NatsServer) -> Daemon {
    Daemon::start(&[
        "--output",
        "none",
        "--nats",
        &nats.url(),
        "--stats-interval",
        "0",
        "--publish",
        "tcp://127.0.0.1:0",
    ])
}

/// Stops the collector, which first stores every record it took: the stream then
/// holds all that was sent.
fn stop_storing(mut d: Daemon) {
    assert!(d.terminate().success(), "{}", d.stderr());
    assert_eq!(final_stat(&d.stderr(), "sink_errors"), 0, "{}", d.stderr());
}

/// A finished `distlog` run.
struct Done {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn distlog(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_distlog"));
    cmd.args(args)
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `distlog replay ARGS` to its end (killed, and the test failed, after `LONG`).
fn replay(args: &[&str]) -> Done {
    let mut child = distlog(&[&["replay"], args].concat())
        .spawn()
        .expect("start distlog replay");
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = wait_bounded(&mut child, "distlog replay");
    let done = Done {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    eprint!("[replay {args:?}] {}", done.stderr);
    assert!(
        !done.stderr.contains("panicked"),
        "distlog replay panicked: {}",
        done.stderr
    );
    done
}

/// [`replay`] that must succeed.
fn replay_ok(args: &[&str]) -> Done {
    let done = replay(args);
    assert!(done.status.success(), "replay {args:?}: {}", done.stderr);
    done
}

/// The `record` messages of JSON lines, in order.
fn messages(jsonl: &str) -> Vec<String> {
    jsonl
        .lines()
        .map(|l| {
            let (_, record) = parse_line(l);
            record
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// A record of logger `name` at `level`, in task `key` if given.
fn record(name: &str, msg: &str, level: i64, key: Option<&str>) -> Record {
    let mut r = simple(name, msg);
    r.insert("levelno", level);
    r.insert("levelname", distlog::level::name(level));
    if let Some(key) = key {
        r.insert("context", Value::Dict(vec![("key".into(), key.into())]));
    }
    r
}

fn body(topic: &[u8], r: &Record) -> Vec<u8> {
    if topic[2] == b'P' {
        pickle_body(r)
    } else {
        json_body(r)
    }
}

/// A `distlog tail` that has seen the first warm-up record (logger `warmup`), so that
/// everything sent after is tailed; warm-ups go on until every tail has.
fn tails_receiving(d: &Daemon, push: &mut Pusher, args: &[&[&str]]) -> Vec<Tail> {
    let publish = d.publish.clone().expect("publish endpoint");
    let tails: Vec<Tail> = args
        .iter()
        .map(|a| Tail::start(&[&["--connect", &publish, "--duration", "60"], *a].concat()))
        .collect();
    let warm = json_body(&simple("warmup", "warm"));
    let deadline = Instant::now() + LONG;
    while !tails
        .iter()
        .all(|t| t.stderr.lock().unwrap().contains("distlog: receiving"))
    {
        push.send(&[b"PLJ", &warm]);
        std::thread::sleep(Duration::from_millis(50));
        assert!(Instant::now() < deadline, "tail never received");
    }
    tails
}

fn tail_output(mut tail: Tail) -> String {
    let (status, text) = tail.finish();
    assert!(status.success(), "{}", tail.stderr.lock().unwrap());
    text
}

#[test]
fn replay_prints_what_tail_printed_for_json_and_pickle_records() {
    require_nats_server!();
    let started = Instant::now();
    let nats = NatsServer::start();
    let url = nats.url();
    let d = collector(&nats);
    let mut push = Pusher::connect(&d.pull);
    let mut sent = Vec::new();
    let loggers = ["app", "app.db", "other", "app.web"];
    let topics: [&[u8]; 4] = [b"PLJ", b"PLP", b"SLJ", b"TPP"];
    for i in 0..40 {
        let logger = loggers[i % loggers.len()];
        let level = [10, 20, 30, 40, 50][i % 5];
        let key = format!("{i}@task-{}", i % 3);
        let mut r = record(logger, &format!("record {i} \x1b[2J"), level, Some(&key));
        r.insert("order_id", i as i64);
        if i % 7 == 0 {
            r.insert("exc_text", "Traceback:\\n  ValueError: boom");
        }
        sent.push((topics[i % topics.len()], r));
    }
    let shown = sent
        .iter()
        .filter(|(_, r)| r.name().is_some_and(|n| n.starts_with("app")))
        .count()
        .to_string();
    let tails = tails_receiving(
        &d,
        &mut push,
        &[
            &["--logger", "app", "--count", &shown, "--color", "always"],
            &["--logger", "app", "--count", &shown, "--json"],
        ],
    );
    for (topic, r) in &sent {
        push.send(&[topic, &body(topic, r)]);
    }
    let mut tails = tails.into_iter();
    let (pretty, jsonl) = (
        tail_output(tails.next().expect("pretty tail")),
        tail_output(tails.next().expect("json tail")),
    );
    stop_storing(d);
    assert_eq!(pretty.matches("record ").count(), 30, "{pretty}");
    assert!(pretty.contains("\x1b["), "colored: {pretty:?}");
    assert!(jsonl.contains("\"topic\": \"PLP\"") && jsonl.contains("\"topic\": \"PLJ\""));

    let replayed = replay_ok(&["--nats", &url, "--logger", "app", "--color", "always"]);
    assert_eq!(replayed.stdout, pretty);
    let replayed = replay_ok(&["--nats", &url, "--logger", "app", "--json"]);
    assert_eq!(replayed.stdout, jsonl);
    assert!(replayed
        .stderr
        .contains("replayed stream DISTLOG up to seq"));
    // Everything: the warm-ups too, and `other`, each once.
    let all = messages(&replay_ok(&["--nats", &url, "--json"]).stdout);
    for i in 0..40 {
        let m = format!("record {i} \x1b[2J");
        assert_eq!(all.iter().filter(|x| **x == m).count(), 1, "{m:?}");
    }
    assert!(all.iter().any(|m| m == "warm"));
    eprintln!("tail and replay, both encodings: {:?}", started.elapsed());
}

#[test]
fn filters_match_with_or_without_a_server_side_subject() {
    require_nats_server!();
    let nats = NatsServer::start();
    let url = nats.url();
    let d = collector(&nats);
    let mut push = Pusher::connect(&d.pull);
    let records: [(&[u8], &str, i64, Option<&str>); 6] = [
        (b"PLJ", "shop", 20, Some("0@a")),
        (b"PLP", "shop.orders", 30, Some("0@a/1")),
        (b"PLJ", "shopping", 40, None),
        (b"SLJ", "web", 40, Some("0@b")),
        (b"SLP", "shop.cart", 10, None),
        (b"TPP", "shop.orders", 20, None),
    ];
    for (i, (topic, name, level, key)) in records.iter().enumerate() {
        push.send(&[
            topic,
            &body(topic, &record(name, &format!("m{i}"), *level, *key)),
        ]);
    }
    stop_storing(d);
    let cases: [(&[&str], &[&str], Option<&str>); 10] = [
        (&[], &["m0", "m1", "m2", "m3", "m4", "m5"], None),
        (&["--logger", "shop"], &["m0", "m1", "m4", "m5"], None),
        (
            &["--logger", "shop.", "--system", "P"],
            &["m1"],
            Some("distlog.P.*.shop.>"),
        ),
        (
            &["--logger", "shop.orders", "--logger", "shop.cart"],
            &["m1", "m4", "m5"],
            Some("distlog.*.*.shop.>"),
        ),
        (&["--level", "warning"], &["m1", "m2", "m3"], None),
        (&["--task", "a"], &["m0", "m1"], None),
        (&["--topic", "SL"], &["m3", "m4"], Some("distlog.S.L.>")),
        // The encoding is in no subject: the server sends SLP too, and it is dropped here.
        (&["--topic", "SLJ"], &["m3"], Some("distlog.S.L.>")),
        (&["--kind", "performance"], &["m5"], Some("distlog.*.P.>")),
        (
            &["--logger", "web", "--system", "S", "--level", "40"],
            &["m3"],
            Some("distlog.S.*.>"),
        ),
    ];
    for (args, want, subject) in cases {
        let done = replay_ok(&[&["--nats", &url, "--json"], args].concat());
        assert_eq!(messages(&done.stdout), want, "{args:?}");
        match subject {
            Some(s) => assert!(
                done.stderr.contains(&format!("subject filter {s})")),
                "{args:?} should read {s}: {}",
                done.stderr
            ),
            None => assert!(!done.stderr.contains("subject filter"), "{}", done.stderr),
        }
    }
}

/// Waits until the stream holds `n` messages.
fn wait_stored(url: &str, n: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url).await.expect("connect to nats");
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + LONG;
        loop {
            if let Ok(mut s) = js.get_stream("DISTLOG").await {
                if s.info().await.is_ok_and(|i| i.state.messages >= n) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the stream never held {n}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format a time")
}

#[test]
fn from_seq_and_since_start_where_they_say() {
    require_nats_server!();
    let nats = NatsServer::start();
    let url = nats.url();
    let d = collector(&nats);
    let mut push = Pusher::connect(&d.pull);
    let send = |push: &mut Pusher, range: std::ops::Range<usize>| {
        for i in range {
            push.send(&[b"PLJ", &json_body(&simple("app", &format!("r{i}")))]);
        }
    };
    send(&mut push, 0..5);
    wait_stored(&url, 5);
    std::thread::sleep(Duration::from_millis(100));
    let between = SystemTime::now();
    // Long enough that `--since 2s` is after the first five on any loaded machine.
    std::thread::sleep(Duration::from_millis(2500));
    send(&mut push, 5..10);
    wait_stored(&url, 10);
    let second: Vec<String> = (5..10).map(|i| format!("r{i}")).collect();
    // First, while the second five are well under 2 s old.
    let ago = messages(&replay_ok(&["--nats", &url, "--json", "--since", "2s"]).stdout);
    assert_eq!(ago, second);

    let all = messages(&replay_ok(&["--nats", &url, "--json"]).stdout);
    assert_eq!(all.len(), 10, "{all:?}");
    let from4 = messages(&replay_ok(&["--nats", &url, "--json", "--from-seq", "4"]).stdout);
    assert_eq!(from4, all[3..]);
    let past = replay_ok(&["--nats", &url, "--json", "--from-seq", "11"]);
    assert_eq!(past.stdout, "");
    let at = rfc3339(between);
    let since = messages(&replay_ok(&["--nats", &url, "--json", "--since", &at]).stdout);
    assert_eq!(since, second, "--since {at}");
    let hour = messages(&replay_ok(&["--nats", &url, "--json", "--since", "1h"]).stdout);
    assert_eq!(hour, all);
    let future = rfc3339(SystemTime::now() + Duration::from_secs(3600));
    assert_eq!(replay_ok(&["--nats", &url, "--since", &future]).stdout, "");
    stop_storing(d);
}

/// Sends each line of a pipe to a channel.
fn line_channel(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Collects a pipe into a shared string.
fn text_of(pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let rx = line_channel(pipe);
    let t = text.clone();
    std::thread::spawn(move || {
        for line in rx {
            eprintln!("[replay --follow] {line}");
            let mut t = t.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

/// A process killed when dropped, so that a failed assertion leaves nothing behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn follow_prints_the_stored_records_then_new_ones() {
    require_nats_server!();
    let nats = NatsServer::start();
    let url = nats.url();
    let d = collector(&nats);
    let mut push = Pusher::connect(&d.pull);
    for i in 0..3 {
        push.send(&[b"PLP", &pickle_body(&simple("app", &format!("old{i}")))]);
    }
    wait_stored(&url, 3);
    let mut child = distlog(&[
        "replay", "--nats", &url, "--follow", "--json", "--logger", "app",
    ])
    .spawn()
    .expect("start distlog replay --follow");
    let lines = line_channel(child.stdout.take().expect("stdout"));
    let stderr = text_of(child.stderr.take().expect("stderr"));
    let mut child = Running(child);
    wait_for(&stderr, "following new records");
    let next = || {
        let line = lines
            .recv_timeout(LONG)
            .expect("a line from replay --follow");
        messages(&line).remove(0)
    };
    assert_eq!([next(), next(), next()], ["old0", "old1", "old2"]);
    // Sent only now: a replay without --follow would have ended before it.
    push.send(&[b"PLJ", &json_body(&simple("app", "new"))]);
    push.send(&[b"PLJ", &json_body(&simple("web", "filtered out"))]);
    push.send(&[b"PLJ", &json_body(&simple("app", "newer"))]);
    assert_eq!(next(), "new");
    assert_eq!(next(), "newer");
    // SIGTERM ends a follow like a tail: exit 0.
    // SAFETY: kill with a pid we own and a valid signal number.
    let rc = unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = wait_bounded(&mut child.0, "distlog replay --follow");
    assert!(status.success(), "{}", stderr.lock().unwrap());
    stop_storing(d);
}

/// The `handoff` example beside this test binary, built on demand.
fn handoff_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps layout");
    let bin = profile
        .join("examples")
        .join(format!("handoff{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "distlog", "--example", "handoff"])
            .status()
            .expect("run cargo to build the handoff example");
        assert!(status.success(), "building the handoff example failed");
    }
    bin
}

#[test]
fn tree_of_the_handoff_example_comes_back_from_the_stream() {
    require_nats_server!();
    // Built before anything starts: a build (minutes on a busy machine) must not eat
    // into the live tail's wait.
    let handoff = handoff_binary();
    let nats = NatsServer::start();
    let url = nats.url();
    let d = collector(&nats);
    let mut push = Pusher::connect(&d.pull);
    // Two runs of 10 records each (9 logs, 1 performance message), both encodings.
    let tails = tails_receiving(
        &d,
        &mut push,
        &[&[
            "--tree", "--logger", "handoff", "--count", "20", "--color", "never",
        ]],
    );
    for encoding in ["json", "pickle"] {
        let status = Command::new(&handoff)
            .args(["--endpoint", &d.pull, "--encoding", encoding])
            .status()
            .expect("run the handoff example");
        assert!(status.success(), "handoff --encoding {encoding}: {status}");
    }
    let live = tail_output(tails.into_iter().next().expect("tail"));
    stop_storing(d);
    let lines: Vec<&str> = live.lines().collect();
    assert_eq!(lines.len(), 6, "{live}");
    assert_eq!(live.matches("handoff demo").count(), 2, "{live}");
    assert!(
        lines[2].contains("FAILED") && lines[2].contains("child work"),
        "{live}"
    );

    let replayed = replay_ok(&[
        "--nats", &url, "--tree", "--logger", "handoff", "--color", "never",
    ]);
    assert_eq!(replayed.stdout, live);
    // The tree of one failed request: its task id is all it takes.
    let id = lines[3]
        .split_whitespace()
        .nth(1)
        .expect("the second root's id");
    let one = replay_ok(&["--nats", &url, "--tree", "--task", id, "--color", "never"]);
    assert_eq!(one.stdout, lines[3..].join("\n") + "\n");
}

#[test]
fn bad_input_is_refused_naming_it() {
    require_nats_server!();
    let nats = NatsServer::start();
    let url = nats.url();
    let refused = |args: &[&str], needle: &str| {
        let done = replay(args);
        assert!(!done.status.success(), "{args:?} should fail");
        assert!(
            done.stderr.contains(needle),
            "{args:?}: want {needle:?} in {}",
            done.stderr
        );
        assert_eq!(done.stdout, "", "{args:?}");
    };
    refused(&["--nats", &url, "--since", "yesterday"], "\"yesterday\"");
    refused(
        &["--nats", &url, "--since", "2024-02-30T00:00:00Z"],
        "\"2024-02-30T00:00:00Z\"",
    );
    refused(
        &["--nats", &url, "--since", "5m", "--from-seq", "3"],
        "cannot be used with",
    );
    refused(&["--nats", &url, "--from-seq", "zero"], "'zero'");
    refused(&["--nats", "nats://[::1"], "\"nats://[::1\"");
    refused(&["--nats", &url, "--stream", "A.B"], "\"A.B\"");
    refused(&["--nats", &url, "--topic", "PX"], "\"PX\"");
    refused(&["--nats", &url, "--subject-prefix", "a..b"], "\"a..b\"");
    let closed = format!("nats://127.0.0.1:{}", distlog_testkit::free_port());
    refused(
        &["--nats", &closed],
        &format!("cannot connect to NATS at {closed}"),
    );
    // A NATS server without JetStream.
    let plain_port = distlog_testkit::free_port();
    let plain = Command::new(distlog_testkit::nats_server_path().expect("nats-server"))
        .args(["-a", "127.0.0.1", "-p", &plain_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server without JetStream");
    let plain = Running(plain);
    distlog_testkit::wait_listening(plain_port);
    refused(
        &["--nats", &format!("nats://127.0.0.1:{plain_port}")],
        "cannot look up stream \"DISTLOG\"",
    );
    drop(plain);
    // JetStream is up, but distlogd never made the stream.
    refused(&["--nats", &url], "no stream \"DISTLOG\"");
    refused(&["--nats", &url, "--stream", "NOPE"], "no stream \"NOPE\"");
    // Once it exists: a subject outside it is refused by the server, naming it.
    let d = collector(&nats);
    d.wait_stderr("created stream DISTLOG");
    refused(
        &["--nats", &url, "--subject-prefix", "other", "--system", "P"],
        "\"other.P.*.>\"",
    );
    // An empty stream replays nothing, and says so.
    let empty = replay_ok(&["--nats", &url]);
    assert_eq!(empty.stdout, "");
    assert!(empty.stderr.contains("up to seq 0"), "{}", empty.stderr);
    stop_storing(d);
}
