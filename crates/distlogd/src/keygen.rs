//! `distlog keygen`: a new CURVE key pair in two files, as libzmq's tools write keys.
//!
//! `NAME.key` holds the secret key and `NAME.pub` the public key, each 40 characters
//! of Z85 and a newline. The secret file is created with mode 0600, so it is never
//! readable by others, not even for the moment between creating it and writing it;
//! replacing one (`force`) writes a fresh 0600 file beside it and renames it over.

use distlog::curve::{CurveKeyPair, CurvePublicKey};
use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What [`write_key_pair`] wrote.
///
/// ```no_run
/// let written = distlogd::keygen::write_key_pair("collector".as_ref(), false).unwrap();
/// println!("{} -> {}", written.public_file.display(), written.public);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyFiles {
    /// `NAME.key`.
    pub secret_file: PathBuf,
    /// `NAME.pub`.
    pub public_file: PathBuf,
    /// The public key written.
    pub public: CurvePublicKey,
}

/// Why no key pair was written.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("distlogd-doc-keygen-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let name = dir.join("k");
/// distlogd::keygen::write_key_pair(&name, false).unwrap();
/// let err = distlogd::keygen::write_key_pair(&name, false).unwrap_err();
/// assert!(matches!(err, distlogd::keygen::KeygenError::Exists { .. }));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum KeygenError {
    /// The file exists and `force` was not given.
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be written.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The operating system's random source failed.
    Random(String),
}

impl fmt::Display for KeygenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeygenError::Exists { path } => write!(
                f,
                "{} exists; not overwritten (--force replaces it)",
                path.display()
            ),
            KeygenError::Io { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            KeygenError::Random(why) => write!(f, "no random source for a key: {why}"),
        }
    }
}

impl std::error::Error for KeygenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeygenError::Io { source, .. } => Some(source),
            KeygenError::Exists { .. } | KeygenError::Random(_) => None,
        }
    }
}

/// `name` with `suffix` appended to its file name (`a/b` → `a/b.key`), keeping any dot
/// already in it (`collector.prod` → `collector.prod.key`).
fn with_suffix(name: &Path, suffix: &str) -> PathBuf {
    let mut s = name.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates `path` only if it does not exist, readable by its owner only when `secret`.
fn create_new(path: &Path, secret: bool) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    options.open(path)
}

/// Writes `text` to `path`: a new file, or with `force` a new file renamed over the old
/// one, so that the old file's permissions never apply to the new key.
fn write_file(path: &Path, text: &str, secret: bool, force: bool) -> Result<(), KeygenError> {
    let io_err = |source| KeygenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let target = if force {
        with_suffix(path, &format!(".tmp-{}", std::process::id()))
    } else {
        path.to_path_buf()
    };
    let result = (|| {
        let mut file = create_new(&target, secret)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    })();
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !force => {
            return Err(KeygenError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(e) => {
            if force {
                let _ = std::fs::remove_file(&target);
            }
            return Err(io_err(e));
        }
    }
    if force {
        std::fs::rename(&target, path).map_err(|e| {
            let _ = std::fs::remove_file(&target);
            io_err(e)
        })?;
    }
    Ok(())
}

/// Generates a key pair and writes `NAME.key` (secret, mode 0600) and `NAME.pub`, each
/// one Z85 key and a newline. Refuses, writing nothing, if either exists, unless
/// `force`.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("distlogd-doc-write-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let written = distlogd::keygen::write_key_pair(&dir.join("collector"), false).unwrap();
/// let secret = distlog::curve::read_secret_key(&written.secret_file).unwrap();
/// assert_eq!(secret.public_key(), written.public);
/// assert_eq!(distlog::curve::read_public_key(&written.public_file).unwrap(), written.public);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_key_pair(name: &Path, force: bool) -> Result<KeyFiles, KeygenError> {
    let secret_file = with_suffix(name, ".key");
    let public_file = with_suffix(name, ".pub");
    if !force {
        // Both are checked before either is written, so a refusal writes nothing.
        for path in [&secret_file, &public_file] {
            if path.symlink_metadata().is_ok() {
                return Err(KeygenError::Exists { path: path.clone() });
            }
        }
    }
    let pair = CurveKeyPair::generate().map_err(|e| KeygenError::Random(e.to_string()))?;
    write_file(
        &secret_file,
        &format!("{}\n", pair.secret.to_z85()),
        true,
        force,
    )?;
    write_file(
        &public_file,
        &format!("{}\n", pair.public.to_z85()),
        false,
        force,
    )?;
    Ok(KeyFiles {
        secret_file,
        public_file,
        public: pair.public,
    })
}
