//! What the collector listens on, where records go and which ones each sink takes.
//!
//! A [`Config`] is built in code, from `distlogd` flags, or from a TOML file:
//!
//! ```toml
//! max_body_bytes = 1048576   # larger bodies are rejected as "oversize"
//! stats_interval = 10        # seconds between stats lines on stderr; 0 disables
//! metrics_bind = "127.0.0.1:9102"   # Prometheus metrics at http://ADDR/metrics
//!
//! [[input]]
//! bind = "tcp://127.0.0.1:5010"
//!
//! [[ack_input]]              # acknowledged delivery (a ROUTER); with only these,
//! bind = "tcp://127.0.0.1:5012"   # there is no plain input
//!
//! [[sink]]
//! type = "stdout"            # stdout | file | publish | nats
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
//!
//! [[sink]]
//! type = "nats"              # JetStream (the `nats` cargo feature, on by default)
//! urls = ["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"]   # or one string
//! stream = "DISTLOG"         # created if missing: file storage, subjects "<prefix>.>"
//! subject_prefix = "distlog" # subjects <prefix>.<system>.<kind>.<logger>
//! replicas = 3               # of a stream distlogd creates
//!
//! [curve]                    # CURVE on every input and publish socket
//! secret = "/etc/distlog/collector.key"   # from `distlog keygen`
//! allow = "/etc/distlog/allowed"          # client public keys; reread on SIGHUP
//! ```
//!
//! Every key is checked: a misspelt key or a bad value is an error that names it and
//! its line and column. `input`, `ack_input` and `sink` may also be given as one table (`[sink]`),
//! and the list-valued filters (`system`, `kind`, `logger`, `task`) as one string.

mod toml_file;

use super::filter::RecordFilter;
use super::format::Color;
use distlog::serialize::Limits;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// The default PULL endpoint: loopback only, unlike Python's `tcp://*:5010`.
pub const DEFAULT_BIND: &str = "tcp://127.0.0.1:5010";

/// The default acknowledged (ROUTER) endpoint the README suggests; not bound unless
/// asked for.
pub const DEFAULT_ACK_BIND: &str = "tcp://127.0.0.1:5012";

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
    /// A JSON-lines file, rotated by size: when a line would take it past
    /// `rotate_bytes`, `PATH` becomes `PATH.1`, `PATH.1` becomes `PATH.2` and so on up
    /// to `PATH.<keep>`, and the oldest goes. Lines are never split across files; the
    /// line that caused the rotation starts the fresh file.
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
    /// A NATS JetStream stream: one message per record (see [`NatsConfig`]). Needs the
    /// `nats` cargo feature (on by default); without it the config is refused.
    Nats(NatsConfig),
}

/// The stream the `nats` sink writes when none is named.
pub const DEFAULT_NATS_STREAM: &str = "DISTLOG";

/// The subject prefix of the `nats` sink when none is given.
pub const DEFAULT_NATS_SUBJECT_PREFIX: &str = "distlog";

/// Where and how the `nats` sink publishes.
///
/// Each record becomes one JetStream message on subject
/// `<subject_prefix>.<system>.<kind>.<logger>` ([`crate::subject`] says how names are
/// escaped), its payload the body exactly as received, with headers `Distlog-Topic`
/// (the three topic letters) and, for a record that came with an acknowledged-delivery
/// header, `Nats-Msg-Id: <producer hex>:<seq>`, so that JetStream drops a resend that
/// went through another collector. A stream that does not exist is created: file
/// storage, subjects `<subject_prefix>.>`, a two-minute duplicate window, `replicas`
/// replicas. One that exists is used as it is.
///
/// ```
/// use distlogd::config::{NatsConfig, SinkConfig, SinkKind};
/// let mut nats = NatsConfig::new(vec!["nats://127.0.0.1:4222".into()]);
/// nats.replicas = 3;
/// assert_eq!(nats.stream, "DISTLOG");
/// let sink = SinkConfig::new(SinkKind::Nats(nats));
/// # let _ = sink;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsConfig {
    /// Server URLs, the cluster's seeds (`nats://host:4222`, `host:4222`); the client
    /// learns the other nodes from them and reconnects across all.
    pub urls: Vec<String>,
    /// The JetStream stream.
    pub stream: String,
    /// The first tokens of every subject.
    pub subject_prefix: String,
    /// Replicas of a stream distlogd creates (1 to 5).
    pub replicas: usize,
}

impl NatsConfig {
    /// The defaults ([`DEFAULT_NATS_STREAM`], [`DEFAULT_NATS_SUBJECT_PREFIX`], one
    /// replica) with these server URLs.
    ///
    /// ```
    /// let nats = distlogd::config::NatsConfig::new(vec!["127.0.0.1:4222".into()]);
    /// assert_eq!((nats.subject_prefix.as_str(), nats.replicas), ("distlog", 1));
    /// ```
    pub fn new(urls: Vec<String>) -> NatsConfig {
        NatsConfig {
            urls,
            stream: DEFAULT_NATS_STREAM.into(),
            subject_prefix: DEFAULT_NATS_SUBJECT_PREFIX.into(),
            replicas: 1,
        }
    }

    /// Checks what can be checked without a server: at least one URL, a stream name
    /// and a subject prefix NATS accepts, 1 to 5 replicas.
    ///
    /// ```
    /// let mut nats = distlogd::config::NatsConfig::new(vec!["127.0.0.1:4222".into()]);
    /// assert!(nats.validate().is_ok());
    /// nats.subject_prefix = "logs.>".into();
    /// assert_eq!(
    ///     nats.validate().unwrap_err().to_string(),
    ///     "bad subject_prefix \"logs.>\": expected dot-separated tokens of printable ASCII, none empty or a wildcard"
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, value: String, expected| {
            Err(ConfigError::BadValue {
                key: key.into(),
                value,
                expected,
            })
        };
        if self.urls.is_empty() {
            return Err(ConfigError::Missing {
                section: "nats sink".into(),
                key: "urls",
            });
        }
        if let Some(url) = self.urls.iter().find(|u| u.trim().is_empty()) {
            return bad(
                "urls",
                url.clone(),
                "a NATS server URL such as nats://127.0.0.1:4222",
            );
        }
        if !crate::subject::valid_stream_name(&self.stream) {
            return bad(
                "stream",
                self.stream.clone(),
                "a stream name: printable ASCII without . * > / \\ or spaces",
            );
        }
        if !crate::subject::valid_prefix(&self.subject_prefix) {
            return bad(
                "subject_prefix",
                self.subject_prefix.clone(),
                "dot-separated tokens of printable ASCII, none empty or a wildcard",
            );
        }
        if !(1..=5).contains(&self.replicas) {
            return bad("replicas", self.replicas.to_string(), "1 to 5");
        }
        Ok(())
    }
}

/// One sink and its filter.
///
/// ```
/// use distlogd::config::{SinkConfig, SinkKind};
/// let mut sink = SinkConfig::new(SinkKind::Publish { endpoint: "tcp://127.0.0.1:5011".into() });
/// sink.filter.min_level = Some(30);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkConfig {
    /// Where records go.
    pub kind: SinkKind,
    /// Which records go there.
    pub filter: RecordFilter,
}

impl SinkConfig {
    /// A sink that takes every record.
    pub fn new(kind: SinkKind) -> SinkConfig {
        SinkConfig {
            kind,
            filter: RecordFilter::default(),
        }
    }

    /// The same sink, taking only the records `filter` takes.
    ///
    /// ```
    /// use distlogd::config::{OutputFormat, SinkConfig, SinkKind};
    /// use distlogd::RecordFilter;
    /// let mut errors = RecordFilter::default();
    /// errors.min_level = Some(40);
    /// let sink = SinkConfig::new(SinkKind::Stdout {
    ///     format: OutputFormat::Pretty,
    ///     color: Default::default(),
    /// })
    /// .with_filter(errors);
    /// assert_eq!(sink.filter.min_level, Some(40));
    /// ```
    pub fn with_filter(mut self, filter: RecordFilter) -> SinkConfig {
        self.filter = filter;
        self
    }
}

/// CURVE on the collector's sockets: every input (PULL) and publish (PUB) socket is
/// a CURVE server with this secret key, and plaintext (NULL) peers are refused.
///
/// Without an allow file, any client that knows the server's public key may connect
/// (libzmq's behaviour without ZAP): the key then only encrypts, and a leaked public
/// key lets anyone send. With one, only clients whose public key it lists may; it is
/// read again when the collector is told to reload (SIGHUP for `distlogd`).
///
/// ```
/// use distlogd::config::{Config, CurveConfig};
/// let mut config = Config::default();
/// let mut curve = CurveConfig::new("collector.key".into());
/// curve.allow_file = Some("allowed".into());
/// config.curve = Some(curve);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurveConfig {
    /// The collector's secret key file (one Z85 key, as `distlog keygen` writes).
    pub secret_file: PathBuf,
    /// Client public keys allowed to connect, one a line; `None` allows any client
    /// that knows the server's public key.
    pub allow_file: Option<PathBuf>,
}

impl CurveConfig {
    /// CURVE with this secret key file, and no allow file.
    ///
    /// ```
    /// let curve = distlogd::config::CurveConfig::new("/etc/distlog/collector.key".into());
    /// assert!(curve.allow_file.is_none());
    /// ```
    pub fn new(secret_file: PathBuf) -> CurveConfig {
        CurveConfig {
            secret_file,
            allow_file: None,
        }
    }
}

/// Everything the collector needs to run: start from [`Config::default`] and set fields.
///
/// ```
/// use distlogd::config::{Config, OutputFormat, SinkConfig, SinkKind};
/// let mut config = Config::default();
/// assert_eq!(config.inputs, ["tcp://127.0.0.1:5010"]);
/// config.sinks.push(SinkConfig::new(SinkKind::Stdout {
///     format: OutputFormat::Jsonl,
///     color: Default::default(),
/// }));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// PULL endpoints to bind (plain delivery).
    pub inputs: Vec<String>,
    /// ROUTER endpoints to bind for acknowledged delivery (protocol version 1, see the
    /// README's "Acknowledged delivery"); empty by default. Either list may be empty,
    /// not both.
    pub ack_inputs: Vec<String>,
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
    /// CURVE on every socket; `None` speaks NULL (no encryption, no authentication).
    pub curve: Option<CurveConfig>,
    /// `HOST:PORT` to serve Prometheus metrics on, at `/metrics` over plain HTTP;
    /// `None` serves none. Port 0 takes a free port; the address bound is announced
    /// on stderr as `distlogd: metrics on http://ADDR/metrics`.
    pub metrics_bind: Option<String>,
    /// Threads that receive the TCP inputs: with more than one, each input's
    /// connections are dealt out among as many PULL sockets, each examined on a
    /// thread of its own, so that many producers are received on several cores. One
    /// receives on the calling thread alone. Defaults to the cores there are, at most
    /// 4. ipc inputs and the acknowledged inputs are received on the calling thread.
    pub receive_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            inputs: vec![DEFAULT_BIND.to_string()],
            ack_inputs: Vec::new(),
            sinks: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: Limits::default(),
            stats_interval: Some(Duration::from_secs(10)),
            channel_batches: 16,
            drain_quiet: Duration::from_millis(300),
            drain_max: Duration::from_secs(5),
            curve: None,
            metrics_bind: None,
            receive_threads: default_receive_threads(),
        }
    }
}

/// The cores there are, at most 4: past that one thread handing records to the sinks
/// is the bound, not examining them.
fn default_receive_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

impl Config {
    /// Checks what can be checked before binding anything.
    ///
    /// ```
    /// use distlogd::config::Config;
    /// let mut config = Config::default();
    /// config.inputs.clear();
    /// assert!(config.validate().is_err());
    /// // Acknowledged input alone is enough.
    /// config.ack_inputs.push("tcp://127.0.0.1:5012".into());
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.inputs.is_empty() && self.ack_inputs.is_empty() {
            return Err(ConfigError::Missing {
                section: "config".into(),
                key: "input",
            });
        }
        if self.receive_threads == 0 {
            return Err(ConfigError::BadValue {
                key: "receive_threads".into(),
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if self.channel_batches == 0 {
            return Err(ConfigError::BadValue {
                key: "channel_batches".into(),
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if self
            .sinks
            .iter()
            .filter(|s| matches!(s.kind, SinkKind::Nats(_)))
            .count()
            > 1
        {
            // One queue and one commit path; several streams would need a chain.
            return Err(ConfigError::BadValue {
                key: "sink type".into(),
                value: "nats".into(),
                expected: "at most one nats sink",
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
            if let SinkKind::Nats(nats) = &s.kind {
                nats.validate()?;
                #[cfg(not(feature = "nats"))]
                return Err(ConfigError::BadValue {
                    key: "sink type".into(),
                    value: "nats".into(),
                    expected: "a distlogd built with the `nats` cargo feature",
                });
            }
        }
        Ok(())
    }

    /// Reads a TOML config file (see the [module docs](self) for its keys).
    pub fn from_toml_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str(&text)
    }

    /// [`Config::from_toml_file`], with the endpoints given on a command line laid
    /// over the file's, as `distlogd` does with `--bind` and `--ack-bind`; see
    /// [`Config::from_toml_str_with_binds`].
    pub fn from_toml_file_with_binds(
        path: &std::path::Path,
        binds: &[String],
        ack_binds: &[String],
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml_str_with_binds(&text, binds, ack_binds)
    }

    /// [`Config::from_toml_str`], with `binds` replacing the `[[input]]` tables and
    /// `ack_binds` the `[[ack_input]]` ones (each only when not empty). As in the
    /// file alone, the default plain input ([`DEFAULT_BIND`]) is bound only when no
    /// input of either kind is named: acknowledged inputs alone mean no plain one.
    ///
    /// ```
    /// use distlogd::config::Config;
    /// let ack = ["tcp://127.0.0.1:5012".to_string()];
    /// let c = Config::from_toml_str_with_binds("stats_interval = 0", &[], &ack).unwrap();
    /// assert_eq!(c.ack_inputs, ack);
    /// assert!(c.inputs.is_empty(), "no PULL on 5010 nobody asked for");
    /// ```
    pub fn from_toml_str_with_binds(
        text: &str,
        binds: &[String],
        ack_binds: &[String],
    ) -> Result<Config, ConfigError> {
        toml_file::parse_with_binds(text, binds, ack_binds)
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
    /// assert_eq!(err.to_string(), "line 4, column 1: unknown key \"levle\" in sink 1");
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        toml_file::parse(text)
    }
}

/// A place in a config file, both counted from 1 (the column in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineColumn {
    /// The line.
    pub line: usize,
    /// The column.
    pub column: usize,
}

impl LineColumn {
    /// Where byte `offset` of `text` is (the end, if it is past it).
    ///
    /// ```
    /// use distlogd::config::LineColumn;
    /// // Byte 10 is the second `=`; `é` takes two bytes but one column.
    /// let at = LineColumn::of("a = 1\nbé = x\n", 10);
    /// assert_eq!((at.line, at.column), (2, 4));
    /// ```
    pub fn of(text: &str, offset: usize) -> LineColumn {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        LineColumn {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for LineColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A config that cannot be used, naming the key and value at fault (and, in a TOML
/// file, where they are).
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The text is not TOML, or a value in it has the wrong type or is not allowed.
    Toml {
        /// The key at fault, such as `max_body_bytes` or `sink 2 level`; empty when
        /// the text is not TOML at all.
        key: String,
        /// Where the bad text is, when toml knows.
        at: Option<LineColumn>,
        /// toml's error, which says what is wrong (boxed: it is large, and rare).
        source: Box<toml::de::Error>,
    },
    /// A key that means nothing here (often a typo), or nothing for this type of sink.
    UnknownKey {
        /// Where it was: `the top level`, `input 1`, `sink 2`.
        section: String,
        /// The key.
        key: String,
        /// Where it is in the file.
        at: Option<LineColumn>,
        /// toml's error, when it found the key.
        source: Option<Box<toml::de::Error>>,
    },
    /// A key that must be there is not.
    Missing {
        /// Where it should be.
        section: String,
        /// The key.
        key: &'static str,
    },
    /// A value that is not allowed.
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
        let at = |f: &mut fmt::Formatter<'_>, at: &Option<LineColumn>| match at {
            Some(at) => write!(f, "{at}: "),
            None => Ok(()),
        };
        match self {
            ConfigError::Io { path, source } => {
                write!(f, "cannot read config {}: {source}", path.display())
            }
            ConfigError::Toml {
                key,
                at: loc,
                source,
            } => {
                // toml's messages may span lines; stderr gets one.
                let message = source.message().trim().replace('\n', "; ");
                if key.is_empty() {
                    write!(f, "config is not valid TOML: ")?;
                    at(f, loc)?;
                    write!(f, "{message}")
                } else {
                    at(f, loc)?;
                    write!(f, "{key}: {message}")
                }
            }
            ConfigError::UnknownKey {
                section,
                key,
                at: loc,
                ..
            } => {
                at(f, loc)?;
                write!(f, "unknown key {key:?} in {section}")
            }
            ConfigError::Missing { section, key } => write!(f, "{section} needs a {key:?} key"),
            ConfigError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "bad {key} {value:?}: expected {expected}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            ConfigError::Toml { source, .. } => Some(&**source),
            ConfigError::UnknownKey {
                source: Some(source),
                ..
            } => Some(&**source),
            _ => None,
        }
    }
}
