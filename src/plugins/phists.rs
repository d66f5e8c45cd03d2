//! `phists`: log2 histograms of packet sizes and inter-packet times, per direction
//! (ipfixprobe's packet histograms), as four basicLists of eight unsigned32 counts
//! (CESNET 8057/1060-1063: forward sizes, forward times, reverse sizes, reverse times).
//!
//! The bins are the same for sizes (octets) and times (ms): `[0-15] [16-31] [32-63] [64-127]
//! [128-255] [256-511] [512-1023] [1024-]`, so bin *b* > 0 holds values with
//! `floor(log2(v)) - 3 = b`. Counts saturate at 2^32-1.
//!
//! A packet counts when it carries payload (any packet with `includezeroes`); its size is
//! ipfixprobe's `payload_len_wire` ([`wire_payload`]). The inter-packet time is the time
//! since the previous counted packet of the same direction, both taken in whole milliseconds
//! (as ipfixprobe truncates them); a direction's first counted packet has none. A flow of
//! one packet with SYN set (a scan probe) exports none of it.
//!
//! Where ipfixprobe 5.7.0 differs, qof does what the elements define:
//! * a negative time (packets out of order, as in merged captures) is counted in bin 0, the
//!   bin of the smallest times; ipfixprobe keeps the last time as a truncated unsigned 32-bit
//!   value and so counts it in the last bin;
//! * the lists travel in template order, 1060, 1061, 1062, 1063 (the encoder writes what the
//!   template lists); ipfixprobe writes 1060, 1062, 1061, 1063 under a template that says
//!   otherwise.

use super::{wire_payload, Built, Needs, OptionSpec, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Phists,
    about: "log2 histograms of packet sizes and inter-packet times, per direction",
    options: &[OptionSpec {
        name: "includezeroes",
        short: "i",
        takes_value: false,
        help: "count packets without payload too",
    }],
    build,
};

/// Bins per histogram.
pub const BINS: usize = 8;

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

/// The histograms by direction (forward, reverse): sizes, then inter-packet times.
const SIZES: [ExtKey; 2] = [key(1060), key(1062)];
const TIMES: [ExtKey; 2] = [key(1061), key(1063)];

fn build(o: &Options) -> Result<Built, PluginError> {
    let p = Phists {
        include_zeroes: o.flag("includezeroes"),
    };
    Ok((Box::new(Host::new(p)), Needs::default()))
}

struct Phists {
    include_zeroes: bool,
}

/// One direction's histograms.
#[derive(Default)]
struct Dir {
    sizes: [u32; BINS],
    times: [u32; BINS],
    /// Time of the previous counted packet, ms since the epoch (`None` before the first).
    last_ms: Option<u64>,
}

#[derive(Default)]
pub struct State {
    dirs: [Dir; 2],
}

/// The bin of `v`: 0 below 16, `floor(log2(v)) - 3` up to 1023, the last bin from 1024.
fn bin(v: u64) -> usize {
    let log2 = 63 - v.max(1).leading_zeros() as usize;
    log2.saturating_sub(3).min(BINS - 1)
}

fn count(hist: &mut [u32; BINS], v: u64) {
    let b = &mut hist[bin(v)];
    *b = b.saturating_add(1);
}

impl FlowPlugin for Phists {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Phists.number()
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<State> {
        Some(State::default())
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let len = wire_payload(p.pkt);
        if len == 0 && !self.include_zeroes {
            return Verdict::Continue;
        }
        let d = &mut s.dirs[usize::from(p.reverse)];
        count(&mut d.sizes, u64::from(len));
        let ms = p.ts.millis();
        if let Some(last) = d.last_ms.replace(ms) {
            // Time that went backwards is the smallest time there is: bin 0.
            count(&mut d.times, ms.saturating_sub(last));
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if flow.packets() <= 1 && flow.tcp_flags() & 0x02 != 0 {
            return false;
        }
        // Template order: forward sizes, forward times, reverse sizes, reverse times.
        for (i, d) in s.dirs.iter().enumerate() {
            out.list(SIZES[i], 4, d.sizes.iter().map(|&c| u64::from(c)));
            out.list(TIMES[i], 4, d.times.iter().map(|&c| u64::from(c)));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Packet, TcpInfo};
    use crate::meter::{ExtValue, Extensions};
    use crate::time::Timestamp;

    fn tcp(flags: u8, payload: u32) -> Packet {
        let mut p = Packet {
            payload_len: payload,
            ip_len: 40 + payload,
            ip_header_len: 20,
            has_l4: true,
            tcp: Some(TcpInfo {
                flags,
                ..TcpInfo::default()
            }),
            ..Packet::default()
        };
        p.key.proto = 6;
        p
    }

    /// Run `pkts` (time in µs, reverse, packet) through a fresh state; the flow's summary
    /// counts them all with `flags`.
    fn run(plugin: &mut Phists, pkts: &[(u64, bool, Packet)], flags: u8) -> Option<Extensions> {
        let mut s = None;
        for (us, reverse, pkt) in pkts {
            let v = PacketView {
                ts: Timestamp::from_micros(*us),
                pkt,
                details: &Default::default(),
                reverse: *reverse,
                payload: &[],
                stream: &[],
            };
            let st = s.get_or_insert_with(|| plugin.attach(&v).unwrap());
            assert_eq!(plugin.packet(st, &v), Verdict::Continue);
        }
        let flow = FlowSummary {
            packets: [pkts.len() as u64, 0],
            initial_tcp_flags: [flags, 0],
            ..FlowSummary::default()
        };
        let mut ext = Extensions::default();
        let mut keys = [SIZES[0], SIZES[1], TIMES[0], TIMES[1]];
        keys.sort();
        let mut w = ExtWriter::new(&mut ext, &keys);
        plugin.export(s.unwrap(), &flow, &mut w).then_some(ext)
    }

    fn items(ext: &Extensions, key: ExtKey) -> Vec<u64> {
        let Some(ExtValue::List {
            item_len, items, ..
        }) = ext.get(key)
        else {
            panic!("no list {key:?}");
        };
        assert_eq!(item_len, 4);
        items
            .chunks(4)
            .map(|c| c.iter().fold(0, |a, &b| a << 8 | u64::from(b)))
            .collect()
    }

    #[test]
    fn bins_are_log2_from_16_with_the_ends_open() {
        let cases = [
            (0, 0),
            (15, 0),
            (16, 1),
            (31, 1),
            (32, 2),
            (63, 2),
            (64, 3),
            (127, 3),
            (128, 4),
            (255, 4),
            (256, 5),
            (511, 5),
            (512, 6),
            (1023, 6),
            (1024, 7),
            (65_535, 7),
            (u64::MAX, 7),
        ];
        for (v, b) in cases {
            assert_eq!(bin(v), b, "{v}");
        }
    }

    #[test]
    fn sizes_and_times_per_direction_skip_empty_packets() {
        let mut p = Phists {
            include_zeroes: false,
        };
        let ext = run(
            &mut p,
            &[
                (1_000_000, false, tcp(0x02, 0)),
                (1_010_000, true, tcp(0x12, 0)),
                (1_020_900, false, tcp(0x18, 100)),
                // 15.2 ms later, but 16 ms apart in whole ms (each time is truncated first).
                (1_036_100, false, tcp(0x18, 16)),
                (1_031_000, true, tcp(0x18, 1448)),
                (1_076_100, false, tcp(0x18, 1)),
                (3_031_000, true, tcp(0x18, 1023)),
            ],
            0x02,
        )
        .unwrap();
        assert_eq!(items(&ext, SIZES[0]), [1, 1, 0, 1, 0, 0, 0, 0]);
        assert_eq!(items(&ext, TIMES[0]), [0, 1, 1, 0, 0, 0, 0, 0]);
        assert_eq!(items(&ext, SIZES[1]), [0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(items(&ext, TIMES[1]), [0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn includezeroes_counts_empty_packets_and_their_times() {
        let mut p = Phists {
            include_zeroes: true,
        };
        let ext = run(
            &mut p,
            &[
                (1_000_000, false, tcp(0x02, 0)),
                (1_100_000, false, tcp(0x10, 0)),
            ],
            0x12,
        )
        .unwrap();
        assert_eq!(items(&ext, SIZES[0]), [2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(items(&ext, TIMES[0]), [0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(items(&ext, SIZES[1]), [0; BINS]);
    }

    #[test]
    fn time_going_backwards_counts_in_the_first_bin() {
        let mut p = Phists {
            include_zeroes: false,
        };
        let ext = run(
            &mut p,
            &[
                (5_000_000, false, tcp(0x18, 10)),
                (3_000_000, false, tcp(0x18, 10)),
                // Measured from the packet before, which went back: 2,500 ms.
                (5_500_000, false, tcp(0x18, 10)),
            ],
            0x18,
        )
        .unwrap();
        assert_eq!(items(&ext, TIMES[0]), [1, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn a_lone_syn_exports_nothing_and_a_lone_udp_packet_does() {
        let mut p = Phists {
            include_zeroes: false,
        };
        assert!(run(&mut p, &[(1, false, tcp(0x02, 0))], 0x02).is_none());
        let mut udp = Packet {
            payload_len: 50,
            ip_len: 78,
            ip_header_len: 20,
            has_l4: true,
            ..Packet::default()
        };
        udp.key.proto = 17;
        let ext = run(&mut p, &[(1, false, udp)], 0).unwrap();
        assert_eq!(items(&ext, SIZES[0]), [0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn counts_saturate_instead_of_wrapping() {
        let mut h = [u32::MAX - 1; BINS];
        count(&mut h, 3);
        count(&mut h, 3);
        count(&mut h, 3);
        assert_eq!(h[0], u32::MAX);
        assert_eq!(h[1], u32::MAX - 1);
    }
}
