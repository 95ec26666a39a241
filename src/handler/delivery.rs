//! Knowing when bytes have really left the process.
//!
//! zeromq's `send` returns once a message is in its internal queue, and nothing tells
//! when that queue reaches the wire. On Linux the kernel does: the connection's
//! `TCP_INFO` counts the bytes the collector's host has acknowledged. A [`Tracker`]
//! finds the socket zeromq opened for a link and reads that count, so the handler
//! knows exactly which messages were delivered, and which to send again after a
//! reconnect. Where it cannot (other systems, `ipc://`), delivery is unconfirmed and
//! the handler falls back to waiting for zeromq's queue to go idle.

/// Reads the delivered-byte count of one connection.
#[derive(Debug)]
pub(crate) struct Tracker {
    /// A duplicate of zeromq's fd, so that the count can still be read after zeromq
    /// closes the connection: its PUSH reads (to answer PINGs) and drops a peer as
    /// soon as that peer closes, which a collector that got everything does at once.
    /// The last bytes' acknowledgement arrives with that close, so reading zeromq's
    /// fd lost the race about half the time and delivered records were resent or
    /// counted as dropped; a number zeromq closed can also be reused by another
    /// socket. The kernel socket lives until this is dropped too, which the link
    /// does when it sees the connection end.
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    /// Bytes acknowledged before the first message: the ZMTP greeting and handshake.
    #[cfg(target_os = "linux")]
    base: u64,
}

impl Tracker {
    /// Bytes of our messages the peer's kernel has acknowledged, and whether the
    /// connection is still established (a collector that exits closes it, which
    /// matters when no later send would fail to show it); `None` if it cannot be
    /// read. One `TCP_INFO` read gives both.
    #[cfg(target_os = "linux")]
    pub(crate) fn delivered(&self) -> Option<(u64, bool)> {
        use std::os::fd::AsRawFd;
        tcp_info(self.fd.as_raw_fd())
            .map(|i| (i.bytes_acked.saturating_sub(self.base), i.established))
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn delivered(&self) -> Option<(u64, bool)> {
        None
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Tracker;
    use std::collections::HashSet;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    pub(crate) struct TcpInfo {
        pub(crate) bytes_acked: u64,
        pub(crate) unacked_segments: u32,
        pub(crate) notsent_bytes: u32,
        pub(crate) established: bool,
    }

    /// `getsockopt(TCP_INFO)`, read by offset from the kernel's append-only
    /// `struct tcp_info` (bytes_acked since Linux 4.1, notsent_bytes since 4.6).
    pub(crate) fn tcp_info(fd: i32) -> Option<TcpInfo> {
        let mut buf = [0u8; 256];
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: buf is valid for len bytes; the kernel writes at most len bytes.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                buf.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 || (len as usize) < 148 {
            return None;
        }
        let u32_at = |o: usize| u32::from_ne_bytes([buf[o], buf[o + 1], buf[o + 2], buf[o + 3]]);
        let mut b8 = [0u8; 8];
        b8.copy_from_slice(&buf[120..128]);
        Some(TcpInfo {
            bytes_acked: u64::from_ne_bytes(b8),
            unacked_segments: u32_at(24),
            notsent_bytes: u32_at(144),
            established: buf[0] == 1,
        })
    }

    /// Socket fds of this process connected to a TCP peer on `port`.
    pub(crate) fn tcp_sockets_to(port: u16) -> HashSet<i32> {
        let mut found = HashSet::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return found;
        };
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let is_socket = std::fs::read_link(entry.path())
                .map(|p| p.to_string_lossy().starts_with("socket:"))
                .unwrap_or(false);
            if is_socket && peer_port(fd) == Some(port) {
                found.insert(fd);
            }
        }
        found
    }

    fn peer_port(fd: i32) -> Option<u16> {
        // SAFETY: a zeroed sockaddr_storage is valid; getpeername writes within len.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: addr and len are valid for writing.
        let rc = unsafe {
            libc::getpeername(
                fd,
                (&mut addr as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        match addr.ss_family as i32 {
            libc::AF_INET => {
                // SAFETY: the family says this storage holds a sockaddr_in.
                let a = unsafe {
                    &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(u16::from_be(a.sin_port))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says this storage holds a sockaddr_in6.
                let a = unsafe {
                    &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(u16::from_be(a.sin6_port))
            }
            _ => None,
        }
    }

    /// A close-on-exec duplicate of `fd`, owned by the caller.
    fn duplicate(fd: i32) -> Option<OwnedFd> {
        // SAFETY: fcntl only reads its arguments; a closed fd makes it fail.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return None;
        }
        // SAFETY: fcntl just returned this new fd, and nothing else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(dup) })
    }

    /// Finds the one connection that appeared since `before`, and waits (briefly) for
    /// the handshake to be acknowledged so that its byte count is the baseline.
    pub(crate) fn track_new(port: u16, before: &HashSet<i32>) -> Option<Tracker> {
        let fresh: Vec<i32> = tcp_sockets_to(port).difference(before).copied().collect();
        let [fd] = fresh[..] else {
            return None; // none, or another thread connected at the same moment
        };
        let fd = duplicate(fd)?;
        // zeromq may have closed it since it was listed and the number gone to
        // another socket: ours must still be connected to the collector.
        if peer_port(fd.as_raw_fd()) != Some(port) {
            return None;
        }
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            let info = tcp_info(fd.as_raw_fd())?;
            if !info.established {
                return None;
            }
            if info.unacked_segments == 0 && info.notsent_bytes == 0 {
                return Some(Tracker {
                    fd,
                    base: info.bytes_acked,
                });
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[cfg(target_os = "linux")]
pub(crate) use linux::{tcp_info, tcp_sockets_to, track_new};

/// Snapshot of existing connections to a port, taken before connecting.
#[cfg(target_os = "linux")]
pub(crate) fn before_connect(port: Option<u16>) -> std::collections::HashSet<i32> {
    port.map(tcp_sockets_to).unwrap_or_default()
}

/// Snapshot of existing connections to a port, taken before connecting.
#[cfg(not(target_os = "linux"))]
pub(crate) fn before_connect(_port: Option<u16>) -> std::collections::HashSet<i32> {
    Default::default()
}

/// The tracker for a connection just made, if this system can tell.
#[cfg(not(target_os = "linux"))]
pub(crate) fn track_new(_port: u16, _before: &std::collections::HashSet<i32>) -> Option<Tracker> {
    None
}
