//! `distlogd` with real Python peers: the Python distlog package logs to it, and a pyzmq
//! SUB client reads its re-published stream. Needs the Python named by `DISTLOG_PYTHON`
//! (default `.venv/bin/python` in the crate) with pyzmq, six and distlog==0.1.dev0; a
//! missing interpreter fails these tests.

mod collector_support;

use collector_support::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A Python script with its stdout lines on a channel; killed when dropped.
struct Py {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Py {
    fn start(name: &str, args: &[&str]) -> Py {
        let mut child = Command::new(python())
            .arg(script(name))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Py { child, lines }
    }

    /// Every line until the script exits, which must be a success.
    fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(LONG) {
            out.push(l);
        }
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "python failed: {status:?}");
                return out;
            }
            assert!(Instant::now() < deadline, "python did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Python distlog logs to distlogd in JSON and pickle; every jsonl line is exactly
/// `json.dumps({"topic": ..., "record": record_dict})` of what Python sent.
#[test]
fn python_distlog_to_distlogd_jsonl() {
    distlog_testkit::require_python!();
    let mut d = Daemon::start(&["--output", "jsonl", "--stats-interval", "0"]);
    let mut py = Py::start("collector_send.py", &[&d.pull]);
    let expected = py.finish();
    assert!(
        expected.len() >= 16,
        "python sent {} records",
        expected.len()
    );
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        got.push(d.line().expect("a line per record Python sent"));
    }
    // One PUSH socket per encoding: order holds within a topic, not across them.
    for topic in ["\"TLJ\"", "\"PLP\""] {
        let want: Vec<&String> = expected.iter().filter(|l| l.contains(topic)).collect();
        let have: Vec<&String> = got
            .iter()
            .filter(|l| l.starts_with(&format!("{{\"topic\": {topic}")))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(have.len(), want.len(), "records of {topic}");
        for (h, w) in have.iter().zip(&want) {
            assert_eq!(h, w);
        }
    }
    // Python's task records arrived with their context keys, failures included.
    assert!(got
        .iter()
        .any(|l| l.contains("\"message\": \"FAILED doomed\"")));
    assert!(got
        .iter()
        .any(|l| l.contains("1267650600228229401496703205376")));
    assert!(d.terminate().success());
    assert_eq!(final_stat(&d.stderr(), "rejected"), 0);
}

/// A pyzmq SUB client subscribed to `PL` gets the original frames of the matching
/// records from `distlogd --publish`.
#[test]
fn pyzmq_sub_reads_republished_stream() {
    distlog_testkit::require_python!();
    let d = Daemon::start(&[
        "--output",
        "none",
        "--publish",
        "tcp://127.0.0.1:0",
        "--stats-interval",
        "0",
    ]);
    let publish = d.publish.clone().expect("publish endpoint");
    let end = json_body(&simple("end", "end"));
    let end_hex: String = end.iter().map(|b| format!("{b:02x}")).collect();
    let mut py = Py::start("collector_sub.py", &[&publish, "PL", &end_hex]);
    let mut push = Pusher::connect(&d.pull);
    let warm = json_body(&simple("warmup", "warm"));
    let deadline = Instant::now() + LONG;
    let mut first = None;
    while first.is_none() {
        push.send(&[b"PLJ", &warm]);
        first = py.lines.recv_timeout(Duration::from_millis(200)).ok();
        assert!(
            Instant::now() < deadline,
            "the pyzmq SUB never got a message"
        );
    }
    let mut sent = Vec::new();
    for (i, topic) in ["PLJ", "TLJ", "PLP", "PPJ", "PLJ"].iter().enumerate() {
        let r = simple("app", &format!("record {i}"));
        let body = if topic.ends_with('J') {
            json_body(&r)
        } else {
            pickle_body(&r)
        };
        push.send(&[topic.as_bytes(), &body]);
        if topic.starts_with("PL") {
            sent.push(vec![topic.as_bytes().to_vec(), body]);
        }
    }
    push.send(&[b"PLJ", &end]);
    let lines = py.finish();
    let hex = |f: &[u8]| f.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let warm_hex = format!("[\"{}\", \"{}\"]", hex(b"PLJ"), hex(&warm));
    let got: Vec<&String> = lines.iter().filter(|l| **l != warm_hex).collect();
    let mut want: Vec<String> = sent
        .iter()
        .map(|frames| format!("[\"{}\", \"{}\"]", hex(&frames[0]), hex(&frames[1])))
        .collect();
    want.push(format!("[\"{}\", \"{}\"]", hex(b"PLJ"), end_hex));
    assert_eq!(got, want.iter().collect::<Vec<_>>());
}
