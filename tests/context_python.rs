//! Hand-over between Python distlog 0.1 and Rust, both ways, with the real package,
//! to a real pyzmq PULL.

mod context_common;

use context_common::{id_of, log_to, logger, run_python, Collector, Msg, PY_SETUP, PY_TEARDOWN};
use distlog::context::import_task;
use std::time::Duration;

fn keys_of(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().map(|m| m.key().to_string()).collect()
}

/// Python's `get_foreign_task()` hands out `<parent id>/<n>` (its flaw); a fixed one
/// would hand out `<own id>/<n>`. Rust continues either id exactly as given.
#[test]
fn python_hands_a_task_to_rust() {
    distlog_testkit::require_python!();
    let collector = Collector::start(7, Duration::from_secs(10));
    let script = format!(
        "{PY_SETUP}\n{}\n{PY_TEARDOWN}",
        r#"
with task('python root', side='py') as t:
    log.info('python working')
    with to('python sub') as s:
        print(s.id, flush=True)
        print(s.get_foreign_task(), flush=True)                 # the real API
        print('%s/%d' % (s.id, s.get_next_task()), flush=True)  # what it should return
"#
    );
    let lines = run_python(&script, &[&collector.endpoint]);
    let [sub_id, real, fixed] = &lines[..] else {
        panic!("Python printed {lines:?}")
    };
    let root = sub_id.split('/').next().unwrap_or_default();
    assert!(uuid::Uuid::try_parse(root).is_ok(), "{sub_id}");
    assert_eq!(fixed, &format!("{sub_id}/2"));

    let (logger, guard) = logger(&collector.endpoint);
    for (id, what) in [(real, "real"), (fixed, "fixed")] {
        let t = import_task(id, format!("rust continues {what}"), [("side", "rust")])
            .expect("a Python id is accepted")
            .target("rust")
            .handler(logger.handler().clone())
            .enter();
        log_to(&logger, log::Level::Info, "rust", "rust working");
        drop(t);
    }
    guard.shutdown();
    let msgs = collector.finish();
    assert_eq!(msgs.len(), 7, "{msgs:#?}");

    let py: Vec<&Msg> = msgs.iter().filter(|m| m.str("name") != "rust").collect();
    let rust: Vec<&Msg> = msgs.iter().filter(|m| m.str("name") == "rust").collect();
    assert_eq!(
        keys_of(&py.iter().map(|m| (*m).clone()).collect::<Vec<_>>()),
        [
            format!("0@{root}"),
            format!("1@{root}"),
            format!("0@{sub_id}"),
        ]
    );
    assert_eq!(
        keys_of(&rust.iter().map(|m| (*m).clone()).collect::<Vec<_>>()),
        [
            format!("0@{real}"),
            format!("1@{real}"),
            format!("0@{fixed}"),
            format!("1@{fixed}"),
        ]
    );
    for m in &rust {
        assert!(id_of(m.key()).starts_with(root), "{m:?}");
        assert_eq!(m.body["context"]["side"], "rust");
    }
    assert_eq!(rust[0].message(), "rust continues real");
    assert_eq!(rust[2].message(), "rust continues fixed");
    // The fixed id is a child of the Python subtask: one tree.
    assert_eq!(
        id_of(rust[2].key()).rsplit_once('/').map(|p| p.0),
        Some(sub_id.as_str())
    );
}

/// Python's `import_task` ignores its id, so Python continues a Rust task with
/// `distlog.Task(foreign_id, msg)`, which sets `_id` as a fixed `import_task` would.
#[test]
fn rust_hands_a_task_to_python() {
    distlog_testkit::require_python!();
    let collector = Collector::start(6, Duration::from_secs(10));
    let (logger, guard) = logger(&collector.endpoint);
    let t = distlog::context::task("rust root", [("side", "rust")])
        .target("rust")
        .handler(logger.handler().clone())
        .enter();
    log_to(&logger, log::Level::Info, "rust", "before hand-over");
    let foreign = t.foreign_task_id();
    assert_eq!(foreign, format!("{}/1", t.id()));

    let script = format!(
        "{PY_SETUP}\n{}\n{PY_TEARDOWN}",
        r#"
fid = sys.argv[2]
print(import_task(fid, 'broken')._id is id, flush=True)   # Python's flaw, shown
with distlog.Task(fid, 'python continues', side='py') as p:
    log.info('python working')
    print(p.id, flush=True)
"#
    );
    let lines = run_python(&script, &[&collector.endpoint, &foreign]);
    assert_eq!(lines, ["True".to_string(), foreign.clone()]);
    log_to(&logger, log::Level::Info, "rust", "after hand-over");
    t.success("rust done");
    drop(t);
    guard.shutdown();

    let msgs = collector.finish();
    assert_eq!(msgs.len(), 6, "{msgs:#?}");
    let root = t_id(&msgs);
    let mut keys = keys_of(&msgs);
    keys.sort();
    let mut want = vec![
        format!("0@{root}"),
        format!("1@{root}"),
        format!("2@{root}"),
        format!("3@{root}"),
        format!("0@{foreign}"),
        format!("1@{foreign}"),
    ];
    want.sort();
    assert_eq!(keys, want);
    let py: Vec<&Msg> = msgs.iter().filter(|m| m.str("name") != "rust").collect();
    assert_eq!(py.len(), 2);
    assert_eq!(py[0].message(), "python continues");
    assert_eq!(py[0].body["context"]["side"], "py");
    assert_eq!(py[1].message(), "python working");
}

fn t_id(msgs: &[Msg]) -> String {
    msgs.iter()
        .find(|m| m.message() == "rust root")
        .map(|m| id_of(m.key()).to_string())
        .expect("the Rust task's enter record")
}
