//! distlog patch (CURVE): the CurveZMQ handshake (RFC 26 as ZMTP-CURVE, RFC 25,
//! carries it), as pure state machines over command bodies (so that unit tests and
//! a fuzz target can drive them without sockets), and the async driver that runs
//! them over a connection after the greeting.

use super::{CurveClient, CurvePublicKey, CurveRole, CurveServer, StatsCounter};
use crate::codec::curve::{
    put_command_header, CurveRx, CurveTx, SharedKey, NONCE_CLIENT, NONCE_SERVER,
};
use crate::codec::mechanism::ZmqMechanism;
use crate::codec::{CodecError, FramedIo, Message, ZmqCommand, ZmqGreeting};
use crate::util::PeerIdentity;
use crate::{SocketType, ZmqError, ZmqResult};

use bytes::{Bytes, BytesMut};
use crypto_box::aead::Aead;
use crypto_box::{Nonce, PublicKey, SalsaBox, SecretKey};
use crypto_secretbox::aead::KeyInit;
use crypto_secretbox::XSalsa20Poly1305;
use futures::{SinkExt, StreamExt};

use std::collections::HashMap;
use std::convert::TryFrom;

pub(crate) const HELLO_LEN: usize = 200;
pub(crate) const WELCOME_LEN: usize = 168;
/// INITIATE without metadata: name 9, cookie 96, nonce 8, box 16 + 32 + 16 + 80.
pub(crate) const INITIATE_MIN_LEN: usize = 257;
/// READY without metadata: name 6, nonce 8, MAC 16.
pub(crate) const READY_MIN_LEN: usize = 30;

fn err(msg: impl Into<String>) -> CodecError {
    CodecError::Curve(msg.into())
}

fn random<const N: usize>() -> Result<[u8; N], CodecError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| err(format!("CURVE: no randomness: {e}")))?;
    Ok(b)
}

fn nonce(prefix: &[u8], short: &[u8]) -> Nonce {
    // Prefixes and short nonces together are always 24 bytes here.
    let mut n = [0u8; 24];
    n[..prefix.len()].copy_from_slice(prefix);
    n[prefix.len()..].copy_from_slice(short);
    Nonce::from(n)
}

/// `crypto_box`: MAC (16) then ciphertext, i.e. libsodium's box minus its 16 zero bytes.
fn seal(key: &SalsaBox, nonce: &Nonce, plain: &[u8]) -> Result<Vec<u8>, CodecError> {
    key.encrypt(nonce, plain)
        .map_err(|_| err("CURVE: encryption failed"))
}

fn open(key: &SalsaBox, nonce: &Nonce, boxed: &[u8], what: &str) -> Result<Vec<u8>, CodecError> {
    key.decrypt(nonce, boxed)
        .map_err(|_| err(format!("CURVE: cannot open {what}")))
}

fn array32(bytes: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(&bytes[..32]);
    a
}

fn u64_at(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(a)
}

/// Fails unless `body` is the command `name` (its length-prefixed name first). An
/// ERROR from the peer is reported with its reason.
fn expect_command(body: &[u8], name: &[u8], what: &str) -> Result<(), CodecError> {
    if body.starts_with(name) {
        return Ok(());
    }
    if body.starts_with(b"\x05ERROR") {
        let reason = body
            .get(7..)
            .and_then(|rest| rest.get(..usize::from(body[6])))
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        return Err(err(format!(
            "CURVE: the peer refused the handshake: ERROR {reason:?}"
        )));
    }
    Err(err(format!("CURVE: expected {what}, got another command")))
}

/// The body of an ERROR command (RFC 25): sent in the clear, before READY.
pub(crate) fn error_command(reason: &str) -> Vec<u8> {
    let reason = &reason.as_bytes()[..reason.len().min(255)];
    let mut v = b"\x05ERROR".to_vec();
    v.push(reason.len() as u8);
    v.extend_from_slice(reason);
    v
}

/// Metadata (ZMTP properties) for INITIATE and READY: the same as NULL's READY.
pub(crate) fn metadata(socket_type: SocketType, identity: Option<&PeerIdentity>) -> Vec<u8> {
    let mut ready = ZmqCommand::ready(socket_type);
    if let Some(id) = identity {
        ready.add_prop("Identity".into(), id.clone().into());
    }
    let frame = BytesMut::from(ready);
    // The frame header (2 or 9 bytes), then "\x05READY", then the properties.
    let header = if frame[0] & 0x02 != 0 { 9 } else { 2 };
    frame[header + 6..].to_vec()
}

/// Parses a peer's metadata as ZMTP properties.
pub(crate) fn parse_metadata(meta: &[u8]) -> Result<HashMap<String, Bytes>, CodecError> {
    let mut command = b"\x05READY".to_vec();
    command.extend_from_slice(meta);
    ZmqCommand::try_from(Bytes::from(command))
        .map(|c| c.properties)
        .map_err(|e| err(format!("CURVE: malformed metadata: {e}")))
}

/// The client's side: C' made here, S known in advance.
pub struct ClientHandshake {
    config: CurveClient,
    cn_secret: SecretKey,
    cn_public: PublicKey,
    /// Set by WELCOME.
    cn_server: Option<(PublicKey, [u8; 96])>,
}

impl ClientHandshake {
    pub fn new(config: CurveClient) -> Result<Self, CodecError> {
        let cn_secret = SecretKey::from(random::<32>()?);
        Ok(Self {
            cn_public: cn_secret.public_key(),
            cn_secret,
            config,
            cn_server: None,
        })
    }

    /// HELLO, short nonce 1 (libzmq's first).
    pub fn hello(&self) -> Result<Vec<u8>, CodecError> {
        let server = PublicKey::from(*self.config.server.as_bytes());
        let key = SalsaBox::new(&server, &self.cn_secret);
        let short = 1u64.to_be_bytes();
        let sig = seal(&key, &nonce(b"CurveZMQHELLO---", &short), &[0u8; 64])?;
        let mut v = Vec::with_capacity(HELLO_LEN);
        v.extend_from_slice(b"\x05HELLO\x01\x00");
        // Anti-amplification padding: HELLO is as long as WELCOME's answer and more.
        v.extend_from_slice(&[0u8; 72]);
        v.extend_from_slice(self.cn_public.as_bytes());
        v.extend_from_slice(&short);
        v.extend_from_slice(&sig);
        Ok(v)
    }

    pub fn process_welcome(&mut self, body: &[u8]) -> Result<(), CodecError> {
        expect_command(body, b"\x07WELCOME", "WELCOME")?;
        if body.len() != WELCOME_LEN {
            return Err(err(format!(
                "CURVE: WELCOME is {} bytes, not {WELCOME_LEN}",
                body.len()
            )));
        }
        let server = PublicKey::from(*self.config.server.as_bytes());
        let key = SalsaBox::new(&server, &self.cn_secret);
        let plain = open(
            &key,
            &nonce(b"WELCOME-", &body[8..24]),
            &body[24..],
            "WELCOME (wrong server key?)",
        )?;
        let mut cookie = [0u8; 96];
        cookie.copy_from_slice(&plain[32..128]);
        self.cn_server = Some((PublicKey::from(array32(&plain[..32])), cookie));
        Ok(())
    }

    /// INITIATE, short nonce 2, carrying `metadata`.
    pub fn initiate(&self, metadata: &[u8]) -> Result<Vec<u8>, CodecError> {
        let (cn_server, cookie) = self
            .cn_server
            .as_ref()
            .ok_or_else(|| err("CURVE: INITIATE before WELCOME"))?;
        let long_secret = self.config.keys.secret.box_key();
        let vouch_key = SalsaBox::new(cn_server, &long_secret);
        let vouch_short = random::<16>()?;
        let mut vouch_plain = [0u8; 64];
        vouch_plain[..32].copy_from_slice(self.cn_public.as_bytes());
        vouch_plain[32..].copy_from_slice(self.config.server.as_bytes());
        let vouch = seal(&vouch_key, &nonce(b"VOUCH---", &vouch_short), &vouch_plain)?;

        let mut plain = Vec::with_capacity(128 + metadata.len());
        plain.extend_from_slice(self.config.keys.public.as_bytes());
        plain.extend_from_slice(&vouch_short);
        plain.extend_from_slice(&vouch);
        plain.extend_from_slice(metadata);
        let key = SalsaBox::new(cn_server, &self.cn_secret);
        let short = 2u64.to_be_bytes();
        let boxed = seal(&key, &nonce(b"CurveZMQINITIATE", &short), &plain)?;

        let mut v = Vec::with_capacity(INITIATE_MIN_LEN + metadata.len());
        v.extend_from_slice(b"\x08INITIATE");
        v.extend_from_slice(cookie);
        v.extend_from_slice(&short);
        v.extend_from_slice(&boxed);
        Ok(v)
    }

    /// READY (or an ERROR): returns the server's metadata and the ciphers.
    pub fn process_ready(&self, body: &[u8]) -> Result<(Vec<u8>, CurveTx, CurveRx), CodecError> {
        expect_command(body, b"\x05READY", "READY")?;
        if body.len() < READY_MIN_LEN {
            return Err(err(format!(
                "CURVE: READY is {} bytes, shorter than {READY_MIN_LEN}",
                body.len()
            )));
        }
        let (cn_server, _) = self
            .cn_server
            .as_ref()
            .ok_or_else(|| err("CURVE: READY before WELCOME"))?;
        let key = SalsaBox::new(cn_server, &self.cn_secret);
        let meta = open(
            &key,
            &nonce(b"CurveZMQREADY---", &body[6..14]),
            &body[14..],
            "READY",
        )?;
        let ready_nonce = u64_at(&body[6..14]);
        // The client's HELLO and INITIATE used 1 and 2: its MESSAGEs start at 3.
        let shared = SharedKey::new(cn_server, &self.cn_secret);
        let tx = CurveTx::new(&shared, NONCE_CLIENT, 3);
        let rx = CurveRx::new(&shared, NONCE_SERVER, ready_nonce);
        Ok((meta, tx, rx))
    }
}

/// What the server learnt from a valid INITIATE.
#[derive(Debug)]
pub struct Initiated {
    pub client_key: CurvePublicKey,
    pub metadata: Vec<u8>,
    initiate_nonce: u64,
}

/// The server's side: S known, S' and the cookie key made per connection.
pub struct ServerHandshake {
    config: CurveServer,
    cn_secret: SecretKey,
    cn_public: PublicKey,
    /// Fresh for every connection (libzmq makes one per WELCOME), so a cookie
    /// never opens on another connection, nor after this handshake.
    cookie_key: [u8; 32],
    /// C', from HELLO.
    cn_client: Option<PublicKey>,
}

impl ServerHandshake {
    pub fn new(config: CurveServer) -> Result<Self, CodecError> {
        let cn_secret = SecretKey::from(random::<32>()?);
        Ok(Self {
            cn_public: cn_secret.public_key(),
            cn_secret,
            cookie_key: random::<32>()?,
            config,
            cn_client: None,
        })
    }

    /// Checks HELLO and answers WELCOME.
    pub fn process_hello(&mut self, body: &[u8]) -> Result<Vec<u8>, CodecError> {
        expect_command(body, b"\x05HELLO", "HELLO")?;
        if body.len() != HELLO_LEN {
            return Err(err(format!(
                "CURVE: HELLO is {} bytes, not {HELLO_LEN}",
                body.len()
            )));
        }
        if body[6..8] != [1, 0] {
            return Err(err(format!(
                "CURVE: HELLO has version {}.{}, not 1.0",
                body[6], body[7]
            )));
        }
        let cn_client = PublicKey::from(array32(&body[80..112]));
        let key = SalsaBox::new(&cn_client, &self.config.secret.box_key());
        let zeros = open(
            &key,
            &nonce(b"CurveZMQHELLO---", &body[112..120]),
            &body[120..200],
            "HELLO (does the client have this server's public key?)",
        )?;
        if zeros.iter().any(|&b| b != 0) {
            return Err(err("CURVE: HELLO's signature box is not 64 zero bytes"));
        }

        // cookie = nonce (16) + secretbox[C' + s'](cookie key)
        let cookie_short = random::<16>()?;
        let mut cookie_plain = [0u8; 64];
        cookie_plain[..32].copy_from_slice(cn_client.as_bytes());
        cookie_plain[32..].copy_from_slice(&self.cn_secret.to_bytes());
        let cookie_box = XSalsa20Poly1305::new(&self.cookie_key.into())
            .encrypt(&nonce(b"COOKIE--", &cookie_short), &cookie_plain[..])
            .map_err(|_| err("CURVE: encryption failed"))?;

        let mut plain = Vec::with_capacity(128);
        plain.extend_from_slice(self.cn_public.as_bytes());
        plain.extend_from_slice(&cookie_short);
        plain.extend_from_slice(&cookie_box);
        let welcome_short = random::<16>()?;
        let boxed = seal(&key, &nonce(b"WELCOME-", &welcome_short), &plain)?;

        let mut v = Vec::with_capacity(WELCOME_LEN);
        v.extend_from_slice(b"\x07WELCOME");
        v.extend_from_slice(&welcome_short);
        v.extend_from_slice(&boxed);
        self.cn_client = Some(cn_client);
        Ok(v)
    }

    /// Checks INITIATE: the cookie, the box, the vouch. Authorization is the caller's.
    pub fn process_initiate(&mut self, body: &[u8]) -> Result<Initiated, CodecError> {
        let cn_client = self
            .cn_client
            .clone()
            .ok_or_else(|| err("CURVE: INITIATE before HELLO"))?;
        expect_command(body, b"\x08INITIATE", "INITIATE")?;
        if body.len() < INITIATE_MIN_LEN {
            return Err(err(format!(
                "CURVE: INITIATE is {} bytes, shorter than {INITIATE_MIN_LEN}",
                body.len()
            )));
        }
        let cookie = XSalsa20Poly1305::new(&self.cookie_key.into())
            .decrypt(&nonce(b"COOKIE--", &body[9..25]), &body[25..105])
            .map_err(|_| err("CURVE: INITIATE's cookie does not open"))?;
        if cookie[..32] != cn_client.as_bytes()[..] || cookie[32..] != self.cn_secret.to_bytes() {
            return Err(err("CURVE: INITIATE's cookie is not this connection's"));
        }
        let key = SalsaBox::new(&cn_client, &self.cn_secret);
        let plain = open(
            &key,
            &nonce(b"CurveZMQINITIATE", &body[105..113]),
            &body[113..],
            "INITIATE",
        )?;
        // plain = C (32) + vouch nonce (16) + vouch box (80) + metadata; the box
        // opened, so its length is body - 113 - 16 >= 128.
        let client_long = PublicKey::from(array32(&plain[..32]));
        let vouch_key = SalsaBox::new(&client_long, &self.cn_secret);
        let vouch = open(
            &vouch_key,
            &nonce(b"VOUCH---", &plain[32..48]),
            &plain[48..128],
            "INITIATE's vouch",
        )?;
        if vouch[..32] != cn_client.as_bytes()[..] {
            return Err(err("CURVE: the vouch is for another short-term key"));
        }
        if vouch[32..64] != self.config.public.as_bytes()[..] {
            return Err(err("CURVE: the vouch is for another server"));
        }
        Ok(Initiated {
            client_key: CurvePublicKey::from_bytes(array32(&plain[..32])),
            metadata: plain[128..].to_vec(),
            initiate_nonce: u64_at(&body[105..113]),
        })
    }

    /// READY, short nonce 1 (the server's first), and the ciphers.
    pub fn ready(
        &self,
        initiated: &Initiated,
        metadata: &[u8],
    ) -> Result<(Vec<u8>, CurveTx, CurveRx), CodecError> {
        let cn_client = self
            .cn_client
            .clone()
            .ok_or_else(|| err("CURVE: READY before HELLO"))?;
        let key = SalsaBox::new(&cn_client, &self.cn_secret);
        let short = 1u64.to_be_bytes();
        let boxed = seal(&key, &nonce(b"CurveZMQREADY---", &short), metadata)?;
        let mut v = Vec::with_capacity(READY_MIN_LEN + metadata.len());
        v.extend_from_slice(b"\x05READY");
        v.extend_from_slice(&short);
        v.extend_from_slice(&boxed);
        let shared = SharedKey::new(&cn_client, &self.cn_secret);
        let tx = CurveTx::new(&shared, NONCE_SERVER, 2);
        let rx = CurveRx::new(&shared, NONCE_CLIENT, initiated.initiate_nonce);
        Ok((v, tx, rx))
    }
}

async fn send_command(raw: &mut FramedIo, body: &[u8]) -> ZmqResult<()> {
    let mut frame = BytesMut::with_capacity(body.len() + 9);
    put_command_header(&mut frame, body.len());
    frame.extend_from_slice(body);
    // The writer's codec has no cipher yet: a Framed item is written as it is.
    raw.write_half.send(Message::Framed(frame.freeze())).await?;
    Ok(())
}

async fn recv_command(raw: &mut FramedIo, what: &str) -> ZmqResult<BytesMut> {
    match raw.read_half.next().await {
        // In handshake mode the decoder yields each command frame as a one-frame
        // message of its raw body (see `CurveCodecState::handshake`).
        Some(Ok(Message::Message(m))) => match m.get(0) {
            Some(body) if m.len() == 1 => Ok(BytesMut::from(&body[..])),
            _ => Err(err(format!("CURVE: malformed {what}")).into()),
        },
        Some(Ok(_)) => Err(err(format!("CURVE: expected {what}")).into()),
        Some(Err(e)) => Err(e.into()),
        None => Err(err(format!(
            "CURVE: the peer closed the connection before {what}"
        ))
        .into()),
    }
}

fn peer_properties(socket_type: SocketType, meta: &[u8]) -> ZmqResult<PeerIdentity> {
    let props = parse_metadata(meta)?;
    let other = match props.get("Socket-Type") {
        Some(s) => SocketType::try_from(&s[..])?,
        None => return Err(err("CURVE: the peer's metadata has no Socket-Type").into()),
    };
    if !socket_type.compatible(other) {
        return Err(ZmqError::Other(
            "Provided sockets combination is not compatible",
        ));
    }
    props
        .get("Identity")
        .map(|x| PeerIdentity::try_from(x.clone()))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The whole CURVE handshake on a fresh connection: greeting, then the four
/// commands; on success both halves of `raw` encrypt and decrypt from then on.
pub(crate) async fn handshake(
    raw: &mut FramedIo,
    socket_type: SocketType,
    identity: Option<&PeerIdentity>,
    role: &CurveRole,
) -> ZmqResult<PeerIdentity> {
    let server = match role {
        CurveRole::Server(s) => Some(s),
        CurveRole::Client(_) => None,
    };
    let result = run(raw, socket_type, identity, role).await;
    if let Some(server) = server {
        match &result {
            Ok(_) => server.stats.count(StatsCounter::Accepted),
            Err(Refused) => {}
            Err(_) => server.stats.count(StatsCounter::Failed),
        }
    }
    result.map_err(|e| match e {
        Refused => err("CURVE: client key refused by the server's authorizer").into(),
        Failed(e) => e,
    })
}

enum Outcome {
    /// Counted where it happens, reported as an error.
    Refused,
    Failed(ZmqError),
}
use Outcome::{Failed, Refused};

impl<E: Into<ZmqError>> From<E> for Outcome {
    fn from(e: E) -> Self {
        Failed(e.into())
    }
}

async fn run(
    raw: &mut FramedIo,
    socket_type: SocketType,
    identity: Option<&PeerIdentity>,
    role: &CurveRole,
) -> Result<PeerIdentity, Outcome> {
    let as_server = matches!(role, CurveRole::Server(_));
    raw.write_half
        .send(Message::Greeting(ZmqGreeting {
            version: (3, 0),
            mechanism: ZmqMechanism::CURVE,
            as_server,
        }))
        .await?;
    // Before reading past the greeting, so that a HELLO in the same read is
    // handed over raw.
    raw.read_half.codec_mut().curve_state().handshake = true;
    let greeting = match raw.read_half.next().await {
        Some(Ok(Message::Greeting(g))) => g,
        Some(Ok(_)) => return Err(err("CURVE: expected a greeting").into()),
        Some(Err(e)) => return Err(e.into()),
        None => {
            return Err(err("CURVE: the peer closed the connection before its greeting").into())
        }
    };
    if greeting.version < (3, 0) {
        return Err(ZmqError::UnsupportedVersion(greeting.version).into());
    }
    if !matches!(greeting.mechanism, ZmqMechanism::CURVE) {
        return Err(err(format!(
            "CURVE: the peer's greeting offers mechanism {}, this socket requires CURVE",
            greeting.mechanism
        ))
        .into());
    }
    // The peer's as-server flag is not checked: libzmq 4.3 always sends 0 there
    // (the greeting's last 32 bytes are zeroed), server or not. Two clients or two
    // servers fail at the first command anyway.
    let meta = metadata(socket_type, identity);
    let (peer_id, tx, rx) = match role {
        CurveRole::Client(config) => {
            let mut hs = ClientHandshake::new(config.clone())?;
            send_command(raw, &hs.hello()?).await?;
            hs.process_welcome(&recv_command(raw, "WELCOME").await?)?;
            send_command(raw, &hs.initiate(&meta)?).await?;
            let (server_meta, tx, rx) = hs.process_ready(&recv_command(raw, "READY").await?)?;
            (peer_properties(socket_type, &server_meta)?, tx, rx)
        }
        CurveRole::Server(config) => {
            let mut hs = ServerHandshake::new(config.clone())?;
            let welcome = hs.process_hello(&recv_command(raw, "HELLO").await?)?;
            send_command(raw, &welcome).await?;
            let initiated = hs.process_initiate(&recv_command(raw, "INITIATE").await?)?;
            let allowed = config
                .authorizer
                .as_ref()
                .is_none_or(|authorize| authorize(&initiated.client_key));
            if !allowed {
                config.stats.count(StatsCounter::Refused);
                log::debug!("CURVE: refused client key {}", initiated.client_key);
                // "400" as libzmq's ZAP refusal sends it, so libzmq clients report
                // an authentication failure. The connection is closed after.
                let _ = send_command(raw, &error_command("400")).await;
                return Err(Refused);
            }
            let peer_id = peer_properties(socket_type, &initiated.metadata)?;
            let (ready, tx, rx) = hs.ready(&initiated, &meta)?;
            send_command(raw, &ready).await?;
            (peer_id, tx, rx)
        }
    };
    let read_state = raw.read_half.codec_mut().curve_state();
    read_state.handshake = false;
    read_state.rx = Some(Box::new(rx));
    raw.write_half.encoder_mut().curve_state().tx = Some(Box::new(tx));
    Ok(peer_id)
}

/// Fuzzing entry point (distlog patch, CURVE): feeds `data` to both handshake
/// state machines and to MESSAGE decoding, as a peer could send it. Must never
/// panic; returns how many inputs were accepted, for a fuzz target to ignore.
#[doc(hidden)]
pub fn fuzz_curve(data: &[u8]) -> usize {
    let Ok(keys) = super::CurveKeyPair::generate() else {
        return 0;
    };
    let server_cfg = CurveServer::new(keys.secret.clone());
    let client_cfg = CurveClient::new(keys.public, keys.clone());
    let mut accepted = 0;
    if let Ok(mut server) = ServerHandshake::new(server_cfg.clone()) {
        accepted += server.process_hello(data).is_ok() as usize;
        accepted += server.process_initiate(data).is_ok() as usize;
    }
    if let Ok(mut client) = ClientHandshake::new(client_cfg.clone()) {
        accepted += client.process_welcome(data).is_ok() as usize;
        accepted += client.process_ready(data).is_ok() as usize;
    }
    accepted += parse_metadata(data).is_ok() as usize;
    // A real handshake, then `data` as the server's next MESSAGE body.
    if let (Ok(mut client), Ok(mut server)) = (
        ClientHandshake::new(client_cfg),
        ServerHandshake::new(server_cfg),
    ) {
        let done = (|| {
            let welcome = server.process_hello(&client.hello()?)?;
            client.process_welcome(&welcome)?;
            let initiated = server.process_initiate(&client.initiate(b"")?)?;
            let (_, _, rx) = server.ready(&initiated, b"")?;
            Ok::<_, CodecError>(rx)
        })();
        if let Ok(mut rx) = done {
            accepted += rx.decode(BytesMut::from(data)).is_ok() as usize;
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::CurveKeyPair;

    fn pair() -> (CurveServer, CurveClient, CurveKeyPair) {
        let server = CurveKeyPair::generate().unwrap();
        let client = CurveKeyPair::generate().unwrap();
        (
            CurveServer::new(server.secret.clone()),
            CurveClient::new(server.public, client.clone()),
            client,
        )
    }

    /// Every command body, what INITIATE told, the client's and the server's ciphers.
    type Handshaken = (
        Vec<Vec<u8>>,
        Initiated,
        (CurveTx, CurveRx),
        (CurveTx, CurveRx),
    );

    /// Runs a whole handshake in memory; returns every command body and the ciphers.
    fn run_handshake(server: CurveServer, client: CurveClient) -> Handshaken {
        let mut c = ClientHandshake::new(client).unwrap();
        let mut s = ServerHandshake::new(server).unwrap();
        let hello = c.hello().unwrap();
        let welcome = s.process_hello(&hello).unwrap();
        c.process_welcome(&welcome).unwrap();
        let meta = metadata(SocketType::PUSH, None);
        let initiate = c.initiate(&meta).unwrap();
        let initiated = s.process_initiate(&initiate).unwrap();
        let server_meta = metadata(SocketType::PULL, None);
        let (ready, stx, srx) = s.ready(&initiated, &server_meta).unwrap();
        let (got_meta, ctx, crx) = c.process_ready(&ready).unwrap();
        assert_eq!(got_meta, server_meta);
        (
            vec![hello, welcome, initiate, ready],
            initiated,
            (ctx, crx),
            (stx, srx),
        )
    }

    #[test]
    fn command_sizes_match_libzmq() {
        let (server, client, client_keys) = pair();
        let (cmds, initiated, _, _) = run_handshake(server, client);
        let meta_len = metadata(SocketType::PUSH, None).len();
        assert_eq!(cmds[0].len(), 200, "HELLO");
        assert_eq!(&cmds[0][..8], b"\x05HELLO\x01\x00");
        assert!(cmds[0][8..80].iter().all(|&b| b == 0), "HELLO padding");
        assert_eq!(&cmds[0][112..120], &1u64.to_be_bytes(), "HELLO nonce 1");
        assert_eq!(cmds[1].len(), 168, "WELCOME");
        assert_eq!(cmds[2].len(), 257 + meta_len, "INITIATE");
        assert_eq!(&cmds[2][105..113], &2u64.to_be_bytes(), "INITIATE nonce 2");
        assert_eq!(
            cmds[3].len(),
            30 + metadata(SocketType::PULL, None).len(),
            "READY"
        );
        assert_eq!(initiated.client_key, client_keys.public);
        assert_eq!(
            parse_metadata(&initiated.metadata).unwrap()["Socket-Type"],
            "PUSH"
        );
    }

    #[test]
    fn ciphers_work_both_ways_with_directional_nonces() {
        let (server, client, _) = pair();
        let (_, _, (mut ctx, mut crx), (mut stx, mut srx)) = run_handshake(server, client);
        let body = |f: &BytesMut| BytesMut::from(&f[2..]);
        let mut up = BytesMut::new();
        ctx.encode(0, b"to server", &mut up).unwrap();
        // The client's first MESSAGE has nonce 3 (HELLO 1, INITIATE 2).
        assert_eq!(&up[10..18], &3u64.to_be_bytes());
        assert_eq!(&srx.decode(body(&up)).unwrap().1[..], b"to server");
        let mut down = BytesMut::new();
        stx.encode(0, b"to client", &mut down).unwrap();
        assert_eq!(&down[10..18], &2u64.to_be_bytes());
        assert_eq!(&crx.decode(body(&down)).unwrap().1[..], b"to client");
        // A client MESSAGE reflected back at the client fails: the prefixes differ.
        let mut up2 = BytesMut::new();
        ctx.encode(0, b"reflect", &mut up2).unwrap();
        let mut reflected = body(&up2);
        reflected[8..16].copy_from_slice(&9u64.to_be_bytes());
        assert!(crx.decode(reflected).is_err());
    }

    #[test]
    fn malformed_hello_is_refused_with_a_reason() {
        let (server, client, _) = pair();
        let c = ClientHandshake::new(client).unwrap();
        let hello = c.hello().unwrap();
        // Every truncation: an error, never a panic.
        for len in 0..hello.len() {
            let mut s = ServerHandshake::new(server.clone()).unwrap();
            assert!(s.process_hello(&hello[..len]).is_err(), "len {len}");
        }
        let mut s = ServerHandshake::new(server.clone()).unwrap();
        let mut bad = hello.clone();
        bad[6] = 2;
        let e = s.process_hello(&bad).unwrap_err().to_string();
        assert!(e.contains("version 2.0"), "{e}");
        let mut bad = hello.clone();
        bad[150] ^= 1;
        let e = s.process_hello(&bad).unwrap_err().to_string();
        assert!(e.contains("cannot open HELLO"), "{e}");
        let e = s.process_hello(b"\x05HELLX").unwrap_err().to_string();
        assert!(e.contains("expected HELLO"), "{e}");
    }

    #[test]
    fn wrong_server_key_fails_at_hello() {
        let (server, _, client_keys) = pair();
        let other = CurveKeyPair::generate().unwrap();
        let c = ClientHandshake::new(CurveClient::new(other.public, client_keys)).unwrap();
        let mut s = ServerHandshake::new(server).unwrap();
        assert!(s.process_hello(&c.hello().unwrap()).is_err());
    }

    #[test]
    fn malformed_initiate_is_refused() {
        let (server, client, _) = pair();
        let mut c = ClientHandshake::new(client.clone()).unwrap();
        let mut s = ServerHandshake::new(server.clone()).unwrap();
        let welcome = s.process_hello(&c.hello().unwrap()).unwrap();
        c.process_welcome(&welcome).unwrap();
        let initiate = c.initiate(b"").unwrap();
        for len in 0..initiate.len() {
            assert!(s.process_initiate(&initiate[..len]).is_err(), "len {len}");
        }
        // A flipped byte anywhere after the name: cookie, nonce, box or vouch.
        for at in [10, 60, 106, 120, 200, 250] {
            let mut bad = initiate.clone();
            bad[at] ^= 0x40;
            assert!(s.process_initiate(&bad).is_err(), "byte {at}");
        }
        // Another connection's server cannot open this cookie (its key is fresh).
        let mut other = ServerHandshake::new(server).unwrap();
        let _ = other.process_hello(&c.hello().unwrap()).unwrap();
        let e = other.process_initiate(&initiate).unwrap_err().to_string();
        assert!(e.contains("cookie"), "{e}");
        // And the original still accepts the genuine INITIATE.
        assert!(s.process_initiate(&initiate).is_ok());
    }

    #[test]
    fn initiate_before_hello_and_vouch_for_another_server() {
        let (server, client, client_keys) = pair();
        let mut s = ServerHandshake::new(server.clone()).unwrap();
        assert!(s.process_initiate(&[0u8; 300]).is_err());
        // A client that vouches for another server's key S is refused even though
        // everything else opens. Built by hand: the client's config names S'' as
        // the server in the vouch but HELLO goes to the real one.
        let mut c = ClientHandshake::new(client).unwrap();
        let welcome = s.process_hello(&c.hello().unwrap()).unwrap();
        c.process_welcome(&welcome).unwrap();
        c.config = CurveClient::new(CurveKeyPair::generate().unwrap().public, client_keys);
        let e = s
            .process_initiate(&c.initiate(b"").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("another server"), "{e}");
    }

    #[test]
    fn client_reports_the_servers_error_and_rejects_bad_welcome_and_ready() {
        let (server, client, _) = pair();
        let mut c = ClientHandshake::new(client).unwrap();
        let e = c
            .process_welcome(&error_command("400"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("ERROR \"400\""), "{e}");
        // An ERROR whose reason length runs past its end is still no panic.
        assert!(c.process_welcome(b"\x05ERROR\xff").is_err());
        assert!(c.process_welcome(b"\x05ERROR").is_err());
        let mut s = ServerHandshake::new(server).unwrap();
        let welcome = s.process_hello(&c.hello().unwrap()).unwrap();
        for len in 0..welcome.len() {
            assert!(c.process_welcome(&welcome[..len]).is_err(), "len {len}");
        }
        c.process_welcome(&welcome).unwrap();
        let initiated = s.process_initiate(&c.initiate(b"").unwrap()).unwrap();
        let (ready, _, _) = s.ready(&initiated, b"").unwrap();
        for len in 0..ready.len() {
            assert!(c.process_ready(&ready[..len]).is_err(), "len {len}");
        }
        let mut bad = ready.clone();
        bad[20] ^= 1;
        assert!(c.process_ready(&bad).is_err());
        assert!(c.process_ready(&ready).is_ok());
    }

    #[test]
    fn fuzz_entry_point_survives_garbage_and_near_valid_input() {
        let (server, client, _) = pair();
        let (cmds, ..) = run_handshake(server, client);
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0xff; 1000], b"\x07MESSAGE".to_vec()];
        for cmd in &cmds {
            inputs.push(cmd.clone());
            inputs.push(cmd[..cmd.len() / 2].to_vec());
        }
        for input in inputs {
            fuzz_curve(&input);
        }
    }
}
