//! `pstats`: the first 30 packets of a flow (ipfixprobe's packet statistics): their payload
//! lengths, times, TCP flags and directions, as four basicLists (CESNET 8057/1013-1016).
//!
//! A packet is recorded when it carries payload (any packet with `includezeroes`); with
//! `skipdup`, a TCP packet that repeats the previous one of its direction (sequence and
//! acknowledgment numbers not ahead, same payload length and flags) is skipped, as a
//! retransmission. A flow of one packet with SYN set (a scan probe) exports none of it.
//! Payload length is what ipfixprobe calls `payload_len_wire`: after the TCP or UDP header,
//! or the whole IP payload for other protocols (an ICMP message with its header).

use super::{wire_payload, Built, Needs, OptionSpec, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Pstats,
    about: "lengths, times, TCP flags and directions of the first 30 packets",
    options: &[
        OptionSpec {
            name: "includezeroes",
            short: "i",
            takes_value: false,
            help: "record packets without payload too",
        },
        OptionSpec {
            name: "skipdup",
            short: "s",
            takes_value: false,
            help: "skip TCP packets that repeat the previous one of their direction",
        },
    ],
    build,
};

/// Packets recorded at most (ipfixprobe's PSTATS_MAXELEMCOUNT).
pub const MAX_PACKETS: usize = 30;

const LENGTH: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 1013,
};
const TIME: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 1014,
};
const FLAGS: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 1015,
};
const DIRECTION: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 1016,
};

fn build(o: &Options) -> Result<Built, PluginError> {
    let p = Pstats {
        include_zeroes: o.flag("includezeroes"),
        skip_dup: o.flag("skipdup"),
    };
    Ok((Box::new(Host::new(p)), Needs::default()))
}

struct Pstats {
    include_zeroes: bool,
    skip_dup: bool,
}

/// The last TCP packet of one direction, for `skipdup`.
#[derive(Clone, Copy, Default)]
struct Last {
    seen: bool,
    seq: u32,
    ack: u32,
    len: u32,
    flags: u8,
}

#[derive(Default)]
pub struct State {
    /// Time of the first recorded packet, in ms since the epoch; the others are offsets.
    first_ms: u64,
    count: u8,
    lengths: [u16; MAX_PACKETS],
    offsets_ms: [u32; MAX_PACKETS],
    flags: [u8; MAX_PACKETS],
    /// Bit *i*: packet *i* travelled in reverse.
    reverse: u32,
    last: [Last; 2],
}

/// `a` is not ahead of `b` in sequence space (RFC 1982 serial-number order).
fn not_ahead(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}

impl FlowPlugin for Pstats {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Pstats.number()
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<State> {
        Some(State::default())
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let len = wire_payload(p.pkt);
        if let (true, Some(tcp)) = (self.skip_dup, &p.pkt.tcp) {
            let last = &mut s.last[usize::from(p.reverse)];
            let repeat = last.seen
                && s.count > 0
                && not_ahead(tcp.seq, last.seq)
                && not_ahead(tcp.ack, last.ack)
                && len == last.len
                && tcp.flags == last.flags;
            *last = Last {
                seen: true,
                seq: tcp.seq,
                ack: tcp.ack,
                len,
                flags: tcp.flags,
            };
            if repeat {
                return Verdict::Continue;
            }
        }
        if len == 0 && !self.include_zeroes {
            return Verdict::Continue;
        }
        let i = usize::from(s.count);
        if i >= MAX_PACKETS {
            return Verdict::Done;
        }
        let ms = p.ts.millis();
        if i == 0 {
            s.first_ms = ms;
        }
        s.lengths[i] = len.min(u32::from(u16::MAX)) as u16;
        // (Packet time may step back a little in merged captures: never below the first.)
        s.offsets_ms[i] = u32::try_from(ms.saturating_sub(s.first_ms)).unwrap_or(u32::MAX);
        s.flags[i] = p.pkt.tcp.map_or(0, |t| t.flags);
        if p.reverse {
            s.reverse |= 1 << i;
        }
        s.count += 1;
        if usize::from(s.count) == MAX_PACKETS {
            // Nothing more to record.
            return Verdict::Done;
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if flow.packets() <= 1 && flow.tcp_flags() & 0x02 != 0 {
            return false;
        }
        let n = usize::from(s.count);
        out.list(LENGTH, 2, s.lengths[..n].iter().map(|&l| u64::from(l)));
        out.list(
            TIME,
            8,
            s.offsets_ms[..n].iter().map(|&o| s.first_ms + u64::from(o)),
        );
        out.list(FLAGS, 1, s.flags[..n].iter().map(|&f| u64::from(f)));
        out.list(
            DIRECTION,
            1,
            (0..n).map(|i| if s.reverse >> i & 1 == 1 { 0xff } else { 1 }),
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Packet, TcpInfo};
    use crate::meter::Extensions;
    use crate::time::Timestamp;

    fn tcp(seq: u32, ack: u32, flags: u8, payload: u32) -> Packet {
        let mut p = Packet {
            payload_len: payload,
            ip_len: 40 + payload,
            ip_header_len: 20,
            has_l4: true,
            tcp: Some(TcpInfo {
                seq,
                ack,
                flags,
                ..TcpInfo::default()
            }),
            ..Packet::default()
        };
        p.key.proto = 6;
        p
    }

    fn run(plugin: &mut Pstats, pkts: &[(u64, bool, Packet)]) -> Extensions {
        let mut s = None;
        for (ms, reverse, pkt) in pkts {
            let v = PacketView {
                ts: Timestamp::from_millis(*ms),
                pkt,
                details: &Default::default(),
                reverse: *reverse,
                payload: &[],
                stream: &[],
            };
            let st = s.get_or_insert_with(|| plugin.attach(&v).unwrap());
            plugin.packet(st, &v);
        }
        let flow = FlowSummary {
            packets: [pkts.len() as u64, 0],
            ..FlowSummary::default()
        };
        let mut ext = Extensions::default();
        let keys = [LENGTH, TIME, FLAGS, DIRECTION];
        let mut w = ExtWriter::new(&mut ext, &keys);
        assert!(plugin.export(s.unwrap(), &flow, &mut w));
        ext
    }

    fn items(ext: &Extensions, key: ExtKey) -> Vec<u64> {
        let Some(crate::meter::ExtValue::List {
            item_len, items, ..
        }) = ext.get(key)
        else {
            panic!("no list {key:?}");
        };
        items
            .chunks(usize::from(item_len))
            .map(|c| c.iter().fold(0, |a, &b| a << 8 | u64::from(b)))
            .collect()
    }

    #[test]
    fn payload_packets_are_recorded_with_direction_and_time() {
        let mut p = Pstats {
            include_zeroes: false,
            skip_dup: false,
        };
        let ext = run(
            &mut p,
            &[
                (1_000, false, tcp(1, 0, 0x02, 0)),
                (1_010, true, tcp(9, 2, 0x12, 0)),
                (1_020, false, tcp(2, 10, 0x18, 100)),
                (1_031, true, tcp(10, 102, 0x18, 1448)),
            ],
        );
        assert_eq!(items(&ext, LENGTH), [100, 1448]);
        assert_eq!(items(&ext, TIME), [1_020, 1_031]);
        assert_eq!(items(&ext, FLAGS), [0x18, 0x18]);
        assert_eq!(items(&ext, DIRECTION), [1, 0xff]);
        let mut p = Pstats {
            include_zeroes: true,
            skip_dup: false,
        };
        let ext = run(&mut p, &[(5, false, tcp(1, 0, 0x02, 0))]);
        assert_eq!(items(&ext, LENGTH), [0]);
    }

    #[test]
    fn skipdup_skips_repeats_of_the_previous_packet_of_a_direction() {
        let mut p = Pstats {
            include_zeroes: false,
            skip_dup: true,
        };
        let ext = run(
            &mut p,
            &[
                (1, false, tcp(100, 5, 0x18, 10)),
                (2, false, tcp(110, 5, 0x18, 10)),
                // A retransmission of the segment before: skipped.
                (3, false, tcp(100, 5, 0x18, 10)),
                // Reverse direction: its own history; wrapped sequence numbers compare.
                (4, true, tcp(u32::MAX - 5, 120, 0x18, 10)),
                (5, true, tcp(4, 120, 0x18, 10)),
            ],
        );
        assert_eq!(items(&ext, TIME), [1, 2, 4, 5]);
    }

    #[test]
    fn only_thirty_packets_are_kept() {
        let mut p = Pstats {
            include_zeroes: false,
            skip_dup: false,
        };
        let pkts: Vec<_> = (0..40)
            .map(|i| (i, i % 3 == 0, tcp(i as u32 * 10, 0, 0x10, 10 + i as u32)))
            .collect();
        let ext = run(&mut p, &pkts);
        assert_eq!(items(&ext, LENGTH), (10..40).collect::<Vec<u64>>());
        assert_eq!(items(&ext, DIRECTION)[..4], [0xff, 1, 1, 0xff]);
    }
}
