use super::encode::ENCODED_KEYS;
use super::scan::{ends_ascii_run, ends_plain_run, needs_escape, non_digits, scan, ESCAPE};
use super::*;
use crate::record::STANDARD_KEYS;
use crate::serialize::error::{DecodeError, ErrorKind};
use crate::serialize::limits::Limits;
use crate::value::Value;

fn enc(v: &Value) -> String {
    let mut out = Vec::new();
    encode_value(v, &mut out);
    String::from_utf8(out).unwrap()
}

fn dec(s: &str) -> Result<Value, DecodeError> {
    decode_value(s.as_bytes(), &Limits::default())
}

#[test]
fn ascii_escapes_like_python() {
    assert_eq!(
        enc(&"ünï ✓ 😀 \u{7f}\"\\\n\t\u{1}".into()),
        r#""\u00fcn\u00ef \u2713 \ud83d\ude00 \u007f\"\\\n\t\u0001""#
    );
}

#[test]
fn record_keys_repeat_like_a_python_dict() {
    let r = decode_record(
        br#"{"a": 1, "name": "x", "a": 2, "n\u0061me": "y"}"#,
        &Limits::default(),
    )
    .unwrap();
    let keys: Vec<String> = r.fields().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(keys, ["a=2", "name='y'"]);
    let many: Vec<String> = (0..100).map(|i| format!("\"k{}\": {i}", i % 50)).collect();
    let r = decode_record(
        format!("{{{}}}", many.join(", ")).as_bytes(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(r.len(), 50);
    assert_eq!(r.get("k0"), Some(&Value::Int(50)));
}

/// Re-encoding the decoded record, to compare with what the checker says.
fn reencoded(body: &[u8]) -> Option<Vec<u8>> {
    let r = decode_record(body, &Limits::default()).ok()?;
    let mut out = Vec::new();
    encode_record(&r, &mut out);
    Some(out)
}

#[test]
fn check_says_canonical_exactly_when_the_copy_equals_the_reencoding() {
    let cases: &[(&str, bool)] = &[
        (r#"{}"#, true),
        (
            r#"{"a": 1, "b": [1, 2.5, -3, "x"], "c": {"d": null, "e": true}}"#,
            true,
        ),
        (
            r#"{"f": NaN, "g": -Infinity, "h": Infinity, "i": -0.0, "j": 1e+16}"#,
            true,
        ),
        (
            r#"{"big": 123456789012345678901234567890, "neg": -9223372036854775808}"#,
            true,
        ),
        (
            r#"{"s": "\u00fcn \ud83d\ude00 \u007f\"\\\n\r\t\b\f\u0001 \ufffd"}"#,
            true,
        ),
        (r#"{"e": [], "o": {}, "n": [[{}]]}"#, true),
        (r#"{"name": 1, "msg": 2, "zzz": 3, "args": 4}"#, true),
        (r#"{"levelno": 1, "name": 2, "x": {"name": 3}}"#, true),
        (r#"{"name": "a", "name": "b"}"#, false),
        (r#"{"msg": 1, "name": 2, "msg": 3}"#, false),
        (r#"{"name":1, "name": 2}"#, false),
        (r#"{"extra": 1, "name": 2, "extra": 3}"#, false),
        (r#"{"n\u0061me": 1, "name": 2}"#, false),
        (r#" {"a": 1}"#, false),
        (r#"{"a": 1} "#, false),
        (r#"{"a":1}"#, false),
        (r#"{"a" : 1}"#, false),
        (r#"{"a": 1,"b": 2}"#, false),
        (r#"{"a":  1}"#, false),
        (r#"{"a":	1}"#, false),
        (r#"{ "a": 1}"#, false),
        (r#"{"a": [1,2]}"#, false),
        (r#"{"a": [ 1]}"#, false),
        (r#"{"a": 1, "a": 2}"#, false),
        (r#"{"o": {"k": 1, "k": 1}}"#, false),
        (r#"{"a": -0}"#, false),
        (r#"{"a": 1E5}"#, false),
        (r#"{"a": 1.50}"#, false),
        (r#"{"a": 1e999}"#, false),
        (r#"{"a": 0.1e1}"#, false),
        (r#"{"s": "\/"}"#, false),
        (r#"{"s": "\u0041"}"#, false),
        (r#"{"s": "\u000a"}"#, false),
        (r#"{"s": "\u00FC"}"#, false),
        (r#"{"s": "\ud800"}"#, false),
        (r#"{"s": "\ud800\u0041"}"#, false),
        (r#"{"s": "\udc00"}"#, false),
        (r#"{"s": "\u0022"}"#, false),
        ("{\"s\": \"\u{fc}\"}", false),
        ("{\"s\": \"\u{7f}\"}", false),
        ("{\"s\": \"a\\n\u{e9}\"}", false),
    ];
    for (body, canonical) in cases {
        let checked = check_record(body.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(checked.canonical, *canonical, "{body}");
        let again = reencoded(body.as_bytes()).unwrap();
        assert_eq!(again == body.as_bytes(), *canonical, "{body}");
    }
}

#[test]
fn encoded_keys_are_what_the_encoder_writes_and_match_like_starts_with() {
    let text = b"\"relativeCreated\": 1.5, \"name\": \"x\", \"msgs\": 1, \"msg\":1, \"msg\": 1, \
        \"process\": \"processName\": 2, \"taskName\": 1";
    for (key, encoded) in STANDARD_KEYS.iter().zip(&ENCODED_KEYS) {
        let mut want = Vec::new();
        write_str(key, &mut want);
        want.extend_from_slice(b": ");
        assert_eq!(encoded.as_bytes(), want);
        for at in 0..=text.len() {
            assert_eq!(
                encoded.starts(&text[at..]),
                text[at..].starts_with(&want),
                "{key} at {at}"
            );
        }
    }
    let i = STANDARD_KEYS.iter().position(|k| *k == "relativeCreated");
    assert!(ENCODED_KEYS[i.unwrap()].starts(text));
}

#[test]
fn check_and_validate_reject_what_decode_rejects_with_the_same_error() {
    let limits = Limits {
        max_depth: 3,
        max_values: 12,
        max_int_digits: 5,
    };
    let cases = [
        "",
        "[1]",
        "\"x\"",
        "{",
        "{\"a\"",
        "{\"a\": }",
        "{\"a\": 1,}",
        "{1: 2}",
        "{\"a\": [1, 2,]}",
        "{\"a\": 123456}",
        "{\"a\": [[[1]]]}",
        "{\"a\": \"\\x\"}",
        "{\"a\": \"\\u12\"}",
        "{\"a\": \"\u{1}\"}",
        "{\"a\": tru}",
        "{\"a\": 1} x",
        "{\"a\": -}",
        "{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4, \"e\": [1, 2, 3]}",
        "{\"a\": {\"b\": 1}, \"a\": 2}",
        "\u{feff}{}",
        "{\"a\": 1.}",
        "{\"name\": \n\nt",
        "{\"name\":  tru",
        "{\"msg\": ]",
    ];
    for body in cases {
        let want = decode_record(body.as_bytes(), &limits).map(|_| ());
        let got = check_record(body.as_bytes(), &limits).map(|_| ());
        assert_eq!(got, want, "{body:?}");
        assert_eq!(validate_record(body.as_bytes(), &limits), want, "{body:?}");
        let named = validate_named(body.as_bytes(), &limits).map(|_| ());
        assert_eq!(named, want, "validate_named {body:?}");
    }
    let bad_utf8 = b"{\"a\": \"\xff\"}";
    assert_eq!(
        check_record(bad_utf8, &limits).map(|_| ()),
        decode_record(bad_utf8, &limits).map(|_| ())
    );
}

/// Checking and validating look at UTF-8 only when a string holds a non-ASCII
/// byte or the body is rejected, yet must fail exactly where and how decoding does.
#[test]
fn check_and_validate_check_utf8_as_decode_does() {
    let limits = Limits::default();
    let cases: &[&[u8]] = &[
        b"{\"a\": \"\xff\"}",
        b"{\"a\": \"\xc3\xa9\"}",
        b"{\"a\": \"\\n\xc3\xa9\"}",
        b"{\"a\": \"\\n\xc3\"}",
        b"{\"a\": \"\xc3\xa9\", \"b\": \"\xed\xa0\x80\"}",
        b"{\"a\": \"long enough for a word \xc3\xa9\\t then \xff and more\"}",
        b"{\"a\": \"\xc3\xa9\"} \xff",
        b"{\"\xe2\x9c\x93\": 1, \"b\": [1, \xff]}",
        b"{\"a\": 1\xff}",
        b"{\"a\": \xc3\xa9}",
        b"{\"a\": \xc3}",
        b"{\"a\": \"\xf0\x9f\x98\x80\"}",
        b"{\"a\": \"\xf0\x9f\x98\"}",
        b"\xef\xbb\xbf{}",
        b"{\"a\": \"x\\\xc3\xa9\"}",
        b"{\"a\": \"\x01\xc3\xa9\"}",
        b"{\"a\": tru\xc3\xa9}",
        b"{\"\xc3\xa9",
        b"{\"name\": \"\xc3\xa9\", \"msg\": \xe2\x9c\x93}",
    ];
    for body in cases {
        let text = String::from_utf8_lossy(body);
        let decoded = decode_record(body, &limits);
        assert_eq!(
            validate_record(body, &limits),
            decoded.as_ref().map(|_| ()).map_err(Clone::clone),
            "{text:?}"
        );
        assert_eq!(
            validate_named(body, &limits).map(|_| ()),
            decoded.as_ref().map(|_| ()).map_err(Clone::clone),
            "validate_named {text:?}"
        );
        let checked = check_record(body, &limits);
        match decoded {
            Ok(_) => assert_eq!(checked.map(|c| c.canonical), Ok(false), "{text:?}"),
            Err(e) => assert_eq!(checked, Err(e), "{text:?}"),
        }
    }
}

#[test]
fn string_scan_stops_at_quote_backslash_and_control_in_every_lane() {
    for b in 0..=255u8 {
        for lane in 0..8 {
            let mut word = [b'a'; 8];
            word[lane] = b;
            let want = b == b'"' || b == b'\\' || b < 0x20;
            assert_eq!(
                ends_plain_run(u64::from_le_bytes(word)) != 0,
                want,
                "byte {b:#x} lane {lane}"
            );
        }
    }
}

#[test]
fn swar_check_agrees_with_the_table_for_every_byte_in_every_lane() {
    for b in 0..=255u8 {
        for lane in 0..8 {
            let mut word = [b'a'; 8];
            word[lane] = b;
            assert_eq!(
                needs_escape(u64::from_le_bytes(word)) != 0,
                ESCAPE[b as usize] != 0,
                "byte {b:#x} lane {lane}"
            );
        }
    }
}

/// Scans take the lowest flagged lane as the first stop, so it must be exact
/// whatever the lanes below and above it hold.
#[test]
fn swar_lowest_flagged_lane_is_the_first_stop() {
    let string_stop = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
    let escaped = |b: u8| ESCAPE[b as usize] != 0;
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            for (lo, hi) in [(0, 1), (2, 3), (3, 7), (6, 7)] {
                let mut bytes = [b'a'; 8];
                bytes[lo] = a;
                bytes[hi] = b;
                let x = u64::from_le_bytes(bytes);
                let first = |stop: &dyn Fn(u8) -> bool| {
                    bytes.iter().position(|&c| stop(c)).unwrap_or(8) as u32
                };
                assert_eq!(ends_plain_run(x).trailing_zeros() / 8, first(&string_stop));
                assert_eq!(
                    ends_ascii_run(x).trailing_zeros() / 8,
                    first(&|c| string_stop(c) || !c.is_ascii())
                );
                assert_eq!(needs_escape(x).trailing_zeros() / 8, first(&escaped));
            }
        }
    }
}

#[test]
fn scans_stop_at_the_same_byte_near_the_end_of_any_input() {
    for len in 0..20 {
        for stop_at in 0..=len {
            for stop in [b'"', b'\\', 0x1f, 0x7f, 0xc3] {
                let mut s = vec![b'x'; len];
                if stop_at < len {
                    s[stop_at] = stop;
                }
                for from in 0..=len {
                    let first = |stops: &dyn Fn(u8) -> bool| {
                        (from..len).find(|&i| stops(s[i])).unwrap_or(len)
                    };
                    assert_eq!(
                        scan(&s, from, ends_plain_run),
                        first(&|b| b == b'"' || b == b'\\' || b < 0x20)
                    );
                    assert_eq!(
                        scan(&s, from, needs_escape),
                        first(&|b| ESCAPE[b as usize] != 0)
                    );
                    assert_eq!(
                        scan(&s, from, ends_ascii_run),
                        first(&|b| b == b'"' || b == b'\\' || b < 0x20 || !b.is_ascii())
                    );
                }
            }
        }
    }
}

#[test]
fn digit_scan_lowest_flagged_lane_is_the_first_non_digit() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            for (lo, hi) in [(0, 1), (2, 3), (3, 7), (6, 7)] {
                let mut bytes = [b'5'; 8];
                bytes[lo] = a;
                bytes[hi] = b;
                let first = bytes.iter().position(|c| !c.is_ascii_digit());
                assert_eq!(
                    non_digits(u64::from_le_bytes(bytes)).trailing_zeros() / 8,
                    first.unwrap_or(8) as u32,
                    "{bytes:?}"
                );
            }
        }
    }
}

#[test]
fn numbers_round_trip() {
    for s in [
        "0",
        "-1",
        "9223372036854775807",
        "-9223372036854775809",
        "123456789012345678901234567890",
        "1.5",
        "1e+16",
        "NaN",
        "-Infinity",
        "Infinity",
    ] {
        let v = dec(s).unwrap();
        assert_eq!(enc(&v), s, "{s}");
    }
    assert_eq!(dec("1E5").unwrap(), Value::Float(100000.0));
    assert_eq!(dec("1e999").unwrap(), Value::Float(f64::INFINITY));
}

#[test]
fn strings_with_surrogates() {
    assert_eq!(dec(r#""\ud83d\ude00""#).unwrap(), Value::from("😀"));
    assert_eq!(dec(r#""\ud83d""#).unwrap(), Value::from("\u{fffd}"));
    assert_eq!(dec("\"😀\"").unwrap(), Value::from("😀"));
}

#[test]
fn errors_say_where() {
    let e = dec("[1, 2").unwrap_err();
    assert_eq!((e.offset, &e.kind), (5, &ErrorKind::Eof));
    let e = dec("{\"a\" 1}").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid JSON body at byte 5: found '1', expected ':'"
    );
    assert!(matches!(
        dec("\"a\u{1}\"").unwrap_err().kind,
        ErrorKind::Unexpected { .. }
    ));
    assert!(matches!(
        dec("\"\\x\"").unwrap_err().kind,
        ErrorKind::BadEscape(_)
    ));
    assert!(matches!(
        dec("1 2").unwrap_err().kind,
        ErrorKind::TrailingData
    ));
    assert!(matches!(dec("-").unwrap_err().kind, ErrorKind::Eof));
    assert!(matches!(
        dec("01").unwrap_err().kind,
        ErrorKind::TrailingData
    ));
    let deep = "[".repeat(100_000);
    assert!(matches!(
        dec(&deep).unwrap_err().kind,
        ErrorKind::TooDeep(128)
    ));
    let long = "1".repeat(5000);
    assert!(matches!(
        dec(&long).unwrap_err().kind,
        ErrorKind::IntTooLong(5000)
    ));
    let e = decode_value(b"\"\xff\"", &Limits::default()).unwrap_err();
    assert_eq!((e.offset, e.kind), (1, ErrorKind::InvalidUtf8));
}

#[test]
fn duplicate_keys_keep_first_place_last_value() {
    let v = dec(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
    assert_eq!(enc(&v), r#"{"a": 3, "b": 2}"#);
    let many: Vec<String> = (0..100).map(|i| format!("\"k{}\": {i}", i % 50)).collect();
    let v = dec(&format!("{{{}}}", many.join(", "))).unwrap();
    assert!(matches!(&v, Value::Dict(items) if items.len() == 50 && items[0].1 == Value::Int(50)));
}

#[test]
fn plain_name_is_the_decoded_name_when_it_has_no_escape() {
    let limits = Limits::default();
    // (body, the name check_record finds without decoding)
    let cases: &[(&[u8], Option<&str>)] = &[
        (
            br#"{"name": "shop.orders", "msg": "x"}"#,
            Some("shop.orders"),
        ),
        (br#"{"name":"spaced"}"#, Some("spaced")),
        (br#"{ "name" :  "blanks" , "msg": 1}"#, Some("blanks")),
        (br#"{"msg": "x", "name": "late"}"#, Some("late")),
        (br#"{"name": "first", "name": "last"}"#, Some("last")),
        (br#"{"name": "a\u002eb"}"#, None),
        (br#"{"name": "plain", "name": "esc\n"}"#, None),
        (br#"{"name": 7}"#, None),
        (br#"{"name": null}"#, None),
        (br#"{"name": ["x"]}"#, None),
        (br#"{"msg": {"name": "nested"}}"#, None),
        (br#"{"extra": "name", "msg": "name"}"#, None),
        (br#"{}"#, None),
        (
            "{\"name\": \"caf\u{e9}.\u{2713}\"}".as_bytes(),
            Some("caf\u{e9}.\u{2713}"),
        ),
        (br#"{"name": ""}"#, Some("")),
        // A key with an escape may spell `name`: the last one counts, so neither
        // name can be told without decoding.
        (br#"{"name": "a", "na\u006de": "b"}"#, None),
        (br#"{"na\u006de": "b", "name": "a"}"#, None),
        (br#"{"name": "a", "m\u0073g": "b"}"#, None),
        (
            br#"{"msg": "x", "levelname": "INFO", "name": "after.hint"}"#,
            Some("after.hint"),
        ),
    ];
    for (body, want) in cases {
        let text = String::from_utf8_lossy(body);
        let checked = check_record(body, &limits).expect("a valid body");
        assert_eq!(checked.plain_name(body), *want, "{text:?}");
        let named = validate_named(body, &limits).expect("a valid body");
        assert_eq!(named.plain_name(body), *want, "validate_named {text:?}");
        if let Some(name) = want {
            let record = decode_record(body, &limits).expect("a valid body");
            assert_eq!(record.name(), Some(*name), "{text:?}");
        }
    }
    // Through the encoder, as collectors mostly see them.
    let mut record = crate::Record::new();
    record.insert("name", "shop.orders.eu");
    record.insert("msg", "paid");
    let mut body = Vec::new();
    encode_record(&record, &mut body);
    let checked = check_record(&body, &limits).expect("an encoded record");
    assert!(checked.canonical);
    assert_eq!(checked.plain_name(&body), Some("shop.orders.eu"));
}
