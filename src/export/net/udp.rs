//! UDP: one message per datagram, no connection, no retransmission.

use super::Datagrams;
use crate::config::SocketOptions;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

pub struct UdpTransport {
    sock: UdpSocket,
}

impl UdpTransport {
    /// A socket connected to the first of the collector's addresses, with `options`.
    /// Connected, so that the kernel reports an ICMP "port unreachable" as an error on a later
    /// send: that datagram and the one before it are counted as lost.
    pub fn open(addrs: &[SocketAddr], options: &SocketOptions) -> io::Result<Self> {
        let addr = *addrs
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let sock = crate::export::sockopt::udp_socket(addr, options)?;
        sock.set_write_timeout(Some(Duration::from_secs(1)))?;
        Ok(UdpTransport { sock })
    }
}

impl Datagrams for UdpTransport {
    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        let n = self.sock.send(msg)?;
        if n != msg.len() {
            return Err(io::Error::other(format!(
                "datagram truncated to {n} of {} octets",
                msg.len()
            )));
        }
        Ok(())
    }

    fn last_refused(&mut self) -> Option<io::Error> {
        crate::export::last_datagram_refused(&self.sock)
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.local_addr().ok()
    }
}
