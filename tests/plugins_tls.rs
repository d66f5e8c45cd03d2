//! The tls and quic plugins against an oracle we did not write: qof (`--plugin tls --plugin
//! quic`, JSON) over every corpus capture, and tshark's own dissection of the same packets
//! (it reassembles TCP and decrypts QUIC Initial packets itself). tshark's values are grouped
//! into qof's flows by 5-tuple and time; per field, at least 97 % of tshark's values must be
//! found in qof's record of the flow and at most 1 % contradicted, and every value qof misses
//! or contradicts must be one explained in `EXPLAINED`.
//!
//! A value is *found* when qof's value is one of tshark's values for the flow (a flow can hold
//! two ClientHellos, after a HelloRetryRequest or a Retry), *contradicted* when qof has
//! another value, *missed* when qof has none (or no flow for tshark's packets).
//!
//! Fields: TLSSNI, tlsJa3Fingerprint (tshark's `tls.handshake.ja3`, the MD5 of its JA3
//! string), tlsAlpn and tlsServerVersion (from the ServerHello), TLSJA4 when this tshark has
//! `tls.handshake.ja4` (4.2 on; 4.0 has not: the unit tests check JA4 against FoxIO's published
//! example instead); quicSNI, quicClientVersion (`quic.version` of the packet completing the
//! ClientHello), quicOSCID and quicOCCID (`quic.dcid` and `quic.scid` of that packet),
//! quicSCID (`quic.scid` of the packet with the server's ServerHello), quicVersion (one of the
//! versions of the flow's long headers).

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

/// Every value qof misses or contradicts, by capture and field: how many, and why.
const EXPLAINED: &[(&str, &str, usize, &str)] = &[
    ("ndpi__6in4tunnel.pcap", "TLSSNI", 2, TUNNEL_6IN4),
    ("ndpi__6in4tunnel.pcap", "tlsJa3Fingerprint", 2, TUNNEL_6IN4),
    ("ndpi__6in4tunnel.pcap", "tlsServerVersion", 2, TUNNEL_6IN4),
    ("ndpi__vxlan.pcap", "TLSSNI", 2, TUNNEL_VXLAN),
    ("ndpi__vxlan.pcap", "tlsJa3Fingerprint", 2, TUNNEL_VXLAN),
    ("ndpi__vxlan.pcap", "tlsServerVersion", 2, TUNNEL_VXLAN),
];

/// Why tunnelled hellos are not in qof's records.
const TUNNEL_6IN4: &str = "two TLS connections over IPv6 inside IPv4 (protocol 41): qof's \
    decoder meters the tunnel (one IPv4 flow of protocol 41), not the IPv6 flows in it, so \
    no qof record has their 5-tuples; tshark dissects the inner packets";
const TUNNEL_VXLAN: &str = "two TLS connections inside VXLAN (UDP 4789): qof meters the \
    outer UDP flow and does not decapsulate VXLAN, so no qof record has the inner 5-tuples";

/// A flow's two ends, in sorted order, and its protocol.
type Key = (u8, (IpAddr, u16), (IpAddr, u16));

fn key(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> Key {
    if a <= b {
        (proto, a, b)
    } else {
        (proto, b, a)
    }
}

/// One qof record: its key, first and last packet (ms since the epoch), its values.
struct Record {
    key: Key,
    start: u64,
    end: u64,
    values: serde_json::Map<String, Value>,
}

/// "2015-10-20T07:09:33.614Z" -> ms since the epoch.
fn millis(t: &str) -> u64 {
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    (secs * 1000 + n(20..23)) as u64
}

fn qof_records(cap: &Path, out: &Path) -> Vec<Record> {
    let r = run(qof()
        .arg("--in")
        .arg(cap)
        .args([
            "--plugin", "tls", "--plugin", "quic", "--format", "json", "--out",
        ])
        .arg(out));
    let stderr = String::from_utf8_lossy(&r.stderr);
    // (Two corpus files end in damage: qof stops there with status 1, flows written.)
    assert!(
        matches!(r.status.code(), Some(0 | 1)) && !stderr.contains("panicked"),
        "{}: {stderr}",
        name(cap)
    );
    let text = std::fs::read_to_string(out).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Map<String, Value> = serde_json::from_str(l).unwrap();
            let addr = |k4: &str, k6: &str| -> IpAddr {
                v.get(k4)
                    .or_else(|| v.get(k6))
                    .and_then(Value::as_str)
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            let port = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0) as u16;
            let src = (
                addr("sourceIPv4Address", "sourceIPv6Address"),
                port("sourceTransportPort"),
            );
            let dst = (
                addr("destinationIPv4Address", "destinationIPv6Address"),
                port("destinationTransportPort"),
            );
            let proto = v["protocolIdentifier"].as_u64().unwrap() as u8;
            Record {
                key: key(proto, src, dst),
                start: millis(v["flowStartMilliseconds"].as_str().unwrap()),
                end: millis(v["flowEndMilliseconds"].as_str().unwrap()),
                values: v,
            }
        })
        .collect()
}

/// The tshark fields read, in order.
const FIELDS: &[&str] = &[
    "frame.time_epoch",
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
    "tls.handshake.type",
    "tls.handshake.extensions_server_name",
    "tls.handshake.ja3",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.version",
    "tls.handshake.extensions.supported_version",
    "quic.version",
    "quic.dcid",
    "quic.scid",
];

/// One packet as tshark dissects it: each field's occurrences, in order.
struct Packet(BTreeMap<&'static str, Vec<String>>);

impl Packet {
    fn all(&self, f: &str) -> &[String] {
        self.0.get(f).map_or(&[], Vec::as_slice)
    }
    fn first(&self, f: &str) -> Option<&str> {
        self.all(f)
            .first()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    /// The innermost value (tunnels put the outer header first).
    fn last(&self, f: &str) -> Option<&str> {
        self.all(f)
            .last()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    fn has_type(&self, t: &str) -> bool {
        self.all("tls.handshake.type").iter().any(|x| x == t)
    }
}

fn tshark_packets(cap: &Path, fields: &[&'static str]) -> Vec<Packet> {
    let mut cmd = Command::new("tshark");
    // (Segments out of order are reassembled, as qof's streams do; tshark 4.0 leaves that
    // off by default.)
    cmd.arg("-r").arg(cap).args([
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-Y",
        "tls.handshake.type == 1 || tls.handshake.type == 2 || quic.version",
        "-T",
        "fields",
        "-E",
        "separator=\t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run(&mut cmd);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            Packet(
                fields
                    .iter()
                    .zip(l.split('\t'))
                    .map(|(f, v)| (*f, v.split('|').map(str::to_string).collect()))
                    .collect(),
            )
        })
        .collect()
}

/// tshark's "0x0303" as qof's JSON number.
fn hex_number(s: &str) -> Option<String> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .ok()
        .map(|v| v.to_string())
}

/// The values tshark gives for one packet: (qof field, value).
fn values_of(p: &Packet, ja4: bool) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    let quic = p.first("tcp.srcport").is_none();
    let mut put = |field: &'static str, value: Option<String>| {
        if let Some(value) = value.filter(|s| !s.is_empty()) {
            v.push((field, value));
        }
    };
    let s = |x: Option<&str>| x.map(str::to_string);
    if p.has_type("1") {
        if quic {
            put(
                "quicSNI",
                s(p.first("tls.handshake.extensions_server_name")),
            );
            put(
                "quicClientVersion",
                p.first("quic.version").and_then(hex_number),
            );
            put("quicOSCID", s(p.first("quic.dcid")));
            put("quicOCCID", s(p.first("quic.scid")));
        } else {
            put("TLSSNI", s(p.first("tls.handshake.extensions_server_name")));
            put("tlsJa3Fingerprint", s(p.first("tls.handshake.ja3")));
            if ja4 {
                put("TLSJA4", s(p.first("tls.handshake.ja4")));
            }
        }
    }
    if p.has_type("2") {
        if quic {
            put("quicSCID", s(p.first("quic.scid")));
        } else {
            put("tlsAlpn", s(p.first("tls.handshake.extensions_alpn_str")));
            let version = p
                .first("tls.handshake.extensions.supported_version")
                .or(p.first("tls.handshake.version"));
            put("tlsServerVersion", version.and_then(hex_number));
        }
    }
    if quic {
        for version in p.all("quic.version") {
            put("quicVersion", hex_number(version));
        }
    }
    v
}

/// qof's value of a field as a string, if it has one.
fn qof_value(r: &Record, field: &str) -> Option<String> {
    match r.values.get(field)? {
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    total: usize,
    found: usize,
    contradicted: usize,
    missed: usize,
}

#[test]
fn tls_and_quic_values_match_tshark_on_every_corpus_capture() {
    if !have_tool("tshark") {
        return;
    }
    let listed = run(Command::new("tshark").args(["-G", "fields"]));
    let ja4 = String::from_utf8_lossy(&listed.stdout).contains("\ttls.handshake.ja4\t");
    let mut fields = FIELDS.to_vec();
    if ja4 {
        fields.push("tls.handshake.ja4");
    }
    let tmp = tempfile::tempdir().unwrap();
    // (capture, field) -> tally; (capture, field) -> examples of what was not found.
    let mut tallies: BTreeMap<(String, &str), Tally> = BTreeMap::new();
    let mut examples: BTreeMap<(String, &str), Vec<String>> = BTreeMap::new();
    let mut captures = corpus_files();
    captures.extend(synthetic::write_all(tmp.path()));
    for cap in captures {
        let capture = name(&cap);
        let records = qof_records(&cap, &tmp.path().join("out.json"));
        let mut by_key: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            by_key.entry(r.key).or_default().push(i);
        }
        // tshark's values per (qof record or unmatched key, field).
        let mut theirs: BTreeMap<(Result<usize, Key>, &str), BTreeSet<String>> = BTreeMap::new();
        for p in tshark_packets(&cap, &fields) {
            let (Some(time), Some(proto)) = (
                p.first("frame.time_epoch"),
                if p.first("tcp.srcport").is_some() {
                    Some(6u8)
                } else if p.first("udp.srcport").is_some() {
                    Some(17)
                } else {
                    None
                },
            ) else {
                continue;
            };
            let t = (time.parse::<f64>().unwrap() * 1000.0) as u64;
            let (sp, dp) = match proto {
                6 => ("tcp.srcport", "tcp.dstport"),
                _ => ("udp.srcport", "udp.dstport"),
            };
            let addr = |v6: &str, v4: &str| -> IpAddr {
                p.last(v6).or(p.last(v4)).unwrap().parse().unwrap()
            };
            let port = |f: &str| p.last(f).unwrap().parse::<u16>().unwrap();
            let k = key(
                proto,
                (addr("ipv6.src", "ip.src"), port(sp)),
                (addr("ipv6.dst", "ip.dst"), port(dp)),
            );
            // The record of that 5-tuple whose time holds the packet.
            let rec = by_key.get(&k).and_then(|rs| {
                rs.iter()
                    .copied()
                    .find(|&i| records[i].start <= t + 1 && t <= records[i].end + 1)
            });
            for (field, value) in values_of(&p, ja4) {
                theirs
                    .entry((rec.ok_or(k), field))
                    .or_default()
                    .insert(value);
            }
        }
        for ((rec, field), values) in theirs {
            let t = tallies.entry((capture.clone(), field)).or_default();
            t.total += 1;
            let ours = rec.ok().and_then(|i| qof_value(&records[i], field));
            match ours {
                Some(v) if values.contains(&v) => t.found += 1,
                Some(v) => {
                    t.contradicted += 1;
                    examples
                        .entry((capture.clone(), field))
                        .or_default()
                        .push(format!("qof {v}, tshark {values:?}"));
                }
                None => {
                    t.missed += 1;
                    let why = match rec {
                        Ok(i) => format!("record {i} has none"),
                        Err(k) => format!("no qof flow {k:?}"),
                    };
                    examples
                        .entry((capture.clone(), field))
                        .or_default()
                        .push(format!("{why}; tshark {values:?}"));
                }
            }
        }
    }
    // The per-capture table, then the totals per field.
    let mut table = String::from("capture                                   field                  tshark  found  contra  missed\n");
    let mut per_field: BTreeMap<&str, Tally> = BTreeMap::new();
    for ((capture, field), t) in &tallies {
        table.push_str(&format!(
            "{capture:<41} {field:<22} {:>6} {:>6} {:>7} {:>7}\n",
            t.total, t.found, t.contradicted, t.missed
        ));
        let f = per_field.entry(field).or_default();
        f.total += t.total;
        f.found += t.found;
        f.contradicted += t.contradicted;
        f.missed += t.missed;
    }
    table.push_str("\nall captures\n");
    for (field, t) in &per_field {
        table.push_str(&format!(
            "{field:<22} {:>6} tshark values, {:>6} found ({:.2} %), {} contradicted, {} missed\n",
            t.total,
            t.found,
            100.0 * t.found as f64 / t.total as f64,
            t.contradicted,
            t.missed
        ));
    }
    eprintln!("{table}");
    for (field, t) in &per_field {
        let n = t.total as f64;
        assert!(
            t.found as f64 >= 0.97 * n,
            "{field}: found {} of {}",
            t.found,
            t.total
        );
        assert!(
            t.contradicted as f64 <= 0.01 * n,
            "{field}: {} contradicted",
            t.contradicted
        );
    }
    // The synthetic captures: a ClientHello over three TCP segments out of order (and one
    // retransmitted), one over two TLS records, QUIC ClientHellos over two Initial packets in
    // versions 1 and 2: tshark's values, every one found.
    for (capture, fields) in synthetic::EXPECTED {
        for field in *fields {
            let t = tallies
                .get(&(capture.to_string(), *field))
                .copied()
                .unwrap_or_default();
            assert!(
                t.total > 0 && t.found == t.total,
                "{capture} {field}: {} of {}",
                t.found,
                t.total
            );
        }
    }
    for expected in [
        "TLSSNI",
        "tlsJa3Fingerprint",
        "tlsAlpn",
        "tlsServerVersion",
        "quicSNI",
        "quicClientVersion",
        "quicOSCID",
        "quicSCID",
        "quicVersion",
    ] {
        assert!(
            per_field.contains_key(expected),
            "tshark gave no {expected}"
        );
    }
    // Every miss is explained, with its count; no explanation is stale.
    let mut unexplained = Vec::new();
    for ((capture, field), t) in &tallies {
        let misses = t.contradicted + t.missed;
        let explained = EXPLAINED
            .iter()
            .find(|(c, f, _, _)| c == capture && f == field)
            .map_or(0, |e| e.2);
        if misses != explained {
            unexplained.push(format!(
                "{capture} {field}: {misses} misses, {explained} explained: {:?}",
                examples.get(&(capture.clone(), *field))
            ));
        }
    }
    for (c, f, n, _) in EXPLAINED {
        if !tallies.contains_key(&(c.to_string(), *f)) {
            unexplained.push(format!("{c} {f}: {n} explained, none seen"));
        }
    }
    assert!(unexplained.is_empty(), "{}", unexplained.join("\n"));
}

/// Captures this test writes: what the corpus lacks (no ClientHello in it spans TCP segments
/// or QUIC packets).
mod synthetic {
    use ring::aead::quic::{HeaderProtectionKey, AES_128};
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
    use ring::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};
    use std::path::{Path, PathBuf};

    /// The fields each synthetic capture must give, all found.
    pub const EXPECTED: &[(&str, &[&str])] = &[
        (
            "synthetic-tcp-segments.pcap",
            &["TLSSNI", "tlsJa3Fingerprint", "tlsAlpn", "tlsServerVersion"],
        ),
        (
            "synthetic-tls-records.pcap",
            &["TLSSNI", "tlsJa3Fingerprint", "tlsAlpn", "tlsServerVersion"],
        ),
        (
            "synthetic-quic-v1.pcap",
            &[
                "quicSNI",
                "quicClientVersion",
                "quicOSCID",
                "quicOCCID",
                "quicVersion",
            ],
        ),
        (
            "synthetic-quic-v2.pcap",
            &[
                "quicSNI",
                "quicClientVersion",
                "quicOSCID",
                "quicOCCID",
                "quicVersion",
            ],
        ),
    ];

    pub fn write_all(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut put = |name: &str, packets: Vec<Vec<u8>>| {
            let path = dir.join(name);
            std::fs::write(&path, pcap(&packets)).unwrap();
            out.push(path);
        };
        put("synthetic-tcp-segments.pcap", tcp_segments());
        put("synthetic-tls-records.pcap", tls_records());
        put("synthetic-quic-v1.pcap", quic(1));
        put("synthetic-quic-v2.pcap", quic(0x6b33_43cf));
        out
    }

    /// A pcap of raw IPv4 packets (LINKTYPE_RAW), 10 ms apart.
    fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 101] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for (i, p) in packets.iter().enumerate() {
            let us = i as u32 * 10_000;
            for v in [
                1_750_000_000 + us / 1_000_000,
                us % 1_000_000,
                p.len() as u32,
                p.len() as u32,
            ] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend_from_slice(p);
        }
        f
    }

    const CLIENT: [u8; 4] = [10, 0, 0, 1];
    const SERVER: [u8; 4] = [192, 0, 2, 7];

    fn ipv4(from_client: bool, proto: u8, l4: &[u8]) -> Vec<u8> {
        let total = 20 + l4.len();
        let (src, dst) = if from_client {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            proto,
            0,
            0,
        ];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let sum = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        ip.extend_from_slice(l4);
        ip
    }

    /// A TCP segment of the connection 10.0.0.1:40001 <-> 192.0.2.7:443 (checksum left 0:
    /// tshark does not check it unless asked).
    fn tcp(from_client: bool, seq: u32, ack: u32, flags: u8, data: &[u8]) -> Vec<u8> {
        let (sp, dp) = if from_client {
            (40001u16, 443u16)
        } else {
            (443, 40001)
        };
        let mut t = Vec::new();
        t.extend_from_slice(&sp.to_be_bytes());
        t.extend_from_slice(&dp.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&ack.to_be_bytes());
        t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(data);
        ipv4(from_client, 6, &t)
    }

    fn v16(b: &[u8]) -> Vec<u8> {
        [&(b.len() as u16).to_be_bytes()[..], b].concat()
    }

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        [&ty.to_be_bytes()[..], &v16(data)].concat()
    }

    fn u16s(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        [&[ty, (n >> 16) as u8, (n >> 8) as u8, n as u8][..], body].concat()
    }

    /// A ClientHello as browsers send them now: GREASE, an X25519MLKEM768 key share (1,216 +
    /// 32 octets) beside X25519's, padding: about 1.8 kB; for QUIC, transport parameters.
    fn client_hello(sni: &str, quic: bool) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[0x11; 32]);
        b.push(32);
        b.extend_from_slice(&[0x22; 32]);
        b.extend_from_slice(&v16(&u16s(&[
            0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f,
        ])));
        b.extend_from_slice(&[1, 0]);
        let name = [&[0u8][..], &v16(sni.as_bytes())].concat();
        let mut exts = vec![
            ext(0x1a1a, &[]),
            ext(0, &v16(&name)),
            ext(10, &v16(&u16s(&[0x2a2a, 0x11ec, 29, 23]))),
            ext(11, &[1, 0]),
            ext(13, &v16(&u16s(&[0x0403, 0x0804, 0x0401]))),
            ext(16, &v16(&[2, b'h', if quic { b'3' } else { b'2' }])),
            ext(43, &[6, 0x3a, 0x3a, 3, 4, 3, 3]),
        ];
        let shares = [
            &u16s(&[0x11ec, 1216])[..],
            &[0x5a; 1216],
            &u16s(&[29, 32]),
            &[0x6b; 32],
        ]
        .concat();
        exts.push(ext(51, &v16(&shares)));
        exts.push(ext(45, &[1, 1]));
        if quic {
            exts.push(ext(
                57,
                &[0x04, 0x02, 0x43, 0xe8, 0x0f, 0x04, 0xc1, 0xc2, 0xc3, 0xc4],
            ));
        }
        exts.push(ext(0x4a4a, &[0]));
        // (Padding, RFC 7685, as Chrome adds: about 1.8 kB in all.)
        exts.push(ext(21, &[0; 300]));
        b.extend_from_slice(&v16(&exts.concat()));
        handshake(1, &b)
    }

    /// A TLS 1.2 ServerHello choosing h2.
    fn server_hello() -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[0x33; 32]);
        b.push(0);
        b.extend_from_slice(&[0xc0, 0x2f, 0]);
        b.extend_from_slice(&v16(
            &[ext(0xff01, &[0]), ext(16, &v16(&[2, b'h', b'2']))].concat()
        ));
        handshake(2, &b)
    }

    fn record(fragment: &[u8]) -> Vec<u8> {
        [&[22, 3, 1][..], &v16(fragment)].concat()
    }

    /// The three-way handshake, then `client` sent in `cuts` (segments out of order, the
    /// first retransmitted), then the server's flight.
    fn tcp_flow(client: &[u8], cuts: &[usize], server: &[u8]) -> Vec<Vec<u8>> {
        let (c0, s0) = (1000u32, 5000u32);
        let mut p = vec![
            tcp(true, c0, 0, 0x02, &[]),
            tcp(false, s0, c0 + 1, 0x12, &[]),
            tcp(true, c0 + 1, s0 + 1, 0x10, &[]),
        ];
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(client.len());
        let segs: Vec<(u32, &[u8])> = bounds
            .windows(2)
            .map(|w| (c0 + 1 + w[0] as u32, &client[w[0]..w[1]]))
            .collect();
        // Second, first, first again, then the rest.
        let mut order = vec![1, 0, 0];
        order.extend(2..segs.len());
        for i in order {
            p.push(tcp(true, segs[i].0, s0 + 1, 0x18, segs[i].1));
        }
        let end = c0 + 1 + client.len() as u32;
        p.push(tcp(false, s0 + 1, end, 0x18, server));
        p.push(tcp(true, end, s0 + 1 + server.len() as u32, 0x10, &[]));
        p
    }

    fn tcp_segments() -> Vec<Vec<u8>> {
        let ch = record(&client_hello("segments.example", false));
        assert!(ch.len() > 1700);
        tcp_flow(&ch, &[600, 1200], &record(&server_hello()))
    }

    fn tls_records() -> Vec<Vec<u8>> {
        // The handshake message cut over two records (RFC 8446 §5.1 allows it).
        let ch = client_hello("records.example", false);
        let two = [record(&ch[..700]), record(&ch[700..])].concat();
        tcp_flow(&two, &[1000], &record(&server_hello()))
    }

    struct Len(usize);
    impl KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }

    fn expand(prk: &Prk, label: &[u8], out: &mut [u8]) {
        let full = [b"tls13 ", label].concat();
        let info = [
            &(out.len() as u16).to_be_bytes()[..],
            &[full.len() as u8],
            &full,
            &[0],
        ];
        prk.expand(&info, Len(out.len()))
            .unwrap()
            .fill(out)
            .unwrap();
    }

    /// A client Initial of `version` to `dcid`, protected (RFC 9001 §5, RFC 9369 §3.3).
    fn initial(version: u32, dcid: &[u8], scid: &[u8], pn: u8, frames: &[u8]) -> Vec<u8> {
        let v2 = version != 1;
        let salt: &[u8] = if v2 {
            &[
                0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9,
            ]
        } else {
            &[
                0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
            ]
        };
        let initial = Salt::new(HKDF_SHA256, salt).extract(dcid);
        let mut secret = [0; 32];
        expand(&initial, b"client in", &mut secret);
        let client = Prk::new_less_safe(HKDF_SHA256, &secret);
        let p: &[u8] = if v2 { b"quicv2 " } else { b"quic " };
        let (mut key, mut iv, mut hp) = ([0; 16], [0; 12], [0; 16]);
        expand(&client, &[p, b"key"].concat(), &mut key);
        expand(&client, &[p, b"iv"].concat(), &mut iv);
        expand(&client, &[p, b"hp"].concat(), &mut hp);
        let mut payload = frames.to_vec();
        payload.resize(1162, 0);
        let mut h = vec![if v2 { 0xd3 } else { 0xc3 }];
        h.extend_from_slice(&version.to_be_bytes());
        h.push(dcid.len() as u8);
        h.extend_from_slice(dcid);
        h.push(scid.len() as u8);
        h.extend_from_slice(scid);
        h.push(0);
        h.extend_from_slice(&(0x4000u16 | (4 + payload.len() + 16) as u16).to_be_bytes());
        let pn_at = h.len();
        h.extend_from_slice(&[0, 0, 0, pn]);
        iv[11] ^= pn;
        let aead = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).unwrap());
        aead.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(&h),
            &mut payload,
        )
        .unwrap();
        let mut packet = [h, payload].concat();
        let mask = HeaderProtectionKey::new(&AES_128, &hp)
            .unwrap()
            .new_mask(&packet[pn_at + 4..pn_at + 20])
            .unwrap();
        packet[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            packet[pn_at + i] ^= mask[1 + i];
        }
        packet
    }

    fn udp(from_client: bool, payload: &[u8]) -> Vec<u8> {
        let (sp, dp) = if from_client {
            (40002u16, 443u16)
        } else {
            (443, 40002)
        };
        let mut u = Vec::new();
        u.extend_from_slice(&sp.to_be_bytes());
        u.extend_from_slice(&dp.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        ipv4(from_client, 17, &u)
    }

    fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x06];
        f.extend_from_slice(&(0x4000 | offset as u16).to_be_bytes());
        f.extend_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
        f.extend_from_slice(data);
        f
    }

    /// A ClientHello over two client Initials (CRYPTO frames at 0 and 1000).
    fn quic(version: u32) -> Vec<Vec<u8>> {
        let ch = client_hello(&format!("v{version:x}.quic.example"), true);
        assert!(ch.len() > 1200);
        let (dcid, scid) = (
            [0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8],
            [0xc1, 0xc2, 0xc3, 0xc4],
        );
        vec![
            udp(
                true,
                &initial(version, &dcid, &scid, 0, &crypto(0, &ch[..1000])),
            ),
            udp(
                true,
                &initial(version, &dcid, &scid, 1, &crypto(1000, &ch[1000..])),
            ),
        ]
    }
}
