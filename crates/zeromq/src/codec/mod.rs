//! Implements a codec for ZMQ, providing a way to convert from a byte-oriented
//! io device to a protocal comprised of [`Message`] frames. See [`FramedIo`]

mod command;
#[cfg(feature = "curve")]
pub(crate) mod curve;
mod error;
mod framed;
mod greeting;
pub(crate) mod mechanism;
mod zmq_codec;

#[allow(unused_imports)] // the limit, for tests
pub(crate) use command::MAX_PING_CONTEXT;
pub(crate) use command::{ZmqCommand, ZmqCommandName};
pub use error::CodecError;
pub(crate) use error::CodecResult;
pub use framed::ZmqFramedRead;
pub(crate) use framed::{FrameableWrite, FramedIo, ZmqFramedWrite};
pub(crate) use greeting::{ZmqGreeting, ZmtpVersion};
pub(crate) use zmq_codec::encode_frame;
pub use zmq_codec::ZmqCodec;

use crate::message::ZmqMessage;

#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone)]
pub enum Message {
    Greeting(ZmqGreeting),
    Command(ZmqCommand),
    Message(ZmqMessage),
    /// Whole messages already encoded as ZMTP frames, written as they are
    /// (distlog patch: see `PushSocket::send_framed`).
    Framed(bytes::Bytes),
}
