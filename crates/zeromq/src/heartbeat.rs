//! ZMTP 3.1 heartbeats (RFC 37, PING/PONG). distlog patch.
//!
//! The reader (`ZmqFramedRead`) answers what comes in: it swallows PING and PONG
//! (they never reach the application), hands a PING's context to the writer to be
//! echoed in a PONG, remembers the PING's TTL, and notes that bytes arrived. The
//! writer (`write_message_queue`) sends what goes out: the PONGs, and PINGs every
//! `heartbeat_interval` when the socket asked for them; it also decides that a
//! connection is dead (no traffic within `heartbeat_timeout` after a PING, or within
//! the peer's TTL) and then ends with an error, which makes the backend drop the peer
//! (and a connecting socket reconnect), exactly as for a failed write.
//!
//! Per message this costs nothing: the reader sets a flag per transport read, and
//! the writer looks at it once per tick.

use crate::codec::ZmqCommand;
use crate::SocketOptions;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::task::AtomicWaker;
use parking_lot::Mutex;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::Context;
use std::time::Duration;

/// PONGs waiting for the writer. A peer sends one PING per interval; more than this
/// many unanswered means the writer is stuck, and dropping PONGs then is harmless.
const PONG_QUEUE: usize = 16;

/// State shared by one connection's reader and writer.
#[derive(Default)]
pub(crate) struct HeartbeatShared {
    /// Set by the reader whenever bytes arrive; cleared by the writer's tick.
    activity: AtomicBool,
    /// The TTL of the peer's last PING, in milliseconds (0: none).
    peer_ttl_ms: AtomicU32,
    /// Set once the writer has ended: the connection is over, the reader ends too
    /// (a PUSH's reader would otherwise wait forever on a vanished peer).
    closed: AtomicBool,
    reader_waker: AtomicWaker,
    /// Where the reader sends PING contexts to be echoed; `None` until a writer is
    /// attached (during the handshake, and for backends that write otherwise).
    pongs: Mutex<Option<mpsc::Sender<Bytes>>>,
}

impl HeartbeatShared {
    /// Called by the reader per transport read that returned data.
    #[inline]
    pub(crate) fn note_activity(&self) {
        self.activity.store(true, Ordering::Relaxed);
    }

    /// Called by the reader for a decoded PING or PONG. Returns true when the
    /// command was a heartbeat (and so must not be handed to the socket).
    pub(crate) fn on_command(&self, command: &ZmqCommand) -> bool {
        match command.name {
            crate::codec::ZmqCommandName::PING => {
                let ttl_ms = u32::from(command.ping_ttl()) * 100;
                self.peer_ttl_ms.store(ttl_ms, Ordering::Relaxed);
                if let Some(pongs) = self.pongs.lock().as_mut() {
                    // Full: the writer is stuck on a dead or slow peer; the peer's own
                    // timeout deals with it.
                    let _ = pongs.try_send(command.ping_context());
                }
                true
            }
            crate::codec::ZmqCommandName::PONG => true,
            _ => false,
        }
    }

    /// Whether the connection is over (the reader then ends); registers the
    /// reader's waker first so that the writer's ending wakes it.
    #[inline]
    pub(crate) fn reader_should_end(&self, cx: &mut Context<'_>) -> bool {
        self.reader_waker.register(cx.waker());
        self.closed.load(Ordering::Acquire)
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.pongs.lock().take();
        self.reader_waker.wake();
    }

    /// Called when the reader is dropped: no more PONGs can be requested.
    pub(crate) fn reader_dropped(&self) {
        self.pongs.lock().take();
    }

    /// Attaches a writer: from now on PINGs are answered through it.
    pub(crate) fn attach(self: &std::sync::Arc<Self>, options: &SocketOptions) -> HeartbeatWriter {
        let (sender, receiver) = mpsc::channel(PONG_QUEUE);
        *self.pongs.lock() = Some(sender);
        let interval = options.heartbeat_interval;
        HeartbeatWriter {
            shared: self.clone(),
            pongs: receiver,
            interval,
            // libzmq: ZMQ_HEARTBEAT_TIMEOUT defaults to ZMQ_HEARTBEAT_IVL.
            timeout: options.heartbeat_timeout.or(interval),
            ttl_ds: options
                .heartbeat_ttl
                .map(|ttl| u16::try_from(ttl.as_millis() / 100).unwrap_or(u16::MAX))
                .unwrap_or(0),
        }
    }
}

/// The writer's side: PONGs to send, and the clock.
pub(crate) struct HeartbeatWriter {
    shared: std::sync::Arc<HeartbeatShared>,
    pub(crate) pongs: mpsc::Receiver<Bytes>,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    /// TTL announced in our PINGs, deciseconds (RFC 37's unit).
    ttl_ds: u16,
}

/// What the writer does at a tick.
pub(crate) enum Tick {
    Nothing,
    Ping(ZmqCommand),
    Dead,
}

/// The writer's clock state for one connection.
pub(crate) struct HeartbeatClock {
    last_rx: std::time::Instant,
    last_ping: std::time::Instant,
    /// When we sent the first PING that nothing has answered yet.
    awaiting_since: Option<std::time::Instant>,
}

impl HeartbeatWriter {
    /// How often the writer should tick, `None` when it has nothing to watch
    /// (no heartbeats asked for and the peer announced no TTL).
    pub(crate) fn tick_period(&self) -> Option<Duration> {
        let peer_ttl = match self.shared.peer_ttl_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        };
        let shortest = [
            self.interval,
            self.timeout.filter(|_| self.interval.is_some()),
            peer_ttl,
        ]
        .into_iter()
        .flatten()
        .min()?;
        // A quarter of the shortest limit: a dead peer is noticed within 1.25× it.
        Some((shortest / 4).max(Duration::from_millis(5)))
    }

    pub(crate) fn clock(&self) -> HeartbeatClock {
        let now = std::time::Instant::now();
        HeartbeatClock {
            last_rx: now,
            last_ping: now,
            awaiting_since: None,
        }
    }

    pub(crate) fn tick(&self, clock: &mut HeartbeatClock) -> Tick {
        let now = std::time::Instant::now();
        if self.shared.activity.swap(false, Ordering::Relaxed) {
            clock.last_rx = now;
            clock.awaiting_since = None;
        }
        if let (Some(since), Some(timeout)) = (clock.awaiting_since, self.timeout) {
            if now.duration_since(since) >= timeout {
                return Tick::Dead;
            }
        }
        let peer_ttl = self.shared.peer_ttl_ms.load(Ordering::Relaxed);
        if peer_ttl > 0
            && now.duration_since(clock.last_rx) >= Duration::from_millis(u64::from(peer_ttl))
        {
            return Tick::Dead;
        }
        if let Some(interval) = self.interval {
            if now.duration_since(clock.last_ping) >= interval {
                clock.last_ping = now;
                clock.awaiting_since.get_or_insert(now);
                return Tick::Ping(ZmqCommand::ping(self.ttl_ds, Bytes::new()));
            }
        }
        Tick::Nothing
    }
}

impl Drop for HeartbeatWriter {
    fn drop(&mut self) {
        // The writer has ended (queue closed, write error or heartbeat timeout).
        self.shared.close();
    }
}

/// For sockets that write to a connection directly, under a lock (SUB, XPUB): a
/// task that writes the PONGs the reader asks for. It holds the writer weakly, so
/// it ends when the socket drops the peer (and then ends the reader); it sends no
/// PINGs and watches no TTL (see DISTLOG-PATCH.md, sixth change).
pub(crate) fn spawn_pong_writer(
    mut heartbeat: HeartbeatWriter,
    writer: std::sync::Weak<futures::lock::Mutex<std::pin::Pin<Box<crate::codec::ZmqFramedWrite>>>>,
) {
    use futures::{SinkExt, StreamExt};
    crate::async_rt::task::spawn(async move {
        while let Some(context) = heartbeat.pongs.next().await {
            let Some(writer) = writer.upgrade() else {
                return;
            };
            let pong = crate::codec::Message::Command(ZmqCommand::pong(context));
            if writer.lock().await.send(pong).await.is_err() {
                return;
            }
        }
    });
}
