//! Record output formats: JSON lines for machines, one readable line for people.
//!
//! The readable format escapes every control character a sender put in a field, so a
//! hostile record cannot move the cursor or recolor a terminal that tails the stream.

use distlog::serialize::json::encode_record;
use distlog::topic::Topic;
use distlog::Record;
use std::fmt;
use std::io::Write;

/// Appends the JSON line for a record: `{"topic": "TLJ", "record": {...}}` and `\n`.
///
/// The record object is exactly what Python's `json.dumps` would write for it, so a
/// record keeps its key order, big integers and `NaN` from sender to file.
///
/// ```
/// use distlogd::format::write_jsonl;
/// use distlog::Record;
/// let r = Record::from_pairs([("name", "app".into()), ("levelno", 20.into())]);
/// let mut out = Vec::new();
/// write_jsonl(&mut out, "TLJ".parse().unwrap(), &r);
/// assert_eq!(out, b"{\"topic\": \"TLJ\", \"record\": {\"name\": \"app\", \"levelno\": 20}}\n");
/// ```
pub fn write_jsonl(out: &mut Vec<u8>, topic: Topic, record: &Record) {
    jsonl_with(out, topic, |out| encode_record(record, out));
}

/// Appends the JSON line for a JSON body that [`check_record`] found canonical,
/// copying the body: the same line [`write_jsonl`] writes for the decoded record.
///
/// ```
/// use distlogd::format::{write_jsonl, write_jsonl_body};
/// use distlog::serialize::{json, Limits};
/// let body = br#"{"name": "app", "levelno": 20}"#;
/// assert!(json::check_record(body, &Limits::default()).unwrap().canonical);
/// let mut copied = Vec::new();
/// write_jsonl_body(&mut copied, "TLJ".parse().unwrap(), body);
/// let mut encoded = Vec::new();
/// let record = json::decode_record(body, &Limits::default()).unwrap();
/// write_jsonl(&mut encoded, "TLJ".parse().unwrap(), &record);
/// assert_eq!(copied, encoded);
/// ```
///
/// [`check_record`]: distlog::serialize::json::check_record
pub fn write_jsonl_body(out: &mut Vec<u8>, topic: Topic, body: &[u8]) {
    jsonl_with(out, topic, |out| out.extend_from_slice(body));
}

fn jsonl_with(out: &mut Vec<u8>, topic: Topic, record: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"topic\": \"");
    out.extend_from_slice(topic.as_bytes());
    out.extend_from_slice(b"\", \"record\": ");
    record(out);
    out.extend_from_slice(b"}\n");
}

/// Whether the readable format uses ANSI colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// Color when the output is a terminal.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

impl Color {
    /// Whether to color output written to file descriptor `fd` (1 for stdout).
    pub fn enabled_for_fd(self, fd: i32) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            // SAFETY: isatty only inspects the descriptor number.
            Color::Auto => unsafe { libc::isatty(fd) == 1 },
        }
    }
}

impl std::str::FromStr for Color {
    type Err = ColorError;
    fn from_str(s: &str) -> Result<Self, ColorError> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Color::Auto),
            "always" | "yes" | "true" => Ok(Color::Always),
            "never" | "no" | "false" => Ok(Color::Never),
            _ => Err(ColorError(s.to_string())),
        }
    }
}

/// A color choice that is not `auto`, `always` or `never`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColorError(pub String);

impl fmt::Display for ColorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown color choice {:?}: expected auto, always or never",
            self.0
        )
    }
}

impl std::error::Error for ColorError {}

const RESET: &str = "\x1b[0m";
const DIM: &str = "\x1b[2m";
const BLUE: &str = "\x1b[34m";
const MAGENTA: &str = "\x1b[35m";
const RED: &str = "\x1b[31m";

/// The ANSI color for a level number, by the level it falls in.
pub(crate) fn level_color(levelno: i64) -> &'static str {
    match distlog::level::name(levelno) {
        "TRACE" => "\x1b[2;36m",
        "DEBUG" => "\x1b[36m",
        "INFO" => "\x1b[32m",
        "WARNING" => "\x1b[33m",
        "ERROR" => "\x1b[31m",
        _ => "\x1b[1;31m",
    }
}

/// Appends `s` with every control character escaped (`\x1b`, `\t`, `\u{85}` ...).
pub(crate) fn write_clean(out: &mut Vec<u8>, s: &str) {
    if !s.chars().any(char::is_control) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

fn paint(out: &mut Vec<u8>, color: bool, code: &str, text: &str) {
    if color {
        out.extend_from_slice(code.as_bytes());
    }
    write_clean(out, text);
    if color {
        out.extend_from_slice(RESET.as_bytes());
    }
}

/// The time of a record as `YYYY-MM-DD HH:MM:SS,mmm`: its `asctime`, else its `created`.
pub(crate) fn time_of(record: &Record) -> String {
    if let Some(t) = record.asctime() {
        return t.to_string();
    }
    match record.created() {
        Some(c) if c.is_finite() && c >= 0.0 => {
            distlog::record::asctime(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(c))
        }
        _ => "-".to_string(),
    }
}

/// Appends a record as one readable line (and its exception, indented, below):
/// time, host, level, logger, message, task key.
///
/// ```
/// use distlogd::format::write_pretty;
/// use distlog::{Record, Value};
/// let mut r = Record::new();
/// r.insert("name", "shop.orders");
/// r.insert("levelno", 30);
/// r.insert("levelname", "WARNING");
/// r.insert("message", "low stock \x1b[2J");
/// r.insert("asctime", "2024-05-01 12:00:00,250");
/// r.insert("hostname", "web1");
/// r.insert("context", Value::Dict(vec![("key".into(), "2@abc/1".into())]));
/// let mut out = Vec::new();
/// write_pretty(&mut out, "PLJ".parse().unwrap(), &r, false);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "2024-05-01 12:00:00,250 web1 WARNING  shop.orders: low stock \\u{1b}[2J [2@abc/1]\n"
/// );
/// ```
pub fn write_pretty(out: &mut Vec<u8>, topic: Topic, record: &Record, color: bool) {
    let _ = topic;
    paint(out, color, DIM, &time_of(record));
    out.push(b' ');
    write_clean(out, record.hostname().unwrap_or("-"));
    out.push(b' ');
    let levelno = record.levelno();
    let levelname = record
        .levelname()
        .unwrap_or_else(|| levelno.map_or("-", distlog::level::name));
    let code = level_color(levelno.unwrap_or(0));
    let start = out.len();
    paint(out, color, code, levelname);
    let shown = out.len() - start - if color { code.len() + RESET.len() } else { 0 };
    for _ in shown..8 {
        out.push(b' ');
    }
    out.push(b' ');
    paint(out, color, BLUE, record.name().unwrap_or("-"));
    out.extend_from_slice(b": ");
    write_clean(out, record.message().unwrap_or(""));
    // `extra=` fields and `log` key-values, as Python would show them.
    for (k, v) in record.extras() {
        out.push(b' ');
        paint(out, color, DIM, &format!("{k}={v}"));
    }
    if let Some(key) = record.context_key() {
        out.extend_from_slice(b" [");
        paint(out, color, MAGENTA, key);
        out.push(b']');
    }
    out.push(b'\n');
    if let Some(exc) = record.exc_text() {
        write_exception(out, exc, color);
    }
}

/// Appends an `exc_text` (newlines escaped as `\n` on the wire) as indented lines.
pub(crate) fn write_exception(out: &mut Vec<u8>, exc: &str, color: bool) {
    for line in exc.split("\\n") {
        if line.is_empty() {
            continue;
        }
        out.extend_from_slice(b"    ");
        paint(out, color, RED, line);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_without_optional_fields() {
        let r = Record::from_pairs([("levelno", 45.into())]);
        let mut out = Vec::new();
        write_pretty(&mut out, Topic::default(), &r, false);
        assert_eq!(String::from_utf8(out).unwrap(), "- - ERROR    -: \n");
    }

    #[test]
    fn pretty_exception_and_color() {
        let r = Record::from_pairs([
            ("levelname", "ERROR".into()),
            ("levelno", 40.into()),
            ("exc_text", "Traceback:\\n  boom".into()),
        ]);
        let mut out = Vec::new();
        write_pretty(&mut out, Topic::default(), &r, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\x1b[31mERROR\x1b[0m    "), "{s:?}");
        assert!(s.ends_with("    \x1b[31mTraceback:\x1b[0m\n    \x1b[31m  boom\x1b[0m\n"));
    }

    #[test]
    fn created_when_no_asctime() {
        let r = Record::from_pairs([("created", 0.5.into())]);
        assert_eq!(time_of(&r).len(), 23);
    }
}
