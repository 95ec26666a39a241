//! Which acknowledged records the collector already took, per producer: the window
//! that turns a record resent after a lost acknowledgement into a counted duplicate
//! instead of a second line.
//!
//! Per producer, `floor` is the lowest seq not yet seen: everything below it is a
//! duplicate. Seqs seen above the floor (records that overtook others) are bits in a
//! ring of [`WINDOW`] seqs, 8 KiB, allocated only while there are such holes: a
//! producer whose records arrive in order costs a few dozen bytes. The floor rises to
//! the producer's `base` (those seqs were acknowledged or dropped upstream), over
//! seqs seen, and past the window when a seq beyond it forces the ring to slide; the
//! seqs it passes that never arrived are gaps, counted only for a producer with a
//! single endpoint, whose records all come here.
//!
//! A record whose commit failed is forgotten ([`Dedup::forget`]): it is not held, so
//! its resend must be written, not dropped as a duplicate.
//!
//! Memory: a producer costs a few dozen bytes, plus the 8 KiB ring while its records
//! arrive out of order. At most [`MAX_PRODUCERS`] (10,000) are remembered, so a peer
//! that invents producer ids and sends them out of order holds at most about 80 MiB.

use crate::ack::ProducerId;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Seqs above the floor the window remembers.
pub(crate) const WINDOW: u64 = 65_536;
const WORDS: usize = (WINDOW / 64) as usize;
/// A producer silent this long is forgotten.
pub(crate) const IDLE: Duration = Duration::from_secs(600);
/// At most this many producers are remembered; past it the least recently seen goes.
/// Each may hold an 8 KiB ring while out of order: 80 MiB at worst, even when a peer
/// makes up producer ids to fill the table. (A real producer is one handler
/// instance; 10,000 live at once is far past what one collector serves.)
pub(crate) const MAX_PRODUCERS: usize = 10_000;

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The seq was taken before (or is below the floor): drop it, acknowledge it.
    pub duplicate: bool,
    /// Seqs the floor passed that never arrived, for a single-endpoint producer.
    pub gaps: u64,
}

struct Window {
    floor: u64,
    /// One past the highest seq seen (at least `floor`).
    top: u64,
    /// Seqs in `[floor, top)` seen, at bit `seq % WINDOW`; `None` when `floor == top`.
    bits: Option<Box<[u64; WORDS]>>,
    /// The coarse time it was last seen at, its key in `Dedup::by_age`.
    age: u64,
}

impl Window {
    fn new(base: u64, age: u64) -> Window {
        Window {
            floor: base,
            top: base,
            bits: None,
            age,
        }
    }

    fn is_set(&self, seq: u64) -> bool {
        let i = (seq % WINDOW) as usize;
        self.bits
            .as_ref()
            .is_some_and(|b| b[i / 64] & (1 << (i % 64)) != 0)
    }

    /// Raises the floor to `target`, returning how many seqs it passed unseen.
    fn raise(&mut self, target: u64) -> u64 {
        if target <= self.floor {
            return 0;
        }
        let mut unseen = 0;
        let seen_end = target.min(self.top);
        if let Some(bits) = self.bits.as_mut() {
            for seq in self.floor..seen_end {
                let i = (seq % WINDOW) as usize;
                let mask = 1u64 << (i % 64);
                if bits[i / 64] & mask != 0 {
                    bits[i / 64] &= !mask;
                } else {
                    unseen += 1;
                }
            }
        }
        // Past `top` nothing was seen.
        unseen += target - seen_end.max(self.floor);
        self.floor = target;
        self.top = self.top.max(target);
        self.settle();
        unseen
    }

    /// Moves the floor over seqs already seen, and frees the ring once it is empty.
    fn settle(&mut self) {
        if let Some(bits) = self.bits.as_mut() {
            while self.floor < self.top {
                let i = (self.floor % WINDOW) as usize;
                let mask = 1u64 << (i % 64);
                if bits[i / 64] & mask == 0 {
                    break;
                }
                bits[i / 64] &= !mask;
                self.floor += 1;
            }
        }
        if self.floor == self.top {
            self.bits = None;
        }
    }

    fn set(&mut self, seq: u64, on: bool) {
        let bits = self.bits.get_or_insert_with(|| Box::new([0; WORDS]));
        let i = (seq % WINDOW) as usize;
        if on {
            bits[i / 64] |= 1 << (i % 64);
        } else {
            bits[i / 64] &= !(1 << (i % 64));
        }
    }

    /// Makes `seq` unseen again. Below the floor, the floor goes down to it and the
    /// seqs between stay seen, as bits; seen seqs that no longer fit the ring above
    /// the new floor are forgotten with it (a resend of one is written twice, which
    /// a reader can spot by its seq, rather than dropped). Forgetting several seqs of
    /// one producer highest first lowers the floor over each seq once in all.
    fn forget(&mut self, seq: u64) {
        if seq >= self.top {
            return;
        }
        if seq >= self.floor {
            if self.bits.is_some() {
                self.set(seq, false);
            }
            return;
        }
        let old_floor = self.floor;
        let new_top = self.top.min(seq.saturating_add(WINDOW));
        // Those share their bits with seqs below the old floor, about to be set.
        for s in new_top..self.top {
            self.set(s, false);
        }
        for s in seq + 1..old_floor.min(new_top) {
            self.set(s, true);
        }
        self.set(seq, false);
        self.floor = seq;
        self.top = new_top;
    }

    fn take(&mut self, seq: u64, base: u64) -> (bool, u64) {
        let mut unseen = self.raise(base);
        if seq < self.floor {
            return (true, unseen);
        }
        if seq >= self.floor + WINDOW {
            unseen += self.raise(seq - WINDOW + 1);
        }
        if seq == self.floor {
            self.floor += 1;
            self.top = self.top.max(self.floor);
            self.settle();
            return (false, unseen);
        }
        if self.is_set(seq) {
            return (true, unseen);
        }
        let bits = self.bits.get_or_insert_with(|| Box::new([0; WORDS]));
        let i = (seq % WINDOW) as usize;
        bits[i / 64] |= 1 << (i % 64);
        self.top = self.top.max(seq + 1);
        (false, unseen)
    }
}

/// The windows of every producer seen lately.
pub(crate) struct Dedup {
    windows: HashMap<ProducerId, Window>,
    /// Producers by the coarse time last seen, oldest first: eviction without a scan.
    by_age: BTreeSet<(u64, ProducerId)>,
    start: Instant,
    idle: Duration,
    max_producers: usize,
}

impl Dedup {
    pub(crate) fn new() -> Dedup {
        Dedup::with_limits(IDLE, MAX_PRODUCERS)
    }

    pub(crate) fn with_limits(idle: Duration, max_producers: usize) -> Dedup {
        Dedup {
            windows: HashMap::new(),
            by_age: BTreeSet::new(),
            start: Instant::now(),
            idle,
            max_producers: max_producers.max(1),
        }
    }

    /// Producers remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.windows.len()
    }

    /// Takes a record from `producer` numbered `seq`, framed with `base`, at `now`.
    pub(crate) fn take(
        &mut self,
        producer: ProducerId,
        seq: u64,
        base: u64,
        single_endpoint: bool,
        now: Instant,
    ) -> Seen {
        // Ages in whole seconds: the ordered set is touched at most once a second per
        // producer, not once per record.
        let age = now.saturating_duration_since(self.start).as_secs();
        self.forget_idle(age);
        let window = match self.windows.get_mut(&producer) {
            Some(w) => w,
            None => {
                if self.windows.len() >= self.max_producers {
                    if let Some((_, oldest)) = self.by_age.pop_first() {
                        self.windows.remove(&oldest);
                    }
                }
                self.by_age.insert((age, producer));
                // Seqs below the base of a producer first seen were settled before
                // (by another collector, or before it was forgotten): not gaps.
                self.windows
                    .entry(producer)
                    .or_insert_with(|| Window::new(base, age))
            }
        };
        if window.age != age {
            self.by_age.remove(&(window.age, producer));
            self.by_age.insert((age, producer));
            window.age = age;
        }
        let (duplicate, unseen) = window.take(seq, base);
        Seen {
            duplicate,
            gaps: if single_endpoint { unseen } else { 0 },
        }
    }

    /// Forgets that `producer`'s `seq` was taken: its commit failed, so the resend
    /// must be written. See [`Window::forget`] for the order to forget several in.
    pub(crate) fn forget(&mut self, producer: ProducerId, seq: u64) {
        if let Some(w) = self.windows.get_mut(&producer) {
            w.forget(seq);
        }
    }

    fn forget_idle(&mut self, age: u64) {
        let idle = self.idle.as_secs();
        while let Some(&(seen, producer)) = self.by_age.first() {
            if age.saturating_sub(seen) < idle.max(1) {
                break;
            }
            self.by_age.pop_first();
            self.windows.remove(&producer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ProducerId = [1; 16];
    const Q: ProducerId = [2; 16];

    struct T {
        d: Dedup,
        now: Instant,
    }

    impl T {
        fn new() -> T {
            T {
                d: Dedup::new(),
                now: Instant::now(),
            }
        }
        fn take(&mut self, seq: u64, base: u64, single: bool) -> (bool, u64) {
            let s = self.d.take(P, seq, base, single, self.now);
            (s.duplicate, s.gaps)
        }
    }

    #[test]
    fn in_order_then_resent_are_duplicates() {
        let mut t = T::new();
        for seq in 0..100 {
            assert_eq!(t.take(seq, 0, true), (false, 0), "seq {seq}");
        }
        assert!(t.d.windows[&P].bits.is_none(), "in order needs no ring");
        for seq in [0, 50, 99] {
            assert_eq!(t.take(seq, 0, true), (true, 0), "resent {seq}");
        }
        assert_eq!(t.take(100, 0, true), (false, 0));
    }

    #[test]
    fn out_of_order_within_the_window() {
        let mut t = T::new();
        assert_eq!(t.take(0, 0, true), (false, 0));
        assert_eq!(t.take(5, 0, true), (false, 0));
        assert_eq!(t.take(3, 0, true), (false, 0));
        assert_eq!(t.take(5, 0, true), (true, 0));
        assert_eq!(t.take(3, 0, true), (true, 0));
        for seq in [1, 2, 4] {
            assert_eq!(t.take(seq, 0, true), (false, 0), "seq {seq}");
        }
        // Every hole filled: the floor moved over them and the ring is gone.
        let w = &t.d.windows[&P];
        assert_eq!((w.floor, w.top), (6, 6));
        assert!(w.bits.is_none());
        assert_eq!(t.take(4, 0, true), (true, 0));
    }

    #[test]
    fn base_raises_the_floor_and_counts_gaps_only_for_a_single_endpoint() {
        let mut t = T::new();
        t.take(0, 0, true);
        t.take(2, 0, true);
        t.take(4, 0, true);
        // 1 and 3 never came; base 6 says they are settled upstream: two gaps, and
        // 5 never came either.
        assert_eq!(t.take(6, 6, true), (false, 3));
        assert_eq!(t.take(3, 6, true), (true, 0), "below the floor now");
        assert_eq!(t.take(7, 6, true), (false, 0));

        let mut multi = T::new();
        multi.take(0, 0, false);
        multi.take(4, 0, false);
        assert_eq!(
            multi.take(6, 6, false),
            (false, 0),
            "several endpoints: no gaps"
        );
        assert_eq!(multi.take(2, 6, false), (true, 0));
    }

    #[test]
    fn first_sight_does_not_count_what_is_below_base() {
        let mut t = T::new();
        assert_eq!(t.take(1_000, 990, true), (false, 0));
        // 990..1000 are still expected: not gaps until the base passes them.
        assert_eq!(t.take(995, 990, true), (false, 0));
        assert_eq!(t.take(1_001, 1_001, true), (false, 9));
        assert_eq!(t.take(989, 1_001, true), (true, 0));
    }

    #[test]
    fn a_seq_beyond_the_window_slides_it() {
        let mut t = T::new();
        assert_eq!(t.take(0, 0, true), (false, 0));
        assert_eq!(t.take(2, 0, true), (false, 0));
        // 2 + WINDOW: the ring must drop 1 (never seen, a gap) and 2 (seen) and
        // every seq from 3 up to the new floor (never seen).
        let far = 2 + WINDOW;
        let (dup, gaps) = t.take(far, 0, true);
        assert!(!dup);
        // New floor = far - WINDOW + 1 = 3: passed 1 (unseen) and 2 (seen).
        assert_eq!(gaps, 1);
        assert_eq!(t.take(1, 0, true), (true, 0));
        assert_eq!(t.take(far, 0, true), (true, 0));
        assert_eq!(t.take(3, 0, true), (false, 0));
        // Far beyond: everything between is unseen.
        let (dup, gaps) = t.take(far + 10 * WINDOW, 0, true);
        assert!(!dup);
        // Floor was 4 (3 taken), top far + 1: seen in [4, far + 1) is only `far`.
        let new_floor = far + 10 * WINDOW - WINDOW + 1;
        assert_eq!(gaps, new_floor - 4 - 1);
        let mut quiet = T::new();
        quiet.take(0, 0, false);
        assert_eq!(quiet.take(5 * WINDOW, 0, false), (false, 0));
    }

    #[test]
    fn base_far_ahead_counts_every_seq_it_skips() {
        let mut t = T::new();
        t.take(0, 0, true);
        t.take(10, 0, true);
        assert_eq!(
            t.take(3 * WINDOW, 3 * WINDOW, true),
            (false, 3 * WINDOW - 2)
        );
        assert!(t.d.windows[&P].bits.is_none());
    }

    #[test]
    fn forgotten_seqs_below_the_floor_are_new_again_and_only_they() {
        let mut t = T::new();
        for seq in 0..10 {
            t.take(seq, 0, true);
        }
        // Their commit failed: highest first, as the collector does.
        t.d.forget(P, 7);
        t.d.forget(P, 3);
        for seq in [0, 2, 4, 6, 8, 9] {
            assert_eq!(t.take(seq, 0, true), (true, 0), "still seen: {seq}");
        }
        assert_eq!(t.take(3, 0, true), (false, 0), "3 is written again");
        assert_eq!(t.take(3, 0, true), (true, 0), "and is then a duplicate");
        assert_eq!(t.take(7, 0, true), (false, 0), "7 is written again");
        // Every hole filled again: back to in order, without a ring.
        let w = &t.d.windows[&P];
        assert_eq!((w.floor, w.top), (10, 10));
        assert!(w.bits.is_none());
        assert_eq!(t.take(10, 0, true), (false, 0));
    }

    #[test]
    fn forgetting_inside_the_ring_and_beyond_what_was_seen() {
        let mut t = T::new();
        t.take(0, 0, true);
        t.take(5, 0, true);
        t.take(8, 0, true);
        t.d.forget(P, 5);
        // Never seen, or never heard of: nothing changes.
        t.d.forget(P, 20);
        t.d.forget(Q, 0);
        assert_eq!(t.take(5, 0, true), (false, 0));
        assert_eq!(t.take(8, 0, true), (true, 0));
        assert_eq!(t.take(20, 0, true), (false, 0));
        assert!(!t.d.take(Q, 0, 0, true, t.now).duplicate);
    }

    #[test]
    fn forgetting_far_below_keeps_the_ring_to_one_window() {
        let mut t = T::new();
        let top = WINDOW + 100;
        for seq in 0..top {
            t.take(seq, 0, true);
        }
        t.d.forget(P, 50);
        let w = &t.d.windows[&P];
        assert_eq!((w.floor, w.top), (50, 50 + WINDOW));
        assert_eq!(t.take(51, 0, true), (true, 0));
        assert_eq!(t.take(49 + WINDOW, 0, true), (true, 0));
        // The resend comes first, in seq order.
        assert_eq!(t.take(50, 0, true), (false, 0));
        assert_eq!(t.take(50, 0, true), (true, 0));
        // Seen, but past the ring from the lowered floor: forgotten too, so written
        // twice rather than lost.
        assert_eq!(t.take(50 + WINDOW, 0, true), (false, 0));
        assert_eq!(t.take(top, 0, true), (false, 0));
    }

    #[test]
    fn producers_are_separate() {
        let mut d = Dedup::new();
        let now = Instant::now();
        assert!(!d.take(P, 0, 0, true, now).duplicate);
        assert!(!d.take(Q, 0, 0, true, now).duplicate);
        assert!(d.take(P, 0, 0, true, now).duplicate);
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn idle_producers_are_forgotten() {
        let mut d = Dedup::with_limits(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        d.take(P, 0, 0, true, t0);
        d.take(Q, 0, 0, true, t0 + Duration::from_secs(8));
        assert!(d.take(P, 0, 0, true, t0 + Duration::from_secs(9)).duplicate);
        // P seen last at 9 s, Q at 8 s; at 19 s Q is forgotten, P kept.
        d.take([3; 16], 0, 0, true, t0 + Duration::from_secs(18));
        assert_eq!(d.len(), 2);
        assert!(
            !d.take(Q, 0, 0, true, t0 + Duration::from_secs(18))
                .duplicate,
            "Q forgotten: its seq 0 is new again"
        );
        assert!(
            d.take(P, 0, 0, true, t0 + Duration::from_secs(18))
                .duplicate
        );
    }

    #[test]
    fn the_least_recently_seen_is_evicted_at_the_cap() {
        let mut d = Dedup::with_limits(IDLE, 2);
        let t0 = Instant::now();
        d.take(P, 0, 0, true, t0);
        d.take(Q, 0, 0, true, t0 + Duration::from_secs(1));
        d.take(P, 1, 0, true, t0 + Duration::from_secs(2));
        // A third producer: Q, seen longest ago, goes.
        d.take([3; 16], 0, 0, true, t0 + Duration::from_secs(3));
        assert_eq!(d.len(), 2);
        assert!(d.take(P, 1, 0, true, t0 + Duration::from_secs(3)).duplicate);
        assert!(!d.take(Q, 0, 0, true, t0 + Duration::from_secs(3)).duplicate);
        assert!(d.len() <= 2);
    }
}
