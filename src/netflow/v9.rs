//! NetFlow v9 (RFC 3954): a 20-octet header, then flowsets: templates, options, data.
//!
//! Two data templates, one per address family ([`TEMPLATE_IPV4`], [`TEMPLATE_IPV6`]), and one
//! options template ([`TEMPLATE_OPTIONS`]) whose single record gives the sampling interval
//! and algorithm (interval 1 without `--sampler`; with it, a second options template
//! [`TEMPLATE_OPTIONS_INTERVAL`] repeats the interval alone, which nfdump reads). All three open the first datagram and every datagram that starts
//! `template_refresh_ms` of packet time after they were last sent, so a collector that
//! starts late or loses a datagram learns them again. Datagrams never exceed
//! [`MAX_DATAGRAM`] octets; a record never straddles two. Every record length is a
//! multiple of four, so data flowsets need no padding; template flowsets are padded.
//! Counters are 8 octets (v9 lets the template choose), so nothing is ever split.
//! ICMP type and code travel in ICMP_TYPE (`type << 8 | code`, 0 for other protocols) and,
//! as v5 carries them, in L4_DST_PORT.

use super::{tcp_flags, Clock, DatagramSink, Settings};
use crate::meter::FlowRecord;

pub const HEADER_LEN: usize = 20;
/// Largest datagram payload: fits a 1500-octet MTU with room for tunnels and IPv6 headers.
pub const MAX_DATAGRAM: usize = 1400;
pub const TEMPLATE_IPV4: u16 = 256;
pub const TEMPLATE_IPV6: u16 = 257;
pub const TEMPLATE_OPTIONS: u16 = 258;
/// With `--sampler`: SAMPLING_INTERVAL alone, for nfdump (see `begin`).
pub const TEMPLATE_OPTIONS_INTERVAL: u16 = 259;
const TEMPLATE_FLOWSET: u16 = 0;
const OPTIONS_TEMPLATE_FLOWSET: u16 = 1;
/// Options scope type System (RFC 3954 §6.1).
const SCOPE_SYSTEM: u16 = 1;
const SAMPLING_INTERVAL: u16 = 34;
const SAMPLING_ALGORITHM: u16 = 35;
/// SAMPLING_ALGORITHM 1 = deterministic; with interval 1 it selects every packet.
const DETERMINISTIC: u8 = 1;

/// The fields qof fills, with their RFC 3954 type numbers and the lengths qof writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    InBytes,
    InPkts,
    FirstSwitched,
    LastSwitched,
    Ipv4SrcAddr,
    Ipv4DstAddr,
    Ipv6SrcAddr,
    Ipv6DstAddr,
    L4SrcPort,
    L4DstPort,
    Protocol,
    TcpFlags,
    MinTtl,
    MaxTtl,
    SrcVlan,
    EngineType,
    EngineId,
    IcmpType,
    Direction,
    IpVersion,
    /// INPUT_SNMP: the ingress interface's index (the flow key's).
    InputSnmp,
}

impl Field {
    pub const fn id(self) -> u16 {
        match self {
            Field::InBytes => 1,
            Field::InPkts => 2,
            Field::Protocol => 4,
            Field::InputSnmp => 10,
            Field::TcpFlags => 6,
            Field::L4SrcPort => 7,
            Field::Ipv4SrcAddr => 8,
            Field::L4DstPort => 11,
            Field::Ipv4DstAddr => 12,
            Field::LastSwitched => 21,
            Field::FirstSwitched => 22,
            Field::Ipv6SrcAddr => 27,
            Field::Ipv6DstAddr => 28,
            Field::EngineType => 38,
            Field::EngineId => 39,
            Field::MinTtl => 52,
            Field::MaxTtl => 53,
            Field::SrcVlan => 58,
            Field::IcmpType => 32,
            Field::IpVersion => 60,
            Field::Direction => 61,
        }
    }

    pub const fn octets(self) -> u16 {
        match self {
            Field::InBytes | Field::InPkts => 8,
            Field::InputSnmp => 4,
            Field::FirstSwitched | Field::LastSwitched => 4,
            Field::Ipv4SrcAddr | Field::Ipv4DstAddr => 4,
            Field::Ipv6SrcAddr | Field::Ipv6DstAddr => 16,
            Field::L4SrcPort | Field::L4DstPort | Field::SrcVlan | Field::IcmpType => 2,
            Field::Protocol | Field::TcpFlags | Field::MinTtl | Field::MaxTtl => 1,
            Field::EngineType | Field::EngineId | Field::IpVersion | Field::Direction => 1,
        }
    }
}

pub const IPV4_FIELDS: [Field; 19] = [
    Field::InBytes,
    Field::InPkts,
    Field::FirstSwitched,
    Field::LastSwitched,
    Field::Ipv4SrcAddr,
    Field::Ipv4DstAddr,
    Field::L4SrcPort,
    Field::L4DstPort,
    Field::SrcVlan,
    Field::Protocol,
    Field::TcpFlags,
    Field::MinTtl,
    Field::MaxTtl,
    Field::IcmpType,
    Field::IpVersion,
    Field::Direction,
    Field::EngineType,
    Field::EngineId,
    Field::InputSnmp,
];

pub const IPV6_FIELDS: [Field; 19] = [
    Field::InBytes,
    Field::InPkts,
    Field::FirstSwitched,
    Field::LastSwitched,
    Field::Ipv6SrcAddr,
    Field::Ipv6DstAddr,
    Field::L4SrcPort,
    Field::L4DstPort,
    Field::SrcVlan,
    Field::Protocol,
    Field::TcpFlags,
    Field::MinTtl,
    Field::MaxTtl,
    Field::IcmpType,
    Field::IpVersion,
    Field::Direction,
    Field::EngineType,
    Field::EngineId,
    Field::InputSnmp,
];

const fn record_len(fields: &[Field]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < fields.len() {
        n += fields[i].octets() as usize;
        i += 1;
    }
    n
}

pub const IPV4_RECORD_LEN: usize = record_len(&IPV4_FIELDS);
pub const IPV6_RECORD_LEN: usize = record_len(&IPV6_FIELDS);
// Data flowsets stay 4-aligned without padding (see the module doc).
const _: () = assert!(IPV4_RECORD_LEN % 4 == 0 && IPV6_RECORD_LEN % 4 == 0);

pub struct V9Encoder {
    settings: Settings,
    /// Header space reserved at the front, then the flowsets.
    buf: Vec<u8>,
    /// Records of every kind in the datagram (the header's count, RFC 3954 §5.1).
    count: u16,
    /// Flow data records in the datagram.
    flows: u32,
    /// The data flowset being filled: its template id and where its header starts.
    open: Option<(u16, usize)>,
    /// Datagrams sent before this one (the header's sequence number).
    sequence: u32,
    templates_sent_ms: Option<u64>,
    /// Datagrams sent since the last one with the templates.
    since_templates: u32,
    held_since_ms: Option<u64>,
}

impl V9Encoder {
    pub fn new(settings: &Settings) -> V9Encoder {
        let mut buf = Vec::with_capacity(MAX_DATAGRAM);
        buf.resize(HEADER_LEN, 0);
        V9Encoder {
            settings: *settings,
            buf,
            count: 0,
            flows: 0,
            open: None,
            sequence: 0,
            templates_sent_ms: None,
            since_templates: 0,
            held_since_ms: None,
        }
    }

    /// Packet time (ms) when the oldest buffered record arrived, if any is buffered.
    pub fn held_since_ms(&self) -> Option<u64> {
        self.held_since_ms
    }

    /// Send the templates again with the next datagram (after the exporter "rebooted").
    pub fn forget_templates(&mut self) {
        self.templates_sent_ms = None;
    }

    /// Buffer one uniflow's record; returns 1, or 0 for a key of neither IP version.
    pub fn push(&mut self, uni: &FlowRecord, clock: &Clock, out: &mut dyn DatagramSink) -> u32 {
        let (id, fields, len) = match uni.key.ip_version {
            4 => (TEMPLATE_IPV4, &IPV4_FIELDS, IPV4_RECORD_LEN),
            6 => (TEMPLATE_IPV6, &IPV6_FIELDS, IPV6_RECORD_LEN),
            _ => return 0,
        };
        if self.flows > 0 && self.buf.len() + self.cost(id, len) > MAX_DATAGRAM {
            self.flush(clock, out);
        }
        if self.flows == 0 {
            self.begin(clock);
        }
        if self.open.map(|(open, _)| open) != Some(id) {
            self.close_set();
            self.open = Some((id, self.buf.len()));
            self.buf.extend_from_slice(&id.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]); // length, set by close_set
        }
        for f in fields {
            self.put(*f, uni, clock);
        }
        self.count += 1;
        self.flows += 1;
        self.held_since_ms.get_or_insert(clock.now_ms());
        1
    }

    /// Octets a record of template `id` adds to the datagram.
    fn cost(&self, id: u16, len: usize) -> usize {
        match self.open {
            Some((open, _)) if open == id => len,
            _ => 4 + len,
        }
    }

    fn put(&mut self, f: Field, uni: &FlowRecord, clock: &Clock) {
        let b = &mut self.buf;
        let k = &uni.key;
        match f {
            Field::InBytes => b.extend_from_slice(&uni.fwd.octets.to_be_bytes()),
            Field::InPkts => b.extend_from_slice(&uni.fwd.packets.to_be_bytes()),
            Field::FirstSwitched => {
                b.extend_from_slice(&clock.uptime_at(uni.start.millis()).to_be_bytes())
            }
            Field::LastSwitched => {
                b.extend_from_slice(&clock.uptime_at(uni.end.millis()).to_be_bytes())
            }
            Field::Ipv4SrcAddr => b.extend_from_slice(&k.src[..4]),
            Field::Ipv4DstAddr => b.extend_from_slice(&k.dst[..4]),
            Field::Ipv6SrcAddr => b.extend_from_slice(&k.src),
            Field::Ipv6DstAddr => b.extend_from_slice(&k.dst),
            Field::L4SrcPort => b.extend_from_slice(&k.src_port.to_be_bytes()),
            Field::L4DstPort => b.extend_from_slice(&k.dst_port.to_be_bytes()),
            Field::SrcVlan => b.extend_from_slice(&k.vlan.to_be_bytes()),
            Field::Protocol => b.push(k.proto),
            Field::TcpFlags => b.push(tcp_flags(uni)),
            Field::MinTtl => b.push(uni.fwd.min_ttl),
            Field::MaxTtl => b.push(uni.fwd.max_ttl),
            Field::EngineType => b.push(self.settings.engine_type),
            Field::EngineId => b.push(self.settings.engine_id),
            // Collectors (nfdump) read ICMP type and code from here, not from the port.
            Field::IcmpType => {
                let tc = if k.has_ports() { 0 } else { k.dst_port };
                b.extend_from_slice(&tc.to_be_bytes())
            }
            Field::IpVersion => b.push(k.ip_version),
            Field::InputSnmp => b.extend_from_slice(&k.ingress.to_be_bytes()),
            // 0 = ingress: qof meters what it sees arriving.
            Field::Direction => b.push(0),
        }
    }

    /// Start a datagram: the templates first when they are due.
    fn begin(&mut self, clock: &Clock) {
        let now = clock.now_ms();
        let every = self.settings.template_refresh_datagrams;
        let due = match self.templates_sent_ms {
            None => true,
            Some(t) => {
                now.saturating_sub(t) >= self.settings.template_refresh_ms
                    || (every > 0 && self.since_templates >= every)
            }
        };
        if !due {
            return;
        }
        self.templates_sent_ms = Some(now);
        self.since_templates = 0;

        let start = self.buf.len();
        self.buf.extend_from_slice(&TEMPLATE_FLOWSET.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        for (id, fields) in [(TEMPLATE_IPV4, &IPV4_FIELDS), (TEMPLATE_IPV6, &IPV6_FIELDS)] {
            self.buf.extend_from_slice(&id.to_be_bytes());
            self.buf
                .extend_from_slice(&(fields.len() as u16).to_be_bytes());
            for f in fields {
                self.buf.extend_from_slice(&f.id().to_be_bytes());
                self.buf.extend_from_slice(&f.octets().to_be_bytes());
            }
            self.count += 1;
        }
        self.end_set(start);

        // Options template: scope System (4 octets, the Source ID), then the sampling fields.
        let start = self.buf.len();
        self.buf
            .extend_from_slice(&OPTIONS_TEMPLATE_FLOWSET.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&TEMPLATE_OPTIONS.to_be_bytes());
        self.buf.extend_from_slice(&4u16.to_be_bytes()); // scope length, octets
        self.buf.extend_from_slice(&8u16.to_be_bytes()); // options length, octets
        for (ty, len) in [
            (SCOPE_SYSTEM, 4u16),
            (SAMPLING_INTERVAL, 4),
            (SAMPLING_ALGORITHM, 1),
        ] {
            self.buf.extend_from_slice(&ty.to_be_bytes());
            self.buf.extend_from_slice(&len.to_be_bytes());
        }
        self.count += 1;
        self.end_set(start);

        let start = self.buf.len();
        self.buf.extend_from_slice(&TEMPLATE_OPTIONS.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&self.settings.source_id.to_be_bytes());
        // Without --sampler qof meters every packet: deterministic, interval 1.
        let (mode, n) = self.settings.sampling.unwrap_or((DETERMINISTIC, 1));
        self.buf.extend_from_slice(&n.to_be_bytes());
        self.buf.push(mode);
        self.count += 1;
        self.end_set(start);

        if self.settings.sampling.is_some() {
            // The interval again, alone in an options template of its own: nfdump 1.7
            // registers no sampler from an options template that also holds
            // SAMPLING_ALGORITHM (its flows stay unsampled), but reads this one.
            let start = self.buf.len();
            self.buf
                .extend_from_slice(&OPTIONS_TEMPLATE_FLOWSET.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]);
            self.buf
                .extend_from_slice(&TEMPLATE_OPTIONS_INTERVAL.to_be_bytes());
            self.buf.extend_from_slice(&4u16.to_be_bytes()); // scope length, octets
            self.buf.extend_from_slice(&4u16.to_be_bytes()); // options length, octets
            for (ty, len) in [(SCOPE_SYSTEM, 4u16), (SAMPLING_INTERVAL, 4)] {
                self.buf.extend_from_slice(&ty.to_be_bytes());
                self.buf.extend_from_slice(&len.to_be_bytes());
            }
            self.count += 1;
            self.end_set(start);
            let start = self.buf.len();
            self.buf
                .extend_from_slice(&TEMPLATE_OPTIONS_INTERVAL.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0]);
            self.buf
                .extend_from_slice(&self.settings.source_id.to_be_bytes());
            self.buf.extend_from_slice(&n.to_be_bytes());
            self.count += 1;
            self.end_set(start);
        }
    }

    /// Pad the flowset that starts at `start` to a 4-octet boundary and write its length.
    fn end_set(&mut self, start: usize) {
        while (self.buf.len() - start) % 4 != 0 {
            self.buf.push(0);
        }
        let len = (self.buf.len() - start) as u16;
        self.buf[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn close_set(&mut self) {
        if let Some((_, start)) = self.open.take() {
            self.end_set(start);
        }
    }

    /// Send the buffered records, if any.
    pub fn flush(&mut self, clock: &Clock, out: &mut dyn DatagramSink) {
        if self.flows == 0 {
            return;
        }
        self.close_set();
        // v9 headers carry whole seconds only: round the export time up, so that no record
        // ends after it, and take sysUptime at that same instant, so that a collector's
        // `unix_secs × 1000 − sysUptime` is exactly the boot time.
        let secs = clock.now_ms().div_ceil(1000);
        let mut h = [0u8; HEADER_LEN];
        h[0..2].copy_from_slice(&9u16.to_be_bytes());
        h[2..4].copy_from_slice(&self.count.to_be_bytes());
        h[4..8].copy_from_slice(&clock.uptime_at(secs * 1000).to_be_bytes());
        h[8..12].copy_from_slice(&(secs as u32).to_be_bytes());
        h[12..16].copy_from_slice(&self.sequence.to_be_bytes());
        h[16..20].copy_from_slice(&self.settings.source_id.to_be_bytes());
        self.buf[..HEADER_LEN].copy_from_slice(&h);
        out.send(&self.buf, self.flows);
        self.sequence = self.sequence.wrapping_add(1);
        self.since_templates = self.since_templates.saturating_add(1);
        self.count = 0;
        self.flows = 0;
        self.buf.truncate(HEADER_LEN);
        self.held_since_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{proto, FlowKey};
    use crate::netflow::Version;
    use crate::time::Timestamp;
    use netflow_parser::variable_versions::field_value::DurationValue;
    use netflow_parser::variable_versions::v9::{FlowSetBody, ScopeDataField, V9};
    use netflow_parser::{DataNumber, FieldValue, NetflowPacket, NetflowParser, V9Field};
    use std::collections::HashMap;
    use std::net::IpAddr;

    const T0: u64 = 1_700_000_000_000;

    fn settings() -> Settings {
        Settings {
            version: Version::V9,
            engine_type: 3,
            engine_id: 77,
            source_id: 0xDEAD_BEEF,
            template_refresh_ms: 10_000,
            template_refresh_datagrams: 0,
            sampling: None,
        }
    }

    fn uniflow(i: u32) -> FlowRecord {
        let mut key = FlowKey {
            proto: [proto::TCP, proto::UDP, proto::ICMP][i as usize % 3],
            src_port: 1000 + i as u16,
            dst_port: 0x0800 + i as u16,
            vlan: (i % 4096) as u16,
            ..Default::default()
        };
        if i % 2 == 0 {
            key.set_ipv4([10, 1, (i >> 8) as u8, i as u8], [192, 0, 2, 9]);
        } else {
            let mut s = [0x20u8; 16];
            s[15] = i as u8;
            key.set_ipv6(s, [0xfe; 16]);
        }
        let mut r = FlowRecord {
            key,
            start: Timestamp::from_millis(T0 + u64::from(i) * 100),
            end: Timestamp::from_millis(T0 + u64::from(i) * 100 + 777),
            ..Default::default()
        };
        r.fwd.packets = u64::from(i) + 1;
        // Some counters beyond 32 bits: v9 carries them whole.
        r.fwd.octets = if i % 5 == 0 {
            1 << 40
        } else {
            100 + u64::from(i)
        };
        r.fwd.min_ttl = 30 + i as u8;
        r.fwd.max_ttl = 200;
        if key.proto == proto::TCP {
            r.fwd.initial_tcp_flags = 0x02;
            r.fwd.union_tcp_flags = 0x11;
        }
        r
    }

    fn num(v: &FieldValue) -> u64 {
        match v {
            FieldValue::DataNumber(d) => match d {
                DataNumber::U8(x) => u64::from(*x),
                DataNumber::U16(x) => u64::from(*x),
                DataNumber::U24(x) | DataNumber::U32(x) => u64::from(*x),
                DataNumber::U64(x) => *x,
                other => panic!("unexpected number {other:?}"),
            },
            FieldValue::Duration(DurationValue::Millis { value, .. }) => *value,
            FieldValue::ProtocolType(p) => u64::from(u8::from(*p)),
            FieldValue::TcpControlBits(b, _) => u64::from(u16::from(*b)),
            other => panic!("not a number: {other:?}"),
        }
    }

    fn addr(v: &FieldValue) -> IpAddr {
        match v {
            FieldValue::Ip4Addr(a) => IpAddr::V4(*a),
            FieldValue::Ip6Addr(a) => IpAddr::V6(*a),
            other => panic!("not an address: {other:?}"),
        }
    }

    fn encode(recs: &[FlowRecord], clock: &mut Clock) -> Vec<(Vec<u8>, u32)> {
        let mut enc = V9Encoder::new(&settings());
        let mut out: Vec<(Vec<u8>, u32)> = Vec::new();
        let mut sink = |d: &[u8], n: u32| out.push((d.to_vec(), n));
        for r in recs {
            clock.advance(r.end);
            assert_eq!(enc.push(r, clock, &mut sink), 1);
        }
        enc.flush(clock, &mut sink);
        out
    }

    fn parse_all(datagrams: &[(Vec<u8>, u32)]) -> Vec<V9> {
        let mut parser = NetflowParser::default();
        datagrams
            .iter()
            .map(|(bytes, _)| {
                let parsed = parser.parse_bytes(bytes);
                assert!(parsed.error.is_none(), "{:?}", parsed.error);
                match parsed.packets.as_slice() {
                    [NetflowPacket::V9(v9)] => v9.clone(),
                    other => panic!("one v9 packet: {other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn every_field_decodes_with_netflow_parser() {
        let mut clock = Clock::default();
        clock.start(Timestamp::from_millis(T0));
        let recs: Vec<FlowRecord> = (0..200).map(uniflow).collect();
        let out = encode(&recs, &mut clock);
        assert!(out.len() > 5, "{} datagrams", out.len());
        let packets = parse_all(&out);
        let mut next = 0usize;
        for (seq, (v9, (bytes, flows))) in packets.iter().zip(&out).enumerate() {
            assert!(bytes.len() <= MAX_DATAGRAM);
            let h = &v9.header;
            assert_eq!(h.version, 9);
            assert_eq!(h.sequence_number, seq as u32, "v9 counts datagrams");
            assert_eq!(h.source_id, 0xDEAD_BEEF);
            let boot = u64::from(h.unix_secs) * 1000 - u64::from(h.sys_up_time);
            assert_eq!(boot, T0 - crate::netflow::BOOT_LEAD_MS);
            let mut records = 0;
            let mut data = 0;
            for fs in &v9.flowsets {
                match &fs.body {
                    FlowSetBody::Template(t) => {
                        let ids: Vec<u16> = t.templates.iter().map(|t| t.template_id).collect();
                        assert_eq!(ids, [TEMPLATE_IPV4, TEMPLATE_IPV6]);
                        for (t, fields) in t.templates.iter().zip([&IPV4_FIELDS, &IPV6_FIELDS]) {
                            let got: Vec<(u16, u16)> = t
                                .fields
                                .iter()
                                .map(|f| (f.field_type_number, f.field_length))
                                .collect();
                            let want: Vec<(u16, u16)> =
                                fields.iter().map(|f| (f.id(), f.octets())).collect();
                            assert_eq!(got, want);
                        }
                        records += t.templates.len();
                    }
                    FlowSetBody::OptionsTemplate(t) => {
                        assert_eq!(t.templates.len(), 1);
                        assert_eq!(t.templates[0].template_id, TEMPLATE_OPTIONS);
                        records += 1;
                    }
                    FlowSetBody::OptionsData(d) => {
                        assert_eq!(d.fields.len(), 1);
                        let o = &d.fields[0];
                        assert_eq!(
                            o.scope_fields,
                            [ScopeDataField::System(
                                0xDEAD_BEEFu32.to_be_bytes().to_vec()
                            )]
                        );
                        let m: HashMap<V9Field, u64> =
                            o.options_fields.iter().map(|(f, v)| (*f, num(v))).collect();
                        assert_eq!(m[&V9Field::SamplingInterval], 1);
                        assert_eq!(m[&V9Field::SamplingAlgorithm], 1);
                        records += 1;
                    }
                    FlowSetBody::Data(d) => {
                        for rec in &d.fields {
                            let r = &recs[next];
                            next += 1;
                            data += 1;
                            let m: HashMap<V9Field, &FieldValue> =
                                rec.iter().map(|(f, v)| (*f, v)).collect();
                            assert_eq!(m.len(), 19, "{rec:?}");
                            assert_eq!(num(m[&V9Field::InputSnmp]), u64::from(r.key.ingress));
                            let (src, dst) = if r.key.is_ipv4() {
                                (V9Field::Ipv4SrcAddr, V9Field::Ipv4DstAddr)
                            } else {
                                (V9Field::Ipv6SrcAddr, V9Field::Ipv6DstAddr)
                            };
                            assert_eq!(addr(m[&src]), r.key.src_addr());
                            assert_eq!(addr(m[&dst]), r.key.dst_addr());
                            assert_eq!(num(m[&V9Field::InBytes]), r.fwd.octets);
                            assert_eq!(num(m[&V9Field::InPkts]), r.fwd.packets);
                            assert_eq!(boot + num(m[&V9Field::FirstSwitched]), r.start.millis());
                            assert_eq!(boot + num(m[&V9Field::LastSwitched]), r.end.millis());
                            assert_eq!(num(m[&V9Field::L4SrcPort]), u64::from(r.key.src_port));
                            assert_eq!(num(m[&V9Field::L4DstPort]), u64::from(r.key.dst_port));
                            assert_eq!(num(m[&V9Field::SrcVlan]), u64::from(r.key.vlan));
                            assert_eq!(num(m[&V9Field::Protocol]), u64::from(r.key.proto));
                            let flags = if r.key.proto == proto::TCP { 0x13 } else { 0 };
                            assert_eq!(num(m[&V9Field::TcpFlags]), flags);
                            assert_eq!(num(m[&V9Field::MinTtl]), u64::from(r.fwd.min_ttl));
                            assert_eq!(num(m[&V9Field::MaxTtl]), 200);
                            let icmp = if r.key.proto == proto::ICMP {
                                r.key.dst_port
                            } else {
                                0
                            };
                            assert_eq!(num(m[&V9Field::IcmpType]), u64::from(icmp));
                            assert_eq!(
                                num(m[&V9Field::IpProtocolVersion]),
                                u64::from(r.key.ip_version)
                            );
                            assert_eq!(num(m[&V9Field::Direction]), 0);
                            assert_eq!(num(m[&V9Field::EngineType]), 3);
                            assert_eq!(num(m[&V9Field::EngineId]), 77);
                        }
                        records += d.fields.len();
                    }
                    other => panic!("unexpected flowset {other:?}"),
                }
            }
            assert_eq!(usize::from(h.count), records, "header count = every record");
            assert_eq!(data, *flows as usize);
            // No record ends after its datagram's export time.
            assert!(u64::from(h.unix_secs) * 1000 >= recs[next - 1].end.millis());
        }
        assert_eq!(next, recs.len(), "every record decoded, in order");
    }

    #[test]
    fn templates_open_the_stream_and_return_after_the_refresh_interval() {
        let mut clock = Clock::default();
        clock.start(Timestamp::from_millis(T0));
        // One record per second of packet time, each datagram flushed at once.
        let mut enc = V9Encoder::new(&settings());
        let mut with_templates = Vec::new();
        for i in 0..25u64 {
            let mut r = uniflow(0);
            r.start = Timestamp::from_millis(T0 + i * 1000);
            r.end = r.start;
            clock.advance(r.end);
            let mut d = Vec::new();
            enc.push(&r, &clock, &mut |b: &[u8], _| d.push(b.to_vec()));
            enc.flush(&clock, &mut |b: &[u8], _| d.push(b.to_vec()));
            assert_eq!(d.len(), 1);
            // A template flowset (id 0) right after the header.
            with_templates.push(d[0][HEADER_LEN..HEADER_LEN + 2] == [0, 0]);
        }
        let at: Vec<usize> = (0..25).filter(|&i| with_templates[i]).collect();
        assert_eq!(at, [0, 10, 20], "every 10 s of packet time (refresh 10 s)");
    }

    /// `--template-refresh-packets 4`: every fourth datagram carries the templates as well as
    /// those the time refresh makes (refresh 10 s, one datagram a second here).
    #[test]
    fn templates_also_return_after_a_count_of_datagrams() {
        let mut clock = Clock::default();
        clock.start(Timestamp::from_millis(T0));
        let mut enc = V9Encoder::new(&Settings {
            template_refresh_datagrams: 4,
            ..settings()
        });
        let mut at = Vec::new();
        for i in 0..13u64 {
            let mut r = uniflow(0);
            r.start = Timestamp::from_millis(T0 + i * 1000);
            r.end = r.start;
            clock.advance(r.end);
            let mut d = Vec::new();
            enc.push(&r, &clock, &mut |b: &[u8], _| d.push(b.to_vec()));
            enc.flush(&clock, &mut |b: &[u8], _| d.push(b.to_vec()));
            if d[0][HEADER_LEN..HEADER_LEN + 2] == [0, 0] {
                at.push(i);
            }
        }
        assert_eq!(at, [0, 4, 8, 12]);
    }

    #[test]
    fn nothing_buffered_sends_nothing() {
        let clock = Clock::default();
        let mut enc = V9Encoder::new(&settings());
        let mut n = 0;
        enc.flush(&clock, &mut |_: &[u8], _| n += 1);
        let mut r = uniflow(0);
        r.key.ip_version = 0;
        assert_eq!(enc.push(&r, &clock, &mut |_: &[u8], _| n += 1), 0);
        enc.flush(&clock, &mut |_: &[u8], _| n += 1);
        assert_eq!(n, 0);
    }
}
