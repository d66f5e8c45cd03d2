//! Capture sources: where frames come from.
//!
//! A [`PacketSource`] yields [`Frame`]s, each borrowed from the source's own buffer until the next
//! call (a lending iterator), so reading a file copies nothing per packet.

use crate::time::Timestamp;
use std::fmt;

/// Link-layer header types (the tcpdump.org LINKTYPE_ values, as in pcap and pcapng headers).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const RAW_BSD: u32 = 12; // DLT_RAW on some BSDs
    pub const RAW_OPENBSD: u32 = 14;
    pub const PPP_HDLC: u32 = 50;
    pub const PPP_ETHER: u32 = 51; // PPPoE
    pub const RAW: u32 = 101;
    pub const C_HDLC: u32 = 104;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// One captured frame.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub ts: Timestamp,
    /// LINKTYPE_ value of the interface the frame was captured on.
    pub linktype: u32,
    /// Length of the frame on the wire (may exceed `data.len()` when the snaplen cut it).
    pub orig_len: u32,
    /// The captured bytes, exactly `caplen` long (pcapng block padding already removed).
    pub data: &'a [u8],
}

/// Something that yields frames: a capture file, standard input, later a live interface.
pub trait PacketSource {
    /// The next frame, `Ok(None)` at the end of input, or an error that ends the input
    /// (frames already returned stay valid results).
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError>;

    /// Bytes consumed so far from the underlying file, for progress display (compressed bytes
    /// for gzip input).
    fn position(&self) -> u64 {
        0
    }

    /// Frames the source itself knows it lost (e.g. kernel drops on a live interface).
    fn dropped(&self) -> u64 {
        0
    }
}

/// Why a capture stopped early. Always names where.
#[derive(Debug)]
pub struct CaptureError {
    /// Byte offset in the (decompressed) input where the problem was found.
    pub offset: u64,
    pub kind: CaptureErrorKind,
}

#[derive(Debug)]
pub enum CaptureErrorKind {
    Io(std::io::Error),
    /// Not a pcap or pcapng file (first four bytes shown).
    BadMagic([u8; 4]),
    /// A header field that cannot be right (explained).
    Malformed(&'static str),
    /// The file ends inside a header or record.
    Truncated,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CaptureErrorKind::Io(e) => write!(f, "read error at byte {}: {e}", self.offset),
            CaptureErrorKind::BadMagic(m) => write!(
                f,
                "not a pcap or pcapng capture (magic {:02x}{:02x}{:02x}{:02x})",
                m[0], m[1], m[2], m[3]
            ),
            CaptureErrorKind::Malformed(why) => {
                write!(f, "damaged capture at byte {}: {why}", self.offset)
            }
            CaptureErrorKind::Truncated => write!(f, "capture truncated at byte {}", self.offset),
        }
    }
}

impl std::error::Error for CaptureError {}
