//! Fixed-chunk storage with a free list, for per-flow state that only some flows have.
//!
//! Growing never copies (a `Vec` doubling would briefly hold the old and the new copy, a peak
//! of twice the state in memory) and never moves an entry; freed entries are reused, so the
//! steady state allocates nothing. The free list runs through the free entries themselves
//! (see [`Recycle`]): at the end of input, when every entry is freed at once, a separate list
//! would be the largest it ever gets.

const CHUNK: usize = 1024;

/// No entry.
pub(crate) const NONE: u32 = u32::MAX;

pub(crate) struct Pool<T> {
    chunks: Vec<Box<[T]>>,
    len: u32,
    /// The most recently freed entry ([`NONE`] if none): reused first, being warm in cache.
    free_head: u32,
    free_count: u32,
}

/// An entry that lends the pool a word while it is free, to link the free list.
pub(crate) trait Recycle {
    fn free_link(&mut self) -> &mut u32;
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            chunks: Vec::new(),
            len: 0,
            free_head: NONE,
            free_count: 0,
        }
    }
}

impl<T: Copy + Default + Recycle> Pool<T> {
    /// Store `v`; returns its index.
    pub fn alloc(&mut self, v: T) -> u32 {
        if self.free_head != NONE {
            let i = self.free_head;
            let e = self.get_mut(i);
            let next = *e.free_link();
            *e = v;
            self.free_head = next;
            self.free_count -= 1;
            return i;
        }
        let i = self.len as usize;
        if i == self.chunks.len() * CHUNK {
            self.chunks
                .push(vec![T::default(); CHUNK].into_boxed_slice());
        }
        self.chunks[i / CHUNK][i % CHUNK] = v;
        self.len += 1;
        i as u32
    }

    /// Entry `i`, if it was ever allocated (a read-only look never panics).
    pub fn get(&self, i: u32) -> Option<&T> {
        let i = i as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub fn get_mut(&mut self, i: u32) -> &mut T {
        let i = i as usize;
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }

    /// Return entry `i` for reuse.
    pub fn release(&mut self, i: u32) {
        let head = self.free_head;
        *self.get_mut(i).free_link() = head;
        self.free_head = i;
        self.free_count += 1;
    }

    /// The most entries ever in use at once (freed entries are reused before new ones).
    pub fn peak(&self) -> usize {
        self.len as usize
    }

    /// Entries in use.
    pub fn in_use(&self) -> usize {
        (self.len - self.free_count) as usize
    }

    /// Bytes held: every chunk ever allocated (a pool never shrinks).
    pub fn bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    struct E(u32, u64);

    impl Recycle for E {
        fn free_link(&mut self) -> &mut u32 {
            &mut self.0
        }
    }

    #[test]
    fn freed_entries_are_reused_last_in_first_out_and_counted() {
        let mut p = Pool::<E>::default();
        let ids: Vec<u32> = (0..3000u64).map(|i| p.alloc(E(7, i))).collect();
        assert_eq!(ids, (0..3000).collect::<Vec<u32>>());
        assert_eq!((p.in_use(), p.peak()), (3000, 3000));
        for i in [5, 2999, 1024, 0] {
            p.release(i);
        }
        assert_eq!(p.in_use(), 2996);
        // Reused most recent first; the link word is overwritten by the new value.
        assert_eq!(p.alloc(E(1, 1)), 0);
        assert_eq!(p.alloc(E(2, 2)), 1024);
        assert_eq!(p.alloc(E(3, 3)), 2999);
        assert_eq!(p.alloc(E(4, 4)), 5);
        assert_eq!(p.alloc(E(5, 5)), 3000, "free list used up: a new entry");
        assert_eq!(p.get(1024), Some(&E(2, 2)));
        assert_eq!(
            p.get(6),
            Some(&E(7, 6)),
            "untouched entries keep their values"
        );
        assert_eq!((p.in_use(), p.peak()), (3001, 3001));
        assert_eq!(p.bytes(), 3 * CHUNK * std::mem::size_of::<E>());
    }
}
