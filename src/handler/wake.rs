//! How callers wake an idle sender thread.
//!
//! The sender waits asynchronously, so that the socket writers zeromq spawns run on
//! its own thread (a producer has no runtime thread beside it). A log call wakes it
//! only when it has said it is waiting for events: while records keep coming it
//! looks for them itself, and a call costs one load of a flag nobody writes. A flush
//! or shutdown wakes it whatever it waits for; a log call does not wake a sender
//! that waits for a link to come back, which would be a system call per record.

use futures::task::AtomicWaker;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::Poll;
use std::time::Duration;

const AWAKE: u8 = 0;
const FOR_EVENTS: u8 = 1;
const FOR_CONTROL: u8 = 2;

/// The sender's waiting state and the waker of its wait.
#[derive(Debug, Default)]
pub(crate) struct Wake {
    state: AtomicU8,
    waker: AtomicWaker,
}

impl Wake {
    /// After an event was queued.
    ///
    /// The queue's `try_send` is a SeqCst read-modify-write of its tail, and the
    /// sender's check of the queue a SeqCst load of it, so either this load sees the
    /// sender waiting, or the sender's check sees the event. A missed wake-up would
    /// cost at most the wait's timeout.
    pub(crate) fn after_event(&self) {
        if self.state.load(Ordering::SeqCst) == FOR_EVENTS {
            self.wake();
        }
    }

    /// After a control message (flush, shutdown) was sent.
    pub(crate) fn after_control(&self) {
        if self.state.load(Ordering::SeqCst) != AWAKE {
            self.wake();
        }
    }

    fn wake(&self) {
        if self.state.swap(AWAKE, Ordering::SeqCst) != AWAKE {
            self.waker.wake();
        }
    }

    /// Waits until woken, `ready()` holds, or `timeout` passes; `events` says whether
    /// a log call may wake it (else only control messages do).
    pub(crate) async fn wait(&self, events: bool, timeout: Duration, ready: impl Fn() -> bool) {
        self.state.store(
            if events { FOR_EVENTS } else { FOR_CONTROL },
            Ordering::SeqCst,
        );
        let woken = std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.state.load(Ordering::SeqCst) == AWAKE || ready() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let _ = crate::runtime::timeout(timeout, woken).await;
        self.state.store(AWAKE, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    /// How long a wait of at most 10 s took; it must end well before then.
    fn waited(wake: &Wake, events: bool, ready: impl Fn() -> bool) -> Duration {
        let start = Instant::now();
        crate::runtime::block_on(wake.wait(events, Duration::from_secs(10), ready));
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
        took
    }

    #[test]
    fn a_queued_event_wakes_a_sender_waiting_for_events() {
        let wake = Arc::new(Wake::default());
        let caller = wake.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            caller.after_event();
        });
        waited(&wake, true, || false);
        let _ = t.join();
    }

    #[test]
    fn a_queued_event_leaves_a_sender_waiting_for_a_link_asleep() {
        let wake = Arc::new(Wake::default());
        let caller = wake.clone();
        let t = std::thread::spawn(move || {
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(5));
                caller.after_event();
            }
            caller.after_control();
        });
        let took = waited(&wake, false, || false);
        // Woken by the control message after the twenty events, not by the first.
        assert!(took >= Duration::from_millis(100), "{took:?}");
        let _ = t.join();
    }

    #[test]
    fn a_ready_condition_ends_the_wait_at_once() {
        let wake = Wake::default();
        waited(&wake, true, || true);
        // And nothing is left waiting.
        assert_eq!(wake.state.load(Ordering::SeqCst), AWAKE);
    }
}
