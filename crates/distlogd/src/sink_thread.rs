//! The sink thread: writes the batches the receive loop hands over, flushes when the
//! input goes quiet, and commits what awaits an acknowledgement.

use crate::batch::{Batch, Committed, Entry};
use crate::sink::Sinks;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use futures::channel::mpsc::UnboundedSender;
use std::time::{Duration, Instant};

/// While busy, the sink thread commits acknowledged records at least this often: the
/// bound on what a flood adds to a producer's wait for its acknowledgement.
pub(crate) const COMMIT_EVERY: Duration = Duration::from_millis(5);

/// The sink thread: write batches as they come, flush when the input goes quiet, and
/// commit what awaits an acknowledgement (see the crate docs).
///
/// Written batches go back to the receive loop, which frees the records: memory is
/// then allocated and freed on one thread, which keeps the allocator from contending
/// on its locks (a third of the time in a flood otherwise).
pub(crate) fn sink_loop(
    mut sinks: Sinks,
    rx: Receiver<Batch>,
    back: Sender<Batch>,
    committed: UnboundedSender<Committed>,
) -> u64 {
    let idle = Duration::from_millis(2);
    let mut written = 0u64;
    // Since when acknowledged records have waited for a commit.
    let mut waiting_since: Option<Instant> = None;
    // Failures are reported too, not only left out: the receive loop must learn
    // which tickets are not held, so that no later commit covers them.
    let commit = |sinks: &mut Sinks, written: u64| {
        let held = sinks.commit();
        sinks.publish_metrics(0);
        let report = Committed {
            ticket: written,
            held,
        };
        // With a nats sink the report waits behind the records it covers.
        if let Some(report) = sinks.route_commit(report) {
            // The receive loop is gone only at the very end: nothing to tell then.
            let _ = committed.unbounded_send(report);
        }
    };
    loop {
        let batch = match rx.try_recv() {
            Ok(b) => b,
            Err(TryRecvError::Disconnected) => break,
            Err(TryRecvError::Empty) => {
                // Nothing more to group with: producers wait on this commit.
                if waiting_since.take().is_some() {
                    commit(&mut sinks, written);
                }
                match rx.recv_timeout(idle) {
                    Ok(b) => b,
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        sinks.flush();
                        sinks.publish_metrics(0);
                        match rx.recv() {
                            Ok(b) => b,
                            Err(_) => break,
                        }
                    }
                }
            }
        };
        for entry in &batch.entries {
            match entry {
                Entry::Record(topic, record, origin, body) => {
                    sinks.write(*topic, record, origin.as_ref(), body.as_ref())
                }
                Entry::Body(topic, body, origin, checked) => {
                    sinks.write_body(*topic, body, origin.as_ref(), checked)
                }
            }
        }
        sinks.publish_metrics(batch.entries.len());
        written = batch.ticket;
        if batch.acked {
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= COMMIT_EVERY {
                waiting_since = None;
                commit(&mut sinks, written);
            }
        }
        // If the way back is full, free them here after all.
        let _ = back.try_send(batch);
    }
    if waiting_since.is_some() {
        commit(&mut sinks, written);
    } else {
        sinks.flush();
    }
    sinks.publish_metrics(0);
    sinks.finish()
}
