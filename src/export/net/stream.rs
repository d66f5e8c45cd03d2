//! TCP and SCTP sessions: one socket per connection, whole messages written with a stall
//! timeout. SCTP is used as a one-to-one (SOCK_STREAM) association on a single stream, which
//! RFC 7011 §10.2 allows (PR-SCTP and per-template streams are optional).

use super::{resolve, sctp, ConnectError, Connector, Transport};
use nix::errno::Errno;
use nix::sys::socket::MsgFlags;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// A collector that does not answer a connection attempt within this time is unreachable for
/// now; kept short because the exporter thread waits for it.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct SocketConnector {
    host: String,
    port: u16,
    sctp: bool,
}

impl SocketConnector {
    pub fn new(host: &str, port: u16, sctp: bool) -> Self {
        SocketConnector {
            host: host.to_string(),
            port,
            sctp,
        }
    }

    /// A connected socket to the first of the collector's addresses that answers. The name
    /// is resolved again on every attempt: a collector that moved is found.
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
        sock.connect_timeout(&addr.into(), CONNECT_TIMEOUT)?;
        if !self.sctp {
            // A message is written whole and then waits for nothing: no Nagle delay.
            sock.set_tcp_nodelay(true)?;
        }
        Ok(sock)
    }
}

impl Connector for SocketConnector {
    fn connect(&mut self) -> Result<Box<dyn Transport>, ConnectError> {
        Ok(Box::new(SocketSession {
            sock: self.connect_socket()?,
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

pub struct SocketSession {
    sock: Socket,
}

impl Transport for SocketSession {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        (&self.sock).write_all(msg)
    }

    fn alive(&mut self) -> bool {
        !peer_closed(&self.sock)
    }

    fn set_write_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        self.sock
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
    }

    fn close(&mut self) {
        // FIN after the last byte: the collector sees a clean end of the session.
        let _ = self.sock.shutdown(Shutdown::Write);
    }
}
