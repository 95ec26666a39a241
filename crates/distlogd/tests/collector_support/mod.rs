//! Helpers for the collector tests: run the real `distlogd` / `distlog` binaries, talk
//! to them with zeromq sockets on the runtime of the enabled feature, find Python.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use distlog::{Record, Value};

// Not every suite that includes this module calls them.
#[allow(unused_imports)]
pub use distlog_testkit::{python, script};
use zeromq::{PushSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

/// Generous: the test machine may be a loaded 2-core box.
pub const LONG: Duration = Duration::from_secs(60);

/// A runtime for zeromq sockets that lives as long as the sockets it drives.
pub struct Rt {
    #[cfg(all(feature = "tokio", not(feature = "async-std")))]
    rt: tokio::runtime::Runtime,
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            #[cfg(all(feature = "tokio", not(feature = "async-std")))]
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime"),
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        #[cfg(feature = "async-std")]
        {
            async_std::task::block_on(f)
        }
        #[cfg(all(feature = "tokio", not(feature = "async-std")))]
        {
            self.rt.block_on(f)
        }
    }

    /// Runs `f` for at most `d`.
    pub fn block_on_timeout<F: std::future::Future>(&self, d: Duration, f: F) -> Option<F::Output> {
        self.block_on(async {
            use futures::future::{select, Either};
            let f = std::pin::pin!(f);
            let t = std::pin::pin!(sleep(d));
            match select(f, t).await {
                Either::Left((out, _)) => Some(out),
                Either::Right(_) => None,
            }
        })
    }
}

async fn sleep(d: Duration) {
    #[cfg(feature = "async-std")]
    async_std::task::sleep(d).await;
    #[cfg(all(feature = "tokio", not(feature = "async-std")))]
    tokio::time::sleep(d).await;
}

/// A multipart message of these frames (at least one).
pub fn multipart(frames: &[&[u8]]) -> ZmqMessage {
    let mut message = ZmqMessage::from(frames[0].to_vec());
    for f in &frames[1..] {
        message.push_back(f.to_vec().into());
    }
    message
}

/// A PUSH socket connected to a collector, as an application would have.
pub struct Pusher {
    rt: Rt,
    socket: PushSocket,
}

impl Pusher {
    pub fn connect(endpoint: &str) -> Pusher {
        let rt = Rt::new();
        let socket = rt.block_on(async {
            let mut s = PushSocket::new();
            s.connect(endpoint).await.expect("connect PUSH");
            s
        });
        Pusher { rt, socket }
    }

    /// Sends one multipart message (any number of frames, at least one).
    pub fn send(&mut self, frames: &[&[u8]]) {
        let message = multipart(frames);
        let socket = &mut self.socket;
        self.rt
            .block_on(async { socket.send(message).await })
            .expect("send");
    }
}

/// A SUB socket connected to a collector's PUB endpoint.
pub struct Subscriber {
    rt: Rt,
    socket: SubSocket,
}

impl Subscriber {
    pub fn connect(endpoint: &str, prefix: &str) -> Subscriber {
        let rt = Rt::new();
        let socket = rt.block_on(async {
            let mut s = SubSocket::new();
            s.subscribe(prefix).await.expect("subscribe");
            s.connect(endpoint).await.expect("connect SUB");
            s
        });
        Subscriber { rt, socket }
    }

    /// The next message's frames, or `None` after `wait`.
    pub fn recv(&mut self, wait: Duration) -> Option<Vec<Vec<u8>>> {
        let socket = &mut self.socket;
        self.rt
            .block_on_timeout(wait, async { socket.recv().await })
            .map(|m| {
                m.expect("recv")
                    .into_vec()
                    .into_iter()
                    .map(|b| b.to_vec())
                    .collect()
            })
    }
}

/// A running `distlogd`, killed when dropped.
pub struct Daemon {
    child: Child,
    stdout: Option<Receiver<String>>,
    stderr: Arc<Mutex<String>>,
    /// The PULL endpoint it listens on (empty when it has none).
    pub pull: String,
    /// The acknowledged (ROUTER) endpoint, with [`Daemon::start_acked`].
    pub ack: Option<String>,
    /// The PUB endpoint, with `--publish`.
    pub publish: Option<String>,
}

/// Collects a child's stderr into a shared string, echoing it for failed-test logs.
fn collect(pipe: impl Read + Send + 'static, name: &'static str) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let t = text.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let s = String::from_utf8_lossy(&line);
                    eprint!("[{name}] {s}");
                    t.lock().unwrap().push_str(&s);
                }
            }
        }
    });
    text
}

/// Sends each stdout line to a channel.
fn lines(pipe: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    rx
}

/// Waits up to `LONG` for a child peer to exit; kills it and panics after that, so a
/// peer that hangs fails its test instead of stalling the suite.
pub fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + LONG;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {LONG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `text` contains `needle`; panics after `LONG`.
pub fn wait_for(text: &Arc<Mutex<String>>, needle: &str) -> String {
    let deadline = Instant::now() + LONG;
    loop {
        let now = text.lock().unwrap().clone();
        if now.contains(needle) {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {needle:?} in:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The endpoint announced as `<prefix>ENDPOINT` on a line of `text`.
fn announced(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.split_once(prefix).map(|(_, ep)| ep.trim().to_string()))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))
}

impl Daemon {
    /// Starts `distlogd --bind tcp://127.0.0.1:0 ARGS` (with `--publish` in `args`,
    /// pass `tcp://127.0.0.1:0` too) and waits until it listens.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with_env(args, &[])
    }

    /// [`start`](Daemon::start) with these environment variables, and none of the
    /// ones that choose colors unless given.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(&["--bind", "tcp://127.0.0.1:0"], args, env, true, false)
    }

    /// Starts `distlogd --ack-bind tcp://127.0.0.1:0 ARGS`, with a plain
    /// `--bind tcp://127.0.0.1:0` too when `plain`, and waits until it listens.
    pub fn start_acked(args: &[&str], plain: bool) -> Daemon {
        let mut pre = vec!["--ack-bind", "tcp://127.0.0.1:0"];
        if plain {
            pre.extend(["--bind", "tcp://127.0.0.1:0"]);
        }
        Daemon::spawn(&pre, args, &[], plain, true)
    }

    /// Starts `distlogd --ack-bind ENDPOINT ARGS` on a given endpoint (to restart a
    /// collector where its producers look for it) and waits until it listens.
    pub fn start_acked_at(endpoint: &str, args: &[&str]) -> Daemon {
        Daemon::spawn(&["--ack-bind", endpoint], args, &[], false, true)
    }

    /// Starts `distlogd --bind ENDPOINT ARGS` on a given endpoint and waits until it
    /// listens.
    pub fn start_at(endpoint: &str, args: &[&str]) -> Daemon {
        Daemon::spawn(&["--bind", endpoint], args, &[], true, false)
    }

    fn spawn(
        pre: &[&str],
        args: &[&str],
        env: &[(&str, &str)],
        plain: bool,
        acked: bool,
    ) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_distlogd"))
            .args(pre)
            .args(args)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start distlogd");
        let stdout = lines(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"), "distlogd");
        let mut text = String::new();
        if plain {
            text = wait_for(&stderr, "listening on ");
        }
        let ack = if acked {
            text = wait_for(&stderr, "acknowledged input on ");
            Some(announced(&text, "acknowledged input on "))
        } else {
            None
        };
        let publish = if args.contains(&"--publish") {
            text = wait_for(&stderr, "publishing on ");
            Some(announced(&text, "publishing on "))
        } else {
            None
        };
        let pull = if plain {
            announced(&text, "listening on ")
        } else {
            String::new()
        };
        Daemon {
            child,
            stdout: Some(stdout),
            stderr,
            pull,
            ack,
            publish,
        }
    }

    /// The next stdout line, or `None` after `LONG`.
    pub fn line(&self) -> Option<String> {
        match self.stdout.as_ref()?.recv_timeout(LONG) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Every stdout line until the process closes stdout.
    pub fn rest_of_stdout(&mut self) -> Vec<String> {
        let Some(rx) = self.stdout.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Ok(l) = rx.recv_timeout(LONG) {
            out.push(l);
        }
        out
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle` and returns all of it.
    pub fn wait_stderr(&self, needle: &str) -> String {
        wait_for(&self.stderr, needle)
    }

    /// Sends SIGKILL and reaps the process: no drain, no final stats.
    pub fn sigkill(&mut self) {
        // SAFETY: kill with a pid we own and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill -KILL");
        let _ = self.child.wait();
    }

    /// Sends `signal` (SIGSTOP, SIGCONT, ...) and returns at once.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill with a pid we own and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill -{signal}");
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill with a pid we own and a valid signal number.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM");
        self.wait()
    }

    /// Waits for the exit (after `LONG`, kills it and panics).
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LONG;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Give the stderr reader a moment to take the last lines.
                let _ = wait_until(Duration::from_secs(5), || {
                    self.stderr().contains("final stats")
                });
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("distlogd did not exit; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` until it is true or `d` passes; returns whether it became true.
pub fn wait_until(d: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + d;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `key=value` number from the final stats line (0 if absent).
pub fn final_stat(stderr: &str, key: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("final stats"))
        .unwrap_or_else(|| panic!("no final stats in:\n{stderr}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map_or(0, |v| v.parse().expect("number"))
}

/// A `distlog tail` process.
pub struct Tail {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl Tail {
    pub fn start(args: &[&str]) -> Tail {
        let mut child = Command::new(env!("CARGO_BIN_EXE_distlog"))
            .arg("tail")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start distlog tail");
        let stderr = collect(child.stderr.take().expect("stderr"), "distlog");
        Tail { child, stderr }
    }

    /// Waits for the exit (killing it after `LONG`) and returns status and stdout.
    pub fn finish(&mut self) -> (ExitStatus, String) {
        let mut pipe = self.child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + LONG;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "distlog tail did not exit:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (status, reader.join().expect("stdout reader"))
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A JSON-encoded record body.
pub fn json_body(r: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    distlog::serialize::json::encode_record(r, &mut out);
    out
}

/// A pickle-encoded record body.
pub fn pickle_body(r: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    distlog::serialize::pickle::encode_record(r, &mut out);
    out
}

/// A small record from logger `name` with message `msg`.
pub fn simple(name: &str, msg: &str) -> Record {
    Record::from_pairs([
        ("name", Value::from(name)),
        ("levelname", "INFO".into()),
        ("levelno", 20.into()),
        ("created", 1_700_000_000.25.into()),
        ("context", Value::None),
        ("message", msg.into()),
        ("hostname", "testhost".into()),
    ])
}

/// Equality that holds NaN equal to NaN (a record that carries NaN must come back).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| same(ka, kb) && same(va, vb))
        }
        _ => a == b,
    }
}

/// A record as the dict value it decodes from.
pub fn as_dict(r: &Record) -> Value {
    Value::Dict(
        r.fields()
            .map(|(k, v)| (Value::from(k), v.clone()))
            .collect(),
    )
}

/// Splits a jsonl line into its topic and its record (as a dict value).
pub fn parse_line(line: &str) -> (String, Value) {
    let v = distlog::serialize::json::decode_value(line.as_bytes(), &Default::default())
        .unwrap_or_else(|e| panic!("bad jsonl line {line:?}: {e}"));
    let topic = v
        .get("topic")
        .and_then(Value::as_str)
        .expect("topic")
        .to_string();
    let record = v.get("record").expect("record").clone();
    (topic, record)
}

/// Where cargo put the `emit` example of the `distlog` package (built by `cargo test`
/// for the workspace, beside this test's own folder).
pub fn emit_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let profile = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps");
    let emit = profile.join("examples").join("emit");
    assert!(
        emit.exists(),
        "{} not built: `cargo test --workspace` builds it (or `cargo build --example emit`)",
        emit.display()
    );
    emit
}

/// Starts the `emit` example sending `count` records (`--system T`) to each endpoint,
/// with `extra` flags; its stderr is kept for [`emit_ok`] or the caller.
pub fn emit(endpoints: &[&str], count: u64, extra: &[&str]) -> Child {
    let mut cmd = Command::new(emit_binary());
    for e in endpoints {
        cmd.args(["--endpoint", e]);
    }
    cmd.args(["--count", &count.to_string(), "--system", "T"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start emit")
}

/// Waits for emit (bounded), echoes its stderr, and says whether it exited 0.
pub fn emit_ok(mut child: Child) -> bool {
    let status = wait_bounded(&mut child, "emit");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    eprint!("[emit] {err}");
    status.success()
}
