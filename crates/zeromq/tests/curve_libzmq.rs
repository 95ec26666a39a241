//! distlog patch (CURVE): the fork's CURVE against libzmq 4.3 (pyzmq), as real
//! processes over TCP. Needs the Python peers: run with
//! `DISTLOG_PYTHON=/path/to/.venv/bin/python DISTLOG_REQUIRE_PEERS=1`.
#![cfg(feature = "curve")]

extern crate distlog_zeromq as zeromq;

use zeromq::__async_rt as async_rt;
use zeromq::curve::{CurveClient, CurveKeyPair, CurveServer};
use zeromq::prelude::*;
use zeromq::{PubSocket, PullSocket, PushSocket, SocketOptions, SubSocket, ZmqMessage};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const N: usize = 200;
const DEADLINE: Duration = Duration::from_secs(20);

/// A Python peer whose stdout is collected by a thread, so that waiting for it
/// never blocks the test's runtime (which also runs the fork's socket).
struct Peer {
    out: Arc<Mutex<Option<(bool, String)>>>,
}

fn spawn_peer(args: &[&str]) -> Peer {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/curve_py/peer.py");
    let child = Command::new(distlog_testkit::python())
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python");
    let out = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&out);
    std::thread::spawn(move || {
        let o = child.wait_with_output().expect("wait for python");
        *slot.lock().unwrap() = Some((
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        ));
    });
    Peer { out }
}

impl Peer {
    /// The peer's stdout once it exited successfully; panics on failure or timeout.
    async fn finish(self) -> String {
        let start = Instant::now();
        loop {
            if let Some((ok, out)) = self.out.lock().unwrap().take() {
                assert!(ok, "python peer failed; stdout: {out}");
                return out;
            }
            assert!(start.elapsed() < DEADLINE, "python peer did not finish");
            async_rt::task::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn keys() -> CurveKeyPair {
    CurveKeyPair::generate().expect("random keys")
}

async fn curve_pull_server(server: CurveServer) -> (PullSocket, u16) {
    let mut options = SocketOptions::default();
    options.curve_server(server);
    let mut pull = PullSocket::with_options(options);
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.expect("bind");
    let port = match endpoint {
        zeromq::Endpoint::Tcp(_, port) => port,
        other => panic!("unexpected endpoint {other}"),
    };
    (pull, port)
}

async fn recv(pull: &mut PullSocket, within: Duration) -> Option<ZmqMessage> {
    async_rt::task::timeout(within, pull.recv())
        .await
        .ok()
        .map(|r| r.expect("recv"))
}

fn frames(m: &ZmqMessage) -> Vec<String> {
    m.iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect()
}

/// (a) libzmq CURVE PUSH client -> fork CURVE PULL server: all N arrive intact.
#[async_rt::test]
async fn libzmq_push_client_to_fork_pull_server() {
    distlog_testkit::require_python!();
    let server = keys();
    let client = keys();
    let config = CurveServer::new(server.secret.clone());
    let stats = config.stats();
    let (mut pull, port) = curve_pull_server(config).await;
    let peer = spawn_peer(&[
        "push_client",
        &format!("tcp://127.0.0.1:{port}"),
        &server.public.to_z85(),
        &client.public.to_z85(),
        &client.secret.to_z85(),
        &N.to_string(),
    ]);
    for i in 0..N {
        let m = recv(&mut pull, DEADLINE)
            .await
            .expect("message from libzmq");
        assert_eq!(
            frames(&m),
            [format!("secret-payload-{i}"), format!("part2-{i}")]
        );
    }
    assert_eq!(peer.finish().await.trim(), format!("sent {N}"));
    assert_eq!((stats.accepted(), stats.failed()), (1, 0));
}

/// (b) fork CURVE PUSH client -> libzmq CURVE PULL server: all N arrive, with
/// `send` and with `send_framed` (encrypted frame by frame).
#[async_rt::test]
async fn fork_push_client_to_libzmq_pull_server() {
    distlog_testkit::require_python!();
    let server = keys();
    let port = distlog_testkit::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let peer = spawn_peer(&[
        "pull_server",
        &endpoint,
        &server.secret.to_z85(),
        &(N + 2).to_string(),
    ]);
    distlog_testkit::wait_listening(port);
    let mut options = SocketOptions::default();
    options.curve_client(CurveClient::new(server.public, keys()));
    let mut push = PushSocket::with_options(options);
    push.connect(&endpoint).await.expect("connect");
    for i in 0..N {
        let mut m = ZmqMessage::from(format!("fork-{i}"));
        m.push_back(format!("second-{i}").into());
        push.send(m).await.expect("send");
    }
    let mut batch = bytes::BytesMut::new();
    zeromq::encode_frames(&[&b"framed-a"[..], b"x"], &mut batch);
    zeromq::encode_frames(&[&b"framed-b"[..]], &mut batch);
    push.send_framed(batch.freeze()).await.expect("send_framed");
    let out = peer.finish().await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bound");
    assert_eq!(lines.len(), N + 3, "{out}");
    for i in 0..N {
        assert_eq!(lines[i + 1], format!("fork-{i} second-{i}"));
    }
    assert_eq!(lines[N + 1], "framed-a x");
    assert_eq!(lines[N + 2], "framed-b");
}

/// (c) a wrong server key, a client outside the allow-set and a NULL client deliver
/// nothing; the server counts them and still serves an allowed client.
#[async_rt::test]
async fn refused_peers_deliver_nothing_and_server_keeps_running() {
    distlog_testkit::require_python!();
    let server = keys();
    let allowed = keys();
    let outsider = keys();
    let config = CurveServer::new(server.secret.clone()).allow([allowed.public]);
    let stats = config.stats();
    let (mut pull, port) = curve_pull_server(config).await;
    let endpoint = format!("tcp://127.0.0.1:{port}");

    // A client that believes in another server key: HELLO does not open.
    let wrong_server = keys();
    let p1 = spawn_peer(&[
        "push_client",
        &endpoint,
        &wrong_server.public.to_z85(),
        &allowed.public.to_z85(),
        &allowed.secret.to_z85(),
        "3",
    ]);
    // A client with the right server key but a key outside the allow-set.
    let p2 = spawn_peer(&[
        "push_client",
        &endpoint,
        &server.public.to_z85(),
        &outsider.public.to_z85(),
        &outsider.secret.to_z85(),
        "3",
    ]);
    let p3 = spawn_peer(&["push_null", &endpoint, "3"]);
    assert!(
        recv(&mut pull, Duration::from_secs(4)).await.is_none(),
        "a refused peer's message was delivered"
    );
    for p in [p1, p2, p3] {
        p.finish().await;
    }
    assert!(stats.refused() >= 1, "refused = {}", stats.refused());
    // The wrong-key client and the NULL client, each at least once (libzmq retries).
    assert!(stats.failed() >= 2, "failed = {}", stats.failed());
    assert_eq!(stats.accepted(), 0);

    let p4 = spawn_peer(&[
        "push_client",
        &endpoint,
        &server.public.to_z85(),
        &allowed.public.to_z85(),
        &allowed.secret.to_z85(),
        "1",
    ]);
    let m = recv(&mut pull, DEADLINE)
        .await
        .expect("the allowed client is served");
    assert_eq!(frames(&m), ["secret-payload-0", "part2-0"]);
    p4.finish().await;
    assert_eq!(stats.accepted(), 1);
}

/// (d) what goes over the wire never holds a message's plaintext.
#[async_rt::test]
async fn wire_bytes_never_hold_the_plaintext() {
    distlog_testkit::require_python!();
    let server = keys();
    let (mut pull, port) = curve_pull_server(CurveServer::new(server.secret.clone())).await;
    let captured = Arc::new(Mutex::new(Vec::<u8>::new()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let sink = Arc::clone(&captured);
    // One connection, both directions copied and the client's recorded.
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut upstream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut u2, &mut c2);
        });
        let mut buf = [0u8; 4096];
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
            if upstream.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let client = keys();
    let peer = spawn_peer(&[
        "push_client",
        &format!("tcp://127.0.0.1:{proxy_port}"),
        &server.public.to_z85(),
        &client.public.to_z85(),
        &client.secret.to_z85(),
        "20",
    ]);
    for i in 0..20 {
        let m = recv(&mut pull, DEADLINE)
            .await
            .expect("message through the proxy");
        assert_eq!(frames(&m)[0], format!("secret-payload-{i}"));
    }
    peer.finish().await;
    let wire = captured.lock().unwrap().clone();
    // The proxy saw the traffic: the greeting's mechanism, then ciphertext.
    assert!(
        wire.windows(5).any(|w| w == b"CURVE"),
        "no CURVE greeting captured"
    );
    assert!(wire.len() > 20 * 40, "only {} bytes captured", wire.len());
    for needle in [&b"secret-payload"[..], b"part2-"] {
        assert!(
            !wire.windows(needle.len()).any(|w| w == needle),
            "plaintext {:?} on the wire",
            String::from_utf8_lossy(needle)
        );
    }
}

/// fork CURVE PUB server -> libzmq CURVE SUB client: the subscription (a data
/// message under ZMTP 3.0) arrives encrypted and filters.
#[async_rt::test]
async fn fork_pub_server_to_libzmq_sub_client() {
    distlog_testkit::require_python!();
    let server = keys();
    let mut options = SocketOptions::default();
    options.curve_server(CurveServer::new(server.secret.clone()));
    let mut publisher = PubSocket::with_options(options);
    let port = match publisher.bind("tcp://127.0.0.1:0").await.expect("bind") {
        zeromq::Endpoint::Tcp(_, port) => port,
        other => panic!("unexpected endpoint {other}"),
    };
    let peer = spawn_peer(&[
        "sub_client",
        &format!("tcp://127.0.0.1:{port}"),
        &server.public.to_z85(),
        "20",
    ]);
    // PUB drops what no subscriber wants yet: publish until the SUB has its 20.
    let start = Instant::now();
    let mut i = 0u64;
    loop {
        if let Some((ok, out)) = peer.out.lock().unwrap().take() {
            assert!(ok, "sub_client failed: {out}");
            let lines: Vec<&str> = out.lines().collect();
            assert_eq!(lines.len(), 20, "{out}");
            assert!(lines.iter().all(|l| l.starts_with("keep-")), "{out}");
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the libzmq SUB never got its messages"
        );
        publisher
            .send(ZmqMessage::from(format!("drop-{i}")))
            .await
            .expect("send");
        publisher
            .send(ZmqMessage::from(format!("keep-{i}")))
            .await
            .expect("send");
        i += 1;
        async_rt::task::sleep(Duration::from_millis(5)).await;
    }
}

/// libzmq CURVE PUB server -> fork CURVE SUB client.
#[async_rt::test]
async fn libzmq_pub_server_to_fork_sub_client() {
    distlog_testkit::require_python!();
    let server = keys();
    let port = distlog_testkit::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/curve_py/peer.py");
    let mut child = Command::new(distlog_testkit::python())
        .arg(script)
        .args(["pub_server", &endpoint, &server.secret.to_z85()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start python");
    distlog_testkit::wait_listening(port);
    let mut options = SocketOptions::default();
    options.curve_client(CurveClient::new(server.public, keys()));
    let mut sub = SubSocket::with_options(options);
    sub.connect(&endpoint).await.expect("connect");
    sub.subscribe("keep").await.expect("subscribe");
    for _ in 0..20 {
        let m = async_rt::task::timeout(DEADLINE, sub.recv())
            .await
            .expect("a message within the deadline")
            .expect("recv");
        let body = String::from_utf8_lossy(m.get(0).expect("a frame")).into_owned();
        assert!(body.starts_with("keep-"), "unsubscribed {body:?} delivered");
    }
    drop(child.stdin.take());
    let status = child.wait().expect("wait for python");
    assert!(status.success());
}
