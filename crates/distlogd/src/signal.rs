//! SIGINT and SIGTERM as a flag: the collector polls it between receives, drains, flushes
//! and exits 0. A second signal while draining exits at once (status 130). SIGHUP as
//! another flag: the collector rereads its CURVE allow file.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, PoisonError};

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Whether the handlers are in place: registering them twice would arm the immediate
/// exit before the first signal's flag, and the first signal would exit at once.
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Installs handlers for SIGINT and SIGTERM and returns the flag they set. Calling it
/// again returns the same flag.
///
/// ```no_run
/// let stop = distlogd::signal::shutdown_on_signals().unwrap();
/// while !stop.load(std::sync::atomic::Ordering::Relaxed) {
///     // work
/// }
/// ```
pub fn shutdown_on_signals() -> io::Result<&'static AtomicBool> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if !*installed {
        for signal in [SIGINT, SIGTERM] {
            // Actions run in the order registered: the exit is armed only once an
            // earlier signal has set the flag.
            flag::register_conditional_shutdown(signal, 130, &SHUTDOWN)?;
            flag::register(signal, &SHUTDOWN)?;
        }
        *installed = true;
    }
    Ok(&SHUTDOWN)
}

static RELOAD: AtomicBool = AtomicBool::new(false);

/// Whether the SIGHUP handler is in place (registering it twice is harmless but
/// wasteful: each registration is another action on every signal).
static RELOAD_INSTALLED: Mutex<bool> = Mutex::new(false);

/// Installs a handler for SIGHUP and returns the flag it sets; the collector clears it
/// when it reloads (see [`run_with_reload`](crate::run_with_reload)). SIGHUP no
/// longer terminates the process. Calling it again returns the same flag.
///
/// ```no_run
/// use std::sync::atomic::Ordering;
/// let reload = distlogd::signal::reload_on_sighup().unwrap();
/// if reload.swap(false, Ordering::Relaxed) {
///     // read the configuration again
/// }
/// ```
pub fn reload_on_sighup() -> io::Result<&'static AtomicBool> {
    let mut installed = RELOAD_INSTALLED
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !*installed {
        flag::register(SIGHUP, &RELOAD)?;
        *installed = true;
    }
    Ok(&RELOAD)
}
