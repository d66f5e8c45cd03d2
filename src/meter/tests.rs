//! Scripted-packet tests of the metering core, on a virtual clock.

use super::*;
use crate::decode::TcpInfo;
use crate::key::{proto, FlowKey};
pub(super) use crate::testrand::xorshift;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

pub(super) fn v4(a: [u8; 4], sp: u16, b: [u8; 4], dp: u16, p: u8) -> FlowKey {
    let mut k = FlowKey {
        src_port: sp,
        dst_port: dp,
        proto: p,
        ..Default::default()
    };
    k.set_ipv4(a, b);
    k
}

pub(super) const A: [u8; 4] = [10, 0, 0, 1];
pub(super) const B: [u8; 4] = [10, 0, 0, 2];

fn tcp(key: FlowKey, flags: u8, len: u32) -> Packet {
    Packet {
        key,
        ip_len: 40 + len,
        payload_len: len,
        ip_header_len: 20,
        ttl: 64,
        has_l4: true,
        tcp: Some(TcpInfo {
            flags,
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub(super) fn udp(key: FlowKey, len: u32) -> Packet {
    Packet {
        key,
        ip_len: 28 + len,
        payload_len: len,
        ip_header_len: 20,
        ttl: 64,
        has_l4: true,
        ..Default::default()
    }
}

/// A meter plus a virtual clock in milliseconds.
struct Harness {
    m: Meter,
}

impl Harness {
    fn new(cfg: MeterConfig) -> Self {
        Harness { m: Meter::new(cfg) }
    }
    fn at(&mut self, ms: u64, p: Packet) {
        self.m
            .handle_packet(Timestamp::from_millis(1_000_000 + ms), &p);
    }
    fn records(&mut self) -> Vec<FlowRecord> {
        std::iter::from_fn(|| self.m.poll_record()).collect()
    }
    fn finish(&mut self) -> Vec<FlowRecord> {
        self.m.flush();
        self.records()
    }
}

fn ms(r: &FlowRecord) -> (u64, u64) {
    (r.start.millis() - 1_000_000, r.end.millis() - 1_000_000)
}

#[test]
fn both_directions_form_one_biflow() {
    let mut h = Harness::new(MeterConfig::default());
    let k = v4(A, 40000, B, 80, proto::TCP);
    h.at(0, tcp(k, SYN, 0));
    h.at(10, tcp(k.reversed(), SYN | ACK, 0));
    h.at(20, tcp(k, ACK, 100));
    let recs = h.finish();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.key, k);
    assert_eq!((r.fwd.packets, r.fwd.octets), (2, 180));
    assert_eq!((r.rev.packets, r.rev.octets), (1, 40));
    assert_eq!(r.fwd.initial_tcp_flags, SYN);
    assert_eq!(r.fwd.union_tcp_flags, ACK);
    assert_eq!(r.rev.initial_tcp_flags, SYN | ACK);
    assert_eq!(r.reverse_delta_millis(), 10);
    assert_eq!(ms(r), (0, 20));
    assert_eq!(r.end_reason, end_reason::FORCED);
    assert_eq!(r.flow_id, 1);
}

#[test]
fn fin_handshake_closes_on_last_ack_and_later_packets_start_a_new_flow() {
    let mut h = Harness::new(MeterConfig::default());
    let k = v4(A, 40000, B, 80, proto::TCP);
    h.at(0, tcp(k, ACK, 10));
    h.at(1, tcp(k, FIN | ACK, 0));
    h.at(2, tcp(k.reversed(), FIN | ACK, 0));
    assert!(h.records().is_empty(), "not closed before the last ACK");
    h.at(3, tcp(k, ACK, 0));
    let recs = h.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].end_reason, end_reason::END_OF_FLOW);
    assert_eq!(recs[0].fwd.packets + recs[0].rev.packets, 4);
    // A retransmitted FIN after the close is a new flow with a new id.
    h.at(4, tcp(k.reversed(), FIN | ACK, 0));
    let recs = h.finish();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].flow_id, 2);
    assert_eq!(recs[0].key, k.reversed());
}

#[test]
fn rst_closes_at_once() {
    let mut h = Harness::new(MeterConfig::default());
    let k = v4(A, 1, B, 2, proto::TCP);
    h.at(0, tcp(k, SYN, 0));
    h.at(1, tcp(k.reversed(), RST | ACK, 0));
    let recs = h.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].end_reason, end_reason::END_OF_FLOW);
    assert_eq!(recs[0].rev.packets, 1);
}

#[test]
fn idle_flow_is_swept_by_packet_time_alone() {
    let cfg = MeterConfig {
        idle_timeout_ms: 5_000,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let quiet = v4(A, 1000, B, 53, proto::UDP);
    let busy = v4(A, 2000, B, 53, proto::UDP);
    h.at(0, udp(quiet, 10));
    for t in (0..=8_000).step_by(500) {
        h.at(t, udp(busy, 10));
    }
    let recs = h.records();
    assert_eq!(recs.len(), 1, "only the quiet flow has expired");
    assert_eq!(recs[0].key, quiet);
    assert_eq!(recs[0].end_reason, end_reason::IDLE);
    let rest = h.finish();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].fwd.packets, 17);
}

#[test]
fn idle_gap_seen_on_arrival_splits_with_a_new_flow_id() {
    let cfg = MeterConfig {
        idle_timeout_ms: 5_000,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let k = v4(A, 1000, B, 53, proto::UDP);
    h.at(0, udp(k, 10));
    // Same second bucket trick: jump far, the sweep or the arrival check must split.
    h.at(5_001, udp(k.reversed(), 10));
    let mut recs = h.records();
    recs.extend(h.finish());
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].end_reason, end_reason::IDLE);
    assert_eq!(recs[0].fwd.packets, 1);
    assert_ne!(recs[0].flow_id, recs[1].flow_id);
    assert_eq!(
        recs[1].key,
        k.reversed(),
        "a new flow takes the direction of its first packet"
    );
}

#[test]
fn active_timeout_continues_under_the_same_flow_id() {
    let cfg = MeterConfig {
        active_timeout_ms: 10_000,
        idle_timeout_ms: 60_000,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let k = v4(A, 1, B, 2, proto::UDP);
    for t in (0..=25_000).step_by(1_000) {
        h.at(t, udp(if t % 2000 == 0 { k } else { k.reversed() }, 100));
    }
    let mut recs = h.records();
    recs.extend(h.finish());
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r.flow_id == recs[0].flow_id));
    // Each continuation is oriented by its first packet (odd seconds travel in reverse).
    assert_eq!(recs[0].key, k);
    assert_eq!(recs[1].key, k.reversed(), "continuation starting at 11 s");
    assert_eq!(recs[2].key, k, "continuation starting at 22 s");
    assert_eq!(recs[0].end_reason, end_reason::ACTIVE);
    assert_eq!(recs[1].end_reason, end_reason::ACTIVE);
    assert_eq!(recs[2].end_reason, end_reason::FORCED);
    let total: u64 = recs.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
    assert_eq!(total, 26);
    assert_eq!(ms(&recs[0]), (0, 10_000));
    assert_eq!(ms(&recs[1]).0, 11_000);
}

#[test]
fn silk_mode_marks_continuations() {
    let cfg = MeterConfig {
        active_timeout_ms: 1_000,
        silk_compatible: true,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let k = v4(A, 1, B, 2, proto::UDP);
    h.at(0, udp(k, 1));
    h.at(1_500, udp(k, 1));
    let mut recs = h.records();
    recs.extend(h.finish());
    assert_eq!(recs[0].end_reason, end_reason::ACTIVE);
    assert_eq!(
        recs[1].end_reason,
        end_reason::FORCED | end_reason::CONTINUATION
    );
}

#[test]
fn full_table_evicts_the_least_recently_seen_flow() {
    let cfg = MeterConfig {
        max_flows: 3,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let keys: Vec<FlowKey> = (0..4).map(|i| v4(A, 1000 + i, B, 53, proto::UDP)).collect();
    h.at(0, udp(keys[0], 1));
    h.at(1_000, udp(keys[1], 1));
    h.at(2_000, udp(keys[2], 1));
    h.at(3_000, udp(keys[0], 1)); // keys[0] is now the most recent
    h.at(4_000, udp(keys[3], 1));
    let recs = h.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key, keys[1]);
    assert_eq!(recs[0].end_reason, end_reason::LACK_OF_RESOURCES);
    assert_eq!(h.m.stats().flows_evicted, 1);
    assert_eq!(h.finish().len(), 3);
}

#[test]
fn icmp_request_and_reply_are_two_flows() {
    let mut h = Harness::new(MeterConfig::default());
    let req = v4(A, 0, B, 0x0800, proto::ICMP);
    let rep = v4(B, 0, A, 0x0000, proto::ICMP);
    h.at(0, udp(req, 56));
    h.at(1, udp(rep, 56));
    h.at(2, udp(req, 56));
    let recs = h.finish();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].fwd.packets, 2);
    assert_eq!(recs[1].fwd.packets, 1);
}

#[test]
fn packet_time_going_back_still_counts() {
    let mut h = Harness::new(MeterConfig::default());
    let k = v4(A, 1, B, 2, proto::UDP);
    h.at(1_000, udp(k, 1));
    h.at(900, udp(k, 1));
    let recs = h.finish();
    assert_eq!(recs[0].fwd.packets, 2);
    assert_eq!(ms(&recs[0]), (1_000, 1_000));
}

fn frag(key: FlowKey, id: u32, offset: u32, more: bool, share: u32) -> Packet {
    Packet {
        key,
        ip_len: 20 + share,
        ip_header_len: 20,
        ttl: 7,
        frag: Some(crate::decode::FragInfo { id, offset, more }),
        has_l4: offset == 0,
        ..Default::default()
    }
}

#[test]
fn fragments_count_one_packet_each_in_their_datagram_flow() {
    let mut h = Harness::new(MeterConfig::default());
    let k = v4(A, 5353, B, 53, proto::UDP);
    let portless = FlowKey {
        src_port: 0,
        dst_port: 0,
        ..k
    };
    // In order: first, middle, last.
    h.at(0, frag(k, 7, 0, true, 1480));
    h.at(1, frag(portless, 7, 1480, true, 1480));
    h.at(2, frag(portless, 7, 2960, false, 100));
    // Out of order: last and middle before the first.
    h.at(10, frag(portless, 8, 2960, false, 100));
    h.at(11, frag(portless, 8, 1480, true, 1480));
    h.at(12, frag(k, 8, 0, true, 1480));
    assert_eq!(h.m.stats().assembled_datagrams, 2);
    let recs = h.finish();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key, k);
    assert_eq!(recs[0].fwd.packets, 6);
    assert_eq!(recs[0].fwd.octets, 2 * (1500 + 1500 + 120));
    assert_eq!(h.m.stats().expired_fragments, 0);
}

#[test]
fn fragments_without_a_first_fragment_are_counted_as_expired() {
    let mut h = Harness::new(MeterConfig::default());
    let portless = v4(A, 0, B, 0, proto::UDP);
    h.at(0, frag(portless, 9, 1480, true, 1480));
    h.at(1, frag(portless, 9, 2960, false, 10));
    let other = v4(A, 1, B, 2, proto::UDP);
    h.at(40_000, udp(other, 1)); // 40 s later: the datagram has timed out
    assert_eq!(h.m.stats().expired_fragments, 2);
    let recs = h.finish();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key, other);
}

#[test]
fn fragment_table_limit_evicts_and_counts() {
    let cfg = MeterConfig {
        max_frags: 2,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let portless = v4(A, 0, B, 0, proto::UDP);
    for id in 0..5 {
        h.at(id as u64, frag(portless, id, 8, false, 8));
    }
    assert_eq!(h.m.stats().expired_fragments, 3);
    h.finish();
    assert_eq!(h.m.stats().expired_fragments, 5);
}

#[test]
fn flow_state_fits_the_memory_budget() {
    assert!(
        std::mem::size_of::<Flow>() <= 96,
        "Flow is {} bytes",
        std::mem::size_of::<Flow>()
    );
    assert!(table::FlowTable::bytes_per_flow() <= 124);
}

#[test]
fn many_flows_all_come_out_exactly_once() {
    let cfg = MeterConfig {
        idle_timeout_ms: 2_000,
        max_flows: 5_000,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let mut sent = 0u64;
    for i in 0..20_000u32 {
        let k = v4(
            [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            1000,
            B,
            80,
            proto::UDP,
        );
        let t = u64::from(i) / 4;
        h.at(t, udp(k, 1));
        h.at(t, udp(k.reversed(), 1));
        sent += 2;
    }
    let mut recs = h.records();
    recs.extend(h.finish());
    let got: u64 = recs.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
    assert_eq!(got, sent);
    assert_eq!(recs.len(), 20_000);
    let mut ids: Vec<u64> = recs.iter().map(|r| r.flow_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20_000);
    assert!(h.m.stats().peak_flows <= 5_000);
}

/// A random test round: a meter configuration (tiny tables, short timeouts) and packets over
/// a small key space, with random TCP flags, time steps (some backwards, some huge) and
/// fragments, as (ms, packet).
pub(super) fn random_round(
    next: &mut impl FnMut() -> u64,
    round: u32,
) -> (MeterConfig, Vec<(u64, Packet)>) {
    let cfg = MeterConfig {
        idle_timeout_ms: 1 + next() % 5_000,
        active_timeout_ms: 1 + next() % 20_000,
        max_flows: (next() % 20) as usize,
        max_frags: (next() % 4) as usize,
        silk_compatible: round % 2 == 0,
        track_transport: true,
        ..Default::default()
    };
    let mut t = 0u64;
    let mut packets = Vec::new();
    for _ in 0..3_000 {
        let r = next();
        t = match r % 100 {
            0 => t.saturating_sub(r % 3_000),
            1 => t + 100_000,
            _ => t + r % 700,
        };
        let p = [proto::TCP, proto::UDP, proto::ICMP][(r >> 8) as usize % 3];
        let mut k = v4(
            [10, 0, 0, (r >> 12) as u8 % 4],
            1000 + (r >> 16) as u16 % 3,
            B,
            80,
            p,
        );
        if r >> 20 & 1 == 1 {
            k = k.reversed();
        }
        let len = (r >> 24) as u32 % 1400;
        let mut pkt = if p == proto::TCP {
            let mut pkt = tcp(k, (r >> 32) as u8, len);
            if let Some(t) = pkt.tcp.as_mut() {
                // Sequence and ACK numbers from a small space: retransmissions, gaps, jumps.
                (t.seq, t.ack) = ((r >> 49) as u32 % 20_000, (next() % 20_000) as u32);
            }
            pkt
        } else {
            // Mostly datagrams of one header length with payload, whose counters stay
            // implicit; now and then an empty one or one with IP options.
            let mut pkt = udp(k, if r >> 52 & 15 == 0 { 0 } else { len });
            if r >> 56 & 15 == 0 {
                pkt.ip_len += 4;
                pkt.ip_header_len += 4;
            }
            pkt
        };
        if r >> 40 & 7 == 0 {
            // A fragment: sometimes first, sometimes not, random ids.
            let id = (r >> 44) as u32 % 3;
            let first = r >> 47 & 1 == 1;
            let ports = if first {
                k
            } else {
                FlowKey {
                    src_port: 0,
                    dst_port: 0,
                    ..k
                }
            };
            pkt = frag(
                ports,
                id,
                if first { 0 } else { 1480 },
                r >> 48 & 1 == 1,
                len,
            );
            pkt.payload_len = 0;
        }
        packets.push((t, pkt));
    }
    (cfg, packets)
}

/// Random packet sequences (see [`random_round`]): every packet and octet handed in comes out
/// in exactly one record, and no record is empty.
#[test]
fn random_sequences_conserve_packets_and_octets() {
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for round in 0..40 {
        let (cfg, packets) = random_round(&mut next, round);
        let mut h = Harness::new(cfg);
        let (mut pkts, mut octets, mut payload, mut carrying) = (0u64, 0u64, 0u64, 0u64);
        let mut recs = Vec::new();
        for (t, pkt) in packets {
            h.at(t, pkt);
            pkts += 1;
            octets += u64::from(pkt.ip_len);
            payload += u64::from(pkt.payload_len);
            carrying += u64::from(pkt.payload_len > 0);
            recs.extend(h.records());
        }
        recs.extend(h.finish());
        let expired = h.m.stats().expired_fragments;
        let got_p: u64 = recs.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
        let got_o: u64 = recs.iter().map(|r| r.fwd.octets + r.rev.octets).sum();
        let got_t: u64 = recs
            .iter()
            .map(|r| r.fwd.transport_octets + r.rev.transport_octets)
            .sum();
        assert_eq!(got_p + expired, pkts, "round {round}: packets");
        assert!(got_o <= octets, "round {round}: octets");
        if expired == 0 {
            assert_eq!(got_o, octets, "round {round}: octets");
        }
        assert_eq!(got_t, payload, "round {round}: transport octets");
        let got_tp: u64 = recs
            .iter()
            .map(|r| r.fwd.transport_packets + r.rev.transport_packets)
            .sum();
        assert_eq!(got_tp, carrying, "round {round}: transport packets");
        assert!(
            recs.iter().all(|r| r.fwd.packets > 0),
            "round {round}: empty record"
        );
        assert!(
            recs.iter().all(|r| r.end >= r.start),
            "round {round}: end before start"
        );
        assert_eq!(h.m.active_flows(), 0);
    }
}

/// Packets through a [`Lookahead`] (which loads each flow's state a few packets ahead) give
/// the same records in the same order as packets metered at once, with every TCP measurement
/// on and with none.
#[test]
fn queued_packets_give_the_records_of_packets_metered_at_once() {
    let mut next = xorshift(0x1f12_3bb5_1597_2468);
    for round in 0..40 {
        let (mut cfg, packets) = random_round(&mut next, round);
        if round % 2 == 1 {
            cfg.tcp = TcpConfig {
                seq: true,
                rtt: true,
                ack: true,
                rwin: true,
                ts: true,
                iat: true,
                options: true,
                ..TcpConfig::default()
            };
        }
        let (mut now, mut queued) = (Meter::new(cfg), Lookahead::new(Meter::new(cfg)));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (i, (t, pkt)) in packets.iter().enumerate() {
            let ts = Timestamp::from_millis(1_000_000 + t);
            now.handle_packet(ts, pkt);
            *queued.next_packet() = *pkt;
            queued.push(ts, &[]);
            if i % 1_000 == 999 {
                // A timeout tick in the middle meters what is queued first.
                now.handle_timeout(ts);
                queued.handle_timeout(ts);
            }
            a.extend(std::iter::from_fn(|| now.poll_record()));
            b.extend(std::iter::from_fn(|| queued.poll_record()));
        }
        now.flush();
        queued.flush();
        a.extend(std::iter::from_fn(|| now.poll_record()));
        b.extend(std::iter::from_fn(|| queued.poll_record()));
        assert!(a.len() > 100, "round {round}: {} records", a.len());
        assert_eq!(a, b, "round {round}");
        assert_eq!(now.stats(), queued.meter().stats(), "round {round}");
    }
}

/// The flows of one expiry tick become records one at a time, as they are polled: memory
/// holds their slots, never a backlog of whole records; order and content are as if each had
/// been closed at the tick.
#[test]
fn expired_and_flushed_flows_become_records_only_when_polled() {
    let cfg = MeterConfig {
        idle_timeout_ms: 5_000,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let keys: Vec<FlowKey> = (0..500)
        .map(|i| v4(A, 1000 + i, B, 53, proto::UDP))
        .collect();
    for &k in &keys {
        h.at(0, udp(k, 10));
    }
    let ticker = v4(B, 7, A, 7, proto::UDP);
    h.at(6_500, udp(ticker, 1));
    assert_eq!(h.m.out.len(), 0, "no record made before it is asked for");
    assert_eq!(h.m.pending.len(), 500);
    let recs = h.records();
    assert_eq!(recs.len(), 500);
    assert!(recs.iter().all(|r| r.end_reason == end_reason::IDLE));
    let mut got: Vec<FlowKey> = recs.iter().map(|r| r.key).collect();
    got.sort_by_key(|k| k.src_port);
    assert_eq!(got, keys);
    assert_eq!(h.m.active_flows(), 1);
    h.m.flush();
    assert_eq!(h.m.out.len(), 0);
    let rest = h.records();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].end_reason, end_reason::FORCED);
    assert_eq!(h.m.stats().records_emitted, 501);
}

/// A packet of a flow expiring on the very tick the packet brings: the old flow ends first
/// (idle), the packet starts a new one, and the records come out in that order.
#[test]
fn packet_of_a_flow_expiring_on_its_own_tick_starts_a_new_flow() {
    let cfg = MeterConfig {
        idle_timeout_ms: 5_000,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    let other = v4(A, 1001, B, 53, proto::UDP);
    let k = v4(A, 1000, B, 80, proto::TCP);
    h.at(0, udp(other, 10));
    h.at(100, tcp(k, SYN, 0));
    h.at(6_300, tcp(k, RST, 0)); // the tick expires both flows; the RST then ends its own
    let recs = h.records();
    let seen: Vec<(FlowKey, u8, u64)> = recs
        .iter()
        .map(|r| (r.key, r.end_reason, r.fwd.packets))
        .collect();
    assert_eq!(seen.len(), 3);
    assert!(seen[..2].contains(&(other, end_reason::IDLE, 1)));
    assert!(seen[..2].contains(&(k, end_reason::IDLE, 1)));
    assert_eq!(seen[2], (k, end_reason::END_OF_FLOW, 1));
    assert_ne!(recs[1].flow_id, recs[2].flow_id);
    assert!(h.finish().is_empty());
}

/// A full table makes room from flows that have expired before it evicts a live one.
#[test]
fn full_table_uses_expired_flows_before_evicting() {
    let cfg = MeterConfig {
        idle_timeout_ms: 5_000,
        max_flows: 2,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    h.at(0, udp(v4(A, 1, B, 53, proto::UDP), 1));
    h.at(1_500, udp(v4(A, 2, B, 53, proto::UDP), 1));
    // This packet's tick expires the first flow; the table is full until that flow leaves.
    h.at(6_050, udp(v4(A, 3, B, 53, proto::UDP), 1));
    let recs = h.records();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].key.src_port, 1);
    assert_eq!(recs[0].end_reason, end_reason::IDLE);
    assert_eq!(h.m.stats().flows_evicted, 0);
    let rest = h.finish();
    let mut ports: Vec<u16> = rest.iter().map(|r| r.key.src_port).collect();
    ports.sort();
    assert_eq!(ports, [2, 3]);
}

/// `qofctl dump-flows`, `expire-all` and `delete-all`: the flows in memory are listed as
/// their records would be; expire-all ends every one (reason forced, oldest first) while
/// metering goes on, and a later packet of an ended flow starts a new flow; delete-all
/// removes them without a record, counted, and records already due still come.
#[test]
fn flows_in_memory_are_listed_expired_or_deleted_on_request() {
    let mut h = Harness::new(MeterConfig::default());
    let k1 = v4(A, 1000, B, 53, proto::UDP);
    let k2 = v4(A, 1001, B, 53, proto::UDP);
    h.at(0, udp(k1, 10));
    h.at(5, udp(k2, 20));
    h.at(7, udp(k1.reversed(), 30));
    let listed = h.m.flows();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].key, k1);
    assert_eq!((listed[0].packets, listed[0].octets), ([1, 1], [38, 58]));
    assert_eq!(listed[1].key, k2);
    assert!(h.records().is_empty(), "listing ends nothing");

    h.m.expire_all();
    let recs = h.records();
    assert_eq!(
        recs.iter()
            .map(|r| (r.key, r.end_reason))
            .collect::<Vec<_>>(),
        [(k1, end_reason::FORCED), (k2, end_reason::FORCED)]
    );
    assert_eq!(h.m.active_flows(), 0);
    assert_eq!(h.m.stats().flush_events, 1);
    h.at(10, udp(k1, 10));
    let listed = h.m.flows();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].flow_id > recs[1].flow_id, "a new flow");

    // An idle expiry is due when delete-all comes: its record still comes; the live flow
    // goes without one.
    h.at(40_000, udp(k2, 5));
    assert_eq!(h.m.delete_all(), 1);
    let recs = h.records();
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].key, recs[0].end_reason), (k1, end_reason::IDLE));
    assert_eq!(h.m.active_flows(), 0);
    let s = h.m.stats();
    assert_eq!((s.flows_deleted, s.records_emitted), (1, 3));
    assert!(h.finish().is_empty());
}

/// The flow's size, which the memory figures of the README rest on: 96 bytes, 32-byte
/// aligned, so that a flow read or written per packet lies on two cache lines, never three.
#[test]
fn a_flow_is_two_cache_lines() {
    assert_eq!(std::mem::size_of::<flow::Flow>(), 96);
    assert_eq!(std::mem::align_of::<flow::Flow>(), 32);
}

#[test]
fn hash_sampling_takes_or_leaves_a_fragmented_datagram_whole() {
    // Two UDP flows, each a datagram in three fragments, the last two arriving before the
    // first: the flow sampler decides by the first fragment's key, and the fragments held
    // for it go with it.
    let flows: Vec<FlowKey> = (0..40u16)
        .map(|i| v4(A, 5000 + i, B, 53, proto::UDP))
        .collect();
    let n = 4;
    let sampler = crate::meter::sampling::FlowSampler::new(n, 99);
    let cfg = MeterConfig {
        flow_sampler: Some(sampler),
        ..MeterConfig::default()
    };
    let mut h = Harness::new(cfg);
    for (i, &k) in flows.iter().enumerate() {
        let portless = FlowKey {
            src_port: 0,
            dst_port: 0,
            ..k
        };
        let (id, t) = (i as u32, i as u64 * 10);
        h.at(t, frag(portless, id, 2960, false, 100));
        h.at(t + 1, frag(portless, id, 1480, true, 1480));
        h.at(t + 2, frag(k, id, 0, true, 1480));
    }
    let kept: Vec<&FlowKey> = flows.iter().filter(|k| sampler.keep(k)).collect();
    assert!(!kept.is_empty() && kept.len() < flows.len());
    let stats = h.m.stats();
    let recs = h.finish();
    assert_eq!(recs.len(), kept.len());
    for r in &recs {
        assert!(sampler.keep(&r.key));
        assert_eq!(r.fwd.packets, 3, "every fragment of a chosen datagram");
    }
    assert_eq!(stats.packets, 3 * kept.len() as u64);
    assert_eq!(stats.unsampled, 3 * (flows.len() - kept.len()) as u64);
    assert_eq!(stats.expired_fragments, 0);
}

/// A meter whose flows stay until the end of input (idle timeout one minute).
fn flush_harness() -> Harness {
    Harness::new(MeterConfig {
        idle_timeout_ms: 60_000,
        ..Default::default()
    })
}

/// `n` UDP flows from 10.`net`.x.y, each begun at a random millisecond below `span`: begun in
/// an order their start times do not follow, many in the same millisecond.
fn flows_at_random_starts(h: &mut Harness, net: u8, n: u32, seed: u64, span: u64) {
    let mut rand = xorshift(seed);
    for i in 0..n {
        let k = v4([10, net, (i >> 8) as u8, i as u8], 2000, B, 53, proto::UDP);
        h.at(rand() % span, udp(k, 10));
    }
}

/// `recs` come by start, then by flowId; more than `min_ties` of them share a start
/// millisecond with the one before, and flowIds alone would not give this order.
fn assert_by_start_then_flow_id(recs: &[FlowRecord], min_ties: usize) -> Vec<(u64, u64)> {
    let order: Vec<(u64, u64)> = recs.iter().map(|r| (ms(r).0, r.flow_id)).collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert!(order == sorted, "records not oldest first");
    let ties = order.windows(2).filter(|w| w[0].0 == w[1].0).count();
    assert!(
        ties > min_ties,
        "few flows share a start millisecond ({ties})"
    );
    assert!(
        order.windows(2).any(|w| w[0].1 > w[1].1),
        "flowIds alone would give this order"
    );
    order
}

#[test]
fn end_of_input_orders_flows_whose_starts_lie_years_apart() {
    // Packet time jumps 8.7 years ahead, then goes back: the flows in memory at the end
    // started further apart than the flush's one-word keys can hold (4.4 years). The order
    // is the same: by start, then by flowId.
    let mut h = flush_harness();
    h.at(1 << 38, udp(v4([10, 9, 9, 9], 2000, B, 53, proto::UDP), 10));
    flows_at_random_starts(&mut h, 2, 500, 0x2545_f491_4f6c_dd1d, 50);
    let recs = h.finish();
    assert_eq!(recs.len(), 501);
    let order = assert_by_start_then_flow_id(&recs, 100);
    assert_eq!(order[500].1, recs.iter().map(|r| r.flow_id).min().unwrap());
}

#[test]
fn end_of_input_ends_flows_oldest_first_ties_by_flow_id() {
    // Flows begin in an order their start times do not follow (packet time going back and
    // forth), many in the same millisecond: the flush gives them by start, then by flowId.
    let mut h = flush_harness();
    flows_at_random_starts(&mut h, 1, 3_000, 0x9e37_79b9_7f4a_7c15, 400);
    let recs = h.finish();
    assert_eq!(recs.len(), 3_000);
    assert_by_start_then_flow_id(&recs, 1_000);
}
