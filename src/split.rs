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
//! it does not grow a queue). The file is read with `read()` into the buffers, not mapped as
//! one reader maps it: with workers on the other cores, each stretch of the map let go sent
//! them TLB shoot-downs, and the copy into buffers that stay in cache measured cheaper
//! (README, "Several cores").

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

/// A worker asks for the lines of its record this many records on: the reading thread's
/// core read the record last (its lines are not in this core's cache), and a worker's
/// records are not next to each other, so the hardware does not fetch them ahead.
const PREFETCH_AHEAD: usize = 4;

/// Asks for the cache lines of the record at `at` in `bytes`: its header and the frame's
/// first bytes (the link, IP and transport headers the meter decodes). A hint only.
#[inline(always)]
fn prefetch_record(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in [at, at + 64] {
        if let Some(b) = bytes.get(line) {
            safe_arch::prefetch_t0(b);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// Chunks in the ring beyond one per worker.
const SPARE_CHUNKS: usize = 6;

/// A buffer of the ring: the buffer `read()` fills, and how much of it holds the chunk. (The
/// buffer keeps its length: it is zeroed once, not at every reading.)
#[derive(Default)]
struct Chunk {
    read: Vec<u8>,
    filled: usize,
}

impl Chunk {
    #[inline]
    fn bytes(&self) -> &[u8] {
        self.read.get(..self.filled).unwrap_or_default()
    }
}

/// What the reading thread hands a worker.
enum Part {
    /// A chunk of whole records (its first byte at `base` in the file) and the offsets of
    /// this worker's records in it, in file order.
    Chunk {
        bytes: Arc<Chunk>,
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
    bytes: Arc<Chunk>,
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
        let mut ring: Vec<Arc<Chunk>> = (0..n + SPARE_CHUNKS).map(|_| Arc::default()).collect();
        let ring_len = ring.len();
        let mut slot = 0;
        // Bytes read but not yet handed out (a record cut by the end of a chunk), and the
        // file offset of their first byte.
        let mut carry: Vec<u8> = Vec::new();
        let mut base = RecordLayout::FILE_HEADER_LEN as u64;
        let mut tick_sec = 0u64;
        let mut eof = false;
        let mut sizes = vec![0usize; n];
        let linktype = self.layout.linktype();
        let end = loop {
            // The next buffer of the ring, once every worker has let it go.
            let this = slot;
            slot = (slot + 1) % ring_len;
            let Some(chunk) = self.free(&mut ring[this]) else {
                break None;
            };
            if let Err(e) = self.fill_chunk(chunk, &carry, &mut eof) {
                break Some(CaptureError::new(base, CaptureErrorKind::Io(e)));
            }
            let buf = chunk.bytes();
            // (Each list sized from the last chunk's: grown record by record, it was copied
            // and reallocated a few times per chunk.)
            let mut lists: Vec<Vec<u32>> = sizes
                .iter()
                .map(|&len| Vec::with_capacity(len + len / 8 + 64))
                .collect();
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
            let whole = taken == buf.len();
            carry.clear();
            carry.extend_from_slice(&buf[taken..]);
            let chunk_base = base;
            base += taken as u64;
            let shared = Arc::clone(&ring[this]);
            for ((tx, mine), size) in self.to.iter().zip(lists).zip(&mut sizes) {
                *size = mine.len();
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
                break (!whole).then(|| CaptureError::new(base, CaptureErrorKind::Truncated));
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
    fn free<'a>(&self, slot: &'a mut Arc<Chunk>) -> Option<&'a mut Chunk> {
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

    /// Makes `chunk` the next stretch of the file: `carry` (bytes of a record cut by the end
    /// of the last chunk) and what `read()` brings after it. Sets `eof` when the file ends.
    fn fill_chunk(
        &mut self,
        chunk: &mut Chunk,
        carry: &[u8],
        eof: &mut bool,
    ) -> std::io::Result<()> {
        let buf = &mut chunk.read;
        // A record larger than a chunk: room for it whole.
        let need = self.record_len(carry).unwrap_or(0).max(CHUNK);
        if buf.len() < need {
            buf.resize(need, 0);
        }
        buf[..carry.len()].copy_from_slice(carry);
        chunk.filled = fill(&mut self.file, buf, carry.len(), eof)?;
        Ok(())
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
    /// Makes the next listed record current; false at the end of the input.
    #[inline(always)]
    fn ready(&mut self) -> bool {
        self.next < self.mine.len() || self.take_chunk()
    }

    /// This chunk is done: takes the next one (letting this one go first: the reading thread
    /// may be waiting for it); false at the end of the input.
    #[cold]
    #[inline(never)]
    fn take_chunk(&mut self) -> bool {
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
        let bytes = self.bytes.bytes();
        if let Some(&ahead) = self.mine.get(self.next + PREFETCH_AHEAD) {
            prefetch_record(bytes, (ahead & !CLOCK_ONLY) as usize);
        }
        let record = bytes.get(at..).unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;
    use qof::decode::DecodeConfig;

    /// 4,000 Ethernet/IPv4/UDP frames of 60 to 1,500 bytes between 200 address pairs (about
    /// 3 MB: several chunks, records cut by their ends), one a millisecond.
    fn frames() -> Vec<Vec<u8>> {
        (0..4000u32)
            .map(|i| {
                let len = 60 + (i as usize * 7919) % 1441;
                let mut f = vec![0u8; len];
                f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
                f[14] = 0x45;
                f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
                f[22] = 64;
                f[23] = 17;
                f[26..30].copy_from_slice(&[10, 0, (i % 200) as u8, 1]);
                f[30..34].copy_from_slice(&[10, 1, (i % 13) as u8, 2]);
                f[34..36].copy_from_slice(&1000u16.to_be_bytes());
                f[36..38].copy_from_slice(&53u16.to_be_bytes());
                f
            })
            .collect()
    }

    /// A little-endian µs pcap file of `frames`, and where each record ends.
    fn pcap(frames: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut b = Vec::new();
        for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        let mut ends = Vec::new();
        for (i, f) in frames.iter().enumerate() {
            let (secs, us) = (1_700_000_000 + i as u32 / 1000, (i as u32 % 1000) * 1000);
            for w in [secs, us, f.len() as u32, f.len() as u32] {
                b.extend_from_slice(&w.to_le_bytes());
            }
            b.extend_from_slice(f);
            ends.push(b.len());
        }
        (b, ends)
    }

    /// Every frame two workers own of the file at `path` (in file order), and the error the
    /// first reports; `change` runs after the file was opened, before it is read.
    fn read_split(path: &std::path::Path, change: impl FnOnce()) -> (Vec<Vec<u8>>, Option<String>) {
        let records = qof::capture::open_records(path).expect("opens");
        let (splitter, feeds) = split(records.expect("plain pcap"), 2, 0, Arc::default());
        change();
        let router = Router::new(2, DecodeConfig::default(), None);
        let reader = std::thread::spawn(move || splitter.run(router));
        let workers: Vec<_> = feeds
            .into_iter()
            .map(|mut feed| {
                std::thread::spawn(move || {
                    let mut own = Vec::new();
                    loop {
                        let mine = feed.owns_next() != Some(false);
                        match feed.next_frame() {
                            Ok(Some(f)) if mine => {
                                let data = f.data.to_vec();
                                own.push((feed.position(), data));
                            }
                            Ok(Some(_)) => {}
                            Ok(None) => return (own, None),
                            Err(e) => return (own, Some(format!("{:?} at {}", e.kind, e.offset))),
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut error = None;
        for (w, h) in workers.into_iter().enumerate() {
            let (own, e) = h.join().expect("worker");
            all.extend(own);
            if w == 0 {
                error = e;
            } else {
                assert!(
                    e.is_none(),
                    "only the first worker reports the error: {e:?}"
                );
            }
        }
        reader.join().expect("reader");
        all.sort_by_key(|(at, _)| *at);
        (all.into_iter().map(|(_, f)| f).collect(), error)
    }

    #[test]
    fn a_file_of_several_chunks_gives_every_frame_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let frames = frames();
        let (bytes, _) = pcap(&frames);
        assert!(bytes.len() > 2 * CHUNK);
        let path = dir.path().join("whole.pcap");
        std::fs::write(&path, &bytes).expect("write");
        let (got, error) = read_split(&path, || {});
        assert_eq!(error, None);
        assert_eq!(got.len(), frames.len());
        assert!(got == frames, "frames differ");
    }

    /// A file still being written (its end, when opened, inside a record or between two): it
    /// is read to its new end.
    #[test]
    fn a_file_grown_after_it_was_opened_is_read_to_its_new_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let frames = frames();
        let (bytes, ends) = pcap(&frames);
        for cut in [ends[2500], ends[2500] + 9, ends[3999] - 1] {
            let path = dir.path().join(format!("growing-{cut}.pcap"));
            std::fs::write(&path, &bytes[..cut]).expect("write");
            let (got, error) = read_split(&path, || {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("append");
                f.write_all(&bytes[cut..]).expect("append the rest");
            });
            assert_eq!(error, None, "cut {cut}");
            assert_eq!(got.len(), frames.len(), "cut {cut}");
            assert!(got == frames, "cut {cut}: frames differ");
        }
    }

    /// A file truncated by another process after it was opened: the frames before the new
    /// end, then that end (a cut record: truncated).
    #[test]
    fn a_file_truncated_after_it_was_opened_ends_where_it_now_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let frames = frames();
        let (bytes, ends) = pcap(&frames);
        for (keep, whole, error) in [
            (ends[1999], 2000, None),
            (
                ends[1999] + 20,
                2000,
                Some(format!("Truncated at {}", ends[1999])),
            ),
            (90, 0, Some("Truncated at 24".to_string())),
        ] {
            let path = dir.path().join(format!("shrinking-{keep}.pcap"));
            std::fs::write(&path, &bytes).expect("write");
            let (got, got_error) = read_split(&path, || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .expect("open for writing")
                    .set_len(keep as u64)
                    .expect("truncate");
            });
            assert_eq!(got_error, error, "keep {keep}");
            assert_eq!(got.len(), whole, "keep {keep}");
            assert!(got == frames[..whole], "keep {keep}: frames differ");
        }
    }
}
