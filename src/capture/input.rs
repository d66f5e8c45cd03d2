//! The byte layer under the capture readers: one large reusable buffer over a plain or gzip stream,
//! or a memory map of a plain regular file (module `mapped`), shown a window at a time.
//!
//! Invariants:
//! * `start <= end`; `store[start..end]` are bytes read (or shown) but not yet consumed, and
//!   `base + start` is their offset in the (decompressed) stream. (`end` can pass the end of
//!   a map only when the file was truncated under it; the bytes then read as none.)
//! * The buffer is compacted only when a record does not fit after `start`, and grown only when a
//!   record is larger than the whole buffer. Growth follows the bytes that actually arrive
//!   (doubling), so a header that claims a huge length never allocates more than about twice the
//!   input that really exists, and never more than the caller's record limit.

use super::mapped::{self, FileMap};
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

/// What the window is a window of: a buffer `read()` fills, or a map of the whole file.
enum Store {
    Owned(Vec<u8>),
    Mapped(FileMap),
}

impl Store {
    #[inline]
    fn bytes(&self) -> &[u8] {
        match self {
            Store::Owned(v) => v,
            Store::Mapped(m) => m.bytes(),
        }
    }
}

/// A refillable window over the input stream.
pub(crate) struct ByteBuf {
    input: Input,
    store: Store,
    start: usize,
    end: usize,
    /// Stream offset of the store's first byte.
    base: u64,
    eof: bool,
    /// Total size of the underlying file when known (compressed size for gzip).
    len_hint: Option<u64>,
    /// Size of the buffer `read()` fills (for a map, once the map is read to its end).
    capacity: usize,
    /// Bytes of a map shown at a time.
    window: usize,
}

impl ByteBuf {
    pub(crate) fn new(input: Input, capacity: usize, len_hint: Option<u64>) -> ByteBuf {
        let capacity = capacity.max(MIN_BUFFER);
        ByteBuf {
            input,
            store: Store::Owned(vec![0; capacity]),
            start: 0,
            end: 0,
            base: 0,
            eof: false,
            len_hint,
            capacity,
            window: mapped::WINDOW,
        }
    }

    /// A plain (not gzip) regular file read through `map` of its first `map.len()` bytes,
    /// `window` bytes at a time, then with `read()` from `rest`, the same file positioned just
    /// past the map, should it have grown since.
    pub(crate) fn mapped(
        map: FileMap,
        window: usize,
        rest: Box<dyn Read + Send>,
        capacity: usize,
        len_hint: Option<u64>,
    ) -> ByteBuf {
        let mut buf = ByteBuf::new(Input::Plain(rest), 0, len_hint);
        buf.capacity = capacity.max(MIN_BUFFER);
        buf.window = window.max(MIN_BUFFER);
        buf.store = Store::Mapped(map);
        buf
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
        self.store
            .bytes()
            .get(self.start..self.end)
            .unwrap_or_default()
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
        if let Store::Mapped(map) = &mut self.store {
            map.follow_truncation();
            let len = map.len();
            if self.start.saturating_add(n) <= len {
                // Within the map: show the next window.
                self.end = self.start.saturating_add(n.max(self.window)).min(len);
                map.window_moved(self.start, self.end);
                return Ok(true);
            }
            // The map ends first: the rest (if the file grew) comes by `read()`, after the
            // mapped bytes not yet consumed.
            let tail = map.bytes().get(self.start..).unwrap_or_default();
            let mut owned = vec![0; self.capacity.max(tail.len())];
            if let Some(front) = owned.get_mut(..tail.len()) {
                front.copy_from_slice(tail);
            }
            self.base = self.base.saturating_add(self.start as u64);
            self.end = tail.len();
            self.start = 0;
            self.store = Store::Owned(owned);
        }
        if self.eof {
            return Ok(false);
        }
        let Store::Owned(buf) = &mut self.store else {
            return Ok(false);
        };
        if self.start.saturating_add(n) > buf.len() {
            // The record does not fit after `start`: move the unconsumed tail to the front.
            buf.copy_within(self.start..self.end, 0);
            self.base = self.base.saturating_add(self.start as u64);
            self.end -= self.start;
            self.start = 0;
        }
        while self.end - self.start < n {
            if self.end == buf.len() {
                // Only reached when `n` exceeds the whole buffer: grow with the data.
                let new_len = buf.len().saturating_mul(2).min(n).max(self.end + 1);
                buf.resize(new_len, 0);
            }
            let Some(space) = buf.get_mut(self.end..) else {
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
        self.store.bytes().get(from..to).unwrap_or_default()
    }
}
