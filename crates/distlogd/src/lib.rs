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
//! # Acknowledged delivery
//! With [`Config::ack_inputs`], ROUTER sockets take `[header, topic, body]` from
//! producers in acknowledged mode (the README's "Acknowledged delivery", module
//! [`ack`]). Each record goes through the same checks, filters and sinks; a per-producer
//! window drops a record taken before, counting it. Each batch handed to the sink
//! thread has a ticket; once the sink thread has committed (written, flushed and, for
//! files, `fdatasync`ed) every batch up to a ticket, it says so, and the receive loop
//! sends each connection one cumulative acknowledgement for what it carried. The sink
//! thread commits when its channel runs empty, and at least every 5 ms while busy, but
//! only when acknowledged records wait: plain traffic is written as before. A commit
//! that fails is reported too: the connections waiting on it are never acknowledged
//! again, and the window forgets its records, so that the producers' resends, on new
//! connections, are written (see `AckState::on_commit`).
//!
//! # Metrics
//! With [`Config::metrics_bind`], a thread of its own serves Prometheus metrics at
//! `/metrics` (the `distlogd` README lists them). The receive loop and the sink thread
//! keep counting as they do without it, and copy their totals out once per batch.
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

pub mod ack;
pub mod config;
mod curve;
mod dedup;
pub mod filter;
pub mod format;
pub mod keygen;
mod metrics;
#[cfg(feature = "nats")]
pub mod nats;
mod runtime;
pub mod signal;
mod sink;
pub mod stats;
pub mod subject;
pub mod tail;
pub mod tree;

pub use config::{Config, ConfigError};
pub use filter::RecordFilter;
pub use stats::CollectorStats;

use crate::ack::{AckHeader, AckHeaderError, Origin, ProducerId};
use crate::runtime::{block_on_here, sleep, timeout};
use bytes::Bytes;
use config::SinkKind;
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError};
use distlog::serialize::{decode_message, decode_with, json, MessageError};
use distlog::topic::Encoding;
use distlog::topic::Topic;
use distlog::Record;
use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use metrics::Metrics;
use sink::Sinks;
use stats::{held_note, AckCounts, RateLimit};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use zeromq::{
    PubSocket, PullSocket, RouterSocket, Socket, SocketEvent, SocketRecv, SocketSend, ZmqMessage,
    ZmqResult,
};

/// Records per batch handed from the receive loop to the sink thread.
const BATCH: usize = 256;
/// How long the receive loop waits for a message before looking at the clock and flag.
const TICK: Duration = Duration::from_millis(100);
/// While busy, the sink thread commits acknowledged records at least this often: the
/// bound on what a flood adds to a producer's wait for its acknowledgement.
const COMMIT_EVERY: Duration = Duration::from_millis(5);
/// How long sending one acknowledgement may hold up the receive loop; one that does
/// not go out in time is sent with the next, which covers it.
const ACK_SEND_WAIT: Duration = Duration::from_millis(20);
/// Connections with state kept at most; past it those with nothing to acknowledge go.
const MAX_CONNECTIONS: usize = 65_536;

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
    /// The nats sink could not start.
    #[cfg(feature = "nats")]
    Nats(nats::NatsError),
    /// The metrics address could not be bound.
    MetricsBind {
        /// The address as configured.
        addr: String,
        /// The reason.
        source: std::io::Error,
    },
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
            #[cfg(feature = "nats")]
            CollectorError::Nats(e) => write!(f, "nats sink: {e}"),
            CollectorError::MetricsBind { addr, source } => {
                write!(f, "cannot serve metrics on {addr}: {source}")
            }
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
            #[cfg(feature = "nats")]
            CollectorError::Nats(e) => Some(e),
            CollectorError::MetricsBind { source, .. } => Some(source),
        }
    }
}

impl From<ConfigError> for CollectorError {
    fn from(e: ConfigError) -> Self {
        CollectorError::Config(e)
    }
}

/// One accepted record on its way to the sink thread, with where it came from when it
/// came with an acknowledged-delivery header.
enum Entry {
    /// Decoded, for sinks that look inside it; with the body as received when a sink
    /// publishes it (nats).
    Record(Topic, Record, Option<Origin>, Option<Bytes>),
    /// A canonical JSON body, copied to JSON-lines sinks as it came.
    Body(Topic, Bytes, Option<Origin>),
}

/// Records handed to the sink thread together.
struct Batch {
    entries: Vec<Entry>,
    /// Its place in the order of batches, from 1: the sink thread reports the highest
    /// one it has committed.
    ticket: u64,
    /// Whether some record in it awaits an acknowledgement, so it must be committed.
    acked: bool,
}

impl Batch {
    fn new(entries: Vec<Entry>, ticket: u64) -> Batch {
        Batch {
            entries,
            ticket,
            acked: false,
        }
    }
}

/// Runs the collector until `shutdown` becomes true, then drains the input, flushes
/// every sink and returns the final counts (also printed on stderr).
///
/// Each bound endpoint is announced on stderr as `distlogd: listening on ENDPOINT`
/// (PULL) or `distlogd: publishing on ENDPOINT` (PUB), with the port resolved, so an
/// endpoint with port 0 can be used and discovered; so is the metrics address
/// ([`Config::metrics_bind`]), as `distlogd: metrics on http://ADDR/metrics`.
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
    // Served until the sinks are flushed and the final counts are in.
    let metrics = config
        .metrics_bind
        .as_ref()
        .map(|addr| {
            let metrics = Arc::new(Metrics::new(config));
            let server = metrics::Server::start(addr, metrics.clone()).map_err(|source| {
                CollectorError::MetricsBind {
                    addr: addr.clone(),
                    source,
                }
            })?;
            eprintln!("distlogd: metrics on http://{}/metrics", server.addr());
            Ok::<_, CollectorError>((metrics, server))
        })
        .transpose()?;
    let (metrics, _server) = metrics.unzip();
    #[allow(unused_mut)]
    let mut sinks = Sinks::open(&config.sinks, metrics.clone())?;
    let keep_bodies = sinks.has_nats();
    #[cfg(feature = "nats")]
    let nats_stats = sinks.nats_stats();
    // Set once shutdown begins: the nats sink then gives up after drain_max.
    let stopping = Arc::new(AtomicBool::new(false));
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
        // Unbounded but small: at most one message per commit, drained by the
        // receive loop, which it also wakes.
        let (committed_tx, committed_rx) = unbounded::<Committed>();
        #[cfg(feature = "nats")]
        sinks.start_nats(committed_tx.clone(), stopping.clone(), config.drain_max)?;
        let handle = std::thread::Builder::new()
            .name("distlogd-sinks".into())
            .spawn(move || sink_loop(sinks, rx, back_tx, committed_tx))
            .map_err(CollectorError::SinkThreadStart)?;
        (
            Some(Channels {
                tx,
                back: back_rx,
                committed: committed_rx,
            }),
            Some(handle),
        )
    };
    let options = ReceiveOptions {
        check_only,
        keep_bodies,
        stopping: stopping.clone(),
        #[cfg(feature = "nats")]
        nats_stats: nats_stats.clone(),
    };
    let result = block_on_here(receive(
        config, shutdown, reload, curve, tx, options, metrics,
    ))
    .map_err(CollectorError::Runtime)
    .and_then(|r| r);
    // Whatever ended the loop, the nats sink gives up on time.
    stopping.store(true, Ordering::Relaxed);
    let sink_errors = match sink_thread.map(|h| h.join()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(CollectorError::SinkThread("it panicked")),
    };
    let mut stats = result?;
    stats.sink_errors += sink_errors;
    #[cfg(feature = "nats")]
    {
        stats.nats = nats_stats.as_ref().map(nats::NatsStats::snapshot);
    }
    eprintln!("distlogd: final stats {stats}");
    Ok(stats)
}

/// The receive loop's ends of the channels to and from the sink thread.
struct Channels {
    tx: Sender<Batch>,
    /// Written batches, to free and reuse.
    back: Receiver<Batch>,
    /// The outcome of each commit, in order.
    committed: UnboundedReceiver<Committed>,
}

/// What the sink thread says after each commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Committed {
    /// The highest ticket written when it committed.
    ticket: u64,
    /// Whether every write and sync since the last commit succeeded: only then is
    /// every record of the tickets since the last report held. When `false`, the
    /// records of those tickets may or may not be in the file; a later commit that
    /// succeeds says nothing about them (after a failed `fsync` Linux may have
    /// dropped the dirty pages and reports the next `fsync` clean).
    held: bool,
}

/// The sink thread: write batches as they come, flush when the input goes quiet, and
/// commit what awaits an acknowledgement (see the crate docs).
///
/// Written batches go back to the receive loop, which frees the records: memory is
/// then allocated and freed on one thread, which keeps the allocator from contending
/// on its locks (a third of the time in a flood otherwise).
fn sink_loop(
    mut sinks: Sinks,
    rx: Receiver<Batch>,
    back: Sender<Batch>,
    committed: UnboundedSender<Committed>,
) -> u64 {
    let idle = Duration::from_millis(2);
    let mut written = 0u64;
    // Since when acknowledged records have waited for a commit.
    let mut waiting_since: Option<Instant> = None;
    // Failures are reported too, not only left out: the receive loop must learn
    // which tickets are not held, so that no later commit covers them.
    let commit = |sinks: &mut Sinks, written: u64| {
        let held = sinks.commit();
        sinks.publish_metrics(0);
        let report = Committed {
            ticket: written,
            held,
        };
        // With a nats sink the report waits behind the records it covers.
        if let Some(report) = sinks.route_commit(report) {
            // The receive loop is gone only at the very end: nothing to tell then.
            let _ = committed.unbounded_send(report);
        }
    };
    loop {
        let batch = match rx.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                // Nothing more to group with: producers wait on this commit.
                if waiting_since.take().is_some() {
                    commit(&mut sinks, written);
                }
                match rx.recv_timeout(idle) {
                    Ok(b) => b,
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        sinks.flush();
                        sinks.publish_metrics(0);
                        match rx.recv() {
                            Ok(b) => b,
                            Err(_) => break,
                        }
                    }
                }
            }
        };
        for entry in &batch.entries {
            match entry {
                Entry::Record(topic, record, origin, body) => {
                    sinks.write(*topic, record, origin.as_ref(), body.as_ref())
                }
                Entry::Body(topic, body, origin) => sinks.write_body(*topic, body, origin.as_ref()),
            }
        }
        sinks.publish_metrics(batch.entries.len());
        written = batch.ticket;
        if batch.acked {
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= COMMIT_EVERY {
                waiting_since = None;
                commit(&mut sinks, written);
            }
        }
        // If the way back is full, free them here after all.
        let _ = back.try_send(batch);
    }
    if waiting_since.is_some() {
        commit(&mut sinks, written);
    } else {
        sinks.flush();
    }
    sinks.publish_metrics(0);
    sinks.finish()
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
    pubs: Vec<Publish<'a>>,
    /// CURVE on every socket, if configured.
    curve: Option<curve::Curve>,
    /// Set (by SIGHUP in `distlogd`) to reread the allow file.
    reload: &'a AtomicBool,
    /// Check JSON bodies instead of decoding them: no filter or format needs records.
    check_only: bool,
    /// Keep each body as received beside its record, for the nats sink.
    keep_bodies: bool,
    /// The process's shutdown flag: a wait on full sinks gives up after drain_max.
    shutdown: &'a AtomicBool,
    /// Set when shutdown begins, for the nats sink.
    stopping: Arc<AtomicBool>,
    #[cfg(feature = "nats")]
    nats_stats: Option<nats::NatsStats>,
    last_stats: Instant,
    last_received: u64,
    /// The acknowledged inputs' state, when there are any.
    acked: Option<AckState>,
    /// With `--metrics-bind`: where the counts are copied at each hand-over.
    metrics: Option<Arc<Metrics>>,
}

/// A publish sink: its PUB socket, its filter, and what it passed on.
struct Publish<'a> {
    socket: PubSocket,
    filter: &'a filter::RecordFilter,
    /// Its place in the config's sinks, which names it in the metrics.
    index: usize,
    /// Records handed to zeromq, and those zeromq refused.
    written: u64,
    failed: u64,
}

/// One ROUTER connection's records from one producer, not yet all acknowledged.
struct Conn {
    /// The highest seq it carried.
    seq: u64,
    /// What it carried since its last acknowledgement, by the ticket it waits for,
    /// in ticket order (tickets only grow along a connection). Acknowledging the
    /// newest committed entry covers every record before it there, so a producer
    /// that never pauses is acknowledged as commits come, not only once the
    /// pipeline behind a slow sink (JetStream's PubAcks) has gone empty.
    held: VecDeque<Checkpoint>,
    /// Records taken since its last acknowledgement: the sum over `held`.
    unacked: u64,
    /// After an acknowledgement did not go out in time (a peer that does not read),
    /// no new try before this: such a peer must not stall the loop at every turn.
    retry_at: Option<Instant>,
    /// A commit failed while it waited for one (see [`AckState::on_commit`]): it is
    /// never acknowledged again, and its producer resends on a new connection.
    withheld: bool,
}

/// Where a connection stood when a ticket last took one of its records.
struct Checkpoint {
    /// Committed, everything the connection carried by then is held (0 for records
    /// that wait for no commit).
    ticket: u64,
    /// The highest seq the connection had carried by then: what acknowledges it.
    seq: u64,
    /// Records it stands for.
    records: u64,
}

/// What acknowledged delivery keeps between messages.
struct AckState {
    dedup: dedup::Dedup,
    /// By ROUTER identity and producer id.
    conns: HashMap<(Bytes, ProducerId), Conn>,
    /// Conns with `unacked > 0` that are not withheld.
    pending: usize,
    /// The highest ticket the sink thread committed, every record up to it held.
    committed: u64,
    /// The highest ticket the sink thread reported on, whether it held or failed.
    reported: u64,
    /// From the sink thread; `None` without sinks, or once it ended.
    commits: Option<UnboundedReceiver<Committed>>,
    /// Per ticket not yet reported committed, in ticket order, the `(producer, seq)`
    /// of each acknowledged record that went into it: what the window must forget
    /// when its commit fails. Only tickets with such records are here, so memory is
    /// bounded by the records in flight between the receive loop and a commit (the
    /// channel's batches and what the sink thread wrote since its last commit).
    taken: VecDeque<(u64, Vec<(ProducerId, u64)>)>,
    /// The ROUTER socket's connect and disconnect events.
    monitor: futures::channel::mpsc::Receiver<SocketEvent>,
    counts: AckCounts,
    /// Limits the complaints about withheld acknowledgements.
    failures: RateLimit,
}

impl AckState {
    /// Takes the sink thread's report of one commit.
    ///
    /// A commit that held everything allows the acknowledgement of every connection
    /// whose records all went into tickets up to its own.
    ///
    /// A commit that failed leaves every record of the tickets since the last report
    /// in doubt, and nothing is ever acknowledged on a guess:
    ///
    /// - Every connection of a producer that had records in those tickets, and that
    ///   waits for an acknowledgement, is withheld: it is never acknowledged again.
    ///   A later commit cannot vouch for a record that an earlier one lost, and an
    ///   acknowledgement is cumulative over everything the connection carried, so
    ///   any later one would cover the record in doubt. The producer, hearing
    ///   nothing for its ack timeout, drops the connection and resends everything
    ///   unacknowledged on a new one.
    /// - Connections of the same producer that wait are withheld too, not only
    ///   those that carried a record of the failed tickets: one of them may have
    ///   carried a resend of such a record, taken as a duplicate, and its
    ///   acknowledgement would then vouch for a record that is not held. (At worst
    ///   this delays a connection whose records are all held by one ack timeout.)
    /// - The window forgets the `(producer, seq)` of each record in those tickets, so
    ///   the resend is written instead of being dropped as a duplicate. Nothing else
    ///   is forgotten: a record of another ticket is held, or is still pending and
    ///   gets its own report.
    ///
    /// Could a successful commit on a *new* connection still cover a record of the
    /// failed one? Only if the new connection carried it. If it came after this
    /// report, the window had forgotten it: it is written again, in a later ticket,
    /// and acknowledged when that one is held. If it came before, as a duplicate,
    /// its connection waits on the newest pending ticket ([`Receiving::take_acked`]),
    /// which is at least the failed one, so it was still waiting here and is
    /// withheld above. Reports come in ticket order, so no success past the failed
    /// tickets can be taken before their failure.
    fn on_commit(&mut self, report: Committed) {
        self.reported = self.reported.max(report.ticket);
        let mut forget = Vec::new();
        while let Some((ticket, records)) = self.taken.front_mut() {
            if *ticket > report.ticket {
                break;
            }
            if !report.held {
                forget.append(records);
            }
            self.taken.pop_front();
        }
        if report.held {
            self.committed = self.committed.max(report.ticket);
            return;
        }
        self.counts.commit_failures += 1;
        // From the highest seq down, each producer's floor goes down once in all.
        forget.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        forget.dedup();
        for &(producer, seq) in &forget {
            self.dedup.forget(producer, seq);
        }
        let producers: HashSet<ProducerId> = forget.iter().map(|(p, _)| *p).collect();
        let mut withheld = 0u64;
        for ((_, producer), conn) in &mut self.conns {
            if conn.unacked > 0 && !conn.withheld && producers.contains(producer) {
                conn.withheld = true;
                withheld += 1;
            }
        }
        self.pending = self.pending_count();
        if let Some(held) = self.failures.check() {
            eprintln!(
                "distlogd: a commit failed (a write or sync error): {} acknowledged-mode records may not be held; acknowledgements withheld from {withheld} connections, whose producers resend after their ack timeout{}",
                forget.len(),
                held_note(held)
            );
        }
    }

    /// Conns that wait for an acknowledgement that may go out.
    fn pending_count(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.unacked > 0 && !c.withheld)
            .count()
    }
}

/// What woke the receive loop while it waited.
enum Woke {
    Pull(ZmqResult<ZmqMessage>),
    Router(ZmqResult<ZmqMessage>),
    Committed(Committed),
    Timeout,
}

/// Waits for the first of: a message on either socket, a commit, or `wait`.
async fn wait_any(
    pull: Option<&mut PullSocket>,
    router: Option<&mut RouterSocket>,
    commits: Option<&mut UnboundedReceiver<Committed>>,
    wait: Duration,
) -> Woke {
    let mut pull = pull.map(|s| s.recv());
    let mut router = router.map(|s| s.recv());
    let mut commits = commits;
    let mut timer = std::pin::pin!(sleep(wait));
    std::future::poll_fn(move |cx| {
        if let Some(Poll::Ready(m)) = pull.as_mut().map(|f| f.as_mut().poll(cx)) {
            return Poll::Ready(Woke::Pull(m));
        }
        if let Some(Poll::Ready(m)) = router.as_mut().map(|f| f.as_mut().poll(cx)) {
            return Poll::Ready(Woke::Router(m));
        }
        if let Some(c) = commits.as_mut() {
            match c.poll_next_unpin(cx) {
                Poll::Ready(Some(t)) => return Poll::Ready(Woke::Committed(t)),
                // The sink thread ended: nothing more will come from it.
                Poll::Ready(None) => commits = None,
                Poll::Pending => {}
            }
        }
        timer.as_mut().poll(cx).map(|()| Woke::Timeout)
    })
    .await
}

/// Binds `socket` on each endpoint and announces each on stderr as
/// `distlogd: <what> ENDPOINT`, the port resolved (tests and operators read it).
async fn bind_all<S: Socket>(
    socket: &mut S,
    endpoints: &[String],
    what: &str,
) -> Result<(), CollectorError> {
    for endpoint in endpoints {
        let bound = socket
            .bind(endpoint)
            .await
            .map_err(|source| CollectorError::Bind {
                endpoint: endpoint.clone(),
                source,
            })?;
        eprintln!("distlogd: {what} {bound}");
    }
    Ok(())
}

/// Which socket a message came from.
#[derive(Clone, Copy)]
enum Source {
    Pull,
    Router,
}

fn try_recv_from(
    source: Source,
    pull: &mut Option<PullSocket>,
    router: &mut Option<RouterSocket>,
) -> Option<(Source, ZmqResult<ZmqMessage>)> {
    let got = match source {
        Source::Pull => pull.as_mut()?.try_recv(),
        Source::Router => router.as_mut()?.try_recv(),
    };
    got.map(|m| (source, m))
}

/// How the receive loop treats what it takes, decided from the sinks.
struct ReceiveOptions {
    check_only: bool,
    keep_bodies: bool,
    stopping: Arc<AtomicBool>,
    #[cfg(feature = "nats")]
    nats_stats: Option<nats::NatsStats>,
}

async fn receive<'a>(
    config: &'a Config,
    shutdown: &'a AtomicBool,
    reload: &'a AtomicBool,
    curve: Option<curve::Curve>,
    channels: Option<Channels>,
    options: ReceiveOptions,
    metrics: Option<Arc<Metrics>>,
) -> Result<CollectorStats, CollectorError> {
    let (tx, back, committed) = match channels {
        Some(c) => (Some(c.tx), Some(c.back), Some(c.committed)),
        None => (None, None, None),
    };
    // A peer must not make zeromq reserve an absurd announced frame (2^50 bytes
    // aborted the process): past this bound the connection is dropped before any
    // memory is set aside. Bodies between max_body_bytes and the bound still arrive
    // and are rejected one by one as `oversize`, keeping the connection.
    let input_options = || {
        let mut options = zeromq::SocketOptions::default();
        options.max_frame_size(config.max_body_bytes.saturating_mul(4).max(16 << 20));
        if let Some(c) = &curve {
            c.apply(&mut options);
        }
        options
    };
    if let Some(c) = &curve {
        eprintln!("distlogd: {}", c.describe());
    }
    let mut pull = None;
    if !config.inputs.is_empty() {
        let mut socket = PullSocket::with_options(input_options());
        bind_all(&mut socket, &config.inputs, "listening on").await?;
        pull = Some(socket);
    }
    let mut router = None;
    let mut acked = None;
    if !config.ack_inputs.is_empty() {
        let mut socket = RouterSocket::with_options(input_options());
        // Before binding, so that no connection is missed in the count.
        let monitor = socket.monitor();
        bind_all(&mut socket, &config.ack_inputs, "acknowledged input on").await?;
        router = Some(socket);
        acked = Some(AckState {
            dedup: dedup::Dedup::new(),
            conns: HashMap::new(),
            pending: 0,
            committed: 0,
            reported: 0,
            commits: committed,
            taken: VecDeque::new(),
            monitor,
            counts: AckCounts::default(),
            failures: RateLimit::new(3, Duration::from_secs(10)),
        });
    }
    let mut pubs = Vec::new();
    for (index, sink) in config.sinks.iter().enumerate() {
        if let SinkKind::Publish { endpoint } = &sink.kind {
            // A publish socket hands out records: with CURVE, only to clients that
            // pass the same handshake as senders do.
            let mut pub_options = zeromq::SocketOptions::default();
            if let Some(c) = &curve {
                c.apply(&mut pub_options);
            }
            let mut socket = PubSocket::with_options(pub_options);
            bind_all(&mut socket, std::slice::from_ref(endpoint), "publishing on").await?;
            pubs.push(Publish {
                socket,
                filter: &sink.filter,
                index,
                written: 0,
                failed: 0,
            });
        }
    }
    let mut r = Receiving {
        config,
        stats: CollectorStats::default(),
        rejects: RateLimit::new(10, Duration::from_secs(1)),
        transport: RateLimit::new(10, Duration::from_secs(1)),
        batch: Batch::new(Vec::with_capacity(BATCH), 1),
        tx,
        back,
        pubs,
        curve,
        reload,
        check_only: options.check_only,
        keep_bodies: options.keep_bodies,
        shutdown,
        stopping: options.stopping,
        #[cfg(feature = "nats")]
        nats_stats: options.nats_stats,
        last_stats: Instant::now(),
        last_received: 0,
        acked,
        metrics,
    };

    let mut drain_start: Option<Instant> = None;
    let mut last_message = Instant::now();
    let mut ready_in_a_row = 0usize;
    let mut failed_in_a_row = 0u32;
    let mut pull_first = false;
    loop {
        // Each socket in turn goes first, so that neither starves the other.
        pull_first = !pull_first;
        let (first, second) = if pull_first {
            (Source::Pull, Source::Router)
        } else {
            (Source::Router, Source::Pull)
        };
        let ready = try_recv_from(first, &mut pull, &mut router)
            .or_else(|| try_recv_from(second, &mut pull, &mut router));
        let received = match ready {
            Some(m) => {
                ready_in_a_row += 1;
                if ready_in_a_row.is_multiple_of(BATCH) {
                    r.hand_over(drain_start.is_some())?;
                    r.send_acks(router.as_mut()).await;
                    r.publish_metrics();
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
                r.send_acks(router.as_mut()).await;
                r.publish_metrics();
                r.maybe_stats();
                r.maybe_reload();
                if drain_start.is_none() && shutdown.load(Ordering::Relaxed) {
                    eprintln!("distlogd: shutting down: draining input and flushing sinks");
                    drain_start = Some(Instant::now());
                    r.stopping.store(true, Ordering::Relaxed);
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
                let commits = r.acked.as_mut().and_then(|a| a.commits.as_mut());
                let got = match wait_any(pull.as_mut(), router.as_mut(), commits, wait).await {
                    Woke::Pull(m) => Some((Source::Pull, m)),
                    Woke::Router(m) => Some((Source::Router, m)),
                    Woke::Committed(report) => {
                        if let Some(a) = r.acked.as_mut() {
                            a.on_commit(report);
                        }
                        r.send_acks(router.as_mut()).await;
                        r.publish_metrics();
                        None
                    }
                    Woke::Timeout => None,
                };
                if matches!(got, Some((_, Ok(_)))) {
                    last_message = Instant::now();
                }
                got
            }
        };
        match received {
            None => {}
            Some((source, Ok(message))) => {
                failed_in_a_row = 0;
                match source {
                    Source::Pull => {
                        r.take(message, None).await;
                    }
                    Source::Router => r.take_acked(message).await,
                }
            }
            Some((_, Err(e))) => {
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
    r.final_acks(router.as_mut()).await;
    if !r.pubs.is_empty() || router.is_some() {
        // Give the PUB fan-out task a moment to pass on the last records, and the
        // ROUTER's the last acknowledgements.
        sleep(Duration::from_millis(100)).await;
    }
    r.publish_metrics();
    for p in r.pubs.drain(..) {
        let _ = p.socket.close().await;
    }
    if let Some(socket) = pull {
        let _ = socket.close().await;
    }
    if let Some(socket) = router {
        let _ = socket.close().await;
    }
    r.stats.curve = r.curve.as_ref().map(curve::Curve::counts);
    r.stats.acked = r.acked.as_ref().map(|a| a.counts);
    Ok(r.stats)
}

impl Receiving<'_> {
    /// Checks, decodes, re-publishes and batches one `[topic, body]` message; `true`
    /// when it went into the batch for the sink thread (which must then hold it).
    async fn take(&mut self, message: ZmqMessage, origin: Option<Origin>) -> bool {
        self.stats.received += 1;
        if let (2, Some(body)) = (message.len(), message.get(1)) {
            if body.len() > self.config.max_body_bytes {
                let what = format!(
                    "body of {} bytes exceeds max_body_bytes {}",
                    body.len(),
                    self.config.max_body_bytes
                );
                self.reject(stats::OVERSIZE, &what);
                return false;
            }
        }
        let (topic, record) = match self.examine(&message) {
            Ok(ok) => ok,
            Err(e) => {
                self.reject(e.reason(), &e.to_string());
                return false;
            }
        };
        self.stats.accepted += 1;
        let last = self.pubs.len().wrapping_sub(1);
        // The body goes to the sinks as it came when the record was only checked, or
        // beside the record for a sink that publishes it as it came.
        let body = match (&self.tx, &record) {
            (Some(_), None) => message.get(1).cloned(),
            (Some(_), Some(_)) if self.keep_bodies => message.get(1).cloned(),
            _ => None,
        };
        let mut message = Some(message);
        for (i, p) in self.pubs.iter_mut().enumerate() {
            let passes = match &record {
                Some(r) => p.filter.matches(topic, r),
                None => p.filter.matches_topic(topic),
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
                match p.socket.send(m).await {
                    Ok(()) => p.written += 1,
                    Err(_) => p.failed += 1,
                }
            }
        }
        if self.tx.is_none() {
            return false;
        }
        let entry = match (record, body) {
            (Some(record), body) => Entry::Record(topic, record, origin, body),
            (None, Some(body)) => Entry::Body(topic, body, origin),
            (None, None) => return false,
        };
        self.batch.entries.push(entry);
        self.batch.acked |= origin.is_some();
        true
    }

    /// Takes one message from the ROUTER: `[identity, header, topic, body]`.
    async fn take_acked(&mut self, mut message: ZmqMessage) {
        let Some(identity) = message.get(0).cloned() else {
            return;
        };
        let header = match message.get(1).map(|h| AckHeader::parse(h)) {
            Some(Ok(h)) => h,
            Some(Err(e)) => return self.reject_unacked(&e),
            None => return self.reject_unacked(&AckHeaderError::Length(0)),
        };
        let Some(a) = self.acked.as_mut() else {
            return;
        };
        let seen = a.dedup.take(
            header.producer,
            header.seq,
            header.base,
            header.single_endpoint(),
            Instant::now(),
        );
        a.counts.gaps += seen.gaps;
        let held = if seen.duplicate {
            // Taken before: its acknowledgement was lost, so it is sent again, but
            // only once the first copy is held. Which pending ticket that went into
            // is not kept; the newest one with acknowledged records is at least it
            // (or the first copy is committed already, and no ticket is pending).
            self.stats.received += 1;
            a.counts.duplicates += 1;
            let newest = a.taken.back().map_or(0, |(t, _)| *t);
            let key = (identity.clone(), header.producer);
            let (ticket, seq) = (newest, header.seq);
            return self.note_handled(key, seq, Some(ticket));
        } else if message.len() < 3 {
            self.stats.received += 1;
            let e = MessageError::FrameCount(message.len().saturating_sub(2));
            self.reject(e.reason(), &e.to_string());
            false
        } else {
            let rest = message.split_off(2);
            self.take(rest, Some(Origin::new(header.producer, header.seq)))
                .await
        };
        let ticket = self.batch.ticket;
        if held {
            // Kept until the ticket's commit is reported: forgotten by the window
            // if it fails.
            if let Some(a) = self.acked.as_mut() {
                match a.taken.back_mut() {
                    Some((t, records)) if *t == ticket => {
                        records.push((header.producer, header.seq))
                    }
                    _ => a
                        .taken
                        .push_back((ticket, vec![(header.producer, header.seq)])),
                }
            }
        }
        self.note_handled(
            (identity, header.producer),
            header.seq,
            held.then_some(ticket),
        );
    }

    /// Whatever became of a record, it is handled: acknowledged on its connection
    /// once what went before it there is held and, with `wait_for`, once that
    /// ticket is committed too.
    fn note_handled(&mut self, key: (Bytes, ProducerId), seq: u64, wait_for: Option<u64>) {
        let Some(a) = self.acked.as_mut() else {
            return;
        };
        if a.conns.len() >= MAX_CONNECTIONS {
            // A withheld one stays as long as its connection: were it forgotten, its
            // next record would start a fresh one, acknowledged past the failure.
            a.conns.retain(|_, c| c.unacked > 0 || c.withheld);
        }
        let conn = a.conns.entry(key).or_insert(Conn {
            seq,
            held: VecDeque::new(),
            unacked: 0,
            retry_at: None,
            withheld: false,
        });
        conn.seq = conn.seq.max(seq);
        let newest = conn.held.back().map_or(0, |c| c.ticket);
        let ticket = newest.max(wait_for.unwrap_or(0));
        match conn.held.back_mut() {
            Some(c) if c.ticket == ticket => {
                c.seq = conn.seq;
                c.records += 1;
            }
            _ => conn.held.push_back(Checkpoint {
                ticket,
                seq: conn.seq,
                records: 1,
            }),
        }
        if conn.unacked == 0 && !conn.withheld {
            a.pending += 1;
        }
        conn.unacked += 1;
    }

    /// Counts a ROUTER message whose header is refused: it names no producer that
    /// could be acknowledged.
    fn reject_unacked(&mut self, e: &AckHeaderError) {
        self.stats.received += 1;
        self.reject(e.reason(), &e.to_string());
    }

    /// Sends each connection with held records its acknowledgement, for as far as
    /// they are held.
    async fn send_acks(&mut self, router: Option<&mut RouterSocket>) {
        let (Some(a), Some(router)) = (self.acked.as_mut(), router) else {
            return;
        };
        while let Ok(event) = a.monitor.try_recv() {
            match event {
                SocketEvent::Accepted(..) => a.counts.producers += 1,
                SocketEvent::Disconnected(peer) => {
                    a.counts.producers = a.counts.producers.saturating_sub(1);
                    let gone = Bytes::from(peer);
                    let before = a.conns.len();
                    a.conns.retain(|(id, _), _| *id != gone);
                    if a.conns.len() != before {
                        a.pending = a.pending_count();
                    }
                }
                _ => {}
            }
        }
        while let Some(Ok(report)) = a.commits.as_mut().map(|c| c.try_recv()) {
            a.on_commit(report);
        }
        if a.pending == 0 {
            return;
        }
        let committed = a.committed;
        let now = Instant::now();
        // Each with the seq to acknowledge and the checkpoints that covers.
        let due: Vec<(Bytes, ProducerId, u64, usize)> = a
            .conns
            .iter()
            .filter(|(_, c)| !c.withheld && c.retry_at.is_none_or(|t| t <= now))
            .filter_map(|((id, producer), c)| {
                let n = c.held.iter().take_while(|h| h.ticket <= committed).count();
                let seq = c.held.get(n.checked_sub(1)?)?.seq;
                Some((id.clone(), *producer, seq, n))
            })
            .collect();
        for (identity, producer, seq, n) in due {
            let mut ack = ZmqMessage::from(identity.clone());
            ack.push_back(Bytes::copy_from_slice(&ack::ack_frame(&producer, seq)));
            let sent = timeout(ACK_SEND_WAIT, router.send(ack)).await;
            let key = (identity, producer);
            match sent {
                // Not out in time: a later try covers it.
                None => {
                    if let Some(c) = a.conns.get_mut(&key) {
                        c.retry_at = Some(Instant::now() + TICK);
                    }
                    continue;
                }
                Some(Ok(())) => {
                    a.counts.acks_sent += 1;
                    if let Some(c) = a.conns.get_mut(&key) {
                        let covered: u64 = c.held.drain(..n).map(|h| h.records).sum();
                        a.counts.acked += covered;
                        c.unacked = c.unacked.saturating_sub(covered);
                        c.retry_at = None;
                        // Records after the acknowledged one still wait: pending.
                        if c.unacked > 0 {
                            continue;
                        }
                    }
                }
                // The connection went away; its producer resends elsewhere.
                Some(Err(_)) => {
                    a.conns.remove(&key);
                }
            }
            a.pending = a.pending.saturating_sub(1);
        }
    }

    /// On the way out: waits (boundedly) for the sink thread's last commit and sends
    /// the acknowledgements it allows, so that producers need not resend what is
    /// written.
    async fn final_acks(&mut self, router: Option<&mut RouterSocket>) {
        let last = self.batch.ticket - 1;
        let deadline = Instant::now() + self.config.drain_max.min(Duration::from_secs(2));
        loop {
            let Some(a) = self.acked.as_mut() else {
                return;
            };
            if a.reported >= last || a.commits.is_none() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(commits) = a.commits.as_mut() else {
                break;
            };
            match timeout(left, commits.next()).await {
                Some(Some(report)) => a.on_commit(report),
                Some(None) => a.commits = None,
                None => break,
            }
        }
        self.send_acks(router).await;
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
        if self.batch.entries.is_empty() {
            return Ok(());
        }
        let Some(tx) = &self.tx else {
            self.batch.entries.clear();
            return Ok(());
        };
        // Free the records of written batches, keeping one allocation for the next.
        let mut spare = None;
        if let Some(back) = &self.back {
            while let Ok(done) = back.try_recv() {
                let mut entries = done.entries;
                entries.clear();
                spare = Some(entries);
            }
        }
        let next = spare.unwrap_or_else(|| Vec::with_capacity(BATCH));
        let ticket = self.batch.ticket + 1;
        let mut batch = std::mem::replace(&mut self.batch, Batch::new(next, ticket));
        let mut started = Instant::now();
        let mut draining = draining;
        let n = batch.entries.len() as u64;
        loop {
            match tx.send_timeout(batch, TICK) {
                Ok(()) => {
                    if let Some(m) = &self.metrics {
                        m.add_handed(n);
                    }
                    return Ok(());
                }
                Err(SendTimeoutError::Timeout(b)) => {
                    // Stuck sinks (JetStream down) must not keep a SIGTERM waiting:
                    // the wait becomes the drain's, bounded by drain_max.
                    if !draining && self.shutdown.load(Ordering::Relaxed) {
                        draining = true;
                        started = Instant::now();
                        self.stopping.store(true, Ordering::Relaxed);
                    }
                    if draining && started.elapsed() >= self.config.drain_max {
                        self.stats.sink_errors += b.entries.len() as u64;
                        eprintln!(
                            "distlogd: sinks stuck while shutting down; {} records not written",
                            b.entries.len()
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

    /// Copies the counts to the metrics, with `--metrics-bind`: once per hand-over
    /// or turn of the idle loop, never per record.
    fn publish_metrics(&mut self) {
        let Some(m) = &self.metrics else {
            return;
        };
        m.set_received(
            &self.stats,
            self.acked.as_ref().map(|a| a.counts),
            self.curve.as_ref().map(curve::Curve::counts),
        );
        for p in &self.pubs {
            m.set_sink(p.index, p.written, p.failed);
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
        self.stats.acked = self.acked.as_ref().map(|a| a.counts);
        #[cfg(feature = "nats")]
        {
            self.stats.nats = self.nats_stats.as_ref().map(nats::NatsStats::snapshot);
        }
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
