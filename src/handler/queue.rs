//! What the application side and the sender thread share: the items on the queue, the
//! configuration, the counters, and the spent buffers that travel back.

use crate::record::{Event, PackedEvent, ProcessInfo, Record};
use crate::topic::{Encoding, Kind, System, Topic};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Spent buffers travel back to the application this many at a time, so that a log
/// call takes one from a list of its own thread rather than from a channel.
pub(crate) const SPENT_CHUNK: usize = 64;

/// A sent event, boxed, with the buffer its message and key-values were packed in:
/// a log call on the application's thread writes the next event over it. The box
/// travels on the queue too, so a slot holds a pointer rather than the whole event:
/// the queue's slots then span a few MiB instead of tens, and the cache lines a log
/// call writes are those of a few boxes in circulation rather than of slots last
/// touched a whole queue ago.
pub(crate) type Spent = Box<PackedEvent>;

/// What a log call does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the new record and count it. Never waits. The default.
    DropNewest,
    /// Wait up to the given time for room, then drop and count. A waiting call looks
    /// every 100 µs and goes on once a quarter of the queue has drained, so a full
    /// queue costs the sender nothing. After one timeout, calls drop at once until
    /// the queue drains, so a long outage costs the application one timeout, not one
    /// per record.
    Block(Duration),
}

/// The outcome of [`Handler::flush`](super::Handler::flush) or shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FlushReport {
    /// Records delivered since the handler started.
    pub sent: u64,
    /// Records dropped since the handler started.
    pub dropped: u64,
    /// Records still not delivered when the flush ended (0 after a shutdown: what was
    /// left is counted in `dropped`).
    pub unsent: u64,
}

/// What travels on the queue: a log event, built into a record on the sender
/// thread (packed, from the `log` facade), or a record built by the caller.
pub(crate) enum Item {
    Log(Box<Event>),
    /// A `log` call's event, its message and key-values packed.
    Packed(Spent),
    Record(Kind, Record),
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) endpoints: Vec<String>,
    pub(crate) system: System,
    pub(crate) encoding: Encoding,
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
    pub(crate) flush_timeout: Duration,
    pub(crate) send_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// ZMTP heartbeats on each link's PUSH socket: (interval, timeout); off if None.
    pub(crate) heartbeat: Option<(Duration, Duration)>,
    /// CURVE on each link: the collector's public key and this sender's key pair.
    pub(crate) curve: Option<zeromq::curve::CurveClient>,
    /// Acknowledged mode (protocol version 1): DEALER links, a header per record.
    pub(crate) acknowledged: bool,
    /// In acknowledged mode, how long a link may leave records unacknowledged.
    pub(crate) ack_timeout: Duration,
}

impl Config {
    /// How many records may wait for an acknowledgement: half the capacity, the other
    /// half being the queue's (all of it in plain mode).
    pub(crate) fn ack_window(&self) -> usize {
        if self.acknowledged {
            (self.capacity / 2).max(1)
        } else {
            0
        }
    }

    /// The room on the queue between callers and the sender.
    pub(crate) fn queue_room(&self) -> usize {
        (self.capacity - self.ack_window()).max(1)
    }

    pub(crate) fn topic(&self, kind: Kind) -> Topic {
        Topic::new(self.system, kind, self.encoding)
    }
}

/// State shared by the application side and the worker.
pub(crate) struct Shared {
    pub(crate) process: ProcessInfo,
    pub(crate) sent: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) resent: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) failed_connects: AtomicU64,
    /// Why the last connection attempt failed, naming its endpoint.
    pub(crate) last_connect_error: std::sync::Mutex<Option<String>>,
    pub(crate) unconfirmed_at_shutdown: AtomicU64,
    /// Nanoseconds since the epoch of the first drop not yet reported; 0 if none.
    pub(crate) first_drop: AtomicU64,
    /// Set when a blocking caller timed out; callers then drop until the worker
    /// takes from the queue again.
    pub(crate) stalled: AtomicBool,
    /// The buffers of events the worker has sent, handed back so a log call can
    /// reuse them: then the message and key-values cost no allocation, and the
    /// worker frees nothing that another thread allocated (glibc makes such frees
    /// contend with the application's own allocations for the arena's lock). There
    /// is room for a queue's worth: a caller blocked on a full queue resumes when a
    /// quarter has drained, and should find that quarter's buffers waiting.
    pub(crate) spent: (Sender<Vec<Spent>>, crossbeam_channel::Receiver<Vec<Spent>>),
    /// How callers wake the worker when it waits.
    pub(crate) wake: super::wake::Wake,
}

impl Shared {
    pub(super) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if self.first_drop.load(Ordering::Relaxed) == 0 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            let _ = self
                .first_drop
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    pub(crate) fn take_first_drop(&self) -> SystemTime {
        let ns = self.first_drop.swap(0, Ordering::Relaxed);
        UNIX_EPOCH + Duration::from_nanos(ns)
    }
}
