//! One test (at least) per distlog patch (see ../DISTLOG-PATCH.md), over real TCP
//! connections on 127.0.0.1. The raw peers are plain blocking `std::net` sockets on
//! threads of their own, so that they cannot stall the runtime and the tests run the
//! same under tokio and async-std.

extern crate distlog_zeromq as zeromq;

use zeromq::__async_rt as async_rt;
use zeromq::prelude::*;
use zeromq::{PullSocket, PushSocket, SocketOptions, ZmqMessage};

use bytes::{Bytes, BytesMut};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// A ZMTP 3.0 NULL-mechanism greeting, written independently of the crate's code.
fn greeting() -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[9] = 0x7f;
    g[10] = 3;
    g[11] = 0;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// A READY command announcing `socket_type`.
fn ready(socket_type: &str) -> Vec<u8> {
    let mut body = vec![5u8];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(socket_type.len() as u32).to_be_bytes());
    body.extend_from_slice(socket_type.as_bytes());
    let mut cmd = vec![0x04, body.len() as u8];
    cmd.extend_from_slice(&body);
    cmd
}

/// ZMTP 3 framing of `frames` as one message, written independently of the crate's
/// encoder so that the wire test has a reference of its own.
fn reference_frames(frames: &[&[u8]], dst: &mut Vec<u8>) {
    for (i, frame) in frames.iter().enumerate() {
        let more = u8::from(i + 1 != frames.len());
        if frame.len() > 255 {
            dst.push(0x02 | more);
            dst.extend_from_slice(&(frame.len() as u64).to_be_bytes());
        } else {
            dst.push(more);
            dst.push(frame.len() as u8);
        }
        dst.extend_from_slice(frame);
    }
}

/// Handshake as `socket_type` on a connected stream: sends our greeting and READY,
/// reads the peer's greeting and its READY, which must name `peer_type`.
fn handshake(stream: &mut TcpStream, socket_type: &str, peer_type: &str) {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(&greeting()).unwrap();
    stream.write_all(&ready(socket_type)).unwrap();
    let mut their_greeting = [0u8; 64];
    stream.read_exact(&mut their_greeting).unwrap();
    assert_eq!(their_greeting[0], 0xff);
    assert_eq!(their_greeting[10], 3, "ZMTP major version");
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[0], 0x04, "a short command frame");
    let mut body = vec![0u8; usize::from(header[1])];
    stream.read_exact(&mut body).unwrap();
    assert!(body.starts_with(b"\x05READY"), "{body:?}");
    assert!(
        body.windows(peer_type.len())
            .any(|w| w == peer_type.as_bytes()),
        "READY names {peer_type}: {body:?}"
    );
}

fn port_of(endpoint: &zeromq::Endpoint) -> u16 {
    match endpoint {
        zeromq::Endpoint::Tcp(_, port) => *port,
        other => panic!("not TCP: {other}"),
    }
}

async fn recv_within(pull: &mut PullSocket) -> zeromq::ZmqResult<ZmqMessage> {
    async_rt::task::timeout(DEADLINE, pull.recv())
        .await
        .expect("no message within the deadline")
}

/// Waits for a raw peer's thread without blocking the runtime, whose tasks (the
/// connection's reader and writer) that peer is waiting for.
async fn join(thread: std::thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    let started = Instant::now();
    while !thread.is_finished() {
        assert!(started.elapsed() < 2 * DEADLINE, "raw peer hangs");
        async_rt::task::sleep(Duration::from_millis(10)).await;
    }
    match thread.join() {
        Ok(bytes) => bytes,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn frames_of(message: &ZmqMessage) -> Vec<Vec<u8>> {
    message.iter().map(|f| f.to_vec()).collect()
}

/// Patch 1. A hostile peer completes the handshake, then announces a frame of 2^50
/// bytes; without the limit the decoder reserves that much and the allocation
/// failure aborts the test process. Behind the refused header the peer puts bytes
/// that read as a well-formed length and message if the decoder carried on, which
/// must not come out either: after a framing error nothing more is read from that
/// peer. A well-behaved peer afterwards is served.
#[async_rt::test]
async fn max_frame_size_refuses_huge_frame_before_reserving() {
    let mut options = SocketOptions::default();
    options.max_frame_size(1024);
    let mut pull = PullSocket::with_options(options);
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap();
    let port = port_of(&endpoint);

    let hostile = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        handshake(&mut stream, "PUSH", "PULL");
        let mut evil = vec![0x02];
        evil.extend_from_slice(&(1u64 << 50).to_be_bytes());
        // Read as the length of the refused frame if decoding went on: 5, "after".
        evil.extend_from_slice(&5u64.to_be_bytes());
        evil.extend_from_slice(b"after");
        stream.write_all(&evil).unwrap();
        // The PULL must drop the connection: EOF (or a reset) rather than a timeout.
        let mut rest = Vec::new();
        match stream.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "PULL sends nothing: {rest:?}"),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}"),
        }
        rest
    });

    match recv_within(&mut pull).await {
        Err(zeromq::ZmqError::Codec(e)) => {
            assert!(e.to_string().contains("max_frame_size"), "{e}")
        }
        other => panic!("expected the frame to be refused, got {other:?}"),
    }
    join(hostile).await;

    let mut push = PushSocket::new();
    push.connect(&endpoint.to_string()).await.unwrap();
    push.send(ZmqMessage::from("hello")).await.unwrap();
    let message = recv_within(&mut pull).await.unwrap();
    assert_eq!(frames_of(&message), vec![b"hello".to_vec()]);
}

/// Messages of several shapes: empty frames, a frame of 255 bytes (the longest short
/// frame), 256 and more (long frames), multipart.
fn wire_test_messages() -> Vec<Vec<Vec<u8>>> {
    vec![
        vec![vec![]],
        vec![b"a".to_vec()],
        vec![vec![], b"x".to_vec()],
        vec![vec![7u8; 255]],
        vec![vec![8u8; 256], vec![]],
        vec![b"topic".to_vec(), vec![9u8; 300], vec![10u8; 70_000]],
        vec![vec![], vec![], vec![]],
    ]
}

/// Accepts one connection as a PULL peer and returns the `len` bytes that follow
/// the handshake, then checks that nothing else arrived before EOF.
fn capture(listener: TcpListener, len: usize) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        handshake(&mut stream, "PULL", "PUSH");
        let mut bytes = vec![0u8; len];
        stream.read_exact(&mut bytes).unwrap();
        bytes
    })
}

/// Patches 2 and 4. What `send_framed` puts on the wire is byte for byte what a loop
/// of `send` puts there, and both are ZMTP framing as the reference encodes it.
#[async_rt::test]
async fn send_framed_is_byte_identical_to_send() {
    let messages = wire_test_messages();
    let mut expected = Vec::new();
    for m in &messages {
        let frames: Vec<&[u8]> = m.iter().map(Vec::as_slice).collect();
        reference_frames(&frames, &mut expected);
    }

    // Through `send`.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let captured = capture(listener, expected.len());
    let mut push = PushSocket::new();
    push.connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    for m in &messages {
        let frames: Vec<Bytes> = m.iter().map(|f| Bytes::from(f.clone())).collect();
        push.send(ZmqMessage::try_from(frames).unwrap())
            .await
            .unwrap();
    }
    let via_send = join(captured).await;
    drop(push);

    // Through `send_framed`: the first message alone, the rest as one batch, so that
    // a batch of one and a batch of several are both covered.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let captured = capture(listener, expected.len());
    let mut push = PushSocket::new();
    push.connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    let mut first = BytesMut::new();
    zeromq::encode_frames(&messages[0], &mut first);
    push.send_framed(first.freeze()).await.unwrap();
    let mut batch = BytesMut::new();
    for m in &messages[1..] {
        zeromq::encode_frames(m, &mut batch);
    }
    push.send_framed(batch.freeze()).await.unwrap();
    let via_send_framed = join(captured).await;
    drop(push);

    assert_eq!(via_send, expected, "send writes ZMTP framing");
    assert_eq!(
        via_send_framed, via_send,
        "send_framed writes what send writes"
    );
}

/// Patch 2, the receiving end: a batch from `send_framed` arrives as the separate
/// messages it holds.
#[async_rt::test]
async fn send_framed_batch_arrives_as_its_messages() {
    let mut pull = PullSocket::new();
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut push = PushSocket::new();
    push.connect(&endpoint.to_string()).await.unwrap();
    let messages = wire_test_messages();
    let mut batch = BytesMut::new();
    for m in &messages {
        zeromq::encode_frames(m, &mut batch);
    }
    push.send_framed(batch.freeze()).await.unwrap();
    for m in &messages {
        let got = recv_within(&mut pull).await.unwrap();
        assert_eq!(&frames_of(&got), m);
    }
}

/// Patch 3. Two PUSH peers have each queued `N` messages at the PULL before it reads
/// any, so both streams stay ready throughout. Read-ahead hands out runs of at most
/// 64 messages and then goes to the other ready peer: until one peer has nothing
/// left, no peer gets more than 64 messages in a row. Without the bound one peer's
/// whole backlog would come out first; a peer starved by the other would show as
/// one run of `N`.
#[async_rt::test]
async fn read_ahead_is_fair_between_two_busy_peers() {
    const N: usize = 1000;
    const RUN: usize = 64;
    let mut pull = PullSocket::new();
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap();

    let mut pushes = Vec::new();
    for peer in [b'a', b'b'] {
        let mut push = PushSocket::new();
        push.connect(&endpoint.to_string()).await.unwrap();
        pushes.push((peer, push));
    }
    for i in 0..N {
        for (peer, push) in pushes.iter_mut() {
            let mut m = vec![*peer];
            m.extend_from_slice(&(i as u32).to_be_bytes());
            push.send(ZmqMessage::from(m)).await.unwrap();
        }
    }
    // 2 × 1000 messages of 7 bytes on the wire fit the kernel's socket buffers; give
    // the writer tasks time to put them there, so both streams are ready when the
    // PULL starts reading.
    async_rt::task::sleep(Duration::from_millis(300)).await;

    let mut received: Vec<(u8, u32)> = Vec::with_capacity(2 * N);
    for _ in 0..2 * N {
        let m = recv_within(&mut pull).await.unwrap();
        let frame = m.get(0).unwrap();
        let seq = u32::from_be_bytes(frame[1..5].try_into().unwrap());
        received.push((frame[0], seq));
    }

    for peer in [b'a', b'b'] {
        let seqs: Vec<u32> = received
            .iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(seqs, (0..N as u32).collect::<Vec<_>>(), "peer {peer}");
    }

    let mut runs: Vec<(u8, usize)> = Vec::new();
    for (peer, _) in &received {
        match runs.last_mut() {
            Some((p, len)) if p == peer => *len += 1,
            _ => runs.push((*peer, 1)),
        }
    }
    // The last run is the tail of the peer that finished second.
    let (_, before_last) = runs.split_last().unwrap();
    assert!(
        before_last.iter().all(|(_, len)| *len <= RUN),
        "a peer got more than {RUN} in a row while the other had messages: {runs:?}"
    );
    // Both peers had messages throughout, so they took turns from the start.
    assert!(runs.len() >= 2 * (N / RUN), "too few turns: {runs:?}");
}

/// Counts how often the future it wraps is polled.
struct CountPolls<'a, F> {
    future: std::pin::Pin<Box<F>>,
    polls: &'a mut usize,
}

impl<F: std::future::Future> std::future::Future for CountPolls<'_, F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.get_mut();
        *this.polls += 1;
        this.future.as_mut().poll(cx)
    }
}

/// Patch 3, distlog fix. A PULL whose only peer has gone idle after a run must
/// wait, not spin: read-ahead queued the stream again after it had returned
/// Pending, and under async-std (async-io wakes the waker a new poll replaces) the
/// receiving task then woke itself over and over, thousands of polls while idle,
/// which broke upstream's req_router_dealer_rep. Tokio never spun. The next message
/// is still delivered.
#[async_rt::test]
async fn read_ahead_idle_peer_does_not_spin() {
    let mut pull = PullSocket::new();
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut push = PushSocket::new();
    push.connect(&endpoint.to_string()).await.unwrap();

    for i in 0..3u8 {
        push.send(ZmqMessage::from(vec![i])).await.unwrap();
    }
    for i in 0..3u8 {
        assert_eq!(frames_of(&recv_within(&mut pull).await.unwrap()), [[i]]);
    }

    // Nothing more is sent for 300 ms.
    let mut polls = 0;
    let idle = async_rt::task::timeout(
        Duration::from_millis(300),
        CountPolls {
            future: Box::pin(pull.recv()),
            polls: &mut polls,
        },
    )
    .await;
    assert!(idle.is_err(), "a message out of nowhere: {idle:?}");
    assert!(
        polls <= 10,
        "PULL's recv was polled {polls} times in 300 ms with its peer idle"
    );

    push.send(ZmqMessage::from(vec![9u8])).await.unwrap();
    assert_eq!(frames_of(&recv_within(&mut pull).await.unwrap()), [[9u8]]);
}

/// Patch 5. `try_recv` takes what is ready without waiting, in the order `recv`
/// would, and after the peer has gone it still hands out what that peer sent, then
/// returns `None`.
#[async_rt::test]
async fn try_recv_none_some_order_and_disconnect() {
    let mut pull = PullSocket::new();
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap();
    assert!(pull.try_recv().is_none(), "no peer: nothing ready");

    let mut push = PushSocket::new();
    push.connect(&endpoint.to_string()).await.unwrap();
    async_rt::task::sleep(Duration::from_millis(100)).await;
    assert!(pull.try_recv().is_none(), "connected, nothing sent");

    let message = |i: u32| {
        ZmqMessage::try_from(vec![
            Bytes::from(format!("m{i}")),
            Bytes::new(),
            Bytes::from(vec![b'z'; i as usize * 100]),
        ])
        .unwrap()
    };
    for i in 0..10 {
        push.send(message(i)).await.unwrap();
    }

    // Odd messages through `recv`, even ones through `try_recv`: one sequence.
    let started = Instant::now();
    for i in 0..10 {
        let got = if i % 2 == 0 {
            loop {
                if let Some(got) = pull.try_recv() {
                    break got.unwrap();
                }
                assert!(started.elapsed() < DEADLINE, "message {i} never ready");
                async_rt::task::sleep(Duration::from_millis(5)).await;
            }
        } else {
            recv_within(&mut pull).await.unwrap()
        };
        assert_eq!(frames_of(&got), frames_of(&message(i)), "message {i}");
    }
    assert!(pull.try_recv().is_none(), "all taken");

    // Sent, then the peer goes: what it sent is still handed out, then nothing.
    for i in 10..13 {
        push.send(message(i)).await.unwrap();
    }
    async_rt::task::sleep(Duration::from_millis(200)).await;
    drop(push);
    async_rt::task::sleep(Duration::from_millis(200)).await;
    for i in 10..13 {
        let got = pull
            .try_recv()
            .expect("sent before the disconnect")
            .unwrap();
        assert_eq!(frames_of(&got), frames_of(&message(i)));
    }
    for _ in 0..3 {
        assert!(pull.try_recv().is_none(), "peer gone, nothing left");
    }

    // The socket still serves a new peer.
    let mut push = PushSocket::new();
    push.connect(&endpoint.to_string()).await.unwrap();
    push.send(message(13)).await.unwrap();
    let started = Instant::now();
    let got = loop {
        if let Some(got) = pull.try_recv() {
            break got.unwrap();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "new peer's message never ready"
        );
        async_rt::task::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(frames_of(&got), frames_of(&message(13)));
}

/// Patch 6 (heartbeats), byte-exact: a raw peer's PING (TTL, context "ctx-1") is
/// answered with a PONG echoing the context, written independently here from RFC
/// 37; neither reaches the application, and the message after it does.
#[async_rt::test]
async fn ping_is_answered_with_pong_and_not_delivered() {
    let mut pull = PullSocket::new();
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap();
    let port = port_of(&endpoint);
    let raw = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        handshake(&mut stream, "PUSH", "PULL");
        // PING, TTL 50 ds, context "ctx-1"; then PONG (accepted silently); then a message.
        stream.write_all(b"\x04\x0c\x04PING\x00\x32ctx-1").unwrap();
        stream.write_all(b"\x04\x05\x04PONG").unwrap();
        stream.write_all(b"\x00\x02hi").unwrap();
        let mut pong = [0u8; 12];
        stream.read_exact(&mut pong).unwrap();
        pong.to_vec()
    });
    let message = recv_within(&mut pull).await.unwrap();
    assert_eq!(frames_of(&message), vec![b"hi".to_vec()]);
    assert_eq!(join(raw).await, b"\x04\x0a\x04PONGctx-1".to_vec());
}

/// Patch 6: a PUSH, which receives nothing, still answers PINGs.
#[async_rt::test]
async fn push_answers_ping() {
    let mut push = PushSocket::new();
    let endpoint = push.bind("tcp://127.0.0.1:0").await.unwrap();
    let port = port_of(&endpoint);
    let raw = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        handshake(&mut stream, "PULL", "PUSH");
        stream.write_all(b"\x04\x07\x04PING\x00\x00").unwrap();
        let mut pong = [0u8; 7];
        stream.read_exact(&mut pong).unwrap();
        pong.to_vec()
    });
    assert_eq!(join(raw).await, b"\x04\x05\x04PONG".to_vec());
}

/// Patch 6: the TTL of a peer's PING is honoured: a peer that announced 300 ms
/// (3 ds) and then says nothing is dropped (EOF on its side) within about that; one
/// that announced no TTL is kept for as long.
#[async_rt::test]
async fn ping_ttl_drops_a_silent_peer() {
    let mut push = PushSocket::new();
    let endpoint = push.bind("tcp://127.0.0.1:0").await.unwrap();
    let port = port_of(&endpoint);
    let raw = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        handshake(&mut stream, "PULL", "PUSH");
        // No TTL: must still be connected 600 ms later (nothing to read, no EOF).
        stream.write_all(b"\x04\x07\x04PING\x00\x00").unwrap();
        let mut pong = [0u8; 7];
        stream.read_exact(&mut pong).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(600)))
            .unwrap();
        let mut byte = [0u8; 1];
        let kept =
            matches!(stream.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        // TTL 3 ds, then silence: EOF expected.
        stream.write_all(b"\x04\x07\x04PING\x00\x03").unwrap();
        let started = Instant::now();
        stream.read_exact(&mut pong).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let eof = matches!(stream.read(&mut byte), Ok(0) | Err(_));
        (kept, eof, started.elapsed())
    });
    let started = Instant::now();
    while !raw.is_finished() {
        assert!(started.elapsed() < 2 * DEADLINE, "raw peer hangs");
        async_rt::task::sleep(Duration::from_millis(10)).await;
    }
    let (kept, eof, took) = raw.join().expect("raw peer");
    assert!(kept, "dropped although no TTL was announced");
    assert!(eof, "not dropped after its TTL");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "dropped after {took:?}, TTL 300 ms"
    );
}

/// Patch 6: commands other than READY, PING and PONG are still refused (an error and
/// the connection dropped), not delivered and not a panic.
#[async_rt::test]
async fn unknown_command_is_still_an_error() {
    let mut pull = PullSocket::new();
    let endpoint = pull.bind("tcp://127.0.0.1:0").await.unwrap();
    let port = port_of(&endpoint);
    let raw = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        handshake(&mut stream, "PUSH", "PULL");
        stream.write_all(b"\x04\x05\x04PANG\x00\x02hi").unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        rest
    });
    assert!(recv_within(&mut pull).await.is_err());
    assert!(join(raw).await.is_empty());
}

/// Patch 6: SUB and XPUB, which write to their connections directly, answer PINGs
/// (while the application receives: that is when their connections are read).
#[async_rt::test]
async fn sub_and_xpub_answer_ping() {
    async fn pong_while_receiving<S: SocketRecv>(
        socket: &mut S,
        port: u16,
        us: &'static str,
        them: &'static str,
    ) -> Vec<u8> {
        let raw = std::thread::spawn(move || {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
            handshake(&mut stream, us, them);
            stream.write_all(b"\x04\x09\x04PING\x00\x00ab").unwrap();
            let mut pong = [0u8; 9];
            stream.read_exact(&mut pong).unwrap();
            pong.to_vec()
        });
        match futures::future::select(Box::pin(join(raw)), Box::pin(socket.recv())).await {
            futures::future::Either::Left((pong, _)) => pong,
            futures::future::Either::Right((got, _)) => panic!("{them} delivered {got:?}"),
        }
    }
    let mut sub = zeromq::SubSocket::new();
    let port = port_of(&sub.bind("tcp://127.0.0.1:0").await.unwrap());
    assert_eq!(
        pong_while_receiving(&mut sub, port, "PUB", "SUB").await,
        b"\x04\x07\x04PONGab".to_vec()
    );
    let mut xpub = zeromq::XPubSocket::new();
    let port = port_of(&xpub.bind("tcp://127.0.0.1:0").await.unwrap());
    assert_eq!(
        pong_while_receiving(&mut xpub, port, "SUB", "XPUB").await,
        b"\x04\x07\x04PONGab".to_vec()
    );
}

/// Patch 8. DEALER's `send_framed` batch reaches a ROUTER as the messages it holds,
/// each behind the sender's identity, taken with `try_recv`; a reply to that identity
/// comes back to the DEALER's `try_recv`. Neither `try_recv` waits: with nothing
/// ready both say `None`.
#[async_rt::test]
async fn dealer_send_framed_and_try_recv_with_a_router() {
    use zeromq::{DealerSocket, RouterSocket};
    let mut router = RouterSocket::new();
    let endpoint = router.bind("tcp://127.0.0.1:0").await.unwrap();
    let mut dealer = DealerSocket::new();
    dealer.connect(&endpoint.to_string()).await.unwrap();
    assert!(router.try_recv().is_none(), "nothing sent yet");
    assert!(dealer.try_recv().is_none(), "nothing replied yet");

    let messages = wire_test_messages();
    let mut batch = BytesMut::new();
    for m in &messages {
        zeromq::encode_frames(m, &mut batch);
    }
    dealer.send_framed(batch.freeze()).await.unwrap();
    let mut identity = None;
    for m in &messages {
        let started = Instant::now();
        let got = loop {
            match router.try_recv() {
                Some(got) => break got.unwrap(),
                None => {
                    assert!(
                        started.elapsed() < DEADLINE,
                        "no message within the deadline"
                    );
                    async_rt::task::sleep(Duration::from_millis(1)).await;
                }
            }
        };
        let mut frames = frames_of(&got);
        let id = frames.remove(0);
        assert!(!id.is_empty(), "the identity frame comes first");
        assert_eq!(identity.get_or_insert_with(|| id.clone()), &id);
        assert_eq!(&frames, m);
    }

    let identity = Bytes::from(identity.unwrap());
    let reply = ZmqMessage::try_from(vec![identity, Bytes::from_static(b"ack")]).unwrap();
    router.send(reply).await.unwrap();
    let started = Instant::now();
    let got = loop {
        match dealer.try_recv() {
            Some(got) => break got.unwrap(),
            None => {
                assert!(started.elapsed() < DEADLINE, "no reply within the deadline");
                async_rt::task::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    assert_eq!(frames_of(&got), vec![b"ack".to_vec()]);
}

/// Patch 8, found by distlog's acknowledged sender: a DEALER whose owner polls
/// `try_recv` in a loop of its own, sleeping on its thread between looks and never
/// awaiting, must keep reading. Under tokio the task's cooperative budget ran out
/// after about 1,300 messages and every read returned `Pending` from then on, with the
/// rest waiting in the kernel; `try_recv` now polls outside the budget. (tokio's
/// budget only: async-std has none.)
#[cfg(feature = "tokio-runtime")]
#[test]
fn dealer_try_recv_keeps_reading_without_the_caller_ever_yielding() {
    use zeromq::{DealerSocket, RouterSocket};
    const N: u64 = 5000;
    let (endpoint_tx, endpoint_rx) = std::sync::mpsc::channel::<String>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let router = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut router = RouterSocket::new();
            let endpoint = router.bind("tcp://127.0.0.1:0").await.unwrap();
            endpoint_tx.send(endpoint.to_string()).unwrap();
            let hello = router.recv().await.unwrap();
            let identity = hello.get(0).unwrap().clone();
            for i in 0..N {
                let mut reply = ZmqMessage::from(identity.clone());
                reply.push_back(Bytes::from(i.to_be_bytes().to_vec()));
                router.send(reply).await.unwrap();
                if i % 10 == 0 {
                    tokio::time::sleep(Duration::from_micros(50)).await;
                }
            }
            // Until the DEALER has read everything (or given up).
            let started = Instant::now();
            while done_rx.try_recv().is_err() && started.elapsed() < DEADLINE {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    });
    let endpoint = endpoint_rx.recv().unwrap();
    // distlog's sender thread: a runtime with one worker for zeromq's tasks, the
    // sender's own loop on the calling thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async move {
        let mut dealer = DealerSocket::new();
        dealer.connect(&endpoint).await.unwrap();
        dealer
            .send(ZmqMessage::from(Bytes::from_static(b"hello")))
            .await
            .unwrap();
        let mut next = 0u64;
        let started = Instant::now();
        while next < N && started.elapsed() < DEADLINE {
            while let Some(m) = dealer.try_recv() {
                let m = m.unwrap();
                assert_eq!(m.get(0).unwrap().as_ref(), next.to_be_bytes(), "in order");
                next += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        next
    });
    let _ = done_tx.send(());
    assert_eq!(got, N, "every reply was read");
    router.join().unwrap();
}
