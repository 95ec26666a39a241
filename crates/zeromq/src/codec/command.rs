use super::error::CodecError;
use crate::SocketType;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use std::collections::HashMap;
use std::convert::TryFrom;
use std::fmt::Display;

#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Copy, Clone)]
pub enum ZmqCommandName {
    READY,
    // distlog patch (heartbeats, ZMTP 3.1 / RFC 37): TTL and context are kept in
    // `properties` under `PING_TTL` / `PING_CONTEXT` so that `ZmqCommand` keeps its
    // shape; they are encoded as RFC 37's body, not as properties.
    PING,
    PONG,
}

impl ZmqCommandName {
    pub const fn as_str(&self) -> &'static str {
        match self {
            ZmqCommandName::READY => "READY",
            ZmqCommandName::PING => "PING",
            ZmqCommandName::PONG => "PONG",
        }
    }
}

impl Display for ZmqCommandName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct ZmqCommand {
    pub name: ZmqCommandName,
    pub properties: HashMap<String, Bytes>,
}

/// Key of a PING's TTL (2 bytes, deciseconds, network order) in `properties`.
pub(crate) const PING_TTL: &str = "\0ttl";
/// Key of a PING's or PONG's context (at most 16 bytes) in `properties`.
pub(crate) const PING_CONTEXT: &str = "\0context";
/// RFC 37: "ping-context = 0*16OCTET".
pub(crate) const MAX_PING_CONTEXT: usize = 16;

impl ZmqCommand {
    /// A PING with `ttl` in deciseconds (0: none) and `context` (truncated to 16
    /// bytes, RFC 37's limit).
    pub(crate) fn ping(ttl: u16, context: Bytes) -> Self {
        let mut properties = HashMap::with_capacity(2);
        properties.insert(PING_TTL.into(), Bytes::copy_from_slice(&ttl.to_be_bytes()));
        properties.insert(
            PING_CONTEXT.into(),
            context.slice(..context.len().min(MAX_PING_CONTEXT)),
        );
        Self {
            name: ZmqCommandName::PING,
            properties,
        }
    }

    /// The PONG answering a PING with `context`.
    pub(crate) fn pong(context: Bytes) -> Self {
        let mut properties = HashMap::with_capacity(1);
        properties.insert(
            PING_CONTEXT.into(),
            context.slice(..context.len().min(MAX_PING_CONTEXT)),
        );
        Self {
            name: ZmqCommandName::PONG,
            properties,
        }
    }

    /// A PING's TTL in deciseconds (0 when absent).
    pub(crate) fn ping_ttl(&self) -> u16 {
        match self.properties.get(PING_TTL) {
            Some(ttl) if ttl.len() == 2 => u16::from_be_bytes([ttl[0], ttl[1]]),
            _ => 0,
        }
    }

    /// A PING's or PONG's context (empty when absent).
    pub(crate) fn ping_context(&self) -> Bytes {
        self.properties
            .get(PING_CONTEXT)
            .cloned()
            .unwrap_or_default()
    }

    fn is_heartbeat(&self) -> bool {
        matches!(self.name, ZmqCommandName::PING | ZmqCommandName::PONG)
    }

    /// RFC 37's body of a PING (TTL then context) or PONG (context).
    fn heartbeat_body(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(2 + MAX_PING_CONTEXT);
        if let ZmqCommandName::PING = self.name {
            body.extend_from_slice(&self.ping_ttl().to_be_bytes());
        }
        body.extend_from_slice(&self.ping_context());
        body
    }

    pub fn ready(socket: SocketType) -> Self {
        let mut properties = HashMap::new();
        properties.insert("Socket-Type".into(), socket.as_str().into());
        Self {
            name: ZmqCommandName::READY,
            properties,
        }
    }

    pub fn add_prop(&mut self, name: String, value: Bytes) -> &mut Self {
        self.properties.insert(name, value);
        self
    }

    pub fn add_properties(&mut self, map: HashMap<String, Bytes>) -> &mut Self {
        self.properties.extend(map);
        self
    }
}

impl TryFrom<Bytes> for ZmqCommand {
    type Error = CodecError;

    fn try_from(mut buf: Bytes) -> Result<Self, Self::Error> {
        if buf.is_empty() {
            return Err(CodecError::Decode("Missing command length"));
        }

        let command_len = buf.get_u8() as usize;
        if buf.len() < command_len {
            return Err(CodecError::Decode("Command name exceeds frame length"));
        }

        // command-name-char = ALPHA according to https://rfc.zeromq.org/spec:23/ZMTP/
        let command = match &buf[..command_len] {
            b"READY" => ZmqCommandName::READY,
            b"PING" => {
                buf.advance(command_len);
                // RFC 37: ping = command-size %d4 "PING" ping-ttl ping-context,
                // ping-ttl = 2OCTET, ping-context = 0*16OCTET.
                if buf.len() < 2 {
                    return Err(CodecError::Decode("PING without TTL"));
                }
                let ttl = buf.get_u16();
                if buf.len() > MAX_PING_CONTEXT {
                    return Err(CodecError::Decode("PING context longer than 16 bytes"));
                }
                return Ok(Self::ping(ttl, buf));
            }
            b"PONG" => {
                buf.advance(command_len);
                if buf.len() > MAX_PING_CONTEXT {
                    return Err(CodecError::Decode("PONG context longer than 16 bytes"));
                }
                return Ok(Self::pong(buf));
            }
            _ => return Err(CodecError::Command("Unknown command received")),
        };
        buf.advance(command_len);
        let mut properties = HashMap::new();

        while !buf.is_empty() {
            // Collect command properties
            let prop_len = buf.get_u8() as usize;
            if buf.len() < prop_len {
                return Err(CodecError::Decode("Property name exceeds frame length"));
            }

            let property = match String::from_utf8(buf.split_to(prop_len).to_vec()) {
                Ok(p) => p,
                Err(_) => return Err(CodecError::Decode("Invalid property identifier")),
            };

            if buf.len() < 4 {
                return Err(CodecError::Decode("Missing property value length"));
            }

            let prop_val_len = buf.get_u32() as usize;
            if buf.len() < prop_val_len {
                return Err(CodecError::Decode("Property value exceeds frame length"));
            }

            let prop_value = buf.split_to(prop_val_len);
            properties.insert(property, prop_value);
        }
        Ok(Self {
            name: command,
            properties,
        })
    }
}

impl From<ZmqCommand> for BytesMut {
    fn from(command: ZmqCommand) -> Self {
        let mut message_len = 0;

        let command_name = command.name.as_str();
        if command.is_heartbeat() {
            // At most 1 + 4 + 2 + 16 bytes: always a short command.
            let body = command.heartbeat_body();
            let mut bytes = BytesMut::with_capacity(2 + 1 + command_name.len() + body.len());
            bytes.put_u8(0x04);
            bytes.put_u8((1 + command_name.len() + body.len()) as u8);
            bytes.put_u8(command_name.len() as u8);
            bytes.extend_from_slice(command_name.as_bytes());
            bytes.extend_from_slice(&body);
            return bytes;
        }
        message_len += command_name.len() + 1;
        for (prop, val) in command.properties.iter() {
            message_len += prop.len() + 1;
            message_len += val.len() + 4;
        }

        let long_message = message_len > 255;

        let mut bytes = BytesMut::new();
        if long_message {
            bytes.reserve(message_len + 9);
            bytes.put_u8(0x06);
            bytes.put_u64(message_len as u64);
        } else {
            bytes.reserve(message_len + 2);
            bytes.put_u8(0x04);
            bytes.put_u8(message_len as u8);
        };
        bytes.put_u8(command_name.len() as u8);
        bytes.extend_from_slice(command_name.as_ref());
        for (prop, val) in command.properties.iter() {
            bytes.put_u8(prop.len() as u8);
            bytes.extend_from_slice(prop.as_ref());
            bytes.put_u32(val.len() as u32);
            bytes.extend_from_slice(val.as_ref());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::ZmqCommand;
    use bytes::Bytes;
    use std::convert::TryFrom;

    fn assert_decode_error(data: &'static [u8]) {
        assert!(ZmqCommand::try_from(Bytes::from_static(data)).is_err());
    }

    #[test]
    fn rejects_truncated_command_name() {
        assert_decode_error(&[5, b'R']);
    }

    #[test]
    fn rejects_truncated_property_name() {
        assert_decode_error(&[5, b'R', b'E', b'A', b'D', b'Y', 11, b'S']);
    }

    #[test]
    fn rejects_truncated_property_value_length() {
        assert_decode_error(&[
            5, b'R', b'E', b'A', b'D', b'Y', 11, b'S', b'o', b'c', b'k', b'e', b't', b'-', b'T',
            b'y', b'p', b'e', 0, 0,
        ]);
    }

    #[test]
    fn rejects_truncated_property_value() {
        assert_decode_error(&[
            5, b'R', b'E', b'A', b'D', b'Y', 11, b'S', b'o', b'c', b'k', b'e', b't', b'-', b'T',
            b'y', b'p', b'e', 0, 0, 0, 3, b'R',
        ]);
    }
}

#[cfg(test)]
mod heartbeat_tests {
    //! distlog patch: PING/PONG (RFC 37).
    use super::{ZmqCommand, ZmqCommandName, MAX_PING_CONTEXT};
    use bytes::{Bytes, BytesMut};
    use std::convert::TryFrom;

    /// The command frame's body (after the 0x04 flag and the size byte).
    fn body(command: ZmqCommand) -> Vec<u8> {
        let bytes = BytesMut::from(command);
        assert_eq!(bytes[0], 0x04, "short command frame");
        assert_eq!(bytes[1] as usize, bytes.len() - 2, "size byte");
        bytes[2..].to_vec()
    }

    #[test]
    fn ping_encodes_as_rfc37() {
        let ping = ZmqCommand::ping(0x0102, Bytes::from_static(b"ctx"));
        assert_eq!(body(ping), b"\x04PING\x01\x02ctx");
        assert_eq!(body(ZmqCommand::ping(0, Bytes::new())), b"\x04PING\x00\x00");
        assert_eq!(
            body(ZmqCommand::pong(Bytes::from_static(b"ctx"))),
            b"\x04PONGctx"
        );
    }

    #[test]
    fn ping_decodes_ttl_and_context() {
        let ping = ZmqCommand::try_from(Bytes::from_static(b"\x04PING\x00\x64abc")).unwrap();
        assert!(matches!(ping.name, ZmqCommandName::PING));
        assert_eq!(ping.ping_ttl(), 100);
        assert_eq!(ping.ping_context(), Bytes::from_static(b"abc"));
        let pong = ZmqCommand::try_from(Bytes::from_static(b"\x04PONGabc")).unwrap();
        assert!(matches!(pong.name, ZmqCommandName::PONG));
        assert_eq!(pong.ping_context(), Bytes::from_static(b"abc"));
        let bare = ZmqCommand::try_from(Bytes::from_static(b"\x04PONG")).unwrap();
        assert!(bare.ping_context().is_empty());
    }

    #[test]
    fn context_limit_is_16_bytes() {
        let mut ok = b"\x04PING\x00\x01".to_vec();
        ok.extend_from_slice(&[7; MAX_PING_CONTEXT]);
        let ping = ZmqCommand::try_from(Bytes::from(ok.clone())).unwrap();
        assert_eq!(ping.ping_context().len(), 16);
        ok.push(7);
        assert!(ZmqCommand::try_from(Bytes::from(ok)).is_err());
        let mut pong = b"\x04PONG".to_vec();
        pong.extend_from_slice(&[7; MAX_PING_CONTEXT + 1]);
        assert!(ZmqCommand::try_from(Bytes::from(pong)).is_err());
        // What we send is cut to the limit, never longer.
        let long = ZmqCommand::pong(Bytes::from(vec![1u8; 40]));
        assert_eq!(body(long).len(), 5 + MAX_PING_CONTEXT);
    }

    #[test]
    fn malformed_pings_are_errors_not_panics() {
        for data in [
            &b"\x04PING"[..],
            &b"\x04PING\x01"[..],
            &b"\x04PIN"[..],
            &b"\x04PINGX"[..],
            &b"\x05PING"[..],
            &b"\x04PINX\x00\x00"[..],
            &b""[..],
            &b"\xffPING"[..],
        ] {
            assert!(
                ZmqCommand::try_from(Bytes::copy_from_slice(data)).is_err(),
                "{data:?} accepted"
            );
        }
    }

    #[test]
    fn decode_encode_round_trip() {
        let wire = b"\x04PING\xff\xfe0123456789abcdef";
        let ping = ZmqCommand::try_from(Bytes::from_static(wire)).unwrap();
        assert_eq!(ping.ping_ttl(), 0xfffe);
        assert_eq!(body(ping), wire);
    }
}
