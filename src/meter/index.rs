//! The flow table's index: from a flow key's hash to its slab slot.
//!
//! Open addressing with linear probing over 8-byte entries, each the hash's high 32 bits (a
//! tag, so that other keys are passed over without reading their flows) and the slot. A
//! lookup reads one cache line nearly always, and which line follows from the hash alone: the
//! meter can ask for it a few packets before the lookup (see [`super::Meter::queue_packet`]).
//! The home position is the tag's top bits, so growing needs no key hashed again. Removal
//! shifts the entries after it back (no tombstones), so lookups never slow down with churn.

use super::prefetch;
use super::table::Slot;

/// An unused entry (its slot would be `u32::MAX`, which no flow has).
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

#[inline]
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

impl Index {
    pub fn new() -> Self {
        Index {
            entries: Vec::new(),
            bits: 0,
            len: 0,
        }
    }

    #[inline]
    fn home(&self, tag: u32) -> usize {
        // `bits` is at least 6 once there are entries; with none, every lookup ends at once.
        (u64::from(tag) << 32 >> (64 - self.bits.max(1))) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    /// Ask for the cache line a lookup of `hash` starts with.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(e) = self.entries.get(self.home(tag(hash))) {
            prefetch::line(e);
        }
    }

    /// The first slot under `hash` that `eq` accepts. `eq` sees only slots whose tag matches.
    #[inline]
    pub fn find(&self, hash: u64, mut eq: impl FnMut(Slot) -> bool) -> Option<Slot> {
        if self.entries.is_empty() {
            return None;
        }
        let t = tag(hash);
        let mask = self.mask();
        let mut i = self.home(t);
        loop {
            let e = self.entries[i];
            if e == EMPTY {
                return None;
            }
            if (e >> 32) as u32 == t && eq(e as Slot) {
                return Some(e as Slot);
            }
            i = (i + 1) & mask;
        }
    }

    /// Add `slot` under `hash` (the caller knows its key is not in the index).
    pub fn insert(&mut self, hash: u64, slot: Slot) {
        if (self.len + 1) * MAX_LOAD.1 > self.entries.len() * MAX_LOAD.0 {
            self.grow();
        }
        self.place(u64::from(tag(hash)) << 32 | u64::from(slot));
        self.len += 1;
    }

    fn place(&mut self, entry: u64) {
        let mask = self.mask();
        let mut i = self.home((entry >> 32) as u32);
        while self.entries[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.entries[i] = entry;
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
    /// hole when their home position allows, so that every entry stays reachable from its home
    /// without crossing an empty entry.
    pub fn remove(&mut self, hash: u64, slot: Slot) {
        let target = u64::from(tag(hash)) << 32 | u64::from(slot);
        if self.entries.is_empty() {
            return;
        }
        let mask = self.mask();
        let mut hole = self.home(tag(hash));
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
            let home = self.home((e >> 32) as u32);
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

    /// A deterministic stand-in for the key hash. One key in 64 shares a single tag (so a
    /// single home, and a long run), and homes collide often in a small index anyway.
    fn h(k: u32) -> u64 {
        let x = u64::from(k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if k % 64 == 0 {
            0x1234_5678 << 32 | (x & 0xffff_ffff)
        } else {
            x
        }
    }

    #[test]
    fn agrees_with_a_map_through_inserts_and_removals() {
        let mut ix = Index::new();
        let mut model = std::collections::HashMap::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for step in 0..200_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let k = (seed % 5_000) as u32;
            match model.get(&k) {
                Some(&slot) if seed >> 40 & 1 == 1 => {
                    ix.remove(h(k), slot);
                    model.remove(&k);
                }
                Some(_) => {}
                None => {
                    ix.insert(h(k), step);
                    model.insert(k, step);
                }
            }
            if step % 997 == 0 {
                for k in 0..5_000u32 {
                    let want = model.get(&k).copied();
                    let got = ix.find(h(k), |s| Some(&s) == model.get(&k));
                    assert_eq!(got, want, "key {k} at step {step}");
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
