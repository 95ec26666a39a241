use super::*;
use crate::fnv::fnv1a_64;
use crate::value::Value;

fn key(v: &Value) -> String {
    v.get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn keys_data_and_subtasks_as_in_python() {
    let root = task("root", [("job", "x")]).enter();
    let id = root.id().to_string();
    assert!(uuid::Uuid::try_parse(&id).is_ok());
    let c = current_context();
    assert_eq!(key(&c), format!("0@{id}"));
    assert_eq!(c.get("job"), Some(&Value::from("x")));
    {
        let sub = to("sub", ()).enter();
        let c = current_context();
        assert_eq!(key(&c), format!("0@{id}/1"));
        // data is not inherited by subtasks
        assert_eq!(c.get("job"), None);
        bind("rows", 3);
        assert_eq!(current_context().get("rows"), Some(&Value::Int(3)));
        drop(sub);
    }
    assert_eq!(key(&current_context()), format!("1@{id}"));
    assert_eq!(foreign_task_id(), Some(format!("{id}/2")));
    assert_eq!(to("next", ()).id(), format!("{id}/3"));
    drop(root);
    assert_eq!(current_context(), Value::None);
}

#[test]
fn binding_key_does_not_break_the_tree() {
    let t = task("t", [("key", 1)]).enter();
    t.bind("key", 2);
    let c = current_context();
    assert_eq!(key(&c), format!("0@{}", t.id()));
    assert_eq!(c.get("data_key"), Some(&Value::Int(2)));
}

#[test]
fn guards_dropped_out_of_order_leave_the_right_task() {
    let a = task("a", ()).enter();
    let b = to("b", ()).enter();
    let b_id = b.id().to_string();
    drop(a);
    assert_eq!(current_task().map(|t| t.id().to_string()), Some(b_id));
    drop(b);
    assert!(current_task().is_none());
}

#[test]
fn traceparent_round_trip_and_errors() {
    let t = import_task("4bf92f35-77b3-4da6-a3ce-929d0e0e4736/2", "x", ())
        .unwrap()
        .enter();
    let tp: Traceparent = t.traceparent().parse().unwrap();
    assert_eq!(tp.trace_id, 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736);
    assert_eq!(
        tp.span_id,
        fnv1a_64(b"4bf92f35-77b3-4da6-a3ce-929d0e0e4736/2")
    );
    assert_eq!(tp.flags, 1);
    drop(t);
    let sub = Task::from_traceparent(&tp.to_string(), "remote", ())
        .unwrap()
        .enter();
    assert_eq!(sub.trace_context().trace_id, tp.trace_id);
    assert_eq!(
        sub.data()[0],
        ("traceparent".to_string(), Value::Str(tp.to_string()))
    );
    for (bad, want) in [
        ("", "Format"),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "Format",
        ),
        (
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "Format",
        ),
        (
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "Version",
        ),
        (
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ZeroTraceId",
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ZeroSpanId",
        ),
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "TrailingData",
        ),
    ] {
        let err = bad.parse::<Traceparent>().unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{bad}: {err:?}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
    }
    // A later version may carry more fields.
    assert!("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"
        .parse::<Traceparent>()
        .is_ok());
    // A non-UUID root still gives a valid trace id.
    assert_ne!(trace_id_of("None/1"), 0);
}

#[test]
fn run_logs_failure_and_passes_the_result() {
    let r: Result<(), String> = task("t", ()).run(|| Err("boom".into()));
    assert_eq!(r, Err("boom".into()));
    let caught = std::panic::catch_unwind(|| {
        let _: Result<(), String> = task("p", ()).run(|| panic!("kaput"));
    });
    assert!(caught.is_err());
    assert!(current_task().is_none());
}

#[test]
fn future_carries_its_task_and_counts() {
    let fut = async {
        let a = key(&current_context());
        futures::future::ready(()).await;
        let b = key(&current_context());
        (a, b)
    }
    .in_task(task("f", ()));
    assert!(current_task().is_none());
    let (a, b) = futures::executor::block_on(fut);
    assert!(a.starts_with("0@"), "{a}"); // no logger: the enter message was not sent
    assert!(b.starts_with("1@"), "{b}");
    assert!(current_task().is_none());
}
