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
use async_nats::jetstream::{self, stream, Context};
use async_nats::{HeaderMap, HeaderName, ServerAddr, Subject};
use bytes::Bytes;
use distlog::topic::Topic;
use futures::channel::mpsc::UnboundedSender;
use futures::future::FutureExt;
use futures::stream::StreamExt;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
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

/// The reply subject of record `id`'s publish, `<inbox>.<id>`: every PubAck comes
/// back under the one inbox the sink subscribes to, and the id says whose it is.
///
/// ```
/// assert_eq!(distlogd::nats::reply_subject("_INBOX.abc", 1234), "_INBOX.abc.1234");
/// ```
pub fn reply_subject(inbox: &str, id: u64) -> String {
    // Once per record: itoa rather than the formatter.
    let mut digits = itoa::Buffer::new();
    let id = digits.format(id);
    let mut reply = String::with_capacity(inbox.len() + 1 + id.len());
    reply.push_str(inbox);
    reply.push('.');
    reply.push_str(id);
    reply
}

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
    subject: Subject,
    topic: Topic,
    id: Option<String>,
    payload: Bytes,
}

/// What every publish of the loop shares: the PubAck inbox, and the
/// `Distlog-Topic` header of each topic seen, built once (a clone per message costs
/// a fraction of building the map again: hashing, the name's lookup).
struct Outbox {
    inbox: String,
    headers: Vec<(Topic, HeaderMap)>,
}

impl Outbox {
    fn new(inbox: String) -> Outbox {
        Outbox {
            inbox,
            headers: Vec::new(),
        }
    }

    /// A message's headers: its topic's, and its `Nats-Msg-Id` if it has one.
    fn headers(&mut self, m: &Message) -> HeaderMap {
        let mut headers = self.topic_headers(m.topic);
        if let Some(id) = &m.id {
            headers.insert(HeaderName::from_static(MSG_ID_HEADER), id.as_str());
        }
        headers
    }

    fn topic_headers(&mut self, topic: Topic) -> HeaderMap {
        if let Some((_, headers)) = self.headers.iter().find(|(t, _)| *t == topic) {
            return headers.clone();
        }
        let mut headers = HeaderMap::new();
        // The three letters are ASCII: no formatter, no String of its own.
        let letters = topic.to_bytes();
        headers.insert(
            HeaderName::from_static(TOPIC_HEADER),
            std::str::from_utf8(&letters).unwrap_or("???"),
        );
        self.headers.push((topic, headers.clone()));
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

/// Subjects made from a topic and a logger, kept: loggers are few, and a kept
/// subject costs a reference count where a new one is a string built on the sink
/// thread and freed on the NATS thread.
struct Subjects {
    prefix: String,
    /// By the topic's system and kind letters: the encoding is not in the subject.
    by_topic: Vec<([u8; 2], KeptSubjects)>,
}

/// A topic's kept subjects, by logger.
type KeptSubjects = HashMap<Box<str>, Subject>;

/// Subjects kept per topic at most: a program that makes up logger names without end
/// gets its subjects built again, not unbounded memory.
const SUBJECTS_KEPT: usize = 4096;

impl Subjects {
    fn new(prefix: &str) -> Subjects {
        Subjects {
            prefix: prefix.to_string(),
            by_topic: Vec::new(),
        }
    }

    fn get(&mut self, topic: Topic, logger: &str) -> Subject {
        let letters = topic.to_bytes();
        let key = [letters[0], letters[1]];
        let i = match self.by_topic.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                self.by_topic.push((key, HashMap::new()));
                self.by_topic.len() - 1
            }
        };
        let kept = &mut self.by_topic[i].1;
        if let Some(subject) = kept.get(logger) {
            return subject.clone();
        }
        if kept.len() >= SUBJECTS_KEPT {
            kept.clear();
        }
        let subject = Subject::from(record_subject(&self.prefix, topic, logger));
        kept.insert(logger.into(), subject.clone());
        subject
    }
}

/// The sink thread's end of the `nats` sink.
pub(crate) struct NatsSink {
    pub(crate) filter: RecordFilter,
    config: NatsConfig,
    subjects: RefCell<Subjects>,
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
            subjects: RefCell::new(Subjects::new(&config.subject_prefix)),
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

    /// Queues a record of `logger` whose filter passed, waiting while the queue is full.
    pub(crate) fn write(&self, topic: Topic, logger: &str, body: &Bytes, origin: Option<&Origin>) {
        let subject = self.subjects.borrow_mut().get(topic, logger);
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

impl Publisher {
    async fn run(self, servers: Vec<ServerAddr>) {
        let events = Arc::new(Mutex::new(RateLimit::new(5, Duration::from_secs(10))));
        let client = async_nats::ConnectOptions::new()
            .name("distlogd")
            // Down at start is like down later: records wait (bounded), nothing fails.
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(2))
            // Room for every pending record sent twice over (a timeout resends while
            // the first copy may still wait in the queue of a reconnecting client),
            // so that a publish does not wait (see `Publisher::send`).
            .client_capacity(MAX_IN_FLIGHT * 4)
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
                self.give_up(0).await;
                return;
            }
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(PUBACK_TIMEOUT)
            .build(client.clone());
        self.publish_loop(&client, &js).await;
    }

    async fn publish_loop(&self, client: &async_nats::Client, js: &Context) {
        // Every PubAck comes to one subscription, `<inbox>.<id>`: no task, future,
        // timer or reply mux per record, which cost this thread most of its time as
        // jetstream::Context::publish (BENCHMARKS.md, "JetStream").
        let mut outbox = Outbox::new(client.new_inbox());
        let mut acks = match client.subscribe(format!("{}.*", outbox.inbox)).await {
            Ok(acks) => acks,
            Err(e) => {
                // Only a closed client gets here.
                eprintln!("distlogd: nats: cannot subscribe to PubAcks: {e}");
                self.give_up(0).await;
                return;
            }
        };
        let mut complaints = RateLimit::new(5, Duration::from_secs(10));
        let mut stream_ready = false;
        let mut next_stream_try = Instant::now();
        // Taken off the queue and not stored yet: in flight or waiting to be retried.
        // Nothing is taken while it spans MAX_IN_FLIGHT ids.
        let mut pending = Window::default();
        // Each commit with the id of the first record queued after it.
        let mut commits: VecDeque<(u64, Committed)> = VecDeque::new();
        // Ids of `pending` to publish again (an id already stored is skipped).
        let mut retry: VecDeque<u64> = VecDeque::new();
        let mut resume_at = Instant::now();
        let mut backoff = Duration::from_millis(100);
        let mut deadline: Option<Instant> = None;
        let mut closed_seen = false;
        let mut next_sweep = Instant::now() + TICK;
        let mut taken = Vec::new();
        let mut answers: Vec<async_nats::Message> = Vec::with_capacity(MAX_IN_FLIGHT);
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
            let busy = !pending.is_empty() || queued > 0;
            if closed && !busy {
                break;
            }
            if deadline.is_some_and(|d| now >= d) && busy {
                self.give_up(pending.len() as u64).await;
                return;
            }
            if now >= next_sweep {
                next_sweep = now + TICK;
                // No PubAck in time: the message or its answer was lost (a node died,
                // the connection dropped), or it is very late. Published again; a late
                // answer to either copy settles it.
                for (id, p) in pending.iter_mut() {
                    if p.sent
                        .is_some_and(|sent| now.duration_since(sent) >= PUBACK_TIMEOUT)
                    {
                        p.sent = None;
                        retry.push_back(id);
                        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                        if let Some(held) = complaints.check() {
                            eprintln!(
                                "distlogd: nats: no PubAck for {} within {PUBACK_TIMEOUT:?}; trying again{}",
                                p.message.subject,
                                held_note(held)
                            );
                        }
                    }
                }
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
            let sending = connected && stream_ready && Instant::now() >= resume_at;
            if sending {
                // One clock read for the batch: its records went out within
                // microseconds of each other, far inside PUBACK_TIMEOUT's grain.
                let now = Instant::now();
                while let Some(id) = retry.pop_front() {
                    if let Some(p) = pending.get_mut(id) {
                        if !self
                            .send(client, &mut outbox, id, p, now, &mut complaints)
                            .await
                        {
                            retry.push_front(id);
                            self.failed_send(&mut resume_at, &mut backoff);
                            break;
                        }
                    }
                }
                let room = MAX_IN_FLIGHT.saturating_sub(pending.span());
                if room > 0 && retry.is_empty() {
                    self.shared.take(room, &mut taken);
                    for item in taken.drain(..) {
                        match item {
                            Item::Publish(message) => {
                                let id = pending.push(Pending {
                                    message,
                                    sent: None,
                                });
                                // A failed send (the client closing) waits in retry.
                                let sent = match pending.get_mut(id) {
                                    Some(p) if retry.is_empty() => {
                                        self.send(client, &mut outbox, id, p, now, &mut complaints)
                                            .await
                                    }
                                    _ => false,
                                };
                                if !sent {
                                    retry.push_back(id);
                                }
                            }
                            Item::Commit(c) => commits.push_back((pending.next_id(), c)),
                        }
                    }
                    if !retry.is_empty() {
                        self.failed_send(&mut resume_at, &mut backoff);
                    }
                }
            }
            // Commits whose records are all stored go on, in order.
            while let Some(&(first_after, report)) = commits.front() {
                if pending.oldest().is_some_and(|oldest| oldest < first_after) {
                    break;
                }
                commits.pop_front();
                // The receive loop is gone only at the very end.
                let _ = self.committed.unbounded_send(report);
            }
            self.shared
                .counters
                .in_flight
                .store(pending.len() as u64, Ordering::Relaxed);
            let can_take = connected
                && stream_ready
                && retry.is_empty()
                && pending.span() < MAX_IN_FLIGHT
                && Instant::now() >= resume_at;
            tokio::select! {
                answer = acks.next(), if !pending.is_empty() => match answer {
                    Some(answer) => answers.push(answer),
                    None => {
                        // The client closed: nothing more can be stored.
                        eprintln!("distlogd: nats: the connection closed");
                        self.give_up(pending.len() as u64).await;
                        return;
                    }
                },
                _ = self.shared.queued.notified(), if can_take => {}
                _ = tokio::time::sleep(TICK) => {}
            }
            // Every other PubAck already in, before the loop goes round again: one turn
            // (the lock, the clock, the timer) per wakeup, not per record.
            while answers.len() < MAX_IN_FLIGHT {
                match acks.next().now_or_never() {
                    Some(Some(answer)) => answers.push(answer),
                    _ => break,
                }
            }
            let now = Instant::now();
            for answer in answers.drain(..) {
                let Some(id) = answer
                    .subject
                    .rsplit('.')
                    .next()
                    .and_then(|token| token.parse::<u64>().ok())
                else {
                    continue;
                };
                let Some(p) = pending.get_mut(id) else {
                    // The answer to a copy sent again after a timeout, or stray.
                    continue;
                };
                match pub_ack(&answer) {
                    Ok(duplicate) => {
                        if let (Some(metrics), Some(sent)) = (&self.metrics, p.sent) {
                            metrics.observe_nats_publish(now.saturating_duration_since(sent));
                        }
                        pending.remove(id);
                        let c = &self.shared.counters;
                        c.published.fetch_add(1, Ordering::Relaxed);
                        if duplicate {
                            c.duplicates.fetch_add(1, Ordering::Relaxed);
                        }
                        backoff = Duration::from_millis(100);
                    }
                    Err(why) => {
                        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                        if why == Refusal::NoStream {
                            stream_ready = false;
                        }
                        if let Some(held) = complaints.check() {
                            eprintln!(
                                "distlogd: nats: publish to {} failed: {why}; trying again{}",
                                p.message.subject,
                                held_note(held)
                            );
                        }
                        if p.sent.take().is_some() {
                            retry.push_back(id);
                        }
                        self.failed_send(&mut resume_at, &mut backoff);
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

    /// Publishes a pending record with its reply subject; false when the client is
    /// closed (the record waits for a retry).
    ///
    /// The client's command queue (4 × [`MAX_IN_FLIGHT`]) holds every pending record
    /// sent several times over, so this does not wait, connected or not: the loop
    /// keeps its clock (timeouts, the shutdown deadline) while NATS is away.
    async fn send(
        &self,
        client: &async_nats::Client,
        outbox: &mut Outbox,
        id: u64,
        p: &mut Pending,
        now: Instant,
        complaints: &mut RateLimit,
    ) -> bool {
        let m = &p.message;
        let sent = client
            .publish_with_reply_and_headers(
                m.subject.clone(),
                reply_subject(&outbox.inbox, id),
                outbox.headers(m),
                m.payload.clone(),
            )
            .await;
        match sent {
            Ok(()) => {
                p.sent = Some(now);
                true
            }
            Err(e) => {
                self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = complaints.check() {
                    eprintln!(
                        "distlogd: nats: cannot publish to {}: {e}; trying again{}",
                        m.subject,
                        held_note(held)
                    );
                }
                false
            }
        }
    }

    /// A burst of failures waits once, then doubles up to 2 s.
    fn failed_send(&self, resume_at: &mut Instant, backoff: &mut Duration) {
        let now = Instant::now();
        if *resume_at <= now {
            *resume_at = now + *backoff;
            *backoff = (*backoff * 2).min(Duration::from_secs(2));
        }
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

    /// Gives up: counts what is not stored, makes further records count too, and
    /// waits until the sink thread is done.
    async fn give_up(&self, unacked: u64) {
        self.abandon(unacked);
        self.wait_closed().await;
    }

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

/// A record taken off the queue and not stored yet.
struct Pending {
    message: Message,
    /// When it was last published; `None` while it waits to be published again.
    sent: Option<Instant>,
}

/// The records taken off the queue and not stored yet, by id. Ids are given in
/// order, so this is a ring from the oldest not stored: its commits wait for it.
#[derive(Default)]
struct Window {
    /// The id of `slots[0]`.
    first: u64,
    /// `None` for a record stored while an older one was not.
    slots: VecDeque<Option<Pending>>,
    /// The `Some` slots.
    count: usize,
}

impl Window {
    /// Adds a record under the next id, which it returns.
    fn push(&mut self, p: Pending) -> u64 {
        let id = self.next_id();
        self.slots.push_back(Some(p));
        self.count += 1;
        id
    }

    fn next_id(&self) -> u64 {
        self.first + self.slots.len() as u64
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Pending> {
        let i = usize::try_from(id.checked_sub(self.first)?).ok()?;
        self.slots.get_mut(i)?.as_mut()
    }

    /// Settles a record: stored.
    fn remove(&mut self, id: u64) {
        let slot = id
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get_mut(i));
        if let Some(slot @ Some(_)) = slot {
            *slot = None;
            self.count -= 1;
        }
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first += 1;
        }
    }

    /// The oldest id not stored.
    fn oldest(&self) -> Option<u64> {
        (self.count > 0).then_some(self.first)
    }

    fn len(&self) -> usize {
        self.count
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// From the oldest not stored to the newest: what bounds the memory held.
    fn span(&self) -> usize {
        self.slots.len()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut Pending)> {
        let first = self.first;
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, slot)| Some((first + i as u64, slot.as_mut()?)))
    }
}

/// Why JetStream did not store a record.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No stream answered: none for the subject, or its replicas are electing a
    /// leader, as for seconds after its leader's node dies.
    NoStream,
    /// JetStream answered with an error.
    JetStream {
        code: u16,
        err_code: u64,
        description: String,
    },
    /// The answer was neither a PubAck nor an error.
    Unreadable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NoStream => f.write_str(
                "no stream answered (none for the subject, or its replicas are electing a leader)",
            ),
            Refusal::JetStream {
                code,
                err_code,
                description,
            } => write!(
                f,
                "JetStream error {code} (err_code {err_code}): {description}"
            ),
            Refusal::Unreadable(why) => write!(f, "unreadable answer: {why}"),
        }
    }
}

/// `Some(false)` (stored, not a duplicate) for a PubAck in nats-server's usual shape,
/// `{"stream":"S", "seq":N}` or `{"stream":"S", "domain":"D", "seq":N}` (JSON
/// whitespace anywhere between tokens), names of printable ASCII; `None` for
/// anything else, duplicates and errors among them, which [`pub_ack`] leaves to
/// serde_json. An exact shape rather than a search: one answer arrives per record.
fn plain_pub_ack(payload: &[u8]) -> Option<bool> {
    // JSON's whitespace, which is not `trim_ascii`'s (that also takes \x0C).
    fn ws(b: &u8) -> bool {
        matches!(b, b' ' | b'\t' | b'\n' | b'\r')
    }
    fn trim_start(text: &[u8]) -> &[u8] {
        &text[text.iter().position(|b| !ws(b)).unwrap_or(text.len())..]
    }
    fn trim_end(text: &[u8]) -> &[u8] {
        &text[..text.iter().rposition(|b| !ws(b)).map_or(0, |i| i + 1)]
    }
    // `text` after `token` and the whitespace before it.
    fn after<'a>(text: &'a [u8], token: &[u8]) -> Option<&'a [u8]> {
        trim_start(text).strip_prefix(token)
    }
    // What follows a string of printable ASCII without escapes (anything else, even
    // valid JSON, goes to serde_json), from after its opening quote.
    fn string(text: &[u8]) -> Option<&[u8]> {
        let end = text.iter().position(|&b| b == b'"')?;
        let plain = text[..end]
            .iter()
            .all(|&b| (b' '..=b'~').contains(&b) && b != b'\\');
        plain.then(|| &text[end + 1..])
    }
    let stream = after(after(after(payload, b"{")?, b"\"stream\"")?, b":")?;
    let rest = after(string(after(stream, b"\"")?)?, b",")?;
    let rest = match after(rest, b"\"domain\"") {
        Some(domain) => after(string(after(after(domain, b":")?, b"\"")?)?, b",")?,
        None => rest,
    };
    let seq = trim_start(after(after(rest, b"\"seq\"")?, b":")?);
    let seq = trim_end(trim_end(seq).strip_suffix(b"}")?);
    // A u64, as serde_json reads it: digits only (no sign, fraction or exponent),
    // no leading zero.
    let digits = seq.iter().all(u8::is_ascii_digit) && (seq == b"0" || !seq.starts_with(b"0"));
    let fits = std::str::from_utf8(seq).ok()?.parse::<u64>().is_ok();
    (digits && fits).then_some(false)
}

/// What a publish's answer says: stored (and whether as a duplicate), or refused.
fn pub_ack(answer: &async_nats::Message) -> Result<bool, Refusal> {
    if answer.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
        return Err(Refusal::NoStream);
    }
    if answer.status.is_none() {
        if let Some(duplicate) = plain_pub_ack(&answer.payload) {
            return Ok(duplicate);
        }
    }
    parsed_pub_ack(&answer.payload)
}

/// [`pub_ack`] for a payload of any shape, by serde_json.
fn parsed_pub_ack(payload: &[u8]) -> Result<bool, Refusal> {
    #[derive(serde::Deserialize)]
    struct Answer {
        seq: Option<u64>,
        #[serde(default)]
        duplicate: bool,
        error: Option<ApiError>,
    }
    #[derive(serde::Deserialize)]
    struct ApiError {
        #[serde(default)]
        code: u16,
        #[serde(default)]
        err_code: u64,
        #[serde(default)]
        description: String,
    }
    match serde_json::from_slice::<Answer>(payload) {
        Ok(Answer { error: Some(e), .. }) => Err(Refusal::JetStream {
            code: e.code,
            err_code: e.err_code,
            description: e.description,
        }),
        Ok(Answer {
            seq: Some(_),
            duplicate,
            ..
        }) => Ok(duplicate),
        Ok(_) => Err(Refusal::Unreadable(format!(
            "{:?}",
            String::from_utf8_lossy(payload)
        ))),
        Err(e) => Err(Refusal::Unreadable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(n: u8) -> Pending {
        Pending {
            message: Message {
                subject: Subject::from(format!("s.{n}")),
                topic: Topic::parse(b"PLJ").expect("a topic"),
                id: None,
                payload: Bytes::from(vec![n]),
            },
            sent: None,
        }
    }

    #[test]
    fn a_plain_pub_ack_reads_as_serde_json_reads_it() {
        let cases: [(&[u8], Option<bool>); 14] = [
            (br#"{"stream":"DISTLOG","seq":1}"#, Some(false)),
            // nats-server 2.9 writes a space after the comma.
            (br#"{"stream":"Q", "seq":1}"#, Some(false)),
            (
                br#" { "stream" : "Q" , "domain" : "d" , "seq" : 12 } "#,
                Some(false),
            ),
            (br#"{"stream":"S","domain":"hub","seq":5}"#, Some(false)),
            (br#"{"stream":"S","seq":}"#, None),
            (br#"{"stream":"S","seq":5,"x":1}"#, None),
            // Duplicates, errors, escapes and other shapes go to serde_json.
            (br#"{"stream":"DISTLOG","seq":77,"duplicate":true}"#, None),
            (br#"{"stream":"Q", "seq":2,"duplicate": true}"#, None),
            (br#"{"stream":"S","seq":5,"duplicate": false}"#, None),
            (
                br#"{"stream":"S","error":{"code":503,"err_code":10077,"description":"x"}}"#,
                None,
            ),
            (br#"{"stream":"a\"seq\":1","seq":2}"#, None),
            (br#"{"error":{"code":400,"description":"bad"}}"#, None),
            (br#"{"stream":"S"}"#, None),
            (b"", None),
        ];
        for (payload, want) in cases {
            let text = String::from_utf8_lossy(payload);
            assert_eq!(plain_pub_ack(payload), want, "{text}");
            if let Some(duplicate) = want {
                assert_eq!(parsed_pub_ack(payload), Ok(duplicate), "{text}");
            }
        }
        assert!(parsed_pub_ack(br#"{"stream":"S"}"#).is_err());
        assert_eq!(
            parsed_pub_ack(br#"{"stream":"S","seq":77,"duplicate":true}"#),
            Ok(true)
        );
        let mut outbox = Outbox::new("_INBOX.abc".into());
        let mut m = pending(1).message;
        let topic_only = outbox.headers(&m);
        assert_eq!(
            topic_only.get(TOPIC_HEADER).map(|v| v.as_str()),
            Some("PLJ")
        );
        assert!(topic_only.get(MSG_ID_HEADER).is_none());
        m.id = Some("ab:7".into());
        let with_id = outbox.headers(&m);
        assert_eq!(with_id.get(MSG_ID_HEADER).map(|v| v.as_str()), Some("ab:7"));
        // The kept map is not changed by a message's id.
        assert!(outbox
            .headers(&pending(2).message)
            .get(MSG_ID_HEADER)
            .is_none());
    }

    #[test]
    fn the_plain_reading_never_disagrees_with_serde_json() {
        // Answers mutated at random (a byte inserted, removed or replaced): where
        // the exact-shape check answers, serde_json gives the same answer.
        let bases: [&[u8]; 4] = [
            br#"{"stream":"Q", "seq":1}"#,
            br#"{"stream":"DISTLOG","domain":"hub","seq":123456}"#,
            br#"{"stream":"Q", "seq":2,"duplicate": true}"#,
            br#"{"error":{"code":503,"description":"x"},"stream":"Q","seq":0}"#,
        ];
        let alphabet = b" \t\n\r\x0c\"\\{}:,0123456789seqdomainstreamerrorduplicatetrue";
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let (mut answered, mut tried) = (0, 0);
        for _ in 0..20_000 {
            let mut payload = bases[next(bases.len())].to_vec();
            for _ in 0..1 + next(3) {
                let at = next(payload.len() + 1);
                let byte = alphabet[next(alphabet.len())];
                match next(3) {
                    0 => payload.insert(at, byte),
                    1 if at < payload.len() => {
                        payload.remove(at);
                    }
                    _ if at < payload.len() => payload[at] = byte,
                    _ => payload.push(byte),
                }
            }
            tried += 1;
            if let Some(duplicate) = plain_pub_ack(&payload) {
                answered += 1;
                assert_eq!(
                    parsed_pub_ack(&payload),
                    Ok(duplicate),
                    "{}",
                    String::from_utf8_lossy(&payload)
                );
            }
        }
        // The mutations must leave some answers in the plain shape, or the test
        // would check nothing.
        assert!(answered > tried / 50, "{answered} of {tried}");
    }

    #[test]
    fn the_window_waits_for_its_oldest_record() {
        let mut w = Window::default();
        assert_eq!((w.oldest(), w.next_id()), (None, 0));
        let ids: Vec<u64> = (0..4).map(|n| w.push(pending(n))).collect();
        assert_eq!(ids, [0, 1, 2, 3]);
        // Stored out of order: the oldest, and so the span, stays.
        w.remove(2);
        w.remove(1);
        assert_eq!((w.oldest(), w.len(), w.span()), (Some(0), 2, 4));
        assert!(w.get_mut(1).is_none());
        assert_eq!(
            w.get_mut(3).map(|p| p.message.payload.to_vec()),
            Some(vec![3])
        );
        // A second answer, or one for an id never given, changes nothing.
        w.remove(2);
        w.remove(99);
        assert_eq!((w.len(), w.span()), (2, 4));
        w.remove(0);
        assert_eq!((w.oldest(), w.len(), w.span()), (Some(3), 1, 1));
        let left: Vec<u64> = w.iter_mut().map(|(id, _)| id).collect();
        assert_eq!(left, [3]);
        w.remove(3);
        assert!(w.is_empty());
        // Empty, it goes on from the next id.
        assert_eq!((w.oldest(), w.span(), w.push(pending(4))), (None, 0, 4));
    }

    #[test]
    fn kept_subjects_are_the_subjects_record_subject_makes() {
        let mut subjects = Subjects::new("p");
        let plj = Topic::parse(b"PLJ").expect("a topic");
        let plp = Topic::parse(b"PLP").expect("a topic");
        let tpj = Topic::parse(b"TPJ").expect("a topic");
        for _ in 0..2 {
            for (topic, logger) in [(plj, "shop.orders"), (plp, "shop.orders"), (tpj, "a b")] {
                assert_eq!(
                    subjects.get(topic, logger).as_str(),
                    record_subject("p", topic, logger)
                );
            }
        }
        // JSON and pickle share their subject; the system letter does not.
        assert_eq!(subjects.by_topic.len(), 2);
        for i in 0..SUBJECTS_KEPT + 10 {
            let logger = format!("l{i}");
            assert_eq!(subjects.get(plj, &logger).as_str(), format!("p.P.L.l{i}"));
        }
        assert!(subjects
            .by_topic
            .iter()
            .all(|(_, kept)| kept.len() <= SUBJECTS_KEPT));
    }
}
