//! `ssadetector`: a flow that carries other flows' TCP handshakes (a tunnel or VPN), found
//! by the sizes of its packets (ipfixprobe's SYN-SYNACK-ACK detector). One element,
//! ssaConfLevel (CESNET 8057/903, unsigned8): 1 when the flow looks like a tunnel, else 0.
//! Flows of 30 packets or fewer export none of it.
//!
//! From the flow's 30th packet on, packets whose payload ([`wire_payload`]) is 60 to 150
//! octets are watched. A packet of size *a* in one direction is a possible SYN; a packet of
//! the other direction within 3 s whose size is *a* to *a* + 10 is a possible SYN-ACK; a
//! packet of the first direction within 3 s of that one, of its size to 12 more, completes a
//! suspect handshake (and the tables of possible SYNs and SYN-ACKs start afresh). The flow
//! is a tunnel when it has at least 3 suspects, at most 2,500 packets per suspect, and the
//! suspects' sizes (the first 100 kept) repeat enough: distinct sizes over suspects at most
//! 0.6 below 15 suspects, 0.4 below 40, else 0.2.
//!
//! Where ipfixprobe 5.7.0 differs, qof does what the detector's name says:
//! * the third step looks for a possible SYN-ACK; ipfixprobe 5.7.0 looks in its table of
//!   possible SYNs (its SYN-ACK table is written and never read), so any answer of similar
//!   size to any packet counted as a whole handshake;
//! * sizes are the payload as it crossed the wire; ipfixprobe uses the captured payload,
//!   which a snap length shortens;
//! * an earlier packet "within 3 s" must be earlier: after time went back, ipfixprobe
//!   also matches packets from the future.
//!
//! Memory: a flow carries 16 octets of state until its 30th packet; then the tables (about
//! 3 KB: a time per size and direction, for SYNs and SYN-ACKs) are allocated once.

use super::{wire_payload, Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Ssadetector,
    about: "flows that carry TCP handshakes of other flows (tunnels), by packet sizes",
    options: &[],
    build,
};

const CONFIDENCE: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 903,
};

/// Packets before the detector looks (MIN_PKT_IN_FLOW): the 30th is the first it sees, and
/// a flow needs more than this many to be exported.
pub const MIN_FLOW_PACKETS: u64 = 30;
const MIN_SIZE: u32 = 60;
const MAX_SIZE: u32 = 150;
const SIZES: usize = (MAX_SIZE - MIN_SIZE + 1) as usize;
/// How much larger than the possible SYN a SYN-ACK, and than the SYN-ACK an ACK, may be.
const SYN_ACK_ABOVE: usize = 10;
const ACK_ABOVE: usize = 12;
const WINDOW_NS: u64 = 3_000_000_000;
/// Suspects' sizes kept (SYN_RECORDS_NUM).
const KEPT: usize = 100;

fn build(_: &Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Ssadetector)), Needs::default()))
}

struct Ssadetector;

/// No packet of this size and direction (a time no capture has: year 2554).
const UNSET: u64 = u64::MAX;

/// When a packet of each size last came, per direction (ns; [`UNSET`] if none).
struct Table([[u64; 2]; SIZES]);

impl Table {
    fn clear(&mut self) {
        self.0 = [[UNSET; 2]; SIZES];
    }

    fn put(&mut self, size: usize, dir: usize, now: u64) {
        self.0[size][dir] = now;
    }

    /// A packet of direction `dir` came in the last 3 s with a size from `size - below` to
    /// `size`.
    fn recent(&self, size: usize, below: usize, dir: usize, now: u64) -> bool {
        self.0[size.saturating_sub(below)..=size]
            .iter()
            .any(|t| t[dir] != UNSET && t[dir] <= now && now - t[dir] <= WINDOW_NS)
    }
}

/// What the detector keeps once it looks.
struct Watch {
    syn: Table,
    syn_ack: Table,
    suspects: u64,
    sizes: [u8; KEPT],
    kept: u8,
}

impl Watch {
    fn new() -> Box<Watch> {
        Box::new(Watch {
            syn: Table([[UNSET; 2]; SIZES]),
            syn_ack: Table([[UNSET; 2]; SIZES]),
            suspects: 0,
            sizes: [0; KEPT],
            kept: 0,
        })
    }

    fn packet(&mut self, len: u32, dir: usize, now: u64) {
        if !(MIN_SIZE..=MAX_SIZE).contains(&len) {
            return;
        }
        let size = (len - MIN_SIZE) as usize;
        if self.syn_ack.recent(size, ACK_ABOVE, 1 - dir, now) {
            self.syn.clear();
            self.syn_ack.clear();
            self.suspects += 1;
            if let Some(s) = self.sizes.get_mut(usize::from(self.kept)) {
                // (A size of 60 to 150 fits an octet.)
                *s = len as u8;
                self.kept += 1;
            }
            return;
        }
        if self.syn.recent(size, SYN_ACK_ABOVE, 1 - dir, now) {
            self.syn_ack.put(size, dir, now);
        }
        self.syn.put(size, dir, now);
    }

    /// Distinct sizes among the suspects' kept, over the number kept.
    fn distinct_ratio(&self) -> f64 {
        let kept = &self.sizes[..usize::from(self.kept)];
        let mut seen = [false; 256];
        let mut distinct = 0u32;
        for &s in kept {
            if !std::mem::replace(&mut seen[usize::from(s)], true) {
                distinct += 1;
            }
        }
        f64::from(distinct) / kept.len().max(1) as f64
    }

    fn tunnel(&self, packets: u64) -> bool {
        let s = self.suspects;
        if s < 3 || packets as f64 / s as f64 > 2500.0 {
            return false;
        }
        let most = match s {
            0..=14 => 0.6,
            15..=39 => 0.4,
            _ => 0.2,
        };
        self.distinct_ratio() <= most
    }
}

#[derive(Default)]
pub struct State {
    packets: u64,
    watch: Option<Box<Watch>>,
}

impl FlowPlugin for Ssadetector {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Ssadetector.number()
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<State> {
        Some(State::default())
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        s.packets = s.packets.saturating_add(1);
        if s.packets < MIN_FLOW_PACKETS {
            return Verdict::Continue;
        }
        let w = s.watch.get_or_insert_with(Watch::new);
        w.packet(wire_payload(p.pkt), usize::from(p.reverse), p.ts.nanos());
        Verdict::Continue
    }

    fn export(&mut self, s: State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if flow.packets() <= MIN_FLOW_PACKETS {
            return false;
        }
        let tunnel = s.watch.is_some_and(|w| w.tunnel(flow.packets()));
        out.unsigned(CONFIDENCE, u64::from(tunnel));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Packet;
    use crate::meter::{ExtValue, Extensions};
    use crate::time::Timestamp;

    fn udp(payload: u32) -> Packet {
        let mut p = Packet {
            payload_len: payload,
            ip_len: payload.saturating_add(28),
            ip_header_len: 20,
            has_l4: true,
            ..Packet::default()
        };
        p.key.proto = 17;
        p
    }

    /// 29 packets of padding (not watched), then `pkts` (time in ms, reverse, size); the
    /// exported confidence, `None` when nothing is exported.
    fn run(pkts: &[(u64, bool, u32)]) -> Option<u64> {
        let mut p = Ssadetector;
        let pad = (0..MIN_FLOW_PACKETS - 1).map(|i| (i, i % 2 == 0, 100));
        let all: Vec<(u64, bool, u32)> = pad.chain(pkts.iter().copied()).collect();
        let mut s: Option<State> = None;
        for &(ms, reverse, len) in &all {
            let pkt = udp(len);
            let v = PacketView {
                ts: Timestamp::from_millis(ms),
                pkt: &pkt,
                details: &Default::default(),
                reverse,
                payload: &[],
                stream: &[],
            };
            let st = s.get_or_insert_with(|| p.attach(&v).unwrap());
            assert_eq!(p.packet(st, &v), Verdict::Continue);
        }
        let flow = FlowSummary {
            packets: [all.len() as u64, 0],
            ..FlowSummary::default()
        };
        let mut ext = Extensions::default();
        let mut w = ExtWriter::new(&mut ext, &[CONFIDENCE]);
        if !p.export(s.unwrap(), &flow, &mut w) {
            return None;
        }
        match ext.get(CONFIDENCE) {
            Some(ExtValue::Unsigned(v)) => Some(v),
            v => panic!("{v:?}"),
        }
    }

    /// `n` handshakes 10 s apart from 1000 ms on: SYN of 80 forward, SYN-ACK of 84 back,
    /// ACK of 90 forward, each 100 ms after the one before, plus `tail` between them.
    fn handshakes(n: u64, tail: &[(u64, bool, u32)]) -> Vec<(u64, bool, u32)> {
        let mut v = Vec::new();
        for i in 0..n {
            let t = 1000 + i * 10_000;
            v.extend([(t, false, 80), (t + 100, true, 84), (t + 200, false, 90)]);
            v.extend(tail.iter().map(|&(dt, r, s)| (t + 300 + dt, r, s)));
        }
        v
    }

    #[test]
    fn repeated_handshakes_of_one_size_are_a_tunnel() {
        assert_eq!(run(&handshakes(3, &[])), Some(1));
        // Bulk data between them does not hide them.
        let bulk: Vec<_> = (0..20).map(|i| (i, i % 3 == 0, 1400)).collect();
        assert_eq!(run(&handshakes(5, &bulk)), Some(1));
    }

    #[test]
    fn two_suspects_are_not_enough() {
        assert_eq!(run(&handshakes(2, &[])), Some(0));
    }

    #[test]
    fn the_three_steps_must_alternate_direction_size_and_time() {
        // ACK in the wrong direction: no handshake.
        let v: Vec<_> = handshakes(4, &[])
            .into_iter()
            .map(|(t, r, s)| (t, if s == 90 { true } else { r }, s))
            .collect();
        assert_eq!(run(&v), Some(0));
        // SYN-ACK 11 octets larger than the SYN: not one.
        let v: Vec<_> = handshakes(4, &[])
            .into_iter()
            .map(|(t, r, s)| (t, r, if s == 84 { 91 } else { s }))
            .collect();
        assert_eq!(run(&v), Some(0));
        // ACK more than 3 s after the SYN-ACK: not one.
        let v: Vec<_> = handshakes(4, &[])
            .into_iter()
            .map(|(t, r, s)| (if s == 90 { t + 3_000 } else { t }, r, s))
            .collect();
        assert_eq!(run(&v), Some(0));
    }

    #[test]
    fn a_syn_and_an_answer_alone_are_not_a_handshake() {
        // ipfixprobe 5.7.0 counted each of these pairs as a suspect.
        let mut v = Vec::new();
        for i in 0..10 {
            v.extend([
                (1000 + i * 10_000, false, 80),
                (1100 + i * 10_000, true, 84),
            ]);
        }
        assert_eq!(run(&v), Some(0));
    }

    #[test]
    fn handshakes_of_many_sizes_are_not_a_tunnel() {
        let mut v = Vec::new();
        for i in 0..5u32 {
            let t = 1000 + u64::from(i) * 10_000;
            let a = 60 + i * 15;
            v.extend([
                (t, false, a),
                (t + 100, true, a + 2),
                (t + 200, false, a + 4),
            ]);
        }
        // 5 suspects, 5 sizes: ratio 1 > 0.6.
        assert_eq!(run(&v), Some(0));
    }

    #[test]
    fn short_flows_export_nothing_and_only_from_the_30th_packet_is_watched() {
        let mut p = Ssadetector;
        let pkt = udp(80);
        let details = Default::default();
        let view = |ms| PacketView {
            ts: Timestamp::from_millis(ms),
            pkt: &pkt,
            details: &details,
            reverse: false,
            payload: &[],
            stream: &[],
        };
        let mut s = p.attach(&view(0)).unwrap();
        for i in 0..29 {
            p.packet(&mut s, &view(i));
        }
        assert!(s.watch.is_none());
        p.packet(&mut s, &view(30));
        assert!(s.watch.is_some());
        let flow = FlowSummary {
            packets: [30, 0],
            ..FlowSummary::default()
        };
        let mut ext = Extensions::default();
        assert!(!p.export(s, &flow, &mut ExtWriter::new(&mut ext, &[CONFIDENCE])));
    }

    #[test]
    fn suspects_beyond_the_hundredth_count_and_their_sizes_are_not_kept() {
        assert_eq!(run(&handshakes(150, &[])), Some(1));
        let mut w = Watch::new();
        for i in 0..150u64 {
            let t = i * 10_000_000_000;
            w.packet(80, 0, t);
            w.packet(84, 1, t + 1);
            w.packet(90 + (i % 2) as u32, 0, t + 2);
        }
        assert_eq!((w.suspects, usize::from(w.kept)), (150, KEPT));
        // 2 sizes among the 100 kept: 0.02, a tunnel however many packets up to 2,500 each.
        assert!(w.tunnel(150 * 2500));
        assert!(!w.tunnel(150 * 2500 + 1));
        assert!(!w.tunnel(u64::MAX));
    }

    #[test]
    fn time_going_back_matches_nothing_from_the_future() {
        let mut w = Watch::new();
        w.packet(80, 0, 10_000_000_000);
        w.packet(84, 1, 9_000_000_000);
        assert_eq!(w.syn_ack.0[24], [UNSET; 2]);
        // Edges of the size range, and sizes out of it, do not panic.
        for len in [0, 59, 60, 150, 151, u32::MAX] {
            w.packet(len, 0, 0);
            w.packet(len, 1, u64::MAX - 1);
        }
    }
}
