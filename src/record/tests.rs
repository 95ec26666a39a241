use super::standard_keys::standard_index;
use super::*;
use crate::value::Value;
use std::time::UNIX_EPOCH;
#[test]
fn standard_index_finds_exactly_the_standard_keys() {
    for (i, key) in STANDARD_KEYS.iter().enumerate() {
        assert_eq!(standard_index_of(key.as_bytes()), Some(i), "{key}");
        let mut other = key.as_bytes().to_vec();
        for at in [0, other.len() - 1] {
            other[at] ^= 0x20;
            assert_eq!(standard_index_of(&other), None);
            other[at] ^= 0x20;
        }
        assert_eq!(standard_index_of(&key.as_bytes()[1..]), None);
    }
    for extra in [
        "",
        "order_id",
        "user",
        "amount",
        "relativeCreatedX",
        "x".repeat(40).as_str(),
    ] {
        assert_eq!(standard_index_of(extra.as_bytes()), None, "{extra}");
    }
}

#[test]
fn msecs_are_the_whole_milliseconds_of_created() {
    let process = ProcessInfo::current();
    let mut e = Event::new(log::Level::Info, "t", String::new());
    for secs in [0u64, 1, 1_764_090_000] {
        for nanos in [0u32, 999_999, 1_000_000, 123_456_789, 999_999_999] {
            e.time = UNIX_EPOCH + std::time::Duration::new(secs, nanos);
            let [created, msecs, _] = e.times(&process);
            assert_eq!(msecs, (created.fract() * 1000.0).floor(), "{secs}.{nanos}");
        }
    }
    e.time = UNIX_EPOCH - std::time::Duration::from_millis(1500);
    assert_eq!(e.times(&process)[1], 0.0);
}

#[test]
fn event_builds_keys_in_python_order() {
    let mut e = Event::new(log::Level::Warn, "shop.orders", "a\nb".into());
    e.file = Some("src/shop/orders.rs".into());
    e.line = Some(42);
    e.module_path = Some("shop::orders".into());
    e.extra.push(("order_id".into(), Value::Int(7)));
    e.extra.push(("message".into(), Value::Int(1)));
    let r = e.into_record(&ProcessInfo::current());
    let keys: Vec<&str> = r.fields().map(|(k, _)| k).collect();
    let mut want: Vec<&str> = STANDARD_KEYS[..21].to_vec();
    want.extend([
        "order_id",
        "extra_message",
        "message",
        "asctime",
        "hostname",
    ]);
    assert_eq!(keys, want);
    assert_eq!(r.get("filename").and_then(Value::as_str), Some("orders.rs"));
    assert_eq!(r.get("module").and_then(Value::as_str), Some("orders"));
    assert_eq!(r.get("msg").and_then(Value::as_str), Some("a\nb"));
    assert_eq!(r.message(), Some("a\\nb"));
    assert_eq!(r.levelno(), Some(30));
    assert_eq!(
        r.get("msecs").and_then(Value::as_f64).map(|m| m.fract()),
        Some(0.0)
    );
}

#[test]
fn task_id_from_context() {
    let mut r = Record::new();
    r.insert(
        "context",
        Value::Dict(vec![(Value::from("key"), Value::from("3@abc/1"))]),
    );
    assert_eq!(r.context_key(), Some("3@abc/1"));
    assert_eq!(r.task_id(), Some("abc/1"));
}

#[test]
fn standard_index_of_a_key() {
    assert_eq!(
        standard_index("msecs").map(|i| STANDARD_KEYS[i]),
        Some("msecs")
    );
    assert_eq!(standard_index("order_id"), None);
}

#[test]
fn newlines_are_escaped_as_python_distlog_does() {
    assert_eq!(escape_newlines("a\nb\tc"), "a\\nb\tc");
    assert!(matches!(
        escape_newlines("plain"),
        std::borrow::Cow::Borrowed(_)
    ));
}
