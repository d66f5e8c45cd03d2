//! The sans-IO metering core: decoded packets and packet time in, flow records out.
//!
//! No sockets, files or clocks; no global state. One [`Meter`] per worker.

pub mod ext;
mod flow;
mod flush;
mod frag;
mod index;
mod keys;
mod lookahead;
pub mod plugin;
#[cfg(test)]
mod plugin_tests;
mod pool;
mod prefetch;
mod record;
pub mod sampling;
mod stream;
mod table;
mod tcp;
#[cfg(test)]
mod tests;
mod timeouts;
mod transport;

pub use ext::{list_items, ExtKey, ExtValue, ExtWriter, Extensions, VARIABLE_ITEMS};
pub use keys::{KeyPolicy, PortRule, PrefixRule, TrackLevel};
pub use lookahead::Lookahead;
pub use plugin::{FlowPlugin, Host, Hosted, Opening, PacketView, PluginSet, Reads, Verdict};
pub use record::{end_reason, DirStats, FlowRecord, FlowSummary};
pub use tcp::{characteristic, EchoRule, RttStats, SeqCounters, TcpConfig, TcpDirStats};
pub use timeouts::ProtoTimeouts;

use crate::decode::{Details, FragInfo, Packet};
use crate::time::Timestamp;
use flow::{Dir, Flow, NO_REVERSE};
use flush::FlushOrder;
use frag::{FragKey, FragTable, Held};
use std::collections::VecDeque;
use table::{FlowTable, Side, Slot};
use tcp::{TcpPacket, TcpTable};
use transport::TransportTable;

/// The most flows a meter holds in memory at once (its index's limit): the largest
/// `max_flows`, and what 0 ("no limit") means.
pub const MAX_FLOWS: usize = table::MAX_SLOTS;

/// Records ahead of the one being made whose flow's lines are asked for (see
/// [`Meter::poll_record`]).
const CLOSE_AHEAD: usize = 8;

/// How the meter forms flows (the YAML configuration's flow-table keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterConfig {
    /// A flow with no packet for longer than this ends (reason idle), unless `timeouts`
    /// gives its protocol another (softflowd's `general`).
    pub idle_timeout_ms: u64,
    /// A flow longer than this is closed and continued in a new record (reason active),
    /// keeping its flowId (softflowd's `maxlife`; `u64::MAX`: never).
    pub active_timeout_ms: u64,
    /// Idle timeouts by protocol, TCP linger after a RST or a close, the expiry interval.
    pub timeouts: ProtoTimeouts,
    /// `--sampler hash:N`: only the flows this chooses are metered (by their key).
    pub flow_sampler: Option<sampling::FlowSampler>,
    /// Flows are aggregates, not connections ([`KeyPolicy::merges_connections`]): a TCP
    /// close does not end one, nor does a SYN split it.
    pub aggregated: bool,
    /// At most this many flows in memory; the least recently seen is evicted (reason 5).
    /// 0 = no limit but [`MAX_FLOWS`].
    pub max_flows: usize,
    /// At most this many datagrams awaiting their first fragment. 0 = no limit.
    pub max_frags: usize,
    /// SiLK mode: octet counters split at 2^32 and continuation flows carry reason bit 0x80.
    pub silk_compatible: bool,
    /// Keep the first forward packet's MAC addresses.
    pub track_macs: bool,
    /// Keep transport-layer packet and octet counts.
    pub track_transport: bool,
    /// TCP performance measurements.
    pub tcp: TcpConfig,
    /// flowIds this meter gives: `first`, then every `step` after it. Meters that share an
    /// observation domain (workers) take disjoint series: worker *i* of *n* starts at *i* + 1
    /// with step *n*.
    pub flow_ids: FlowIds,
}

/// A series of flowIds (see [`MeterConfig::flow_ids`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowIds {
    pub first: u64,
    pub step: u64,
}

impl FlowIds {
    /// The series of worker `i` (from 0) of `n`.
    pub fn worker(i: usize, n: usize) -> FlowIds {
        FlowIds {
            first: i as u64 + 1,
            step: n.max(1) as u64,
        }
    }
}

impl Default for MeterConfig {
    fn default() -> Self {
        MeterConfig {
            idle_timeout_ms: 30_000,
            active_timeout_ms: 300_000,
            timeouts: ProtoTimeouts::default(),
            flow_sampler: None,
            aggregated: false,
            max_flows: 1 << 20,
            max_frags: 1 << 18,
            silk_compatible: false,
            track_macs: false,
            track_transport: false,
            tcp: TcpConfig::default(),
            flow_ids: FlowIds::worker(0, 1),
        }
    }
}

/// What the meter has counted so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeterStats {
    /// Packets metered (fragments included; not those `--sampler hash` passed over, which
    /// `unsampled` counts).
    pub packets: u64,
    pub flows_created: u64,
    pub records_emitted: u64,
    /// Flows evicted because the table was full (reason 5).
    pub flows_evicted: u64,
    pub peak_flows: u64,
    /// Fragments whose datagram's first fragment never came (not in any record).
    pub expired_fragments: u64,
    /// Datagrams whose fragments were all attributed.
    pub assembled_datagrams: u64,
    /// Times every flow was flushed at once (end of input, expire-all).
    pub flush_events: u64,
    /// Flows removed without a record (`qofctl delete-all`, `exit`).
    pub flows_deleted: u64,
    /// Packets of flows `--sampler hash:N` did not choose (not in any record).
    pub unsampled: u64,
}

impl MeterStats {
    /// Add another meter's counts (workers' meters, summed for the process). Peaks add up
    /// too: the sum of each meter's peak bounds the process's.
    pub fn merge(&mut self, o: &MeterStats) {
        self.packets += o.packets;
        self.flows_created += o.flows_created;
        self.records_emitted += o.records_emitted;
        self.flows_evicted += o.flows_evicted;
        self.peak_flows += o.peak_flows;
        self.expired_fragments += o.expired_fragments;
        self.assembled_datagrams += o.assembled_datagrams;
        self.flush_events = self.flush_events.max(o.flush_events);
        self.flows_deleted += o.flows_deleted;
        self.unsampled += o.unsampled;
    }
}

/// What the meter's per-flow state holds now: counts in use and bytes held (pools keep their
/// high-water size). For the operator's status line and for memory accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUse {
    pub flows: usize,
    /// The most flows, TCP states and transport counters ever in memory at once.
    pub peak_flows: usize,
    pub peak_tcp_states: usize,
    pub peak_transport: usize,
    /// Flow table, its index and the per-flow side arrays (MAC addresses, state indexes).
    pub flow_bytes: usize,
    pub tcp_states: usize,
    pub tcp_state_bytes: usize,
    /// Directions with a loss block (taken on a direction's first anomaly).
    pub loss_blocks: usize,
    pub loss_bytes: usize,
    /// Flows with transport counters of their own (most need none: see `meter::transport`).
    pub transport: usize,
    pub transport_bytes: usize,
    /// Flow plugins' states (one per plugin attached to a flow), and the bytes of their
    /// tables and of the TCP streams they read (what a state points to aside).
    pub plugin_states: usize,
    pub peak_plugin_states: usize,
    pub plugin_bytes: usize,
}

impl MemoryUse {
    /// Add another meter's use (peaks add up: see [`MeterStats::merge`]).
    pub fn merge(&mut self, o: &MemoryUse) {
        self.flows += o.flows;
        self.peak_flows += o.peak_flows;
        self.peak_tcp_states += o.peak_tcp_states;
        self.peak_transport += o.peak_transport;
        self.flow_bytes += o.flow_bytes;
        self.tcp_states += o.tcp_states;
        self.tcp_state_bytes += o.tcp_state_bytes;
        self.loss_blocks += o.loss_blocks;
        self.loss_bytes += o.loss_bytes;
        self.transport += o.transport;
        self.transport_bytes += o.transport_bytes;
        self.plugin_states += o.plugin_states;
        self.peak_plugin_states += o.peak_plugin_states;
        self.plugin_bytes += o.plugin_bytes;
    }
}

/// The metering core. Feed it packets in capture order with [`Meter::handle_packet`], drain
/// finished flows with [`Meter::poll_record`], and call [`Meter::flush`] at the end of input.
/// For a stream of packets, [`Lookahead`] wraps it to load each flow's state into cache a few
/// packets before the packet is metered.
///
/// Time is packet time only. It should not go backwards; when it does (merged captures), the
/// packet is still counted and the table's clock simply does not move back.
pub struct Meter {
    cfg: MeterConfig,
    table: FlowTable,
    frags: FragTable,
    out: VecDeque<FlowRecord>,
    /// Flows that have ended (idle expiry, end of input) but are still in the table, with
    /// their end reason: each becomes a record only when [`Meter::poll_record`] asks for it.
    /// A second's expiries or the final flush would otherwise sit in `out` all at once, a
    /// whole record each (hundreds of bytes) where a slot is four. Logically they come
    /// before every record in `out`.
    pending: VecDeque<(Slot, u8)>,
    /// The flows the end of input ended, still in the table: they come after every record in
    /// `out`. Eight bytes a flow, as `pending` would take, but one list made at once.
    flushing: FlushOrder,
    next_flow_id: u64,
    clock_ms: u64,
    macs: Vec<[[u8; 6]; 2]>,
    /// By slot, when transport counters or TCP measurements are on: the index of the flow's
    /// TCP state (TCP flows, when TCP is measured) or its transport counters (others: see
    /// [`TransportTable`]), or [`pool::NONE`]. Four bytes per flow, so the array stays in cache.
    ext: Vec<u32>,
    transport: TransportTable,
    tcp: Option<TcpTable>,
    /// The enabled flow plugins (usually none).
    plugins: PluginSet,
    stats: MeterStats,
    /// Reused buffer for the slots of flows found idle.
    scratch: Vec<Slot>,
    /// The next second of packet time at which idle flows are looked for (`expint`).
    next_sweep_sec: u64,
}

impl Meter {
    pub fn new(cfg: MeterConfig) -> Self {
        Self::with_plugins(cfg, PluginSet::default())
    }

    /// A meter whose flows the given plugins extend.
    pub fn with_plugins(cfg: MeterConfig, plugins: PluginSet) -> Self {
        Meter {
            plugins,
            table: FlowTable::new(timeouts::IdlePolicy::new(
                cfg.idle_timeout_ms,
                &cfg.timeouts,
            )),
            frags: FragTable::new(cfg.max_frags),
            out: VecDeque::new(),
            pending: VecDeque::new(),
            flushing: FlushOrder::default(),
            next_flow_id: cfg.flow_ids.first,
            clock_ms: 0,
            macs: Vec::new(),
            ext: Vec::new(),
            transport: TransportTable::default(),
            tcp: cfg.tcp.any().then(|| TcpTable::new(cfg.tcp)),
            stats: MeterStats::default(),
            scratch: Vec::new(),
            next_sweep_sec: 0,
            cfg,
        }
    }

    pub fn config(&self) -> &MeterConfig {
        &self.cfg
    }

    pub fn stats(&self) -> MeterStats {
        MeterStats {
            expired_fragments: self.frags.expired_fragments,
            assembled_datagrams: self.frags.assembled,
            ..self.stats
        }
    }

    /// Flows in memory now.
    pub fn active_flows(&self) -> usize {
        self.table.len()
    }

    /// Memory held by per-flow state, by kind.
    pub fn memory(&self) -> MemoryUse {
        let (tcp_states, loss_blocks) = self.tcp.as_ref().map_or((0, 0), TcpTable::in_use);
        let (tcp_state_bytes, loss_bytes) = self.tcp.as_ref().map_or((0, 0), TcpTable::bytes);
        let (plugin_states, peak_plugin_states, plugin_bytes) = self.plugins.memory();
        MemoryUse {
            flows: self.table.len(),
            peak_flows: self.stats.peak_flows as usize,
            peak_tcp_states: self.tcp.as_ref().map_or(0, TcpTable::peak),
            peak_transport: self.transport.peak(),
            flow_bytes: self.table.bytes()
                + self.macs.capacity() * std::mem::size_of::<[[u8; 6]; 2]>()
                + self.ext.capacity() * std::mem::size_of::<u32>(),
            tcp_states,
            tcp_state_bytes,
            loss_blocks,
            loss_bytes,
            transport: self.transport.in_use(),
            transport_bytes: self.transport.bytes(),
            plugin_states,
            peak_plugin_states,
            plugin_bytes,
        }
    }

    /// The next finished flow, oldest first. Drain after every call that feeds the meter:
    /// records are then made one at a time, and memory holds no backlog of them.
    #[inline]
    pub fn poll_record(&mut self) -> Option<FlowRecord> {
        match self.next_record()? {
            NextRecord::Close(slot, reason) => Some(self.close_record(slot, reason)),
            NextRecord::Queued => self.out.pop_front(),
        }
    }

    /// [`Meter::poll_record`] handing the record to `f` where it was made instead of returning
    /// it: a record is 456 bytes, and returned it was copied once more on its way to the
    /// exporter.
    #[inline]
    pub fn with_next_record<R>(&mut self, f: impl FnOnce(&FlowRecord) -> R) -> Option<R> {
        match self.next_record()? {
            NextRecord::Close(slot, reason) => Some(f(&self.close_record(slot, reason))),
            NextRecord::Queued => {
                let r = self.out.front().map(f);
                self.out.pop_front();
                r
            }
        }
    }

    /// Where the next record comes from: a flow to end now (the lines of those after it asked
    /// for), or the front of `out`.
    #[inline]
    fn next_record(&mut self) -> Option<NextRecord> {
        if let Some((slot, reason)) = self.pending.pop_front() {
            let next = |k: usize| self.pending.get(k).map(|&(s, _)| s);
            self.prefetch_closes(next(CLOSE_AHEAD), next(CLOSE_AHEAD / 2));
            return Some(NextRecord::Close(slot, reason));
        }
        if !self.out.is_empty() {
            return Some(NextRecord::Queued);
        }
        let slot = self.flushing.pop()?;
        let next = |k: usize| self.flushing.after_next(k);
        self.prefetch_closes(next(CLOSE_AHEAD), next(CLOSE_AHEAD / 2));
        Some(NextRecord::Close(slot, end_reason::FORCED))
    }

    /// Flows ended and records made that [`Meter::poll_record`] has not given yet (the flush
    /// of the end of input aside).
    #[inline]
    pub fn records_ready(&self) -> usize {
        self.pending.len() + self.out.len()
    }

    /// Whether [`Meter::poll_record`] has a record to give (the flush's included): asked
    /// after every packet, which nearly always ends no flow, so that the call to poll for
    /// records is made only when there are some.
    #[inline]
    pub fn records_waiting(&self) -> bool {
        !self.pending.is_empty() || !self.out.is_empty() || !self.flushing.is_empty()
    }

    /// Records are made from flows in no order the cache knows (idle in the same second, or
    /// oldest first at the end of input): while one is made, ask for the lines of the flow
    /// [`CLOSE_AHEAD`] records on, and for the index line of the one half as far on (its key
    /// read from lines asked for before).
    #[inline]
    fn prefetch_closes(&self, far: Option<Slot>, near: Option<Slot>) {
        if let Some(s) = far {
            self.table.prefetch_slot(s);
        }
        if let Some(s) = near {
            self.table.prefetch_removal(s);
        }
    }

    /// Turn every pending flow into a record now, ahead of those already in `out` (and flushed
    /// ones after them): before a packet could join one of them, or the table needs their room.
    #[inline]
    fn settle(&mut self) {
        if !self.pending.is_empty() || !self.flushing.is_empty() {
            self.settle_all();
        }
    }

    #[inline(never)]
    fn settle_all(&mut self) {
        while let Some((slot, reason)) = self.pending.pop_back() {
            let rec = self.close_record(slot, reason);
            self.out.push_front(rec);
        }
        while let Some(slot) = self.flushing.pop() {
            let rec = self.close_record(slot, end_reason::FORCED);
            self.out.push_back(rec);
        }
    }

    /// Account one decoded packet captured at `ts`.
    pub fn handle_packet(&mut self, ts: Timestamp, pkt: &Packet) {
        if self.sampled_out(pkt) {
            return;
        }
        self.meter_packet(ts, pkt, None, None);
    }

    /// `--sampler hash:N` passes over the packet (counted): its key is not chosen. For an
    /// unfragmented packet only: a fragment's key is known once its datagram's first fragment
    /// is (see `handle_fragment`). [`Lookahead`]'s caller asks before it queues a packet.
    #[inline]
    pub fn sampled_out(&mut self, pkt: &Packet) -> bool {
        match &self.cfg.flow_sampler {
            Some(s) if pkt.frag.is_none() && !s.keep(&pkt.key) => {
                self.stats.unsampled += 1;
                true
            }
            _ => false,
        }
    }

    /// Account one decoded packet captured at `ts`, with the header facts only plugins use
    /// and the first octets of its transport payload (for the plugins that read payload: see
    /// [`PluginSet::payload`]).
    pub fn handle_packet_with_details(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        details: &Details,
        payload: &[u8],
    ) {
        if self.sampled_out(pkt) {
            return;
        }
        self.meter_packet(ts, pkt, Some((details, payload)), None);
    }

    /// The enabled plugins.
    pub fn plugins(&self) -> &PluginSet {
        &self.plugins
    }

    /// Meter a packet; `extra` is its details and payload prefix for the plugins, `look` its
    /// key's hash and the slot its look-ahead found, if any.
    #[inline]
    fn meter_packet(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        extra: Extra<'_>,
        look: Option<(u64, Slot)>,
    ) {
        self.stats.packets += 1;
        self.settle();
        self.advance(ts);
        match pkt.frag {
            Some(frag) => self.handle_fragment(ts, pkt, extra, frag),
            None => self.account(ts, pkt, extra, None, look),
        }
    }

    /// Packet time has reached `now` without a packet (live capture idle ticks): expire flows.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.settle();
        self.advance(now);
    }

    /// End of input: every flow in memory ends (reason forced), oldest first.
    pub fn flush(&mut self) {
        self.expire_all();
        self.frags.clear();
    }

    /// Every flow in memory ends now (reason forced, oldest first), as at the end of input,
    /// but metering goes on (`qofctl expire-all`): fragments awaiting their first keep
    /// waiting, and a later packet of an ended flow starts a new one.
    pub fn expire_all(&mut self) {
        self.settle();
        // (Records still in `out`, if the caller has not drained it, come first: see
        // `poll_record`.)
        self.flushing = FlushOrder::of(&self.table);
        self.stats.flush_events += 1;
    }

    /// Remove every flow in memory without a record (`qofctl delete-all`); returns how many.
    /// Records of flows that had already ended stay due.
    pub fn delete_all(&mut self) -> u64 {
        self.settle();
        let slots = self.table.slots();
        for &slot in &slots {
            // (The record is made to free the flow's state, TCP and plugins' alike, as when
            // it ends, and dropped.)
            drop(self.close_record(slot, end_reason::FORCED));
            self.stats.records_emitted -= 1;
        }
        self.stats.flows_deleted += slots.len() as u64;
        slots.len() as u64
    }

    /// The flows in memory, oldest first (`qofctl dump-flows`): what their records would
    /// say if they ended now.
    pub fn flows(&self) -> Vec<FlowSummary> {
        let mut v: Vec<FlowSummary> = self
            .table
            .slots()
            .into_iter()
            .map(|s| FlowSummary::of(&to_record(self.table.flow(s), self.table.flow_id(s), 0)))
            .collect();
        v.sort_unstable_by_key(|f| (f.start, f.flow_id));
        v
    }

    /// Datagrams whose first fragment is awaited (the fragment table's use).
    pub fn pending_fragments(&self) -> usize {
        self.frags.len()
    }

    // (Inlined: called for every packet; a second caller, the idle tick of live capture,
    // made the compiler call it out of line, about 17 instructions per packet more.)
    #[inline(always)]
    fn advance(&mut self, ts: Timestamp) {
        let now_ms = ts.millis();
        if now_ms <= self.clock_ms {
            return;
        }
        let new_second = now_ms / 1000 != self.clock_ms / 1000;
        self.clock_ms = now_ms;
        if new_second {
            self.sweep(now_ms);
        }
    }

    /// A new second of packet time: end the flows past their idle timeout (every `expint`
    /// seconds) and forget stale fragments.
    #[inline(never)]
    fn sweep(&mut self, now_ms: u64) {
        let now_sec = now_ms / 1000;
        if now_sec < self.next_sweep_sec {
            return;
        }
        let every = self.cfg.timeouts.expint_secs.max(1);
        self.next_sweep_sec = (now_sec / every + 1) * every;
        let mut expired = std::mem::take(&mut self.scratch);
        self.table.expire_idle(now_ms, |slot| expired.push(slot));
        for &slot in &expired {
            let reason = self.table.policy().idle_reason(self.table.flow(slot));
            self.end_later(slot, reason);
        }
        expired.clear();
        self.scratch = expired;
        self.frags.expire(now_ms);
    }

    /// Ask for the cache lines of the TCP state (for a TCP packet) or the transport counters
    /// of the flow in `slot`, if it has them.
    #[inline]
    fn prefetch_state(&self, slot: Slot, tcp_packet: bool) {
        let Some(&x) = self.ext.get(slot as usize) else {
            return;
        };
        match &self.tcp {
            Some(tcp) if tcp_packet => tcp.prefetch(x),
            _ => {
                if let Some(t) = self.transport.get(x) {
                    prefetch::line(t);
                }
            }
        }
    }

    /// Meter a packet (a fragment arrives here with its datagram's key, ports included);
    /// `held` adds fragments that arrived before their datagram's first fragment.
    fn account(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        extra: Extra<'_>,
        held: Option<Held>,
        look: Option<(u64, Slot)>,
    ) {
        let now_ms = ts.millis();
        let (hash, candidate) = look.unwrap_or_else(|| (self.table.hash(&pkt.key), table::NIL));
        let mut found = self.table.lookup(hash, candidate, &pkt.key, |slot| {
            self.prefetch_state(slot, pkt.tcp.is_some());
        });
        if let Some((slot, _)) = found {
            if !self.pending.is_empty() && self.pending.iter().any(|&(s, _)| s == slot) {
                // Its flow expired on this very packet's clock tick: it ends first, as if
                // swept before the packet came.
                self.settle();
                found = None;
            }
        }
        let (slot, side) = match found {
            Some((slot, side)) => self.check_timeouts(slot, side, now_ms, pkt),
            None => (self.new_flow(ts, pkt, None), Side::Forward),
        };
        let mut reverse = side == Side::Reverse;
        let mut slot = slot;
        let mut plugin_end = false;
        if !self.plugins.is_empty() {
            (slot, reverse, plugin_end) = self.run_plugins(ts, pkt, extra, slot, reverse);
        }
        let i = slot as usize;
        // (The packet's key has its flow's protocol: the flow was found by it.)
        let tcp_flow = pkt.key.proto == crate::key::proto::TCP;
        if self.cfg.track_transport && !(tcp_flow && self.tcp.is_some()) {
            // Before the flow counts the packet: implicit counters that stop fitting are
            // filled from the flow's counts without it.
            let f = self.table.flow(slot);
            let dirs = [&f.fwd, &f.rev];
            self.transport
                .packet(&mut self.ext[i], dirs, pkt, reverse, held.is_some());
        }
        let ended = self.table.flow_mut(slot).add_packet(ts, pkt, reverse);
        if let Some(h) = held {
            let f = self.table.flow_mut(slot);
            let d = if reverse { &mut f.rev } else { &mut f.fwd };
            add_held(d, &h);
        }
        if let (Some(tcp), Some(info), true) = (&mut self.tcp, &pkt.tcp, tcp_flow) {
            let start_us = self.table.flow(slot).start_ms() * 1000;
            let now_us = ts.micros().saturating_sub(start_us);
            tcp.packet(
                self.ext[i],
                &TcpPacket {
                    tcp: info,
                    payload_len: pkt.payload_len,
                    ecn: pkt.ecn,
                    dir: usize::from(reverse),
                    now_us: u32::try_from(now_us).unwrap_or(u32::MAX),
                },
            );
        }
        if ended || plugin_end {
            if !plugin_end && self.cfg.aggregated {
                // An aggregate is not a connection: it goes on.
                return;
            }
            // A connection that ended may linger (`tcp.rst`, `tcp.fin`): its later packets
            // join its record until its linger timeout passes.
            if plugin_end || !self.linger(slot) {
                // Nothing follows in this call, and the next one settles it first: the record
                // can be made when it is polled, straight into the caller's hands.
                self.end_later(slot, end_reason::END_OF_FLOW);
            }
        }
    }

    /// Keep a TCP flow whose connection has just ended, if its linger timeout says so, on the
    /// wheel at its new (shorter) deadline. False when it must end now.
    #[inline(never)]
    fn linger(&mut self, slot: Slot) -> bool {
        if !self.table.policy().lingers(self.table.flow(slot)) {
            return false;
        }
        self.table.reschedule(slot);
        true
    }

    /// Show the plugins a packet of the flow in `slot` before the flow counts it: attach them
    /// to a new flow, or end the flow before the packet if one of them asks (the packet then
    /// starts a continuation, oriented by it, with the same flowId). Returns the slot and
    /// direction the packet is counted in, and whether a plugin ends the flow after it.
    #[inline(never)]
    fn run_plugins(
        &mut self,
        ts: Timestamp,
        pkt: &Packet,
        extra: Extra<'_>,
        slot: Slot,
        reverse: bool,
    ) -> (Slot, bool, bool) {
        let f = self.table.flow(slot);
        let fresh = f.fwd.packets == 0 && f.rev.packets == 0;
        let flow_id = self.table.flow_id(slot);
        const NO_DETAILS: Details = Details {
            payload_off: 0,
            tos: 0,
            ip_flags: 0,
            ip_options: 0,
            tcp_option_kinds: 0,
            ethertype: 0,
            vlan_tci: [0; 2],
            vlan_tags: 0,
            mpls_top: 0,
        };
        let (details, payload) = extra.unwrap_or((&NO_DETAILS, &[]));
        let mut view = PacketView {
            ts,
            pkt,
            details,
            reverse,
            payload,
            stream: &[],
        };
        let mut slot = slot;
        if fresh {
            self.plugins.attach(slot, &view);
        } else if self.plugins.split_before(slot, &view) {
            self.close(slot, end_reason::END_OF_FLOW);
            let cont = (Flow::new(pkt.key, ts, 0), flow_id);
            slot = self.new_flow(ts, pkt, Some(cont));
            view.reverse = false;
            self.plugins.attach(slot, &view);
        }
        let end = self.plugins.packet(slot, &view);
        (slot, view.reverse, end)
    }

    /// Flows are connections (no aggregation): a SYN may start a new one.
    #[cold]
    fn connections(&self) -> bool {
        !self.cfg.aggregated
    }

    /// Apply the active and idle timeouts and counter limits to an existing flow before a new
    /// packet joins it; returns the slot the packet belongs to (a continuation when the old
    /// flow was closed).
    fn check_timeouts(
        &mut self,
        slot: Slot,
        side: Side,
        now_ms: u64,
        pkt: &Packet,
    ) -> (Slot, Side) {
        let f = self.table.flow(slot);
        let reverse = side == Side::Reverse;
        let opening = pkt.tcp.is_some_and(|t| t.flags & 0x12 == 0x02);
        let d = if reverse { &f.rev } else { &f.fwd };
        let only_syns = d.packets > 0 && d.initial_flags == 0x02 && d.union_flags & !0x02 == 0;
        if opening && !only_syns && self.connections() {
            // A SYN on ports whose flow has carried more than SYNs in this direction is a new
            // connection (stray last packets of the old one, or a port reused before the idle
            // timeout): that record ends, and the SYN starts a new flow. (A repeated SYN of a
            // handshake in progress stays in its flow.)
            self.close(slot, end_reason::END_OF_FLOW);
            let ts = Timestamp::from_millis(now_ms);
            return (self.new_flow(ts, pkt, None), Side::Forward);
        }
        let idle_for = now_ms.saturating_sub(f.end_ms());
        // (The shortest timeout first: a flow within it, as nearly every one is, needs no
        // lookup of its own.)
        if idle_for > self.table.policy().min_ms() && idle_for > self.table.idle_ms(slot) {
            // Idle, and the wheel has not swept it yet: it ends; the packet starts a new flow.
            let reason = self.table.policy().idle_reason(f);
            self.close(slot, reason);
            let ts = Timestamp::from_millis(now_ms);
            return (self.new_flow(ts, pkt, None), Side::Forward);
        }
        let too_long = now_ms.saturating_sub(f.start_ms()) > self.cfg.active_timeout_ms;
        if too_long || f.would_overflow(reverse, pkt.ip_len, self.cfg.silk_compatible) {
            // Continue under the same flowId. Like QoF, the continuation is oriented by the
            // packet that starts it, so every record's forward direction has packets.
            let flow_id = self.table.flow_id(slot);
            self.close(slot, end_reason::ACTIVE);
            let flags = if self.cfg.silk_compatible {
                end_reason::CONTINUATION
            } else {
                0
            };
            let ts = Timestamp::from_millis(now_ms);
            let cont = (Flow::new(pkt.key, ts, flags), flow_id);
            return (self.new_flow(ts, pkt, Some(cont)), Side::Forward);
        }
        (slot, side)
    }

    /// Start a flow for `pkt` (or the given continuation), evicting if the table is full.
    fn new_flow(&mut self, ts: Timestamp, pkt: &Packet, continuation: Option<(Flow, u64)>) -> Slot {
        // "No limit" still stops at the slots a table can address (billions of flows).
        let limit = if self.cfg.max_flows == 0 {
            table::MAX_SLOTS
        } else {
            self.cfg.max_flows.min(table::MAX_SLOTS)
        };
        if self.table.len() >= limit && !self.pending.is_empty() {
            self.settle();
        }
        if self.table.len() >= limit {
            if let Some(victim) = self.table.take_least_recent() {
                self.stats.flows_evicted += 1;
                self.close(victim, end_reason::LACK_OF_RESOURCES);
            }
        }
        let (flow, flow_id) = continuation.unwrap_or_else(|| {
            let id = self.next_flow_id;
            self.next_flow_id += self.cfg.flow_ids.step;
            (Flow::new(pkt.key, ts, 0), id)
        });
        let forward = flow.key == pkt.key;
        let slot = self.table.insert(flow, flow_id);
        self.stats.flows_created += 1;
        self.stats.peak_flows = self.stats.peak_flows.max(self.table.len() as u64);
        let i = slot as usize;
        if self.cfg.track_macs {
            grow_to(&mut self.macs, i, [[0; 6]; 2]);
            // MACs of the first forward packet; a continuation that starts with a reverse
            // packet records them swapped back into forward orientation.
            self.macs[i] = if forward {
                [pkt.src_mac, pkt.dst_mac]
            } else {
                [pkt.dst_mac, pkt.src_mac]
            };
        }
        if self.cfg.track_transport || self.tcp.is_some() {
            grow_to(&mut self.ext, i, pool::NONE);
            self.ext[i] = match &mut self.tcp {
                Some(tcp) if pkt.key.proto == crate::key::proto::TCP => tcp.attach(),
                _ if self.cfg.track_transport => self.transport.start(pkt),
                _ => pool::NONE,
            };
        }
        slot
    }

    fn handle_fragment(&mut self, ts: Timestamp, pkt: &Packet, extra: Extra<'_>, frag: FragInfo) {
        let now_ms = ts.millis();
        let fk = FragKey::of(&pkt.key, frag.id);
        let share = pkt.ip_len.saturating_sub(pkt.ip_header_len);
        let first = frag.offset == 0;
        let d = self.frags.note(fk, now_ms, frag.offset, share, frag.more);
        // `--sampler hash`: the datagram's flow decides, once its first fragment has shown it;
        // fragments held for it go with it.
        let key = if first {
            Some(d.key.unwrap_or(pkt.key))
        } else {
            d.key
        };
        if let (Some(s), Some(k)) = (&self.cfg.flow_sampler, key) {
            if !s.keep(&k) {
                let held = std::mem::take(&mut d.held);
                d.key.get_or_insert(k);
                // (Counted as metered when they came: they were not.)
                let n = 1 + u64::from(held.packets);
                self.stats.unsampled += n;
                self.stats.packets = self.stats.packets.saturating_sub(n);
                if self.frags_complete(&fk) {
                    self.frags.finish(&fk);
                }
                return;
            }
        }
        if first && d.key.is_none() {
            d.key = Some(pkt.key);
            let held = std::mem::take(&mut d.held);
            let held = (held.packets > 0).then_some(held);
            self.account(ts, pkt, extra, held, None);
        } else if let Some(key) = d.key {
            let p = Packet {
                key,
                tcp: None,
                ..*pkt
            };
            // (A later fragment carries no transport header: its details stay, no payload.)
            let extra = extra.map(|(d, _)| (d, &[][..]));
            self.account(ts, &p, extra, None, None);
        } else {
            let h = &mut d.held;
            h.min_ttl = if h.packets == 0 {
                pkt.ttl
            } else {
                h.min_ttl.min(pkt.ttl)
            };
            h.max_ttl = h.max_ttl.max(pkt.ttl);
            h.packets += 1;
            h.octets += u64::from(pkt.ip_len);
        }
        if self.frags_complete(&fk) {
            self.frags.finish(&fk);
        }
    }

    fn frags_complete(&self, fk: &FragKey) -> bool {
        self.frags.get(fk).is_some_and(|d| d.complete())
    }

    /// End a flow whose record can wait for [`Meter::poll_record`] (nothing has been queued
    /// behind it that it must precede).
    fn end_later(&mut self, slot: Slot, reason: u8) {
        self.table.prefetch_meta(slot);
        if self.out.is_empty() {
            self.pending.push_back((slot, reason));
        } else {
            // The caller has not drained `out`: keep the order by queueing the record itself.
            self.close(slot, reason);
        }
    }

    /// End a flow: remove it from the table and queue its record.
    fn close(&mut self, slot: Slot, reason: u8) {
        let rec = self.close_record(slot, reason);
        self.out.push_back(rec);
    }

    /// Remove a flow from the table and make its record.
    fn close_record(&mut self, slot: Slot, reason: u8) -> FlowRecord {
        let i = slot as usize;
        let (f, flow_id) = self.table.remove(slot);
        let mut rec = to_record(&f, flow_id, reason);
        if self.cfg.track_macs {
            [rec.src_mac, rec.dst_mac] = self.macs[i];
        }
        if self.cfg.track_transport || self.tcp.is_some() {
            let x = std::mem::replace(&mut self.ext[i], pool::NONE);
            let tcp_flow = f.key.proto == crate::key::proto::TCP;
            let payload = match &mut self.tcp {
                Some(tcp) if tcp_flow => tcp.detach(x).map(|(dirs, rtt, payload)| {
                    [rec.fwd.tcp, rec.rev.tcp] = dirs;
                    rec.rtt = rtt;
                    payload
                }),
                _ => self.transport.finish(x, [&f.fwd, &f.rev]),
            };
            if let (true, Some([fwd, rev])) = (self.cfg.track_transport, payload) {
                rec.fwd.transport_packets = fwd.packets.into();
                rec.fwd.transport_octets = fwd.octets();
                rec.rev.transport_packets = rev.packets.into();
                rec.rev.transport_octets = rev.octets();
            }
        }
        if !self.plugins.is_empty() {
            // (The plugins see a summary, not the record: a record whose address escapes to
            // a call is built on the stack and copied out, a copy of every record even when
            // no plugin is enabled.)
            let summary = FlowSummary::of(&rec);
            rec.ext = self.plugins.export(slot, &summary);
        }
        self.stats.records_emitted += 1;
        rec
    }
}

/// See [`Meter::next_record`].
enum NextRecord {
    /// End this flow, for this reason.
    Close(Slot, u8),
    /// The record at the front of `out`.
    Queued,
}

/// What a packet brings for the plugins: its header details and payload prefix (`None` when
/// the meter has no plugins).
type Extra<'a> = Option<(&'a Details, &'a [u8])>;

/// Make `v[i]` exist (filled with `fill` if new). A side array grows by a fixed step, like
/// the flow slab beside it, rather than doubling: a doubled array's unused half would cost up
/// to its full size again.
fn grow_to<T: Clone>(v: &mut Vec<T>, i: usize, fill: T) {
    const STEP: usize = 4096;
    if i < v.len() {
        return;
    }
    if v.capacity() <= i {
        v.reserve_exact(i + 1 - v.len() + STEP);
    }
    v.resize(i + 1, fill);
}

fn add_held(d: &mut Dir, h: &Held) {
    d.min_ttl = d.min_ttl.min(h.min_ttl);
    d.max_ttl = d.max_ttl.max(h.max_ttl);
    d.packets = d.packets.saturating_add(h.packets);
    d.octets = d.octets.saturating_add(h.octets);
}

fn to_record(f: &Flow, flow_id: u64, reason: u8) -> FlowRecord {
    let start_ms = f.start_ms();
    FlowRecord {
        key: f.key,
        flow_id,
        start: Timestamp::from_millis(start_ms),
        end: Timestamp::from_millis(f.end_ms()),
        rev_start: (f.rev_off_ms != NO_REVERSE)
            .then(|| Timestamp::from_millis(start_ms + u64::from(f.rev_off_ms))),
        end_reason: (f.reason_flags() & end_reason::CONTINUATION) | reason,
        fwd: f.fwd.stats(),
        rev: f.rev.stats(),
        src_mac: [0; 6],
        dst_mac: [0; 6],
        rtt: RttStats::default(),
        ext: None,
    }
}

/// Process statistics exported in the `--stats` options record (QoF's statistics template).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Wall-clock time the process started (systemInitTimeMilliseconds).
    pub system_init_millis: u64,
    pub exported_flows: u64,
    /// Packets the meter accepted (packetTotalCount).
    pub packets: u64,
    /// Packets the capture source lost (droppedPacketTotalCount).
    pub dropped: u64,
    /// Packets the decoder ignored (ignoredPacketTotalCount).
    pub ignored: u64,
    /// Packets rejected (notSentPacketTotalCount). qof never rejects packets for time going
    /// backwards; this counts fragments dropped for want of table space.
    pub not_sent: u64,
    /// Flow records the exporter could not deliver (notSentFlowTotalCount): network export.
    pub not_sent_flows: u64,
    pub expired_fragments: u64,
    pub assembled_fragments: u64,
    pub flush_events: u64,
    pub flow_table_peak: u64,
    pub observation_domain: u32,
    /// meanFlowRate / meanPacketRate: per second of packet time, from the first packet to
    /// the last (at least one second), so that a file read in a moment reports the rates of
    /// the traffic it holds, not of the reading.
    pub mean_flow_rate: u32,
    pub mean_packet_rate: u32,
    /// exporterIPv4Address / exporterIPv6Address: the address the records are sent from (a
    /// collector's socket; unspecified for files).
    pub exporter_ipv4: [u8; 4],
    pub exporter_ipv6: [u8; 16],
    /// exportedMessageTotalCount / exportedOctetTotalCount: messages and octets this output
    /// (this collector) has been sent so far, before this record's message.
    pub exported_messages: u64,
    pub exported_octets: u64,
}
