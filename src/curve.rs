//! CURVE keys: what a service needs to send encrypted, authenticated records to a
//! collector that requires CURVE (`distlogd --curve-secret`), without depending on
//! distlog's zeromq fork itself.
//!
//! A key is 32 bytes, written as 40 characters of Z85 (ZeroMQ RFC 32), as libzmq's
//! `zmq_curve_keypair`, pyzmq's `zmq.curve_keypair()` and `distlog keygen` write
//! them. The key files read here are the ones `distlog keygen --out NAME` writes:
//!
//! - a **key file** (`NAME.key`, secret; `NAME.pub`, public) holds one key; whitespace
//!   around it, such as the trailing newline pyzmq and keygen write, is ignored;
//! - an **allow file** (the collector's `--curve-allow`) holds one public key a line;
//!   blank lines and lines starting with `#` are ignored, and a key may be followed
//!   by a `#` comment. (No Z85 key starts with `#`: its first group would exceed 32
//!   bits, so a comment line is never a key.)
//!
//! ```no_run
//! use distlog::curve;
//!
//! let server = curve::read_public_key("collector.pub".as_ref())?;
//! let me = curve::read_secret_key("shop.key".as_ref())?;
//! let _guard = distlog::builder()
//!     .endpoint("tcp://collector.example:5010")
//!     .curve(server, me)
//!     .install()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A CURVE public key (32 bytes; 40 characters of Z85).
///
/// ```
/// use distlog::curve::CurvePublicKey;
/// // The server public key of libzmq's `curve_keygen` documentation.
/// let key = CurvePublicKey::from_z85("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7").unwrap();
/// assert_eq!(key.to_z85(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
/// ```
pub use zeromq::curve::CurvePublicKey;

/// A CURVE secret key (32 bytes). Its `Debug` does not show it.
///
/// ```
/// use distlog::curve::CurveSecretKey;
/// let secret = CurveSecretKey::from_z85("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6").unwrap();
/// assert_eq!(secret.public_key().to_z85(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
/// assert_eq!(format!("{secret:?}"), "CurveSecretKey(..)");
/// ```
pub use zeromq::curve::CurveSecretKey;

/// A long-term key pair; [`CurveKeyPair::generate`] makes a new one from the
/// operating system's random source, and a [`CurveSecretKey`] converts into one.
///
/// ```
/// use distlog::curve::CurveKeyPair;
/// let pair = CurveKeyPair::generate().expect("a random source");
/// assert_eq!(pair.secret.public_key(), pair.public);
/// let again: CurveKeyPair = pair.secret.clone().into();
/// assert_eq!(again.public, pair.public);
/// ```
pub use zeromq::curve::CurveKeyPair;

/// What is wrong with a Z85 text: its length, or a character and where it is.
///
/// ```
/// use distlog::curve::{CurvePublicKey, Z85Error};
/// // Ten characters are valid Z85, but 8 bytes are not a key.
/// let err = CurvePublicKey::from_z85("0000000000").unwrap_err();
/// assert_eq!(err, Z85Error::KeyLength { len: 8 });
/// ```
pub use zeromq::curve::Z85Error;

/// A key file or allow file that cannot be used, naming the file, the line and the
/// bad value (except a secret key's, which is never shown, not even a broken one).
///
/// ```
/// let dir = std::env::temp_dir().join(format!("distlog-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("allow");
/// std::fs::write(&path, "# clients\n\nnot-a-key\n").unwrap();
/// let err = distlog::curve::read_allow_file(&path).unwrap_err();
/// assert!(err.to_string().contains("line 3"), "{err}");
/// assert!(err.to_string().contains("not-a-key"), "{err}");
/// assert!(std::error::Error::source(&err).is_some());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read (or is not UTF-8 text).
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A key file with no key in it.
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Text that is not a public key.
    BadKey {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The text that should have been a key.
        value: String,
        /// What is wrong with it.
        source: Z85Error,
    },
    /// Text in a secret key file that is not a key. The text is not kept: it may be
    /// most of a real secret.
    BadSecretKey {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// How many characters it has (a key has 40).
        length: usize,
        /// What is wrong with it.
        source: Z85Error,
    },
    /// Something after the key on its line that is not a `#` comment.
    TrailingText {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// The text after the key.
        text: String,
    },
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyFileError::Io { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            KeyFileError::Empty { path } => {
                write!(f, "{}: no key in the file", path.display())
            }
            KeyFileError::BadKey {
                path,
                line,
                value,
                source,
            } => write!(
                f,
                "{} line {line}: {value:?} is not a CURVE public key: {source}",
                path.display()
            ),
            KeyFileError::BadSecretKey {
                path,
                line,
                length,
                source,
            } => write!(
                f,
                "{} line {line}: the secret key (of {length} characters, not shown) is not a CURVE key: {source}",
                path.display()
            ),
            KeyFileError::TrailingText { path, line, text } => write!(
                f,
                "{} line {line}: {text:?} after the key (one key a line; comments start with #)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for KeyFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyFileError::Io { source, .. } => Some(source),
            KeyFileError::BadKey { source, .. } | KeyFileError::BadSecretKey { source, .. } => {
                Some(source)
            }
            KeyFileError::Empty { .. } | KeyFileError::TrailingText { .. } => None,
        }
    }
}

fn read_text(path: &Path) -> Result<String, KeyFileError> {
    std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The one key of a key file's text, with its line: whitespace around it is ignored;
/// anything else after it is an error.
fn only_key<'a>(text: &'a str, path: &Path) -> Result<(usize, &'a str), KeyFileError> {
    let start = text.len() - text.trim_start().len();
    let line = 1 + text[..start].matches('\n').count();
    let rest = text[start..].trim_end();
    if rest.is_empty() {
        return Err(KeyFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    let (key, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let after = after.trim();
    // When the first word is not a key either, its own error says more than
    // "trailing text" does.
    if !after.is_empty() && zeromq::z85::decode_key(key).is_ok() {
        return Err(KeyFileError::TrailingText {
            path: path.to_path_buf(),
            line,
            text: after.to_string(),
        });
    }
    Ok((line, key))
}

fn parse_public_key(text: &str, path: &Path) -> Result<CurvePublicKey, KeyFileError> {
    let (line, key) = only_key(text, path)?;
    CurvePublicKey::from_z85(key).map_err(|source| KeyFileError::BadKey {
        path: path.to_path_buf(),
        line,
        value: key.to_string(),
        source,
    })
}

fn parse_secret_key(text: &str, path: &Path) -> Result<CurveSecretKey, KeyFileError> {
    let (line, key) = only_key(text, path)?;
    CurveSecretKey::from_z85(key).map_err(|source| KeyFileError::BadSecretKey {
        path: path.to_path_buf(),
        line,
        length: key.chars().count(),
        source,
    })
}

fn parse_allow_list(text: &str, path: &Path) -> Result<Vec<CurvePublicKey>, KeyFileError> {
    let mut keys = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, after) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let key = CurvePublicKey::from_z85(key).map_err(|source| KeyFileError::BadKey {
            path: path.to_path_buf(),
            line: i + 1,
            value: key.to_string(),
            source,
        })?;
        let after = after.trim();
        if !after.is_empty() && !after.starts_with('#') {
            return Err(KeyFileError::TrailingText {
                path: path.to_path_buf(),
                line: i + 1,
                text: after.to_string(),
            });
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Reads a public key file (one Z85 key; whitespace around it ignored), such as the
/// collector's `NAME.pub` from `distlog keygen`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("distlog-doc-pub-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("server.pub");
/// std::fs::write(&path, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n").unwrap();
/// let key = distlog::curve::read_public_key(&path).unwrap();
/// assert_eq!(key.to_z85(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_public_key(path: &Path) -> Result<CurvePublicKey, KeyFileError> {
    parse_public_key(&read_text(path)?, path)
}

/// Reads a secret key file (one Z85 key; whitespace around it ignored), such as
/// `NAME.key` from `distlog keygen`. Errors never show the file's text.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("distlog-doc-key-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("client.key");
/// std::fs::write(&path, "  JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\n\n").unwrap();
/// let secret = distlog::curve::read_secret_key(&path).unwrap();
/// assert_eq!(secret.public_key().to_z85(), "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
///
/// std::fs::write(&path, "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh\n").unwrap();
/// let err = distlog::curve::read_secret_key(&path).unwrap_err().to_string();
/// assert!(err.contains("39 characters") && !err.contains("JTKVSB"), "{err}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_secret_key(path: &Path) -> Result<CurveSecretKey, KeyFileError> {
    parse_secret_key(&read_text(path)?, path)
}

/// Reads an allow file: one public key a line, blank lines and `#` comments ignored.
/// An empty file allows no one.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("distlog-doc-allow-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("allow");
/// std::fs::write(
///     &path,
///     "# who may send\n\nrq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  # shop-1\n",
/// )
/// .unwrap();
/// let keys = distlog::curve::read_allow_file(&path).unwrap();
/// assert_eq!(keys.len(), 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_allow_file(path: &Path) -> Result<Vec<CurvePublicKey>, KeyFileError> {
    parse_allow_list(&read_text(path)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    const SECRET: &str = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

    fn path() -> &'static Path {
        Path::new("keys/x")
    }

    #[test]
    fn a_key_file_ignores_whitespace_around_its_key() {
        for text in [
            PUBLIC,
            "\n\n  rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\r\n\t",
        ] {
            assert_eq!(parse_public_key(text, path()).unwrap().to_z85(), PUBLIC);
        }
        let secret = parse_secret_key(&format!("{SECRET}\n"), path()).unwrap();
        assert_eq!(secret.public_key().to_z85(), PUBLIC);
    }

    #[test]
    fn bad_key_files_name_file_line_and_value() {
        assert!(matches!(
            parse_public_key(" \n\n", path()),
            Err(KeyFileError::Empty { .. })
        ));
        let err =
            parse_public_key("\n\nrq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\n", path()).unwrap_err();
        match &err {
            KeyFileError::BadKey {
                line,
                value,
                source,
                ..
            } => {
                assert_eq!(*line, 3);
                assert_eq!(value, &PUBLIC[..39]);
                assert_eq!(*source, Z85Error::TextLength { len: 39 });
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().starts_with("keys/x line 3: "), "{err}");
        // Two keys in a key file: the second is named.
        let err = parse_public_key(&format!("{PUBLIC} {PUBLIC}"), path()).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::TrailingText { line: 1, text, .. } if text == PUBLIC),
            "{err:?}"
        );
        // A bad first word is reported as the bad key.
        let err = parse_public_key("hello world", path()).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::BadKey { value, .. } if value == "hello"),
            "{err:?}"
        );
    }

    #[test]
    fn a_bad_secret_key_is_never_shown() {
        let almost = &SECRET[..39];
        let err = parse_secret_key(almost, path()).unwrap_err();
        assert!(matches!(
            err,
            KeyFileError::BadSecretKey {
                line: 1,
                length: 39,
                ..
            }
        ));
        assert!(!err.to_string().contains(&almost[..10]), "{err}");
        assert!(!format!("{err:?}").contains(&almost[..10]), "{err:?}");
    }

    #[test]
    fn allow_lists_skip_blanks_and_comments() {
        let text = format!("# team\n\n  {PUBLIC}\n{PUBLIC} # again\n\t\n#{PUBLIC}\n");
        let keys = parse_allow_list(&text, path()).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(parse_allow_list("", path()).unwrap().is_empty());
        let err = parse_allow_list(&format!("{PUBLIC}\n\nxyz\n"), path()).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::BadKey { line: 3, value, .. } if value == "xyz"),
            "{err:?}"
        );
        let err = parse_allow_list(&format!("{PUBLIC} alice\n"), path()).unwrap_err();
        assert!(
            matches!(&err, KeyFileError::TrailingText { line: 1, text, .. } if text == "alice"),
            "{err:?}"
        );
    }

    #[test]
    fn no_z85_key_starts_with_a_comment_sign() {
        // Why `#` lines are comments: a group starting with `#` (digit 84) overflows.
        let key = format!("#{}", &PUBLIC[1..]);
        assert!(matches!(
            CurvePublicKey::from_z85(&key),
            Err(Z85Error::GroupOverflow { position: 0 })
        ));
    }
}
