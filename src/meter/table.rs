//! The flow table: a slab of [`Flow`]s, a hash index over it, and a timer wheel for idle expiry.
//!
//! * One lookup per packet: the index hashes a direction-independent form of the key, so a
//!   packet finds its flow whether it travels forward or in reverse.
//! * The index stores only slot numbers (4 bytes per bucket); keys live once, in the slab.
//! * Idle expiry uses a wheel of one-second slots. A flow is scheduled once, at creation, for
//!   `end + idle`; when its slot comes round the wheel checks the flow's real last-seen time and
//!   reschedules it if it was active meanwhile (retina's scheme). So the per-packet path never
//!   touches any flow but its own, and each flow is looked at about once per idle period.
//! * The hash seed is random per table: flow keys are attacker-controlled.

use super::flow::Flow;
use crate::key::FlowKey;
use foldhash::fast::RandomState;
use hashbrown::HashTable;
use std::hash::{BuildHasher, Hash, Hasher};

/// Direction of a packet relative to its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Forward,
    Reverse,
}

/// A slot of the slab.
pub(crate) type Slot = u32;

/// Timer-wheel entry: which slot, and the generation the flow had when it was scheduled.
#[derive(Clone, Copy, Debug)]
struct Scheduled {
    slot: Slot,
    generation: u32,
}

/// Both directions of a key hash alike: the endpoints are put in a fixed order first.
fn key_hash(hasher: &RandomState, key: &FlowKey) -> u64 {
    let mut h = hasher.build_hasher();
    if key.has_ports() {
        let a = (&key.src, key.src_port);
        let b = (&key.dst, key.dst_port);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        lo.hash(&mut h);
        hi.hash(&mut h);
    } else {
        // ICMP: `reversed` keeps type/code in place, so order the addresses only.
        let (lo, hi) = if key.src <= key.dst {
            (&key.src, &key.dst)
        } else {
            (&key.dst, &key.src)
        };
        lo.hash(&mut h);
        hi.hash(&mut h);
        (key.src_port, key.dst_port).hash(&mut h);
    }
    (key.proto, key.ip_version, key.vlan).hash(&mut h);
    h.finish()
}

pub(crate) struct FlowTable {
    flows: Vec<Flow>,
    /// Free slots of `flows`, reused last-in first-out (warm in cache).
    free: Vec<Slot>,
    index: HashTable<Slot>,
    hasher: RandomState,
    live: usize,
    wheel: Vec<Vec<Scheduled>>,
    /// The wheel has processed every second before this one.
    wheel_sec: u64,
    idle_secs: u64,
}

impl FlowTable {
    pub fn new(idle_secs: u64) -> Self {
        // Slots for every deadline up to idle + 2 s ahead, rounded up to a power of two.
        let slots = (idle_secs + 2).next_power_of_two().min(1 << 20) as usize;
        FlowTable {
            flows: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: RandomState::default(),
            live: 0,
            wheel: (0..slots).map(|_| Vec::new()).collect(),
            wheel_sec: 0,
            idle_secs,
        }
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

    fn hash(&self, key: &FlowKey) -> u64 {
        key_hash(&self.hasher, key)
    }

    /// The flow this key belongs to, and the packet's side of it.
    pub fn lookup(&self, key: &FlowKey) -> Option<(Slot, Side)> {
        let hash = self.hash(key);
        let rev = key.reversed();
        let flows = &self.flows;
        let slot = *self.index.find(hash, |&s| {
            let k = &flows[s as usize].key;
            *k == *key || *k == rev
        })?;
        let side = if flows[slot as usize].key == *key {
            Side::Forward
        } else {
            Side::Reverse
        };
        Some((slot, side))
    }

    /// Insert a new flow (its key must not be in the table) and schedule its idle check.
    pub fn insert(&mut self, flow: Flow) -> Slot {
        let hash = self.hash(&flow.key);
        let end_ms = flow.end_ms();
        let slot = match self.free.pop() {
            Some(s) => {
                let generation = self.flows[s as usize].generation;
                self.flows[s as usize] = Flow { generation, ..flow };
                s
            }
            None => {
                self.flows.push(flow);
                (self.flows.len() - 1) as Slot
            }
        };
        let (flows, index, hasher) = (&self.flows, &mut self.index, &self.hasher);
        index.insert_unique(hash, slot, |&s| key_hash(hasher, &flows[s as usize].key));
        self.live += 1;
        self.schedule(slot, end_ms);
        slot
    }

    /// Remove a flow and return it.
    pub fn remove(&mut self, slot: Slot) -> Flow {
        let flow = self.flows[slot as usize];
        let hash = self.hash(&flow.key);
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        let f = &mut self.flows[slot as usize];
        f.generation = f.generation.wrapping_add(1);
        self.free.push(slot);
        self.live -= 1;
        flow
    }

    fn deadline_sec(&self, end_ms: u64) -> u64 {
        end_ms / 1000 + self.idle_secs + 1
    }

    fn schedule(&mut self, slot: Slot, end_ms: u64) {
        let due = self.deadline_sec(end_ms).max(self.wheel_sec);
        let n = self.wheel.len() as u64;
        let generation = self.flows[slot as usize].generation;
        self.wheel[(due % n) as usize].push(Scheduled { slot, generation });
    }

    /// Advance the wheel to `now_ms`, passing every flow idle for longer than `idle_ms` to
    /// `expire`; the caller must `remove` each. Flows active meanwhile are rescheduled.
    pub fn expire_idle(&mut self, now_ms: u64, idle_ms: u64, mut expire: impl FnMut(Slot)) {
        let now_sec = now_ms / 1000;
        if self.wheel_sec == 0 {
            self.wheel_sec = now_sec;
        }
        let n = self.wheel.len() as u64;
        // After a long jump in packet time, every slot is due once.
        let first = self.wheel_sec.max(now_sec.saturating_sub(n - 1));
        for sec in first..=now_sec {
            let idx = (sec % n) as usize;
            let mut batch = std::mem::take(&mut self.wheel[idx]);
            for s in batch.drain(..) {
                let f = &self.flows[s.slot as usize];
                if f.generation != s.generation {
                    continue; // freed since it was scheduled
                }
                let end_ms = f.end_ms();
                if now_ms.saturating_sub(end_ms) > idle_ms {
                    expire(s.slot);
                } else {
                    self.schedule_after(s, end_ms, sec);
                }
            }
            // Give the slot its buffer back (keeping the capacity) unless rescheduling refilled it.
            if self.wheel[idx].is_empty() {
                self.wheel[idx] = batch;
            }
        }
        self.wheel_sec = now_sec + 1;
    }

    fn schedule_after(&mut self, s: Scheduled, end_ms: u64, current_sec: u64) {
        let due = self.deadline_sec(end_ms).max(current_sec + 1);
        let n = self.wheel.len() as u64;
        self.wheel[(due % n) as usize].push(s);
    }

    /// A least recently seen flow (to within the wheel's one-second resolution), for eviction
    /// when the table is full. It is taken off the wheel; the caller must `remove` it.
    /// Entries found stale on the way are dropped or rescheduled, so repeated evictions cost
    /// O(1) amortised, even under a flood of new flows.
    pub fn take_least_recent(&mut self) -> Option<Slot> {
        if self.live == 0 {
            return None;
        }
        let n = self.wheel.len() as u64;
        for sec in self.wheel_sec..self.wheel_sec + n {
            let idx = (sec % n) as usize;
            while let Some(s) = self.wheel[idx].pop() {
                let f = &self.flows[s.slot as usize];
                if f.generation != s.generation {
                    continue;
                }
                let end_ms = f.end_ms();
                if self.deadline_sec(end_ms) <= sec {
                    return Some(s.slot);
                }
                // Active since it was scheduled: its real deadline is later.
                self.schedule_after(s, end_ms, sec);
            }
        }
        None
    }

    /// Every live flow's slot (end of input).
    pub fn slots(&self) -> Vec<Slot> {
        let mut is_free = vec![false; self.flows.len()];
        for &s in &self.free {
            is_free[s as usize] = true;
        }
        (0..self.flows.len() as Slot)
            .filter(|&s| !is_free[s as usize])
            .collect()
    }

    /// Resident bytes per slot, for the memory budget tests.
    pub fn bytes_per_flow() -> usize {
        std::mem::size_of::<Flow>() + std::mem::size_of::<Slot>() + std::mem::size_of::<Scheduled>()
    }
}
