//! `distlogd` and signals: the first SIGINT or SIGTERM drains and exits 0, a second one
//! while draining exits at once with 130.

mod collector_support;

use collector_support::*;

fn signal(d: &Daemon, signal: libc::c_int) {
    // SAFETY: kill with our own child's pid and a valid signal number.
    let rc = unsafe { libc::kill(d.pid() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill");
}

#[test]
fn sigint_drains_and_exits_0() {
    let mut d = Daemon::start(&["--output", "none", "--stats-interval", "0"]);
    signal(&d, libc::SIGINT);
    let status = d.wait();
    assert_eq!(status.code(), Some(0), "{}", d.stderr());
    assert!(d.stderr().contains("final stats"), "{}", d.stderr());
}

#[test]
fn a_second_signal_while_draining_exits_at_once() {
    // Draining would last 30 s (capped at drain_max, 5 s): the second signal cuts it.
    let mut d = Daemon::start(&["--output", "none", "--drain-quiet", "30"]);
    signal(&d, libc::SIGTERM);
    d.wait_stderr("shutting down");
    signal(&d, libc::SIGINT);
    let status = d.wait();
    // A finished drain would have printed the final stats and exited 0.
    assert_eq!(status.code(), Some(130), "{}", d.stderr());
    assert!(!d.stderr().contains("final stats"), "{}", d.stderr());
}
