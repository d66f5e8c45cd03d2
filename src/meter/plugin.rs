//! The seam flow plugins plug into: per-flow extensions (ipfixprobe's process plugins).
//!
//! A plugin sees every packet of each flow it attached to, keeps its own state per flow, and
//! at the end of the flow writes the elements it measures into the record. It can stop being
//! called for a flow, drop its state, end the flow after a packet, or end it before a packet
//! and start a new flow with that packet (ipfixprobe's `FLOW_FLUSH` and
//! `FLOW_FLUSH_WITH_REINSERT`).
//!
//! Costs, by design:
//! * no plugin enabled: one predictable branch per packet and per record, nothing per flow;
//! * per enabled plugin: four bytes per flow in memory (the index of its state, by flow
//!   slot), its state only for flows it attached to, and one call per packet of those flows;
//! * a plugin that reads only TCP payload ([`FlowPlugin::FROM_PAYLOAD`]) attaches at a
//!   connection's first payload, told what came before ([`Opening`]): the many TCP flows of a
//!   busy link that never carry any (scans, refused connections, handshakes alone) cost it
//!   neither state nor calls (on the corpus replayed 64 times, this took the application
//!   plugins from 137 MiB of state to 19.5 and from 40 % of the default rate to 59 %);
//! * payload is copied (a bounded prefix, into the look-ahead queue) only when an enabled
//!   plugin asked for it.
//!
//! State lives in a slab per plugin, beside the flow table and indexed by the flow's slot, as
//! the TCP state does: typed per plugin (no boxing per flow), the type erased once per plugin
//! by [`Host`]. The meter is the only caller and stays sans-IO: a plugin gets packet time, the
//! decoded headers and payload bytes, never a clock or a socket.

use super::ext::{ExtKey, ExtWriter, Extensions};
use super::stream::Streams;
use super::FlowSummary;
use crate::decode::{Details, Packet};
use crate::time::Timestamp;

/// One packet as a plugin sees it.
#[derive(Clone, Copy, Debug)]
pub struct PacketView<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// The decoded headers.
    pub pkt: &'a Packet,
    /// Header facts the meter itself does not use (ToS, VLAN tags, TCP option kinds, ...).
    pub details: &'a Details,
    /// The packet travels in the flow's reverse direction (from the flow's first packet's
    /// destination).
    pub reverse: bool,
    /// The first octets of the transport payload: what was captured of it, at most
    /// [`PluginSet::payload`] octets; empty when no enabled plugin asked for payload.
    pub payload: &'a [u8],
    /// For a TCP packet, when a plugin asked for streams: the first octets of this
    /// direction's byte stream, in sequence order, this packet's included (see
    /// `meter::stream`). Empty otherwise.
    pub stream: &'a [u8],
}

/// What a plugin wants done after a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on calling for this flow's packets.
    Continue,
    /// Keep the state for the export, but call no more for this flow.
    Done,
    /// Free the state: this plugin has nothing for this flow.
    Drop,
    /// The flow ends after this packet (flowEndReason 3, end of flow detected): a DNS
    /// response completes its transaction.
    EndAfter,
}

/// What a TCP flow's packets before its first payload showed, for a plugin that attaches
/// late ([`FlowPlugin::FROM_PAYLOAD`]): enough to read the flow as if it had seen them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opening {
    /// Packets of the flow before the one attached at.
    pub packets: u32,
    /// By flow direction (forward, reverse): the sequence number of its first SYN.
    pub syn: [Option<u32>; 2],
}

/// A TCP flow's packet that plugins attaching late wait past: a segment without payload.
/// (A flow whose first packet is no segment, its TCP header not read, is offered to every
/// plugin at once, as any other flow.)
#[inline]
fn defers(p: &PacketView<'_>) -> bool {
    p.pkt.tcp.is_some() && p.pkt.payload_len == 0
}

/// The packet ends the wait of plugins attaching late: a TCP segment with payload. (A TCP
/// packet whose header was not read, a later fragment say, does not: those plugins read
/// segments, and would give the flow up on it.)
#[inline]
fn opens(p: &PacketView<'_>) -> bool {
    p.pkt.tcp.is_some() && p.pkt.payload_len > 0
}

/// A per-flow extension. See the [module documentation](self).
pub trait FlowPlugin: Send + 'static {
    /// What the plugin keeps for one flow.
    type State: Send + 'static;

    /// The plugin's number: its bit in [`Extensions::present`] (which decides the record's
    /// template). Unique among the enabled plugins.
    fn number(&self) -> u8;

    /// A flow starts with `p` (it is then passed to [`FlowPlugin::packet`] too). `None`: the
    /// plugin takes no part in this flow, which costs it nothing more.
    fn attach(&mut self, p: &PacketView<'_>) -> Option<Self::State>;

    /// The plugin reads TCP payload only: a TCP flow is offered to it at its first packet
    /// that carries payload (on the wire), through [`FlowPlugin::attach_late`], rather than
    /// at its first packet. Most TCP flows of a busy link never carry any (scans, refused
    /// connections, handshakes alone): such a plugin keeps no state for them and is not
    /// called for their packets. Other flows are attached to at their first packet.
    const FROM_PAYLOAD: bool = false;

    /// A TCP flow carries payload for the first time in `p` (only when
    /// [`FlowPlugin::FROM_PAYLOAD`]): `before` sums up its packets so far, none of which the
    /// plugin saw. `p` is then passed to [`FlowPlugin::packet`] too.
    fn attach_late(&mut self, p: &PacketView<'_>, before: &Opening) -> Option<Self::State> {
        let _ = before;
        self.attach(p)
    }

    /// A TCP flow ended without payload, so a plugin that attaches late never attached to
    /// it (only when [`FlowPlugin::FROM_PAYLOAD`]): write what the plugin says of such a flow,
    /// as [`FlowPlugin::export`] does. False (the default): nothing.
    fn export_unattached(&mut self, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let _ = (flow, out);
        false
    }

    /// One packet of the flow (the first included), before the flow counts it.
    fn packet(&mut self, state: &mut Self::State, p: &PacketView<'_>) -> Verdict;

    /// Asked of every plugin of the flow before any sees the packet: true when `p` must start
    /// a new flow, the current one ending before it (flowEndReason 3). The new flow keeps the
    /// flowId, is oriented by `p` and is attached to afresh. Only plugins whose
    /// [`FlowPlugin::SPLITS`] is true are asked.
    fn split_before(&mut self, state: &mut Self::State, p: &PacketView<'_>) -> bool {
        let _ = (state, p);
        false
    }

    /// The plugin may answer true in [`FlowPlugin::split_before`].
    const SPLITS: bool = false;

    /// The plugin reads [`PacketView::stream`]. A flow's stream buffer is freed as soon as
    /// none of its plugins that read streams is still being called for it.
    const READS_STREAM: bool = false;

    /// A plugin that reads streams and is still called for the flow may still want its
    /// stream (asked after each packet): false once it has no more use for it (what it reads
    /// lies past the stream's window) while it still reads packets. Once every plugin of the
    /// flow says so the buffer is freed, and `PacketView::stream` stays empty for the flow.
    fn wants_stream(&self, state: &Self::State) -> bool {
        let _ = state;
        true
    }

    /// The flow has ended (`flow` sums it up): write the elements into `out`. False: the
    /// plugin has nothing for this flow, and the record's template leaves its elements out.
    fn export(&mut self, state: Self::State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool;
}

/// A plugin with its per-flow state, type-erased: what the meter holds.
pub trait Hosted: Send {
    fn number(&self) -> u8;
    fn splits(&self) -> bool;
    /// Offer the plugin a new flow; true when it attached (keeps state for the flow).
    fn attach(&mut self, slot: u32, p: &PacketView<'_>) -> bool;
    /// The plugin is offered TCP flows at their first payload ([`FlowPlugin::FROM_PAYLOAD`]).
    fn attaches_late(&self) -> bool;
    /// Offer the plugin a TCP flow at its first payload; true when it attached.
    fn attach_late(&mut self, slot: u32, p: &PacketView<'_>, before: &Opening) -> bool;
    fn packet(&mut self, slot: u32, p: &PacketView<'_>) -> Verdict;
    fn split_before(&mut self, slot: u32, p: &PacketView<'_>) -> bool;
    /// The plugin still reads the stream of the flow in `slot`.
    fn wants_stream(&self, slot: u32) -> bool;
    /// Write the flow's elements and free its state; true when the plugin had something.
    fn export(&mut self, slot: u32, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool;
    /// See [`FlowPlugin::export_unattached`].
    fn export_unattached(&mut self, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool;
    /// States held now, at most at once, and the bytes the plugin's tables take.
    fn memory(&self) -> (usize, usize, usize);
}

/// No state for this slot.
const NONE: u32 = u32::MAX;
/// The flow in this slot no longer keeps a stream: no plugin reads it any more.
const CLOSED: u32 = u32::MAX - 1;

enum Entry<S> {
    Live {
        state: S,
        done: bool,
    },
    /// A free entry, linking the next free one ([`NONE`] ends the list).
    Free(u32),
}

/// A plugin, the index of each flow's state by slot, and the states.
pub struct Host<P: FlowPlugin> {
    plugin: P,
    index: Vec<u32>,
    states: Vec<Entry<P::State>>,
    free: u32,
    live: usize,
    peak: usize,
}

impl<P: FlowPlugin> Host<P> {
    pub fn new(plugin: P) -> Self {
        Host {
            plugin,
            index: Vec::new(),
            states: Vec::new(),
            free: NONE,
            live: 0,
            peak: 0,
        }
    }

    /// Take the state of `slot` out (its entry becomes free).
    fn take(&mut self, slot: u32) -> Option<P::State> {
        let i = std::mem::replace(self.index.get_mut(slot as usize)?, NONE);
        let e = self.states.get_mut(i as usize)?;
        match std::mem::replace(e, Entry::Free(self.free)) {
            Entry::Live { state, .. } => {
                self.free = i;
                self.live -= 1;
                Some(state)
            }
            free => {
                *e = free;
                None
            }
        }
    }

    /// Keep `state` (if any) as the state of the flow in `slot`; true when there is one. A
    /// slot is attached to once per flow; a state left over (its flow ended without an
    /// export, which the meter never does) is dropped here rather than leaked.
    fn keep(&mut self, slot: u32, state: Option<P::State>) -> bool {
        drop(self.take(slot));
        let Some(state) = state else {
            return false;
        };
        let entry = Entry::Live { state, done: false };
        let i = match self.free {
            NONE => {
                self.states.push(entry);
                (self.states.len() - 1) as u32
            }
            i => {
                if let Some(e) = self.states.get_mut(i as usize) {
                    if let Entry::Free(next) = *e {
                        self.free = next;
                    }
                    *e = entry;
                }
                i
            }
        };
        super::grow_to(&mut self.index, slot as usize, NONE);
        self.index[slot as usize] = i;
        self.live += 1;
        self.peak = self.peak.max(self.live);
        true
    }
}

impl<P: FlowPlugin> Hosted for Host<P> {
    fn number(&self) -> u8 {
        self.plugin.number()
    }

    fn splits(&self) -> bool {
        P::SPLITS
    }

    fn attach(&mut self, slot: u32, p: &PacketView<'_>) -> bool {
        let state = self.plugin.attach(p);
        self.keep(slot, state)
    }

    fn attaches_late(&self) -> bool {
        P::FROM_PAYLOAD
    }

    fn attach_late(&mut self, slot: u32, p: &PacketView<'_>, before: &Opening) -> bool {
        let state = self.plugin.attach_late(p, before);
        self.keep(slot, state)
    }

    fn packet(&mut self, slot: u32, p: &PacketView<'_>) -> Verdict {
        let i = match self.index.get(slot as usize) {
            Some(&i) if i != NONE => i as usize,
            _ => return Verdict::Continue,
        };
        let verdict = match self.states.get_mut(i) {
            Some(Entry::Live { state, done }) if !*done => {
                let v = self.plugin.packet(state, p);
                if v == Verdict::Done {
                    *done = true;
                }
                v
            }
            _ => return Verdict::Continue,
        };
        if verdict == Verdict::Drop {
            drop(self.take(slot));
        }
        verdict
    }

    fn split_before(&mut self, slot: u32, p: &PacketView<'_>) -> bool {
        if !P::SPLITS {
            return false;
        }
        let Some(&i) = self.index.get(slot as usize) else {
            return false;
        };
        match self.states.get_mut(i as usize) {
            Some(Entry::Live { state, done: false }) => self.plugin.split_before(state, p),
            _ => false,
        }
    }

    fn wants_stream(&self, slot: u32) -> bool {
        if !P::READS_STREAM {
            return false;
        }
        let i = self.index.get(slot as usize).copied().unwrap_or(NONE);
        match self.states.get(i as usize) {
            Some(Entry::Live { state, done: false }) => self.plugin.wants_stream(state),
            _ => false,
        }
    }

    fn export(&mut self, slot: u32, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        match self.take(slot) {
            Some(state) => self.plugin.export(state, flow, out),
            None => false,
        }
    }

    fn export_unattached(&mut self, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        self.plugin.export_unattached(flow, out)
    }

    fn memory(&self) -> (usize, usize, usize) {
        let bytes = self.index.capacity() * std::mem::size_of::<u32>()
            + self.states.capacity() * std::mem::size_of::<Entry<P::State>>();
        (self.live, self.peak, bytes)
    }
}

/// The enabled plugins of one meter, in the order their elements appear in templates.
#[derive(Default)]
pub struct PluginSet {
    plugins: Vec<Box<dyn Hosted>>,
    /// Every element key some template lists, sorted: what plugins' exports keep.
    wanted: Vec<ExtKey>,
    /// Octets of payload the plugins read at most (0: none reads payload).
    payload: usize,
    /// Octets of each TCP direction's stream the plugins read at most (0: none).
    stream_cap: usize,
    streams: Vec<Streams>,
    /// Free entries of `streams`.
    free_streams: Vec<u32>,
    /// The plugins that may split flows (their bits, as in [`FlowPlugins::calls`]).
    splits: u64,
    /// The plugins offered TCP flows at their first payload (their bits; none past the
    /// 63rd).
    late: u64,
    /// What the plugins have of each flow, by flow slot: one entry, read once per packet.
    slots: Vec<FlowPlugins>,
    /// A record's values as its plugins write them, reused from record to record: a record
    /// that no plugin had anything for allocates nothing, and one that had takes only the
    /// room its values need (room for every element any template lists, taken per record,
    /// was a tenth of the plugins' cost on a trace of short flows).
    scratch: Extensions,
}

/// The plugins' bookkeeping for one flow, kept together so that a packet finds it on one
/// cache line (the meter's look-ahead asks for that line before the packet's turn).
#[derive(Clone, Copy, Debug)]
struct FlowPlugins {
    /// Bit *i* set while plugin *i* is attached to the flow and still wants its packets, or
    /// waits for its first payload, so that a packet calls only those (with many plugins
    /// enabled most flows concern few of them: calling each one to learn that it has
    /// nothing cost more than the parsers' own work). Plugins past the 64th are always
    /// called.
    calls: u64,
    /// Bit *i* set while plugin *i* keeps state for the flow (called or done with it), so
    /// that a record asks only those for their values. A plugin that attaches late waits
    /// while its bit is set in `calls` and not here.
    held: u64,
    /// The index of the flow's streams in [`PluginSet::streams`], [`NONE`] or [`CLOSED`].
    stream: u32,
    /// Packets before the first payload (for plugins that attach late).
    packets: u32,
    /// Sequence numbers of each direction's first SYN, when bit 0 (forward) or 1 (reverse)
    /// of `syns` says there was one.
    syn: [u32; 2],
    syns: u8,
}

impl Default for FlowPlugins {
    fn default() -> Self {
        FlowPlugins {
            calls: 0,
            held: 0,
            stream: NONE,
            packets: 0,
            syn: [0; 2],
            syns: 0,
        }
    }
}

impl FlowPlugins {
    /// What came before the first payload, for plugins that attach late.
    fn opening(&self) -> Opening {
        let syn = |d: usize| (self.syns & (1 << d) != 0).then_some(self.syn[d]);
        Opening {
            packets: self.packets,
            syn: [syn(0), syn(1)],
        }
    }

    /// `p` (without payload) is one more packet before the first payload.
    fn note(&mut self, p: &PacketView<'_>) {
        self.packets = self.packets.saturating_add(1);
        let d = usize::from(p.reverse);
        if let Some(tcp) = p.pkt.tcp.filter(|t| t.flags & 0x02 != 0) {
            if self.syns & (1 << d) == 0 {
                self.syns |= 1 << d;
                self.syn[d] = tcp.seq;
            }
        }
    }
}

/// Plugin `i`'s bit in [`FlowPlugins::calls`] (every plugin past the 64th shares the last).
#[inline]
fn bit(i: usize) -> u64 {
    1u64 << i.min(63)
}

/// Plugin `i`'s bit, to clear from a mask: none for plugins past the 63rd, whose shared bit
/// stays set while any of them may still be concerned.
#[inline]
fn own_bit(i: usize) -> u64 {
    if i < 63 {
        1u64 << i
    } else {
        0
    }
}

/// The indices of the plugins whose bits are set in `mask`, in order, among `n` plugins: a
/// packet costs a step per plugin attached to its flow, not per plugin enabled.
#[inline]
fn members(mask: u64, n: usize) -> impl Iterator<Item = usize> {
    let mut rest = mask;
    std::iter::from_fn(move || {
        let b = rest.trailing_zeros() as usize;
        rest &= rest.wrapping_sub(1);
        (b < 64).then_some(b)
    })
    .flat_map(move |b| if b == 63 { b..n } else { b..b + 1 })
}

/// What plugins read of packets: the most payload (octets per packet) and the most of each
/// TCP direction's stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub payload: usize,
    pub stream: usize,
}

impl PluginSet {
    /// `plugins` in template order; `wanted`: the element keys the template lists; `reads`:
    /// the most payload and stream any of them reads.
    pub fn new(plugins: Vec<Box<dyn Hosted>>, mut wanted: Vec<ExtKey>, reads: Reads) -> Self {
        wanted.sort_unstable();
        wanted.dedup();
        PluginSet {
            splits: plugins
                .iter()
                .enumerate()
                .filter(|(_, p)| p.splits())
                .fold(0, |m, (i, _)| m | bit(i)),
            late: plugins
                .iter()
                .enumerate()
                .filter(|(i, p)| *i < 63 && p.attaches_late())
                .fold(0, |m, (i, _)| m | bit(i)),
            plugins,
            wanted,
            // A stream is built from whole segments: their payload must be kept.
            payload: if reads.stream > 0 {
                reads.payload.max(reads.stream.min(usize::from(u16::MAX)))
            } else {
                reads.payload
            },
            stream_cap: reads.stream,
            streams: Vec::new(),
            free_streams: Vec::new(),
            slots: Vec::new(),
            scratch: Extensions::default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// The most payload octets a plugin reads (0: payload is never copied).
    pub fn payload(&self) -> usize {
        self.payload
    }

    /// Ask the memory for the plugins' entry of the flow in `slot` (see `meter::prefetch`).
    #[inline]
    pub(super) fn prefetch(&self, slot: u32) {
        if let Some(e) = self.slots.get(slot as usize) {
            super::prefetch::line(e);
        }
    }

    /// The plugins' entry of the flow in `slot` (a default one past the end).
    #[inline]
    fn slot(&self, slot: u32) -> FlowPlugins {
        self.slots.get(slot as usize).copied().unwrap_or_default()
    }

    #[inline]
    fn slot_mut(&mut self, slot: u32) -> Option<&mut FlowPlugins> {
        self.slots.get_mut(slot as usize)
    }

    pub(super) fn attach(&mut self, slot: u32, p: &PacketView<'_>) {
        // (A TCP flow that opens without payload waits for it, for the plugins that read
        // nothing else.)
        let wait = if defers(p) { self.late } else { 0 };
        let mut calls = wait;
        for (i, h) in self.plugins.iter_mut().enumerate() {
            if wait & bit(i) == 0 && h.attach(slot, p) {
                calls |= bit(i);
            }
        }
        super::grow_to(&mut self.slots, slot as usize, FlowPlugins::default());
        let e = &mut self.slots[slot as usize];
        // (Its stream was freed with the flow before.)
        *e = FlowPlugins {
            calls,
            held: calls & !wait,
            ..FlowPlugins::default()
        };
    }

    /// The plugins waiting for the first payload of a flow.
    #[inline]
    fn waiting(&self, e: &FlowPlugins) -> u64 {
        e.calls & !e.held & self.late
    }

    /// `p` is the first payload of the flow in `slot`: the plugins waiting for it are
    /// offered the flow, and its stream (if plugins read streams) learns of the SYNs it did
    /// not keep while nobody read it.
    #[cold]
    fn attach_waiting(&mut self, slot: u32, p: &PacketView<'_>, waiting: u64) {
        let before = self.slot(slot).opening();
        let mut gone = 0u64;
        for i in members(waiting, self.plugins.len()) {
            if !self.plugins[i].attach_late(slot, p, &before) {
                gone |= own_bit(i);
            }
        }
        if let Some(e) = self.slot_mut(slot) {
            e.calls &= !gone;
            e.held |= waiting & !gone;
        }
        if self.stream_cap > 0 && self.stream_open(slot) && waiting & !gone != 0 {
            let i = self.stream_entry(slot);
            for (d, syn) in before.syn.into_iter().enumerate() {
                if let Some(seq) = syn {
                    self.streams[i].push(self.stream_cap, d == 1, seq, true, &[]);
                }
            }
        }
    }

    /// True when some plugin wants `p` to start a new flow.
    pub(super) fn split_before(&mut self, slot: u32, p: &PacketView<'_>) -> bool {
        if self.splits == 0 {
            return false;
        }
        let e = self.slot(slot);
        let asked = e.calls & self.splits & !self.waiting(&e);
        let n = self.plugins.len();
        members(asked, n).any(|i| self.plugins[i].split_before(slot, p))
    }

    /// Plugins in `calls` see `p`; a plugin done with the flow (or dropping its state) is
    /// not called again for it. True when one of them ends the flow after `p`.
    fn call(
        plugins: &mut [Box<dyn Hosted>],
        e: Option<&mut FlowPlugins>,
        slot: u32,
        calls: u64,
        p: &PacketView<'_>,
    ) -> bool {
        let mut end = false;
        let (mut gone, mut dropped) = (0u64, 0u64);
        let n = plugins.len();
        for i in members(calls, n) {
            match plugins[i].packet(slot, p) {
                Verdict::EndAfter => end = true,
                Verdict::Done => gone |= own_bit(i),
                Verdict::Drop => {
                    gone |= own_bit(i);
                    dropped |= own_bit(i);
                }
                Verdict::Continue => {}
            }
        }
        if let (Some(e), true) = (e, gone != 0) {
            e.calls &= !gone;
            e.held &= !dropped;
        }
        end
    }

    /// Every plugin sees `p` (with its direction's stream, for TCP when streams are read);
    /// true when one of them ends the flow after it.
    pub(super) fn packet(&mut self, slot: u32, p: &PacketView<'_>) -> bool {
        let e = self.slot(slot);
        let mut calls = e.calls;
        let waiting = self.waiting(&e);
        if waiting != 0 {
            if opens(p) {
                self.attach_waiting(slot, p, waiting);
                calls = self.slot(slot).calls;
            } else {
                if let Some(e) = self.slot_mut(slot) {
                    e.note(p);
                }
                calls &= !waiting;
                if calls == 0 {
                    // Only waiting plugins: nothing to call, and a stream only once the
                    // payload comes (its SYNs are noted).
                    return false;
                }
            }
        }
        if calls == 0 {
            // No plugin attached, or each is done with the flow: its stream (if any) goes.
            if self.stream_cap > 0 {
                self.close_stream(slot);
            }
            return false;
        }
        let end;
        match (self.stream_cap, p.pkt.tcp) {
            (cap, Some(tcp)) if cap > 0 && self.stream_open(slot) => {
                let i = self.stream_entry(slot);
                let syn = tcp.flags & 0x02 != 0;
                let stream = self.streams[i].push(cap, p.reverse, tcp.seq, syn, p.payload);
                let view = PacketView { stream, ..*p };
                let e = self.slots.get_mut(slot as usize);
                end = Self::call(&mut self.plugins, e, slot, calls, &view);
                let e = self.slot(slot);
                let waiting = self.waiting(&e);
                let n = self.plugins.len();
                let wants = waiting != 0
                    || members(e.calls & !waiting, n).any(|i| self.plugins[i].wants_stream(slot));
                if !wants {
                    // Nobody reads this flow's stream any more: its buffer goes now, not
                    // with the flow (thousands of long TCP flows would each hold one).
                    self.close_stream(slot);
                }
            }
            _ => {
                let e = self.slots.get_mut(slot as usize);
                end = Self::call(&mut self.plugins, e, slot, calls, p);
            }
        }
        end
    }

    /// The flow in `slot` still keeps its stream (or has not started one).
    fn stream_open(&self, slot: u32) -> bool {
        self.slot(slot).stream != CLOSED
    }

    /// The index in `streams` of the flow in `slot`, taken when first needed.
    fn stream_entry(&mut self, slot: u32) -> usize {
        let at = self.slot(slot).stream;
        if at != NONE && at != CLOSED {
            return at as usize;
        }
        let i = match self.free_streams.pop() {
            Some(i) => i,
            None => {
                self.streams.push(Streams::default());
                (self.streams.len() - 1) as u32
            }
        };
        super::grow_to(&mut self.slots, slot as usize, FlowPlugins::default());
        self.slots[slot as usize].stream = i;
        i as usize
    }

    /// Free the stream buffer of the flow in `slot`, if it holds one, and keep it from taking
    /// another (no plugin of the flow reads it any more).
    fn close_stream(&mut self, slot: u32) {
        let at = self.slot(slot).stream;
        if at != NONE && at != CLOSED {
            self.free_stream(slot);
            self.slots[slot as usize].stream = CLOSED;
        }
    }

    /// Free the streams of the flow in `slot`, if it has any.
    fn free_stream(&mut self, slot: u32) {
        let Some(e) = self.slot_mut(slot) else {
            return;
        };
        let i = std::mem::replace(&mut e.stream, NONE);
        if i == CLOSED || i == NONE {
            return;
        }
        if let Some(s) = self.streams.get_mut(i as usize) {
            *s = Streams::default();
            self.free_streams.push(i);
        }
    }

    /// The values of every plugin attached to the flow in `slot`, freeing their state.
    pub(super) fn export(&mut self, slot: u32, flow: &FlowSummary) -> Option<Box<Extensions>> {
        if self.stream_cap > 0 {
            self.free_stream(slot);
        }
        let e = self.slot(slot);
        let (held, waiting) = (e.held, self.waiting(&e));
        if let Some(e) = self.slot_mut(slot) {
            e.calls = 0;
            e.held = 0;
        }
        let ext = &mut self.scratch;
        ext.clear();
        if held | waiting == 0 {
            return None;
        }
        let n = self.plugins.len();
        for i in members(held | waiting, n) {
            let h = &mut self.plugins[i];
            let number = h.number();
            let mut out = ExtWriter::new(ext, &self.wanted);
            let wrote = if waiting & bit(i) != 0 {
                h.export_unattached(flow, &mut out)
            } else {
                h.export(slot, flow, &mut out)
            };
            if wrote {
                ext.present |= 1u64 << (number & 63);
            }
        }
        if ext.is_empty() {
            return None;
        }
        ext.seal();
        // (A clone holds exactly its values.)
        Some(Box::new(ext.clone()))
    }

    /// Octets of stream buffers held now (for tests: freed with their flows).
    #[cfg(test)]
    pub(crate) fn stream_buffers(&self) -> usize {
        self.streams.iter().map(Streams::bytes).sum()
    }

    /// Plugin states held now, at their peak, and the bytes of the plugins' tables, the
    /// streams and the plugins' entries by flow slot.
    pub fn memory(&self) -> (usize, usize, usize) {
        let streams = self.streams.iter().map(Streams::bytes).sum::<usize>()
            + self.slots.capacity() * std::mem::size_of::<FlowPlugins>();
        self.plugins.iter().fold((0, 0, streams), |acc, h| {
            let (a, b, c) = h.memory();
            (acc.0 + a, acc.1 + b, acc.2 + c)
        })
    }
}
