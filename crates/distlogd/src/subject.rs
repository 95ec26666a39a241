//! The NATS subjects the `nats` sink publishes records on, and the reversible escape
//! that makes any logger name fit in them.
//!
//! A record's subject is `<prefix>.<system>.<kind>.<logger>`: the topic's first two
//! letters, then one subject token per dot-separated part of the logger's name, so
//! `shop.orders` on a production log record is `distlog.P.L.shop.orders` and
//! `distlog.P.L.shop.>` selects the `shop` subtree.
//!
//! A token holds any printable ASCII but `.`, `*`, `>`; anything else is escaped:
//!
//! - each byte of the UTF-8 of a character a token cannot hold, or that could be read
//!   as an escape, becomes `%XX` (two upper-case hex digits): space, control
//!   characters and DEL, `*`, `>`, `%` itself, and every non-ASCII character (so that
//!   subjects stay ASCII whatever tool reads them);
//! - an empty part (from `a..b`, a leading or trailing dot, or an empty name) becomes
//!   the token `%`, which no escaped part can be, since an escaped `%` always has two
//!   hex digits after it.
//!
//! A record without a string `name` goes under the empty logger: `distlog.P.L.%`.
//!
//! ```
//! use distlogd::subject::{escape_token, logger_from_subject, record_subject, unescape_token};
//! use distlog::topic::Topic;
//! let topic = Topic::parse(b"PLJ").unwrap();
//! assert_eq!(record_subject("distlog", topic, "shop.orders"), "distlog.P.L.shop.orders");
//! assert_eq!(record_subject("distlog", topic, "a..b c*"), "distlog.P.L.a.%.b%20c%2A");
//! assert_eq!(escape_token("100%"), "100%25");
//! assert_eq!(unescape_token("caf%C3%A9").as_deref(), Some("café"));
//! assert_eq!(
//!     logger_from_subject("distlog", "distlog.P.L.a.%.b%20c%2A").as_deref(),
//!     Some("a..b c*")
//! );
//! ```

use distlog::topic::Topic;
use std::fmt::Write as _;

/// Whether a byte may stand for itself in a token.
fn plain(b: u8) -> bool {
    // Printable ASCII minus the subject separator, the wildcards and the escape.
    (0x21..=0x7e).contains(&b) && !matches!(b, b'.' | b'*' | b'>' | b'%')
}

/// One part of a logger's name (no dots in it) as a subject token; see the
/// [module docs](self).
///
/// ```
/// assert_eq!(distlogd::subject::escape_token(""), "%");
/// assert_eq!(distlogd::subject::escape_token("a>b"), "a%3Eb");
/// ```
pub fn escape_token(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    push_token(&mut out, part);
    out
}

fn push_token(out: &mut String, part: &str) {
    if part.is_empty() {
        out.push('%');
        return;
    }
    for &b in part.as_bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The part of a logger's name a token stands for, or `None` when the token is not
/// one [`escape_token`] makes (a bad escape, a character it would have escaped, or
/// bytes that are not UTF-8).
///
/// ```
/// use distlogd::subject::unescape_token;
/// assert_eq!(unescape_token("%").as_deref(), Some(""));
/// assert_eq!(unescape_token("%2"), None);
/// assert_eq!(unescape_token("%FF"), None);
/// ```
pub fn unescape_token(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            // Upper case only, so that each name has one subject.
            if hex.bytes().any(|h| h.is_ascii_lowercase()) {
                return None;
            }
            let v = u8::from_str_radix(hex, 16).ok()?;
            if plain(v) {
                return None;
            }
            out.push(v);
            i += 3;
        } else if plain(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The subject a record of `topic` from logger `logger` is published on, under
/// `prefix` (which must be a valid subject itself; [`valid_prefix`] checks).
///
/// ```
/// use distlog::topic::Topic;
/// let topic = Topic::parse(b"TPP").unwrap();
/// assert_eq!(distlogd::subject::record_subject("logs.eu", topic, ""), "logs.eu.T.P.%");
/// ```
pub fn record_subject(prefix: &str, topic: Topic, logger: &str) -> String {
    let letters = topic.to_bytes();
    let mut out = String::with_capacity(prefix.len() + 5 + logger.len() + 8);
    out.push_str(prefix);
    out.push('.');
    out.push(letters[0] as char);
    out.push('.');
    out.push(letters[1] as char);
    for part in logger.split('.') {
        out.push('.');
        push_token(&mut out, part);
    }
    out
}

/// The logger name a subject under `prefix` was made from, or `None` when the
/// subject is not one [`record_subject`] makes under that prefix.
///
/// ```
/// use distlogd::subject::logger_from_subject;
/// assert_eq!(logger_from_subject("distlog", "distlog.S.L.%.a").as_deref(), Some(".a"));
/// assert_eq!(logger_from_subject("distlog", "other.S.L.a"), None);
/// ```
pub fn logger_from_subject(prefix: &str, subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
    let mut tokens = rest.split('.');
    let system = tokens.next()?;
    let kind = tokens.next()?;
    if !matches!(system, "T" | "S" | "P") || !matches!(kind, "L" | "P") {
        return None;
    }
    let mut name = String::new();
    let mut first = true;
    for token in tokens {
        if !first {
            name.push('.');
        }
        first = false;
        name.push_str(&unescape_token(token)?);
    }
    // At least one logger token: the empty name has its own.
    (!first).then_some(name)
}

/// Whether `prefix` can start subjects: dot-separated tokens of printable ASCII,
/// none empty, none a wildcard.
///
/// ```
/// use distlogd::subject::valid_prefix;
/// assert!(valid_prefix("distlog") && valid_prefix("logs.eu-1"));
/// assert!(!valid_prefix("") && !valid_prefix("a..b") && !valid_prefix("logs.>") && !valid_prefix("a b"));
/// ```
pub fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && t.bytes().all(|b| (0x21..=0x7e).contains(&b))
        })
}

/// Whether `name` can name a JetStream stream: printable ASCII without `.`, `*`,
/// `>`, path separators or whitespace (the server's rule), at most 255 bytes.
///
/// ```
/// assert!(distlogd::subject::valid_stream_name("DISTLOG"));
/// assert!(!distlogd::subject::valid_stream_name("a.b"));
/// ```
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !matches!(b, b'.' | b'*' | b'>' | b'/' | b'\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(name: &str) {
        let topic = Topic::parse(b"PLJ").expect("topic");
        let subject = record_subject("distlog", topic, name);
        assert!(subject.is_ascii(), "{subject:?}");
        assert!(
            !subject.bytes().any(|b| b <= b' ' || b == 0x7f),
            "{subject:?}"
        );
        for token in subject.split('.') {
            assert!(!token.is_empty(), "empty token in {subject:?}");
            assert!(token != "*" && token != ">", "wildcard in {subject:?}");
            assert!(!token.contains(['*', '>']), "{subject:?}");
        }
        assert_eq!(
            logger_from_subject("distlog", &subject).as_deref(),
            Some(name),
            "{subject:?}"
        );
    }

    #[test]
    fn hostile_names_round_trip() {
        for name in [
            "",
            ".",
            "..",
            "a..b",
            ".lead",
            "trail.",
            "shop.orders",
            "with space",
            "tab\there",
            "nl\nand\r\0nul",
            "*",
            ">",
            "a.*.>",
            "%",
            "%25",
            "%%",
            "100%.done",
            "café.naïve",
            "日本.語",
            "emoji 🙂",
            "\u{7f}del",
            "$SYS.x",
            "a/b\\c",
        ] {
            round_trip(name);
        }
        // Every single byte value that is a char on its own, in a name.
        for c in (0u32..0x800).filter_map(char::from_u32) {
            round_trip(&format!("x{c}y.{c}"));
        }
    }

    #[test]
    fn subjects_look_as_documented() {
        let topic = Topic::parse(b"PLJ").expect("topic");
        assert_eq!(
            record_subject("distlog", topic, "shop.orders"),
            "distlog.P.L.shop.orders"
        );
        assert_eq!(
            record_subject("distlog", topic, "a..b"),
            "distlog.P.L.a.%.b"
        );
        assert_eq!(record_subject("distlog", topic, ".x."), "distlog.P.L.%.x.%");
        assert_eq!(record_subject("p", topic, "é"), "p.P.L.%C3%A9");
        assert_eq!(record_subject("p", topic, "%"), "p.P.L.%25");
    }

    #[test]
    fn tokens_that_no_name_makes_are_refused() {
        for bad in [
            "", "%2", "%zz", "%41", "%2a", "a b", "a*", ">", "%C3", "%FF", "a.b",
        ] {
            assert_eq!(unescape_token(bad), None, "{bad:?}");
        }
        assert_eq!(logger_from_subject("distlog", "distlog.P.L"), None);
        assert_eq!(logger_from_subject("distlog", "distlog.X.L.a"), None);
        assert_eq!(logger_from_subject("distlog", "distlogx.P.L.a"), None);
        assert_eq!(logger_from_subject("distlog", "distlog.P.L.a..b"), None);
    }
}
