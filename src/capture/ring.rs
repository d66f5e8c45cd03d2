//! The receive ring of a Linux packet socket (`TPACKET_V3`): memory the kernel and qof share,
//! cut into blocks. The kernel fills a block with frames, each behind a small header, and
//! hands it over by setting its status word; qof reads the frames in place and hands the
//! block back. No system call per frame, no copy out of the ring.
//!
//! The only `unsafe` is the mapping itself, the status word (read and written atomically,
//! since the kernel writes it concurrently), and viewing a block qof holds as bytes.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

/// Block size: a power of two of pages, large enough for any frame (64 KiB on loopback).
pub const BLOCK_SIZE: usize = 1 << 20;
/// Blocks in the ring by default (64 MiB): what waits while qof is busy.
pub const BLOCKS: usize = 64;
/// A block not yet full is handed over after this long, so quiet traffic is not held back.
pub const RETIRE_MS: u32 = 100;

// Offsets in a block descriptor (`struct tpacket_block_desc`) and a frame header
// (`struct tpacket3_hdr`), as the kernel's `if_packet.h` lays them out.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST: usize = 16;
const HDR_NEXT: usize = 0;
const HDR_SEC: usize = 4;
const HDR_NSEC: usize = 8;
const HDR_SNAPLEN: usize = 12;
const HDR_LEN: usize = 16;
const HDR_MAC: usize = 24;
/// The `sockaddr_ll` after the aligned header; its `sll_pkttype` is at offset 10.
const HDR_PKTTYPE: usize = 48 + 10;

/// One frame in the block qof holds: where its bytes are, and what the header says.
#[derive(Clone, Copy, Debug)]
pub struct RingFrame {
    pub data: usize,
    pub caplen: usize,
    pub wire_len: u32,
    pub sec: u32,
    pub nsec: u32,
    pub pkttype: u8,
}

pub struct Ring {
    base: NonNull<u8>,
    len: usize,
    blocks: usize,
    /// The block read now.
    block: usize,
    /// Whether qof holds `block` (its status says user), and what is left of it.
    held: bool,
    left: u32,
    next: usize,
}

// SAFETY: the ring is memory this process mapped; the pointer is only used through `&self` /
// `&mut self`, so moving the owner to another thread moves the only access with it.
unsafe impl Send for Ring {}

fn read_u32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn read_u16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_ne_bytes([s[0], s[1]]))
}

impl Ring {
    /// Switch the packet socket `fd` to `TPACKET_V3` and map its receive ring.
    /// `blocks` of [`BLOCK_SIZE`] (at least 2).
    pub fn new(fd: &OwnedFd, blocks: usize) -> io::Result<Ring> {
        let blocks = blocks.max(2);
        set_packet_option(
            fd,
            libc::PACKET_VERSION,
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
        )?;
        let req = libc::tpacket_req3 {
            tp_block_size: BLOCK_SIZE as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: 2048,
            tp_frame_nr: (BLOCK_SIZE / 2048 * blocks) as u32,
            tp_retire_blk_tov: RETIRE_MS,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_packet_option(fd, libc::PACKET_RX_RING, &req)?;
        let len = BLOCK_SIZE * blocks;
        // SAFETY: a fresh shared mapping of the socket's ring, of the size the kernel was
        // just told; no existing memory is touched. Released in `Drop`.
        let base = unsafe {
            nix::sys::mman::mmap(
                None,
                std::num::NonZeroUsize::new(len).ok_or_else(|| io::Error::other("empty ring"))?,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        Ok(Ring {
            base: base.cast(),
            len,
            blocks,
            block: 0,
            held: false,
            left: 0,
            next: 0,
        })
    }

    /// The status word of block `i`, shared with the kernel.
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: the word lies inside the mapping (blocks are `BLOCK_SIZE` apart and the
        // offset is below it), is 4-byte aligned (page-aligned block + 8), lives as long as
        // `self`, and is only ever accessed atomically, by us and by the kernel.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(i * BLOCK_SIZE + BLOCK_STATUS).cast()) }
    }

    /// The block qof holds, as bytes.
    fn held_block(&self) -> &[u8] {
        debug_assert!(self.held);
        // SAFETY: inside the mapping; while its status says user (checked with acquire
        // ordering before `held` was set) the kernel does not write the block, and the view
        // ends before the block is handed back (`release` takes `&mut self`).
        unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(self.block * BLOCK_SIZE), BLOCK_SIZE)
        }
    }

    /// The bytes of a frame that [`Ring::next`] returned (valid until the next call).
    pub fn bytes(&self, f: &RingFrame) -> &[u8] {
        let b = self.held_block();
        let start = f.data.min(b.len());
        &b[start..(start + f.caplen).min(b.len())]
    }

    /// Whether [`Ring::next`] has a frame (or at least a block handed over) without waiting.
    pub fn ready(&self) -> bool {
        if self.held && self.left > 0 {
            return true;
        }
        let block = if self.held {
            (self.block + 1) % self.blocks
        } else {
            self.block
        };
        self.status(block).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Hand back the held block once every frame of it has been read. (The kernel counts
    /// the socket readable while a block it handed over is held: hand it back before waiting.)
    pub fn release_spent(&mut self) {
        if self.held && self.left == 0 {
            self.release();
        }
    }

    /// The next frame, if one is ready now; `None` when the kernel has handed over nothing
    /// more yet (wait on the socket, then ask again).
    pub fn next(&mut self) -> Option<RingFrame> {
        loop {
            self.release_spent();
            if !self.held {
                if self.status(self.block).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                    return None;
                }
                self.held = true;
                let b = self.held_block();
                let (left, first) = (read_u32(b, BLOCK_NUM_PKTS), read_u32(b, BLOCK_FIRST));
                (self.left, self.next) = (left, first as usize);
                continue;
            }
            let b = self.held_block();
            let h = self.next;
            if h + HDR_PKTTYPE >= b.len() {
                // A header that does not fit cannot be read: the rest of the block is given up.
                self.left = 0;
                continue;
            }
            let f = RingFrame {
                data: h + usize::from(read_u16(b, h + HDR_MAC)),
                caplen: read_u32(b, h + HDR_SNAPLEN) as usize,
                wire_len: read_u32(b, h + HDR_LEN),
                sec: read_u32(b, h + HDR_SEC),
                nsec: read_u32(b, h + HDR_NSEC),
                pkttype: b[h + HDR_PKTTYPE],
            };
            let next = h + read_u32(b, h + HDR_NEXT) as usize;
            self.left -= 1;
            self.next = next;
            return Some(f);
        }
    }

    /// Hand the held block back to the kernel and move to the next.
    fn release(&mut self) {
        self.status(self.block)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.held = false;
        self.block = (self.block + 1) % self.blocks;
    }

    /// Wait until the kernel hands over a block, at most `timeout_ms` (wait only once nothing
    /// is left to read). An error when the socket reports one: the interface went down or
    /// away (polling it would otherwise return at once, again and again).
    pub fn fd_wait(fd: &OwnedFd, timeout_ms: u16) -> io::Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(timeout_ms)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let bad = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
        if fds[0].revents().is_some_and(|r| r.intersects(bad)) {
            let code = nix::sys::socket::getsockopt(fd, nix::sys::socket::sockopt::SocketError)
                .unwrap_or(0);
            return Err(match code {
                0 => io::Error::other("the socket reports an error"),
                c => io::Error::from_raw_os_error(c),
            });
        }
        Ok(())
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `new`, unmapped once; no view of it outlives
        // `self`.
        let _ = unsafe { nix::sys::mman::munmap(self.base.cast(), self.len) };
    }
}

/// Set the `SOL_PACKET` option `opt` to `value` (a plain C struct or integer).
pub(super) fn set_packet_option<T: Copy>(
    fd: &OwnedFd,
    opt: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised `T` for the whole call, the length passed is its
    // size, and the kernel only reads it; `fd` is an open packet socket.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (value as *const T).cast::<libc::c_void>(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Attach a classic BPF program to the packet socket `fd` (`SO_ATTACH_FILTER`): the kernel
/// runs it on every frame before the ring, keeps only the frames it accepts, and cuts each to
/// the length it returns (so a program's accepting return value is a snap length).
pub(super) fn attach_filter(fd: &OwnedFd, program: &[libc::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter program too long"))?;
    let fprog = libc::sock_fprog {
        len,
        // (The kernel only reads through this pointer, during the call.)
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `program`, `len` instructions, alive for the whole call; the
    // kernel copies the program and checks it (an invalid one is refused with EINVAL); `fd`
    // is an open packet socket.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast::<libc::c_void>(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
