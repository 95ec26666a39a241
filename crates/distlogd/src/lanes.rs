//! Receive lanes: TCP inputs received on several threads.
//!
//! With [`Config::receive_threads`](crate::Config::receive_threads) above one, each TCP
//! input is bound once, here, and a dealer thread accepts its connections and deals
//! them out: each to the socket with the fewest peers, the receive loop's own PULL
//! socket first among equals. A lane is a PULL socket on a thread and runtime of its own:
//! it reads and examines (checks or decodes) what its peers send and hands the results
//! to the receive loop in batches, which counts, publishes and writes them as it does
//! its own. Examining is most of the work per record, so many producers are received
//! on as many cores; one producer stays on one socket, its records in order.
//!
//! The channel from the lanes is bounded: when the receive loop falls behind, the
//! lanes stop reading and TCP pushes back on their senders, as for the loop's own
//! socket. Dealing to the fewest keeps the lanes' shares of the producers equal, which
//! the receive loop's fair turns between its sources then keep for every producer.

use crate::error::CollectorError;
use crate::examine::{Examined, Examiner, Rejection};
use crate::runtime::{block_on_here, timeout};
use distlog::topic::Topic;
use futures::channel::mpsc::{self, Receiver, Sender, UnboundedReceiver, UnboundedSender};
use futures::SinkExt;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zeromq::{
    Endpoint, Listener, PeerCount, PullSocket, Socket, SocketRecv, TryIntoEndpoint, ZmqMessage,
};

/// Messages a lane hands over at once, at most.
const LANE_BATCH: usize = 256;
/// Batches in flight from all lanes to the receive loop.
const LANE_CHANNEL: usize = 4;
/// How long a lane waits for a message before looking at the stop flag.
const LANE_TICK: Duration = Duration::from_millis(50);
/// Connections waiting to be accepted on a shared listener.
const BACKLOG: i32 = 1024;
/// How long a connection dealt to a socket counts as its peer before its handshake
/// is done: a burst of connections is spread before any has finished, and one that
/// never does (a port probe) stops counting soon after.
const HANDSHAKE_GRACE: Duration = Duration::from_millis(5);

/// A message a lane received and examined, or its socket's error.
pub(crate) enum Taken {
    Message(ZmqMessage, Result<(Topic, Examined), Rejection>),
    TransportError(String),
}

/// A shared input's endpoint and the connections dealt to one socket on it.
pub(crate) type Dealt = (Endpoint, UnboundedReceiver<TcpStream>);

/// A batch a lane hands over, and which lane it was.
pub(crate) struct Handed {
    pub(crate) lane: usize,
    pub(crate) taken: Vec<Taken>,
}

/// A TCP input bound here, whose connections its dealer deals out.
pub(crate) struct Shared {
    /// The endpoint with its port resolved, as announced.
    pub(crate) endpoint: Endpoint,
    /// What the receive loop's own socket takes.
    pub(crate) first: UnboundedReceiver<TcpStream>,
    /// What each lane takes, in lane order.
    rest: Vec<UnboundedReceiver<TcpStream>>,
    dealer: Dealer,
}

/// Binds `endpoint` for the sockets whose peers `counts` counts when it is a TCP
/// endpoint; `Ok(None)` for any other (ipc), which the receive loop binds itself.
pub(crate) fn bind_shared(
    endpoint: &str,
    counts: &[PeerCount],
) -> Result<Option<Shared>, CollectorError> {
    let bind_error = CollectorError::binding(endpoint);
    let parsed = TryIntoEndpoint::try_into(endpoint).map_err(|e| bind_error(e.into()))?;
    let Endpoint::Tcp(host, port) = parsed else {
        return Ok(None);
    };
    let listener = listen(&host.to_string(), port).map_err(|e| bind_error(e.into()))?;
    let resolved = listener.local_addr().map_err(|e| bind_error(e.into()))?;
    let (mut senders, mut receivers) = (Vec::new(), Vec::new());
    for count in counts {
        let (tx, rx) = mpsc::unbounded();
        senders.push((tx, count.clone()));
        receivers.push(rx);
    }
    let first = receivers.remove(0);
    let dealer = Dealer::start(listener, senders).map_err(|e| bind_error(e.into()))?;
    Ok(Some(Shared {
        endpoint: Endpoint::Tcp(host, resolved.port()),
        first,
        rest: receivers,
        dealer,
    }))
}

/// Binds and listens as zeromq's own TCP bind would (each address `host` resolves to
/// in turn), with a blocking listener for the dealer thread.
fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(BACKLOG))
        {
            Ok(()) => return Ok(socket.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("{host} resolves to no address"),
        )
    }))
}

/// The thread that accepts a shared listener's connections and deals them out.
struct Dealer {
    /// The same listening socket, to shut down: that wakes the thread's `accept`.
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Dealer {
    fn start(
        listener: TcpListener,
        to: Vec<(UnboundedSender<TcpStream>, PeerCount)>,
    ) -> std::io::Result<Dealer> {
        let stop = Arc::new(AtomicBool::new(false));
        let accepting = listener.try_clone()?;
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("distlogd-accept".into())
            .spawn(move || deal(accepting, to, &flag))?;
        Ok(Dealer {
            listener,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops accepting: connections not yet accepted are refused from now on.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Linux wakes an `accept` blocked on a listener that is shut down.
        let _ = socket2::SockRef::from(&self.listener).shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Dealer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accepts connections and hands each to the socket with the fewest peers (those
/// dealt to it in the last [`HANDSHAKE_GRACE`] included; the receive loop's own
/// socket first among equals, so that a lone producer is received on one thread),
/// until stopped or no socket takes them.
fn deal(
    listener: TcpListener,
    to: Vec<(UnboundedSender<TcpStream>, PeerCount)>,
    stop: &AtomicBool,
) {
    let mut recent: Vec<Vec<Instant>> = vec![Vec::new(); to.len()];
    let mut gone = vec![false; to.len()];
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let now = Instant::now();
                let mut stream = Some(stream);
                while let Some(s) = stream.take() {
                    let fewest = (0..to.len()).filter(|&i| !gone[i]).min_by_key(|&i| {
                        recent[i].retain(|t| now.saturating_duration_since(*t) < HANDSHAKE_GRACE);
                        to[i].1.get() + recent[i].len()
                    });
                    let Some(i) = fewest else {
                        return;
                    };
                    match to[i].0.unbounded_send(s) {
                        Ok(()) => recent[i].push(now),
                        Err(refused) => {
                            gone[i] = true;
                            stream = Some(refused.into_inner());
                        }
                    }
                }
            }
            Err(_) if stop.load(Ordering::Relaxed) => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Out of descriptors, or a connection reset before it was accepted:
                // zeromq's own accept loop goes on too; a pause keeps it from spinning.
                eprintln!("distlogd: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// The lanes and the dealers of the shared TCP inputs.
pub(crate) struct Lanes {
    /// What every lane hands over; ends when every lane is gone.
    pub(crate) rx: Option<Receiver<Handed>>,
    /// Batches sent on `rx` and not yet taken: a load the receive loop can afford
    /// per message, where looking at the channel itself costs more.
    queued: Arc<AtomicUsize>,
    /// Messages taken and not kept, back to the lane that allocated them.
    back: Vec<crossbeam_channel::Sender<Vec<ZmqMessage>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    dealers: Vec<Dealer>,
}

impl Lanes {
    /// Starts one lane per socket of `sockets`: lane `i` takes the `i`-th of each
    /// input's receivers beyond the first.
    pub(crate) fn start(
        shared: Vec<Shared>,
        sockets: Vec<PullSocket>,
        examiner: Examiner,
    ) -> Result<(Lanes, Vec<Dealt>), CollectorError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(LANE_CHANNEL);
        let mut firsts = Vec::new();
        let mut per_lane: Vec<Vec<Dealt>> = Vec::new();
        let mut dealers = Vec::new();
        for s in shared {
            for (i, r) in s.rest.into_iter().enumerate() {
                if per_lane.len() <= i {
                    per_lane.push(Vec::new());
                }
                per_lane[i].push((s.endpoint.clone(), r));
            }
            firsts.push((s.endpoint, s.first));
            dealers.push(s.dealer);
        }
        let mut lanes = Lanes {
            rx: Some(rx),
            queued: Arc::new(AtomicUsize::new(0)),
            back: Vec::new(),
            stop: stop.clone(),
            threads: Vec::new(),
            dealers,
        };
        for (i, (binds, socket)) in per_lane.into_iter().zip(sockets).enumerate() {
            let (tx, stop, queued) = (tx.clone(), stop.clone(), lanes.queued.clone());
            let (back, spent) = crossbeam_channel::bounded(LANE_CHANNEL);
            lanes.back.push(back);
            let thread = std::thread::Builder::new()
                .name(format!("distlogd-lane-{}", i + 1))
                .spawn(move || lane(i, binds, socket, examiner, (tx, spent, queued), &stop))
                .map_err(CollectorError::LaneStart)?;
            lanes.threads.push(thread);
        }
        Ok((lanes, firsts))
    }

    /// Whether a batch may be waiting on `rx` (one just sent may not show yet; the
    /// receive loop's wait looks at the channel itself).
    pub(crate) fn may_have_batch(&self) -> bool {
        self.queued.load(Ordering::Acquire) > 0
    }

    /// Notes that a batch was taken from `rx`.
    pub(crate) fn took_batch(&self) {
        // Taken before its lane counted it, the count is one short for a moment:
        // saturate rather than wrap, and the next batch's count makes up for it.
        let _ = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Hands messages back to lane `lane` to free; freed here if it has enough
    /// waiting already.
    pub(crate) fn give_back(&self, lane: usize, spent: Vec<ZmqMessage>) {
        if let Some(back) = self.back.get(lane) {
            let _ = back.try_send(spent);
        }
    }

    /// Stops accepting on the shared inputs and tells the lanes to stop once nothing
    /// more is ready; what they hand over until then must still be taken from `rx`.
    pub(crate) fn stop_accepting(&mut self) {
        for d in &mut self.dealers {
            d.stop();
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the lane threads, after `rx` has ended (or was given up on).
    pub(crate) fn join(&mut self) {
        self.rx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        self.stop_accepting();
        self.join();
    }
}

/// One lane: its PULL socket takes the connections dealt to it on each shared input.
fn lane(
    index: usize,
    binds: Vec<Dealt>,
    mut socket: PullSocket,
    examiner: Examiner,
    (mut tx, spent, queued): (
        Sender<Handed>,
        crossbeam_channel::Receiver<Vec<ZmqMessage>>,
        Arc<AtomicUsize>,
    ),
    stop: &AtomicBool,
) {
    let run = async move {
        for (endpoint, streams) in binds {
            if let Err(e) = socket
                .bind_listener(Listener::TcpStreams { endpoint, streams })
                .await
            {
                let taken = vec![Taken::TransportError(e.to_string())];
                let _ = tx.send(Handed { lane: index, taken }).await;
                return;
            }
        }
        let take = |m: zeromq::ZmqResult<ZmqMessage>| match m {
            Ok(message) => {
                let verdict = examiner.examine(&message);
                Taken::Message(message, verdict)
            }
            Err(e) => Taken::TransportError(e.to_string()),
        };
        let mut taken = Vec::with_capacity(LANE_BATCH);
        let mut failed_at: Option<Instant> = None;
        loop {
            // What the receive loop is done with is freed here, where it was allocated.
            while spent.try_recv().is_ok() {}
            while taken.len() < LANE_BATCH {
                match socket.try_recv() {
                    Some(m) => taken.push(take(m)),
                    None => break,
                }
            }
            if !taken.is_empty() {
                let failing = matches!(taken.last(), Some(Taken::TransportError(_)));
                let batch = std::mem::replace(&mut taken, Vec::with_capacity(LANE_BATCH));
                if tx
                    .send(Handed {
                        lane: index,
                        taken: batch,
                    })
                    .await
                    .is_err()
                {
                    // The receive loop is gone.
                    break;
                }
                queued.fetch_add(1, Ordering::Release);
                if failing {
                    // Do not spin if the transport keeps failing.
                    if failed_at.is_some_and(|t| t.elapsed() < Duration::from_millis(10)) {
                        crate::runtime::sleep(Duration::from_millis(10)).await;
                    }
                    failed_at = Some(Instant::now());
                }
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if let Some(m) = timeout(LANE_TICK, socket.recv()).await {
                taken.push(take(m));
            }
        }
        let _ = socket.close().await;
    };
    if let Err(e) = block_on_here(run) {
        eprintln!("distlogd: a receive lane could not start its runtime: {e}");
    }
}
