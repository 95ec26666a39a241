//! Whole messages, exactly as the collector takes them: frames -> topic -> body.
//!
//! The input is a list of frames, each a 2-byte little-endian length and that many
//! bytes; a length past the end takes what is left. `fuzz/seeds/message/` holds the
//! golden frames in this form.
#![no_main]

use distlog::serialize::{decode_message, Limits};
use libfuzzer_sys::fuzz_target;

fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    // More than a handful of frames is refused by count alone; stop splitting there.
    while !data.is_empty() && out.len() < 8 {
        let (len, rest) = match data {
            [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as usize, rest),
            _ => (data.len(), &data[data.len()..]),
        };
        let (frame, rest) = rest.split_at(len.min(rest.len()));
        out.push(frame);
        data = rest;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let frames = frames(data);
    match decode_message(&frames, &Limits::default()) {
        Ok((topic, record)) => {
            // A record the collector accepted re-encodes and decodes to the same bytes.
            let mut body = Vec::new();
            distlog::serialize::encode(&record, topic.encoding, &mut body);
            let again = distlog::serialize::decode(&body, topic.encoding)
                .expect("a re-encoded record decodes");
            let mut body2 = Vec::new();
            distlog::serialize::encode(&again, topic.encoding, &mut body2);
            assert!(body == body2, "re-encoded record is not stable");
        }
        Err(e) => {
            let _ = (e.reason(), e.to_string());
        }
    }
});
