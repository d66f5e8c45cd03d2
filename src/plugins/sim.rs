//! Test helpers for the mqtt, ovpn and wg plugins: IPv4 TCP and UDP packets built octet by
//! octet between two hosts, run through the real meter (decoder, look-ahead queue, streams,
//! plugin seam) with plugins enabled as `--plugin` enables them; and damaged copies of
//! packets for the parsers.

use crate::capture::linktype;
use crate::decode::{decode_with_details, DecodeConfig};
use crate::ie::TABLE;
use crate::ipfix::TemplateSpec;
use crate::meter::{ExtValue, FlowRecord, Lookahead, Meter, MeterConfig};
use crate::plugins::{build, PluginSpec};
use crate::time::Timestamp;

/// TCP flags.
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH_ACK: u8 = 0x18;
pub const FIN_ACK: u8 = 0x11;

/// Two hosts talking over one pair of ports: the client (forward) 10.0.0.1:`cport` and the
/// server 10.0.0.2:`sport`; each side's next TCP sequence number.
pub struct Conn {
    pub cport: u16,
    pub sport: u16,
    pub seq: [u32; 2],
}

impl Conn {
    pub fn new(cport: u16, sport: u16) -> Conn {
        Conn {
            cport,
            sport,
            seq: [1_000, 50_000],
        }
    }

    fn ip(&self, reverse: bool, proto: u8, l4: &[u8]) -> Vec<u8> {
        let total = 20 + l4.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            proto,
        ];
        ip.extend_from_slice(&[0, 0]);
        let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
        let (src, dst) = if reverse { (b, a) } else { (a, b) };
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        ip.extend_from_slice(l4);
        ip
    }

    fn ports(&self, reverse: bool) -> (u16, u16) {
        if reverse {
            (self.sport, self.cport)
        } else {
            (self.cport, self.sport)
        }
    }

    /// A UDP datagram carrying `payload`.
    pub fn udp(&self, reverse: bool, payload: &[u8]) -> Vec<u8> {
        let (sp, dp) = self.ports(reverse);
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sp.to_be_bytes());
        l4.extend_from_slice(&dp.to_be_bytes());
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        self.ip(reverse, 17, &l4)
    }

    /// A TCP segment at the side's next sequence number (which it advances), with `flags`.
    pub fn tcp(&mut self, reverse: bool, flags: u8, payload: &[u8]) -> Vec<u8> {
        let d = usize::from(reverse);
        let seq = self.seq[d];
        let ack = self.seq[1 - d];
        let used = payload.len() as u32 + u32::from(flags & (SYN | 0x01) != 0);
        self.seq[d] = seq.wrapping_add(used);
        self.tcp_at(reverse, flags, seq, ack, payload)
    }

    /// A TCP segment at sequence number `seq` (nothing advanced: a retransmission, or a
    /// segment placed out of order).
    pub fn tcp_at(&self, reverse: bool, flags: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
        let (sp, dp) = self.ports(reverse);
        let mut l4 = Vec::new();
        l4.extend_from_slice(&sp.to_be_bytes());
        l4.extend_from_slice(&dp.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&ack.to_be_bytes());
        l4.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        l4.extend_from_slice(payload);
        self.ip(reverse, 6, &l4)
    }

    /// The three-way handshake.
    pub fn open(&mut self) -> Vec<Vec<u8>> {
        vec![
            self.tcp(false, SYN, &[]),
            self.tcp(true, SYN | ACK, &[]),
            self.tcp(false, ACK, &[]),
        ]
    }
}

/// The records of raw IPv4 packets (one a millisecond) metered with `plugins` (`--plugin`
/// arguments), in the order the meter ends them. A packet cut to `snap` octets when given.
pub fn run_snap(plugins: &[&str], packets: &[Vec<u8>], snap: Option<usize>) -> Vec<FlowRecord> {
    let named: Vec<PluginSpec> = plugins
        .iter()
        .map(|p| PluginSpec::parse(p).unwrap())
        .collect();
    let (_, set, needs) = build(&named, &TemplateSpec::qof_default()).unwrap();
    let cfg = DecodeConfig {
        headers: needs.headers,
        tcp_options: needs.tcp_options,
        ..DecodeConfig::default()
    };
    let mut meter = Lookahead::new(Meter::with_plugins(MeterConfig::default(), set));
    let mut out = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        let frame = &p[..snap.unwrap_or(p.len()).min(p.len())];
        let (pkt, details) = meter.next_packet_with_details();
        if decode_with_details(linktype::RAW, frame, &cfg, pkt, details).is_ok() {
            meter.push(Timestamp::from_millis(1_700_000_000_000 + i as u64), frame);
        }
        out.extend(std::iter::from_fn(|| meter.poll_record()));
    }
    meter.flush();
    out.extend(std::iter::from_fn(|| meter.poll_record()));
    out
}

pub fn run(plugins: &[&str], packets: &[Vec<u8>]) -> Vec<FlowRecord> {
    run_snap(plugins, packets, None)
}

/// Octets the plugins' tables and streams hold after `packets`, their flows still open.
pub fn held(plugins: &[&str], packets: &[Vec<u8>]) -> usize {
    let named: Vec<PluginSpec> = plugins
        .iter()
        .map(|p| PluginSpec::parse(p).unwrap())
        .collect();
    let (_, set, _) = build(&named, &TemplateSpec::qof_default()).unwrap();
    let mut meter = Lookahead::new(Meter::with_plugins(MeterConfig::default(), set));
    for (i, p) in packets.iter().enumerate() {
        let (pkt, details) = meter.next_packet_with_details();
        if decode_with_details(linktype::RAW, p, &DecodeConfig::default(), pkt, details).is_ok() {
            meter.push(Timestamp::from_millis(1_700_000_000_000 + i as u64), p);
        }
    }
    meter.drain();
    meter.meter().plugins().memory().2
}

/// The value the record carries for the element named `name`: an unsigned number, or `None`
/// when the record does not carry it.
pub fn uint(r: &FlowRecord, name: &str) -> Option<u64> {
    match value(r, name)? {
        ExtValue::Unsigned(v) => Some(v),
        v => panic!("{name} is {v:?}"),
    }
}

/// A string element's value.
pub fn string(r: &FlowRecord, name: &str) -> Option<String> {
    match value(r, name)? {
        ExtValue::Bytes(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
        v => panic!("{name} is {v:?}"),
    }
}

fn value<'r>(r: &'r FlowRecord, name: &str) -> Option<ExtValue<'r>> {
    let ie = TABLE.iter().find(|ie| ie.name == name).unwrap();
    r.ext.as_ref()?.get(ie.ext_key(false))
}

/// Packets a record counts, both directions.
pub fn packets(r: &FlowRecord) -> u64 {
    r.fwd.packets + r.rev.packets
}

/// A deterministic source of damaged copies (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A copy of `b` with one to five changes: an octet flipped, set to 0, 0xff or 0x80 (a
    /// continued length), a cut, a run repeated or removed, junk appended.
    pub fn mutate(&mut self, b: &[u8]) -> Vec<u8> {
        let mut v = b.to_vec();
        for _ in 0..=self.below(5) {
            let i = self.below(v.len().max(1));
            match self.below(8) {
                0 if !v.is_empty() => v[i] ^= 1 << self.below(8),
                1 if !v.is_empty() => v[i] = 0,
                2 if !v.is_empty() => v[i] = 0xff,
                3 if !v.is_empty() => v[i] = 0x80 | self.next() as u8,
                4 => v.truncate(i),
                5 if !v.is_empty() => {
                    let end = (i + self.below(24)).min(v.len());
                    let run = v[i..end].to_vec();
                    v.splice(i..i, run);
                }
                6 if !v.is_empty() => {
                    let end = (i + self.below(24)).min(v.len());
                    v.drain(i..end);
                }
                _ => {
                    let n = self.below(40);
                    for _ in 0..n {
                        v.push(self.next() as u8);
                    }
                }
            }
        }
        v
    }
}

/// The transport payloads (as captured) of the packets of corpus capture `file`
/// (`tests/data/corpus`) with IP protocol `proto`, read with qof's own reader and decoder.
pub fn corpus_payloads(file: &str, proto: u8) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/corpus")
        .join(file);
    let mut src = crate::capture::open(path.to_str().unwrap()).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        let (mut pkt, mut d) = (crate::decode::Packet::default(), Default::default());
        let cfg = DecodeConfig::default();
        if decode_with_details(f.linktype, f.data, &cfg, &mut pkt, &mut d).is_err()
            || pkt.key.proto != proto
            || d.payload_off == 0
        {
            continue;
        }
        let p = f.data.get(d.payload_off as usize..).unwrap_or(&[]);
        let n = p.len().min(pkt.payload_len as usize);
        if n > 0 {
            out.push(p[..n].to_vec());
        }
    }
    out
}
