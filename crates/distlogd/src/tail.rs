//! `distlog tail`: subscribe to a collector's PUB endpoint and show the records.
//!
//! The SUB socket filters by topic prefix on the publisher's side (`P` all production
//! traffic, `PL` production log records, `PLJ` those in JSON); level, logger and task
//! filters are applied here. Records print as readable lines, or with `tree` are
//! grouped into a [`TaskTree`] drawn when the stream ends (after `count` records, after
//! `duration`, or on SIGINT/SIGTERM).
//!
//! `distlog replay` prints through the same output path (decoding, filter, lines or
//! tree), so that a record replayed from JetStream looks as it did tailed.

use super::filter::RecordFilter;
use super::format::{write_jsonl, write_pretty, Color};
use super::stats::{held_note, RateLimit};
use super::tree::TaskTree;
use crate::runtime::{block_on, timeout};
use distlog::serialize::{decode_message, Limits};
use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use zeromq::{Socket, SocketRecv, SubSocket};

/// What to tail and how to show it: start from [`TailOptions::default`] and set fields.
///
/// ```
/// use distlogd::tail::TailOptions;
/// let mut options = TailOptions::default();
/// options.connect.push("tcp://127.0.0.1:5011".into());
/// options.topics.push("PL".into());
/// options.filter.min_level = Some(30);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TailOptions {
    /// PUB endpoints to connect to.
    pub connect: Vec<String>,
    /// Topic prefixes to subscribe to; empty subscribes to everything.
    pub topics: Vec<String>,
    /// Level, logger and task filters (system and kind too, though topics do that
    /// cheaper).
    pub filter: RecordFilter,
    /// Group by task and draw the tree at the end instead of printing records.
    pub tree: bool,
    /// Print JSON lines instead of readable lines.
    pub jsonl: bool,
    /// Stop after this many records that pass the filter.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Colors.
    pub color: Color,
    /// CURVE: the publisher's public key and this client's key pair, for a
    /// `distlogd --curve-secret` publish socket; `None` speaks NULL.
    ///
    /// ```
    /// use distlog::curve::CurveKeyPair;
    /// let server = CurveKeyPair::generate().unwrap().public;
    /// let mut options = distlogd::tail::TailOptions::default();
    /// options.curve = Some((server, CurveKeyPair::generate().unwrap()));
    /// ```
    pub curve: Option<(distlog::curve::CurvePublicKey, distlog::curve::CurveKeyPair)>,
}

/// Why tailing failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum TailError {
    /// Nothing to connect to.
    NoEndpoint,
    /// Connecting or subscribing failed.
    Connect {
        /// The endpoint (all of them, when subscribing failed).
        endpoint: String,
        /// Why.
        source: zeromq::ZmqError,
    },
    /// Writing the output failed.
    Output(std::io::Error),
    /// The async runtime for the socket could not start.
    Runtime(std::io::Error),
}

impl fmt::Display for TailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailError::NoEndpoint => write!(f, "no endpoint to connect to"),
            TailError::Connect { endpoint, source } => {
                write!(f, "cannot connect to {endpoint}: {source}")
            }
            TailError::Output(e) => write!(f, "cannot write output: {e}"),
            TailError::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
        }
    }
}

impl std::error::Error for TailError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TailError::NoEndpoint => None,
            TailError::Connect { source, .. } => Some(source),
            TailError::Output(e) | TailError::Runtime(e) => Some(e),
        }
    }
}

/// Tails until `count`, `duration` or `stop`; writes to `out` (colors only if
/// `color` resolves to on for stdout). Returns how many records passed the filter.
///
/// Announces on stderr `distlog: connected to ENDPOINT` once subscribed, and
/// `distlog: receiving` when the first message arrives (whether or not it passes the
/// filters), so scripts know when the stream has begun.
pub fn run_tail(
    options: &TailOptions,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<u64, TailError> {
    if options.connect.is_empty() {
        return Err(TailError::NoEndpoint);
    }
    block_on(tail(options, stop, out)).map_err(TailError::Runtime)?
}

async fn tail(
    options: &TailOptions,
    stop: &AtomicBool,
    out: &mut dyn Write,
) -> Result<u64, TailError> {
    // A hostile publisher must not make zeromq reserve an announced 2^50-byte frame.
    let mut zmq_options = zeromq::SocketOptions::default();
    zmq_options.max_frame_size(crate::config::DEFAULT_MAX_BODY_BYTES * 16);
    if let Some((server, keys)) = &options.curve {
        zmq_options.curve_client(zeromq::curve::CurveClient::new(*server, keys.clone()));
    }
    let mut socket = SubSocket::with_options(zmq_options);
    let topics: Vec<&str> = if options.topics.is_empty() {
        vec![""]
    } else {
        options.topics.iter().map(String::as_str).collect()
    };
    for endpoint in &options.connect {
        socket
            .connect(endpoint)
            .await
            .map_err(|source| TailError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?;
    }
    for topic in &topics {
        socket
            .subscribe(topic)
            .await
            .map_err(|source| TailError::Connect {
                endpoint: options.connect.join(", "),
                source,
            })?;
    }
    for endpoint in &options.connect {
        eprintln!("distlog: connected to {endpoint}");
    }

    let started = Instant::now();
    let mut output = Output::new(&options.filter, options.tree, options.jsonl, options.color);
    let mut first = true;
    let mut bad = RateLimit::new(10, Duration::from_secs(1));
    let write_err = TailError::Output;
    loop {
        if stop.load(Ordering::Relaxed) || options.count.is_some_and(|n| output.shown() >= n) {
            break;
        }
        let mut wait = Duration::from_millis(100);
        if let Some(d) = options.duration {
            match d.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => wait = wait.min(left),
                _ => break,
            }
        }
        let message = match timeout(wait, socket.recv()).await {
            None => {
                output.flush(out).map_err(write_err)?;
                continue;
            }
            Some(Err(e)) => {
                if let Some(held) = bad.check() {
                    eprintln!("distlog: transport error: {e}{}", held_note(held));
                }
                continue;
            }
            Some(Ok(m)) => m,
        };
        if first {
            eprintln!("distlog: receiving");
            first = false;
        }
        let frames: Vec<&[u8]> = message.iter().map(|f| f.as_ref()).collect();
        output.message(&frames, out).map_err(write_err)?;
    }
    let shown = output.finish(out).map_err(write_err)?;
    drop(socket);
    Ok(shown)
}

/// What `distlog tail` and `distlog replay` share from a message's frames to the
/// output: decoding, the record filter, and readable lines, JSON lines or the task
/// tree, so that both print the same for the same records.
pub(crate) struct Output<'a> {
    filter: &'a RecordFilter,
    /// `Some` with `tree`: records are grouped, and drawn by [`Output::finish`].
    tree: Option<TaskTree>,
    jsonl: bool,
    color: bool,
    limits: Limits,
    buf: Vec<u8>,
    shown: u64,
    /// Undecodable messages are reported, but a flood of them must not flood stderr.
    bad: RateLimit,
}

impl<'a> Output<'a> {
    /// Colors, when `color` resolves to on for stdout, go to the readable format and
    /// the tree, never into JSON lines.
    pub(crate) fn new(filter: &'a RecordFilter, tree: bool, jsonl: bool, color: Color) -> Self {
        Output {
            filter,
            tree: tree.then(TaskTree::default),
            jsonl,
            color: !jsonl && color.for_stdout(),
            limits: Limits::default(),
            buf: Vec::with_capacity(64 * 1024),
            shown: 0,
            bad: RateLimit::new(10, Duration::from_secs(1)),
        }
    }

    /// Records that passed the filter so far.
    pub(crate) fn shown(&self) -> u64 {
        self.shown
    }

    /// Takes one `[topic, body]` message: skipped (said on stderr, rate-limited) when
    /// it does not decode, else shown if the filter passes it. Output is buffered;
    /// it goes to `out` in large writes.
    pub(crate) fn message(&mut self, frames: &[&[u8]], out: &mut dyn Write) -> io::Result<()> {
        let (topic, record) = match decode_message(frames, &self.limits) {
            Ok(ok) => ok,
            Err(e) => {
                self.skip(e.reason(), &e);
                return Ok(());
            }
        };
        if !self.filter.matches(topic, &record) {
            return Ok(());
        }
        self.shown += 1;
        match &mut self.tree {
            Some(tree) => tree.add(&record),
            None if self.jsonl => write_jsonl(&mut self.buf, topic, &record),
            None => write_pretty(&mut self.buf, &record, self.color),
        }
        if self.buf.len() >= 60 * 1024 {
            out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Says on stderr (rate-limited) that a message was skipped, and why.
    pub(crate) fn skip(&mut self, reason: &str, what: &dyn fmt::Display) {
        if let Some(held) = self.bad.check() {
            eprintln!(
                "distlog: skipped message ({reason}): {what}{}",
                held_note(held)
            );
        }
    }

    /// Writes what is buffered and flushes `out`: when the input goes idle.
    pub(crate) fn flush(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if !self.buf.is_empty() {
            out.write_all(&self.buf)?;
            self.buf.clear();
        }
        out.flush()
    }

    /// Draws the tree (with `tree`) and flushes; how many records were shown.
    pub(crate) fn finish(mut self, out: &mut dyn Write) -> io::Result<u64> {
        if let Some(tree) = &self.tree {
            tree.render_styled(&mut self.buf, self.color);
        }
        self.flush(out)?;
        Ok(self.shown)
    }
}
