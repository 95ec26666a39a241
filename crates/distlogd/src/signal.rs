//! SIGINT and SIGTERM as a flag: the collector polls it between receives, drains, flushes
//! and exits 0. A second signal while draining exits at once (status 130).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static SHUTDOWN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    // Only async-signal-safe work here: an atomic swap, and _exit on the second signal.
    if SHUTDOWN.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe and ends the process.
        unsafe { libc::_exit(130) };
    }
}

/// Installs handlers for SIGINT and SIGTERM and returns the flag they set.
///
/// ```no_run
/// let stop = distlogd::signal::shutdown_on_signals().unwrap();
/// while !stop.load(std::sync::atomic::Ordering::Relaxed) {
///     // work
/// }
/// ```
pub fn shutdown_on_signals() -> io::Result<&'static AtomicBool> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; we set the handler and an empty mask,
        // and the handler only touches an atomic (or calls _exit).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(&SHUTDOWN)
}
