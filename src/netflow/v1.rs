//! NetFlow v1 (softflowd's `-v 1`): a 16-octet header and up to 24 fixed 48-octet records per
//! datagram, for the oldest collectors.
//!
//! v1 is v5 without sequence numbers, engine ids, sampling, AS numbers or masks: the header
//! is version, count, sysUptime and the UNIX time (seconds, nanoseconds); a record is the
//! addresses, next hop, interfaces, packets, octets, FIRST/LAST (sysUptime), ports, a pad,
//! protocol, ToS, TCP flags and padding. IPv4 only, 32-bit counters: as in [`super::v5`],
//! other uniflows are refused (counted as not carried by the caller) and oversized counters
//! are split into records that add up.

use super::v5::split_counters;
use super::{tcp_flags, Clock, DatagramSink};
use crate::meter::FlowRecord;

pub const HEADER_LEN: usize = 16;
pub const RECORD_LEN: usize = 48;
/// softflowd's and Cisco's limit for v1.
pub const MAX_RECORDS: usize = 24;

pub struct V1Encoder {
    /// Header space reserved at the front, then the records.
    buf: Vec<u8>,
    count: u16,
    held_since_ms: Option<u64>,
}

impl Default for V1Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl V1Encoder {
    pub fn new() -> V1Encoder {
        let mut buf = Vec::with_capacity(HEADER_LEN + MAX_RECORDS * RECORD_LEN);
        buf.resize(HEADER_LEN, 0);
        V1Encoder {
            buf,
            count: 0,
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
                                      // Input interface (16 bits in v1: larger indexes are cut to their low bits, as
                                      // routers do), output interface unknown.
        b.extend_from_slice(&(k.ingress as u16).to_be_bytes());
        b.extend_from_slice(&[0; 2]);
        b.extend_from_slice(&packets.to_be_bytes());
        b.extend_from_slice(&octets.to_be_bytes());
        b.extend_from_slice(&clock.uptime_at(uni.start.millis()).to_be_bytes());
        b.extend_from_slice(&clock.uptime_at(uni.end.millis()).to_be_bytes());
        b.extend_from_slice(&k.src_port.to_be_bytes());
        b.extend_from_slice(&k.dst_port.to_be_bytes());
        b.extend_from_slice(&[0, 0]); // pad
        b.extend_from_slice(&[k.proto, 0, tcp_flags(uni)]); // protocol, ToS, flags
        b.extend_from_slice(&[0; 7]); // padding, reserved
        self.count += 1;
    }

    /// Send the buffered records, if any.
    pub fn flush(&mut self, clock: &Clock, out: &mut dyn DatagramSink) {
        if self.count == 0 {
            return;
        }
        let now = clock.now_ms();
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&1u16.to_be_bytes());
        h[2..4].copy_from_slice(&self.count.to_be_bytes());
        h[4..8].copy_from_slice(&clock.uptime_at(now).to_be_bytes());
        h[8..12].copy_from_slice(&((now / 1000) as u32).to_be_bytes());
        // Milliseconds only, so that `header time − sysUptime` is exactly boot (as in v5).
        h[12..16].copy_from_slice(&((now % 1000) as u32 * 1_000_000).to_be_bytes());
        self.buf[..HEADER_LEN].copy_from_slice(&h);
        out.send(&self.buf, u32::from(self.count));
        self.count = 0;
        self.buf.truncate(HEADER_LEN);
        self.held_since_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{proto, FlowKey};
    use crate::time::Timestamp;

    fn uniflow(i: u32) -> FlowRecord {
        let mut key = FlowKey {
            proto: proto::UDP,
            src_port: 5000 + i as u16,
            dst_port: 53,
            ingress: 7,
            ..Default::default()
        };
        key.set_ipv4([10, 0, 0, i as u8], [192, 0, 2, 1]);
        let mut r = FlowRecord {
            key,
            start: Timestamp::from_millis(1_700_000_000_000 + u64::from(i)),
            end: Timestamp::from_millis(1_700_000_000_250 + u64::from(i)),
            ..Default::default()
        };
        r.fwd.packets = u64::from(i) + 2;
        r.fwd.octets = 100 * (u64::from(i) + 2);
        r
    }

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn be16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes(b[at..at + 2].try_into().unwrap())
    }

    /// Every field where the v1 layout puts it (as softflowd's `struct NF1_FLOW` and Cisco's
    /// format table have it), times exact against the header's boot time.
    #[test]
    fn records_follow_the_v1_layout() {
        let mut clock = Clock::default();
        clock.start(Timestamp::from_millis(1_700_000_000_000));
        clock.advance(Timestamp::from_millis(1_700_000_001_234));
        let recs: Vec<FlowRecord> = (0..30).map(uniflow).collect();
        let mut enc = V1Encoder::new();
        let mut out: Vec<(Vec<u8>, u32)> = Vec::new();
        let mut sink = |d: &[u8], n: u32| out.push((d.to_vec(), n));
        for r in &recs {
            enc.push(r, &clock, &mut sink);
        }
        enc.flush(&clock, &mut sink);
        assert_eq!(out.iter().map(|d| d.1).collect::<Vec<_>>(), [24, 6]);
        let mut seen = 0;
        for (d, n) in &out {
            assert_eq!(d.len(), HEADER_LEN + *n as usize * RECORD_LEN);
            assert_eq!(be16(d, 0), 1);
            assert_eq!(u32::from(be16(d, 2)), *n);
            assert_eq!(
                be32(d, 4),
                61_234,
                "sysUptime: boot a minute before the first packet"
            );
            assert_eq!((be32(d, 8), be32(d, 12)), (1_700_000_001, 234_000_000));
            let boot = 1_700_000_001_234 - u64::from(be32(d, 4));
            for i in 0..*n as usize {
                let r = &recs[seen];
                seen += 1;
                let f = &d[HEADER_LEN + i * RECORD_LEN..][..RECORD_LEN];
                assert_eq!(&f[0..4], &r.key.src[..4]);
                assert_eq!(&f[4..8], &[192, 0, 2, 1]);
                assert_eq!(&f[8..12], &[0; 4], "next hop");
                assert_eq!((be16(f, 12), be16(f, 14)), (7, 0), "input, output");
                assert_eq!(u64::from(be32(f, 16)), r.fwd.packets);
                assert_eq!(u64::from(be32(f, 20)), r.fwd.octets);
                assert_eq!(boot + u64::from(be32(f, 24)), r.start.millis());
                assert_eq!(boot + u64::from(be32(f, 28)), r.end.millis());
                assert_eq!((be16(f, 32), be16(f, 34)), (r.key.src_port, 53));
                assert_eq!(be16(f, 36), 0, "pad");
                assert_eq!((f[38], f[39], f[40]), (proto::UDP, 0, 0));
                assert_eq!(&f[41..48], &[0; 7]);
            }
        }
        assert_eq!(seen, recs.len());
    }

    #[test]
    fn ipv6_is_not_carried_and_nothing_empty_is_sent() {
        let clock = Clock::default();
        let mut r = uniflow(1);
        r.key.set_ipv6([1; 16], [2; 16]);
        let mut enc = V1Encoder::new();
        let mut sent = 0;
        assert_eq!(enc.push(&r, &clock, &mut |_: &[u8], _| sent += 1), 0);
        enc.flush(&clock, &mut |_: &[u8], _| sent += 1);
        assert_eq!(sent, 0);
    }
}
