//! Bad input: every decoder returns an error, never a panic, on truncated,
//! wrong-typed or garbage input.

use distlog::serialize::{decode, decode_message, ErrorKind, Limits, MessageError};
use distlog::topic::Encoding;
use std::path::PathBuf;

fn fixtures() -> Vec<(Encoding, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let enc = if path.extension().is_some_and(|e| e == "pickle") {
            Encoding::Pickle
        } else {
            Encoding::Json
        };
        out.push((enc, std::fs::read(path).expect("read")));
    }
    out
}

#[test]
fn every_truncation_of_every_golden_frame_is_an_error() {
    for (enc, body) in fixtures() {
        for len in 0..body.len() {
            let r = decode(&body[..len], enc);
            // A JSON prefix is never a complete object; a pickle prefix lacks STOP.
            assert!(r.is_err(), "{enc} prefix of {len} bytes decoded");
        }
    }
}

#[test]
fn mutated_frames_never_panic() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for (enc, body) in fixtures() {
        for _ in 0..2000 {
            let mut b = body.clone();
            for _ in 0..(1 + next() % 4) {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            let _ = decode(&b, enc);
            let _ = decode(
                &b,
                if enc == Encoding::Json {
                    Encoding::Pickle
                } else {
                    Encoding::Json
                },
            );
        }
    }
}

#[test]
fn wrong_types_are_named() {
    let e = decode(b"[1, 2]", Encoding::Json).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotADict("list"));
    assert_eq!(
        e.to_string(),
        "invalid JSON body at byte 0: a record must be a dict, got a list"
    );
    let e = decode(b"\x80\x03K\x01.", Encoding::Pickle).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotADict("int"));
    let e = decode(b"\x80\x03}K\x01K\x02s.", Encoding::Pickle).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonStringKey("1".into()));
    let e = decode(b"", Encoding::Json).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Eof);
}

#[test]
fn hostile_messages_are_typed_errors() {
    let limits = Limits::default();
    let err = |frames: &[&[u8]]| decode_message(frames, &limits).unwrap_err();
    assert_eq!(err(&[b"TLJ"]), MessageError::FrameCount(1));
    assert_eq!(err(&[b"TLJ", b"{}", b"x"]), MessageError::FrameCount(3));
    assert!(matches!(err(&[b"XLJ", b"{}"]), MessageError::Topic(_)));
    // The wrapped error stays reachable, and the message still names the bad byte.
    let topic = err(&[b"XLJ", b"{}"]);
    let source = std::error::Error::source(&topic).map(|e| e.to_string());
    assert_eq!(source, Some(topic.to_string()));
    assert!(topic.to_string().contains("'X'"), "{topic}");
    let body = err(&[b"TLJ", b"{"]);
    assert!(std::error::Error::source(&body).is_some());
    assert!(std::error::Error::source(&err(&[b"TLJ"])).is_none());
    assert_eq!(err(&[b"TLJ", b"{"]).reason(), "bad_body");
    assert_eq!(
        err(&[b"TLP", b"\x80\x03cos\nsystem\n"]).reason(),
        "forbidden_pickle"
    );
    let deep = "[".repeat(200_000);
    assert_eq!(err(&[b"TLJ", deep.as_bytes()]).reason(), "too_large");
    let mut nested = b"\x80\x03".to_vec();
    for _ in 0..200_000 {
        nested.extend_from_slice(b"]\x94");
    }
    nested.extend(std::iter::repeat_n(b'a', 199_999));
    nested.push(b'.');
    assert_eq!(err(&[b"TLP", &nested]).reason(), "too_large");
    let huge = b"\x80\x03X\x00\x00\x00\x01";
    assert!(
        matches!(err(&[b"TLP", huge]), MessageError::Body(e) if e.kind == ErrorKind::LengthPastEnd(1 << 24))
    );
}
