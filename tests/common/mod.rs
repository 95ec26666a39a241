//! Helpers shared by the integration tests: the real Python peers (from distlog-testkit), free ports, and a
//! runtime-independent way to run zeromq sockets.
#![allow(dead_code)]

mod block_on;
// Each test crate includes this module; not all of them run sockets.
#[allow(unused_imports)]
pub use block_on::block_on;

// Not every suite that includes this module uses each of them.
#[allow(unused_imports)]
pub use distlog_testkit::{
    finish, free_port, free_ports, python, script, spawn_python, wait_listening, PyCollector,
};

/// A future that completes after `d`, on any runtime (a thread does the waiting).
pub async fn sleep(d: std::time::Duration) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(d);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Receives one message from a zeromq socket, or `None` after `d`.
pub async fn recv_within<S: zeromq::SocketRecv>(
    socket: &mut S,
    d: std::time::Duration,
) -> Option<zeromq::ZmqMessage> {
    use futures::future::{select, Either};
    let recv = std::pin::pin!(socket.recv());
    let timer = std::pin::pin!(sleep(d));
    match select(recv, timer).await {
        Either::Left((Ok(m), _)) => Some(m),
        _ => None,
    }
}

/// Python's decoders, one line per body: `json.dumps(json.loads(b))` or of `pickle.loads(b)`.
pub fn python_decode(bodies: &[(distlog::topic::Encoding, Vec<u8>)]) -> Vec<String> {
    let bodies: Vec<(bool, Vec<u8>)> = bodies
        .iter()
        .map(|(enc, body)| (*enc == distlog::topic::Encoding::Pickle, body.clone()))
        .collect();
    distlog_testkit::python_decode(&bodies)
}

/// Our JSON encoding of a record: byte-identical to Python's `json.dumps` of the
/// same dict, so comparing it with Python's output compares the decoded values.
pub fn json_of(record: &distlog::Record) -> String {
    let mut out = Vec::new();
    distlog::serialize::json::encode_record(record, &mut out);
    String::from_utf8(out).expect("JSON output is ASCII")
}
