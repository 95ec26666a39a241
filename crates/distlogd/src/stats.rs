//! Counters of what the collector received and rejected, and the rate limit on its
//! per-message complaints.

use std::fmt;
use std::time::{Duration, Instant};

/// Reason name for a body longer than `max_body_bytes`.
pub const OVERSIZE: &str = "oversize";

/// What the collector has received and rejected so far (the library's handler keeps
/// its own counts, of what it sent and dropped).
///
/// `Display` gives one line of `key=value` pairs, the format of the periodic stats line
/// on stderr:
///
/// ```
/// use distlogd::stats::CollectorStats;
/// let mut s = CollectorStats::default();
/// s.received = 3;
/// s.accepted = 1;
/// s.reject("bad_body");
/// s.reject("bad_topic");
/// assert_eq!(s.rejected_for("bad_body"), 1);
/// assert_eq!(
///     s.to_string(),
///     "received=3 accepted=1 rejected=2 rejected.bad_body=1 rejected.bad_topic=1"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CollectorStats {
    /// Messages taken off the input sockets (PULL, and ROUTER for acknowledged input).
    pub received: u64,
    /// Messages that decoded to a record.
    pub accepted: u64,
    /// Rejections by reason ([`MessageError::reason`](distlog::serialize::MessageError::reason)
    /// or [`OVERSIZE`]), in the order first seen.
    pub rejected: Vec<(&'static str, u64)>,
    /// Errors the transport reported (a peer that sent bytes that are not ZMTP).
    pub transport_errors: u64,
    /// Records a sink could not write (disk full, closed stdout).
    pub sink_errors: u64,
    /// CURVE handshakes on the input and publish sockets; `None` without CURVE.
    pub curve: Option<CurveCounts>,
    /// Acknowledged delivery; `None` without acknowledged inputs, which keeps the
    /// stats line of plain mode as it was.
    pub acked: Option<AckCounts>,
    /// The `nats` sink; `None` without one.
    pub nats: Option<NatsCounts>,
}

/// What the `nats` sink did: records JetStream stored, publishes that failed (and
/// were tried again), and records published and not yet stored.
///
/// ```
/// use distlogd::stats::{CollectorStats, NatsCounts};
/// let mut s = CollectorStats::default();
/// let mut n = NatsCounts::default();
/// n.published = 40;
/// n.in_flight = 2;
/// s.nats = Some(n);
/// assert_eq!(
///     s.to_string(),
///     "received=0 accepted=0 rejected=0 nats.published=40 nats.failed=0 nats.in_flight=2"
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsCounts {
    /// Records JetStream acknowledged (a PubAck), duplicates included.
    pub published: u64,
    /// Of those, the ones JetStream had already (a `Nats-Msg-Id` within its duplicate
    /// window): a resend. Shown only when not 0.
    pub duplicates: u64,
    /// Publishes that failed (no PubAck in time, an error, no stream) and were tried
    /// again.
    pub failed: u64,
    /// Records handed to the client and not yet acknowledged, or waiting to be tried
    /// again.
    pub in_flight: u64,
    /// Records given up at shutdown (JetStream down past `drain_max`); also counted
    /// in `sink_errors`. Shown only when not 0.
    pub given_up: u64,
}

/// What acknowledged delivery did.
///
/// ```
/// use distlogd::stats::{AckCounts, CollectorStats};
/// let mut s = CollectorStats::default();
/// let mut a = AckCounts::default();
/// a.producers = 1;
/// a.acked = 40;
/// a.duplicates = 2;
/// s.acked = Some(a);
/// assert_eq!(
///     s.to_string(),
///     "received=0 accepted=0 rejected=0 producers=1 acked=40 duplicates=2 gaps=0"
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AckCounts {
    /// Peers connected to the acknowledged inputs now, from the ROUTER socket's
    /// monitor events (accepted minus disconnected connections): a producer with
    /// several links to this collector counts once per link.
    pub producers: u64,
    /// Records acknowledged: held by every sink, or handled (rejected, filtered out,
    /// duplicates), and covered by an acknowledgement that went out.
    pub acked: u64,
    /// Acknowledgements sent: one per connection per commit, each covering every
    /// record the connection carried so far. Not in the stats line; in `/metrics`.
    pub acks_sent: u64,
    /// Records dropped because their producer's window had them already.
    pub duplicates: u64,
    /// Seqs of single-endpoint producers that never arrived before the window's floor
    /// passed them: records lost upstream of the collector.
    pub gaps: u64,
    /// Commits of acknowledged records that failed (a write or `fdatasync` error
    /// since the last commit): no acknowledgement covers their records, and the
    /// producers resend them. Shown only when not 0.
    pub commit_failures: u64,
}

/// What CURVE let in and kept out, over every socket of the collector.
///
/// ```
/// use distlogd::stats::{CollectorStats, CurveCounts};
/// let mut s = CollectorStats::default();
/// let mut curve = CurveCounts::default();
/// curve.accepted = 2;
/// curve.not_allowed = 1;
/// s.curve = Some(curve);
/// assert_eq!(
///     s.to_string(),
///     "received=0 accepted=0 rejected=0 curve.accepted=2 \
///      curve.refused.not_allowed=1 curve.refused.handshake_failed=0"
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CurveCounts {
    /// Clients that completed the handshake.
    pub accepted: u64,
    /// Clients that proved their key, which the allow file does not list.
    pub not_allowed: u64,
    /// Peers whose handshake failed: a plaintext (NULL) peer, a wrong server key, a
    /// malformed or replayed handshake.
    pub handshake_failed: u64,
}

impl CollectorStats {
    /// Counts one rejected message.
    pub fn reject(&mut self, reason: &'static str) {
        match self.rejected.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.rejected.push((reason, 1)),
        }
    }

    /// How many messages were rejected for `reason`.
    pub fn rejected_for(&self, reason: &str) -> u64 {
        self.rejected
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// All rejected messages.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for CollectorStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received={} accepted={} rejected={}",
            self.received,
            self.accepted,
            self.rejected_total()
        )?;
        for (reason, n) in &self.rejected {
            write!(f, " rejected.{reason}={n}")?;
        }
        if self.transport_errors > 0 {
            write!(f, " transport_errors={}", self.transport_errors)?;
        }
        if self.sink_errors > 0 {
            write!(f, " sink_errors={}", self.sink_errors)?;
        }
        if let Some(c) = &self.curve {
            write!(
                f,
                " curve.accepted={} curve.refused.not_allowed={} curve.refused.handshake_failed={}",
                c.accepted, c.not_allowed, c.handshake_failed
            )?;
        }
        if let Some(a) = &self.acked {
            write!(
                f,
                " producers={} acked={} duplicates={} gaps={}",
                a.producers, a.acked, a.duplicates, a.gaps
            )?;
            if a.commit_failures > 0 {
                write!(f, " commit_failures={}", a.commit_failures)?;
            }
        }
        if let Some(n) = &self.nats {
            write!(
                f,
                " nats.published={} nats.failed={} nats.in_flight={}",
                n.published, n.failed, n.in_flight
            )?;
            if n.duplicates > 0 {
                write!(f, " nats.duplicates={}", n.duplicates)?;
            }
            if n.given_up > 0 {
                write!(f, " nats.given_up={}", n.given_up)?;
            }
        }
        Ok(())
    }
}

/// Lets the first `burst` events through, then one per `interval`, and counts the rest.
#[derive(Debug, Clone)]
pub(crate) struct RateLimit {
    burst: u32,
    interval: Duration,
    passed: u32,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// A limit of `burst` events, then one per `interval`.
    pub(crate) fn new(burst: u32, interval: Duration) -> Self {
        RateLimit {
            burst,
            interval,
            passed: 0,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether an event now may be reported: `Some(n)` with the number of events held
    /// back since the last one that was, or `None` to stay silent.
    pub(crate) fn check(&mut self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    /// [`check`](Self::check) at a given time.
    pub(crate) fn check_at(&mut self, now: Instant) -> Option<u64> {
        let due = self.passed < self.burst
            || self
                .last
                .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            self.passed = self.passed.saturating_add(1);
            self.last = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// The note appended to a rate-limited line: empty, or how many were held back.
pub(crate) fn held_note(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(" ({held} more not shown)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_holds_back_and_counts() {
        let mut limit = RateLimit::new(2, Duration::from_secs(1));
        let t = Instant::now();
        assert_eq!(limit.check_at(t), Some(0));
        assert_eq!(limit.check_at(t), Some(0));
        assert_eq!(limit.check_at(t), None);
        assert_eq!(limit.check_at(t), None);
        // a second later one more gets through, saying how many were held back
        assert_eq!(limit.check_at(t + Duration::from_secs(1)), Some(2));
    }
}
