//! One collector endpoint: a zeromq PUSH socket that distlog reconnects itself.
//!
//! zeromq 0.7's PUSH socket never delivers again after its peer restarts, and its
//! `connect` blocks until it succeeds or times out. So a link owns one socket at a
//! time: when the peer goes away it drops that socket, hands back every message the
//! peer never acknowledged, and a later [`Link::connect`] makes a fresh one.

use super::delivery::{self, Tracker};
use crate::runtime;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use zeromq::{Socket, SocketEvent, SocketOptions, SocketSend, ZmqMessage};

/// Most messages a link lets zeromq hold before their delivery is confirmed; past
/// this zeromq's own queue would grow until `send` blocks forever.
const MAX_UNCONFIRMED: usize = 50_000;

pub(crate) struct Link {
    pub(crate) endpoint: String,
    port: Option<u16>,
    up: Option<Up>,
    retry_at: Instant,
    backoff: Duration,
    /// Unacknowledged messages from the last connection, to send again.
    stash: Vec<ZmqMessage>,
    /// Messages confirmed delivered and not yet reported to the worker.
    newly_delivered: usize,
}

struct Up {
    socket: zeromq::PushSocket,
    events: futures::channel::mpsc::Receiver<SocketEvent>,
    tracker: Option<Tracker>,
    /// Wire bytes handed to zeromq on this connection.
    written: u64,
    /// Messages handed to zeromq and not yet acknowledged, with the wire offset at
    /// which each ends.
    unconfirmed: VecDeque<(u64, ZmqMessage)>,
    /// When zeromq last accepted a message, for links that cannot be tracked.
    last_send: Instant,
}

/// Why a send did not go through.
pub(crate) enum SendFailure {
    /// The peer is gone or stuck; the message comes back for another try.
    Down(ZmqMessage),
}

impl Link {
    pub(crate) fn new(endpoint: String) -> Link {
        let port = endpoint
            .strip_prefix("tcp://")
            .and_then(|rest| rest.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok());
        Link {
            endpoint,
            port,
            up: None,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(20),
            stash: Vec::new(),
            newly_delivered: 0,
        }
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.is_some()
    }

    pub(crate) fn retry_at(&self) -> Instant {
        self.retry_at
    }

    /// Whether this link can tell delivered from merely queued.
    pub(crate) fn is_tracked(&self) -> bool {
        self.up.as_ref().is_some_and(|u| u.tracker.is_some())
    }

    /// Tries once to connect; on failure schedules the next try with backoff.
    pub(crate) async fn connect(&mut self, timeout: Duration) -> bool {
        let mut options = SocketOptions::default();
        options.connect_timeout(timeout);
        let mut socket = zeromq::PushSocket::with_options(options);
        let before = delivery::before_connect(self.port);
        let ok = runtime::timeout(
            timeout + Duration::from_millis(50),
            socket.connect(&self.endpoint),
        )
        .await;
        if !matches!(ok, Some(Ok(()))) {
            self.retry_at = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
            return false;
        }
        let events = socket.monitor();
        let tracker = self.port.and_then(|p| delivery::track_new(p, &before));
        self.backoff = Duration::from_millis(20);
        self.up = Some(Up {
            socket,
            events,
            tracker,
            written: 0,
            unconfirmed: VecDeque::new(),
            last_send: Instant::now(),
        });
        true
    }

    /// Hands a message to zeromq, waiting at most `timeout` for it to take it.
    pub(crate) async fn send(
        &mut self,
        msg: ZmqMessage,
        timeout: Duration,
    ) -> Result<bool, SendFailure> {
        let Some(up) = self.up.as_mut() else {
            return Err(SendFailure::Down(msg));
        };
        if up.tracker.is_some() && up.unconfirmed.len() >= MAX_UNCONFIRMED {
            // The peer is not keeping up: wait for acknowledgements, not zeromq.
            let deadline = Instant::now() + timeout;
            while up.unconfirmed.len() >= MAX_UNCONFIRMED {
                match Self::confirm_up(up) {
                    Some(n) if Instant::now() <= deadline => self.newly_delivered += n,
                    _ => {
                        self.go_down();
                        return Err(SendFailure::Down(msg));
                    }
                }
                if up.unconfirmed.len() >= MAX_UNCONFIRMED {
                    runtime::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        let tracked = up.tracker.is_some();
        let size = msg.iter().map(|f| delivery::wire_len(&[f])).sum::<u64>();
        // Frames are reference-counted, so keeping a copy for a resend is cheap.
        let copy = msg.clone();
        let sent = {
            // Most sends complete at once; only a send that has to wait pays for a timer.
            let mut send = std::pin::pin!(up.socket.send(msg));
            match futures::poll!(send.as_mut()) {
                std::task::Poll::Ready(r) => Some(r),
                std::task::Poll::Pending => runtime::timeout(timeout, send).await,
            }
        };
        match sent {
            Some(Ok(())) => {
                up.last_send = Instant::now();
                if tracked {
                    up.written += size;
                    up.unconfirmed.push_back((up.written, copy));
                }
                Ok(tracked)
            }
            _ => {
                self.go_down();
                Err(SendFailure::Down(copy))
            }
        }
    }

    fn confirm_up(up: &mut Up) -> Option<usize> {
        let tracker = up.tracker.as_ref()?;
        let delivered = tracker.delivered()?;
        let mut n = 0;
        while up
            .unconfirmed
            .front()
            .is_some_and(|(end, _)| *end <= delivered)
        {
            up.unconfirmed.pop_front();
            n += 1;
        }
        Some(n)
    }

    /// Counts newly acknowledged messages, and notices a peer that went away.
    /// Returns how many messages were confirmed delivered.
    pub(crate) fn poll(&mut self) -> usize {
        let Some(up) = self.up.as_mut() else {
            return std::mem::take(&mut self.newly_delivered);
        };
        let mut gone = false;
        while let Ok(event) = up.events.try_recv() {
            if matches!(event, SocketEvent::Disconnected(_)) {
                gone = true;
            }
        }
        if up.tracker.is_some() {
            match Self::confirm_up(up) {
                Some(n) => self.newly_delivered += n,
                None => gone = true,
            }
        }
        let confirmed = std::mem::take(&mut self.newly_delivered);
        if gone {
            self.go_down();
        }
        confirmed
    }

    /// Messages handed to zeromq whose delivery is not confirmed yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.up.as_ref().map_or(0, |u| u.unconfirmed.len())
    }

    /// For an untracked link: whether zeromq has had time to write what it was given.
    pub(crate) fn idle_for(&self, d: Duration) -> bool {
        self.up.as_ref().is_none_or(|u| u.last_send.elapsed() >= d)
    }

    /// Marks the link down, dropping its socket.
    fn go_down(&mut self) {
        if let Some(up) = self.up.take() {
            self.stash
                .extend(up.unconfirmed.into_iter().map(|(_, m)| m));
        }
        self.retry_at = Instant::now() + self.backoff;
    }

    /// Messages that were handed to zeromq but never acknowledged before the link
    /// went down: they must be sent again.
    pub(crate) fn take_unconfirmed(&mut self) -> Vec<ZmqMessage> {
        std::mem::take(&mut self.stash)
    }
}
