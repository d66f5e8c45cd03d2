//! A [`Meter`] fed a stream of packets a few at a time, so that each packet's flow state is
//! already in cache when the packet is metered.
//!
//! A flow's state is a chain of loads, each needing the one before: the index line, then the
//! flow and its state index, then its TCP state. With a table larger than the cache each is a
//! miss, and metering one packet at a time waits for them one after another. Here each packet
//! spends [`DEPTH`] packets in a queue, taking a step every [`STEP`] packets: on arrival its
//! index line is asked for; then the index is read and the flow and its state index asked
//! for; then its TCP state is asked for; then it is metered. The steps only ask the CPU to prefetch lines: the metering is unchanged, and
//! the records are the same, in the same order, as from [`Meter::handle_packet`].

use super::table::{Slot, NIL};
use super::{prefetch, FlowRecord, Meter};
use crate::decode::{Details, Packet};
use crate::time::Timestamp;

/// Packets between one step and the next: time for the lines asked for to arrive. (On the
/// benchmark trace, 2 was 6 % faster than 1, and 3 no faster than 2; 4 was slower.)
const STEP: usize = 2;
/// Packets held before the oldest is metered: three steps.
const DEPTH: usize = 3 * STEP;
/// Ring entries: the queued packets and the one being decoded (a power of two).
const RING: usize = (DEPTH + 1).next_power_of_two();

/// A queued packet and what its look-ahead has found so far.
#[derive(Clone, Copy, Default)]
struct Queued {
    ts: Timestamp,
    pkt: Packet,
    /// The index hash of its key (not used for fragments).
    hash: u64,
    /// The slot the index named for it ([`NIL`] if none yet, or none).
    candidate: Slot,
}

/// See the [module documentation](self). The caller decodes each packet in place into
/// [`Lookahead::next_packet`] and queues it with [`Lookahead::push`]; records come out of
/// [`Lookahead::poll_record`] as from the meter, a few packets later. [`Lookahead::flush`]
/// meters what is queued, then ends every flow. A caller whose next packet may be long in
/// coming (a quiet pipe) calls [`Lookahead::drain`] before waiting for it, so that the
/// packets held back, and the flows they end, are not held with it.
pub struct Lookahead {
    meter: Meter,
    ring: [Queued; RING],
    /// The oldest queued packet's entry.
    head: usize,
    len: usize,
    /// Octets of payload kept per queued packet: what the meter's plugins read at most (0,
    /// nothing copied, when none reads payload). The frame a packet was decoded from is gone
    /// by the time it is metered, so its payload's first octets wait here.
    cap: usize,
    /// `cap` octets per ring entry.
    payload: Vec<u8>,
    payload_len: [usize; RING],
    /// The header facts of each queued packet, when the meter has plugins (else empty).
    details: Vec<Details>,
}

impl Lookahead {
    pub fn new(meter: Meter) -> Self {
        let cap = meter.plugins().payload();
        let details = if meter.plugins().is_empty() {
            Vec::new()
        } else {
            vec![Details::default(); RING]
        };
        Lookahead {
            meter,
            ring: [Queued::default(); RING],
            head: 0,
            len: 0,
            cap,
            payload: vec![0; cap * RING],
            payload_len: [0; RING],
            details,
        }
    }

    /// True when packets must be decoded with their [`Details`] (the meter has plugins):
    /// into [`Lookahead::next_packet_with_details`].
    pub fn wants_details(&self) -> bool {
        !self.details.is_empty()
    }

    /// Where to decode the next packet and its details (see [`Lookahead::wants_details`]).
    #[inline]
    pub fn next_packet_with_details(&mut self) -> (&mut Packet, &mut Details) {
        let i = (self.head + self.len) % RING;
        if self.details.len() < RING {
            // (No plugin: nobody reads the details. A vector grown for them keeps this
            // simple; `wants_details` still tells the truth: it is read once, up front.)
            self.details.resize(RING, Details::default());
        }
        (&mut self.ring[i].pkt, &mut self.details[i])
    }

    /// The meter, for its statistics and memory use (queued packets are not counted yet).
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Count a packet `--sampler hash` passed over before it was queued (see
    /// [`Meter::sampled_out`]).
    pub fn pass_over(&mut self) {
        self.meter.stats.unsampled += 1;
    }

    /// Where to decode the next packet (the ring entry after the newest).
    #[inline]
    pub fn next_packet(&mut self) -> &mut Packet {
        &mut self.ring[(self.head + self.len) % RING].pkt
    }

    /// Queue the packet decoded into [`Lookahead::next_packet`] from `frame`, captured at
    /// `ts`; meter the oldest when the queue is full.
    #[inline]
    pub fn push(&mut self, ts: Timestamp, frame: &[u8]) {
        if self.cap > 0 {
            let i = (self.head + self.len) % RING;
            let off = self.details.get(i).map_or(0, |d| d.payload_off as usize);
            let payload = match off {
                0 => &[][..],
                off => frame.get(off..).unwrap_or(&[]),
            };
            self.keep_payload(i, payload);
        }
        self.queue(ts);
    }

    /// [`Lookahead::push`] for a packet whose payload's first octets were kept apart from its
    /// frame (a worker fed by another thread).
    #[inline]
    pub fn push_with_payload(&mut self, ts: Timestamp, payload: &[u8]) {
        if self.cap > 0 {
            let i = (self.head + self.len) % RING;
            self.keep_payload(i, payload);
        }
        self.queue(ts);
    }

    #[inline(always)]
    fn queue(&mut self, ts: Timestamp) {
        let at = |nth: usize| (self.head + nth) % RING;
        let (newest, before, third) = (
            at(self.len),
            at(self.len + RING - STEP),
            at(self.len + RING - 2 * STEP),
        );
        let m = &self.meter;
        // Step 1, the new packet: hash its key and ask for its index line.
        let q = &mut self.ring[newest];
        q.ts = ts;
        q.candidate = NIL;
        if q.pkt.frag.is_none() {
            q.hash = m.table.hash(&q.pkt.key);
            m.table.prefetch_index(q.hash);
        }
        // Step 2, the packet STEP before it: read its index entry; ask for the flow, the
        // flow's state index and (with plugins) the plugins' entry of the flow.
        if self.len >= STEP {
            let q = &mut self.ring[before];
            let plugins = !self.details.is_empty();
            if q.pkt.frag.is_none() {
                q.candidate = m.table.prefetch_flows(q.hash, |s| {
                    if let Some(x) = m.ext.get(s as usize) {
                        prefetch::line(x);
                    }
                    if plugins {
                        m.plugins.prefetch(s);
                    }
                });
            }
        }
        // Step 3, the packet 2 * STEP before: ask for its TCP state or transport counters.
        if self.len >= 2 * STEP {
            let q = &self.ring[third];
            m.prefetch_state(q.candidate, q.pkt.tcp.is_some());
        }
        self.len += 1;
        if self.len > DEPTH {
            self.meter_oldest();
        }
    }

    /// Keep the first octets of `payload` (what was captured of the payload of the packet
    /// in ring entry `i`, from its start).
    #[inline(never)]
    fn keep_payload(&mut self, i: usize, payload: &[u8]) {
        let p = &self.ring[i].pkt;
        let n = payload.len().min(p.payload_len as usize).min(self.cap);
        let dst = &mut self.payload[i * self.cap..i * self.cap + n];
        dst.copy_from_slice(&payload[..n]);
        self.payload_len[i] = n;
    }

    #[inline(always)]
    fn meter_oldest(&mut self) {
        let i = self.head;
        let q = &self.ring[i];
        self.head = (self.head + 1) % RING;
        self.len -= 1;
        let look = q.pkt.frag.is_none().then_some((q.hash, q.candidate));
        if self.details.is_empty() {
            self.meter.meter_packet(q.ts, &q.pkt, None, look);
        } else {
            self.meter_detailed(i, look);
        }
    }

    /// [`Lookahead::meter_oldest`] for a meter with plugins: the packet's details and payload
    /// go along.
    #[inline(never)]
    fn meter_detailed(&mut self, i: usize, look: Option<(u64, Slot)>) {
        let q = &self.ring[i];
        let payload = match self.cap {
            0 => &[][..],
            cap => &self.payload[i * cap..i * cap + self.payload_len[i]],
        };
        let extra = self.details.get(i).map(|d| (d, payload));
        self.meter.meter_packet(q.ts, &q.pkt, extra, look);
    }

    /// Meter every queued packet now.
    pub fn drain(&mut self) {
        while self.len > 0 {
            self.meter_oldest();
        }
    }

    /// See [`Meter::poll_record`].
    #[inline]
    pub fn poll_record(&mut self) -> Option<FlowRecord> {
        self.meter.poll_record()
    }

    /// See [`Meter::with_next_record`].
    #[inline]
    pub fn with_next_record<R>(&mut self, f: impl FnOnce(&FlowRecord) -> R) -> Option<R> {
        self.meter.with_next_record(f)
    }

    /// See [`Meter::records_ready`].
    #[inline]
    pub fn records_ready(&self) -> usize {
        self.meter.records_ready()
    }

    /// See [`Meter::records_waiting`].
    #[inline]
    pub fn records_waiting(&self) -> bool {
        self.meter.records_waiting()
    }

    /// End of input: meter what is queued, then end every flow (see [`Meter::flush`]).
    pub fn flush(&mut self) {
        self.drain();
        self.meter.flush();
    }

    /// Meter what is queued, then end every flow now (see [`Meter::expire_all`]).
    pub fn expire_all(&mut self) {
        self.drain();
        self.meter.expire_all();
    }

    /// Meter what is queued, then remove every flow without a record (see
    /// [`Meter::delete_all`]); returns how many.
    pub fn delete_all(&mut self) -> u64 {
        self.drain();
        self.meter.delete_all()
    }

    /// Meter what is queued, then list the flows in memory (see [`Meter::flows`]).
    pub fn flows(&mut self) -> Vec<super::FlowSummary> {
        self.drain();
        self.meter.flows()
    }

    /// Packet time has reached `now` without a packet: meter what is queued, then expire
    /// flows (see [`Meter::handle_timeout`]).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.drain();
        self.meter.handle_timeout(now);
    }
}
