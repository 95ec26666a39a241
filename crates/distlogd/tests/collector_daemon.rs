//! `distlogd` as a process: records in both encodings come out exactly, hostile input
//! is counted and survived, files rotate, SIGTERM drains.

mod collector_support;

use collector_support::*;
use distlog::serialize::{decode, json};
use distlog::topic::Encoding;
use distlog::{Record, Value};
use num_bigint::BigInt;
use std::io::Write;
use std::path::PathBuf;

fn rich_record(i: i64) -> Record {
    let big: BigInt = BigInt::from(2).pow(100) + i;
    Record::from_pairs([
        ("name", Value::from("shop.orders")),
        ("msg", "order %s".into()),
        ("args", Value::None),
        ("levelname", "WARNING".into()),
        ("levelno", 30.into()),
        ("created", (1_700_000_000.0 + i as f64 / 8.0).into()),
        (
            "context",
            Value::Dict(vec![
                ("key".into(), format!("{i}@abc/1").into()),
                ("user".into(), "ålice ✓".into()),
            ]),
        ),
        ("big", Value::BigInt(big)),
        ("neg_big", Value::BigInt(-BigInt::from(2).pow(70))),
        ("nan", Value::Float(f64::NAN)),
        ("inf", Value::Float(f64::NEG_INFINITY)),
        (
            "nested",
            Value::List(vec![
                Value::Dict(vec![("a".into(), Value::List(vec![1.into(), 2.5.into()]))]),
                Value::Bool(true),
                Value::None,
            ]),
        ),
        ("unknown_key_from_the_future", "kept".into()),
        ("message", format!("order {i} \u{1F600} tab\there").into()),
        ("hostname", "web1".into()),
    ])
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    // The library's golden bodies, as Python wrote them: one copy, at the workspace root.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let topic = name[3..6].to_string();
            (topic, std::fs::read(&p).expect("read fixture"))
        })
        .collect()
}

/// (1) Records sent in JSON and pickle come out of `--output jsonl` exactly as sent,
/// and the real Python bodies in tests/fixtures too.
#[test]
fn jsonl_output_equals_input_records() {
    let d = Daemon::start(&["--output", "jsonl", "--stats-interval", "0"]);
    let mut push = Pusher::connect(&d.pull);
    let mut expected: Vec<(String, Record)> = Vec::new();
    for i in 0..20 {
        let r = rich_record(i);
        if i % 2 == 0 {
            push.send(&[b"TLJ", &json_body(&r)]);
            expected.push(("TLJ".into(), r));
        } else {
            push.send(&[b"PLP", &pickle_body(&r)]);
            expected.push(("PLP".into(), r));
        }
    }
    for (topic, body) in fixtures() {
        push.send(&[topic.as_bytes(), &body]);
        let enc = if topic.ends_with('J') {
            Encoding::Json
        } else {
            Encoding::Pickle
        };
        expected.push((topic, decode(&body, enc).expect("fixture decodes")));
    }
    // Valid JSON that json.dumps would write otherwise: it is decoded and re-encoded,
    // not copied (a canonical body is copied; the line is the same either way).
    for body in [
        r#"{"name":"compact","msg":"x"}"#,
        r#"{"name": "dup", "levelno": 10, "levelno": 20}"#,
        r#"{"name": "escapes", "msg": "a\/b \u0041 \u00E9", "n": 1E5, "z": -0}"#,
        "{\"name\": \"raw utf-8\", \"msg\": \"caf\u{e9}\"}",
    ] {
        push.send(&[b"TLJ", body.as_bytes()]);
        let r = decode(body.as_bytes(), Encoding::Json).expect("valid JSON");
        expected.push(("TLJ".into(), r));
    }

    for (topic, record) in &expected {
        let line = d.line().expect("a jsonl line for every record");
        let (got_topic, got) = parse_line(&line);
        assert_eq!(&got_topic, topic);
        assert!(
            same(&got, &as_dict(record)),
            "record changed on the way:\nsent {record:?}\ngot  {got:?}"
        );
        // Byte level: the record object is what json.dumps writes for it.
        let mut want = format!("{{\"topic\": \"{topic}\", \"record\": ").into_bytes();
        want.extend_from_slice(&json_body(record));
        want.push(b'}');
        assert_eq!(line.as_bytes(), want.as_slice());
    }
    // JSON fixtures from Python: our line carries the body byte for byte.
    let jsons: Vec<_> = fixtures()
        .into_iter()
        .filter(|(t, _)| t.ends_with('J'))
        .collect();
    assert!(!jsons.is_empty());
    for (topic, body) in jsons {
        let r = decode(&body, Encoding::Json).unwrap();
        let mut re = Vec::new();
        json::encode_record(&r, &mut re);
        assert_eq!(re, body, "fixture {topic} re-encodes identically");
    }
}

/// (2) Malformed and hostile messages are counted by reason and survived; a good
/// message after them still comes out.
#[test]
fn hostile_messages_are_counted_and_survived() {
    let mut d = Daemon::start(&[
        "--output",
        "jsonl",
        "--stats-interval",
        "0",
        "--max-body-bytes",
        "4096",
    ]);
    let mut push = Pusher::connect(&d.pull);
    let good = simple("app", "fine");

    push.send(&[b"TLJ"]); // 1 frame
    push.send(&[b"TLJ", b"{}", b"{}"]); // 3 frames
    push.send(&[b"XLJ", b"{}"]); // bad topic
    push.send(&[b"TLJX", b"{}"]); // bad topic length
    let body = json_body(&good);
    push.send(&[b"TLJ", &body[..body.len() / 2]]); // truncated JSON
    push.send(&[
        b"TLP",
        b"\x80\x03cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.",
    ]); // GLOBAL os.system
    push.send(&[b"TLP", b"\x80\x03X\xff\xff\xff\xffabc"]); // 4 GiB BINUNICODE
    let mut deep = b"[".repeat(200_000);
    deep.extend(b"]".repeat(200_000));
    // (over the size limit too, so raise it: send the deep ones to a second daemon)
    let mut big = simple("app", "big");
    big.insert("pad", "x".repeat(10_000));
    push.send(&[b"TLJ", &json_body(&big)]); // body over --max-body-bytes
    push.send(&[b"TLJ", b"[1, 2]"]); // valid JSON, not a dict
    push.send(&[b"TLJ", b"{\"a\": 1} trailing"]); // trailing data
    push.send(&[b"TLJ", &body]);

    let line = d.line().expect("the good message comes out");
    let (_, got) = parse_line(&line);
    assert!(same(&got, &as_dict(&good)));

    // Garbage that is not even ZMTP, straight on the socket.
    let addr = d.pull.trim_start_matches("tcp://").to_string();
    let mut raw = std::net::TcpStream::connect(&addr).expect("raw connect");
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n\xff\x00\x00\x00\x00\x00\x00\x00\x7f")
        .expect("write garbage");
    drop(raw);
    push.send(&[b"TLJ", &body]);
    assert!(d.line().is_some(), "still works after a non-ZMTP peer");

    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "rejected.frame_count"), 2, "{err}");
    assert_eq!(final_stat(&err, "rejected.bad_topic"), 2, "{err}");
    assert_eq!(final_stat(&err, "rejected.bad_body"), 4, "{err}");
    assert_eq!(final_stat(&err, "rejected.forbidden_pickle"), 1, "{err}");
    assert_eq!(final_stat(&err, "rejected.oversize"), 1, "{err}");
    assert_eq!(final_stat(&err, "accepted"), 2, "{err}");
    assert!(err.contains("rejected message (forbidden_pickle)"), "{err}");
    assert!(
        err.contains("rejected message (oversize): body of"),
        "{err}"
    );

    // Deep nesting, in both encodings, with the default 1 MiB limit.
    let mut d = Daemon::start(&["--output", "jsonl", "--stats-interval", "0"]);
    let mut push = Pusher::connect(&d.pull);
    push.send(&[b"TLJ", &deep]); // 200,000 nested JSON lists
    let mut pdeep = b"\x80\x03".to_vec();
    pdeep.extend(b"(".repeat(200_000));
    pdeep.extend(b"l".repeat(200_000));
    pdeep.push(b'.');
    push.send(&[b"TLP", &pdeep]); // 200,000 nested pickle lists
    let mut pdeep2 = b"\x80\x03".to_vec();
    pdeep2.extend(b"]".repeat(200_000));
    pdeep2.extend(b"a".repeat(199_999));
    pdeep2.push(b'.');
    push.send(&[b"TLP", &pdeep2]); // the same with EMPTY_LIST/APPEND
    push.send(&[b"TLJ", &body]);
    assert!(d.line().is_some(), "good message after deep nesting");
    assert!(d.terminate().success());
    let err = d.stderr();
    assert_eq!(final_stat(&err, "rejected"), 3, "{err}");
    assert_eq!(final_stat(&err, "rejected.too_large"), 3, "{err}");
    assert_eq!(final_stat(&err, "accepted"), 1, "{err}");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("distlogd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// (3) `--file` rotates by size and keeps K old files; lines are never split.
#[test]
fn file_rotation() {
    let dir = temp_dir("rotate");
    let path = dir.join("out.jsonl");
    let path_s = path.to_string_lossy().into_owned();
    let mut d = Daemon::start(&[
        "--output",
        "none",
        "--file",
        &path_s,
        "--rotate-bytes",
        "2000",
        "--keep",
        "2",
        "--stats-interval",
        "0.1",
    ]);
    let mut push = Pusher::connect(&d.pull);
    let n = 60;
    for i in 0..n {
        let mut r = simple("app", &format!("record {i}"));
        r.insert("seq", i);
        r.insert("pad", "p".repeat(200));
        push.send(&[b"SLJ", &json_body(&r)]);
    }
    d.wait_stderr(&format!("accepted={n} "));
    assert!(d.terminate().success());

    let numbered = |k: usize| dir.join(format!("out.jsonl.{k}"));
    assert!(numbered(1).exists() && numbered(2).exists());
    assert!(!numbered(3).exists(), "only --keep 2 rotated files");
    let mut seqs = Vec::new();
    for p in [numbered(2), numbered(1), path.clone()] {
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(
            text.len() <= 2000,
            "{} has {} bytes",
            p.display(),
            text.len()
        );
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            let (topic, rec) = parse_line(line);
            assert_eq!(topic, "SLJ");
            seqs.push(rec.get("seq").and_then(Value::as_i64).expect("seq"));
        }
    }
    // The newest records, in order, ending with the last one sent.
    assert!(seqs.len() >= 3);
    let first = seqs[0];
    assert_eq!(seqs, (first..n).collect::<Vec<_>>());
    std::fs::remove_dir_all(&dir).ok();
}

/// (6) SIGTERM drains: everything sent before it is in the file.
#[test]
fn sigterm_drains_and_flushes() {
    let dir = temp_dir("drain");
    let path = dir.join("all.jsonl");
    let path_s = path.to_string_lossy().into_owned();
    let mut d = Daemon::start(&[
        "--output",
        "none",
        "--file",
        &path_s,
        "--stats-interval",
        "0",
        "--drain-quiet",
        "3",
    ]);
    let mut push = Pusher::connect(&d.pull);
    let n = 5000;
    for i in 0..n {
        let mut r = simple("app", "drain me");
        r.insert("seq", i);
        if i % 2 == 0 {
            push.send(&[b"TLJ", &json_body(&r)]);
        } else {
            push.send(&[b"TLP", &pickle_body(&r)]);
        }
    }
    let status = d.terminate();
    assert!(status.success(), "exit status {status:?}");
    let text = std::fs::read_to_string(&path).expect("read output");
    let seqs: Vec<i64> = text
        .lines()
        .map(|l| {
            parse_line(l)
                .1
                .get("seq")
                .and_then(Value::as_i64)
                .expect("seq")
        })
        .collect();
    assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "{}", d.stderr());
    assert_eq!(final_stat(&d.stderr(), "accepted"), n as u64);
    drop(push);
    std::fs::remove_dir_all(&dir).ok();
}

/// With three receive threads, connections are dealt out to the receive loop and two
/// lanes: every record of six producers is written, each producer's in its order, and
/// those still arriving at SIGTERM are drained.
#[test]
fn tcp_inputs_are_received_on_several_threads() {
    let dir = temp_dir("lanes");
    let path = dir.join("all.jsonl");
    let path_s = path.to_string_lossy().into_owned();
    let mut d = Daemon::start(&[
        "--output",
        "none",
        "--file",
        &path_s,
        "--stats-interval",
        "0",
        "--receive-threads",
        "3",
        "--drain-quiet",
        "2",
    ]);
    d.wait_stderr("receiving TCP inputs on 3 threads");
    // A thread takes its name once it runs, a moment after it is started.
    let threads = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", d.pid()))
            .expect("list distlogd's threads")
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|c| c.trim().to_string())
            .collect()
    };
    let lanes = ["distlogd-lane-1", "distlogd-lane-2"];
    let named = wait_until(LONG, || {
        let now = threads();
        lanes.iter().all(|l| now.iter().any(|t| t == l))
    });
    assert!(named, "no lanes {lanes:?} in {:?}", threads());
    let (producers, each) = (6, 300);
    let mut pushes: Vec<Pusher> = (0..producers).map(|_| Pusher::connect(&d.pull)).collect();
    for i in 0..each {
        for (p, push) in pushes.iter_mut().enumerate() {
            let mut r = simple("app", "dealt");
            r.insert("producer", p as i64);
            r.insert("seq", i);
            push.send(&[b"TLJ", &json_body(&r)]);
        }
    }
    let status = d.terminate();
    assert!(status.success(), "exit status {status:?}");
    let text = std::fs::read_to_string(&path).expect("read output");
    let mut seqs = vec![Vec::new(); producers];
    for line in text.lines() {
        let record = parse_line(line).1;
        let field = |k: &str| record.get(k).and_then(Value::as_i64).expect(k);
        seqs[field("producer") as usize].push(field("seq"));
    }
    for (p, got) in seqs.iter().enumerate() {
        assert_eq!(
            got,
            &(0..each).collect::<Vec<_>>(),
            "producer {p}: {}",
            d.stderr()
        );
    }
    assert_eq!(
        final_stat(&d.stderr(), "accepted"),
        (producers as i64 * each) as u64
    );
    drop(pushes);
    std::fs::remove_dir_all(&dir).ok();
}

/// A `--config` file with per-sink filters: stdout takes errors only, one file takes the
/// `shop` loggers of the test system, another everything.
#[test]
fn config_file_filters_per_sink() {
    let dir = temp_dir("config");
    let shop = dir.join("shop.jsonl");
    let all = dir.join("all.jsonl");
    let config = dir.join("distlogd.toml");
    std::fs::write(
        &config,
        format!(
            r#"
stats_interval = 0

[[sink]]
type = "stdout"
format = "jsonl"
level = "ERROR"

[[sink]]
type = "file"
path = "{}"
logger = "shop"
system = "T"

[[sink]]
type = "file"
path = "{}"
"#,
            shop.display(),
            all.display()
        ),
    )
    .expect("write config");
    let config_s = config.to_string_lossy().into_owned();
    let mut d = Daemon::start(&["--config", &config_s]);
    let mut push = Pusher::connect(&d.pull);
    let cases = [
        ("TLJ", "shop.orders", 20),
        ("PLJ", "shop.orders", 40),
        ("TLP", "shopping", 40),
        ("TLJ", "shop", 10),
        ("SLJ", "other", 50),
    ];
    for (i, (topic, name, level)) in cases.iter().enumerate() {
        let mut r = simple(name, &format!("case {i}"));
        r.insert("levelno", *level);
        r.insert("seq", i as i64);
        let body = if topic.ends_with('J') {
            json_body(&r)
        } else {
            pickle_body(&r)
        };
        push.send(&[topic.as_bytes(), &body]);
    }
    assert!(d.terminate().success());
    let seqs = |text: &str| -> Vec<i64> {
        text.lines()
            .map(|l| {
                parse_line(l)
                    .1
                    .get("seq")
                    .and_then(Value::as_i64)
                    .expect("seq")
            })
            .collect()
    };
    let stdout = d.rest_of_stdout().join("\n");
    assert_eq!(seqs(&stdout), [1, 2, 4]);
    assert_eq!(seqs(&std::fs::read_to_string(&shop).unwrap()), [0, 3]);
    assert_eq!(
        seqs(&std::fs::read_to_string(&all).unwrap()),
        [0, 1, 2, 3, 4]
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Bad flags and config values are refused at start with a message naming them.
#[test]
fn bad_configuration_is_refused() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_distlogd"))
            .args(args)
            .output()
            .expect("run distlogd");
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["--output", "xml"]).contains("\"xml\""));
    assert!(run(&["--level", "loud"]).contains("\"loud\""));
    assert!(run(&["--bind", "carrier-pigeon://x"]).contains("carrier-pigeon://x"));
    let dir = temp_dir("badconfig");
    let config = dir.join("bad.toml");
    std::fs::write(
        &config,
        "[[sink]]\ntype = \"stdout\"\nformat = \"jsonl\"\nlevle = 3\n",
    )
    .unwrap();
    let err = run(&["--config", &config.to_string_lossy()]);
    assert!(err.contains("unknown key \"levle\" in sink 1"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
