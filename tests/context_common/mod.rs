//! Shared by the integration tests: a real pyzmq PULL collector run by the Python at
//! `DISTLOG_PYTHON` (default `<crate>/.venv/bin/python`), and small helpers.
//!
//! Tests that need Python start with `distlog_testkit::require_python!()`: without the
//! peers they are skipped with a notice, and fail where `DISTLOG_REQUIRE_PEERS` is set.

#![allow(dead_code)]

use serde_json::Value as Json;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use distlog_testkit::python;

/// Binds a PULL on a random port, prints it, then prints each message as a JSON line
/// until `count` arrived or none came for `idle_ms`.
const RECEIVER: &str = r#"
import sys, json, pickle, zmq
count = int(sys.argv[1]); idle_ms = int(sys.argv[2])
ctx = zmq.Context()
s = ctx.socket(zmq.PULL)
port = s.bind_to_random_port('tcp://127.0.0.1')
print(port, flush=True)
got = 0
while got < count:
    if not s.poll(idle_ms):
        break
    frames = s.recv_multipart()
    topic, body = frames[0], frames[-1]
    d = pickle.loads(body) if topic[2:3] == b'P' else json.loads(body.decode('utf-8'))
    print(json.dumps({"topic": topic.decode('ascii'), "frames": len(frames), "body": d,
                      "keys": list(d.keys())}, default=repr), flush=True)
    got += 1
"#;

/// One message as the Python collector saw it.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub frames: u64,
    pub body: Json,
    /// The body's keys in the order the sender wrote them.
    pub keys: Vec<String>,
}

impl Msg {
    pub fn str(&self, key: &str) -> &str {
        self.body.get(key).and_then(Json::as_str).unwrap_or("")
    }
    pub fn key(&self) -> &str {
        self.body
            .get("context")
            .and_then(|c| c.get("key"))
            .and_then(Json::as_str)
            .unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.str("message")
    }
    pub fn is_perf(&self) -> bool {
        self.topic.as_bytes().get(1) == Some(&b'P')
    }
}

/// A running Python PULL collector.
pub struct Collector {
    child: Child,
    stdout: BufReader<ChildStdout>,
    pub endpoint: String,
}

impl Collector {
    /// Starts a collector that stops after `count` messages or `idle` without one.
    pub fn start(count: usize, idle: Duration) -> Collector {
        let mut child = Command::new(python())
            .arg("-c")
            .arg(RECEIVER)
            .arg(count.to_string())
            .arg(idle.as_millis().to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python collector");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut port = String::new();
        stdout.read_line(&mut port).expect("read the port");
        let port: u16 = port
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("the collector printed {port:?}, not a port"));
        Collector {
            child,
            stdout,
            endpoint: format!("tcp://127.0.0.1:{port}"),
        }
    }

    /// Waits for the collector to stop and returns what it received.
    pub fn finish(mut self) -> Vec<Msg> {
        let mut out = String::new();
        self.stdout.read_to_string(&mut out).expect("read messages");
        let status = self.child.wait().expect("collector exit");
        assert!(status.success(), "the Python collector failed: {status}");
        out.lines()
            .map(|l| {
                let j: Json = serde_json::from_str(l).expect("collector line is JSON");
                Msg {
                    topic: j["topic"].as_str().unwrap_or("").to_string(),
                    frames: j["frames"].as_u64().unwrap_or(0),
                    body: j["body"].clone(),
                    keys: j["keys"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// Runs a Python script with arguments and returns its stdout lines; panics on failure.
pub fn run_python(script: &str, args: &[&str]) -> Vec<String> {
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("run Python");
    assert!(out.status.success(), "Python script failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Python code that sends the root logger's records to `sys.argv[1]` with distlog's
/// JSON formatter (the root logger, because Python's task messages go there).
pub const PY_SETUP: &str = r#"
import logging, sys
import distlog
from distlog import task, to, import_task, ZmqHandler, JSONFormatter
handler = ZmqHandler(sys.argv[1], system='T')
handler.setFormatter(JSONFormatter())
root = logging.getLogger()
root.addHandler(handler)
root.setLevel(logging.DEBUG)
log = logging.getLogger('py')
"#;

/// Python code that delivers what is queued before the script exits: distlog 0.1 has
/// no flush, and pyzmq may drop queued messages when the interpreter tears down.
pub const PY_TEARDOWN: &str = r#"
root.removeHandler(handler)
handler.socket.close(linger=5000)
handler.context.term()
"#;

/// Logs through a logger that is not installed globally (tests share one process).
pub fn log_to(logger: &distlog::Logger, level: log::Level, target: &str, msg: &str) {
    log::Log::log(
        logger,
        &log::Record::builder()
            .args(format_args!("{msg}"))
            .level(level)
            .target(target)
            .build(),
    );
}

/// A private logger and handler sending to `endpoint`.
pub fn logger(endpoint: &str) -> (distlog::Logger, distlog::handler::Guard) {
    distlog::builder()
        .endpoint(endpoint)
        .system(distlog::topic::System::Test)
        .filter("trace")
        .flush_timeout(Duration::from_secs(5))
        .build()
        .expect("logger")
}

/// The part of a context key after `@`.
pub fn id_of(key: &str) -> &str {
    key.split_once('@').map_or("", |(_, id)| id)
}
