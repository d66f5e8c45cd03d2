use super::hello::tests::{alpn, client_hello, extension, handshake, sni};
use super::hello::{ext, message};
use super::*;
use crate::decode::{Packet, TcpInfo};
use crate::meter::{ExtValue, Extensions};
use crate::plugins::corpus_payloads::{payloads, Rng};
use crate::time::Timestamp;

/// TLS records of content type 22 carrying `msg`, cut into records of at most `max` octets.
fn records(msg: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(max) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

fn server_hello(random: [u8; 32], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(&random);
    b.extend_from_slice(&[0, 0x13, 0x01, 0]);
    let e = exts.concat();
    b.extend_from_slice(&(e.len() as u16).to_be_bytes());
    b.extend_from_slice(&e);
    handshake(SERVER_HELLO, &b)
}

/// A ClientHello of about 1.8 kB (a post-quantum key share), SNI and ALPN.
fn big_client_hello() -> Vec<u8> {
    let body = client_hello(
        0x0303,
        &[0x1a1a, 0x1301, 0x1302],
        &[
            sni("pq.example"),
            alpn(&[b"h2"]),
            extension(ext::SUPPORTED_VERSIONS, &[2, 3, 4]),
            extension(51, &[0x44; 1700]),
        ],
    );
    handshake(CLIENT_HELLO, &body)
}

struct Flow {
    plugin: Tls,
    state: Option<State>,
    verdicts: Vec<Verdict>,
}

impl Flow {
    fn new() -> Flow {
        Flow {
            plugin: Tls::default(),
            state: None,
            verdicts: Vec::new(),
        }
    }

    /// One TCP segment with `payload` (its length is what counts), the direction's stream
    /// as it stands after it.
    fn packet(&mut self, reverse: bool, payload_len: usize, stream: &[u8]) -> Verdict {
        let pkt = Packet {
            payload_len: payload_len as u32,
            tcp: Some(TcpInfo::default()),
            ..Packet::default()
        };
        let v = PacketView {
            ts: Timestamp::from_millis(1),
            pkt: &pkt,
            details: &Default::default(),
            reverse,
            payload: &[],
            stream,
        };
        let st = self
            .state
            .get_or_insert_with(|| self.plugin.attach(&v).unwrap());
        let verdict = self.plugin.packet(st, &v);
        self.verdicts.push(verdict);
        verdict
    }

    fn export(mut self) -> Option<Extensions> {
        let mut ext = Extensions::default();
        let keys = [VERSION, SNI, ALPN, JA3, JA4, EXT_TYPE, EXT_LEN];
        let mut sorted = keys;
        sorted.sort();
        let mut w = ExtWriter::new(&mut ext, &sorted);
        let s = self.state.take()?;
        self.plugin
            .export(s, &FlowSummary::default(), &mut w)
            .then_some(ext)
    }
}

fn string(ext: &Extensions, key: ExtKey) -> String {
    match ext.get(key) {
        Some(ExtValue::Bytes(b)) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{key:?}: {other:?}"),
    }
}

fn list(ext: &Extensions, key: ExtKey) -> Vec<u64> {
    match ext.get(key) {
        Some(ExtValue::List { items, .. }) => items
            .chunks(2)
            .map(|c| u64::from(u16::from_be_bytes([c[0], c[1]])))
            .collect(),
        other => panic!("{key:?}: {other:?}"),
    }
}

#[test]
fn a_client_hello_split_over_segments_and_records_is_read() {
    let ch = big_client_hello();
    assert!(ch.len() > 1800);
    // Two records (the handshake message split between them), three segments.
    let stream = records(&ch, 1000);
    let mut f = Flow::new();
    assert_eq!(f.packet(false, 0, &[]), Verdict::Continue); // SYN
    assert_eq!(f.packet(false, 600, &stream[..600]), Verdict::Continue);
    assert_eq!(f.packet(false, 600, &stream[..1200]), Verdict::Continue);
    assert_eq!(f.packet(false, 700, &stream), Verdict::Continue);
    let mut sh_stream = records(&server_hello([1; 32], &[alpn(&[b"h2"])]), 16_000);
    sh_stream.extend_from_slice(&[22, 3, 3, 0x30, 0x00, 11, 0, 0x2f]); // Certificate, cut
    assert_eq!(f.packet(true, sh_stream.len(), &sh_stream), Verdict::Done);
    let ext = f.export().unwrap();
    assert_eq!(string(&ext, SNI), "pq.example");
    assert_eq!(string(&ext, ALPN), "h2");
    assert_eq!(ext.get(VERSION), Some(ExtValue::Unsigned(0x0303)));
    assert_eq!(list(&ext, EXT_TYPE), [0, 16, 43, 51]);
    assert_eq!(list(&ext, EXT_LEN), [15, 5, 3, 1700]);
    // (The hashes: SHA-256 of "1301,1302" and of "002b,0033", by Python's hashlib.)
    assert_eq!(string(&ext, JA4), "t13d0204h2_62ed6f6ca7ad_a56c5b993250");
}

#[test]
fn a_hello_retry_request_is_passed_over() {
    let hrr_random = [
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
        0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
        0x33, 0x9c,
    ];
    let hrr = server_hello(hrr_random, &[extension(ext::SUPPORTED_VERSIONS, &[3, 4])]);
    let sh = server_hello(
        [2; 32],
        &[
            extension(ext::SUPPORTED_VERSIONS, &[3, 4]),
            alpn(&[b"http/1.1"]),
        ],
    );
    let mut f = Flow::new();
    let ch = records(&big_client_hello(), 16_000);
    f.packet(false, ch.len(), &ch);
    let mut s = records(&hrr, 16_000);
    s.extend_from_slice(&[20, 3, 3, 0, 1, 1]); // ChangeCipherSpec
    assert_eq!(f.packet(true, s.len(), &s), Verdict::Continue);
    s.extend_from_slice(&records(&sh, 16_000));
    assert_eq!(f.packet(true, 100, &s), Verdict::Done);
    let ext = f.export().unwrap();
    assert_eq!(string(&ext, ALPN), "http/1.1");
    assert_eq!(ext.get(VERSION), Some(ExtValue::Unsigned(0x0304)));
}

#[test]
fn a_flow_that_does_not_start_with_tls_is_dropped_at_once() {
    let mut f = Flow::new();
    assert_eq!(
        f.packet(false, 18, b"GET / HTTP/1.1\r\n\r\n"),
        Verdict::Drop
    );
    let mut f = Flow::new();
    // An alert record, or a record of version 2.0, is not a hello.
    assert_eq!(f.packet(true, 7, &[21, 3, 3, 0, 2, 2, 40]), Verdict::Drop);
    let mut f = Flow::new();
    assert_eq!(
        f.packet(false, 8, &[22, 2, 0, 0, 3, 1, 0, 0]),
        Verdict::Drop
    );
}

#[test]
fn a_server_hello_alone_is_exported_and_waiting_is_bounded() {
    let mut f = Flow::new();
    let sh = records(&server_hello([5; 32], &[]), 16_000);
    assert_eq!(f.packet(false, sh.len(), &sh), Verdict::Continue);
    for i in 1..MAX_PACKETS {
        let v = f.packet(true, 0, &[]);
        assert_eq!(v == Verdict::Done, i == MAX_PACKETS - 1, "packet {i}");
    }
    let ext = f.export().unwrap();
    assert_eq!(ext.get(VERSION), Some(ExtValue::Unsigned(0x0303)));
    assert_eq!(string(&ext, ALPN), "");
    assert_eq!(list(&ext, EXT_TYPE), Vec::<u64>::new());
    assert_eq!(ext.get(JA3), None);
}

/// The hellos of the corpus's TLS captures: handshake messages at the start of TCP payloads.
fn real_hellos() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for file in [
        "ipfixprobe__tls.pcap",
        "ndpi__sites.pcapng",
        "ndpi__alexa-app.pcapng",
    ] {
        for p in payloads(file, 6) {
            if p.len() > 9 && p[0] == 22 && p[1] == 3 && matches!(p[5], 1 | 2) {
                if let Some((_, body)) = message(&p[5..]) {
                    out.push(handshake(p[5], body));
                }
            }
        }
    }
    out
}

#[test]
fn real_hellos_parse_and_survive_thousands_of_mutations() {
    let hellos = real_hellos();
    let clients = hellos.iter().filter(|h| h[0] == CLIENT_HELLO).count();
    assert!(
        clients >= 50 && hellos.len() - clients >= 50,
        "{clients}/{}",
        hellos.len()
    );
    for h in &hellos {
        let (ty, body) = message(h).unwrap();
        match ty {
            CLIENT_HELLO => {
                let ch = ClientHello::parse(body).unwrap();
                assert_eq!(fingerprint::ja4(&ch, Transport::Tcp).len(), 36);
            }
            _ => assert!(ServerHello::parse(body).is_some()),
        }
    }
    let mut rng = Rng(0x5eed_7151);
    let mut scratch = Vec::new();
    // Whole, in records of any size, every real hello reads back.
    for h in &hellos {
        let stream = records(h, 1 + rng.below(2000));
        let read = read_stream(&mut scratch, &stream);
        assert!(matches!(read, Read::Client(_) | Read::Server(_)));
    }
    let mut parsed = 0;
    let mut memo = Memo::default();
    for i in 0..20_000 {
        let h = &hellos[i % hellos.len()];
        let m = rng.mutate(h);
        // The handshake octets, as records, through the stream reader (whole or cut)...
        let stream = records(&m, 1 + rng.below(2000));
        let cut = match rng.below(2) {
            0 => stream.len(),
            _ => rng.below(stream.len() + 1),
        };
        match read_stream(&mut scratch, &stream[..cut]) {
            Read::Client(ch) => {
                parsed += 1;
                let c = Client::of(&ch, Transport::Tcp, &mut memo);
                assert_eq!(c.ja4.len(), 36);
                // Remembered or not, the fingerprints are the hello's own.
                let ja4 = fingerprint::ja4(&ch, Transport::Tcp);
                assert_eq!((c.ja3, c.ja4), (fingerprint::ja3(&ch), ja4));
                assert!(c.sni.len() <= MAX_NAME);
                let _ = fingerprint::ja3_string(&ch);
                let _ = ch.quic_user_agent();
            }
            Read::Server(sh) => {
                parsed += 1;
                let _ = (sh.selected_version(), sh.alpn().map(text));
            }
            Read::More | Read::NotTls => {}
        }
        // ...and the mutated message straight into both parsers.
        if let Some((_, body)) = message(&m) {
            if let Some(ch) = ClientHello::parse(body) {
                let _ = (fingerprint::ja3(&ch), ch.alpn().count(), ch.server_name());
            }
            let _ = ServerHello::parse(body).map(|s| s.alpn());
        }
    }
    // Many mutants still parse, so the accessors behind the parse were exercised too.
    assert!(parsed > 2_000, "{parsed}");
}
