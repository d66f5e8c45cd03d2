//! NetFlow v5 and v9 (RFC 3954) encoders for legacy collectors: sans-IO, flow records in,
//! UDP datagram payloads out.
//!
//! NetFlow records are unidirectional, so every biflow becomes its forward uniflow and, when
//! the reverse direction saw packets, its reverse uniflow (key swapped as
//! [`FlowKey::reversed`](crate::key::FlowKey::reversed) does: ICMP type/code stay put).
//!
//! Invariants the encoders keep:
//! * Time is packet time, never the wall clock. The exporter "booted" [`BOOT_LEAD_MS`] before
//!   the first packet; `sysUptime` is packet time minus boot in milliseconds, the header's
//!   UNIX time is the export's packet time, and FIRST/LAST_SWITCHED are `sysUptime` values,
//!   so a collector that computes `header time − sysUptime + FIRST_SWITCHED` gets the flow's
//!   start to the millisecond.
//! * "Now" (the export's packet time) never goes back: it is the latest of every `tick` and
//!   every record's end.
//! * v5 sequence numbers count flow records sent before the datagram; v9 sequence numbers
//!   count datagrams (RFC 3954 §5.1), so a collector can count what it missed.
//! * Every uniflow is either in exactly one datagram (v5 may split an oversized one into
//!   several records, see [`v5`]) or counted in [`Counters::not_carried`].
//! * qof does not sample: v5 headers say sampling interval 0 (unsampled) and v9 announces
//!   interval 1 (every packet) in an options record.

pub mod v5;
pub mod v9;

use crate::meter::FlowRecord;
use crate::time::Timestamp;

/// Which NetFlow version to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V5,
    V9,
}

impl Version {
    pub fn number(self) -> u16 {
        match self {
            Version::V5 => 5,
            Version::V9 => 9,
        }
    }
}

/// The exporter's identity and template timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub version: Version,
    /// v5 header engine_type and v9 ENGINE_TYPE (0: a route processor, as a router's own
    /// flow cache calls itself).
    pub engine_type: u8,
    /// v5 header engine_id and v9 ENGINE_ID.
    pub engine_id: u8,
    /// v9 header Source ID (the observation domain).
    pub source_id: u32,
    /// v9: send the templates again after this many milliseconds of packet time.
    pub template_refresh_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: Version::V9,
            engine_type: 0,
            engine_id: 0,
            source_id: 0,
            template_refresh_ms: 60_000,
        }
    }
}

/// Where finished datagrams go. `flows` is the number of flow records in the datagram, so a
/// transport that loses the datagram can count the records it lost.
pub trait DatagramSink {
    fn send(&mut self, datagram: &[u8], flows: u32);
}

impl<F: FnMut(&[u8], u32)> DatagramSink for F {
    fn send(&mut self, datagram: &[u8], flows: u32) {
        self(datagram, flows)
    }
}

/// What the encoder has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Uniflows handed to the encoder (two per biflow with reverse packets).
    pub uniflows: u64,
    /// Flow records written into datagrams (more than `uniflows − not_carried` when v5 split
    /// a flow whose counters do not fit 32 bits).
    pub records: u64,
    /// Uniflows the format cannot carry (v5: everything that is not IPv4).
    pub not_carried: u64,
    /// Datagrams handed to the sink.
    pub datagrams: u64,
}

/// The exporter pretends to have booted this long before the first packet, so that packets
/// a little older than the first (merged captures step back in time) still get a
/// FIRST_SWITCHED at or after boot. An even earlier flow start is clamped to boot.
pub const BOOT_LEAD_MS: u64 = 60_000;

/// A partly filled datagram goes out once it has waited this long in packet time.
pub const MAX_HOLD_MS: u64 = 1_000;

/// Packet time as a NetFlow exporter tells it: milliseconds since a boot time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    boot_ms: Option<u64>,
    now_ms: u64,
}

impl Clock {
    /// Fix the boot time from the first packet (the first call wins).
    pub fn start(&mut self, first_packet: Timestamp) {
        if self.boot_ms.is_none() {
            self.boot_ms = Some(first_packet.millis().saturating_sub(BOOT_LEAD_MS));
            self.now_ms = self.now_ms.max(first_packet.millis());
        }
    }

    /// Packet time has reached `t` (never moves back).
    pub fn advance(&mut self, t: Timestamp) {
        self.start(t);
        self.now_ms = self.now_ms.max(t.millis());
    }

    pub fn boot_ms(&self) -> u64 {
        self.boot_ms.unwrap_or(0)
    }

    /// The export's packet time in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// Milliseconds since boot of a time given in milliseconds since the epoch: a 32-bit
    /// counter that wraps after 49.7 days, as a router's does (RFC 3954 `sysUpTime`).
    pub fn uptime_at(&self, ms: u64) -> u32 {
        ms.saturating_sub(self.boot_ms()) as u32
    }
}

/// A NetFlow encoder of either version.
pub struct Encoder {
    clock: Clock,
    counters: Counters,
    inner: Inner,
}

enum Inner {
    V5(v5::V5Encoder),
    V9(v9::V9Encoder),
}

impl Encoder {
    pub fn new(settings: &Settings) -> Encoder {
        Encoder {
            clock: Clock::default(),
            counters: Counters::default(),
            inner: match settings.version {
                Version::V5 => Inner::V5(v5::V5Encoder::new(settings)),
                Version::V9 => Inner::V9(v9::V9Encoder::new(settings)),
            },
        }
    }

    pub fn version(&self) -> Version {
        match self.inner {
            Inner::V5(_) => Version::V5,
            Inner::V9(_) => Version::V9,
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The first packet's time: fixes the boot time. Without it the first record's start
    /// does, which is later than some flow's start when flows close out of order.
    pub fn first_packet(&mut self, ts: Timestamp) {
        self.clock.start(ts);
    }

    /// Encode one meter record: its forward uniflow and its reverse uniflow if any.
    pub fn push_flow(&mut self, rec: &FlowRecord, out: &mut dyn DatagramSink) {
        // The record's start fixes boot when no first packet was announced; its end is
        // packet time that has certainly passed.
        self.clock.start(rec.start);
        self.clock.advance(rec.end);
        self.push_uniflow(&rec.forward_uniflow(), out);
        if let Some(r) = rec.reverse_uniflow() {
            self.push_uniflow(&r, out);
        }
    }

    fn push_uniflow(&mut self, uni: &FlowRecord, out: &mut dyn DatagramSink) {
        self.counters.uniflows += 1;
        let c = &mut self.counters;
        let mut counted = |datagram: &[u8], flows: u32| {
            c.datagrams += 1;
            out.send(datagram, flows);
        };
        let written = match &mut self.inner {
            Inner::V5(e) => e.push(uni, &self.clock, &mut counted),
            Inner::V9(e) => e.push(uni, &self.clock, &mut counted),
        };
        if written == 0 {
            self.counters.not_carried += 1;
        }
        self.counters.records += u64::from(written);
    }

    /// Packet time has reached `now`: send a partly filled datagram that has waited long
    /// enough, so a quiet exporter still delivers its records promptly.
    pub fn tick(&mut self, now: Timestamp, out: &mut dyn DatagramSink) {
        self.clock.advance(now);
        let due = match &self.inner {
            Inner::V5(e) => e.held_since_ms(),
            Inner::V9(e) => e.held_since_ms(),
        }
        .is_some_and(|since| self.clock.now_ms().saturating_sub(since) >= MAX_HOLD_MS);
        if due {
            self.flush(out);
        }
    }

    /// Send whatever is buffered.
    pub fn flush(&mut self, out: &mut dyn DatagramSink) {
        let c = &mut self.counters;
        let mut counted = |datagram: &[u8], flows: u32| {
            c.datagrams += 1;
            out.send(datagram, flows);
        };
        match &mut self.inner {
            Inner::V5(e) => e.flush(&self.clock, &mut counted),
            Inner::V9(e) => e.flush(&self.clock, &mut counted),
        }
    }
}

/// TCP flags of a uniflow as NetFlow carries them: the OR of every packet's flags.
fn tcp_flags(uni: &FlowRecord) -> u8 {
    uni.fwd.initial_tcp_flags | uni.fwd.union_tcp_flags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_counts_from_a_minute_before_the_first_packet() {
        let mut c = Clock::default();
        c.start(Timestamp::from_millis(1_000_000_123));
        c.start(Timestamp::from_millis(5)); // the first call wins
        assert_eq!(c.boot_ms(), 1_000_000_123 - BOOT_LEAD_MS);
        assert_eq!(c.uptime_at(1_000_000_123), 60_000);
        // Older than boot: clamped, not wrapped to 49 days.
        assert_eq!(c.uptime_at(5), 0);
        c.advance(Timestamp::from_millis(1_000_000_200));
        c.advance(Timestamp::from_millis(1_000_000_150));
        assert_eq!(c.now_ms(), 1_000_000_200, "now never goes back");
        // 2^32 ms after boot the counter wraps like a router's.
        assert_eq!(c.uptime_at(c.boot_ms() + (1 << 32) + 7), 7);
    }
}
