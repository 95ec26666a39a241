//! The `tracing` layer: spans give the same tree and keys as explicit tasks, events
//! keep their field types, TRACE is levelno 5, span timings are opt-in.
#![cfg(feature = "tracing")]

mod context_common;

use context_common::{id_of, log_to, logger, Collector, Msg};
use distlog::context::{task, to};
use distlog::tracing_layer::DistlogLayer;
use serde_json::{json, Value as Json};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

/// What must match between the two runs: keys with the root id replaced, and the rest
/// of each record that does not depend on time, thread or source location.
fn shape(msgs: &[Msg]) -> Vec<Json> {
    let root = id_of(msgs[0].key()).to_string();
    msgs.iter()
        .map(|m| {
            let mut data = m.body["context"].clone();
            if let Some(o) = data.as_object_mut() {
                o.remove("key");
            }
            json!({
                "key": m.key().replace(&root, "U"),
                "name": m.str("name"),
                "levelname": m.str("levelname"),
                "message": m.message(),
                "data": data,
            })
        })
        .collect()
}

#[tracing::instrument(target = "demo", name = "step")]
fn step(n: i64) {
    tracing::info!(target: "demo", "inside");
}

#[test]
fn spans_give_the_same_keys_as_explicit_tasks() {
    distlog_testkit::require_python!();
    let collector = Collector::start(10, Duration::from_secs(10));
    let (logger, guard) = logger(&collector.endpoint);

    // Explicit tasks.
    let t = task("work", [("job", 1)])
        .target("demo")
        .handler(logger.handler().clone())
        .enter();
    log_to(&logger, log::Level::Info, "demo", "start");
    {
        let _s = to("step", [("n", 2)]).enter();
        log_to(&logger, log::Level::Info, "demo", "inside");
    }
    log_to(&logger, log::Level::Info, "demo", "end");
    drop(t);

    // The same through tracing spans and an #[instrument]ed function.
    let subscriber =
        tracing_subscriber::registry().with(DistlogLayer::new(logger.handler().clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(target: "demo", "work", job = 1);
        let _e = span.enter();
        tracing::info!(target: "demo", "start");
        step(2);
        tracing::info!(target: "demo", "end");
    });
    guard.shutdown();

    let msgs = collector.finish();
    assert_eq!(msgs.len(), 10, "{msgs:#?}");
    let (explicit, spans) = msgs.split_at(5);
    assert_ne!(
        id_of(explicit[0].key()),
        id_of(spans[0].key()),
        "two separate trees"
    );
    let want = shape(explicit);
    assert_eq!(
        want.iter().map(|r| r["key"].clone()).collect::<Vec<_>>(),
        ["0@U", "1@U", "0@U/1", "1@U/1", "2@U"]
    );
    assert_eq!(want[0]["data"], json!({"job": 1}));
    assert_eq!(want[2]["data"], json!({"n": 2}));
    assert_eq!(shape(spans), want);
}

#[test]
fn events_keep_types_and_trace_is_level_5() {
    distlog_testkit::require_python!();
    let collector = Collector::start(3, Duration::from_secs(10));
    let (logger, guard) = logger(&collector.endpoint);
    let subscriber =
        tracing_subscriber::registry().with(DistlogLayer::new(logger.handler().clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::trace_span!(target: "demo", "low", user = "ann");
        let _e = span.enter();
        span.record("user", "bob");
        // The crates under distlog's sending are ignored, or every send would log more.
        tracing::info!(target: "zeromq::backend", "internal");
        tracing::trace!(
            target: "demo",
            n = 5u64,
            f = 1.5,
            ok = true,
            s = "x",
            d = ?vec![1, 2],
            "value {}",
            3
        );
        // A `log` record inside the span joins the span's task.
        log_to(&logger, log::Level::Warn, "plain.log", "from log");
    });
    guard.shutdown();
    let msgs = collector.finish();
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    let (enter, event, from_log) = (&msgs[0], &msgs[1], &msgs[2]);
    assert_eq!(enter.message(), "low");
    assert_eq!(enter.body["levelno"], 5);
    assert_eq!(enter.str("levelname"), "TRACE");
    assert_eq!(enter.body["context"]["user"], "ann");

    let b = &event.body;
    assert_eq!(b["levelno"], 5);
    assert_eq!(event.str("levelname"), "TRACE");
    assert_eq!(event.str("name"), "demo");
    assert_eq!(event.message(), "value 3");
    assert_eq!(b["n"], 5);
    assert_eq!(b["f"], 1.5);
    assert_eq!(b["ok"], true);
    assert_eq!(b["s"], "x");
    assert_eq!(b["d"], "[1, 2]");
    assert_eq!(event.str("filename"), "tracing_layer.rs");
    assert!(b["lineno"].as_u64().is_some_and(|l| l > 0));
    assert_eq!(b["context"]["user"], "bob", "span.record binds task data");
    // The extra keys sit between `context` and `message`, as Python's do.
    let at = |k: &str| event.keys.iter().position(|x| x == k);
    assert!(at("context") < at("n") && at("d") < at("message"));

    let id = id_of(enter.key());
    assert_eq!(event.key(), format!("1@{id}"));
    assert_eq!(from_log.key(), format!("2@{id}"));
    assert_eq!(from_log.message(), "from log");
}

#[test]
fn span_timings_are_opt_in() {
    distlog_testkit::require_python!();
    for timings in [true, false] {
        // With timings: enter, performance message, sentinel. Without: enter, sentinel.
        let expect = if timings { 3 } else { 2 };
        let collector = Collector::start(expect, Duration::from_secs(10));
        let (logger, guard) = logger(&collector.endpoint);
        let layer = DistlogLayer::new(logger.handler().clone()).with_span_timings(timings);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let span = tracing::info_span!(target: "demo", "timed");
            span.in_scope(|| std::thread::sleep(Duration::from_millis(5)));
        });
        log_to(&logger, log::Level::Info, "demo", "sentinel");
        guard.shutdown();
        let msgs = collector.finish();
        assert_eq!(msgs.len(), expect, "{msgs:#?}");
        assert_eq!(msgs[expect - 1].message(), "sentinel");
        if timings {
            let perf = &msgs[1];
            assert!(perf.is_perf(), "{perf:?}");
            assert_eq!(perf.topic, "TPJ");
            assert_eq!(perf.str("name"), "timed");
            assert_eq!(perf.str("unit"), "s");
            assert!(perf.body["value"].as_f64().is_some_and(|v| v >= 0.005));
            assert_eq!(perf.body["tags"]["target"], "demo");
            assert_eq!(perf.key(), format!("1@{}", id_of(msgs[0].key())));
        }
    }
}
