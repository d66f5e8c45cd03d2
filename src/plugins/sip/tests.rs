use super::*;
use crate::plugins::text_harness::*;

/// RFC 3665 §3.1's INVITE, as sent.
const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\
User-Agent: Softphone Beta1.5\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 0\r\n\r\n";

fn response(status: &str, cseq: &str) -> Vec<u8> {
    format!(
        "SIP/2.0 {status}\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn each_message_of_a_call_is_its_own_record() {
    let mut c = Conv::udp(5060, 5060);
    c.send(false, INVITE);
    c.send(true, &response("100 Trying", "1 INVITE"));
    c.send(true, &response("180 Ringing", "1 INVITE"));
    c.send(true, &response("200 OK", "1 INVITE"));
    c.send(
        false,
        &INVITE
            .replace_first(b"INVITE sip:", b"ACK sip:")
            .replace_first(b"1 INVITE", b"1 ACK"),
    );
    c.send(
        false,
        &INVITE
            .replace_first(b"INVITE sip:", b"BYE sip:")
            .replace_first(b"1 INVITE", b"2 BYE"),
    );
    c.send(true, &response("200 OK", "2 BYE"));
    let recs = records(&["sip"], &c.packets);
    assert_eq!(recs.len(), 7);
    let vals: Vec<_> = recs.iter().map(|r| values("sip", r)).collect();
    let got: Vec<[&str; 3]> = vals
        .iter()
        .map(|v| ["SIPMsgType", "SIPStatusCode", "SIPCseq"].map(|n| get(v, n)))
        .collect();
    assert_eq!(
        got,
        [
            ["1", "0", "1 INVITE"],
            ["99", "100", "1 INVITE"],
            ["99", "180", "1 INVITE"],
            ["99", "200", "1 INVITE"],
            ["2", "0", "1 ACK"],
            ["4", "0", "2 BYE"],
            ["99", "200", "2 BYE"],
        ]
    );
    let v = values("sip", &recs[0]);
    assert_eq!(get(&v, "SIPCallingParty"), "sip:alice@atlanta.example.com");
    assert_eq!(get(&v, "SIPCalledParty"), "sip:bob@biloxi.example.com");
    assert_eq!(
        get(&v, "SIPCallID"),
        "3848276298220188511@atlanta.example.com"
    );
    assert_eq!(get(&v, "SIPUserAgent"), "Softphone Beta1.5");
    assert_eq!(get(&v, "SIPRequestURI"), "sip:bob@biloxi.example.com");
    assert_eq!(
        get(&v, "SIPVia"),
        "SIP/2.0/UDP client.atlanta.example.com:5060"
    );
    assert_eq!(get(&values("sip", &recs[1]), "SIPRequestURI"), "");
    assert!(recs.iter().all(|r| r.flow_id == recs[0].flow_id));
}

trait ReplaceFirst {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for [u8] {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self.windows(from.len()).position(|w| w == from).unwrap();
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        self.as_slice().replace_first(from, to)
    }
}

#[test]
fn compact_folded_and_quoted_forms_are_read() {
    let f = parse(
        b"MESSAGE sips:b@b.example SIP/2.0\r\n\
v: SIP/2.0/TCP a.example;branch=1, SIP/2.0/UDP 192.0.2.1:5062 ;received=1.2.3.4\r\n\
V: SIP/2.0/TLS\r\n [2001:db8::1]:5061;branch=2\r\n\
f: \"Bob <the boss>\" <sip:bob@a.example;transport=tcp>;tag=x\r\n\
t: sip:c@c.example;tag=y\r\n\
i: abc@def\r\n\
cseq:7 MESSAGE\r\n\r\n",
    )
    .unwrap();
    assert_eq!(f.msg_type, 0, "a method ipfixprobe does not read");
    assert_eq!(f.request_uri, "sips:b@b.example");
    assert_eq!(
        f.via,
        "SIP/2.0/TCP a.example;SIP/2.0/UDP 192.0.2.1:5062;SIP/2.0/TLS [2001:db8::1]:5061"
    );
    assert_eq!(f.from, "sip:bob@a.example;transport=tcp");
    assert_eq!(f.to, "sip:c@c.example");
    assert_eq!(
        (f.call_id.as_str(), f.cseq.as_str()),
        ("abc@def", "7 MESSAGE")
    );
    for (m, code) in METHODS.iter().zip(1..) {
        let line = [*m, b" sip:x SIP/2.0\r\n\r\n"].concat();
        assert_eq!(parse(&line).unwrap().msg_type, code);
    }
}

#[test]
fn http_and_ssdp_are_not_sip() {
    assert_eq!(
        parse(b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"),
        None
    );
    assert_eq!(parse(b"OPTIONS / HTTP/1.1\r\n\r\n"), None);
    assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), None);
    let mut c = Conv::udp(40_000, 1900);
    c.send(false, b"M-SEARCH * HTTP/1.1\r\nST: ssdp:all\r\n\r\n");
    assert_eq!(run("sip", &c.packets), [None]);
}

#[test]
fn over_tcp_messages_are_read_from_the_stream_and_split() {
    let mut c = Conv::tcp(5060);
    c.send_in(false, INVITE, 100);
    c.send_in(true, &response("180 Ringing", "1 INVITE"), 60);
    c.send(true, &response("200 OK", "1 INVITE"));
    let r = run("sip", &c.packets);
    let got: Vec<(&str, &str, &str)> = r
        .iter()
        .map(|v| {
            (
                get(v, "SIPMsgType"),
                get(v, "SIPStatusCode"),
                get(v, "SIPUserAgent"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1", "0", "Softphone Beta1.5"),
            ("99", "180", ""),
            ("99", "200", "")
        ]
    );
    assert_eq!(
        get(&r[0], "SIPCallID"),
        "3848276298220188511@atlanta.example.com"
    );
}

#[test]
fn values_are_bounded_and_a_full_record_fits_a_udp_message() {
    // (Within the 4096 octets read of a message.)
    let long = "ß".repeat(150);
    let mut m = format!("INVITE sip:{long} SIP/2.0\r\nCSeq: {long}\r\nFrom: <sip:{long}>\r\n");
    m.push_str(&format!(
        "To: sip:{long}\r\nCall-ID: {long}\r\nUser-Agent: {long}\r\n"
    ));
    for i in 0..40 {
        m.push_str(&format!(
            "Via: SIP/2.0/UDP host{i}.example:5060;branch=b{i}\r\n"
        ));
    }
    m.push_str("\r\n");
    let mut c = Conv::udp(5060, 5060);
    c.send(false, m.as_bytes());
    let recs = records(&["sip"], &c.packets);
    let v = values("sip", &recs[0]).unwrap();
    for (name, max) in [
        ("SIPCseq", max::CSEQ),
        ("SIPCallingParty", max::FROM),
        ("SIPCalledParty", max::TO),
        ("SIPCallID", max::CALL_ID),
        ("SIPUserAgent", max::USER_AGENT),
        ("SIPRequestURI", max::REQUEST_URI),
    ] {
        assert!(v[name].len() <= max && v[name].len() + 2 > max, "{name}");
    }
    assert!(v["SIPVia"].len() <= max::VIA && v["SIPVia"].len() > max::VIA - 40);
    assert!(v["SIPVia"]
        .split(';')
        .all(|p| p.starts_with("SIP/2.0/UDP host")));
    let len = message_len(&["sip"], &recs[0]);
    assert!(len + 250 <= UDP_MESSAGE, "{len}");
}

#[test]
fn junk_cut_and_damaged_messages_are_read_safely() {
    assert_eq!(parse(b""), None);
    assert_eq!(parse(b"\r\n\r\n"), None);
    assert_eq!(parse(&[0xff; 64]), None);
    let f = parse(b"SIP/2.0 486 Busy Here").unwrap();
    assert_eq!((f.msg_type, f.status), (RESPONSE, 486));
    let f = parse(b"BYE sip:a SIP/2.0\r\nCall-ID: cut-here").unwrap();
    assert_eq!((f.msg_type, f.call_id.as_str()), (4, ""));
    let mut big = b"SIP/2.0 200 OK\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'q', 65_536));
    big.extend_from_slice(b"\r\nCall-ID: late\r\n\r\n");
    assert_eq!(parse(&big).unwrap().call_id, "");
    let mut c = Conv::udp(5060, 5060);
    c.send(false, b"").send(false, INVITE).send(true, b"");
    assert_eq!(run("sip", &c.packets).len(), 1);
    let mut rng = Rng(0x5eed_0003);
    let ok = response("200 OK", "1 INVITE");
    for i in 0..6_000 {
        let m = mutate(&mut rng, if i % 2 == 0 { INVITE } else { &ok });
        if let Some(f) = parse(&m) {
            assert!(f.cseq.len() <= max::CSEQ && f.from.len() <= max::FROM);
            assert!(f.to.len() <= max::TO && f.call_id.len() <= max::CALL_ID);
            assert!(f.user_agent.len() <= max::USER_AGENT && f.via.len() <= max::VIA);
            assert!(f.request_uri.len() <= max::REQUEST_URI);
        }
    }
    for _ in 0..200 {
        let mut c = Conv::udp(5060, 5060);
        for _ in 0..1 + rng.below(5) {
            c.send(rng.below(2) == 1, &mutate(&mut rng, INVITE));
        }
        let mut t = Conv::tcp(5060);
        t.send_in(false, &mutate(&mut rng, INVITE), 1 + rng.below(300));
        t.send_in(true, &mutate(&mut rng, &ok), 1 + rng.below(300));
        for packets in [&c.packets, &t.packets] {
            for r in run("sip", packets).iter().flatten() {
                assert!(r.values().all(|v| v.len() <= 255));
            }
        }
    }
}
