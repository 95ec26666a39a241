//! What the receive loop keeps for acknowledged delivery: per ROUTER connection, what
//! it carried and which commit covers it, and what a failed commit withholds.

use crate::ack::ProducerId;
use crate::batch::Committed;
use crate::stats::{held_note, AckCounts, RateLimit};
use bytes::Bytes;
use futures::channel::mpsc::UnboundedReceiver;
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;
use zeromq::SocketEvent;

/// One ROUTER connection's records from one producer, not yet all acknowledged.
pub(crate) struct Conn {
    /// The highest seq it carried.
    pub(crate) seq: u64,
    /// What it carried since its last acknowledgement, by the ticket it waits for,
    /// in ticket order (tickets only grow along a connection). Acknowledging the
    /// newest committed entry covers every record before it there, so a producer
    /// that never pauses is acknowledged as commits come, not only once the
    /// pipeline behind a slow sink (JetStream's PubAcks) has gone empty.
    pub(crate) held: VecDeque<Checkpoint>,
    /// Records taken since its last acknowledgement: the sum over `held`.
    pub(crate) unacked: u64,
    /// After an acknowledgement did not go out in time (a peer that does not read),
    /// no new try before this: such a peer must not stall the loop at every turn.
    pub(crate) retry_at: Option<Instant>,
    /// A commit failed while it waited for one (see [`AckState::on_commit`]): it is
    /// never acknowledged again, and its producer resends on a new connection.
    pub(crate) withheld: bool,
}

/// Where a connection stood when a ticket last took one of its records.
pub(crate) struct Checkpoint {
    /// Committed, everything the connection carried by then is held (0 for records
    /// that wait for no commit).
    pub(crate) ticket: u64,
    /// The highest seq the connection had carried by then: what acknowledges it.
    pub(crate) seq: u64,
    /// Records it stands for.
    pub(crate) records: u64,
}

/// What acknowledged delivery keeps between messages.
pub(crate) struct AckState {
    pub(crate) dedup: crate::dedup::Dedup,
    /// By ROUTER identity and producer id.
    pub(crate) conns: HashMap<(Bytes, ProducerId), Conn>,
    /// Conns with `unacked > 0` that are not withheld.
    pub(crate) pending: usize,
    /// The highest ticket the sink thread committed, every record up to it held.
    pub(crate) committed: u64,
    /// The highest ticket the sink thread reported on, whether it held or failed.
    pub(crate) reported: u64,
    /// From the sink thread; `None` without sinks, or once it ended.
    pub(crate) commits: Option<UnboundedReceiver<Committed>>,
    /// Per ticket not yet reported committed, in ticket order, the `(producer, seq)`
    /// of each acknowledged record that went into it: what the window must forget
    /// when its commit fails. Only tickets with such records are here, so memory is
    /// bounded by the records in flight between the receive loop and a commit (the
    /// channel's batches and what the sink thread wrote since its last commit).
    pub(crate) taken: VecDeque<(u64, Vec<(ProducerId, u64)>)>,
    /// The ROUTER socket's connect and disconnect events.
    pub(crate) monitor: futures::channel::mpsc::Receiver<SocketEvent>,
    pub(crate) counts: AckCounts,
    /// Limits the complaints about withheld acknowledgements.
    pub(crate) failures: RateLimit,
}

impl AckState {
    /// Takes the sink thread's report of one commit.
    ///
    /// A commit that held everything allows the acknowledgement of every connection
    /// whose records all went into tickets up to its own.
    ///
    /// A commit that failed leaves every record of the tickets since the last report
    /// in doubt, and nothing is ever acknowledged on a guess:
    ///
    /// - Every connection of a producer that had records in those tickets, and that
    ///   waits for an acknowledgement, is withheld: it is never acknowledged again.
    ///   A later commit cannot vouch for a record that an earlier one lost, and an
    ///   acknowledgement is cumulative over everything the connection carried, so
    ///   any later one would cover the record in doubt. The producer, hearing
    ///   nothing for its ack timeout, drops the connection and resends everything
    ///   unacknowledged on a new one.
    /// - Connections of the same producer that wait are withheld too, not only
    ///   those that carried a record of the failed tickets: one of them may have
    ///   carried a resend of such a record, taken as a duplicate, and its
    ///   acknowledgement would then vouch for a record that is not held. (At worst
    ///   this delays a connection whose records are all held by one ack timeout.)
    /// - The window forgets the `(producer, seq)` of each record in those tickets, so
    ///   the resend is written instead of being dropped as a duplicate. Nothing else
    ///   is forgotten: a record of another ticket is held, or is still pending and
    ///   gets its own report.
    ///
    /// Could a successful commit on a *new* connection still cover a record of the
    /// failed one? Only if the new connection carried it. If it came after this
    /// report, the window had forgotten it: it is written again, in a later ticket,
    /// and acknowledged when that one is held. If it came before, as a duplicate,
    /// its connection waits on the newest pending ticket (`Receiving::take_acked` in `receive.rs`),
    /// which is at least the failed one, so it was still waiting here and is
    /// withheld above. Reports come in ticket order, so no success past the failed
    /// tickets can be taken before their failure.
    pub(crate) fn on_commit(&mut self, report: Committed) {
        self.reported = self.reported.max(report.ticket);
        let mut forget = Vec::new();
        while let Some((ticket, records)) = self.taken.front_mut() {
            if *ticket > report.ticket {
                break;
            }
            if !report.held {
                forget.append(records);
            }
            self.taken.pop_front();
        }
        if report.held {
            self.committed = self.committed.max(report.ticket);
            return;
        }
        self.counts.commit_failures += 1;
        // From the highest seq down, each producer's floor goes down once in all.
        forget.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        forget.dedup();
        for &(producer, seq) in &forget {
            self.dedup.forget(producer, seq);
        }
        let producers: HashSet<ProducerId> = forget.iter().map(|(p, _)| *p).collect();
        let mut withheld = 0u64;
        for ((_, producer), conn) in &mut self.conns {
            if conn.unacked > 0 && !conn.withheld && producers.contains(producer) {
                conn.withheld = true;
                withheld += 1;
            }
        }
        self.pending = self.pending_count();
        if let Some(held) = self.failures.check() {
            eprintln!(
                "distlogd: a commit failed (a write or sync error): {} acknowledged-mode records may not be held; acknowledgements withheld from {withheld} connections, whose producers resend after their ack timeout{}",
                forget.len(),
                held_note(held)
            );
        }
    }

    /// Conns that wait for an acknowledgement that may go out.
    pub(crate) fn pending_count(&self) -> usize {
        self.conns
            .values()
            .filter(|c| c.unacked > 0 && !c.withheld)
            .count()
    }
}
