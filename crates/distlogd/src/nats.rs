//! The `nats` sink: one JetStream message per record, published from a thread of its
//! own that runs async-nats on a tokio runtime (whatever runtime the sockets use).
//!
//! The sink thread hands each record to a bounded queue; when it is full (JetStream
//! slow or down) the sink thread waits, its channel fills, the receive loop waits and
//! TCP pushes back on the senders. The NATS thread keeps at most [`MAX_IN_FLIGHT`]
//! publishes waiting for their PubAck; one that fails (an error, no PubAck within
//! [`PUBACK_TIMEOUT`], no stream) is tried again, never dropped, until shutdown gives
//! it up after `drain_max` (counted in `sink_errors`, said on stderr).
//!
//! Commits of acknowledged records go through the same queue, after the records they
//! cover: the NATS thread passes each on to the receive loop only once every record
//! queued before it has its PubAck, so a producer is acknowledged only for what
//! JetStream stored.
//!
//! With `--metrics-bind`, each PubAck's latency (from handing the message to the
//! client) goes into `distlogd_nats_publish_seconds`, and a scrape reads the counters
//! here for the sink's `distlogd_sink_records_*` series.

use crate::ack::Origin;
use crate::config::NatsConfig;
use crate::filter::RecordFilter;
use crate::metrics::Metrics;
use crate::stats::{held_note, NatsCounts, RateLimit};
use crate::subject::record_subject;
use crate::Committed;
use async_nats::jetstream::{self, context::PublishError, stream, Context};
use async_nats::{HeaderMap, ServerAddr};
use bytes::Bytes;
use distlog::topic::Topic;
use distlog::Record;
use futures::channel::mpsc::UnboundedSender;
use futures::future::BoxFuture;
use futures::future::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Publishes waiting for their PubAck at most.
pub const MAX_IN_FLIGHT: usize = 1024;
/// How long a publish may wait for its PubAck before it is tried again.
pub const PUBACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The duplicate window of a stream distlogd creates: a resend of an acknowledged
/// record within it (same `Nats-Msg-Id`) is stored once.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Records (and commits) queued between the sink thread and the NATS thread at most:
/// with the publishes in flight, what the sink holds in memory.
const QUEUE: usize = 1024;
/// How often the NATS thread looks at the clock and the shutdown flag when idle.
const TICK: Duration = Duration::from_millis(100);

/// The header that carries the record's topic letters.
pub const TOPIC_HEADER: &str = "Distlog-Topic";
/// JetStream's deduplication header.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";

/// The `Nats-Msg-Id` of an acknowledged record: `<producer as 32 lower-case hex
/// digits>:<seq>`.
///
/// ```
/// use distlogd::ack::Origin;
/// let id = distlogd::nats::msg_id(&Origin::new([0xab; 16], 7));
/// assert_eq!(id, format!("{}:7", "ab".repeat(16)));
/// ```
pub fn msg_id(origin: &Origin) -> String {
    use std::fmt::Write as _;
    let mut id = String::with_capacity(32 + 1 + 20);
    for b in origin.producer {
        let _ = write!(id, "{b:02x}");
    }
    let _ = write!(id, ":{}", origin.seq);
    id
}

/// One record on its way to JetStream.
#[derive(Clone)]
struct Message {
    subject: String,
    topic: Topic,
    id: Option<String>,
    payload: Bytes,
}

impl Message {
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(TOPIC_HEADER, self.topic.to_string().as_str());
        if let Some(id) = &self.id {
            headers.insert(MSG_ID_HEADER, id.as_str());
        }
        headers
    }
}

enum Item {
    Publish(Message),
    /// Passed on to the receive loop once everything queued before it is stored.
    Commit(Committed),
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    duplicates: AtomicU64,
    failed: AtomicU64,
    in_flight: AtomicU64,
    given_up: AtomicU64,
}

#[derive(Default)]
struct State {
    items: VecDeque<Item>,
    /// The sink thread is done: nothing more comes.
    closed: bool,
    /// Shutdown gave up on JetStream: records handed over are counted, not kept.
    abandoned: bool,
}

/// What the two threads share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the sink thread when the queue has room (or was abandoned).
    not_full: Condvar,
    /// Wakes the NATS thread when something was queued.
    queued: tokio::sync::Notify,
    counters: Counters,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take the queue with it: its state is consistent
        // between any two statements.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item, waiting while the queue is full: the sink's backpressure.
    fn push(&self, item: Item) {
        let mut state = self.lock();
        loop {
            if state.abandoned {
                if let Item::Publish(_) = item {
                    self.counters.given_up.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            if state.items.len() < QUEUE {
                state.items.push_back(item);
                drop(state);
                self.queued.notify_one();
                return;
            }
            state = self.not_full.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Takes up to `max` publishes (and the commits between them) off the queue;
    /// whether the queue is closed and empty.
    fn take(&self, max: usize, out: &mut Vec<Item>) -> bool {
        let mut state = self.lock();
        let mut publishes = 0;
        while publishes < max || matches!(state.items.front(), Some(Item::Commit(_))) {
            match state.items.pop_front() {
                Some(item) => {
                    publishes += usize::from(matches!(item, Item::Publish(_)));
                    out.push(item);
                }
                None => break,
            }
        }
        let done = state.closed && state.items.is_empty();
        // The sink thread waits only on a full queue: waking it once half is free, not
        // for every slot, lets it queue a batch per wakeup instead of one record.
        let wake = !out.is_empty() && state.items.len() <= QUEUE / 2;
        drop(state);
        if wake {
            self.not_full.notify_all();
        }
        done
    }
}

/// A view of the sink's counters for the stats line and the metrics.
#[derive(Clone)]
pub(crate) struct NatsStats(Arc<Shared>);

impl std::fmt::Debug for NatsStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("NatsStats").field(&self.snapshot()).finish()
    }
}

impl NatsStats {
    /// Records handed to the sink and not stored yet: queued for the NATS thread,
    /// published and waiting for their PubAck, or waiting to be tried again. Takes
    /// the queue's lock: for a scrape, not for a hot path.
    pub(crate) fn pending(&self) -> u64 {
        let queued = self
            .0
            .lock()
            .items
            .iter()
            .filter(|i| matches!(i, Item::Publish(_)))
            .count() as u64;
        queued + self.0.counters.in_flight.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> NatsCounts {
        let c = &self.0.counters;
        NatsCounts {
            published: c.published.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            given_up: c.given_up.load(Ordering::Relaxed),
        }
    }
}

/// Why the `nats` sink could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum NatsError {
    /// A server URL does not parse.
    Url {
        /// The URL as configured.
        url: String,
        /// async-nats's reason.
        source: std::io::Error,
    },
    /// The thread or its runtime could not start.
    Start(std::io::Error),
}

impl std::fmt::Display for NatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsError::Url { url, source } => write!(f, "bad NATS server URL {url:?}: {source}"),
            NatsError::Start(e) => write!(f, "cannot start the NATS sink thread: {e}"),
        }
    }
}

impl std::error::Error for NatsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NatsError::Url { source, .. } | NatsError::Start(source) => Some(source),
        }
    }
}

/// The sink thread's end of the `nats` sink.
pub(crate) struct NatsSink {
    pub(crate) filter: RecordFilter,
    config: NatsConfig,
    servers: Vec<ServerAddr>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// With `--metrics-bind`: where PubAck latencies go.
    metrics: Option<Arc<Metrics>>,
}

impl NatsSink {
    /// Checks the URLs; nothing connects before [`NatsSink::start`].
    pub(crate) fn new(
        config: &NatsConfig,
        filter: RecordFilter,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<NatsSink, NatsError> {
        let servers = config
            .urls
            .iter()
            .map(|url| {
                url.parse::<ServerAddr>().map_err(|source| NatsError::Url {
                    url: url.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NatsSink {
            filter,
            config: config.clone(),
            servers,
            shared: Arc::default(),
            thread: None,
            metrics,
        })
    }

    pub(crate) fn stats(&self) -> NatsStats {
        NatsStats(self.shared.clone())
    }

    /// Starts the NATS thread. Commits go on to `committed` once stored; once
    /// `stopping` is set (shutdown began), what JetStream has not stored within
    /// `drain_max` is given up.
    pub(crate) fn start(
        &mut self,
        committed: UnboundedSender<Committed>,
        stopping: Arc<AtomicBool>,
        drain_max: Duration,
    ) -> Result<(), NatsError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NatsError::Start)?;
        let shared = self.shared.clone();
        let config = self.config.clone();
        let servers = self.servers.clone();
        let metrics = self.metrics.clone();
        let handle = std::thread::Builder::new()
            .name("distlogd-nats".into())
            .spawn(move || {
                let publisher = Publisher {
                    config,
                    shared,
                    committed,
                    stopping,
                    drain_max,
                    metrics,
                };
                runtime.block_on(publisher.run(servers));
            })
            .map_err(NatsError::Start)?;
        self.thread = Some(handle);
        Ok(())
    }

    /// Queues a record whose filter passed, waiting while the queue is full.
    pub(crate) fn write(
        &self,
        topic: Topic,
        record: &Record,
        body: &Bytes,
        origin: Option<&Origin>,
    ) {
        let subject = record_subject(
            &self.config.subject_prefix,
            topic,
            record.name().unwrap_or(""),
        );
        self.shared.push(Item::Publish(Message {
            subject,
            topic,
            id: origin.map(msg_id),
            payload: body.clone(),
        }));
    }

    /// Queues a commit report behind the records it covers.
    pub(crate) fn commit(&self, report: Committed) {
        self.shared.push(Item::Commit(report));
    }

    /// Closes the queue and waits for the NATS thread; the records it gave up.
    pub(crate) fn finish(&mut self) -> u64 {
        self.shared.lock().closed = true;
        self.shared.queued.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                eprintln!("distlogd: the NATS sink thread panicked");
            }
        }
        self.shared.counters.given_up.load(Ordering::Relaxed)
    }
}

impl Drop for NatsSink {
    fn drop(&mut self) {
        // Unwinding or never finished: let the NATS thread end on its own.
        self.shared.lock().closed = true;
        self.shared.queued.notify_one();
    }
}

/// The NATS thread's state.
struct Publisher {
    config: NatsConfig,
    shared: Arc<Shared>,
    committed: UnboundedSender<Committed>,
    stopping: Arc<AtomicBool>,
    drain_max: Duration,
    metrics: Option<Arc<Metrics>>,
}

/// A publish's id, its message (kept for a retry), how long it took and how it went.
type Outcome = (
    u64,
    Message,
    Duration,
    Result<jetstream::publish::PublishAck, PublishError>,
);

impl Publisher {
    async fn run(self, servers: Vec<ServerAddr>) {
        let events = Arc::new(Mutex::new(RateLimit::new(5, Duration::from_secs(10))));
        let client = async_nats::ConnectOptions::new()
            .name("distlogd")
            // Down at start is like down later: records wait (bounded), nothing fails.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            // Tried again soon after a restart: the default backs off to seconds.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64).saturating_mul(100).min(1000))
            })
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    // Connection changes always show; failed reconnects are many.
                    let always = matches!(
                        event,
                        async_nats::Event::Connected | async_nats::Event::Disconnected
                    );
                    let pass = if always {
                        Some(0)
                    } else {
                        events.lock().map(|mut l| l.check()).unwrap_or(Some(0))
                    };
                    if let Some(held) = pass {
                        eprintln!("distlogd: nats: {event}{}", held_note(held));
                    }
                }
            })
            .connect(servers)
            .await;
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                // Only a bad option gets here (the servers are retried forever).
                eprintln!("distlogd: nats: cannot connect: {e}");
                self.abandon(0);
                self.wait_closed().await;
                return;
            }
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(PUBACK_TIMEOUT)
            // Ours is the bound; the client's must not refuse or stall below it.
            .max_ack_inflight(MAX_IN_FLIGHT * 2)
            .build(client.clone());
        self.publish_loop(&client, &js).await;
    }

    async fn publish_loop(&self, client: &async_nats::Client, js: &Context) {
        let mut complaints = RateLimit::new(5, Duration::from_secs(10));
        let mut stream_ready = false;
        let mut next_stream_try = Instant::now();
        let mut next_id = 0u64;
        // Taken off the queue and not stored yet: in flight or waiting to be retried.
        let mut unacked: BTreeSet<u64> = BTreeSet::new();
        // Each commit with the id of the first record queued after it.
        let mut commits: VecDeque<(u64, Committed)> = VecDeque::new();
        let mut retry: VecDeque<(u64, Message)> = VecDeque::new();
        let mut in_flight: FuturesUnordered<BoxFuture<'static, Outcome>> = FuturesUnordered::new();
        let mut resume_at = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut deadline: Option<Instant> = None;
        let mut closed_seen = false;
        let mut taken = Vec::new();
        let mut settled: Vec<Outcome> = Vec::with_capacity(MAX_IN_FLIGHT);
        loop {
            let now = Instant::now();
            let (closed, queued) = {
                let s = self.shared.lock();
                (s.closed, s.items.len())
            };
            if deadline.is_none() && (closed || self.stopping.load(Ordering::Relaxed)) {
                deadline = Some(now + self.drain_max);
            }
            if closed && !closed_seen {
                closed_seen = true;
                // Records of the last moments get a chance if JetStream is up.
                deadline = deadline.map(|d| d.max(now + Duration::from_secs(1)));
            }
            let busy = !unacked.is_empty() || queued > 0;
            if closed && !busy {
                break;
            }
            if deadline.is_some_and(|d| now >= d) && busy {
                self.abandon(unacked.len() as u64);
                self.wait_closed().await;
                return;
            }
            let connected = client.connection_state() == async_nats::connection::State::Connected;
            if connected && !stream_ready && now >= next_stream_try {
                match tokio::time::timeout(Duration::from_secs(2), self.ensure_stream(js)).await {
                    Ok(Ok(())) => stream_ready = true,
                    Ok(Err(why)) => {
                        if let Some(held) = complaints.check() {
                            eprintln!(
                                "distlogd: nats: stream {}: {why}; trying again{}",
                                self.config.stream,
                                held_note(held)
                            );
                        }
                        next_stream_try = Instant::now() + Duration::from_secs(1);
                    }
                    Err(_) => next_stream_try = Instant::now() + Duration::from_millis(500),
                }
            }
            if connected && stream_ready && Instant::now() >= resume_at {
                while in_flight.len() < MAX_IN_FLIGHT {
                    let Some((id, m)) = retry.pop_front() else {
                        break;
                    };
                    in_flight.push(publish(js.clone(), id, m));
                }
                let room = MAX_IN_FLIGHT - in_flight.len();
                if room > 0 && retry.is_empty() {
                    self.shared.take(room, &mut taken);
                    for item in taken.drain(..) {
                        match item {
                            Item::Publish(m) => {
                                unacked.insert(next_id);
                                in_flight.push(publish(js.clone(), next_id, m));
                                next_id += 1;
                            }
                            Item::Commit(c) => commits.push_back((next_id, c)),
                        }
                    }
                }
            }
            // Commits whose records are all stored go on, in order.
            while let Some(&(first_after, report)) = commits.front() {
                if unacked.first().is_some_and(|&oldest| oldest < first_after) {
                    break;
                }
                commits.pop_front();
                // The receive loop is gone only at the very end.
                let _ = self.committed.unbounded_send(report);
            }
            self.shared
                .counters
                .in_flight
                .store(unacked.len() as u64, Ordering::Relaxed);
            let can_take = connected
                && stream_ready
                && retry.is_empty()
                && in_flight.len() < MAX_IN_FLIGHT
                && Instant::now() >= resume_at;
            tokio::select! {
                Some(first) = in_flight.next(), if !in_flight.is_empty() => settled.push(first),
                _ = self.shared.queued.notified(), if can_take => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            // Every other PubAck already in, before the loop goes round again: one turn
            // (the lock, the clock, the timer) per wakeup, not per record.
            while settled.len() < MAX_IN_FLIGHT {
                match in_flight.next().now_or_never() {
                    Some(Some(outcome)) => settled.push(outcome),
                    _ => break,
                }
            }
            for (id, m, took, outcome) in settled.drain(..) {
                match outcome {
                    Ok(ack) => {
                        unacked.remove(&id);
                        if let Some(metrics) = &self.metrics {
                            metrics.observe_nats_publish(took);
                        }
                        let c = &self.shared.counters;
                        c.published.fetch_add(1, Ordering::Relaxed);
                        if ack.duplicate {
                            c.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        backoff = Duration::from_millis(100);
                    }
                    Err(e) => {
                        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                        // No responder: the stream is gone (deleted, or never
                        // made on this cluster: made again once the lookup says
                        // so), or its replicas are electing a leader, as for
                        // seconds after its leader's node dies (the lookup then
                        // finds it).
                        let unanswered =
                            e.kind() == jetstream::context::PublishErrorKind::StreamNotFound;
                        if unanswered {
                            stream_ready = false;
                        }
                        if let Some(held) = complaints.check() {
                            let why = if unanswered {
                                "no stream answered (none for the subject, or its replicas \
                                 are electing a leader)"
                                    .to_string()
                            } else {
                                e.to_string()
                            };
                            eprintln!(
                                "distlogd: nats: publish to {} failed: {why}; trying again{}",
                                m.subject,
                                held_note(held)
                            );
                        }
                        retry.push_back((id, m));
                        // A burst of failures waits once, then doubles up to 2 s.
                        let now = Instant::now();
                        if resume_at <= now {
                            resume_at = now + backoff;
                            backoff = (backoff * 2).min(Duration::from_secs(2));
                        }
                    }
                }
            }
        }
        // Closed and everything stored: the last commits go on.
        for (_, report) in commits.drain(..) {
            let _ = self.committed.unbounded_send(report);
        }
        self.shared.counters.in_flight.store(0, Ordering::Relaxed);
    }

    /// Uses the stream if it exists, else creates it: file storage, `<prefix>.>`, the
    /// duplicate window, the configured replicas.
    async fn ensure_stream(&self, js: &Context) -> Result<(), String> {
        let name = &self.config.stream;
        match js.get_stream(name).await {
            Ok(_) => {
                eprintln!("distlogd: nats: using stream {name}");
                return Ok(());
            }
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j) if j.code() == 404 => {}
                _ => return Err(e.to_string()),
            },
        }
        let config = stream::Config {
            name: name.clone(),
            subjects: vec![format!("{}.>", self.config.subject_prefix)],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: self.config.replicas,
            ..Default::default()
        };
        js.create_stream(config).await.map_err(|e| e.to_string())?;
        eprintln!(
            "distlogd: nats: created stream {name} (subjects {}.>, file storage, {} replicas)",
            self.config.subject_prefix, self.config.replicas
        );
        Ok(())
    }

    /// Gives up: counts what is not stored and makes further records count too.
    fn abandon(&self, unacked: u64) {
        let mut state = self.shared.lock();
        state.abandoned = true;
        let queued = state
            .items
            .drain(..)
            .filter(|i| matches!(i, Item::Publish(_)))
            .count() as u64;
        drop(state);
        self.shared.not_full.notify_all();
        let lost = unacked + queued;
        let c = &self.shared.counters;
        c.given_up.fetch_add(lost, Ordering::Relaxed);
        c.in_flight.store(0, Ordering::Relaxed);
        if lost > 0 {
            eprintln!(
                "distlogd: nats: shutting down with JetStream not storing: {lost} records given up, not in stream {} (counted in sink_errors)",
                self.config.stream
            );
        }
    }

    /// After giving up, until the sink thread is done (its records are counted).
    async fn wait_closed(&self) {
        loop {
            if self.shared.lock().closed {
                return;
            }
            let _ = tokio::time::timeout(TICK, self.shared.queued.notified()).await;
        }
    }
}

/// Publishes one message and waits for its PubAck (bounded by the context's timeout),
/// timing the two.
///
/// Each publish is a task of its own. Polled as futures of the NATS thread's one
/// task instead, in a `FuturesUnordered` of 1024, a few of them finished seconds
/// late under a steady flow (measured: the oldest id stayed while 12,000 newer
/// records were stored, with no PubAck timing out), and the oldest record holds
/// every commit queued behind it, so no acknowledgement went out until the flow
/// stopped. As tasks, the oldest in flight trails the newest by about the 1024.
fn publish(js: Context, id: u64, m: Message) -> BoxFuture<'static, Outcome> {
    let (subject, headers, payload) = (m.subject.clone(), m.headers(), m.payload.clone());
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let outcome = match js.publish_with_headers(subject, headers, payload).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        (started.elapsed(), outcome)
    });
    Box::pin(async move {
        match task.await {
            Ok((took, outcome)) => (id, m, took, outcome),
            // It panicked, or the runtime is ending: tried again like any failure.
            Err(e) => (
                id,
                m,
                Duration::ZERO,
                Err(PublishError::with_source(
                    jetstream::context::PublishErrorKind::Other,
                    e,
                )),
            ),
        }
    })
}
