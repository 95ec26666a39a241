//! Helpers shared by the integration tests: the real Python peers, free ports, and a
//! runtime-independent way to run zeromq sockets.
#![allow(dead_code)]

mod block_on;
// Each test crate includes this module; not all of them run sockets.
#[allow(unused_imports)]
pub use block_on::block_on;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The Python interpreter of the test virtualenv: `DISTLOG_PYTHON`, else
/// `.venv/bin/python` in the crate. `.ci/run` creates it with pyzmq and distlog.
pub fn python() -> PathBuf {
    let p = std::env::var_os("DISTLOG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        p.exists(),
        "Python peer not found at {} (run .ci/run, or set DISTLOG_PYTHON to a python with pyzmq, six and distlog==0.1.dev0)",
        p.display()
    );
    p
}

/// A script from tests/py.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Starts a Python script with arguments; stdout is piped for the test to read.
pub fn spawn_python(name: &str, args: &[&str]) -> Child {
    Command::new(python())
        .arg(script(name))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python")
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// Distinct free ports: all listeners are held until every port is chosen, so the
/// system cannot hand the same port out twice.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
        .collect();
    let mut ports = [0; N];
    for (p, l) in ports.iter_mut().zip(&listeners) {
        *p = l.local_addr().expect("local addr").port();
    }
    ports
}

/// Waits until something listens on the port (a Python peer that binds).
pub fn wait_listening(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Reads every line of a child's stdout once it exits, failing on a bad exit.
pub fn finish(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for child");
    assert!(out.status.success(), "child failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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
    use base64_lite::encode;
    use std::io::Write;
    let mut child = Command::new(python())
        .arg(script("codec.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start codec.py");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for (enc, body) in bodies {
            let k = if *enc == distlog::topic::Encoding::Pickle {
                "P"
            } else {
                "J"
            };
            writeln!(stdin, "{k} {}", encode(body)).expect("write to codec.py");
        }
    }
    finish(child).lines().map(str::to_string).collect()
}

/// Our JSON encoding of a record: byte-identical to Python's `json.dumps` of the
/// same dict, so comparing it with Python's output compares the decoded values.
pub fn json_of(record: &distlog::Record) -> String {
    let mut out = Vec::new();
    distlog::serialize::json::encode_record(record, &mut out);
    String::from_utf8(out).expect("JSON output is ASCII")
}

mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(data: &[u8]) -> String {
        let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// A real libzmq collector (tests/py/pull.py) whose decoded records arrive on a
/// channel as JSON values.
pub struct PyCollector {
    pub child: Child,
    pub records: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl PyCollector {
    /// Binds `endpoint`, stops after `count` records or `silence_s` quiet seconds.
    pub fn start(endpoint: &str, count: usize, silence_s: u32) -> PyCollector {
        use std::io::BufRead;
        let mut child = spawn_python(
            "pull.py",
            &[endpoint, &count.to_string(), &silence_s.to_string()],
        );
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if v.get("ready").is_some() {
                    let _ = ready_tx.send(());
                } else if tx.send(v).is_err() {
                    break;
                }
            }
        });
        ready_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("collector ready");
        PyCollector { child, records: rx }
    }

    /// Collects records until `n` arrived or `timeout` passed.
    pub fn take(&self, n: usize, timeout: std::time::Duration) -> Vec<serde_json::Value> {
        let deadline = std::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.records.recv_timeout(left) {
                Ok(v) => out.push(v),
                Err(_) => break,
            }
        }
        out
    }

    /// Waits for the process to exit.
    pub fn wait(mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for PyCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
