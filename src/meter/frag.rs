//! IP fragments, attributed to their datagram's flow at header level (no payload is kept).
//!
//! Every fragment counts as one packet of its own IP length in the flow of its datagram, as
//! on the wire. Only the first fragment (offset 0) carries the ports, so:
//! * a first fragment is metered at once, and its key is remembered for its datagram;
//! * a later fragment whose datagram's key is known is metered at once with that key;
//! * a later fragment that arrives before the first is held as counts only, and metered when
//!   the first arrives (at the first fragment's time);
//! * a datagram whose first fragment never arrives within [`FRAG_TIMEOUT_MS`] (or that is
//!   evicted because the table holds `max_frags` datagrams) has its held fragments counted as
//!   expired: counted, never silently dropped.
//!
//! QoF's IPv6 bug (the more-fragments flag always read as set, so IPv6 datagrams never
//! completed) does not exist here: `decode` reports the flag as sent.

use crate::key::FlowKey;
use foldhash::fast::RandomState;
use hashbrown::HashMap;
use std::collections::VecDeque;

/// A datagram's fragments are forgotten this long after its last fragment (QoF: 30 s).
pub(crate) const FRAG_TIMEOUT_MS: u64 = 30_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    src: [u8; 16],
    dst: [u8; 16],
    id: u32,
    proto: u8,
    ip_version: u8,
    vlan: u16,
    ingress: u32,
}

impl FragKey {
    pub fn of(key: &FlowKey, id: u32) -> Self {
        FragKey {
            src: key.src,
            dst: key.dst,
            id,
            proto: key.proto,
            ip_version: key.ip_version,
            vlan: key.vlan,
            ingress: key.ingress,
        }
    }
}

/// Fragments held until their datagram's first fragment shows the ports.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Held {
    pub packets: u32,
    pub octets: u64,
    pub min_ttl: u8,
    pub max_ttl: u8,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Datagram {
    /// The flow key with ports, once the first fragment was seen.
    pub key: Option<FlowKey>,
    pub held: Held,
    /// Octets of the datagram's IP payload seen so far, and its total once the last fragment
    /// (more-fragments clear) was seen.
    covered: u32,
    total: Option<u32>,
    last_ms: u64,
    created_ms: u64,
}

impl Datagram {
    pub fn complete(&self) -> bool {
        self.key.is_some() && self.total.is_some_and(|t| self.covered >= t)
    }
}

pub(crate) struct FragTable {
    map: HashMap<FragKey, Datagram, RandomState>,
    /// Datagrams in creation order, for eviction and expiry without scanning the map.
    order: VecDeque<(FragKey, u64)>,
    max: usize,
    pub expired_fragments: u64,
    pub assembled: u64,
}

impl FragTable {
    /// `max` datagrams at most (0 = no limit).
    pub fn new(max: usize) -> Self {
        FragTable {
            map: HashMap::with_hasher(RandomState::default()),
            order: VecDeque::new(),
            max,
            expired_fragments: 0,
            assembled: 0,
        }
    }

    /// Record a fragment: `share` octets of IP payload at `offset`; `more` = more fragments.
    /// Returns the datagram's state after this fragment.
    pub fn note(
        &mut self,
        fk: FragKey,
        now_ms: u64,
        offset: u32,
        share: u32,
        more: bool,
    ) -> &mut Datagram {
        if !self.map.contains_key(&fk) {
            if self.max != 0 && self.map.len() >= self.max {
                self.evict_oldest();
            }
            self.order.push_back((fk, now_ms));
        }
        let d = self.map.entry(fk).or_insert(Datagram {
            created_ms: now_ms,
            ..Default::default()
        });
        d.last_ms = now_ms.max(d.last_ms);
        d.covered = d.covered.saturating_add(share);
        if !more {
            d.total = Some(offset.saturating_add(share));
        }
        d
    }

    pub fn get(&self, fk: &FragKey) -> Option<&Datagram> {
        self.map.get(fk)
    }

    /// Forget a datagram whose fragments are all accounted.
    pub fn finish(&mut self, fk: &FragKey) {
        if self.map.remove(fk).is_some() {
            self.assembled += 1;
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((fk, created)) = self.order.pop_front() {
            if let Some(d) = self.map.get(&fk) {
                if d.created_ms == created {
                    self.drop_datagram(&fk);
                    return;
                }
            }
        }
    }

    fn drop_datagram(&mut self, fk: &FragKey) {
        if let Some(d) = self.map.remove(fk) {
            self.expired_fragments += u64::from(d.held.packets);
        }
    }

    /// Forget datagrams idle for longer than the timeout.
    pub fn expire(&mut self, now_ms: u64) {
        while let Some(&(fk, created)) = self.order.front() {
            if now_ms.saturating_sub(created) <= FRAG_TIMEOUT_MS {
                break;
            }
            self.order.pop_front();
            let Some(d) = self.map.get_mut(&fk) else {
                continue;
            };
            if d.created_ms != created {
                continue; // a later datagram with the same key has its own entry
            }
            if now_ms.saturating_sub(d.last_ms) > FRAG_TIMEOUT_MS {
                let held = u64::from(d.held.packets);
                self.map.remove(&fk);
                self.expired_fragments += held;
            } else {
                // Still receiving: look again one timeout after its last fragment.
                d.created_ms = d.last_ms;
                self.order.push_back((fk, d.last_ms));
            }
        }
    }

    /// Forget everything (end of input); held fragments count as expired.
    /// Datagrams held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn clear(&mut self) {
        for d in self.map.values() {
            self.expired_fragments += u64::from(d.held.packets);
        }
        self.map.clear();
        self.order.clear();
    }
}
