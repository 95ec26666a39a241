use crate::backend::GenericSocketBackend;
use crate::codec::Message;
use crate::transport::AcceptStopHandle;
use crate::{
    CaptureSocket, Endpoint, MultiPeerBackend, Socket, SocketBackend, SocketEvent, SocketOptions,
    SocketSend, SocketType, ZmqMessage, ZmqResult,
};

use async_trait::async_trait;
use futures::channel::mpsc;

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::sync::Arc;

pub struct PushSocket {
    backend: Arc<GenericSocketBackend>,
    binds: HashMap<Endpoint, AcceptStopHandle>,
}

impl Drop for PushSocket {
    fn drop(&mut self) {
        self.backend.shutdown();
    }
}

#[async_trait]
impl Socket for PushSocket {
    fn with_options(options: SocketOptions) -> Self {
        Self {
            backend: Arc::new(GenericSocketBackend::with_options(
                None,
                SocketType::PUSH,
                options,
            )),
            binds: HashMap::new(),
        }
    }

    fn backend(&self) -> Arc<dyn MultiPeerBackend> {
        self.backend.clone()
    }

    fn binds(&mut self) -> &mut HashMap<Endpoint, AcceptStopHandle, RandomState> {
        &mut self.binds
    }

    fn monitor(&mut self) -> mpsc::Receiver<SocketEvent> {
        let (sender, receiver) = mpsc::channel(1024);
        self.backend.socket_monitor.lock().replace(sender);
        receiver
    }
}

#[async_trait]
impl SocketSend for PushSocket {
    async fn send(&mut self, message: ZmqMessage) -> ZmqResult<()> {
        self.backend
            .send_round_robin(Message::Message(message))
            .await?;
        Ok(())
    }
}

impl CaptureSocket for PushSocket {}

impl PushSocket {
    /// Sends one or more whole messages already encoded as ZMTP frames with
    /// [`encode_frames`], in one piece to one peer: one hand-over to the connection's
    /// writer however many messages `frames` holds. (distlog patch.)
    ///
    /// The bytes must be complete, well-formed frames; a peer that reads anything
    /// else drops the connection.
    pub async fn send_framed(&mut self, frames: bytes::Bytes) -> ZmqResult<()> {
        self.backend.send_round_robin(Message::Framed(frames)).await
    }
}

/// Appends `message` as ZMTP frames, ready for [`PushSocket::send_framed`]; several
/// messages may be appended one after another. (distlog patch.)
pub fn encode_frames<F: AsRef<[u8]>>(message: &[F], dst: &mut bytes::BytesMut) {
    let last = message.len().saturating_sub(1);
    for (i, frame) in message.iter().enumerate() {
        crate::codec::encode_frame(frame.as_ref(), dst, i != last);
    }
}
