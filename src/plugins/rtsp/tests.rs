use super::*;
use crate::plugins::text_harness::*;

const DESCRIBE: &[u8] = b"DESCRIBE rtsp://media.example.com:554/twister RTSP/1.0\r\n\
CSeq: 2\r\nAccept: application/sdp\r\nUser-Agent: LibVLC/3.0.20 (LIVE555 Streaming Media v2016.11.28)\r\n\r\n";

const DESCRIBED: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nServer: GStreamer RTSP server\r\n\
Content-Type: application/sdp\r\nContent-Length: 24\r\n\r\nv=0\r\no=- 0 0 IN IP4 0.0.0.0\r\n";

#[test]
fn a_session_gives_one_record_per_request() {
    let mut c = Conv::tcp(554);
    c.exchange(
        b"OPTIONS rtsp://media.example.com:554/twister RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n",
    );
    c.send_in(false, DESCRIBE, 40).send_in(true, DESCRIBED, 50);
    c.exchange(
        b"SETUP rtsp://media.example.com:554/twister/track1 RTSP/1.0\r\nCSeq: 3\r\n\
Transport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n",
        b"RTSP/1.0 461 Unsupported transport\r\nCSeq: 3\r\n\r\n",
    );
    // Interleaved RTP frames start nothing.
    c.send(true, b"$\x00\x00\x0cRTSP/1.0 200")
        .send(true, b"$\x00\x00\x04abcd");
    let r = run("rtsp", &c.packets);
    let got: Vec<[&str; 4]> = r
        .iter()
        .map(|v| ["rtspMethod", "rtspURI", "rtspStatus", "rtspContentType"].map(|n| get(v, n)))
        .collect();
    assert_eq!(
        got,
        [
            ["OPTIONS", "rtsp://media.example.com:554/twister", "200", ""],
            [
                "DESCRIBE",
                "rtsp://media.example.com:554/twister",
                "200",
                "application/sdp"
            ],
            [
                "SETUP",
                "rtsp://media.example.com:554/twister/track1",
                "461",
                ""
            ],
        ]
    );
    assert_eq!(
        get(&r[1], "rtspUserAgent"),
        "LibVLC/3.0.20 (LIVE555 Streaming Media v2016.11.28)"
    );
    assert_eq!(get(&r[1], "rtspServer"), "GStreamer RTSP server");
}

#[test]
fn http_is_not_rtsp_and_rtsp_is_not_http() {
    let mut c = Conv::tcp(80);
    c.exchange(
        b"OPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nServer: s\r\n\r\n",
    );
    assert_eq!(run("rtsp", &c.packets), [None]);
    let mut c = Conv::tcp(554);
    c.exchange(DESCRIBE, DESCRIBED);
    assert_eq!(run("http", &c.packets), [None]);
}

#[test]
fn values_are_bounded_and_a_full_record_fits_a_udp_message() {
    let long = "ü".repeat(500);
    let q = format!(
        "{} rtsp://{long} RTSP/1.0\r\nUser-Agent: {long}\r\n\r\n",
        "X".repeat(32)
    );
    let a = format!("RTSP/1.0 200 OK\r\nServer: {long}\r\nContent-Type: {long}\r\n\r\n");
    let mut c = Conv::tcp(554);
    c.exchange(q.as_bytes(), a.as_bytes());
    let recs = records(&["rtsp"], &c.packets);
    let v = values("rtsp", &recs[0]).unwrap();
    for (name, max) in [
        ("rtspMethod", max::METHOD),
        ("rtspURI", max::URI),
        ("rtspUserAgent", max::USER_AGENT),
        ("rtspServer", max::SERVER),
        ("rtspContentType", max::CONTENT_TYPE),
    ] {
        assert!(v[name].len() <= max && v[name].len() + 2 > max, "{name}");
    }
    let len = message_len(&["rtsp"], &recs[0]);
    assert!(len + 600 <= UDP_MESSAGE, "{len}");
}

#[test]
fn junk_cut_and_damaged_messages_are_read_safely() {
    assert_eq!(parse(b""), None);
    assert_eq!(parse(b"$\x00\x01\x02"), None);
    let f = parse(b"PLAY rtsp://a/b").unwrap();
    assert_eq!((f.method.as_str(), f.uri.as_str()), ("PLAY", "rtsp://a/b"));
    let mut big = b"RTSP/1.0 200 OK\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'q', 65_536));
    big.extend_from_slice(b"\r\nServer: late\r\n\r\n");
    assert_eq!(parse(&big).unwrap().server, "");
    let mut rng = Rng(0x5eed_0002);
    for i in 0..6_000 {
        let m = mutate(&mut rng, if i % 2 == 0 { DESCRIBE } else { DESCRIBED });
        if let Some(f) = parse(&m) {
            assert!(f.method.len() <= max::METHOD && f.uri.len() <= max::URI);
            assert!(f.user_agent.len() <= max::USER_AGENT && f.server.len() <= max::SERVER);
            assert!(f.content_type.len() <= max::CONTENT_TYPE);
        }
    }
    for _ in 0..200 {
        let mut c = Conv::tcp(554);
        c.send_in(false, &mutate(&mut rng, DESCRIBE), 1 + rng.below(100));
        c.send_in(true, &mutate(&mut rng, DESCRIBED), 1 + rng.below(100));
        for r in run("rtsp", &c.packets).iter().flatten() {
            assert!(r.values().all(|v| v.len() <= 255));
        }
    }
}
