//! What the collector listens on, where records go and which ones each sink takes.
//!
//! A [`Config`] is built in code, from `distlogd` flags, or (with the `cli` feature)
//! from a TOML file:
//!
//! ```toml
//! max_body_bytes = 1048576   # larger bodies are rejected as "oversize"
//! stats_interval = 10        # seconds between stats lines on stderr; 0 disables
//!
//! [[input]]
//! bind = "tcp://127.0.0.1:5010"
//!
//! [[sink]]
//! type = "stdout"            # stdout | file | publish
//! format = "pretty"          # pretty | jsonl | none
//! color = "auto"             # auto | always | never
//! level = "WARNING"          # filters: level, system, kind, logger, task
//!
//! [[sink]]
//! type = "file"
//! path = "/var/log/distlog/all.jsonl"
//! rotate_bytes = 104857600
//! keep = 5
//! system = ["P", "staging"]
//!
//! [[sink]]
//! type = "publish"
//! endpoint = "tcp://127.0.0.1:5011"
//! logger = ["shop", "billing"]
//! ```
//!
//! Every key is checked: a misspelt key or a bad value is an error that names it.

use super::filter::RecordFilter;
use super::format::Color;
use distlog::serialize::Limits;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The default PULL endpoint: loopback only, unlike Python's `tcp://*:5010`.
pub const DEFAULT_BIND: &str = "tcp://127.0.0.1:5010";

/// The default largest body accepted, 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// How records are written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// `{"topic": "TLJ", "record": {...}}` per line.
    Jsonl,
    /// One readable line per record.
    #[default]
    Pretty,
    /// Nothing.
    None,
}

impl std::str::FromStr for OutputFormat {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "jsonl" | "json" => Ok(OutputFormat::Jsonl),
            "pretty" => Ok(OutputFormat::Pretty),
            "none" => Ok(OutputFormat::None),
            _ => Err(ConfigError::BadValue {
                key: "format".into(),
                value: s.into(),
                expected: "jsonl, pretty or none",
            }),
        }
    }
}

/// What a sink is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    /// Standard output.
    Stdout {
        /// The line format.
        format: OutputFormat,
        /// Colors for `pretty`.
        color: Color,
    },
    /// A JSON-lines file, rotated by size.
    File {
        /// The file; rotated copies are `PATH.1` … `PATH.<keep>`.
        path: PathBuf,
        /// Rotate when the file would grow past this; `None` never rotates.
        rotate_bytes: Option<u64>,
        /// How many rotated files to keep; 0 keeps none: the file is emptied in place
        /// and written on from the start.
        keep: usize,
    },
    /// A PUB socket re-publishing each record as its original `[topic, body]`.
    Publish {
        /// The endpoint to bind.
        endpoint: String,
    },
}

/// One sink and its filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkConfig {
    /// Where records go.
    pub kind: SinkKind,
    /// Which records go there.
    pub filter: RecordFilter,
}

/// Everything the collector needs to run.
///
/// ```
/// use distlogd::config::{Config, OutputFormat, SinkConfig, SinkKind};
/// let mut config = Config::default();
/// assert_eq!(config.inputs, ["tcp://127.0.0.1:5010"]);
/// config.sinks.push(SinkConfig {
///     kind: SinkKind::Stdout { format: OutputFormat::Jsonl, color: Default::default() },
///     filter: Default::default(),
/// });
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// PULL endpoints to bind.
    pub inputs: Vec<String>,
    /// Outputs.
    pub sinks: Vec<SinkConfig>,
    /// Largest body accepted; longer ones are rejected as `oversize` before decoding.
    pub max_body_bytes: usize,
    /// Decoder limits (nesting depth, memo expansion, integer digits).
    pub limits: Limits,
    /// Time between stats lines on stderr; `None` prints only the final one.
    pub stats_interval: Option<Duration>,
    /// Batches of records in flight between the receive loop and the sinks; when the
    /// sinks fall behind, receiving waits, so memory stays bounded.
    pub channel_batches: usize,
    /// On shutdown, keep receiving until the input has been quiet this long…
    pub drain_quiet: Duration,
    /// …or until this much time has passed.
    pub drain_max: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inputs: vec![DEFAULT_BIND.to_string()],
            sinks: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: Limits::default(),
            stats_interval: Some(Duration::from_secs(10)),
            channel_batches: 16,
            drain_quiet: Duration::from_millis(300),
            drain_max: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Checks what can be checked before binding anything.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.inputs.is_empty() {
            return Err(ConfigError::Missing {
                section: "config".into(),
                key: "input",
            });
        }
        if self.channel_batches == 0 {
            return Err(ConfigError::BadValue {
                key: "channel_batches".into(),
                value: "0".into(),
                expected: "at least 1",
            });
        }
        for s in &self.sinks {
            if let SinkKind::File {
                rotate_bytes: Some(0),
                ..
            } = s.kind
            {
                return Err(ConfigError::BadValue {
                    key: "rotate_bytes".into(),
                    value: "0".into(),
                    expected: "a positive number of bytes",
                });
            }
        }
        Ok(())
    }

    /// Reads a TOML config file (see the [module docs](self) for its keys).
    pub fn from_toml_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Config::from_toml_str(&text)
    }

    /// Parses a TOML config (see the [module docs](self) for its keys).
    ///
    /// ```
    /// use distlogd::config::{Config, SinkKind};
    /// let c = Config::from_toml_str(r#"
    ///     stats_interval = 0
    ///     [[input]]
    ///     bind = "tcp://127.0.0.1:6000"
    ///     [[sink]]
    ///     type = "file"
    ///     path = "out.jsonl"
    ///     level = "error"
    /// "#).unwrap();
    /// assert_eq!(c.inputs, ["tcp://127.0.0.1:6000"]);
    /// assert_eq!(c.stats_interval, None);
    /// assert_eq!(c.sinks[0].filter.min_level, Some(40));
    ///
    /// let err = Config::from_toml_str("[[sink]]\ntype = \"file\"\npath = \"x\"\nlevle = 1").unwrap_err();
    /// assert_eq!(err.to_string(), "unknown key \"levle\" in sink 1");
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        toml_config::parse(text)
    }
}

/// A config that cannot be used, naming the key and value at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The text is not TOML.
    Syntax(String),
    /// A key that means nothing here (often a typo).
    UnknownKey {
        /// Where it was.
        section: String,
        /// The key.
        key: String,
    },
    /// A key that must be there is not.
    Missing {
        /// Where it should be.
        section: String,
        /// The key.
        key: &'static str,
    },
    /// A value of the wrong TOML type.
    WrongType {
        /// The key.
        key: String,
        /// What was wanted.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// A value of the right type that is not allowed.
    BadValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, message } => {
                write!(f, "cannot read config {}: {message}", path.display())
            }
            ConfigError::Syntax(m) => write!(f, "config is not valid TOML: {m}"),
            ConfigError::UnknownKey { section, key } => {
                write!(f, "unknown key {key:?} in {section}")
            }
            ConfigError::Missing { section, key } => write!(f, "{section} needs a {key:?} key"),
            ConfigError::WrongType {
                key,
                expected,
                found,
            } => write!(f, "{key} must be {expected}, not {found}"),
            ConfigError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "bad {key} {value:?}: expected {expected}"),
        }
    }
}

impl std::error::Error for ConfigError {}

mod toml_config {
    use super::*;
    use distlog::level::parse as parse_level;
    use toml::{Table, Value};

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.message().to_string()))?;
        let mut config = Config::default();
        let mut inputs = Vec::new();
        for (key, value) in &table {
            match key.as_str() {
                "max_body_bytes" => config.max_body_bytes = uint(key, value)? as usize,
                "max_depth" => config.limits.max_depth = uint(key, value)? as usize,
                "stats_interval" => {
                    let secs = seconds(key, value)?;
                    config.stats_interval = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
                }
                "channel_batches" => config.channel_batches = uint(key, value)? as usize,
                "drain_quiet" => config.drain_quiet = Duration::from_secs_f64(seconds(key, value)?),
                "drain_max" => config.drain_max = Duration::from_secs_f64(seconds(key, value)?),
                "input" => {
                    for (i, t) in tables(key, value)?.iter().enumerate() {
                        let section = format!("input {}", i + 1);
                        for k in t.keys() {
                            if k != "bind" {
                                return Err(unknown(&section, k));
                            }
                        }
                        match t.get("bind") {
                            Some(v) => inputs.push(string("bind", v)?),
                            None => {
                                return Err(ConfigError::Missing {
                                    section,
                                    key: "bind",
                                })
                            }
                        }
                    }
                }
                "sink" => {
                    for (i, t) in tables(key, value)?.iter().enumerate() {
                        config.sinks.push(sink(&format!("sink {}", i + 1), t)?);
                    }
                }
                _ => return Err(unknown("the top level", key)),
            }
        }
        if !inputs.is_empty() {
            config.inputs = inputs;
        }
        config.validate()?;
        Ok(config)
    }

    fn sink(section: &str, t: &Table) -> Result<SinkConfig, ConfigError> {
        let kind_name = match t.get("type") {
            Some(v) => string("type", v)?,
            None => {
                return Err(ConfigError::Missing {
                    section: section.into(),
                    key: "type",
                })
            }
        };
        let mut filter = RecordFilter::default();
        let (mut format, mut color) = (OutputFormat::Pretty, Color::Auto);
        let (mut path, mut rotate_bytes, mut keep, mut endpoint) = (None, None, 5usize, None);
        for (k, v) in t {
            let key = k.as_str();
            match (kind_name.as_str(), key) {
                (_, "type") => {}
                (_, "level") => {
                    let s = match v {
                        Value::Integer(n) => n.to_string(),
                        other => string(key, other)?,
                    };
                    filter.min_level =
                        Some(parse_level(&s).map_err(|_| ConfigError::BadValue {
                            key: key.into(),
                            value: s,
                            expected: "TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL or a number",
                        })?);
                }
                (_, "system") => {
                    for s in strings(key, v)? {
                        filter
                            .systems
                            .push(s.parse().map_err(|_| ConfigError::BadValue {
                                key: key.into(),
                                value: s,
                                expected: "T, S, P, test, staging or production",
                            })?);
                    }
                }
                (_, "kind") => {
                    for s in strings(key, v)? {
                        filter
                            .kinds
                            .push(s.parse().map_err(|_| ConfigError::BadValue {
                                key: key.into(),
                                value: s,
                                expected: "L, P, log or performance",
                            })?);
                    }
                }
                (_, "logger") => filter.loggers = strings(key, v)?,
                (_, "task") => filter.tasks = strings(key, v)?,
                ("stdout", "format") => format = string(key, v)?.parse()?,
                ("stdout", "color") => {
                    let s = string(key, v)?;
                    color = s.parse().map_err(|_| ConfigError::BadValue {
                        key: key.into(),
                        value: s,
                        expected: "auto, always or never",
                    })?;
                }
                ("file", "path") => path = Some(PathBuf::from(string(key, v)?)),
                ("file", "rotate_bytes") => rotate_bytes = Some(uint(key, v)?),
                ("file", "keep") => keep = uint(key, v)? as usize,
                ("publish", "endpoint") => endpoint = Some(string(key, v)?),
                ("stdout" | "file" | "publish", _) => return Err(unknown(section, key)),
                _ => {
                    return Err(ConfigError::BadValue {
                        key: format!("{section} type"),
                        value: kind_name,
                        expected: "stdout, file or publish",
                    })
                }
            }
        }
        let kind = match kind_name.as_str() {
            "stdout" => SinkKind::Stdout { format, color },
            "file" => SinkKind::File {
                path: path.ok_or_else(|| ConfigError::Missing {
                    section: section.into(),
                    key: "path",
                })?,
                rotate_bytes,
                keep,
            },
            "publish" => SinkKind::Publish {
                endpoint: endpoint.ok_or_else(|| ConfigError::Missing {
                    section: section.into(),
                    key: "endpoint",
                })?,
            },
            _ => {
                return Err(ConfigError::BadValue {
                    key: format!("{section} type"),
                    value: kind_name,
                    expected: "stdout, file or publish",
                })
            }
        };
        Ok(SinkConfig { kind, filter })
    }

    fn unknown(section: &str, key: &str) -> ConfigError {
        ConfigError::UnknownKey {
            section: section.into(),
            key: key.into(),
        }
    }

    fn wrong(key: &str, expected: &'static str, v: &Value) -> ConfigError {
        ConfigError::WrongType {
            key: key.into(),
            expected,
            found: format!("{} {}", v.type_str(), shown(v)),
        }
    }

    /// A value as it would appear in the file, shortened for containers.
    fn shown(v: &Value) -> String {
        match v {
            Value::String(s) => format!("{s:?}"),
            Value::Integer(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Datetime(d) => d.to_string(),
            Value::Array(_) => "[...]".into(),
            Value::Table(_) => "{...}".into(),
        }
    }

    fn tables<'a>(key: &str, v: &'a Value) -> Result<Vec<&'a Table>, ConfigError> {
        match v {
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_table().ok_or_else(|| wrong(key, "a table", i)))
                .collect(),
            Value::Table(t) => Ok(vec![t]),
            other => Err(wrong(key, "an array of tables", other)),
        }
    }

    fn string(key: &str, v: &Value) -> Result<String, ConfigError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| wrong(key, "a string", v))
    }

    fn strings(key: &str, v: &Value) -> Result<Vec<String>, ConfigError> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items.iter().map(|i| string(key, i)).collect(),
            other => Err(wrong(key, "a string or an array of strings", other)),
        }
    }

    fn uint(key: &str, v: &Value) -> Result<u64, ConfigError> {
        match v {
            Value::Integer(n) if *n >= 0 => Ok(*n as u64),
            Value::Integer(n) => Err(ConfigError::BadValue {
                key: key.into(),
                value: n.to_string(),
                expected: "a number of at least 0",
            }),
            other => Err(wrong(key, "an integer", other)),
        }
    }

    fn seconds(key: &str, v: &Value) -> Result<f64, ConfigError> {
        let secs = match v {
            Value::Integer(n) => *n as f64,
            Value::Float(f) => *f,
            other => return Err(wrong(key, "a number of seconds", other)),
        };
        if !(0.0..=1e9).contains(&secs) {
            return Err(ConfigError::BadValue {
                key: key.into(),
                value: secs.to_string(),
                expected: "a number of seconds from 0 to 1e9",
            });
        }
        Ok(secs)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn full_config() {
            let c = parse(
                r#"
                max_body_bytes = 4096
                stats_interval = 2.5
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
            assert_eq!(c.sinks.len(), 3);
            assert_eq!(c.sinks[0].filter.systems.len(), 2);
            assert_eq!(
                c.sinks[1].kind,
                SinkKind::File {
                    path: "/tmp/a".into(),
                    rotate_bytes: Some(100),
                    keep: 2
                }
            );
            assert_eq!(c.sinks[2].filter.min_level, Some(30));
            assert_eq!(c.sinks[2].filter.loggers, ["a", "b"]);
        }

        #[test]
        fn errors_name_the_culprit() {
            let e = |s: &str| parse(s).unwrap_err().to_string();
            assert_eq!(
                e("[[sink]]\ntype = \"stdout\"\nformat = \"xml\""),
                "bad format \"xml\": expected jsonl, pretty or none"
            );
            assert_eq!(
                e("[[sink]]\ntype = \"file\""),
                "sink 1 needs a \"path\" key"
            );
            assert_eq!(
                e("[[sink]]\ntype = \"pipe\""),
                "bad sink 1 type \"pipe\": expected stdout, file or publish"
            );
            assert_eq!(
                e("[[sink]]\ntype = \"stdout\"\nsystem = \"Q\""),
                "bad system \"Q\": expected T, S, P, test, staging or production"
            );
            assert_eq!(
                e("max_body_bytes = \"big\""),
                "max_body_bytes must be an integer, not string \"big\""
            );
            assert_eq!(e("colour = 1"), "unknown key \"colour\" in the top level");
            assert!(e("[[input]]\nbind = ").starts_with("config is not valid TOML"));
        }
    }
}
