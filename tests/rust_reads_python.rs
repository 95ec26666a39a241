//! Rust reads Python: the real `distlog.ZmqHandler` (pyzmq, libzmq) sends to a Rust
//! zeromq PULL socket, and every record decodes to exactly the dict Python sent.

mod common;

use distlog::serialize::{decode_message, Limits};
use std::time::Duration;
use zeromq::Socket;

fn receive_from_python(encoding: &str) {
    common::block_on(async {
        let port = common::free_port();
        let endpoint = format!("tcp://127.0.0.1:{port}");
        let mut pull = zeromq::PullSocket::new();
        pull.bind(&endpoint).await.expect("bind PULL");
        let child = common::spawn_python("send_distlog.py", &[&endpoint, encoding]);
        let reference = common::finish(child);
        let reference: Vec<&str> = reference.lines().collect();
        assert!(
            reference.len() >= 7,
            "python sent {} records",
            reference.len()
        );
        for (i, want) in reference.iter().enumerate() {
            let msg = common::recv_within(&mut pull, Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("message {i} not received"));
            let frames = msg.into_vec();
            let (topic, record) = decode_message(&frames, &Limits::default())
                .unwrap_or_else(|e| panic!("message {i}: {e}"));
            assert_eq!(
                topic.to_string(),
                if encoding == "json" { "SLJ" } else { "SLP" }
            );
            assert_eq!(
                common::json_of(&record),
                *want,
                "record {i} differs from what Python sent"
            );
            if encoding == "json" {
                // Our encoder writes exactly what json.dumps wrote.
                assert_eq!(common::json_of(&record).as_bytes(), &frames[1][..]);
            }
        }
    });
}

#[test]
fn rust_decodes_python_json() {
    distlog_testkit::require_python!();
    receive_from_python("json");
}

#[test]
fn rust_decodes_python_pickle() {
    distlog_testkit::require_python!();
    receive_from_python("pickle");
}
