//! The mqtt, ovpn and wg plugins against tshark's dissection of the same packets.
//!
//! qof runs with the three plugins (JSON) on every capture of the corpus and on captures
//! built here from literal packets (the corpus has one MQTT capture and neither OpenVPN nor
//! WireGuard). tshark dissects the same files: every frame's 5-tuple and time (fields), and
//! the frames it dissects as MQTT, OpenVPN or WireGuard (PDML, every message of a segment in
//! order). Frames go into qof's records by 5-tuple, in time order, as many as each record
//! counts (time containment checked). Then per field, each of tshark's values is found in
//! its record, missed (the record carries no value) or contradicted (it carries another):
//!
//! * `mqtt.msgtype`: the type's bit in mqttTypeCumulative; `mqtt.topic` (PUBLISH) among
//!   mqttTopics; the PUBLISH `mqtt.hdrflags` among mqttPublishFlags; `mqtt.ver`,
//!   `mqtt.conflags`, `mqtt.kalive` of the record's last CONNECT; `mqtt.conack.val` (5.0:
//!   `mqtt.connack.reason_code`) and `mqtt.conack.flags.sp` of its last CONNACK;
//! * `openvpn.*`: ipfixprobe's rules (§2.16) applied to tshark's packets of the record
//!   (`openvpn.opcode`, direction, `openvpn.plen` or the UDP length, the
//!   `tls.handshake.type` a control packet carries) give the OVPNConfLevel to expect;
//! * `wg.type`: the record says WireGuard (WGConfLevel 1 or 100); `wg.sender` and
//!   `wg.receiver`: the index qof gives that side (WGSrcPeer for the record's forward side).
//!
//! Every field: at least 97 % of tshark's values found and at most 1 % contradicted. Where qof
//! finds MQTT or OpenVPN on a port tshark does not dissect them on, tshark is told to
//! (`-d`), so those records are checked too; and every record qof finds one of the three in
//! must be one tshark dissects so (no false positive). A table per capture is printed, and
//! every value not found with its record.
//!
//! Measured (`cargo test --test plugins_misc -- --nocapture`): every value of every field
//! found, none missed or contradicted (mqtt.msgtype 170, mqtt.topic and PUBLISH flags 131
//! each, CONNECT and CONNACK fields 9 each, 10 OpenVPN records calling for 100, 80, 70, 0
//! and nothing, wg.type 81, wg.receiver 75, wg.sender 10). Of the corpus, only
//! ipfixprobe__mqtt.pcap carries any of the three; two values were not found before fixes
//! this test led to: a PUBLISH topic cut by a segment's end past the stream's window (the
//! framer now keeps a message's first 256 octets over segments), and a GTP-U tunnel in
//! ndpi__reasm_segv_anon.pcapng that ipfixprobe's rules call 80 % OpenVPN (its first octet
//! reads as P_DATA_V1; ovpn now leaves GTP-U out as it does RTP).

mod common;
use common::*;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// ------------------------------------------------------------------------------------------
// Captures built from literal packets.

/// A pcap of Ethernet frames, one every 10 ms.
struct Capture {
    bytes: Vec<u8>,
    us: u64,
}

impl Capture {
    fn new() -> Capture {
        let mut bytes = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65_535, 1] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Capture {
            bytes,
            us: 1_700_000_000_000_000,
        }
    }

    fn push(&mut self, ip: Vec<u8>) {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(if ip[0] >> 4 == 6 {
            &[0x86, 0xdd]
        } else {
            &[0x08, 0x00]
        });
        f.extend_from_slice(&ip);
        for v in [
            (self.us / 1_000_000) as u32,
            (self.us % 1_000_000) as u32,
            f.len() as u32,
            f.len() as u32,
        ] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend_from_slice(&f);
        self.us += 10_000;
    }
}

/// An address and port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct End(IpAddr, u16);

fn end(ip: &str, port: u16) -> End {
    End(ip.parse().unwrap(), port)
}

fn sum16(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum()
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IP packet from `src` to `dst` carrying `l4` (its checksum at `sum_at` filled in).
fn ip_packet(src: End, dst: End, proto: u8, mut l4: Vec<u8>, sum_at: usize) -> Vec<u8> {
    let mut pseudo = Vec::new();
    match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&[0, proto]);
            pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend_from_slice(&s.octets());
            pseudo.extend_from_slice(&d.octets());
            pseudo.extend_from_slice(&(l4.len() as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed families"),
    }
    let mut c = fold(sum16(&pseudo) + sum16(&l4));
    if c == 0 && proto == 17 {
        c = 0xffff;
    }
    l4[sum_at..sum_at + 2].copy_from_slice(&c.to_be_bytes());
    match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + l4.len()) as u16;
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = fold(sum16(&ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            ip.extend_from_slice(&l4);
            ip
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = vec![0x60, 0, 0, 0];
            ip.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            ip.extend_from_slice(&[proto, 64]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            ip.extend_from_slice(&l4);
            ip
        }
        _ => unreachable!(),
    }
}

fn udp(cap: &mut Capture, from: End, to: End, payload: &[u8]) {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&from.1.to_be_bytes());
    l4.extend_from_slice(&to.1.to_be_bytes());
    l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    l4.extend_from_slice(&[0, 0]);
    l4.extend_from_slice(payload);
    cap.push(ip_packet(from, to, 17, l4, 6));
}

const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

/// A TCP connection: the client and the server, and each one's next sequence number.
struct Tcp {
    ends: [End; 2],
    seq: [u32; 2],
}

impl Tcp {
    fn new(client: End, server: End) -> Tcp {
        Tcp {
            ends: [client, server],
            seq: [0x1000_0000 + u32::from(client.1), 0xf000_0000],
        }
    }

    fn at(&self, cap: &mut Capture, server: bool, flags: u8, seq: u32, payload: &[u8]) {
        let d = usize::from(server);
        let (from, to) = (self.ends[d], self.ends[1 - d]);
        let mut l4 = Vec::new();
        l4.extend_from_slice(&from.1.to_be_bytes());
        l4.extend_from_slice(&to.1.to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&self.seq[1 - d].to_be_bytes());
        l4.extend_from_slice(&[0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
        l4.extend_from_slice(payload);
        cap.push(ip_packet(from, to, 6, l4, 16));
    }

    /// A segment at the side's next sequence number, which it advances.
    fn seg(&mut self, cap: &mut Capture, server: bool, flags: u8, payload: &[u8]) {
        let d = usize::from(server);
        self.at(cap, server, flags, self.seq[d], payload);
        let used = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
        self.seq[d] = self.seq[d].wrapping_add(used);
    }

    fn open(&mut self, cap: &mut Capture) {
        self.seg(cap, false, SYN, &[]);
        self.seg(cap, true, SYN | ACK, &[]);
        self.seg(cap, false, ACK, &[]);
    }

    /// `bytes` from one side in segments of at most `mss` octets, then the other's ACK.
    fn send(&mut self, cap: &mut Capture, server: bool, bytes: &[u8], mss: usize) {
        for chunk in bytes.chunks(mss) {
            self.seg(cap, server, PSH | ACK, chunk);
        }
        self.seg(cap, !server, ACK, &[]);
    }

    fn close(&mut self, cap: &mut Capture) {
        self.seg(cap, false, FIN | ACK, &[]);
        self.seg(cap, true, FIN | ACK, &[]);
        self.seg(cap, false, ACK, &[]);
    }
}

/// Octets that look random (and contain no zero), from a fixed seed.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

// --- MQTT ---

fn mqtt(kind: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind << 4 | flags];
    let mut n = body.len();
    loop {
        let o = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { o | 0x80 } else { o });
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

fn utf8(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// A CONNECT: protocol `name` and `level`, `flags` (with user name and password when its
/// bits say so), keep alive; 5.0 with a session-expiry property.
fn connect(name: &[u8], level: u8, flags: u8, keep_alive: u16, client: &[u8]) -> Vec<u8> {
    let mut b = utf8(name);
    b.extend_from_slice(&[level, flags]);
    b.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        b.extend_from_slice(&[5, 0x11, 0, 0, 0x0e, 0x10]);
    }
    b.extend(utf8(client));
    if flags & 0x80 != 0 {
        b.extend(utf8(b"meter"));
    }
    if flags & 0x40 != 0 {
        b.extend(utf8(b"secret"));
    }
    mqtt(1, 0, &b)
}

fn connack(level: u8, flags: u8, code: u8) -> Vec<u8> {
    let mut b = vec![flags, code];
    if level == 5 {
        b.extend_from_slice(&[3, 0x21, 0, 20]); // receive maximum 20
    }
    mqtt(2, 0, &b)
}

/// A PUBLISH (3.1.1; with `v5`, an empty property list or a topic alias).
fn publish(flags: u8, topic: &[u8], v5: Option<u16>, message: &[u8]) -> Vec<u8> {
    let mut b = utf8(topic);
    if flags & 0x06 != 0 {
        b.extend_from_slice(&[0x12, 0x34]);
    }
    match v5 {
        Some(0) => b.push(0),
        Some(alias) => {
            b.extend_from_slice(&[3, 0x23]);
            b.extend_from_slice(&alias.to_be_bytes());
        }
        None => {}
    }
    b.extend_from_slice(message);
    mqtt(3, flags, &b)
}

fn subscribe(filter: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 1];
    b.extend(utf8(filter));
    b.push(1);
    mqtt(8, 2, &b)
}

fn mqtt_capture() -> Capture {
    let mut cap = Capture::new();
    let broker = end("192.0.2.10", 1883);
    // A 3.1.1 session seen from its SYN: a CONNECT with user name and password over two
    // segments, packets coalesced, a 321-octet PUBLISH over two segments, QoS 1 both ways.
    let mut s = Tcp::new(end("198.51.100.1", 40_001), broker);
    s.open(&mut cap);
    let hello = connect(b"MQTT", 4, 0xc2, 60, b"sensor-1");
    s.send(&mut cap, false, &hello[..9], 1448);
    s.send(&mut cap, false, &hello[9..], 1448);
    s.send(&mut cap, true, &connack(4, 0, 0), 1448);
    let mut two = subscribe(b"cmd/#");
    two.extend(publish(0, b"sensors/t1", None, b"21.5"));
    s.send(&mut cap, false, &two, 1448);
    let long = publish(0b1011, b"sensors/blob", None, &[b'z'; 305]);
    s.send(&mut cap, false, &long, 200);
    let mut back = mqtt(9, 0, &[0, 1, 1]);
    back.extend(publish(0b0010, b"cmd/reset", None, b"now"));
    s.send(&mut cap, true, &back, 1448);
    s.send(&mut cap, false, &mqtt(4, 0, &[0x12, 0x34]), 1448);
    s.send(&mut cap, false, &mqtt(12, 0, &[]), 1448);
    s.send(&mut cap, true, &mqtt(13, 0, &[]), 1448);
    s.send(&mut cap, false, &mqtt(14, 0, &[]), 1448);
    s.close(&mut cap);

    // MQTT 5.0 over IPv6: properties everywhere, a topic alias and then the alias alone.
    let mut s = Tcp::new(end("2001:db8::1", 40_002), end("2001:db8::10", 1883));
    s.open(&mut cap);
    s.send(&mut cap, false, &connect(b"MQTT", 5, 0x02, 30, b"v5"), 1448);
    s.send(&mut cap, true, &connack(5, 1, 0), 1448);
    s.send(
        &mut cap,
        false,
        &publish(0, b"v5/topic", Some(7), b"a"),
        1448,
    );
    s.send(&mut cap, false, &publish(1, b"", Some(7), b"b"), 1448);
    s.send(&mut cap, false, &mqtt(14, 0, &[0, 0]), 1448);
    s.close(&mut cap);

    // A long session: 120 PUBLISH of 180 octets in full segments, far past the stream's
    // window; then PINGREQ, PINGRESP and DISCONNECT.
    let mut s = Tcp::new(end("198.51.100.3", 40_003), broker);
    s.open(&mut cap);
    s.send(
        &mut cap,
        false,
        &connect(b"MQTT", 4, 0x02, 10, b"bulk"),
        1448,
    );
    s.send(&mut cap, true, &connack(4, 0, 0), 1448);
    let mut bulk = Vec::new();
    for i in 0..120 {
        let flags = if i % 40 == 39 { 0b0011 } else { 0 };
        let topic = format!("bulk/{i}");
        bulk.extend(publish(flags, topic.as_bytes(), None, &[b'b'; 160]));
    }
    s.send(&mut cap, false, &bulk, 1448);
    s.send(&mut cap, false, &mqtt(12, 0, &[]), 1448);
    s.send(&mut cap, true, &mqtt(13, 0, &[]), 1448);
    s.send(&mut cap, false, &mqtt(14, 0, &[]), 1448);
    s.close(&mut cap);

    // MQTT 3.1 on another port.
    let mut s = Tcp::new(end("198.51.100.4", 40_004), end("192.0.2.10", 11_883));
    s.open(&mut cap);
    s.send(
        &mut cap,
        false,
        &connect(b"MQIsdp", 3, 0x04, 90, b"old"),
        1448,
    );
    s.send(&mut cap, true, &connack(3, 0, 0), 1448);
    s.send(&mut cap, false, &publish(1, b"legacy", None, b"x"), 1448);
    s.send(&mut cap, false, &mqtt(14, 0, &[]), 1448);
    s.close(&mut cap);

    // The CONNECT's second segment before its first; the broker refuses (code 5).
    let mut s = Tcp::new(end("198.51.100.5", 40_005), broker);
    s.open(&mut cap);
    let hello = connect(b"MQTT", 4, 0x02, 60, b"late-joiner");
    let at = s.seq[0];
    s.at(&mut cap, false, PSH | ACK, at + 6, &hello[6..]);
    s.at(&mut cap, false, PSH | ACK, at, &hello[..6]);
    s.seq[0] = at + hello.len() as u32;
    s.send(&mut cap, true, &connack(4, 0, 5), 1448);
    s.close(&mut cap);
    cap
}

// --- OpenVPN ---

/// How a session authenticates its control packets.
#[derive(Clone, Copy)]
struct Auth {
    /// HMAC octets (0: no --tls-auth).
    hmac: usize,
}

/// A control-channel packet: opcode, session id, with --tls-auth an HMAC and a packet id
/// and time, the ACKed ids (and the remote session id), the message packet id (not in a
/// P_ACK), the payload.
fn ovpn_control(op: u8, auth: Auth, sid: u64, acks: &[u32], mid: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![op << 3];
    p.extend_from_slice(&sid.to_be_bytes());
    if auth.hmac > 0 {
        p.extend(noise(sid ^ u64::from(mid) << 8 ^ u64::from(op), auth.hmac));
        p.extend_from_slice(&(mid + 1).to_be_bytes());
        p.extend_from_slice(&0x6553_f100u32.to_be_bytes());
    }
    p.push(acks.len() as u8);
    for a in acks {
        p.extend_from_slice(&a.to_be_bytes());
    }
    if !acks.is_empty() {
        p.extend_from_slice(&(!sid).to_be_bytes());
    }
    if op != 5 {
        p.extend_from_slice(&mid.to_be_bytes());
    }
    p.extend_from_slice(payload);
    p
}

/// A P_DATA_V2 packet of `len` octets.
fn ovpn_data(len: usize, seed: u64) -> Vec<u8> {
    let mut p = vec![9 << 3, 0, 0, 3];
    p.extend(noise(seed, len.saturating_sub(4)));
    p
}

/// A TLS 1.2 record of `ty` carrying `body`.
fn tls_record(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![ty, 3, 3];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A session's packets (true: from the server): the opening with the given hellos (TLS
/// records), the TLS rest as application data records, then `data` data packets.
fn ovpn_session(auth: Auth, hellos: &(Vec<u8>, Vec<u8>), data: usize) -> Vec<(bool, Vec<u8>)> {
    let (c, s) = (0x0102_0304_0506_0708u64, 0x1112_1314_1516_1718u64);
    let mut out = vec![
        (false, ovpn_control(7, auth, c, &[], 0, &[])),
        (true, ovpn_control(8, auth, s, &[0], 0, &[])),
        (false, ovpn_control(5, auth, c, &[0], 0, &[])),
        (false, ovpn_control(4, auth, c, &[], 1, &hellos.0)),
        (true, ovpn_control(4, auth, s, &[1], 1, &hellos.1)),
        (
            true,
            ovpn_control(4, auth, s, &[], 2, &tls_record(23, &noise(3, 900))),
        ),
        (false, ovpn_control(5, auth, c, &[1, 2], 0, &[])),
        (
            false,
            ovpn_control(4, auth, c, &[], 2, &tls_record(23, &noise(4, 300))),
        ),
        (true, ovpn_control(5, auth, s, &[2], 0, &[])),
    ];
    for i in 0..data {
        let len = if i % 4 == 0 { 100 } else { 1200 };
        out.push((i % 2 == 1, ovpn_data(len, i as u64)));
    }
    out
}

fn ovpn_udp(cap: &mut Capture, client: End, server: End, pkts: &[(bool, Vec<u8>)]) {
    for (from_server, p) in pkts {
        let (a, b) = if *from_server {
            (server, client)
        } else {
            (client, server)
        };
        udp(cap, a, b, p);
    }
}

/// The packets over TCP, each with its two-octet length, each side's run of packets written
/// in segments of at most `mss` octets.
fn ovpn_tcp(cap: &mut Capture, client: End, server: End, pkts: &[(bool, Vec<u8>)], mss: usize) {
    let mut t = Tcp::new(client, server);
    t.open(cap);
    let mut run: Vec<u8> = Vec::new();
    let mut side = false;
    for (from_server, p) in pkts {
        if *from_server != side && !run.is_empty() {
            t.send(cap, side, &run, mss);
            run.clear();
        }
        side = *from_server;
        run.extend_from_slice(&(p.len() as u16).to_be_bytes());
        run.extend_from_slice(p);
    }
    t.send(cap, side, &run, mss);
    t.close(cap);
}

/// The first TLS ClientHello and ServerHello records of the corpus's TLS capture, as tshark
/// extracts them.
fn corpus_hellos() -> (Vec<u8>, Vec<u8>) {
    let cap = corpus_dir().join("ipfixprobe__tls.pcap");
    let first = |ty: u8| -> Vec<u8> {
        let out = run(Command::new("tshark")
            .arg("-r")
            .arg(&cap)
            .args(["-Y", &format!("tls.handshake.type=={ty}")])
            .args(["-T", "fields", "-e", "tcp.payload"]));
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text.lines().next().unwrap_or("").trim().replace(':', "");
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        // The first record only.
        let len = 5 + usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        assert_eq!(bytes[5], ty, "{cap:?}");
        bytes[..len].to_vec()
    };
    (first(1), first(2))
}

fn ovpn_captures(hellos: &(Vec<u8>, Vec<u8>)) -> (Capture, Capture, Capture) {
    let none = Auth { hmac: 0 };
    let sha1 = Auth { hmac: 20 };
    let (server, https) = (end("203.0.113.1", 1194), end("203.0.113.2", 443));
    // A key renegotiation after 30 data packets (a soft reset, then TLS in control packets)
    // before data goes on: packets that go nowhere in the data state reset it, and the
    // record is left to the data share.
    let mut renego = ovpn_session(sha1, hellos, 30);
    let (c, s) = (0x0102_0304_0506_0708u64, 0x1112_1314_1516_1718u64);
    renego.push((false, ovpn_control(3, sha1, c, &[], 3, &hellos.0)));
    renego.push((true, ovpn_control(5, sha1, s, &[3], 0, &[])));
    for k in 0..6u32 {
        let payload = tls_record(23, &noise(u64::from(k), 200 + 100 * k as usize));
        renego.push((k % 2 == 1, ovpn_control(4, sha1, c, &[], 4 + k, &payload)));
    }
    for k in 0..6 {
        renego.push((k % 2 == 0, ovpn_data(1100, k + 100)));
    }
    let mut u = Capture::new();
    for (client, session) in [
        // Without and with --tls-auth (SHA-1, tshark's default).
        ("10.1.0.1", ovpn_session(none, hellos, 40)),
        ("10.1.0.2", ovpn_session(sha1, hellos, 30)),
        // Picked up mid-session: data only, three large for each small one.
        ("10.1.0.3", ovpn_session(none, hellos, 44).split_off(9)),
        // Five packets: too short to say anything; the opening and three data: too few.
        ("10.1.0.4", ovpn_session(none, hellos, 0)[..5].to_vec()),
        ("10.1.0.5", ovpn_session(none, hellos, 3)),
        ("10.1.0.6", renego),
    ] {
        ovpn_udp(&mut u, end(client, 50_000), server, &session);
    }
    // Over TCP: full segments (several packets in one, one over two), 100-octet ones, and
    // on port 443, as OpenVPN often runs to pass firewalls.
    let mut t = Capture::new();
    for (client, to, session, mss) in [
        ("10.1.0.11", server, ovpn_session(none, hellos, 60), 1448),
        ("10.1.0.13", server, ovpn_session(sha1, hellos, 25), 100),
        ("10.1.0.14", https, ovpn_session(none, hellos, 24), 1448),
    ] {
        ovpn_tcp(&mut t, end(client, 50_000), to, &session, mss);
    }
    // --tls-auth with SHA-256 (tshark told the HMAC length), in 7-octet segments.
    let mut w = Capture::new();
    let session = ovpn_session(Auth { hmac: 32 }, hellos, 30);
    ovpn_tcp(&mut w, end("10.1.0.12", 50_000), server, &session, 7);
    (u, t, w)
}

// --- WireGuard ---

fn wg(ty: u8, len: usize, a: u32, b: u32) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&a.to_le_bytes());
    if ty == 2 {
        m.extend_from_slice(&b.to_le_bytes());
    }
    if ty == 4 {
        m.extend_from_slice(&u64::from(b).to_le_bytes()); // counter
    }
    m.extend(noise(u64::from(a) << 8 | u64::from(ty), len - m.len()));
    m
}

fn wg_capture() -> Capture {
    let mut cap = Capture::new();
    let (c, s) = (end("10.2.0.1", 40_100), end("10.2.0.2", 51_820));
    let handshake = |cap: &mut Capture, from: End, to: End, i: u32, r: u32| {
        udp(cap, from, to, &wg(1, 148, i, 0));
        udp(cap, to, from, &wg(2, 92, r, i));
    };
    let traffic = |cap: &mut Capture, i: u32, r: u32, n: u32| {
        for k in 0..n {
            udp(cap, c, s, &wg(4, 32 + 16 * (k as usize % 50), r, k));
            udp(cap, s, c, &wg(4, 1440, i, k));
        }
    };
    // A session, an initiation sent again, rekeyed by the client and then by the server.
    handshake(&mut cap, c, s, 0x6b3a_1c01, 0x0000_9f02);
    traffic(&mut cap, 0x6b3a_1c01, 0x0000_9f02, 10);
    udp(&mut cap, c, s, &wg(1, 148, 0x6b3a_1c01, 0));
    udp(&mut cap, c, s, &wg(4, 32, 0x0000_9f02, 99)); // a keepalive
    handshake(&mut cap, c, s, 0x7c4b_2d03, 0x1000_af04);
    traffic(&mut cap, 0x7c4b_2d03, 0x1000_af04, 8);
    handshake(&mut cap, s, c, 0x2000_bf06, 0x8d5c_3e05);
    traffic(&mut cap, 0x8d5c_3e05, 0x2000_bf06, 8);
    // A responder under load: a cookie reply, the initiation again, then the response.
    let (c2, s2) = (end("10.2.0.3", 40_101), end("10.2.0.2", 51_820));
    udp(&mut cap, c2, s2, &wg(1, 148, 0x11, 0));
    udp(&mut cap, s2, c2, &wg(3, 64, 0x11, 0));
    udp(&mut cap, c2, s2, &wg(1, 148, 0x11, 0));
    udp(&mut cap, s2, c2, &wg(2, 92, 0x22, 0x11));
    for k in 0..5 {
        udp(&mut cap, c2, s2, &wg(4, 96, 0x22, k));
    }
    // Over IPv6, picked up mid-session.
    let (c3, s3) = (end("2001:db8::21", 40_102), end("2001:db8::22", 51_820));
    for k in 0..6 {
        udp(&mut cap, c3, s3, &wg(4, 128, 0x33, k));
        udp(&mut cap, s3, c3, &wg(4, 64, 0x44, k));
    }
    cap
}

// ------------------------------------------------------------------------------------------
// qof's records and tshark's dissection.

/// Both ends of a flow and its protocol, in a fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Tuple(u8, End, End);

fn tuple(proto: u8, a: End, b: End) -> Tuple {
    if a <= b {
        Tuple(proto, a, b)
    } else {
        Tuple(proto, b, a)
    }
}

struct Record {
    forward: End,
    tuple: Tuple,
    start: u64,
    end: u64,
    packets: u64,
    flow_id: u64,
    json: serde_json::Map<String, serde_json::Value>,
}

impl Record {
    fn uint(&self, name: &str) -> Option<u64> {
        self.json.get(name).and_then(|v| v.as_u64())
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(|v| v.as_str())
    }
}

/// Milliseconds since 1970 of "2023-11-14T22:13:20.010Z".
fn rfc3339_ms(s: &str) -> u64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19);
    (secs * 1000 + n(20, 23)) as u64
}

fn records(path: &Path) -> Vec<Record> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let json = v.as_object().unwrap().clone();
            let addr = |k4: &str, k6: &str| -> IpAddr {
                let s = json.get(k4).or(json.get(k6)).unwrap().as_str().unwrap();
                s.parse().unwrap()
            };
            let u = |k: &str| json.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            let proto = u("protocolIdentifier") as u8;
            let src = End(
                addr("sourceIPv4Address", "sourceIPv6Address"),
                u("sourceTransportPort") as u16,
            );
            let dst = End(
                addr("destinationIPv4Address", "destinationIPv6Address"),
                u("destinationTransportPort") as u16,
            );
            let t = |k: &str| rfc3339_ms(json.get(k).unwrap().as_str().unwrap());
            Record {
                forward: src,
                tuple: tuple(proto, src, dst),
                start: t("flowStartMilliseconds"),
                end: t("flowEndMilliseconds"),
                packets: u("packetDeltaCount") + u("reversePacketDeltaCount"),
                flow_id: u("flowId"),
                json,
            }
        })
        .collect()
}

const PLUGINS: [&str; 3] = ["mqtt;tc=1000", "ovpn", "wg"];

/// qof's JSON records of `cap` with the three plugins.
fn qof_records(cap: &Path, tmp: &Path) -> Vec<Record> {
    let yaml = tmp.join("misc.yaml");
    let mut elements: Vec<&str> = qof::ipfix::QOF_DEFAULT.to_vec();
    elements.push("flowId");
    std::fs::write(&yaml, template_yaml(&elements)).unwrap();
    let out = tmp.join(format!("{}.jsonl", name(cap)));
    let mut cmd = qof();
    cmd.arg("--in").arg(cap).arg("--yaml").arg(&yaml);
    for p in PLUGINS {
        cmd.args(["--plugin", p]);
    }
    let r = run(cmd.args(["--format", "json", "--out"]).arg(&out));
    if !r.status.success() {
        // The two damaged captures of the corpus stop with one error line; what was read
        // before it is still written, if anything was (tests/corpus_flowdiff.rs).
        let stderr = String::from_utf8_lossy(&r.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("qof: ") && !l.contains("packets read"))
            .collect();
        assert_eq!(errors.len(), 1, "{}: {stderr}", name(cap));
        if !out.exists() {
            return Vec::new();
        }
    }
    records(&out)
}

/// One frame as tshark sees it: number, time (ms), protocol and ends.
struct Frame {
    num: u32,
    ms: u64,
    tuple: Tuple,
    from: End,
}

fn tshark_frames(cap: &Path, opts: &[String]) -> Vec<Frame> {
    let fields = [
        "frame.number",
        "frame.time_epoch",
        "frame.protocols",
        "ip.src",
        "ip.dst",
        "ipv6.src",
        "ipv6.dst",
        "tcp.srcport",
        "tcp.dstport",
        "udp.srcport",
        "udp.dstport",
    ];
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(cap).args(opts);
    cmd.args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run(cmd.stdin(Stdio::null()));
    let mut frames = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Vec<&str> = line.split('\t').collect();
        if v.len() < fields.len() {
            continue;
        }
        // The transport the outermost IP header carries, as qof meters it.
        let proto = v[2]
            .split(':')
            .find_map(|p| match p {
                "tcp" => Some(6),
                "udp" => Some(17),
                "icmp" | "icmpv6" | "gre" | "esp" | "sctp" => Some(0),
                _ => None,
            })
            .unwrap_or(0);
        let (src, dst) = match (v[3], v[5]) {
            (s, _) if !s.is_empty() => (v[3], v[4]),
            (_, s) if !s.is_empty() => (v[5], v[6]),
            _ => continue,
        };
        let (sp, dp) = match proto {
            6 => (v[7], v[8]),
            17 => (v[9], v[10]),
            _ => continue,
        };
        let (Ok(src), Ok(dst), Ok(sp), Ok(dp)) = (
            src.parse::<IpAddr>(),
            dst.parse::<IpAddr>(),
            sp.parse::<u16>(),
            dp.parse::<u16>(),
        ) else {
            continue;
        };
        let (whole, frac) = v[1].split_once('.').unwrap_or((v[1], "0"));
        let ms = whole.parse::<u64>().unwrap() * 1000
            + format!("{frac:0<3}")[..3].parse::<u64>().unwrap();
        let (from, to) = (End(src, sp), End(dst, dp));
        frames.push(Frame {
            num: v[0].parse().unwrap(),
            ms,
            tuple: tuple(proto, from, to),
            from,
        });
    }
    frames
}

/// One protocol layer of a frame in tshark's PDML: its name and fields (name, shown value).
#[derive(Debug)]
struct Pdu {
    proto: String,
    fields: Vec<(String, String)>,
}

impl Pdu {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, name: &str) -> Option<u64> {
        let v = self.get(name)?;
        match v.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => v.parse().ok(),
        }
    }
}

fn attr<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}=\""))? + key.len() + 3;
    let rest = &line[at..];
    Some(&rest[..rest.find('"')?])
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The layers of the frames tshark dissects as MQTT, OpenVPN or WireGuard, in order.
fn tshark_pdus(cap: &Path, opts: &[String]) -> BTreeMap<u32, Vec<Pdu>> {
    let out = run(Command::new("tshark")
        .args(["-n", "-r"])
        .arg(cap)
        .args(opts)
        .args(["-Y", "mqtt || openvpn || wg", "-T", "pdml"])
        .stdin(Stdio::null()));
    let mut frames = BTreeMap::new();
    let mut cur: Option<(u32, Vec<Pdu>)> = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let t = line.trim_start();
        if t.starts_with("<packet>") {
            if let Some((n, p)) = cur.take() {
                frames.insert(n, p);
            }
            cur = Some((0, Vec::new()));
        } else if t.starts_with("<proto ") {
            if let (Some((_, pdus)), Some(name)) = (cur.as_mut(), attr(t, "name")) {
                pdus.push(Pdu {
                    proto: name.to_string(),
                    fields: Vec::new(),
                });
            }
        } else if t.starts_with("<field ") {
            let (Some((num, pdus)), Some(name)) = (cur.as_mut(), attr(t, "name")) else {
                continue;
            };
            let show = unescape(attr(t, "show").unwrap_or(""));
            if name == "num" {
                *num = show.parse().unwrap_or(0);
            }
            if let Some(p) = pdus.last_mut() {
                p.fields.push((name.to_string(), show));
            }
        }
    }
    if let Some((n, p)) = cur {
        frames.insert(n, p);
    }
    frames
}

/// Each frame's record (by index): frames of a 5-tuple in time order, as many to each of
/// its records (in time order) as the record counts; the frame's time must lie within the
/// record's. Where the counts differ, each frame goes to the first record whose time span
/// holds it. Returns the map and the frames placed outside their record's time.
fn place(frames: &[Frame], recs: &[Record]) -> (HashMap<u32, usize>, usize) {
    let mut by_tuple: HashMap<Tuple, (Vec<&Frame>, Vec<usize>)> = HashMap::new();
    for f in frames {
        by_tuple.entry(f.tuple).or_default().0.push(f);
    }
    for (i, r) in recs.iter().enumerate() {
        by_tuple.entry(r.tuple).or_default().1.push(i);
    }
    let (mut map, mut outside) = (HashMap::new(), 0);
    for (fs, mut rs) in by_tuple.into_values() {
        rs.sort_by_key(|&i| (recs[i].start, recs[i].end, recs[i].flow_id));
        let counted: u64 = rs.iter().map(|&i| recs[i].packets).sum();
        if counted == fs.len() as u64 {
            let mut it = fs.iter();
            for &i in &rs {
                for f in it.by_ref().take(recs[i].packets as usize) {
                    if !(recs[i].start..=recs[i].end).contains(&f.ms) {
                        outside += 1;
                    }
                    map.insert(f.num, i);
                }
            }
        } else {
            for f in fs {
                if let Some(&i) = rs
                    .iter()
                    .find(|&&i| (recs[i].start..=recs[i].end).contains(&f.ms))
                {
                    map.insert(f.num, i);
                }
            }
        }
    }
    (map, outside)
}

// ------------------------------------------------------------------------------------------
// The comparison.

/// tshark's values of one field: found in qof's record, missed, contradicted.
#[derive(Clone, Copy, Default, Debug)]
struct Tally {
    values: u64,
    found: u64,
    missed: u64,
    contradicted: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Found,
    Missed,
    Contradicted,
}

struct Check {
    file: String,
    tallies: BTreeMap<&'static str, Tally>,
    notes: Vec<String>,
    /// The OVPNConfLevel each record's OpenVPN packets call for, with the record.
    ovpn: Vec<(Option<u64>, String)>,
    /// Records qof finds MQTT, OpenVPN or WireGuard in and tshark nothing.
    unconfirmed: Vec<String>,
}

impl Check {
    fn count(&mut self, field: &'static str, v: Verdict, why: impl FnOnce() -> String) {
        let t = self.tallies.entry(field).or_default();
        t.values += 1;
        match v {
            Verdict::Found => t.found += 1,
            Verdict::Missed => t.missed += 1,
            Verdict::Contradicted => t.contradicted += 1,
        }
        if v != Verdict::Found {
            let word = if v == Verdict::Missed {
                "missed"
            } else {
                "contradicted"
            };
            self.notes
                .push(format!("{}: {field} {word}: {}", self.file, why()));
        }
    }

    /// `ours` against tshark's `theirs`.
    fn value(&mut self, field: &'static str, ours: Option<u64>, theirs: u64, at: &str) {
        let v = match ours {
            None => Verdict::Missed,
            Some(o) if o == theirs => Verdict::Found,
            Some(_) => Verdict::Contradicted,
        };
        self.count(field, v, || format!("{at}: tshark {theirs}, qof {ours:?}"));
    }
}

/// What tshark says of a record's MQTT: the last CONNECT's and CONNACK's fields.
#[derive(Default)]
struct LastMqtt {
    connect: Option<(u64, u64, u64, String)>,
    connack: Option<(u64, u64, String)>,
}

fn check_mqtt(c: &mut Check, rec: &Record, pdu: &Pdu, at: &str, last: &mut LastMqtt) {
    let Some(ty) = pdu.num("mqtt.msgtype") else {
        return;
    };
    let types = rec.uint("mqttTypeCumulative");
    c.count(
        "mqtt.msgtype",
        match types {
            None => Verdict::Missed,
            Some(t) if t >> ty & 1 == 1 => Verdict::Found,
            Some(_) => Verdict::Contradicted,
        },
        || format!("{at}: type {ty}, qof {types:?}"),
    );
    match ty {
        1 => {
            if let (Some(v), Some(f), Some(k)) = (
                pdu.num("mqtt.ver"),
                pdu.num("mqtt.conflags"),
                pdu.num("mqtt.kalive"),
            ) {
                last.connect = Some((v, f, k, at.to_string()));
            }
        }
        2 => {
            let code = pdu
                .num("mqtt.conack.val")
                .or_else(|| pdu.num("mqtt.connack.reason_code"));
            if let (Some(code), Some(flags)) = (code, pdu.num("mqtt.conack.flags")) {
                last.connack = Some((code, flags & 1, at.to_string()));
            }
        }
        3 => {
            if let Some(topic) = pdu.get("mqtt.topic") {
                let ours = rec.str("mqttTopics");
                c.count(
                    "mqtt.topic",
                    match ours {
                        None => Verdict::Missed,
                        Some(t) if t.split('#').any(|x| x == topic) => Verdict::Found,
                        Some(_) => Verdict::Contradicted,
                    },
                    || format!("{at}: {topic:?}, qof {ours:?}"),
                );
            }
            if let Some(f) = pdu.num("mqtt.hdrflags") {
                let f = f & 0x0f;
                let ours = rec.uint("mqttPublishFlags");
                c.count(
                    "mqtt.hdrflags (PUBLISH)",
                    match ours {
                        None => Verdict::Missed,
                        Some(o) if o & f == f => Verdict::Found,
                        Some(_) => Verdict::Contradicted,
                    },
                    || format!("{at}: {f:#x}, qof {ours:?}"),
                );
            }
        }
        _ => {}
    }
}

fn check_last_mqtt(c: &mut Check, rec: &Record, last: &LastMqtt) {
    if let Some((v, f, k, at)) = &last.connect {
        c.value("mqtt.ver", rec.uint("mqttVersion"), *v, at);
        c.value("mqtt.conflags", rec.uint("mqttConnectionFlags"), *f, at);
        c.value("mqtt.kalive", rec.uint("mqttKeepAlive"), *k, at);
    }
    if let Some((code, sp, at)) = &last.connack {
        c.value("mqtt.conack.val", rec.uint("mqttLastReturnCode"), *code, at);
        let bit = rec.uint("mqttTypeCumulative").map(|t| t & 1);
        c.value("mqtt.conack.flags.sp", bit, *sp, at);
    }
}

/// ipfixprobe's OpenVPN rules (§2.16 of the field notes), applied to tshark's packets.
#[derive(Default)]
struct OvpnRules {
    status: u8,
    invalid: i32,
    client: Option<bool>,
    large: u32,
    data: u32,
}

impl OvpnRules {
    /// A packet of `opcode` from the record's forward side (`fwd`) or not, `wire` octets,
    /// the TLS handshake type its payload opens with.
    fn packet(&mut self, opcode: u64, fwd: bool, wire: u64, hello: Option<u64>) {
        let (from_client, to_client) = (self.client == Some(fwd), self.client == Some(!fwd));
        let large = wire > 500;
        let ctl = self.status == 5 || self.status == 6;
        match opcode {
            1 | 7 | 10 => {
                self.go(1);
                self.client = Some(fwd);
            }
            2 | 8 if self.status == 1 && to_client => self.go(2),
            2 | 8 => self.bad(),
            4 if self.status == 3 && from_client && hello == Some(1) => self.go(4),
            4 if self.status == 4 && to_client && hello == Some(2) => self.go(5),
            4 if ctl => self.go(6),
            4 => self.bad(),
            5 if self.status == 2 && from_client => self.go(3),
            5 if ctl => self.go(6),
            6 | 9 => {
                if self.status >= 6 {
                    self.go(7);
                }
                if large {
                    self.data += 1;
                }
            }
            _ => {}
        }
        if large {
            self.large += 1;
        }
        if self.invalid >= 4 {
            self.status = 0;
            self.invalid = -1;
        }
        self.invalid += 1;
    }

    fn go(&mut self, to: u8) {
        self.status = to;
        self.invalid = -1;
    }

    /// A packet where the state cannot take it (counted again below, as ipfixprobe does).
    fn bad(&mut self) {
        self.invalid += 1;
        if self.invalid == 4 {
            self.status = 0;
        }
    }

    fn confidence(&self, packets: u64) -> Option<u64> {
        if packets <= 5 {
            return None;
        }
        if packets > 20 && self.status == 7 {
            return Some(100);
        }
        let share = f64::from(self.data) / f64::from(self.large.max(1));
        Some(if self.large > 20 && share >= 0.6 {
            (share * 80.0) as u64
        } else {
            0
        })
    }
}

/// Compare one capture; returns its tallies and notes.
fn compare(cap: &Path, opts: &[String], tmp: &Path) -> Check {
    let file = name(cap);
    let recs = qof_records(cap, tmp);
    // Where qof finds MQTT or OpenVPN on ports tshark does not dissect them on, tell it to.
    let mut opts = opts.to_vec();
    for r in &recs {
        let Tuple(proto, ..) = r.tuple;
        let port = r.json["destinationTransportPort"].as_u64().unwrap_or(0);
        let t = if proto == 6 { "tcp" } else { "udp" };
        let mqtt = r.uint("mqttTypeCumulative").is_some() && port != 1883;
        let ovpn = r.uint("OVPNConfLevel").is_some_and(|c| c > 0) && port != 1194;
        for (yes, p) in [(mqtt, "mqtt"), (ovpn, "openvpn")] {
            let d = format!("{t}.port=={port},{p}");
            if yes && !opts.contains(&d) {
                opts.extend(["-d".to_string(), d]);
            }
        }
    }
    let frames = tshark_frames(cap, &opts);
    let pdus = tshark_pdus(cap, &opts);
    let (placed, outside) = place(&frames, &recs);
    let mut c = Check {
        file: file.clone(),
        tallies: BTreeMap::new(),
        notes: Vec::new(),
        ovpn: Vec::new(),
        unconfirmed: Vec::new(),
    };
    if outside > 0 {
        c.notes.push(format!(
            "{file}: {outside} frames outside their record's time"
        ));
    }
    let from: HashMap<u32, End> = frames.iter().map(|f| (f.num, f.from)).collect();
    let mut mqtt_last: HashMap<usize, LastMqtt> = HashMap::new();
    let mut ovpn: HashMap<usize, OvpnRules> = HashMap::new();
    let mut ovpn_pdus: HashMap<usize, u64> = HashMap::new();
    for (&num, layers) in &pdus {
        let at = format!("frame {num}");
        let Some(&i) = placed.get(&num) else {
            // tshark's values of a frame qof metered in no record: all missed (counted once
            // per message, under the field that says what it is).
            for p in layers {
                let field = match p.proto.as_str() {
                    "mqtt" => "mqtt.msgtype",
                    "openvpn" => "openvpn.* (OVPNConfLevel)",
                    "wg" => "wg.type",
                    _ => continue,
                };
                c.count(field, Verdict::Missed, || format!("{at}: in no record"));
            }
            continue;
        };
        let rec = &recs[i];
        let fwd = from.get(&num) == Some(&rec.forward);
        let udp_len = layers
            .iter()
            .find(|p| p.proto == "udp")
            .and_then(|p| p.num("udp.length"));
        let mut last_ovpn: Option<(u64, u64)> = None;
        let mut pending: Vec<(u64, u64, Option<u64>)> = Vec::new();
        for pdu in layers {
            match pdu.proto.as_str() {
                "mqtt" => check_mqtt(&mut c, rec, pdu, &at, mqtt_last.entry(i).or_default()),
                "openvpn" => {
                    if let Some(op) = pdu.num("openvpn.opcode") {
                        let wire = match pdu.num("openvpn.plen") {
                            Some(l) => l + 2,
                            None => udp_len.unwrap_or(8).saturating_sub(8),
                        };
                        if let Some((o, w)) = last_ovpn.take() {
                            pending.push((o, w, None));
                        }
                        last_ovpn = Some((op, wire));
                    }
                }
                "tls" => {
                    // A TLS record the last control packet carried.
                    if let (Some((o, w)), Some(ty)) = (last_ovpn, pdu.num("tls.handshake.type")) {
                        pending.push((o, w, Some(ty)));
                        last_ovpn = None;
                    }
                }
                "wg" => check_wg(&mut c, rec, pdu, fwd, &at),
                _ => {}
            }
        }
        pending.extend(last_ovpn.map(|(o, w)| (o, w, None)));
        for (op, wire, hello) in pending {
            ovpn.entry(i).or_default().packet(op, fwd, wire, hello);
            *ovpn_pdus.entry(i).or_default() += 1;
        }
    }
    for (&i, last) in &mqtt_last {
        check_last_mqtt(&mut c, &recs[i], last);
    }
    // The confidence tshark's OpenVPN packets give, against qof's.
    let mut in_record: HashMap<usize, u64> = HashMap::new();
    for i in placed.values() {
        *in_record.entry(*i).or_default() += 1;
    }
    for (&i, rules) in &ovpn {
        let want = rules.confidence(in_record[&i]);
        let ours = recs[i].uint("OVPNConfLevel");
        let at = format!(
            "record {:?} ({} packets, {} OpenVPN)",
            recs[i].tuple, in_record[&i], ovpn_pdus[&i]
        );
        c.ovpn
            .push((want, format!("{file}: {at}: {want:?}, qof {ours:?}")));
        c.count(
            "openvpn.* (OVPNConfLevel)",
            match (want, ours) {
                (a, b) if a == b => Verdict::Found,
                (Some(_), None) => Verdict::Missed,
                _ => Verdict::Contradicted,
            },
            || format!("{at}: rules on tshark's packets {want:?}, qof {ours:?}"),
        );
    }
    // Records qof marks that tshark saw nothing of.
    let seen: std::collections::HashSet<usize> =
        pdus.keys().filter_map(|n| placed.get(n).copied()).collect();
    for (i, r) in recs.iter().enumerate() {
        if seen.contains(&i) {
            continue;
        }
        let marks = [
            ("mqtt", r.uint("mqttTypeCumulative").is_some()),
            ("ovpn", r.uint("OVPNConfLevel").is_some_and(|v| v > 0)),
            ("wg", r.uint("WGConfLevel").is_some_and(|v| v > 0)),
        ];
        for (p, marked) in marks {
            if marked {
                c.unconfirmed.push(format!(
                    "{file}: qof's {p} on record {:?}, which tshark does not dissect",
                    r.tuple
                ));
            }
        }
    }
    c
}

fn check_wg(c: &mut Check, rec: &Record, pdu: &Pdu, fwd: bool, at: &str) {
    let Some(ty) = pdu.num("wg.type") else {
        return;
    };
    let conf = rec.uint("WGConfLevel");
    c.count(
        "wg.type",
        match conf {
            None => Verdict::Missed,
            Some(1 | 100) => Verdict::Found,
            Some(_) => Verdict::Contradicted,
        },
        || format!("{at}: type {ty}, qof WGConfLevel {conf:?}"),
    );
    // The sender's side is the frame's; the receiver is the other side.
    let index = |side_fwd: bool| {
        rec.uint(if side_fwd { "WGSrcPeer" } else { "WGDstPeer" })
            .filter(|&v| v != 0)
    };
    if let Some(s) = pdu.num("wg.sender") {
        c.value("wg.sender", index(fwd), s, at);
    }
    if let Some(r) = pdu.num("wg.receiver") {
        c.value("wg.receiver", index(!fwd), r, at);
    }
}

/// The captures built here, written to `dir`, each with what tshark must be told to dissect
/// it.
fn built_captures(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let hellos = corpus_hellos();
    let (u, t, w) = ovpn_captures(&hellos);
    let built: Vec<(&str, Capture, Vec<&str>)> = vec![
        (
            "built_mqtt.pcap",
            mqtt_capture(),
            vec!["-d", "tcp.port==11883,mqtt"],
        ),
        ("built_openvpn_udp.pcap", u, vec![]),
        (
            "built_openvpn_tcp.pcap",
            t,
            vec!["-d", "tcp.port==443,openvpn"],
        ),
        (
            "built_openvpn_tcp_sha256.pcap",
            w,
            vec!["-o", "openvpn.tls_auth_hmac_size:32"],
        ),
        (
            "built_wireguard.pcap",
            wg_capture(),
            vec!["-d", "udp.port==51820,wg"],
        ),
    ];
    built
        .into_iter()
        .map(|(file, cap, opts)| {
            let path = dir.join(file);
            std::fs::write(&path, &cap.bytes).unwrap();
            (path, opts.iter().map(|s| s.to_string()).collect())
        })
        .collect()
}

#[test]
fn mqtt_ovpn_and_wg_agree_with_tshark() {
    if !have_tool("tshark") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut captures: Vec<(PathBuf, Vec<String>)> = corpus_files()
        .into_iter()
        .map(|p| (p, Vec::new()))
        .collect();
    captures.extend(built_captures(tmp.path()));
    let mut total: BTreeMap<&'static str, Tally> = BTreeMap::new();
    let mut table = String::from(
        "capture                                  field                          values  found  missed  contradicted\n",
    );
    let (mut notes, mut ovpn, mut unconfirmed) = (Vec::new(), Vec::new(), Vec::new());
    for (cap, opts) in &captures {
        let c = compare(cap, opts, tmp.path());
        ovpn.extend(c.ovpn);
        unconfirmed.extend(c.unconfirmed);
        for (field, t) in &c.tallies {
            let _ = writeln!(
                table,
                "{:<40} {field:<30} {:>6} {:>6} {:>7} {:>13}",
                c.file, t.values, t.found, t.missed, t.contradicted
            );
            let s = total.entry(field).or_default();
            s.values += t.values;
            s.found += t.found;
            s.missed += t.missed;
            s.contradicted += t.contradicted;
        }
        notes.extend(c.notes);
    }
    let _ = writeln!(table, "\nall captures:");
    for (field, t) in &total {
        let _ = writeln!(
            table,
            "{field:<30} {:>6} values, {:>6.2} % found, {:.2} % contradicted",
            t.values,
            100.0 * t.found as f64 / t.values as f64,
            100.0 * t.contradicted as f64 / t.values as f64
        );
    }
    println!("{table}");
    println!("OpenVPN records: the confidence the rules give tshark's packets, and qof's:");
    for (_, line) in &ovpn {
        println!("  {line}");
    }
    // The captures reach every outcome of the rules: the opening to data, the data share,
    // neither, and too short a flow.
    for want in [Some(100), Some(0), None] {
        assert!(
            ovpn.iter().any(|(w, _)| *w == want),
            "no record calls for {want:?}"
        );
    }
    assert!(ovpn.iter().any(|(w, _)| matches!(w, Some(1..=99))));
    println!("values not found:");
    for n in &notes {
        println!("  {n}");
    }
    // No false positives: wherever qof says MQTT, OpenVPN (above 0) or WireGuard (above 0),
    // tshark dissects it so (told to on other ports, for the first two).
    assert!(unconfirmed.is_empty(), "{unconfirmed:#?}");
    // Every field the three plugins report was checked, each on many values.
    for field in [
        "mqtt.msgtype",
        "mqtt.ver",
        "mqtt.conflags",
        "mqtt.kalive",
        "mqtt.conack.val",
        "mqtt.conack.flags.sp",
        "mqtt.topic",
        "mqtt.hdrflags (PUBLISH)",
        "openvpn.* (OVPNConfLevel)",
        "wg.type",
        "wg.sender",
        "wg.receiver",
    ] {
        let t = total.get(field).copied().unwrap_or_default();
        assert!(t.values >= 5, "{field}: only {} values", t.values);
        let found = t.found as f64 / t.values as f64;
        let contradicted = t.contradicted as f64 / t.values as f64;
        assert!(found >= 0.97, "{field}: {:.2} % found", 100.0 * found);
        assert!(
            contradicted <= 0.01,
            "{field}: {:.2} % contradicted",
            100.0 * contradicted
        );
    }
}

/// The three plugins' elements over IPFIX (ipfixprobe 5.7.0's export of mqtt's crashes):
/// qofdump prints qof's JSON lines byte for byte, libfixbuf's ipfixDump (with qof's element
/// registry) reads every record without a warning and shows each plugin value as qof's JSON
/// does, and tshark's IPFIX dissector finds nothing malformed.
#[test]
fn the_plugins_elements_travel_over_ipfix() {
    if !have_tool("tshark") || !have_tool("ipfixDump") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let xml = tmp.path().join("qof-elements.xml");
    std::fs::write(&xml, run(qofdump().arg("--element-xml")).stdout).unwrap();
    let mut captures = vec![corpus_dir().join("ipfixprobe__mqtt.pcap")];
    captures.extend(built_captures(tmp.path()).into_iter().map(|(p, _)| p));
    let mut checked: BTreeMap<String, u64> = BTreeMap::new();
    for cap in &captures {
        let (ipfix, json) = (tmp.path().join("out.ipfix"), tmp.path().join("out.json"));
        for (format, out) in [("ipfix", &ipfix), ("json", &json)] {
            let mut cmd = qof();
            cmd.arg("--in").arg(cap);
            for p in PLUGINS {
                cmd.args(["--plugin", p]);
            }
            let r = run(cmd.args(["--format", format, "--out"]).arg(out));
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        }
        let ours = std::fs::read_to_string(&json).unwrap();
        let d = run(qofdump().arg("--no-options").arg(&ipfix));
        assert_eq!(String::from_utf8_lossy(&d.stdout), ours, "{}", name(cap));
        let d = run(Command::new("ipfixDump")
            .arg("--element-file")
            .arg(&xml)
            .arg("--in")
            .arg(&ipfix));
        let text = String::from_utf8_lossy(&d.stdout);
        assert!(d.status.success() && d.stderr.is_empty(), "{}", name(cap));
        for bad in ["warn", "Warn", "error", "Error", "alien"] {
            assert!(!text.contains(bad), "{}: ipfixDump says {bad}", name(cap));
        }
        // ipfixDump's records, in order, with qof's JSON lines: each plugin value the same.
        let dumped: Vec<&str> = text.split("--- data record").skip(1).collect();
        let lines: Vec<serde_json::Value> = ours
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(dumped.len(), lines.len(), "{}", name(cap));
        for (rec, line) in dumped.iter().zip(&lines) {
            for (key, v) in line.as_object().unwrap() {
                if !(key.starts_with("mqtt") || key.starts_with("OVPN") || key.starts_with("WG")) {
                    continue;
                }
                let shown = rec
                    .lines()
                    .find_map(|l| l.split_once(&format!(" {key} : ")).map(|(_, v)| v.trim()))
                    .unwrap_or_else(|| panic!("{}: ipfixDump lacks {key}", name(cap)));
                // Strings are shown after their length: "(len: 7) topic1#".
                let shown = match shown.strip_prefix("(len: ") {
                    Some(rest) => rest.split_once(") ").map_or("", |(_, s)| s),
                    None => shown,
                };
                let want = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(shown, want, "{} {key}", name(cap));
                *checked.entry(key.clone()).or_default() += 1;
            }
        }
        // tshark reads every message, nothing malformed.
        let bytes = std::fs::read(&ipfix).unwrap();
        let mut messages = Vec::new();
        let mut at = 0;
        while at + 4 <= bytes.len() {
            let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            assert!(len >= 16 && at + len <= bytes.len(), "message framing");
            messages.push(bytes[at..at + len].to_vec());
            at += len;
        }
        let t = tshark_decode(&messages, 4739, tmp.path());
        for bad in [
            "Malformed",
            "Expert Info (Warn",
            "Expert Info (Error",
            "no template",
        ] {
            assert!(!t.contains(bad), "{}: tshark says {bad}", name(cap));
        }
    }
    println!("plugin values read back by ipfixDump: {checked:?}");
    for name in [
        "mqttTypeCumulative",
        "mqttVersion",
        "mqttConnectionFlags",
        "mqttKeepAlive",
        "mqttLastReturnCode",
        "mqttPublishFlags",
        "mqttTopics",
        "OVPNConfLevel",
        "WGConfLevel",
        "WGSrcPeer",
        "WGDstPeer",
    ] {
        assert!(
            checked.get(name).is_some_and(|&n| n >= 3),
            "{name}: {checked:?}"
        );
    }
}
