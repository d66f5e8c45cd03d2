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
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
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

pub(crate) struct PcapReader {
    buf: ByteBuf,
    endian: Endian,
    /// Sub-second field unit in nanoseconds: 1000 for µs files, 1 for ns files.
    frac_ns: u64,
    record_header_len: usize,
    linktype: u32,
    /// Files older than format 2.3 may hold caplen and orig_len in swapped order.
    maybe_swapped_lengths: bool,
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
        let magic = word(&h, 0);
        let (endian, raw) = if u32::from_le_bytes(magic) & 0xffff_0000 == 0xa1b2_0000 {
            (Endian::Little, u32::from_le_bytes(magic))
        } else {
            (Endian::Big, u32::from_be_bytes(magic))
        };
        let (frac_ns, record_header_len) = match raw {
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
        let linktype = endian.u32(word(&h, 20)) & 0xffff;
        Ok(PcapReader {
            buf,
            endian,
            frac_ns,
            record_header_len,
            linktype,
            maybe_swapped_lengths: minor < 3,
        })
    }

    /// A record header's captured and wire lengths.
    #[inline]
    fn lengths(&self, h: &[u8; 16]) -> (u32, u32) {
        let (caplen, orig_len) = (self.endian.u32(word(h, 8)), self.endian.u32(word(h, 12)));
        if self.maybe_swapped_lengths && caplen > orig_len {
            // Before format 2.3 the two lengths were written the other way round; a captured
            // length above the wire length can only mean that (libpcap and wiretap agree).
            (orig_len, caplen)
        } else {
            (caplen, orig_len)
        }
    }
}

impl PacketSource for PcapReader {
    #[inline]
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        let at = self.buf.offset();
        let hdr_len = self.record_header_len;
        if !self.buf.fill(hdr_len).map_err(|e| io_error(&self.buf, e))? {
            return if self.buf.available().is_empty() {
                Ok(None)
            } else {
                Err(CaptureError::new(at, CaptureErrorKind::Truncated))
            };
        }
        let Some(h) = self.buf.available().first_chunk::<16>().copied() else {
            return Err(CaptureError::new(at, CaptureErrorKind::Truncated));
        };
        let e = self.endian;
        let secs = u64::from(e.u32(word(&h, 0)));
        let frac = u64::from(e.u32(word(&h, 4)));
        let (caplen, orig_len) = self.lengths(&h);
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
        let ts = Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(frac.saturating_mul(self.frac_ns)),
        );
        let linktype = self.linktype;
        let record = self.buf.take(total);
        let data = record.get(hdr_len..).unwrap_or_default();
        Ok(Some(Frame {
            ts,
            linktype,
            orig_len,
            data,
            ifindex: 0,
        }))
    }

    #[inline]
    fn frame_ready(&self) -> bool {
        let b = self.buf.available();
        let Some(h) = b.first_chunk::<16>() else {
            return false;
        };
        b.len() >= self.record_header_len + self.lengths(h).0 as usize
    }

    fn position(&self) -> u64 {
        self.buf.position()
    }

    fn len_hint(&self) -> Option<u64> {
        self.buf.len_hint()
    }
}
