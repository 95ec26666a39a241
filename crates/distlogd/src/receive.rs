//! The receive loop: takes messages from the PULL and ROUTER sockets, checks and
//! decodes them, re-publishes them, hands batches to the sink thread and sends the
//! acknowledgements that commits allow.

use crate::ack::{AckHeader, AckHeaderError, Origin, ProducerId};
use crate::acks::{AckState, Checkpoint, Conn};
use crate::batch::{Batch, Channels, Committed, Entry};
use crate::config::SinkKind;
use crate::error::CollectorError;
use crate::examine::{Examined, Examiner, Rejection};
use crate::lanes::{Handed, Lanes, Taken};
use crate::metrics::Metrics;
use crate::runtime::{sleep, timeout};
use crate::stats::{held_note, AckCounts, RateLimit};
use crate::{CollectorStats, Config};
use bytes::Bytes;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use distlog::serialize::MessageError;
use distlog::topic::Topic;
use futures::channel::mpsc::UnboundedReceiver;
use futures::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
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
/// How long sending one acknowledgement may hold up the receive loop; one that does
/// not go out in time is sent with the next, which covers it.
const ACK_SEND_WAIT: Duration = Duration::from_millis(20);
/// Connections with state kept at most; past it those with nothing to acknowledge go.
const MAX_CONNECTIONS: usize = 65_536;

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
    curve: Option<crate::curve::Curve>,
    /// Set (by SIGHUP in `distlogd`) to reread the allow file.
    reload: &'a AtomicBool,
    /// How messages are examined (the receive lanes examine theirs the same way).
    examiner: Examiner,
    /// The process's shutdown flag: a wait on full sinks gives up after drain_max.
    shutdown: &'a AtomicBool,
    /// Set when shutdown begins, for the nats sink.
    stopping: Arc<AtomicBool>,
    #[cfg(feature = "nats")]
    nats_stats: Option<crate::nats::NatsStats>,
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
    filter: &'a crate::filter::RecordFilter,
    /// Its place in the config's sinks, which names it in the metrics.
    index: usize,
    /// Records handed to zeromq, and those zeromq refused.
    written: u64,
    failed: u64,
}

/// What woke the receive loop while it waited.
enum Woke {
    Pull(ZmqResult<ZmqMessage>),
    Router(ZmqResult<ZmqMessage>),
    /// A batch from the receive lanes, or `None` when every lane is gone.
    Lanes(Option<Handed>),
    Committed(Committed),
    Timeout,
}

/// Waits for the first of: a message on either socket, a batch from the lanes, a
/// commit, or `wait`.
async fn wait_any(
    pull: Option<&mut PullSocket>,
    router: Option<&mut RouterSocket>,
    mut lanes: Option<&mut futures::channel::mpsc::Receiver<Handed>>,
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
        if let Some(Poll::Ready(b)) = lanes.as_mut().map(|l| l.poll_next_unpin(cx)) {
            return Poll::Ready(Woke::Lanes(b));
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
            .map_err(CollectorError::binding(endpoint))?;
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

/// Where the loop takes a message from, each going first in turn.
#[derive(Clone, Copy)]
enum From {
    Pull,
    Router,
    Lanes,
}

/// What the loop took: a message from one of its sockets, or one a lane examined.
enum Got {
    Socket(Source, ZmqResult<ZmqMessage>),
    Lane(Taken),
}

/// The receive loop's sockets, and what the lanes have handed over and it has not
/// taken yet.
struct Intake {
    pull: Option<PullSocket>,
    router: Option<RouterSocket>,
    lanes: Option<Lanes>,
    /// A batch from the lanes, taken one message at a time, in turn with the sockets
    /// (a whole batch at once would give a lane's producers its length in turns).
    lane_batch: std::vec::IntoIter<Taken>,
    /// The lane that handed `lane_batch` over, and what of it was taken and not
    /// kept, to go back there to be freed.
    lane: usize,
    spent: Vec<ZmqMessage>,
    turn: usize,
}

impl Intake {
    /// A message ready now, from each source in turn.
    fn try_next(&mut self) -> Option<Got> {
        const ORDER: [From; 3] = [From::Pull, From::Router, From::Lanes];
        self.turn = (self.turn + 1) % ORDER.len();
        (0..ORDER.len()).find_map(|k| self.try_from(ORDER[(self.turn + k) % ORDER.len()]))
    }

    fn try_from(&mut self, from: From) -> Option<Got> {
        match from {
            From::Pull => self
                .pull
                .as_mut()?
                .try_recv()
                .map(|m| Got::Socket(Source::Pull, m)),
            From::Router => self
                .router
                .as_mut()?
                .try_recv()
                .map(|m| Got::Socket(Source::Router, m)),
            From::Lanes => {
                if let Some(t) = self.lane_batch.next() {
                    return Some(Got::Lane(t));
                }
                self.give_back();
                let lanes = self.lanes.as_mut()?;
                if !lanes.may_have_batch() {
                    return None;
                }
                match lanes.rx.as_mut()?.try_recv() {
                    Ok(batch) => self.lane_from(Some(batch)),
                    Err(futures::channel::mpsc::TryRecvError::Closed) => self.lane_from(None),
                    Err(futures::channel::mpsc::TryRecvError::Empty) => None,
                }
            }
        }
    }

    /// Sends what was taken of the last batch and not kept back to its lane.
    fn give_back(&mut self) {
        if self.spent.is_empty() {
            return;
        }
        let spent = std::mem::take(&mut self.spent);
        if let Some(l) = self.lanes.as_ref() {
            l.give_back(self.lane, spent);
        }
    }

    /// Starts on a batch the lanes handed over; `None`: every lane is gone.
    fn lane_from(&mut self, batch: Option<Handed>) -> Option<Got> {
        match batch {
            Some(b) => {
                if let Some(l) = self.lanes.as_ref() {
                    l.took_batch();
                }
                self.give_back();
                self.lane = b.lane;
                self.lane_batch = b.taken.into_iter();
                self.lane_batch.next().map(Got::Lane)
            }
            None => {
                if let Some(l) = self.lanes.as_mut() {
                    l.rx = None;
                }
                None
            }
        }
    }
}

/// Binds the PULL socket on every input: TCP inputs shared with the lanes when there
/// are several receive threads, the others on the socket alone.
async fn bind_inputs(
    socket: &mut PullSocket,
    config: &Config,
    options: impl FnMut() -> zeromq::SocketOptions,
    examiner: Examiner,
) -> Result<Option<Lanes>, CollectorError> {
    if config.receive_threads <= 1 {
        bind_all(socket, &config.inputs, "listening on").await?;
        return Ok(None);
    }
    let mut options = options;
    let lane_sockets: Vec<PullSocket> = (1..config.receive_threads)
        .map(|_| PullSocket::with_options(options()))
        .collect();
    let counts: Vec<_> = std::iter::once(socket.peer_count())
        .chain(lane_sockets.iter().map(PullSocket::peer_count))
        .collect();
    let mut shared = Vec::new();
    for endpoint in &config.inputs {
        match crate::lanes::bind_shared(endpoint, &counts)? {
            Some(s) => shared.push(s),
            None => bind_all(socket, std::slice::from_ref(endpoint), "listening on").await?,
        }
    }
    if shared.is_empty() {
        return Ok(None);
    }
    let (lanes, firsts) = Lanes::start(shared, lane_sockets, examiner)?;
    for (endpoint, streams) in firsts {
        let shown = endpoint.to_string();
        socket
            .bind_listener(zeromq::Listener::TcpStreams { endpoint, streams })
            .await
            .map_err(CollectorError::binding(&shown))?;
        eprintln!("distlogd: listening on {shown}");
    }
    eprintln!(
        "distlogd: receiving TCP inputs on {} threads",
        config.receive_threads
    );
    Ok(Some(lanes))
}

/// How the receive loop treats what it takes, decided from the sinks.
pub(crate) struct ReceiveOptions {
    pub(crate) check_only: bool,
    pub(crate) keep_bodies: bool,
    pub(crate) copies_bodies: bool,
    pub(crate) stopping: Arc<AtomicBool>,
    #[cfg(feature = "nats")]
    pub(crate) nats_stats: Option<crate::nats::NatsStats>,
}

pub(crate) async fn receive<'a>(
    config: &'a Config,
    shutdown: &'a AtomicBool,
    reload: &'a AtomicBool,
    curve: Option<crate::curve::Curve>,
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
    let examiner = Examiner {
        limits: config.limits,
        max_body_bytes: config.max_body_bytes,
        check_only: options.check_only,
        writes: tx.is_some(),
        keep_bodies: options.keep_bodies,
        copies_bodies: options.copies_bodies,
    };
    let (mut pull, mut lanes) = (None, None);
    if !config.inputs.is_empty() {
        let mut socket = PullSocket::with_options(input_options());
        lanes = bind_inputs(&mut socket, config, input_options, examiner).await?;
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
            dedup: crate::dedup::Dedup::new(),
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
        examiner,
        shutdown,
        stopping: options.stopping,
        #[cfg(feature = "nats")]
        nats_stats: options.nats_stats,
        last_stats: Instant::now(),
        last_received: 0,
        acked,
        metrics,
    };

    let mut intake = Intake {
        pull,
        router,
        lanes,
        lane_batch: Vec::new().into_iter(),
        lane: 0,
        spent: Vec::new(),
        turn: 0,
    };
    let mut drain_start: Option<Instant> = None;
    let mut last_message = Instant::now();
    let mut ready_in_a_row = 0usize;
    let mut failed_in_a_row = 0u32;
    loop {
        let received = match intake.try_next() {
            Some(got) => {
                ready_in_a_row += 1;
                if ready_in_a_row.is_multiple_of(BATCH) {
                    r.hand_over(drain_start.is_some())?;
                    r.send_acks(intake.router.as_mut()).await;
                    r.publish_metrics();
                    r.maybe_stats();
                    r.maybe_reload();
                    YieldNow(false).await;
                }
                Some(got)
            }
            None => {
                if ready_in_a_row > 0 {
                    // The clock is read once per run of ready messages, not per message.
                    last_message = Instant::now();
                }
                ready_in_a_row = 0;
                r.hand_over(drain_start.is_some())?;
                r.send_acks(intake.router.as_mut()).await;
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
                let lane_rx = intake.lanes.as_mut().and_then(|l| l.rx.as_mut());
                let woke = wait_any(
                    intake.pull.as_mut(),
                    intake.router.as_mut(),
                    lane_rx,
                    commits,
                    wait,
                )
                .await;
                let got = match woke {
                    Woke::Pull(m) => Some(Got::Socket(Source::Pull, m)),
                    Woke::Router(m) => Some(Got::Socket(Source::Router, m)),
                    Woke::Lanes(batch) => intake.lane_from(batch),
                    Woke::Committed(report) => {
                        if let Some(a) = r.acked.as_mut() {
                            a.on_commit(report);
                        }
                        r.send_acks(intake.router.as_mut()).await;
                        r.publish_metrics();
                        None
                    }
                    Woke::Timeout => None,
                };
                if matches!(
                    got,
                    Some(Got::Socket(_, Ok(_)) | Got::Lane(Taken::Message(..)))
                ) {
                    last_message = Instant::now();
                }
                got
            }
        };
        match received {
            None => {}
            Some(Got::Socket(Source::Pull, Ok(message))) => {
                failed_in_a_row = 0;
                r.take(message, None).await;
            }
            Some(Got::Socket(Source::Router, Ok(message))) => {
                failed_in_a_row = 0;
                r.take_acked(message).await;
            }
            Some(Got::Lane(taken)) => {
                if let Some(spent) = r.take_from_lane(taken).await {
                    intake.spent.push(spent);
                }
            }
            Some(Got::Socket(_, Err(e))) => {
                r.transport_error(&e.to_string());
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
    if let Some(lanes) = intake.lanes.as_mut() {
        // What the lanes received before they saw the stop is taken as the loop's
        // own is: they stop once nothing more is ready, or when drain_max is up.
        lanes.stop_accepting();
        let end = drain_start.unwrap_or_else(Instant::now) + config.drain_max;
        while let Some(rx) = lanes.rx.as_mut() {
            let left = end.saturating_duration_since(Instant::now());
            match timeout(left, rx.next()).await {
                Some(Some(Handed { taken: batch, .. })) => {
                    for taken in batch {
                        r.take_from_lane(taken).await;
                    }
                    r.hand_over(true)?;
                }
                Some(None) | None => lanes.rx = None,
            }
        }
        lanes.join();
    }
    let Intake {
        pull,
        mut router,
        lanes,
        ..
    } = intake;
    drop(lanes);
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
    r.stats.curve = r.curve.as_ref().map(crate::curve::Curve::counts);
    r.stats.acked = r.acked.as_ref().map(|a| a.counts);
    Ok(r.stats)
}

impl Receiving<'_> {
    /// Checks, decodes, re-publishes and batches one `[topic, body]` message; `true`
    /// when it went into the batch for the sink thread (which must then hold it).
    async fn take(&mut self, message: ZmqMessage, origin: Option<Origin>) -> bool {
        let verdict = self.examiner.examine(&message);
        self.take_examined(message, verdict, origin).await.0
    }

    /// [`Receiving::take`] of a message already examined (by a receive lane); also
    /// gives the message back when nothing kept it, for the lane that allocated it to
    /// free (freeing on another thread contends on the allocator's locks).
    async fn take_examined(
        &mut self,
        message: ZmqMessage,
        verdict: Result<(Topic, Examined), Rejection>,
        origin: Option<Origin>,
    ) -> (bool, Option<ZmqMessage>) {
        self.stats.received += 1;
        let (topic, examined) = match verdict {
            Ok(ok) => ok,
            Err(rejected) => {
                self.reject(rejected.reason, &rejected.what);
                return (false, Some(message));
            }
        };
        self.stats.accepted += 1;
        let last = self.pubs.len().wrapping_sub(1);
        // The body goes to the sinks as it came when the record was only checked, or
        // beside the record for a sink that publishes it as it came.
        let body = match (&self.tx, &examined) {
            (Some(_), Examined::Body(_)) => message.get(1).cloned(),
            (Some(_), Examined::Record(_)) if self.examiner.keep_bodies => message.get(1).cloned(),
            _ => None,
        };
        let mut message = Some(message);
        for (i, p) in self.pubs.iter_mut().enumerate() {
            let passes = match &examined {
                Examined::Record(r) => p.filter.matches(topic, r),
                Examined::Body(_) | Examined::Valid => p.filter.matches_topic(topic),
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
            return (false, message);
        }
        let entry = match (examined, body) {
            (Examined::Record(record), body) => Entry::Record(topic, record, origin, body),
            (Examined::Body(checked), Some(body)) => Entry::Body(topic, body, origin, checked),
            _ => return (false, message),
        };
        self.batch.entries.push(entry);
        self.batch.acked |= origin.is_some();
        (true, message)
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
            ack.push_back(Bytes::copy_from_slice(&crate::ack::ack_frame(
                &producer, seq,
            )));
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

    /// Takes what a receive lane handed over: the message back when nothing kept it.
    async fn take_from_lane(&mut self, taken: Taken) -> Option<ZmqMessage> {
        match taken {
            Taken::Message(message, verdict) => self.take_examined(message, verdict, None).await.1,
            Taken::TransportError(e) => {
                self.transport_error(&e);
                None
            }
        }
    }

    /// Counts a socket's error and reports it (rate-limited).
    fn transport_error(&mut self, e: &str) {
        self.stats.transport_errors += 1;
        if let Some(held) = self.transport.check() {
            eprintln!("distlogd: transport error: {e}{}", held_note(held));
        }
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
            self.curve.as_ref().map(crate::curve::Curve::counts),
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
        self.stats.curve = self.curve.as_ref().map(crate::curve::Curve::counts);
        self.stats.acked = self.acked.as_ref().map(|a| a.counts);
        #[cfg(feature = "nats")]
        {
            self.stats.nats = self
                .nats_stats
                .as_ref()
                .map(crate::nats::NatsStats::snapshot);
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
