//! distlog patch (CURVE): the codec's half of ZMTP-CURVE (RFC 25). After the
//! handshake every ZMTP frame travels inside a MESSAGE command:
//!
//! ```text
//! %x07 "MESSAGE" | nonce (8, big-endian counter) | box (16-byte MAC + ciphertext)
//! plaintext = flags (bit 0 MORE, bit 1 COMMAND) | frame body
//! ```
//!
//! The box is NaCl's `crypto_box` with the short-term keys agreed in the handshake
//! and the nonce "CurveZMQMESSAGEC" (client to server) or "CurveZMQMESSAGES"
//! (server to client) followed by the counter, as libzmq 4.3 does
//! (`src/curve_mechanism_base.cpp`). A counter that does not increase (a replayed
//! or reordered MESSAGE) or a box that fails its MAC is an error, and the
//! connection is dropped.

use super::error::CodecError;

use bytes::{Buf, BufMut, BytesMut};
use crypto_box::{PublicKey, SecretKey};
use curve25519_dalek::MontgomeryPoint;
use poly1305::universal_hash::KeyInit;
use poly1305::Poly1305;
use salsa20::cipher::consts::U10;
use salsa20::cipher::generic_array::GenericArray;
use salsa20::cipher::{Block, KeyIvInit, StreamCipherCore};
use salsa20::SalsaCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub(crate) const MESSAGE_NAME: &[u8; 8] = b"\x07MESSAGE";
/// Command name, nonce and MAC, before the encrypted flags byte.
const MESSAGE_HEADER: usize = 8 + 8 + 16;
pub(crate) const NONCE_CLIENT: &[u8; 16] = b"CurveZMQMESSAGEC";
pub(crate) const NONCE_SERVER: &[u8; 16] = b"CurveZMQMESSAGES";

/// MESSAGE plaintext flags (RFC 25): bit 0 MORE, bit 1 COMMAND.
pub(crate) const FLAG_MORE: u8 = 0x01;
pub(crate) const FLAG_COMMAND: u8 = 0x02;

/// A connection's precomputed box key, NaCl's `crypto_box_beforenm` of the short-term
/// keys, as `SalsaBox::new` computes it: X25519, then HSalsa20 of the shared point with
/// a zero input. Computed once per connection, for the MESSAGE keys of both directions.
pub(crate) struct SharedKey(Zeroizing<salsa20::Key>);

impl SharedKey {
    /// `peer`: the other side's short-term public key; `secret`: this side's.
    pub(crate) fn new(peer: &PublicKey, secret: &SecretKey) -> Self {
        let shared = Zeroizing::new(secret.to_scalar() * MontgomeryPoint(peer.to_bytes()));
        Self(Zeroizing::new(salsa20::hsalsa::<U10>(
            GenericArray::from_slice(&shared.0),
            &GenericArray::default(),
        )))
    }
}

/// One direction's MESSAGE key: `crypto_box_afternm`, built from the primitives
/// `crypto_box` itself is made of.
///
/// XSalsa20 under key k and a 24-byte nonce n is Salsa20 under HSalsa20(k, n[..16])
/// with nonce n[16..]. A MESSAGE nonce's first 16 bytes are the constant
/// "CurveZMQMESSAGEC" or "...S", so that subkey is the same for every MESSAGE one way
/// on a connection: it is derived here once, where `SalsaBox` derives it again for
/// every frame (an HSalsa20 core, as costly as a 64-byte Salsa20 block: 8% of a
/// PUSH->PULL message's instructions). The keystream, the MAC and so the bytes on the
/// wire are `SalsaBox`'s; `message_key_matches_crypto_box` checks it.
struct MessageKey(Zeroizing<salsa20::Key>);

impl MessageKey {
    fn new(shared: &SharedKey, prefix: &[u8; 16]) -> Self {
        Self(Zeroizing::new(salsa20::hsalsa::<U10>(
            &shared.0,
            GenericArray::from_slice(prefix),
        )))
    }

    /// The keystream at MESSAGE `counter` and the MAC keyed, as `crypto_secretbox`
    /// does, by the keystream's first 32 bytes; the box's text follows them.
    fn start(&self, counter: u64) -> (Keystream, Poly1305) {
        let mut core = SalsaCore::<U10>::new(&self.0, &counter.to_be_bytes().into());
        let mut first = Zeroizing::new(Block::<SalsaCore<U10>>::default());
        core.write_keystream_block(&mut first);
        let mac = Poly1305::new(GenericArray::from_slice(&first[..32]));
        (Keystream { core, first }, mac)
    }

    /// Encrypts `text` where it lies; returns the MAC of the ciphertext.
    fn seal(&self, counter: u64, text: &mut [u8]) -> Option<poly1305::Tag> {
        let (keystream, mac) = self.start(counter);
        keystream.apply(text)?;
        Some(mac.compute_unpadded(text))
    }

    /// Decrypts `text` where it lies if `tag` is its MAC; leaves it as it was if not.
    fn open(&self, counter: u64, text: &mut [u8], tag: &[u8; 16]) -> bool {
        let (keystream, mac) = self.start(counter);
        let expected: [u8; 16] = mac.compute_unpadded(text).into();
        // Constant time, as `crypto_secretbox`: a forger learns nothing from timing.
        // As two u64, not byte by byte: two `subtle` barriers instead of sixteen.
        let half = |b: &[u8; 16], i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i * 8..i * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let equal =
            half(&expected, 0).ct_eq(&half(tag, 0)) & half(&expected, 1).ct_eq(&half(tag, 1));
        bool::from(equal) && keystream.apply(text).is_some()
    }
}

/// One box's Salsa20 keystream after the block that keyed its MAC.
///
/// `SalsaCore` rather than the `Salsa20` wrapper: the wrapper would keep the rest of
/// that first block in a buffer of its own, track a position in it and zero it on
/// drop, and the MAC key in another; here the block is kept once, for both.
struct Keystream {
    core: SalsaCore<U10>,
    /// Keystream block 0: 32 bytes of MAC key, then the text's first 32 bytes.
    first: Zeroizing<Block<SalsaCore<U10>>>,
}

impl Keystream {
    /// XORs the keystream into `text`. `None` only past 2^64 blocks, which a frame
    /// cannot reach; no panic for it all the same.
    fn apply(self, text: &mut [u8]) -> Option<()> {
        let (head, rest) = text.split_at_mut(text.len().min(32));
        for (byte, key) in head.iter_mut().zip(&self.first[32..]) {
            *byte ^= key;
        }
        if rest.is_empty() {
            return Some(());
        }
        self.core.try_apply_keystream_partial(rest.into()).ok()
    }
}

/// Appends a ZMTP command frame header for a body of `len` bytes.
pub(crate) fn put_command_header(dst: &mut BytesMut, len: usize) {
    if len > 255 {
        dst.put_u8(0x06);
        dst.put_u64(len as u64);
    } else {
        dst.put_u8(0x04);
        dst.put_u8(len as u8);
    }
}

/// Encrypts outgoing frames. One per connection, owned by the writer's codec.
pub(crate) struct CurveTx {
    key: MessageKey,
    /// The counter the next MESSAGE uses; the peer requires it to increase.
    next: u64,
}

impl CurveTx {
    pub(crate) fn new(shared: &SharedKey, prefix: &[u8; 16], next: u64) -> Self {
        Self {
            key: MessageKey::new(shared, prefix),
            next,
        }
    }

    /// Appends one frame (`flags` as in the MESSAGE plaintext) as a MESSAGE command.
    pub(crate) fn encode(
        &mut self,
        flags: u8,
        body: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let counter = self.next;
        // 2^64 messages cannot happen in practice; still, never reuse a nonce.
        self.next = counter
            .checked_add(1)
            .ok_or_else(|| CodecError::Curve("CURVE: MESSAGE nonce counter exhausted".into()))?;
        let len = MESSAGE_HEADER + 1 + body.len();
        dst.reserve(len + 9);
        // libzmq 4.3 sends MESSAGE in a frame with no flags (not marked as a
        // command, MORE clear), and ORs that frame's flags into the decrypted
        // message's: a COMMAND or MORE bit here would corrupt what it delivers.
        if len > 255 {
            dst.put_u8(0x02);
            dst.put_u64(len as u64);
        } else {
            dst.put_u8(0x00);
            dst.put_u8(len as u8);
        }
        dst.extend_from_slice(MESSAGE_NAME);
        dst.put_u64(counter);
        let tag_at = dst.len();
        dst.extend_from_slice(&[0u8; 16]);
        let plain_at = dst.len();
        dst.put_u8(flags);
        dst.extend_from_slice(body);
        // Encrypted where it lies: no copy of the plaintext besides the one above.
        let tag = self
            .key
            .seal(counter, &mut dst[plain_at..])
            .ok_or_else(|| CodecError::Curve("CURVE: MESSAGE too long to encrypt".into()))?;
        dst[tag_at..plain_at].copy_from_slice(&tag);
        Ok(())
    }
}

impl std::fmt::Debug for CurveTx {
    // No key material in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveTx").field("next", &self.next).finish()
    }
}

/// Decrypts incoming MESSAGE commands. One per connection, owned by the reader's codec.
pub(crate) struct CurveRx {
    key: MessageKey,
    /// The last counter accepted (INITIATE's or READY's at first); the next must be larger.
    last: u64,
}

impl CurveRx {
    pub(crate) fn new(shared: &SharedKey, prefix: &[u8; 16], last: u64) -> Self {
        Self {
            key: MessageKey::new(shared, prefix),
            last,
        }
    }

    /// Opens the body of one command frame, which must be a MESSAGE. Returns the
    /// plaintext flags and the frame body.
    pub(crate) fn decode(&mut self, mut data: BytesMut) -> Result<(u8, BytesMut), CodecError> {
        if data.len() < MESSAGE_NAME.len() || &data[..MESSAGE_NAME.len()] != MESSAGE_NAME {
            return Err(CodecError::Curve(
                "CURVE: expected a MESSAGE after the handshake, got another frame".into(),
            ));
        }
        if data.len() < MESSAGE_HEADER + 1 {
            return Err(CodecError::Curve(format!(
                "CURVE: MESSAGE of {} bytes is shorter than the minimum of {}",
                data.len(),
                MESSAGE_HEADER + 1
            )));
        }
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&data[8..16]);
        let counter = u64::from_be_bytes(counter);
        if counter <= self.last {
            return Err(CodecError::Curve(format!(
                "CURVE: MESSAGE nonce {counter} is not above the last one ({}): replayed or reordered",
                self.last
            )));
        }
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&data[16..MESSAGE_HEADER]);
        if !self.key.open(counter, &mut data[MESSAGE_HEADER..], &tag) {
            return Err(CodecError::Curve(format!(
                "CURVE: MESSAGE {counter} failed authentication (tampered, or another key)"
            )));
        }
        // Only an authentic MESSAGE moves the window, so a forged one cannot block
        // the real ones that follow (the connection is dropped anyway).
        self.last = counter;
        let flags = data[MESSAGE_HEADER];
        // Advancing keeps the frame's one buffer; `split_off` would share it and
        // count a reference per frame.
        data.advance(MESSAGE_HEADER + 1);
        Ok((flags, data))
    }
}

impl std::fmt::Debug for CurveRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveRx").field("last", &self.last).finish()
    }
}

/// The CURVE state of one codec (a reader's or a writer's).
#[derive(Debug, Default)]
pub(crate) struct CurveCodecState {
    /// Between the greeting and READY: the decoder hands command frames over raw,
    /// for the handshake to parse, and refuses data frames.
    pub(crate) handshake: bool,
    pub(crate) rx: Option<Box<CurveRx>>,
    pub(crate) tx: Option<Box<CurveTx>>,
}

/// What the decoder does with one frame under CURVE.
pub(crate) enum CurveFrame {
    /// A handshake command's body, as it came.
    Handshake(BytesMut),
    /// CURVE is not in use: the frame as it came.
    Plain(BytesMut),
    /// A decrypted frame.
    Inner {
        command: bool,
        more: bool,
        data: BytesMut,
    },
}

impl CurveCodecState {
    pub(crate) fn decode_frame(
        &mut self,
        command: bool,
        data: BytesMut,
    ) -> Result<CurveFrame, CodecError> {
        self.decode_frame_inner(command, data)
    }

    fn decode_frame_inner(
        &mut self,
        command: bool,
        data: BytesMut,
    ) -> Result<CurveFrame, CodecError> {
        if let Some(rx) = self.rx.as_mut() {
            // Every frame must now be a MESSAGE, whether or not it is flagged as a
            // command: libzmq does not flag it (RFC 25 calls it a command). A plain
            // data frame fails `decode` as not being a MESSAGE.
            return rx.decode(data).map(|(flags, data)| CurveFrame::Inner {
                command: flags & FLAG_COMMAND != 0,
                more: flags & FLAG_MORE != 0,
                data,
            });
        }
        if self.handshake {
            if !command {
                return Err(CodecError::Curve(
                    "CURVE: data frame received during the handshake".into(),
                ));
            }
            return Ok(CurveFrame::Handshake(data));
        }
        Ok(CurveFrame::Plain(data))
    }

    /// Encrypts pre-encoded ZMTP frames (`Message::Framed`), frame by frame.
    pub(crate) fn encode_framed(
        tx: &mut CurveTx,
        mut frames: &[u8],
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let total = frames.len();
        while !frames.is_empty() {
            let offset = total - frames.len();
            let flags = frames[0];
            let (len, header) = if flags & 0x02 != 0 {
                if frames.len() < 9 {
                    return Err(CodecError::Curve(format!(
                        "CURVE: pre-framed bytes end inside a frame header at offset {offset}"
                    )));
                }
                let mut len = [0u8; 8];
                len.copy_from_slice(&frames[1..9]);
                (u64::from_be_bytes(len), 9)
            } else {
                if frames.len() < 2 {
                    return Err(CodecError::Curve(format!(
                        "CURVE: pre-framed bytes end inside a frame header at offset {offset}"
                    )));
                }
                (u64::from(frames[1]), 2)
            };
            let end = usize::try_from(len)
                .ok()
                .and_then(|len| len.checked_add(header))
                .filter(|&end| end <= frames.len())
                .ok_or_else(|| {
                    CodecError::Curve(format!(
                        "CURVE: pre-framed frame at offset {offset} announces {len} bytes, more than remain"
                    ))
                })?;
            let mut curve_flags = 0;
            if flags & 0x01 != 0 {
                curve_flags |= FLAG_MORE;
            }
            if flags & 0x04 != 0 {
                curve_flags |= FLAG_COMMAND;
            }
            tx.encode(curve_flags, &frames[header..end], dst)?;
            frames = &frames[end..];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_box::SecretKey;

    fn pair() -> (CurveTx, CurveRx) {
        let a = SecretKey::from([7u8; 32]);
        let b = SecretKey::from([9u8; 32]);
        let tx = CurveTx::new(&SharedKey::new(&b.public_key(), &a), NONCE_CLIENT, 3);
        let rx = CurveRx::new(&SharedKey::new(&a.public_key(), &b), NONCE_CLIENT, 2);
        (tx, rx)
    }

    /// The MESSAGE box is `crypto_box`'s (libsodium's `crypto_box_detached`), byte for
    /// byte, for both nonce prefixes, short and multi-block texts.
    #[test]
    fn message_key_matches_crypto_box() {
        use crypto_box::aead::AeadInPlace;
        use crypto_box::SalsaBox;
        let a = SecretKey::from([7u8; 32]);
        let b = SecretKey::from([9u8; 32]);
        let reference = SalsaBox::new(&b.public_key(), &a);
        for prefix in [NONCE_CLIENT, NONCE_SERVER] {
            let key = MessageKey::new(&SharedKey::new(&b.public_key(), &a), prefix);
            for (counter, len) in [
                (3u64, 0usize),
                (4, 1),
                (5, 4),
                (6, 31),
                (7, 32),
                (8, 33),
                (9, 96),
                (10, 97),
                (11, 651),
                (u64::MAX - 1, 64),
            ] {
                let text: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut nonce = [0u8; 24];
                nonce[..16].copy_from_slice(prefix);
                nonce[16..].copy_from_slice(&counter.to_be_bytes());
                let mut expected = text.clone();
                let expected_tag = reference
                    .encrypt_in_place_detached(&nonce.into(), b"", &mut expected)
                    .unwrap();
                let mut sealed = text.clone();
                let tag: [u8; 16] = key.seal(counter, &mut sealed).unwrap().into();
                assert_eq!(
                    (&sealed, &tag[..]),
                    (&expected, &expected_tag[..]),
                    "{len} bytes"
                );
                // And the other side opens it, with its own half of the keys, but not
                // under a tag with any one bit changed.
                let peer = MessageKey::new(&SharedKey::new(&a.public_key(), &b), prefix);
                for bit in [0, 63, 127] {
                    let mut bad = tag;
                    bad[bit / 8] ^= 1 << (bit % 8);
                    assert!(!peer.open(counter, &mut sealed, &bad));
                }
                assert!(peer.open(counter, &mut sealed, &tag));
                assert_eq!(sealed, text);
            }
        }
    }

    /// Splits one encoded command frame into its body.
    fn body(frame: &BytesMut) -> BytesMut {
        let header = if frame[0] & 0x02 != 0 { 9 } else { 2 };
        BytesMut::from(&frame[header..])
    }

    #[test]
    fn message_round_trip_and_layout() {
        let (mut tx, mut rx) = pair();
        let mut dst = BytesMut::new();
        tx.encode(FLAG_MORE, b"hello", &mut dst).unwrap();
        assert_eq!(dst[0], 0x00, "a data frame without MORE, as libzmq sends");
        assert_eq!(dst[1] as usize, 8 + 8 + 16 + 1 + 5);
        assert_eq!(&dst[2..10], MESSAGE_NAME);
        assert_eq!(&dst[10..18], &3u64.to_be_bytes());
        assert!(
            !dst.windows(5).any(|w| w == b"hello"),
            "plaintext on the wire"
        );
        let (flags, data) = rx.decode(body(&dst)).unwrap();
        assert_eq!(flags, FLAG_MORE);
        assert_eq!(&data[..], b"hello");
    }

    #[test]
    fn replayed_message_is_refused() {
        let (mut tx, mut rx) = pair();
        let mut dst = BytesMut::new();
        tx.encode(0, b"once", &mut dst).unwrap();
        rx.decode(body(&dst)).unwrap();
        let err = rx.decode(body(&dst)).unwrap_err();
        assert!(err.to_string().contains("replayed or reordered"), "{err}");
    }

    #[test]
    fn reordered_message_is_refused() {
        let (mut tx, mut rx) = pair();
        let (mut first, mut second) = (BytesMut::new(), BytesMut::new());
        tx.encode(0, b"1", &mut first).unwrap();
        tx.encode(0, b"2", &mut second).unwrap();
        rx.decode(body(&second)).unwrap();
        assert!(rx.decode(body(&first)).is_err());
    }

    #[test]
    fn tampered_message_is_refused() {
        let (mut tx, mut rx) = pair();
        let mut dst = BytesMut::new();
        tx.encode(0, b"payload", &mut dst).unwrap();
        let mut b = body(&dst);
        let last = b.len() - 1;
        b[last] ^= 1;
        let err = rx.decode(b).unwrap_err();
        assert!(err.to_string().contains("failed authentication"), "{err}");
    }

    #[test]
    fn malformed_messages_are_errors() {
        let (_, mut rx) = pair();
        for bad in [
            &b""[..],
            b"\x07MESSAG",
            b"\x05READY1234567890123456789012345678",
            b"\x07MESSAGE\0\0\0\0\0\0\0\x09short",
        ] {
            assert!(rx.decode(BytesMut::from(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn framed_bytes_are_encrypted_frame_by_frame() {
        let (mut tx, mut rx) = pair();
        let mut framed = BytesMut::new();
        crate::codec::encode_frame(b"a", &mut framed, true);
        crate::codec::encode_frame(&[b'b'; 300], &mut framed, false);
        let mut dst = BytesMut::new();
        CurveCodecState::encode_framed(&mut tx, &framed, &mut dst).unwrap();
        let first_len = 2 + dst[1] as usize;
        let (flags, data) = rx.decode(body(&dst.split_to(first_len))).unwrap();
        assert_eq!((flags, &data[..]), (FLAG_MORE, &b"a"[..]));
        let (flags, data) = rx.decode(body(&dst)).unwrap();
        assert_eq!((flags, data.len()), (0, 300));
        // Truncated pre-framed bytes are an error, not a panic.
        assert!(CurveCodecState::encode_framed(&mut tx, &framed[..5], &mut dst).is_err());
        assert!(CurveCodecState::encode_framed(&mut tx, &[0x02, 0, 0], &mut dst).is_err());
    }
}
