//! Live capture from a Linux network interface (`--in int:eth0`, libtrace's name for it): an
//! `AF_PACKET` socket bound to the interface, in promiscuous mode, one `recvmsg` per frame.
//!
//! * Frames are cut at [`SNAPLEN`] octets (headers are what a flow meter reads); the frame's
//!   wire length comes from `MSG_TRUNC`.
//! * Time is the kernel's receive timestamp (`SO_TIMESTAMPNS`), so packet time stays the
//!   clock the meter runs on.
//! * On the loopback interface every packet passes twice (sent, then received): the sent copy
//!   is skipped, as libpcap does.
//! * Ethernet and loopback interfaces give Ethernet frames; other kinds (tun, PPP) give the
//!   network-layer packet alone (the socket's "cooked" mode), read as raw IP.
//! * The kernel's drop count (`PACKET_STATISTICS`) is the source's [`PacketSource::dropped`].
//! * A read waits at most [`WAKE`], then looks at the stop flag, so a quiet interface does
//!   not keep qof from acting on SIGINT or SIGTERM.
//!
//! `unsafe` is confined to the three socket calls nix does not wrap: `bind` to a link-layer
//! address, the promiscuous-mode membership and the statistics read.

use super::{linktype, CaptureError, CaptureErrorKind, Frame, Next, PacketSource};
use crate::time::Timestamp;
use nix::errno::Errno;
use nix::sys::socket::{
    self, recvmsg, sockopt, AddressFamily, ControlMessageOwned, LinkAddr, MsgFlags, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;
use std::cell::Cell;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Octets kept of each frame: every header a flow meter decodes, tunnels included.
pub const SNAPLEN: usize = 2048;

/// Longest a read waits before looking at the stop flag again.
const WAKE: TimeVal = TimeVal::new(0, 100_000);

/// Socket receive buffer asked for: bursts at line rate wait here while a record is written.
const RCVBUF: usize = 64 << 20;

/// `ARPHRD_` interface types that carry Ethernet frames.
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

pub struct LiveSource {
    fd: OwnedFd,
    name: String,
    linktype: u32,
    /// Loopback: skip the sent copy of each packet.
    skip_outgoing: bool,
    buf: Vec<u8>,
    cmsg: Vec<u8>,
    /// The frame last read: captured length, wire length, time.
    caplen: usize,
    orig_len: u32,
    ts: Timestamp,
    stop: Arc<AtomicBool>,
    /// Kernel drops read so far (the kernel resets its count on each read).
    dropped: Cell<u64>,
}

fn open_error(name: &str, what: &str, e: impl Into<io::Error>) -> CaptureError {
    let e: io::Error = e.into();
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => " (live capture needs root or CAP_NET_RAW)",
        _ => "",
    };
    CaptureError {
        offset: 0,
        kind: CaptureErrorKind::Open(io::Error::new(e.kind(), format!("{what}: {e}{hint}"))),
        file: Some(format!("int:{name}")),
    }
}

/// The interface's `ARPHRD_` type, from sysfs.
fn interface_type(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/type"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl LiveSource {
    /// Capture on interface `name` until `stop` is set.
    pub fn open(name: &str, stop: Arc<AtomicBool>) -> Result<LiveSource, CaptureError> {
        let no_such = || CaptureError {
            offset: 0,
            kind: CaptureErrorKind::Open(io::Error::new(
                io::ErrorKind::NotFound,
                "no such network interface",
            )),
            file: Some(format!("int:{name}")),
        };
        if name.is_empty() || name.contains('/') {
            return Err(no_such());
        }
        let ifindex = nix::net::if_::if_nametoindex(name).map_err(|_| no_such())?;
        let hw = interface_type(name).unwrap_or(ARPHRD_ETHER);
        let ethernet = matches!(hw, ARPHRD_ETHER | ARPHRD_LOOPBACK);
        let (kind, linktype) = if ethernet {
            (SockType::Raw, linktype::ETHERNET)
        } else {
            (SockType::Datagram, linktype::RAW)
        };
        let fd = socket::socket(
            AddressFamily::Packet,
            kind,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
        .map_err(|e| open_error(name, "cannot open a packet socket", e))?;
        bind(&fd, ifindex).map_err(|e| open_error(name, "cannot bind to it", e))?;
        promiscuous(&fd, ifindex)
            .map_err(|e| open_error(name, "cannot set promiscuous mode", e))?;
        socket::setsockopt(&fd, sockopt::ReceiveTimestampns, &true)
            .map_err(|e| open_error(name, "cannot ask for timestamps", e))?;
        socket::setsockopt(&fd, sockopt::ReceiveTimeout, &WAKE)
            .map_err(|e| open_error(name, "cannot set a read timeout", e))?;
        // Beyond the system's limit only with CAP_NET_ADMIN; the default buffer does otherwise.
        if socket::setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).is_err() {
            let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &RCVBUF);
        }
        Ok(LiveSource {
            fd,
            name: name.to_string(),
            linktype,
            skip_outgoing: hw == ARPHRD_LOOPBACK,
            buf: vec![0; SNAPLEN],
            cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
            caplen: 0,
            orig_len: 0,
            ts: Timestamp::ZERO,
            stop,
            dropped: Cell::new(0),
        })
    }

    /// Read one frame into `buf`: `Some(true)`, or `Some(false)` for a frame to skip, or
    /// `None` when none came within [`WAKE`].
    fn read_one(&mut self) -> io::Result<Option<bool>> {
        let mut iov = [IoSliceMut::new(&mut self.buf)];
        let msg = match recvmsg::<LinkAddr>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut self.cmsg),
            MsgFlags::MSG_TRUNC,
        ) {
            Ok(m) => m,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(Errno::EINTR) => return Ok(Some(false)),
            Err(e) => return Err(e.into()),
        };
        if self.skip_outgoing
            && msg
                .address
                .is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING)
        {
            return Ok(Some(false));
        }
        let mut ts = None;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmTimestampns(t) = c {
                    let ns = u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                        + u64::try_from(t.tv_nsec()).unwrap_or(0);
                    ts = Some(Timestamp::from_nanos(ns));
                }
            }
        }
        let wire = msg.bytes;
        self.ts = ts.unwrap_or_else(now);
        self.orig_len = u32::try_from(wire).unwrap_or(u32::MAX);
        self.caplen = wire.min(SNAPLEN);
        Ok(Some(true))
    }
}

fn now() -> Timestamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What one wait on the socket gave.
enum Got {
    Frame,
    Quiet,
    Stopped,
}

impl LiveSource {
    /// Wait for a frame (skipping the loopback's sent copies), at most [`WAKE`].
    fn wait(&mut self) -> Result<Got, CaptureError> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(Got::Stopped);
        }
        loop {
            match self.read_one() {
                Ok(Some(true)) => return Ok(Got::Frame),
                Ok(Some(false)) => continue,
                Ok(None) => return Ok(Got::Quiet),
                Err(e) => {
                    return Err(CaptureError {
                        offset: 0,
                        kind: CaptureErrorKind::Io(e),
                        file: Some(format!("int:{}", self.name)),
                    })
                }
            }
        }
    }

    fn frame(&self) -> Frame<'_> {
        Frame {
            ts: self.ts,
            linktype: self.linktype,
            orig_len: self.orig_len,
            data: &self.buf[..self.caplen],
        }
    }
}

impl PacketSource for LiveSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        loop {
            match self.wait()? {
                Got::Frame => return Ok(Some(self.frame())),
                Got::Quiet => continue,
                Got::Stopped => return Ok(None),
            }
        }
    }

    fn next_event(&mut self) -> Result<Next<'_>, CaptureError> {
        Ok(match self.wait()? {
            Got::Frame => Next::Frame(self.frame()),
            Got::Quiet => Next::Quiet(now()),
            Got::Stopped => Next::End,
        })
    }

    /// Always: a read waits at most [`WAKE`], and then says the interface is quiet, which
    /// meters what the caller holds. So the meter's look-ahead works on live input too, and
    /// holds records back by at most that long.
    fn frame_ready(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        self.dropped
            .set(self.dropped.get() + kernel_drops(&self.fd).unwrap_or(0));
        self.dropped.get()
    }
}

/// Bind the packet socket to one interface (every protocol).
fn bind(fd: &OwnedFd, ifindex: u32) -> io::Result<()> {
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
        sll_ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a fully initialised sockaddr_ll that outlives the call, and the length
    // passed is its size; `fd` is an open socket.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Promiscuous mode for as long as the socket is open (the kernel drops the membership with
/// it, so a crash never leaves the interface promiscuous).
fn promiscuous(fd: &OwnedFd, ifindex: u32) -> io::Result<()> {
    let mreq = libc::packet_mreq {
        mr_ifindex: i32::try_from(ifindex).map_err(io::Error::other)?,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    // SAFETY: `mreq` is a fully initialised packet_mreq that outlives the call, and the length
    // passed is its size; `fd` is an open packet socket.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast::<libc::c_void>(),
            std::mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Frames the kernel dropped since the last call (its buffer was full).
fn kernel_drops(fd: &OwnedFd) -> io::Result<u64> {
    let mut st = libc::tpacket_stats {
        tp_packets: 0,
        tp_drops: 0,
    };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: `st` and `len` are live, initialised and writable for the call, and `len` is the
    // size of `st`; `fd` is an open packet socket.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut st as *mut libc::tpacket_stats).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r == 0 {
        Ok(u64::from(st.tp_drops))
    } else {
        Err(io::Error::last_os_error())
    }
}
