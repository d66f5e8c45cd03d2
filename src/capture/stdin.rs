//! Standard input that stops when asked: a writer that keeps the pipe open and silent must not
//! keep qof from acting on SIGINT or SIGTERM (a plain read would block on, since the signal
//! handlers restart interrupted system calls).

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How often a silent pipe looks at the stop flag.
const POLL_MS: u16 = 100;

pub(crate) struct StoppableStdin {
    /// A duplicate of descriptor 0, read without std's buffer: data left in a user-space
    /// buffer would not wake `poll`.
    fd: File,
    stop: Arc<AtomicBool>,
}

impl StoppableStdin {
    pub(crate) fn new(stop: Arc<AtomicBool>) -> io::Result<Self> {
        let fd = File::from(io::stdin().as_fd().try_clone_to_owned()?);
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
                // Readable, at its end, or not pollable at all: read says which.
                Ok(_) | Err(_) => return self.fd.read(buf),
            }
        }
    }
}
