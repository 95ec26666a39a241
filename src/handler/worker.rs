//! The background sender: takes events off the queue, encodes them, and pushes them
//! to the collector(s), reconnecting as needed.
//!
//! Shaped like tracing-appender's worker: block for the first event of a batch, take
//! the rest that are already queued without blocking, frame them all into one buffer
//! and hand that to zeromq at once, then look after the links.

use super::ack::{self, Settled};
use super::link::{append_frame, Batch, Confirm, Link, SendFailure};
use super::queue::{Config, FlushReport, Item, Shared, Spent, SPENT_CHUNK};
use crate::record::Event;
use crate::runtime;
use crate::serialize::{self, callsite::CallSites};
use crate::topic::{Encoding, Kind};
use bytes::Bytes;
use crossbeam_channel::{Receiver, TryRecvError};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bounds of the size a batch's buffer starts with: it grows if need be.
const ARENA_MIN: usize = 4096;
const ARENA_MAX: usize = 1 << 20;
/// Most events taken off the queue before the links are looked after again.
const BATCH: usize = 512;
/// How long an idle worker sleeps before checking its links again.
const TICK: Duration = Duration::from_millis(50);
/// How long the worker keeps looking for events itself after the last one, before it
/// blocks on the queue.
const POLL_FOR: Duration = Duration::from_millis(100);
/// The pause between two looks.
const POLL_EVERY: Duration = Duration::from_micros(500);
/// How long an untracked link must be idle before its queue counts as written.
const UNTRACKED_GRACE: Duration = Duration::from_millis(200);

/// What the application asks of the worker besides sending.
pub(crate) enum Control {
    /// Deliver everything queued before `deadline`, then reply.
    Flush {
        deadline: Instant,
        reply: crossbeam_channel::Sender<FlushReport>,
    },
    /// Like flush, then stop.
    Shutdown {
        deadline: Instant,
        reply: crossbeam_channel::Sender<FlushReport>,
    },
}

/// What one turn of the loop found.
enum State {
    /// Nothing was queued.
    Empty,
    /// Events were sent; keep going.
    Continue,
    /// No link is up; events stay queued until one is.
    Disconnected,
    /// The application asked to stop, or dropped every handle.
    Shutdown,
}

pub(crate) struct Worker {
    events: Receiver<Item>,
    control: Receiver<Control>,
    links: Vec<Link>,
    next_link: usize,
    /// Framed messages waiting for a link: resends first, then the drop report.
    pending: VecDeque<Bytes>,
    shared: Arc<Shared>,
    config: Config,
    log_topic: Bytes,
    perf_topic: Bytes,
    reported_drops: u64,
    last_event: Instant,
    /// The batch being built: its messages, framed, back to back.
    arena: Vec<u8>,
    /// Where each message of that batch ends in `arena`.
    ends: Vec<usize>,
    /// JSON of recent call sites' constant fields.
    call_sites: CallSites,
    /// Buffers of sent events, to go back to the application.
    spent: Vec<Spent>,
    /// The message and key-values of the packed event being encoded, kept between
    /// events for their buffers.
    unpacked: (String, Vec<(crate::record::Key, crate::Value)>),
    /// Acknowledged mode: this handler's producer id, the header flags, and which
    /// seqs are settled; `None` in plain mode.
    acked: Option<Acked>,
}

/// What an item's body is encoded from.
#[derive(Clone, Copy)]
enum Body<'a> {
    Event(&'a Event),
    Record(&'a crate::record::Record),
}

struct Acked {
    producer: [u8; 16],
    flags: u8,
    settled: Settled,
    /// Most records sent or pending and not yet acknowledged.
    window: usize,
}

impl Worker {
    pub(crate) fn new(
        events: Receiver<Item>,
        control: Receiver<Control>,
        shared: Arc<Shared>,
        config: Config,
    ) -> Self {
        let acked = config.acknowledged.then(|| Acked {
            producer: ack::new_producer_id(),
            flags: if config.endpoints.len() == 1 {
                ack::FLAG_SINGLE_ENDPOINT
            } else {
                0
            },
            settled: Settled::default(),
            window: config.ack_window(),
        });
        let confirm = match &acked {
            Some(a) => Confirm::Acked {
                producer: a.producer,
                timeout: config.ack_timeout,
            },
            None => Confirm::Tcp,
        };
        let links = config
            .endpoints
            .iter()
            .map(|e| Link::new(e.clone(), confirm))
            .collect();
        let log_topic = Bytes::from_static(config.topic(Kind::Log).as_bytes());
        let perf_topic = Bytes::from_static(config.topic(Kind::Performance).as_bytes());
        Worker {
            events,
            control,
            links,
            next_link: 0,
            pending: VecDeque::new(),
            shared,
            config,
            log_topic,
            perf_topic,
            reported_drops: 0,
            last_event: Instant::now(),
            arena: Vec::with_capacity(ARENA_MAX),
            ends: Vec::with_capacity(BATCH),
            call_sites: CallSites::new(),
            spent: Vec::with_capacity(SPENT_CHUNK),
            unpacked: (String::new(), Vec::new()),
            acked,
        }
    }

    /// How many more records may be taken off the queue: unlimited in plain mode; in
    /// acknowledged mode, the room left in the window of unacknowledged records.
    fn room(&self) -> usize {
        let Some(a) = &self.acked else {
            return usize::MAX;
        };
        let waiting: usize = self.links.iter().map(Link::outstanding).sum::<usize>()
            + self.pending.len()
            + self.ends.len();
        a.window.saturating_sub(waiting)
    }

    pub(crate) fn run(mut self) {
        crate::loop_guard::mark_internal_thread();
        runtime::block_on(async move {
            loop {
                let state = self.turn().await;
                if let State::Shutdown = state {
                    break;
                }
            }
        });
    }

    async fn turn(&mut self) -> State {
        self.look_after_links().await;
        if let Ok(c) = self.control.try_recv() {
            return self.handle(c).await;
        }
        if !self.links.iter().any(Link::is_up) {
            let wait = self.until_next_retry();
            let control = &self.control;
            self.shared
                .wake
                .wait(false, wait, || !control.is_empty())
                .await;
            return match self.control.try_recv() {
                Ok(c) => self.handle(c).await,
                Err(TryRecvError::Empty) => State::Disconnected,
                Err(TryRecvError::Disconnected) => {
                    self.shutdown(Instant::now() + self.config.flush_timeout)
                        .await
                }
            };
        }
        if !self.send_pending().await {
            return State::Disconnected;
        }
        if self.room() == 0 {
            // Every record the window allows waits for an acknowledgement: look for
            // those, and leave new records on the queue, where the overflow policy
            // applies to them.
            runtime::sleep(POLL_EVERY).await;
            return State::Empty;
        }
        let first = match self.events.try_recv() {
            Ok(e) => e,
            Err(TryRecvError::Empty) if self.last_event.elapsed() < POLL_FOR => {
                // A worker waiting on the queue must be woken by the next log call: a
                // system call of several microseconds on the application's thread,
                // the tail of the caller's cost. While events keep coming, the worker
                // looks for them itself instead.
                runtime::sleep(POLL_EVERY).await;
                return State::Empty;
            }
            Err(TryRecvError::Empty) => {
                let (events, control) = (&self.events, &self.control);
                self.shared
                    .wake
                    .wait(true, TICK, || !events.is_empty() || !control.is_empty())
                    .await;
                return State::Empty;
            }
            Err(TryRecvError::Disconnected) => {
                return self
                    .shutdown(Instant::now() + self.config.flush_timeout)
                    .await
            }
        };
        self.last_event = Instant::now();
        self.shared.stalled.store(false, Ordering::Relaxed);
        self.frame(first);
        self.pump().await;
        // The socket's writers run on this thread: a sender that always finds more
        // to frame would otherwise leave them its batches to pile up unwritten.
        runtime::yield_now().await;
        State::Continue
    }

    fn until_next_retry(&self) -> Duration {
        let next = self
            .links
            .iter()
            .map(Link::retry_at)
            .min()
            .unwrap_or_else(Instant::now);
        next.saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), TICK)
    }

    /// Reconnects links whose retry time has come, counts deliveries, takes back
    /// unacknowledged messages from links that went down, and queues the drop report.
    async fn look_after_links(&mut self) {
        let now = Instant::now();
        for link in &mut self.links {
            if !link.is_up() && link.retry_at() <= now {
                let connected = link
                    .connect(
                        self.config.connect_timeout,
                        self.config.heartbeat,
                        self.config.curve.as_ref(),
                    )
                    .await;
                match connected {
                    Ok(()) => {
                        self.shared.connects.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(why) => {
                        self.shared.failed_connects.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut last) = self.shared.last_connect_error.lock() {
                            *last = Some(why);
                        }
                    }
                }
            }
            let confirmed = link.poll();
            self.shared
                .sent
                .fetch_add(confirmed as u64, Ordering::Relaxed);
            if let Some(a) = &mut self.acked {
                for seq in link.take_settled() {
                    a.settled.settle(seq);
                }
            }
            requeue(&mut self.pending, &self.shared, link.take_unconfirmed());
        }
        self.queue_drop_report();
    }

    /// Once delivery works again, says in-band how many records were dropped, when.
    fn queue_drop_report(&mut self) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped == self.reported_drops || !self.links.iter().any(Link::is_up) {
            return;
        }
        let n = dropped - self.reported_drops;
        self.reported_drops = dropped;
        let first = self.shared.take_first_drop();
        let mut event = Event::new(
            log::Level::Warn,
            "distlog",
            format!(
                "distlog dropped {n} records since {}: queue full or collector unreachable",
                crate::record::asctime(first)
            ),
        );
        event.extra.push(("dropped".into(), n.into()));
        event.extra.push((
            "dropped_since".into(),
            crate::record::epoch_seconds(first).into(),
        ));
        self.frame(Item::Log(Box::new(event)));
        let batch = self.take_batch();
        self.pending.extend(batch.messages());
    }

    /// Encodes an item and appends it to the batch being built, framed for ZMTP.
    fn frame(&mut self, item: Item) {
        match item {
            Item::Packed(mut packed) => {
                // The worker's own buffers are lent to the event while it is encoded,
                // so unpacking allocates nothing once they have grown.
                packed.head.message = std::mem::take(&mut self.unpacked.0);
                packed.head.extra = std::mem::take(&mut self.unpacked.1);
                packed.unpack();
                self.append(Kind::Log, Body::Event(&packed.head));
                self.unpacked = (
                    std::mem::take(&mut packed.head.message),
                    std::mem::take(&mut packed.head.extra),
                );
                // Back to the application for reuse (not a huge one, which would keep
                // its memory); when enough are waiting, freed here.
                if packed.capacity() <= 4096 {
                    // What the next call may not overwrite is let go here, as it was
                    // when the event itself was dropped here.
                    packed.head.context = crate::Value::None;
                    packed.head.exc_text = None;
                    self.spent.push(packed);
                    if self.spent.len() == SPENT_CHUNK {
                        let chunk =
                            std::mem::replace(&mut self.spent, Vec::with_capacity(SPENT_CHUNK));
                        let _ = self.shared.spent.0.try_send(chunk);
                    }
                }
            }
            Item::Log(event) => self.append(Kind::Log, Body::Event(&event)),
            Item::Record(kind, record) => self.append(kind, Body::Record(&record)),
        }
    }

    fn append(&mut self, kind: Kind, body: Body<'_>) {
        let topic = match kind {
            Kind::Performance => &self.perf_topic,
            _ => &self.log_topic,
        };
        let encoding = self.config.encoding;
        if let Some(a) = &mut self.acked {
            let seq = a.settled.issue();
            let base = a.settled.base();
            append_frame(&mut self.arena, true, |out| {
                ack::write_header(out, &a.producer, seq, base, a.flags)
            });
        }
        append_frame(&mut self.arena, true, |out| out.extend_from_slice(topic));
        let (call_sites, process) = (&mut self.call_sites, &self.shared.process);
        append_frame(&mut self.arena, false, |out| match (body, encoding) {
            (Body::Event(event), Encoding::Json) => call_sites.encode(event, process, out),
            (Body::Event(event), Encoding::Pickle) => {
                serialize::encode_fields(&event.fields(process), Encoding::Pickle, out)
            }
            (Body::Record(record), _) => serialize::encode(record, encoding, out),
        });
        self.ends.push(self.arena.len());
    }

    fn take_batch(&mut self) -> Batch {
        let ends = std::mem::replace(&mut self.ends, Vec::with_capacity(BATCH));
        // The next batch's buffer is sized by this one, so that a trickle of records
        // in small batches does not hold a large buffer per record until acknowledged.
        let size = (self.arena.len() + self.arena.len() / 4).clamp(ARENA_MIN, ARENA_MAX);
        let arena = std::mem::replace(&mut self.arena, Vec::with_capacity(size));
        Batch::new(Bytes::from(arena), ends)
    }

    /// Frames what is queued, up to a batch, and sends the batch.
    async fn pump(&mut self) {
        let limit = BATCH.min(self.ends.len().saturating_add(self.room()));
        while self.ends.len() < limit {
            match self.events.try_recv() {
                Ok(e) => self.frame(e),
                Err(_) => break,
            }
        }
        let batch = self.take_batch();
        if batch.len() == 0 {
            return;
        }
        if !self.pending.is_empty() {
            self.pending.extend(batch.messages());
            return;
        }
        if let Err(SendFailure::Down(batch)) = self.send(batch).await {
            self.pending.extend(batch.messages());
        }
    }

    /// Sends what waits in `pending`; false if no link would take it.
    async fn send_pending(&mut self) -> bool {
        while let Some(msg) = self.pending.pop_front() {
            let batch = Batch::new(msg.clone(), vec![msg.len()]);
            if self.send(batch).await.is_err() {
                self.pending.push_front(msg);
                return false;
            }
        }
        true
    }

    /// Sends a batch; with several links up, its messages are dealt over them.
    async fn send(&mut self, batch: Batch) -> Result<(), SendFailure> {
        let up = self.links.iter().filter(|l| l.is_up()).count();
        if up <= 1 || batch.len() <= 1 {
            return self.send_one(batch).await;
        }
        let mut failed = Vec::new();
        for hand in batch.deal(up) {
            if let Err(SendFailure::Down(back)) = self.send_one(hand).await {
                failed.extend(back.messages());
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(SendFailure::Down(Batch::from_messages(&failed)))
        }
    }

    /// Round-robin over the links that are up, a batch at a time.
    async fn send_one(&mut self, mut batch: Batch) -> Result<(), SendFailure> {
        let n = self.links.len();
        for _ in 0..n {
            let i = self.next_link % n;
            self.next_link = self.next_link.wrapping_add(1);
            let link = &mut self.links[i];
            if !link.is_up() {
                continue;
            }
            let count = batch.len() as u64;
            match link.send(batch, self.config.send_timeout).await {
                Ok(tracked) => {
                    if !tracked {
                        self.shared.sent.fetch_add(count, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Err(SendFailure::Down(back)) => {
                    batch = back;
                    requeue(&mut self.pending, &self.shared, link.take_unconfirmed());
                }
            }
        }
        Err(SendFailure::Down(batch))
    }

    async fn handle(&mut self, c: Control) -> State {
        match c {
            Control::Flush { deadline, reply } => {
                let report = self.drain(deadline).await;
                let _ = reply.send(report);
                State::Continue
            }
            Control::Shutdown { deadline, reply } => {
                let state = self.shutdown(deadline).await;
                let _ = reply.send(self.report());
                state
            }
        }
    }

    async fn shutdown(&mut self, deadline: Instant) -> State {
        self.drain(deadline).await;
        // What could not be delivered in time is lost: count it, never hide it.
        let mut lost = self.pending.len() as u64;
        self.pending.clear();
        while self.events.try_recv().is_ok() {
            lost += 1;
        }
        for link in &mut self.links {
            lost += link.outstanding() as u64;
        }
        self.shared.dropped.fetch_add(lost, Ordering::Relaxed);
        self.shared
            .unconfirmed_at_shutdown
            .store(lost, Ordering::Relaxed);
        self.links.clear();
        State::Shutdown
    }

    /// Sends everything queued and waits for it to be delivered, until `deadline`.
    async fn drain(&mut self, deadline: Instant) -> FlushReport {
        loop {
            self.look_after_links().await;
            let any_up = self.links.iter().any(Link::is_up);
            if any_up && self.send_pending().await {
                self.pump().await;
            }
            let queued = self.pending.len() + self.events.len();
            let outstanding: usize = self.links.iter().map(Link::outstanding).sum();
            let untracked_busy = self
                .links
                .iter()
                .any(|l| l.is_up() && !l.is_tracked() && !l.idle_for(UNTRACKED_GRACE));
            if queued == 0 && outstanding == 0 && !untracked_busy {
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            // Every pass waits for something: the socket's readers and writers run on
            // this thread, and a drain that never waited would not read the very
            // acknowledgements it waits for.
            if queued == 0 || !any_up {
                runtime::sleep(Duration::from_millis(if any_up { 1 } else { 10 })).await;
            } else if self.room() == 0 {
                runtime::sleep(POLL_EVERY).await;
            } else {
                runtime::yield_now().await;
            }
        }
        self.report()
    }

    fn report(&self) -> FlushReport {
        let outstanding: usize = self.links.iter().map(Link::outstanding).sum();
        FlushReport {
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            unsent: (self.pending.len() + self.events.len() + outstanding) as u64,
        }
    }
}

/// Puts messages a vanished collector never acknowledged back at the front of the
/// queue, in their original order, and counts them as resent.
fn requeue(pending: &mut VecDeque<Bytes>, shared: &Shared, back: Vec<Bytes>) {
    shared
        .resent
        .fetch_add(back.len() as u64, Ordering::Relaxed);
    for m in back.into_iter().rev() {
        pending.push_front(m);
    }
}
