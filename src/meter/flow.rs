//! One flow's state in the table, kept small: the per-packet path touches only this struct.
//!
//! Times are kept in milliseconds, the start plus offsets: flows are exported with millisecond
//! times and timeouts are tested in milliseconds (as QoF does), so nothing is lost, and the
//! struct holds only what packets touch, in 96 bytes (the budget is 150 bytes per active flow
//! in all): 32-byte aligned, a flow lies on two cache lines, never three (at 112 bytes apart,
//! every other flow straddled three). The flowId and the table's bookkeeping (wheel second,
//! free list) are kept beside it, in the table's slot metadata, read when a flow starts, ends
//! or is looked at by the wheel.

use super::record::DirStats;
use crate::decode::Packet;
use crate::key::{proto, FlowKey};
use crate::time::Timestamp;

/// No reverse packet yet.
pub(crate) const NO_REVERSE: u32 = u32::MAX;

/// TCP close-state bits (QoF's `yfFlowTabClose` logic).
pub(crate) mod close {
    pub const RST: u8 = 0x01;
    pub const FWD_FIN: u8 = 0x10;
    pub const REV_FIN: u8 = 0x20;
    pub const FWD_FIN_ACK: u8 = 0x40;
    pub const REV_FIN_ACK: u8 = 0x80;
    pub const BOTH_CLOSED: u8 = 0xF0;
}

const TCP_FIN: u8 = 0x01;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Dir {
    pub octets: u64,
    /// Saturates at u32::MAX; the table splits the flow before that (see `would_overflow`).
    pub packets: u32,
    pub min_ttl: u8,
    pub max_ttl: u8,
    pub initial_flags: u8,
    pub union_flags: u8,
}

impl Dir {
    fn add(&mut self, pkt: &Packet, flags: u8) {
        if self.packets == 0 {
            self.min_ttl = pkt.ttl;
            self.max_ttl = pkt.ttl;
            self.initial_flags = flags;
        } else {
            self.min_ttl = self.min_ttl.min(pkt.ttl);
            self.max_ttl = self.max_ttl.max(pkt.ttl);
            self.union_flags |= flags;
        }
        self.packets = self.packets.saturating_add(1);
        self.octets = self.octets.saturating_add(u64::from(pkt.ip_len));
    }

    pub fn stats(&self) -> DirStats {
        DirStats {
            packets: u64::from(self.packets),
            octets: self.octets,
            transport_packets: 0,
            transport_octets: 0,
            min_ttl: self.min_ttl,
            max_ttl: self.max_ttl,
            initial_tcp_flags: self.initial_flags,
            union_tcp_flags: self.union_flags,
            ..DirStats::default()
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
#[repr(align(32))] // (see the module's comment)
pub(crate) struct Flow {
    pub key: FlowKey,
    /// Start time in milliseconds (bits 0..48), [`close`] bits (48..56) and the flowEndReason
    /// bits kept across a continuation (56..64), in one word.
    packed: u64,
    /// Last packet, in ms after the start.
    pub end_off_ms: u32,
    /// First reverse packet, in ms after the start, or [`NO_REVERSE`].
    pub rev_off_ms: u32,
    pub fwd: Dir,
    pub rev: Dir,
}

const MS_BITS: u64 = (1 << 48) - 1;

impl Flow {
    pub fn new(key: FlowKey, start: Timestamp, reason_flags: u8) -> Flow {
        Flow {
            key,
            packed: (start.millis() & MS_BITS) | u64::from(reason_flags) << 56,
            rev_off_ms: NO_REVERSE,
            ..Flow::default()
        }
    }

    pub fn start_ms(&self) -> u64 {
        self.packed & MS_BITS
    }

    pub fn end_ms(&self) -> u64 {
        self.start_ms() + u64::from(self.end_off_ms)
    }

    pub fn close_bits(&self) -> u8 {
        (self.packed >> 48) as u8
    }

    fn set_close_bits(&mut self, bits: u8) {
        self.packed = (self.packed & !(0xff << 48)) | u64::from(bits) << 48;
    }

    pub fn reason_flags(&self) -> u8 {
        (self.packed >> 56) as u8
    }

    /// Account one packet; `reverse` tells its direction. Returns true when the packet ends the
    /// flow (RST, or both FINs acknowledged).
    pub fn add_packet(&mut self, ts: Timestamp, pkt: &Packet, reverse: bool) -> bool {
        let now_ms = ts.millis();
        // Packet time may step back a little (merged captures); a flow's end never moves back.
        let off = u32::try_from(now_ms.saturating_sub(self.start_ms())).unwrap_or(u32::MAX);
        self.end_off_ms = self.end_off_ms.max(off);
        let flags = pkt.tcp.map_or(0, |t| t.flags);
        if reverse {
            if self.rev.packets == 0 {
                self.rev_off_ms = off;
            }
            self.rev.add(pkt, flags);
        } else {
            self.fwd.add(pkt, flags);
        }
        self.key.proto == proto::TCP && pkt.tcp.is_some() && self.track_close(flags, reverse)
    }

    /// QoF's close-state machine: no sequence validation; a FIN/ACK may set its own FIN bit and
    /// acknowledge the other side's FIN at once.
    fn track_close(&mut self, flags: u8, reverse: bool) -> bool {
        if flags & TCP_RST != 0 {
            self.set_close_bits(self.close_bits() | close::RST);
            return true;
        }
        let mut bits = self.close_bits();
        let (my_fin, their_fin, my_fin_ack) = if reverse {
            (close::REV_FIN, close::FWD_FIN, close::REV_FIN_ACK)
        } else {
            (close::FWD_FIN, close::REV_FIN, close::FWD_FIN_ACK)
        };
        if flags & TCP_FIN != 0 {
            bits |= my_fin;
        }
        if flags & TCP_ACK != 0 && bits & their_fin != 0 {
            bits |= my_fin_ack;
        }
        self.set_close_bits(bits);
        bits & close::BOTH_CLOSED == close::BOTH_CLOSED
    }

    /// True when adding a packet in this direction would overflow a counter: the table then
    /// closes the flow (active timeout) and continues it in a new record, as silk mode does.
    pub fn would_overflow(&self, reverse: bool, ip_len: u32, silk: bool) -> bool {
        let d = if reverse { &self.rev } else { &self.fwd };
        d.packets == u32::MAX || (silk && d.octets + u64::from(ip_len) > u64::from(u32::MAX))
    }
}
