//! distlog patch: ZMTP 3.1 heartbeats (see ../DISTLOG-PATCH.md), against real libzmq
//! (pyzmq, run as a separate process) and through a TCP proxy that goes silent.
//! Needs `DISTLOG_PYTHON` (pyzmq installed); skipped otherwise unless
//! `DISTLOG_REQUIRE_PEERS=1`.

extern crate distlog_zeromq as zeromq;

use zeromq::__async_rt as async_rt;
use zeromq::prelude::*;
use zeromq::{PullSocket, PushSocket, SocketEvent, SocketOptions, ZmqMessage};

use futures::StreamExt;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// pyzmq PUSH with heartbeats: sends `count` messages `gap` seconds apart, then
/// prints how many times it connected and disconnected (socket monitor).
const PY_PUSH: &str = r#"
import sys, time, zmq
from zmq.utils.monitor import recv_monitor_message
endpoint, count, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ctx = zmq.Context()
s = ctx.socket(zmq.PUSH)
s.setsockopt(zmq.HEARTBEAT_IVL, 100)
s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)
s.setsockopt(zmq.HEARTBEAT_TTL, 1000)
m = s.get_monitor_socket()
s.connect(endpoint)
for i in range(count):
    s.send(b"m%d" % i)
    time.sleep(gap)
time.sleep(0.5)
ev = []
while m.poll(200):
    ev.append(recv_monitor_message(m)["event"])
print(sum(e == zmq.EVENT_CONNECTED for e in ev), sum(e == zmq.EVENT_DISCONNECTED for e in ev))
s.close(linger=2000)
ctx.term()
"#;

/// pyzmq PULL, with heartbeats every `ivl` ms unless 0, bound: receives for `secs` seconds, then prints the
/// messages' count and how many connections it lost (socket monitor).
const PY_PULL: &str = r#"
import sys, time, zmq
from zmq.utils.monitor import recv_monitor_message
port, secs, ivl = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
ctx = zmq.Context()
s = ctx.socket(zmq.PULL)
if ivl:
    s.setsockopt(zmq.HEARTBEAT_IVL, ivl)
    s.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)
m = s.get_monitor_socket()
s.bind("tcp://127.0.0.1:%d" % port)
print("bound", flush=True)
got = []
end = time.time() + secs
while time.time() < end:
    if s.poll(50):
        got.append(s.recv())
ev = []
while m.poll(200):
    ev.append(recv_monitor_message(m)["event"])
print(len(got), len(set(got)), sum(e == zmq.EVENT_DISCONNECTED for e in ev))
s.close(linger=0)
ctx.term()
"#;

/// A Python peer whose stdout lines are read on a thread of their own: the test
/// runtime may be single-threaded, and a blocking read there would stop our socket
/// from answering the peer's PINGs.
struct Py {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

fn python(script: &str, args: &[String]) -> Py {
    let mut child = Command::new(distlog_testkit::python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python");
    let stdout = child.stdout.take().expect("stdout");
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    Py { child, lines }
}

impl Py {
    /// The next line, waiting without blocking the runtime.
    async fn line(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.lines.try_recv() {
                Ok(line) => return line,
                Err(std::sync::mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    async_rt::task::sleep(Duration::from_millis(10)).await
                }
                Err(e) => panic!("no line from python: {e:?}"),
            }
        }
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn numbers(line: &str) -> Vec<usize> {
    line.split_whitespace()
        .map(|n| n.parse().expect("a number"))
        .collect()
}

#[async_rt::test]
async fn pyzmq_push_with_heartbeats_to_fork_pull() {
    distlog_testkit::require_python!();
    let port = distlog_testkit::free_port();
    let mut pull = PullSocket::new();
    pull.bind(&format!("tcp://127.0.0.1:{port}"))
        .await
        .expect("bind");
    // 15 messages 200 ms apart: about 30 PINGs from pyzmq, each needing a PONG
    // within 300 ms, and its TTL of 1 s for us to honour.
    let count = 15;
    let mut child = python(
        PY_PUSH,
        &[
            format!("tcp://127.0.0.1:{port}"),
            count.to_string(),
            "0.2".into(),
        ],
    );
    let mut got = Vec::new();
    for _ in 0..count {
        let message = async_rt::task::timeout(Duration::from_secs(10), pull.recv())
            .await
            .expect("a message within 10 s")
            .expect("recv");
        got.push(String::from_utf8(message.get(0).expect("frame").to_vec()).expect("utf8"));
    }
    let expected: Vec<String> = (0..count).map(|i| format!("m{i}")).collect();
    assert_eq!(got, expected, "every message once, in order");
    // Keep receiving while pyzmq finishes: this fork's PULL reads its connections
    // (and so answers PINGs) only while the application receives. Nothing more may
    // arrive (no duplicate from a reconnect).
    let out = match futures::future::select(Box::pin(child.line()), Box::pin(pull.recv())).await {
        futures::future::Either::Left((out, _)) => out,
        futures::future::Either::Right((extra, _)) => panic!("unexpected: {extra:?}"),
    };
    // Connected once, never dropped for a missing PONG.
    assert_eq!(numbers(&out), vec![1, 0], "pyzmq's connects/disconnects");
}

/// Our PUSH with heartbeats to a pyzmq PULL with heartbeats, with an idle gap of
/// 1.5 s in the middle; our PINGs announce a TTL of 300 ms. Returns pyzmq's
/// (messages, distinct messages, disconnects).
async fn fork_push_to_pyzmq_pull(interval: Duration, py_heartbeats: bool) -> Vec<usize> {
    let port = distlog_testkit::free_port();
    let ivl = if py_heartbeats { "100" } else { "0" };
    let mut child = python(PY_PULL, &[port.to_string(), "4".into(), ivl.into()]);
    assert_eq!(child.line().await, "bound");
    let mut options = SocketOptions::default();
    options
        .heartbeat_interval(interval)
        .heartbeat_timeout(Duration::from_millis(300))
        .heartbeat_ttl(Duration::from_millis(300));
    let mut push = PushSocket::with_options(options);
    push.connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .expect("connect");
    for i in 0..10 {
        if i == 5 {
            async_rt::task::sleep(Duration::from_millis(1500)).await;
        }
        // A reconnect may be under way (the control case): retry briefly.
        let deadline = Instant::now() + Duration::from_secs(1);
        while push.send(ZmqMessage::from(format!("n{i}"))).await.is_err()
            && Instant::now() < deadline
        {
            async_rt::task::sleep(Duration::from_millis(20)).await;
        }
        async_rt::task::sleep(Duration::from_millis(50)).await;
    }
    // Our PUSH stays connected until pyzmq has counted its disconnects.
    let result = numbers(&child.line().await);
    drop(push);
    result
}

#[async_rt::test]
async fn fork_push_with_heartbeats_to_pyzmq_pull() {
    distlog_testkit::require_python!();
    // PINGs every 100 ms keep pyzmq's 300 ms TTL timer (armed by our PINGs) and its
    // own 300 ms heartbeat timeout (answered by our PONGs) from firing in the gap.
    assert_eq!(
        fork_push_to_pyzmq_pull(Duration::from_millis(100), true).await,
        vec![10, 10, 0]
    );
}

#[async_rt::test]
async fn our_pings_alone_keep_pyzmq_from_dropping_us() {
    distlog_testkit::require_python!();
    // pyzmq sends no PINGs (so we send no PONGs): only our PINGs, every 100 ms,
    // reset the 300 ms TTL timer they arm in pyzmq during the 1.5 s gap.
    assert_eq!(
        fork_push_to_pyzmq_pull(Duration::from_millis(100), false).await,
        vec![10, 10, 0]
    );
}

#[async_rt::test]
async fn pyzmq_drops_us_when_our_pings_are_too_rare_for_our_ttl() {
    distlog_testkit::require_python!();
    // Control for the test above: with PINGs every 1 s but a TTL of 300 ms, pyzmq
    // must drop us in the idle gap, which it can only do if it read our PINGs' TTL.
    // pyzmq sends no PINGs of its own, whose PONGs would count as traffic.
    let result = fork_push_to_pyzmq_pull(Duration::from_millis(1000), false).await;
    assert!(result[2] >= 1, "pyzmq never dropped us: {result:?}");
}

/// A TCP proxy on its own threads: forwards each accepted connection to `target`
/// until `frozen` is set, after which it reads and discards both directions of the
/// connections open at that moment, closing nothing. Later connections forward.
struct Proxy {
    port: u16,
    frozen: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    /// Set when our PUSH closed the first (frozen) connection.
    first_closed: Arc<AtomicBool>,
}

fn proxy(target: u16) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = listener.local_addr().expect("addr").port();
    let frozen = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let first_closed = Arc::new(AtomicBool::new(false));
    let (f, a, c) = (frozen.clone(), accepted.clone(), first_closed.clone());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            // Only the connections open when the proxy froze stay frozen.
            let generation = a.fetch_add(1, Ordering::SeqCst);
            let freeze = Arc::new(AtomicBool::new(false));
            for (from_client, mut from, mut to) in [
                (
                    true,
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (false, server, client),
            ] {
                let (global, freeze, closed) = (f.clone(), freeze.clone(), c.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = from.read(&mut buf).unwrap_or(0);
                        if n == 0 {
                            if from_client && generation == 0 {
                                closed.store(true, Ordering::SeqCst);
                            }
                            return;
                        }
                        if global.load(Ordering::SeqCst) && generation == 0 {
                            freeze.store(true, Ordering::SeqCst);
                        }
                        if !freeze.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    Proxy {
        port,
        frozen,
        accepted,
        first_closed,
    }
}

/// Our PUSH to our PULL through the proxy, which goes silent after one message.
/// Returns how long the PUSH took to drop the connection (`None`: not within 2 s),
/// and checks that, when it did, the socket closed it. (This fork's PUSH, like
/// zeromq 0.7.0's, does not reconnect by itself; its owner does on the
/// `Disconnected` event, as distlog's links do: that is tested in distlog.)
async fn vanished_peer(heartbeat: bool) -> Option<Duration> {
    let pull_port = distlog_testkit::free_port();
    let mut pull = PullSocket::new();
    pull.bind(&format!("tcp://127.0.0.1:{pull_port}"))
        .await
        .expect("bind");
    let proxy = proxy(pull_port);
    let mut options = SocketOptions::default();
    if heartbeat {
        options
            .heartbeat_interval(Duration::from_millis(100))
            .heartbeat_timeout(Duration::from_millis(300));
    }
    let mut push = PushSocket::with_options(options);
    let mut monitor = push.monitor();
    push.connect(&format!("tcp://127.0.0.1:{}", proxy.port))
        .await
        .expect("connect");
    push.send(ZmqMessage::from("before")).await.expect("send");
    let first = async_rt::task::timeout(Duration::from_secs(5), pull.recv())
        .await
        .expect("first message in time")
        .expect("recv");
    assert_eq!(first.get(0).map(|f| f.to_vec()), Some(b"before".to_vec()));

    proxy.frozen.store(true, Ordering::SeqCst);
    // Traffic after the freeze is what freezes the connection's threads.
    push.send(ZmqMessage::from("lost")).await.expect("send");
    let frozen_at = Instant::now();
    let disconnected = async_rt::task::timeout(Duration::from_secs(2), async {
        while let Some(event) = monitor.next().await {
            if let SocketEvent::Disconnected(_) = event {
                return;
            }
        }
    })
    .await;
    if disconnected.is_err() {
        return None;
    }
    let noticed = frozen_at.elapsed();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !proxy.first_closed.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "connection dropped but not closed"
        );
        async_rt::task::sleep(Duration::from_millis(10)).await;
    }
    // A new connection to the same collector works: connect again and deliver.
    push.connect(&format!("tcp://127.0.0.1:{}", proxy.port))
        .await
        .expect("reconnect");
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), 2);
    push.send(ZmqMessage::from("after")).await.expect("send");
    let after = async_rt::task::timeout(Duration::from_secs(5), pull.recv())
        .await
        .expect("a message after reconnecting")
        .expect("recv");
    assert_eq!(after.get(0).map(|f| f.to_vec()), Some(b"after".to_vec()));
    Some(noticed)
}

#[async_rt::test]
async fn vanished_peer_is_noticed_with_heartbeats() {
    let noticed = vanished_peer(true).await.expect("noticed within 2 s");
    println!("heartbeat 100 ms / timeout 300 ms: dropped after {noticed:?}");
    assert!(
        noticed >= Duration::from_millis(200),
        "too early: {noticed:?}"
    );
}

#[async_rt::test]
async fn vanished_peer_is_not_noticed_without_heartbeats() {
    assert_eq!(vanished_peer(false).await, None);
}
