//! The flow table: a slab of [`Flow`]s, a hash index over it, and a timer wheel for idle expiry.
//!
//! * One lookup per packet: the index hashes a direction-independent form of the key, so a
//!   packet finds its flow whether it travels forward or in reverse.
//! * The index stores the slot number and the top half of the hash (8 bytes per entry; see
//!   [`super::index`]); keys live once, in the slab.
//! * Idle expiry uses a wheel of one-second slots, each a list (a vector) of the slab slots
//!   filed under it. A flow is put on the wheel once, at creation, for `end + idle`; when its
//!   slot comes round the wheel checks the flow's real last-seen time and moves it on if it was
//!   active meanwhile (retina's scheme). The idle timeout is the flow's own (by protocol and
//!   TCP state: [`IdlePolicy`]); a flow whose timeout becomes shorter (a TCP connection that
//!   ended and lingers) is filed again under its new second at once
//!   ([`FlowTable::reschedule`]). A flow remembers the second it is filed under
//!   (`SlotMeta::wheel_due`): an entry of a wheel slot whose flow is filed elsewhere, or has
//!   ended, is stale and is dropped when its slot comes round. So the per-packet path never
//!   touches any flow but its own (a flow that ends or moves leaves no list to unlink from),
//!   each flow is looked at about once per idle period, and the wheel walks a slot's flows
//!   from a vector, asking for each flow's lines a few flows ahead (a linked list made every
//!   flow's load wait for the one before: on the benchmark trace most of the meter's misses
//!   to memory).
//! * The hash seed is random per table: flow keys are attacker-controlled.

use super::flow::Flow;
use super::index::Index;
use super::timeouts::IdlePolicy;
use crate::key::{folded_multiply, FlowKey};
use foldhash::fast::RandomState;
use std::hash::BuildHasher;

/// What the table keeps of a slot beside its flow: read when a flow starts, ends, or is looked
/// at by the wheel, never per packet, so that the flows hold only what packets touch (two
/// cache lines each).
#[derive(Clone, Copy, Debug, Default)]
struct SlotMeta {
    flow_id: u64,
    /// The wheel second the slot's flow is filed under ([`OFF_WHEEL`] while the slot is free).
    wheel_due: u32,
    /// A free slot's next free slot, or [`NIL`].
    free_next: u32,
}

/// A slot holds a live flow: live flows are always filed on the wheel, free slots never are
/// (`remove` sets `wheel_due` to [`OFF_WHEEL`]).
fn is_live(m: &SlotMeta) -> bool {
    m.wheel_due != OFF_WHEEL
}

/// `SlotMeta::wheel_due` of a free slot. Deadlines are at least second 1.
const OFF_WHEEL: u32 = 0;
/// `SlotMeta::wheel_due` of a flow the wheel has just found idle, until it is removed: a
/// second entry of the same flow in the same slot passes it over.
const EXPIRING: u32 = u32::MAX;

/// The IP version in the key of a free slot's flow: no packet's key has it, so a look-up
/// that is handed a slot freed since (a look-ahead's candidate) finds no match there without
/// reading the slot's metadata.
const FREED: u8 = 0;

/// The wheel second a flow is filed under, in `SlotMeta::wheel_due` (seconds past 2106, from a
/// damaged or made-up capture, are filed under the last one: the flow is looked at once per
/// turn of the wheel, its real deadline checked each time).
fn filed_sec(due: u64) -> u32 {
    due.clamp(1, u64::from(EXPIRING - 1)) as u32
}

/// Flows of a wheel slot asked for ahead of the one being looked at.
const SWEEP_AHEAD: usize = 8;

/// Direction of a packet relative to its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Forward,
    Reverse,
}

pub(crate) use super::index::Slot;

/// No slot: the end of the free list, or no candidate.
pub(crate) const NIL: u32 = u32::MAX;
/// Slots a table can hand out (the index's limit).
pub(crate) const MAX_SLOTS: usize = super::index::MAX_SLOTS;

/// The wheel has at most this many one-second slots; a deadline further out wraps round and
/// is simply checked again one turn later.
const MAX_WHEEL_SLOTS: u64 = 1 << 16;

/// The random keys of a table's index hash (flow keys are attacker-controlled).
#[derive(Clone, Copy)]
struct HashKeys([u64; 5]);

impl HashKeys {
    fn random() -> HashKeys {
        let seed = RandomState::default();
        HashKeys(std::array::from_fn(|i| seed.hash_one(i)))
    }
}

/// Both directions of a key hash alike: each endpoint (address, and port where the key has
/// ports) is hashed apart with keys, and the two are added, which does not depend on their
/// order; the sum is folded with the rest of the key. (Ordering the endpoints first took a
/// four-word compare and more branches than the hashing.) An endpoint's port goes into its
/// product, times a key, added to a keyed word of the address: xored into the address, it
/// would let an attacker pick (address, port) pairs that collide whatever the keys.
#[inline]
fn key_hash(k: &HashKeys, key: &FlowKey) -> u64 {
    let k = &k.0;
    let w = key.words();
    // ICMP: `reversed` keeps type/code in place: they stay with the rest of the key.
    let (sp, dp, rest) = match key.has_ports() {
        true => (u64::from(key.src_port), u64::from(key.dst_port), w[4] >> 32),
        false => (0, 0, w[4]),
    };
    let end = |a: u64, b: u64, port: u64| {
        folded_multiply(
            a ^ k[0],
            (b ^ k[1]).wrapping_add(port.wrapping_mul(k[2] | 1)),
        )
    };
    let ends = end(w[0], w[1], sp).wrapping_add(end(w[2], w[3], dp));
    folded_multiply(ends ^ rest ^ k[3], w[5] ^ k[4])
}

/// Ask for both lines of `f` (the compiler may order its fields as it likes: the first and
/// the last are asked for).
#[inline]
fn prefetch_flow(f: &Flow) {
    super::prefetch::line(f);
    super::prefetch::line(&f.key);
    super::prefetch::line(&f.fwd);
    super::prefetch::line(&f.rev);
}

/// The second in which a flow last seen at `end_ms` passes an idle timeout of `idle_ms`.
fn deadline_sec(end_ms: u64, idle_ms: u64) -> u64 {
    (end_ms + idle_ms) / 1000 + 1
}

/// Flows per slab chunk. The slab grows a chunk at a time and never moves a flow: a growing
/// `Vec` would copy the whole slab on reallocation and leave the old copy resident in the heap,
/// which for a large table costs more than the flows themselves.
const CHUNK: usize = 4096;

/// The flows, addressed by slot, in fixed-size chunks, and each slot's metadata in chunks of
/// their own.
struct Slab {
    // (Arrays, not slices: an index into a chunk is then in bounds by its type, and a look-up
    // checks only the chunk's number.)
    chunks: Vec<Box<[Flow; CHUNK]>>,
    meta: Vec<Box<[SlotMeta; CHUNK]>>,
    len: usize,
}

/// A chunk of `CHUNK` default values, made on the heap (not on the stack and moved).
fn new_chunk<T: Clone + Default>() -> Box<[T; CHUNK]> {
    match vec![T::default(); CHUNK].into_boxed_slice().try_into() {
        Ok(chunk) => chunk,
        Err(_) => unreachable!("a vector of CHUNK values converts to an array of CHUNK"),
    }
}

impl Slab {
    fn push(&mut self, f: Flow, m: SlotMeta) -> Slot {
        if self.len == self.chunks.len() * CHUNK {
            self.chunks.push(new_chunk());
            self.meta.push(new_chunk());
        }
        let slot = self.len;
        self.chunks[slot / CHUNK][slot % CHUNK] = f;
        self.meta[slot / CHUNK][slot % CHUNK] = m;
        self.len += 1;
        slot as Slot
    }

    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, i: usize) -> Option<&Flow> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    #[inline(always)]
    fn meta(&self, i: usize) -> &SlotMeta {
        &self.meta[i / CHUNK][i % CHUNK]
    }

    #[inline(always)]
    fn meta_mut(&mut self, i: usize) -> &mut SlotMeta {
        &mut self.meta[i / CHUNK][i % CHUNK]
    }

    fn get_meta(&self, i: usize) -> Option<&SlotMeta> {
        self.meta.get(i / CHUNK)?.get(i % CHUNK)
    }
}

impl std::ops::Index<usize> for Slab {
    type Output = Flow;
    #[inline(always)]
    fn index(&self, i: usize) -> &Flow {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Slab {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Flow {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

pub(crate) struct FlowTable {
    flows: Slab,
    /// The most recently freed slot of `flows` ([`NIL`] if none), reused first (warm in
    /// cache). A free slot's `SlotMeta::free_next` links the next free slot: no separate list, which at
    /// the end of input, with every flow freed at once, would be the largest it ever gets.
    free_head: Slot,
    index: Index,
    hash_keys: HashKeys,
    live: usize,
    /// The slots filed under each wheel second (and stale entries, see the module doc).
    wheel: Vec<Vec<Slot>>,
    /// The wheel has processed every second before this one.
    wheel_sec: u64,
    idle: IdlePolicy,
}

impl FlowTable {
    pub fn new(idle: IdlePolicy) -> Self {
        // Slots for every deadline up to the longest idle timeout + 2 s ahead, rounded up to a
        // power of two (a deadline further out wraps round: see `MAX_WHEEL_SLOTS`).
        let idle_secs = idle.max_ms() / 1000;
        let slots = (idle_secs.min(MAX_WHEEL_SLOTS) + 2)
            .next_power_of_two()
            .min(MAX_WHEEL_SLOTS) as usize;
        FlowTable {
            flows: Slab {
                chunks: Vec::new(),
                meta: Vec::new(),
                len: 0,
            },
            free_head: NIL,
            index: Index::new(),
            hash_keys: HashKeys::random(),
            live: 0,
            wheel: vec![Vec::new(); slots],
            wheel_sec: 0,
            idle,
        }
    }

    /// The idle timeout of the flow in `slot` now.
    #[inline]
    pub fn idle_ms(&self, slot: Slot) -> u64 {
        self.idle.idle_ms(&self.flows[slot as usize])
    }

    pub fn policy(&self) -> &IdlePolicy {
        &self.idle
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn flow(&self, slot: Slot) -> &Flow {
        &self.flows[slot as usize]
    }

    pub fn flow_mut(&mut self, slot: Slot) -> &mut Flow {
        &mut self.flows[slot as usize]
    }

    /// The flowId of the flow in `slot`.
    pub fn flow_id(&self, slot: Slot) -> u64 {
        self.flows.meta(slot as usize).flow_id
    }

    /// The index hash of `key` (both directions alike).
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        key_hash(&self.hash_keys, key)
    }

    /// First step of a lookup some packets ahead: ask for the index line `hash` starts at.
    #[inline]
    pub fn prefetch_index(&self, hash: u64) {
        self.index.prefetch(hash);
    }

    /// Ask for the lines of the flow in `slot`, whose record is soon made (see
    /// [`FlowTable::prefetch_removal`]).
    #[inline]
    pub fn prefetch_slot(&self, slot: Slot) {
        if let Some(f) = self.flows.get(slot as usize) {
            prefetch_flow(f);
        }
        self.prefetch_meta(slot);
    }

    /// Ask for the line of the metadata of `slot`, which removing its flow reads (the flowId)
    /// and writes (the free list): packets do not touch it, so a flow a packet has just ended
    /// has its own lines in cache but not this one.
    #[inline]
    pub fn prefetch_meta(&self, slot: Slot) {
        if let Some(m) = self.flows.get_meta(slot as usize) {
            super::prefetch::line(m);
        }
    }

    /// Ask for the index line that removing the flow in `slot` will read. Its flow's key is
    /// read to hash it: the flow's lines should have been asked for some time before
    /// ([`FlowTable::prefetch_slot`]). Flows are removed in an order of their own (idle in
    /// the same second, or oldest first at the end of input), each index line elsewhere.
    #[inline]
    pub fn prefetch_removal(&self, slot: Slot) {
        if let Some(f) = self.flows.get(slot as usize) {
            self.index.prefetch(self.hash(&f.key));
        }
    }

    /// Second step: read the index (its line asked for a packet before) and ask for the lines
    /// of the first flow filed under the hash's top half (nearly always the key's own),
    /// calling `hint` with its slot. Keys are not compared: nothing waits on the flow.
    /// Returns the slot, or [`NIL`].
    #[inline]
    pub fn prefetch_flows(&self, hash: u64, mut hint: impl FnMut(Slot)) -> Slot {
        let flows = &self.flows;
        let found = self.index.find(hash, |s| {
            if let Some(f) = flows.get(s as usize) {
                prefetch_flow(f);
            }
            hint(s);
            true
        });
        found.unwrap_or(NIL)
    }

    /// The flow this key (whose [`FlowTable::hash`] is `hash`) belongs to, and the packet's
    /// side of it. `candidate` is the slot a look-ahead found ([`NIL`] if none): a live flow
    /// there with this key is the one (keys are unique), and the index is not read again.
    /// Otherwise `hint` is called with each slot the index names, before its key is compared:
    /// the caller can start loading the slot's other state then, so that its cache miss
    /// overlaps the flow's instead of following it.
    #[inline]
    pub fn lookup(
        &self,
        hash: u64,
        candidate: Slot,
        key: &FlowKey,
        hint: impl Fn(Slot),
    ) -> Option<(Slot, Side)> {
        let flows = &self.flows;
        // A live flow is always in the index; a freed one's key matches no packet's.
        if let Some(f) = flows.get(candidate as usize) {
            if f.key.same(key) {
                return Some((candidate, Side::Forward));
            }
            if f.key.reverse_of(key) {
                return Some((candidate, Side::Reverse));
            }
        }
        let slot = self.index.find(hash, |s| {
            hint(s);
            let k = &flows[s as usize].key;
            k.same(key) || k.reverse_of(key)
        })?;
        let side = if flows[slot as usize].key.same(key) {
            Side::Forward
        } else {
            Side::Reverse
        };
        Some((slot, side))
    }

    /// Insert a new flow (its key must not be in the table) and schedule its idle check.
    pub fn insert(&mut self, flow: Flow, flow_id: u64) -> Slot {
        let hash = self.hash(&flow.key);
        let end_ms = flow.end_ms();
        let meta = SlotMeta {
            flow_id,
            wheel_due: OFF_WHEEL,
            free_next: NIL,
        };
        let slot = match self.free_head {
            NIL => self.flows.push(flow, meta),
            s => {
                self.free_head = self.flows.meta(s as usize).free_next;
                self.flows[s as usize] = flow;
                *self.flows.meta_mut(s as usize) = meta;
                s
            }
        };
        self.index.insert(hash, slot);
        self.live += 1;
        let idle_ms = self.idle.idle_ms(&self.flows[slot as usize]);
        let due = deadline_sec(end_ms, idle_ms).max(self.wheel_sec);
        self.link(slot, due);
        slot
    }

    /// File the flow in `slot` under the second of its deadline now (its timeout has become
    /// shorter: an ended TCP connection that lingers). O(1); its entry under the old second
    /// goes stale.
    pub fn reschedule(&mut self, slot: Slot) {
        let f = &self.flows[slot as usize];
        let due = deadline_sec(f.end_ms(), self.idle.idle_ms(f)).max(self.wheel_sec);
        if filed_sec(due) != self.flows.meta(slot as usize).wheel_due {
            self.link(slot, due);
        }
    }

    /// Remove a flow and return it, with its flowId. (Its wheel entry goes stale.)
    pub fn remove(&mut self, slot: Slot) -> (Flow, u64) {
        let flow = self.flows[slot as usize];
        let hash = self.hash(&flow.key);
        self.index.remove(hash, slot);
        self.flows[slot as usize].key.ip_version = FREED;
        let free_head = self.free_head;
        let m = self.flows.meta_mut(slot as usize);
        let flow_id = m.flow_id;
        m.wheel_due = OFF_WHEEL;
        m.free_next = free_head;
        self.free_head = slot;
        self.live -= 1;
        (flow, flow_id)
    }

    fn wheel_index(&self, sec: u64) -> usize {
        (sec % self.wheel.len() as u64) as usize
    }

    /// File `slot` under second `due`.
    fn link(&mut self, slot: Slot, due: u64) {
        let sec = filed_sec(due);
        self.flows.meta_mut(slot as usize).wheel_due = sec;
        let w = self.wheel_index(u64::from(sec));
        self.wheel[w].push(slot);
    }

    /// The flow an entry of wheel slot `w` names, if the entry is not stale: the flow is live,
    /// not already found idle, and filed under a second of this wheel slot.
    #[inline]
    fn filed_here(&self, w: usize, slot: Slot) -> Option<&Flow> {
        let due = self.flows.meta(slot as usize).wheel_due;
        (due != OFF_WHEEL && due != EXPIRING && self.wheel_index(u64::from(due)) == w)
            .then(|| &self.flows[slot as usize])
    }

    /// Ask for the lines of the flow `ahead` entries on in a wheel slot, and its metadata.
    #[inline]
    fn prefetch_entry(&self, bucket: &[Slot], ahead: usize) {
        if let Some(&s) = bucket.get(ahead) {
            if let Some(f) = self.flows.get(s as usize) {
                prefetch_flow(f);
            }
            if let Some(m) = self.flows.get_meta(s as usize) {
                super::prefetch::line(m);
            }
        }
    }

    /// Advance the wheel to `now_ms`, passing every flow idle for longer than its idle timeout
    /// to `expire`; the caller must `remove` each. Flows active meanwhile are filed again.
    pub fn expire_idle(&mut self, now_ms: u64, mut expire: impl FnMut(Slot)) {
        let now_sec = now_ms / 1000;
        if self.wheel_sec == 0 {
            self.wheel_sec = now_sec;
        }
        let n = self.wheel.len() as u64;
        // After a long jump in packet time, every slot is due once.
        let first = self.wheel_sec.max(now_sec.saturating_sub(n - 1));
        for sec in first..=now_sec {
            let w = self.wheel_index(sec);
            // The slot's entries are taken out and walked; a flow active meanwhile is filed
            // under a later second, in another slot (its new deadline is at least one second
            // later and less than a turn away), or stays here when it wraps round.
            let mut bucket = std::mem::take(&mut self.wheel[w]);
            let mut kept = 0;
            for i in 0..bucket.len() {
                self.prefetch_entry(&bucket, i + SWEEP_AHEAD);
                let cur = bucket[i];
                let Some(f) = self.filed_here(w, cur) else {
                    continue; // stale
                };
                let end_ms = f.end_ms();
                let idle_ms = self.idle.idle_ms(f);
                if now_ms.saturating_sub(end_ms) > idle_ms {
                    self.flows.meta_mut(cur as usize).wheel_due = EXPIRING;
                    expire(cur);
                    continue;
                }
                let due = deadline_sec(end_ms, idle_ms).max(sec + 1);
                if self.wheel_index(u64::from(filed_sec(due))) == w {
                    self.flows.meta_mut(cur as usize).wheel_due = filed_sec(due);
                    bucket[kept] = cur;
                    kept += 1;
                } else {
                    self.link(cur, due);
                }
            }
            bucket.truncate(kept);
            self.put_back(w, bucket);
        }
        self.wheel_sec = now_sec + 1;
    }

    /// Return a wheel slot's vector, its memory given back if a burst had grown it far
    /// beyond what it holds now.
    fn put_back(&mut self, w: usize, mut bucket: Vec<Slot>) {
        if bucket.capacity() > 1024 && bucket.len() * 4 < bucket.capacity() {
            bucket.shrink_to(bucket.len() * 2);
        }
        // (Nothing is filed under the slot being walked: see `expire_idle`.)
        bucket.append(&mut self.wheel[w]);
        self.wheel[w] = bucket;
    }

    /// A least recently seen flow (to within the wheel's one-second resolution), for eviction
    /// when the table is full; the caller must `remove` it. Flows found active on the way are
    /// filed again, and stale entries dropped, so repeated evictions cost O(1) amortised, even
    /// under a flood of new flows.
    pub fn take_least_recent(&mut self) -> Option<Slot> {
        if self.live == 0 {
            return None;
        }
        let n = self.wheel.len() as u64;
        for sec in self.wheel_sec..self.wheel_sec + n {
            let w = self.wheel_index(sec);
            while let Some(&cur) = self.wheel[w].last() {
                let Some(f) = self.filed_here(w, cur) else {
                    self.wheel[w].pop();
                    continue;
                };
                let due = deadline_sec(f.end_ms(), self.idle.idle_ms(f));
                if due <= sec || self.wheel_index(u64::from(filed_sec(due))) == w {
                    // (Its entry goes stale once the caller removes it.)
                    return Some(cur);
                }
                // Active since it was filed: its real deadline is later.
                self.wheel[w].pop();
                self.link(cur, due);
            }
        }
        None
    }

    /// Every live flow's slot.
    pub fn slots(&self) -> Vec<Slot> {
        let mut live = Vec::with_capacity(self.live);
        live.extend(self.live_slots());
        live
    }

    /// Every live flow's slot, in slot order.
    pub fn live_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        (0..self.flows.len() as Slot).filter(|&s| is_live(self.flows.meta(s as usize)))
    }

    /// Bytes held: flow chunks, the hash index (8 bytes per entry it can hold) and the wheel
    /// (its slots' vectors and the entries they can hold).
    pub fn bytes(&self) -> usize {
        self.flows.chunks.len()
            * CHUNK
            * (std::mem::size_of::<Flow>() + std::mem::size_of::<SlotMeta>())
            + self.index.capacity() * Index::ENTRY_BYTES
            + self.wheel.capacity() * std::mem::size_of::<Vec<Slot>>()
            + self.wheel.iter().map(Vec::capacity).sum::<usize>() * std::mem::size_of::<Slot>()
    }

    /// Resident bytes per slot, for the memory budget tests.
    #[cfg(test)]
    pub fn bytes_per_flow() -> usize {
        std::mem::size_of::<Flow>()
            + std::mem::size_of::<SlotMeta>()
            + Index::ENTRY_BYTES
            + std::mem::size_of::<Slot>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A look-ahead may hand the look-up a slot whose flow has since ended (the slot free, or
    /// taken by another flow): no key of a packet matches it there, and the flow a key does
    /// have is still found. Checked on random keys, with slots freed and reused.
    #[test]
    fn a_freed_or_reused_candidate_slot_matches_no_stale_key() {
        use super::super::timeouts::{IdlePolicy, ProtoTimeouts};
        let mut t = FlowTable::new(IdlePolicy::new(30_000, &ProtoTimeouts::default()));
        let mut next = crate::testrand::xorshift(0x9e37_79b9_7f4a_7c15);
        let start = crate::time::Timestamp::from_millis(1_000);
        for round in 0..2_000 {
            let a = crate::key::tests::random_key(&mut next, round);
            let b = crate::key::tests::random_key(&mut next, round + 1);
            if a == b || a == b.reversed() {
                continue;
            }
            let slot = t.insert(Flow::new(a, start, 0), round as u64);
            assert_eq!(t.flow_id(slot), round as u64);
            let (ha, hb) = (t.hash(&a), t.hash(&b));
            assert_eq!(t.lookup(ha, slot, &a, |_| {}), Some((slot, Side::Forward)));
            assert_eq!(
                t.lookup(ha, slot, &a.reversed(), |_| {}),
                Some((slot, Side::Reverse))
            );
            let (gone, id) = t.remove(slot);
            assert_eq!((gone.key, id), (a, round as u64));
            assert_eq!(t.lookup(ha, slot, &a, |_| {}), None, "freed: {a:?}");
            assert_eq!(t.lookup(ha, slot, &a.reversed(), |_| {}), None);
            // The freed slot is taken first by the next flow.
            assert_eq!(t.insert(Flow::new(b, start, 0), 7), slot);
            assert_eq!(t.lookup(ha, slot, &a, |_| {}), None, "reused: {a:?}");
            assert_eq!(t.lookup(hb, slot, &b, |_| {}), Some((slot, Side::Forward)));
            assert_eq!(t.remove(slot).1, 7);
        }
        assert_eq!(t.len(), 0);
        assert!(t.slots().is_empty());
    }

    /// Both directions of every key hash alike, ICMP's (type/code kept in place) included;
    /// a change to any one field (an endpoint's port moved to the other endpoint among them)
    /// changes the hash.
    #[test]
    fn index_hash_is_the_same_both_ways_and_tells_fields_apart() {
        let keys = HashKeys::random();
        let mut next = crate::testrand::xorshift(0x2545_f491_4f6c_dd1d);
        for round in 0..4_000 {
            let mut k = crate::key::tests::random_key(&mut next, round);
            if k.ip_version == 4 {
                k.src[4..].fill(0);
                k.dst[4..].fill(0);
            }
            let h = key_hash(&keys, &k);
            assert_eq!(h, key_hash(&keys, &k.reversed()), "{k:?}");
            let mut others = vec![
                FlowKey {
                    src_port: k.src_port ^ 1,
                    ..k
                },
                FlowKey {
                    dst_port: k.dst_port.wrapping_add(1),
                    ..k
                },
                FlowKey {
                    proto: k.proto ^ 0x40,
                    ..k
                },
                FlowKey {
                    vlan: k.vlan ^ 1,
                    ..k
                },
                FlowKey {
                    ingress: k.ingress + 1,
                    ..k
                },
                FlowKey {
                    extra: k.extra ^ 0x10000,
                    ..k
                },
            ];
            let mut moved = k;
            moved.src[round % 4] ^= 1 << (round % 8);
            others.push(moved);
            if k.src_port != k.dst_port {
                // The ports traded between the endpoints: another flow (ICMP: type and code).
                let traded = FlowKey {
                    src_port: k.dst_port,
                    dst_port: k.src_port,
                    ..k
                };
                others.push(traded);
            }
            for o in &others {
                assert_ne!(h, key_hash(&keys, o), "{k:?} against {o:?}");
            }
        }
    }
}
