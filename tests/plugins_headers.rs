//! The header plugins (basicplus, idpcontent, flowhash, icmp, vlan, mpls, headers) against
//! oracles we did not write.
//!
//! For every capture of the corpus, qof's JSON records (all seven plugins) are compared flow
//! by flow with tshark's per-packet decode of the same capture: tshark's packets are grouped
//! into qof's flows by their key (addresses, ports or ICMP type and code, protocol, innermost
//! VLAN) and, within a key, in capture order by the records' packet counts, oldest flowId
//! first; each plugin element is then computed from the group's packets as the element's
//! definition (and the plugin's documentation) says, and must equal what qof exported.
//! flowKeyHash is computed by libxxhash (the reference XXH64, through Python's ctypes) over the
//! octets the flowhash plugin documents.
//!
//! Principled exclusions, counted and printed:
//! * a key whose packets tshark and qof do not count alike (a frame one of them cannot decode
//!   as IP, such as a damaged header), so that its packets cannot be dealt to records: its
//!   records are not compared (corpus_flowdiff.rs scores the counts themselves);
//! * a later IP fragment whose first fragment never came: qof never counts it;
//! * TCP option kinds and IPv4 options of packets with two TCP or two IPv4 headers (a
//!   tunnel): tshark lists every header's together, so whose they are is not known;
//! * the TCP fields of a direction with a TCP header cut by the snaplen before its end:
//!   tshark reads what was captured of it, qof reads a TCP header only whole;
//! * IDPContent of protocols other than TCP and UDP, and of a direction whose first payload
//!   is a RST's: tshark names no payload octets for them (it shows a RST's as text).
//!
//! Also: ipfixDump (libfixbuf) reads IPFIX files with every element of these plugins without a
//! warning, with an element file for the CESNET (8057) and QoF (35566) elements, and prints
//! the values qof's JSON has; so does tshark's IPFIX dissector, which takes the MPLS label
//! stack section apart and shows the bitmaps and enterprise elements as octets.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

const PLUGINS: &[&str] = &[
    "basicplus",
    "idpcontent",
    "flowhash",
    "icmp",
    "vlan",
    "mpls",
    "headers",
];

/// qof's default template with the VLAN id (part of the flow key) and flowId (creation order).
fn template() -> String {
    let mut names: Vec<&str> = qof::ipfix::QOF_DEFAULT.to_vec();
    names.extend(["vlanId", "flowId"]);
    template_yaml(&names)
}

/// The fields read from tshark, every occurrence of each (outer headers first).
const FIELDS: &[&str] = &[
    "frame.protocols",
    "eth.type",
    "vlan.id",
    "vlan.priority",
    "vlan.etype",
    "ieee8021ad.id",
    "ieee8021ad.priority",
    "avsp.etype",
    "sll.etype",
    "mpls.label",
    "mpls.exp",
    "mpls.bottom",
    "mpls.ttl",
    "ip.src",
    "ip.dst",
    "ip.proto",
    "ip.ttl",
    "ip.dsfield",
    "ip.flags.df",
    "ip.flags.mf",
    "ip.frag_offset",
    "ip.id",
    "ip.len",
    "ip.hdr_len",
    "ip.opt.type",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.nxt",
    "ipv6.hlim",
    "ipv6.tclass",
    "ipv6.plen",
    "ipv6.hopopts.nxt",
    "ipv6.routing.nxt",
    "ipv6.dstopts.nxt",
    "ipv6.fraghdr.nxt",
    "ipv6.fraghdr.offset",
    "ipv6.fraghdr.more",
    "ipv6.fraghdr.ident",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.flags",
    "tcp.window_size_value",
    "tcp.option_kind",
    "tcp.options.mss_val",
    "tcp.payload",
    "tcp.len",
    "_ws.short",
    "udp.srcport",
    "udp.dstport",
    "udp.payload",
    "sctp.srcport",
    "sctp.dstport",
    "icmp.type",
    "icmp.code",
    "icmpv6.type",
    "icmpv6.code",
];

/// One frame as tshark printed it: every occurrence of each field.
struct Frame(HashMap<&'static str, Vec<String>>);

impl Frame {
    fn parse(line: &str) -> Frame {
        let mut m = HashMap::new();
        for (name, v) in FIELDS.iter().zip(line.split('\t')) {
            let occ: Vec<String> = if v.is_empty() {
                Vec::new()
            } else {
                v.split(',').map(str::to_string).collect()
            };
            m.insert(*name, occ);
        }
        Frame(m)
    }

    fn str(&self, name: &str, i: usize) -> Option<&str> {
        self.0.get(name)?.get(i).map(String::as_str)
    }

    /// A number as tshark prints it: decimal, 0x-hex, or a boolean.
    fn num(&self, name: &str, i: usize) -> Option<u64> {
        let s = self.str(name, i)?;
        match s {
            "True" => Some(1),
            "False" => Some(0),
            _ => match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            },
        }
    }

    fn count(&self, name: &str) -> usize {
        self.0.get(name).map_or(0, Vec::len)
    }
}

/// What a packet's headers say, as the elements need it.
#[derive(Clone, Debug)]
struct Pkt {
    v4: bool,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    /// The innermost VLAN id before the IP header (qof's key).
    vlan: u16,
    ttl: u64,
    tos: u64,
    fragment_flags: u64,
    ip_len: u64,
    /// (identification, a later fragment) of a fragment.
    frag: Option<(u64, bool)>,
    /// (flags, window, option kinds bitmap, first MSS) of a TCP header.
    tcp: Option<(u64, u64, u64, Option<u64>)>,
    /// The option kinds are this header's alone.
    tcp_clear: bool,
    /// The TCP header was cut by the snaplen before its end: tshark reads what there is of
    /// it, qof reads a TCP header only whole.
    tcp_cut: bool,
    payload: Option<String>,
    /// The segment carries payload that tshark shows only as text (a RST's "reset cause").
    payload_unknown: bool,
    icmp: Option<u16>,
    /// (id, priority) of each VLAN tag before the IP header, outer first.
    tags: Vec<(u64, u64)>,
    /// (label, TC, bottom, TTL) of the top MPLS entry.
    mpls: Option<(u64, u64, u64, u64)>,
    ethertype: u64,
    /// ipv4Options or ipv6ExtensionHeaders in IANA's layouts.
    options: u64,
    options_clear: bool,
    /// Shown to plugins (not a fragment counted before its first fragment came).
    visible: bool,
}

/// ipv4Options: the IANA-registered option types and their bit numbers (the element's table).
const IPV4_OPTION_BITS: &[(u64, u32)] = &[
    (0, 0),
    (1, 1),
    (130, 2),
    (131, 3),
    (68, 4),
    (133, 5),
    (134, 6),
    (7, 7),
    (136, 8),
    (137, 9),
    (10, 10),
    (11, 11),
    (12, 12),
    (205, 13),
    (142, 14),
    (15, 15),
    (144, 16),
    (145, 17),
    (82, 18),
    (147, 19),
    (148, 20),
    (149, 21),
    (150, 22),
    (151, 23),
    (152, 24),
    (25, 25),
    (30, 30),
    (94, 30),
    (158, 30),
    (222, 30),
];

/// ipv6ExtensionHeaders: IANA's "ipv6ExtensionHeaders Bits" registry (bit 0 least significant)
/// for the protocol numbers that end the chain qof walks.
fn v6_last_header_bit(proto: u64) -> u64 {
    match proto {
        135 => 1 << 7,
        50 => 1 << 8,
        51 => 1 << 9,
        139 => 1 << 10,
        140 => 1 << 11,
        253 => 1 << 12,
        254 => 1 << 13,
        _ => 0,
    }
}
const V6_DST: u64 = 1 << 0;
const V6_HOP: u64 = 1 << 1;
const V6_FRA0: u64 = 1 << 4;
const V6_RH: u64 = 1 << 5;
const V6_FRA1: u64 = 1 << 6;

/// The link layer before the IP header: VLAN tags, top MPLS entry, EtherType.
/// (label, TC, bottom of stack, TTL) of an MPLS label stack entry.
type MplsEntry = (u64, u64, u64, u64);

fn link_facts(f: &Frame, pre: &[&str]) -> (Vec<(u64, u64)>, Option<MplsEntry>, u64) {
    let (mut tags, mut ethertype, mut vlan_i, mut ad_i) = (Vec::new(), 0, 0, 0);
    let mut mpls = None;
    for (i, t) in pre.iter().enumerate() {
        let announces = pre.get(i + 1) == Some(&"ethertype");
        match *t {
            "eth" if announces => ethertype = f.num("eth.type", 0).unwrap_or(0),
            "sll" if announces => ethertype = f.num("sll.etype", 0).unwrap_or(0),
            "avsp" if announces => ethertype = f.num("avsp.etype", 0).unwrap_or(0),
            "vlan" => {
                let tag = (f.num("vlan.id", vlan_i), f.num("vlan.priority", vlan_i));
                tags.push((tag.0.unwrap_or(0), tag.1.unwrap_or(0)));
                if announces {
                    ethertype = f.num("vlan.etype", vlan_i).unwrap_or(0);
                }
                vlan_i += 1;
            }
            "ieee8021ad" => {
                let tag = (
                    f.num("ieee8021ad.id", ad_i),
                    f.num("ieee8021ad.priority", ad_i),
                );
                tags.push((tag.0.unwrap_or(0), tag.1.unwrap_or(0)));
                ad_i += 1;
            }
            "mpls" if mpls.is_none() => {
                let e = |n| f.num(n, 0).unwrap_or(0);
                mpls = Some((
                    e("mpls.label"),
                    e("mpls.exp"),
                    e("mpls.bottom"),
                    e("mpls.ttl"),
                ));
            }
            _ => {}
        }
    }
    (tags, mpls, ethertype)
}

fn addr(f: &Frame, name: &str) -> Option<IpAddr> {
    f.str(name, 0)?.parse().ok()
}

/// An IPv4 header: (facts with addresses, protocol, TTL, ...), the options ORed.
fn ipv4_facts(f: &Frame, tokens: &[&str], p: &mut Pkt) -> Option<()> {
    p.v4 = true;
    p.src = addr(f, "ip.src")?;
    p.dst = addr(f, "ip.dst")?;
    p.proto = f.num("ip.proto", 0)? as u8;
    p.ttl = f.num("ip.ttl", 0)?;
    p.tos = f.num("ip.dsfield", 0).unwrap_or(0);
    p.ip_len = f.num("ip.len", 0)?;
    let (df, mf) = (
        f.num("ip.flags.df", 0).unwrap_or(0),
        f.num("ip.flags.mf", 0).unwrap_or(0),
    );
    p.fragment_flags = (df * 0x40) | (mf * 0x20);
    let offset = f.num("ip.frag_offset", 0).unwrap_or(0);
    if mf == 1 || offset != 0 {
        p.frag = Some((f.num("ip.id", 0)?, offset != 0));
    }
    if f.num("ip.hdr_len", 0).unwrap_or(20) > 20 {
        // (Every IPv4 header's options are listed together.)
        p.options_clear = tokens.iter().filter(|t| **t == "ip").count() == 1;
        for i in 0..f.count("ip.opt.type") {
            let ty = f.num("ip.opt.type", i)?;
            if let Some((_, bit)) = IPV4_OPTION_BITS.iter().find(|(t, _)| *t == ty) {
                p.options |= 1 << (31 - bit);
            }
        }
    }
    Some(())
}

/// An IPv6 header and the extension headers qof walks (hop-by-hop, routing, destination
/// options, fragment: the walk ends at a later fragment's header or at any other header).
fn ipv6_facts(f: &Frame, after: &[&str], p: &mut Pkt) -> Option<()> {
    p.src = addr(f, "ipv6.src")?;
    p.dst = addr(f, "ipv6.dst")?;
    p.ttl = f.num("ipv6.hlim", 0)?;
    p.tos = f.num("ipv6.tclass", 0).unwrap_or(0);
    p.ip_len = f.num("ipv6.plen", 0)? + 40;
    let mut next = f.num("ipv6.nxt", 0)?;
    let (mut hop, mut rt, mut dst, mut frag) = (0, 0, 0, 0);
    for t in after {
        match *t {
            "ipv6.hopopts" => {
                p.options |= V6_HOP;
                next = f.num("ipv6.hopopts.nxt", hop)?;
                hop += 1;
            }
            "ipv6.routing" => {
                p.options |= V6_RH;
                next = f.num("ipv6.routing.nxt", rt)?;
                rt += 1;
            }
            "ipv6.dstopts" => {
                p.options |= V6_DST;
                next = f.num("ipv6.dstopts.nxt", dst)?;
                dst += 1;
            }
            "ipv6.fraghdr" => {
                let offset = f.num("ipv6.fraghdr.offset", frag)?;
                let more = f.num("ipv6.fraghdr.more", frag).unwrap_or(0) == 1;
                next = f.num("ipv6.fraghdr.nxt", frag)?;
                p.options |= if offset == 0 { V6_FRA0 } else { V6_FRA1 };
                p.fragment_flags = if more { 0x20 } else { 0 };
                if more || offset != 0 {
                    p.frag = Some((f.num("ipv6.fraghdr.ident", frag)?, offset != 0));
                }
                frag += 1;
                if offset != 0 {
                    break;
                }
            }
            _ => break,
        }
    }
    p.proto = next as u8;
    p.options |= v6_last_header_bit(next);
    Some(())
}

/// The transport header of a packet that is not a later fragment.
fn transport_facts(f: &Frame, tokens: &[&str], p: &mut Pkt) {
    let ports = |s: &str, d: &str| Some((f.num(s, 0)? as u16, f.num(d, 0)? as u16));
    let (sport, dport) = match p.proto {
        6 => ports("tcp.srcport", "tcp.dstport"),
        17 => ports("udp.srcport", "udp.dstport"),
        132 => ports("sctp.srcport", "sctp.dstport"),
        1 | 58 => {
            let pre = if p.proto == 1 { "icmp" } else { "icmpv6" };
            let tc = (|| {
                let ty = f.num(&format!("{pre}.type"), 0)?;
                let code = f.num(&format!("{pre}.code"), 0)?;
                Some((ty << 8 | code) as u16)
            })();
            p.icmp = tc;
            tc.map(|tc| (0, tc))
        }
        _ => None,
    }
    .unwrap_or((0, 0));
    (p.sport, p.dport) = (sport, dport);
    if p.proto == 6 {
        if let Some(flags) = f.num("tcp.flags", 0) {
            let kinds = (0..f.count("tcp.option_kind"))
                .filter_map(|i| f.num("tcp.option_kind", i))
                .filter(|k| *k < 64)
                .fold(0u64, |acc, k| acc | 1 << (63 - k));
            let window = f.num("tcp.window_size_value", 0).unwrap_or(0);
            p.tcp = Some((flags, window, kinds, f.num("tcp.options.mss_val", 0)));
            p.tcp_clear = tokens.iter().filter(|t| **t == "tcp").count() == 1;
        }
        p.payload = f.str("tcp.payload", 0).map(str::to_string);
        p.payload_unknown = p.payload.is_none() && f.num("tcp.len", 0).unwrap_or(0) > 0;
        p.tcp_cut = (0..f.count("_ws.short")).any(|i| {
            f.str("_ws.short", i)
                .is_some_and(|m| m.contains("TCP truncated"))
        });
    }
    if p.proto == 17 {
        p.payload = f.str("udp.payload", 0).map(str::to_string);
    }
}

/// The facts of one frame, or `None` when tshark saw no IP header in it.
fn facts(f: &Frame) -> Option<Pkt> {
    let protocols = f.str("frame.protocols", 0)?.to_string();
    let tokens: Vec<&str> = protocols.split(':').collect();
    let at = tokens.iter().position(|t| *t == "ip" || *t == "ipv6")?;
    let (tags, mpls, ethertype) = link_facts(f, &tokens[..at]);
    let unspecified = IpAddr::from([0u8; 4]);
    let mut p = Pkt {
        v4: false,
        src: unspecified,
        dst: unspecified,
        proto: 0,
        sport: 0,
        dport: 0,
        vlan: tags.last().map_or(0, |t| t.0 as u16),
        ttl: 0,
        tos: 0,
        fragment_flags: 0,
        ip_len: 0,
        frag: None,
        tcp: None,
        tcp_clear: true,
        tcp_cut: false,
        payload: None,
        payload_unknown: false,
        icmp: None,
        tags,
        mpls,
        ethertype,
        options: 0,
        options_clear: true,
        visible: true,
    };
    if tokens[at] == "ip" {
        ipv4_facts(f, &tokens, &mut p)?;
    } else {
        ipv6_facts(f, &tokens[at + 1..], &mut p)?;
    }
    if !matches!(p.frag, Some((_, true))) {
        transport_facts(f, &tokens, &mut p);
    }
    Some(p)
}

/// tshark's decode of `cap`: one entry per frame that has an IP header, in capture order.
fn tshark_packets(cap: &Path) -> Vec<Pkt> {
    let mut cmd = std::process::Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(cap);
    // Every fragment with its own header (qof meters each).
    cmd.args(["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]);
    cmd.args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=a"]);
    cmd.args(["-E", "aggregator=,"]);
    for f in FIELDS {
        cmd.args(["-e", f]);
    }
    let out = run(&mut cmd);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| facts(&Frame::parse(l)))
        .collect()
}

/// A datagram's source, destination, protocol and identification.
type Datagram = (IpAddr, IpAddr, u8, u64);

/// Give later fragments their datagram's ports (from its first fragment) and mark those that
/// came before it (qof counts them in the flow but shows them to no plugin); drop those whose
/// first fragment never came. Returns how many were dropped.
fn settle_fragments(pkts: &mut Vec<Pkt>) -> usize {
    // (source, destination, protocol, identification) -> (index, ports) of first fragments.
    let mut first: HashMap<Datagram, (usize, u16, u16)> = HashMap::new();
    for (i, p) in pkts.iter().enumerate() {
        if let Some((id, false)) = p.frag {
            first
                .entry((p.src, p.dst, p.proto, id))
                .or_insert((i, p.sport, p.dport));
        }
    }
    let before = pkts.len();
    let mut i = 0;
    pkts.retain_mut(|p| {
        i += 1;
        let Some((id, true)) = p.frag else {
            return true;
        };
        match first.get(&(p.src, p.dst, p.proto, id)) {
            Some(&(at, sport, dport)) => {
                (p.sport, p.dport, p.visible) = (sport, dport, at < i - 1);
                true
            }
            None => false,
        }
    });
    before - pkts.len()
}

/// A flow key with its ends in a fixed order: (version 4?, protocol, VLAN, ends). ICMP keeps
/// its type and code apart from the addresses (qof pairs ICMP packets of one type and code).
type Key = (bool, u8, u16, Vec<(IpAddr, u16)>);

fn key_of(v4: bool, proto: u8, vlan: u16, a: (IpAddr, u16), b: (IpAddr, u16)) -> Key {
    let ends = if matches!(proto, 1 | 58) {
        let (lo, hi) = if a.0 <= b.0 { (a.0, b.0) } else { (b.0, a.0) };
        vec![(lo, 0), (hi, 0), (IpAddr::from([0u8; 4]), b.1)]
    } else {
        let mut e = vec![a, b];
        e.sort();
        e
    };
    (v4, proto, vlan, ends)
}

/// A record as qof printed it, with what the grouping needs.
struct Rec {
    json: serde_json::Map<String, Value>,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    vlan: u16,
    flow_id: u64,
    start: String,
    packets: [u64; 2],
}

fn records(path: &Path) -> Vec<Rec> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut v = Vec::new();
    for line in text.lines() {
        let Ok(Value::Object(json)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let s = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
        let n = |k: &str| json.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (Some(src), Some(dst)) = (
            s("sourceIPv4Address").or_else(|| s("sourceIPv6Address")),
            s("destinationIPv4Address").or_else(|| s("destinationIPv6Address")),
        ) else {
            continue;
        };
        v.push(Rec {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            sport: n("sourceTransportPort") as u16,
            dport: n("destinationTransportPort") as u16,
            proto: n("protocolIdentifier") as u8,
            vlan: n("vlanId") as u16,
            flow_id: n("flowId"),
            start: s("flowStartMilliseconds").unwrap_or_default(),
            packets: [n("packetDeltaCount"), n("reversePacketDeltaCount")],
            json,
        });
    }
    v
}

impl Rec {
    fn key(&self) -> Key {
        key_of(
            self.src.is_ipv4(),
            self.proto,
            self.vlan,
            (self.src, self.sport),
            (self.dst, self.dport),
        )
    }

    /// The direction of `p` in this record: 0 forward, 1 reverse.
    fn dir(&self, p: &Pkt) -> usize {
        let fwd = if matches!(self.proto, 1 | 58) {
            p.src == self.src
        } else {
            (p.src, p.sport, p.dst, p.dport) == (self.src, self.sport, self.dst, self.dport)
        };
        usize::from(!fwd)
    }
}

/// Deal each key's packets to its records, in capture order and flowId order. Returns, per
/// record index, its packets; records of keys whose counts disagree get none.
fn deal<'a>(recs: &[Rec], pkts: &'a [Pkt]) -> Vec<Option<Vec<&'a Pkt>>> {
    let mut by_key: HashMap<Key, Vec<&Pkt>> = HashMap::new();
    for p in pkts {
        let k = key_of(p.v4, p.proto, p.vlan, (p.src, p.sport), (p.dst, p.dport));
        by_key.entry(k).or_default().push(p);
    }
    let mut recs_by_key: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, r) in recs.iter().enumerate() {
        recs_by_key.entry(r.key()).or_default().push(i);
    }
    let mut dealt = vec![None; recs.len()];
    for (k, mut idx) in recs_by_key {
        idx.sort_by(|&a, &b| {
            (recs[a].flow_id, &recs[a].start).cmp(&(recs[b].flow_id, &recs[b].start))
        });
        let all = by_key.remove(&k).unwrap_or_default();
        let mut at = 0;
        let mut slices = Vec::new();
        for &i in &idx {
            let r = &recs[i];
            let need = (r.packets[0] + r.packets[1]) as usize;
            let Some(slice) = all.get(at..at + need) else {
                break;
            };
            let fwd = slice.iter().filter(|p| r.dir(p) == 0).count() as u64;
            if fwd != r.packets[0] || !slice.first().is_some_and(|p| r.dir(p) == 0) {
                break;
            }
            slices.push((i, slice.to_vec()));
            at += need;
        }
        if slices.len() == idx.len() && at == all.len() {
            for (i, s) in slices {
                dealt[i] = Some(s);
            }
        }
    }
    dealt
}

/// The octets flowKeyHash hashes, as the flowhash plugin documents them.
fn hash_input(p: &Pkt) -> Vec<u8> {
    let octets = |a: IpAddr| match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let mut ends = [(octets(p.src), p.sport), (octets(p.dst), p.dport)];
    ends.sort();
    let mut v = vec![if p.v4 { 4 } else { 6 }, p.proto];
    v.extend_from_slice(&p.vlan.to_be_bytes());
    for (a, port) in ends {
        v.extend_from_slice(&a);
        v.extend_from_slice(&port.to_be_bytes());
    }
    v
}

/// True when the reference XXH64 library can be loaded (as `have_tool`: its absence fails
/// the test unless QOF_SKIP_EXTERNAL=1).
fn have_libxxhash() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import ctypes; ctypes.CDLL('libxxhash.so.0')"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("QOF_SKIP_EXTERNAL").as_deref() != Ok("1") {
        panic!("libxxhash0 is not installed (run scripts/test, or set QOF_SKIP_EXTERNAL=1)");
    }
    ok
}

/// XXH64 (seed 0) of each input, by the reference library.
fn libxxhash(inputs: &[Vec<u8>]) -> Vec<u64> {
    let script = "import ctypes, sys\n\
        l = ctypes.CDLL('libxxhash.so.0')\n\
        l.XXH64.restype = ctypes.c_uint64\n\
        l.XXH64.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]\n\
        for line in sys.stdin:\n\
        \x20   b = bytes.fromhex(line.strip())\n\
        \x20   print(l.XXH64(b, len(b), 0))\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let text: String = inputs
        .iter()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>() + "\n")
        .collect();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "libxxhash through ctypes failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

/// The name of an element's reverse form in JSON.
fn reverse(name: &str) -> String {
    let mut c = name.chars();
    let first = c.next().unwrap().to_ascii_uppercase();
    format!("reverse{first}{}", c.as_str())
}

/// What the plugins' elements must be for a record of `pkts` (`hash` its flowKeyHash by
/// libxxhash). Elements whose packets tshark leaves ambiguous are left out of the map and
/// named in the second value.
fn expected(r: &Rec, pkts: &[&Pkt], hash: u64) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut want = BTreeMap::new();
    let mut unknown = Vec::new();
    let vis: [Vec<&Pkt>; 2] = [0, 1].map(|d| {
        pkts.iter()
            .copied()
            .filter(|p| p.visible && r.dir(p) == d)
            .collect()
    });
    let first = pkts.iter().find(|p| p.visible).copied();
    let v4 = r.src.is_ipv4();
    for (d, vis) in vis.iter().enumerate() {
        let name = |n: &str| if d == 0 { n.to_string() } else { reverse(n) };
        let f = vis.first();
        want.insert(name("ipTTL"), f.map_or(0, |p| p.ttl).into());
        want.insert(
            name("fragmentFlags"),
            f.map_or(0, |p| p.fragment_flags).into(),
        );
        want.insert(name("ipClassOfService"), f.map_or(0, |p| p.tos).into());
        let tcp: Vec<_> = vis.iter().filter_map(|p| p.tcp.map(|t| (p, t))).collect();
        // (tcpMssRev and IDPContentRev are elements of their own, not reverse forms.)
        let mss_name = if d == 0 { "tcpMss" } else { "tcpMssRev" };
        if tcp.iter().any(|(p, _)| p.tcp_cut) {
            unknown.extend([name("tcpWindowSize"), name("tcpOptions"), mss_name.into()]);
        } else {
            let window = tcp.first().map_or(0, |(_, t)| t.1);
            want.insert(name("tcpWindowSize"), window.into());
            if tcp.iter().all(|(p, _)| p.tcp_clear) {
                let kinds = tcp.iter().fold(0, |a, (_, t)| a | t.2);
                want.insert(name("tcpOptions"), kinds.into());
                let mss = tcp.iter().find_map(|(_, t)| t.3).unwrap_or(0);
                want.insert(mss_name.to_string(), mss.into());
            } else {
                unknown.extend([name("tcpOptions"), mss_name.to_string()]);
            }
        }
        let bitmap = name(if v4 {
            "ipv4Options"
        } else {
            "ipv6ExtensionHeaders"
        });
        if vis.iter().all(|p| p.options_clear) {
            want.insert(bitmap, vis.iter().fold(0, |a, p| a | p.options).into());
        } else {
            unknown.push(bitmap);
        }
        let idp = if d == 0 {
            "IDPContent"
        } else {
            "IDPContentRev"
        };
        let carrier = vis
            .iter()
            .find(|p| p.payload_unknown || p.payload.as_ref().is_some_and(|s| !s.is_empty()));
        if matches!(r.proto, 6 | 17) && !carrier.is_some_and(|p| p.payload_unknown) {
            let content = carrier.and_then(|p| p.payload.as_deref()).unwrap_or("");
            want.insert(idp.into(), content[..content.len().min(200)].into());
        } else {
            // (tshark names no payload field for other protocols.)
            unknown.push(idp.into());
        }
    }
    if r.packets[1] == 0 {
        // A one-way record has no reverse forms (the template's biflow is not forced).
        want.retain(|k, _| !k.starts_with("reverse"));
    }
    if first.is_some_and(|p| p.tcp_cut) {
        unknown.push("tcpSynSize".into());
    } else {
        let syn = first
            .and_then(|p| p.tcp.map(|t| (p, t)))
            .filter(|(_, t)| t.0 & 0x12 == 0x02)
            .map_or(0, |(p, _)| p.ip_len);
        want.insert("tcpSynSize".into(), syn.into());
    }
    want.insert("flowKeyHash".into(), hash.into());
    if let Some(tc) = pkts.iter().filter(|p| p.visible).find_map(|p| p.icmp) {
        let name = if v4 {
            "icmpTypeCodeIPv4"
        } else {
            "icmpTypeCodeIPv6"
        };
        want.insert(name.into(), tc.into());
    }
    if let Some(p) = first {
        want.insert("ethernetType".into(), p.ethertype.into());
        if let Some(&(id, prio)) = p.tags.first() {
            let (cid, cprio) = p.tags.get(1).copied().unwrap_or((0, 0));
            want.insert("dot1qVlanId".into(), id.into());
            want.insert("dot1qPriority".into(), prio.into());
            want.insert("dot1qCustomerVlanId".into(), cid.into());
            want.insert("dot1qCustomerPriority".into(), cprio.into());
        }
        if let Some((label, tc, s, ttl)) = p.mpls {
            let section = label << 4 | tc << 1 | s;
            want.insert(
                "mplsTopLabelStackSection".into(),
                format!("{section:06x}").into(),
            );
            want.insert("mplsTopLabelTTL".into(), ttl.into());
        }
    }
    (want, unknown)
}

/// Every element the seven plugins can write, forward and reverse forms: the names compared.
fn plugin_element_names() -> Vec<String> {
    let mut v = Vec::new();
    for ie in qof::ie::TABLE {
        if ie.plugin().is_some_and(|k| PLUGINS.contains(&k.name())) {
            v.push(ie.name.to_string());
            if ie.reversible {
                v.push(reverse(ie.name));
            }
        }
    }
    v
}

#[derive(Default)]
struct Score {
    records: usize,
    dealt: usize,
    values: usize,
    wrong: usize,
    unknown: usize,
    dropped_fragments: usize,
}

fn run_qof(cap: &Path, yaml: &Path, out: &Path, format: &str) -> std::process::Output {
    let mut cmd = qof();
    cmd.arg("--in").arg(cap).arg("--yaml").arg(yaml);
    for p in PLUGINS {
        cmd.args(["--plugin", p]);
    }
    run(cmd.args(["--format", format, "--out"]).arg(out))
}

#[test]
fn plugin_elements_match_tshark_on_every_corpus_file() {
    if !have_tool("tshark") || !have_tool("python3") || !have_libxxhash() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("t.yaml");
    std::fs::write(&yaml, template()).unwrap();
    let names = plugin_element_names();
    let (mut table, mut failures) = (String::new(), Vec::new());
    let mut total = Score::default();
    let mut wrong_by_element: BTreeMap<String, usize> = BTreeMap::new();
    // Values that agree and are not 0 or empty, by element: what the comparison exercised.
    let mut shown: BTreeMap<String, usize> = BTreeMap::new();
    for cap in corpus_files() {
        let name = name(&cap);
        let out = tmp.path().join("f.jsonl");
        let _ = std::fs::remove_file(&out);
        let r = run_qof(&cap, &yaml, &out, "json");
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        let recs = records(&out);
        let mut pkts = tshark_packets(&cap);
        let mut s = Score {
            dropped_fragments: settle_fragments(&mut pkts),
            records: recs.len(),
            ..Score::default()
        };
        let dealt = deal(&recs, &pkts);
        let inputs: Vec<Vec<u8>> = dealt
            .iter()
            .flatten()
            .map(|pk| hash_input(pk.iter().find(|p| p.visible).unwrap_or(&pk[0])))
            .collect();
        let mut hashes = libxxhash(&inputs).into_iter();
        for (r, pk) in recs.iter().zip(&dealt) {
            let Some(pk) = pk else {
                continue;
            };
            s.dealt += 1;
            let (want, unknown) = expected(r, pk, hashes.next().unwrap());
            s.unknown += unknown.len();
            for n in names.iter().filter(|n| !unknown.contains(n)) {
                s.values += 1;
                let (w, g) = (want.get(n), r.json.get(n));
                if w == g && w.is_some_and(|v| v != &Value::from(0) && v != &Value::from("")) {
                    *shown.entry(n.clone()).or_default() += 1;
                }
                if w != g {
                    s.wrong += 1;
                    *wrong_by_element.entry(n.clone()).or_default() += 1;
                    if failures.len() < 40 {
                        failures.push(format!(
                            "{name}: flow {} {}:{} -> {}:{} proto {}: {n}: tshark {w:?}, qof {g:?}",
                            r.flow_id, r.src, r.sport, r.dst, r.dport, r.proto
                        ));
                    }
                }
            }
        }
        table.push_str(&format!(
            "{:>5} {:>5} {:>7} {:>4} {:>3} {:>3} {name}\n",
            s.records, s.dealt, s.values, s.wrong, s.unknown, s.dropped_fragments
        ));
        total.records += s.records;
        total.dealt += s.dealt;
        total.values += s.values;
        total.wrong += s.wrong;
        total.unknown += s.unknown;
        total.dropped_fragments += s.dropped_fragments;
    }
    eprintln!("records dealt values wrong ambiguous dropped-fragments file\n{table}");
    eprintln!(
        "total: {} records, {} compared ({:.2} %), {} values, {} wrong, {} ambiguous; wrong by element: {wrong_by_element:?}",
        total.records,
        total.dealt,
        100.0 * total.dealt as f64 / total.records.max(1) as f64,
        total.values,
        total.wrong,
        total.unknown
    );
    eprintln!("agreeing values other than 0 or empty, by element: {shown:?}");
    // The comparison is not vacuous: every element agreed with tshark on some flow where it
    // says something, except these, which no corpus flow has (the unit tests show them).
    let never = [
        "dot1qPriority",
        "dot1qCustomerPriority",
        "reverseIpv4Options",
    ];
    for n in names.iter().filter(|n| !never.contains(&n.as_str())) {
        assert!(shown.contains_key(n), "no corpus flow shows {n}");
    }
    assert!(
        failures.is_empty(),
        "values tshark's decode contradicts:\n{}",
        failures.join("\n")
    );
    assert!(
        total.dealt as f64 >= 0.97 * total.records as f64,
        "only {} of {} records could be compared",
        total.dealt,
        total.records
    );
}

/// The CESNET (PEN 8057) and QoF (35566) elements of these plugins, with the types CESNET's
/// registry (libfds) gives them, for ipfixDump.
const ELEMENT_FILE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<registry id="qof-plugin-elements" xmlns="http://www.iana.org/assignments"
          xmlns:cert="http://www.cert.org/ipfix">
  <registry id="elements">
    <record><name>IDPContent</name><dataType>octetArray</dataType>
      <cert:enterpriseId>8057</cert:enterpriseId><elementId>850</elementId></record>
    <record><name>IDPContentRev</name><dataType>octetArray</dataType>
      <cert:enterpriseId>8057</cert:enterpriseId><elementId>851</elementId></record>
    <record><name>tcpMss</name><dataType>unsigned32</dataType>
      <cert:enterpriseId>8057</cert:enterpriseId><elementId>900</elementId></record>
    <record><name>tcpMssRev</name><dataType>unsigned32</dataType>
      <cert:enterpriseId>8057</cert:enterpriseId><elementId>901</elementId></record>
    <record><name>tcpSynSize</name><dataType>unsigned16</dataType>
      <cert:enterpriseId>8057</cert:enterpriseId><elementId>902</elementId></record>
    <record><name>flowKeyHash</name><dataType>unsigned64</dataType>
      <cert:enterpriseId>35566</cert:enterpriseId><elementId>1060</elementId></record>
  </registry>
</registry>
"#;

/// ipfixDump's data records: each field's name and printed value, in order.
fn dump_records(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = Vec::new();
    let mut in_data = false;
    for line in text.lines() {
        if line.starts_with("--- ") {
            in_data = line.starts_with("--- data record");
            if in_data {
                out.push(Vec::new());
            }
            continue;
        }
        let (Some(rec), true) = (out.last_mut(), in_data) else {
            continue;
        };
        // "\t(29305/192)      reverseIpTTL : 128"
        if let Some((lhs, rhs)) = line.split_once(" : ") {
            let lhs = lhs.trim();
            if let (true, Some(close)) = (lhs.starts_with('('), lhs.rfind(')')) {
                rec.push((lhs[close + 1..].trim().to_string(), rhs.trim().to_string()));
            }
        }
    }
    out.retain(|r| !r.iter().any(|(n, _)| n == "exportingProcessId"));
    out
}

/// The octet arrays of fixed length up to 8 in ipfixDump's templates, by element name:
/// ipfixDump prints their values as integers read little-endian.
fn short_octet_arrays(text: &str) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for line in text.lines() {
        // "ent:     0  id:    70  type: octet     len:     3     mplsTopLabelStackSection"
        let w: Vec<&str> = line.split_whitespace().collect();
        if let ["ent:", _, "id:", _, "type:", "octet", "len:", len, name] = w[..] {
            if let Ok(n @ 1..=8) = len.parse::<usize>() {
                m.insert(name.to_string(), n);
            }
        }
    }
    m
}

/// ipfixDump's spelling of a value, in JSON's: times in RFC 3339, octets as bare hex (an
/// octet array of `short` octets is printed as a little-endian integer).
fn normalise(dump: &str, short: Option<usize>) -> String {
    if let (Some(n), Ok(v)) = (short, dump.parse::<u64>()) {
        return v.to_le_bytes()[..n]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    }
    if let Some(rest) = dump.strip_prefix("(len: ") {
        return rest
            .split_once(") 0x")
            .map_or("", |(_, hex)| hex)
            .to_string();
    }
    if let Ok(a) = dump.parse::<IpAddr>() {
        return a.to_string();
    }
    if dump.len() == 23 && dump.as_bytes()[10] == b' ' {
        return format!("{}T{}Z", &dump[..10], &dump[11..]);
    }
    dump.to_string()
}

/// libfixbuf's ipfixDump reads qof's IPFIX files with every element of the seven plugins
/// (their templates, reverse forms, variable-length octet arrays, one-IP-version elements)
/// without a warning, and every value it prints is the one qof's JSON has; qofdump prints
/// the JSON lines back.
#[test]
fn ipfixdump_reads_every_plugin_element() {
    if !have_tool("ipfixDump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("t.yaml");
    std::fs::write(&yaml, template()).unwrap();
    let elements = tmp.path().join("elements.xml");
    std::fs::write(&elements, ELEMENT_FILE).unwrap();
    // VLAN tags, MPLS over PPP, ICMPv6 and IPv6 extension headers, TCP with payload, IPv4
    // options, an IPv6 routing header, AH, IPv6 in IPv4.
    let captures = [
        "ipfixprobe__vlan.pcap",
        "tcpdump__mpls-traceroute.pcap",
        "tcpdump__icmpv6.pcap",
        "ipfixprobe__http.pcap",
        "tcpdump__ip_ts_opts_asan.pcap",
        "tcpdump__ipv6-routing-header.pcap",
        "tcpdump__OSPFv3_with_AH.pcap",
        "ndpi__6in4tunnel.pcap",
        "ndpi__vxlan.pcap",
    ];
    let mut fields_checked = 0;
    for name in captures {
        let cap = corpus_dir().join(name);
        let (ipfix, json) = (tmp.path().join("f.ipfix"), tmp.path().join("f.jsonl"));
        assert!(
            run_qof(&cap, &yaml, &ipfix, "ipfix").status.success(),
            "{name}"
        );
        assert!(
            run_qof(&cap, &yaml, &json, "json").status.success(),
            "{name}"
        );
        let d = run(std::process::Command::new("ipfixDump")
            .arg("--yaf")
            .arg("--element-file")
            .arg(&elements)
            .args(["--hexdump=255", "--in"])
            .arg(&ipfix));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&d.stdout),
            String::from_utf8_lossy(&d.stderr),
        );
        assert!(
            d.status.success() && stderr.trim().is_empty(),
            "{name}: ipfixDump: {stderr}"
        );
        for bad in ["warn", "Warn", "WARN", "error", "Error", "alien"] {
            assert!(
                !stdout.contains(bad),
                "{name}: ipfixDump says {bad}:\n{stdout}"
            );
        }
        // qofdump turns the file back into the very JSON lines.
        let back = run(qofdump().arg(&ipfix));
        assert_eq!(
            String::from_utf8_lossy(&back.stdout),
            std::fs::read_to_string(&json).unwrap(),
            "{name}: qofdump"
        );
        let theirs = dump_records(&stdout);
        let short = short_octet_arrays(&stdout);
        let ours: Vec<serde_json::Map<String, Value>> = std::fs::read_to_string(&json)
            .unwrap()
            .lines()
            .map(|l| match serde_json::from_str(l).unwrap() {
                Value::Object(m) => m,
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(theirs.len(), ours.len(), "{name}: records");
        for (t, o) in theirs.iter().zip(&ours) {
            let t: BTreeMap<&str, String> = t
                .iter()
                .map(|(n, v)| (n.as_str(), normalise(v, short.get(n).copied())))
                .collect();
            assert_eq!(t.len(), o.len(), "{name}: fields: {t:?} vs {o:?}");
            for (n, v) in o {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(t.get(n.as_str()), Some(&v), "{name}: {n}");
                fields_checked += 1;
            }
        }
    }
    assert!(fields_checked > 1000, "{fields_checked} fields");
}

/// `ipfix`, an IPFIX file, as a pcap of one UDP datagram per message, for tshark's IPFIX
/// dissector.
fn ipfix_as_pcap(ipfix: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    let mut at = 0;
    while let Some(len) = ipfix.get(at + 2..at + 4) {
        let len = usize::from(u16::from_be_bytes([len[0], len[1]])).max(4);
        let msg = &ipfix[at..(at + len).min(ipfix.len())];
        at += len;
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[8, 0, 0x45, 0]);
        frame.extend_from_slice(&((28 + msg.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 1, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&40000u16.to_be_bytes());
        frame.extend_from_slice(&4739u16.to_be_bytes());
        frame.extend_from_slice(&((8 + msg.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(msg);
        for w in [1u32, 0, frame.len() as u32, frame.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&frame);
    }
    out
}

/// The plugin elements of each data record tshark's IPFIX dissector printed (`-V`), by the
/// JSON name of the element, as JSON prints them (octets as hex; a value tshark cut short ends
/// in "…").
fn tshark_ipfix_records(text: &str) -> Vec<BTreeMap<String, String>> {
    const LABELS: &[(&str, &str)] = &[
        ("IP TTL", "ipTTL"),
        ("IP Fragment Flags", "fragmentFlags"),
        ("TCP Windows Size", "tcpWindowSize"),
        ("TCP OptionMap", "tcpOptions"),
        ("IP ToS", "ipClassOfService"),
        ("Ethernet Type", "ethernetType"),
        ("OptionMap", "ipv4Options"),
        ("IPv6 Extension Headers", "ipv6ExtensionHeaders"),
        ("MPLS Top Label TTL", "mplsTopLabelTTL"),
        ("Dot1q Vlan Id", "dot1qVlanId"),
        ("Dot1q Priority", "dot1qPriority"),
        ("Dot1q Customer Vlan Id", "dot1qCustomerVlanId"),
        ("Dot1q Customer Priority", "dot1qCustomerPriority"),
        ("ICMP Type", "icmpTypeCodeIPv4"),
        ("IPv6 ICMP Type", "(icmpv6 type)"),
        ("IPv6 ICMP Code", "(icmpv6 code)"),
        ("(CESNET) Type 850", "IDPContent"),
        ("(CESNET) Type 851", "IDPContentRev"),
        ("(CESNET) Type 900", "tcpMss"),
        ("(CESNET) Type 901", "tcpMssRev"),
        ("(CESNET) Type 902", "tcpSynSize"),
        ("(trammell.ch) Type 1060", "flowKeyHash"),
    ];
    let number = |v: &str| match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    };
    let mut out: Vec<BTreeMap<String, String>> = Vec::new();
    let mut in_flow = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("Set ") {
            in_flow = false;
        } else if l
            .strip_prefix("Flow ")
            .is_some_and(|n| n.parse::<u32>().is_ok())
        {
            in_flow = true;
            out.push(BTreeMap::new());
        }
        let (Some(rec), true) = (out.last_mut(), in_flow) else {
            continue;
        };
        let l = l.strip_prefix("Enterprise Private entry: ").unwrap_or(l);
        let Some((label, value)) = l.split_once(": ") else {
            continue;
        };
        if let Some(rest) = l.strip_prefix("MPLS-Label1: ") {
            // "100704 exp-bits: 0 bottom-of-stack"
            let w: Vec<&str> = rest.split_whitespace().collect();
            let (label, exp) = (number(w[0]).unwrap(), number(w[2]).unwrap());
            let s = u64::from(rest.ends_with("bottom-of-stack"));
            let section = label << 4 | exp << 1 | s;
            rec.insert("mplsTopLabelStackSection".into(), format!("{section:06x}"));
            continue;
        }
        let Some(&(_, name)) = LABELS.iter().find(|(t, _)| *t == label) else {
            continue;
        };
        let (value, rev) = match value.split_once(" (Reverse Type") {
            Some((v, _)) => (v, true),
            None => (value, false),
        };
        let octets = value
            .strip_prefix("Value (hex bytes): ")
            .map(|h| h.replace(' ', ""));
        let text = match (name, octets) {
            ("IDPContent" | "IDPContentRev", Some(h)) => h,
            (_, Some(h)) => u64::from_str_radix(&h, 16).unwrap().to_string(),
            ("tcpOptions" | "ipv4Options", None) => {
                u64::from_str_radix(value, 16).unwrap().to_string()
            }
            _ => number(value).map_or(value.to_string(), |n| n.to_string()),
        };
        let name = if rev { reverse(name) } else { name.into() };
        rec.insert(name, text);
    }
    for rec in &mut out {
        if let (Some(t), Some(c)) = (rec.remove("(icmpv6 type)"), rec.remove("(icmpv6 code)")) {
            let tc = t.parse::<u64>().unwrap() << 8 | c.parse::<u64>().unwrap();
            rec.insert("icmpTypeCodeIPv6".into(), tc.to_string());
        }
    }
    out
}

/// tshark's IPFIX dissector, a decoder we did not write, reads every plugin element of qof's
/// IPFIX output as qof's JSON has it: numbers, the MPLS label stack section taken apart into
/// label, traffic class and bottom-of-stack bit, bitmaps as octets, and the CESNET and QoF
/// elements' octets (flowKeyHash big-endian).
#[test]
fn tshark_reads_the_plugin_elements_in_qofs_ipfix() {
    if !have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let yaml = tmp.path().join("t.yaml");
    std::fs::write(&yaml, template()).unwrap();
    let names = plugin_element_names();
    let mut compared = 0;
    for name in [
        "ipfixprobe__vlan.pcap",
        "tcpdump__mpls-traceroute.pcap",
        "tcpdump__icmpv6.pcap",
        "ipfixprobe__http.pcap",
        "tcpdump__ip_ts_opts_asan.pcap",
        "tcpdump__ipv6-routing-header.pcap",
        "ndpi__6in4tunnel.pcap",
    ] {
        let cap = corpus_dir().join(name);
        let (ipfix, json) = (tmp.path().join("f.ipfix"), tmp.path().join("f.jsonl"));
        assert!(
            run_qof(&cap, &yaml, &ipfix, "ipfix").status.success(),
            "{name}"
        );
        assert!(
            run_qof(&cap, &yaml, &json, "json").status.success(),
            "{name}"
        );
        let pcap = tmp.path().join("ipfix.pcap");
        std::fs::write(&pcap, ipfix_as_pcap(&std::fs::read(&ipfix).unwrap())).unwrap();
        let out = run(std::process::Command::new("tshark")
            .args(["-n", "-d", "udp.port==4739,cflow", "-V", "-r"])
            .arg(&pcap));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Malformed"), "{name}: tshark: {text}");
        let theirs = tshark_ipfix_records(&text);
        let ours = records(&json);
        assert_eq!(theirs.len(), ours.len(), "{name}: records");
        for (t, o) in theirs.iter().zip(&ours) {
            for n in &names {
                // (tshark prints no line for an empty octet array.)
                let want = o.json.get(n).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
                let want = want.filter(|w| !w.is_empty());
                let got = t.get(n);
                let same = match (&want, got) {
                    (Some(w), Some(g)) => match g.strip_suffix('…') {
                        Some(prefix) => w.starts_with(prefix),
                        None => w == g,
                    },
                    (None, None) => true,
                    _ => false,
                };
                assert!(
                    same,
                    "{name}: flow {}: {n}: qof {want:?}, tshark {got:?}",
                    o.flow_id
                );
                compared += usize::from(want.is_some());
            }
        }
    }
    eprintln!("{compared} plugin values read alike by tshark's IPFIX dissector");
    assert!(compared > 300, "{compared} values");
}
