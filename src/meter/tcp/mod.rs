//! TCP performance measurement from headers alone: sequence progress, retransmissions,
//! observation loss and loss events ([`seq`]), round-trip time ([`rtt`]), options, receiver
//! window, duplicate and selective ACKs, timestamp clock rate, inter-segment times and chirp.
//!
//! Why segments were sent again, and reordering ([`cause`]); RTT under load (mean and
//! maximum over the samples).
//!
//! Only what the template asks for is tracked ([`TcpConfig`]); a flow gets TCP state only
//! when something is asked for, from a slab beside the flow table. Times are microseconds
//! after the flow's start (u32: a record spans at most 71 minutes of TCP timing, far beyond
//! the default 5-minute active timeout; later packets are timed as at that limit).

mod cause;
mod rtt;
mod seq;
#[cfg(test)]
mod tests;

pub use rtt::EchoRule;
pub use seq::SeqCounters;

use super::pool::{Pool, NONE};
use crate::decode::TcpInfo;
use cause::{AckSeen, Resent};
use rtt::{RttInput, RttState};
use seq::{LossPool, SeqDir};

/// Wrap-aware "a is before b" on 32-bit sequence space (a difference of exactly 2^31 counts
/// as before, as in QoF). (Here rather than in `seq`, which keeps the causes' state: `cause`
/// uses it, and the two would depend on each other.)
pub(crate) fn seq_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// TCP flag bits.
pub(crate) mod flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// Which TCP measurements are switched on (from the template's features).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConfig {
    /// Sequence tracking: counts, retransmissions, jumps, loss, loss events, observed MSS.
    pub seq: bool,
    pub rtt: bool,
    /// Duplicate and selective ACK counts.
    pub ack: bool,
    /// Receiver window statistics and stalls.
    pub rwin: bool,
    /// Timestamp clock frequency.
    pub ts: bool,
    /// Inter-segment times (and, with `ts`, chirp).
    pub iat: bool,
    /// Options-derived facts: declared MSS, characteristics (needs the decoder's options).
    pub options: bool,
    /// Why segments were sent again, and reordering (needs `seq`, `rtt` and options).
    pub causes: bool,
    /// Mean and maximum RTT (needs `rtt`).
    pub rtt_load: bool,
    /// Depth of each direction's gap stack.
    pub gap_depth: u8,
    pub echo_rule: EchoRule,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            seq: false,
            rtt: false,
            ack: false,
            rwin: false,
            ts: false,
            iat: false,
            options: false,
            causes: false,
            rtt_load: false,
            gap_depth: 8,
            echo_rule: EchoRule::NotLarger,
        }
    }
}

impl TcpConfig {
    /// What the template's elements switch on. RTT and loss events need sequence tracking
    /// (to know which segments are new).
    pub fn any(&self) -> bool {
        self.seq
            || self.rtt
            || self.ack
            || self.rwin
            || self.ts
            || self.iat
            || self.options
            || self.causes
            || self.rtt_load
    }
}

/// qofTcpCharacteristics bits.
pub mod characteristic {
    pub const ECT0: u8 = 0x01;
    pub const ECT1: u8 = 0x02;
    pub const CE: u8 = 0x04;
    pub const TIMESTAMP: u8 = 0x10;
    pub const SACK: u8 = 0x20;
    pub const WINDOW_SCALE: u8 = 0x40;
}

/// "No window scale option seen".
const NO_WS: u8 = 0xff;

/// Per-direction state other than sequence tracking: 96 bytes. In declaration order
/// (`repr(C)`), so that [`TcpTable::prefetch`] knows which fields reach into which cache line, and
/// laid out without padding. Counters of rare events (duplicate and selective ACKs, receiver
/// stalls) live in the direction's loss block, taken only when one happens.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
struct DirState {
    /// Sequence tracking; its flags byte also holds this struct's [`bit`]s.
    seq: SeqDir,
    /// Transport payload (transportPacket/OctetDeltaCount), kept here for TCP flows so a
    /// packet touches one place.
    payload: Payload,
    // Options.
    declared_mss: u16,
    window_scale: u8,
    characteristics: u8,
    // Receiver window (scaled), over every segment of the direction; `rwin_n` 0 = none yet.
    rwin_min: u32,
    rwin_max: u32,
    rwin_mean: f32,
    rwin_n: u32,
    last_window: u16,
    chirp_n: u16,
    // ACKs sent in this direction.
    highest_ack: u32,
    // Timestamp clock: first and latest TSval on new data, and when they were seen.
    ts_first_us: u32,
    ts_last: u32,
    ts_last_us: u32,
    /// TSval advance from the first timestamped segment to `ts_last`, widened past wraps.
    ts_span: u32,
    // Inter-segment time between segments carrying new sequence space.
    last_adv_us: u32,
    iat_min_us: u32,
    iat_max_us: u32,
    chirp_min_ms: i16,
    chirp_max_ms: i16,
    chirp_sum_ms: i32,
}

/// The direction's bits, in the high half of its sequence flags byte.
mod bit {
    pub const ACK: u8 = 0x10;
    pub const TS: u8 = 0x20;
    pub const ADV: u8 = 0x40;
    pub const IAT: u8 = 0x80;
}

impl Default for DirState {
    fn default() -> Self {
        DirState {
            seq: SeqDir::default(),
            payload: Payload::default(),
            declared_mss: 0,
            window_scale: NO_WS,
            characteristics: 0,
            rwin_min: 0,
            rwin_max: 0,
            rwin_mean: 0.0,
            rwin_n: 0,
            last_window: 0,
            chirp_n: 0,
            highest_ack: 0,
            ts_first_us: 0,
            ts_last: 0,
            ts_last_us: 0,
            ts_span: 0,
            last_adv_us: 0,
            iat_min_us: 0,
            iat_max_us: 0,
            chirp_min_ms: 0,
            chirp_max_ms: 0,
            chirp_sum_ms: 0,
        }
    }
}

impl DirState {
    fn has(&self, b: u8) -> bool {
        self.seq.flags & b != 0
    }

    fn set(&mut self, b: u8) {
        self.seq.flags |= b;
    }
}

/// Segments and octets of transport payload in one direction. (The octet count is kept as
/// two 32-bit halves: 4-byte alignment packs it into the TCP state without padding.)
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Payload {
    /// Saturating, like the flow's own packet count (a flow is split before it overflows).
    pub packets: u32,
    octets: [u32; 2],
}

impl Payload {
    pub fn new(packets: u32, octets: u64) -> Self {
        Payload {
            packets,
            octets: [octets as u32, (octets >> 32) as u32],
        }
    }

    #[inline]
    pub fn add(&mut self, len: u32) {
        *self = Payload::new(
            self.packets.saturating_add(u32::from(len > 0)),
            self.octets() + u64::from(len),
        );
    }

    pub fn octets(&self) -> u64 {
        u64::from(self.octets[1]) << 32 | u64::from(self.octets[0])
    }
}

/// TCP state of one biflow (`repr(C)`: see [`DirState`]).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct TcpState {
    dir: [DirState; 2],
    rtt: RttState,
}

impl super::pool::Recycle for TcpState {
    fn free_link(&mut self) -> &mut u32 {
        &mut self.dir[0].rwin_n
    }
}

/// One direction's TCP measurements, as exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpDirStats {
    pub seq: SeqCounters,
    pub observed_mss: u16,
    pub declared_mss: u16,
    pub characteristics: u8,
    pub rwin_min: u32,
    pub rwin_mean: u32,
    pub rwin_max: u32,
    pub stalls: u32,
    pub dup_acks: u64,
    pub sel_acks: u64,
    /// Timestamp clock rate in Hz (0 = unknown).
    pub ts_hz: u32,
    /// Inter-segment times in µs (0 when fewer than two segments carried new data).
    pub iat_min_us: u32,
    pub iat_max_us: u32,
    /// Chirp (inter-segment time minus the sender's own clock interval) in ms.
    pub chirp_min_ms: i16,
    pub chirp_max_ms: i16,
    pub chirp_mean_ms: i16,
    /// Segments sent again on the receiver's feedback, on a timer, for nothing (the receiver
    /// had them), and segments that arrived after higher ones without being sent again
    /// ([`cause`]).
    pub fast_retransmits: u32,
    pub timeout_retransmits: u32,
    pub spurious_retransmits: u32,
    pub reorders: u32,
}

/// The biflow's RTT, as exported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttStats {
    pub min_us: u32,
    pub smoothed_us: u32,
    pub samples: u32,
    /// Mean and maximum over the samples (with `rtt_load`; 0 without a sample).
    pub mean_us: u32,
    pub max_us: u32,
}

/// RTT under load: a biflow's RTT samples summed and their maximum, kept beside its TCP
/// state (by the state's index) only when mean or maximum RTT is asked for (the state itself
/// stays 248 bytes), and touched only when a half-RTT is observed. 28 bytes, 4-byte aligned.
#[derive(Clone, Copy, Debug)]
struct RttLoad {
    /// The halves (point to receiver and back, each way) as prompt answers last showed them;
    /// [`UNKNOWN`] before the first.
    half_us: [u32; 2],
    /// The sum of samples × their weight (µs·segments), as two 32-bit halves.
    sum: [u32; 2],
    /// Samples taken, and the data segments of the biflow when the last was taken: the
    /// weights add up to their sum.
    n: u32,
    segs_at: u32,
    max_us: u32,
}

/// A half not yet seen.
const UNKNOWN: u32 = u32::MAX;

impl Default for RttLoad {
    fn default() -> Self {
        RttLoad {
            half_us: [UNKNOWN; 2],
            sum: [0; 2],
            n: 0,
            segs_at: 0,
            max_us: 0,
        }
    }
}

impl RttLoad {
    /// A half-RTT seen in direction `o.dir`, when the biflow had carried `segs` data
    /// segments: a sample once both halves are known.
    fn observe(&mut self, o: &rtt::Observation, segs: u32) {
        if !o.prompt {
            return;
        }
        self.half_us[usize::from(o.dir & 1)] = o.us.min(UNKNOWN - 1);
        if self.half_us.contains(&UNKNOWN) {
            return;
        }
        let rtt = self.half_us[0].saturating_add(self.half_us[1]);
        // Each sample stands for the data segments sent since the one before, and itself:
        // one sample per round trip would weigh a slow round trip, under a queue, as little
        // as a fast one. (Segments after the last sample are not counted.)
        let w = u64::from(segs.wrapping_sub(self.segs_at)) + 1;
        let sum = (u64::from(self.sum[1]) << 32 | u64::from(self.sum[0]))
            .saturating_add(u64::from(rtt).saturating_mul(w));
        self.sum = [sum as u32, (sum >> 32) as u32];
        self.n = self.n.saturating_add(1);
        self.segs_at = segs;
        self.max_us = self.max_us.max(rtt);
    }

    /// The weighted mean.
    fn mean(&self) -> u32 {
        let sum = u64::from(self.sum[1]) << 32 | u64::from(self.sum[0]);
        let weight = u64::from(self.segs_at) + u64::from(self.n);
        sum.checked_div(weight)
            .map_or(0, |m| m.min(u64::from(self.max_us)) as u32)
    }
}

/// Entries per chunk of [`Side`] (as the state pool's).
const SIDE_CHUNK: usize = 1024;

/// Per-state values kept beside the state pool, by the same index, in chunks that never move
/// (as [`Pool`]'s).
#[derive(Default)]
struct Side<T> {
    chunks: Vec<Box<[T]>>,
}

impl<T: Copy + Default> Side<T> {
    /// Entry `i`, reset to its default (the chunk is taken if new).
    fn reset(&mut self, i: u32) {
        let i = i as usize;
        while self.chunks.len() <= i / SIDE_CHUNK {
            self.chunks
                .push(vec![T::default(); SIDE_CHUNK].into_boxed_slice());
        }
        self.chunks[i / SIDE_CHUNK][i % SIDE_CHUNK] = T::default();
    }

    fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        let i = i as usize;
        self.chunks.get_mut(i / SIDE_CHUNK)?.get_mut(i % SIDE_CHUNK)
    }

    fn bytes(&self) -> usize {
        self.chunks.len() * SIDE_CHUNK * std::mem::size_of::<T>()
    }
}

/// Everything a TCP packet contributes, gathered by the meter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpPacket<'a> {
    pub tcp: &'a TcpInfo,
    pub payload_len: u32,
    pub ecn: u8,
    /// 0 = forward, 1 = reverse.
    pub dir: usize,
    pub now_us: u32,
}

/// TCP states of a meter's flows, by flow slot, allocated only for TCP flows.
pub(crate) struct TcpTable {
    pub cfg: TcpConfig,
    states: Pool<TcpState>,
    pool: LossPool,
    /// With `rtt_load`: each state's RTT sum and maximum.
    load: Side<RttLoad>,
}

impl TcpTable {
    pub fn new(cfg: TcpConfig) -> Self {
        TcpTable {
            cfg,
            states: Pool::default(),
            pool: LossPool::new(cfg.gap_depth, cfg.causes),
            load: Side::default(),
        }
    }

    /// A new TCP flow: the index of its state (the meter keeps it beside the flow).
    pub fn attach(&mut self) -> u32 {
        let i = self.states.alloc(TcpState::default());
        if self.cfg.rtt_load {
            self.load.reset(i);
        }
        i
    }

    /// Ask for every cache line of state `i` (both directions: the packet's is not known
    /// yet), without waiting for them.
    #[inline]
    pub fn prefetch(&self, i: u32) {
        if let Some(st) = self.states.get(i) {
            use crate::meter::prefetch::line;
            // Fields at most 64 bytes apart from the first byte to the last, so every line is
            // asked for (offsets 0, 56 and 92 of each 96-byte direction; 0 and 52 of the RTT
            // state).
            for d in &st.dir {
                line(&d.seq);
                line(&d.highest_ack);
                line(&d.chirp_sum_ms);
            }
            line(&st.rtt);
            line(&st.rtt.samples);
        }
    }

    /// Account a TCP packet of the flow whose state is `i`.
    pub fn packet(&mut self, i: u32, p: &TcpPacket) {
        if i == NONE {
            return;
        }
        if self.cfg.causes || self.cfg.rtt_load {
            self.packet_extra(i, p);
        } else {
            // Compiled without the causes and the RTT under load: as fast as before them.
            self.states
                .get_mut(i)
                .packet::<false>(&self.cfg, &mut self.pool, p);
        }
    }

    /// [`TcpTable::packet`] with causes or RTT under load (out of line: the TCP logic is
    /// inlined once for each).
    #[inline(never)]
    fn packet_extra(&mut self, i: u32, p: &TcpPacket) {
        let st = self.states.get_mut(i);
        let seen = st.packet::<true>(&self.cfg, &mut self.pool, p);
        if let (Some(o), true) = (seen, self.cfg.rtt_load) {
            let segs = st.data_segments();
            if let Some(l) = self.load.get_mut(i) {
                l.observe(&o, segs);
            }
        }
    }

    /// The flow whose state is `i` ended: its measurements; the state is freed.
    pub fn detach(&mut self, i: u32) -> Option<([TcpDirStats; 2], RttStats, [Payload; 2])> {
        if i == NONE {
            return None;
        }
        let st = self.states.get_mut(i);
        let mut out = st.export(&self.pool);
        if let (true, Some(l)) = (self.cfg.rtt_load, self.load.get_mut(i)) {
            out.1.mean_us = l.mean();
            out.1.max_us = l.max_us;
        }
        for d in &mut st.dir {
            d.seq.release(&mut self.pool);
        }
        self.states.release(i);
        Some(out)
    }

    /// The most TCP states ever in use at once.
    pub fn peak(&self) -> usize {
        self.states.peak()
    }

    /// TCP states in use and loss blocks in use (for tests and memory accounting).
    pub fn in_use(&self) -> (usize, usize) {
        (self.states.in_use(), self.pool.in_use())
    }

    /// Bytes held by TCP states (and what is kept beside them) and by loss blocks.
    pub fn bytes(&self) -> (usize, usize) {
        (self.states.bytes() + self.load.bytes(), self.pool.bytes())
    }
}

impl TcpState {
    /// Segments that carried payload, both directions.
    fn data_segments(&self) -> u32 {
        self.dir[0]
            .payload
            .packets
            .wrapping_add(self.dir[1].payload.packets)
    }

    /// Account a packet; returns the half-RTT it observed, if any. `EXTRA`: causes or RTT
    /// under load may be on (without, their code is compiled out).
    #[inline(always)]
    fn packet<const EXTRA: bool>(
        &mut self,
        cfg: &TcpConfig,
        pool: &mut LossPool,
        p: &TcpPacket,
    ) -> Option<rtt::Observation> {
        let t = p.tcp;
        let causes = EXTRA && cfg.causes;
        let syn = t.flags & flag::SYN != 0;
        let window_us = self.rtt.window_us();
        let (dir, other) = match p.dir {
            0 => {
                let [a, b] = &mut self.dir;
                (a, b)
            }
            _ => {
                let [a, b] = &mut self.dir;
                (b, a)
            }
        };
        let opts = &t.options;
        dir.payload.add(p.payload_len);

        if cfg.options {
            if let Some(mss) = opts.mss {
                dir.declared_mss = mss;
            }
            if let Some(ws) = opts.window_scale {
                // RFC 7323 §2.3: shifts above 14 are used as 14.
                dir.window_scale = ws.min(14);
                dir.characteristics |= characteristic::WINDOW_SCALE;
            }
            if opts.timestamp.is_some_and(|(v, _)| v != 0) {
                dir.characteristics |= characteristic::TIMESTAMP;
            }
            if opts.sack_right_edge().is_some_and(|e| e != 0) {
                dir.characteristics |= characteristic::SACK;
            }
            if causes && ((syn && opts.sack_permitted) || opts.sack.is_some()) {
                dir.seq.sack_ok = true;
            }
            dir.characteristics |= match p.ecn & 3 {
                2 => characteristic::ECT0,
                1 => characteristic::ECT1,
                3 => characteristic::CE,
                _ => 0,
            };
        }

        // The window before this packet (the duplicate-ACK test compares with it).
        let prev_window = dir.last_window;
        if cfg.rwin && t.flags & flag::RST == 0 {
            // The window is scaled only when both sides offered the option, and never in a
            // SYN (RFC 7323 §2.2). QoF scaled by the direction's own option regardless.
            let scale = if !syn && dir.window_scale != NO_WS && other.window_scale != NO_WS {
                dir.window_scale
            } else {
                0
            };
            let w = u32::from(t.window) << scale;
            if dir.rwin_n == 0 {
                dir.rwin_min = w;
                dir.rwin_max = w;
            } else {
                if t.window == 0 && dir.last_window != 0 {
                    let b = dir.seq.anomalies(pool);
                    b.stalls = b.stalls.saturating_add(1);
                }
                dir.rwin_min = dir.rwin_min.min(w);
                dir.rwin_max = dir.rwin_max.max(w);
            }
            dir.rwin_n = dir.rwin_n.saturating_add(1);
            dir.rwin_mean += (w as f32 - dir.rwin_mean) / dir.rwin_n as f32;
            dir.last_window = t.window;
        }

        // The highest ACK is followed for duplicate ACKs, and for causes (which need the
        // receiver's ACK point when a direction's first anomaly comes).
        if (cfg.ack || causes) && t.flags & flag::ACK != 0 {
            let first = !dir.has(bit::ACK);
            if first || seq_before(dir.highest_ack, t.ack) {
                dir.set(bit::ACK);
                dir.highest_ack = t.ack;
            } else if cfg.ack
                && t.ack == dir.highest_ack
                && p.payload_len == 0
                && t.flags & (flag::SYN | flag::FIN | flag::RST) == 0
                && (!cfg.rwin || t.window == prev_window)
            {
                // RFC 5681 §2's duplicate ACK: no data, no SYN/FIN, same ACK number (and,
                // when windows are tracked, the same window: not a window update).
                let b = dir.seq.anomalies(pool);
                b.dup_acks = b.dup_acks.saturating_add(1);
            }
            if cfg.ack && opts.sack_right_edge().is_some_and(|e| seq_before(t.ack, e)) {
                let b = dir.seq.anomalies(pool);
                b.sel_acks = b.sel_acks.saturating_add(1);
            }
        }

        if !cfg.seq {
            return None;
        }
        if t.flags & flag::ACK != 0 && t.flags & flag::RST == 0 {
            other.seq.acknowledged(pool, t.ack, p.now_us, window_us);
            if causes {
                if let Some(c) = other.seq.causes_if_any(pool) {
                    c.ack(&AckSeen {
                        ack: t.ack,
                        now_us: p.now_us,
                        pure: p.payload_len == 0 && t.flags & (flag::SYN | flag::FIN) == 0,
                        sack_above: opts.sack_right_edge().is_some_and(|e| seq_before(t.ack, e)),
                        dsack: opts.dsack(),
                    });
                }
            }
        }
        let was_started = dir.seq.started();
        // Before this segment changes them (for causes): when the direction last sent new
        // data, and its newest TSval.
        let (last_adv_us, ts_last) = (dir.last_adv_us, dir.ts_last);
        let (had_adv, had_ts) = (dir.has(bit::ADV), dir.has(bit::TS));
        let out = dir
            .seq
            .segment(pool, t.seq, p.payload_len, t.flags, p.now_us, window_us);
        // (Not a keep-alive: the last octet again, after a pause, as tshark tells them.)
        if causes
            && (out.retransmitted || out.filled || out.repeated)
            && !(p.payload_len == 1
                && out.end == dir.seq.next_seq()
                && t.flags & (flag::SYN | flag::FIN | flag::RST) == 0)
        {
            let tsval_order = match opts.timestamp {
                Some((v, _)) if v != 0 && had_ts => Some(if seq_before(v, ts_last) {
                    std::cmp::Ordering::Less
                } else if v == ts_last {
                    std::cmp::Ordering::Equal
                } else {
                    std::cmp::Ordering::Greater
                }),
                _ => None,
            };
            let r = Resent {
                now_us: p.now_us,
                seq: t.seq.wrapping_add(u32::from(syn)),
                end: out.end,
                seen_before: out.retransmitted,
                fill_age_us: out
                    .filled
                    .then(|| p.now_us.saturating_sub(out.filled_gap_us)),
                syn,
                tsval_order,
                rtt_min_us: self.rtt.min_us,
                srtt_us: self.rtt.smoothed_us,
                peer_ack: other.has(bit::ACK).then_some(other.highest_ack),
                last_new_us: if had_adv { last_adv_us } else { p.now_us },
                next_seq: dir.seq.next_seq(),
                peer_sack: other.seq.sack_ok,
            };
            if let Some(c) = dir.seq.causes_mut(pool) {
                c.resent(&r);
            }
        }

        if out.advanced {
            if cfg.iat && dir.has(bit::ADV) {
                let iat = p.now_us.wrapping_sub(dir.last_adv_us);
                if !dir.has(bit::IAT) {
                    dir.set(bit::IAT);
                    dir.iat_min_us = iat;
                    dir.iat_max_us = iat;
                } else {
                    dir.iat_min_us = dir.iat_min_us.min(iat);
                    dir.iat_max_us = dir.iat_max_us.max(iat);
                }
            }
            dir.set(bit::ADV);
            dir.last_adv_us = p.now_us;
        }

        // The sender's timestamp clock, read from every packet whose TSval is newer than any
        // before in its direction. Both ends of an interval are the first packet seen with its
        // TSval, so the clock's tick phase cancels out.
        let mut new_tsval = None;
        if let Some(v) = opts.timestamp.map(|(v, _)| v).filter(|&v| v != 0) {
            if !dir.has(bit::TS) {
                // The first timestamped packet starts the clock, whether or not it was the
                // direction's first packet (QoF never started it otherwise).
                dir.set(bit::TS);
                dir.ts_first_us = p.now_us;
                dir.ts_last = v;
                dir.ts_last_us = p.now_us;
                // A record that starts mid-connection cannot know whether this TSval is new:
                // an echo of it may answer an earlier packet. Only a SYN's surely is.
                new_tsval = syn.then_some(v);
            } else if seq_before(dir.ts_last, v) {
                if cfg.iat {
                    // Chirp: how much longer the packets took to arrive than the sender's own
                    // clock says it took to send them, from the previous TSval before it is
                    // replaced (QoF replaced it first, so its chirp was always the IAT).
                    if let Some(hz) = dir.ts_hz() {
                        let ticks = v.wrapping_sub(dir.ts_last);
                        let sent_us = i64::from(ticks) * 1_000_000 / i64::from(hz);
                        let took_us = i64::from(p.now_us.wrapping_sub(dir.ts_last_us));
                        let chirp = (took_us - sent_us).clamp(i32::MIN.into(), i32::MAX.into());
                        dir.add_chirp(chirp as i32);
                    }
                }
                dir.ts_span = dir.ts_span.saturating_add(v.wrapping_sub(dir.ts_last));
                dir.ts_last = v;
                dir.ts_last_us = p.now_us;
                new_tsval = Some(v);
            }
        }

        if cfg.rtt {
            let input = RttInput {
                dir: p.dir,
                now_us: p.now_us,
                ack: (t.flags & flag::ACK != 0).then_some(t.ack),
                tsecr: opts.timestamp.map(|(_, e)| e),
                new_tsval,
                seq: t.seq,
                advanced: out.advanced,
                end: out.end,
                jumped: out.jumped,
                // A repeated SYN carries no payload but occupies sequence space all the same.
                occupies: p.payload_len > 0 || (syn && was_started),
            };
            let seen = self.rtt.packet(&input, cfg.echo_rule);
            return if EXTRA { seen } else { None };
        }
        None
    }

    fn export(&self, pool: &LossPool) -> ([TcpDirStats; 2], RttStats, [Payload; 2]) {
        let d = |s: &DirState| {
            let rare = s.seq.block(pool);
            let causes = s.seq.causes(pool).copied().unwrap_or_default();
            let resent = causes.fast.saturating_add(causes.timeout);
            TcpDirStats {
                seq: s.seq.counters(pool),
                observed_mss: s.seq.max_payload,
                declared_mss: s.declared_mss,
                characteristics: s.characteristics,
                rwin_min: s.rwin_min,
                rwin_mean: s.rwin_mean.round() as u32,
                rwin_max: s.rwin_max,
                stalls: rare.map_or(0, |b| b.stalls),
                dup_acks: rare.map_or(0, |b| b.dup_acks.into()),
                sel_acks: rare.map_or(0, |b| b.sel_acks.into()),
                ts_hz: s.ts_hz().unwrap_or(0),
                iat_min_us: s.iat_min_us,
                iat_max_us: s.iat_max_us,
                chirp_min_ms: s.chirp_min_ms,
                chirp_max_ms: s.chirp_max_ms,
                chirp_mean_ms: if s.chirp_n == 0 {
                    0
                } else {
                    (s.chirp_sum_ms / i32::from(s.chirp_n)) as i16
                },
                fast_retransmits: causes.fast,
                timeout_retransmits: causes.timeout,
                // (A D-SACK for a segment the meter did not see sent again counts nothing.)
                spurious_retransmits: causes.spurious.min(resent),
                reorders: causes.reorder,
            }
        };
        (
            [d(&self.dir[0]), d(&self.dir[1])],
            RttStats {
                min_us: self.rtt.min_us,
                smoothed_us: self.rtt.smoothed_us,
                samples: self.rtt.samples,
                ..RttStats::default()
            },
            [self.dir[0].payload, self.dir[1].payload],
        )
    }
}

fn ms_i16(us: i32) -> i16 {
    ((i64::from(us) + if us < 0 { -500 } else { 500 }) / 1000)
        .clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16
}

impl DirState {
    /// The sender's timestamp clock rate, from the first to the latest timestamped segment
    /// carrying new data; `None` until the two are at least 10 ms apart.
    #[inline(always)]
    fn ts_hz(&self) -> Option<u32> {
        let us = self.ts_last_us.wrapping_sub(self.ts_first_us);
        if !self.has(bit::TS) || us < 10_000 || self.ts_span == 0 {
            return None;
        }
        let ticks = u64::from(self.ts_span);
        u32::try_from((ticks * 1_000_000 + u64::from(us) / 2) / u64::from(us))
            .ok()
            .filter(|&hz| hz != 0)
    }

    fn add_chirp(&mut self, chirp_us: i32) {
        let ms = ms_i16(chirp_us);
        if self.chirp_n == 0 {
            self.chirp_min_ms = ms;
            self.chirp_max_ms = ms;
        } else {
            self.chirp_min_ms = self.chirp_min_ms.min(ms);
            self.chirp_max_ms = self.chirp_max_ms.max(ms);
        }
        if self.chirp_n < u16::MAX {
            self.chirp_n += 1;
            self.chirp_sum_ms = self.chirp_sum_ms.saturating_add(i32::from(ms));
        }
    }
}
