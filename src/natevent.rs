//! NAT translation events from the kernel's connection tracking (`--natevents`, ipt-netflow's
//! natevents): a netlink socket subscribed to conntrack's new and destroy events, whose
//! messages are read here into [`NatEvent`]s, one per connection that is translated (its
//! reply tuple is not the reverse of its original one: source NAT, destination NAT or both).
//!
//! The parser ([`parse`]) is sans-IO and reads any bytes without panicking, counting what it
//! must skip; the socket ([`Listener`]) is the OS boundary (through nix: no `unsafe`), opened
//! after a probe that asks conntrack netlink for an acknowledgement (so a kernel without it, or
//! a user without CAP_NET_ADMIN, is one clear error before anything is read), and read on a
//! thread of its own ([`Feed`]) that hands events to the reading loop and raises its wake
//! flag. Events are stamped with the wall clock when read: conntrack carries no time of its
//! own. Like `capture`, this is an edge of the pipeline: nothing below `export` sees it but
//! the NAT event record's encoders.

use crate::time::Timestamp;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

/// natEvent values (IANA, RFC 8158): NAT44 session create and delete; the generic "NAT
/// translation create/delete" for IPv6 (NAT66 has no code of its own).
pub mod code {
    pub const TRANSLATION_CREATE: u8 = 1;
    pub const TRANSLATION_DELETE: u8 = 2;
    pub const NAT44_SESSION_CREATE: u8 = 4;
    pub const NAT44_SESSION_DELETE: u8 = 5;
}

/// One translation starting or ending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatEvent {
    /// observationTimeMilliseconds: when qof read it.
    pub time: Timestamp,
    /// natEvent (see [`code`]).
    pub event: u8,
    pub proto: u8,
    /// Before translation: the connection as its initiator sent it.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// After translation: as it left the translator.
    pub post_src: IpAddr,
    pub post_dst: IpAddr,
    pub post_src_port: u16,
    pub post_dst_port: u16,
}

impl NatEvent {
    pub fn is_ipv4(&self) -> bool {
        self.src.is_ipv4()
    }
}

// Netlink and ctnetlink numbers (linux/netlink.h, linux/netfilter/nfnetlink*.h).
const NLMSG_HDR: usize = 16;
const NFGENMSG: usize = 4;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const IPCTNL_MSG_CT_GET_STATS: u16 = 5;
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;
const CTA_PROTO_ICMPV6_ID: u16 = 7;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
const CTA_PROTO_ICMPV6_CODE: u16 = 9;
/// Flag bits of an attribute's type.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// Multicast groups: conntrack's new (1) and destroy (3) events.
pub const GROUPS: u32 = 1 << 0 | 1 << 2;

/// The attributes of `buf`: (type without flags, payload). Stops at anything malformed.
fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?));
        let ty = u16::from_ne_bytes(buf.get(at + 2..at + 4)?.try_into().ok()?);
        if len < 4 {
            return None;
        }
        let payload = buf.get(at + 4..at + len)?;
        at += len.div_ceil(4) * 4;
        // (`len` is at most 65,535: `at` cannot overflow.)
        Some((ty & NLA_TYPE_MASK, payload))
    })
}

fn attr(buf: &[u8], ty: u16) -> Option<&[u8]> {
    attrs(buf).find(|(t, _)| *t == ty).map(|(_, p)| p)
}

fn be16(p: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(p.get(..2)?.try_into().ok()?))
}

/// A conntrack tuple: addresses, protocol, ports (ICMP: id and type/code, as qof's flow key
/// keeps them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tuple {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
}

fn tuple(buf: &[u8]) -> Option<Tuple> {
    let ip = attr(buf, CTA_TUPLE_IP)?;
    let addr = |v4: u16, v6: u16| -> Option<IpAddr> {
        if let Some(a) = attr(ip, v4) {
            return Some(IpAddr::from(<[u8; 4]>::try_from(a.get(..4)?).ok()?));
        }
        let a = attr(ip, v6)?;
        Some(IpAddr::from(<[u8; 16]>::try_from(a.get(..16)?).ok()?))
    };
    let src = addr(CTA_IP_V4_SRC, CTA_IP_V6_SRC)?;
    let dst = addr(CTA_IP_V4_DST, CTA_IP_V6_DST)?;
    let p = attr(buf, CTA_TUPLE_PROTO)?;
    let proto = *attr(p, CTA_PROTO_NUM)?.first()?;
    let byte = |t: u16| attr(p, t).and_then(|v| v.first().copied()).unwrap_or(0);
    let (sport, dport) = match proto {
        1 => (
            attr(p, CTA_PROTO_ICMP_ID).and_then(be16).unwrap_or(0),
            u16::from(byte(CTA_PROTO_ICMP_TYPE)) << 8 | u16::from(byte(CTA_PROTO_ICMP_CODE)),
        ),
        58 => (
            attr(p, CTA_PROTO_ICMPV6_ID).and_then(be16).unwrap_or(0),
            u16::from(byte(CTA_PROTO_ICMPV6_TYPE)) << 8 | u16::from(byte(CTA_PROTO_ICMPV6_CODE)),
        ),
        _ => (
            attr(p, CTA_PROTO_SRC_PORT).and_then(be16).unwrap_or(0),
            attr(p, CTA_PROTO_DST_PORT).and_then(be16).unwrap_or(0),
        ),
    };
    Some(Tuple {
        src,
        dst,
        proto,
        sport,
        dport,
    })
}

/// What [`parse`] found in one read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Conntrack new and destroy messages read whole (translated or not).
    pub messages: usize,
    /// Messages skipped as malformed: a length that does not fit (the rest of the read goes
    /// with it: nothing after it can be found), a conntrack message without both tuples.
    pub malformed: usize,
}

/// What one read from the socket brought: the translations in it (`time` stamps them) go to
/// `out`. Any bytes are read without a panic; what cannot be read is counted and skipped.
pub fn parse(buf: &[u8], time: Timestamp, out: &mut Vec<NatEvent>) -> Parsed {
    let mut at = 0;
    let mut p = Parsed::default();
    while at < buf.len() {
        let Some(h) = buf.get(at..at + NLMSG_HDR) else {
            p.malformed += 1;
            break;
        };
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let Some(body) = buf.get(at + NLMSG_HDR..at.saturating_add(len)) else {
            p.malformed += 1;
            break;
        };
        at = at.saturating_add(len.div_ceil(4) * 4);
        if ty == NLMSG_ERROR || ty >> 8 != NFNL_SUBSYS_CTNETLINK {
            continue;
        }
        let event = match ty & 0xff {
            IPCTNL_MSG_CT_NEW => true,
            IPCTNL_MSG_CT_DELETE => false,
            _ => continue,
        };
        let tuples = body.get(NFGENMSG..).and_then(|a| {
            Some((
                attr(a, CTA_TUPLE_ORIG).and_then(tuple)?,
                attr(a, CTA_TUPLE_REPLY).and_then(tuple)?,
            ))
        });
        // (Both tuples of one family: a mix is no connection conntrack makes.)
        let Some((orig, reply)) = tuples.filter(|(o, r)| {
            let v4 = o.src.is_ipv4();
            [o.dst, r.src, r.dst].iter().all(|a| a.is_ipv4() == v4)
        }) else {
            p.malformed += 1;
            continue;
        };
        p.messages += 1;
        // Untranslated, the reply tuple is the original one reversed. (ICMP's id is in the
        // same place both ways, and the reply's type is not the request's.)
        let (post_src, post_dst) = (reply.dst, reply.src);
        let (post_sport, post_dport) = if matches!(orig.proto, 1 | 58) {
            (reply.sport, orig.dport)
        } else {
            (reply.dport, reply.sport)
        };
        if post_src == orig.src
            && post_dst == orig.dst
            && post_sport == orig.sport
            && post_dport == orig.dport
        {
            continue;
        }
        let v4 = orig.src.is_ipv4();
        out.push(NatEvent {
            time,
            event: match (event, v4) {
                (true, true) => code::NAT44_SESSION_CREATE,
                (false, true) => code::NAT44_SESSION_DELETE,
                (true, false) => code::TRANSLATION_CREATE,
                (false, false) => code::TRANSLATION_DELETE,
            },
            proto: orig.proto,
            src: orig.src,
            dst: orig.dst,
            src_port: orig.sport,
            dst_port: orig.dport,
            post_src,
            post_dst,
            post_src_port: post_sport,
            post_dst_port: post_dport,
        });
    }
    p
}

/// The conntrack event socket.
pub struct Listener {
    fd: std::os::fd::OwnedFd,
    buf: Vec<u8>,
    /// Times the kernel said events were lost (the socket's buffer overflowed).
    pub overflows: u64,
    /// What the reads found, summed.
    pub parsed: Parsed,
}

/// Why NAT events cannot be read here, in one line.
fn refused(e: nix::errno::Errno, what: &str) -> io::Error {
    use nix::errno::Errno;
    let hint = match e {
        Errno::EPERM | Errno::EACCES => " (conntrack events need root or CAP_NET_ADMIN)",
        Errno::EPROTONOSUPPORT | Errno::ENOENT | Errno::EAFNOSUPPORT | Errno::EOPNOTSUPP => {
            " (this kernel has no conntrack netlink: load nf_conntrack_netlink)"
        }
        _ => "",
    };
    io::Error::new(
        io::Error::from(e).kind(),
        format!("--natevents: cannot {what}: {}{hint}", io::Error::from(e)),
    )
}

/// The answer to a request, read from the messages of one reply: `Some(0)` for an
/// acknowledgement, `Some(errno)` for an error, `None` if the reply holds neither.
pub fn ack_of(buf: &[u8]) -> Option<i32> {
    let mut at = 0;
    while let Some(h) = buf.get(at..at + NLMSG_HDR) {
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let body = buf.get(at + NLMSG_HDR..at.saturating_add(len))?;
        if ty == NLMSG_ERROR {
            let code = i32::from_ne_bytes(body.get(..4)?.try_into().ok()?);
            return Some(code.saturating_neg());
        }
        if len < NLMSG_HDR {
            return None;
        }
        at = at.saturating_add(len.div_ceil(4) * 4);
    }
    None
}

/// Ask the kernel's conntrack netlink for its statistics, acknowledged: it answers only if it
/// is there (the kernel loads it on the way if it can) and qof may talk to it.
fn probe() -> io::Result<()> {
    use nix::errno::Errno;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };
    use std::os::fd::{AsFd, AsRawFd};
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(|e| refused(e, "open a netfilter netlink socket"))?;
    let mut req = Vec::with_capacity(NLMSG_HDR + NFGENMSG);
    req.extend_from_slice(&((NLMSG_HDR + NFGENMSG) as u32).to_ne_bytes());
    req.extend_from_slice(&(NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET_STATS).to_ne_bytes());
    req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    req.extend_from_slice(&[0, 0, 0, 0]); // AF_UNSPEC, version 0, resource 0
    sendto(
        fd.as_raw_fd(),
        &req,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(|e| refused(e, "ask conntrack netlink"))?;
    let mut buf = vec![0u8; 1 << 16];
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "--natevents: conntrack netlink did not answer (is nf_conntrack_netlink loaded?)",
            )),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(refused(e, "ask conntrack netlink")),
        }
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(e) => return Err(refused(e, "ask conntrack netlink")),
        };
        match ack_of(&buf[..n]) {
            Some(0) => return Ok(()),
            Some(errno) => return Err(refused(Errno::from_raw(errno), "ask conntrack netlink")),
            None => continue,
        }
    }
}

impl Listener {
    /// Subscribe to conntrack's new and destroy events, after making sure the kernel has
    /// conntrack netlink and lets qof use it: any problem is one line naming it.
    pub fn open() -> io::Result<Listener> {
        use nix::sys::socket::{
            bind, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag, SockProtocol,
            SockType,
        };
        use std::os::fd::AsRawFd;
        probe()?;
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkNetFilter,
        )
        .map_err(|e| refused(e, "open a netfilter netlink socket"))?;
        // Bursts of connections come and go at once: room for many events.
        let _ = setsockopt(&fd, sockopt::RcvBufForce, &(8 << 20))
            .or_else(|_| setsockopt(&fd, sockopt::RcvBuf, &(8 << 20)));
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, GROUPS))
            .map_err(|e| refused(e, "subscribe to conntrack events"))?;
        if std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_events")
            .is_ok_and(|v| v.trim() == "0")
        {
            tracing::warn!(
                "--natevents: net.netfilter.nf_conntrack_events is 0: the kernel sends no \
                 conntrack events until it is set to 1"
            );
        }
        Ok(Listener {
            fd,
            buf: vec![0; 1 << 16],
            overflows: 0,
            parsed: Parsed::default(),
        })
    }

    /// Wait at most `timeout` for events; the translations read go to `out` (stamped now).
    pub fn read(&mut self, timeout: Duration, out: &mut Vec<NatEvent>) -> io::Result<()> {
        use nix::errno::Errno;
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::{AsFd, AsRawFd};
        let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) | Err(Errno::EINTR) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            match recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::MSG_DONTWAIT) {
                Ok(n) => {
                    // (observationTimeMilliseconds: to the millisecond, as exported.)
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    let got = parse(&self.buf[..n], Timestamp::from_millis(now), out);
                    self.parsed.messages += got.messages;
                    self.parsed.malformed += got.malformed;
                }
                Err(Errno::ENOBUFS) => self.overflows += 1,
                Err(Errno::EAGAIN | Errno::EINTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Read on a thread of its own: each batch of events is handed over and `wake` raised
    /// (the reading loop then writes them out at its next housekeeping).
    pub fn spawn(mut self, wake: Arc<AtomicBool>) -> io::Result<Feed> {
        let (tx, rx) = mpsc::channel();
        let done = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(FeedCounts::default());
        let (d, c) = (Arc::clone(&done), Arc::clone(&counts));
        let thread = std::thread::Builder::new()
            .name("natevents".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    // (Once stopped, what the socket holds is still read, without waiting.)
                    let stopping = d.load(Ordering::Relaxed);
                    let wait = if stopping {
                        Duration::ZERO
                    } else {
                        Duration::from_millis(100)
                    };
                    if let Err(e) = self.read(wait, &mut batch) {
                        tracing::error!("--natevents: reading conntrack events: {e}");
                        c.failed.store(true, Ordering::Relaxed);
                        break;
                    }
                    c.overflows.store(self.overflows, Ordering::Relaxed);
                    c.messages
                        .store(self.parsed.messages as u64, Ordering::Relaxed);
                    c.malformed
                        .store(self.parsed.malformed as u64, Ordering::Relaxed);
                    if !batch.is_empty() {
                        if tx.send(std::mem::take(&mut batch)).is_err() {
                            break;
                        }
                        wake.store(true, Ordering::Relaxed);
                    }
                    if stopping {
                        break;
                    }
                }
            })?;
        Ok(Feed {
            rx,
            done,
            counts,
            thread: Some(thread),
        })
    }
}

/// What the reading thread counted.
#[derive(Default, Debug)]
pub struct FeedCounts {
    /// Conntrack messages read (translated or not), malformed ones skipped.
    pub messages: AtomicU64,
    pub malformed: AtomicU64,
    /// Times the socket's buffer overflowed: events lost.
    pub overflows: AtomicU64,
    /// The socket failed: no more events.
    pub failed: AtomicBool,
}

/// NAT events read on their own thread ([`Listener::spawn`]).
pub struct Feed {
    rx: Receiver<Vec<NatEvent>>,
    done: Arc<AtomicBool>,
    pub counts: Arc<FeedCounts>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Feed {
    /// The events read so far, oldest first.
    pub fn take(&self) -> Vec<NatEvent> {
        let mut all = Vec::new();
        while let Ok(mut batch) = self.rx.try_recv() {
            all.append(&mut batch);
        }
        all
    }

    /// Stop reading (within 0.1 s): the events read until then.
    pub fn stop(&mut self) -> Vec<NatEvent> {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.take()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn tuple_nla(ty: u16, src: [u8; 4], dst: [u8; 4], proto: u8, sp: u16, dp: u16) -> Vec<u8> {
        let ip = [nla(CTA_IP_V4_SRC, &src), nla(CTA_IP_V4_DST, &dst)].concat();
        let pr = [
            nla(CTA_PROTO_NUM, &[proto]),
            nla(CTA_PROTO_SRC_PORT, &sp.to_be_bytes()),
            nla(CTA_PROTO_DST_PORT, &dp.to_be_bytes()),
        ]
        .concat();
        nla(
            ty | 0x8000,
            &[
                nla(CTA_TUPLE_IP | 0x8000, &ip),
                nla(CTA_TUPLE_PROTO | 0x8000, &pr),
            ]
            .concat(),
        )
    }

    fn message(kind: u16, attrs: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let len = NLMSG_HDR + NFGENMSG + attrs.len();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&(NFNL_SUBSYS_CTNETLINK << 8 | kind).to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&[2, 0, 0, 0]);
        m.extend_from_slice(attrs);
        m
    }

    /// Source NAT of a UDP connection: created and destroyed; an untranslated connection
    /// gives nothing; garbage and cut messages are skipped without a panic.
    #[test]
    fn translated_connections_become_events() {
        let orig = tuple_nla(CTA_TUPLE_ORIG, [10, 0, 0, 1], [192, 0, 2, 9], 17, 40000, 53);
        let reply = tuple_nla(
            CTA_TUPLE_REPLY,
            [192, 0, 2, 9],
            [198, 51, 100, 1],
            17,
            53,
            61000,
        );
        let plain = tuple_nla(
            CTA_TUPLE_REPLY,
            [192, 0, 2, 9],
            [10, 0, 0, 1],
            17,
            53,
            40000,
        );
        let mut buf = message(IPCTNL_MSG_CT_NEW, &[orig.clone(), reply.clone()].concat());
        buf.extend(message(IPCTNL_MSG_CT_NEW, &[orig.clone(), plain].concat()));
        buf.extend(message(IPCTNL_MSG_CT_DELETE, &[orig, reply].concat()));
        let t = Timestamp::from_millis(1_700_000_000_123);
        let mut out = Vec::new();
        assert_eq!(
            parse(&buf, t, &mut out),
            Parsed {
                messages: 3,
                malformed: 0
            }
        );
        assert_eq!(out.len(), 2);
        let e = out[0];
        assert_eq!(
            (e.event, e.proto, e.time),
            (code::NAT44_SESSION_CREATE, 17, t)
        );
        assert_eq!((e.src.to_string(), e.src_port), ("10.0.0.1".into(), 40000));
        assert_eq!((e.dst.to_string(), e.dst_port), ("192.0.2.9".into(), 53));
        assert_eq!(
            (e.post_src.to_string(), e.post_src_port),
            ("198.51.100.1".into(), 61000)
        );
        assert_eq!(
            (e.post_dst.to_string(), e.post_dst_port),
            ("192.0.2.9".into(), 53)
        );
        assert_eq!(out[1].event, code::NAT44_SESSION_DELETE);
        // Every cut of the stream, and flipped bytes: no panic.
        for cut in 0..buf.len() {
            parse(&buf[..cut], t, &mut Vec::new());
            let mut b = buf.clone();
            b[cut] ^= 0xa5;
            parse(&b, t, &mut Vec::new());
        }
    }
}
