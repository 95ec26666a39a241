//! Acknowledged delivery under faults, with real processes: the `emit` tool logs
//! through distlog's handler to the `distlogd` binary, which is SIGKILLed, restarted
//! or SIGSTOPped mid-stream. Every record `emit` was asked to log ends up in a file
//! sink, or counted as dropped by the overflow policy; nothing is lost uncounted.
//! Plain mode under the same SIGKILL is measured beside it.

mod collector_support;

use collector_support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// A file in a directory of this test's own.
fn temp_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("distlogd-acked-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// emit's exit status and its `sent N dropped M`.
fn finish_emit(mut child: Child) -> (bool, u64, u64) {
    let status = wait_bounded(&mut child, "emit");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    eprint!("[emit] {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("sent "))
        .unwrap_or_else(|| panic!("no `sent N dropped M` from emit: {err}"));
    let mut words = line.split_whitespace();
    let sent = words.nth(1).and_then(|w| w.parse().ok()).expect("sent N");
    let dropped = words
        .nth(1)
        .and_then(|w| w.parse().ok())
        .expect("dropped M");
    (status.success(), sent, dropped)
}

/// Waits until `path` holds at least `bytes` (a collector is mid-stream).
fn wait_for_bytes(path: &Path, bytes: u64) {
    assert!(
        wait_until(LONG, || std::fs::metadata(path)
            .is_ok_and(|m| m.len() >= bytes)),
        "{} never reached {bytes} bytes",
        path.display()
    );
}

/// What the files hold: for each emit record `i`, how many copies; the drop
/// reports' distinct seqs; and whether every line named its producer and seq.
#[derive(Default)]
struct Holdings {
    copies: BTreeMap<u64, usize>,
    report_seqs: std::collections::BTreeSet<u64>,
    lines: usize,
    all_have_seq: bool,
}

fn holdings(files: &[&Path], count: u64) -> Holdings {
    let mut h = Holdings {
        all_have_seq: true,
        ..Holdings::default()
    };
    let suffix = format!(" of {count}");
    // Same (producer, seq) must mean the same record: that is what makes a copy
    // identifiable.
    let mut by_seq: BTreeMap<(String, u64), String> = BTreeMap::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let v: serde_json::Value = match serde_json::from_str(line) {
                Ok(v) => v,
                // A collector SIGKILLed in the middle of a write leaves its last line
                // torn; that record was never acknowledged, so it came again.
                Err(_) if at + 1 == lines.len() && !text.ends_with('\n') => continue,
                Err(e) => panic!("{}: line {}: {e}: {line}", file.display(), at + 1),
            };
            h.lines += 1;
            let msg = v["record"]["msg"].as_str().unwrap_or_default().to_string();
            match (v["producer"].as_str(), v["seq"].as_u64()) {
                (Some(p), Some(seq)) => {
                    let before = by_seq.insert((p.to_string(), seq), msg.clone());
                    assert!(
                        before.is_none_or(|m| m == msg),
                        "one producer and seq for two records: {line}"
                    );
                    if msg.starts_with("distlog dropped") {
                        h.report_seqs.insert(seq);
                    }
                }
                _ => h.all_have_seq = false,
            }
            if let Some(i) = msg
                .strip_prefix("record ")
                .and_then(|m| m.strip_suffix(suffix.as_str()))
                .and_then(|i| i.parse().ok())
            {
                *h.copies.entry(i).or_default() += 1;
            }
        }
    }
    h
}

/// SIGKILL mid-stream, then a restart on the same port: plain mode loses what the
/// collector had taken off the wire but not written (measured and printed);
/// acknowledged mode loses nothing, and emit says so.
#[test]
fn a_collector_sigkilled_and_restarted_loses_nothing_acknowledged() {
    let n = 100_000;
    let endpoint = format!("tcp://127.0.0.1:{}", distlog_testkit::free_port());

    let (first, second) = (temp_file("plain-1.jsonl"), temp_file("plain-2.jsonl"));
    let mut d = Daemon::start_at(&endpoint, &["--output", "none", "--file", path(&first)]);
    let producer = emit(&[&endpoint], n, &[]);
    wait_for_bytes(&first, 5_000_000);
    d.sigkill();
    let mut d = Daemon::start_at(&endpoint, &["--output", "none", "--file", path(&second)]);
    let (_, plain_sent, plain_dropped) = finish_emit(producer);
    d.terminate();
    let plain = holdings(&[&first, &second], n);
    let plain_lost = n - plain.copies.len() as u64;

    let (first, second) = (temp_file("acked-1.jsonl"), temp_file("acked-2.jsonl"));
    let mut d = Daemon::start_acked_at(&endpoint, &["--output", "none", "--file", path(&first)]);
    let producer = emit(&[&endpoint], n, &["--acked"]);
    wait_for_bytes(&first, 5_000_000);
    d.sigkill();
    let mut d = Daemon::start_acked_at(&endpoint, &["--output", "none", "--file", path(&second)]);
    let (ok, sent, dropped) = finish_emit(producer);
    d.terminate();
    let acked = holdings(&[&first, &second], n);

    eprintln!(
        "SIGKILL mid-stream, {n} records: plain lost {plain_lost} (emit said sent {plain_sent} \
         dropped {plain_dropped}); acknowledged lost {}, {} duplicate lines",
        n - acked.copies.len() as u64,
        acked.lines - acked.copies.len() - acked.report_seqs.len(),
    );
    assert!(ok, "emit --acked exits 0 once every record is acknowledged");
    assert_eq!((sent, dropped), (n, 0));
    assert_eq!(acked.copies.len() as u64, n, "every record is in the files");
    assert!(acked.all_have_seq, "every line names its producer and seq");
}

/// Two collectors share the load; one is SIGKILLed and stays dead. Every record is
/// in the union of their files, and a record in both is the same producer and seq.
#[test]
fn two_collectors_one_sigkilled_every_record_is_in_the_union() {
    let n = 60_000;
    let (fa, fb) = (temp_file("two-a.jsonl"), temp_file("two-b.jsonl"));
    let mut a = Daemon::start_acked(&["--output", "none", "--file", path(&fa)], false);
    let mut b = Daemon::start_acked(&["--output", "none", "--file", path(&fb)], false);
    let (ea, eb) = (a.ack.clone().expect("ack"), b.ack.clone().expect("ack"));
    let producer = emit(&[&ea, &eb], n, &["--acked"]);
    wait_for_bytes(&fa, 2_000_000);
    a.sigkill();
    let (ok, sent, dropped) = finish_emit(producer);
    b.terminate();
    let h = holdings(&[&fa, &fb], n);
    eprintln!(
        "two collectors, one SIGKILLed: {} lines for {n} records",
        h.lines
    );
    assert!(
        ok && sent == n && dropped == 0,
        "emit: sent {sent} dropped {dropped}"
    );
    assert_eq!(h.copies.len() as u64, n, "every record is in the union");
    assert!(h.all_have_seq);
}

/// A collector that is stuck, not dead (SIGSTOP): the producer fails over to the other
/// within its ack timeout, and after SIGCONT nothing is lost.
#[test]
fn a_sigstopped_collector_is_failed_over_and_nothing_is_lost() {
    let n = 60_000;
    let (fa, fb) = (temp_file("stop-a.jsonl"), temp_file("stop-b.jsonl"));
    let mut a = Daemon::start_acked(&["--output", "none", "--file", path(&fa)], false);
    let mut b = Daemon::start_acked(&["--output", "none", "--file", path(&fb)], false);
    let (ea, eb) = (a.ack.clone().expect("ack"), b.ack.clone().expect("ack"));
    let producer = emit(&[&ea, &eb], n, &["--acked", "--ack-timeout-ms", "500"]);
    wait_for_bytes(&fa, 2_000_000);
    a.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let (ok, sent, dropped) = finish_emit(producer);
    let took = stopped.elapsed();
    a.signal(libc::SIGCONT);
    a.terminate();
    b.terminate();
    let h = holdings(&[&fa, &fb], n);
    eprintln!(
        "SIGSTOP: emit finished {took:?} after the stop, {} lines",
        h.lines
    );
    // Without failover every record dealt to the stopped collector would wait for
    // the flush timeout (5 s) and be counted as dropped.
    assert!(
        ok && sent == n && dropped == 0,
        "emit: sent {sent} dropped {dropped}"
    );
    assert_eq!(h.copies.len() as u64, n, "every record is in a file");
}

/// Many kill and restart rounds on one port while emit runs, with a small queue so
/// the overflow policy may drop: every record is in a file or counted as dropped,
/// exactly.
#[test]
fn conservation_over_a_kill_and_restart_loop() {
    let n = 150_000;
    let endpoint = format!("tcp://127.0.0.1:{}", distlog_testkit::free_port());
    let mut files = Vec::new();
    let producer = emit(&[&endpoint], n, &["--acked", "--queue", "4096"]);
    for round in 0..5 {
        let file = temp_file(&format!("loop-{round}.jsonl"));
        let mut d = Daemon::start_acked_at(&endpoint, &["--output", "none", "--file", path(&file)]);
        wait_until(Duration::from_millis(400), || {
            std::fs::metadata(&file).is_ok_and(|m| m.len() >= 3_000_000)
        });
        d.sigkill();
        files.push(file);
    }
    let file = temp_file("loop-last.jsonl");
    let mut d = Daemon::start_acked_at(&endpoint, &["--output", "none", "--file", path(&file)]);
    let (_, sent, dropped) = finish_emit(producer);
    d.terminate();
    files.push(file);
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let h = holdings(&refs, n);
    eprintln!(
        "5 SIGKILL rounds: {} records in files, {dropped} dropped by the policy, {} lines",
        h.copies.len(),
        h.lines
    );
    assert_eq!(
        h.copies.len() as u64 + dropped,
        n,
        "in a file or counted as dropped, every one (emit: sent {sent} dropped {dropped})"
    );
    assert_eq!(
        sent,
        h.copies.len() as u64 + h.report_seqs.len() as u64,
        "what emit counts as sent is what the files hold"
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}
