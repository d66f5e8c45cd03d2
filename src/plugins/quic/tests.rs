use super::initial::tests::{client_initial, hex, rfc_packet, RFC_CRYPTO_FRAME};
use super::*;
use crate::decode::Packet;
use crate::meter::{ExtValue, Extensions};
use crate::plugins::corpus_payloads::{payloads, Rng};
use crate::plugins::tls::hello::tests::{alpn, client_hello, extension, handshake, sni};
use crate::time::Timestamp;

const ALL: [ExtKey; 17] = [
    SNI,
    USER_AGENT,
    VERSION,
    CLIENT_VERSION,
    TOKEN_LENGTH,
    OCCID,
    OSCID,
    SCID,
    RETRY_SCID,
    MULTIPLEXED,
    ZERO_RTT,
    SERVER_PORT,
    PACKETS,
    CH_PARSED,
    EXT_TYPE,
    EXT_LEN,
    TLS_EXT,
];

struct Flow {
    plugin: Quic,
    state: Option<State>,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            plugin: Quic::default(),
            state: None,
        }
    }

    /// A datagram from the client (port 50000 to 443), or from the server.
    fn datagram(&mut self, from_client: bool, payload: &[u8]) -> Verdict {
        let mut pkt = Packet {
            payload_len: payload.len() as u32,
            has_l4: true,
            ..Packet::default()
        };
        pkt.key.proto = 17;
        (pkt.key.src_port, pkt.key.dst_port) = if from_client {
            (50000, 443)
        } else {
            (443, 50000)
        };
        let v = PacketView {
            ts: Timestamp::from_millis(1),
            pkt: &pkt,
            details: &Default::default(),
            reverse: !from_client,
            payload: &payload[..payload.len().min(PAYLOAD)],
            stream: &[],
        };
        let st = self
            .state
            .get_or_insert_with(|| self.plugin.attach(&v).unwrap());
        self.plugin.packet(st, &v)
    }

    fn export(mut self) -> Option<Extensions> {
        let mut ext = Extensions::default();
        let mut keys = ALL;
        keys.sort();
        let mut w = ExtWriter::new(&mut ext, &keys);
        let s = self.state.take()?;
        self.plugin
            .export(s, &FlowSummary::default(), &mut w)
            .then_some(ext)
    }
}

fn bytes(ext: &Extensions, key: ExtKey) -> Vec<u8> {
    match ext.get(key) {
        Some(ExtValue::Bytes(b)) => b.to_vec(),
        other => panic!("{key:?}: {other:?}"),
    }
}

fn uint(ext: &Extensions, key: ExtKey) -> u64 {
    match ext.get(key) {
        Some(ExtValue::Unsigned(v)) => v,
        other => panic!("{key:?}: {other:?}"),
    }
}

fn list(ext: &Extensions, key: ExtKey) -> Vec<u64> {
    match ext.get(key) {
        Some(ExtValue::List {
            item_len, items, ..
        }) => items
            .chunks(usize::from(item_len))
            .map(|c| c.iter().fold(0, |a, &b| a << 8 | u64::from(b)))
            .collect(),
        other => panic!("{key:?}: {other:?}"),
    }
}

#[test]
fn the_rfc_client_initials_are_read_in_version_1_and_2() {
    for v2 in [false, true] {
        let (packet, version) = rfc_packet(v2);
        let mut f = Flow::new();
        assert_eq!(f.datagram(true, &packet), Verdict::Continue);
        let ext = f.export().unwrap();
        assert_eq!(bytes(&ext, SNI), b"example.com");
        assert_eq!(uint(&ext, VERSION), u64::from(version));
        assert_eq!(uint(&ext, CLIENT_VERSION), u64::from(version));
        assert_eq!(bytes(&ext, OSCID), hex("8394c8f03e515708"));
        assert_eq!(bytes(&ext, OCCID), b"");
        assert_eq!(uint(&ext, TOKEN_LENGTH), 0);
        assert_eq!(uint(&ext, SERVER_PORT), 443);
        assert_eq!(uint(&ext, CH_PARSED), 1);
        assert_eq!(list(&ext, PACKETS), [0x81]);
        // The RFC's ClientHello: server_name, renegotiation_info, supported_groups, ALPN
        // "alpn", status_request, key_share, supported_versions, signature_algorithms,
        // psk_key_exchange_modes, record_size_limit, quic_transport_parameters.
        assert_eq!(
            list(&ext, EXT_TYPE),
            [0, 0xff01, 10, 16, 5, 51, 43, 13, 45, 28, 57]
        );
        // quicTlsExt: the ALPN body, then the transport parameters' (from the RFC's frame).
        let frame = hex(RFC_CRYPTO_FRAME);
        let tls_ext = bytes(&ext, TLS_EXT);
        assert_eq!(&tls_ext[..7], &[0, 5, 4, b'a', b'l', b'p', b'n']);
        assert_eq!(tls_ext[7..], frame[frame.len() - 50..]);
    }
}

/// A ClientHello of about 1.9 kB (a post-quantum key share): it takes two Initial packets.
fn big_client_hello() -> Vec<u8> {
    let tp = [&[0x71, 0x29, 6][..], b"qof/ua"].concat();
    handshake(
        CLIENT_HELLO,
        &client_hello(
            0x0303,
            &[0x1301],
            &[
                sni("big.example"),
                alpn(&[b"h3"]),
                extension(51, &[0x33; 1800]),
                extension(57, &tp),
            ],
        ),
    )
}

/// CRYPTO frames (2-octet offsets and lengths) of `data` at `offset`.
fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![0x06];
    f.extend_from_slice(&(0x4000 | offset as u16).to_be_bytes());
    f.extend_from_slice(&(0x4000 | data.len() as u16).to_be_bytes());
    f.extend_from_slice(data);
    f
}

#[test]
fn a_client_hello_over_two_initials_out_of_order_is_read() {
    let ch = big_client_hello();
    let (dcid, scid) = (hex("0011223344556677"), hex("aabbccdd"));
    // Packet 1 carries the second half and the middle (scattered, PING and PADDING
    // between); packet 2 the start.
    let f1 = [
        crypto(1200, &ch[1200..]),
        vec![0x01, 0, 0],
        crypto(600, &ch[600..1200]),
    ]
    .concat();
    let f2 = [vec![0x02, 0, 0, 0, 0], crypto(0, &ch[..600])].concat();
    let p1 = client_initial(1, &dcid, &scid, &[], 0, &f1, 1200);
    let p2 = client_initial(1, &dcid, &scid, &[], 1, &f2, 1200);
    let mut f = Flow::new();
    f.datagram(true, &p1);
    // The server's Initial (its own keys: not opened) and Handshake, coalesced.
    let mut server = client_initial(1, &scid, &hex("5e5e5e5e"), &[], 0, &[0x01], 100);
    server[0] = 0xc3;
    server.extend_from_slice(&[
        0xe0, 0, 0, 0, 1, 4, 0xaa, 0xbb, 0xcc, 0xdd, 4, 0x5e, 0x5e, 0x5e, 0x5e, 2, 9, 9,
    ]);
    f.datagram(false, &server);
    f.datagram(true, &p2);
    f.datagram(false, &[0x40, 1, 2, 3]); // a short-header packet
    let ext = f.export().unwrap();
    assert_eq!(bytes(&ext, SNI), b"big.example");
    assert_eq!(bytes(&ext, USER_AGENT), b"qof/ua");
    assert_eq!(bytes(&ext, OSCID), dcid);
    assert_eq!(bytes(&ext, OCCID), scid);
    assert_eq!(bytes(&ext, SCID), hex("5e5e5e5e"));
    assert_eq!(list(&ext, EXT_LEN), [16, 5, 1800, 9]);
    assert_eq!(list(&ext, PACKETS), [0x81, 0x85, 0x81, 0x80]);
    // quicTlsExt: ALPN body and transport parameters.
    assert_eq!(
        bytes(&ext, TLS_EXT),
        [&[0, 3, 2, b'h', b'3', 0x71, 0x29, 6][..], b"qof/ua"].concat()
    );
}

#[test]
fn retry_zero_rtt_and_version_negotiation() {
    let ch = handshake(
        CLIENT_HELLO,
        &client_hello(0x0303, &[0x1301], &[sni("r.example")]),
    );
    let (dcid, scid, retry) = (hex("01020304"), hex("0a0b"), hex("99887766"));
    let mut f = Flow::new();
    // The client's first Initial, then a Retry (token "tok", 16-octet tag).
    f.datagram(
        true,
        &client_initial(1, &dcid, &scid, &[], 0, &crypto(0, &ch[..10]), 1200),
    );
    let mut r = vec![0xf0, 0, 0, 0, 1, 2, 0x0a, 0x0b, 4];
    r.extend_from_slice(&retry);
    r.extend_from_slice(b"tok");
    r.extend_from_slice(&[0x77; 16]);
    assert_eq!(f.datagram(false, &r), Verdict::Continue);
    // The client starts over to the Retry's connection ID, with its token, and sends
    // 0-RTT data coalesced behind.
    let mut again = client_initial(1, &retry, &scid, b"tok", 1, &crypto(0, &ch), 1200);
    again.extend_from_slice(&[0xd0, 0, 0, 0, 1, 4, 9, 8, 7, 6, 2, 0x0a, 0x0b, 3, 1, 2, 3]);
    f.datagram(true, &again);
    let ext = f.export().unwrap();
    assert_eq!(bytes(&ext, SNI), b"r.example");
    assert_eq!(bytes(&ext, RETRY_SCID), retry);
    assert_eq!(bytes(&ext, OSCID), dcid);
    assert_eq!(uint(&ext, TOKEN_LENGTH), 3);
    assert_eq!(uint(&ext, ZERO_RTT), 1);
    assert_eq!(list(&ext, PACKETS), [0x81, 0x88, 0x83]);
    // The version of the last datagram without 0-RTT: the Retry's.
    assert_eq!(uint(&ext, VERSION), 1);
    // A Version Negotiation packet ends the flow after it.
    let mut f = Flow::new();
    f.datagram(
        true,
        &client_initial(0xff00_001d, &dcid, &scid, &[], 0, &crypto(0, &ch), 1200),
    );
    let vn = [0x80, 0, 0, 0, 0, 2, 0x0a, 0x0b, 4, 1, 2, 3, 4, 0, 0, 0, 1];
    assert_eq!(f.datagram(false, &vn), Verdict::EndAfter);
    let ext = f.export().unwrap();
    assert_eq!(uint(&ext, CLIENT_VERSION), 0xff00_001d);
    assert_eq!(uint(&ext, VERSION), 0);
    // (The Version Negotiation packet's fixed bit is clear here.)
    assert_eq!(list(&ext, PACKETS), [0x81, 0x10]);
}

#[test]
fn another_connection_on_the_same_ports_counts_as_multiplexed() {
    let ch = handshake(
        CLIENT_HELLO,
        &client_hello(0x0303, &[0x1301], &[sni("a.example")]),
    );
    let mut f = Flow::new();
    f.datagram(
        true,
        &client_initial(1, &[1; 8], &[2; 4], &[], 0, &crypto(0, &ch), 1200),
    );
    // The same connection's later Initial (an ACK): not counted.
    f.datagram(
        true,
        &client_initial(1, &[1; 8], &[2; 4], &[], 1, &[2, 0, 0, 0, 0], 1200),
    );
    f.datagram(
        true,
        &client_initial(1, &[3; 8], &[4; 4], &[], 0, &crypto(0, &ch), 1200),
    );
    let ext = f.export().unwrap();
    assert_eq!(uint(&ext, MULTIPLEXED), 1);
    assert_eq!(bytes(&ext, OSCID), [1; 8]);
}

#[test]
fn a_udp_flow_without_quic_is_dropped_after_thirty_packets() {
    let mut f = Flow::new();
    for i in 0..MAX_PACKETS {
        let v = f.datagram(i % 2 == 0, b"\x12\x34 a DNS query, say");
        assert_eq!(v == Verdict::Drop, i == MAX_PACKETS - 1, "packet {i}");
    }
    // A datagram of a version that is not read (gQUIC Q050) is not QUIC here either.
    let mut f = Flow::new();
    f.datagram(
        true,
        &[0xc3, b'Q', b'0', b'5', b'0', 8, 1, 2, 3, 4, 5, 6, 7, 8, 0],
    );
    assert!(f.export().is_none());
}

/// Real QUIC datagrams of the corpus, and the plaintext of the client Initials among them.
fn real_datagrams() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut datagrams = Vec::new();
    for file in [
        "ipfixprobe__quic_initial-sample.pcap",
        "tcpdump__quic_handshake.pcap",
        "ndpi__quic-mvfst-22.pcap",
        "ndpi__doq_adguard.pcapng",
    ] {
        datagrams.extend(payloads(file, 17).into_iter().take(40));
    }
    let mut plain = Vec::new();
    let mut buf = Vec::new();
    for d in &datagrams {
        for h in Coalesced::new(d).filter(|h| h.kind == Kind::Initial) {
            let keys = ClientKeys::new(protection(h.version).unwrap(), h.dcid).unwrap();
            if let Some(p) = keys.open(h.packet, h.pn_offset, &mut buf) {
                plain.push(p.to_vec());
            }
        }
    }
    (datagrams, plain)
}

#[test]
fn real_datagrams_survive_thousands_of_mutations() {
    let (datagrams, plain) = real_datagrams();
    assert!(
        datagrams.len() > 80 && plain.len() >= 4,
        "{} {}",
        datagrams.len(),
        plain.len()
    );
    let mut rng = Rng(0x0dd_ba11);
    // Whole datagrams, mutated, through the plugin (header walk, decryption attempts).
    for round in 0..400 {
        let mut f = Flow::new();
        for i in 0..8 {
            let d = &datagrams[(round * 8 + i) % datagrams.len()];
            let d = if rng.below(4) == 0 {
                d.clone()
            } else {
                rng.mutate(d)
            };
            let _ = f.datagram(rng.below(2) == 0, &d);
        }
        let _ = f.export();
    }
    // Decrypted Initial payloads, mutated, through the frame walk, the CRYPTO reassembly and
    // the ClientHello parser.
    let rfc = rfc_packet(false).0;
    let header = LongHeader::parse(&rfc).unwrap();
    let mut pkt = Packet::default();
    pkt.key.dst_port = 443;
    let view = PacketView {
        ts: Timestamp::from_millis(1),
        pkt: &pkt,
        details: &Default::default(),
        reverse: false,
        payload: &[],
        stream: &[],
    };
    let mut read = 0;
    for i in 0..10_000 {
        let mut c = Conn::default();
        let m = rng.mutate(&plain[i % plain.len()]);
        c.client_initial(&header, &view, &m);
        read += usize::from(c.hello.is_some());
        if let Some(h) = &c.hello {
            assert!(h.sni.len() <= 254 && h.tls_ext.len() <= MAX_TLS_EXT);
        }
    }
    assert!(read > 1_000, "{read}");
}

#[test]
fn a_largest_record_fits_a_udp_message() {
    use crate::ipfix::{Encoder, TemplateSpec};
    use crate::meter::FlowRecord;
    // Every quic element at its largest: 254-octet SNI and user agent, 20-octet connection
    // IDs, 30 packets, 30 extensions, quicTlsExt full; IPv6, the default template.
    let mut ext = Extensions::default();
    let mut keys = ALL.to_vec();
    let spec = TemplateSpec::qof_default().with_plugins(&[PluginKind::Quic]);
    keys.extend(spec.ext_keys());
    keys.sort();
    keys.dedup();
    let mut w = ExtWriter::new(&mut ext, &keys);
    let long = "x".repeat(254);
    let c = Conn {
        types: [0xc1; MAX_PACKETS],
        types_len: MAX_PACKETS as u8,
        occid: Some(Cid::new(&[1; 20])),
        oscid: Some(Cid::new(&[2; 20])),
        retry_scid: Some(Cid::new(&[3; 20])),
        client_reverse: Some(false),
        first: [None, Some((Cid::new(&[4; 20]), Cid::new(&[5; 20])))],
        hello: Some(Box::new(Hello {
            sni: long.clone(),
            user_agent: long,
            ext_count: MAX_EXTENSIONS as u8,
            ext_types: [0xffff; MAX_EXTENSIONS],
            ext_lens: [0xffff; MAX_EXTENSIONS],
            tls_ext: vec![0xee; MAX_TLS_EXT],
        })),
        ..Conn::default()
    };
    let state = State {
        packets: 99,
        conn: Some(Box::new(c)),
    };
    assert!(Quic::default().export(state, &FlowSummary::default(), &mut w));
    ext.present |= 1 << PluginKind::Quic.number();
    let mut rec = FlowRecord::default();
    rec.key.ip_version = 6;
    rec.key.proto = 17;
    rec.fwd.packets = 1;
    rec.rev.packets = 1;
    rec.ext = Some(Box::new(ext));
    let mut enc = Encoder::new(spec, 0, 1420, false);
    let mut first: Vec<u8> = Vec::new();
    enc.encode_flow(&rec, 0, &mut first).unwrap();
    enc.flush(0, &mut first).unwrap();
    // A second message has the record alone: message header 16, set header 4, the record.
    let mut second: Vec<u8> = Vec::new();
    enc.encode_flow(&rec, 0, &mut second).unwrap();
    enc.flush(0, &mut second).unwrap();
    let (with_template, alone) = (first.len(), second.len());
    assert!(alone > 1000, "{alone}: the record was encoded whole");
    // 1420 octets is qof's UDP message (export::net::MAX_UDP_MESSAGE). The record leaves
    // room for 250 octets of other plugins' elements; with its template beside it, it
    // still fits.
    assert!(alone + 250 <= 1420, "a message of {alone} octets");
    assert!(
        with_template <= 1420,
        "{with_template} octets with the template"
    );
}
