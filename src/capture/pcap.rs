//! The classic libpcap file format: a 24-byte file header, then records of a 16-byte header
//! (24 bytes in the "modified pcap" variant) followed by `caplen` bytes of frame.
//!
//! Invariants: every returned frame lies wholly inside the buffer; a record header is never
//! trusted beyond [`MAX_CAPLEN`]; the reader consumes at least one record per returned frame,
//! so it always makes progress.

use super::input::ByteBuf;
use super::{io_error, CaptureError, CaptureErrorKind, Frame, PacketSource, MAX_CAPLEN};
use crate::time::Timestamp;

pub(crate) const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
pub(crate) const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// Alexey Kuznetsov's patched libpcap: eight more bytes per record (ifindex, protocol, type).
pub(crate) const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

const FILE_HEADER_LEN: usize = 24;

/// Byte order of the numbers in a file, fixed by its magic.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Endian {
    Little,
    Big,
}

impl Endian {
    #[inline]
    pub(crate) fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }
    #[inline]
    pub(crate) fn u32(self, b: [u8; 4]) -> u32 {
        // (A conditional byte swap, not two loads behind a branch: every record header is
        // read through this.)
        let v = u32::from_le_bytes(b);
        if matches!(self, Endian::Big) {
            v.swap_bytes()
        } else {
            v
        }
    }
}

/// The four bytes at `at` of a fixed-size header (in bounds by construction of the callers).
#[inline]
pub(crate) fn word<const N: usize>(h: &[u8; N], at: usize) -> [u8; 4] {
    let mut w = [0u8; 4];
    if let Some(src) = h.get(at..at + 4) {
        w.copy_from_slice(src);
    }
    w
}

/// How a classic pcap file lays out its records, from its file header: enough to read the
/// records out of bytes held anywhere (the chunks of a file read once and shared by the
/// workers) as [`PcapReader`] reads them.
#[derive(Clone, Copy, Debug)]
pub struct RecordLayout {
    endian: Endian,
    /// Sub-second field unit in nanoseconds: 1000 for µs files, 1 for ns files.
    frac_ns: u64,
    header_len: usize,
    linktype: u32,
    /// Files older than format 2.3 may hold caplen and orig_len in swapped order.
    maybe_swapped_lengths: bool,
}

/// A record, as [`RecordLayout::walk`] finds it: where its frame lies in the bytes walked.
#[derive(Clone, Copy, Debug)]
pub struct RecordAt {
    /// Offset of the record (its header) in the bytes walked.
    pub at: usize,
    pub secs: u64,
}

/// Why [`RecordLayout::walk`] stopped before the end of the bytes it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkEnd {
    /// The bytes end inside a record (or its header), or exactly after one.
    Partial,
    /// The caller's function said stop.
    Stopped,
    /// A record header whose captured length cannot be right.
    Malformed,
}

impl RecordLayout {
    /// The layout given by a file header. The caller has checked that the first four bytes
    /// are a pcap magic.
    fn of_file_header(h: &[u8; FILE_HEADER_LEN]) -> Result<RecordLayout, CaptureError> {
        let magic = word(h, 0);
        let (endian, raw) = if u32::from_le_bytes(magic) & 0xffff_0000 == 0xa1b2_0000 {
            (Endian::Little, u32::from_le_bytes(magic))
        } else {
            (Endian::Big, u32::from_be_bytes(magic))
        };
        let (frac_ns, header_len) = match raw {
            MAGIC_MICROS => (1_000, 16),
            MAGIC_NANOS => (1, 16),
            MAGIC_MODIFIED => (1_000, 24),
            _ => return Err(CaptureError::new(0, CaptureErrorKind::BadMagic(magic))),
        };
        let major = endian.u16([h[4], h[5]]);
        if major != 2 {
            return Err(CaptureError::new(
                4,
                CaptureErrorKind::Unsupported(format!(
                    "pcap version {major}.{} (only 2.x can be read)",
                    endian.u16([h[6], h[7]])
                )),
            ));
        }
        let minor = endian.u16([h[6], h[7]]);
        // The low 16 bits are the LINKTYPE_; the upper bits may carry FCS-length flags.
        let linktype = endian.u32(word(h, 20)) & 0xffff;
        Ok(RecordLayout {
            endian,
            frac_ns,
            header_len,
            linktype,
            maybe_swapped_lengths: minor < 3,
        })
    }

    /// The file header's length: where the first record starts.
    pub const FILE_HEADER_LEN: usize = FILE_HEADER_LEN;

    /// A record header's length (16, or 24 in the "modified" variant).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// A record header's four words (seconds, sub-second, captured and wire lengths) in host
    /// order: the file's byte order is looked at once per record, not once per word.
    #[inline]
    fn words(&self, h: &[u8; 16]) -> [u32; 4] {
        let w = [0, 4, 8, 12].map(|at| u32::from_le_bytes(word(h, at)));
        match self.endian {
            Endian::Little => w,
            Endian::Big => w.map(u32::swap_bytes),
        }
    }

    /// A record header's time.
    #[inline]
    pub fn timestamp(&self, h: &[u8; 16]) -> Timestamp {
        self.timestamp_of(self.words(h))
    }

    #[inline]
    fn timestamp_of(&self, [secs, frac, ..]: [u32; 4]) -> Timestamp {
        // (No overflow: secs < 2^32, so secs * 10^9 < 4.3 * 10^18, and frac * frac_ns <
        // 4.3 * 10^12; their sum stays below 2^64.)
        Timestamp(u64::from(secs) * 1_000_000_000 + u64::from(frac) * self.frac_ns)
    }

    /// A record header's captured and wire lengths.
    #[inline]
    pub fn lengths(&self, h: &[u8; 16]) -> (u32, u32) {
        self.lengths_of(self.words(h))
    }

    #[inline]
    fn lengths_of(&self, [.., caplen, orig_len]: [u32; 4]) -> (u32, u32) {
        if self.maybe_swapped_lengths && caplen > orig_len {
            // Before format 2.3 the two lengths were written the other way round; a captured
            // length above the wire length can only mean that (libpcap and wiretap agree).
            (orig_len, caplen)
        } else {
            (caplen, orig_len)
        }
    }

    /// The frame of the whole record at the start of `b` (its header read by
    /// [`walk`](RecordLayout::walk) before), `None` if `b` does not hold it whole.
    #[inline]
    pub fn frame<'a>(&self, b: &'a [u8]) -> Option<Frame<'a>> {
        let w = self.words(b.first_chunk::<16>()?);
        let (caplen, orig_len) = self.lengths_of(w);
        let data = b.get(self.header_len..self.header_len + caplen as usize)?;
        Some(Frame {
            ts: self.timestamp_of(w),
            linktype: self.linktype,
            orig_len,
            data,
            ifindex: 0,
        })
    }

    /// Walks the whole records at the start of `b`, giving `each` every record and its frame's
    /// bytes, until `each` says stop (true), a record is not whole in `b`, or a record header
    /// is damaged. Returns where it stopped (the offset of the record not taken) and why.
    /// Every worker of a file runs this on every frame of it (directly or through the one
    /// thread that reads the file for all): it reads only what it must.
    ///
    /// Generic over `each`, not a `dyn` call per record: the thread that reads a file for
    /// the workers runs its routing in `each`, inlined here (a call per record was about 18
    /// of its instructions a packet).
    #[inline]
    pub fn walk<F: FnMut(RecordAt, &[u8]) -> bool + ?Sized>(
        &self,
        b: &[u8],
        each: &mut F,
    ) -> (usize, WalkEnd) {
        // A sub-second field below this is less than a second: the record's seconds are
        // the header's (a larger one carries over, as in `timestamp`).
        let whole = 1_000_000_000 / self.frac_ns;
        let mut at = 0;
        while let Some(h) = b.get(at..).and_then(|r| r.first_chunk::<16>()) {
            let w = self.words(h);
            let caplen = self.lengths_of(w).0;
            if caplen > MAX_CAPLEN {
                return (at, WalkEnd::Malformed);
            }
            let from = at + self.header_len;
            let Some(data) = b.get(from..from + caplen as usize) else {
                break;
            };
            let secs = match u64::from(w[1]) < whole {
                true => u64::from(w[0]),
                false => self.timestamp_of(w).secs(),
            };
            if each(RecordAt { at, secs }, data) {
                return (at, WalkEnd::Stopped);
            }
            at = from + caplen as usize;
        }
        (at, WalkEnd::Partial)
    }
}

/// Whether a file's first four bytes are a classic pcap magic, in either byte order.
pub(crate) fn is_pcap_magic(magic: [u8; 4]) -> bool {
    let is = |m: u32| matches!(m, MAGIC_MICROS | MAGIC_NANOS | MAGIC_MODIFIED);
    is(u32::from_le_bytes(magic)) || is(u32::from_be_bytes(magic))
}

/// A plain (not compressed) classic pcap file at `path`, opened and its file header read:
/// its record layout and the file, positioned at the first record. `None` for anything else
/// (pcapng, gzip, a FIFO): the caller reads that another way.
pub fn open_records(
    path: &std::path::Path,
) -> Result<Option<(RecordLayout, std::fs::File)>, CaptureError> {
    use std::io::Read;
    let cannot_open = |e| CaptureError {
        offset: 0,
        kind: CaptureErrorKind::Open(e),
        file: Some(path.display().to_string()),
    };
    let mut file = std::fs::File::open(path).map_err(cannot_open)?;
    if !file.metadata().map_err(cannot_open)?.is_file() {
        return Ok(None);
    }
    let mut h = [0u8; FILE_HEADER_LEN];
    if file.read_exact(&mut h).is_err() {
        return Ok(None); // (too short: the usual reader says why)
    }
    if !is_pcap_magic(word(&h, 0)) {
        return Ok(None);
    }
    Ok(Some((RecordLayout::of_file_header(&h)?, file)))
}

pub(crate) struct PcapReader {
    buf: ByteBuf,
    layout: RecordLayout,
}

impl PcapReader {
    /// Reads the file header. The caller has checked that the first four bytes are a pcap magic.
    pub(crate) fn new(mut buf: ByteBuf) -> Result<PcapReader, CaptureError> {
        if !buf.fill(FILE_HEADER_LEN).map_err(|e| io_error(&buf, e))? {
            return Err(CaptureError::new(0, CaptureErrorKind::Truncated));
        }
        let Some(h) = buf
            .take(FILE_HEADER_LEN)
            .first_chunk::<FILE_HEADER_LEN>()
            .copied()
        else {
            return Err(CaptureError::new(0, CaptureErrorKind::Truncated));
        };
        let layout = RecordLayout::of_file_header(&h)?;
        Ok(PcapReader { buf, layout })
    }

    /// [`PacketSource::next_frame`] when the next record is not buffered whole: read more,
    /// or say why not (out of line: the usual case stays small).
    #[cold]
    #[inline(never)]
    fn next_frame_refilled(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let at = self.buf.offset();
        let hdr_len = self.layout.header_len;
        if !self.buf.fill(hdr_len).map_err(|e| io_error(&self.buf, e))? {
            return if self.buf.available().is_empty() {
                Ok(None)
            } else {
                Err(CaptureError::new(at, CaptureErrorKind::Truncated))
            };
        }
        let Some(h) = self.buf.available().first_chunk::<16>() else {
            return Err(CaptureError::new(at, CaptureErrorKind::Truncated));
        };
        let caplen = self.layout.lengths(h).0;
        if caplen > MAX_CAPLEN {
            return Err(CaptureError::new(
                at,
                CaptureErrorKind::Malformed("record length over 16 MiB"),
            ));
        }
        let total = hdr_len + caplen as usize;
        if !self.buf.fill(total).map_err(|e| io_error(&self.buf, e))? {
            return Err(CaptureError::new(at, CaptureErrorKind::Truncated));
        }
        let layout = self.layout;
        let record = self.buf.take(total);
        Ok(layout.frame(record))
    }
}

impl PacketSource for PcapReader {
    #[inline]
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        // The usual case first: the whole record is already buffered (its header read once).
        if let Some(h) = self.buf.available().first_chunk::<16>() {
            let layout = self.layout;
            let w = layout.words(h);
            let (caplen, orig_len) = layout.lengths_of(w);
            let total = layout.header_len + caplen as usize;
            if caplen <= MAX_CAPLEN && self.buf.available().len() >= total {
                let record = self.buf.take(total);
                return Ok(Some(Frame {
                    ts: layout.timestamp_of(w),
                    linktype: layout.linktype,
                    orig_len,
                    data: record.get(layout.header_len..).unwrap_or_default(),
                    ifindex: 0,
                }));
            }
        }
        self.next_frame_refilled()
    }

    #[inline]
    fn frame_ready(&self) -> bool {
        let b = self.buf.available();
        let Some(h) = b.first_chunk::<16>() else {
            return false;
        };
        b.len() >= self.layout.header_len + self.layout.lengths(h).0 as usize
    }

    fn pass_over(&mut self, keep: &mut dyn FnMut(u32, u64, &[u8]) -> bool) {
        let linktype = self.layout.linktype;
        let (at, _) = self.layout.walk(self.buf.available(), &mut |r, data| {
            keep(linktype, r.secs, data)
        });
        self.buf.take(at);
    }

    fn position(&self) -> u64 {
        self.buf.position()
    }

    fn len_hint(&self) -> Option<u64> {
        self.buf.len_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file header and one record of `caplen` bytes whose header says (`first`, `second`)
    /// for its two length fields, in either byte order.
    fn file(big: bool, magic: u32, minor: u16, first: u32, second: u32) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut b = Vec::new();
        b.extend(w32(magic));
        b.extend(w16(2));
        b.extend(w16(minor));
        b.extend([0; 12]); // thiszone, sigfigs, snaplen
        b.extend(w32(1)); // Ethernet
        b.extend(w32(1_700_000_000));
        b.extend(w32(123_456));
        b.extend(w32(first));
        b.extend(w32(second));
        b.extend(vec![0xab; first.min(second) as usize]);
        b
    }

    fn layout_and_record(b: &[u8]) -> (RecordLayout, &[u8]) {
        let h = b.first_chunk::<FILE_HEADER_LEN>().expect("a file header");
        let layout = RecordLayout::of_file_header(h).expect("a pcap header");
        (layout, &b[FILE_HEADER_LEN..])
    }

    #[test]
    fn record_headers_read_in_either_byte_order() {
        for big in [false, true] {
            for (magic, ns) in [(MAGIC_MICROS, 123_456_000), (MAGIC_NANOS, 123_456)] {
                let b = file(big, magic, 4, 40, 60);
                let (layout, rec) = layout_and_record(&b);
                let f = layout.frame(rec).expect("the record is whole");
                assert_eq!((f.data.len(), f.orig_len), (40, 60), "big {big}");
                assert_eq!(
                    f.ts.nanos(),
                    1_700_000_000 * 1_000_000_000 + ns,
                    "big {big}"
                );
                let mut seen = Vec::new();
                let (at, end) = layout.walk(rec, &mut |r, data| {
                    seen.push((r.at, r.secs, data.len()));
                    false
                });
                assert_eq!(seen, [(0, 1_700_000_000, 40)], "big {big}");
                assert_eq!((at, end), (rec.len(), WalkEnd::Partial));
            }
        }
    }

    #[test]
    fn lengths_of_files_before_format_2_3_may_be_swapped() {
        for big in [false, true] {
            // Format 2.2: a captured length over the wire length means the two were written
            // the other way round.
            let b = file(big, MAGIC_MICROS, 2, 60, 40);
            let (layout, rec) = layout_and_record(&b);
            let f = layout.frame(rec).expect("the record is whole");
            assert_eq!((f.data.len(), f.orig_len), (40, 60), "big {big}");
            // Format 2.4: taken as written (the record is then not whole).
            let b = file(big, MAGIC_MICROS, 4, 60, 40);
            let (layout, rec) = layout_and_record(&b);
            assert_eq!(
                layout.lengths(rec.first_chunk().expect("a header")),
                (60, 40)
            );
            assert!(layout.frame(rec).is_none(), "big {big}");
        }
    }
}
