//! ZMTP heartbeats against a real libzmq peer, in real processes: the Python distlog
//! `ZmqHandler` on a pyzmq PUSH with `ZMQ_HEARTBEAT_IVL` on sends to the `distlogd`
//! binary across seconds of PINGs. libzmq drops a connection whose peer does not
//! answer its PINGs within `ZMQ_HEARTBEAT_TIMEOUT`; distlogd must answer them, so
//! the connection stays up and every record arrives.

mod collector_support;

use collector_support::*;
use std::process::{Command, Stdio};

/// Logs COUNT records over SECONDS through a PUSH that PINGs every 100 ms and gives
/// up on a peer silent for 300 ms; then prints how often libzmq saw the connection
/// drop (its monitor's DISCONNECTED events).
const SENDER: &str = r#"
import logging, sys, time
import zmq, distlog
from zmq.utils.monitor import recv_monitor_message
endpoint, count, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.HEARTBEAT_IVL, 100)
s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)
s.setsockopt(zmq.HEARTBEAT_TTL, 1000)
m = s.get_monitor_socket(zmq.EVENT_DISCONNECTED)
s.connect(endpoint)
log = logging.getLogger("py.heartbeat")
log.setLevel(logging.INFO)
log.propagate = False
h = distlog.ZmqHandler(s, system="T")
h.setFormatter(distlog.JSONFormatter())
log.addHandler(h)
for i in range(count):
    log.info("hb record %d of %d", i, count)
    time.sleep(seconds / count)
time.sleep(0.5)
drops = 0
while m.poll(200):
    if recv_monitor_message(m)["event"] == zmq.EVENT_DISCONNECTED:
        drops += 1
print("disconnected", drops, flush=True)
s.disable_monitor()
m.close(linger=0)
s.close(linger=2000)
ctx.term()
"#;

#[test]
fn pyzmq_push_with_heartbeats_keeps_its_connection_to_distlogd() {
    distlog_testkit::require_python!();
    let dir = std::env::temp_dir().join(format!("distlogd-heartbeat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join("all.jsonl");
    let out_arg = out.display().to_string();
    let mut d = Daemon::start(&[
        "--output",
        "none",
        "--file",
        &out_arg,
        "--stats-interval",
        "0",
    ]);

    // 30 records over 3 s: 30 PING intervals, each answered or the link drops.
    let mut child = Command::new(distlog_testkit::python())
        .arg("-c")
        .arg(SENDER)
        .args([d.pull.as_str(), "30", "3.0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the Python sender");
    wait_bounded(&mut child, "the Python sender");
    let output = child
        .wait_with_output()
        .expect("the Python sender's output");
    assert!(output.status.success(), "sender: {:?}", output.status);
    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        said.trim(),
        "disconnected 0",
        "libzmq dropped the link: {said}"
    );

    assert!(d.terminate().success());
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    for i in 0..30 {
        assert!(text.contains(&format!("hb record {i} of 30")), "record {i}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
