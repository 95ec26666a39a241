//! A hostile peer on the wire: a frame announcing 2^50 bytes must not make distlogd
//! reserve that much (zeromq 0.7 did, and the allocation failure aborted the process).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_huge_announced_frame_is_refused_and_the_collector_keeps_running() {
    let port = distlog_testkit::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let out = std::env::temp_dir().join(format!("distlog-hostile-{port}.jsonl"));
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_distlogd"))
        .args([
            "--bind",
            &endpoint,
            "--output",
            "none",
            "--stats-interval",
            "0",
            "--file",
        ])
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start distlogd");
    distlog_testkit::wait_listening(port);

    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // ZMTP 3.0 greeting (NULL mechanism), then READY as a PUSH socket.
    let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
    greeting.extend_from_slice(b"NULL");
    greeting.resize(64, 0);
    s.write_all(&greeting).expect("greeting");
    let mut theirs = [0u8; 64];
    s.read_exact(&mut theirs).expect("their greeting");
    let mut ready = b"\x05READY\x0bSocket-Type".to_vec();
    ready.extend_from_slice(&4u32.to_be_bytes());
    ready.extend_from_slice(b"PUSH");
    s.write_all(&[0x04, ready.len() as u8])
        .and_then(|_| s.write_all(&ready))
        .expect("ready");
    // A long frame announcing 2^50 bytes.
    let mut evil = vec![0x02];
    evil.extend_from_slice(&(1u64 << 50).to_be_bytes());
    evil.extend_from_slice(b"xxxxxxxx");
    let _ = s.write_all(&evil);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        daemon.try_wait().expect("status").is_none(),
        "distlogd died"
    );

    // A good record still gets through.
    let guard = distlog::handler::Handler::builder()
        .endpoint(&endpoint)
        .spawn()
        .expect("handler");
    guard.handler().enqueue(distlog::record::Event::new(
        log::Level::Info,
        "after",
        "still here".into(),
    ));
    assert_eq!(guard.shutdown().sent, 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("still here")
    {
        assert!(
            Instant::now() < deadline,
            "the good record never reached the file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill with our own child's pid has no memory-safety preconditions.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().expect("distlogd exits");
    assert!(status.success());
    let mut err = String::new();
    if let Some(mut e) = daemon.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(err.contains("max_frame_size"), "{err}");
    let _ = std::fs::remove_file(&out);
}
