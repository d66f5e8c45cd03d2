//! A classic pcap file read once for every worker (`--workers N`, no `--filter`): one thread
//! reads the file into chunks of whole records, picks each record's worker, and hands every
//! worker the same chunk (shared, not copied) with the list of its own records in it. A
//! worker reads its own frames where they lie, and nothing else: the file is read once and
//! each frame hashed once, where each worker reading the file itself read and hashed every
//! frame of it (README, "Several cores").
//!
//! The workers' clocks move as one meter's would: the first record of each new second that a
//! meter would take (it decodes) is listed for every worker (for all but its owner only to
//! move the clock), so idle flows end at the packet times of `--workers 1`. A record the
//! file ends inside, a damaged record header or a read error ends the input there, as
//! [`PacketSource::next_frame`] of the usual reader ends it; the error goes to the first
//! worker, whose input error is the run's.
//!
//! Memory is bounded: [`CHUNK`]-sized buffers in a ring, a buffer read into again only once
//! every worker has let it go (the reader waits meanwhile: a slow worker slows the reading,
//! it does not grow a queue).

use crate::route::Router;
use qof::capture::{
    CaptureError, CaptureErrorKind, Frame, PacketSource, RecordLayout, WalkEnd, MAX_CAPLEN,
};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// Bytes read at a time. A record larger than this gets a chunk of its own size.
const CHUNK: usize = 1 << 20;

/// An entry of a worker's list: the record only moves the worker's clock (another's record,
/// the first of a new second).
const CLOCK_ONLY: u32 = 1 << 31;

/// Chunks in the ring beyond one per worker.
const SPARE_CHUNKS: usize = 6;

/// What the reading thread hands a worker.
enum Part {
    /// A chunk of whole records (its first byte at `base` in the file) and the offsets of
    /// this worker's records in it, in file order.
    Chunk {
        bytes: Arc<Vec<u8>>,
        base: u64,
        mine: Vec<u32>,
    },
    /// The end of the input, with the error that ended it early.
    End(Option<CaptureError>),
}

/// The reading thread's side: the file, where it is, and one queue per worker.
pub struct Splitter {
    layout: RecordLayout,
    file: std::fs::File,
    to: Vec<SyncSender<Part>>,
    halt: Arc<AtomicBool>,
    /// The ingress interface of the file's frames (part of the flow key).
    ingress: u32,
}

/// A worker's side: the frames the reading thread listed for it.
pub struct SplitFeed {
    layout: RecordLayout,
    from: Receiver<Part>,
    bytes: Arc<Vec<u8>>,
    base: u64,
    mine: Vec<u32>,
    next: usize,
    position: u64,
    len_hint: Option<u64>,
    ended: bool,
    /// The error that ended the input, until returned.
    error: Option<CaptureError>,
}

/// The reading thread and `workers` feeds for the plain pcap file `file` (positioned after its
/// file header), whose frames came in on interface `ingress`; `halt` stops the reading.
pub fn split(
    (layout, file): (RecordLayout, std::fs::File),
    workers: usize,
    ingress: u32,
    halt: Arc<AtomicBool>,
) -> (Splitter, Vec<SplitFeed>) {
    let len_hint = file.metadata().ok().map(|m| m.len());
    let mut to = Vec::with_capacity(workers);
    let mut feeds = Vec::with_capacity(workers);
    for _ in 0..workers {
        // (The ring bounds what is in flight; the queue only needs to hold its share.)
        let (tx, rx) = mpsc::sync_channel(workers + SPARE_CHUNKS);
        to.push(tx);
        feeds.push(SplitFeed {
            layout,
            from: rx,
            bytes: Arc::default(),
            base: 0,
            mine: Vec::new(),
            next: 0,
            position: RecordLayout::FILE_HEADER_LEN as u64,
            len_hint,
            ended: false,
            error: None,
        });
    }
    let splitter = Splitter {
        layout,
        file,
        to,
        halt,
        ingress,
    };
    (splitter, feeds)
}

impl Splitter {
    /// Reads the file to its end (or until halted, or until no worker listens), sharing each
    /// chunk out; `router` picks each record's worker.
    pub fn run(mut self, mut router: Router) {
        let n = self.to.len();
        let mut ring: Vec<Arc<Vec<u8>>> = (0..n + SPARE_CHUNKS)
            .map(|_| Arc::new(Vec::new()))
            .collect();
        let ring_len = ring.len();
        let mut slot = 0;
        // Bytes read but not yet handed out (a record cut by the end of a chunk), and the
        // file offset of their first byte.
        let mut carry: Vec<u8> = Vec::new();
        let mut base = RecordLayout::FILE_HEADER_LEN as u64;
        let mut tick_sec = 0u64;
        let mut eof = false;
        let linktype = self.layout.linktype();
        let end = loop {
            // The next buffer of the ring, once every worker has let it go.
            let this = slot;
            slot = (slot + 1) % ring_len;
            let Some(buf) = self.free(&mut ring[this]) else {
                break None;
            };
            // A record larger than a chunk: room for it whole. (The buffer keeps its length:
            // it is zeroed once, not at every reading.)
            let need = self.record_len(&carry).unwrap_or(0).max(CHUNK);
            if buf.len() < need {
                buf.resize(need, 0);
            }
            buf[..carry.len()].copy_from_slice(&carry);
            let filled = match fill(&mut self.file, buf, carry.len(), &mut eof) {
                Ok(filled) => filled,
                Err(e) => break Some(CaptureError::new(base, CaptureErrorKind::Io(e))),
            };
            let buf = &buf[..filled];
            let mut lists: Vec<Vec<u32>> = (0..n).map(|_| Vec::with_capacity(256)).collect();
            let (taken, why) = self.layout.walk(buf, &mut |r, data| {
                if r.secs > tick_sec && router.moves_clock(linktype, data, self.ingress) {
                    // The first record of a new second that a meter would take: every
                    // worker's clock moves.
                    tick_sec = r.secs;
                    let owner = router.of_frame(linktype, data);
                    for (w, list) in lists.iter_mut().enumerate() {
                        list.push(r.at as u32 | if w == owner { 0 } else { CLOCK_ONLY });
                    }
                } else {
                    lists[router.of_frame(linktype, data)].push(r.at as u32);
                }
                false
            });
            carry.clear();
            carry.extend_from_slice(&buf[taken..]);
            let chunk_base = base;
            base += taken as u64;
            let shared = Arc::clone(&ring[this]);
            for (tx, mine) in self.to.iter().zip(lists) {
                if !mine.is_empty() {
                    let part = Part::Chunk {
                        bytes: Arc::clone(&shared),
                        base: chunk_base,
                        mine,
                    };
                    if tx.send(part).is_err() {
                        return; // the workers have gone
                    }
                }
            }
            if why == WalkEnd::Malformed {
                break Some(CaptureError::new(
                    base,
                    CaptureErrorKind::Malformed("record length over 16 MiB"),
                ));
            }
            if eof {
                break (!carry.is_empty())
                    .then(|| CaptureError::new(base, CaptureErrorKind::Truncated));
            }
        };
        for (w, tx) in self.to.iter().enumerate() {
            let error = match w {
                0 => end
                    .as_ref()
                    .map(|e| CaptureError::new(e.offset, clone_kind(&e.kind))),
                _ => None,
            };
            let _ = tx.send(Part::End(error));
        }
    }

    /// The buffer of `slot` to read into, once no worker holds it; `None` when halted.
    fn free<'a>(&self, slot: &'a mut Arc<Vec<u8>>) -> Option<&'a mut Vec<u8>> {
        let mut spins = 0u32;
        while Arc::strong_count(slot) > 1 {
            if self.halt.load(Ordering::Relaxed) {
                return None;
            }
            spins += 1;
            if spins < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        if self.halt.load(Ordering::Relaxed) {
            return None;
        }
        Arc::get_mut(slot)
    }

    /// The whole length of the record that `b` starts with, when its header is there and
    /// sane.
    fn record_len(&self, b: &[u8]) -> Option<usize> {
        let (caplen, _) = self.layout.lengths(b.first_chunk::<16>()?);
        (caplen <= MAX_CAPLEN).then(|| self.layout.header_len() + caplen as usize)
    }
}

/// Reads into `buf` after its first `from` bytes until it is full or the file ends; how many
/// bytes it then holds.
fn fill(
    file: &mut std::fs::File,
    buf: &mut [u8],
    from: usize,
    eof: &mut bool,
) -> std::io::Result<usize> {
    let mut end = from;
    while end < buf.len() && !*eof {
        match file.read(&mut buf[end..]) {
            Ok(0) => *eof = true,
            Ok(got) => end += got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(end)
}

/// A copy of an error's kind for the worker that reports it (I/O errors by their kind and
/// message).
fn clone_kind(kind: &CaptureErrorKind) -> CaptureErrorKind {
    match kind {
        CaptureErrorKind::Io(e) => {
            CaptureErrorKind::Io(std::io::Error::new(e.kind(), e.to_string()))
        }
        CaptureErrorKind::Malformed(why) => CaptureErrorKind::Malformed(why),
        _ => CaptureErrorKind::Truncated,
    }
}

impl SplitFeed {
    /// Makes the next listed record current, taking the next chunk once this one is done
    /// (and letting this one go first: the reading thread may be waiting for it); false at
    /// the end of the input.
    fn ready(&mut self) -> bool {
        while self.next == self.mine.len() {
            if self.ended {
                return false;
            }
            self.bytes = Arc::default();
            match self.from.recv() {
                Ok(Part::Chunk { bytes, base, mine }) => {
                    (self.bytes, self.base, self.mine, self.next) = (bytes, base, mine, 0);
                }
                Ok(Part::End(error)) => (self.ended, self.error) = (true, error),
                Err(_) => self.ended = true,
            }
        }
        true
    }
}

impl PacketSource for SplitFeed {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if !self.ready() {
            return match self.error.take() {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let at = (self.mine[self.next] & !CLOCK_ONLY) as usize;
        self.next += 1;
        self.position = self.base + at as u64;
        let record = self.bytes.get(at..).unwrap_or_default();
        // (The reading thread listed only whole records.)
        Ok(self.layout.frame(record))
    }

    fn owns_next(&mut self) -> Option<bool> {
        Some(!self.ready() || self.mine[self.next] & CLOCK_ONLY == 0)
    }

    fn position(&self) -> u64 {
        self.position
    }

    fn len_hint(&self) -> Option<u64> {
        self.len_hint
    }
}
