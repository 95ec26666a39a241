//! CURVE end to end, with real processes: `distlog keygen` makes the keys, the real
//! Python distlog handler (on a libzmq CURVE socket), `emit` and the Rust handler send,
//! `distlogd --curve-secret [--curve-allow]` receives and re-publishes to a CURVE
//! `distlog tail`, and a pyzmq CURVE PULL receives from the Rust handler through a
//! proxy that records the bytes. Needs the Python peers (`require_python!`).

mod collector_support;

use collector_support::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh folder for one test's keys and files.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("distlogd-curve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `distlog keygen --out DIR/NAME [extra]`: its exit success and stderr.
fn run_keygen(name: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_distlog"))
        .args(["keygen", "--out"])
        .arg(name)
        .args(extra)
        .output()
        .expect("run distlog keygen");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A key pair made by `distlog keygen`: the secret key file and the public key.
struct Keys {
    secret_file: PathBuf,
    public: String,
}

fn keygen(dir: &Path, name: &str) -> Keys {
    let base = dir.join(name);
    let (ok, stderr) = run_keygen(&base, &[]);
    assert!(ok, "keygen failed: {stderr}");
    let public = std::fs::read_to_string(base.with_extension("pub")).expect("NAME.pub");
    Keys {
        secret_file: base.with_extension("key"),
        public: public.trim().to_string(),
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Runs `curve_send.py`: `count` records "LABEL record I of COUNT" from the Python
/// distlog handler, over CURVE with `keys` = (server public key, client) or NULL.
fn python_send(endpoint: &str, label: &str, count: usize, keys: Option<(&str, &Keys)>) {
    let count = count.to_string();
    let mut args = vec![endpoint, label, count.as_str(), "1.0"];
    if let Some((server, client)) = keys {
        args.push(server);
        args.push(path_str(&client.secret_file));
    }
    let mut child = Command::new(python())
        .arg(script("curve_send.py"))
        .args(&args)
        .stdin(Stdio::null())
        .spawn()
        .expect("run curve_send.py");
    let status = wait_bounded(&mut child, &format!("curve_send.py {label}"));
    assert!(status.success(), "curve_send.py {label}: {status:?}");
}

/// The messages of the records in a JSON-lines file.
fn file_messages(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let (_, record) = parse_line(line);
            record
                .get("message")
                .and_then(distlog::Value::as_str)
                .expect("a message")
                .to_string()
        })
        .collect()
}

fn count_label(messages: &[String], label: &str) -> usize {
    let prefix = format!("{label} record ");
    messages.iter().filter(|m| m.starts_with(&prefix)).count()
}

/// Sends SIGHUP to the daemon.
fn sighup(d: &Daemon) {
    // SAFETY: kill with a pid we own and a valid signal number.
    let rc = unsafe { libc::kill(d.pid() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill -HUP");
}

/// The last periodic stats line's `key=value` number (0 if absent).
fn periodic_stat(stderr: &str, key: &str) -> u64 {
    stderr
        .lines()
        .rfind(|l| l.contains("distlogd: stats "))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        })
        .map_or(0, |v| v.parse().expect("number"))
}

/// The real Python distlog handler, on a pyzmq PUSH set up for CURVE, sends to
/// `distlogd --curve-secret`: every record reaches the file sink.
#[test]
fn python_distlog_over_curve_reaches_the_file_sink() {
    distlog_testkit::require_python!();
    let dir = temp_dir("python");
    let server = keygen(&dir, "collector");
    let client = keygen(&dir, "shop");
    let out = dir.join("all.jsonl");
    let mut d = Daemon::start(&[
        "--curve-secret",
        path_str(&server.secret_file),
        "--output",
        "none",
        "--file",
        path_str(&out),
        "--stats-interval",
        "0",
    ]);
    assert!(
        d.stderr().contains(&server.public),
        "distlogd names its public key"
    );
    python_send(&d.pull, "py", 300, Some((&server.public, &client)));
    assert!(wait_until(LONG, || count_label(&file_messages(&out), "py") == 300));
    assert!(d.terminate().success());
    let messages = file_messages(&out);
    assert_eq!(messages.len(), 300);
    for i in 0..300 {
        assert!(
            messages.contains(&format!("py record {i} of 300")),
            "record {i}"
        );
    }
    let stderr = d.stderr();
    assert!(final_stat(&stderr, "curve.accepted") >= 1, "{stderr}");
    assert_eq!(final_stat(&stderr, "curve.refused.not_allowed"), 0);
    assert_eq!(final_stat(&stderr, "curve.refused.handshake_failed"), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `--curve-allow`, a client whose key is not listed and a plaintext peer get
/// nothing into the sink, each refusal counted by its reason, and distlogd serves an
/// allowed client afterwards. SIGHUP after adding the key lets that client in; a
/// reload of a broken file keeps the keys allowed before.
#[test]
fn refused_clients_deliver_nothing_and_sighup_lets_a_key_in() {
    distlog_testkit::require_python!();
    let dir = temp_dir("allow");
    let server = keygen(&dir, "collector");
    let allowed = keygen(&dir, "allowed");
    let stranger = keygen(&dir, "stranger");
    let allow = dir.join("allowed-clients");
    std::fs::write(
        &allow,
        format!("# the shop\n{}  # allowed\n\n", allowed.public),
    )
    .expect("allow file");
    let out = dir.join("all.jsonl");
    let mut d = Daemon::start(&[
        "--curve-secret",
        path_str(&server.secret_file),
        "--curve-allow",
        path_str(&allow),
        "--output",
        "none",
        "--file",
        path_str(&out),
        "--stats-interval",
        "0.2",
    ]);
    d.wait_stderr("1 client keys allowed");

    python_send(
        &d.pull,
        "stranger-early",
        20,
        Some((&server.public, &stranger)),
    );
    python_send(&d.pull, "plain", 20, None);
    // Still up, and an allowed client delivers.
    python_send(&d.pull, "allowed", 20, Some((&server.public, &allowed)));
    assert!(wait_until(LONG, || count_label(
        &file_messages(&out),
        "allowed"
    ) == 20));
    assert!(wait_until(LONG, || {
        let stderr = d.stderr();
        periodic_stat(&stderr, "curve.refused.not_allowed") >= 1
            && periodic_stat(&stderr, "curve.refused.handshake_failed") >= 1
    }));

    // The stranger's key is added; after SIGHUP it may send.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&allow)
        .expect("allow file");
    writeln!(f, "{}", stranger.public).expect("append a key");
    drop(f);
    sighup(&d);
    d.wait_stderr("2 client keys allowed");
    python_send(
        &d.pull,
        "stranger-later",
        20,
        Some((&server.public, &stranger)),
    );
    assert!(wait_until(LONG, || count_label(
        &file_messages(&out),
        "stranger-later"
    ) == 20));

    // A broken allow file is refused on reload; the two keys stay allowed.
    std::fs::write(&allow, format!("{}\nnot-a-key\n", allowed.public)).expect("allow file");
    sighup(&d);
    let stderr = d.wait_stderr("reload failed");
    assert!(
        stderr.contains("keeping the 2 client keys allowed before") && stderr.contains("line 2"),
        "{stderr}"
    );
    python_send(
        &d.pull,
        "stranger-kept",
        20,
        Some((&server.public, &stranger)),
    );
    assert!(wait_until(LONG, || count_label(
        &file_messages(&out),
        "stranger-kept"
    ) == 20));

    assert!(
        d.terminate().success(),
        "distlogd kept running until told to stop"
    );
    let messages = file_messages(&out);
    assert_eq!(count_label(&messages, "stranger-early"), 0);
    assert_eq!(count_label(&messages, "plain"), 0);
    assert_eq!(messages.len(), 60, "only the allowed sends arrived");
    let stderr = d.stderr();
    assert!(
        final_stat(&stderr, "curve.refused.not_allowed") >= 1,
        "{stderr}"
    );
    assert!(
        final_stat(&stderr, "curve.refused.handshake_failed") >= 1,
        "{stderr}"
    );
    assert!(final_stat(&stderr, "curve.accepted") >= 3, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP proxy from a port of its own to `upstream`, keeping every byte the client
/// sent; it serves connections until the test ends.
fn recording_proxy(upstream: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let port = listener.local_addr().expect("proxy addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut c_read, mut s_write) = (
                client.try_clone().expect("clone"),
                server.try_clone().expect("clone"),
            );
            let (mut s_read, mut c_write) = (server, client);
            let record = Arc::clone(&record);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    record.lock().expect("lock").extend_from_slice(&buf[..n]);
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, seen)
}

/// The Rust handler with `.curve(..)` sends to a libzmq (pyzmq) CURVE PULL: every
/// record arrives, delivery is confirmed, and the bytes on the wire, recorded by a
/// proxy between them, never contain a record's message text.
#[test]
fn rust_handler_over_curve_to_pyzmq_through_a_recording_proxy() {
    distlog_testkit::require_python!();
    use distlog::curve::CurveKeyPair;
    use distlog::handler::Handler;
    use distlog::record::Event;

    let server = CurveKeyPair::generate().expect("server keys");
    let client = CurveKeyPair::generate().expect("client keys");
    let pull_port = distlog_testkit::free_port();
    const N: usize = 500;
    let collector = distlog_testkit::PyCollector::start_curve(
        &format!("tcp://127.0.0.1:{pull_port}"),
        N,
        30,
        &server.secret.to_z85(),
    );
    let (proxy_port, seen) = recording_proxy(pull_port);
    let guard = Handler::builder()
        .endpoint(format!("tcp://127.0.0.1:{proxy_port}"))
        .curve(server.public, client.secret.clone())
        .flush_timeout(Duration::from_secs(20))
        .spawn()
        .expect("handler");
    for i in 0..N {
        guard.handler().enqueue(Event::new(
            log::Level::Info,
            "curve.test",
            format!("confidential-{i:04} order paid"),
        ));
    }
    let report = guard.shutdown();
    assert_eq!((report.sent, report.dropped), (N as u64, 0), "{report:?}");
    let records = collector.take(N, LONG);
    assert_eq!(records.len(), N);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r["record"]["message"],
            format!("confidential-{i:04} order paid")
        );
        assert_eq!(r["frames"], 2);
    }
    let wire = seen.lock().expect("lock").clone();
    assert!(
        wire.len() > N * 40,
        "the proxy saw the traffic: {} bytes",
        wire.len()
    );
    assert!(
        wire.windows(5).any(|w| w == b"CURVE"),
        "the greeting names CURVE"
    );
    for needle in [&b"confidential"[..], b"order paid", b"curve.test"] {
        assert!(
            !wire.windows(needle.len()).any(|w| w == needle),
            "{:?} travelled in plaintext",
            String::from_utf8_lossy(needle)
        );
    }
}

/// `emit --curve-server-key --curve-secret` sends to `distlogd --curve-secret
/// --curve-allow`: every record arrives in the file; `distlog tail` with the CURVE
/// options receives them from the CURVE `--publish` socket, and a plaintext tail is
/// refused.
#[test]
fn emit_and_tail_over_curve() {
    distlog_testkit::require_python!();
    let dir = temp_dir("emit");
    let server = keygen(&dir, "collector");
    let sender = keygen(&dir, "emit");
    let tailer = keygen(&dir, "tail");
    let allow = dir.join("allowed");
    std::fs::write(&allow, format!("{}\n{}\n", sender.public, tailer.public)).expect("allow");
    let out = dir.join("all.jsonl");
    let mut d = Daemon::start(&[
        "--curve-secret",
        path_str(&server.secret_file),
        "--curve-allow",
        path_str(&allow),
        "--output",
        "none",
        "--file",
        path_str(&out),
        "--publish",
        "tcp://127.0.0.1:0",
        "--stats-interval",
        "0",
    ]);
    let publish = d.publish.clone().expect("publish endpoint");
    const N: usize = 2000;
    let count = N.to_string();
    let mut tail = Tail::start(&[
        "--connect",
        &publish,
        "--json",
        "--count",
        &count,
        "--curve-server-key",
        &server.public,
        "--curve-secret",
        path_str(&tailer.secret_file),
    ]);
    let mut plain = Tail::start(&["--connect", &publish, "--json", "--duration", "8"]);
    wait_for(&tail.stderr, "connected to");
    // A subscription travels after the handshake: give it time to reach the PUB.
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    let emit = Command::new(emit_binary())
        .args(["--endpoint", &d.pull, "--count", &count, "--system", "T"])
        .args(["--curve-server-key", &server.public])
        .arg("--curve-secret")
        .arg(&sender.secret_file)
        .output()
        .expect("run emit");
    let emit_err = String::from_utf8_lossy(&emit.stderr);
    assert!(emit.status.success(), "emit: {emit_err}");
    assert!(
        emit_err.contains(&format!("sent {N} dropped 0")),
        "emit: {emit_err}"
    );
    assert!(started.elapsed() < LONG);

    let (status, stdout) = tail.finish();
    assert!(status.success());
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), N, "tail over CURVE got every record");
    let (topic, record) = parse_line(lines[0]);
    assert_eq!(topic, "TLJ");
    assert_eq!(
        record.get("message").and_then(distlog::Value::as_str),
        Some(format!("record 0 of {N}").as_str())
    );
    // The plaintext tail's handshake is refused: it says so and exits, with nothing.
    let (status, plain_out) = plain.finish();
    assert!(!status.success());
    assert!(plain_out.is_empty(), "a plaintext tail got {plain_out}");
    assert!(plain.stderr.lock().unwrap().contains("cannot connect"));

    assert!(d.terminate().success());
    let messages = file_messages(&out);
    assert_eq!(messages.len(), N);
    let stderr = d.stderr();
    // emit and the CURVE tail were accepted; the plaintext tail failed its handshake.
    assert!(final_stat(&stderr, "curve.accepted") >= 2, "{stderr}");
    assert!(
        final_stat(&stderr, "curve.refused.handshake_failed") >= 1,
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `distlog keygen --out NAME`: NAME.key (mode 0600) and NAME.pub, 40 Z85 characters
/// and a newline each, and libzmq derives the same public key from the secret; it
/// refuses to overwrite without `--force`, and a forced key is still 0600.
#[test]
fn keygen_writes_a_libzmq_key_pair_and_refuses_to_overwrite() {
    distlog_testkit::require_python!();
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("keygen");
    let base = dir.join("collector");
    let (ok, stderr) = run_keygen(&base, &[]);
    assert!(ok, "{stderr}");
    let key_file = dir.join("collector.key");
    let pub_file = dir.join("collector.pub");
    let secret = std::fs::read_to_string(&key_file).expect("NAME.key");
    let public = std::fs::read_to_string(&pub_file).expect("NAME.pub");
    for text in [&secret, &public] {
        assert_eq!(text.len(), 41, "{text:?}");
        assert!(text.ends_with('\n'));
    }
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(
        mode(&pub_file) & 0o077 & !0o044,
        0,
        "NAME.pub is not writable by others"
    );

    let derived = Command::new(python())
        .args([
            "-c",
            "import sys, zmq; print(zmq.curve_public(open(sys.argv[1], 'rb').read().strip()).decode())",
        ])
        .arg(&key_file)
        .output()
        .expect("python");
    assert!(derived.status.success());
    assert_eq!(
        String::from_utf8_lossy(&derived.stdout).trim(),
        public.trim()
    );

    // Once written, not overwritten.
    let (ok, stderr) = run_keygen(&base, &[]);
    assert!(!ok);
    assert!(stderr.contains("collector.key exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), secret);
    // Only one of the two existing is enough to refuse, and nothing is written.
    std::fs::remove_file(&key_file).unwrap();
    let (ok, stderr) = run_keygen(&base, &[]);
    assert!(!ok && stderr.contains("collector.pub exists"), "{stderr}");
    assert!(!key_file.exists());

    // --force replaces both, and a world-readable old file does not make a readable key.
    std::fs::write(&key_file, "old\n").unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, stderr) = run_keygen(&base, &["--force"]);
    assert!(ok, "{stderr}");
    assert_eq!(mode(&key_file), 0o600);
    let new_public = std::fs::read_to_string(&pub_file).unwrap();
    assert_ne!(new_public, public);
    let new_secret = distlog::curve::read_secret_key(&key_file).expect("a key");
    assert_eq!(new_secret.public_key().to_z85(), new_public.trim());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Acknowledged delivery over CURVE: `emit --acked` with the collector's public key
/// and an allowed key pair reaches `distlogd --ack-bind --curve-secret --curve-allow`;
/// every record is in the file with its producer and seq and emit exits 0. A
/// plaintext acknowledged sender is refused, gets nothing in, and says why.
#[test]
fn acknowledged_delivery_over_curve() {
    let dir = temp_dir("acked");
    let server = keygen(&dir, "collector");
    let sender = keygen(&dir, "emit");
    let allow = dir.join("allowed");
    std::fs::write(&allow, format!("{}\n", sender.public)).expect("allow");
    let out = dir.join("acked.jsonl");
    let mut d = Daemon::start_acked(
        &[
            "--curve-secret",
            path_str(&server.secret_file),
            "--curve-allow",
            path_str(&allow),
            "--output",
            "none",
            "--file",
            path_str(&out),
            "--stats-interval",
            "0",
        ],
        false,
    );
    let endpoint = d.ack.clone().expect("the acknowledged input");
    const N: usize = 3000;
    let count = N.to_string();
    let emit = Command::new(emit_binary())
        .args(["--endpoint", &endpoint, "--acked", "--count", &count])
        .args(["--curve-server-key", &server.public])
        .arg("--curve-secret")
        .arg(&sender.secret_file)
        .output()
        .expect("run emit");
    let emit_err = String::from_utf8_lossy(&emit.stderr);
    assert!(emit.status.success(), "emit: {emit_err}");
    assert!(
        emit_err.contains(&format!("sent {N} dropped 0")),
        "emit: {emit_err}"
    );

    let plain = Command::new(emit_binary())
        .args(["--endpoint", &endpoint, "--acked", "--count", "10"])
        .output()
        .expect("run emit");
    let plain_err = String::from_utf8_lossy(&plain.stderr);
    assert!(
        !plain.status.success(),
        "a plaintext sender is refused: {plain_err}"
    );
    assert!(plain_err.contains("sent 0 dropped 10"), "{plain_err}");
    assert!(plain_err.contains("last connection error"), "{plain_err}");

    assert!(d.terminate().success());
    let text = std::fs::read_to_string(&out).expect("the file");
    let mut seqs: Vec<u64> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["seq"].as_u64().expect("a seq")
        })
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (0..N as u64).collect::<Vec<_>>());
    let stderr = d.stderr();
    assert_eq!(final_stat(&stderr, "acked"), N as u64, "{stderr}");
    assert!(final_stat(&stderr, "curve.accepted") >= 1, "{stderr}");
}
