//! NetFlow v1, v5 and v9 (RFC 3954) encoders for legacy collectors: sans-IO, flow records in,
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
//! * "Now" (the export's packet time) is the latest of every `tick` and every record's end.
//! * Every value sent since boot fits the 32-bit millisecond counters. A record that cannot
//!   (it starts before boot, or packet time has run 49.7 days past boot: merged captures
//!   jump years back and forth) "reboots" the exporter first: the datagram being filled is
//!   sent, boot moves to [`BOOT_LEAD_MS`] before the record's start, and v9 templates are
//!   sent again, as after a router's restart. Only then may "now" go back.
//! * v5 sequence numbers count flow records sent before the datagram; v9 sequence numbers
//!   count datagrams (RFC 3954 §5.1), so a collector can count what it missed.
//! * Every uniflow is either in exactly one datagram (v5 may split an oversized one into
//!   several records, see [`v5`]) or counted in [`Counters::not_carried`].
//! * Without `--sampler`, v5 headers say sampling interval 0 (unsampled) and v9 announces
//!   interval 1 (every packet) in an options record; with it, both carry its mode and N.
//!   Counts are never scaled.

pub mod v1;
pub mod v5;
pub mod v9;

use crate::meter::FlowRecord;
use crate::time::Timestamp;

/// Which NetFlow version to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V5,
    V9,
}

impl Version {
    pub fn number(self) -> u16 {
        match self {
            Version::V1 => 1,
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
    /// v9: and every this many datagrams (ipt-netflow's refresh-rate; 0 = by time only).
    pub template_refresh_datagrams: u32,
    /// `--sampler`: (mode, interval N), mode 1 deterministic, 2 random; `None` = every
    /// packet. v5 puts it in its header (2 bits of mode, 14 of interval), v9 in its options
    /// record (SAMPLING_ALGORITHM, SAMPLING_INTERVAL).
    pub sampling: Option<(u8, u32)>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version: Version::V9,
            engine_type: 0,
            engine_id: 0,
            source_id: 0,
            template_refresh_ms: 60_000,
            template_refresh_datagrams: 0,
            sampling: None,
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
    /// Times the boot time moved because a record did not fit the 32-bit uptime counters.
    pub reboots: u64,
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

    /// Milliseconds since boot of a time given in milliseconds since the epoch (RFC 3954
    /// `sysUpTime`). [`Clock::fits`] keeps it below 2^32; earlier than boot reads as boot.
    pub fn uptime_at(&self, ms: u64) -> u32 {
        ms.saturating_sub(self.boot_ms()) as u32
    }

    /// Whether a record from `start_ms` to `end_ms` can be sent with the current boot time:
    /// it starts at or after boot, and the export time it brings (rounded up to a whole
    /// second, as v9 headers have it) is less than 2^32 ms after boot.
    pub fn fits(&self, start_ms: u64, end_ms: u64) -> bool {
        let boot = self.boot_ms();
        start_ms >= boot && Self::span_fits(boot, self.now_ms.max(end_ms))
    }

    fn span_fits(boot: u64, now: u64) -> bool {
        (now.saturating_add(999) / 1000 * 1000).saturating_sub(boot) <= u64::from(u32::MAX)
    }

    /// Move boot for a record that does not [`fit`](Clock::fits): to [`BOOT_LEAD_MS`] before
    /// its start. "Now" stays if it still fits, else becomes the record's end (packet time
    /// went back years). A record longer than 49.7 days gets its start clamped to boot.
    pub fn reboot(&mut self, start_ms: u64, end_ms: u64) {
        let mut boot = start_ms.saturating_sub(BOOT_LEAD_MS);
        let now = self.now_ms.max(end_ms);
        let now = if Self::span_fits(boot, now) {
            now
        } else {
            end_ms
        };
        if !Self::span_fits(boot, now) {
            boot = (now.saturating_add(999) / 1000 * 1000).saturating_sub(u64::from(u32::MAX));
        }
        self.boot_ms = Some(boot);
        self.now_ms = now;
    }
}

/// A NetFlow encoder of either version.
pub struct Encoder {
    clock: Clock,
    counters: Counters,
    inner: Inner,
}

enum Inner {
    V1(v1::V1Encoder),
    V5(v5::V5Encoder),
    V9(v9::V9Encoder),
}

impl Encoder {
    pub fn new(settings: &Settings) -> Encoder {
        Encoder {
            clock: Clock::default(),
            counters: Counters::default(),
            inner: match settings.version {
                Version::V1 => Inner::V1(v1::V1Encoder::new()),
                Version::V5 => Inner::V5(v5::V5Encoder::new(settings)),
                Version::V9 => Inner::V9(v9::V9Encoder::new(settings)),
            },
        }
    }

    pub fn version(&self) -> Version {
        match self.inner {
            Inner::V1(_) => Version::V1,
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
        // The record's start fixes boot when no first packet was announced.
        self.clock.start(rec.start);
        self.push_uniflow(&rec.forward_uniflow(), out);
        if let Some(r) = rec.reverse_uniflow() {
            self.push_uniflow(&r, out);
        }
    }

    fn push_uniflow(&mut self, uni: &FlowRecord, out: &mut dyn DatagramSink) {
        self.counters.uniflows += 1;
        let (start, end) = (uni.start.millis(), uni.end.millis());
        if !self.clock.fits(start, end) {
            // The buffered records fit the old boot: send them under it.
            self.flush(out);
            self.clock.reboot(start, end);
            self.counters.reboots += 1;
            if let Inner::V9(e) = &mut self.inner {
                e.forget_templates();
            }
        }
        self.clock.advance(uni.end);
        let c = &mut self.counters;
        let mut counted = |datagram: &[u8], flows: u32| {
            c.datagrams += 1;
            out.send(datagram, flows);
        };
        let written = match &mut self.inner {
            Inner::V1(e) => e.push(uni, &self.clock, &mut counted),
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
        self.clock.start(now);
        if !self.clock.fits(self.clock.boot_ms(), now.millis()) {
            // Buffered records must go before "now" leaves their boot's range; the next
            // record will reboot.
            self.flush(out);
            return;
        }
        self.clock.advance(now);
        let due = match &self.inner {
            Inner::V1(e) => e.held_since_ms(),
            Inner::V5(e) => e.held_since_ms(),
            Inner::V9(e) => e.held_since_ms(),
        }
        .is_some_and(|since| self.clock.now_ms().saturating_sub(since) >= MAX_HOLD_MS);
        if due {
            self.flush(out);
        }
    }

    /// v9: send the templates again with the next datagram (`qofctl send-template`); v1
    /// and v5 have none.
    pub fn resend_templates(&mut self) {
        if let Inner::V9(e) = &mut self.inner {
            e.forget_templates();
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
            Inner::V1(e) => e.flush(&self.clock, &mut counted),
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
        assert!(c.fits(c.boot_ms(), c.boot_ms() + u64::from(u32::MAX) - 999));
        assert!(!c.fits(c.boot_ms(), c.boot_ms() + u64::from(u32::MAX)));
        assert!(!c.fits(c.boot_ms() - 1, c.now_ms()));
        // Packet time back before boot: boot follows the record; "now" stays while it fits.
        c.reboot(5_000, 9_000);
        assert_eq!((c.boot_ms(), c.now_ms()), (0, 1_000_000_200));
        // Years back: "now" follows too.
        c.advance(Timestamp::from_millis(1_600_000_000_000));
        c.reboot(5_000, 9_000);
        assert_eq!((c.boot_ms(), c.now_ms()), (0, 9_000));
        assert!(c.fits(5_000, 9_000));
        // A flow longer than 49.7 days: its start is clamped, its end fits.
        c.reboot(10_000, 10_000 + (1 << 33));
        assert!(c.fits(c.boot_ms(), 10_000 + (1 << 33)));
        assert_eq!(c.uptime_at(10_000), 0);
    }

    /// Decode a v9 stream with netflow_parser and give each data record's absolute times
    /// (`unix_secs × 1000 − sysUptime + FIRST/LAST_SWITCHED`), source port and packets.
    fn decoded_v9_times(datagrams: &[Vec<u8>]) -> Vec<(u64, u64, u64, u64)> {
        use netflow_parser::variable_versions::field_value::DurationValue;
        use netflow_parser::variable_versions::v9::FlowSetBody;
        use netflow_parser::{DataNumber, FieldValue, NetflowPacket, NetflowParser, V9Field};
        let mut parser = NetflowParser::default();
        let mut out = Vec::new();
        for d in datagrams {
            let parsed = parser.parse_bytes(d);
            assert!(parsed.error.is_none(), "{:?}", parsed.error);
            let [NetflowPacket::V9(v9)] = parsed.packets.as_slice() else {
                panic!("{:?}", parsed.packets);
            };
            let boot = u64::from(v9.header.unix_secs) * 1000 - u64::from(v9.header.sys_up_time);
            for fs in &v9.flowsets {
                let FlowSetBody::Data(data) = &fs.body else {
                    continue;
                };
                for rec in &data.fields {
                    let get = |want: V9Field| -> u64 {
                        match rec.iter().find(|(f, _)| *f == want).map(|(_, v)| v) {
                            Some(FieldValue::Duration(DurationValue::Millis { value, .. })) => {
                                *value
                            }
                            Some(FieldValue::DataNumber(DataNumber::U16(v))) => u64::from(*v),
                            Some(FieldValue::DataNumber(DataNumber::U64(v))) => *v,
                            other => panic!("{want:?}: {other:?}"),
                        }
                    };
                    out.push((
                        boot + get(V9Field::FirstSwitched),
                        boot + get(V9Field::LastSwitched),
                        get(V9Field::L4SrcPort),
                        get(V9Field::InPkts),
                    ));
                }
            }
        }
        out
    }

    fn biflow(port: u16, start_ms: u64, end_ms: u64, reverse: bool) -> FlowRecord {
        let mut key = crate::key::FlowKey {
            proto: crate::key::proto::UDP,
            src_port: port,
            dst_port: 53,
            ..Default::default()
        };
        key.set_ipv4([10, 0, 0, 1], [10, 0, 0, 2]);
        let mut r = FlowRecord {
            key,
            start: Timestamp::from_millis(start_ms),
            end: Timestamp::from_millis(end_ms),
            ..Default::default()
        };
        r.fwd.packets = 3;
        if reverse {
            r.rev.packets = 2;
            r.rev_start = Some(Timestamp::from_millis(start_ms + 1));
        }
        r
    }

    #[test]
    fn times_survive_captures_that_jump_years_back_and_forth() {
        const Y2015: u64 = 1_445_000_000_000;
        const Y2020: u64 = 1_595_000_000_000;
        let mut enc = Encoder::new(&Settings::default());
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        let mut sink = |d: &[u8], _: u32| datagrams.push(d.to_vec());
        enc.first_packet(Timestamp::from_millis(Y2015));
        let recs = [
            biflow(1, Y2015, Y2015 + 500, true),
            biflow(2, Y2020, Y2020 + 700, false),
            biflow(3, Y2015 + 10, Y2015 + 20, true),
            // Two minutes before boot (a merged capture stepping back a little).
            biflow(4, Y2015 - 120_000, Y2015 + 30, false),
        ];
        for r in &recs {
            enc.push_flow(r, &mut sink);
        }
        enc.tick(Timestamp::from_millis(Y2020 + 5_000), &mut sink);
        enc.flush(&mut sink);
        assert_eq!(enc.counters().reboots, 3);
        let got = decoded_v9_times(&datagrams);
        let mut want = Vec::new();
        for r in &recs {
            let f = r.forward_uniflow();
            want.push((
                f.start.millis(),
                f.end.millis(),
                u64::from(f.key.src_port),
                3,
            ));
            if let Some(b) = r.reverse_uniflow() {
                want.push((
                    b.start.millis(),
                    b.end.millis(),
                    u64::from(b.key.src_port),
                    2,
                ));
            }
        }
        assert_eq!(
            got, want,
            "forward then reverse, times exact across reboots"
        );
        assert_eq!(enc.counters().uniflows, 6);
        assert_eq!(enc.counters().records, 6);
    }

    #[test]
    fn a_partly_filled_datagram_waits_one_second_of_packet_time() {
        let mut enc = Encoder::new(&Settings::default());
        let mut n = 0;
        let t0 = 1_600_000_000_000;
        enc.push_flow(&biflow(1, t0, t0 + 10, false), &mut |_: &[u8], _| n += 1);
        enc.tick(Timestamp::from_millis(t0 + 900), &mut |_: &[u8], _| n += 1);
        assert_eq!(n, 0, "held");
        enc.tick(Timestamp::from_millis(t0 + 1_010), &mut |_: &[u8], _| {
            n += 1
        });
        assert_eq!(n, 1, "sent a second after it was buffered");
        enc.flush(&mut |_: &[u8], _| n += 1);
        assert_eq!(n, 1, "nothing left");
    }

    #[test]
    fn v5_counts_what_it_cannot_carry() {
        let mut enc = Encoder::new(&Settings {
            version: Version::V5,
            ..Settings::default()
        });
        let mut v6 = biflow(1, 1_000_000, 1_000_010, true);
        v6.key.set_ipv6([1; 16], [2; 16]);
        let mut sent = 0u32;
        let mut sink = |_: &[u8], flows: u32| sent += flows;
        enc.push_flow(&v6, &mut sink);
        enc.push_flow(&biflow(2, 1_000_000, 1_000_010, true), &mut sink);
        enc.flush(&mut sink);
        let c = enc.counters();
        assert_eq!(
            (c.uniflows, c.not_carried, c.records, c.datagrams),
            (4, 2, 2, 1)
        );
        assert_eq!(sent, 2);
    }
}
