//! The collector's CURVE: its server key, the allow set it rereads on demand, and the
//! handshake counts its stats lines report.
//!
//! One CURVE server value is cloned into every input and publish socket, so they share
//! the allow set and the counts. The allow set sits behind a lock that the handshake's
//! authorizer reads: a reload swaps the whole set, and handshakes in progress see
//! either the old set or the new one.

use crate::config::CurveConfig;
use crate::stats::CurveCounts;
use distlog::curve::{read_allow_file, read_secret_key, CurvePublicKey, KeyFileError};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use zeromq::curve::{CurveServer, CurveStats};

type AllowSet = Arc<RwLock<HashSet<CurvePublicKey>>>;

pub(crate) struct Curve {
    server: CurveServer,
    stats: Arc<CurveStats>,
    /// The allow file and the keys last read from it; `None` allows every client.
    allow: Option<(PathBuf, AllowSet)>,
}

impl Curve {
    /// Reads the secret key and the allow file.
    pub(crate) fn load(config: &CurveConfig) -> Result<Curve, KeyFileError> {
        let mut server = CurveServer::new(read_secret_key(&config.secret_file)?);
        let allow = match &config.allow_file {
            None => None,
            Some(path) => {
                let set: AllowSet =
                    Arc::new(RwLock::new(read_allow_file(path)?.into_iter().collect()));
                let keys = Arc::clone(&set);
                server = server.authorize(move |key| {
                    keys.read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains(key)
                });
                Some((path.clone(), set))
            }
        };
        let stats = server.stats();
        Ok(Curve {
            server,
            stats,
            allow,
        })
    }

    /// Makes a socket a CURVE server of this collector.
    pub(crate) fn apply(&self, options: &mut zeromq::SocketOptions) {
        options.curve_server(self.server.clone());
    }

    /// What stderr is told at start: the public key clients need, and who may connect.
    pub(crate) fn describe(&self) -> String {
        let key = self.server.public_key();
        match &self.allow {
            None => format!(
                "CURVE on, public key {key}; no allow file: any client that knows this key may connect"
            ),
            Some((path, set)) => format!(
                "CURVE on, public key {key}; {} client keys allowed by {}",
                set.read().unwrap_or_else(PoisonError::into_inner).len(),
                path.display()
            ),
        }
    }

    /// Rereads the allow file. On success the new set replaces the old one and the
    /// file and its number of keys are returned; on failure the old set stays.
    /// `Ok(None)`: there is no allow file to reread.
    pub(crate) fn reload(&self) -> Result<Option<(&Path, usize)>, KeyFileError> {
        let Some((path, set)) = &self.allow else {
            return Ok(None);
        };
        let keys: HashSet<CurvePublicKey> = read_allow_file(path)?.into_iter().collect();
        let n = keys.len();
        *set.write().unwrap_or_else(PoisonError::into_inner) = keys;
        Ok(Some((path, n)))
    }

    /// How many keys the allow set holds now (`None` without an allow file).
    pub(crate) fn allowed(&self) -> Option<usize> {
        self.allow
            .as_ref()
            .map(|(_, set)| set.read().unwrap_or_else(PoisonError::into_inner).len())
    }

    pub(crate) fn counts(&self) -> CurveCounts {
        CurveCounts {
            accepted: self.stats.accepted(),
            not_allowed: self.stats.refused(),
            handshake_failed: self.stats.failed(),
        }
    }
}
