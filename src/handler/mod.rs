//! The handler: a bounded queue in front of a background thread that owns the
//! ZeroMQ PUSH socket(s).
//!
//! Logging never waits on the network. A log call puts an [`Event`] on a bounded queue
//! and returns; when the queue is full the [`Overflow`] policy decides, and every
//! record it drops is counted and later reported in-band. The background thread
//! encodes records, round-robins them over the endpoints, reconnects when a
//! collector restarts (sending again what it never acknowledged), and on
//! [`Handler::flush`] or shutdown waits until records have really left the process.
//!
//! ```no_run
//! use distlog::handler::{Handler, Overflow};
//! use distlog::record::Event;
//! use std::time::Duration;
//!
//! let guard = Handler::builder()
//!     .endpoint("tcp://127.0.0.1:5010")
//!     .queue_capacity(10_000)
//!     .overflow(Overflow::DropNewest)
//!     .spawn()
//!     .expect("valid configuration");
//! guard.handler().enqueue(Event::new(log::Level::Info, "app", "hello".into()));
//! let report = guard.shutdown();
//! eprintln!("sent {}, dropped {}", report.sent, report.dropped);
//! ```

mod ack;
mod delivery;
mod link;
mod queue;
mod wake;
mod worker;

use crate::record::{Event, PackedEvent, ProcessInfo, Record};
use crate::topic::{Encoding, Kind, System};
use crossbeam_channel::{Sender, TrySendError};
pub(crate) use queue::Spent;
use queue::{Config, Item, Shared, SPENT_CHUNK};
pub use queue::{FlushReport, Overflow};
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worker::{Control, Worker};

/// The room for packed bytes of a blank event from [`Handler::prefill_spent`]: a
/// message and a few key-values.
const PREFILLED_LEN: usize = 256;

/// How often a call blocked on a full queue looks for room.
const BLOCK_POLL: Duration = Duration::from_micros(100);

/// Counters of one handler, read at any time with [`Handler::stats`].
///
/// ```
/// use distlog::handler::Handler;
/// let guard = Handler::builder().endpoint("tcp://127.0.0.1:5999").spawn().unwrap();
/// let stats = guard.handler().stats();
/// assert_eq!((stats.sent, stats.dropped, stats.queued), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HandlerStats {
    /// Records delivered: in [acknowledged mode](Builder::acknowledged), acknowledged
    /// by the collector; otherwise acknowledged by the collector's host on tracked
    /// TCP links, handed to zeromq elsewhere.
    pub sent: u64,
    /// Records dropped: queue full, or still undelivered when shutdown timed out.
    pub dropped: u64,
    /// Records sent again because a collector went away before acknowledging them.
    pub resent: u64,
    /// Successful connections (the first one included).
    pub connects: u64,
    /// Connection attempts that failed: nobody listening, no handshake in time, or a
    /// handshake the collector refused ([`Handler::last_connect_error`] says why).
    pub failed_connects: u64,
    /// Records waiting in the queue now.
    pub queued: u64,
}

/// A configuration the builder refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// No endpoint was given.
    NoEndpoint,
    /// An endpoint that is not `tcp://host:port` or `ipc://path`.
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A queue of capacity 0.
    ZeroCapacity,
    /// The background thread could not be started.
    Thread(std::io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoEndpoint => write!(f, "no collector endpoint configured"),
            BuildError::BadEndpoint { endpoint, reason } => {
                write!(f, "bad endpoint {endpoint:?}: {reason}")
            }
            BuildError::ZeroCapacity => write!(f, "queue capacity must be at least 1"),
            BuildError::Thread(e) => write!(f, "cannot start the distlog sender thread: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Thread(e) => Some(e),
            _ => None,
        }
    }
}

/// Configures and starts a [`Handler`].
///
/// ```
/// use distlog::handler::{Handler, Overflow};
/// use distlog::topic::{Encoding, System};
/// use std::time::Duration;
///
/// let err = Handler::builder().endpoint("udp://x:1").spawn().unwrap_err();
/// assert!(err.to_string().contains("udp://x:1"));
///
/// let guard = Handler::builder()
///     .endpoint("tcp://127.0.0.1:5999")
///     .system(System::Test)
///     .encoding(Encoding::Pickle)
///     .queue_capacity(1000)
///     .overflow(Overflow::Block(Duration::from_millis(10)))
///     .flush_timeout(Duration::from_millis(100))
///     .spawn()
///     .unwrap();
/// let report = guard.shutdown(); // nobody listens: returns after the flush timeout
/// assert_eq!(report.sent, 0);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    config: Config,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            config: Config {
                endpoints: Vec::new(),
                system: System::Production,
                encoding: Encoding::Json,
                capacity: 65_536,
                overflow: Overflow::DropNewest,
                flush_timeout: Duration::from_secs(3),
                send_timeout: Duration::from_secs(2),
                connect_timeout: Duration::from_millis(250),
                heartbeat: None,
                curve: None,
                acknowledged: false,
                ack_timeout: Duration::from_secs(2),
            },
        }
    }
}

impl Builder {
    /// Adds a collector endpoint, `tcp://host:port` or `ipc://path`. With several,
    /// records are spread round-robin over those that are up.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.config.endpoints.push(endpoint.into());
        self
    }

    /// The SYSTEM letter of the topic (default production, as in Python).
    pub fn system(mut self, system: System) -> Self {
        self.config.system = system;
        self
    }

    /// JSON (default) or pickle bodies.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.config.encoding = encoding;
        self
    }

    /// How many records may wait for the network (default 65,536).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.config.capacity = capacity;
        self
    }

    /// What a log call does when the queue is full (default [`Overflow::DropNewest`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.config.overflow = overflow;
        self
    }

    /// How long a flush or shutdown may take to deliver what is queued (default 3 s).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.config.flush_timeout = timeout;
        self
    }

    /// How long the sender waits on a stuck collector before it reconnects (default 2 s).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.config.send_timeout = timeout;
        self
    }

    /// How long one connection attempt may take (default 250 ms); attempts repeat
    /// with backoff up to once a second.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// ZMTP 3.1 heartbeats on each collector connection (off by default): a PING
    /// every `interval`; a connection from which nothing, not even a PONG, comes back
    /// within `timeout` of one is dropped and the link reconnects. Without them, a
    /// collector host that vanishes without closing the connection (power loss, a
    /// cut network) is noticed only when the kernel gives up, minutes later on TCP;
    /// messages sent meanwhile are resent from the link's unacknowledged list where
    /// delivery is tracked (Linux TCP), else lost. Collectors must speak ZMTP 3.1
    /// (libzmq 4.2 or later, and this crate's `distlogd`), which answer PINGs.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let guard = distlog::handler::Handler::builder()
    ///     .endpoint("tcp://collector.example:5010")
    ///     .heartbeat(Duration::from_secs(1), Duration::from_secs(3))
    ///     .spawn()
    ///     .expect("valid configuration");
    /// # drop(guard);
    /// ```
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.config.heartbeat = Some((interval, timeout));
        self
    }

    /// Encrypts and authenticates every link with CURVE (off by default): the
    /// collector's long-term public key, and this sender's secret key or key pair
    /// (the public half is derived from the secret). A collector that requires CURVE
    /// (`distlogd --curve-secret`) refuses plaintext senders, and with an allow file
    /// only takes senders whose public key is in it. Records then cannot be read or
    /// forged on the way; the cost is CPU (about a sixth of NULL's throughput on one
    /// core, see `crates/zeromq/DISTLOG-PATCH.md`). Plain mode is unchanged and stays
    /// wire-compatible with Python distlog.
    ///
    /// ```no_run
    /// use distlog::curve::{self, CurveKeyPair};
    /// let server = curve::read_public_key("collector.pub".as_ref()).expect("server key");
    /// let me = CurveKeyPair::generate().expect("a random source");
    /// let guard = distlog::handler::Handler::builder()
    ///     .endpoint("tcp://collector.example:5010")
    ///     .curve(server, me) // or a `CurveSecretKey`, e.g. from `curve::read_secret_key`
    ///     .spawn()
    ///     .expect("valid configuration");
    /// # drop(guard);
    /// ```
    pub fn curve(
        mut self,
        server: crate::curve::CurvePublicKey,
        client: impl Into<crate::curve::CurveKeyPair>,
    ) -> Self {
        self.config.curve = Some(zeromq::curve::CurveClient::new(server, client.into()));
        self
    }

    /// Acknowledged delivery (off by default; README, "Acknowledged delivery"): each
    /// record carries this handler's random producer id and a seq, and is kept until
    /// the collector says every sink holds it (`distlogd --ack-bind`, which the
    /// endpoints must point at; a plain PULL or a Python collector does not speak it).
    /// Records a collector never acknowledged are sent again after a reconnect, or to
    /// another endpoint once the [ack timeout](Builder::ack_timeout) passes.
    /// Half of the [queue capacity](Builder::queue_capacity) then holds records
    /// waiting for acknowledgement; the overflow policy applies once both halves are
    /// full. `flush()` and shutdown wait for acknowledgements.
    ///
    /// ```no_run
    /// let guard = distlog::handler::Handler::builder()
    ///     .endpoint("tcp://collector-a.example:5012")
    ///     .endpoint("tcp://collector-b.example:5012") // failover, and load sharing
    ///     .acknowledged(true)
    ///     .spawn()
    ///     .expect("valid configuration");
    /// let report = guard.shutdown();
    /// assert_eq!(report.unsent, 0);
    /// ```
    pub fn acknowledged(mut self, on: bool) -> Self {
        self.config.acknowledged = on;
        self
    }

    /// In acknowledged mode, how long a link may leave records unacknowledged before
    /// it is dropped and they go to another endpoint (default 2 s). A collector that is
    /// stuck (SIGSTOPped, swapping) rather than dead is noticed this way.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = distlog::handler::Handler::builder()
    ///     .endpoint("tcp://127.0.0.1:5012")
    ///     .acknowledged(true)
    ///     .ack_timeout(Duration::from_millis(500));
    /// # drop(builder);
    /// ```
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.config.ack_timeout = timeout;
        self
    }

    fn validate(&self) -> Result<(), BuildError> {
        if self.config.endpoints.is_empty() {
            return Err(BuildError::NoEndpoint);
        }
        if self.config.capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        for e in &self.config.endpoints {
            validate_endpoint(e)?;
        }
        Ok(())
    }

    /// Starts the sender thread. Connecting happens there, so this returns at once
    /// even when no collector is up yet.
    pub fn spawn(self) -> Result<Guard, BuildError> {
        self.validate()?;
        let config = self.config;
        let (tx, rx) = crossbeam_channel::bounded(config.queue_room());
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            process: ProcessInfo::current(),
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            failed_connects: AtomicU64::new(0),
            last_connect_error: Mutex::new(None),
            unconfirmed_at_shutdown: AtomicU64::new(0),
            first_drop: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            spent: crossbeam_channel::bounded((config.capacity / SPENT_CHUNK).max(2)),
            wake: wake::Wake::default(),
        });
        let worker = Worker::new(rx, ctl_rx, shared.clone(), config.clone());
        let thread = std::thread::Builder::new()
            .name("distlog-sender".into())
            .spawn(move || worker.run())
            .map_err(BuildError::Thread)?;
        let handler = Handler {
            inner: Arc::new(Inner {
                tx,
                control: ctl_tx,
                shared,
                overflow: config.overflow,
                flush_timeout: config.flush_timeout,
            }),
        };
        Ok(Guard {
            handler,
            thread: Mutex::new(Some(thread)),
        })
    }
}

/// Checks an endpoint's form, naming what is wrong.
fn validate_endpoint(e: &str) -> Result<(), BuildError> {
    let bad = |reason: &str| BuildError::BadEndpoint {
        endpoint: e.to_string(),
        reason: reason.to_string(),
    };
    if let Some(rest) = e.strip_prefix("tcp://") {
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("expected tcp://host:port"))?;
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        port.parse::<u16>()
            .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
        Ok(())
    } else if let Some(path) = e.strip_prefix("ipc://") {
        if path.is_empty() {
            return Err(bad("the path is empty"));
        }
        Ok(())
    } else {
        Err(bad("the transport must be tcp:// or ipc://"))
    }
}

struct Inner {
    tx: Sender<Item>,
    control: Sender<Control>,
    shared: Arc<Shared>,
    overflow: Overflow,
    flush_timeout: Duration,
}

/// The application's side of the queue: cheap to clone, safe to share.
///
/// ```
/// use distlog::handler::Handler;
/// use distlog::record::Event;
/// use std::time::Duration;
/// let guard = Handler::builder()
///     .endpoint("tcp://127.0.0.1:5999")
///     .flush_timeout(Duration::from_millis(50))
///     .spawn()
///     .unwrap();
/// let handler = guard.handler().clone(); // for another thread
/// handler.enqueue(Event::new(log::Level::Warn, "shop", "stock low".into()));
/// let report = handler.flush(); // nobody listens: gives up after the flush timeout
/// assert_eq!(report.sent, 0);
/// ```
#[derive(Clone)]
pub struct Handler {
    inner: Arc<Inner>,
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Handler {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Queues one log event; never blocks longer than the [`Overflow`] policy allows.
    /// Returns whether the event was queued (a dropped one is counted).
    pub fn enqueue(&self, event: Event) -> bool {
        self.put(Item::Log(Box::new(event)))
    }

    /// [`Handler::enqueue`] for a packed event, such as one written over a spent
    /// one (see [`Handler::spent_buffers`]).
    pub(crate) fn enqueue_packed(&self, event: Spent) -> bool {
        self.put(Item::Packed(event))
    }

    /// A sent event, to be written over by the next log call on this thread, if
    /// there is one. A thread holds at most one chunk of them, until it
    /// logs again or exits.
    pub(crate) fn spent_buffers(&self) -> Option<Spent> {
        thread_local! {
            static SPARE: RefCell<Vec<Spent>> = const { RefCell::new(Vec::new()) };
        }
        SPARE
            .try_with(|spare| {
                let mut spare = spare.borrow_mut();
                if spare.is_empty() {
                    *spare = self.inner.shared.spent.1.try_recv().ok()?;
                }
                spare.pop()
            })
            .ok()
            .flatten()
    }

    /// Puts blank events where log calls take spent ones, enough for `count` calls
    /// (at most the queue's capacity), so that the first calls after start-up write
    /// over them instead of allocating. Until the sender has sent its first chunk
    /// back, every call allocates, and its fresh memory faults a page in about every
    /// tenth call: some tens of the thousand slowest calls in 100,000.
    pub(crate) fn prefill_spent(&self, count: usize) {
        let shared = &self.inner.shared;
        let mut left = count.min(self.inner.tx.capacity().unwrap_or(count));
        while left > 0 {
            let n = left.min(SPENT_CHUNK);
            let chunk = (0..n)
                .map(|_| Box::new(PackedEvent::blank(PREFILLED_LEN)))
                .collect();
            if shared.spent.0.try_send(chunk).is_err() {
                break;
            }
            left -= n;
        }
    }

    /// Queues a ready-made record of any kind: performance measurements use
    /// [`Kind::Performance`]. The same overflow policy applies.
    ///
    /// ```no_run
    /// use distlog::{handler::Handler, topic::Kind, Record};
    /// let guard = Handler::builder().endpoint("tcp://127.0.0.1:5010").spawn().unwrap();
    /// let record = Record::from_pairs([("name", "db.query".into()), ("value", 1.5.into())]);
    /// guard.handler().enqueue_record(Kind::Performance, record);
    /// ```
    pub fn enqueue_record(&self, kind: Kind, record: Record) -> bool {
        self.put(Item::Record(kind, record))
    }

    fn put(&self, item: Item) -> bool {
        let inner = &*self.inner;
        match inner.tx.try_send(item) {
            Ok(()) => {
                inner.shared.wake.after_event();
                true
            }
            Err(TrySendError::Full(item)) => match inner.overflow {
                Overflow::Block(timeout) if !inner.shared.stalled.load(Ordering::Relaxed) => {
                    self.wait_for_room(item, timeout)
                }
                _ => {
                    inner.shared.count_drop();
                    false
                }
            },
            Err(TrySendError::Disconnected(_)) => {
                inner.shared.count_drop();
                false
            }
        }
    }

    /// Waits for a quarter of the full queue to drain, then queues `item`; drops it
    /// after `timeout`. Waiting on the channel itself would make the sender wake this
    /// thread for every slot it frees, two system calls per record while the queue
    /// stays full; looking every 100 µs costs the sender nothing.
    fn wait_for_room(&self, mut item: Item, timeout: Duration) -> bool {
        let inner = &*self.inner;
        let capacity = inner.tx.capacity().unwrap_or(1);
        let resume_at = capacity - capacity / 4;
        let deadline = Instant::now() + timeout;
        loop {
            if inner.tx.len() <= resume_at {
                match inner.tx.try_send(item) {
                    Ok(()) => {
                        inner.shared.wake.after_event();
                        return true;
                    }
                    Err(TrySendError::Full(back)) => item = back,
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
            let now = Instant::now();
            if now >= deadline {
                inner.shared.stalled.store(true, Ordering::Relaxed);
                break;
            }
            std::thread::sleep(BLOCK_POLL.min(deadline - now));
        }
        inner.shared.count_drop();
        false
    }

    /// Why the last failed connection attempt failed, naming the endpoint: nobody
    /// listening (the collector is down), no handshake in time, or a collector that
    /// refused it, such as a plain PULL input for an
    /// [acknowledged](Builder::acknowledged) handler, or refused CURVE keys. `None`
    /// while every attempt has succeeded.
    ///
    /// ```
    /// use std::time::Duration;
    /// let guard = distlog::handler::Handler::builder()
    ///     .endpoint("tcp://127.0.0.1:1") // nobody listens on port 1
    ///     .flush_timeout(Duration::from_millis(300))
    ///     .spawn()
    ///     .unwrap();
    /// guard.handler().flush();
    /// let why = guard.handler().last_connect_error().expect("a failed attempt");
    /// assert!(why.starts_with("tcp://127.0.0.1:1: "), "{why}");
    /// ```
    pub fn last_connect_error(&self) -> Option<String> {
        self.inner
            .shared
            .last_connect_error
            .lock()
            .ok()
            .and_then(|last| last.clone())
    }

    /// The counters now.
    pub fn stats(&self) -> HandlerStats {
        let s = &self.inner.shared;
        HandlerStats {
            sent: s.sent.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
            resent: s.resent.load(Ordering::Relaxed),
            connects: s.connects.load(Ordering::Relaxed),
            failed_connects: s.failed_connects.load(Ordering::Relaxed),
            queued: self.inner.tx.len() as u64,
        }
    }

    /// Delivers everything queued so far, waiting at most the flush timeout.
    pub fn flush(&self) -> FlushReport {
        self.flush_within(self.inner.flush_timeout)
    }

    /// Delivers everything queued so far, waiting at most `timeout`.
    pub fn flush_within(&self, timeout: Duration) -> FlushReport {
        self.ask(timeout, |deadline, reply| Control::Flush {
            deadline,
            reply,
        })
    }

    fn ask(
        &self,
        timeout: Duration,
        make: impl FnOnce(Instant, Sender<FlushReport>) -> Control,
    ) -> FlushReport {
        let deadline = Instant::now() + timeout;
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self.inner.control.send(make(deadline, reply)).is_err() {
            return self.report_now();
        }
        self.inner.shared.wake.after_control();
        // The worker may be in a connection attempt when the deadline passes.
        match answer.recv_timeout(timeout + Duration::from_secs(2)) {
            Ok(report) => report,
            Err(_) => self.report_now(),
        }
    }

    fn report_now(&self) -> FlushReport {
        let s = self.stats();
        FlushReport {
            sent: s.sent,
            dropped: s.dropped,
            unsent: s.queued,
        }
    }
}

/// Owns the sender thread: dropping it (or calling [`Guard::shutdown`]) delivers
/// what is queued, within the flush timeout, and stops the thread.
pub struct Guard {
    handler: Handler,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("handler", &self.handler)
            .finish()
    }
}

impl Guard {
    /// The handler, to enqueue events or read stats.
    pub fn handler(&self) -> &Handler {
        &self.handler
    }

    /// Delivers what is queued (within the flush timeout), stops the sender thread,
    /// and reports. Records still undelivered at the deadline count as dropped.
    pub fn shutdown(self) -> FlushReport {
        self.stop()
    }

    fn stop(&self) -> FlushReport {
        let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) else {
            return self.handler.report_now();
        };
        let timeout = self.handler.inner.flush_timeout;
        let report = self
            .handler
            .ask(timeout, |deadline, reply| Control::Shutdown {
                deadline,
                reply,
            });
        let _ = thread.join();
        report
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        for (e, why) in [
            ("tcp://host", "tcp://host:port"),
            ("tcp://:5", "host is empty"),
            ("tcp://h:99999", "port"),
            ("ipc://", "path is empty"),
            ("inproc://x", "tcp:// or ipc://"),
        ] {
            let err = validate_endpoint(e).unwrap_err().to_string();
            assert!(err.contains(e) && err.contains(why), "{err}");
        }
        assert!(validate_endpoint("tcp://127.0.0.1:5010").is_ok());
        assert!(validate_endpoint("ipc:///tmp/x.sock").is_ok());
        assert!(matches!(
            Handler::builder().spawn().unwrap_err(),
            BuildError::NoEndpoint
        ));
        assert!(matches!(
            Handler::builder()
                .endpoint("tcp://a:1")
                .queue_capacity(0)
                .spawn()
                .unwrap_err(),
            BuildError::ZeroCapacity
        ));
    }
}
