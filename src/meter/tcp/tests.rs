//! Scripted TCP conversations through the meter. Tests named `fix_*` pin down a behaviour
//! where QoF's code was wrong (`../shared/docs/qof-behaviour.md` lists the bugs).

use crate::decode::{Packet, TcpInfo, TcpOptions};
use crate::key::{proto, FlowKey};
use crate::meter::{EchoRule, FlowRecord, Meter, MeterConfig, TcpConfig};
use crate::time::Timestamp;

use super::flag::{ACK, FIN, RST, SYN};
use super::seq_before;

const PSH: u8 = 0x08;
const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];
const CISN: u32 = 1000;
const SISN: u32 = 5000;

fn key(client_to_server: bool) -> FlowKey {
    let mut k = FlowKey {
        proto: proto::TCP,
        ..Default::default()
    };
    if client_to_server {
        k.set_ipv4(C, S);
        (k.src_port, k.dst_port) = (40000, 80);
    } else {
        k.set_ipv4(S, C);
        (k.src_port, k.dst_port) = (80, 40000);
    }
    k
}

fn all_on() -> TcpConfig {
    TcpConfig {
        seq: true,
        rtt: true,
        ack: true,
        rwin: true,
        ts: true,
        iat: true,
        options: true,
        ..TcpConfig::default()
    }
}

/// A segment under construction.
#[derive(Clone, Copy)]
struct Seg {
    c2s: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    len: u32,
    window: u16,
    options: TcpOptions,
    ecn: u8,
}

fn c2s(flags: u8, seq: u32, ack: u32, len: u32) -> Seg {
    Seg {
        c2s: true,
        flags,
        seq,
        ack,
        len,
        window: 1000,
        options: TcpOptions::default(),
        ecn: 0,
    }
}

fn s2c(flags: u8, seq: u32, ack: u32, len: u32) -> Seg {
    Seg {
        c2s: false,
        ..c2s(flags, seq, ack, len)
    }
}

impl Seg {
    fn ts(mut self, val: u32, ecr: u32) -> Self {
        self.options.timestamp = Some((val, ecr));
        self
    }
    fn mss(mut self, mss: u16) -> Self {
        self.options.mss = Some(mss);
        self
    }
    fn ws(mut self, shift: u8) -> Self {
        self.options.window_scale = Some(shift);
        self
    }
    fn win(mut self, w: u16) -> Self {
        self.window = w;
        self
    }
    fn sack_ok(mut self) -> Self {
        self.options.sack_permitted = true;
        self
    }
    /// A SACK block ending at `edge` (a D-SACK when `dsack`).
    fn sack(mut self, edge: u32, dsack: bool) -> Self {
        self.options.sack = Some(crate::decode::Sack::new(edge, dsack));
        self
    }
    fn packet(&self) -> Packet {
        Packet {
            key: key(self.c2s),
            ip_len: 40 + self.len,
            payload_len: self.len,
            ip_header_len: 20,
            ttl: 64,
            ecn: self.ecn,
            has_l4: true,
            tcp: Some(TcpInfo {
                seq: self.seq,
                ack: self.ack,
                flags: self.flags,
                window: self.window,
                options: self.options,
            }),
            ..Default::default()
        }
    }
}

struct Conv {
    m: Meter,
}

impl Conv {
    fn new(tcp: TcpConfig) -> Self {
        Conv {
            m: Meter::new(MeterConfig {
                tcp,
                ..MeterConfig::default()
            }),
        }
    }
    /// Send `seg` at `us` microseconds.
    fn at(&mut self, us: u64, seg: Seg) -> &mut Self {
        self.m
            .handle_packet(Timestamp::from_micros(5_000_000_000 + us), &seg.packet());
        self
    }
    fn finish(&mut self) -> FlowRecord {
        self.m.flush();
        let r = self.m.poll_record().expect("a record");
        assert!(self.m.poll_record().is_none(), "one record");
        r
    }
}

/// SYN, SYN/ACK, ACK at 0, 10 ms and 30 ms: 10 ms beyond the meter on the server side,
/// 20 ms on the client side.
fn handshake(c: &mut Conv) {
    c.at(0, c2s(SYN, CISN, 0, 0));
    c.at(10_000, s2c(SYN | ACK, SISN, CISN + 1, 0));
    c.at(30_000, c2s(ACK, CISN + 1, SISN + 1, 0));
}

#[test]
fn handshake_gives_the_sum_of_both_halves() {
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let r = c.finish();
    assert_eq!(r.rtt.samples, 1);
    assert_eq!(r.rtt.min_us, 30_000);
    assert_eq!(r.fwd.tcp.seq.isn, CISN);
    assert_eq!(r.rev.tcp.seq.isn, SISN);
}

#[test]
fn fix_sequence_count_is_exact_with_syn_and_fin() {
    // QoF subtracted `count & SYN` and `count & FIN` (bitwise), so 1000/1001/1002/1003
    // payload octets came out as 1000/1000/1000/1002.
    for len in [1000, 1001, 1002, 1003] {
        let mut c = Conv::new(all_on());
        handshake(&mut c);
        c.at(40_000, c2s(ACK | PSH, CISN + 1, SISN + 1, len));
        c.at(41_000, c2s(FIN | ACK, CISN + 1 + len, SISN + 1, 0));
        let r = c.finish();
        assert_eq!(r.fwd.tcp.seq.octets, u64::from(len));
        assert_eq!(r.rev.tcp.seq.octets, 0);
    }
}

#[test]
fn sequence_count_without_the_handshake_is_not_off_by_one() {
    // QoF subtracted 1 unconditionally, so a flow picked up mid-stream lost an octet.
    let mut c = Conv::new(all_on());
    c.at(0, c2s(ACK, 7, 9, 100));
    c.at(1_000, c2s(ACK, 107, 9, 100));
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.octets, 200);
}

#[test]
fn fix_max_jump_ignores_backward_segments() {
    // QoF took (seq - nsn) mod 2^32 for a backward segment: about 4.29e9.
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let base = CISN + 1;
    c.at(40_000, c2s(ACK, base, SISN + 1, 1000));
    c.at(41_000, c2s(ACK, base + 3000, SISN + 1, 1000)); // jump of 2000
    c.at(42_000, c2s(ACK, base + 1000, SISN + 1, 1000)); // backward: fills
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.max_jump, 2000);
    assert_eq!(
        r.fwd.tcp.seq.jumps, 2,
        "2000 octets at an observed MSS of 1000"
    );
    assert_eq!(r.fwd.tcp.seq.lost, 1000, "half the gap never filled");
    assert_eq!(
        r.fwd.tcp.seq.retransmits, 0,
        "filling a gap is not a retransmission"
    );
}

#[test]
fn fix_straddling_segment_advances_without_a_phantom_gap() {
    // QoF handled a segment that starts below nsn and ends above it entirely as a fill:
    // nsn did not advance, and the next in-order segment looked like a jump whose gap was
    // never filled (phantom loss).
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let base = CISN + 1;
    c.at(40_000, c2s(ACK, base, SISN + 1, 1000));
    c.at(41_000, c2s(ACK, base + 500, SISN + 1, 1000)); // 500 old, 500 new
    c.at(42_000, c2s(ACK, base + 1500, SISN + 1, 1000));
    let r = c.finish();
    let s = r.fwd.tcp.seq;
    assert_eq!(s.octets, 2500);
    assert_eq!(s.retransmits, 1);
    assert_eq!((s.jumps, s.lost), (0, 0));
}

#[test]
fn fix_segment_spanning_several_gaps_fills_them_all() {
    // QoF filled at most one gap per segment; the rest stayed open and counted as loss.
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let b = CISN + 1;
    c.at(40_000, c2s(ACK, b, SISN + 1, 100));
    c.at(41_000, c2s(ACK, b + 200, SISN + 1, 100)); // gap [100, 200)
    c.at(42_000, c2s(ACK, b + 400, SISN + 1, 100)); // gap [300, 400)
    c.at(43_000, c2s(ACK, b + 100, SISN + 1, 300)); // covers both gaps and [200, 300)
    let r = c.finish();
    let s = r.fwd.tcp.seq;
    assert_eq!(s.lost, 0);
    assert_eq!(s.retransmits, 1, "[200, 300) had been seen");
    assert_eq!(s.octets, 500);
}

#[test]
fn gap_stack_overflow_and_open_gaps_count_as_lost() {
    let mut c = Conv::new(TcpConfig {
        gap_depth: 2,
        ..all_on()
    });
    handshake(&mut c);
    let b = CISN + 1;
    // Three gaps of 10 octets; the oldest falls off a stack of 2; then fill the newest.
    for i in 0..4u32 {
        c.at(40_000 + u64::from(i), c2s(ACK, b + i * 20, SISN + 1, 10));
    }
    c.at(50_000, c2s(ACK, b + 50, SISN + 1, 10));
    let r = c.finish();
    let s = r.fwd.tcp.seq;
    assert_eq!(s.lost, 20, "one gap fell off, one stayed open");
    assert_eq!(s.retransmits, 0);
    assert_eq!(s.jumps, 3);
}

#[test]
fn sequence_wraparound() {
    let mut c = Conv::new(all_on());
    let isn = u32::MAX - 1500;
    c.at(0, c2s(SYN, isn, 0, 0));
    c.at(1_000, s2c(SYN | ACK, SISN, isn.wrapping_add(1), 0));
    let mut seq = isn.wrapping_add(1);
    for i in 0..5 {
        c.at(2_000 + i, c2s(ACK, seq, SISN + 1, 1000));
        seq = seq.wrapping_add(1000);
    }
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.octets, 5000);
    assert_eq!(r.fwd.tcp.seq.lost + r.fwd.tcp.seq.retransmits, 0);
}

#[test]
fn retransmissions_count_segments() {
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let b = CISN + 1;
    c.at(40_000, c2s(ACK, b, SISN + 1, 1000));
    c.at(41_000, c2s(ACK, b + 1000, SISN + 1, 1000));
    c.at(90_000, c2s(ACK, b, SISN + 1, 1000));
    c.at(91_000, c2s(ACK, b + 1000, SISN + 1, 1000));
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.retransmits, 2);
    assert_eq!(r.fwd.tcp.seq.octets, 2000);
}

/// A direction that only retransmits takes a loss block (its counters) but no gap stack; a
/// jump takes the stack; both go back to the pool when the flow ends and are reused.
#[test]
fn gap_stacks_are_taken_only_by_directions_with_a_gap() {
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let b = CISN + 1;
    c.at(40_000, c2s(ACK, b, SISN + 1, 1000));
    c.at(90_000, c2s(ACK, b, SISN + 1, 1000));
    let pool = |c: &Conv| {
        let t = c.m.tcp.as_ref().unwrap();
        let (stacks, allocated) = t.pool.stacks();
        assert!(
            stacks <= allocated && allocated <= 1,
            "one stack ever allocated"
        );
        (t.in_use().1, stacks)
    };
    assert_eq!(pool(&c), (1, 0), "retransmission: counters only");
    c.at(91_000, c2s(ACK, b + 3000, SISN + 1, 1000));
    assert_eq!(pool(&c), (1, 1), "a jump takes the gap stack");
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.retransmits, 1);
    assert_eq!(r.fwd.tcp.seq.lost, 2000);
    assert_eq!(pool(&c), (0, 0), "all returned");
    // The next flow's jump reuses the stack instead of growing the pool (checked in `pool`).
    handshake(&mut c);
    c.at(140_000, c2s(ACK, b + 1000, SISN + 1, 1000));
    assert_eq!(pool(&c), (1, 1));
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.lost, 1000);
}

#[test]
fn fix_jump_count_is_in_segments_without_options_tracking() {
    // QoF counted a jump in bytes + 1 when options tracking was off (observed MSS 0).
    let mut c = Conv::new(TcpConfig {
        seq: true,
        ..TcpConfig::default()
    });
    handshake(&mut c);
    let b = CISN + 1;
    c.at(40_000, c2s(ACK, b, SISN + 1, 500));
    c.at(41_000, c2s(ACK, b + 1500, SISN + 1, 500));
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.jumps, 2);
    assert_eq!(r.fwd.tcp.observed_mss, 500);
}

#[test]
fn fix_sub_millisecond_halves_still_give_samples() {
    // QoF kept half-RTTs in whole milliseconds: a meter next to a host saw a 0 ms half and
    // never produced a sample.
    let mut c = Conv::new(all_on());
    c.at(0, c2s(SYN, CISN, 0, 0));
    c.at(20_000, s2c(SYN | ACK, SISN, CISN + 1, 0));
    c.at(20_050, c2s(ACK, CISN + 1, SISN + 1, 0));
    let r = c.finish();
    assert_eq!(r.rtt.samples, 1);
    assert_eq!(r.rtt.min_us, 20_050);
}

#[test]
fn fix_ack_must_cover_the_end_of_the_segment() {
    // QoF accepted an ACK reaching the *start* of the awaited segment, so the ACK of the
    // previous segment ended the wait at once.
    let mut c = Conv::new(all_on());
    handshake(&mut c); // sample 1: 30 ms
    let b = CISN + 1;
    c.at(100_000, c2s(ACK, b, SISN + 1, 1000));
    // An ACK of only the segment's start (e.g. a window update): not an answer.
    c.at(100_100, s2c(ACK, SISN + 1, b, 0));
    c.at(112_000, s2c(ACK, SISN + 1, b + 1000, 0)); // the real ACK: 12 ms
    let r = c.finish();
    assert_eq!(r.rtt.samples, 2);
    assert_eq!(
        r.rtt.min_us, 30_000,
        "20 ms client half + 10 ms server half"
    );
    // Smoothed: 30 then 20 + 12 = 32 → (7 × 30 + 32) / 8.
    assert_eq!(r.rtt.smoothed_us, (7 * 30_000 + 32_000) / 8);
}

#[test]
fn repeated_syn_gives_no_handshake_sample() {
    // Karn: the SYN/ACK could answer either SYN, so the wait is abandoned.
    let mut c = Conv::new(all_on());
    c.at(0, c2s(SYN, CISN, 0, 0));
    c.at(1_000_000, c2s(SYN, CISN, 0, 0));
    c.at(1_010_000, s2c(SYN | ACK, SISN, CISN + 1, 0));
    c.at(1_030_000, c2s(ACK, CISN + 1, SISN + 1, 0));
    let r = c.finish();
    assert_eq!(r.rtt.samples, 0, "no sample of 1 s + 10 ms");
}

#[test]
fn no_ack_wait_after_a_hole() {
    // A segment after a hole is acknowledged only once the hole is filled: timing it would
    // measure the recovery, not the path.
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let b = CISN + 1;
    c.at(100_000, c2s(ACK, b + 1000, SISN + 1, 1000)); // [0, 1000) lost before the meter
    c.at(300_000, c2s(ACK, b, SISN + 1, 1000)); // the retransmission, 200 ms later
    c.at(310_000, s2c(ACK, SISN + 1, b + 2000, 0));
    let r = c.finish();
    assert_eq!(r.rtt.samples, 1, "only the handshake");
    assert_eq!(r.fwd.tcp.seq.lost, 0);
}

/// Bulk data from the client with timestamps. The server's pure ACKs carry TSvals that the
/// client echoes on its next segment: 20 ms later normally, but 100 ms later once, when the
/// client's application pauses.
fn echo_conversation(rule: EchoRule) -> FlowRecord {
    let mut c = Conv::new(TcpConfig {
        echo_rule: rule,
        ..all_on()
    });
    c.at(0, c2s(SYN, CISN, 0, 0).ts(100, 0));
    c.at(10_000, s2c(SYN | ACK, SISN, CISN + 1, 0).ts(900, 100));
    c.at(30_000, c2s(ACK, CISN + 1, SISN + 1, 0).ts(101, 900));
    let (b, a) = (CISN + 1, SISN + 1);
    c.at(40_000, c2s(ACK, b, a, 1000).ts(110, 900));
    c.at(50_000, s2c(ACK, a, b + 1000, 0).ts(960, 110));
    c.at(70_000, c2s(ACK, b + 1000, a, 1000).ts(130, 960));
    c.at(80_000, s2c(ACK, a, b + 2000, 0).ts(970, 130));
    c.at(180_000, c2s(ACK, b + 2000, a, 1000).ts(230, 970));
    c.finish()
}

#[test]
fn fix_echo_rule_keeps_late_echoes_out_of_the_estimate() {
    // QoF's code kept only *larger* echo observations (its comment and paper say the
    // opposite). With the paper's rule a late echo does not inflate the RTT; the lab's
    // ground truth shows the difference (README, "Echo rule").
    let r = echo_conversation(EchoRule::NotLarger);
    assert_eq!(r.rtt.min_us, 30_000);
    // Every sample is 10 ms (server half) + 20 ms (client half).
    assert_eq!(r.rtt.smoothed_us, 30_000, "{:?}", r.rtt);
    let r = echo_conversation(EchoRule::Latest);
    assert_eq!(r.rtt.min_us, 30_000);
    assert!(
        r.rtt.smoothed_us > 30_000,
        "the late echo counts: {:?}",
        r.rtt
    );
}

#[test]
fn missing_timestamp_option_never_answers_an_echo_wait() {
    // QoF read TSecr 0 from packets without the option; against a TSval >= 2^31 the
    // wrap-aware comparison let it satisfy the wait.
    let mut c = Conv::new(all_on());
    c.at(0, c2s(ACK, CISN, SISN, 0).ts(0x9000_0000, 5));
    c.at(1_000, s2c(ACK, SISN, CISN, 0)); // no option
    c.at(2_000, c2s(ACK, CISN, SISN, 0).ts(0x9000_0001, 5));
    let r = c.finish();
    assert_eq!(r.rtt.samples, 0);
}

#[test]
fn fix_timestamp_clock_starts_at_the_first_timestamped_segment() {
    // QoF initialised the clock only from the direction's first packet, so a direction whose
    // first packet carried no timestamp never got a frequency.
    let mut c = Conv::new(all_on());
    let b = CISN + 1;
    c.at(0, c2s(ACK, CISN, SISN, 0)); // no timestamp
    for i in 0..=10u32 {
        // A 1 kHz clock: TSval advances 1 per ms; one segment every 10 ms.
        c.at(
            5_000 + u64::from(i) * 10_000,
            c2s(ACK, b + i * 100, SISN, 100).ts(7_000 + i * 10, 0),
        );
    }
    let r = c.finish();
    assert_eq!(r.fwd.tcp.ts_hz, 1000);
    assert_eq!(
        r.rev.tcp.ts_hz, 0,
        "the silent direction has no clock (and is zero)"
    );
}

#[test]
fn fix_chirp_uses_the_previous_tsval() {
    // QoF overwrote the previous TSval before using it, so chirp always equalled the IAT.
    // Here segments leave every 10 ms by the sender's 1 kHz clock; the last arrives 5 ms late.
    let mut c = Conv::new(all_on());
    let b = CISN + 1;
    let mut t = 0u64;
    for i in 0..=20u32 {
        let late = if i == 20 { 5_000 } else { 0 };
        c.at(
            t + late,
            c2s(ACK, b + i * 100, SISN, 100).ts(7_000 + i * 10, 0),
        );
        t += 10_000;
    }
    let r = c.finish();
    let d = r.fwd.tcp;
    assert_eq!(d.iat_min_us, 10_000);
    assert_eq!(d.iat_max_us, 15_000);
    assert_eq!((d.chirp_min_ms, d.chirp_max_ms), (0, 5));
    assert_eq!(d.chirp_mean_ms, 0, "5 ms over 20 samples");
}

#[test]
fn window_scaling_needs_both_sides_and_skips_the_syn() {
    // QoF applied a direction's own shift even when the peer never offered scaling, and
    // scaled the SYN's window too.
    for peer_offers in [true, false] {
        let mut c = Conv::new(all_on());
        c.at(0, c2s(SYN, CISN, 0, 0).ws(7).win(64_000));
        let synack = s2c(SYN | ACK, SISN, CISN + 1, 0).win(30_000);
        c.at(1_000, if peer_offers { synack.ws(2) } else { synack });
        c.at(2_000, c2s(ACK, CISN + 1, SISN + 1, 0).win(100));
        c.at(3_000, c2s(ACK, CISN + 1, SISN + 1, 0).win(0));
        c.at(4_000, c2s(ACK, CISN + 1, SISN + 1, 0).win(50));
        let r = c.finish();
        let d = r.fwd.tcp;
        let scale = if peer_offers { 128 } else { 1 };
        assert_eq!(d.rwin_max, 64_000, "the SYN's window is not scaled");
        assert_eq!(d.rwin_min, 0);
        assert_eq!(d.stalls, 1);
        assert_eq!(
            d.rwin_mean,
            (64_000 + 100 * scale + 50 * scale + 2) / 4,
            "peer offers: {peer_offers}"
        );
        assert_eq!(
            d.characteristics & super::characteristic::WINDOW_SCALE,
            super::characteristic::WINDOW_SCALE
        );
    }
}

#[test]
fn duplicate_acks_exclude_window_updates_and_data() {
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let a = CISN + 1;
    c.at(40_000, s2c(ACK, SISN + 1, a, 0).win(1000));
    c.at(41_000, s2c(ACK, SISN + 1, a, 0).win(1000)); // duplicate
    c.at(42_000, s2c(ACK, SISN + 1, a, 0).win(2000)); // window update
    c.at(43_000, s2c(ACK, SISN + 1, a, 100).win(2000)); // data
    let mut sack = s2c(ACK, SISN + 101, a, 0).win(2000);
    sack.options.sack = Some(crate::decode::Sack::new(a + 3000, false));
    c.at(44_000, sack); // duplicate with SACK
    let r = c.finish();
    // 40 ms (same ACK and window as the SYN/ACK), 41 ms and 44 ms.
    assert_eq!(r.rev.tcp.dup_acks, 3);
    assert_eq!(r.rev.tcp.sel_acks, 1);
}

#[test]
fn loss_events_are_grouped_per_rtt() {
    let mut c = Conv::new(all_on());
    handshake(&mut c); // RTT 30 ms
    let b = CISN + 1;
    // Three jumps within 10 ms: one event. Another 100 ms later: a second.
    c.at(40_000, c2s(ACK, b + 100, SISN + 1, 100));
    c.at(45_000, c2s(ACK, b + 300, SISN + 1, 100));
    c.at(50_000, c2s(ACK, b + 500, SISN + 1, 100));
    c.at(150_000, c2s(ACK, b + 700, SISN + 1, 100));
    let r = c.finish();
    assert_eq!(r.fwd.tcp.seq.loss_events, 2);
}

#[test]
fn characteristics_and_mss() {
    let mut c = Conv::new(all_on());
    let mut syn = c2s(SYN, CISN, 0, 0).mss(1460).ts(1, 0);
    syn.ecn = 2;
    c.at(0, syn);
    let mut synack = s2c(SYN | ACK, SISN, CISN + 1, 0).mss(536);
    synack.ecn = 3;
    c.at(1_000, synack);
    let r = c.finish();
    use super::characteristic::*;
    assert_eq!(r.fwd.tcp.declared_mss, 1460);
    assert_eq!(r.rev.tcp.declared_mss, 536);
    assert_eq!(r.fwd.tcp.characteristics, ECT0 | TIMESTAMP);
    assert_eq!(r.rev.tcp.characteristics, CE);
}

#[test]
fn malformed_options_keep_the_packet_in_its_flow() {
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let mut bad = c2s(ACK, CISN + 1, SISN + 1, 100);
    bad.options.malformed = true;
    c.at(40_000, bad);
    let r = c.finish();
    assert_eq!(r.fwd.packets, 3);
    assert_eq!(r.fwd.tcp.seq.octets, 100);
}

#[test]
fn close_then_reuse_starts_fresh_state() {
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    c.at(40_000, c2s(FIN | ACK, CISN + 1, SISN + 1, 0));
    c.at(41_000, s2c(FIN | ACK, SISN + 1, CISN + 2, 0));
    c.at(42_000, c2s(ACK, CISN + 2, SISN + 2, 0));
    let first = c.m.poll_record().expect("closed by FIN/ACK");
    assert_eq!(first.rtt.samples, 3, "the handshake and both FINs");
    c.at(50_000, c2s(RST, CISN + 2, 0, 0));
    let second = c.finish();
    assert_eq!(second.rtt.samples, 0);
    assert_eq!(second.fwd.tcp.seq.isn, CISN + 2);
    assert_eq!(
        c.m.tcp.as_ref().unwrap().in_use(),
        (0, 0),
        "all state returned"
    );
}

#[test]
fn nothing_is_tracked_when_nothing_is_asked() {
    let mut c = Conv::new(TcpConfig::default());
    handshake(&mut c);
    let r = c.finish();
    assert_eq!(r.fwd.tcp, Default::default());
    assert_eq!(r.rtt, Default::default());
    assert!(c.m.tcp.is_none());
}

#[test]
fn tcp_state_fits_its_memory_budget() {
    // Issue 3 allows 400 bytes per active TCP biflow in all: the flow (104), its share of the
    // hash index (under 9 at the table's load), the 4-byte index beside it, and this. Loss
    // and ACK-anomaly counters live in a pool, taken only by directions that see a jump, a
    // retransmission, a duplicate or selective ACK or a zero window, and gap stacks in
    // another, taken only on a jump.
    let size = std::mem::size_of::<super::TcpState>();
    println!(
        "TcpState: {size} bytes (direction {}, sequence {}, RTT {}); loss block {}",
        std::mem::size_of::<super::DirState>(),
        std::mem::size_of::<super::seq::SeqDir>(),
        std::mem::size_of::<super::rtt::RttState>(),
        std::mem::size_of::<super::seq::LossBlock>()
    );
    assert!(std::mem::size_of::<super::seq::LossBlock>() <= 48);
    assert!(104 + 9 + 4 + size <= 400, "TcpState grew to {size} bytes");
    // Causes and RTT under load add nothing to the state: their state lives beside the loss
    // block (taken on an anomaly) and beside the state (only when asked for).
    assert!(size <= 248, "TcpState grew to {size} bytes");
    assert!(std::mem::size_of::<super::cause::CauseBlock>() <= 48);
    assert!(std::mem::size_of::<super::RttLoad>() <= 28);
}

fn causes_on() -> TcpConfig {
    TcpConfig {
        causes: true,
        rtt_load: true,
        ..all_on()
    }
}

/// Seen near the client: a fast retransmission after SACKed duplicate ACKs, a spurious
/// timeout (its ACK lost before the point, the receiver's D-SACK after the copy), and a
/// segment that arrives after the one behind it, 1 ms later.
#[test]
fn causes_fast_timeout_spurious_and_reordering() {
    let mut c = Conv::new(causes_on());
    c.at(0, c2s(SYN, CISN, 0, 0).sack_ok());
    c.at(10_000, s2c(SYN | ACK, SISN, CISN + 1, 0).sack_ok());
    c.at(30_000, c2s(ACK, CISN + 1, SISN + 1, 0));
    let (b, a) = (CISN + 1, SISN + 1);
    for i in 0..4 {
        c.at(40_000 + 1_000 * i, c2s(ACK, b + 100 * i as u32, a, 100));
    }
    c.at(60_000, s2c(ACK, a, b + 100, 0)); // the second segment was lost after the point
    c.at(62_000, s2c(ACK, a, b + 100, 0).sack(b + 300, false));
    c.at(63_000, s2c(ACK, a, b + 100, 0).sack(b + 400, false));
    c.at(64_000, c2s(ACK, b + 100, a, 100)); // fast retransmission
    c.at(85_000, s2c(ACK, a, b + 400, 0));
    c.at(90_000, c2s(ACK, b + 400, a, 100));
    // Its ACK is lost before the point: 310 ms later, the timer resends it.
    c.at(400_000, c2s(ACK, b + 400, a, 100));
    c.at(420_000, s2c(ACK, a, b + 500, 0).sack(b + 500, true));
    // Reordering: the segment at 600 passes before the one at 500.
    c.at(430_000, c2s(ACK, b + 600, a, 100));
    c.at(431_000, c2s(ACK, b + 500, a, 100));
    c.at(460_000, s2c(ACK, a, b + 700, 0));
    let r = c.finish();
    let t = r.fwd.tcp;
    assert_eq!(t.seq.retransmits, 2);
    assert_eq!(
        (
            t.fast_retransmits,
            t.timeout_retransmits,
            t.spurious_retransmits,
            t.reorders
        ),
        (1, 1, 1, 1)
    );
    let u = r.rev.tcp;
    assert_eq!(
        (
            u.fast_retransmits,
            u.timeout_retransmits,
            u.spurious_retransmits,
            u.reorders
        ),
        (0, 0, 0, 0)
    );
}

/// Near the server, after losses before the point: a copy that fills a hole a round trip
/// after it opened is a retransmission (not reordering), and without SACK the copies of
/// data the receiver had already acknowledged are spurious.
#[test]
fn causes_behind_a_loss_and_without_sack() {
    let mut c = Conv::new(causes_on());
    handshake(&mut c); // 30 ms
    let (b, a) = (CISN + 1, SISN + 1);
    c.at(40_000, c2s(ACK, b, a, 100));
    c.at(41_000, c2s(ACK, b + 200, a, 100)); // [100, 200) lost before the point
    c.at(41_100, s2c(ACK, a, b + 100, 0));
    c.at(41_200, s2c(ACK, a, b + 100, 0));
    c.at(71_000, c2s(ACK, b + 100, a, 100)); // fills the hole 30 ms later: fast
    c.at(71_100, s2c(ACK, a, b + 300, 0));
    // Go-back-N copies of what was just acknowledged.
    c.at(71_200, c2s(ACK, b + 100, a, 100));
    c.at(71_300, c2s(ACK, b + 200, a, 100));
    let r = c.finish();
    let t = r.fwd.tcp;
    assert_eq!(t.seq.retransmits, 2, "the fill is not seen twice");
    assert_eq!((t.fast_retransmits, t.reorders), (3, 0));
    assert_eq!(t.spurious_retransmits, 2);
}

#[test]
fn a_repeated_syn_is_a_timeout() {
    let mut c = Conv::new(causes_on());
    c.at(0, c2s(SYN, CISN, 0, 0));
    c.at(1_000_000, c2s(SYN, CISN, 0, 0));
    c.at(1_010_000, s2c(SYN | ACK, SISN, CISN + 1, 0));
    c.at(1_030_000, c2s(ACK, CISN + 1, SISN + 1, 0));
    let r = c.finish();
    assert_eq!(
        (r.fwd.tcp.timeout_retransmits, r.fwd.tcp.fast_retransmits),
        (1, 0)
    );
    assert_eq!(r.fwd.tcp.seq.retransmits, 0, "QoF's count has octets only");
}

/// Mean and maximum RTT: each sample weighs by the data segments it stands for.
#[test]
fn rtt_under_load_weighs_samples_by_segments() {
    let mut c = Conv::new(causes_on());
    handshake(&mut c); // 30 ms, halves 10 ms (to the server) and 20 ms
    let (b, a) = (CISN + 1, SISN + 1);
    c.at(40_000, c2s(ACK, b, a, 100));
    c.at(90_000, s2c(ACK, a, b + 100, 0)); // 50 ms: 70 ms, for one segment
    c.at(100_000, c2s(ACK, b + 100, a, 100));
    c.at(101_000, c2s(ACK, b + 200, a, 100));
    c.at(200_000, s2c(ACK, a, b + 300, 0)); // 100 ms: 120 ms, for two
    c.at(210_000, c2s(ACK, b + 300, a, 100)); // after the last sample: not counted
    let r = c.finish();
    assert_eq!(r.rtt.samples, 3);
    assert_eq!(r.rtt.max_us, 120_000);
    // (30 × 1 + 70 × 2 + 120 × 3) / 6: the handshake and each sample count once more.
    assert_eq!(r.rtt.mean_us, 88_333);
    // Without the elements, nothing is kept for them.
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let r = c.finish();
    assert_eq!((r.rtt.mean_us, r.rtt.max_us), (0, 0));
}

/// `TcpTable::prefetch` asks for a few fields to have every cache line of a state loaded: no
/// 64-byte stretch of the state may lie between two of them (or before the first, or after
/// the last).
#[test]
fn prefetching_reaches_every_cache_line_of_the_state() {
    use std::mem::{offset_of, size_of};
    let dir = size_of::<super::DirState>();
    let rtt = offset_of!(super::TcpState, rtt);
    let per_dir = [
        offset_of!(super::DirState, seq), // nsn
        offset_of!(super::DirState, highest_ack),
        offset_of!(super::DirState, chirp_sum_ms),
    ];
    let mut touched: Vec<usize> = (0..2)
        .flat_map(|d| {
            per_dir
                .iter()
                .map(move |o| offset_of!(super::TcpState, dir) + d * dir + o)
        })
        .collect();
    touched.extend([rtt, rtt + size_of::<super::rtt::RttState>() - 4]);
    let size = size_of::<super::TcpState>();
    assert!(touched[0] < 64 && size - touched[touched.len() - 1] <= 64);
    for w in touched.windows(2) {
        assert!(
            w[0] < w[1] && w[1] - w[0] < 64,
            "{touched:?} in {size} bytes"
        );
    }
}

#[test]
fn unseen_tail_is_revealed_by_the_ack_and_the_fin() {
    // The last data segment of a transfer is lost from observation: no later segment of its
    // own direction reveals it, but the peer's ACK does. A FIN the meter missed shows in the
    // ACK of it, and a pure ACK after an unseen segment in its own sequence number.
    let mut c = Conv::new(all_on());
    handshake(&mut c);
    let b = CISN + 1;
    c.at(40_000, c2s(ACK, b, SISN + 1, 1000));
    // [1000, 1500) never seen; the server acknowledges it.
    c.at(60_000, s2c(ACK, SISN + 1, b + 1500, 0));
    // The client's FIN (at 1500) never seen; the server acknowledges it too.
    c.at(70_000, s2c(FIN | ACK, SISN + 1, b + 1501, 0));
    c.at(80_000, c2s(ACK, b + 1501, SISN + 2, 0));
    let r = c.finish();
    let s = r.fwd.tcp.seq;
    assert_eq!(
        s.octets, 1501,
        "an unseen FIN cannot be told from a data octet"
    );
    assert_eq!(s.lost, 501);
    assert_eq!(r.rev.tcp.seq.lost, 0, "the server's FIN was seen");
}

#[test]
fn a_clock_slower_than_half_a_hertz_is_unknown_and_never_divides_by_zero() {
    // One tick in three seconds rounds to a rate of 0 Hz. The chirp of the next newer TSval
    // divides by the rate: it panicked before the rate was treated as unknown.
    let mut c = Conv::new(all_on());
    let b = CISN + 1;
    c.at(0, c2s(ACK, b, SISN, 100).ts(1, 0));
    c.at(3_000_000, c2s(ACK, b + 100, SISN, 100).ts(2, 0));
    c.at(3_010_000, c2s(ACK, b + 200, SISN, 100).ts(3, 0));
    let r = c.finish();
    // Two ticks in 3.01 s: 1 Hz by the end. At the third packet the rate (0) was unknown.
    assert_eq!(r.fwd.tcp.ts_hz, 1);
    assert_eq!(
        (r.fwd.tcp.chirp_min_ms, r.fwd.tcp.chirp_max_ms),
        (0, 0),
        "no chirp without a known rate"
    );
    assert_eq!(r.fwd.tcp.seq.octets, 300, "the packets are still metered");
}

/// Hostile TCP conversations through every measurement at once: sequence and ACK numbers that
/// wander, jump and wrap, random flags, options with any value (window scale up to 255, MSS 0,
/// TSval 0 and near the wrap, SACK edges anywhere), packet times that stall, race ahead or
/// step backwards, short timeouts and shallow gap stacks. In a debug build (`cargo test`) an
/// arithmetic overflow panics too. Nothing may panic, and every packet and octet handed in
/// comes out in exactly one record.
#[test]
fn hostile_conversations_never_panic_and_lose_nothing() {
    let mut next = crate::testrand::xorshift(0x9e37_79b9_7f4a_7c15);
    let near = |base: u32, r: u64| -> u32 {
        match r % 8 {
            0 => r as u32 >> 3,                                  // anywhere
            1 => base.wrapping_sub((r >> 8) as u32 % 70_000),    // behind
            2 => base.wrapping_add((r >> 8) as u32 % 3_000_000), // far ahead
            _ => base.wrapping_add((r >> 8) as u32 % 3_000),     // close ahead
        }
    };
    for round in 0..60u64 {
        let r0 = next();
        let mut tcp = all_on();
        if round % 3 == 1 {
            // Some measurements alone, in other combinations.
            tcp.rtt = r0 & 1 == 1;
            tcp.seq = tcp.rtt || r0 & 2 == 2;
            tcp.ack = r0 & 4 == 4;
            tcp.rwin = r0 & 8 == 8;
            tcp.ts = r0 & 16 == 16;
            tcp.iat = r0 & 32 == 32;
            tcp.options = r0 & 64 == 64;
            tcp.causes = r0 & 128 == 128;
            tcp.rtt_load = r0 & 256 == 256;
            // (As the element table switches them on.)
            tcp.rtt |= tcp.causes || tcp.rtt_load;
            tcp.seq |= tcp.rtt;
        } else {
            tcp.causes = true;
            tcp.rtt_load = true;
        }
        tcp.gap_depth = 1 + (r0 >> 8) as u8 % 8;
        tcp.echo_rule = if r0 >> 16 & 1 == 1 {
            EchoRule::Latest
        } else {
            EchoRule::NotLarger
        };
        let mut m = Meter::new(MeterConfig {
            idle_timeout_ms: 1 + (r0 >> 20) % 60_000,
            active_timeout_ms: 1 + (r0 >> 36) % 600_000,
            tcp,
            track_transport: true,
            ..MeterConfig::default()
        });
        let (mut seqs, mut tsvals) = ([next() as u32, next() as u32], [0u32; 2]);
        let mut t = 5_000_000_000u64;
        let (mut packets, mut octets, mut payload) = (0u64, 0u64, 0u64);
        let mut recs = Vec::new();
        for _ in 0..4_000 {
            let r = next();
            let d = (r & 1) as usize;
            t = match r >> 1 & 63 {
                0 => t.saturating_sub(r >> 20 & 0xffff_ffff),
                1 => t + (r >> 20) % 4_000_000_000,
                2 => t,
                _ => t + (r >> 20) % 40_000,
            };
            let len = match r >> 7 & 3 {
                0 => 0,
                _ => (r >> 9) as u32 % 1_500,
            };
            let seq = near(seqs[d], next());
            if !seq_before(seq.wrapping_add(len), seqs[d]) {
                seqs[d] = seq.wrapping_add(len);
            }
            let ack = near(seqs[1 - d], next());
            let flags = match r >> 20 & 7 {
                0 => (r >> 24) as u8,
                1 => SYN | (r >> 24) as u8 & ACK,
                2 => FIN | ACK,
                _ => ACK | (r >> 24) as u8 & PSH,
            };
            let o = next();
            let mut options = TcpOptions::default();
            if o & 3 == 0 {
                options.mss = Some((o >> 2) as u16);
                options.window_scale = Some((o >> 18) as u8);
                options.sack_permitted = o >> 26 & 1 == 1;
            }
            if o >> 27 & 3 != 0 {
                tsvals[d] = match o >> 29 & 7 {
                    0 => 0,
                    1 => u32::MAX - (o >> 32) as u32 % 3,
                    2 => (o >> 32) as u32,
                    3 => tsvals[d].wrapping_sub((o >> 32) as u32 % 100),
                    _ => tsvals[d].wrapping_add((o >> 32) as u32 % 100),
                };
                let ecr = if o >> 40 & 1 == 1 { 0 } else { tsvals[1 - d] };
                options.timestamp = Some((tsvals[d], ecr));
            }
            if o >> 41 & 3 == 0 {
                options.sack = Some(crate::decode::Sack::new(
                    near(ack, o >> 43),
                    o >> 62 & 1 == 1,
                ));
            }
            options.malformed = o >> 63 == 1;
            let seg = Seg {
                c2s: d == 0,
                flags,
                seq,
                ack,
                len,
                window: (o >> 44) as u16,
                options,
                ecn: (o >> 60) as u8 & 3,
            };
            m.handle_packet(Timestamp::from_micros(t), &seg.packet());
            packets += 1;
            octets += u64::from(40 + len);
            payload += u64::from(len);
            while let Some(rec) = m.poll_record() {
                recs.push(rec);
            }
        }
        m.flush();
        while let Some(rec) = m.poll_record() {
            recs.push(rec);
        }
        let sum = |f: &dyn Fn(&FlowRecord) -> u64| recs.iter().map(f).sum::<u64>();
        assert_eq!(
            sum(&|r| r.fwd.packets + r.rev.packets),
            packets,
            "round {round}"
        );
        assert_eq!(
            sum(&|r| r.fwd.octets + r.rev.octets),
            octets,
            "round {round}"
        );
        assert_eq!(
            sum(&|r| r.fwd.transport_octets + r.rev.transport_octets),
            payload,
            "round {round}"
        );
        assert!(recs.iter().all(|r| r.fwd.packets > 0), "round {round}");
        for r in &recs {
            for d in [&r.fwd.tcp, &r.rev.tcp] {
                assert!(
                    d.spurious_retransmits <= d.fast_retransmits + d.timeout_retransmits,
                    "round {round}: {d:?}"
                );
            }
            assert!(r.rtt.mean_us <= r.rtt.max_us, "round {round}: {:?}", r.rtt);
        }
    }
}
