//! NetFlow v5: a 24-octet header and up to 30 fixed 48-octet records per datagram.
//!
//! v5 carries IPv4 only; any other uniflow is refused (the caller counts it as not carried).
//! Its packet and octet counters are 32 bits. A uniflow whose counters do not fit is split
//! into as many records as needed, same key and times, counters shared out so that the
//! records add up to the exact totals: a collector that sums (which is what collectors do)
//! gets the right figures, where saturating at 2^32 − 1 would under-report silently.
//! ICMP type and code travel in the destination port (`type << 8 | code`), as qof's key
//! already holds them. The input interface is the flow key's ingress interface; fields qof
//! does not know (next hop, output interface, AS numbers, masks, ToS) are zero.

use super::{tcp_flags, Clock, DatagramSink, Settings};
use crate::meter::FlowRecord;

pub const HEADER_LEN: usize = 24;
pub const RECORD_LEN: usize = 48;
/// The format's own limit (1464-octet datagrams, within a 1500-octet Ethernet MTU).
pub const MAX_RECORDS: usize = 30;

pub struct V5Encoder {
    engine_type: u8,
    engine_id: u8,
    /// Header space reserved at the front, then the records.
    buf: Vec<u8>,
    count: u16,
    /// Records sent before the buffered ones (the header's flow_sequence).
    sequence: u32,
    held_since_ms: Option<u64>,
    /// The header's sampling_interval field.
    sampling: u16,
}

impl V5Encoder {
    pub fn new(settings: &Settings) -> V5Encoder {
        let mut buf = Vec::with_capacity(HEADER_LEN + MAX_RECORDS * RECORD_LEN);
        buf.resize(HEADER_LEN, 0);
        V5Encoder {
            engine_type: settings.engine_type,
            engine_id: settings.engine_id,
            // Mode in the top 2 bits, interval in the low 14 (N is at most 16383 with v5).
            sampling: settings.sampling.map_or(0, |(mode, n)| {
                u16::from(mode & 3) << 14 | n.min(0x3fff) as u16
            }),
            buf,
            count: 0,
            sequence: 0,
            held_since_ms: None,
        }
    }

    /// Packet time (ms) when the oldest buffered record arrived, if any is buffered.
    pub fn held_since_ms(&self) -> Option<u64> {
        self.held_since_ms
    }

    /// Buffer the records of one uniflow; returns how many were written (0: not IPv4).
    pub fn push(&mut self, uni: &FlowRecord, clock: &Clock, out: &mut dyn DatagramSink) -> u32 {
        if !uni.key.is_ipv4() {
            return 0;
        }
        let parts = split_counters(uni.fwd.packets, uni.fwd.octets);
        for (packets, octets) in parts {
            self.held_since_ms.get_or_insert(clock.now_ms());
            self.record(uni, packets, octets, clock);
            if usize::from(self.count) == MAX_RECORDS {
                self.flush(clock, out);
            }
        }
        parts.len()
    }

    fn record(&mut self, uni: &FlowRecord, packets: u32, octets: u32, clock: &Clock) {
        let k = &uni.key;
        let b = &mut self.buf;
        b.extend_from_slice(&k.src[..4]);
        b.extend_from_slice(&k.dst[..4]);
        b.extend_from_slice(&[0; 4]); // next hop
                                      // Input interface (16 bits in v5: a larger index keeps its low bits), output unknown.
        b.extend_from_slice(&(k.ingress as u16).to_be_bytes());
        b.extend_from_slice(&[0; 2]);
        b.extend_from_slice(&packets.to_be_bytes());
        b.extend_from_slice(&octets.to_be_bytes());
        b.extend_from_slice(&clock.uptime_at(uni.start.millis()).to_be_bytes());
        b.extend_from_slice(&clock.uptime_at(uni.end.millis()).to_be_bytes());
        b.extend_from_slice(&k.src_port.to_be_bytes());
        b.extend_from_slice(&k.dst_port.to_be_bytes());
        b.extend_from_slice(&[0, tcp_flags(uni), k.proto, 0]); // pad1, flags, protocol, ToS
        b.extend_from_slice(&[0; 8]); // AS numbers, masks, pad2
        self.count += 1;
    }

    /// Send the buffered records, if any.
    pub fn flush(&mut self, clock: &Clock, out: &mut dyn DatagramSink) {
        if self.count == 0 {
            return;
        }
        let now = clock.now_ms();
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&5u16.to_be_bytes());
        h[2..4].copy_from_slice(&self.count.to_be_bytes());
        h[4..8].copy_from_slice(&clock.uptime_at(now).to_be_bytes());
        h[8..12].copy_from_slice(&((now / 1000) as u32).to_be_bytes());
        // Milliseconds only, so that a collector's `header time − sysUptime` is exactly boot.
        h[12..16].copy_from_slice(&((now % 1000) as u32 * 1_000_000).to_be_bytes());
        h[16..20].copy_from_slice(&self.sequence.to_be_bytes());
        h[20] = self.engine_type;
        h[21] = self.engine_id;
        // Sampling mode and interval; 0 = unsampled.
        h[22..24].copy_from_slice(&self.sampling.to_be_bytes());
        self.buf[..HEADER_LEN].copy_from_slice(&h);
        out.send(&self.buf, u32::from(self.count));
        self.sequence = self.sequence.wrapping_add(u32::from(self.count));
        self.count = 0;
        self.buf.truncate(HEADER_LEN);
        self.held_since_ms = None;
    }
}

/// Up to this many records carry one uniflow (`u64::MAX` octets need 2^32 + 1 records; a
/// flow that large is beyond any capture, so the last record takes what remains).
const MAX_PARTS: usize = 4;

/// A fixed-capacity list of (packets, octets) parts that never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    parts: [(u32, u32); MAX_PARTS],
    len: usize,
}

impl Parts {
    pub fn len(&self) -> u32 {
        self.len as u32
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl IntoIterator for Parts {
    type Item = (u32, u32);
    type IntoIter = std::iter::Take<std::array::IntoIter<(u32, u32), MAX_PARTS>>;
    fn into_iter(self) -> Self::IntoIter {
        self.parts.into_iter().take(self.len)
    }
}

/// Share `packets` and `octets` out over the fewest records whose 32-bit counters hold them.
/// Each record gets an equal share, the first ones one more while a remainder lasts, so the
/// parts add up to the totals exactly (up to [`MAX_PARTS`] records; beyond, the last
/// record saturates).
pub fn split_counters(packets: u64, octets: u64) -> Parts {
    let max = u64::from(u32::MAX);
    let needed = packets.div_ceil(max).max(octets.div_ceil(max)).max(1);
    let n = needed.min(MAX_PARTS as u64);
    let mut parts = [(0u32, 0u32); MAX_PARTS];
    for (i, slot) in parts.iter_mut().enumerate().take(n as usize) {
        let share = |total: u64| {
            let i = i as u64;
            let v = total / n + u64::from(i < total % n);
            u32::try_from(v).unwrap_or(u32::MAX)
        };
        *slot = (share(packets), share(octets));
    }
    Parts {
        parts,
        len: n as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{proto, FlowKey};
    use crate::time::Timestamp;
    use netflow_parser::{NetflowPacket, NetflowParser};
    use std::net::Ipv4Addr;

    fn settings() -> Settings {
        Settings {
            version: super::super::Version::V5,
            engine_type: 1,
            engine_id: 42,
            ..Settings::default()
        }
    }

    fn uniflow(i: u32, v6: bool) -> FlowRecord {
        let mut key = FlowKey {
            proto: proto::TCP,
            src_port: 40_000 + i as u16,
            dst_port: 443,
            ..Default::default()
        };
        if v6 {
            key.set_ipv6([0x20; 16], [0x30; 16]);
        } else {
            key.set_ipv4([10, 0, (i >> 8) as u8, i as u8], [192, 0, 2, 1]);
        }
        let mut r = FlowRecord {
            key,
            start: Timestamp::from_millis(1_700_000_000_000 + u64::from(i) * 10),
            end: Timestamp::from_millis(1_700_000_000_500 + u64::from(i) * 10),
            ..Default::default()
        };
        r.fwd.packets = u64::from(i) + 1;
        r.fwd.octets = 60 * (u64::from(i) + 1);
        r.fwd.initial_tcp_flags = 0x02;
        r.fwd.union_tcp_flags = 0x18;
        r
    }

    fn collect(enc: &mut V5Encoder, clock: &Clock, recs: &[FlowRecord]) -> Vec<(Vec<u8>, u32)> {
        let mut out: Vec<(Vec<u8>, u32)> = Vec::new();
        let mut sink = |d: &[u8], n: u32| out.push((d.to_vec(), n));
        for r in recs {
            enc.push(r, clock, &mut sink);
        }
        enc.flush(clock, &mut sink);
        out
    }

    #[test]
    fn every_field_decodes_with_netflow_parser() {
        let mut clock = Clock::default();
        clock.start(Timestamp::from_millis(1_700_000_000_000));
        clock.advance(Timestamp::from_millis(1_700_000_123_456));
        let recs: Vec<FlowRecord> = (0..45).map(|i| uniflow(i, false)).collect();
        let mut enc = V5Encoder::new(&settings());
        let out = collect(&mut enc, &clock, &recs);
        assert_eq!(out.iter().map(|d| d.1).collect::<Vec<_>>(), [30, 15]);
        assert_eq!(out[0].0.len(), HEADER_LEN + 30 * RECORD_LEN);

        let mut parser = NetflowParser::default();
        let mut seen = 0usize;
        for (i, (bytes, _)) in out.iter().enumerate() {
            let parsed = parser.parse_bytes(bytes);
            assert!(parsed.error.is_none(), "{:?}", parsed.error);
            let [NetflowPacket::V5(v5)] = parsed.packets.as_slice() else {
                panic!("one v5 packet: {:?}", parsed.packets);
            };
            let h = &v5.header;
            assert_eq!(h.version, 5);
            assert_eq!(usize::from(h.count), v5.flowsets.len());
            assert_eq!(h.flow_sequence, if i == 0 { 0 } else { 30 });
            assert_eq!(
                (h.engine_type, h.engine_id, h.sampling_interval),
                (1, 42, 0)
            );
            assert_eq!((h.unix_secs, h.unix_nsecs), (1_700_000_123, 456_000_000));
            assert_eq!(h.sys_up_time, 123_456 + 60_000);
            let boot_ms = u64::from(h.unix_secs) * 1000 + u64::from(h.unix_nsecs) / 1_000_000
                - u64::from(h.sys_up_time);
            for f in &v5.flowsets {
                let r = &recs[seen];
                seen += 1;
                assert_eq!(
                    f.src_addr,
                    Ipv4Addr::from(<[u8; 4]>::try_from(&r.key.src[..4]).unwrap())
                );
                assert_eq!(f.dst_addr, Ipv4Addr::new(192, 0, 2, 1));
                assert_eq!(f.next_hop, Ipv4Addr::UNSPECIFIED);
                assert_eq!((f.input, f.output), (0, 0));
                assert_eq!(u64::from(f.d_pkts), r.fwd.packets);
                assert_eq!(u64::from(f.d_octets), r.fwd.octets);
                assert_eq!(boot_ms + u64::from(f.first), r.start.millis());
                assert_eq!(boot_ms + u64::from(f.last), r.end.millis());
                assert_eq!((f.src_port, f.dst_port), (r.key.src_port, 443));
                assert_eq!(f.tcp_flags, 0x1a);
                assert_eq!(f.protocol_number, proto::TCP);
                assert_eq!(
                    (f.tos, f.src_as, f.dst_as, f.src_mask, f.dst_mask),
                    (0, 0, 0, 0, 0)
                );
            }
        }
        assert_eq!(seen, recs.len());
    }

    #[test]
    fn ipv6_is_not_carried() {
        let clock = Clock::default();
        let mut enc = V5Encoder::new(&settings());
        let mut sent = 0;
        assert_eq!(
            enc.push(&uniflow(1, true), &clock, &mut |_: &[u8], _| sent += 1),
            0
        );
        enc.flush(&clock, &mut |_: &[u8], _| sent += 1);
        assert_eq!(sent, 0, "nothing to send, no empty datagram");
    }

    #[test]
    fn oversized_counters_split_into_records_that_add_up() {
        let max = u64::from(u32::MAX);
        let cases = [
            (1, 40),
            (0, 0),
            (max, max),
            (3, max + 1),
            (70_000, 3 * max + 2),
            (max * 2 + 5, 100 * max),
        ];
        for (packets, octets) in cases {
            let parts = split_counters(packets, octets);
            let sum_p: u64 = parts.into_iter().map(|p| u64::from(p.0)).sum();
            let sum_o: u64 = parts.into_iter().map(|p| u64::from(p.1)).sum();
            let needed = packets.div_ceil(max).max(octets.div_ceil(max)).max(1);
            if needed <= MAX_PARTS as u64 {
                assert_eq!((sum_p, sum_o), (packets, octets), "{packets} {octets}");
                assert_eq!(u64::from(parts.len()), needed);
            } else {
                assert_eq!(parts.len() as usize, MAX_PARTS);
                assert!(sum_o < octets && parts.into_iter().all(|p| p.1 == u32::MAX));
            }
        }

        // Through the encoder: one uniflow of 5 GB becomes two records with the same key.
        let mut r = uniflow(3, false);
        r.fwd.packets = 4_000_000;
        r.fwd.octets = 5_000_000_000;
        let mut clock = Clock::default();
        clock.advance(r.end);
        let mut enc = V5Encoder::new(&settings());
        let out = collect(&mut enc, &clock, &[r.clone()]);
        let parsed = NetflowParser::default().parse_bytes(&out[0].0);
        let [NetflowPacket::V5(v5)] = parsed.packets.as_slice() else {
            panic!("{:?}", parsed.packets);
        };
        assert_eq!(v5.flowsets.len(), 2);
        let octets: u64 = v5.flowsets.iter().map(|f| u64::from(f.d_octets)).sum();
        let packets: u64 = v5.flowsets.iter().map(|f| u64::from(f.d_pkts)).sum();
        assert_eq!((packets, octets), (4_000_000, 5_000_000_000));
        assert!(v5.flowsets.iter().all(|f| f.src_port == r.key.src_port));
    }
}
