//! distlog patch (CURVE): the CURVE security mechanism (ZMTP-CURVE, RFC 25; the
//! CurveZMQ handshake, RFC 26), interoperable with libzmq 4.3.
//!
//! A socket is a CURVE server ([`SocketOptions::curve_server`], with its long-term
//! secret key) or a CURVE client ([`SocketOptions::curve_client`], with the server's
//! public key and its own key pair), whichever side binds. Keys are 32 bytes, or 40
//! characters of Z85 as `zmq_curve_keypair` writes them.
//!
//! The handshake (after a greeting that names "CURVE" and the as-server flag):
//!
//! ```text
//! C: HELLO     200 bytes: version 1.0, 72 zero bytes, C', nonce, Box[64 zeros](C'->S)
//! S: WELCOME   168 bytes: nonce, Box[S' + cookie](S->C')
//! C: INITIATE  cookie, nonce, Box[C + vouch + metadata](C'->S'), vouch = Box[C',S](C->S')
//! S: READY     nonce, Box[metadata](S'->C')          (or ERROR, unencrypted)
//! ```
//!
//! then every frame is a MESSAGE (see `codec/curve.rs`). Layouts and nonces follow
//! libzmq's `curve_client_tools.hpp` and `curve_server.cpp` byte for byte.

pub(crate) mod handshake;

#[doc(hidden)]
pub use handshake::fuzz_curve;

pub use crate::z85::Z85Error;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A CURVE public key (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurvePublicKey([u8; 32]);

impl CurvePublicKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From 40 characters of Z85.
    pub fn from_z85(text: &str) -> Result<Self, Z85Error> {
        crate::z85::decode_key(text).map(Self)
    }

    pub fn to_z85(&self) -> String {
        // 32 is a multiple of 4: encoding cannot fail.
        crate::z85::encode(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_z85())
    }
}

impl fmt::Debug for CurvePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurvePublicKey({})", self.to_z85())
    }
}

/// A CURVE secret key (32 bytes). Its `Debug` does not show it.
#[derive(Clone)]
pub struct CurveSecretKey([u8; 32]);

impl CurveSecretKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_z85(text: &str) -> Result<Self, Z85Error> {
        crate::z85::decode_key(text).map(Self)
    }

    pub fn to_z85(&self) -> String {
        crate::z85::encode(&self.0).unwrap_or_default()
    }

    /// The public key that goes with this secret key (X25519 base-point multiplication,
    /// as libsodium's `crypto_scalarmult_base`, which `zmq_curve_public` uses).
    pub fn public_key(&self) -> CurvePublicKey {
        CurvePublicKey(*self.box_key().public_key().as_bytes())
    }

    pub(crate) fn box_key(&self) -> crypto_box::SecretKey {
        crypto_box::SecretKey::from(self.0)
    }
}

impl fmt::Debug for CurveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CurveSecretKey(..)")
    }
}

/// A long-term key pair, as `zmq_curve_keypair` makes.
#[derive(Clone, Debug)]
pub struct CurveKeyPair {
    pub public: CurvePublicKey,
    pub secret: CurveSecretKey,
}

impl CurveKeyPair {
    /// A new key pair from the operating system's random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)?;
        Ok(Self::from_secret(CurveSecretKey(secret)))
    }

    pub fn from_secret(secret: CurveSecretKey) -> Self {
        Self {
            public: secret.public_key(),
            secret,
        }
    }

    /// From the Z85 text of both keys; the public key must match the secret one.
    pub fn from_z85(public: &str, secret: &str) -> Result<Self, CurveKeyError> {
        let pair = Self::from_secret(CurveSecretKey::from_z85(secret)?);
        if pair.public != CurvePublicKey::from_z85(public)? {
            return Err(CurveKeyError::Mismatch);
        }
        Ok(pair)
    }
}

/// distlog patch (CURVE, for distlog's `.curve(server, secret)`): a secret key is a
/// key pair, its public half derived, so a builder can take either.
impl From<CurveSecretKey> for CurveKeyPair {
    fn from(secret: CurveSecretKey) -> Self {
        Self::from_secret(secret)
    }
}

/// A key pair given as text that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CurveKeyError {
    Z85(Z85Error),
    /// The public key is not the one the secret key gives.
    Mismatch,
}

impl From<Z85Error> for CurveKeyError {
    fn from(e: Z85Error) -> Self {
        CurveKeyError::Z85(e)
    }
}

impl fmt::Display for CurveKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CurveKeyError::Z85(e) => e.fmt(f),
            CurveKeyError::Mismatch => {
                f.write_str("CURVE: the public key does not belong to the secret key")
            }
        }
    }
}

impl std::error::Error for CurveKeyError {}

/// Decides at INITIATE whether a client's long-term public key may connect.
pub type CurveAuthorizer = Arc<dyn Fn(&CurvePublicKey) -> bool + Send + Sync>;

/// Counts of a CURVE server's handshakes, shared by all its connections.
#[derive(Debug, Default)]
pub struct CurveStats {
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

impl CurveStats {
    /// Clients that completed the handshake.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Clients whose key the allow-set or the authorizer refused (sent ERROR).
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Peers dropped for anything else: another mechanism in the greeting, a
    /// malformed or undecryptable HELLO or INITIATE (e.g. a wrong server key),
    /// incompatible socket types.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    pub(crate) fn count(&self, counter: StatsCounter) {
        let c = match counter {
            StatsCounter::Accepted => &self.accepted,
            StatsCounter::Refused => &self.refused,
            StatsCounter::Failed => &self.failed,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy)]
pub(crate) enum StatsCounter {
    Accepted,
    Refused,
    Failed,
}

/// The server role: its long-term secret key, and who may connect.
#[derive(Clone)]
pub struct CurveServer {
    pub(crate) secret: CurveSecretKey,
    pub(crate) public: CurvePublicKey,
    pub(crate) authorizer: Option<CurveAuthorizer>,
    pub(crate) stats: Arc<CurveStats>,
}

impl CurveServer {
    /// Any client that knows the server's public key may connect (libzmq without ZAP).
    pub fn new(secret: CurveSecretKey) -> Self {
        Self {
            public: secret.public_key(),
            secret,
            authorizer: None,
            stats: Arc::default(),
        }
    }

    /// Only clients whose long-term public key is in `keys` may connect; the others
    /// get an ERROR command at INITIATE and are disconnected.
    pub fn allow(self, keys: impl IntoIterator<Item = CurvePublicKey>) -> Self {
        let keys: std::collections::HashSet<CurvePublicKey> = keys.into_iter().collect();
        self.authorize(move |key| keys.contains(key))
    }

    /// `authorizer` sees each client's long-term public key at INITIATE (after the
    /// client proved it holds the secret key) and returns whether it may connect.
    pub fn authorize(
        mut self,
        authorizer: impl Fn(&CurvePublicKey) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.authorizer = Some(Arc::new(authorizer));
        self
    }

    pub fn public_key(&self) -> CurvePublicKey {
        self.public
    }

    /// The handshake counts of every socket built with (a clone of) this value.
    pub fn stats(&self) -> Arc<CurveStats> {
        Arc::clone(&self.stats)
    }
}

impl fmt::Debug for CurveServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveServer")
            .field("public", &self.public)
            .field("authorizer", &self.authorizer.is_some())
            .field("stats", &self.stats)
            .finish()
    }
}

/// The client role: the server's public key and the client's long-term key pair.
#[derive(Clone, Debug)]
pub struct CurveClient {
    pub(crate) server: CurvePublicKey,
    pub(crate) keys: CurveKeyPair,
}

impl CurveClient {
    pub fn new(server: CurvePublicKey, keys: CurveKeyPair) -> Self {
        Self { server, keys }
    }
}

/// Which side of the CURVE handshake a socket takes.
#[derive(Clone, Debug)]
pub enum CurveRole {
    Server(CurveServer),
    Client(CurveClient),
}

impl crate::SocketOptions {
    /// distlog patch (CURVE): this socket is a CURVE server. Peers must speak CURVE
    /// as clients; a NULL peer is disconnected after the greeting.
    pub fn curve_server(&mut self, server: CurveServer) -> &mut Self {
        self.curve = Some(CurveRole::Server(server));
        self
    }

    /// distlog patch (CURVE): this socket is a CURVE client of the server whose
    /// public key is given.
    pub fn curve_client(&mut self, client: CurveClient) -> &mut Self {
        self.curve = Some(CurveRole::Client(client));
        self
    }
}
