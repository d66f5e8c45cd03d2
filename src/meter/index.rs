//! The flow table's index: from a flow key's hash to its slab slot.
//!
//! Open addressing with linear probing over 8-byte entries: the slot, and the top 32 bits of
//! the key's hash. Those bits are where the entry's home lies (the index is never larger than
//! 2^32 entries) and, beyond the home, a tag: nearly every other key is passed over without
//! reading its flow. A lookup reads one cache line nearly always, and which line follows from
//! the hash alone: the meter can ask for it a few packets before the lookup
//! ([`super::Lookahead`]). Removal shifts the entries after it back (no tombstones, so lookups
//! never slow down with churn), and growing places every entry again: both find an entry's
//! home in the entry itself. (With 4-byte entries, slot and a 5-bit tag, each entry shifted
//! back meant hashing its flow's key again: a cache miss on a flow nothing else was touching.
//! On the benchmark trace that cost more than the 4 bytes saved per entry.)

use super::prefetch;

/// A slot of the flow table's slab: what an index entry names.
pub(crate) type Slot = u32;

/// Slots an index can hold (`u32::MAX` is never one, so no entry is [`EMPTY`]).
pub(crate) const MAX_SLOTS: usize = (1 << 27) - 1;
/// An unused entry (its slot, `u32::MAX`, is never one).
const EMPTY: u64 = u64::MAX;
/// The index grows before more than this share of its entries are used (linear probing's
/// probe lengths climb steeply beyond).
const MAX_LOAD: (usize, usize) = (3, 4);
const MIN_ENTRIES: usize = 64;

pub(crate) struct Index {
    entries: Vec<u64>,
    /// log2 of `entries.len()` (0 while empty).
    bits: u32,
    len: usize,
}

/// The entry of `slot` under `hash`: the hash's top half above the slot.
#[inline]
fn entry(hash: u64, slot: Slot) -> u64 {
    hash & !0xffff_ffff | u64::from(slot)
}

#[inline]
fn slot_of(e: u64) -> Slot {
    e as u32
}

impl Index {
    pub fn new() -> Self {
        Index {
            entries: Vec::new(),
            bits: 0,
            len: 0,
        }
    }

    /// Where a lookup of `hash` (or of an entry: the same top bits) starts.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        // With no entries `bits` is 0: the shift by 63 gives 0 or 1, and every use checks
        // the bounds or the emptiness first.
        (hash >> (64 - self.bits.max(1))) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    /// Ask for the cache line a lookup of `hash` starts with.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(e) = self.entries.get(self.home(hash)) {
            prefetch::line(e);
        }
    }

    /// The first slot under `hash` that `eq` accepts. `eq` sees only slots filed under the
    /// same top half of a hash.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(Slot) -> bool) -> Option<Slot> {
        if self.entries.is_empty() {
            return None;
        }
        let top = hash >> 32;
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if e >> 32 == top && eq(slot_of(e)) {
                return Some(slot_of(e));
            }
            i = (i + 1) & mask;
        }
    }

    /// Add `slot` (below [`MAX_SLOTS`]) under `hash`; the caller knows its key is not in the
    /// index.
    pub fn insert(&mut self, hash: u64, slot: Slot) {
        if (self.len + 1) * MAX_LOAD.1 > self.entries.len() * MAX_LOAD.0 {
            self.grow();
        }
        self.place(entry(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut i = self.home(e);
        while self.entries[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.entries[i] = e;
    }

    fn grow(&mut self) {
        let n = (self.entries.len() * 2).max(MIN_ENTRIES);
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; n]);
        self.bits = n.trailing_zeros();
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Remove `slot`, filed under `hash`. Entries after it in the same run move back into the
    /// hole when their home allows, so that every entry stays reachable from its home without
    /// crossing an empty entry.
    pub fn remove(&mut self, hash: u64, slot: Slot) {
        if self.entries.is_empty() {
            return;
        }
        let target = entry(hash, slot);
        let mask = self.mask();
        let mut hole = self.home(hash);
        loop {
            match self.entries[hole] {
                EMPTY => return,
                e if e == target => break,
                _ => hole = (hole + 1) & mask,
            }
        }
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let e = self.entries[j];
            if e == EMPTY {
                break;
            }
            // `e` may fill the hole unless its home lies cyclically in (hole, j].
            let home = self.home(e);
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.entries[hole] = e;
                hole = j;
            }
        }
        self.entries[hole] = EMPTY;
        self.len -= 1;
    }

    /// Entries held (used or not).
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    pub const ENTRY_BYTES: usize = std::mem::size_of::<u64>();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for the key hash of a slot's flow. One key in 64 shares a single
    /// top half of a hash (so a single home and no tag to tell them apart, and a long run);
    /// homes collide often in a small index anyway.
    fn h(k: u32) -> u64 {
        let x = u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if k % 64 == 0 {
            0x1234_5678 << 32 | (x & 0x07ff_ffff)
        } else {
            x
        }
    }

    #[test]
    fn agrees_with_a_map_through_inserts_and_removals() {
        let mut ix = Index::new();
        // Key k is stored at slot k.
        let mut model = std::collections::HashSet::new();
        let mut next = crate::testrand::xorshift(0x2545_f491_4f6c_dd1d);
        for step in 0..200_000u32 {
            let seed = next();
            let k = (seed % 5_000) as u32;
            if model.contains(&k) {
                if seed >> 40 & 1 == 1 {
                    ix.remove(h(k), k);
                    model.remove(&k);
                }
            } else {
                ix.insert(h(k), k);
                model.insert(k);
            }
            if step % 997 == 0 {
                for k in 0..5_000u32 {
                    let want = model.contains(&k).then_some(k);
                    assert_eq!(ix.find(h(k), |s| s == k), want, "key {k} at step {step}");
                }
                assert_eq!(ix.len, model.len());
            }
        }
        assert!(ix.len * MAX_LOAD.1 <= ix.capacity() * MAX_LOAD.0);
    }

    #[test]
    fn empty_index_finds_nothing_and_removes_nothing() {
        let mut ix = Index::new();
        assert_eq!(ix.find(h(1), |_| true), None);
        ix.remove(h(1), 1);
        ix.prefetch(h(1));
        assert_eq!(ix.capacity(), 0);
    }
}
