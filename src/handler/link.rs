//! One collector endpoint: a zeromq PUSH socket that distlog reconnects itself.
//!
//! zeromq 0.7's PUSH socket never delivers again after its peer restarts, and its
//! `connect` blocks until it succeeds or times out. So a link owns one socket at a
//! time: when the peer goes away it drops that socket, hands back every message the
//! peer never acknowledged, and a later [`Link::connect`] makes a fresh one.
//!
//! Messages travel as [`Batch`]es: records already framed for ZMTP, back to back,
//! handed to zeromq in one piece (`send_framed`, a patch of the vendored crate). One
//! hand-over per batch instead of one per record is most of what makes the sender
//! faster than a loop of zeromq `send` calls.

use super::ack;
use super::delivery::{self, Tracker};
use crate::runtime;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use zeromq::{Socket, SocketEvent, SocketOptions};

/// Appends one ZMTP frame whose body `write` appends, byte for byte as zeromq's
/// `encode_frames` frames it. The body is written in place, after room for the
/// longest header, so that the sender encodes a record straight into its batch
/// rather than encoding it elsewhere and copying it in.
pub(crate) fn append_frame(dst: &mut Vec<u8>, more: bool, write: impl FnOnce(&mut Vec<u8>)) {
    const MORE: u8 = 0b01;
    const LONG: u8 = 0b10;
    let header = dst.len();
    dst.extend_from_slice(&[0; 9]);
    write(dst);
    let len = dst.len() - header - 9;
    let flags = if more { MORE } else { 0 };
    if len > 255 {
        dst[header] = flags | LONG;
        dst[header + 1..header + 9].copy_from_slice(&(len as u64).to_be_bytes());
    } else {
        // A short frame's size takes one byte: close the gap (records are longer, so
        // this moves only topics).
        dst[header] = flags;
        dst[header + 1] = len as u8;
        dst.copy_within(header + 9.., header + 2);
        dst.truncate(dst.len() - 7);
    }
}

/// Whole ZMTP messages back to back, sent in one piece.
pub(crate) struct Batch {
    bytes: Bytes,
    /// Where each message ends in `bytes`.
    ends: Vec<usize>,
}

impl Batch {
    pub(crate) fn new(bytes: Bytes, ends: Vec<usize>) -> Batch {
        Batch { bytes, ends }
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Messages copied into one batch.
    pub(crate) fn from_messages(messages: &[Bytes]) -> Batch {
        let mut buf = bytes::BytesMut::with_capacity(messages.iter().map(Bytes::len).sum());
        let mut ends = Vec::with_capacity(messages.len());
        for m in messages {
            buf.extend_from_slice(m);
            ends.push(buf.len());
        }
        Batch::new(buf.freeze(), ends)
    }

    /// Deals the messages round-robin into `n` batches, the way libzmq's PUSH spreads
    /// consecutive messages over its peers.
    pub(crate) fn deal(&self, n: usize) -> Vec<Batch> {
        let n = n.max(1);
        let mut hands: Vec<Vec<Bytes>> = vec![Vec::new(); n];
        for (i, m) in self.messages().enumerate() {
            hands[i % n].push(m);
        }
        hands
            .iter()
            .filter(|h| !h.is_empty())
            .map(|h| Batch::from_messages(h))
            .collect()
    }

    /// Each message on its own, sharing the batch's buffer.
    pub(crate) fn messages(&self) -> impl Iterator<Item = Bytes> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| self.bytes.slice(a..b))
    }
}

/// The bytes one message framed by [`append_frame`] takes on a CURVE connection:
/// each frame becomes a MESSAGE command (name 8, nonce 8, MAC 16, flags 1, then the
/// body) in a frame of its own, as zeromq's CURVE codec writes it.
fn curve_wire_len(message: &[u8]) -> u64 {
    const OVERHEAD: u64 = 8 + 8 + 16 + 1;
    let mut rest = message;
    let mut wire = 0u64;
    while let Some((&flags, after)) = rest.split_first() {
        let (len, after) = if flags & 0b10 != 0 {
            match after.split_first_chunk::<8>() {
                Some((len, after)) => (u64::from_be_bytes(*len), after),
                None => break,
            }
        } else {
            match after.split_first() {
                Some((&len, after)) => (u64::from(len), after),
                None => break,
            }
        };
        let body = OVERHEAD + len;
        wire += body + if body > 255 { 9 } else { 2 };
        // Our own framing, so the length is always there; stop rather than panic if not.
        let Some(after) = usize::try_from(len).ok().and_then(|l| after.get(l..)) else {
            break;
        };
        rest = after;
    }
    wire
}

/// Most messages a link lets zeromq hold before their delivery is confirmed; past
/// this zeromq's own queue would grow until `send` blocks forever.
const MAX_UNCONFIRMED: usize = 50_000;

/// Most bytes a plain TCP link lets zeromq and the kernel hold before the collector's
/// host acknowledges them. A collector that falls behind then stops the sender here
/// rather than 50,000 messages later: the records wait in the handler's queue, whose
/// room the user chose, instead of as fresh encoded buffers (tens of MiB a process,
/// each page faulted in), and a sender that waits leaves its core to the collector.
/// Loopback moves this much in well under the 1 ms a waiting send sleeps.
const MAX_UNCONFIRMED_BYTES: u64 = 2 << 20;

/// How a link learns that its messages were delivered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Confirm {
    /// From the kernel's count of bytes the peer's host acknowledged (plain PUSH).
    Tcp,
    /// From the collector's acknowledgements on a DEALER (acknowledged mode): a
    /// connection that acknowledges nothing for `timeout` while messages wait is
    /// dropped, and its messages go to another link.
    Acked {
        producer: [u8; 16],
        timeout: Duration,
    },
}

pub(crate) struct Link {
    pub(crate) endpoint: String,
    port: Option<u16>,
    confirm: Confirm,
    up: Option<Up>,
    retry_at: Instant,
    backoff: Duration,
    /// Unacknowledged messages from the last connection, to send again.
    stash: Vec<Bytes>,
    /// Messages confirmed delivered and not yet reported to the worker.
    newly_delivered: usize,
    /// In acknowledged mode, the seqs of those messages.
    newly_settled: Vec<u64>,
}

/// The socket of a connection: PUSH in plain mode, DEALER in acknowledged mode.
enum Sender {
    Push(zeromq::PushSocket),
    Dealer(zeromq::DealerSocket),
}

impl Sender {
    async fn send_framed(&mut self, frames: Bytes) -> zeromq::ZmqResult<()> {
        match self {
            Sender::Push(s) => s.send_framed(frames).await,
            Sender::Dealer(s) => s.send_framed(frames).await,
        }
    }
}

struct Up {
    socket: Sender,
    events: futures::channel::mpsc::Receiver<SocketEvent>,
    tracker: Option<Tracker>,
    /// Wire bytes handed to zeromq on this connection.
    written: u64,
    /// Of those, the bytes the collector's host has acknowledged, as last read.
    acked: u64,
    /// Messages handed to zeromq and not yet acknowledged, in the order sent, each
    /// with the wire offset at which it ends (plain mode) or its seq (acknowledged).
    unconfirmed: VecDeque<(u64, Bytes)>,
    /// When the collector last acknowledged something, or messages began to wait.
    progress_at: Instant,
    /// When zeromq last accepted a message, for links that cannot be tracked.
    last_send: Instant,
    /// CURVE: each frame goes out longer than it was framed here.
    encrypted: bool,
}

impl Up {
    /// Whether delivery is confirmed: by the kernel's count, or by acknowledgements.
    fn is_tracked(&self) -> bool {
        self.tracker.is_some() || matches!(self.socket, Sender::Dealer(_))
    }

    /// Whether `batch` would take this connection past what it may hold unconfirmed.
    fn is_full_for(&self, batch: &Batch) -> bool {
        self.unconfirmed.len() + batch.len() > MAX_UNCONFIRMED
            || (self.tracker.is_some()
                && !self.unconfirmed.is_empty()
                && self.written.saturating_sub(self.acked) + batch.bytes.len() as u64
                    > MAX_UNCONFIRMED_BYTES)
    }
}

/// Why a send did not go through.
pub(crate) enum SendFailure {
    /// The peer is gone or stuck; the batch comes back for another try.
    Down(Batch),
}

impl Link {
    pub(crate) fn new(endpoint: String, confirm: Confirm) -> Link {
        let port = endpoint
            .strip_prefix("tcp://")
            .and_then(|rest| rest.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok());
        Link {
            endpoint,
            port,
            confirm,
            up: None,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(20),
            stash: Vec::new(),
            newly_delivered: 0,
            newly_settled: Vec::new(),
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
        self.up.as_ref().is_some_and(Up::is_tracked)
    }

    /// Tries once to connect; on failure schedules the next try with backoff and
    /// says why it failed.
    pub(crate) async fn connect(
        &mut self,
        timeout: Duration,
        heartbeat: Option<(Duration, Duration)>,
        curve: Option<&zeromq::curve::CurveClient>,
    ) -> Result<(), String> {
        let mut options = SocketOptions::default();
        options.connect_timeout(timeout);
        if let Some(client) = curve {
            options.curve_client(client.clone());
        }
        if let Some((interval, heartbeat_timeout)) = heartbeat {
            // A dead connection then ends with a `Disconnected` event, which `poll`
            // turns into a reconnect.
            options
                .heartbeat_interval(interval)
                .heartbeat_timeout(heartbeat_timeout);
        }
        let acked = matches!(self.confirm, Confirm::Acked { .. });
        let before = delivery::before_connect(if acked { None } else { self.port });
        let limit = timeout + Duration::from_millis(50);
        let (ok, socket, events) = if acked {
            let mut socket = zeromq::DealerSocket::with_options(options);
            let ok = runtime::timeout(limit, socket.connect(&self.endpoint)).await;
            let events = socket.monitor();
            (ok, Sender::Dealer(socket), events)
        } else {
            let mut socket = zeromq::PushSocket::with_options(options);
            let ok = runtime::timeout(limit, socket.connect(&self.endpoint)).await;
            let events = socket.monitor();
            (ok, Sender::Push(socket), events)
        };
        let refused = match ok {
            Some(Ok(())) => None,
            Some(Err(e)) => Some(e.to_string()),
            None => Some(format!("no handshake within {limit:?}")),
        };
        if let Some(why) = refused {
            self.retry_at = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
            // The mistake a user can make here: the two modes' sockets do not fit.
            let hint = match (why.contains("not compatible"), acked) {
                (true, true) => " (acknowledged mode needs an acknowledged input, `distlogd --ack-bind`)",
                (true, false) => " (plain mode needs a PULL input such as `distlogd --bind`; an `--ack-bind` input takes acknowledged mode)",
                (false, _) => "",
            };
            return Err(format!("{}: {why}{hint}", self.endpoint));
        }
        let tracker = if acked {
            None
        } else {
            self.port.and_then(|p| delivery::track_new(p, &before))
        };
        self.backoff = Duration::from_millis(20);
        self.up = Some(Up {
            socket,
            events,
            tracker,
            written: 0,
            acked: 0,
            unconfirmed: VecDeque::new(),
            progress_at: Instant::now(),
            last_send: Instant::now(),
            encrypted: curve.is_some(),
        });
        Ok(())
    }

    /// Hands a batch to zeromq, waiting at most `timeout` for it to take it. True if
    /// its delivery will be confirmed by [`Link::poll`], false if it counts as sent now.
    pub(crate) async fn send(
        &mut self,
        batch: Batch,
        timeout: Duration,
    ) -> Result<bool, SendFailure> {
        let confirm = self.confirm;
        let Some(up) = self.up.as_mut() else {
            return Err(SendFailure::Down(batch));
        };
        if up.is_tracked() && up.is_full_for(&batch) {
            // The peer is not keeping up: wait for acknowledgements, not zeromq.
            let deadline = Instant::now() + timeout;
            while up.is_full_for(&batch) {
                match Self::confirm_up(up, confirm, &mut self.newly_settled) {
                    Some((n, true)) if Instant::now() <= deadline => self.newly_delivered += n,
                    _ => {
                        self.go_down();
                        return Err(SendFailure::Down(batch));
                    }
                }
                if up.is_full_for(&batch) {
                    runtime::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        let tracked = up.is_tracked();
        let sent = {
            // The buffer is reference-counted: zeromq's copy costs no copying.
            // Most sends complete at once; only a send that has to wait pays for a timer.
            let mut send = std::pin::pin!(up.socket.send_framed(batch.bytes.clone()));
            match futures::poll!(send.as_mut()) {
                std::task::Poll::Ready(r) => Some(r),
                std::task::Poll::Pending => runtime::timeout(timeout, send).await,
            }
        };
        match sent {
            Some(Ok(())) => {
                up.last_send = Instant::now();
                if up.unconfirmed.is_empty() {
                    // The ack timeout runs from when something began to wait.
                    up.progress_at = up.last_send;
                }
                match confirm {
                    Confirm::Acked { .. } => {
                        for message in batch.messages() {
                            // Our own framing: every message has a header.
                            let seq = ack::seq_of(&message).unwrap_or(u64::MAX);
                            up.unconfirmed.push_back((seq, message));
                        }
                    }
                    Confirm::Tcp if !tracked => {}
                    Confirm::Tcp if up.encrypted => {
                        // The kernel acknowledges ciphertext, which is longer: count
                        // each message's encrypted length, or records would count as
                        // delivered before all their bytes were.
                        for message in batch.messages() {
                            up.written += curve_wire_len(&message);
                            up.unconfirmed.push_back((up.written, message));
                        }
                    }
                    Confirm::Tcp => {
                        let base = up.written;
                        up.written += batch.bytes.len() as u64;
                        for (end, message) in batch.ends.iter().zip(batch.messages()) {
                            up.unconfirmed.push_back((base + *end as u64, message));
                        }
                    }
                }
                Ok(tracked)
            }
            _ => {
                self.go_down();
                Err(SendFailure::Down(batch))
            }
        }
    }

    /// Drops the messages the peer has acknowledged: how many, and whether the
    /// connection is still usable; `None` if it cannot be told. In acknowledged mode,
    /// the seqs of those messages are added to `settled`.
    fn confirm_up(up: &mut Up, confirm: Confirm, settled: &mut Vec<u64>) -> Option<(usize, bool)> {
        let (producer, ack_timeout, dealer) = match (confirm, &mut up.socket) {
            (Confirm::Acked { producer, timeout }, Sender::Dealer(dealer)) => {
                (producer, timeout, dealer)
            }
            _ => {
                let tracker = up.tracker.as_ref()?;
                let (delivered, open) = tracker.delivered()?;
                up.acked = delivered;
                let mut n = 0;
                while up
                    .unconfirmed
                    .front()
                    .is_some_and(|(end, _)| *end <= delivered)
                {
                    up.unconfirmed.pop_front();
                    n += 1;
                }
                return Some((n, open));
            }
        };
        let mut n = 0;
        let mut open = true;
        while let Some(got) = dealer.try_recv() {
            let Ok(message) = got else {
                open = false;
                break;
            };
            // An acknowledgement that is not for us or not version 1 is ignored, as
            // the protocol says; the ack timeout catches a collector that only
            // sends those.
            let Ok(seq) = ack::parse_ack(&message, &producer) else {
                continue;
            };
            // Cumulative over this connection: everything it carried up to and
            // including `seq`, which after a resend need not be the lowest seqs.
            let Some(at) = up.unconfirmed.iter().position(|(s, _)| *s == seq) else {
                continue;
            };
            for (s, _) in up.unconfirmed.drain(..=at) {
                settled.push(s);
                n += 1;
            }
            up.progress_at = Instant::now();
        }
        if !up.unconfirmed.is_empty() && up.progress_at.elapsed() > ack_timeout {
            open = false;
        }
        Some((n, open))
    }

    /// Counts newly acknowledged messages, and notices a peer that went away.
    /// Returns how many messages were confirmed delivered.
    pub(crate) fn poll(&mut self) -> usize {
        let confirm = self.confirm;
        let Some(up) = self.up.as_mut() else {
            return std::mem::take(&mut self.newly_delivered);
        };
        let mut gone = false;
        while let Ok(event) = up.events.try_recv() {
            if matches!(event, SocketEvent::Disconnected(_)) {
                gone = true;
            }
        }
        if up.is_tracked() {
            match Self::confirm_up(up, confirm, &mut self.newly_settled) {
                Some((n, open)) => {
                    self.newly_delivered += n;
                    gone |= !open;
                }
                None => gone = true,
            }
        }
        let confirmed = std::mem::take(&mut self.newly_delivered);
        if gone {
            self.go_down();
        }
        confirmed
    }

    /// The seqs acknowledged since the last call (acknowledged mode).
    pub(crate) fn take_settled(&mut self) -> impl Iterator<Item = u64> + '_ {
        self.newly_settled.drain(..)
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
    pub(crate) fn take_unconfirmed(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.stash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_appended_in_place_are_zeromqs_frames() {
        for len in [0, 1, 3, 254, 255, 256, 1000, 70_000] {
            for more in [false, true] {
                let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut ours = b"before".to_vec();
                append_frame(&mut ours, more, |out| out.extend_from_slice(&body));
                let mut theirs = bytes::BytesMut::from(&b"before"[..]);
                let frames: &[&[u8]] = if more { &[&body, b""] } else { &[&body] };
                zeromq::encode_frames(frames, &mut theirs);
                // With `more`, zeromq's framing is followed by the last (empty) frame.
                let theirs = &theirs[..theirs.len() - if more { 2 } else { 0 }];
                assert_eq!(ours, theirs, "{len} bytes, more: {more}");
            }
        }
    }

    #[test]
    fn a_batch_splits_into_its_framed_messages() {
        let mut buf = bytes::BytesMut::new();
        let mut ends = Vec::new();
        for body in [vec![b'a'; 255], vec![b'b'; 256], Vec::new()] {
            zeromq::encode_frames(&[b"TLJ".as_slice(), &body], &mut buf);
            ends.push(buf.len());
        }
        let batch = Batch::new(buf.freeze(), ends);
        let sizes: Vec<usize> = batch.messages().map(|m| m.len()).collect();
        // Per frame a flag byte and a length of 1 byte up to 255, else 8.
        assert_eq!(sizes, [5 + 2 + 255, 5 + 9 + 256, 5 + 2]);
        let first = batch.messages().next().unwrap();
        assert_eq!(&first[..7], &[1, 3, b'T', b'L', b'J', 0, 255]);

        let hands = batch.deal(2);
        let dealt: Vec<Vec<Bytes>> = hands.iter().map(|b| b.messages().collect()).collect();
        let all: Vec<Bytes> = batch.messages().collect();
        assert_eq!(
            dealt,
            [vec![all[0].clone(), all[2].clone()], vec![all[1].clone()]]
        );
    }

    #[test]
    fn curve_wire_length_counts_each_frame_encrypted() {
        let m = record_message(&[7; 300]);
        // "TLJ": 33 + 3 in a short frame; the body: 33 + 300 in a long one.
        assert_eq!(curve_wire_len(&m), (2 + 36) + (9 + 333));
        // 223 bytes is a short frame in plaintext but not once encrypted.
        let mut m = Vec::new();
        append_frame(&mut m, false, |out| out.extend_from_slice(&[7; 223]));
        assert_eq!(m.len(), 2 + 223);
        assert_eq!(curve_wire_len(&m), 9 + 256);
        // A truncated message (never made here) ends the count, without a panic.
        assert_eq!(curve_wire_len(&m[..1]), 0);
    }

    /// A raw ZMTP 3.0 PULL on `stream`: NULL greeting and READY both ways.
    #[cfg(target_os = "linux")]
    fn pull_handshake(stream: &mut std::net::TcpStream) {
        use std::io::{Read, Write};
        let mut greeting = [0u8; 64];
        greeting[0] = 0xff;
        greeting[9] = 0x7f;
        greeting[10] = 3;
        greeting[12..16].copy_from_slice(b"NULL");
        stream.write_all(&greeting).unwrap();
        let mut ready = vec![0x04, 26, 5];
        ready.extend_from_slice(b"READY\x0bSocket-Type\0\0\0\x04PULL");
        stream.write_all(&ready).unwrap();
        let mut theirs = [0u8; 64];
        stream.read_exact(&mut theirs).unwrap();
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).unwrap();
        assert_eq!(header[0], 0x04, "the PUSH's READY");
        let mut body = vec![0u8; usize::from(header[1])];
        stream.read_exact(&mut body).unwrap();
    }

    /// A raw PULL peer on a fresh loopback port: it accepts one connection, does the
    /// handshake and hands the stream to `then`.
    #[cfg(target_os = "linux")]
    fn raw_pull_peer(
        then: impl FnOnce(std::net::TcpStream) + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            pull_handshake(&mut stream);
            then(stream);
        });
        (port, peer)
    }

    /// A record message as the worker frames it: the topic, then `body`.
    fn record_message(body: &[u8]) -> Bytes {
        let mut m = Vec::new();
        append_frame(&mut m, true, |out| out.extend_from_slice(b"TLJ"));
        append_frame(&mut m, false, |out| out.extend_from_slice(body));
        Bytes::from(m)
    }

    /// A plain link, connected and tracked, to the peer on `port`.
    #[cfg(target_os = "linux")]
    async fn tracked_link(port: u16) -> Link {
        let mut link = Link::new(format!("tcp://127.0.0.1:{port}"), Confirm::Tcp);
        assert!(link
            .connect(Duration::from_secs(5), None, None)
            .await
            .is_ok());
        assert!(link.is_tracked());
        link
    }

    /// A collector that reads every record and closes at once: zeromq's PUSH, which
    /// reads its connections, drops the peer and closes its fd, usually before the
    /// link looks again. What the peer acknowledged must still count as delivered,
    /// not come back to be resent (the flaky `python_reads_rust`).
    #[cfg(target_os = "linux")]
    #[test]
    fn delivery_is_confirmed_after_zeromq_drops_a_closed_peer() {
        use std::io::Read;
        let messages: Vec<Bytes> = (0..3).map(|i| record_message(&[i; 300])).collect();
        let batch = Batch::from_messages(&messages);
        let wire = batch.bytes.len();
        let (port, peer) = raw_pull_peer(move |mut stream| {
            let mut records = vec![0u8; wire];
            stream.read_exact(&mut records).unwrap();
        });
        runtime::block_on(async move {
            let mut link = tracked_link(port).await;
            let open = delivery::tcp_sockets_to(port).len();
            assert!(matches!(
                link.send(batch, Duration::from_secs(5)).await,
                Ok(true)
            ));
            // Waiting, not blocking: the socket's writer runs on this thread.
            while !peer.is_finished() {
                runtime::sleep(Duration::from_millis(1)).await;
            }
            peer.join().unwrap();
            // Until zeromq has seen the close and let go of its fd.
            let deadline = Instant::now() + Duration::from_secs(10);
            while delivery::tcp_sockets_to(port).len() == open {
                assert!(
                    Instant::now() < deadline,
                    "zeromq kept the closed connection"
                );
                runtime::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(link.poll(), 3, "all three were acknowledged");
            assert!(!link.is_up(), "the peer closed");
            assert!(link.take_unconfirmed().is_empty());
        });
    }

    /// A collector that takes the connection and then reads nothing: the link stops
    /// at its byte bound, well before zeromq's own queue or the 50,000-message bound
    /// would, so a stuck collector does not make a producer encode ahead without end.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_link_stops_at_its_byte_bound_when_the_collector_reads_nothing() {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let (port, peer) = raw_pull_peer(move |_stream| {
            // Hold the connection open, unread, until the test is done.
            let _ = done_rx.recv_timeout(Duration::from_secs(30));
        });
        // 256 messages of 4 KiB a batch: 40 batches are 40 MiB in 10,240 messages.
        let messages: Vec<Bytes> = (0..256).map(|_| record_message(&[b'x'; 4096])).collect();
        let handed = runtime::block_on(async move {
            let mut link = tracked_link(port).await;
            let mut handed = 0usize;
            for _ in 0..40 {
                let batch = Batch::from_messages(&messages);
                let len = batch.bytes.len();
                match link.send(batch, Duration::from_millis(300)).await {
                    Ok(_) => handed += len,
                    Err(SendFailure::Down(back)) => {
                        assert_eq!(back.len(), 256, "the refused batch comes back whole");
                        return Some(handed);
                    }
                }
            }
            None
        });
        let _ = done_tx.send(());
        peer.join().unwrap();
        // What the peer's kernel takes unread (its receive buffer, which does not
        // grow while nothing is read), the bound, and one batch.
        match handed {
            Some(handed) => assert!(handed < 20 << 20, "{handed} bytes went before it stopped"),
            None => panic!("all 40 MiB were taken by a collector that reads nothing"),
        }
    }
}
