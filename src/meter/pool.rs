//! Fixed-chunk storage with a free list, for per-flow state that only some flows have.
//!
//! Growing never copies (a `Vec` doubling would briefly hold the old and the new copy, a peak
//! of twice the state in memory) and never moves an entry; freed entries are reused, so the
//! steady state allocates nothing.

const CHUNK: usize = 1024;

/// No entry.
pub(crate) const NONE: u32 = u32::MAX;

pub(crate) struct Pool<T> {
    chunks: Vec<Box<[T]>>,
    len: u32,
    free: Vec<u32>,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            chunks: Vec::new(),
            len: 0,
            free: Vec::new(),
        }
    }
}

impl<T: Copy + Default> Pool<T> {
    /// Store `v`; returns its index.
    pub fn alloc(&mut self, v: T) -> u32 {
        if let Some(i) = self.free.pop() {
            *self.get_mut(i) = v;
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
        self.free.push(i);
    }

    /// Entries in use.
    pub fn in_use(&self) -> usize {
        self.len as usize - self.free.len()
    }

    /// Bytes held: every chunk ever allocated (a pool never shrinks) and the free list.
    pub fn bytes(&self) -> usize {
        self.chunks.len() * CHUNK * std::mem::size_of::<T>()
            + self.free.capacity() * std::mem::size_of::<u32>()
    }
}
