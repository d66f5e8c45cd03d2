//! Transport payload counters (transportPacketDeltaCount, transportOctetDeltaCount) of flows
//! that have no TCP state; TCP flows keep theirs in it.
//!
//! Most such flows need no counters of their own: when every packet of a DNS exchange, a
//! media stream or a ping carries payload behind headers of one and the same length `h`, its
//! transport packets are its packets and its transport octets its octets less `h` per packet.
//! Such a flow's counters are *implicit*: its slot in the meter's side array holds `h`, marked
//! [`IMPLICIT`], and its packets touch nothing but the flow. The first packet that breaks the
//! rule (no payload, other header lengths, fragments) gives the flow real counters, filled
//! from the flow's own counts so far, and from then on every packet is added to them.

use super::flow::Dir;
use super::pool::{self, Pool};
use super::tcp::Payload;
use crate::decode::Packet;

/// Marks a side-array value as implicit counters; the low 16 bits are the header length.
/// (Pool indices stay far below: a meter holds at most 2^27 flows.)
const IMPLICIT: u32 = 1 << 31;

type Counters = [Payload; 2];

impl pool::Recycle for Counters {
    fn free_link(&mut self) -> &mut u32 {
        &mut self[0].packets
    }
}

/// The counters of a meter's non-TCP flows, each named by a `u32` in the meter's side array:
/// [`pool::NONE`], an index into the pool, or [`IMPLICIT`] with a header length.
#[derive(Default)]
pub(crate) struct TransportTable {
    pool: Pool<Counters>,
}

/// The header length that makes `pkt` fit the implicit rule, if it can.
fn header_len(pkt: &Packet) -> Option<u32> {
    let h = pkt.ip_len.checked_sub(pkt.payload_len)?;
    (pkt.payload_len > 0 && h <= 0xffff).then_some(h)
}

impl TransportTable {
    /// Counters for a new flow whose first packet is `pkt` (not yet added to the flow).
    pub fn start(&mut self, pkt: &Packet) -> u32 {
        match header_len(pkt) {
            Some(h) => IMPLICIT | h,
            None => self.pool.alloc(Counters::default()),
        }
    }

    /// Add `pkt`, before it is added to the flow's counters `dirs` (forward, reverse).
    /// `held` says the flow also takes fragments held back for it, which carry no transport
    /// payload of their own. (Not inlined: inlined, it cost the default template, which never
    /// calls it, about six instructions per packet in `Meter::account`.)
    #[inline(never)]
    pub fn packet(
        &mut self,
        x: &mut u32,
        dirs: [&Dir; 2],
        pkt: &Packet,
        reverse: bool,
        held: bool,
    ) {
        if *x == pool::NONE {
            return;
        }
        if *x & IMPLICIT != 0 {
            if !held && header_len(pkt) == Some(*x & 0xffff) {
                return;
            }
            let counts = implicit(*x, dirs);
            *x = self.pool.alloc(counts);
        }
        self.pool.get_mut(*x)[usize::from(reverse)].add(pkt.payload_len);
    }

    /// The flow ended: its counters, given its final forward and reverse counts; `x` is freed.
    pub fn finish(&mut self, x: u32, dirs: [&Dir; 2]) -> Option<Counters> {
        match x {
            pool::NONE => None,
            _ if x & IMPLICIT != 0 => Some(implicit(x, dirs)),
            _ => {
                let c = *self.pool.get_mut(x);
                self.pool.release(x);
                Some(c)
            }
        }
    }

    /// The cache line of `x`'s counters, if it has any of its own.
    pub fn get(&self, x: u32) -> Option<&Counters> {
        (x & IMPLICIT == 0).then(|| self.pool.get(x)).flatten()
    }

    /// Flows with counters of their own: the most ever at once, and now.
    pub fn peak(&self) -> usize {
        self.pool.peak()
    }

    pub fn in_use(&self) -> usize {
        self.pool.in_use()
    }

    pub fn bytes(&self) -> usize {
        self.pool.bytes()
    }
}

/// What implicit counters `x` stand for, given the flow's counts.
fn implicit(x: u32, dirs: [&Dir; 2]) -> Counters {
    let h = u64::from(x & 0xffff);
    dirs.map(|d| Payload::new(d.packets, d.octets.saturating_sub(u64::from(d.packets) * h)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Packet;

    fn pkt(ip_len: u32, payload_len: u32) -> Packet {
        Packet {
            ip_len,
            payload_len,
            ..Packet::default()
        }
    }

    /// Add a packet to both the table and the flow's counters, as the meter does.
    fn feed(
        t: &mut TransportTable,
        x: &mut u32,
        d: &mut [Dir; 2],
        p: &Packet,
        rev: bool,
        held: bool,
    ) {
        t.packet(x, [&d[0], &d[1]], p, rev, held);
        let dir = &mut d[usize::from(rev)];
        dir.packets += 1;
        dir.octets += u64::from(p.ip_len);
    }

    #[test]
    fn uniform_packets_need_no_counters_and_others_get_them_with_the_past_filled_in() {
        let mut t = TransportTable::default();
        let mut d = [Dir::default(); 2];
        // DNS over IPv4: 28 bytes of headers before every payload.
        let q = pkt(68, 40);
        let mut x = t.start(&q);
        feed(&mut t, &mut x, &mut d, &q, false, false);
        feed(&mut t, &mut x, &mut d, &pkt(148, 120), true, false);
        feed(&mut t, &mut x, &mut d, &pkt(60, 32), true, false);
        assert_eq!(t.in_use(), 0, "no counters taken");
        let c = t.finish(x, [&d[0], &d[1]]).unwrap();
        assert_eq!((c[0].packets, c[0].octets()), (1, 40));
        assert_eq!((c[1].packets, c[1].octets()), (2, 152));

        // An empty datagram, then one with IP options: counters taken at the first.
        let mut d = [Dir::default(); 2];
        let mut x = t.start(&q);
        feed(&mut t, &mut x, &mut d, &q, false, false);
        feed(&mut t, &mut x, &mut d, &pkt(148, 120), true, false);
        feed(&mut t, &mut x, &mut d, &pkt(28, 0), false, false);
        assert_eq!(t.in_use(), 1);
        feed(&mut t, &mut x, &mut d, &pkt(72, 40), false, false);
        let c = t.finish(x, [&d[0], &d[1]]).unwrap();
        assert_eq!((c[0].packets, c[0].octets()), (2, 80));
        assert_eq!((c[1].packets, c[1].octets()), (1, 120));
        assert_eq!(t.in_use(), 0, "freed");
    }

    #[test]
    fn held_fragments_and_an_empty_first_packet_take_counters() {
        let mut t = TransportTable::default();
        let mut d = [Dir::default(); 2];
        let p = pkt(1500, 1472);
        let mut x = t.start(&p);
        // The flow's first packet brings two fragments that came before it (the meter adds
        // them to the flow after the packet): they carry no transport payload.
        feed(&mut t, &mut x, &mut d, &p, false, true);
        d[0].packets += 2;
        d[0].octets += 2000;
        feed(&mut t, &mut x, &mut d, &p, false, false);
        let c = t.finish(x, [&d[0], &d[1]]).unwrap();
        assert_eq!((c[0].packets, c[0].octets()), (2, 2944));

        let empty = pkt(28, 0);
        let x = t.start(&empty);
        assert_eq!(t.in_use(), 1, "no payload: counters from the start");
        t.finish(x, [&d[0], &d[1]]);
        assert!(t.finish(pool::NONE, [&d[0], &d[1]]).is_none());
    }
}
