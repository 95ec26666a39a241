//! Topic frames: `Topic::parse` never panics, and what it accepts prints and parses
//! back to the same three bytes. The names a command line gives go through `FromStr`.
#![no_main]

use distlog::topic::{Encoding, Kind, System, Topic};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Topic::parse(data) {
        Ok(topic) => {
            assert_eq!(topic.as_bytes(), data);
            assert_eq!(topic.to_string().parse::<Topic>(), Ok(topic));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = s.parse::<System>();
        let _ = s.parse::<Kind>();
        let _ = s.parse::<Encoding>();
    }
});
