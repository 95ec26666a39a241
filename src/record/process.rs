//! The sending process and thread, as every record names them.

use super::log_record::Key;
use super::time::epoch_seconds;
use std::borrow::Cow;
use std::time::SystemTime;

/// Facts about the sending process that every record repeats.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// `process`: the process id.
    pub pid: u32,
    /// `processName`: the executable's file name (Python says `MainProcess`).
    pub name: String,
    /// `hostname`: the node name, as `os.uname().nodename`.
    pub hostname: String,
    /// Seconds since the epoch when distlog was installed, for `relativeCreated`.
    pub start: f64,
}

impl ProcessInfo {
    /// Reads the facts of this process now.
    ///
    /// ```
    /// let p = distlog::record::ProcessInfo::current();
    /// assert_eq!(p.pid, std::process::id());
    /// assert!(!p.hostname.is_empty());
    /// ```
    pub fn current() -> Self {
        let name = std::env::args_os()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "MainProcess".to_string());
        ProcessInfo {
            pid: std::process::id(),
            name,
            hostname: hostname(),
            start: epoch_seconds(SystemTime::now()),
        }
    }
}

/// The host's node name, as Python's `os.uname().nodename`.
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The caller's thread: what `thread` and `threadName` hold.
#[derive(Debug, Clone)]
pub struct ThreadInfo {
    /// `thread`: `pthread_self()`, as Python's `threading.get_ident()`.
    pub id: u64,
    /// `threadName`: the Rust thread name; `MainThread` for `main`, as Python says.
    /// Interned, so handing it over costs no allocation and no reference count.
    pub name: Key,
}

impl ThreadInfo {
    /// The current thread, cached per thread so a log call pays no allocation for it.
    pub fn current() -> ThreadInfo {
        thread_local! {
            static CURRENT: ThreadInfo = {
                let t = std::thread::current();
                let name = match t.name() {
                    Some("main") => Cow::Borrowed("MainThread"),
                    Some(n) => crate::intern::intern(n),
                    None => Cow::Owned(format!("Thread-{:?}", t.id())),
                };
                // SAFETY: pthread_self has no preconditions.
                let id = unsafe { libc::pthread_self() } as u64;
                ThreadInfo { id, name }
            };
        }
        CURRENT.with(|t| t.clone())
    }
}
