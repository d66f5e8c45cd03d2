//! Messages of a header-line protocol in one record of a flow (HTTP, RTSP, SIP): over TCP
//! read from the meter's stream (`PacketView::stream`), over UDP one per datagram. It tells
//! where each TCP direction's message starts, reads its head as it arrives, over as many
//! segments as it takes, and whether a packet starts the next message, which ends the record
//! before it (ipfixprobe's `FLOW_FLUSH_WITH_REINSERT`).
//!
//! A TCP direction's stream starts with its first octet after the SYN, or with the first
//! segment the flow saw (a split's continuation starts with the packet that split it). A
//! message is found where a packet starts one: its offset in the stream is the packet's
//! sequence number less the stream's first one, which this module follows as `meter::stream`
//! sets it. A head is read from there, at most [`MAX_HEAD`] octets, until its empty line has
//! come or no more can (the stream stops at its cap). Where the stream does not hold the
//! packet (it was let go, or a gap comes before it) the packet alone is read, as ipfixprobe
//! reads every message.
//!
//! A TCP packet whose sequence number is not after the last message start of its direction
//! is a retransmission and starts nothing (ipfixprobe starts a new record on a retransmitted
//! request); this holds across a split too (see [`Handoff`]). A UDP datagram is a message or
//! not, read alone (a SIP agent's retransmission over UDP is another message, as ipfixprobe
//! and tshark count it).

use super::text_wire::{after, classify, head, Head, Kind, Start, Syntax};
use crate::key::FlowKey;
use crate::meter::{Opening, PacketView};

/// Octets of a message head read at most, and of each direction's stream asked for.
pub const MAX_HEAD: usize = 4096;

/// When a packet that starts a message ends the record before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// HTTP and RTSP: a request once the record has a request or a response (so that a
    /// record holds one request and its response even when the capture started between
    /// them); a response once the record has a final one (an interim 1xx response, 101
    /// excepted, is followed by the final one in the same record). ipfixprobe splits at a
    /// second request or a second response.
    Exchange,
    /// SIP: every message after the record's first.
    EachMessage,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Looking,
    /// A message starts at stream offset `at`; its head is not whole yet, and `seen` octets
    /// of it were read last time.
    Reading { at: u32, seen: u32 },
    /// The message was read.
    Read,
}

#[derive(Clone, Copy, Debug, Default)]
struct Dir {
    /// Sequence number of the stream's first octet, as `meter::stream` places it.
    base: Option<u32>,
    /// The start of the direction's stream was looked at (or too many packets came
    /// without it: its first segment was not captured).
    started: bool,
    /// Payload packets seen, up to [`START_WAIT`].
    packets: u8,
    /// The stream starts after a SYN: its first octets are the connection's.
    from_syn: bool,
    phase: Phase,
    /// Sequence number of the last message start found in this direction.
    last: Option<u32>,
}

/// Payload packets of a direction after which its stream's start is no longer waited for.
const START_WAIT: u8 = 4;

/// What a record that ends before a packet passes to its continuation: the last message
/// start of each direction, oriented as the continuation is (by the packet).
#[derive(Clone, Copy, Debug)]
pub struct Handoff {
    key: FlowKey,
    last: [Option<u32>; 2],
}

/// The messages of one record of a TCP or UDP flow.
#[derive(Debug, Default)]
pub struct Messages {
    dirs: [Dir; 2],
    /// A direction's stream did not start with a message.
    failed: bool,
    /// A connection's first octets in a direction, or a flow's first datagram, were not a
    /// message: the flow is not this protocol's.
    foreign: bool,
    /// Datagrams seen.
    datagrams: u32,
    /// A request was found in this record.
    pub request: bool,
    /// The status of the record's response, if one was found (0: not a valid status).
    pub status: Option<u16>,
}

/// Sequence number of the packet's first payload octet (a SYN takes one).
fn data_seq(p: &PacketView<'_>) -> Option<u32> {
    let tcp = p.pkt.tcp?;
    Some(if tcp.flags & 0x02 != 0 {
        tcp.seq.wrapping_add(1)
    } else {
        tcp.seq
    })
}

/// An interim response: another follows for the same request (RFC 9110 §15.2).
fn interim(status: u16) -> bool {
    (100..200).contains(&status) && status != 101
}

impl Messages {
    /// The messages of a new record; `handoff` from the record that ended before its first
    /// packet `p`, if it did.
    pub fn new(p: &PacketView<'_>, handoff: Option<Handoff>) -> Messages {
        let mut m = Messages::default();
        if let Some(h) = handoff.filter(|h| h.key == p.pkt.key) {
            for (d, last) in m.dirs.iter_mut().zip(h.last) {
                d.last = last;
            }
        }
        m
    }

    /// The connection's SYNs before its first payload, which the plugin did not see
    /// (`meter::Opening`): as [`Messages::packet`] takes a SYN.
    pub fn opened(&mut self, before: &Opening) {
        for (d, syn) in self.dirs.iter_mut().zip(before.syn) {
            if let (Some(seq), None) = (syn, d.base) {
                d.base = Some(seq.wrapping_add(1));
                d.from_syn = true;
            }
        }
    }

    /// Whether `p` starts a message that ends the record before it.
    pub fn starts_next(&self, p: &PacketView<'_>, syntax: &Syntax, split: Split) -> bool {
        if p.payload.is_empty() {
            return false;
        }
        if let Some(seq) = data_seq(p) {
            let d = &self.dirs[usize::from(p.reverse)];
            if d.last.is_some_and(|l| !after(seq, l)) {
                return false;
            }
        }
        let Start::Message(kind) = classify(p.payload, syntax) else {
            return false;
        };
        let any = self.request || self.status.is_some();
        match (split, kind) {
            (Split::EachMessage, _) | (Split::Exchange, Kind::Request) => any,
            (Split::Exchange, Kind::Response) => self.status.is_some_and(|s| !interim(s)),
        }
    }

    /// What the continuation of this record needs when `p` starts it.
    pub fn handoff(&self, p: &PacketView<'_>) -> Handoff {
        let r = usize::from(p.reverse);
        Handoff {
            key: p.pkt.key,
            last: [self.dirs[r].last, self.dirs[1 - r].last],
        }
    }

    /// The flow is not this protocol's: a TCP connection seen from its SYN whose first
    /// octets in a direction are not a message, or a UDP flow whose first datagram is not
    /// one, and nothing found in the record. (A split's continuation is never: its streams
    /// start at a message.)
    pub fn foreign(&self) -> bool {
        self.foreign && !self.request && self.status.is_none()
    }

    /// The stream is still read: a head is being read, or a direction's stream has not
    /// started yet and none started with anything but a message.
    pub fn wants_stream(&self) -> bool {
        self.dirs.iter().any(|d| match d.phase {
            Phase::Reading { .. } => true,
            Phase::Looking => !d.started && !self.failed,
            Phase::Read => false,
        })
    }

    /// A packet of the record: finds and reads message heads. `read` gets each head read; a
    /// head not whole yet is given again, longer, when more of it has come.
    pub fn packet(&mut self, p: &PacketView<'_>, syntax: &Syntax, read: &mut impl FnMut(&Head)) {
        let Some(tcp) = p.pkt.tcp else {
            // A datagram: a message alone.
            let h = head(&p.payload[..p.payload.len().min(MAX_HEAD)], syntax);
            self.foreign |= self.datagrams == 0 && h.is_none();
            self.datagrams = self.datagrams.saturating_add(1);
            if let Some(h) = h {
                self.note(&h);
                read(&h);
            }
            return;
        };
        let i = usize::from(p.reverse);
        let d = &mut self.dirs[i];
        // (As meter::stream: a SYN sets the start; otherwise the first payload does.)
        if tcp.flags & 0x02 != 0 && d.base.is_none() {
            d.base = Some(tcp.seq.wrapping_add(1));
            d.from_syn = true;
        }
        let Some(seq) = data_seq(p).filter(|_| !p.payload.is_empty()) else {
            return;
        };
        let base = *d.base.get_or_insert(seq);
        let off = usize::try_from(seq.wrapping_sub(base) as i32).ok();
        let stream = p.stream;
        // This packet shows the stream's start for the first time.
        d.packets = d.packets.saturating_add(1);
        let first = !d.started && off == Some(0);
        d.started |= first || d.packets >= START_WAIT;
        // The stream will not grow past this packet: it stopped at its cap.
        let capped = off.is_some_and(|o| o <= stream.len() && o + p.payload.len() > stream.len());
        match d.phase {
            Phase::Reading { at, seen } => {
                let buf = stream.get(at as usize..).unwrap_or(&[]);
                let buf = &buf[..buf.len().min(MAX_HEAD)];
                if buf.len() as u32 != seen || capped {
                    self.read_at(i, at, buf, capped, syntax, read);
                }
            }
            Phase::Looking | Phase::Read => {
                if d.last.is_some_and(|l| !after(seq, l)) {
                    return;
                }
                let at = off.filter(|&o| o < stream.len());
                let buf = at.map_or(p.payload, |o| &stream[o..]);
                match classify(buf, syntax) {
                    Start::Message(_) => {}
                    Start::Maybe if at.is_some() => {}
                    _ => {
                        self.failed |= first;
                        self.foreign |= first && d.from_syn;
                        return;
                    }
                }
                d.last = Some(seq);
                match at {
                    Some(at) => {
                        let buf = &buf[..buf.len().min(MAX_HEAD)];
                        self.read_at(i, at as u32, buf, capped, syntax, read);
                    }
                    None => {
                        // Not in the stream: this packet alone.
                        let buf = &buf[..buf.len().min(MAX_HEAD)];
                        if let Some(h) = head(buf, syntax) {
                            self.note(&h);
                            read(&h);
                        }
                        self.dirs[i].phase = Phase::Read;
                    }
                }
            }
        }
    }

    /// Read the head at stream offset `at` of direction `i`, `buf` the stream from there.
    fn read_at(
        &mut self,
        i: usize,
        at: u32,
        buf: &[u8],
        capped: bool,
        syntax: &Syntax,
        read: &mut impl FnMut(&Head),
    ) {
        let last = capped || buf.len() >= MAX_HEAD;
        let phase = match head(buf, syntax) {
            Some(h) => {
                self.note(&h);
                read(&h);
                if h.complete || last {
                    Phase::Read
                } else {
                    Phase::Reading {
                        at,
                        seen: buf.len() as u32,
                    }
                }
            }
            None if !last && classify(buf, syntax) == Start::Maybe => Phase::Reading {
                at,
                seen: buf.len() as u32,
            },
            // It was not a message after all.
            None => {
                self.failed |= at == 0;
                self.foreign |= at == 0 && self.dirs[i].from_syn;
                Phase::Looking
            }
        };
        self.dirs[i].phase = phase;
    }

    fn note(&mut self, h: &Head<'_>) {
        match h.kind {
            Kind::Request => self.request = true,
            Kind::Response => self.status = Some(h.status().unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests;
