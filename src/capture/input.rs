//! The byte layer under the capture readers: one large reusable buffer over a plain or gzip stream.
//!
//! Invariants:
//! * `start <= end <= buf.len()`; `buf[start..end]` are bytes read but not yet consumed, and
//!   `base + start` is their offset in the (decompressed) stream.
//! * The buffer is compacted only when a record does not fit after `start`, and grown only when a
//!   record is larger than the whole buffer. Growth follows the bytes that actually arrive
//!   (doubling), so a header that claims a huge length never allocates more than about twice the
//!   input that really exists, and never more than the caller's record limit.

use flate2::read::MultiGzDecoder;
use std::io::{self, Read};

/// Counts the bytes pulled through it, so the progress position can be given in compressed bytes.
pub(crate) struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}

/// The raw stream: as it comes, or through a gzip decoder (chosen by the magic, not the name).
pub(crate) enum Input {
    Plain(Box<dyn Read + Send>),
    Gzip(MultiGzDecoder<Counting<Box<dyn Read + Send>>>),
}

impl Input {
    /// Wraps `raw`, looking at its first two bytes to decide whether it is gzip (1f 8b).
    /// The peeked bytes are put back in front, so this works on pipes too.
    pub(crate) fn detect(mut raw: Box<dyn Read + Send>) -> io::Result<Input> {
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < magic.len() {
            let Some(rest) = magic.get_mut(got..) else {
                break;
            };
            match raw.read(rest) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let prefix = io::Cursor::new(magic.get(..got).unwrap_or_default().to_vec());
        let stream: Box<dyn Read + Send> = Box::new(prefix.chain(raw));
        if got == 2 && magic == [0x1f, 0x8b] {
            Ok(Input::Gzip(MultiGzDecoder::new(Counting {
                inner: stream,
                count: 0,
            })))
        } else {
            Ok(Input::Plain(stream))
        }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(out),
            Input::Gzip(r) => r.read(out),
        }
    }

    /// Compressed bytes read so far, for gzip input.
    fn compressed_position(&self) -> Option<u64> {
        match self {
            Input::Plain(_) => None,
            Input::Gzip(r) => Some(r.get_ref().count),
        }
    }
}

/// Smallest buffer we agree to use; every fixed-size header fits in it.
const MIN_BUFFER: usize = 64;

/// A refillable window over the input stream.
pub(crate) struct ByteBuf {
    input: Input,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Total size of the underlying file when known (compressed size for gzip).
    len_hint: Option<u64>,
}

impl ByteBuf {
    pub(crate) fn new(input: Input, capacity: usize, len_hint: Option<u64>) -> ByteBuf {
        ByteBuf {
            input,
            buf: vec![0; capacity.max(MIN_BUFFER)],
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            len_hint,
        }
    }

    /// Stream offset of the first unconsumed byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base.saturating_add(self.start as u64)
    }

    /// Bytes read from the underlying file: compressed bytes for gzip, else the consumed offset.
    pub(crate) fn position(&self) -> u64 {
        self.input
            .compressed_position()
            .unwrap_or_else(|| self.offset())
    }

    pub(crate) fn len_hint(&self) -> Option<u64> {
        self.len_hint
    }

    /// The unconsumed bytes currently buffered.
    #[inline]
    pub(crate) fn available(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Makes at least `n` bytes available. `Ok(false)` when the stream ends first (whatever did
    /// arrive stays available). The caller bounds `n`.
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        self.fill_slow(n)
    }

    #[cold]
    fn fill_slow(&mut self, n: usize) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start.saturating_add(n) > self.buf.len() {
            // The record does not fit after `start`: move the unconsumed tail to the front.
            self.buf.copy_within(self.start..self.end, 0);
            self.base = self.base.saturating_add(self.start as u64);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            if self.end == self.buf.len() {
                // Only reached when `n` exceeds the whole buffer: grow with the data.
                let new_len = self.buf.len().saturating_mul(2).min(n).max(self.end + 1);
                self.buf.resize(new_len, 0);
            }
            let Some(space) = self.buf.get_mut(self.end..) else {
                return Ok(false);
            };
            match self.input.read(space) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(got) => self.end += got.min(space.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Consumes `n` bytes and returns them. Call only after `fill(n)` returned true; asking for
    /// more than is available yields what there is (never panics).
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> &[u8] {
        let from = self.start;
        let to = self.start.saturating_add(n).min(self.end);
        self.start = to;
        self.buf.get(from..to).unwrap_or_default()
    }
}
