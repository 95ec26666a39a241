//! Heartbeats on the sender's links (`Builder::heartbeat`): a collector host that
//! vanishes without closing the connection (here a TCP proxy that goes silent, both
//! sides left open) is noticed and the link reconnects; without heartbeats it is
//! not noticed in that time. The collector is Python distlog (libzmq).

mod common;

use common::PyCollector;
use distlog::handler::Handler;
use distlog::record::Event;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn event(i: usize) -> Event {
    let mut e = Event::new(log::Level::Info, "heartbeat", format!("record {i}"));
    e.extra.push(("i".into(), (i as i64).into()));
    e
}

/// Forwards connections to `target` on std threads; once `frozen` is set, the first
/// connection's bytes are read and discarded both ways, and nothing is closed.
/// Returns (port, frozen, connections accepted).
fn proxy(target: u16) -> (u16, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = listener.local_addr().expect("addr").port();
    let frozen = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (f, a) = (frozen.clone(), accepted.clone());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                return;
            };
            let first = a.fetch_add(1, Ordering::SeqCst) == 0;
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                let f = f.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = from.read(&mut buf).unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        let silent = first && f.load(Ordering::SeqCst);
                        if !silent && to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    (port, frozen, accepted)
}

/// Time from the freeze to the link's second connection, `None` if not within 2 s.
fn reconnect_after_freeze(heartbeat: bool) -> Option<Duration> {
    let collector_port = common::free_port();
    let collector = PyCollector::start(&format!("tcp://127.0.0.1:{collector_port}"), 100, 20);
    let (port, frozen, accepted) = proxy(collector_port);
    let mut builder = Handler::builder().endpoint(format!("tcp://127.0.0.1:{port}"));
    if heartbeat {
        builder = builder.heartbeat(Duration::from_millis(100), Duration::from_millis(300));
    }
    let guard = builder.spawn().expect("handler");
    assert!(guard.handler().enqueue(event(0)));
    assert_eq!(collector.take(1, Duration::from_secs(10)).len(), 1);
    assert_eq!(guard.handler().stats().connects, 1);

    frozen.store(true, Ordering::SeqCst);
    let frozen_at = Instant::now();
    assert!(guard.handler().enqueue(event(1)));
    let mut reconnected = None;
    while frozen_at.elapsed() < Duration::from_secs(2) {
        if guard.handler().stats().connects >= 2 {
            reconnected = Some(frozen_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if reconnected.is_some() {
        // Through the proxy again, and delivering: record 2 arrives.
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert!(guard.handler().enqueue(event(2)));
        let got = collector.take(2, Duration::from_secs(5));
        assert!(
            got.iter().any(|r| r["record"]["i"].as_i64() == Some(2)),
            "record 2 not delivered after reconnecting: {got:?}"
        );
    }
    drop(guard);
    reconnected
}

#[test]
fn heartbeat_notices_a_silent_collector_and_reconnects() {
    distlog_testkit::require_python!();
    let took = reconnect_after_freeze(true).expect("reconnected within 2 s");
    println!("heartbeat 100 ms / timeout 300 ms: reconnected after {took:?}");
}

#[test]
fn without_heartbeat_a_silent_collector_goes_unnoticed() {
    distlog_testkit::require_python!();
    assert_eq!(reconnect_after_freeze(false), None);
}
