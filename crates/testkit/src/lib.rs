//! Helpers for distlog's integration tests, shared by the library's and the collector's
//! test suites: the real Python peers (pyzmq's libzmq and Python distlog 0.1), the
//! scripts they run, and free TCP ports.
//!
//! A test that needs the Python peers starts with [`require_python!`]. Where the peers
//! are missing it says on the terminal that it was skipped and how to set them up,
//! and returns; with `DISTLOG_REQUIRE_PEERS=1` (which `.ci/run` sets) a missing peer
//! fails the test instead, so CI never skips.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// The one command that sets the Python peers up, as the skip notice prints it.
pub const SETUP: &str =
    "python3 -m venv .venv && .venv/bin/pip install pyzmq six distlog==0.1.dev0 nats-py";

/// How to install the NATS server the JetStream tests start, as their skip notice
/// prints it.
pub const NATS_SETUP: &str = "apt-get install nats-server";

/// Where the workspace root is: the Python peers' virtualenv lives there.
fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The Python interpreter of the test virtualenv: `DISTLOG_PYTHON`, else
/// `.venv/bin/python` at the workspace root.
fn python_path() -> PathBuf {
    std::env::var_os("DISTLOG_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// Whether the Python peers can run: the interpreter exists and imports pyzmq and
/// distlog. Checked once per test process.
fn peers_present() -> bool {
    static PRESENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PRESENT.get_or_init(|| {
        Command::new(python_path())
            .args(["-c", "import zmq, distlog"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// True when the Python peers are there. Otherwise it writes a skip notice for the
/// running test straight to the terminal (the test harness captures only `print!`),
/// and returns false; with `DISTLOG_REQUIRE_PEERS` set to anything but `0` it panics
/// instead. `suite` names the test binary; the harness names each test's thread.
pub fn python_peers_or_skip(suite: &str) -> bool {
    if peers_present() {
        return true;
    }
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => format!("{suite}::{name}"),
        _ => suite.to_string(),
    };
    let required = std::env::var("DISTLOG_REQUIRE_PEERS").is_ok_and(|v| v != "0");
    let why = format!(
        "Python peers not found: {} cannot import zmq and distlog",
        python_path().display()
    );
    if required {
        panic!("{test}: {why} (DISTLOG_REQUIRE_PEERS is set; set them up with: {SETUP})");
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: {why}. To run it: {SETUP} (or set DISTLOG_PYTHON)"
    );
    false
}

/// The skip-or-fail decision for a missing peer: false after a notice on the
/// terminal, or a panic with `DISTLOG_REQUIRE_PEERS` set.
fn skip_or_fail(suite: &str, why: &str, setup: &str) -> bool {
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => format!("{suite}::{name}"),
        _ => suite.to_string(),
    };
    if std::env::var("DISTLOG_REQUIRE_PEERS").is_ok_and(|v| v != "0") {
        panic!("{test}: {why} (DISTLOG_REQUIRE_PEERS is set; set it up with: {setup})");
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: {why}. To run it: {setup}"
    );
    false
}

/// The `nats-server` binary: `DISTLOG_NATS_SERVER`, else the first on `PATH`.
pub fn nats_server_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DISTLOG_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

/// True when `nats-server` is installed; otherwise a skip notice (or, with
/// `DISTLOG_REQUIRE_PEERS`, a panic), as for the Python peers.
pub fn nats_server_or_skip(suite: &str) -> bool {
    nats_server_path().is_some() || skip_or_fail(suite, "nats-server not found on PATH", NATS_SETUP)
}

/// Returns from the calling test, after saying it was skipped, when `nats-server` is
/// not installed (see [`nats_server_or_skip`]).
#[macro_export]
macro_rules! require_nats_server {
    () => {
        if !$crate::nats_server_or_skip(module_path!()) {
            return;
        }
    };
}

/// True when the test virtualenv's Python imports `nats` (nats-py) besides the
/// peers; otherwise a skip notice or, with `DISTLOG_REQUIRE_PEERS`, a panic.
pub fn python_nats_or_skip(suite: &str) -> bool {
    if !python_peers_or_skip(suite) {
        return false;
    }
    static PRESENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let present = *PRESENT.get_or_init(|| {
        Command::new(python_path())
            .args(["-c", "import nats"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    present
        || skip_or_fail(
            suite,
            &format!("{} cannot import nats (nats-py)", python_path().display()),
            SETUP,
        )
}

/// Returns from the calling test when Python's nats-py is missing (see
/// [`python_nats_or_skip`]).
#[macro_export]
macro_rules! require_python_nats {
    () => {
        if !$crate::python_nats_or_skip(module_path!()) {
            return;
        }
    };
}

/// A `nats-server -js` of the test's own on a free loopback port, with a store in a
/// fresh temporary directory; killed (and the store removed) when dropped, also when
/// the test panics.
pub struct NatsServer {
    child: Option<Child>,
    /// The port it listens on.
    pub port: u16,
    /// Its JetStream store.
    pub store: PathBuf,
}

impl NatsServer {
    /// Starts one and waits until it listens. Call [`require_nats_server!`] first.
    pub fn start() -> NatsServer {
        let port = free_port();
        let store =
            std::env::temp_dir().join(format!("distlog-nats-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        let mut s = NatsServer {
            child: None,
            port,
            store,
        };
        s.restart();
        s
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port and store (after [`NatsServer::stop`]), and
    /// waits until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let bin = nats_server_path().expect("nats-server (call require_nats_server! first)");
        let child = Command::new(bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        wait_listening(self.port);
    }

    /// Kills it (SIGKILL: no goodbye to clients) and reaps it; the store stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// The nodes of a [`NatsCluster`].
pub const CLUSTER_SIZE: usize = 3;

/// One node of a [`NatsCluster`].
struct ClusterNode {
    child: Option<Child>,
    /// Its `server_name`, which JetStream names leaders by.
    name: String,
    port: u16,
    /// Its HTTP monitoring port (`/healthz`, `/jsz`, `/routez`).
    monitor: u16,
}

/// What a running node of a [`NatsCluster`] says about a stream (its `/jsz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    /// The node that leads the stream's replicas, by index; `None` while there is
    /// none (an election).
    pub leader: Option<usize>,
    /// Messages stored.
    pub messages: u64,
}

/// Three `nats-server -js` of the test's own, clustered on loopback (free ports for
/// clients, routes and monitoring, a cluster name of its own), each with a store in
/// one fresh temporary directory; all killed (and the stores removed) when dropped,
/// also when the test panics.
pub struct NatsCluster {
    nodes: Vec<ClusterNode>,
    dir: PathBuf,
    /// The cluster's name.
    pub name: String,
}

impl NatsCluster {
    /// Starts the nodes and waits until every one sees the other two over its routes
    /// and JetStream has a meta leader that all agree on, so that a stream of 3
    /// replicas can be created at once. Call [`require_nats_server!`] first.
    pub fn start() -> NatsCluster {
        let bin = nats_server_path().expect("nats-server (call require_nats_server! first)");
        let ports = free_ports::<{ 3 * CLUSTER_SIZE }>();
        let (clients, rest) = ports.split_at(CLUSTER_SIZE);
        let (routes, monitors) = rest.split_at(CLUSTER_SIZE);
        let name = format!("distlog-test-{}-{}", std::process::id(), clients[0]);
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        let mut cluster = NatsCluster {
            nodes: Vec::new(),
            dir,
            name,
        };
        for i in 0..CLUSTER_SIZE {
            let others: Vec<String> = (0..CLUSTER_SIZE)
                .filter(|&j| j != i)
                .map(|j| format!("nats://127.0.0.1:{}", routes[j]))
                .collect();
            let node = format!("n{i}");
            let child = Command::new(&bin)
                .args(["-js", "-a", "127.0.0.1", "-p", &clients[i].to_string()])
                .args(["-m", &monitors[i].to_string(), "-n", &node])
                .args(["--cluster_name", &cluster.name])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", routes[i])])
                .args(["--routes", &others.join(",")])
                .arg("-sd")
                .arg(cluster.dir.join(&node))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server");
            cluster.nodes.push(ClusterNode {
                child: Some(child),
                name: node,
                port: clients[i],
                monitor: monitors[i],
            });
        }
        cluster.wait_ready();
        cluster
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let leaders: Vec<Option<String>> = self
                .nodes
                .iter()
                .map(|n| {
                    let healthy =
                        http_get(n.monitor, "/healthz").is_some_and(|b| b.contains("\"ok\""));
                    let routes =
                        monitor_json(n.monitor, "/routez").and_then(|v| v["num_routes"].as_u64());
                    let jsz = monitor_json(n.monitor, "/jsz")?;
                    let meta = &jsz["meta_cluster"];
                    let size = meta["cluster_size"].as_u64();
                    let leader = meta["leader"].as_str().filter(|l| !l.is_empty());
                    let ready = healthy
                        && routes == Some(CLUSTER_SIZE as u64 - 1)
                        && size == Some(CLUSTER_SIZE as u64);
                    if !ready {
                        return None;
                    }
                    leader.map(str::to_string)
                })
                .collect();
            if leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the NATS cluster was not ready within 30 s: meta leaders seen {leaders:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `nats://127.0.0.1:PORT` of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port)
    }

    /// Every node's URL, running or not.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    /// The `server_name` of node `i`.
    pub fn node_name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Whether node `i` has not been killed.
    pub fn running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// Kills node `i` (SIGKILL: no goodbye to clients or to the other nodes) and
    /// reaps it; its store stays until the cluster is dropped.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The running node that process `pid` has a TCP connection to, from its open
    /// sockets (`/proc/PID/fd` and `/proc/net/tcp`, so Linux only: `None` elsewhere,
    /// and when it is connected to none).
    pub fn node_of(&self, pid: u32) -> Option<usize> {
        let inodes: std::collections::HashSet<String> =
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .ok()?
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_str()?;
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect();
        let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
        // Each line: sl, local address, remote address (hex IP:port), state, ...,
        // and the socket's inode as the tenth field.
        let remote_ports: Vec<u16> = tcp
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let established = fields.get(3) == Some(&"01");
                let ours = inodes.contains(*fields.get(9)?);
                let (_, port) = fields.get(2)?.split_once(':')?;
                (established && ours)
                    .then(|| u16::from_str_radix(port, 16).ok())
                    .flatten()
            })
            .collect();
        self.nodes
            .iter()
            .position(|n| n.child.is_some() && remote_ports.contains(&n.port))
    }

    /// What the first running node says about `stream`, or `None` when it does not
    /// know the stream (or does not answer).
    pub fn stream(&self, stream: &str) -> Option<StreamState> {
        let node = self.nodes.iter().find(|n| n.child.is_some())?;
        let jsz = monitor_json(node.monitor, "/jsz?accounts=true&streams=true")?;
        let detail = jsz["account_details"]
            .as_array()?
            .iter()
            .filter_map(|a| a["stream_detail"].as_array())
            .flatten()
            .find(|s| s["name"] == stream)?;
        let leader = detail["cluster"]["leader"].as_str();
        Some(StreamState {
            leader: leader.and_then(|l| self.nodes.iter().position(|n| n.name == l)),
            messages: detail["state"]["messages"].as_u64()?,
        })
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The body of `GET path` on a local HTTP port, or `None` if it does not answer 200
/// within 2 s.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    // HTTP/1.0: the server closes after the response, which ends the read.
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8(out).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_string())
}

/// A monitoring endpoint's JSON.
fn monitor_json(port: u16, path: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&http_get(port, path)?).ok()
}

/// Returns from the calling test, after saying it was skipped, when the Python peers
/// are missing (see [`python_peers_or_skip`]).
#[macro_export]
macro_rules! require_python {
    () => {
        if !$crate::python_peers_or_skip(module_path!()) {
            return;
        }
    };
}

/// The Python interpreter with the peers installed. Call [`require_python!`] first.
pub fn python() -> PathBuf {
    let p = python_path();
    assert!(
        peers_present(),
        "Python peers not found at {} (set them up with: {SETUP}, or set DISTLOG_PYTHON)",
        p.display()
    );
    p
}

/// A script of the Python peers, from this crate's `py/`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("py")
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads every line of a child's stdout once it exits, failing on a bad exit.
pub fn finish(child: Child) -> String {
    let out = child.wait_with_output().expect("wait for child");
    assert!(out.status.success(), "child failed: {:?}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Python's decoders, one line per body: `json.dumps(json.loads(b))` for a JSON body
/// (`pickle == false`), of `pickle.loads(b)` for a pickle one.
pub fn python_decode(bodies: &[(bool, Vec<u8>)]) -> Vec<String> {
    let mut child = Command::new(python())
        .arg(script("codec.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start codec.py");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for (pickle, body) in bodies {
            let k = if *pickle { "P" } else { "J" };
            writeln!(stdin, "{k} {}", base64(body)).expect("write to codec.py");
        }
    }
    finish(child).lines().map(str::to_string).collect()
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

/// A real libzmq collector (`py/pull.py`) whose decoded records arrive on a channel
/// as JSON values.
pub struct PyCollector {
    /// The Python process.
    pub child: Child,
    /// Each record it received, as JSON.
    pub records: Receiver<serde_json::Value>,
}

impl PyCollector {
    /// Binds `endpoint`, stops after `count` records or `silence_s` quiet seconds.
    pub fn start(endpoint: &str, count: usize, silence_s: u32) -> PyCollector {
        PyCollector::start_with(endpoint, count, silence_s, &[])
    }

    /// [`start`](PyCollector::start) as a CURVE server with this secret key (Z85).
    pub fn start_curve(
        endpoint: &str,
        count: usize,
        silence_s: u32,
        secret_z85: &str,
    ) -> PyCollector {
        PyCollector::start_with(endpoint, count, silence_s, &["--curve-secret", secret_z85])
    }

    fn start_with(endpoint: &str, count: usize, silence_s: u32, extra: &[&str]) -> PyCollector {
        use std::io::BufRead;
        let (count, silence) = (count.to_string(), silence_s.to_string());
        let mut args = vec![endpoint, &count, &silence];
        args.extend_from_slice(extra);
        let mut child = spawn_python("pull.py", &args);
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
            .recv_timeout(Duration::from_secs(30))
            .expect("collector ready");
        PyCollector { child, records: rx }
    }

    /// Collects records until `n` arrived or `timeout` passed.
    pub fn take(&self, n: usize, timeout: Duration) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
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
