use super::wire::opcode as op;
use super::wire::tests::{control, control_op, tls_record};
use super::wire::{self, CLIENT_HELLO, SERVER_HELLO};
use super::*;
use crate::meter::FlowRecord;
use crate::plugins::framer::{Framing, Head};
use crate::plugins::sim::{self, Conn, Rng, ACK, PSH_ACK};

/// A P_DATA_V2 packet of `len` octets (peer id 1, then ciphertext).
fn data(len: usize) -> Vec<u8> {
    let mut p = vec![op::DATA_V2 << 3, 0, 0, 1];
    p.resize(len.max(4), 0xc3);
    p
}

/// A session's packets (`true`: from the server), with `--tls-auth` HMACs of `hmac` octets:
/// the opening, then `n` data packets each way.
fn session(hmac: usize, n: usize) -> Vec<(bool, Vec<u8>)> {
    let mut s = vec![
        (false, control_op(op::HARD_RESET_CLIENT_V2, hmac, 0, &[])),
        (true, control_op(op::HARD_RESET_SERVER_V2, hmac, 1, &[])),
        (false, control_op(op::ACK_V1, hmac, 1, &[])),
        (false, control(hmac, 0, &tls_record(CLIENT_HELLO))),
        (true, control(hmac, 1, &tls_record(SERVER_HELLO))),
        // The server's certificate in two packets, the client's ACKs and key exchange.
        (true, control(hmac, 0, &[0x55; 1000])),
        (false, control_op(op::ACK_V1, hmac, 2, &[])),
        (false, control(hmac, 1, &[0x66; 300])),
        (true, control_op(op::ACK_V1, hmac, 1, &[])),
    ];
    for i in 0..n {
        s.push((i % 2 == 1, data(if i % 3 == 0 { 90 } else { 1100 })));
    }
    s
}

fn udp(c: &Conn, s: &[(bool, Vec<u8>)]) -> Vec<Vec<u8>> {
    s.iter().map(|(rev, p)| c.udp(*rev, p)).collect()
}

/// The packets framed for TCP (a two-octet length each), written by each side into segments
/// of at most `mss` octets, each side's output flushed when the other speaks.
fn tcp(c: &mut Conn, s: &[(bool, Vec<u8>)], mss: usize) -> Vec<Vec<u8>> {
    fn flush(c: &mut Conn, side: bool, mss: usize, pending: &mut Vec<u8>, pkts: &mut Vec<Vec<u8>>) {
        for chunk in pending.chunks(mss) {
            pkts.push(c.tcp(side, PSH_ACK, chunk));
        }
        if !pending.is_empty() {
            pkts.push(c.tcp(!side, ACK, &[]));
        }
        pending.clear();
    }
    let mut pkts = c.open();
    let mut pending: Vec<u8> = Vec::new();
    let mut side = false;
    for (rev, p) in s {
        if *rev != side {
            flush(c, side, mss, &mut pending, &mut pkts);
            side = *rev;
        }
        pending.extend_from_slice(&(p.len() as u16).to_be_bytes());
        pending.extend_from_slice(p);
    }
    flush(c, side, mss, &mut pending, &mut pkts);
    pkts
}

fn conf(r: &FlowRecord) -> Option<u64> {
    sim::uint(r, "OVPNConfLevel")
}

fn machine(s: &[(bool, Vec<u8>)]) -> Machine {
    let mut m = Machine::default();
    for (rev, p) in s {
        m.packet(p, p.len(), *rev, wire::looks_like_rtp(p));
    }
    m
}

#[test]
fn a_udp_session_reaches_data_under_any_tls_auth() {
    for hmac in [0, 20, 32, 64] {
        let s = session(hmac, 20);
        let m = machine(&s[..5]);
        assert_eq!(m.status, Status::ServerHello, "hmac {hmac}");
        assert_eq!(machine(&s).status, Status::Data);
        let c = Conn::new(50_000, 1194);
        let records = sim::run(&["ovpn"], &udp(&c, &s));
        assert_eq!(records.len(), 1);
        assert_eq!(conf(&records[0]), Some(100), "hmac {hmac}");
    }
    // Twenty packets or fewer in all: not enough for 100 (and no large share either).
    let c = Conn::new(50_001, 1194);
    let records = sim::run(&["ovpn"], &udp(&c, &session(0, 11)));
    assert_eq!(conf(&records[0]), Some(0));
}

#[test]
fn a_tcp_session_is_framed_by_its_length_prefixes() {
    // Segments of 1,448 octets carry several packets, or part of one; segments of 100
    // octets cut every packet's head and body apart.
    for mss in [1448, 100, 7] {
        let mut c = Conn::new(50_010, 1194);
        let pkts = tcp(&mut c, &session(20, 200), mss);
        let records = sim::run(&["ovpn"], &pkts);
        assert_eq!(records.len(), 1);
        assert_eq!(conf(&records[0]), Some(100), "mss {mss}");
    }
    // Only the opening, then nothing but ACKs: the state stops at ServerHello's successors.
    let mut c = Conn::new(50_011, 1194);
    let mut s = session(0, 0);
    s.extend((0..30).map(|i| (i % 2 == 0, control_op(op::ACK_V1, 0, 1, &[]))));
    let records = sim::run(&["ovpn"], &tcp(&mut c, &s, 1448));
    assert_eq!(conf(&records[0]), Some(0));
}

#[test]
fn the_large_data_share_without_the_opening() {
    // Picked up mid-session: 30 large data packets and 10 small; then 40 % other large ones.
    let c = Conn::new(50_020, 1194);
    let mut s: Vec<(bool, Vec<u8>)> = (0..40)
        .map(|i| (i % 2 == 0, data(if i < 30 { 1200 } else { 80 })))
        .collect();
    assert_eq!(conf(&sim::run(&["ovpn"], &udp(&c, &s))[0]), Some(80));
    s.extend((0..20).map(|i| (i % 2 == 0, vec![0x20; 800])));
    let m = machine(&s);
    assert_eq!((m.large, m.data), (50, 30));
    assert_eq!(conf(&sim::run(&["ovpn"], &udp(&c, &s))[0]), Some(48));
    // RTP-looking datagrams are not large: a voice call is not OpenVPN.
    let mut rtp = vec![0x80, 0x60];
    rtp.resize(900, 1);
    let calls: Vec<(bool, Vec<u8>)> = (0..60).map(|i| (i % 2 == 0, rtp.clone())).collect();
    assert_eq!(machine(&calls).large, 0);
    // Nor is a GTP-U tunnel (ipfixprobe's rules give it 80: 0x30 reads as P_DATA_V1).
    let g = Conn::new(2152, 2152);
    let gtp: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            let mut p = vec![0x30, 0xff, 0x04, 0xb0, 0, 0, 0, 1];
            p.resize(1208, i as u8);
            g.udp(i % 2 == 0, &p)
        })
        .collect();
    assert_eq!(conf(&sim::run(&["ovpn"], &gtp)[0]), Some(0));
}

#[test]
fn short_flows_carry_nothing_and_other_traffic_is_zero() {
    let c = Conn::new(50_030, 1194);
    let short = sim::run(&["ovpn"], &udp(&c, &session(0, 0)[..5]));
    assert_eq!(conf(&short[0]), None);
    // HTTP over TCP, DNS-like UDP, zero-length datagrams, ICMP-free: all 0.
    let mut c = Conn::new(50_031, 80);
    let mut pkts = c.open();
    for _ in 0..10 {
        pkts.push(c.tcp(false, PSH_ACK, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        pkts.push(c.tcp(true, PSH_ACK, &[b'x'; 1400]));
    }
    let d = Conn::new(50_032, 53);
    pkts.extend((0..10).map(|i| d.udp(i % 2 == 1, &[0x12, 0x34, 1, 0, 0, 1, 0, 0])));
    let e = Conn::new(50_033, 9);
    pkts.extend((0..10).map(|_| e.udp(false, &[])));
    let records = sim::run(&["ovpn"], &pkts);
    assert_eq!(records.len(), 3);
    for r in &records {
        assert_eq!(conf(r), Some(0), "{:?}", r.key);
    }
}

#[test]
fn four_packets_that_go_nowhere_reset_the_opening() {
    let s = session(0, 0);
    let mut m = machine(&s[..3]);
    assert_eq!(m.status, Status::Ack);
    // Control packets without a ClientHello count twice (as ipfixprobe counts them): the
    // third in a row resets.
    for _ in 0..2 {
        m.packet(&control(0, 0, &[1; 40]), 60, false, false);
        assert_eq!(m.status, Status::Ack);
    }
    m.packet(&control(0, 0, &[1; 40]), 60, false, false);
    assert_eq!(m.status, Status::Null);
    // Packets that move nothing (a soft reset) count once: the fifth resets.
    let mut m = machine(&s[..3]);
    for i in 0..5 {
        assert_eq!(m.status, Status::Ack, "after {i}");
        m.packet(&control_op(op::SOFT_RESET_V1, 0, 0, &[]), 20, false, false);
    }
    assert_eq!(m.status, Status::Null);
    // A server's hard reset from the client's side goes nowhere.
    let mut m = machine(&s[..1]);
    m.packet(&s[1].1, 40, false, false);
    assert_eq!(m.status, Status::ResetClient);
    // The hellos must come from the right side.
    let mut m = machine(&s[..3]);
    m.packet(&s[3].1, 60, true, false);
    assert_eq!(m.status, Status::Ack);
}

#[test]
fn the_client_is_a_direction_not_an_address() {
    // Both ends on one host: ipfixprobe's address comparison cannot tell them apart.
    let c = Conn::new(50_040, 1194);
    let s = session(0, 30);
    let pkts: Vec<Vec<u8>> = udp(&c, &s)
        .into_iter()
        .map(|mut p| {
            p[12..20].copy_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
            p
        })
        .collect();
    assert_eq!(conf(&sim::run(&["ovpn"], &pkts)[0]), Some(100));
}

#[test]
fn truncated_and_tiny_tcp_payloads() {
    // A TCP payload of two octets is a length with no opcode (ipfixprobe reads octet 2).
    let mut c = Conn::new(50_050, 1194);
    let mut pkts = c.open();
    for _ in 0..10 {
        pkts.push(c.tcp(false, PSH_ACK, &[0, 40]));
    }
    let records = sim::run(&["ovpn"], &pkts);
    assert_eq!(conf(&records[0]), Some(0));
    // Cut by the snap length in the middle of every packet.
    let mut c = Conn::new(50_051, 1194);
    let pkts = tcp(&mut c, &session(0, 60), 1448);
    for snap in [20, 41, 44, 60, 90] {
        let records = sim::run_snap(&["ovpn"], &pkts, Some(snap));
        assert_eq!(
            records.iter().map(sim::packets).sum::<u64>(),
            pkts.len() as u64
        );
    }
}

/// Real-shaped packets (every opening packet under each HMAC, data, RTP, junk), cut at every
/// length and damaged thousands of times over, through every parser and the state machine.
#[test]
fn thousands_of_damaged_packets_through_the_parsers() {
    let mut real: Vec<Vec<u8>> = [0, 20, 64]
        .iter()
        .flat_map(|&h| session(h, 2).into_iter().map(|(_, p)| p))
        .collect();
    real.push(vec![0x80, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 9, 9]);
    let mut rng = Rng(0x6f76_706e);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for p in &real {
        inputs.extend((0..=p.len()).map(|n| p[..n].to_vec()));
        inputs.extend((0..400).map(|_| rng.mutate(p)));
    }
    assert!(inputs.len() > 10_000);
    let mut m = Machine::default();
    for (i, b) in inputs.iter().enumerate() {
        if let Some(p) = wire::Packet::new_checked(b) {
            let _ = (p.opcode(), p.key_id());
            if let Some(t) = p.tls_handshake() {
                assert!(t == CLIENT_HELLO || t == SERVER_HELLO);
            }
        }
        for strict in [false, true] {
            if let Head::Msg(len) = wire::Tcp::head(b, strict) {
                assert!(len >= 3);
            }
        }
        m.packet(b, b.len(), i % 3 == 0, wire::looks_like_rtp(b));
        assert!(m.confidence(100) <= 100);
    }
}

#[test]
fn tcp_flows_that_are_not_openvpn_hold_no_stream() {
    // Twenty uploads (payload one way only) and HTTP exchanges: every one of them is read,
    // none keeps a buffer once its first octets are not OpenVPN. (Against one such flow:
    // the plugin's own tables are the same.)
    let flows = |n: u16| {
        let mut pkts = Vec::new();
        for i in 0..n {
            let mut c = Conn::new(51_000 + i, 80);
            pkts.extend(c.open());
            pkts.push(c.tcp(false, PSH_ACK, &[b'u'; 1000]));
            if i % 2 == 1 {
                pkts.push(c.tcp(true, PSH_ACK, b"HTTP/1.1 200 OK\r\n\r\n"));
            }
        }
        pkts
    };
    let one = sim::held(&["ovpn"], &flows(1));
    let twenty = sim::held(&["ovpn"], &flows(20));
    assert!(
        twenty < one + WINDOW,
        "{one} octets held for one flow, {twenty} for twenty"
    );
    // An OpenVPN session in its opening keeps its stream (the window is not passed).
    let mut c = Conn::new(51_100, 1194);
    let session = sim::held(&["ovpn"], &tcp(&mut c, &session(0, 2), 1448));
    assert!(session >= one + WINDOW, "{session} octets held");
}
