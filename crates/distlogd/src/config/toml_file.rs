//! The TOML form of a [`Config`]: serde structs that refuse unknown keys, and toml's
//! errors turned into [`ConfigError`]s that name the key and its line and column.

use super::{
    Config, ConfigError, CurveConfig, LineColumn, NatsConfig, OutputFormat, SinkConfig, SinkKind,
};
use crate::filter::RecordFilter;
use crate::format::Color;
use distlog::topic::{Kind, System};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::Deserialize;
use serde_path_to_error::Segment;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use toml::Spanned;

/// Rotated files kept when a file sink does not say.
const DEFAULT_KEEP: usize = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    max_body_bytes: Option<Count>,
    max_depth: Option<Count>,
    stats_interval: Option<Seconds>,
    channel_batches: Option<Count>,
    receive_threads: Option<Count>,
    drain_quiet: Option<Seconds>,
    drain_max: Option<Seconds>,
    metrics_bind: Option<String>,
    #[serde(default)]
    input: Tables<Input>,
    #[serde(default)]
    ack_input: Tables<Input>,
    #[serde(default)]
    sink: Tables<Sink>,
    curve: Option<Curve>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Curve {
    // Optional here so that its absence reads "curve needs a "secret" key".
    secret: Option<PathBuf>,
    allow: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    // Optional here so that its absence reads "input 1 needs a "bind" key".
    bind: Option<String>,
}

/// Every key any sink may have; which ones a sink's `type` allows is checked after,
/// with the spans toml keeps for them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sink {
    #[serde(rename = "type")]
    sink_type: Option<Parsed<SinkType>>,
    format: Option<Spanned<Parsed<OutputFormat>>>,
    color: Option<Spanned<Parsed<Color>>>,
    path: Option<Spanned<PathBuf>>,
    rotate_bytes: Option<Spanned<Positive>>,
    keep: Option<Spanned<Count>>,
    endpoint: Option<Spanned<String>>,
    urls: Option<Spanned<List<String>>>,
    stream: Option<Spanned<String>>,
    subject_prefix: Option<Spanned<String>>,
    replicas: Option<Spanned<Count>>,
    level: Option<Level>,
    #[serde(default)]
    system: List<Parsed<SystemName>>,
    #[serde(default, rename = "kind")]
    kinds: List<Parsed<KindName>>,
    #[serde(default)]
    logger: List<String>,
    #[serde(default)]
    task: List<String>,
}

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_with_binds(text, &[], &[])
}

/// [`parse`], with endpoints from the command line: `flag_binds` replace the
/// `[[input]]` tables and `flag_ack_binds` the `[[ack_input]]` ones, when not empty.
pub(super) fn parse_with_binds(
    text: &str,
    flag_binds: &[String],
    flag_ack_binds: &[String],
) -> Result<Config, ConfigError> {
    let file: File = serde_path_to_error::deserialize(toml::Deserializer::new(text))
        .map_err(|e| toml_error(text, e))?;
    let mut config = Config::default();
    if let Some(Count(n)) = file.max_body_bytes {
        config.max_body_bytes = n;
    }
    if let Some(Count(n)) = file.max_depth {
        config.limits.max_depth = n;
    }
    if let Some(Seconds(secs)) = file.stats_interval {
        config.stats_interval = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
    }
    if let Some(Count(n)) = file.channel_batches {
        config.channel_batches = n;
    }
    if let Some(Count(n)) = file.receive_threads {
        config.receive_threads = n;
    }
    if let Some(Seconds(secs)) = file.drain_quiet {
        config.drain_quiet = Duration::from_secs_f64(secs);
    }
    if let Some(Seconds(secs)) = file.drain_max {
        config.drain_max = Duration::from_secs_f64(secs);
    }
    config.metrics_bind = file.metrics_bind;
    if let Some(curve) = file.curve {
        let Some(secret) = curve.secret else {
            return Err(ConfigError::Missing {
                section: "curve".into(),
                key: "secret",
            });
        };
        let mut c = CurveConfig::new(secret);
        c.allow_file = curve.allow;
        config.curve = Some(c);
    }
    let mut inputs = binds("input", file.input)?;
    let mut ack_inputs = binds("ack_input", file.ack_input)?;
    if !flag_binds.is_empty() {
        inputs = flag_binds.to_vec();
    }
    if !flag_ack_binds.is_empty() {
        ack_inputs = flag_ack_binds.to_vec();
    }
    // Listing only acknowledged inputs, in the file or on the command line, means no
    // plain one: the default PULL endpoint would otherwise be bound behind the
    // user's back. It is there only when no input of either kind is named.
    if !inputs.is_empty() || !ack_inputs.is_empty() {
        config.inputs = inputs;
    }
    config.ack_inputs = ack_inputs;
    for (i, s) in file.sink.0.into_iter().enumerate() {
        config
            .sinks
            .push(sink(&format!("sink {}", i + 1), s, text)?);
    }
    config.validate()?;
    Ok(config)
}

/// The `bind` of each `[[input]]` or `[[ack_input]]` table.
fn binds(list: &str, tables: Tables<Input>) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (i, input) in tables.0.into_iter().enumerate() {
        match input.bind {
            Some(bind) => out.push(bind),
            None => {
                return Err(ConfigError::Missing {
                    section: format!("{list} {}", i + 1),
                    key: "bind",
                })
            }
        }
    }
    Ok(out)
}

fn sink(section: &str, s: Sink, text: &str) -> Result<SinkConfig, ConfigError> {
    let Some(Parsed(sink_type)) = s.sink_type else {
        return Err(ConfigError::Missing {
            section: section.into(),
            key: "type",
        });
    };
    let owned = [
        (
            "format",
            s.format.as_ref().map(Spanned::span),
            SinkType::Stdout,
        ),
        (
            "color",
            s.color.as_ref().map(Spanned::span),
            SinkType::Stdout,
        ),
        ("path", s.path.as_ref().map(Spanned::span), SinkType::File),
        (
            "rotate_bytes",
            s.rotate_bytes.as_ref().map(Spanned::span),
            SinkType::File,
        ),
        ("keep", s.keep.as_ref().map(Spanned::span), SinkType::File),
        (
            "endpoint",
            s.endpoint.as_ref().map(Spanned::span),
            SinkType::Publish,
        ),
        ("urls", s.urls.as_ref().map(Spanned::span), SinkType::Nats),
        (
            "stream",
            s.stream.as_ref().map(Spanned::span),
            SinkType::Nats,
        ),
        (
            "subject_prefix",
            s.subject_prefix.as_ref().map(Spanned::span),
            SinkType::Nats,
        ),
        (
            "replicas",
            s.replicas.as_ref().map(Spanned::span),
            SinkType::Nats,
        ),
    ];
    for (key, at, owner) in owned {
        if let (Some(at), true) = (at, owner != sink_type) {
            return Err(ConfigError::UnknownKey {
                section: section.into(),
                key: key.into(),
                at: Some(LineColumn::of(text, at.start)),
                source: None,
            });
        }
    }
    let missing = |key| ConfigError::Missing {
        section: section.into(),
        key,
    };
    let kind = match sink_type {
        SinkType::Stdout => SinkKind::Stdout {
            format: s.format.map_or(OutputFormat::Pretty, |f| f.into_inner().0),
            color: s.color.map_or(Color::Auto, |c| c.into_inner().0),
        },
        SinkType::File => SinkKind::File {
            path: s.path.ok_or_else(|| missing("path"))?.into_inner(),
            rotate_bytes: s.rotate_bytes.map(|r| r.into_inner().0),
            keep: s.keep.map_or(DEFAULT_KEEP, |k| k.into_inner().0),
        },
        SinkType::Publish => SinkKind::Publish {
            endpoint: s.endpoint.ok_or_else(|| missing("endpoint"))?.into_inner(),
        },
        SinkType::Nats => {
            let urls = s.urls.ok_or_else(|| missing("urls"))?.into_inner().0;
            let mut nats = NatsConfig::new(urls);
            if let Some(stream) = s.stream {
                nats.stream = stream.into_inner();
            }
            if let Some(prefix) = s.subject_prefix {
                nats.subject_prefix = prefix.into_inner();
            }
            if let Some(replicas) = s.replicas {
                nats.replicas = replicas.into_inner().0;
            }
            // The values, with the sink named: "sink 2: bad stream ...".
            nats.validate().map_err(|e| match e {
                ConfigError::BadValue {
                    key,
                    value,
                    expected,
                } => ConfigError::BadValue {
                    key: format!("{section} {key}"),
                    value,
                    expected,
                },
                ConfigError::Missing { key, .. } => missing(key),
                other => other,
            })?;
            SinkKind::Nats(nats)
        }
    };
    let filter = RecordFilter {
        systems: s.system.0.into_iter().map(|p| p.0 .0).collect(),
        kinds: s.kinds.0.into_iter().map(|p| p.0 .0).collect(),
        min_level: s.level.map(|l| l.0),
        loggers: s.logger.0,
        tasks: s.task.0,
    };
    Ok(SinkConfig::new(kind).with_filter(filter))
}

/// Names the key toml (or serde) complained about, from the path serde_path_to_error
/// kept, and where it is.
fn toml_error(text: &str, e: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    enum Step {
        Key(String),
        Index(usize),
    }
    let steps: Vec<Step> = e
        .path()
        .iter()
        .filter_map(|segment| match segment {
            // toml's Spanned reads itself through private keys: not the user's.
            Segment::Map { key } if !key.starts_with("$__") => Some(Step::Key(key.clone())),
            Segment::Seq { index } => Some(Step::Index(*index)),
            _ => None,
        })
        .collect();
    let source = Box::new(e.into_inner());
    let at = source.span().map(|span| LineColumn::of(text, span.start));
    if steps.is_empty() {
        return ConfigError::Toml {
            key: String::new(),
            at,
            source,
        };
    }
    // `sink`/`input` and the table's index make the section; the keys inside follow.
    let (section, rest) = match steps.as_slice() {
        [Step::Key(list), Step::Index(i), rest @ ..] => (format!("{list} {}", i + 1), rest),
        [Step::Key(list), rest @ ..]
            if !rest.is_empty() && matches!(list.as_str(), "sink" | "input" | "ack_input") =>
        {
            (format!("{list} 1"), rest)
        }
        [Step::Key(table), rest @ ..] if !rest.is_empty() && table == "curve" => {
            ("curve".to_string(), rest)
        }
        all => ("the top level".to_string(), all),
    };
    let keys: Vec<&str> = rest
        .iter()
        .filter_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
        .collect();
    // deny_unknown_fields says so in serde's words; the path ends with the key.
    if source.message().starts_with("unknown field `") {
        if let Some(key) = keys.last() {
            return ConfigError::UnknownKey {
                section,
                key: (*key).to_string(),
                at,
                source: Some(source),
            };
        }
    }
    let key = match (section.as_str(), keys.is_empty()) {
        ("the top level", _) => keys.join(" "),
        (_, true) => section,
        (_, false) => format!("{section} {}", keys.join(" ")),
    };
    ConfigError::Toml { key, at, source }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SinkType {
    Stdout,
    File,
    Publish,
    Nats,
}

impl FromStr for SinkType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "stdout" => Ok(SinkType::Stdout),
            "file" => Ok(SinkType::File),
            "publish" => Ok(SinkType::Publish),
            "nats" => Ok(SinkType::Nats),
            _ => Err(format!(
                "bad type {s:?}: expected stdout, file, publish or nats"
            )),
        }
    }
}

/// A [`System`] with the message the config gives for a bad one.
struct SystemName(System);

impl FromStr for SystemName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse()
            .map(SystemName)
            .map_err(|_| format!("bad system {s:?}: expected T, S, P, test, staging or production"))
    }
}

/// A [`Kind`] with the message the config gives for a bad one.
struct KindName(Kind);

impl FromStr for KindName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse()
            .map(KindName)
            .map_err(|_| format!("bad kind {s:?}: expected L, P, log or performance"))
    }
}

/// A string read with `FromStr`, its error message becoming toml's (which then knows
/// where the string is).
struct Parsed<T>(T);

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map(Parsed).map_err(de::Error::custom)
    }
}

/// `[[sink]]` tables, or one `[sink]` table.
struct Tables<T>(Vec<T>);

impl<T> Default for Tables<T> {
    fn default() -> Self {
        Tables(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tables<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Tables<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of tables, or one table")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Tables(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(|t| Tables(vec![t]))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A string, or an array of strings.
struct List<T>(Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::<E>::new(s)).map(|t| List(vec![t]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List(items))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A level: a name Python knows, or a number.
struct Level(i64);

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Level;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a level name or number")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Level, E> {
                Ok(Level(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Level, E> {
                i64::try_from(n)
                    .map(Level)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Level, E> {
                distlog::level::parse(s).map(Level).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number of at least 0.
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of at least 0")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
                usize::try_from(n)
                    .map(Count)
                    .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Count, E> {
                usize::try_from(n)
                    .map(Count)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(n), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number of bytes above 0.
struct Positive(u64);

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Positive;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a positive number of bytes")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Positive, E> {
                match u64::try_from(n) {
                    Ok(n) if n > 0 => Ok(Positive(n)),
                    _ => Err(E::invalid_value(Unexpected::Signed(n), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Positive, E> {
                if n > 0 {
                    Ok(Positive(n))
                } else {
                    Err(E::invalid_value(Unexpected::Unsigned(n), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Seconds, whole or not, from 0 to 1e9.
struct Seconds(f64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds from 0 to 1e9")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Seconds, E> {
                // Shown as written: `-1`, not `-1.0`.
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(n), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Seconds, E> {
                self.visit_f64(n as f64)
            }
            fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Seconds, E> {
                if (0.0..=1e9).contains(&secs) {
                    Ok(Seconds(secs))
                } else {
                    Err(E::invalid_value(Unexpected::Float(secs), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn full_config() {
        let c = parse(
            r#"
            max_body_bytes = 4096
            stats_interval = 2.5
            metrics_bind = "127.0.0.1:9102"
            [[input]]
            bind = "tcp://127.0.0.1:1"
            [[input]]
            bind = "ipc:///tmp/x"
            [[sink]]
            type = "stdout"
            format = "jsonl"
            system = ["T", "production"]
            kind = "L"
            [[sink]]
            type = "file"
            path = "/tmp/a"
            rotate_bytes = 100
            keep = 2
            task = "abc"
            [[sink]]
            type = "publish"
            endpoint = "tcp://127.0.0.1:2"
            logger = ["a", "b"]
            level = 30
        "#,
        )
        .unwrap();
        assert_eq!(c.inputs, ["tcp://127.0.0.1:1", "ipc:///tmp/x"]);
        assert_eq!(c.max_body_bytes, 4096);
        assert_eq!(c.stats_interval, Some(Duration::from_millis(2500)));
        assert_eq!(c.metrics_bind.as_deref(), Some("127.0.0.1:9102"));
        assert_eq!(c.sinks.len(), 3);
        assert_eq!(
            c.sinks[0].filter.systems,
            [System::Test, System::Production]
        );
        assert_eq!(c.sinks[0].filter.kinds, [Kind::Log]);
        assert_eq!(
            c.sinks[1].kind,
            SinkKind::File {
                path: "/tmp/a".into(),
                rotate_bytes: Some(100),
                keep: 2
            }
        );
        assert_eq!(c.sinks[1].filter.tasks, ["abc"]);
        assert_eq!(c.sinks[2].filter.min_level, Some(30));
        assert_eq!(c.sinks[2].filter.loggers, ["a", "b"]);
    }

    #[test]
    fn one_table_and_defaults() {
        let c = parse("[input]\nbind = \"ipc:///tmp/y\"\n[sink]\ntype = \"file\"\npath = \"f\"\n")
            .unwrap();
        assert_eq!(c.inputs, ["ipc:///tmp/y"]);
        assert_eq!(c.metrics_bind, None, "no metrics unless asked for");
        assert_eq!(
            c.sinks[0].kind,
            SinkKind::File {
                path: "f".into(),
                rotate_bytes: None,
                keep: DEFAULT_KEEP
            }
        );
        let c = parse("[[sink]]\ntype = \"stdout\"\nlevel = \"warn\"").unwrap();
        assert_eq!(
            c.sinks[0].kind,
            SinkKind::Stdout {
                format: OutputFormat::Pretty,
                color: Color::Auto
            }
        );
        assert_eq!(c.sinks[0].filter.min_level, Some(30));
        assert_eq!(c.inputs, [super::super::DEFAULT_BIND]);
    }

    #[test]
    fn ack_inputs() {
        let c = parse("[[ack_input]]\nbind = \"tcp://127.0.0.1:7\"\n").unwrap();
        assert_eq!(c.ack_inputs, ["tcp://127.0.0.1:7"]);
        assert!(
            c.inputs.is_empty(),
            "only acknowledged input: {:?}",
            c.inputs
        );
        let c = parse(
            "[[input]]\nbind = \"tcp://127.0.0.1:1\"\n[ack_input]\nbind = \"ipc:///tmp/a\"\n",
        )
        .unwrap();
        assert_eq!(c.inputs, ["tcp://127.0.0.1:1"]);
        assert_eq!(c.ack_inputs, ["ipc:///tmp/a"]);
        assert!(parse("").unwrap().ack_inputs.is_empty());
        assert_eq!(
            e("[[ack_input]]\nbind = \"tcp://127.0.0.1:1\"\nbnid = 2\n"),
            "line 3, column 1: unknown key \"bnid\" in ack_input 1"
        );
        assert_eq!(
            e("[ack_input]\nbind = \"tcp://127.0.0.1:1\"\nport = 2\n"),
            "line 3, column 1: unknown key \"port\" in ack_input 1"
        );
    }

    #[test]
    fn ack_binds_from_the_command_line_mean_no_default_plain_input() {
        let ack = ["tcp://127.0.0.1:9".to_string()];
        let plain = ["tcp://127.0.0.1:8".to_string()];
        // A file without inputs and --ack-bind: as without a file, no PULL on 5010.
        let c = parse_with_binds("stats_interval = 0\n", &[], &ack).unwrap();
        assert_eq!(c.ack_inputs, ack);
        assert!(c.inputs.is_empty(), "{:?}", c.inputs);
        assert!(parse_with_binds("", &[], &ack).unwrap().inputs.is_empty());
        // The file's plain inputs stay; --ack-bind replaces its acknowledged ones.
        let file = "[[input]]\nbind = \"tcp://127.0.0.1:1\"\n[[ack_input]]\nbind = \"tcp://127.0.0.1:2\"\n";
        let c = parse_with_binds(file, &[], &ack).unwrap();
        assert_eq!(c.inputs, ["tcp://127.0.0.1:1"]);
        assert_eq!(c.ack_inputs, ack);
        // --bind replaces the file's plain inputs and keeps its acknowledged ones.
        let c = parse_with_binds(file, &plain, &[]).unwrap();
        assert_eq!(c.inputs, plain);
        assert_eq!(c.ack_inputs, ["tcp://127.0.0.1:2"]);
        let c = parse_with_binds("", &plain, &ack).unwrap();
        assert_eq!((c.inputs, c.ack_inputs), (plain.to_vec(), ack.to_vec()));
        // Nothing named anywhere: the default plain input, as before.
        let c = parse_with_binds("", &[], &[]).unwrap();
        assert_eq!(c.inputs, [super::super::DEFAULT_BIND]);
        assert!(c.ack_inputs.is_empty());
    }

    fn e(s: &str) -> String {
        parse(s).unwrap_err().to_string()
    }

    #[cfg(not(feature = "nats"))]
    #[test]
    fn a_nats_sink_needs_the_nats_feature() {
        let err = e("[[sink]]\ntype = \"nats\"\nurls = [\"nats://a:4222\"]\n");
        assert!(err.contains("nats") && err.contains("feature"), "{err}");
    }

    #[cfg(feature = "nats")]
    #[test]
    fn nats_sink() {
        let c = parse(
            "[[sink]]\ntype = \"nats\"\nurls = [\"nats://a:4222\", \"b:4222\"]\nstream = \"LOGS\"\n\
             subject_prefix = \"logs.eu\"\nreplicas = 3\nlevel = \"warning\"\nlogger = \"shop\"\n",
        )
        .unwrap();
        let SinkKind::Nats(nats) = &c.sinks[0].kind else {
            panic!("{:?}", c.sinks[0].kind)
        };
        assert_eq!(nats.urls, ["nats://a:4222", "b:4222"]);
        assert_eq!(
            (nats.stream.as_str(), nats.subject_prefix.as_str()),
            ("LOGS", "logs.eu")
        );
        assert_eq!(nats.replicas, 3);
        assert_eq!(c.sinks[0].filter.min_level, Some(30));
        assert_eq!(c.sinks[0].filter.loggers, ["shop"]);
        // Defaults, and one URL as a string.
        let c = parse("[sink]\ntype = \"nats\"\nurls = \"127.0.0.1:4222\"\n").unwrap();
        assert_eq!(
            c.sinks[0].kind,
            SinkKind::Nats(NatsConfig::new(vec!["127.0.0.1:4222".into()]))
        );
        assert_eq!(
            e("[[sink]]\ntype = \"nats\"\nurls = \"x:1\"\nstrem = \"A\"\n"),
            "line 4, column 1: unknown key \"strem\" in sink 1"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"file\"\npath = \"x\"\nreplicas = 2\n"),
            "line 4, column 12: unknown key \"replicas\" in sink 1"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"nats\"\nurls = \"x:1\"\npath = \"x\"\n"),
            "line 4, column 8: unknown key \"path\" in sink 1"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"nats\"\n"),
            "sink 1 needs a \"urls\" key"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"nats\"\nurls = []\n"),
            "sink 1 needs a \"urls\" key"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"nats\"\nurls = \"x:1\"\nreplicas = 7\n"),
            "bad sink 1 replicas \"7\": expected 1 to 5"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"nats\"\nurls = \"x:1\"\nstream = \"a.b\"\n"),
            "bad sink 1 stream \"a.b\": expected a stream name: printable ASCII without . * > / \\ or spaces"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"nats\"\nurls = \"x:1\"\nreplicas = \"two\"\n"),
            "line 4, column 12: sink 1 replicas: invalid type: string \"two\", \
             expected a whole number of at least 0"
        );
    }

    #[test]
    fn curve_table() {
        let c = parse("[curve]\nsecret = \"c.key\"\nallow = \"allowed\"\n").unwrap();
        let curve = c.curve.unwrap();
        assert_eq!(curve.secret_file, PathBuf::from("c.key"));
        assert_eq!(curve.allow_file, Some(PathBuf::from("allowed")));
        let c = parse("[curve]\nsecret = \"c.key\"\n").unwrap();
        assert_eq!(c.curve.unwrap().allow_file, None);
        assert!(parse("").unwrap().curve.is_none());
        assert_eq!(
            e("[curve]\nallow = \"allowed\"\n"),
            "curve needs a \"secret\" key"
        );
        assert_eq!(
            e("[curve]\nsecret = \"c.key\"\nalow = \"x\"\n"),
            "line 3, column 1: unknown key \"alow\" in curve"
        );
        assert_eq!(
            e("[curve]\nsecret = 5\n"),
            "line 2, column 10: curve secret: invalid type: integer `5`, expected path string"
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let err = parse("max_body_bytes = 10\n\ncolour = 1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3, column 1: unknown key \"colour\" in the top level"
        );
        let source = err.source().expect("the toml error");
        assert!(source.downcast_ref::<toml::de::Error>().is_some());
    }

    #[test]
    fn unknown_key_in_a_sink() {
        assert_eq!(
            e("[[sink]]\ntype = \"stdout\"\n\n[[sink]]\ntype = \"file\"\npath = \"x\"\n  levle = 3\n"),
            "line 7, column 3: unknown key \"levle\" in sink 2"
        );
        assert_eq!(
            e("[[input]]\nbind = \"tcp://127.0.0.1:1\"\nport = 2\n"),
            "line 3, column 1: unknown key \"port\" in input 1"
        );
        // A key of another type of sink is unknown to this one.
        assert_eq!(
            e("[[sink]]\ntype = \"file\"\npath = \"x\"\nformat = \"jsonl\"\n"),
            "line 4, column 10: unknown key \"format\" in sink 1"
        );
    }

    #[test]
    fn wrong_type() {
        let err = parse("stats_interval = 1\nmax_body_bytes = \"big\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2, column 18: max_body_bytes: invalid type: string \"big\", \
             expected a whole number of at least 0"
        );
        assert!(err.source().is_some());
        assert_eq!(
            e("[[sink]]\ntype = \"file\"\npath = \"x\"\nkeep = 1.5\n"),
            "line 4, column 8: sink 1 keep: invalid type: floating point `1.5`, \
             expected a whole number of at least 0"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"stdout\"\nlogger = [\"a\", 3]\n"),
            "line 3, column 16: sink 1 logger: invalid type: integer `3`, expected a string"
        );
    }

    #[test]
    fn bad_values_name_the_value() {
        assert_eq!(
            e("[[sink]]\ntype = \"stdout\"\nformat = \"xml\""),
            "line 3, column 10: sink 1 format: bad format \"xml\": expected jsonl, pretty or none"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"stdout\"\nlevel = \"loud\""),
            "line 3, column 9: sink 1 level: unknown level \"loud\": \
             expected TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL or a number"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"pipe\""),
            "line 2, column 8: sink 1 type: bad type \"pipe\": expected stdout, file, publish or nats"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"stdout\"\nsystem = \"Q\""),
            "line 3, column 10: sink 1 system: bad system \"Q\": \
             expected T, S, P, test, staging or production"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"stdout\"\ncolor = \"pink\""),
            "line 3, column 9: sink 1 color: unknown color choice \"pink\": \
             expected auto, always or never"
        );
        assert_eq!(
            e("drain_max = -1"),
            "line 1, column 13: drain_max: invalid value: integer `-1`, \
             expected a number of seconds from 0 to 1e9"
        );
        assert_eq!(
            e("drain_quiet = 1e10"),
            "line 1, column 15: drain_quiet: invalid value: floating point `10000000000.0`, \
             expected a number of seconds from 0 to 1e9"
        );
        assert_eq!(
            e("[[sink]]\ntype = \"file\"\npath = \"x\"\nrotate_bytes = 0"),
            "line 4, column 16: sink 1 rotate_bytes: invalid value: integer `0`, \
             expected a positive number of bytes"
        );
        assert_eq!(
            e("channel_batches = 0"),
            "bad channel_batches \"0\": expected at least 1"
        );
        assert_eq!(
            e("receive_threads = 0"),
            "bad receive_threads \"0\": expected at least 1"
        );
    }

    #[test]
    fn missing_keys_and_syntax() {
        assert_eq!(
            e("[[sink]]\ntype = \"file\""),
            "sink 1 needs a \"path\" key"
        );
        assert_eq!(
            e("[[sink]]\nformat = \"jsonl\""),
            "sink 1 needs a \"type\" key"
        );
        assert_eq!(e("[[input]]\n"), "input 1 needs a \"bind\" key");
        assert_eq!(
            e("[[ack_input]]\nbind = \"x\"\n[[ack_input]]\n"),
            "ack_input 2 needs a \"bind\" key"
        );
        let err = e("[[input]]\nbind = ");
        assert!(
            err.starts_with("config is not valid TOML: line 2, column 8: "),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
    }
}
