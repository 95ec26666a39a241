//! Acknowledged delivery against the real `distlogd` binary: a raw DEALER, framed by
//! hand as the README's protocol version 1 says, sends to `--ack-bind` and reads the
//! acknowledgements back.

mod collector_support;

use collector_support::*;
use std::time::{Duration, Instant};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend};

const PRODUCER: [u8; 16] = *b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff";
const PRODUCER_HEX: &str = "00112233445566778899aabbccddeeff";
/// Far more than any test needs; a failure shows up as this timeout, not a hang.
const WAIT: Duration = Duration::from_secs(8);

fn header(seq: u64, base: u64, flags: u8) -> Vec<u8> {
    let mut h = b"DLA\x01".to_vec();
    h.extend_from_slice(&PRODUCER);
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&base.to_be_bytes());
    h.push(flags);
    assert_eq!(h.len(), 37);
    h
}

struct Producer {
    rt: Rt,
    socket: DealerSocket,
}

impl Producer {
    fn connect(endpoint: &str) -> Producer {
        let rt = Rt::new();
        let socket = rt.block_on(async {
            let mut s = DealerSocket::new();
            s.connect(endpoint).await.expect("connect DEALER");
            s
        });
        Producer { rt, socket }
    }

    fn send(&mut self, frames: &[&[u8]]) {
        let message = multipart(frames);
        let socket = &mut self.socket;
        self.rt
            .block_on(async { socket.send(message).await })
            .expect("send");
    }

    fn send_record(&mut self, seq: u64, msg: &str) {
        let body = json_body(&simple("acked", msg));
        self.send(&[&header(seq, 0, 1), b"TLJ", &body]);
    }

    /// The next acknowledgement's seq, checking its layout, or `None` after `wait`.
    fn ack(&mut self, wait: Duration) -> Option<u64> {
        let socket = &mut self.socket;
        let m = self
            .rt
            .block_on_timeout(wait, async { socket.recv().await })?
            .expect("recv");
        assert_eq!(m.len(), 1, "an acknowledgement is one frame");
        let frame = m.get(0).expect("frame");
        assert_eq!(frame.len(), 28, "{frame:?}");
        assert_eq!(&frame[..4], b"DLK\x01");
        assert_eq!(&frame[4..20], &PRODUCER);
        Some(u64::from_be_bytes(
            frame[20..28].try_into().expect("8 bytes"),
        ))
    }

    /// Acknowledgements until one covers `seq`; panics after `WAIT`.
    fn acks_until(&mut self, seq: u64) -> Vec<u64> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while seen.last() != Some(&seq) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ack(left) {
                Some(s) => seen.push(s),
                None => panic!("no acknowledgement of {seq} within {WAIT:?}; got {seen:?}"),
            }
        }
        seen
    }
}

fn temp_file(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("distlogd-acked-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("out.jsonl");
    let arg = path.display().to_string();
    (path, arg)
}

/// The seqs of the acknowledged lines in the file, checking each envelope.
fn seqs_in(path: &std::path::Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.ends_with('}'))
        .map(|line| {
            let v = distlog::serialize::json::decode_value(line.as_bytes(), &Default::default())
                .unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
            assert!(
                line.starts_with(&format!(
                    "{{\"topic\": \"TLJ\", \"producer\": \"{PRODUCER_HEX}\", \"seq\": "
                )),
                "{line}"
            );
            assert!(v.get("record").is_some(), "{line}");
            v.get("seq")
                .and_then(distlog::Value::as_i64)
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or_else(|| panic!("no seq in {line}"))
        })
        .collect()
}

#[test]
fn acked_records_are_in_the_file_before_their_batched_cumulative_acks() {
    let (path, arg) = temp_file("file");
    let mut d = Daemon::start_acked(
        &["--output", "none", "--file", &arg, "--stats-interval", "0"],
        false,
    );
    let ack = d.ack.clone().expect("acknowledged endpoint");
    assert!(
        !d.stderr().contains("listening on"),
        "--ack-bind alone binds no PULL: {}",
        d.stderr()
    );
    let mut p = Producer::connect(&ack);
    const N: u64 = 3000;
    // Acks are read while sending, so each is checked against the file right away:
    // what it covers must already be there.
    let mut acks = Vec::new();
    let check = |acks: &mut Vec<u64>, s: u64| {
        let seqs = seqs_in(&path);
        assert!(
            seqs.contains(&s),
            "ack {s} came before record {s} was in the file ({} lines)",
            seqs.len()
        );
        acks.push(s);
    };
    for seq in 0..N {
        p.send_record(seq, &format!("record {seq}"));
        if seq % 500 == 499 {
            while let Some(s) = p.ack(Duration::from_millis(1)) {
                check(&mut acks, s);
            }
        }
    }
    let deadline = Instant::now() + WAIT;
    while acks.last() != Some(&(N - 1)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let s = p
            .ack(left)
            .unwrap_or_else(|| panic!("no ack of {} within {WAIT:?}: {acks:?}", N - 1));
        check(&mut acks, s);
    }
    assert!(
        acks.windows(2).all(|w| w[0] <= w[1]),
        "cumulative, never going back: {acks:?}"
    );
    assert!(
        (acks.len() as u64) < N / 10,
        "{} acks for {N} records: not batched",
        acks.len()
    );
    let mut seqs = seqs_in(&path);
    seqs.sort_unstable();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "each record once");
    // No more acks when nothing new came.
    assert_eq!(p.ack(Duration::from_millis(300)), None);

    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "received"), N, "{err}");
    assert_eq!(final_stat(&err, "acked"), N, "{err}");
    assert_eq!(final_stat(&err, "duplicates"), 0, "{err}");
    assert_eq!(final_stat(&err, "gaps"), 0, "{err}");
    assert_eq!(final_stat(&err, "producers"), 1, "{err}");
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn a_resent_duplicate_is_acked_not_written_and_bad_headers_are_counted() {
    let (path, arg) = temp_file("dup");
    let mut d = Daemon::start_acked(
        &["--output", "none", "--file", &arg, "--stats-interval", "0"],
        false,
    );
    let mut p = Producer::connect(d.ack.as_deref().expect("ack endpoint"));
    for seq in 0..10 {
        p.send_record(seq, "first");
    }
    p.acks_until(9);
    // The acknowledgement was "lost": the producer resends 5.
    p.send_record(5, "again");
    assert_eq!(p.acks_until(9), [9], "the duplicate is acknowledged");

    let body = json_body(&simple("acked", "bad"));
    let mut magic = header(20, 0, 1);
    magic[0] = b'X';
    let mut version = header(21, 0, 1);
    version[3] = 2;
    p.send(&[&magic, b"TLJ", &body]);
    p.send(&[&version, b"TLJ", &body]);
    p.send(&[&header(22, 0, 1)[..36], b"TLJ", &body]);
    // A good header with a bad topic: rejected as the plain input would, and handled.
    p.send(&[&header(10, 0, 1), b"XXX", &body]);
    p.send_record(11, "after");
    p.acks_until(11);

    assert!(d.terminate().success());
    let err = d.stderr();
    let mut seqs = seqs_in(&path);
    seqs.sort_unstable();
    let expected: Vec<u64> = (0..10).chain([11]).collect();
    assert_eq!(seqs, expected, "5 once; the rejected ones not at all");
    assert_eq!(final_stat(&err, "duplicates"), 1, "{err}");
    assert_eq!(final_stat(&err, "rejected.ack_header"), 2, "{err}");
    assert_eq!(final_stat(&err, "rejected.ack_version"), 1, "{err}");
    assert_eq!(final_stat(&err, "rejected.bad_topic"), 1, "{err}");
    assert_eq!(final_stat(&err, "acked"), 13, "{err}");
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn plain_lines_stay_as_they_were_next_to_acked_ones() {
    let mut d = Daemon::start_acked(&["--output", "jsonl", "--stats-interval", "0"], true);
    let record = simple("plain", "no header");
    let mut pusher = Pusher::connect(&d.pull);
    pusher.send(&[b"TLJ", &json_body(&record)]);
    let plain = d.line().expect("the plain line");
    let mut expected = Vec::new();
    distlogd::format::write_jsonl(&mut expected, "TLJ".parse().unwrap(), &record);
    assert_eq!(format!("{plain}\n").as_bytes(), expected, "byte for byte");

    let mut p = Producer::connect(d.ack.as_deref().expect("ack endpoint"));
    p.send_record(0, "with header");
    let acked = d.line().expect("the acked line");
    assert!(
        acked.starts_with(&format!(
            "{{\"topic\": \"TLJ\", \"producer\": \"{PRODUCER_HEX}\", \"seq\": 0, \"record\": {{"
        )),
        "{acked}"
    );
    // stdout was written and flushed: the acknowledgement follows.
    assert_eq!(p.acks_until(0), [0]);
    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "received"), 2, "{err}");
    assert_eq!(final_stat(&err, "acked"), 1, "{err}");
}

#[test]
fn with_no_sink_records_are_acked_once_taken() {
    let mut d = Daemon::start_acked(&["--output", "none", "--stats-interval", "0"], false);
    let mut p = Producer::connect(d.ack.as_deref().expect("ack endpoint"));
    for seq in 0..50 {
        p.send_record(seq, "nowhere");
    }
    p.acks_until(49);
    assert!(d.terminate().success());
    assert_eq!(final_stat(&d.stderr(), "acked"), 50);
}

#[test]
fn a_failed_commit_is_never_acked_and_the_resend_is_written_again() {
    // /dev/full opens like a file, and every write to it fails (ENOSPC), as does
    // its fdatasync: each commit fails, for real. Stdout, the other sink, shows what
    // was written.
    let mut d = Daemon::start_acked(
        &[
            "--output",
            "jsonl",
            "--file",
            "/dev/full",
            "--stats-interval",
            "0",
        ],
        false,
    );
    let ack = d.ack.clone().expect("ack endpoint");
    let mut first = Producer::connect(&ack);
    for seq in 0..5 {
        first.send_record(seq, "first");
    }
    for seq in 0..5 {
        let line = d.line().expect("written to stdout");
        assert!(line.contains(&format!("\"seq\": {seq},")), "{line}");
    }
    assert_eq!(
        first.ack(Duration::from_secs(1)),
        None,
        "nothing the file may have lost is acknowledged"
    );
    // The producer's ack timeout: it drops the connection and resends everything
    // unacknowledged on a new one, under the same producer id.
    let mut again = Producer::connect(&ack);
    for seq in 0..5 {
        again.send_record(seq, "again");
    }
    for seq in 0..5 {
        let line = d.line().expect("the resend is written");
        assert!(
            line.contains(&format!("\"seq\": {seq},")) && line.contains("again"),
            "written again, not dropped as a duplicate: {line}"
        );
    }
    assert_eq!(again.ack(Duration::from_secs(1)), None);
    assert_eq!(first.ack(Duration::from_millis(100)), None);

    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "received"), 10, "{err}");
    assert_eq!(final_stat(&err, "acked"), 0, "{err}");
    assert_eq!(final_stat(&err, "duplicates"), 0, "{err}");
    assert!(final_stat(&err, "commit_failures") >= 2, "{err}");
    assert!(final_stat(&err, "sink_errors") >= 1, "{err}");
    assert!(err.contains("acknowledgements withheld"), "{err}");
}

/// Gaps: a producer with a single endpoint (flags bit 0) says with its base that every
/// seq below is settled; seqs below it that never arrived were lost upstream and are
/// counted. A producer with several endpoints (no flag) sends some seqs elsewhere, so
/// the same holes are not gaps.
#[test]
fn seqs_a_single_endpoint_producer_settled_but_never_sent_count_as_gaps() {
    let mut d = Daemon::start_acked(&["--output", "none", "--stats-interval", "0"], false);
    let endpoint = d.ack.clone().expect("ack endpoint");
    let body = json_body(&simple("acked", "gap"));
    let mut single = Producer::connect(&endpoint);
    for seq in [0, 1, 2] {
        single.send(&[&header(seq, 0, 1), b"TLJ", &body]);
    }
    // 3, 4 and 5 never come; the base says everything below 6 is settled.
    single.send(&[&header(6, 6, 1), b"TLJ", &body]);
    single.acks_until(6);
    drop(single);

    // Another producer id, with several endpoints: the same holes are not gaps.
    let mut other = header(0, 0, 0);
    other[4] ^= 0xff;
    let mut several = Producer::connect(&endpoint);
    several.send(&[&other, b"TLJ", &body]);
    let mut later = header(6, 6, 0);
    later[4] ^= 0xff;
    several.send(&[&later, b"TLJ", &body]);
    // Its acknowledgements name its own id, which `ack` checks against PRODUCER: read
    // them raw, until one covers seq 6.
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let socket = &mut several.socket;
        let m = several
            .rt
            .block_on_timeout(left, async { socket.recv().await })
            .expect("an acknowledgement within the wait")
            .expect("recv");
        let frame = m.get(0).expect("frame");
        assert_eq!(&frame[4..20], &other[4..20], "for the other producer");
        if frame[20..28] == 6u64.to_be_bytes() {
            break;
        }
    }
    drop(several);

    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "gaps"), 3, "{err}");
    assert_eq!(final_stat(&err, "duplicates"), 0, "{err}");
    assert_eq!(final_stat(&err, "acked"), 6, "{err}");
}
