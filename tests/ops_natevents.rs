//! NAT events (issue 15, item 8): conntrack's new and destroy messages, read by hand from
//! netlink, become IPFIX NAT event records (RFC 8158: natEvent, postNAT*/postNAPT*) and JSON
//! lines, for translated connections only.
//!
//! The parser is tested on netlink messages built here byte by byte from the kernel's
//! headers (linux/netlink.h, linux/netfilter/nfnetlink.h, nfnetlink_conntrack.h), whole, cut
//! and hostile; the encoder's records are read back by qof's decoder and libfixbuf's
//! ipfixDump. Then, as root on a kernel with conntrack and NAT, a router in network
//! namespaces made here translates UDP, TCP and IPv6 connections (nftables masquerade and
//! dnat) while two qof processes watch it: their records must name the connections before
//! and after translation. Where the kernel or the user does not allow it, qof's one-line
//! error is what is checked, and the test says why the rest did not run.

mod common;
use common::*;

use qof::ipfix::decode::{Event, Message, Session};
use qof::ipfix::{Encoder, TemplateSpec, NAT4_TEMPLATE_ID, NAT6_TEMPLATE_ID};
use qof::natevent::{ack_of, code, parse, NatEvent, Parsed};
use qof::time::Timestamp;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// From the kernel's headers (not from qof): the oracle of the messages below.
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;

/// A netlink attribute: length (header included), type, payload, padding to 4 octets.
fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

/// A tuple (CTA_TUPLE_ORIG or _REPLY): addresses, protocol and ports (ICMP: id, type, code
/// for `sp`, `dp >> 8`, `dp & 0xff`).
fn tuple(ty: u16, src: &str, dst: &str, proto: u8, sp: u16, dp: u16) -> Vec<u8> {
    let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
    let ip = match (s, d) {
        (IpAddr::V4(s), IpAddr::V4(d)) => [
            nla(CTA_IP_V4_SRC, &s.octets()),
            nla(CTA_IP_V4_DST, &d.octets()),
        ]
        .concat(),
        (IpAddr::V6(s), IpAddr::V6(d)) => [
            nla(CTA_IP_V6_SRC, &s.octets()),
            nla(CTA_IP_V6_DST, &d.octets()),
        ]
        .concat(),
        _ => panic!("one family per tuple"),
    };
    let ports = if proto == 1 {
        [
            nla(CTA_PROTO_ICMP_ID, &sp.to_be_bytes()),
            nla(CTA_PROTO_ICMP_TYPE, &[(dp >> 8) as u8]),
            nla(CTA_PROTO_ICMP_CODE, &[dp as u8]),
        ]
        .concat()
    } else {
        [
            nla(CTA_PROTO_SRC_PORT, &sp.to_be_bytes()),
            nla(CTA_PROTO_DST_PORT, &dp.to_be_bytes()),
        ]
        .concat()
    };
    let pr = [nla(CTA_PROTO_NUM, &[proto]), ports].concat();
    nla(
        ty | NLA_F_NESTED,
        &[
            nla(CTA_TUPLE_IP | NLA_F_NESTED, &ip),
            nla(CTA_TUPLE_PROTO | NLA_F_NESTED, &pr),
        ]
        .concat(),
    )
}

/// A netlink message of `ty`: header (length, type, flags, sequence, port), nfgenmsg
/// (family, version, resource id), then `attrs`.
fn message(ty: u16, family: u8, attrs: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + 4 + attrs.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&0x0600u16.to_ne_bytes()); // NLM_F_CREATE | NLM_F_EXCL
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[family, 0, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

fn ct(kind: u16, family: u8, orig: &[u8], reply: &[u8]) -> Vec<u8> {
    // (A status attribute first, as the kernel sends: skipped by the parser.)
    let attrs = [
        nla(CTA_STATUS, &0x198u32.to_be_bytes()),
        orig.to_vec(),
        reply.to_vec(),
    ];
    message(NFNL_SUBSYS_CTNETLINK << 8 | kind, family, &attrs.concat())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The event as (natEvent, protocol, src, dst, sport, dport, post src, post dst, post sport,
/// post dport), for comparisons that read.
type Flat = (u8, u8, IpAddr, IpAddr, u16, u16, IpAddr, IpAddr, u16, u16);

fn flat(e: &NatEvent) -> Flat {
    (
        e.event,
        e.proto,
        e.src,
        e.dst,
        e.src_port,
        e.dst_port,
        e.post_src,
        e.post_dst,
        e.post_src_port,
        e.post_dst_port,
    )
}

/// A stream of the kinds of messages conntrack sends: source NAT of UDP (create, destroy),
/// destination NAT of TCP, IPv6 source NAT, ICMP with its id translated, an untranslated
/// connection (no event), and other netlink messages (not counted).
fn sample_stream() -> (Vec<u8>, Vec<Flat>) {
    let udp_o = tuple(CTA_TUPLE_ORIG, "10.0.0.1", "192.0.2.9", 17, 40000, 53);
    let udp_r = tuple(CTA_TUPLE_REPLY, "192.0.2.9", "198.51.100.1", 17, 53, 61000);
    let tcp_o = tuple(CTA_TUPLE_ORIG, "10.0.0.2", "203.0.113.1", 6, 5555, 8080);
    let tcp_r = tuple(CTA_TUPLE_REPLY, "10.1.0.9", "10.0.0.2", 6, 80, 5555);
    let v6_o = tuple(CTA_TUPLE_ORIG, "fd00::2", "2001:db8::9", 17, 4000, 443);
    let v6_r = tuple(
        CTA_TUPLE_REPLY,
        "2001:db8::9",
        "2001:db8:1::1",
        17,
        443,
        4001,
    );
    let icmp_o = tuple(CTA_TUPLE_ORIG, "10.0.0.3", "192.0.2.7", 1, 77, 8 << 8);
    let icmp_r = tuple(CTA_TUPLE_REPLY, "192.0.2.7", "198.51.100.1", 1, 1234, 0);
    let plain_o = tuple(CTA_TUPLE_ORIG, "10.0.0.4", "10.0.0.5", 6, 1000, 22);
    let plain_r = tuple(CTA_TUPLE_REPLY, "10.0.0.5", "10.0.0.4", 6, 22, 1000);
    let mut buf = Vec::new();
    buf.extend(ct(IPCTNL_MSG_CT_NEW, 2, &udp_o, &udp_r));
    buf.extend(message(NFNL_SUBSYS_QUEUE << 8, 2, &nla(1, &[0; 8])));
    buf.extend(ct(IPCTNL_MSG_CT_NEW, 2, &tcp_o, &tcp_r));
    buf.extend(ct(IPCTNL_MSG_CT_NEW, 2, &plain_o, &plain_r));
    buf.extend(ct(IPCTNL_MSG_CT_NEW, 10, &v6_o, &v6_r));
    buf.extend(ct(IPCTNL_MSG_CT_NEW, 2, &icmp_o, &icmp_r));
    buf.extend(message(NLMSG_DONE, 0, &[]));
    buf.extend(ct(IPCTNL_MSG_CT_DELETE, 2, &udp_o, &udp_r));
    buf.extend(ct(IPCTNL_MSG_CT_DELETE, 10, &v6_o, &v6_r));
    let want = vec![
        (
            code::NAT44_SESSION_CREATE,
            17,
            ip("10.0.0.1"),
            ip("192.0.2.9"),
            40000,
            53,
            ip("198.51.100.1"),
            ip("192.0.2.9"),
            61000,
            53,
        ),
        (
            code::NAT44_SESSION_CREATE,
            6,
            ip("10.0.0.2"),
            ip("203.0.113.1"),
            5555,
            8080,
            ip("10.0.0.2"),
            ip("10.1.0.9"),
            5555,
            80,
        ),
        (
            code::TRANSLATION_CREATE,
            17,
            ip("fd00::2"),
            ip("2001:db8::9"),
            4000,
            443,
            ip("2001:db8:1::1"),
            ip("2001:db8::9"),
            4001,
            443,
        ),
        (
            code::NAT44_SESSION_CREATE,
            1,
            ip("10.0.0.3"),
            ip("192.0.2.7"),
            77,
            8 << 8,
            ip("198.51.100.1"),
            ip("192.0.2.7"),
            1234,
            8 << 8,
        ),
        (
            code::NAT44_SESSION_DELETE,
            17,
            ip("10.0.0.1"),
            ip("192.0.2.9"),
            40000,
            53,
            ip("198.51.100.1"),
            ip("192.0.2.9"),
            61000,
            53,
        ),
        (
            code::TRANSLATION_DELETE,
            17,
            ip("fd00::2"),
            ip("2001:db8::9"),
            4000,
            443,
            ip("2001:db8:1::1"),
            ip("2001:db8::9"),
            4001,
            443,
        ),
    ];
    (buf, want)
}

/// Every kind of translation is decoded with the addresses and ports before and after it;
/// untranslated connections and other messages give no event.
#[test]
fn parser_decodes_translations_only() {
    let (buf, want) = sample_stream();
    let t = Timestamp::from_millis(1_700_000_000_123);
    let mut out = Vec::new();
    let p = parse(&buf, t, &mut out);
    assert_eq!(
        p,
        Parsed {
            messages: 7,
            malformed: 0
        }
    );
    assert_eq!(out.iter().map(flat).collect::<Vec<_>>(), want);
    assert!(out.iter().all(|e| e.time == t));
}

/// Cut anywhere, the stream gives the events of the messages before the cut, and the cut
/// message is counted as malformed; lengths that lie (zero, under a header, past the end,
/// 4 GiB) and nested attributes longer than their parent are counted and skipped, and
/// random bytes never panic.
#[test]
fn parser_survives_cut_and_hostile_input() {
    let (buf, want) = sample_stream();
    let t = Timestamp::ZERO;
    // Where each message starts.
    let mut starts = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        starts.push(at);
        at += u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap()) as usize;
    }
    for cut in 0..buf.len() {
        let mut out = Vec::new();
        let p = parse(&buf[..cut], t, &mut out);
        let whole = starts.iter().filter(|&&s| s < cut).count();
        let on_boundary = starts.contains(&cut);
        assert_eq!(p.malformed, usize::from(!on_boundary), "cut at {cut}");
        assert!(p.messages <= whole, "cut at {cut}");
        assert_eq!(
            out.iter().map(flat).collect::<Vec<_>>(),
            want[..out.len()].to_vec(),
            "cut at {cut}: the events before the cut, in order"
        );
    }

    let good = |v: &[u8]| {
        let mut out = Vec::new();
        (parse(v, t, &mut out), out.len())
    };
    let first_len = starts[1];
    for bad_len in [0u32, 4, 15, u32::MAX, (buf.len() + 1) as u32] {
        let mut b = buf.clone();
        b[..4].copy_from_slice(&bad_len.to_ne_bytes());
        let (p, events) = good(&b);
        assert_eq!((p.malformed, events), (1, 0), "message length {bad_len}");
    }
    // A nested attribute (the original tuple's IP part) longer than the tuple holding it, and
    // one of length 0: that message is malformed, the next ones are read.
    let udp = &buf[..first_len];
    let orig_at = udp
        .windows(2)
        .position(|w| w == (CTA_TUPLE_ORIG | NLA_F_NESTED).to_ne_bytes())
        .unwrap()
        - 2;
    for nested_len in [0u16, 3, 0xffff] {
        let mut b = buf.clone();
        let ip_at = orig_at + 4;
        b[ip_at..ip_at + 2].copy_from_slice(&nested_len.to_ne_bytes());
        let (p, events) = good(&b);
        assert_eq!(p.malformed, 1, "nested length {nested_len}");
        assert_eq!(events, want.len() - 1, "nested length {nested_len}");
    }
    // A conntrack message without its reply tuple: counted, skipped.
    let lone = ct(
        IPCTNL_MSG_CT_NEW,
        2,
        &tuple(CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", 17, 1, 2),
        &[],
    );
    let (p, events) = good(&[lone, buf.clone()].concat());
    assert_eq!((p.malformed, p.messages, events), (1, 7, want.len()));
    // An address attribute too short for its family: no event.
    let short = {
        let ipattr = [
            nla(CTA_IP_V4_SRC, &[10, 0]),
            nla(CTA_IP_V4_DST, &[10, 0, 0, 2]),
        ]
        .concat();
        let pr = [nla(CTA_PROTO_NUM, &[17])].concat();
        let t = nla(
            CTA_TUPLE_ORIG | NLA_F_NESTED,
            &[
                nla(CTA_TUPLE_IP | NLA_F_NESTED, &ipattr),
                nla(CTA_TUPLE_PROTO | NLA_F_NESTED, &pr),
            ]
            .concat(),
        );
        ct(
            IPCTNL_MSG_CT_NEW,
            2,
            &t,
            &tuple(CTA_TUPLE_REPLY, "10.0.0.2", "10.9.9.9", 17, 2, 1),
        )
    };
    assert_eq!(
        good(&short),
        (
            Parsed {
                messages: 0,
                malformed: 1
            },
            0
        )
    );
    // Tuples of two families: counted, skipped.
    let mixed = ct(
        IPCTNL_MSG_CT_NEW,
        2,
        &tuple(CTA_TUPLE_ORIG, "10.0.0.1", "10.0.0.2", 17, 1, 2),
        &tuple(CTA_TUPLE_REPLY, "2001:db8::2", "2001:db8::1", 17, 2, 1),
    );
    let (p, events) = good(&mixed);
    assert_eq!((p.messages, p.malformed, events), (0, 1, 0));
    // Flipped bytes everywhere, and random bytes: no panic.
    for i in 0..buf.len() {
        let mut b = buf.clone();
        b[i] ^= 0xa5;
        good(&b);
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..2000 {
        let n = (x % 300) as usize;
        let mut b = Vec::with_capacity(n);
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.push(x as u8);
        }
        // Plausible headers now and then, to get past the first check.
        if n >= 20 && x % 2 == 0 {
            b[..4].copy_from_slice(&(n as u32).to_ne_bytes());
            b[4..6].copy_from_slice(&(NFNL_SUBSYS_CTNETLINK << 8).to_ne_bytes());
        }
        good(&b);
    }
}

/// The probe's answer: an acknowledgement, an error's errno, or nothing readable.
#[test]
fn acknowledgements_are_read() {
    let err = |code: i32| {
        let mut body = code.to_ne_bytes().to_vec();
        body.extend_from_slice(&[0; 16]); // the request's header
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    };
    assert_eq!(ack_of(&err(0)), Some(0));
    assert_eq!(ack_of(&err(-1)), Some(1), "EPERM");
    assert_eq!(ack_of(&err(-95)), Some(95), "EOPNOTSUPP");
    assert_eq!(ack_of(&err(i32::MIN)), Some(i32::MAX));
    // After a statistics reply.
    let stats = message(NFNL_SUBSYS_CTNETLINK << 8 | 5, 0, &nla(1, &[0; 4]));
    assert_eq!(ack_of(&[stats.clone(), err(0)].concat()), Some(0));
    assert_eq!(ack_of(&stats), None);
    for cut in 0..20 {
        assert_eq!(ack_of(&err(0)[..cut]), None);
    }
    let mut zero = err(0);
    zero[..4].copy_from_slice(&0u32.to_ne_bytes());
    let _ = ack_of(&zero);
}

fn event(ev: u8, src: &str, dst: &str, post_src: &str, post_dst: &str) -> NatEvent {
    NatEvent {
        time: Timestamp::from_millis(1_700_000_000_123),
        event: ev,
        proto: 17,
        src: ip(src),
        dst: ip(dst),
        src_port: 40000,
        dst_port: 53,
        post_src: ip(post_src),
        post_dst: ip(post_dst),
        post_src_port: 61000,
        post_dst_port: 53,
    }
}

/// The encoder's NAT records: their own templates (IPv4, IPv6), the RFC 8158 element ids,
/// the values, as qof's decoder and ipfixDump read them back.
#[test]
fn nat_records_are_ipfix_with_their_own_templates() {
    let v4 = event(
        code::NAT44_SESSION_CREATE,
        "10.0.0.1",
        "192.0.2.9",
        "198.51.100.1",
        "192.0.2.9",
    );
    let v6 = event(
        code::TRANSLATION_DELETE,
        "fd00::2",
        "2001:db8::9",
        "2001:db8:1::1",
        "2001:db8::9",
    );
    let mut enc = Encoder::new(TemplateSpec::qof_default(), 7, 65_535, false);
    let mut stream = Vec::new();
    enc.encode_nat(&v4, 1_700_000_001, &mut stream).unwrap();
    enc.encode_nat(&v6, 1_700_000_001, &mut stream).unwrap();
    enc.encode_nat(&v4, 1_700_000_001, &mut stream).unwrap();
    enc.flush(1_700_000_001, &mut stream).unwrap();
    let mut session = Session::new();
    let mut records: Vec<DecodedRecord> = Vec::new();
    let (msg, len) = Message::parse(&stream, 0).unwrap();
    assert_eq!(len, stream.len(), "one message");
    session
        .decode(&msg, |e| match e {
            Event::Record(r) => records.push((
                r.template_id,
                r.fields.iter().map(|f| (f.id, f.bytes.to_vec())).collect(),
            )),
            Event::Warning(w) => panic!("{w}"),
            _ => {}
        })
        .unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].0, NAT4_TEMPLATE_ID);
    assert_eq!(records[1].0, NAT6_TEMPLATE_ID);
    let ids = |r: &DecodedRecord| r.1.iter().map(|f| f.0).collect::<Vec<_>>();
    assert_eq!(
        ids(&records[0]),
        [323, 230, 4, 8, 12, 7, 11, 225, 226, 227, 228]
    );
    assert_eq!(
        ids(&records[1]),
        [323, 230, 4, 27, 28, 7, 11, 281, 282, 227, 228]
    );
    let v = &records[0].1;
    assert_eq!(v[0].1, 1_700_000_000_123u64.to_be_bytes());
    assert_eq!(v[1].1, [4]);
    assert_eq!(v[2].1, [17]);
    assert_eq!(v[3].1, [10, 0, 0, 1]);
    assert_eq!(v[7].1, [198, 51, 100, 1]);
    assert_eq!(v[9].1, 61000u16.to_be_bytes());
    let w = &records[1].1;
    assert_eq!(w[1].1, [2]);
    assert_eq!(w[7].1, ip6("2001:db8:1::1"));

    if !have_tool("ipfixDump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("nat.ipfix");
    std::fs::write(&file, &stream).unwrap();
    let d = run(Command::new("ipfixDump").arg("--in").arg(&file));
    let text = String::from_utf8_lossy(&d.stdout);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert_eq!(text.matches("--- data record").count(), 3, "{text}");
    for line in [
        "natEvent : 4",
        "natEvent : 2",
        "postNATSourceIPv4Address : 198.51.100.1",
        "postNAPTSourceTransportPort : 61000",
        "observationTimeMilliseconds : 2023-11-14 22:13:20.123",
    ] {
        assert!(
            text.lines().any(|l| squeeze(l).ends_with(line)),
            "ipfixDump has no `{line}`:\n{text}"
        );
    }
    // (ipfixDump writes IPv6 addresses its own way: read back as addresses.)
    assert_eq!(
        ipfixdump_addresses(&text, "postNATSourceIPv6Address"),
        [ip("2001:db8:1::1")]
    );
    assert_eq!(
        ipfixdump_addresses(&text, "sourceIPv6Address"),
        [ip("fd00::2")]
    );
}

/// The addresses ipfixDump prints for element `name`, in order.
fn ipfixdump_addresses(text: &str, name: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            squeeze(l)
                .split_once(&format!(") {name} : "))
                .map(|(_, v)| v.to_string())
        })
        .map(|v| v.parse().unwrap())
        .collect()
}

/// A record's template id, and its fields' (element id, octets).
type DecodedRecord = (u16, Vec<(u16, Vec<u8>)>);

fn ip6(s: &str) -> Vec<u8> {
    match ip(s) {
        IpAddr::V6(a) => a.octets().to_vec(),
        IpAddr::V4(_) => unreachable!(),
    }
}

/// One space between words (ipfixDump aligns its columns).
fn squeeze(l: &str) -> String {
    l.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every bad combination is one line naming the option.
#[test]
fn natevents_bad_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let pcap = tmp.path().join("x.pcap");
    std::fs::write(&pcap, udp_pcap(&[b"x".to_vec()], 53)).unwrap();
    let yaml = |text: &str| {
        let p = tmp.path().join(format!("{}.yaml", text.len()));
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (
            vec!["--in".into(), pcap.clone().into(), "--natevents".into()],
            "--natevents: NAT events are read as the kernel translates: it needs a live capture",
        ),
        (
            vec![
                "--in".into(),
                pcap.clone().into(),
                "--yaml".into(),
                yaml("natevents: true\n").into(),
            ],
            "--natevents: NAT events are read as the kernel translates: it needs a live capture",
        ),
        (
            vec![
                "--in".into(),
                "int:lo".into(),
                "--natevents".into(),
                "--netflow".into(),
                "9".into(),
                "--out".into(),
                "127.0.0.1".into(),
            ],
            "--natevents: NAT event records need IPFIX or JSON output, not --netflow",
        ),
        (
            vec![
                "--in".into(),
                "int:lo".into(),
                "--natevents".into(),
                "--kafka".into(),
                "127.0.0.1:9092".into(),
                "--kafka-topic".into(),
                "flows".into(),
            ],
            "--natevents: NAT event records go to IPFIX or JSON output, not --kafka",
        ),
        (
            vec![
                "--in".into(),
                "int:lo".into(),
                "--yaml".into(),
                yaml("natevents: maybe\n").into(),
            ],
            "line 1 column 12: expected true, false, 1 or 0",
        ),
    ];
    for (args, want) in cases {
        let out = run(qof().args(&args).args(["--format", "json"]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
    }
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Without CAP_NET_ADMIN (as nobody, with only the capture capability), qof says in one line
/// that conntrack events need it, and exits 1 before reading anything.
#[test]
fn unprivileged_natevents_is_one_clear_error() {
    if !is_root() {
        // As an ordinary user the capture itself is refused first: still one line, exit 1.
        let out = run(qof().args(["--in", "int:lo", "--natevents", "--format", "json"]));
        assert_eq!(out.status.code(), Some(1));
        eprintln!("not root: the CAP_NET_ADMIN error could not be provoked alone");
        return;
    }
    if !have_tool("setpriv") {
        return;
    }
    let out = run(Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+net_raw",
            "--ambient-caps=+net_raw",
        ])
        .arg(env!("CARGO_BIN_EXE_qof"))
        .args(["--in", "int:lo", "--natevents", "--format", "json"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("qof: --natevents: ") && err.contains("CAP_NET_ADMIN"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// Network namespaces made for a test, removed when dropped.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn sh(ns: &str, args: &[&str]) {
    let out = run(Command::new("ip").args(["netns", "exec", ns]).args(args));
    assert!(
        out.status.success(),
        "{ns}: {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ipc(args: &[&str]) {
    let out = run(Command::new("ip").args(args));
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// qof, killed if the test fails first.
struct Running(Option<Child>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Running {
    /// SIGINT, and its standard error once it has exited.
    fn stop(mut self) -> (Option<i32>, String) {
        let c = self.0.take().unwrap();
        let _ = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status();
        let out = c.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn nat_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("natEvent").is_some())
        .collect()
}

/// Without the time (each qof stamps its own reads).
fn untimed(v: &serde_json::Value) -> serde_json::Value {
    let mut v = v.clone();
    v.as_object_mut()
        .unwrap()
        .remove("observationTimeMilliseconds");
    v
}

/// A router in a network namespace translates UDP (masquerade to ports 20000-20009), TCP
/// (destination NAT of port 8080 to a server, then masquerade) and IPv6 UDP (masquerade),
/// and leaves a connection to itself alone; conntrack then deletes every entry. Two qof
/// processes watch it (one writes IPFIX, one JSON, turned on from the YAML file): each
/// translation's create and delete come out with its addresses and ports before and after,
/// the untranslated connection does not, IPFIX (read by qofdump and ipfixDump) and JSON agree.
#[test]
fn a_translating_router_exports_its_nat_events() {
    if !is_root() {
        eprintln!(
            "ops_natevents: end-to-end part skipped: not root (network namespaces and \
             conntrack events need CAP_NET_ADMIN); the clear error is checked instead"
        );
        let out = run(qof().args(["--in", "int:lo", "--natevents", "--format", "json"]));
        assert_eq!(out.status.code(), Some(1));
        return;
    }
    if !std::path::Path::new("/proc/net/nf_conntrack").exists()
        && !std::path::Path::new("/proc/sys/net/netfilter/nf_conntrack_max").exists()
    {
        let _ = Command::new("modprobe").arg("nf_conntrack").status();
    }
    if !std::path::Path::new("/proc/sys/net/netfilter").exists() {
        // No conntrack in this kernel: qof must say so in one line.
        eprintln!("ops_natevents: end-to-end part skipped: this kernel has no conntrack");
        let out = run(qof().args(["--in", "int:lo", "--natevents", "--format", "json"]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(err.contains("--natevents: "), "{err}");
        return;
    }
    if !have_tool("nft") || !have_tool("ip") {
        return;
    }
    let n = std::process::id() % 100_000;
    let (c, r, s) = (format!("qn{n}c"), format!("qn{n}r"), format!("qn{n}s"));
    for ns in [&c, &r, &s] {
        ipc(&["netns", "add", ns]);
    }
    let _guard = Namespaces(vec![c.clone(), r.clone(), s.clone()]);
    let (c0, r0, r1, s1) = (
        format!("qn{n}c0"),
        format!("qn{n}r0"),
        format!("qn{n}r1"),
        format!("qn{n}s1"),
    );
    ipc(&[
        "link", "add", &c0, "netns", &c, "type", "veth", "peer", "name", &r0, "netns", &r,
    ]);
    ipc(&[
        "link", "add", &r1, "netns", &r, "type", "veth", "peer", "name", &s1, "netns", &s,
    ]);
    for (ns, dev, v4, v6) in [
        (&c, &c0, "10.81.0.2/24", "fd81::2/64"),
        (&r, &r0, "10.81.0.1/24", "fd81::1/64"),
        (&r, &r1, "10.82.0.1/24", "fd82::1/64"),
        (&s, &s1, "10.82.0.2/24", "fd82::2/64"),
    ] {
        sh(ns, &["ip", "addr", "add", v4, "dev", dev]);
        sh(ns, &["ip", "-6", "addr", "add", v6, "dev", dev, "nodad"]);
        sh(ns, &["ip", "link", "set", dev, "up"]);
        sh(ns, &["ip", "link", "set", "lo", "up"]);
    }
    sh(&c, &["ip", "route", "add", "default", "via", "10.81.0.1"]);
    sh(
        &c,
        &["ip", "-6", "route", "add", "default", "via", "fd81::1"],
    );
    sh(&r, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    sh(&r, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    let rules = format!(
        "table ip qnat {{\n\
           chain pre {{ type nat hook prerouting priority -100; tcp dport 8080 dnat to 10.82.0.2:80; }}\n\
           chain post {{ type nat hook postrouting priority 100;\n\
             oifname \"{r1}\" udp dport 5000 masquerade to :20000-20009;\n\
             oifname \"{r1}\" masquerade; }}\n\
         }}\n\
         table ip6 qnat6 {{\n\
           chain post {{ type nat hook postrouting priority 100; oifname \"{r1}\" masquerade; }}\n\
         }}\n"
    );
    let tmp = tempfile::tempdir().unwrap();
    let rules_file = tmp.path().join("rules.nft");
    std::fs::write(&rules_file, rules).unwrap();
    sh(&r, &["nft", "-f", rules_file.to_str().unwrap()]);

    // Two qof processes on the router: IPFIX to a file, JSON (natevents from the YAML file).
    let ipfix = tmp.path().join("nat.ipfix");
    let json = tmp.path().join("nat.json");
    let yaml = tmp.path().join("q.yaml");
    std::fs::write(&yaml, "natevents: true\n").unwrap();
    let (pid1, pid2) = (tmp.path().join("1.pid"), tmp.path().join("2.pid"));
    let spawn = |extra: Vec<PathBufOrStr>| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &r])
            .arg(env!("CARGO_BIN_EXE_qof"))
            .args(["--in", &format!("int:{r0}")]);
        for a in extra {
            match a {
                PathBufOrStr::P(p) => cmd.arg(p),
                PathBufOrStr::S(s) => cmd.arg(s),
            };
        }
        Running(Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    };
    use PathBufOrStr::{P, S};
    let started = Timestamp::from_millis(now_ms());
    let q1 = spawn(vec![
        S("--natevents"),
        S("--out"),
        P(ipfix.clone()),
        S("--pidfile"),
        P(pid1.clone()),
    ]);
    // A UDP collector on the router's loopback, keeping every datagram, for a third qof.
    let (received, ready) = (tmp.path().join("udp.ipfix"), tmp.path().join("udp.ready"));
    let collector = Running(Some(
        Command::new("ip")
            .args(["netns", "exec", &r, "python3", "-c"])
            .arg(format!(
                "import socket\n\
                 s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 4739))\n\
                 f = open('{}', 'wb'); open('{}', 'w').close()\n\
                 while True:\n    f.write(s.recv(65535)); f.flush()\n",
                received.display(),
                ready.display()
            ))
            .spawn()
            .unwrap(),
    ));
    wait_for(&ready, "the UDP collector");
    let pid3 = tmp.path().join("3.pid");
    let q3 = spawn(vec![
        S("--natevents"),
        S("--ipfix"),
        S("udp"),
        S("--out"),
        S("127.0.0.1"),
        S("--pidfile"),
        P(pid3.clone()),
    ]);
    let q2 = spawn(vec![
        S("--yaml"),
        P(yaml.clone()),
        S("--format"),
        S("json"),
        S("--out"),
        P(json.clone()),
        S("--pidfile"),
        P(pid2.clone()),
    ]);
    // (The pid file is written once the conntrack events are subscribed to.)
    wait_for(&pid1, "qof (IPFIX)");
    wait_for(&pid2, "qof (JSON)");
    wait_for(&pid3, "qof (IPFIX over UDP)");

    // The server: TCP port 80, one connection.
    let server = Running(Some(
        Command::new("ip")
            .args(["netns", "exec", &s, "python3", "-c"])
            .arg(
                "import socket\n\
                 s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('10.82.0.2', 80)); s.listen(1); print('up', flush=True)\n\
                 c, _ = s.accept(); c.recv(10); c.sendall(b'ok'); c.close()\n",
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(300));
    sh(
        &c,
        &[
            "python3",
            "-c",
            "import socket\n\
             u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('10.81.0.2', 40001))\n\
             u.sendto(b'v4', ('10.82.0.2', 5000))\n\
             t = socket.create_connection(('10.81.0.1', 8080), timeout=5, source_address=('10.81.0.2', 40002))\n\
             t.sendall(b'hi'); assert t.recv(10) == b'ok'; t.close()\n\
             v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); v.bind(('fd81::2', 40003))\n\
             v.sendto(b'v6', ('fd82::2', 5000))\n\
             p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); p.bind(('10.81.0.2', 40004))\n\
             p.sendto(b'plain', ('10.81.0.1', 7))\n",
        ],
    );
    drop(server);
    // Every connection is in the router's table (its create event sent) before any is
    // deleted: a loaded machine may take a while to resolve the IPv6 neighbours.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table =
            run(Command::new("ip").args(["netns", "exec", &r, "cat", "/proc/net/nf_conntrack"]));
        let table = String::from_utf8_lossy(&table.stdout);
        if [
            "sport=40001 ",
            "sport=40002 ",
            "sport=40003 ",
            "sport=40004 ",
        ]
        .iter()
        .all(|p| table.contains(p))
        {
            break;
        }
        assert!(Instant::now() < deadline, "conntrack table: {table}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let deletes = have_tool("conntrack");
    if deletes {
        // (Each family: conntrack(8) takes IPv4 alone by default.)
        sh(&r, &["conntrack", "-D", "-f", "ipv4"]);
        sh(&r, &["conntrack", "-D", "-f", "ipv6"]);
    } else {
        eprintln!("ops_natevents: conntrack(8) is missing: delete events are not provoked");
    }
    std::thread::sleep(Duration::from_millis(500));
    let (code1, err1) = q1.stop();
    let (code2, err2) = q2.stop();
    let (code3, err3) = q3.stop();
    std::thread::sleep(Duration::from_millis(100));
    drop(collector);
    assert_eq!(code1, Some(0), "{err1}");
    assert_eq!(code2, Some(0), "{err2}");
    assert_eq!(code3, Some(0), "{err3}");
    let ended = Timestamp::from_millis(now_ms());

    let from_json = nat_lines(&std::fs::read_to_string(&json).unwrap());
    let dumped = run(qofdump().arg(&ipfix));
    assert!(dumped.status.success());
    let from_ipfix = nat_lines(&String::from_utf8(dumped.stdout).unwrap());
    assert_eq!(
        from_ipfix.iter().map(untimed).collect::<Vec<_>>(),
        from_json.iter().map(untimed).collect::<Vec<_>>(),
        "IPFIX (qofdump) and JSON agree"
    );
    assert!(
        err1.contains(&format!("{} NAT event records exported", from_ipfix.len())),
        "{err1}"
    );
    // Over UDP: the same events; the collector's count of flow records sent is the flow
    // records' alone (NAT events are not counted as flows).
    let dumped = run(qofdump().arg(&received));
    assert!(dumped.status.success());
    let from_udp = nat_lines(&String::from_utf8(dumped.stdout).unwrap());
    assert_eq!(
        from_udp.iter().map(untimed).collect::<Vec<_>>(),
        from_json.iter().map(untimed).collect::<Vec<_>>(),
        "IPFIX over UDP and JSON agree"
    );
    let summary = err3
        .lines()
        .find(|l| l.contains("flow records exported"))
        .unwrap();
    let flows: String = summary
        .split("; ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(
        summary.contains(&format!("{flows} flow records exported: {flows} sent")),
        "{summary}"
    );

    let find = |ev: u64, key: &str, val: &str, port_key: &str, port: u64| {
        from_json
            .iter()
            .filter(|v| v["natEvent"] == ev && v[key] == val && v[port_key] == port)
            .cloned()
            .collect::<Vec<_>>()
    };
    let (create4, delete4, create6, delete6) = (4, 5, 1, 2);
    // UDP, masqueraded into 20000-20009.
    let udp = find(
        create4,
        "sourceIPv4Address",
        "10.81.0.2",
        "sourceTransportPort",
        40001,
    );
    assert_eq!(udp.len(), 1, "{from_json:#?}");
    let u = &udp[0];
    assert_eq!(u["protocolIdentifier"], 17);
    assert_eq!(u["destinationIPv4Address"], "10.82.0.2");
    assert_eq!(u["destinationTransportPort"], 5000);
    assert_eq!(u["postNATSourceIPv4Address"], "10.82.0.1");
    assert_eq!(u["postNATDestinationIPv4Address"], "10.82.0.2");
    assert_eq!(u["postNAPTDestinationTransportPort"], 5000);
    let p = u["postNAPTSourceTransportPort"].as_u64().unwrap();
    assert!((20000..=20009).contains(&p), "masqueraded port {p}");
    // TCP: destination NAT to the server, and masquerade.
    let tcp = find(
        create4,
        "sourceIPv4Address",
        "10.81.0.2",
        "sourceTransportPort",
        40002,
    );
    assert_eq!(tcp.len(), 1, "{from_json:#?}");
    let t = &tcp[0];
    assert_eq!(t["protocolIdentifier"], 6);
    assert_eq!(t["destinationIPv4Address"], "10.81.0.1");
    assert_eq!(t["destinationTransportPort"], 8080);
    assert_eq!(t["postNATSourceIPv4Address"], "10.82.0.1");
    assert_eq!(t["postNATDestinationIPv4Address"], "10.82.0.2");
    assert_eq!(t["postNAPTDestinationTransportPort"], 80);
    // IPv6 masquerade.
    let v6 = find(
        create6,
        "sourceIPv6Address",
        "fd81::2",
        "sourceTransportPort",
        40003,
    );
    assert_eq!(v6.len(), 1, "{from_json:#?}");
    assert_eq!(v6[0]["destinationIPv6Address"], "fd82::2");
    assert_eq!(v6[0]["postNATSourceIPv6Address"], "fd82::1");
    assert_eq!(v6[0]["postNATDestinationIPv6Address"], "fd82::2");
    assert_eq!(v6[0]["postNAPTDestinationTransportPort"], 5000);
    // The connection to the router itself is not translated: no event.
    assert!(
        from_json.iter().all(|v| v["sourceTransportPort"] != 40004),
        "{from_json:#?}"
    );
    // Each event's time is within the run.
    for v in &from_json {
        let t = v["observationTimeMilliseconds"].as_str().unwrap();
        assert!(
            t.ends_with('Z') && t.len() == "2026-12-04T20:11:57.303Z".len(),
            "{t}"
        );
    }
    assert!(started < ended);
    if deletes {
        for (ev, key, val, port) in [
            (delete4, "sourceIPv4Address", "10.81.0.2", 40001),
            (delete4, "sourceIPv4Address", "10.81.0.2", 40002),
            (delete6, "sourceIPv6Address", "fd81::2", 40003),
        ] {
            let d = find(ev, key, val, "sourceTransportPort", port);
            assert_eq!(d.len(), 1, "delete of port {port}: {from_json:#?}");
            let create = from_json
                .iter()
                .find(|v| {
                    v["natEvent"] == ev - 1 && v[key] == val && v["sourceTransportPort"] == port
                })
                .unwrap();
            assert_eq!(
                untimed(&d[0]).as_object().unwrap().len(),
                untimed(create).as_object().unwrap().len()
            );
            for k in [
                "postNATSourceIPv4Address",
                "postNATSourceIPv6Address",
                "postNAPTSourceTransportPort",
            ] {
                assert_eq!(
                    d[0].get(k),
                    create.get(k),
                    "{k}: the delete names the same translation"
                );
            }
        }
        assert_eq!(
            from_json.len(),
            6,
            "three creates, three deletes: {from_json:#?}"
        );
    } else {
        assert_eq!(from_json.len(), 3, "three creates: {from_json:#?}");
    }

    // ipfixDump reads the same records.
    if have_tool("ipfixDump") {
        let d = run(Command::new("ipfixDump").arg("--in").arg(&ipfix));
        let text = String::from_utf8_lossy(&d.stdout);
        // (Each data record's header names its template: 0xd002 and 0xd003 are NAT events.)
        let mut in_data = false;
        let mut nat_records = 0;
        for l in text.lines() {
            if l.starts_with("--- ") {
                in_data = l.starts_with("--- data record");
            } else if in_data && (l.contains("tid: 53250") || l.contains("tid: 53251")) {
                nat_records += 1;
            }
        }
        assert_eq!(nat_records, from_json.len(), "{text}");
        assert_eq!(
            ipfixdump_addresses(&text, "postNATSourceIPv6Address"),
            vec![ip("fd82::1"); if deletes { 2 } else { 1 }]
        );
    }
}

enum PathBufOrStr {
    P(PathBuf),
    S(&'static str),
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
