//! The twelve frames captured from the real Python package (tests/fixtures, copied
//! from shared/wire/golden) decode to what Python's own decoder gives, and our
//! encoders write bodies that Python reads back to the same dict.

mod common;

use distlog::serialize::{decode, encode};
use distlog::topic::{Encoding, Topic};
use std::path::PathBuf;

fn fixtures() -> Vec<(String, Topic, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(topic) = name.get(3..6) else {
            continue;
        };
        let topic: Topic = topic.parse().expect("topic in file name");
        out.push((name, topic, std::fs::read(&path).expect("read fixture")));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 12, "twelve golden frames");
    out
}

#[test]
fn golden_frames_decode_as_python_decodes_them() {
    distlog_testkit::require_python!();
    let frames = fixtures();
    let bodies: Vec<(Encoding, Vec<u8>)> = frames
        .iter()
        .map(|(_, t, b)| (t.encoding, b.clone()))
        .collect();
    let python = common::python_decode(&bodies);
    assert_eq!(python.len(), frames.len());
    for ((name, topic, body), want) in frames.iter().zip(&python) {
        let record = decode(body, topic.encoding).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&common::json_of(&record), want, "{name}");
        if topic.encoding == Encoding::Json {
            assert_eq!(
                common::json_of(&record).as_bytes(),
                &body[..],
                "{name}: re-encoding is byte-identical"
            );
        }
    }
}

#[test]
fn our_encodings_of_golden_records_read_back_in_python() {
    distlog_testkit::require_python!();
    let frames = fixtures();
    let mut ours = Vec::new();
    let mut expected = Vec::new();
    for (name, topic, body) in &frames {
        let record = decode(body, topic.encoding).unwrap_or_else(|e| panic!("{name}: {e}"));
        for enc in [Encoding::Json, Encoding::Pickle] {
            let mut out = Vec::new();
            encode(&record, enc, &mut out);
            assert_eq!(decode(&out, enc).as_ref(), Ok(&record), "{name} via {enc}");
            ours.push((enc, out));
            expected.push(common::json_of(&record));
        }
    }
    let python = common::python_decode(&ours);
    assert_eq!(python, expected);
}

#[test]
fn floats_are_written_as_python_writes_them() {
    distlog_testkit::require_python!();
    // A deterministic spread of doubles: random bit patterns, timestamps, and the
    // exact halves where shortest-digit ties occur.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut floats = Vec::new();
    for i in 0..6000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = match i % 4 {
            0 => (x % 1_000_000) as f64 / 65536.0,
            // Like `created` and `relativeCreated`.
            1 => 1.7e9 + (x >> 20) as f64 * 1e-9,
            _ => f64::from_bits(x),
        };
        if f.is_finite() {
            floats.push(distlog::Value::Float(f));
        }
    }
    let list = distlog::Value::List(floats);
    let mut body = Vec::new();
    distlog::serialize::json::encode_value(&list, &mut body);
    let python = common::python_decode(&[(Encoding::Json, body.clone())]);
    assert_eq!(python[0].as_bytes(), &body[..]);
}
