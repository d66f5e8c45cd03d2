//! The pcapng format: a sequence of blocks `type, total_length, body, total_length`.
//!
//! Each Section Header Block fixes the byte order of the blocks after it and starts a new list of
//! interfaces (Interface Description Blocks give each interface its link type, snap length and
//! timestamp unit). Packets come from Enhanced, Simple and the obsolete Packet blocks; every other
//! block is checked for framing and skipped.
//!
//! Invariants: a block is used only after its length fields were checked (multiple of 4, at
//! least the type's minimum, at most [`MAX_BLOCK_LEN`], trailer equal to header) and the whole
//! block is in the buffer; a frame never extends past its block; every loop iteration consumes
//! a whole block, so the reader always makes progress.

use super::input::ByteBuf;
use super::pcap::{word, Endian};
use super::{io_error, CaptureError, CaptureErrorKind, Frame, PacketSource, MAX_CAPLEN};
use crate::time::Timestamp;

pub(crate) const SHB_TYPE: u32 = 0x0a0d_0d0a;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const IDB_TYPE: u32 = 1;
const PB_TYPE: u32 = 2;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;

/// Largest block we accept: the largest frame plus generous room for options.
const MAX_BLOCK_LEN: u32 = MAX_CAPLEN + 256 * 1024;
/// More interfaces than this in one section is not a real capture.
const MAX_INTERFACES: usize = 1 << 16;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

/// How an interface's raw 64-bit timestamps become nanoseconds.
#[derive(Clone, Copy, Debug)]
enum TsUnit {
    /// One unit is this many nanoseconds (resolutions of 10^-9 and coarser).
    NanosPerUnit(u64),
    /// Finer or binary resolutions: this many units per second.
    UnitsPerSec(u128),
}

impl TsUnit {
    fn from_tsresol(v: u8) -> TsUnit {
        let exp = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            // 2^-exp seconds; exp <= 127 so the power fits in u128.
            TsUnit::UnitsPerSec(1u128 << exp)
        } else if exp <= 9 {
            TsUnit::NanosPerUnit(10u64.pow(9 - exp))
        } else {
            TsUnit::UnitsPerSec(10u128.checked_pow(exp).unwrap_or(u128::MAX))
        }
    }

    #[inline]
    fn to_nanos(self, raw: u64) -> u128 {
        match self {
            TsUnit::NanosPerUnit(n) => u128::from(raw) * u128::from(n),
            TsUnit::UnitsPerSec(per_sec) => {
                let raw = u128::from(raw);
                let secs = raw / per_sec;
                // frac < per_sec; scale it in two steps where one would overflow.
                let frac = raw % per_sec;
                let frac_ns = match frac.checked_mul(1_000_000_000) {
                    Some(x) => x / per_sec,
                    None => frac / (per_sec / 1_000_000_000),
                };
                secs * 1_000_000_000 + frac_ns
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    unit: TsUnit,
    /// if_tsoffset, in seconds, added to every timestamp.
    offset_secs: i64,
}

impl Interface {
    #[inline]
    fn timestamp(&self, high: u32, low: u32) -> Timestamp {
        let raw = (u64::from(high) << 32) | u64::from(low);
        if let (TsUnit::NanosPerUnit(n), 0) = (self.unit, self.offset_secs) {
            // The usual case (micro- or nanoseconds, no offset) in 64 bits.
            if let Some(ns) = raw.checked_mul(n) {
                return Timestamp(ns);
            }
        }
        let mut ns = self.unit.to_nanos(raw) as i128;
        if self.offset_secs != 0 {
            ns += i128::from(self.offset_secs) * 1_000_000_000;
        }
        Timestamp(ns.clamp(0, i128::from(u64::MAX)) as u64)
    }
}

pub(crate) struct PcapngReader {
    buf: ByteBuf,
    section: Section,
}

/// What the blocks read so far say about the ones to come.
struct Section {
    endian: Endian,
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, given to Simple Packet Blocks, which carry none.
    last_ts: Timestamp,
}

/// The byte order a section header's magic (its third word) gives, or `None` for a bad one.
fn section_endian(head: &[u8; 12]) -> Option<Endian> {
    match u32::from_le_bytes(word(head, 8)) {
        BYTE_ORDER_MAGIC => Some(Endian::Little),
        x if x.swap_bytes() == BYTE_ORDER_MAGIC => Some(Endian::Big),
        _ => None,
    }
}

fn malformed(at: u64, why: &'static str) -> CaptureError {
    CaptureError::new(at, CaptureErrorKind::Malformed(why))
}

/// A packet found in a block: where its bytes sit in the block, and what to say about it.
struct PacketAt {
    data_start: usize,
    caplen: usize,
    orig_len: u32,
    ts: Timestamp,
    linktype: u32,
}

impl PcapngReader {
    /// The caller has checked that the stream starts with the Section Header Block type.
    pub(crate) fn new(buf: ByteBuf) -> Result<PcapngReader, CaptureError> {
        let mut reader = PcapngReader {
            buf,
            section: Section {
                endian: Endian::Little,
                interfaces: Vec::new(),
                last_ts: Timestamp::ZERO,
            },
        };
        // Read (and check) the first section header now, so that a bad file fails at open.
        let at = reader.buf.offset();
        match reader.read_block(at)? {
            Some(None) => Ok(reader),
            _ => Err(malformed(at, "no section header block at the start")),
        }
    }

    /// Whether the next block is an Enhanced Packet Block wholly in the buffer: nearly every
    /// block of a capture is one, and this is the check the reading loop makes per packet.
    #[inline]
    fn plain_packet_whole(&self) -> bool {
        let b = self.buf.available();
        let Some(head) = b.first_chunk::<8>() else {
            return false;
        };
        let e = self.section.endian;
        e.u32(word(head, 0)) == EPB_TYPE && e.u32(word(head, 4)) as usize <= b.len()
    }

    /// The common case, read in one go: an Enhanced Packet Block wholly in the buffer, on a
    /// described interface, with every length check of [`read_block`](Self::read_block)
    /// passing. Anything else (another block, a damaged one, the buffer's end) is `None` and
    /// goes the general way, which reads it or says what is wrong with it.
    #[inline]
    fn plain_packet(&mut self) -> Option<(PacketAt, usize)> {
        let b = self.buf.available();
        let head = b.first_chunk::<28>()?;
        let e = self.section.endian;
        let total_len = e.u32(word(head, 4));
        if e.u32(word(head, 0)) != EPB_TYPE
            || total_len % 4 != 0
            || !(32..=MAX_BLOCK_LEN).contains(&total_len)
        {
            return None;
        }
        let total = total_len as usize;
        let trailer = b.get(total - 4..total)?.first_chunk::<4>()?;
        if e.u32(*trailer) != total_len {
            return None;
        }
        let iface = self.section.interfaces.get(e.u32(word(head, 8)) as usize)?;
        let caplen = e.u32(word(head, 20));
        if caplen > MAX_CAPLEN || caplen as usize > total - 32 {
            return None;
        }
        let ts = iface.timestamp(e.u32(word(head, 12)), e.u32(word(head, 16)));
        let linktype = iface.linktype;
        self.section.last_ts = ts;
        Some((
            PacketAt {
                data_start: 8 + 20,
                caplen: caplen as usize,
                orig_len: e.u32(word(head, 24)),
                ts,
                linktype,
            },
            total,
        ))
    }

    /// Reads one block. `Ok(None)`: clean end of input. `Ok(Some(None))`: a non-packet block
    /// was consumed. `Ok(Some(Some(p)))`: a packet block is at the front of the buffer (not yet
    /// consumed; its total length is returned with it).
    #[inline]
    fn read_block(&mut self, at: u64) -> Result<Option<Option<(PacketAt, usize)>>, CaptureError> {
        if !self.buf.fill(12).map_err(|e| io_error(&self.buf, e))? {
            return if self.buf.available().is_empty() {
                Ok(None)
            } else {
                Err(CaptureError::new(at, CaptureErrorKind::Truncated))
            };
        }
        let Some(head) = self.buf.available().first_chunk::<12>().copied() else {
            return Err(CaptureError::new(at, CaptureErrorKind::Truncated));
        };
        let type_bytes = word(&head, 0);
        if u32::from_le_bytes(type_bytes) == SHB_TYPE {
            // A new section: its byte-order magic decides how to read everything, lengths included.
            self.section.endian = section_endian(&head)
                .ok_or_else(|| malformed(at, "section header with a bad byte-order magic"))?;
        }
        let e = self.section.endian;
        let block_type = e.u32(type_bytes);
        let total_len = e.u32(word(&head, 4));
        let min_len = match block_type {
            SHB_TYPE => 28,
            IDB_TYPE => 20,
            EPB_TYPE | PB_TYPE => 32,
            SPB_TYPE => 16,
            _ => 12,
        };
        if total_len % 4 != 0 {
            return Err(malformed(at, "block length not a multiple of 4"));
        }
        if total_len < min_len {
            return Err(malformed(at, "block length too small for its type"));
        }
        if total_len > MAX_BLOCK_LEN {
            return Err(malformed(at, "block length over the 16 MiB limit"));
        }
        let total = total_len as usize;
        if !self.buf.fill(total).map_err(|e| io_error(&self.buf, e))? {
            return Err(CaptureError::new(at, CaptureErrorKind::Truncated));
        }
        let block = self.buf.available().get(..total).unwrap_or_default();
        let trailer = block
            .get(total - 4..)
            .and_then(|t| t.first_chunk::<4>())
            .copied()
            .unwrap_or_default();
        if e.u32(trailer) != total_len {
            return Err(malformed(
                at,
                "block trailer length differs from its header",
            ));
        }
        let body = block.get(8..total - 4).unwrap_or_default();
        let section = &mut self.section;
        let packet = match block_type {
            SHB_TYPE => {
                section.section_header(at, body)?;
                None
            }
            IDB_TYPE => {
                let iface = section.interface(body);
                if section.interfaces.len() >= MAX_INTERFACES {
                    return Err(malformed(at, "too many interfaces in one section"));
                }
                section.interfaces.push(iface);
                None
            }
            EPB_TYPE => Some(section.enhanced_packet(at, body)?),
            SPB_TYPE => Some(section.simple_packet(at, body)?),
            PB_TYPE => Some(section.obsolete_packet(at, body)?),
            _ => None,
        };
        match packet {
            Some(p) => Ok(Some(Some((p, total)))),
            None => {
                self.buf.take(total);
                Ok(Some(None))
            }
        }
    }
}

impl Section {
    fn section_header(&mut self, at: u64, body: &[u8]) -> Result<(), CaptureError> {
        let Some(b) = body.first_chunk::<8>() else {
            return Err(malformed(at, "section header too short"));
        };
        let major = self.endian.u16([b[4], b[5]]);
        let minor = self.endian.u16([b[6], b[7]]);
        // Version 1.0 is the format; 1.2 was written by some old tools and is read the same.
        if major != 1 || (minor != 0 && minor != 2) {
            return Err(CaptureError::new(
                at,
                CaptureErrorKind::Unsupported(format!(
                    "pcapng version {major}.{minor} at byte {at} (only 1.0 can be read)"
                )),
            ));
        }
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&self, body: &[u8]) -> Interface {
        let e = self.endian;
        let fixed = body.first_chunk::<8>().copied().unwrap_or_default();
        let mut iface = Interface {
            linktype: u32::from(e.u16([fixed[0], fixed[1]])),
            snaplen: e.u32(word(&fixed, 4)),
            unit: TsUnit::NanosPerUnit(1_000),
            offset_secs: 0,
        };
        // Options: code, length, value padded to 4. A damaged option list ends the list; the
        // interface itself is still usable.
        let mut opts = body.get(8..).unwrap_or_default();
        while let Some(h) = opts.first_chunk::<4>() {
            let code = e.u16([h[0], h[1]]);
            let len = usize::from(e.u16([h[2], h[3]]));
            let Some(value) = opts.get(4..4 + len) else {
                break;
            };
            match (code, value) {
                (OPT_END, _) => break,
                (OPT_IF_TSRESOL, [v]) => iface.unit = TsUnit::from_tsresol(*v),
                (OPT_IF_TSOFFSET, v) => {
                    if let Some(v) = v.first_chunk::<8>() {
                        let raw = match e {
                            Endian::Little => i64::from_le_bytes(*v),
                            Endian::Big => i64::from_be_bytes(*v),
                        };
                        iface.offset_secs = raw;
                    }
                }
                _ => {}
            }
            let padded = (4 + len + 3) & !3;
            opts = opts.get(padded..).unwrap_or_default();
        }
        iface
    }

    fn lookup(&self, at: u64, id: u32) -> Result<Interface, CaptureError> {
        self.interfaces
            .get(id as usize)
            .copied()
            .ok_or_else(|| malformed(at, "packet on an interface not described in its section"))
    }

    /// Enhanced Packet Block: interface, timestamp (high, low), caplen, orig_len, data.
    fn enhanced_packet(&mut self, at: u64, body: &[u8]) -> Result<PacketAt, CaptureError> {
        let Some(f) = body.first_chunk::<20>().copied() else {
            return Err(malformed(at, "enhanced packet block too short"));
        };
        let e = self.endian;
        let iface = self.lookup(at, e.u32(word(&f, 0)))?;
        let caplen = e.u32(word(&f, 12));
        if caplen > MAX_CAPLEN {
            return Err(malformed(at, "captured length over 16 MiB"));
        }
        if caplen as usize > body.len() - 20 {
            return Err(malformed(at, "captured length larger than its block"));
        }
        let ts = iface.timestamp(e.u32(word(&f, 4)), e.u32(word(&f, 8)));
        self.last_ts = ts;
        Ok(PacketAt {
            data_start: 8 + 20,
            caplen: caplen as usize,
            orig_len: e.u32(word(&f, 16)),
            ts,
            linktype: iface.linktype,
        })
    }

    /// Simple Packet Block: orig_len then data, on interface 0, with no timestamp of its own.
    fn simple_packet(&mut self, at: u64, body: &[u8]) -> Result<PacketAt, CaptureError> {
        let Some(f) = body.first_chunk::<4>().copied() else {
            return Err(malformed(at, "simple packet block too short"));
        };
        let iface = self.lookup(at, 0)?;
        let orig_len = self.endian.u32(f);
        // The captured length is implied: the packet, cut at the snap length and the block.
        let mut caplen = orig_len as usize;
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        caplen = caplen.min(body.len() - 4);
        Ok(PacketAt {
            data_start: 8 + 4,
            caplen,
            orig_len,
            ts: self.last_ts,
            linktype: iface.linktype,
        })
    }

    /// The obsolete Packet Block: 16-bit interface, 16-bit drop count, then as the EPB.
    fn obsolete_packet(&mut self, at: u64, body: &[u8]) -> Result<PacketAt, CaptureError> {
        let Some(f) = body.first_chunk::<20>().copied() else {
            return Err(malformed(at, "packet block too short"));
        };
        let e = self.endian;
        let iface = self.lookup(at, u32::from(e.u16([f[0], f[1]])))?;
        let caplen = e.u32(word(&f, 12));
        if caplen > MAX_CAPLEN {
            return Err(malformed(at, "captured length over 16 MiB"));
        }
        if caplen as usize > body.len() - 20 {
            return Err(malformed(at, "captured length larger than its block"));
        }
        let ts = iface.timestamp(e.u32(word(&f, 4)), e.u32(word(&f, 8)));
        self.last_ts = ts;
        Ok(PacketAt {
            data_start: 8 + 20,
            caplen: caplen as usize,
            orig_len: e.u32(word(&f, 16)),
            ts,
            linktype: iface.linktype,
        })
    }
}

impl PacketSource for PcapngReader {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        if let Some((p, total)) = self.plain_packet() {
            let block = self.buf.take(total);
            let data = block
                .get(p.data_start..p.data_start + p.caplen)
                .unwrap_or_default();
            return Ok(Some(Frame {
                ts: p.ts,
                linktype: p.linktype,
                orig_len: p.orig_len,
                data,
                ifindex: 0,
            }));
        }
        loop {
            let at = self.buf.offset();
            match self.read_block(at)? {
                None => return Ok(None),
                Some(None) => continue,
                Some(Some((p, total))) => {
                    let block = self.buf.take(total);
                    let data = block
                        .get(p.data_start..p.data_start + p.caplen)
                        .unwrap_or_default();
                    return Ok(Some(Frame {
                        ts: p.ts,
                        linktype: p.linktype,
                        orig_len: p.orig_len,
                        data,
                        ifindex: 0,
                    }));
                }
            }
        }
    }

    /// The blocks ahead are read in whole up to and including a packet block (other blocks
    /// come before it, such as interface descriptions, are read through).
    fn frame_ready(&self) -> bool {
        if self.plain_packet_whole() {
            return true;
        }
        let mut b = self.buf.available();
        let mut e = self.section.endian;
        while let Some(head) = b.first_chunk::<12>() {
            let type_bytes = word(head, 0);
            if u32::from_le_bytes(type_bytes) == SHB_TYPE {
                match section_endian(head) {
                    Some(x) => e = x,
                    // `next_frame` fails on it at once, without waiting.
                    None => return true,
                }
            }
            let total = e.u32(word(head, 4)) as usize;
            if total < 12 || b.len() < total {
                return false;
            }
            if matches!(e.u32(type_bytes), EPB_TYPE | PB_TYPE | SPB_TYPE) {
                return true;
            }
            b = &b[total..];
        }
        false
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

    fn iface(tsresol: u8, offset_secs: i64) -> Interface {
        Interface {
            linktype: 1,
            snaplen: 0,
            unit: TsUnit::from_tsresol(tsresol),
            offset_secs,
        }
    }

    fn ts(tsresol: u8, offset_secs: i64, raw: u64) -> u64 {
        iface(tsresol, offset_secs)
            .timestamp((raw >> 32) as u32, raw as u32)
            .nanos()
    }

    #[test]
    fn decimal_resolutions() {
        // Seconds, µs (the default), ns.
        assert_eq!(ts(0, 0, 5), 5_000_000_000);
        assert_eq!(ts(6, 0, 1_500_000), 1_500_000_000);
        assert_eq!(ts(9, 0, 1_234_567_891), 1_234_567_891);
        // Picoseconds: finer than we keep, so the fraction is cut to whole nanoseconds.
        assert_eq!(ts(12, 0, 2_000_000_001_999), 2_000_000_001);
    }

    #[test]
    fn binary_resolutions() {
        assert_eq!(ts(0x80 | 10, 0, (7 << 10) | 256), 7_250_000_000); // 2^-10
        assert_eq!(ts(0x80 | 20, 0, (3 << 20) | (1 << 19)), 3_500_000_000); // 2^-20
        assert_eq!(ts(0x80, 0, 9), 9_000_000_000); // 2^0
    }

    #[test]
    fn absurd_resolutions_and_offsets_do_not_overflow() {
        assert_eq!(ts(0x80 | 127, 0, u64::MAX), 0);
        assert_eq!(ts(0x7f, 0, u64::MAX), 0);
        assert_eq!(ts(0, 0, u64::MAX), u64::MAX); // saturates
        assert_eq!(ts(6, -10, 1_000_000), 0); // before the epoch: clamped
        assert_eq!(ts(6, 100, 1_000_000), 101_000_000_000);
        assert_eq!(ts(6, i64::MAX, 1), u64::MAX);
    }
}
