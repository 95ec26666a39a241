//! Record output formats: JSON lines for machines, one readable line for people.
//!
//! The readable format escapes every control character a sender put in a field, so a
//! hostile record cannot move the cursor or recolor a terminal that tails the stream.

use crate::ack::Origin;
use anstyle::{AnsiColor, Style};
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
    jsonl_with(out, topic, None, |out| encode_record(record, out));
}

/// Appends the JSON line for a record that came with an acknowledged-delivery header:
/// `{"topic": "PLJ", "producer": "<32 hex digits>", "seq": 17, "record": {...}}` and
/// `\n`, so that a reader can drop a copy another collector also wrote.
///
/// ```
/// use distlogd::ack::Origin;
/// use distlogd::format::write_jsonl_acked;
/// use distlog::Record;
/// let r = Record::from_pairs([("name", "app".into())]);
/// let mut out = Vec::new();
/// write_jsonl_acked(&mut out, "PLJ".parse().unwrap(), &Origin::new([0xab; 16], 17), &r);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     format!("{{\"topic\": \"PLJ\", \"producer\": \"{}\", \"seq\": 17, \"record\": {{\"name\": \"app\"}}}}\n", "ab".repeat(16))
/// );
/// ```
pub fn write_jsonl_acked(out: &mut Vec<u8>, topic: Topic, origin: &Origin, record: &Record) {
    jsonl_with(out, topic, Some(origin), |out| encode_record(record, out));
}

/// Appends the JSON line for a JSON body that
/// [`check_record`](distlog::serialize::json::check_record) found canonical, copying
/// the body: the same line [`write_jsonl`] (or [`write_jsonl_acked`], with an origin)
/// writes for the decoded record.
pub(crate) fn write_jsonl_body(
    out: &mut Vec<u8>,
    topic: Topic,
    origin: Option<&Origin>,
    body: &[u8],
) {
    jsonl_with(out, topic, origin, |out| out.extend_from_slice(body));
}

/// [`write_jsonl`] or [`write_jsonl_acked`], as the origin says.
pub(crate) fn write_jsonl_from(
    out: &mut Vec<u8>,
    topic: Topic,
    origin: Option<&Origin>,
    record: &Record,
) {
    jsonl_with(out, topic, origin, |out| encode_record(record, out));
}

fn jsonl_with(
    out: &mut Vec<u8>,
    topic: Topic,
    origin: Option<&Origin>,
    record: impl FnOnce(&mut Vec<u8>),
) {
    out.extend_from_slice(b"{\"topic\": \"");
    out.extend_from_slice(topic.as_bytes());
    if let Some(origin) = origin {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(b"\", \"producer\": \"");
        for b in origin.producer {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        }
        out.extend_from_slice(b"\", \"seq\": ");
        out.extend_from_slice(origin.seq.to_string().as_bytes());
        out.extend_from_slice(b", \"record\": ");
    } else {
        out.extend_from_slice(b"\", \"record\": ");
    }
    record(out);
    out.extend_from_slice(b"}\n");
}

/// Whether the readable format uses ANSI colors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// Color when stdout is a terminal, as `anstream` decides: `NO_COLOR` turns it
    /// off, `CLICOLOR_FORCE` on (even on a pipe), `CLICOLOR=0` off, and `TERM=dumb`
    /// is not a color terminal.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

impl Color {
    /// Whether to color what goes to stdout.
    ///
    /// ```
    /// use distlogd::format::Color;
    /// assert!(Color::Always.for_stdout());
    /// assert!(!Color::Never.for_stdout());
    /// ```
    pub fn for_stdout(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                anstream::AutoStream::choice(&std::io::stdout()) != anstream::ColorChoice::Never
            }
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

const fn fg(color: AnsiColor) -> Style {
    Style::new().fg_color(Some(anstyle::Color::Ansi(color)))
}

const DIM: Style = Style::new().dimmed();
const BLUE: Style = fg(AnsiColor::Blue);
const MAGENTA: Style = fg(AnsiColor::Magenta);
pub(crate) const RED: Style = fg(AnsiColor::Red);
pub(crate) const BOLD_RED: Style = fg(AnsiColor::Red).bold();
pub(crate) const GREEN: Style = fg(AnsiColor::Green);

/// The color for a level number, by the level it falls in.
fn level_style(levelno: i64) -> Style {
    match distlog::level::name(levelno) {
        "TRACE" => fg(AnsiColor::Cyan).dimmed(),
        "DEBUG" => fg(AnsiColor::Cyan),
        "INFO" => GREEN,
        "WARNING" => fg(AnsiColor::Yellow),
        "ERROR" => RED,
        _ => BOLD_RED,
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

/// Appends `text`, cleaned, in `style` when `color`; returns the bytes of text written
/// (without the escape codes), for padding.
pub(crate) fn paint(out: &mut Vec<u8>, color: bool, style: Style, text: &str) -> usize {
    if color {
        let _ = write!(out, "{}", style.render());
    }
    let start = out.len();
    write_clean(out, text);
    let shown = out.len() - start;
    if color {
        let _ = write!(out, "{}", style.render_reset());
    }
    shown
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
/// write_pretty(&mut out, &r, false);
/// assert_eq!(
///     String::from_utf8(out).unwrap(),
///     "2024-05-01 12:00:00,250 web1 WARNING  shop.orders: low stock \\u{1b}[2J [2@abc/1]\n"
/// );
/// ```
pub fn write_pretty(out: &mut Vec<u8>, record: &Record, color: bool) {
    paint(out, color, DIM, &time_of(record));
    out.push(b' ');
    write_clean(out, record.hostname().unwrap_or("-"));
    out.push(b' ');
    let levelno = record.levelno();
    let levelname = record
        .levelname()
        .unwrap_or_else(|| levelno.map_or("-", distlog::level::name));
    let shown = paint(out, color, level_style(levelno.unwrap_or(0)), levelname);
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
        write_pretty(&mut out, &r, false);
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
        write_pretty(&mut out, &r, true);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("\x1b[31mERROR\x1b[0m    "), "{s:?}");
        assert!(s.ends_with("    \x1b[31mTraceback:\x1b[0m\n    \x1b[31m  boom\x1b[0m\n"));
    }

    #[test]
    fn a_canonical_body_copied_is_the_record_encoded() {
        use distlog::serialize::{json, Limits};
        let body = br#"{"name": "app", "levelno": 20}"#;
        assert!(
            json::check_record(body, &Limits::default())
                .unwrap()
                .canonical
        );
        let mut copied = Vec::new();
        write_jsonl_body(&mut copied, "TLJ".parse().unwrap(), None, body);
        let mut encoded = Vec::new();
        let record = json::decode_record(body, &Limits::default()).unwrap();
        write_jsonl(&mut encoded, "TLJ".parse().unwrap(), &record);
        assert_eq!(copied, encoded);
        // With an origin, the same with producer and seq before the record.
        let origin = Origin::new([0x0f; 16], 3);
        let mut copied = Vec::new();
        write_jsonl_body(&mut copied, "TLJ".parse().unwrap(), Some(&origin), body);
        let mut encoded = Vec::new();
        write_jsonl_acked(&mut encoded, "TLJ".parse().unwrap(), &origin, &record);
        assert_eq!(copied, encoded);
        let line = String::from_utf8(copied).unwrap();
        assert!(
            line.starts_with(&format!(
                "{{\"topic\": \"TLJ\", \"producer\": \"{}\", \"seq\": 3, \"record\": {{",
                "0f".repeat(16)
            )),
            "{line}"
        );
    }

    #[test]
    fn created_when_no_asctime() {
        let r = Record::from_pairs([("created", 0.5.into())]);
        assert_eq!(time_of(&r).len(), 23);
    }
}
