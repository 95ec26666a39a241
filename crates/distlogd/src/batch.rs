//! What the receive loop and the sink thread pass each other: batches of accepted
//! records one way, and after each commit a report of what is held the other.

use crate::ack::Origin;
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use distlog::serialize::json::{Checked, Named};
use distlog::topic::Topic;
use distlog::Record;
use futures::channel::mpsc::UnboundedReceiver;

/// One accepted record on its way to the sink thread, with where it came from when it
/// came with an acknowledged-delivery header.
pub(crate) enum Entry {
    /// Decoded, for sinks that look inside it; with the body as received when a sink
    /// publishes it (nats).
    Record(Topic, Record, Option<Origin>, Option<Bytes>),
    /// A JSON body taken as it came, not decoded, and what examining it found.
    Body(Topic, Bytes, Option<Origin>, Verdict),
}

/// How a JSON body that goes on undecoded was examined.
// Only the nats sink reads what examining found: without it, nothing does.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Verdict {
    /// Checked and canonical: JSON-lines sinks copy it as it came.
    Canonical(Checked),
    /// Validated and its logger's name found, for a nats sink that is the only one
    /// to take bodies: whether the body is canonical was not found out (that costs
    /// parsing every float), so a JSON-lines sink must not copy it.
    Named(Named),
}

#[cfg_attr(not(feature = "nats"), allow(dead_code))]
impl Verdict {
    /// The logger's name, when examining found it (see
    /// [`Checked::plain_name`]).
    pub(crate) fn plain_name<'a>(&self, body: &'a [u8]) -> Option<&'a str> {
        match self {
            Verdict::Canonical(c) => c.plain_name(body),
            Verdict::Named(n) => n.plain_name(body),
        }
    }
}

/// Records handed to the sink thread together.
pub(crate) struct Batch {
    pub(crate) entries: Vec<Entry>,
    /// Its place in the order of batches, from 1: the sink thread reports the highest
    /// one it has committed.
    pub(crate) ticket: u64,
    /// Whether some record in it awaits an acknowledgement, so it must be committed.
    pub(crate) acked: bool,
}

impl Batch {
    pub(crate) fn new(entries: Vec<Entry>, ticket: u64) -> Batch {
        Batch {
            entries,
            ticket,
            acked: false,
        }
    }
}

/// The receive loop's ends of the channels to and from the sink thread.
pub(crate) struct Channels {
    pub(crate) tx: Sender<Batch>,
    /// Written batches, to free and reuse.
    pub(crate) back: Receiver<Batch>,
    /// The outcome of each commit, in order.
    pub(crate) committed: UnboundedReceiver<Committed>,
}

/// What the sink thread says after each commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    /// The highest ticket written when it committed.
    pub(crate) ticket: u64,
    /// Whether every write and sync since the last commit succeeded: only then is
    /// every record of the tickets since the last report held. When `false`, the
    /// records of those tickets may or may not be in the file; a later commit that
    /// succeeds says nothing about them (after a failed `fsync` Linux may have
    /// dropped the dirty pages and reports the next `fsync` clean).
    pub(crate) held: bool,
}
