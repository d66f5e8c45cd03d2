//! Test harness of the text plugins: conversations written as segments, run through a real
//! meter (its streams, splits and ends) with one plugin, and each record's plugin values read
//! back by element name.

use super::{build, PluginSpec};
use crate::decode::{Details, Packet, TcpInfo};
use crate::ipfix::TemplateSpec;
use crate::key::{proto, FlowKey};
use crate::meter::{ExtValue, FlowRecord, Meter, MeterConfig};
use crate::time::Timestamp;
use std::collections::BTreeMap;

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH_ACK: u8 = 0x18;

/// One packet to meter: time (ms), headers, captured payload.
pub type Segment = (u64, Packet, Vec<u8>);

/// A conversation between a client (forward) and a server, packets added in order.
pub struct Conv {
    key: FlowKey,
    /// Next sequence number of client and server.
    pub next: [u32; 2],
    ms: u64,
    pub packets: Vec<Segment>,
}

impl Conv {
    fn new(proto: u8, client_port: u16, server_port: u16) -> Conv {
        let mut key = FlowKey {
            src_port: client_port,
            dst_port: server_port,
            proto,
            ..Default::default()
        };
        key.set_ipv4([192, 0, 2, 1], [198, 51, 100, 2]);
        Conv {
            key,
            next: [1_000, 900_000],
            ms: 1_700_000_000_000,
            packets: Vec::new(),
        }
    }

    /// A TCP connection to `server_port`, after its handshake.
    pub fn tcp(server_port: u16) -> Conv {
        let mut c = Conv::new(proto::TCP, 40_000, server_port);
        c.raw(false, c.next[0], SYN, b"");
        c.next[0] += 1;
        c.raw(true, c.next[1], SYN | ACK, b"");
        c.next[1] += 1;
        c.raw(false, c.next[0], ACK, b"");
        c
    }

    /// A TCP connection to `server_port` joined after its handshake (no SYN seen).
    pub fn tcp_joined(server_port: u16) -> Conv {
        Conv::new(proto::TCP, 40_000, server_port)
    }

    /// A UDP conversation from `client_port` to `server_port`.
    pub fn udp(client_port: u16, server_port: u16) -> Conv {
        Conv::new(proto::UDP, client_port, server_port)
    }

    /// A packet from the server (`reverse`) or the client with sequence number `seq`.
    pub fn raw(&mut self, reverse: bool, seq: u32, flags: u8, data: &[u8]) {
        self.ms += 1;
        let key = if reverse {
            self.key.reversed()
        } else {
            self.key
        };
        let udp = key.proto == proto::UDP;
        let p = Packet {
            key,
            ip_len: if udp { 28 } else { 40 } + data.len() as u32,
            payload_len: data.len() as u32,
            ip_header_len: 20,
            ttl: 64,
            has_l4: true,
            tcp: (!udp).then_some(TcpInfo {
                seq,
                ack: self.next[usize::from(!reverse)],
                flags,
                window: 1000,
                ..TcpInfo::default()
            }),
            ..Packet::default()
        };
        self.packets.push((self.ms, p, data.to_vec()));
    }

    /// The next segment (or datagram) of a side.
    pub fn send(&mut self, reverse: bool, data: &[u8]) -> &mut Conv {
        let i = usize::from(reverse);
        self.raw(reverse, self.next[i], PSH_ACK, data);
        self.next[i] = self.next[i].wrapping_add(data.len() as u32);
        self
    }

    /// `data` in segments of at most `mss` octets.
    pub fn send_in(&mut self, reverse: bool, data: &[u8], mss: usize) -> &mut Conv {
        for chunk in data.chunks(mss.max(1)) {
            self.send(reverse, chunk);
        }
        self
    }

    /// The client's request and the server's response, each in one segment.
    pub fn exchange(&mut self, request: &[u8], response: &[u8]) -> &mut Conv {
        self.send(false, request).send(true, response)
    }
}

/// Every packet through a meter with the plugins of `specs`; the records in order.
pub fn records(specs: &[&str], packets: &[Segment]) -> Vec<FlowRecord> {
    traced(specs, packets).0
}

/// [`records`], and after each packet the plugins' states held and the octets of the flows'
/// stream buffers.
pub fn traced(specs: &[&str], packets: &[Segment]) -> (Vec<FlowRecord>, Vec<(usize, usize)>) {
    let named: Vec<PluginSpec> = specs
        .iter()
        .map(|s| PluginSpec::parse(s).unwrap())
        .collect();
    let (_, set, _) = build(&named, &TemplateSpec::qof_default()).unwrap();
    let mut m = Meter::with_plugins(MeterConfig::default(), set);
    let details = Details::default();
    let (mut out, mut held) = (Vec::new(), Vec::new());
    for (ms, p, data) in packets {
        let cap = m.plugins().payload().min(data.len());
        m.handle_packet_with_details(Timestamp::from_millis(*ms), p, &details, &data[..cap]);
        out.extend(std::iter::from_fn(|| m.poll_record()));
        let (live, _, _) = m.plugins().memory();
        held.push((live, m.plugins().stream_buffers()));
    }
    m.flush();
    out.extend(std::iter::from_fn(|| m.poll_record()));
    out.sort_by_key(|r| (r.start, r.flow_id));
    (out, held)
}

/// Octets of an IPFIX message carrying `rec` alone (its template sent in an earlier one),
/// under the default template with the plugins of `specs`.
pub fn message_len(specs: &[&str], rec: &FlowRecord) -> usize {
    let named: Vec<PluginSpec> = specs
        .iter()
        .map(|s| PluginSpec::parse(s).unwrap())
        .collect();
    let (spec, _, _) = build(&named, &TemplateSpec::qof_default()).unwrap();
    let mut enc = crate::ipfix::Encoder::new(spec, 1, crate::ipfix::MAX_FILE_MESSAGE, false);
    let mut first = Vec::new();
    enc.encode_flow(rec, 0, &mut first).unwrap();
    enc.flush(0, &mut first).unwrap();
    let mut second = Vec::new();
    enc.encode_flow(rec, 0, &mut second).unwrap();
    enc.flush(0, &mut second).unwrap();
    second.len()
}

/// IPFIX over UDP sends messages of at most this many octets (export::net::MAX_UDP_MESSAGE):
/// a record must fit one, with room for a larger template's core elements.
pub const UDP_MESSAGE: usize = 1_420;

/// A record's values of plugin `spec`'s elements (strings as they are, numbers in decimal),
/// or `None` when the record does not carry that plugin's elements.
pub fn values(spec: &str, r: &FlowRecord) -> Option<BTreeMap<&'static str, String>> {
    let kind = PluginSpec::parse(spec).unwrap().kind;
    let ext = r.ext.as_ref()?;
    if ext.present & 1 << kind.number() == 0 {
        return None;
    }
    let mut out = BTreeMap::new();
    for ie in kind.elements() {
        let v = match ext.get(ie.ext_key(false)) {
            Some(ExtValue::Bytes(b)) => String::from_utf8(b.to_vec()).expect("UTF-8"),
            Some(ExtValue::Unsigned(n)) => n.to_string(),
            Some(other) => format!("{other:?}"),
            None => continue,
        };
        out.insert(ie.name, v);
    }
    Some(out)
}

/// The values of every record (`None` for records without the plugin's elements).
pub fn run(spec: &str, packets: &[Segment]) -> Vec<Option<BTreeMap<&'static str, String>>> {
    records(&[spec], packets)
        .iter()
        .map(|r| values(spec, r))
        .collect()
}

/// One record's value of an element, "" when it has none.
pub fn get<'a>(r: &'a Option<BTreeMap<&'static str, String>>, name: &str) -> &'a str {
    r.as_ref()
        .and_then(|m| m.get(name))
        .map_or("", String::as_str)
}

/// A deterministic xorshift generator for the damaged-message tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A damaged copy of `msg`: cut, octets flipped, separators and line ends inserted or
/// removed, a piece repeated.
pub fn mutate(rng: &mut Rng, msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(m.len() + 1);
        match rng.below(7) {
            0 => m.truncate(at),
            1 if at < m.len() => m[at] = rng.next() as u8,
            2 => m.insert(
                at.min(m.len()),
                [b'\r', b'\n', b':', b' ', b'<', b'>', b';'][rng.below(7)],
            ),
            3 if at < m.len() => {
                m.remove(at);
            }
            4 => {
                let end = (at + rng.below(64)).min(m.len());
                let piece = m[at..end].to_vec();
                m.splice(at..at, piece);
            }
            5 => m
                .splice(at..at, std::iter::repeat_n(b'x', rng.below(5000)))
                .for_each(drop),
            _ => m = m[rng.below(m.len() + 1).min(at)..].to_vec(),
        }
    }
    m
}
