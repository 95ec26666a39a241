//! The task tree across two real processes: the `handoff` example (parent and child)
//! sends to a real pyzmq PULL.

mod context_common;

use context_common::{id_of, Collector, Msg};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The `handoff` example next to this test binary (`cargo test` builds examples);
/// built on demand with the same features when a filtered run did not build it.
fn handoff_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps layout");
    let bin = profile_dir
        .join("examples")
        .join(format!("handoff{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--example", "handoff"]);
        if cfg!(feature = "tokio") {
            cargo.args(["--no-default-features", "--features", "tokio"]);
        }
        let status = cargo.status().expect("run cargo to build the example");
        assert!(status.success(), "building the handoff example failed");
    }
    assert!(bin.exists(), "no handoff example at {}", bin.display());
    bin
}

fn run_handoff(encoding: &str) -> Vec<Msg> {
    let bin = handoff_binary();
    // 9 log records and 1 performance message.
    let collector = Collector::start(10, Duration::from_secs(10));
    let status = Command::new(bin)
        .args(["--endpoint", &collector.endpoint, "--encoding", encoding])
        .status()
        .expect("run the handoff example");
    assert!(status.success(), "handoff exited with {status}");
    collector.finish()
}

fn check_tree(msgs: &[Msg], letter: char) {
    assert_eq!(msgs.len(), 10, "{msgs:#?}");
    for m in msgs {
        assert_eq!(m.frames, 2);
        assert_eq!(m.topic.chars().nth(2), Some(letter), "{}", m.topic);
        assert!(!m.key().is_empty(), "record without context key: {m:?}");
    }
    let root = msgs
        .iter()
        .find(|m| m.message() == "handoff demo")
        .map(|m| id_of(m.key()).to_string())
        .expect("the parent's enter record");
    assert!(uuid::Uuid::try_parse(&root).is_ok(), "{root}");
    let mut keys: Vec<String> = msgs.iter().map(|m| m.key().replace(&root, "U")).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["0@U", "0@U/1", "0@U/1/1", "1@U", "1@U/1", "1@U/1/1", "2@U", "2@U/1", "3@U", "3@U/1"]
    );
    let by_key = |k: &str| {
        msgs.iter()
            .find(|m| m.key() == k.replace('U', &root))
            .unwrap_or_else(|| panic!("no record {k}"))
    };
    let failed = by_key("1@U/1/1");
    assert_eq!(failed.message(), "FAILED child work");
    assert_eq!(failed.str("levelname"), "ERROR");
    assert_eq!(failed.str("name"), "handoff");
    assert!(failed.str("exc_text").contains("simulated failure"));
    assert_eq!(by_key("0@U/1").message(), "handoff child");
    assert_eq!(by_key("3@U").message(), "handoff done");

    let perf = by_key("2@U");
    assert!(perf.is_perf(), "{perf:?}");
    assert_eq!(perf.topic[..2].to_string(), "PP");
    assert_eq!(perf.str("name"), "handoff.duration");
    assert_eq!(perf.str("unit"), "s");
    assert!(perf.body["value"].as_f64().is_some_and(|v| v > 0.0));
    assert_eq!(
        perf.keys,
        [
            "name",
            "value",
            "unit",
            "tags",
            "context",
            "created",
            "asctime",
            "hostname",
            "process",
            "processName",
            "thread",
            "threadName"
        ]
    );

    let pid = |k: &str| by_key(k).body["process"].as_u64();
    assert_ne!(
        pid("0@U"),
        pid("0@U/1"),
        "parent and child are two processes"
    );
    assert_eq!(pid("0@U/1"), pid("1@U/1/1"));
}

#[test]
fn tree_across_two_processes_json() {
    distlog_testkit::require_python!();
    check_tree(&run_handoff("json"), 'J');
}

#[test]
fn tree_across_two_processes_pickle() {
    distlog_testkit::require_python!();
    check_tree(&run_handoff("pickle"), 'P');
}

#[test]
fn child_refuses_a_malformed_foreign_id() {
    let out = Command::new(handoff_binary())
        .args(["--endpoint", "tcp://127.0.0.1:9", "--encoding", "json"])
        .args(["--child-of", "abc//1"])
        .output()
        .expect("run the handoff example");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"abc//1\""), "{err}");
}
