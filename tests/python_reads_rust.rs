//! Python reads Rust: a real libzmq PULL socket (pyzmq) receives from the distlog
//! handler, and Python's own `json.loads` / `pickle.loads` decode every record.

mod common;

use distlog::handler::Handler;
use distlog::record::Event;
use distlog::topic::{Encoding, System};
use distlog::Value;
use std::io::{BufRead, BufReader};

fn roundtrip(encoding: Encoding, system: System) {
    let port = common::free_port();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    let mut child = common::spawn_python("pull.py", &[&endpoint, "3", "20"]);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
    let mut ready = String::new();
    lines.read_line(&mut ready).expect("ready line");

    let guard = Handler::builder()
        .endpoint(&endpoint)
        .encoding(encoding)
        .system(system)
        .spawn()
        .expect("handler");
    let mut e = Event::new(
        log::Level::Warn,
        "shop.orders",
        "unicode ünïcødé ✓ 😀 tab\tand\nnewline".into(),
    );
    e.file = Some("src/shop/orders.rs".into());
    e.line = Some(42);
    e.module_path = Some("shop::orders".into());
    e.extra.push(("order_id".into(), Value::Int(42)));
    e.extra.push(("amount".into(), Value::Float(9.5)));
    e.extra
        .push(("tags".into(), Value::List(vec!["a".into(), "b".into()])));
    e.extra.push(("flag".into(), Value::Bool(true)));
    e.extra.push(("none".into(), Value::None));
    e.extra.push(("huge".into(), Value::from(u64::MAX)));
    guard.handler().enqueue(e);
    let mut ex = Event::new(log::Level::Error, "shop.orders", "charge failed".into());
    ex.exc_text = Some("Error: card declined\ncaused by: limit".into());
    guard.handler().enqueue(ex);
    guard
        .handler()
        .enqueue(Event::new(log::Level::Trace, "deep", "trace".into()));
    let report = guard.shutdown();
    assert_eq!((report.sent, report.dropped), (3, 0), "{report:?}");

    let mut records = Vec::new();
    for line in lines.lines() {
        let line = line.expect("line");
        let v: serde_json::Value = serde_json::from_str(&line).expect("json line");
        records.push(v);
    }
    child.wait().expect("python exits");
    assert_eq!(records.len(), 3, "{records:?}");
    let topic = format!("{}L{}", system.letter() as char, encoding.letter() as char);
    for r in &records {
        assert_eq!(r["frames"], 2);
        assert_eq!(r["topic"], topic.as_str());
    }
    let first = &records[0]["record"];
    let types = &records[0]["types"];
    let keys: Vec<&str> = records[0]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    let expected_keys = [
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "context",
        "order_id",
        "amount",
        "tags",
        "flag",
        "none",
        "huge",
        "message",
        "asctime",
        "hostname",
    ];
    assert_eq!(keys, expected_keys);
    assert_eq!(first["name"], "shop.orders");
    assert_eq!(first["levelname"], "WARNING");
    assert_eq!(first["levelno"], 30);
    assert_eq!(first["message"], "unicode ünïcødé ✓ 😀 tab\tand\\nnewline");
    assert_eq!(first["msg"], "unicode ünïcødé ✓ 😀 tab\tand\nnewline");
    assert_eq!(first["filename"], "orders.rs");
    assert_eq!(first["module"], "orders");
    assert_eq!(first["funcName"], "shop::orders");
    assert_eq!(first["lineno"], 42);
    assert_eq!(first["process"], std::process::id());
    assert_eq!(
        first["hostname"],
        distlog::record::ProcessInfo::current().hostname
    );
    assert_eq!(first["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(first["huge"].to_string(), "18446744073709551615");
    for (k, t) in [
        ("created", "float"),
        ("msecs", "float"),
        ("relativeCreated", "float"),
        ("thread", "int"),
        ("process", "int"),
        ("lineno", "int"),
        ("args", "NoneType"),
        ("exc_info", "NoneType"),
        ("context", "NoneType"),
        ("order_id", "int"),
        ("amount", "float"),
        ("flag", "bool"),
        ("huge", "int"),
        ("tags", "list"),
    ] {
        assert_eq!(types[k], t, "type of {k}");
    }
    let asctime = first["asctime"].as_str().expect("asctime");
    assert_eq!(asctime.len(), 23);
    assert_eq!(&asctime[19..20], ",");
    let created = first["created"].as_f64().expect("created");
    let msecs = first["msecs"].as_f64().expect("msecs");
    assert_eq!(msecs, (created.fract() * 1000.0).floor());
    assert_eq!(
        records[1]["record"]["exc_text"],
        "Error: card declined\\ncaused by: limit"
    );
    assert_eq!(records[1]["record"]["levelno"], 40);
    assert_eq!(records[2]["record"]["levelname"], "TRACE");
    assert_eq!(records[2]["record"]["levelno"], 5);
}

#[test]
fn python_decodes_json_records() {
    distlog_testkit::require_python!();
    roundtrip(Encoding::Json, System::Test);
}

#[test]
fn python_decodes_pickle_records() {
    distlog_testkit::require_python!();
    roundtrip(Encoding::Pickle, System::Production);
}
