//! The order in which the end of input (or `qofctl expire-all`) ends the flows in memory:
//! oldest start first, flows that started in the same millisecond by flowId.
//!
//! The order is worked out once, when every flow is in memory: the peak of a run. So each
//! flow's place is one word: its start (from the earliest start) above its slot. A comparator
//! that read two flows' fields would meet a cache miss on each, about log2(n) times per flow;
//! keys of start, flowId and slot (24 bytes, and a list of slots beside them) added 28 bytes
//! per flow to that peak, a fifth of what the flows themselves take.

use super::index::MAX_SLOTS;
use super::table::{FlowTable, Slot};

/// Bits of a key that hold the slot.
const SLOT_BITS: u32 = 27;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const _: () = assert!(MAX_SLOTS as u64 <= SLOT_MASK);
/// Starts at most this far from the earliest (about 4.4 years, in milliseconds) fit the key.
const MAX_SPAN_MS: u64 = (1 << (64 - SLOT_BITS)) - 1;

/// Slots to end, newest first: taken from the back.
#[derive(Default)]
pub(crate) struct FlushOrder {
    /// A key per flow; its low [`SLOT_BITS`] are the slot.
    keys: Vec<u64>,
}

impl FlushOrder {
    /// Every live flow of `table`, in the order their records are due.
    pub fn of(table: &FlowTable) -> FlushOrder {
        let start = |s: Slot| table.flow(s).start_ms();
        let Some((first, last)) = table
            .live_slots()
            .map(start)
            .fold(None, |span: Option<(u64, u64)>, t| {
                Some(span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
            })
        else {
            return FlushOrder::default();
        };
        if last - first > MAX_SPAN_MS {
            return Self::of_any_span(table);
        }
        let mut keys: Vec<u64> = table
            .live_slots()
            .map(|s| (start(s) - first) << SLOT_BITS | u64::from(s))
            .collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        // Flows that started in the same millisecond lie in slot order: put them in flowId
        // order (descending, as the whole), reading only their metadata.
        for same in keys.chunk_by_mut(|a, b| a >> SLOT_BITS == b >> SLOT_BITS) {
            if same.len() > 1 {
                same.sort_unstable_by_key(|&k| std::cmp::Reverse(table.flow_id(slot_of(k))));
            }
        }
        FlushOrder { keys }
    }

    /// The same order, for starts further apart than a key can hold (packet times that jump
    /// by years): wider keys, sorted, then only the slots kept.
    #[cold]
    fn of_any_span(table: &FlowTable) -> FlushOrder {
        let mut wide: Vec<(u64, u64, Slot)> = table
            .live_slots()
            .map(|s| (table.flow(s).start_ms(), table.flow_id(s), s))
            .collect();
        wide.sort_unstable_by(|a, b| b.cmp(a));
        FlushOrder {
            keys: wide.into_iter().map(|(_, _, s)| u64::from(s)).collect(),
        }
    }

    /// The next flow to end.
    #[inline]
    pub fn pop(&mut self) -> Option<Slot> {
        self.keys.pop().map(slot_of)
    }

    /// The flow that will end `k` flows after the next.
    #[inline]
    pub fn after_next(&self, k: usize) -> Option<Slot> {
        let n = self.keys.len();
        n.checked_sub(k + 1).map(|i| slot_of(self.keys[i]))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[inline]
fn slot_of(key: u64) -> Slot {
    (key & SLOT_MASK) as Slot
}
