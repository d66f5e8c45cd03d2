//! Sequence-number tracking for one direction of a TCP connection, with QoF's gap stack.
//!
//! Sequence numbers are widened to 64 bits relative to the next expected one, so wraparound
//! needs no special cases and counts never lose the high bits. The bytes a direction has
//! carried are `nsn - start`: from the first payload byte (the byte after the SYN when the
//! SYN was seen) to the highest byte seen, FIN excluded.
//!
//! A segment that starts beyond `nsn` leaves a *gap*: sequence space the sender has moved
//! past but the meter has not seen. Gaps are kept, highest first, in a stack of fixed depth.
//! A later segment below `nsn` fills what it covers of any gaps; octets it carries that lie in
//! no gap were seen before, so the segment is a retransmission. A gap that falls off the
//! bottom of the full stack, or is still open when the flow ends, counts as sequence loss:
//! octets the receiver (presumably) got but the meter never saw, i.e. observation loss.
//!
//! The state for all this is needed only once something goes wrong, so it lives in a
//! [`LossPool`]: a direction takes a block of counters on its first anomaly, and a gap stack
//! only on its first gap. A clean connection costs no loss memory at all, and one that only
//! retransmits (the usual case: the meter saw the first copy) costs the counters alone.

use super::cause::CauseBlock;

/// Widened sequence numbers start here, so data up to 4 GiB before the first byte seen
/// (segments reordered ahead of it) still has a positive widened number.
const BASE: u64 = 1 << 32;

/// No loss block.
const NONE: u32 = u32::MAX;

/// What a segment did to the sequence state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SegmentOutcome {
    /// The segment carried sequence space never seen before (new data, or the SYN): its end
    /// is the new `nsn`. An RTT measurement may wait for its acknowledgement.
    pub advanced: bool,
    /// Sequence number just past the segment (SYN included), for the RTT's ACK wait.
    pub end: u32,
    /// Some octet of it had been seen before.
    pub retransmitted: bool,
    /// It started beyond `nsn`, leaving a gap.
    pub jumped: bool,
    /// It filled (part of) a gap (only told when gaps are timed: see [`LossPool::new`]),
    /// which opened at `filled_gap_us`. (Two fields, not an `Option`: the outcome stays 16
    /// bytes, returned in registers.)
    pub filled: bool,
    pub filled_gap_us: u32,
    /// A SYN repeated (same initial sequence number), or a FIN repeated: sent again, although
    /// no octet of data was.
    pub repeated: bool,
}

/// Counters of anomalies, taken from the pool on a direction's first anomaly, and the index
/// of its gap stack, taken only on its first gap (a direction that only retransmits never
/// needs one).
#[derive(Clone, Copy, Debug)]
pub(crate) struct LossBlock {
    /// Octets of gaps that fell off the stack.
    pub lost: u64,
    pub retransmits: u32,
    /// Estimated segments missing at jumps (a jump of n observed MSS counts n).
    pub jumps: u32,
    pub max_jump: u32,
    pub loss_events: u32,
    /// Time of the last loss event, µs after the flow's start.
    pub last_event_us: u32,
    /// The gap stack, or [`NONE`].
    stack: u32,
    /// Gaps in use.
    pub gaps: u8,
    /// ACK anomalies of the direction's ACKs (tcpDupAckCount, tcpSelAckCount) and the
    /// receiver stalls of its window: rare enough to live here rather than in every state.
    pub dup_acks: u32,
    pub sel_acks: u32,
    pub stalls: u32,
}

impl Default for LossBlock {
    fn default() -> Self {
        LossBlock {
            lost: 0,
            retransmits: 0,
            jumps: 0,
            max_jump: 0,
            loss_events: 0,
            last_event_us: 0,
            stack: NONE,
            gaps: 0,
            dup_acks: 0,
            sel_acks: 0,
            stalls: 0,
        }
    }
}

/// The pool of loss blocks and gap stacks, shared by every flow of one meter. Both are
/// recycled through free lists, so the steady state allocates nothing.
#[derive(Debug)]
pub(crate) struct LossPool {
    depth: usize,
    blocks: Vec<LossBlock>,
    free: Vec<u32>,
    /// `depth` gaps per stack: half-open [lo, hi) in widened sequence space, highest first.
    gaps: Vec<(u64, u64)>,
    free_stacks: Vec<u32>,
    /// With causes: each gap's opening time (µs after the flow's start), beside `gaps`; and
    /// each block's [`CauseBlock`], beside `blocks`. Both empty otherwise.
    timed: bool,
    gap_us: Vec<u32>,
    causes: Vec<CauseBlock>,
}

impl LossPool {
    /// Gap stacks of `depth`; `causes` keeps each block's [`CauseBlock`] and each gap's
    /// opening time.
    pub fn new(depth: u8, causes: bool) -> Self {
        LossPool {
            depth: usize::from(depth.max(1)),
            blocks: Vec::new(),
            free: Vec::new(),
            gaps: Vec::new(),
            free_stacks: Vec::new(),
            timed: causes,
            gap_us: Vec::new(),
            causes: Vec::new(),
        }
    }

    fn take(&mut self) -> u32 {
        if let Some(i) = self.free.pop() {
            self.blocks[i as usize] = LossBlock::default();
            if self.timed {
                self.causes[i as usize] = CauseBlock::default();
            }
            return i;
        }
        let i = self.blocks.len() as u32;
        self.blocks.push(LossBlock::default());
        if self.timed {
            self.causes.push(CauseBlock::default());
        }
        i
    }

    /// Block `i`'s causes (with causes switched on).
    pub fn cause(&self, i: u32) -> Option<&CauseBlock> {
        self.causes.get(i as usize)
    }

    fn cause_mut(&mut self, i: u32) -> Option<&mut CauseBlock> {
        self.causes.get_mut(i as usize)
    }

    /// Block `i`'s gap stack, taken now if it has none.
    fn ensure_stack(&mut self, i: u32) {
        if self.blocks[i as usize].stack != NONE {
            return;
        }
        let s = match self.free_stacks.pop() {
            Some(s) => s,
            None => {
                let s = (self.gaps.len() / self.depth) as u32;
                self.gaps.resize(self.gaps.len() + self.depth, (0, 0));
                if self.timed {
                    self.gap_us.resize(self.gaps.len(), 0);
                }
                s
            }
        };
        self.blocks[i as usize].stack = s;
    }

    fn give_back(&mut self, i: u32) {
        if i != NONE {
            let s = self.blocks[i as usize].stack;
            if s != NONE {
                self.free_stacks.push(s);
            }
            self.free.push(i);
        }
    }

    pub fn block(&self, i: u32) -> Option<&LossBlock> {
        (i != NONE).then(|| &self.blocks[i as usize])
    }

    /// Blocks in use (for memory accounting in tests and statistics).
    pub fn in_use(&self) -> usize {
        self.blocks.len() - self.free.len()
    }

    /// Gap stacks in use, and allocated.
    #[cfg(test)]
    pub fn stacks(&self) -> (usize, usize) {
        let allocated = self.gaps.len() / self.depth;
        (allocated - self.free_stacks.len(), allocated)
    }

    /// Bytes held by blocks, gap stacks and free lists (high-water: never shrinks).
    pub fn bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<LossBlock>()
            + self.gaps.capacity() * std::mem::size_of::<(u64, u64)>()
            + self.gap_us.capacity() * std::mem::size_of::<u32>()
            + self.causes.capacity() * std::mem::size_of::<CauseBlock>()
            + (self.free.capacity() + self.free_stacks.capacity()) * std::mem::size_of::<u32>()
    }

    /// Block `i` and its gap stack (empty when it has none: see [`LossPool::ensure_stack`]).
    fn parts(&mut self, i: u32) -> (&mut LossBlock, Stack<'_>) {
        let b = &mut self.blocks[i as usize];
        let stack = match b.stack {
            NONE => Stack {
                gaps: &mut [],
                us: &mut [],
            },
            s => {
                let s = s as usize * self.depth;
                let us = match self.timed {
                    true => &mut self.gap_us[s..s + self.depth],
                    false => &mut [][..],
                };
                Stack {
                    gaps: &mut self.gaps[s..s + self.depth],
                    us,
                }
            }
        };
        (b, stack)
    }

    /// Octets still in the gaps of block `i`.
    fn open_gap_octets(&self, i: u32) -> u64 {
        let b = &self.blocks[i as usize];
        if b.stack == NONE {
            return 0;
        }
        let s = b.stack as usize * self.depth;
        self.gaps[s..s + usize::from(b.gaps)]
            .iter()
            .map(|&(lo, hi)| hi - lo)
            .sum()
    }
}

/// Sequence state of one direction: 20 bytes (4-byte aligned, so the direction's other
/// state packs round it without padding).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqDir {
    /// Widened next expected sequence number (one past the highest byte seen), as its low and
    /// high halves.
    nsn: [u32; 2],
    /// Low half of the widened number of the first payload byte; its bit 32 is [`START_HI`].
    /// (It lies in [2^31, 2^33): it starts at `BASE | first`, and moves back only to a
    /// segment at most 2^31 before `nsn`, which never falls below `BASE`.)
    start_lo: u32,
    loss: u32,
    /// Largest payload seen (observedTcpMss).
    pub max_payload: u16,
    /// The direction's host uses SACK (offered it in its SYN or sent a SACK block): it will
    /// report duplicates itself (with causes only; the byte was padding).
    pub(super) sack_ok: bool,
    /// [`STARTED`], [`SYN`] (the first segment was a SYN), [`FIN`] (a FIN was seen at `nsn`:
    /// it takes the sequence number after the data), [`START_HI`]; the high four bits are the
    /// direction's own (see `super::bit`), kept here so the state has no padding.
    pub(super) flags: u8,
}

const STARTED: u8 = 1;
const SYN: u8 = 2;
const FIN: u8 = 4;
const START_HI: u8 = 8;
/// The bits this module owns.
const SEQ_BITS: u8 = STARTED | SYN | FIN | START_HI;

impl SeqDir {
    #[inline]
    fn nsn(&self) -> u64 {
        u64::from(self.nsn[1]) << 32 | u64::from(self.nsn[0])
    }

    #[inline]
    fn set_nsn(&mut self, v: u64) {
        self.nsn = [v as u32, (v >> 32) as u32];
    }

    #[inline]
    fn start(&self) -> u64 {
        u64::from(self.flags & START_HI != 0) << 32 | u64::from(self.start_lo)
    }

    fn set_start(&mut self, v: u64) {
        debug_assert!(v < 1 << 33, "start {v:#x} out of range");
        self.start_lo = v as u32;
        self.flags = (self.flags & !START_HI) | if v >> 32 != 0 { START_HI } else { 0 };
    }
}

impl Default for SeqDir {
    fn default() -> Self {
        SeqDir {
            nsn: [0; 2],
            start_lo: 0,
            loss: NONE,
            max_payload: 0,
            sack_ok: false,
            flags: 0,
        }
    }
}

/// The exported view of a direction's sequence state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqCounters {
    pub isn: u32,
    pub octets: u64,
    pub retransmits: u64,
    pub jumps: u64,
    pub max_jump: u32,
    pub lost: u64,
    pub loss_events: u64,
}

impl SeqDir {
    fn widen(&self, seq: u32) -> u64 {
        let delta = seq.wrapping_sub(self.nsn[0]) as i32;
        self.nsn().wrapping_add(delta as i64 as u64)
    }

    fn set_fin(&mut self, fin: bool) {
        self.flags = (self.flags & !FIN) | if fin { FIN } else { 0 };
    }

    /// The sequence number after the highest octet seen.
    pub fn next_seq(&self) -> u32 {
        self.nsn[0]
    }

    /// True once the direction's first segment has been seen.
    pub fn started(&self) -> bool {
        self.flags & STARTED != 0
    }

    /// Account one segment of `len` payload octets. `window_us` is the loss-event window
    /// (the smoothed RTT; 0 when unknown) and `now_us` the time since the flow's start.
    /// (Inlined into both forms of the TCP state's packet, as it was into the one.)
    #[inline(always)]
    pub fn segment(
        &mut self,
        pool: &mut LossPool,
        seq: u32,
        len: u32,
        flags: u8,
        now_us: u32,
        window_us: u32,
    ) -> SegmentOutcome {
        use super::flag;
        let syn = flags & flag::SYN != 0;
        let fin = flags & flag::FIN != 0;
        self.max_payload = self.max_payload.max(u16::try_from(len).unwrap_or(u16::MAX));
        if self.flags & STARTED == 0 {
            self.flags = (self.flags & !SEQ_BITS) | STARTED | if syn { SYN } else { 0 };
            let first = seq.wrapping_add(u32::from(syn));
            let start = BASE | u64::from(first);
            self.set_start(start);
            self.set_nsn(start + u64::from(len));
            self.set_fin(fin);
            return SegmentOutcome {
                advanced: syn || len > 0,
                end: first.wrapping_add(len),
                ..Default::default()
            };
        }
        if len == 0 {
            // No data. But a pure ACK's or FIN's sequence number is the sender's next one:
            // beyond nsn, it shows data the meter never saw, even at the end of a transfer
            // where no later segment would (QoF ignored every empty segment).
            // (Not in a SYN or RST; and a FIN takes one number, after the data.)
            let at = self.widen(seq);
            let marks_next =
                flags & (flag::SYN | flag::RST) == 0 && flags & (flag::ACK | flag::FIN) != 0;
            let next = self.nsn() + u64::from(self.flags & FIN != 0);
            if flags & (flag::SYN | flag::FIN) != 0 && self.repeats(at, flags) {
                return SegmentOutcome {
                    repeated: true,
                    ..Default::default()
                };
            }
            if fin && at == self.nsn() && self.flags & FIN == 0 {
                // The first FIN takes new sequence space: the RTT may time its ACK (it is
                // acknowledged at once, where data often waits for the reply).
                self.set_fin(true);
                return SegmentOutcome {
                    advanced: true,
                    end: seq.wrapping_add(1),
                    ..Default::default()
                };
            }
            if !marks_next || at <= next {
                return SegmentOutcome::default();
            }
            self.set_fin(fin);
            self.push_gap(pool, self.nsn(), at, now_us);
            self.set_nsn(at);
            let mut out = SegmentOutcome {
                jumped: true,
                ..Default::default()
            };
            self.loss_indication(pool, &mut out, now_us, window_us);
            return out;
        }
        let mut lo = self.widen(seq.wrapping_add(u32::from(syn)));
        let hi = lo + u64::from(len);
        let mut out = SegmentOutcome {
            end: seq.wrapping_add(u32::from(syn)).wrapping_add(len),
            ..Default::default()
        };
        let mut retransmitted = 0u64;
        if lo < self.start() {
            let below_end = hi.min(self.start());
            if self.flags & SYN != 0 {
                // Before the first byte after the SYN: nothing new can be there (a SYN that
                // carries data, sent again, comes here).
                retransmitted += below_end - lo;
                out.repeated |= syn;
            } else {
                // Picked up mid-stream, and this segment was reordered ahead of the first one
                // seen: the data starts earlier than we thought, and these octets are new.
                self.set_start(lo);
            }
            lo = below_end;
        }
        if lo < hi {
            if lo >= self.nsn() {
                if lo > self.nsn() {
                    out.jumped = true;
                    self.push_gap(pool, self.nsn(), lo, now_us);
                }
                self.set_nsn(hi);
                out.advanced = true;
            } else {
                // Starts below nsn: fill what it covers below nsn (every gap it spans), and
                // advance nsn if it straddles it (QoF handled such segments as pure fills and
                // later reported a phantom gap).
                let fill_hi = hi.min(self.nsn());
                let (covered, gap_us) = self.fill(pool, lo, fill_hi);
                retransmitted += (fill_hi - lo) - covered;
                if let Some(us) = gap_us {
                    (out.filled, out.filled_gap_us) = (true, us);
                }
                if hi > self.nsn() {
                    self.set_nsn(hi);
                    out.advanced = true;
                }
            }
        }
        if retransmitted > 0 {
            out.retransmitted = true;
            let b = self.anomalies(pool);
            b.retransmits = b.retransmits.saturating_add(1);
        }
        if fin && out.advanced {
            self.set_fin(true);
        }
        self.loss_indication(pool, &mut out, now_us, window_us);
        out
    }

    /// A SYN at `at` (widened) repeating the first one, or a FIN (without RST) repeating one
    /// seen at the end of the data.
    fn repeats(&self, at: u64, flags: u8) -> bool {
        use super::flag;
        if flags & flag::SYN != 0 {
            self.flags & SYN != 0 && at.wrapping_add(1) == self.start()
        } else {
            flags & flag::RST == 0 && self.flags & FIN != 0 && at == self.nsn()
        }
    }

    /// The peer acknowledged up to `ack`. Beyond what this direction has shown (its data and
    /// FIN), that is data the receiver got and the meter never saw: a gap at the end, which
    /// no later segment may ever reveal (the last segments of a transfer).
    pub fn acknowledged(&mut self, pool: &mut LossPool, ack: u32, now_us: u32, window_us: u32) {
        if self.flags & STARTED == 0 {
            return;
        }
        let at = self.widen(ack);
        let shown = self.nsn() + u64::from(self.flags & FIN != 0);
        if at <= shown {
            return;
        }
        // The FIN, if that is what went unseen, takes the last number.
        self.push_gap(pool, self.nsn(), at, now_us);
        self.set_nsn(at);
        self.set_fin(false);
        let mut out = SegmentOutcome {
            jumped: true,
            ..Default::default()
        };
        self.loss_indication(pool, &mut out, now_us, window_us);
    }

    /// Count a loss event for a retransmission or jump: one per RTT-sized window. (Inlined
    /// test, out-of-line work: most segments are neither.)
    #[inline(always)]
    fn loss_indication(
        &mut self,
        pool: &mut LossPool,
        out: &mut SegmentOutcome,
        now_us: u32,
        window_us: u32,
    ) {
        if out.retransmitted || out.jumped {
            self.loss_event(pool, now_us, window_us);
        }
    }

    #[inline(never)]
    fn loss_event(&mut self, pool: &mut LossPool, now_us: u32, window_us: u32) {
        let b = self.anomalies(pool);
        if b.loss_events == 0 || now_us.wrapping_sub(b.last_event_us) > window_us {
            b.loss_events = b.loss_events.saturating_add(1);
            b.last_event_us = now_us;
        }
    }

    /// The direction's anomaly counters, taken from the pool now if it has none.
    pub fn anomalies<'p>(&mut self, pool: &'p mut LossPool) -> &'p mut LossBlock {
        let i = self.ensure_block(pool);
        &mut pool.blocks[i as usize]
    }

    /// The direction's anomaly counters, if it ever had any.
    pub fn block<'p>(&self, pool: &'p LossPool) -> Option<&'p LossBlock> {
        pool.block(self.loss)
    }

    /// The direction's causes, if it has a loss block (and causes are on).
    pub fn causes<'p>(&self, pool: &'p LossPool) -> Option<&'p CauseBlock> {
        pool.block(self.loss).and_then(|_| pool.cause(self.loss))
    }

    /// The direction's causes, taking a loss block now if it has none (`None` when causes are
    /// off).
    pub fn causes_mut<'p>(&mut self, pool: &'p mut LossPool) -> Option<&'p mut CauseBlock> {
        let i = self.ensure_block(pool);
        pool.cause_mut(i)
    }

    /// The direction's causes, if it already has a loss block: ACKs are followed only from a
    /// direction's first anomaly on (a clean connection costs nothing).
    pub fn causes_if_any<'p>(&self, pool: &'p mut LossPool) -> Option<&'p mut CauseBlock> {
        match self.loss {
            NONE => None,
            i => pool.cause_mut(i),
        }
    }

    fn ensure_block(&mut self, pool: &mut LossPool) -> u32 {
        if self.loss == NONE {
            self.loss = pool.take();
        }
        self.loss
    }

    /// A jump from `nsn` to `lo` at `now_us`: push the gap [nsn, lo) on top of the stack.
    fn push_gap(&mut self, pool: &mut LossPool, lo: u64, hi: u64, now_us: u32) {
        let size = hi - lo;
        let mss = u64::from(self.max_payload.max(1));
        let i = self.ensure_block(pool);
        pool.ensure_stack(i);
        let (b, mut stack) = pool.parts(i);
        b.jumps = b
            .jumps
            .saturating_add(u32::try_from(size.div_ceil(mss)).unwrap_or(u32::MAX));
        b.max_jump = b.max_jump.max(u32::try_from(size).unwrap_or(u32::MAX));
        insert_gap(b, &mut stack, 0, (lo, hi), now_us);
    }

    /// Fill [lo, hi) (all below nsn) into the gaps; returns the octets that were in gaps, and
    /// when the first gap it filled opened (if gaps are timed and it filled one).
    fn fill(&mut self, pool: &mut LossPool, lo: u64, hi: u64) -> (u64, Option<u32>) {
        if self.loss == NONE {
            return (0, None);
        }
        let (b, mut stack) = pool.parts(self.loss);
        let mut covered = 0;
        let mut opened = None;
        let mut i = 0;
        while i < usize::from(b.gaps) {
            let (g_lo, g_hi) = stack.gaps[i];
            if g_hi <= lo {
                break; // this gap and every later one lie below the segment
            }
            if g_lo >= hi {
                i += 1;
                continue;
            }
            let (o_lo, o_hi) = (g_lo.max(lo), g_hi.min(hi));
            covered += o_hi - o_lo;
            if opened.is_none() {
                opened = stack.us.get(i).copied();
            }
            match (g_lo < o_lo, o_hi < g_hi) {
                (false, false) => {
                    let n = usize::from(b.gaps);
                    stack.gaps.copy_within(i + 1..n, i);
                    if !stack.us.is_empty() {
                        stack.us.copy_within(i + 1..n, i);
                    }
                    b.gaps -= 1;
                }
                (true, false) => {
                    stack.gaps[i].1 = o_lo;
                    i += 1;
                }
                (false, true) => {
                    stack.gaps[i].0 = o_hi;
                    i += 1;
                }
                (true, true) => {
                    stack.gaps[i] = (o_hi, g_hi);
                    let t = stack.us.get(i).copied().unwrap_or(0);
                    insert_gap(b, &mut stack, i + 1, (g_lo, o_lo), t);
                    i += 2;
                }
            }
        }
        (covered, opened)
    }

    /// The exported counters. Gaps still open count as lost (the state is not changed).
    pub fn counters(&self, pool: &LossPool) -> SeqCounters {
        let mut c = SeqCounters {
            // The SYN's sequence number, or the first payload byte's (the earliest seen).
            isn: self.start_lo.wrapping_sub(u32::from(self.flags & SYN != 0)),
            octets: self.nsn().saturating_sub(self.start()),
            ..Default::default()
        };
        if let Some(b) = self.block(pool) {
            c.retransmits = b.retransmits.into();
            c.jumps = b.jumps.into();
            c.max_jump = b.max_jump;
            c.loss_events = b.loss_events.into();
            c.lost = b.lost + pool.open_gap_octets(self.loss);
        }
        c
    }

    /// Return the direction's loss block to the pool (the flow has ended).
    pub fn release(&mut self, pool: &mut LossPool) {
        pool.give_back(self.loss);
        self.loss = NONE;
    }
}

/// One gap stack, and its gaps' opening times when gaps are timed (empty otherwise).
struct Stack<'a> {
    gaps: &'a mut [(u64, u64)],
    us: &'a mut [u32],
}

/// Insert `gap`, opened at `us`, at `at`, shifting lower gaps down; the lowest falls off a
/// full stack and is counted as lost.
fn insert_gap(b: &mut LossBlock, stack: &mut Stack, at: usize, gap: (u64, u64), us: u32) {
    let depth = stack.gaps.len();
    let n = usize::from(b.gaps);
    if at >= depth {
        b.lost += gap.1 - gap.0;
        return;
    }
    let timed = !stack.us.is_empty();
    if n == depth {
        let (lo, hi) = stack.gaps[depth - 1];
        b.lost += hi - lo;
        stack.gaps.copy_within(at..depth - 1, at + 1);
        if timed {
            stack.us.copy_within(at..depth - 1, at + 1);
        }
    } else {
        stack.gaps.copy_within(at..n, at + 1);
        if timed {
            stack.us.copy_within(at..n, at + 1);
        }
        b.gaps += 1;
    }
    stack.gaps[at] = gap;
    if timed {
        stack.us[at] = us;
    }
}
