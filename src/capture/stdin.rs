//! Pipes that stop when asked: standard input, or a FIFO named by `--in`. A writer that keeps
//! the pipe open and silent, or a FIFO that no writer has opened yet, must not keep qof from
//! acting on SIGINT or SIGTERM (a plain read or open would block on, since the signal handlers
//! restart interrupted system calls).

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How often a silent pipe looks at the stop flag.
const POLL_MS: u16 = 100;

pub(crate) struct StoppableStdin {
    /// A duplicate of descriptor 0 (or the FIFO), read without std's buffer: data left in a
    /// user-space buffer would not wake `poll`.
    fd: File,
    stop: Arc<AtomicBool>,
}

impl StoppableStdin {
    pub(crate) fn new(stop: Arc<AtomicBool>) -> io::Result<Self> {
        let fd = File::from(io::stdin().as_fd().try_clone_to_owned()?);
        Ok(StoppableStdin { fd, stop })
    }

    /// A FIFO, opened without waiting for a writer: `open` of a FIFO's reading end blocks
    /// until one comes, and no signal would end the wait. Non-blocking, it opens at once;
    /// `poll` then waits (and looks at `stop`) until a writer sends data or closes (Linux
    /// reports no hang-up before a first writer has come and gone).
    pub(crate) fn fifo(path: &Path, stop: Arc<AtomicBool>) -> io::Result<Self> {
        let fd = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok(StoppableStdin { fd, stop })
    }
}

impl Read for StoppableStdin {
    /// Once `stop` is set, reads return 0 (the end of input), at most `POLL_MS` later.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(0);
            }
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                // Readable, at its end, or not pollable at all: read says which. (A FIFO
                // opened non-blocking may still find nothing to read: poll again.)
                Ok(_) | Err(_) => match self.fd.read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    r => return r,
                },
            }
        }
    }
}
