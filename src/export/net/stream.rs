//! TCP and SCTP sessions: one non-blocking socket per connection. SCTP is used as a
//! one-to-one (SOCK_STREAM) association on a single stream, which RFC 7011 §10.2 allows
//! (PR-SCTP and per-template streams are optional).

use super::{resolve, sctp, ConnectError, Connector, Transport};
use crate::config::SocketOptions;
use crate::export::sockopt;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

pub struct SocketConnector {
    host: String,
    port: u16,
    sctp: bool,
    /// One connection attempt (per address) waits at most this long: `--export-timeout`.
    timeout: Duration,
    /// Source address, TTL, send buffer.
    options: SocketOptions,
}

impl SocketConnector {
    pub fn new(host: &str, port: u16, sctp: bool, timeout: Duration) -> Self {
        SocketConnector {
            host: host.to_string(),
            port,
            sctp,
            timeout,
            options: SocketOptions::default(),
        }
    }

    /// The same, each socket with `options`.
    pub fn with_options(mut self, options: SocketOptions) -> Self {
        self.options = options;
        self
    }

    /// A connected (blocking) socket to the first of the collector's addresses that answers.
    /// The name is resolved again on every attempt: a collector that moved is found.
    pub fn connect_socket(&self) -> Result<Socket, ConnectError> {
        let addrs = resolve(&self.host, self.port).map_err(ConnectError::transient)?;
        let mut last = io::Error::other("no address");
        for addr in addrs {
            match self.connect_one(addr) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(ConnectError::transient(last))
    }

    fn connect_one(&self, addr: SocketAddr) -> io::Result<Socket> {
        let proto = if self.sctp {
            Protocol::from(sctp::IPPROTO_SCTP)
        } else {
            Protocol::TCP
        };
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(proto))?;
        sockopt::apply(&sock, &addr, &self.options, false)?;
        sock.connect_timeout(&addr.into(), self.timeout)?;
        if !self.sctp {
            // A message is written whole and then waits for nothing: no Nagle delay.
            sock.set_tcp_nodelay(true)?;
        }
        Ok(sock)
    }
}

impl Connector for SocketConnector {
    fn connect(&mut self) -> Result<Box<dyn Transport>, ConnectError> {
        let sock = self.connect_socket()?;
        sock.set_nonblocking(true)
            .map_err(ConnectError::transient)?;
        Ok(Box::new(SocketSession {
            sock,
            written: 0,
            sctp: self.sctp,
        }))
    }
}

/// True when the collector has closed its end (or reset it). An IPFIX collector never sends
/// anything, so whatever is readable is the end of the stream or noise to discard.
pub(crate) fn peer_closed(sock: &Socket) -> bool {
    let mut buf = [0u8; 1024];
    // Bounded: a peer that floods us is not allowed to hold the exporter here.
    for _ in 0..64 {
        match nix::sys::socket::recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => return true,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return false,
            Err(_) => return true,
        }
    }
    false
}

/// Octets in a TCP socket's send queue: written, and not yet acknowledged by the peer
/// (`SIOCOUTQ`, the same request number as `TIOCOUTQ`). On a connection that was reset the
/// kernel still answers (what was never acknowledged). `None` if it cannot.
#[cfg(target_os = "linux")]
pub(crate) fn send_queue(sock: &Socket) -> Option<u64> {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ on a socket writes one int through the pointer, which points to a live,
    // writable c_int on this stack frame; the descriptor is owned by `sock` and open.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::TIOCOUTQ, &mut n as *mut libc::c_int) };
    (r == 0).then(|| u64::try_from(n).ok()).flatten()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn send_queue(_sock: &Socket) -> Option<u64> {
    None
}

/// Write without blocking: the octets taken, 0 when the socket takes none now.
pub(crate) fn write_some(sock: &Socket, buf: &[u8]) -> io::Result<usize> {
    loop {
        let mut w: &Socket = sock;
        match w.write(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        }
    }
}

/// Wait at most `timeout` for the socket to take more (or to fail: the next write says so).
pub(crate) fn wait_writable(sock: &Socket, timeout: Duration) {
    let ms =
        PollTimeout::try_from(timeout.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(sock.as_fd(), PollFlags::POLLOUT)];
    let _ = nix::poll::poll(&mut fds, ms);
}

/// Reset the connection when the socket closes: what the kernel still holds is discarded.
pub(crate) fn reset_on_close(sock: &Socket) {
    let _ = sock.set_linger(Some(Duration::ZERO));
}

pub struct SocketSession {
    sock: Socket,
    written: u64,
    sctp: bool,
}

impl Transport for SocketSession {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = write_some(&self.sock, buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn written(&self) -> u64 {
        self.written
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.local_addr().ok()?.as_socket()
    }

    /// SCTP: Linux answers `SIOCOUTQ` only for TCP, and counts SCTP's unacknowledged data in
    /// chunks, not octets; written counts as delivered.
    fn unacked(&mut self) -> Option<u64> {
        if self.sctp {
            None
        } else {
            send_queue(&self.sock)
        }
    }

    fn wait_writable(&mut self, timeout: Duration) {
        wait_writable(&self.sock, timeout);
    }

    fn alive(&mut self) -> bool {
        !peer_closed(&self.sock)
    }

    fn close(&mut self) {
        // FIN after the last byte: the collector sees a clean end of the session.
        let _ = self.sock.shutdown(Shutdown::Write);
    }

    fn abort(&mut self) {
        reset_on_close(&self.sock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Instant;

    /// The kernel's count of unacknowledged octets, as the exporter reads it: octets the peer
    /// has not taken stay counted, and once it reads everything the count falls to 0. A reset
    /// connection still answers.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_send_queue_counts_what_the_peer_has_not_acknowledged() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut c = SocketConnector::new("127.0.0.1", port, false, Duration::from_secs(5));
        let mut t = c.connect().unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let chunk = vec![7u8; 1 << 16];
        // The peer reads nothing: its window closes, ours fills.
        let mut written = 0u64;
        let mut refused = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while refused < 2 {
            let n = t.write(&chunk).unwrap();
            written += n as u64;
            if n == 0 {
                refused += 1;
                t.wait_writable(Duration::from_millis(50));
            }
            assert!(Instant::now() < deadline);
        }
        assert_eq!(t.written(), written);
        let unacked = t.unacked().unwrap();
        assert!(unacked > 0 && unacked < written, "{unacked} of {written}");
        // The peer reads it all: everything is acknowledged.
        let mut got = 0u64;
        let mut buf = vec![0u8; 1 << 20];
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while got < t.written() {
            got += peer.read(&mut buf).unwrap() as u64;
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while t.unacked() != Some(0) {
            assert!(Instant::now() < deadline, "{:?}", t.unacked());
            std::thread::sleep(Duration::from_millis(5));
        }
        // Reset by the peer with octets unacknowledged: still counted.
        let n = t.write(&chunk).unwrap() as u64;
        assert!(n > 0);
        socket2::SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
        drop(listener);
        let deadline = Instant::now() + Duration::from_secs(5);
        while t.alive() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(t.unacked().is_some());
    }
}
