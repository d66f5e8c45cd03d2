//! Live capture from a Linux network interface (`--in int:eth0`, libtrace's name for it): an
//! `AF_PACKET` socket bound to the interface, in promiscuous mode, reading frames in place from
//! a `TPACKET_V3` receive ring ([`super::ring`]): no system call or copy per frame.
//!
//! * Frames keep their wire length; time is the kernel's receive timestamp (nanoseconds), so
//!   packet time stays the clock the meter runs on.
//! * On the loopback interface every packet passes twice (sent, then received): the kernel is
//!   asked not to queue the sent copy, and a sent copy that comes all the same is skipped.
//! * Ethernet and loopback interfaces give Ethernet frames; other kinds (tun, PPP) give the
//!   network-layer packet alone (the socket's "cooked" mode), read as raw IP.
//! * The kernel's drop count (`PACKET_STATISTICS`) is the source's [`PacketSource::dropped`].
//! * A wait for frames lasts at most [`WAKE_MS`]; then the source can say the interface is
//!   quiet ([`PacketSource::wait_quiet`]), and it looks at the stop flag, so a silent
//!   interface neither stops the clock nor keeps qof from acting on SIGINT or SIGTERM.
//!
//! `unsafe` here is confined to the socket calls nix does not wrap: `bind` to a link-layer
//! address, and setting and reading `SOL_PACKET` options.

use super::ring::{attach_filter, set_packet_option, Ring, RingFrame, BLOCKS, RETIRE_MS};
use super::{linktype, CaptureError, CaptureErrorKind, Frame, PacketSource};
use crate::time::Timestamp;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockProtocol, SockType};
use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Longest a wait for frames lasts before the interface counts as quiet.
const WAKE_MS: u16 = 100;

/// `ARPHRD_` interface types that carry Ethernet frames.
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;

/// How a live capture is set up (`--snaplen`, `--ring-size`, and the filter run in the
/// kernel).
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The kernel keeps at most this many octets of each frame (the wire length is kept).
    pub snaplen: u32,
    /// Blocks of 1 MiB in the receive ring.
    pub ring_blocks: usize,
    /// A classic BPF program for the kernel to run on every frame (the `--filter`
    /// expression compiled for [`link_type`] with the snap length as its accepting return
    /// value); `None`: every frame, cut to the snap length.
    pub program: Option<Vec<libc::sock_filter>>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: DEFAULT_SNAPLEN,
            ring_blocks: BLOCKS,
            program: None,
        }
    }
}

/// The snap length live frames are cut to by default.
pub const DEFAULT_SNAPLEN: u32 = 2048;

/// The LINKTYPE_ frames of interface `name` will have (Ethernet, or raw IP for interfaces
/// without a link-layer header), for compiling a filter before the capture opens.
pub fn link_type(name: &str) -> u32 {
    match interface_type(name).unwrap_or(ARPHRD_ETHER) {
        ARPHRD_ETHER | ARPHRD_LOOPBACK => linktype::ETHERNET,
        _ => linktype::RAW,
    }
}

pub struct LiveSource {
    /// (Before `fd`: fields drop in order, so the ring is unmapped before the socket closes.)
    ring: Ring,
    fd: OwnedFd,
    linktype: u32,
    /// The interface's name, and the index its frames carry (ingressInterface: the kernel's
    /// ifindex unless a name-to-index rule gave another).
    name: String,
    ifindex: u32,
    /// Loopback: skip the sent copy of each packet.
    skip_outgoing: bool,
    stop: Arc<AtomicBool>,
    /// Once stopped: until when frames already captured are still read.
    stopping: Option<std::time::Instant>,
    /// An error of the socket that `wait_quiet` found, for `next_frame` to report.
    failed: Option<io::Error>,
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
    pub fn open(
        name: &str,
        stop: Arc<AtomicBool>,
        options: &LiveOptions,
    ) -> Result<LiveSource, CaptureError> {
        Self::open_indexed(name, stop, options, |_, kernel| kernel)
    }

    /// The same, its frames carrying the index `index` gives for the interface's name and
    /// kernel index (`--interface-rules`).
    pub fn open_indexed(
        name: &str,
        stop: Arc<AtomicBool>,
        options: &LiveOptions,
        index: impl Fn(&str, u32) -> u32,
    ) -> Result<LiveSource, CaptureError> {
        Self::open_socket(name, stop, options, &index, None)
    }

    /// `n` sockets on interface `name` in one new `PACKET_FANOUT` group (one per `--workers`
    /// worker), each with its own ring of `options.ring_blocks` and the same filter and snap
    /// length: the kernel hands each frame to one of them by a symmetric hash of its flow
    /// (see [`FANOUT_MODE`]); the group's id, which the kernel chose, comes with them.
    pub fn open_fanout(
        name: &str,
        stop: Arc<AtomicBool>,
        options: &LiveOptions,
        index: impl Fn(&str, u32) -> u32,
        n: usize,
    ) -> Result<(Vec<LiveSource>, u16), CaptureError> {
        let mut group = None;
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            sources.push(Self::open_socket(
                name,
                Arc::clone(&stop),
                options,
                &index,
                Some(&mut group),
            )?);
        }
        // Only now does any member take frames: the group's size no longer changes, so the
        // kernel's hash sends every frame of a flow to the same member from the first one on
        // (a member taking frames while another joined would see a flow's first frames,
        // and the newcomer the rest of it).
        let program = accepting_program(options);
        for s in &sources {
            attach_filter(&s.fd, &program)
                .map_err(|e| open_error(name, "cannot attach the filter in the kernel", e))?;
        }
        Ok((sources, group.unwrap_or(0)))
    }

    /// One socket; with `fanout`, joined to the group it names (`None`: a new group, whose id
    /// is put there).
    fn open_socket(
        name: &str,
        stop: Arc<AtomicBool>,
        options: &LiveOptions,
        index: &dyn Fn(&str, u32) -> u32,
        fanout: Option<&mut Option<u16>>,
    ) -> Result<LiveSource, CaptureError> {
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
        // No protocol yet: the socket takes nothing until `bind` names the interface, with
        // the ring and options already in place, so no frame goes anywhere else meanwhile.
        let fd = socket::socket(
            AddressFamily::Packet,
            kind,
            SockFlag::SOCK_CLOEXEC,
            None::<SockProtocol>,
        )
        .map_err(|e| open_error(name, "cannot open a packet socket", e))?;
        if hw == ARPHRD_LOOPBACK {
            // The loopback's sent copy of each packet is not even queued (Linux 4.20 and
            // later; older kernels queue it, and it is skipped when read).
            let _ = set_packet_option(&fd, libc::PACKET_IGNORE_OUTGOING, &(1 as libc::c_int));
        }
        // The filter is in place before the socket is bound: no frame it refuses is taken.
        let program = accepting_program(options);
        // A socket that joins a fanout group takes nothing until it has joined (between its
        // bind and its join it would see every frame, the group's members seeing them too):
        // its filter refuses everything until then.
        let refuse_all = [libc::sock_filter {
            code: 0x06, // BPF_RET | BPF_K: keep 0 octets
            jt: 0,
            jf: 0,
            k: 0,
        }];
        let first = if fanout.is_some() {
            &refuse_all[..]
        } else {
            &program[..]
        };
        attach_filter(&fd, first)
            .map_err(|e| open_error(name, "cannot attach the filter in the kernel", e))?;
        let ring = Ring::new(&fd, options.ring_blocks)
            .map_err(|e| open_error(name, "cannot map a receive ring", e))?;
        promiscuous(&fd, ifindex)
            .map_err(|e| open_error(name, "cannot set promiscuous mode", e))?;
        bind(&fd, ifindex).map_err(|e| open_error(name, "cannot bind to it", e))?;
        if let Some(group) = fanout {
            // (A socket joins only once bound.)
            *group = Some(
                join_fanout(&fd, *group)
                    .map_err(|e| open_error(name, "cannot join a PACKET_FANOUT group", e))?,
            );
            // (Its real filter comes once every member has joined: see `open_fanout`.)
        }
        Ok(LiveSource {
            ring,
            fd,
            linktype,
            name: name.to_string(),
            ifindex: index(name, ifindex),
            skip_outgoing: hw == ARPHRD_LOOPBACK,
            stop,
            stopping: None,
            failed: None,
            dropped: Cell::new(0),
        })
    }
}

/// The filter a socket takes frames with: `--filter`'s program, or every frame cut to the
/// snap length.
fn accepting_program(options: &LiveOptions) -> Vec<libc::sock_filter> {
    match &options.program {
        Some(p) => p.clone(),
        None => vec![libc::sock_filter {
            code: 0x06, // BPF_RET | BPF_K
            jt: 0,
            jf: 0,
            k: options.snaplen,
        }],
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
    Frame(RingFrame),
    Quiet,
    Stopped,
}

impl LiveSource {
    /// Wait for a frame (skipping the loopback's sent copies), at most [`WAKE_MS`].
    fn wait(&mut self) -> Result<Got, CaptureError> {
        if let Some(e) = self.failed.take() {
            return Err(CaptureError::new(0, CaptureErrorKind::Live(e)));
        }
        let mut waited = false;
        loop {
            if self.stop.load(Ordering::Relaxed) && self.stopping.is_none() {
                // Frames already captured are still read: those in a block the kernel has
                // not handed over yet come within its retire time.
                self.stopping = Some(
                    std::time::Instant::now()
                        + std::time::Duration::from_millis(2 * u64::from(RETIRE_MS)),
                );
            }
            // Stopping ends at its deadline, even on an interface that never falls silent.
            if self
                .stopping
                .is_some_and(|until| std::time::Instant::now() >= until)
            {
                return Ok(Got::Stopped);
            }
            match self.ring.next() {
                Some(f) if self.skip_outgoing && f.pkttype == libc::PACKET_OUTGOING => continue,
                Some(f) => return Ok(Got::Frame(f)),
                None => {
                    if self.stopping.is_none() && waited {
                        return Ok(Got::Quiet);
                    }
                    waited = true;
                    Ring::fd_wait(&self.fd, WAKE_MS)
                        .map_err(|e| CaptureError::new(0, CaptureErrorKind::Live(e)))?;
                }
            }
        }
    }

    fn frame(&self, f: RingFrame) -> Frame<'_> {
        Frame {
            ts: ring_time(&f),
            linktype: self.linktype,
            orig_len: f.wire_len,
            data: self.ring.bytes(&f),
            ifindex: self.ifindex,
        }
    }

    /// The index this interface's frames carry.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// A frame if one is there now (skipping the loopback's sent copies), without waiting:
    /// `Quiet` when none is, `Stopped` once a stop has come and its grace time is over.
    fn poll_frame(&mut self) -> Result<Got, CaptureError> {
        if let Some(e) = self.failed.take() {
            return Err(self.named(e));
        }
        if self.stop.load(Ordering::Relaxed) && self.stopping.is_none() {
            self.stopping = Some(
                std::time::Instant::now()
                    + std::time::Duration::from_millis(2 * u64::from(RETIRE_MS)),
            );
        }
        if self
            .stopping
            .is_some_and(|until| std::time::Instant::now() >= until)
        {
            return Ok(Got::Stopped);
        }
        loop {
            match self.ring.next() {
                Some(f) if self.skip_outgoing && f.pkttype == libc::PACKET_OUTGOING => continue,
                Some(f) => return Ok(Got::Frame(f)),
                None => return Ok(Got::Quiet),
            }
        }
    }

    /// A socket error of this interface, naming it (several interfaces are captured).
    fn named(&self, e: io::Error) -> CaptureError {
        CaptureError::new(
            0,
            CaptureErrorKind::Live(io::Error::new(e.kind(), format!("int:{}: {e}", self.name))),
        )
    }
}

fn ring_time(f: &RingFrame) -> Timestamp {
    Timestamp::from_nanos(u64::from(f.sec) * 1_000_000_000 + u64::from(f.nsec))
}

/// Several interfaces at once (`--in int:a --in int:b`): frames come in time order as far as
/// the rings show it (each interface's next frame is held, and the earliest goes first; a
/// frame still in a block the kernel has not handed over, at most [`RETIRE_MS`], may come
/// after a later one of another interface: the meter takes time that steps back). Each frame
/// carries its interface's index. A socket error on any interface ends the capture, as with
/// one interface.
pub struct MultiLive {
    sources: Vec<LiveSource>,
    /// Each source's next frame, read from its ring and not yet given out.
    heads: Vec<Option<RingFrame>>,
    stopped: Vec<bool>,
}

impl MultiLive {
    pub fn new(sources: Vec<LiveSource>) -> MultiLive {
        let n = sources.len();
        MultiLive {
            sources,
            heads: vec![None; n],
            stopped: vec![false; n],
        }
    }

    /// Fill the heads that are empty from what the rings hold now; true when every source
    /// has stopped and nothing is held.
    fn fill(&mut self) -> Result<bool, CaptureError> {
        for i in 0..self.sources.len() {
            if self.heads[i].is_some() || self.stopped[i] {
                continue;
            }
            match self.sources[i].poll_frame()? {
                Got::Frame(f) => self.heads[i] = Some(f),
                Got::Stopped => self.stopped[i] = true,
                Got::Quiet => {}
            }
        }
        Ok(self.stopped.iter().all(|&s| s) && self.heads.iter().all(Option::is_none))
    }

    /// Wait at most [`WAKE_MS`] for any interface; a socket error is kept for its source.
    fn wait_any(&mut self) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        for (s, h) in self.sources.iter_mut().zip(&self.heads) {
            if h.is_none() {
                s.ring.release_spent();
            }
        }
        let mut fds: Vec<PollFd<'_>> = self
            .sources
            .iter()
            .map(|s| PollFd::new(s.fd.as_fd(), PollFlags::POLLIN))
            .collect();
        if poll(&mut fds, PollTimeout::from(WAKE_MS)).is_err() {
            return; // (EINTR: a signal; look again)
        }
        let bad = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
        let failed: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, f)| f.revents().is_some_and(|r| r.intersects(bad)))
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        for i in failed {
            let s = &mut self.sources[i];
            if s.failed.is_none() {
                let code =
                    nix::sys::socket::getsockopt(&s.fd, nix::sys::socket::sockopt::SocketError)
                        .unwrap_or(0);
                s.failed = Some(match code {
                    0 => io::Error::other("the socket reports an error"),
                    c => io::Error::from_raw_os_error(c),
                });
            }
        }
    }

    /// The source whose held frame is the earliest.
    fn earliest(&self) -> Option<usize> {
        self.heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|f| (ring_time(&f), i)))
            .min()
            .map(|(_, i)| i)
    }
}

impl PacketSource for MultiLive {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        loop {
            if self.fill()? {
                return Ok(None);
            }
            if let Some(i) = self.earliest() {
                let f = self.heads[i].take().ok_or_else(|| {
                    CaptureError::new(0, CaptureErrorKind::Malformed("no frame held"))
                })?;
                return Ok(Some(self.sources[i].frame(f)));
            }
            self.wait_any();
        }
    }

    fn frame_ready(&self) -> bool {
        self.heads.iter().any(Option::is_some) || self.sources.iter().any(|s| s.ring.ready())
    }

    fn wait_quiet(&mut self) -> Option<Timestamp> {
        if self.frame_ready() || self.sources.iter().any(|s| s.stop.load(Ordering::Relaxed)) {
            return None;
        }
        self.wait_any();
        if self.frame_ready() || self.sources.iter().any(|s| s.failed.is_some()) {
            return None;
        }
        Some(Timestamp::from_nanos(
            now()
                .nanos()
                .saturating_sub(2 * u64::from(RETIRE_MS) * 1_000_000),
        ))
    }

    fn is_live(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        self.sources.iter().map(PacketSource::dropped).sum()
    }
}

impl PacketSource for LiveSource {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        loop {
            match self.wait()? {
                Got::Frame(f) => return Ok(Some(self.frame(f))),
                Got::Quiet => continue,
                Got::Stopped => return Ok(None),
            }
        }
    }

    fn frame_ready(&self) -> bool {
        self.ring.ready()
    }

    /// Waits at most [`WAKE_MS`]. An error of the socket is left for `next_frame` to report.
    fn wait_quiet(&mut self) -> Option<Timestamp> {
        if self.stop.load(Ordering::Relaxed) || self.ring.ready() {
            return None;
        }
        self.ring.release_spent();
        if let Err(e) = Ring::fd_wait(&self.fd, WAKE_MS) {
            // (Reading the socket's error clears it: kept for `next_frame` to report.)
            self.failed = Some(e);
            return None;
        }
        if self.ring.ready() {
            return None;
        }
        // A frame may wait in a block not yet full for up to the retire time: the clock is
        // set back by twice that, so no frame still on its way is older.
        Some(Timestamp::from_nanos(
            now()
                .nanos()
                .saturating_sub(2 * u64::from(RETIRE_MS) * 1_000_000),
        ))
    }

    fn is_live(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        self.dropped
            .set(self.dropped.get() + kernel_drops(&self.fd).unwrap_or(0));
        self.dropped.get()
    }
}

/// How a fanout group shares frames out: `PACKET_FANOUT_HASH`, the kernel's flow hash
/// (`fanout_demux_hash`: `__skb_get_hash_symmetric`, symmetric since Linux 4.7, when
/// eb70db875671 "packet: Use symmetric hash for PACKET_FANOUT_HASH" replaced `skb_get_hash`,
/// which takes the NIC's RSS hash where there is one). Two holes were fixed later: its
/// `__flow_hash_consistentify` put IPv4 addresses in order by a signed difference, so two
/// addresses exactly 2^31 apart went two ways (64ae13ed4784, Linux 6.0 and 5.10+ stable,
/// 2022); and it stopped at an IPv6 flow label, hashing such packets without ports, so a flow
/// labelled in one direction only went two ways (a5e2151ff9d5, Linux 6.6 and 5.10+ stable,
/// 2023). tests/workers_fanout.rs checks both on the running kernel. With
/// `PACKET_FANOUT_FLAG_DEFRAG`: IPv4
/// fragments are reassembled by the kernel before the hash (the socket gets the datagram
/// whole, as one frame), so a fragmented datagram goes where its flow goes. The hash covers
/// the addresses, the protocol and the ports; IPv6 fragments are not reassembled, and hash
/// without ports (all of a datagram's fragments go the same way, maybe not its flow's).
pub const FANOUT_MODE: u32 = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG;

/// The oldest kernel whose fanout hash is symmetric ([`FANOUT_MODE`]): 4.7.
pub const FANOUT_SYMMETRIC_SINCE: (u32, u32) = (4, 7);

/// The oldest kernel whose fanout hash is symmetric without the holes [`FANOUT_MODE`] tells
/// of (stable kernels from 5.10 on may have the fixes: the version cannot say).
pub const FANOUT_FULLY_SYMMETRIC_SINCE: (u32, u32) = (6, 6);

/// The running kernel's version (major, minor), from its release string (as `uname -r`).
pub fn kernel_version() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Join the bound socket `fd` to fanout group `group`, or to a new group whose id the kernel
/// picks, unused by any other process (`PACKET_FANOUT_FLAG_UNIQUEID`, Linux 4.5; before it,
/// an id made of our process id); the group's id.
fn join_fanout(fd: &OwnedFd, group: Option<u16>) -> io::Result<u16> {
    let join = |id: u16, flags: u32| {
        set_packet_option(
            fd,
            libc::PACKET_FANOUT,
            &(u32::from(id) | ((FANOUT_MODE | flags) << 16)),
        )
    };
    if let Some(id) = group {
        join(id, 0)?;
        return Ok(id);
    }
    match join(0, libc::PACKET_FANOUT_FLAG_UNIQUEID) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // An older kernel: an id of our own (a group of that id on another interface or
            // of another mode is refused, and then so is the capture).
            let id = (std::process::id() & 0xffff) as u16;
            join(id, 0)?;
            return Ok(id);
        }
        Err(e) => return Err(e),
    }
    let mut value: u32 = 0;
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live, initialised and writable for the call, and `len` is
    // the size of `value`; `fd` is an open packet socket.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            (&mut value as *mut u32).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // (The id is the low 16 bits; the mode and flags above them.)
    Ok((value & 0xffff) as u16)
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
    set_packet_option(fd, libc::PACKET_ADD_MEMBERSHIP, &mreq)
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
