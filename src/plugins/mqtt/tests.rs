use super::wire::tests::packet;
use super::wire::{self, kind};
use super::*;
use crate::meter::{end_reason, FlowRecord};
use crate::plugins::framer::{Framing, Head};
use crate::plugins::sim::{self, Conn, Rng, ACK, FIN_ACK, PSH_ACK};

/// A CONNECT of `name` and `level`, `flags`, keep alive, client id "qof" (and with level 5
/// an empty property list, or `props` octets of properties).
fn connect(name: &[u8], level: u8, flags: u8, keep_alive: u16, props: usize) -> Vec<u8> {
    let mut b = (name.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(name);
    b.push(level);
    b.push(flags);
    b.extend_from_slice(&keep_alive.to_be_bytes());
    if level == 5 {
        // Properties (fewer than 128 octets): none, or one user property "k" of `props`.
        if props >= 6 {
            b.push(props as u8);
            b.extend_from_slice(&[0x26, 0, 1, b'k', 0, (props - 6) as u8]);
            b.extend(std::iter::repeat_n(b'v', props - 6));
        } else {
            b.push(0);
        }
    }
    b.extend_from_slice(b"\x00\x03qof");
    packet(kind::CONNECT, 0, &b)
}

fn publish(flags: u8, topic: &[u8], message: &[u8]) -> Vec<u8> {
    let mut b = (topic.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(topic);
    if flags & 0x06 != 0 {
        b.extend_from_slice(&[0, 7]); // packet identifier
    }
    b.extend_from_slice(message);
    packet(kind::PUBLISH, flags, &b)
}

fn connack(flags: u8, code: u8) -> Vec<u8> {
    packet(kind::CONNACK, 0, &[flags, code])
}

const DISCONNECT: [u8; 2] = [0xe0, 0];
const PINGREQ: [u8; 2] = [0xc0, 0];
const PINGRESP: [u8; 2] = [0xd0, 0];

fn mqtt(records: &[FlowRecord]) -> Vec<&FlowRecord> {
    records
        .iter()
        .filter(|r| sim::uint(r, "mqttTypeCumulative").is_some())
        .collect()
}

fn types(bits: &[u8]) -> u64 {
    bits.iter().fold(0, |a, &t| a | 1 << t)
}

#[test]
fn a_session_opened_with_a_syn_is_read_whole_and_its_disconnect_ends_the_flow() {
    let mut c = Conn::new(40_000, 1883);
    let mut pkts = c.open();
    let hello = connect(b"MQTT", 4, 0xc2, 60, 0);
    // The CONNECT over two segments, its head cut after the remaining length.
    pkts.push(c.tcp(false, PSH_ACK, &hello[..2]));
    pkts.push(c.tcp(false, PSH_ACK, &hello[2..]));
    pkts.push(c.tcp(true, PSH_ACK, &connack(1, 0)));
    // A SUBSCRIBE and a PUBLISH in one segment; a PUBLISH of 321 octets (remaining length
    // in two octets: ipfixprobe's decoder reads it as 49,474) split over two segments.
    let mut seg = packet(kind::SUBSCRIBE, 2, b"\x00\x01\x00\x03a/b\x00");
    seg.extend(publish(0, b"first", b"hi"));
    pkts.push(c.tcp(false, PSH_ACK, &seg));
    let long = publish(0b1011, b"second", &[b'x'; 311]);
    assert_eq!(long[1..3], [0xc1, 0x02]);
    pkts.push(c.tcp(false, PSH_ACK, &long[..100]));
    pkts.push(c.tcp(false, PSH_ACK, &long[100..]));
    pkts.push(c.tcp(true, ACK, &[]));
    pkts.push(c.tcp(true, PSH_ACK, &publish(1, b"third", b"")));
    pkts.push(c.tcp(false, PSH_ACK, &PINGREQ));
    pkts.push(c.tcp(true, PSH_ACK, &PINGRESP));
    pkts.push(c.tcp(false, PSH_ACK, &DISCONNECT));
    // What follows the DISCONNECT is a flow of its own, without MQTT.
    pkts.push(c.tcp(false, FIN_ACK, &[]));
    pkts.push(c.tcp(true, FIN_ACK, &[]));
    let records = sim::run(&["mqtt;tc=2"], &pkts);
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(sim::packets(r), 14);
    assert_eq!(r.end_reason, end_reason::END_OF_FLOW);
    assert_eq!(
        sim::uint(r, "mqttTypeCumulative"),
        Some(types(&[1, 2, 3, 8, 12, 13, 14]) | 1),
        "every type seen, and bit 0: session present"
    );
    assert_eq!(sim::uint(r, "mqttVersion"), Some(4));
    assert_eq!(sim::uint(r, "mqttConnectionFlags"), Some(0xc2));
    assert_eq!(sim::uint(r, "mqttKeepAlive"), Some(60));
    assert_eq!(sim::uint(r, "mqttLastReturnCode"), Some(0));
    assert_eq!(sim::uint(r, "mqttPublishFlags"), Some(0b1011));
    assert_eq!(
        sim::string(r, "mqttTopics").as_deref(),
        Some("first#second#")
    );
    assert!(mqtt(&records[1..]).is_empty());
}

#[test]
fn the_corpus_capture_gives_what_its_packets_say() {
    // ipfixprobe__mqtt.pcap: five sessions, each opened before the capture (their first
    // packet is the CONNECT), four ended by a DISCONNECT.
    let payloads = sim::corpus_payloads("ipfixprobe__mqtt.pcap", 6);
    assert_eq!(payloads.len(), 24);
    for p in &payloads {
        let mut framed = 0;
        let mut at = 0;
        while at < p.len() {
            let Head::Msg(len) = wire::Mqtt::head(&p[at..], true) else {
                panic!("{p:02x?} at {at}");
            };
            at += len;
            framed += 1;
        }
        assert_eq!((at, framed), (p.len(), 1));
    }
    assert_eq!(wire::starts_with_connect(&payloads[0]), Ok(true));
    let mut s = Session::default();
    for p in &payloads[..4] {
        s.packet(p, 10);
    }
    assert_eq!(u64::from(s.types), types(&[1, 2, 3, 14]));
    assert_eq!((s.version, s.connect_flags, s.keep_alive), (4, 2, 60));
    assert_eq!(s.topics, "topic1#");
    assert!(s.disconnect);
}

#[test]
fn mqtt_5_and_3_1_sessions_and_a_refused_connection() {
    let mut c = Conn::new(40_001, 1883);
    let mut pkts = c.open();
    pkts.push(c.tcp(false, PSH_ACK, &connect(b"MQTT", 5, 0x02, 30, 40)));
    // A 5.0 CONNACK: flags, reason code 0x87 (not authorized), properties.
    pkts.push(c.tcp(true, PSH_ACK, &packet(kind::CONNACK, 0, &[0, 0x87, 0])));
    pkts.push(c.tcp(false, PSH_ACK, &packet(kind::AUTH, 0, &[0x18, 0])));
    let mut d = Conn::new(40_002, 1883);
    let mut old = d.open();
    old.push(d.tcp(false, PSH_ACK, &connect(b"MQIsdp", 3, 0x04, 10, 0)));
    old.push(d.tcp(true, PSH_ACK, &connack(0, 5)));
    pkts.extend(old);
    let records = sim::run(&["mqtt"], &pkts);
    let m = mqtt(&records);
    assert_eq!(m.len(), 2);
    let five = m.iter().find(|r| r.key.src_port == 40_001).unwrap();
    assert_eq!(sim::uint(five, "mqttVersion"), Some(5));
    assert_eq!(sim::uint(five, "mqttKeepAlive"), Some(30));
    assert_eq!(sim::uint(five, "mqttLastReturnCode"), Some(0x87));
    assert_eq!(
        sim::uint(five, "mqttTypeCumulative"),
        Some(types(&[1, 2, 15]))
    );
    // No topiccount: the topics string is empty, as ipfixprobe's.
    assert_eq!(sim::string(five, "mqttTopics").as_deref(), Some(""));
    let old = m.iter().find(|r| r.key.src_port == 40_002).unwrap();
    assert_eq!(sim::uint(old, "mqttVersion"), Some(3));
    assert_eq!(sim::uint(old, "mqttLastReturnCode"), Some(5));
}

#[test]
fn flows_that_do_not_start_with_a_connect_carry_nothing() {
    let mut pkts = Vec::new();
    for (port, first) in [
        (1u16, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        (2, vec![0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0]),
        // A CONNECT naming another protocol, or level 3 with "MQTT".
        (3, connect(b"MQTX", 4, 0, 60, 0)),
        (4, connect(b"MQTT", 3, 0, 60, 0)),
        // An MQTT packet, but not a CONNECT (the session started before the capture).
        (5, publish(0, b"t", b"m")),
        // The server speaks first.
        (6, Vec::new()),
    ] {
        let mut c = Conn::new(41_000 + port, 1883);
        pkts.extend(c.open());
        if first.is_empty() {
            pkts.push(c.tcp(true, PSH_ACK, b"220 ready\r\n"));
            pkts.push(c.tcp(false, PSH_ACK, &connect(b"MQTT", 4, 2, 60, 0)));
        } else {
            pkts.push(c.tcp(false, PSH_ACK, &first));
        }
        pkts.push(c.tcp(true, PSH_ACK, &connack(0, 0)));
        pkts.push(c.tcp(false, PSH_ACK, &DISCONNECT));
    }
    // Zero-length payloads only, and UDP.
    let mut c = Conn::new(41_100, 1883);
    pkts.extend(c.open());
    pkts.push(c.udp(false, &connect(b"MQTT", 4, 2, 60, 0)));
    let records = sim::run(&["mqtt"], &pkts);
    assert!(records.len() >= 8);
    assert!(mqtt(&records).is_empty(), "{:?}", mqtt(&records));
}

#[test]
fn segments_out_of_order_and_a_capture_started_mid_handshake() {
    let mut c = Conn::new(40_010, 1883);
    let mut pkts = c.open();
    let hello = connect(b"MQTT", 4, 2, 120, 0);
    let (seq, ack) = (c.seq[0], c.seq[1]);
    // The second half of the CONNECT first, then the first.
    pkts.push(c.tcp_at(false, PSH_ACK, seq + 5, ack, &hello[5..]));
    pkts.push(c.tcp_at(false, PSH_ACK, seq, ack, &hello[..5]));
    c.seq[0] += hello.len() as u32;
    pkts.push(c.tcp(true, PSH_ACK, &connack(0, 0)));
    // A retransmitted PUBLISH is one PUBLISH.
    let p = publish(0, b"once", b"x");
    let at = c.seq[0];
    pkts.push(c.tcp(false, PSH_ACK, &p));
    pkts.push(c.tcp_at(false, PSH_ACK, at, c.seq[1], &p));
    // Without the SYN: the stream starts at the first segment seen.
    let mut d = Conn::new(40_011, 1883);
    d.open();
    pkts.push(d.tcp(false, PSH_ACK, &connect(b"MQTT", 4, 0, 5, 0)));
    pkts.push(d.tcp(false, PSH_ACK, &publish(0, b"late", b"")));
    let records = sim::run(&["mqtt;tc=5"], &pkts);
    let m = mqtt(&records);
    assert_eq!(m.len(), 2);
    let r = m.iter().find(|r| r.key.src_port == 40_010).unwrap();
    assert_eq!(sim::uint(r, "mqttKeepAlive"), Some(120));
    assert_eq!(sim::string(r, "mqttTopics").as_deref(), Some("once#"));
    let r = m.iter().find(|r| r.key.src_port == 40_011).unwrap();
    assert_eq!(sim::string(r, "mqttTopics").as_deref(), Some("late#"));
}

#[test]
fn a_long_session_is_followed_past_the_stream_window() {
    let mut c = Conn::new(40_020, 1883);
    let mut pkts = c.open();
    pkts.push(c.tcp(false, PSH_ACK, &connect(b"MQTT", 4, 2, 60, 0)));
    pkts.push(c.tcp(true, PSH_ACK, &connack(0, 0)));
    // 200 PUBLISH of 250 octets (50 KB, far past the 4 KB window), segmented at 1,000
    // octets regardless of where packets end; the last ones QoS 1.
    let mut bytes = Vec::new();
    for i in 0..200 {
        let flags = if i >= 190 { 0b0010 } else { 0 };
        bytes.extend(publish(flags, format!("t/{i}").as_bytes(), &[b'm'; 240]));
    }
    bytes.extend_from_slice(&PINGREQ);
    for chunk in bytes.chunks(1000) {
        pkts.push(c.tcp(false, PSH_ACK, chunk));
        pkts.push(c.tcp(true, ACK, &[]));
    }
    pkts.push(c.tcp(true, PSH_ACK, &PINGRESP));
    pkts.push(c.tcp(false, PSH_ACK, &DISCONNECT));
    pkts.push(c.tcp(true, FIN_ACK, &[]));
    let records = sim::run(&["mqtt;tc=1000"], &pkts);
    let r = mqtt(&records)[0];
    assert_eq!(
        r.end_reason,
        end_reason::END_OF_FLOW,
        "the DISCONNECT was seen"
    );
    assert_eq!(sim::packets(r), pkts.len() as u64 - 1);
    assert_eq!(sim::uint(r, "mqttPublishFlags"), Some(0b0010));
    assert_eq!(
        sim::uint(r, "mqttTypeCumulative"),
        Some(types(&[1, 2, 3, 12, 13, 14]))
    );
    let topics = sim::string(r, "mqttTopics").unwrap();
    let want: String = (0..200).map(|i| format!("t/{i}#")).collect();
    assert_eq!(topics, want);
}

#[test]
fn topic_names_are_bounded_and_checked() {
    let mut s = Session::default();
    // A wildcard or octets that are not UTF-8 are not topic names.
    for t in [&b"a/#"[..], b"+/b", b"\xff\xfe", b"ok"] {
        s.packet(&publish(0, t, b""), 10);
    }
    assert_eq!(s.topics, "ok#");
    // However many topiccount allows, the string stays under MAX_TOPICS_OCTETS.
    let long = vec![b'n'; 1000];
    for _ in 0..10 {
        s.packet(&publish(0, &long, b""), 1000);
    }
    assert!(s.topics.len() < MAX_TOPICS_OCTETS && s.topics.len() > 3000);
    assert_eq!(s.topics_seen, 11);
    // A packet cut before its topic counts its type and flags only.
    let mut t = Session::default();
    t.packet(&publish(0b0001, b"topic", b"")[..4], 10);
    assert_eq!(
        (t.types, t.publish_flags, t.topics.as_str()),
        (1 << 3, 1, "")
    );
}

#[test]
fn the_plugin_option_parses() {
    assert!(PluginSpec::parse("mqtt;tc=3").is_ok());
    let e = build(&PluginSpec::parse("mqtt;topiccount=x").unwrap().options)
        .err()
        .unwrap();
    assert!(e.0.contains("topiccount"), "{}", e.0);
    assert!(build(&PluginSpec::parse("mqtt;tc=1001").unwrap().options).is_err());
}

use crate::plugins::PluginSpec;

/// Real packets (the corpus capture's and the ones built above), cut at every length and
/// damaged thousands of times over, through every parser: nothing panics, what is read stays
/// inside the octets given, and framing never claims more than the remaining length allows.
#[test]
fn thousands_of_damaged_packets_through_the_parsers() {
    let mut real = sim::corpus_payloads("ipfixprobe__mqtt.pcap", 6);
    real.push(connect(b"MQTT", 5, 0xee, 0xffff, 60));
    real.push(connect(b"MQIsdp", 3, 0, 1, 0));
    real.push(publish(0b1101, b"a/b/c", &[7; 300]));
    real.push(packet(kind::CONNACK, 0, &[1, 0x80, 3, 0x21, 0, 9]));
    let mut rng = Rng(0x6d71_7474);
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for p in &real {
        inputs.extend((0..=p.len()).map(|n| p[..n].to_vec()));
        inputs.extend((0..1000).map(|_| rng.mutate(p)));
    }
    inputs.extend((0..2000).map(|_| {
        let n = rng.below(64);
        (0..n).map(|_| rng.next() as u8).collect()
    }));
    assert!(inputs.len() > 10_000);
    let mut session = Session::default();
    for b in &inputs {
        if let Ok(p) = wire::Packet::new_checked(b) {
            assert!(p.body().len() <= p.total_len() && p.total_len() <= 5 + 268_435_455);
            let _ = (Connect::parse(p.body()), ConnAck::parse(p.body()));
            if let Ok(t) = wire::publish_topic(p.body()) {
                assert!(t.len() + 2 <= p.body().len());
            }
        }
        for strict in [false, true] {
            if let Head::Msg(len) = wire::Mqtt::head(b, strict) {
                assert!(len >= 2);
            }
        }
        let _ = wire::starts_with_connect(b);
        session.packet(b, 100);
        assert!(session.topics.len() < MAX_TOPICS_OCTETS);
    }
}

/// Damaged sessions through the whole meter: every packet counted once, no panic.
#[test]
fn damaged_sessions_through_the_meter() {
    let mut rng = Rng(77);
    for round in 0..40 {
        let mut c = Conn::new(42_000 + round, 1883);
        let mut pkts = c.open();
        let msgs = [
            connect(b"MQTT", 4, 2, 60, 0),
            connack(0, 0),
            publish(0, b"x", &[1; 200]),
            DISCONNECT.to_vec(),
        ];
        for (i, m) in msgs.iter().enumerate() {
            let m = if rng.below(3) == 0 {
                rng.mutate(m)
            } else {
                m.clone()
            };
            pkts.push(c.tcp(i == 1, PSH_ACK, &m));
        }
        let snap = (round % 4 == 3).then(|| 40 + rng.below(30));
        let records = sim::run_snap(&["mqtt;tc=3"], &pkts, snap);
        let counted: u64 = records.iter().map(sim::packets).sum();
        assert_eq!(counted, pkts.len() as u64);
    }
}
