use crate::async_rt;
use crate::codec::{CodecError, CodecResult, FrameableWrite, Message, ZmqCommand, ZmqFramedWrite};
use crate::heartbeat::{HeartbeatWriter, Tick};

use std::time::Duration;

use futures::channel::mpsc;
use futures::{AsyncWriteExt, SinkExt, StreamExt};

const WRITE_BATCH_LIMIT: usize = 128;

/// Writes queued socket messages into the underlying framed sink in small batches.
#[inline]
#[allow(dead_code)] // used by `__bench` and the tests; sockets use the heartbeat variant
pub(crate) async fn write_message_queue(
    mut queue_receiver: mpsc::Receiver<Message>,
    mut send_queue: ZmqFramedWrite,
) -> CodecResult<()> {
    while let Some(message) = queue_receiver.next().await {
        write_batch(&mut queue_receiver, &mut send_queue, message).await?;
    }

    Ok(())
}

/// Feeds `first` and whatever else is queued (up to a batch), then flushes once.
async fn write_batch(
    queue_receiver: &mut mpsc::Receiver<Message>,
    send_queue: &mut ZmqFramedWrite,
    first: Message,
) -> CodecResult<()> {
    // When backlog already exists, feed a batch before flushing once to avoid per-message flush cost during bursts.
    write_one(send_queue, first).await?;

    for _ in 1..WRITE_BATCH_LIMIT {
        let message = match queue_receiver.try_recv() {
            Ok(message) => message,
            Err(_) => break,
        };
        write_one(send_queue, message).await?;
    }

    send_queue.flush().await
}

/// `write_message_queue` with ZMTP 3.1 heartbeats (distlog patch, see
/// `heartbeat.rs`): also writes the PONGs the reader asks for and, if configured,
/// PINGs; ends with `TimedOut` when the peer is considered dead. The queue is still
/// drained in batches; the clock is looked at once per batch, not per message.
pub(crate) async fn write_message_queue_with_heartbeat(
    mut queue_receiver: mpsc::Receiver<Message>,
    mut send_queue: ZmqFramedWrite,
    mut heartbeat: HeartbeatWriter,
) -> CodecResult<()> {
    use futures::future::{Fuse, FutureExt};
    use futures::stream::FusedStream;
    use std::pin::Pin;

    type Sleep = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
    fn arm(period: Option<Duration>) -> Fuse<Sleep> {
        match period {
            Some(period) => (Box::pin(async_rt::task::sleep(period)) as Sleep).fuse(),
            None => Fuse::terminated(),
        }
    }

    let mut clock = heartbeat.clock();
    let mut period = heartbeat.tick_period();
    let mut tick = arm(period);
    loop {
        futures::select! {
            message = queue_receiver.next() => match message {
                Some(message) => {
                    write_batch(&mut queue_receiver, &mut send_queue, message).await?;
                    // The batch's `try_recv` may have found the queue closed, which
                    // ends the receiver: it never yields again, so neither must we
                    // wait on it (nor on the PONGs alone, the socket being gone).
                    if queue_receiver.is_terminated() {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            },
            context = heartbeat.pongs.next() => {
                if let Some(context) = context {
                    let pong = Message::Command(ZmqCommand::pong(context));
                    send_queue.send(pong).await?;
                }
                // A PING may have brought a TTL to watch: start the clock if idle.
                let new_period = heartbeat.tick_period();
                if new_period != period {
                    period = new_period;
                    tick = arm(period);
                }
            },
            () = tick => {
                match heartbeat.tick(&mut clock) {
                    Tick::Nothing => {}
                    Tick::Ping(ping) => send_queue.send(Message::Command(ping)).await?,
                    Tick::Dead => {
                        return Err(CodecError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "ZMTP heartbeat timeout: no traffic from the peer",
                        )))
                    }
                }
                period = heartbeat.tick_period();
                tick = arm(period);
            },
            // Unreachable since the check above, but `select!` panics without it
            // should every branch ever be finished.
            complete => return Ok(()),
        }
    }
}

/// Feeds one message to the sink. (distlog patch:) pre-framed bytes are written to
/// the socket as they are, once what the sink holds is written, instead of being
/// copied into the sink's buffer first.
async fn write_one(send_queue: &mut ZmqFramedWrite, message: Message) -> CodecResult<()> {
    match message {
        // distlog patch (CURVE): with a cipher, each frame inside must be encrypted.
        Message::Framed(bytes) if !send_queue.encoder().encrypts() => {
            send_queue.flush().await?;
            let io: &mut Box<dyn FrameableWrite> = send_queue;
            io.write_all(&bytes).await?;
            Ok(())
        }
        other => send_queue.feed(other).await,
    }
}

#[cfg(test)]
mod tests {
    mod batch_boundaries;

    use super::*;
    use crate::codec::ZmqCodec;
    use crate::ZmqMessage;

    use bytes::Bytes;
    use futures::{AsyncWrite, SinkExt};
    use parking_lot::Mutex;
    use std::io;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    #[derive(Default)]
    struct WriteStats {
        bytes: Vec<u8>,
        flushes: usize,
    }

    struct RecordingWrite {
        stats: Arc<Mutex<WriteStats>>,
    }

    impl AsyncWrite for RecordingWrite {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let mut stats = self.stats.lock();
            stats.bytes.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.stats.lock().flushes += 1;
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    struct FailingWrite;

    impl AsyncWrite for FailingWrite {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "writer failed",
            )))
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[crate::async_rt::test]
    async fn test_write_message_queue_batches_ready_messages_into_one_flush() {
        let (mut sender, receiver) = mpsc::channel(8);
        sender
            .send(Message::Message(ZmqMessage::from(Bytes::from_static(b"a"))))
            .await
            .expect("send first message");
        sender
            .send(Message::Message(ZmqMessage::from(Bytes::from_static(b"b"))))
            .await
            .expect("send second message");
        sender
            .send(Message::Message(ZmqMessage::from(Bytes::from_static(b"c"))))
            .await
            .expect("send third message");
        drop(sender);

        let stats = Arc::new(Mutex::new(WriteStats::default()));
        let writer = RecordingWrite {
            stats: Arc::clone(&stats),
        };
        let send_queue = ZmqFramedWrite::new(Box::new(writer), ZmqCodec::new());

        write_message_queue(receiver, send_queue)
            .await
            .expect("write queued messages");

        let stats = stats.lock();
        assert_eq!(1, stats.flushes);
        assert_eq!(
            stats.bytes,
            vec![0x00, 0x01, b'a', 0x00, 0x01, b'b', 0x00, 0x01, b'c']
        );
    }

    /// distlog patch: a queue closed behind its last messages ends the heartbeat
    /// writer. Its batch's `try_recv` finished the receiver; with no PING clock and the
    /// reader gone, `select!` then had no branch left and panicked ("all futures in
    /// select! were completed"), which took a busy producer's runtime thread down.
    #[crate::async_rt::test]
    async fn test_heartbeat_writer_ends_when_the_queue_closes_behind_a_batch() {
        let (mut sender, receiver) = mpsc::channel(8);
        for body in [b"a", b"b", b"c"] {
            sender
                .send(Message::Message(ZmqMessage::from(Bytes::from_static(body))))
                .await
                .expect("queue a message");
        }
        drop(sender);
        let shared = Arc::new(crate::heartbeat::HeartbeatShared::default());
        let heartbeat = shared.attach(&crate::SocketOptions::default());
        shared.reader_dropped();

        let stats = Arc::new(Mutex::new(WriteStats::default()));
        let writer = RecordingWrite {
            stats: Arc::clone(&stats),
        };
        let send_queue = ZmqFramedWrite::new(Box::new(writer), ZmqCodec::new());
        write_message_queue_with_heartbeat(receiver, send_queue, heartbeat)
            .await
            .expect("every queued message written, then the end");
        assert_eq!(
            stats.lock().bytes,
            vec![0x00, 0x01, b'a', 0x00, 0x01, b'b', 0x00, 0x01, b'c']
        );
    }

    #[crate::async_rt::test]
    async fn test_write_message_queue_returns_writer_errors() {
        let (mut sender, receiver) = mpsc::channel(1);
        sender
            .send(Message::Message(ZmqMessage::from(Bytes::from_static(b"a"))))
            .await
            .expect("send message");
        drop(sender);

        let send_queue = ZmqFramedWrite::new(Box::new(FailingWrite), ZmqCodec::new());
        let error = write_message_queue(receiver, send_queue)
            .await
            .expect_err("write error");

        let CodecError::Io(error) = error else {
            panic!("unexpected error type");
        };
        assert_eq!(io::ErrorKind::BrokenPipe, error.kind());
    }
}
