//! `bstats`: bursts of packets per direction (ipfixprobe's burst statistics), as eight
//! basicLists (CESNET 8057/1050-1057): for each forward burst its packets, payload octets,
//! first and last packet's time, then the same four for reverse bursts.
//!
//! Only packets with payload count ([`wire_payload`], ipfixprobe's `payload_len_wire`), each
//! direction on its own. A packet less than 1000 ms after the previous counted packet of its
//! direction joins that packet's run (time measured to the nanosecond the capture gives; a
//! packet whose time went back joins too); otherwise the run ends, and is kept as a burst if
//! it has at least 3 packets, and the packet starts a new run. At most 15 bursts per
//! direction are kept: after the 15th, that direction's packets are not looked at. When the
//! flow ends, its open run is a burst if it has 3 packets or more. Flows of 3 packets or
//! fewer (both directions together) export none of it. Times are dateTimeMilliseconds
//! (truncated, as ipfixprobe's).
//!
//! Packets and octets travel as unsigned32 items, as ipfixprobe sends them, although
//! CESNET's registry says unsigned16: a burst of 45 full-size segments already carries more
//! than 65,535 octets. Both saturate at 2^32-1 where ipfixprobe's wrap.

use super::{wire_payload, Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};
use crate::time::Timestamp;

pub static SPEC: Spec = Spec {
    kind: PluginKind::Bstats,
    about: "bursts of packets per direction: packets, octets, start and end of each",
    options: &[],
    build,
};

/// Bursts kept per direction (ipfixprobe's BSTATS_MAXELENCOUNT).
pub const MAX_BURSTS: usize = 15;
/// Packets a run needs to be a burst (MINIMAL_PACKETS_IN_BURST).
pub const MIN_PACKETS: u32 = 3;
/// A packet this long or longer after its direction's previous one starts a new run
/// (MAXIMAL_INTERPKT_TIME, 1000 ms).
pub const MAX_GAP_NS: u64 = 1_000_000_000;

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

/// One direction's four lists: packets, octets, start, stop (forward, then reverse).
const LISTS: [[ExtKey; 4]; 2] = [
    [key(1050), key(1051), key(1052), key(1053)],
    [key(1054), key(1055), key(1056), key(1057)],
];

fn build(_: &Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Bstats)), Needs::default()))
}

struct Bstats;

/// One direction's bursts. Entries before `done` are kept bursts; entry `done` (while
/// `done` < [`MAX_BURSTS`]) is the open run, empty while `pkts[done]` is 0.
#[derive(Default)]
struct Dir {
    done: u8,
    pkts: [u32; MAX_BURSTS],
    octets: [u32; MAX_BURSTS],
    /// Times of each run's first and last packet, in ms from the flow's first packet (a
    /// quarter of the space of absolute times; see [`State::offset`]).
    start: [i32; MAX_BURSTS],
    stop: [i32; MAX_BURSTS],
    /// The open run's last packet, to the nanosecond.
    last: Timestamp,
}

impl Dir {
    /// Add a packet of `len` octets at `ts` (`ms`: its time as stored).
    fn packet(&mut self, ts: Timestamp, ms: i32, len: u32) {
        let Some(i) = self.open() else {
            return;
        };
        if self.pkts[i] > 0 && ts.saturating_since(self.last).nanos() < MAX_GAP_NS {
            self.pkts[i] = self.pkts[i].saturating_add(1);
            self.octets[i] = self.octets[i].saturating_add(len);
            self.stop[i] = ms;
            self.last = ts;
            return;
        }
        if self.pkts[i] >= MIN_PACKETS {
            self.done += 1;
        }
        // (A shorter run is forgotten: the packet takes its place.)
        let Some(i) = self.open() else {
            return;
        };
        self.pkts[i] = 1;
        self.octets[i] = len;
        self.start[i] = ms;
        self.stop[i] = ms;
        self.last = ts;
    }

    /// The open run's index, or `None` once the bursts are all taken.
    fn open(&self) -> Option<usize> {
        let i = usize::from(self.done);
        (i < MAX_BURSTS).then_some(i)
    }

    /// The bursts, the open run included if it is one.
    fn bursts(&self) -> usize {
        match self.open() {
            Some(i) if self.pkts[i] >= MIN_PACKETS => i + 1,
            Some(i) => i,
            None => MAX_BURSTS,
        }
    }
}

#[derive(Default)]
pub struct State {
    /// The flow's first packet's time in ms: the origin of the stored times.
    origin_ms: u64,
    dirs: [Dir; 2],
}

impl State {
    /// `ms` as stored: ms from the origin, within ±24 days (times further away, which only a
    /// flow longer than any sensible active timeout has, are clamped).
    fn offset(&self, ms: u64) -> i32 {
        let d = i128::from(ms) - i128::from(self.origin_ms);
        d.clamp(i32::MIN.into(), i32::MAX.into()) as i32
    }

    fn time(&self, offset: i32) -> u64 {
        self.origin_ms.saturating_add_signed(offset.into())
    }
}

impl FlowPlugin for Bstats {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Bstats.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        Some(State {
            origin_ms: p.ts.millis(),
            ..State::default()
        })
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let len = wire_payload(p.pkt);
        if len > 0 {
            let ms = s.offset(p.ts.millis());
            s.dirs[usize::from(p.reverse)].packet(p.ts, ms, len);
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if flow.packets() <= u64::from(MIN_PACKETS) {
            return false;
        }
        for (d, [pkts, octets, start, stop]) in s.dirs.iter().zip(LISTS) {
            let n = d.bursts();
            out.list(pkts, 4, d.pkts[..n].iter().map(|&v| u64::from(v)));
            out.list(octets, 4, d.octets[..n].iter().map(|&v| u64::from(v)));
            out.list(start, 8, d.start[..n].iter().map(|&o| s.time(o)));
            out.list(stop, 8, d.stop[..n].iter().map(|&o| s.time(o)));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Packet;
    use crate::meter::{ExtValue, Extensions};

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

    /// Run `pkts` (time in µs, reverse, payload octets); `None` when nothing is exported.
    fn run(pkts: &[(u64, bool, u32)]) -> Option<Extensions> {
        let mut p = Bstats;
        let mut s = None;
        for &(us, reverse, len) in pkts {
            let pkt = udp(len);
            let v = PacketView {
                ts: Timestamp::from_micros(us),
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
            packets: [pkts.len() as u64, 0],
            ..FlowSummary::default()
        };
        let mut ext = Extensions::default();
        let mut keys: Vec<ExtKey> = LISTS.concat();
        keys.sort();
        let mut w = ExtWriter::new(&mut ext, &keys);
        p.export(s.unwrap(), &flow, &mut w).then_some(ext)
    }

    fn items(ext: &Extensions, key: ExtKey) -> Vec<u64> {
        let Some(ExtValue::List {
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

    /// A direction's lists: packets, octets, start ms, stop ms.
    fn dir(ext: &Extensions, d: usize) -> [Vec<u64>; 4] {
        LISTS[d].map(|k| items(ext, k))
    }

    #[test]
    fn runs_of_three_within_a_second_are_bursts() {
        let ext = run(&[
            (10_000_000, false, 100),
            (10_500_000, false, 200),
            // 999.999 ms after the one before: joins.
            (11_499_999, false, 300),
            // 1000 ms after: a new run, of two packets only, so forgotten.
            (12_499_999, false, 10),
            (12_600_000, false, 10),
            // A run of three, then the flow ends with it open.
            (20_000_000, false, 1),
            (20_000_100, false, 2),
            (20_000_900, false, 3),
            // Empty packets never count.
            (20_001_000, false, 0),
            (20_002_000, true, 50),
        ])
        .unwrap();
        assert_eq!(
            dir(&ext, 0),
            [
                vec![3, 3],
                vec![600, 6],
                vec![10_000, 20_000],
                vec![11_499, 20_000]
            ]
        );
        // One reverse packet: a run, not a burst; the lists are there, empty.
        assert_eq!(dir(&ext, 1), [Vec::<u64>::new(), vec![], vec![], vec![]]);
    }

    #[test]
    fn directions_run_apart() {
        let mut pkts = Vec::new();
        for i in 0..4u64 {
            pkts.push((1_000_000 + i * 600_000, false, 1448));
            pkts.push((1_000_300 + i * 600_000, true, 40));
        }
        let ext = run(&pkts).unwrap();
        assert_eq!(dir(&ext, 0)[0], [4]);
        assert_eq!(dir(&ext, 0)[1], [4 * 1448]);
        assert_eq!(dir(&ext, 1)[2..], [vec![1_000], vec![2_800]]);
    }

    #[test]
    fn fifteen_bursts_at_most_then_nothing() {
        let mut pkts = Vec::new();
        for b in 0..20u64 {
            for i in 0..3 {
                pkts.push((b * 5_000_000 + i * 1000, false, 100 + b as u32));
            }
        }
        let ext = run(&pkts).unwrap();
        let [n, o, start, _] = dir(&ext, 0);
        assert_eq!(n, [3; MAX_BURSTS]);
        assert_eq!(o[14], 3 * 114);
        assert_eq!(start[14], 14 * 5_000);
    }

    #[test]
    fn flows_of_three_packets_or_fewer_export_nothing() {
        assert!(run(&[(1, false, 5), (2, false, 5), (3, false, 5)]).is_none());
        assert!(run(&[(1, false, 5), (2, false, 5), (3, false, 5), (4, true, 0)]).is_some());
    }

    #[test]
    fn time_going_back_joins_the_run_and_nothing_panics() {
        let ext = run(&[
            (5_000_000, false, 10),
            (4_000_000, false, u32::MAX),
            (4_100_000, false, 10),
            (4_200_000, false, 10),
        ])
        .unwrap();
        assert_eq!(
            dir(&ext, 0),
            [vec![4], vec![u64::from(u32::MAX)], vec![5_000], vec![4_200]]
        );
    }

    #[test]
    fn counts_saturate() {
        let mut d = Dir::default();
        for _ in 0..3 {
            d.packet(Timestamp::from_millis(1), 0, u32::MAX);
        }
        d.pkts[0] = u32::MAX;
        d.packet(Timestamp::from_millis(2), 1, 1);
        assert_eq!(
            (d.pkts[0], d.octets[0], d.bursts()),
            (u32::MAX, u32::MAX, 1)
        );
        // Far from the origin: clamped, not wrapped.
        let s = State::default();
        assert_eq!(s.offset(u64::MAX), i32::MAX);
    }
}
