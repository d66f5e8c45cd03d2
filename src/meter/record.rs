//! What the meter emits: one closed (or timed-out) flow.

use super::ext::Extensions;
use super::tcp::{RttStats, TcpDirStats};
use crate::key::FlowKey;
use crate::time::Timestamp;

/// flowEndReason values (IANA IE 136), as QoF and YAF use them.
pub mod end_reason {
    pub const IDLE: u8 = 1;
    pub const ACTIVE: u8 = 2;
    pub const END_OF_FLOW: u8 = 3;
    pub const FORCED: u8 = 4;
    pub const LACK_OF_RESOURCES: u8 = 5;
    /// High bit (silk-compatible mode): this flow continues one closed by an active timeout.
    pub const CONTINUATION: u8 = 0x80;
}

/// Counters and first/last facts of one direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirStats {
    pub packets: u64,
    /// Sum of the IP lengths (header included) of the packets.
    pub octets: u64,
    /// Packets that carried transport payload.
    pub transport_packets: u64,
    /// Sum of transport payload octets.
    pub transport_octets: u64,
    pub min_ttl: u8,
    pub max_ttl: u8,
    /// TCP flags of the first packet of this direction.
    pub initial_tcp_flags: u8,
    /// OR of the TCP flags of every later packet.
    pub union_tcp_flags: u8,
    /// TCP measurements (zero unless the template asks for them and the flow is TCP).
    pub tcp: TcpDirStats,
}

/// A flow record as the meter hands it to exporters. Both directions (RFC 5103 biflow); an
/// exporter that writes uniflows splits it with [`FlowRecord::reverse_uniflow`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowRecord {
    /// Forward direction = the direction of the flow's first packet.
    pub key: FlowKey,
    pub flow_id: u64,
    /// Time of the first packet (either direction).
    pub start: Timestamp,
    /// Time of the last packet (either direction).
    pub end: Timestamp,
    /// Time of the first reverse packet, if any.
    pub rev_start: Option<Timestamp>,
    /// One of [`end_reason`], possibly with [`end_reason::CONTINUATION`].
    pub end_reason: u8,
    pub fwd: DirStats,
    pub rev: DirStats,
    /// MACs of the flow's first forward packet (zero on link types without them).
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Round-trip time of the biflow (both uniflow records carry it).
    pub rtt: RttStats,
    /// What flow plugins measured (`None` when no plugin had anything for the flow): one
    /// allocation per record, and only then.
    pub ext: Option<Box<Extensions>>,
}

/// What a plugin sees of a flow when it ends (see `meter::plugin`): the record's key, times
/// and per-direction counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowSummary {
    pub key: FlowKey,
    pub flow_id: u64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub end_reason: u8,
    /// Forward, then reverse.
    pub packets: [u64; 2],
    pub octets: [u64; 2],
    /// TCP flags of the first packet, and of every later one ORed, per direction.
    pub initial_tcp_flags: [u8; 2],
    pub union_tcp_flags: [u8; 2],
}

impl FlowSummary {
    #[inline(always)]
    pub fn of(r: &FlowRecord) -> FlowSummary {
        FlowSummary {
            key: r.key,
            flow_id: r.flow_id,
            start: r.start,
            end: r.end,
            end_reason: r.end_reason,
            packets: [r.fwd.packets, r.rev.packets],
            octets: [r.fwd.octets, r.rev.octets],
            initial_tcp_flags: [r.fwd.initial_tcp_flags, r.rev.initial_tcp_flags],
            union_tcp_flags: [r.fwd.union_tcp_flags, r.rev.union_tcp_flags],
        }
    }

    /// Packets in both directions.
    pub fn packets(&self) -> u64 {
        self.packets[0] + self.packets[1]
    }

    /// Every TCP flag seen in either direction.
    pub fn tcp_flags(&self) -> u8 {
        self.initial_tcp_flags[0]
            | self.initial_tcp_flags[1]
            | self.union_tcp_flags[0]
            | self.union_tcp_flags[1]
    }
}

impl FlowRecord {
    /// True when packets were seen in the reverse direction.
    pub fn has_reverse(&self) -> bool {
        self.rev.packets > 0
    }

    /// reverseFlowDeltaMilliseconds: from the first forward packet to the first reverse one.
    pub fn reverse_delta_millis(&self) -> i32 {
        match self.rev_start {
            Some(t) => i32::try_from(t.saturating_since(self.start).millis()).unwrap_or(i32::MAX),
            None => 0,
        }
    }

    /// The forward direction alone, as a uniflow record. It keeps the plugins' values, which
    /// describe the whole flow.
    pub fn forward_uniflow(&self) -> FlowRecord {
        FlowRecord {
            rev: DirStats::default(),
            rev_start: None,
            ..self.clone()
        }
    }

    /// The reverse direction as a uniflow record of its own (key and MACs swapped), or `None`
    /// when the reverse direction saw no packet. The plugins' values go with the forward
    /// record only.
    pub fn reverse_uniflow(&self) -> Option<FlowRecord> {
        let rev_start = self.rev_start?;
        if !self.has_reverse() {
            return None;
        }
        Some(FlowRecord {
            key: self.key.reversed(),
            flow_id: self.flow_id,
            start: rev_start,
            end: self.end,
            rev_start: None,
            end_reason: self.end_reason,
            fwd: self.rev,
            rev: DirStats::default(),
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            rtt: self.rtt,
            ext: None,
        })
    }
}
