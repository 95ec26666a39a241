//! `distlogd --publish` re-publishes the original frames to SUB clients, which filter
//! by topic prefix; `distlog tail --tree` draws one tree for tasks across processes.

mod collector_support;

use collector_support::*;
use distlog::{Record, Value};
use std::time::Duration;

/// Sends `warm` through the collector until the subscriber gets something: PUB/SUB
/// subscriptions travel asynchronously, so only a received message proves it is on.
fn warm_up(push: &mut Pusher, sub: &mut Subscriber, topic: &[u8], warm: &[u8]) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        push.send(&[topic, warm]);
        if sub.recv(Duration::from_millis(200)).is_some() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SUB never got a message"
        );
    }
}

/// (4) A Rust SUB socket subscribed to a prefix gets exactly the matching records,
/// with their original bytes, in order.
#[test]
fn publish_filters_by_topic_prefix() {
    let d = Daemon::start(&[
        "--output",
        "none",
        "--publish",
        "tcp://127.0.0.1:0",
        "--stats-interval",
        "0",
    ]);
    let publish = d.publish.clone().expect("publish endpoint");
    let mut push = Pusher::connect(&d.pull);
    let mut pl = Subscriber::connect(&publish, "PL");
    let mut plj = Subscriber::connect(&publish, "PLJ");
    let warm = json_body(&simple("warmup", "warm"));
    warm_up(&mut push, &mut pl, b"PLJ", &warm);
    warm_up(&mut push, &mut plj, b"PLJ", &warm);

    let mut sent = Vec::new();
    for (i, topic) in ["TLJ", "PLJ", "PLP", "PPJ", "SLJ", "PLJ", "PLP", "TLP"]
        .iter()
        .enumerate()
    {
        let r = simple("app", &format!("record {i}"));
        let body = if topic.ends_with('J') {
            json_body(&r)
        } else {
            pickle_body(&r)
        };
        push.send(&[topic.as_bytes(), &body]);
        sent.push((topic.as_bytes().to_vec(), body));
    }
    // Malformed messages are not re-published.
    push.send(&[b"PLJ", b"{not json"]);
    push.send(&[b"PLJ"]);
    let end = json_body(&simple("end", "end"));
    push.send(&[b"PLJ", &end]);

    for (sub, prefix) in [(&mut pl, "PL"), (&mut plj, "PLJ")] {
        let mut got = Vec::new();
        loop {
            let frames = sub.recv(LONG).expect("messages until the end marker");
            assert_eq!(frames.len(), 2, "two frames");
            if frames[1] == end {
                break;
            }
            if frames[1] != warm {
                got.push((frames[0].clone(), frames[1].clone()));
            }
        }
        let want: Vec<_> = sent
            .iter()
            .filter(|(t, _)| t.starts_with(prefix.as_bytes()))
            .cloned()
            .collect();
        assert_eq!(got, want, "subscriber {prefix}");
    }
}

/// `--level` and `--logger` flags filter what is re-published too.
#[test]
fn publish_applies_flag_filters() {
    let d = Daemon::start(&[
        "--output",
        "none",
        "--publish",
        "tcp://127.0.0.1:0",
        "--level",
        "warning",
        "--logger",
        "shop",
        "--stats-interval",
        "0",
    ]);
    let publish = d.publish.clone().expect("publish endpoint");
    let mut push = Pusher::connect(&d.pull);
    let mut sub = Subscriber::connect(&publish, "");
    let mut warm_rec = simple("shop.warm", "warm");
    warm_rec.insert("levelno", 50);
    let warm = json_body(&warm_rec);
    warm_up(&mut push, &mut sub, b"TLJ", &warm);

    let mut want = Vec::new();
    for (name, level) in [
        ("shop", 30),
        ("shop.orders", 20),
        ("shopping", 40),
        ("shop.orders", 40),
        ("other", 50),
    ] {
        let mut r = simple(name, "x");
        r.insert("levelno", level);
        let body = json_body(&r);
        push.send(&[b"TLJ", &body]);
        if level >= 30 && (name == "shop" || name.starts_with("shop.")) {
            want.push(body);
        }
    }
    let mut end_rec = simple("shop", "end");
    end_rec.insert("levelno", 50);
    let end = json_body(&end_rec);
    push.send(&[b"TLJ", &end]);
    let mut got = Vec::new();
    loop {
        let frames = sub.recv(LONG).expect("messages until the end marker");
        if frames[1] == end {
            break;
        }
        if frames[1] != warm {
            got.push(frames[1].clone());
        }
    }
    assert_eq!(got, want);
}

fn task_record(key: &str, level: i64, msg: &str, created: f64, host: &str, pid: i64) -> Record {
    let (levelname, exc) = if level >= 40 {
        (
            "ERROR",
            Value::from(
                "Traceback (most recent call last):\\n  File \"ship.py\", line 3\\nValueError: no stock",
            ),
        )
    } else {
        ("INFO", Value::None)
    };
    Record::from_pairs([
        ("name", Value::from("app.orders")),
        ("msg", msg.into()),
        ("levelname", levelname.into()),
        ("levelno", level.into()),
        ("exc_text", exc),
        ("created", created.into()),
        ("process", pid.into()),
        (
            "context",
            Value::Dict(vec![
                ("key".into(), key.into()),
                ("user".into(), "alice".into()),
            ]),
        ),
        ("message", msg.into()),
        ("hostname", host.into()),
    ])
}

/// (5) `distlog tail --tree` draws one tree from records of two processes on two hosts
/// linked by task id, with what failed and how long each part took.
#[test]
fn tail_tree_across_processes() {
    let d = Daemon::start(&[
        "--output",
        "none",
        "--publish",
        "tcp://127.0.0.1:0",
        "--stats-interval",
        "0",
    ]);
    let publish = d.publish.clone().expect("publish endpoint");
    let id = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let t0 = 1_700_000_000.0;
    let records = [
        // process A on host alpha: the top-level task and a local subtask
        task_record(&format!("0@{id}"), 20, "checkout cart-1", t0, "alpha", 100),
        task_record(
            &format!("0@{id}/1"),
            20,
            "charge card",
            t0 + 0.25,
            "alpha",
            100,
        ),
        task_record(&format!("1@{id}/1"), 20, "charged", t0 + 0.5, "alpha", 100),
        // process B on host beta: a subtask imported from A, which fails
        task_record(
            &format!("0@{id}/2"),
            20,
            "ship order",
            t0 + 0.75,
            "beta",
            200,
        ),
        task_record(
            &format!("0@{id}/2/1"),
            20,
            "reserve stock",
            t0 + 0.8,
            "beta",
            200,
        ),
        task_record(
            &format!("1@{id}/2"),
            40,
            "FAILED ship order",
            t0 + 1.0,
            "beta",
            200,
        ),
        // back in A
        task_record(
            &format!("1@{id}"),
            20,
            "checkout done",
            t0 + 1.5,
            "alpha",
            100,
        ),
    ];
    let n = records.len();
    let count = n.to_string();
    let tail = Tail::start(&[
        "--connect",
        &publish,
        "--tree",
        "--logger",
        "app",
        "--count",
        &count,
        "--color",
        "never",
        "--duration",
        "120",
    ]);
    wait_for(&tail.stderr, "distlog: connected");
    let mut push = Pusher::connect(&d.pull);
    let warm = json_body(&simple("warmup", "warm"));
    let deadline = std::time::Instant::now() + LONG;
    while !tail.stderr.lock().unwrap().contains("distlog: receiving") {
        push.send(&[b"PLJ", &warm]);
        std::thread::sleep(Duration::from_millis(100));
        assert!(std::time::Instant::now() < deadline, "tail never received");
    }
    // Shuffled arrival: the tree comes from the ids, not the order.
    for i in [3, 0, 5, 1, 4, 2, 6] {
        push.send(&[b"PLJ", &json_body(&records[i])]);
    }
    let mut tail = tail;
    let (status, text) = tail.finish();
    assert!(status.success(), "{}", tail.stderr.lock().unwrap());
    let want = [
        format!("ok     {id}  checkout cart-1  (1.500s, 2 records, alpha:100)"),
        format!("├── ok     {id}/1  charge card  (0.250s, 2 records, alpha:100)"),
        format!(
            "└── FAILED {id}/2  ship order  (0.250s, 2 records, beta:200)  \
             FAILED ship order: ValueError: no stock"
        ),
        format!("    └── ok     {id}/2/1  reserve stock  (0.000s, 1 record, beta:200)"),
    ]
    .join("\n")
        + "\n";
    assert_eq!(text, want, "got:\n{text}");
}
