// From zmq.rs 0.7.0 (https://github.com/zeromq/zmq.rs), MIT, by its authors (see
// ../LICENSE.md); changes for distlog are listed in ../DISTLOG-PATCH.md, "Tests".

// The fork's package is distlog-zeromq; upstream's tests name it zeromq.
extern crate distlog_zeromq as zeromq;

use std::time::Duration;

#[cfg(target_family = "unix")]
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use zeromq::__async_rt as async_rt;
use zeromq::prelude::{Socket, SocketRecv, SocketSend};
use zeromq::{DealerSocket, Endpoint, Host, RouterSocket, SocketEvent, ZmqMessage};

#[async_rt::test]
async fn adopts_tcp_listener_and_accepts_connections() {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let expected_addr = listener.local_addr().unwrap();

    let mut router = RouterSocket::new();
    let mut monitor = router.monitor();
    let endpoint = router.bind_listener(listener).await.unwrap();
    assert_eq!(endpoint, Endpoint::from_tcp_addr(expected_addr));
    let event = async_rt::task::timeout(Duration::from_secs(2), monitor.next())
        .await
        .expect("timeout waiting for listening monitor event")
        .expect("monitor closed before listening event");
    assert!(matches!(event, SocketEvent::Listening(bound) if bound == endpoint));

    let mut dealer = DealerSocket::new();
    dealer.connect(&endpoint.to_string()).await.unwrap();
    dealer.send(ZmqMessage::from("hello")).await.unwrap();

    let message = async_rt::task::timeout(Duration::from_secs(2), router.recv())
        .await
        .expect("timeout waiting for inherited TCP listener")
        .unwrap();
    assert_eq!(message.get(message.len() - 1).unwrap().as_ref(), b"hello");
    let event = async_rt::task::timeout(Duration::from_secs(2), monitor.next())
        .await
        .expect("timeout waiting for accepted monitor event")
        .expect("monitor closed before accepted event");
    assert!(matches!(event, SocketEvent::Accepted(_, _)));

    assert!(router.close().await.is_empty());
    assert!(dealer.close().await.is_empty());
}

#[cfg(target_family = "unix")]
#[async_rt::test]
async fn adopts_ipc_listener_and_owns_socket_path() {
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = std::env::temp_dir().join(format!("zmq-bind-{}-{nonce}.sock", std::process::id()));
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();

    let mut router = RouterSocket::new();
    let endpoint = router.bind_listener(listener).await.unwrap();
    assert_eq!(endpoint, Endpoint::Ipc(Some(path.clone())));

    let mut dealer = DealerSocket::new();
    dealer.connect(&endpoint.to_string()).await.unwrap();
    dealer.send(ZmqMessage::from("hello")).await.unwrap();

    let message = async_rt::task::timeout(Duration::from_secs(2), router.recv())
        .await
        .expect("timeout waiting for inherited IPC listener")
        .unwrap();
    assert_eq!(message.get(message.len() - 1).unwrap().as_ref(), b"hello");

    assert!(router.close().await.is_empty());
    assert!(dealer.close().await.is_empty());
    assert!(!path.exists());
}

#[async_rt::test]
async fn regular_bind_preserves_domain_name() {
    let mut router = RouterSocket::new();
    let endpoint = router.bind("tcp://localhost:0").await.unwrap();

    assert!(matches!(
        endpoint,
        Endpoint::Tcp(Host::Domain(ref host), port) if host == "localhost" && port != 0
    ));
    assert!(router.close().await.is_empty());
}

// distlog patch: connections accepted by the caller and handed to two sockets in turn.
#[async_rt::test]
async fn sockets_take_the_connections_dealt_to_them() {
    use zeromq::{Listener, PullSocket, PushSocket};
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let endpoint = Endpoint::from_tcp_addr(listener.local_addr().unwrap());
    let (to_a, from_a) = futures::channel::mpsc::unbounded();
    let (to_b, from_b) = futures::channel::mpsc::unbounded();
    let mut a = PullSocket::new();
    let mut b = PullSocket::new();
    for (socket, streams) in [(&mut a, from_a), (&mut b, from_b)] {
        let bound = socket
            .bind_listener(Listener::TcpStreams {
                endpoint: endpoint.clone(),
                streams,
            })
            .await
            .unwrap();
        assert_eq!(bound, endpoint);
    }
    let dealer = std::thread::spawn(move || {
        for (i, stream) in listener.incoming().take(2).enumerate() {
            let to = if i == 0 { &to_a } else { &to_b };
            to.unbounded_send(stream.unwrap()).unwrap();
        }
    });
    let mut pushes = Vec::new();
    for name in ["first", "second"] {
        let mut push = PushSocket::new();
        push.connect(&endpoint.to_string()).await.unwrap();
        push.send(ZmqMessage::from(name)).await.unwrap();
        // The second connects only once the first is dealt, so each goes where meant.
        let socket = if name == "first" { &mut a } else { &mut b };
        let got = async_rt::task::timeout(Duration::from_secs(2), socket.recv())
            .await
            .expect("timeout waiting for a dealt connection")
            .unwrap();
        assert_eq!(got.get(0).unwrap().as_ref(), name.as_bytes());
        pushes.push(push);
    }
    dealer.join().unwrap();
    // The senders are gone: each socket keeps the peers it has.
    pushes[1]
        .send(ZmqMessage::from("still here"))
        .await
        .unwrap();
    let got = async_rt::task::timeout(Duration::from_secs(2), b.recv())
        .await
        .expect("timeout after the dealer ended")
        .unwrap();
    assert_eq!(got.get(0).unwrap().as_ref(), b"still here");
    for push in pushes {
        let _ = push.close().await;
    }
    assert!(a.close().await.is_empty());
    assert!(b.close().await.is_empty());
}
