//! `distlog replay`: the records the `nats` sink stored in a JetStream stream, read back
//! and shown exactly as `distlog tail` shows them live (the same decoding, filters,
//! readable lines, JSON lines and task tree: [`crate::tail`]'s output path).
//!
//! The stream is read in order by an ordered consumer, ephemeral and without
//! acknowledgements, so a replay changes nothing in the stream and any number can run
//! at once. It starts at the first stored message, at a time ([`Start::Since`], by the
//! time JetStream stored each message) or at a sequence number ([`Start::Seq`]).
//! Without [`ReplayOptions::follow`] it stops after the last message that was in the
//! stream when it started; with it, it goes on with new ones until `stop`.
//!
//! Filters that the subjects can express narrow what the server sends (see
//! [`ReplayOptions`]); all of them are applied here too, so the output is the same
//! whatever the server filtered.

use crate::filter::RecordFilter;
use crate::format::Color;
use crate::nats::TOPIC_HEADER;
use crate::since::{Since, SinceError};
use crate::stats::{held_note, RateLimit};
use crate::subject::{escape_token, valid_prefix, valid_stream_name};
use crate::tail::Output;
use async_nats::jetstream::{self, consumer, context::GetStreamErrorKind, stream};
use async_nats::ServerAddr;
use distlog::topic::{Kind, System};
use futures::StreamExt;
use std::fmt;
use std::io::Write;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How often the reader looks at `stop`, and flushes what it printed when idle.
const TICK: Duration = Duration::from_millis(100);
/// How long connecting to one server may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Where in the stream a replay begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// The first message still stored.
    #[default]
    All,
    /// The first message stored at or after this time.
    Since(Since),
    /// The message with this stream sequence number, or the first after it.
    Seq(NonZeroU64),
}

/// What to replay and how to show it: start from [`ReplayOptions::default`] and set
/// fields.
///
/// The server sends only the subject that [`ReplayOptions::subject_prefix`], the
/// systems and kinds (of [`RecordFilter`] and [`ReplayOptions::topics`]) and the
/// loggers allow, when one subject says it: `--system P --kind L` reads
/// `distlog.P.L.>`, and `--logger shop.` (the plain-text prefix) reads
/// `distlog.*.*.shop.>`. `--logger shop` takes `shop` itself as well as `shop.orders`,
/// which takes two subjects (`shop` and `shop.>`); a server takes one filter subject
/// for certain (2.9 takes no more), so that logger is filtered here only.
///
/// ```
/// use distlogd::replay::{ReplayOptions, Start};
/// let mut options = ReplayOptions::default();
/// options.servers.push("nats://127.0.0.1:4222".into());
/// options.start = Start::Since("2h".parse().unwrap());
/// options.filter.tasks.push("4f2c".into());
/// options.tree = true;
/// assert_eq!(options.stream, "DISTLOG");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReplayOptions {
    /// NATS server URLs (any of a cluster's).
    pub servers: Vec<String>,
    /// The stream the `nats` sink writes (`DISTLOG` by default).
    pub stream: String,
    /// The sink's subject prefix (`distlog` by default), for narrowing on the server.
    pub subject_prefix: String,
    /// Where to begin.
    pub start: Start,
    /// Keep showing new records once the stored ones are shown.
    pub follow: bool,
    /// Topic prefixes (`P`, `PL`, `PLJ` ...) as `distlog tail` subscribes to them;
    /// empty takes every topic.
    pub topics: Vec<String>,
    /// Level, logger, task, system and kind filters.
    pub filter: RecordFilter,
    /// Group by task and draw the tree at the end instead of printing records.
    pub tree: bool,
    /// Print JSON lines instead of readable lines.
    pub jsonl: bool,
    /// Colors.
    pub color: Color,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            servers: Vec::new(),
            stream: "DISTLOG".into(),
            subject_prefix: "distlog".into(),
            start: Start::All,
            follow: false,
            topics: Vec::new(),
            filter: RecordFilter::default(),
            tree: false,
            jsonl: false,
            color: Color::Auto,
        }
    }
}

/// Why a replay failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// No server URL was given.
    NoServer,
    /// A server URL does not parse.
    Url {
        /// The URL as given.
        url: String,
        /// async-nats's reason.
        source: std::io::Error,
    },
    /// The stream name is not one JetStream allows.
    StreamName(String),
    /// The subject prefix is not a valid subject.
    SubjectPrefix(String),
    /// A topic prefix is not the start of a topic (`P`, `PL`, `PLJ` ...).
    Topic(String),
    /// The start time cannot be used.
    Since(SinceError),
    /// No server could be reached.
    Connect {
        /// The servers, as given.
        servers: String,
        /// async-nats's reason.
        source: async_nats::ConnectError,
    },
    /// The stream does not exist.
    NoStream {
        /// Its name.
        stream: String,
        /// The servers asked, as given.
        servers: String,
    },
    /// The stream could not be looked up (JetStream off, no answer ...).
    Lookup {
        /// Its name.
        stream: String,
        /// async-nats's reason.
        source: jetstream::context::GetStreamError,
    },
    /// The server refused the consumer that reads the stream.
    Consumer {
        /// The stream.
        stream: String,
        /// The subject filter asked for, if any.
        subject: Option<String>,
        /// async-nats's reason.
        source: ConsumerError,
    },
    /// Reading the stream failed on the way.
    Read {
        /// The stream.
        stream: String,
        /// async-nats's reason.
        source: consumer::pull::OrderedError,
    },
    /// The server ended the reading before the replay was done.
    Ended {
        /// The stream.
        stream: String,
    },
    /// Writing the output failed.
    Output(std::io::Error),
    /// The async runtime could not start.
    Runtime(std::io::Error),
}

/// Why the consumer that reads the stream could not start: the server refused it, or
/// its messages could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The consumer was refused.
    Create(stream::ConsumerError),
    /// Its messages could not be started.
    Messages(consumer::StreamError),
}

impl fmt::Display for ConsumerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumerError::Create(e) => write!(f, "{e}"),
            ConsumerError::Messages(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConsumerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConsumerError::Create(e) => Some(e),
            ConsumerError::Messages(e) => Some(e),
        }
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::NoServer => write!(f, "no NATS server to read from"),
            ReplayError::Url { url, source } => write!(f, "bad NATS server URL {url:?}: {source}"),
            ReplayError::StreamName(name) => write!(
                f,
                "bad stream name {name:?}: printable ASCII without spaces, '.', '*', '>', '/' or '\\'"
            ),
            ReplayError::SubjectPrefix(prefix) => write!(
                f,
                "bad subject prefix {prefix:?}: dot-separated tokens of printable ASCII, none empty or a wildcard"
            ),
            ReplayError::Topic(topic) => write!(
                f,
                "bad topic prefix {topic:?}: the system (T, S, P), then the kind (L, P), then the encoding (J, P)"
            ),
            ReplayError::Since(e) => write!(f, "{e}"),
            ReplayError::Connect { servers, source } => {
                write!(f, "cannot connect to NATS at {servers}: {source}")
            }
            ReplayError::NoStream { stream, servers } => {
                write!(f, "no stream {stream:?} on NATS at {servers}")
            }
            ReplayError::Lookup { stream, source } => write!(
                f,
                "cannot look up stream {stream:?}: {source} (is JetStream enabled on the server?)"
            ),
            ReplayError::Consumer {
                stream,
                subject: Some(subject),
                source,
            } => write!(
                f,
                "cannot read stream {stream:?} with subject filter {subject:?} (is --subject-prefix the sink's?): {source}"
            ),
            ReplayError::Consumer {
                stream,
                subject: None,
                source,
            } => write!(f, "cannot read stream {stream:?}: {source}"),
            ReplayError::Read { stream, source } => {
                write!(f, "reading stream {stream:?} failed: {source}")
            }
            ReplayError::Ended { stream } => {
                write!(f, "the server stopped sending stream {stream:?}")
            }
            ReplayError::Output(e) => write!(f, "cannot write output: {e}"),
            ReplayError::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::NoServer
            | ReplayError::StreamName(_)
            | ReplayError::SubjectPrefix(_)
            | ReplayError::Topic(_)
            | ReplayError::NoStream { .. }
            | ReplayError::Ended { .. } => None,
            ReplayError::Url { source, .. } => Some(source),
            ReplayError::Since(e) => Some(e),
            ReplayError::Connect { source, .. } => Some(source),
            ReplayError::Lookup { source, .. } => Some(source),
            ReplayError::Consumer { source, .. } => Some(source),
            ReplayError::Read { source, .. } => Some(source),
            ReplayError::Output(e) | ReplayError::Runtime(e) => Some(e),
        }
    }
}

/// Replays until the stored records are shown (or, with `follow`, until `stop`);
/// writes to `out` (colors only if `color` resolves to on for stdout). Returns how
/// many records passed the filters.
///
/// Every option is checked before anything connects. Announces on stderr
/// `distlog: replaying stream NAME ...` once reading starts and, when every record
/// stored at the start is shown, `distlog: replayed stream NAME up to seq N`, with
/// `; following new records` when following.
///
/// ```no_run
/// use distlogd::replay::{run_replay, ReplayOptions};
/// use std::sync::atomic::AtomicBool;
/// let mut options = ReplayOptions::default();
/// options.servers.push("nats://127.0.0.1:4222".into());
/// options.filter.loggers.push("shop".into());
/// let shown = run_replay(&options, &AtomicBool::new(false), &mut std::io::stdout()).unwrap();
/// eprintln!("{shown} records");
/// ```
pub fn run_replay(
    options: &ReplayOptions,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<u64, ReplayError> {
    let plan = Plan::new(options, SystemTime::now())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ReplayError::Runtime)?;
    runtime.block_on(replay(options, plan, stop, out))
}

/// The options checked and turned into what the server is asked for.
struct Plan {
    servers: Vec<ServerAddr>,
    deliver: consumer::DeliverPolicy,
    subject: Option<String>,
}

impl Plan {
    fn new(options: &ReplayOptions, now: SystemTime) -> Result<Plan, ReplayError> {
        if options.servers.is_empty() {
            return Err(ReplayError::NoServer);
        }
        let servers = options
            .servers
            .iter()
            .map(|url| {
                url.parse::<ServerAddr>()
                    .map_err(|source| ReplayError::Url {
                        url: url.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !valid_stream_name(&options.stream) {
            return Err(ReplayError::StreamName(options.stream.clone()));
        }
        if !valid_prefix(&options.subject_prefix) {
            return Err(ReplayError::SubjectPrefix(options.subject_prefix.clone()));
        }
        if let Some(bad) = options.topics.iter().find(|t| !valid_topic_prefix(t)) {
            return Err(ReplayError::Topic(bad.clone()));
        }
        let deliver = match options.start {
            Start::All => consumer::DeliverPolicy::All,
            Start::Seq(seq) => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: seq.get(),
            },
            Start::Since(since) => consumer::DeliverPolicy::ByStartTime {
                start_time: since.start_time(now).map_err(ReplayError::Since)?,
            },
        };
        Ok(Plan {
            servers,
            deliver,
            subject: filter_subject(&options.subject_prefix, &options.topics, &options.filter),
        })
    }
}

/// Whether `t` can begin a topic: a system letter, a kind letter, an encoding letter,
/// as many as given. The empty prefix takes every topic.
fn valid_topic_prefix(t: &str) -> bool {
    const LETTERS: [&[u8]; 3] = [b"TSP", b"LP", b"JP"];
    t.len() <= 3 && t.bytes().zip(LETTERS).all(|(b, ok)| ok.contains(&b))
}

/// The one subject that the server may send for these filters without losing a
/// record they pass, or `None` when it would be the whole stream's.
fn filter_subject(prefix: &str, topics: &[String], filter: &RecordFilter) -> Option<String> {
    let systems = [System::Test, System::Staging, System::Production];
    let kinds = [Kind::Log, Kind::Performance];
    let pairs: Vec<(u8, u8)> = systems
        .iter()
        .flat_map(|&s| kinds.iter().map(move |&k| (s, k)))
        .filter(|&(s, k)| {
            (filter.systems.is_empty() || filter.systems.contains(&s))
                && (filter.kinds.is_empty() || filter.kinds.contains(&k))
        })
        .map(|(s, k)| (s.letter(), k.letter()))
        .filter(|&(s, k)| {
            topics.is_empty()
                || topics.iter().any(|t| {
                    let t = t.as_bytes();
                    t.first().is_none_or(|&b| b == s) && t.get(1).is_none_or(|&b| b == k)
                })
        })
        .collect();
    let token = |of: fn(&(u8, u8)) -> u8| match pairs.first().map(of) {
        Some(b) if pairs.iter().all(|p| of(p) == b) => char::from(b).to_string(),
        _ => "*".to_string(),
    };
    let (system, kind) = (token(|p| p.0), token(|p| p.1));
    let logger = logger_tokens(&filter.loggers);
    if system == "*" && kind == "*" && logger.is_empty() {
        return None;
    }
    let mut subject = format!("{prefix}.{system}.{kind}");
    for t in logger {
        subject.push('.');
        subject.push_str(&t);
    }
    subject.push_str(".>");
    Some(subject)
}

/// The subject tokens that every logger the prefixes take begins with, each followed
/// by at least one more token: what may stand before a final `>`. Empty when that is
/// nothing.
fn logger_tokens(loggers: &[String]) -> Vec<String> {
    let mut each = Vec::with_capacity(loggers.len());
    for prefix in loggers {
        if prefix.is_empty() {
            return Vec::new();
        }
        // `shop.` takes only names that go on past the dot; `shop` takes `shop` too.
        let (parts, goes_on) = match prefix.strip_suffix('.') {
            Some(head) => (head, true),
            None => (prefix.as_str(), false),
        };
        let tokens: Vec<String> = parts.split('.').map(escape_token).collect();
        each.push((tokens, goes_on));
    }
    let Some(((first, _), rest)) = each.split_first() else {
        return Vec::new();
    };
    let mut common = first.clone();
    for (tokens, _) in rest {
        let same = common
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(same);
    }
    if each
        .iter()
        .all(|(tokens, goes_on)| *goes_on || tokens.len() > common.len())
    {
        common
    } else {
        Vec::new()
    }
}

async fn replay(
    options: &ReplayOptions,
    plan: Plan,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<u64, ReplayError> {
    let servers = options.servers.join(", ");
    let mut connect = async_nats::ConnectOptions::new()
        .name("distlog replay")
        .connection_timeout(CONNECT_TIMEOUT);
    if options.follow {
        // Following is for a long while: a server restart must not end it.
        connect = connect.max_reconnects(None);
    }
    let client = connect
        .connect(plan.servers)
        .await
        .map_err(|source| ReplayError::Connect {
            servers: servers.clone(),
            source,
        })?;
    let js = jetstream::new(client);
    let name = &options.stream;
    let stream = js
        .get_stream(name)
        .await
        .map_err(|source| match source.kind() {
            GetStreamErrorKind::JetStream(e) if e.code() == 404 => ReplayError::NoStream {
                stream: name.clone(),
                servers: servers.clone(),
            },
            _ => ReplayError::Lookup {
                stream: name.clone(),
                source,
            },
        })?;
    // What "everything that was there at the start" means.
    let last = stream.cached_info().state.last_sequence;
    let consumer_error = |source| ReplayError::Consumer {
        stream: name.clone(),
        subject: plan.subject.clone(),
        source,
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: plan.subject.clone().unwrap_or_default(),
            deliver_policy: plan.deliver,
            ..Default::default()
        })
        .await
        .map_err(|e| consumer_error(ConsumerError::Create(e)))?;
    let pending = consumer.cached_info().num_pending;
    eprintln!(
        "distlog: replaying stream {name} ({pending} messages to read{}{})",
        if options.follow {
            ", then following"
        } else {
            ""
        },
        plan.subject
            .as_ref()
            .map(|s| format!(", subject filter {s}"))
            .unwrap_or_default()
    );
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| consumer_error(ConsumerError::Messages(e)))?;

    let mut output = Output::new(&options.filter, options.tree, options.jsonl, options.color);
    let write_err = ReplayError::Output;
    let mut complaints = RateLimit::new(5, Duration::from_secs(10));
    let caught_up = |output: &mut Output, out: &mut dyn Write| {
        output.flush(out)?;
        eprintln!(
            "distlog: replayed stream {name} up to seq {last}{}",
            if options.follow {
                "; following new records"
            } else {
                ""
            }
        );
        Ok::<_, std::io::Error>(())
    };
    // Reading what was stored at the start; then only following, if at all.
    let mut history = pending > 0 && last > 0;
    if !history {
        caught_up(&mut output, out).map_err(write_err)?;
    }
    while (history || options.follow) && !stop.load(Ordering::Relaxed) {
        let message = match tokio::time::timeout(TICK, messages.next()).await {
            Err(_) => {
                output.flush(out).map_err(write_err)?;
                continue;
            }
            Ok(None) => {
                return Err(ReplayError::Ended {
                    stream: name.clone(),
                })
            }
            Ok(Some(Err(source))) if !options.follow => {
                return Err(ReplayError::Read {
                    stream: name.clone(),
                    source,
                })
            }
            Ok(Some(Err(e))) => {
                // The ordered consumer makes itself anew after this (a server restart,
                // a missed heartbeat): say so and go on following.
                if let Some(held) = complaints.check() {
                    eprintln!(
                        "distlog: reading stream {name}: {e}; going on{}",
                        held_note(held)
                    );
                }
                continue;
            }
            Ok(Some(Ok(m))) => m,
        };
        let Ok(info) = message.info() else {
            output.skip(
                "no JetStream metadata",
                &"a message without a stream sequence",
            );
            continue;
        };
        let (seq, left) = (info.stream_sequence, info.pending);
        if history && seq > last {
            // Stored after the start: not history, shown only when following.
            history = false;
            caught_up(&mut output, out).map_err(write_err)?;
            if !options.follow {
                break;
            }
        }
        show(&mut output, options, &message, seq, out).map_err(write_err)?;
        if history && (seq >= last || left == 0) {
            history = false;
            caught_up(&mut output, out).map_err(write_err)?;
        }
    }
    output.finish(out).map_err(write_err)
}

/// Shows one stored message as `distlog tail` would show it arriving.
fn show(
    output: &mut Output,
    options: &ReplayOptions,
    message: &jetstream::Message,
    seq: u64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let topic = message
        .headers
        .as_ref()
        .and_then(|h| h.get(TOPIC_HEADER))
        .map(|v| v.as_str().as_bytes());
    let Some(topic) = topic else {
        output.skip(
            "no topic",
            &format_args!("message {seq} has no {TOPIC_HEADER} header"),
        );
        return Ok(());
    };
    if !options.topics.is_empty()
        && !options
            .topics
            .iter()
            .any(|t| topic.starts_with(t.as_bytes()))
    {
        return Ok(());
    }
    output.message(&[topic, &message.payload], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(
        topics: &[&str],
        systems: &[System],
        kinds: &[Kind],
        loggers: &[&str],
    ) -> Option<String> {
        let filter = RecordFilter {
            systems: systems.to_vec(),
            kinds: kinds.to_vec(),
            loggers: loggers.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let topics: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        filter_subject("distlog", &topics, &filter)
    }

    #[test]
    fn narrows_only_as_far_as_one_subject_holds_every_record_that_passes() {
        use Kind::*;
        use System::*;
        assert_eq!(subject(&[], &[], &[], &[]), None);
        assert_eq!(subject(&[""], &[], &[], &[]), None);
        assert_eq!(
            subject(&[], &[Production], &[Log], &[]).as_deref(),
            Some("distlog.P.L.>")
        );
        assert_eq!(
            subject(&["PL"], &[], &[], &[]).as_deref(),
            Some("distlog.P.L.>")
        );
        assert_eq!(
            subject(&["PLJ", "PLP"], &[], &[], &[]).as_deref(),
            Some("distlog.P.L.>")
        );
        assert_eq!(
            subject(&["P", "SL"], &[], &[Log], &[]).as_deref(),
            Some("distlog.*.L.>")
        );
        assert_eq!(
            subject(&["T"], &[], &[], &[]).as_deref(),
            Some("distlog.T.*.>")
        );
        assert_eq!(subject(&["P", "S"], &[], &[], &[]), None);
        assert_eq!(
            subject(&[], &[Test, Staging], &[Performance], &[]).as_deref(),
            Some("distlog.*.P.>")
        );
        // `shop` is `shop` or `shop.>`: no one subject below `>` holds both.
        assert_eq!(subject(&[], &[], &[], &["shop"]), None);
        assert_eq!(
            subject(&[], &[], &[], &["shop."]).as_deref(),
            Some("distlog.*.*.shop.>")
        );
        assert_eq!(
            subject(&[], &[], &[], &["shop.orders", "shop.cart"]).as_deref(),
            Some("distlog.*.*.shop.>")
        );
        assert_eq!(subject(&[], &[], &[], &["shop.orders", "shop"]), None);
        assert_eq!(
            subject(&[], &[], &[], &["shop.", "shop.a"]).as_deref(),
            Some("distlog.*.*.shop.>")
        );
        assert_eq!(subject(&[], &[], &[], &["shop.", "web."]), None);
        assert_eq!(subject(&[], &[], &[], &["shop.", ""]), None);
        assert_eq!(
            subject(&[], &[Production], &[], &["a b.c*."]).as_deref(),
            Some("distlog.P.*.a%20b.c%2A.>")
        );
        assert_eq!(
            subject(&[], &[], &[], &[".x."]).as_deref(),
            Some("distlog.*.*.%.x.>")
        );
    }

    #[test]
    fn bad_options_are_refused_before_connecting() {
        let now = SystemTime::now();
        let mut o = ReplayOptions::default();
        assert!(matches!(Plan::new(&o, now), Err(ReplayError::NoServer)));
        o.servers = vec!["nats://127.0.0.1:4222".into(), "nats://[::1".into()];
        let e = Plan::new(&o, now).err().expect("bad url");
        assert!(e.to_string().contains("\"nats://[::1\""), "{e}");
        o.servers.pop();
        o.stream = "a.b".into();
        assert!(matches!(Plan::new(&o, now), Err(ReplayError::StreamName(s)) if s == "a.b"));
        o.stream = "DISTLOG".into();
        o.subject_prefix = "logs.>".into();
        assert!(matches!(
            Plan::new(&o, now),
            Err(ReplayError::SubjectPrefix(_))
        ));
        o.subject_prefix = "distlog".into();
        o.topics = vec!["PL".into(), "PX".into()];
        assert!(matches!(Plan::new(&o, now), Err(ReplayError::Topic(t)) if t == "PX"));
        o.topics = vec!["PLJ".into(), "".into(), "TPP".into()];
        o.start = Start::Since(Since::Ago(Duration::from_secs(u64::MAX)));
        assert!(matches!(Plan::new(&o, now), Err(ReplayError::Since(_))));
        o.start = Start::Since("1h".parse().expect("a span"));
        assert!(Plan::new(&o, now).is_ok());
    }
}
