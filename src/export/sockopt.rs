//! The options of every export socket (`--source-address`, `--export-ttl`, `--export-sndbuf`),
//! set before it connects: the local address it sends from, the TTL or hop limit of its
//! packets (the multicast one towards a multicast group, whose kernel default is 1, softflowd's
//! `-L`), and its send buffer.

use crate::config::SocketOptions;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// The send buffer asked for on a UDP export socket when `--export-sndbuf` does not say. On
/// the loopback a datagram goes straight into the collector's receive buffer and this does
/// not matter; towards another host it holds the datagrams of a pacing burst while the
/// interface's queue takes them, so that a send never finds it full (a full buffer would make
/// the send wait, up to its 1 s timeout).
const UDP_SEND_BUFFER: usize = 1 << 20;

/// Set `opts` on `sock`, which will connect to `peer`; bind it to the source address (or to
/// the unspecified address of `peer`'s family when `bind_any`).
pub fn apply(
    sock: &Socket,
    peer: &SocketAddr,
    opts: &SocketOptions,
    bind_any: bool,
) -> io::Result<()> {
    if let Some(n) = opts.sndbuf {
        // (The kernel doubles what it is given, for its own bookkeeping, and caps it at
        // net.core.wmem_max; root may pass the cap.)
        if sock.set_send_buffer_size(n).is_err() || sock.send_buffer_size()? < n {
            force_send_buffer(sock, n);
        }
    }
    if let Some(ttl) = opts.ttl {
        let ttl = u32::from(ttl);
        match peer.ip() {
            IpAddr::V4(a) if a.is_multicast() => sock.set_multicast_ttl_v4(ttl)?,
            IpAddr::V4(_) => sock.set_ttl_v4(ttl)?,
            IpAddr::V6(a) if a.is_multicast() => sock.set_multicast_hops_v6(ttl)?,
            IpAddr::V6(_) => sock.set_unicast_hops_v6(ttl)?,
        }
    }
    let local = match opts.source {
        Some(ip) if ip.is_ipv4() != peer.is_ipv4() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "source address {ip} is IPv{} but the collector {peer} is IPv{}",
                    if ip.is_ipv4() { 4 } else { 6 },
                    if peer.is_ipv4() { 4 } else { 6 }
                ),
            ))
        }
        Some(ip) => Some(SocketAddr::new(ip, 0)),
        None if bind_any => Some(match peer {
            SocketAddr::V4(_) => SocketAddr::new(IpAddr::from([0u8; 4]), 0),
            SocketAddr::V6(_) => SocketAddr::new(IpAddr::from([0u16; 8]), 0),
        }),
        None => None,
    };
    if let Some(local) = local {
        sock.bind(&local.into()).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot send from {}: {e}", local.ip()))
        })?;
    }
    Ok(())
}

/// SO_SNDBUFFORCE: past net.core.wmem_max, as root (best effort: without the privilege the
/// capped size stays, and `--export-sndbuf` is what the kernel allows).
fn force_send_buffer(sock: &Socket, n: usize) {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX);
    // SAFETY: SO_SNDBUFFORCE reads one c_int through the pointer, which points to `v`, live for
    // the call, with its size passed; the descriptor is owned by `sock` and open.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            (&v as *const libc::c_int).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A UDP socket connected to `peer` with `opts`. Connected, so that the kernel reports an
/// ICMP "port unreachable" as an error on a later send.
pub fn udp_socket(peer: SocketAddr, opts: &SocketOptions) -> io::Result<UdpSocket> {
    let sock = Socket::new(Domain::for_address(peer), Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_cloexec(true)?;
    if opts.sndbuf.is_none() && sock.send_buffer_size().is_ok_and(|n| n < UDP_SEND_BUFFER) {
        let _ = sock.set_send_buffer_size(UDP_SEND_BUFFER);
    }
    apply(&sock, &peer, opts, true)?;
    sock.connect(&SockAddr::from(peer))?;
    Ok(sock.into())
}

/// What a socket's local address says of the exporter: (exporterIPv4Address,
/// exporterIPv6Address), the unspecified address for the other family.
pub fn exporter_addresses(local: Option<SocketAddr>) -> ([u8; 4], [u8; 16]) {
    match local.map(|a| a.ip()) {
        Some(IpAddr::V4(a)) => (a.octets(), [0; 16]),
        Some(IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => (v4.octets(), [0; 16]),
            None => ([0; 4], a.octets()),
        },
        None => ([0; 4], [0; 16]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(source: Option<&str>, ttl: Option<u8>, sndbuf: Option<usize>) -> SocketOptions {
        SocketOptions {
            source: source.map(|s| s.parse().unwrap()),
            ttl,
            sndbuf,
        }
    }

    #[test]
    fn udp_sockets_get_their_options() {
        let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = collector.local_addr().unwrap();
        let s = udp_socket(peer, &opts(Some("127.0.0.1"), Some(9), Some(300_000))).unwrap();
        let s2 = socket2::SockRef::from(&s);
        assert_eq!(s2.ttl_v4().unwrap(), 9);
        // (Linux doubles the size asked for.)
        assert!(s2.send_buffer_size().unwrap() >= 300_000);
        assert_eq!(s.local_addr().unwrap().ip(), peer.ip());
        assert_eq!(s.peer_addr().unwrap(), peer);
        s.send(b"x").unwrap();
        let mut buf = [0; 4];
        let (_, from) = collector.recv_from(&mut buf).unwrap();
        assert_eq!(from, s.local_addr().unwrap());

        // A multicast group gets the multicast TTL (the unicast one stays the system's).
        let group: SocketAddr = "239.255.0.7:4739".parse().unwrap();
        let m = udp_socket(group, &opts(None, Some(32), None)).unwrap();
        let m2 = socket2::SockRef::from(&m);
        assert_eq!(m2.multicast_ttl_v4().unwrap(), 32);
        assert_ne!(m2.ttl_v4().unwrap(), 32);
        let v6 = UdpSocket::bind("[::1]:0").unwrap().local_addr().unwrap();
        let s = udp_socket(v6, &opts(None, Some(5), None)).unwrap();
        assert_eq!(socket2::SockRef::from(&s).unicast_hops_v6().unwrap(), 5);
    }

    #[test]
    fn a_source_of_the_other_family_or_not_ours_is_refused() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let e = udp_socket(peer, &opts(Some("::1"), None, None)).unwrap_err();
        assert!(e.to_string().contains("is IPv6 but the collector"), "{e}");
        let e = udp_socket(peer, &opts(Some("192.0.2.77"), None, None)).unwrap_err();
        assert!(
            e.to_string().starts_with("cannot send from 192.0.2.77: "),
            "{e}"
        );
    }

    #[test]
    fn exporter_addresses_follow_the_local_family() {
        let a = exporter_addresses(Some("10.1.2.3:5".parse().unwrap()));
        assert_eq!(a, ([10, 1, 2, 3], [0; 16]));
        let a = exporter_addresses(Some("[::1]:5".parse().unwrap()));
        assert_eq!(a.0, [0; 4]);
        assert_eq!(a.1[15], 1);
        assert_eq!(exporter_addresses(None), ([0; 4], [0; 16]));
    }
}
