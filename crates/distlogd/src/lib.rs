//! The collector behind `distlogd`: receive records on PULL sockets, filter them, fan
//! them out to stdout, rotating files and a PUB socket; and the `distlog tail` client.
//!
//! Differences from Python's `distlogd`, on purpose:
//! - it binds loopback (`tcp://127.0.0.1:5010`) by default, not all interfaces;
//! - pickle bodies are decoded as data only ([`distlog::serialize::pickle`]); a pickle
//!   that would import or call anything is rejected, never run;
//! - a malformed or hostile message is counted and reported on stderr (rate-limited),
//!   and never stops the collector; bodies past [`Config::max_body_bytes`] are refused
//!   before decoding;
//! - it runs until SIGINT or SIGTERM, then drains, flushes and exits 0.
//!
//! Records are kept exactly as received: the decoders keep key order, unknown keys,
//! big integers and `NaN`, and the JSON encoder writes what Python's `json.dumps` would.
//! The PUB sink re-publishes the original `[topic, body]` frames untouched.
//!
//! # Threads and memory
//! The calling thread runs the sockets: it receives, checks and decodes each message,
//! and re-publishes it. Decoded records go in batches over a bounded channel to one
//! sink thread that filters, formats and writes them through large buffers, flushed
//! whenever the input goes idle. When the sinks fall behind, the channel fills and the
//! receive loop waits, so the PULL socket stops reading and TCP pushes back on the
//! senders: memory stays bounded under any flood.
//!
//! ```no_run
//! use distlogd::Config;
//! use distlogd::config::{OutputFormat, SinkConfig, SinkKind};
//! use std::sync::atomic::AtomicBool;
//!
//! let mut config = Config::default();
//! config.sinks.push(SinkConfig::new(SinkKind::Stdout {
//!     format: OutputFormat::Jsonl,
//!     color: Default::default(),
//! }));
//! static STOP: AtomicBool = AtomicBool::new(false);
//! let stats = distlogd::run(&config, &STOP).unwrap();
//! eprintln!("{stats}");
//! ```

pub mod config;
mod curve;
pub mod filter;
pub mod format;
pub mod keygen;
mod runtime;
pub mod signal;
mod sink;
pub mod stats;
pub mod tail;
pub mod tree;

pub use config::{Config, ConfigError};
pub use filter::RecordFilter;
pub use stats::CollectorStats;

use crate::runtime::{block_on_here, sleep, timeout};
use bytes::Bytes;
use config::SinkKind;
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError};
use distlog::serialize::{decode_message, decode_with, json, MessageError};
use distlog::topic::Encoding;
use distlog::topic::Topic;
use distlog::Record;
use sink::Sinks;
use stats::{held_note, RateLimit};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use zeromq::{PubSocket, PullSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

/// Records per batch handed from the receive loop to the sink thread.
const BATCH: usize = 256;
/// How long the receive loop waits for a message before looking at the clock and flag.
const TICK: Duration = Duration::from_millis(100);

/// Why the collector could not start or had to stop.
#[derive(Debug)]
#[non_exhaustive]
pub enum CollectorError {
    /// The configuration is not usable.
    Config(ConfigError),
    /// An endpoint could not be bound.
    Bind {
        /// The endpoint as configured.
        endpoint: String,
        /// The transport's reason.
        source: zeromq::ZmqError,
    },
    /// A file sink could not be opened.
    Open {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The sink thread could not be started.
    SinkThreadStart(std::io::Error),
    /// The sink thread died.
    SinkThread(&'static str),
    /// The async runtime for the sockets could not start.
    Runtime(std::io::Error),
    /// The CURVE secret key or allow file could not be read.
    Curve(distlog::curve::KeyFileError),
}

impl fmt::Display for CollectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CollectorError::Config(e) => write!(f, "{e}"),
            CollectorError::Bind { endpoint, source } => {
                write!(f, "cannot bind {endpoint}: {source}")
            }
            CollectorError::Open { path, source } => {
                write!(f, "cannot open {}: {source}", path.display())
            }
            CollectorError::SinkThreadStart(e) => write!(f, "cannot start the sink thread: {e}"),
            CollectorError::SinkThread(why) => write!(f, "sink thread failed: {why}"),
            CollectorError::Runtime(e) => write!(f, "cannot start the async runtime: {e}"),
            CollectorError::Curve(e) => write!(f, "CURVE: {e}"),
        }
    }
}

impl std::error::Error for CollectorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CollectorError::Config(e) => Some(e),
            CollectorError::Bind { source, .. } => Some(source),
            CollectorError::Open { source, .. } => Some(source),
            CollectorError::SinkThreadStart(e) | CollectorError::Runtime(e) => Some(e),
            CollectorError::SinkThread(_) => None,
            CollectorError::Curve(e) => Some(e),
        }
    }
}

impl From<ConfigError> for CollectorError {
    fn from(e: ConfigError) -> Self {
        CollectorError::Config(e)
    }
}

/// One accepted record on its way to the sink thread.
enum Entry {
    /// Decoded, for sinks that look inside it.
    Record(Topic, Record),
    /// A canonical JSON body, copied to JSON-lines sinks as it came.
    Body(Topic, Bytes),
}

type Batch = Vec<Entry>;

/// Runs the collector until `shutdown` becomes true, then drains the input, flushes
/// every sink and returns the final counts (also printed on stderr).
///
/// Each bound endpoint is announced on stderr as `distlogd: listening on ENDPOINT`
/// (PULL) or `distlogd: publishing on ENDPOINT` (PUB), with the port resolved, so an
/// endpoint with port 0 can be used and discovered.
pub fn run(config: &Config, shutdown: &AtomicBool) -> Result<CollectorStats, CollectorError> {
    run_with_reload(config, shutdown, &AtomicBool::new(false))
}

/// [`run`], and whenever `reload` becomes true (`distlogd` sets it on SIGHUP, see
/// [`signal::reload_on_sighup`]) clears it and rereads the CURVE allow file
/// ([`config::CurveConfig::allow_file`]). A file that cannot be read or holds a bad
/// key leaves the keys allowed before in force; stderr says which happened.
///
/// ```no_run
/// use distlogd::config::{Config, CurveConfig};
/// let mut config = Config::default();
/// let mut curve = CurveConfig::new("collector.key".into());
/// curve.allow_file = Some("allowed".into());
/// config.curve = Some(curve);
/// let stop = distlogd::signal::shutdown_on_signals().unwrap();
/// let reload = distlogd::signal::reload_on_sighup().unwrap();
/// let stats = distlogd::run_with_reload(&config, stop, reload).unwrap();
/// eprintln!("{stats}");
/// ```
pub fn run_with_reload(
    config: &Config,
    shutdown: &AtomicBool,
    reload: &AtomicBool,
) -> Result<CollectorStats, CollectorError> {
    config.validate()?;
    // Keys first: a bad key file should not leave behind a file sink just opened.
    let curve = config
        .curve
        .as_ref()
        .map(curve::Curve::load)
        .transpose()
        .map_err(CollectorError::Curve)?;
    let sinks = Sinks::open(&config.sinks)
        .map_err(|(path, source)| CollectorError::Open { path, source })?;
    // When nothing looks inside records, JSON bodies are checked, not decoded, and
    // canonical ones are copied to the output: the same verdicts and bytes, for a
    // fraction of the work.
    let check_only = !sinks.need_records()
        && config
            .sinks
            .iter()
            .all(|s| !matches!(s.kind, SinkKind::Publish { .. }) || !s.filter.needs_record());
    let (tx, sink_thread) = if sinks.is_empty() {
        (None, None)
    } else {
        let (tx, rx) = crossbeam_channel::bounded::<Batch>(config.channel_batches);
        let (back_tx, back_rx) = crossbeam_channel::bounded::<Batch>(config.channel_batches + 1);
        let handle = std::thread::Builder::new()
            .name("distlogd-sinks".into())
            .spawn(move || sink_loop(sinks, rx, back_tx))
            .map_err(CollectorError::SinkThreadStart)?;
        (Some((tx, back_rx)), Some(handle))
    };
    let result = block_on_here(receive(config, shutdown, reload, curve, tx, check_only))
        .map_err(CollectorError::Runtime)
        .and_then(|r| r);
    let sink_errors = match sink_thread.map(|h| h.join()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(CollectorError::SinkThread("it panicked")),
    };
    let mut stats = result?;
    stats.sink_errors += sink_errors;
    eprintln!("distlogd: final stats {stats}");
    Ok(stats)
}

/// The sink thread: write batches as they come, flush when the input goes quiet.
///
/// Written batches go back to the receive loop, which frees the records: memory is
/// then allocated and freed on one thread, which keeps the allocator from contending
/// on its locks (a third of the time in a flood otherwise).
fn sink_loop(mut sinks: Sinks, rx: Receiver<Batch>, back: Sender<Batch>) -> u64 {
    let idle = Duration::from_millis(2);
    loop {
        let batch = match rx.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => match rx.recv_timeout(idle) {
                Ok(b) => b,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    sinks.flush();
                    match rx.recv() {
                        Ok(b) => b,
                        Err(_) => break,
                    }
                }
            },
        };
        for entry in &batch {
            match entry {
                Entry::Record(topic, record) => sinks.write(*topic, record),
                Entry::Body(topic, body) => sinks.write_body(*topic, body),
            }
        }
        // If the way back is full, free them here after all.
        let _ = back.try_send(batch);
    }
    sinks.flush();
    sinks.errors()
}

/// Lets the executor run other tasks once (zeromq's accept and PUB fan-out tasks share
/// the thread under tokio's current-thread runtime).
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// State of the receive loop.
struct Receiving<'a> {
    config: &'a Config,
    stats: CollectorStats,
    rejects: RateLimit,
    transport: RateLimit,
    batch: Batch,
    tx: Option<Sender<Batch>>,
    /// Batches the sink thread has written, to free and reuse here.
    back: Option<Receiver<Batch>>,
    pubs: Vec<(PubSocket, &'a filter::RecordFilter)>,
    /// CURVE on every socket, if configured.
    curve: Option<curve::Curve>,
    /// Set (by SIGHUP in `distlogd`) to reread the allow file.
    reload: &'a AtomicBool,
    /// Check JSON bodies instead of decoding them: no filter or format needs records.
    check_only: bool,
    last_stats: Instant,
    last_received: u64,
}

async fn receive<'a>(
    config: &'a Config,
    shutdown: &AtomicBool,
    reload: &'a AtomicBool,
    curve: Option<curve::Curve>,
    channels: Option<(Sender<Batch>, Receiver<Batch>)>,
    check_only: bool,
) -> Result<CollectorStats, CollectorError> {
    let (tx, back) = match channels {
        Some((tx, back)) => (Some(tx), Some(back)),
        None => (None, None),
    };
    // A peer must not make zeromq reserve an absurd announced frame (2^50 bytes
    // aborted the process): past this bound the connection is dropped before any
    // memory is set aside. Bodies between max_body_bytes and the bound still arrive
    // and are rejected one by one as `oversize`, keeping the connection.
    let mut options = zeromq::SocketOptions::default();
    options.max_frame_size(config.max_body_bytes.saturating_mul(4).max(16 << 20));
    if let Some(c) = &curve {
        c.apply(&mut options);
        eprintln!("distlogd: {}", c.describe());
    }
    let mut pull = PullSocket::with_options(options);
    for endpoint in &config.inputs {
        let bound = pull
            .bind(endpoint)
            .await
            .map_err(|source| CollectorError::Bind {
                endpoint: endpoint.clone(),
                source,
            })?;
        eprintln!("distlogd: listening on {bound}");
    }
    let mut pubs = Vec::new();
    for sink in &config.sinks {
        if let SinkKind::Publish { endpoint } = &sink.kind {
            // A publish socket hands out records: with CURVE, only to clients that
            // pass the same handshake as senders do.
            let mut pub_options = zeromq::SocketOptions::default();
            if let Some(c) = &curve {
                c.apply(&mut pub_options);
            }
            let mut socket = PubSocket::with_options(pub_options);
            let bound = socket
                .bind(endpoint)
                .await
                .map_err(|source| CollectorError::Bind {
                    endpoint: endpoint.clone(),
                    source,
                })?;
            eprintln!("distlogd: publishing on {bound}");
            pubs.push((socket, &sink.filter));
        }
    }
    let mut r = Receiving {
        config,
        stats: CollectorStats::default(),
        rejects: RateLimit::new(10, Duration::from_secs(1)),
        transport: RateLimit::new(10, Duration::from_secs(1)),
        batch: Vec::with_capacity(BATCH),
        tx,
        back,
        pubs,
        curve,
        reload,
        check_only,
        last_stats: Instant::now(),
        last_received: 0,
    };

    let mut drain_start: Option<Instant> = None;
    let mut last_message = Instant::now();
    let mut ready_in_a_row = 0usize;
    let mut failed_in_a_row = 0u32;
    loop {
        let received = match pull.try_recv() {
            Some(m) => {
                ready_in_a_row += 1;
                if ready_in_a_row.is_multiple_of(BATCH) {
                    r.hand_over(drain_start.is_some())?;
                    r.maybe_stats();
                    r.maybe_reload();
                    YieldNow(false).await;
                }
                Some(m)
            }
            None => {
                if ready_in_a_row > 0 {
                    // The clock is read once per run of ready messages, not per message.
                    last_message = Instant::now();
                }
                ready_in_a_row = 0;
                r.hand_over(drain_start.is_some())?;
                r.maybe_stats();
                r.maybe_reload();
                if drain_start.is_none() && shutdown.load(Ordering::Relaxed) {
                    eprintln!("distlogd: shutting down: draining input and flushing sinks");
                    drain_start = Some(Instant::now());
                }
                let wait = match drain_start {
                    Some(start) => {
                        let now = Instant::now();
                        let quiet = now.saturating_duration_since(last_message.max(start));
                        if quiet >= config.drain_quiet
                            || now.saturating_duration_since(start) >= config.drain_max
                        {
                            break;
                        }
                        (config.drain_quiet - quiet).min(TICK)
                    }
                    None => TICK,
                };
                let got = timeout(wait, pull.recv()).await;
                if matches!(got, Some(Ok(_))) {
                    last_message = Instant::now();
                }
                got
            }
        };
        match received {
            None => {}
            Some(Ok(message)) => {
                failed_in_a_row = 0;
                r.take(message).await;
            }
            Some(Err(e)) => {
                r.stats.transport_errors += 1;
                if let Some(held) = r.transport.check() {
                    eprintln!("distlogd: transport error: {e}{}", held_note(held));
                }
                failed_in_a_row += 1;
                if failed_in_a_row > 1 {
                    // Do not spin if the transport keeps failing.
                    sleep(Duration::from_millis(10)).await;
                }
            }
        }
        if drain_start.is_some_and(|s| s.elapsed() >= config.drain_max) {
            break;
        }
    }
    r.hand_over(true)?;
    r.tx = None;
    if !r.pubs.is_empty() {
        // Give the PUB fan-out task a moment to pass on the last records.
        sleep(Duration::from_millis(100)).await;
    }
    for (socket, _) in r.pubs.drain(..) {
        let _ = socket.close().await;
    }
    let _ = pull.close().await;
    r.stats.curve = r.curve.as_ref().map(curve::Curve::counts);
    Ok(r.stats)
}

impl Receiving<'_> {
    /// Checks, decodes, re-publishes and batches one message.
    async fn take(&mut self, message: ZmqMessage) {
        self.stats.received += 1;
        if let (2, Some(body)) = (message.len(), message.get(1)) {
            if body.len() > self.config.max_body_bytes {
                let what = format!(
                    "body of {} bytes exceeds max_body_bytes {}",
                    body.len(),
                    self.config.max_body_bytes
                );
                self.reject(stats::OVERSIZE, &what);
                return;
            }
        }
        let (topic, record) = match self.examine(&message) {
            Ok(ok) => ok,
            Err(e) => {
                self.reject(e.reason(), &e.to_string());
                return;
            }
        };
        self.stats.accepted += 1;
        let last = self.pubs.len().wrapping_sub(1);
        // The body goes to the sinks as it came when the record was only checked.
        let body = match (&self.tx, &record) {
            (Some(_), None) => message.get(1).cloned(),
            _ => None,
        };
        let mut message = Some(message);
        for (i, (socket, filter)) in self.pubs.iter_mut().enumerate() {
            let passes = match &record {
                Some(r) => filter.matches(topic, r),
                None => filter.matches_topic(topic),
            };
            if !passes {
                continue;
            }
            let m = if i == last {
                message.take()
            } else {
                message.clone()
            };
            if let Some(m) = m {
                // PUB never blocks: a slow subscriber loses messages, not the collector.
                let _ = socket.send(m).await;
            }
        }
        if self.tx.is_none() {
            return;
        }
        match (record, body) {
            (Some(record), _) => self.batch.push(Entry::Record(topic, record)),
            (None, Some(body)) => self.batch.push(Entry::Body(topic, body)),
            (None, None) => {}
        }
    }

    /// Validates a message: its topic, and its body checked (a canonical JSON body,
    /// when nothing needs the record) or decoded.
    fn examine(&self, message: &ZmqMessage) -> Result<(Topic, Option<Record>), MessageError> {
        let limits = &self.config.limits;
        let (Some(topic), Some(body), 2) = (message.get(0), message.get(1), message.len()) else {
            let frames: Vec<&[u8]> = message.iter().map(|f| f.as_ref()).collect();
            return decode_message(&frames, limits).map(|(t, r)| (t, Some(r)));
        };
        let topic = Topic::parse(topic).map_err(MessageError::Topic)?;
        if self.check_only && topic.encoding == Encoding::Json {
            if self.tx.is_none() {
                // Nothing is written: the verdict is all that is needed.
                json::validate_record(body, limits).map_err(MessageError::Body)?;
                return Ok((topic, None));
            }
            let checked = json::check_record(body, limits).map_err(MessageError::Body)?;
            if checked.canonical {
                return Ok((topic, None));
            }
        }
        let record = decode_with(body, topic.encoding, limits).map_err(MessageError::Body)?;
        Ok((topic, Some(record)))
    }

    fn reject(&mut self, reason: &'static str, what: &str) {
        self.stats.reject(reason);
        if let Some(held) = self.rejects.check() {
            eprintln!(
                "distlogd: rejected message ({reason}): {what}{}",
                held_note(held)
            );
        }
    }

    /// Sends the pending batch to the sink thread, waiting while its channel is full
    /// (that wait is the backpressure). When `draining`, gives up after `drain_max`
    /// so a stuck sink cannot keep the process from exiting.
    fn hand_over(&mut self, draining: bool) -> Result<(), CollectorError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let Some(tx) = &self.tx else {
            self.batch.clear();
            return Ok(());
        };
        // Free the records of written batches, keeping one allocation for the next.
        let mut spare = None;
        if let Some(back) = &self.back {
            while let Ok(mut done) = back.try_recv() {
                done.clear();
                spare = Some(done);
            }
        }
        let next = spare.unwrap_or_else(|| Vec::with_capacity(BATCH));
        let mut batch = std::mem::replace(&mut self.batch, next);
        let started = Instant::now();
        loop {
            match tx.send_timeout(batch, TICK) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(b)) => {
                    if draining && started.elapsed() >= self.config.drain_max {
                        self.stats.sink_errors += b.len() as u64;
                        eprintln!(
                            "distlogd: sinks stuck while shutting down; {} records not written",
                            b.len()
                        );
                        return Ok(());
                    }
                    batch = b;
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    return Err(CollectorError::SinkThread("it stopped"))
                }
            }
        }
    }

    fn maybe_stats(&mut self) {
        let Some(interval) = self.config.stats_interval else {
            return;
        };
        let elapsed = self.last_stats.elapsed();
        if elapsed < interval {
            return;
        }
        self.stats.curve = self.curve.as_ref().map(curve::Curve::counts);
        let rate = (self.stats.received - self.last_received) as f64 / elapsed.as_secs_f64();
        eprintln!("distlogd: stats {} rate={rate:.1}/s", self.stats);
        self.last_stats = Instant::now();
        self.last_received = self.stats.received;
    }

    /// Rereads the CURVE allow file if asked to; a failed reload keeps the old keys.
    fn maybe_reload(&mut self) {
        if !self.reload.swap(false, Ordering::Relaxed) {
            return;
        }
        let Some(curve) = &self.curve else {
            eprintln!("distlogd: reload asked for, but CURVE is off: nothing to reload");
            return;
        };
        match curve.reload() {
            Ok(Some((path, n))) => {
                eprintln!("distlogd: reloaded {}: {n} client keys allowed", path.display())
            }
            Ok(None) => eprintln!(
                "distlogd: reload asked for, but there is no allow file: any client that knows the server key may connect"
            ),
            Err(e) => eprintln!(
                "distlogd: reload failed, keeping the {} client keys allowed before: {e}",
                curve.allowed().unwrap_or(0)
            ),
        }
    }
}
