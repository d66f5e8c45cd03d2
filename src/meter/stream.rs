//! The first octets of each direction of a TCP connection, in sequence order: one bounded
//! buffer per flow direction, shared by every plugin that reads TCP payload (a TLS
//! ClientHello split over segments, an HTTP request), so that no plugin reassembles on its own.
//!
//! Out-of-order segments are written at their place and the prefix grows once the gap before
//! them is filled; retransmitted bytes are written again (the same bytes, in a sane
//! connection). The stream starts after the SYN, or at the first segment seen when the meter
//! joined the connection late. Nothing beyond `cap` octets is kept, and the buffer is taken
//! only when a direction's first payload arrives, and grown as data comes.

/// Where filled ranges are tracked: a prefix and at most this many islands beyond gaps.
const MAX_RANGES: usize = 8;

/// One direction.
#[derive(Default)]
struct Direction {
    /// Sequence number of the stream's first octet, once known.
    base: Option<u32>,
    /// Filled ranges of the buffer, `[start, end)` offsets, sorted and disjoint.
    ranges: Vec<(u32, u32)>,
    buf: Vec<u8>,
}

impl Direction {
    /// Octets in order from the start.
    fn contiguous(&self) -> usize {
        match self.ranges.first() {
            Some(&(0, end)) => end as usize,
            _ => 0,
        }
    }

    fn push(&mut self, cap: usize, seq: u32, syn: bool, data: &[u8]) {
        if syn {
            // The SYN takes one sequence number; data (if any, with TFO) follows it.
            if self.base.is_none() {
                self.base = Some(seq.wrapping_add(1));
            }
            if data.is_empty() {
                return;
            }
        }
        if data.is_empty() {
            return;
        }
        let base = *self.base.get_or_insert(seq);
        let seq = if syn { seq.wrapping_add(1) } else { seq };
        let off = seq.wrapping_sub(base) as i32;
        // (Bytes from before the start are a retransmission of what was never in the buffer,
        // or of the handshake; bytes far ahead, or a sequence jump of 2^31, cannot be placed.)
        let (data, off) = if off < 0 {
            let skip = off.unsigned_abs() as usize;
            (data.get(skip..).unwrap_or(&[]), 0usize)
        } else {
            (data, off as usize)
        };
        if data.is_empty() || off >= cap {
            return;
        }
        let end = (off + data.len()).min(cap);
        if self.buf.len() < end {
            // Grown as the data arrives (most streams' first segment is all a plugin reads),
            // never past the cap.
            if self.buf.capacity() < end {
                self.buf.reserve_exact((end * 2).min(cap) - self.buf.len());
            }
            self.buf.resize(end, 0);
        }
        self.buf[off..end].copy_from_slice(&data[..end - off]);
        self.insert(off as u32, end as u32);
    }

    /// Add `[start, end)` to the filled ranges, merging what touches or overlaps.
    fn insert(&mut self, mut start: u32, mut end: u32) {
        let mut i = 0;
        while i < self.ranges.len() {
            let (s, e) = self.ranges[i];
            if e < start {
                i += 1;
            } else if s > end {
                break;
            } else {
                start = start.min(s);
                end = end.max(e);
                self.ranges.remove(i);
            }
        }
        if self.ranges.len() < MAX_RANGES || start == 0 {
            self.ranges.insert(i, (start, end));
            // An island too many: the one furthest out goes (its bytes come again, or the
            // prefix never reaches them).
            if self.ranges.len() > MAX_RANGES {
                self.ranges.pop();
            }
        }
    }
}

/// Both directions of one flow.
#[derive(Default)]
pub(crate) struct Streams {
    dirs: [Direction; 2],
}

impl Streams {
    /// Add a TCP segment of direction `reverse`; returns that direction's in-order prefix.
    pub fn push(&mut self, cap: usize, reverse: bool, seq: u32, syn: bool, data: &[u8]) -> &[u8] {
        let d = &mut self.dirs[usize::from(reverse)];
        d.push(cap, seq, syn, data);
        &d.buf[..d.contiguous()]
    }

    /// Octets held.
    pub fn bytes(&self) -> usize {
        self.dirs.iter().map(|d| d.buf.capacity()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_in_any_order_give_the_stream_from_after_the_syn() {
        let mut s = Streams::default();
        assert!(s.push(16, false, 999, true, &[]).is_empty());
        // Second segment first: nothing in order yet.
        assert!(s.push(16, false, 1005, false, b" wor").is_empty());
        assert_eq!(s.push(16, false, 1000, false, b"hel"), b"hel");
        assert_eq!(s.push(16, false, 1003, false, b"lo"), b"hello wor");
        // A retransmission of the start, and bytes past the cap, change nothing beyond it.
        assert_eq!(s.push(16, false, 1000, false, b"hello"), b"hello wor");
        assert_eq!(
            s.push(16, false, 1009, false, b"ld, and more"),
            b"hello world, and"
        );
        // The other direction is its own stream, started at its first segment (no SYN seen).
        assert_eq!(s.push(16, true, 7, false, b"ok"), b"ok");
        assert_eq!(s.push(16, false, 1000, false, b"h").len(), 16);
    }

    #[test]
    fn wrapping_sequence_numbers_and_hostile_jumps_are_safe() {
        let mut s = Streams::default();
        s.push(64, false, u32::MAX - 2, false, b"abc");
        assert_eq!(s.push(64, false, 0, false, b"def"), b"abcdef");
        // Far ahead, far behind, 2^31 away: ignored, no panic.
        for seq in [1 << 20, u32::MAX - 100, 1 << 31, 3 + (1 << 31)] {
            assert_eq!(s.push(64, false, seq, false, &[1; 70]), b"abcdef");
        }
        // Many islands: bounded, and the prefix still grows when its gap fills.
        let mut t = Streams::default();
        t.push(100, false, 0, false, b"x");
        for i in 0..20u32 {
            t.push(100, false, 3 + 3 * i, false, b"y");
        }
        assert_eq!(t.dirs[0].ranges.len(), MAX_RANGES);
        assert_eq!(t.push(100, false, 1, false, b"zz").len(), 4);
    }
}
