//! The message engine through the http plugin on a real meter: heads over segments, out of
//! order and retransmitted; records split per exchange with the stream offsets of each
//! continuation; streams let go once read.

use crate::meter::end_reason;
use crate::plugins::text_harness::*;

fn req(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: ua/1.0\r\nAccept: */*\r\n\r\n")
        .into_bytes()
}

fn resp(status: u16, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} Whatever\r\nServer: srv/2\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn a_head_over_several_segments_is_read_whole() {
    let mut c = Conv::tcp(80);
    c.send_in(false, &req("/a/b?c=d"), 7);
    c.send_in(true, &resp(200, "0123456789"), 10);
    let r = run("http", &c.packets);
    assert_eq!(r.len(), 1);
    assert_eq!(get(&r[0], "httpUrl"), "/a/b?c=d");
    assert_eq!(get(&r[0], "httpHost"), "example.com");
    assert_eq!(get(&r[0], "httpUserAgent"), "ua/1.0");
    assert_eq!(get(&r[0], "httpMethod"), "GET");
    assert_eq!(get(&r[0], "httpStatusCode"), "200");
    assert_eq!(get(&r[0], "httpServer"), "srv/2");
    assert_eq!(get(&r[0], "httpContentType"), "text/plain");
}

#[test]
fn out_of_order_and_retransmitted_segments_are_read_in_order_and_start_nothing() {
    let mut c = Conv::tcp(80);
    let q = req("/ooo");
    let s0 = c.next[0];
    let (a, rest) = q.split_at(10);
    let (b, d) = rest.split_at(20);
    c.raw(false, s0 + 10, PSH_ACK, b);
    c.raw(false, s0, PSH_ACK, a);
    c.raw(false, s0 + 30, PSH_ACK, d);
    c.next[0] = s0 + q.len() as u32;
    c.send(true, &resp(200, "ok"));
    // The request's start again, whole, after the response: a retransmission.
    c.raw(false, s0, PSH_ACK, &q);
    let recs = records(&["http"], &c.packets);
    assert_eq!(recs.len(), 1);
    let v = values("http", &recs[0]);
    assert_eq!(get(&v, "httpUrl"), "/ooo");
    assert_eq!(get(&v, "httpHost"), "example.com");
    assert_eq!(get(&v, "httpStatusCode"), "200");
}

#[test]
fn each_request_of_a_keep_alive_connection_starts_a_record_under_the_same_flow_id() {
    let mut c = Conv::tcp(80);
    for (path, status) in [("/1", 200), ("/2", 404), ("/3", 301)] {
        // Heads split over segments in every record: each continuation's stream starts at
        // the packet that split it.
        c.send_in(false, &req(path), 25);
        c.send_in(true, &resp(status, &"x".repeat(3000)), 1448);
    }
    let recs = records(&["http"], &c.packets);
    assert_eq!(recs.len(), 3);
    let got: Vec<(String, String, String)> = recs
        .iter()
        .map(|r| {
            let v = values("http", r);
            let g = |n| get(&v, n).to_string();
            (g("httpUrl"), g("httpStatusCode"), g("httpServer"))
        })
        .collect();
    assert_eq!(
        got,
        [("/1", "200"), ("/2", "404"), ("/3", "301")].map(|(u, s)| (
            u.into(),
            s.into(),
            "srv/2".into()
        ))
    );
    assert!(recs.iter().all(|r| r.flow_id == recs[0].flow_id));
    assert_eq!(recs[0].end_reason, end_reason::END_OF_FLOW);
    // Every packet in exactly one record: the handshake and the first exchange's.
    let total: u64 = recs.iter().map(|r| r.fwd.packets + r.rev.packets).sum();
    assert_eq!(total, c.packets.len() as u64);
}

#[test]
fn an_interim_response_stays_with_its_request() {
    let mut c = Conv::tcp(8080);
    c.send(
        false,
        b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    c.send(true, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(false, b"data");
    c.send(true, &resp(201, ""));
    let r = run("http", &c.packets);
    assert_eq!(r.len(), 1);
    assert_eq!(get(&r[0], "httpMethod"), "POST");
    assert_eq!(get(&r[0], "httpStatusCode"), "201");
    assert_eq!(get(&r[0], "httpContentType"), "text/plain");
}

#[test]
fn a_capture_started_between_request_and_response_still_pairs_the_next_ones() {
    let mut c = Conv::tcp_joined(80);
    c.send(true, &resp(200, "first"));
    c.exchange(&req("/2"), &resp(404, ""));
    c.exchange(&req("/3"), &resp(200, ""));
    let r = run("http", &c.packets);
    let got: Vec<(&str, &str)> = r
        .iter()
        .map(|v| (get(v, "httpUrl"), get(v, "httpStatusCode")))
        .collect();
    assert_eq!(got, [("", "200"), ("/2", "404"), ("/3", "200")]);
}

#[test]
fn pipelined_requests_split_as_ipfixprobe_splits_them() {
    // Two requests before the first response: the second response has no request left in
    // its record (ipfixprobe gives the same three records).
    let mut c = Conv::tcp(80);
    c.send(false, &req("/1")).send(false, &req("/2"));
    c.send(true, &resp(200, "")).send(true, &resp(404, ""));
    let r = run("http", &c.packets);
    let got: Vec<(&str, &str)> = r
        .iter()
        .map(|v| (get(v, "httpUrl"), get(v, "httpStatusCode")))
        .collect();
    assert_eq!(got, [("/1", "0"), ("/2", "200"), ("", "404")]);
}

#[test]
fn a_retransmitted_response_after_a_split_starts_nothing() {
    let mut c = Conv::tcp(80);
    c.send(false, &req("/1"));
    let s1 = c.next[1];
    let r1 = resp(200, "one");
    c.send(true, &r1);
    c.send(false, &req("/2"));
    c.raw(true, s1, PSH_ACK, &r1);
    c.send(true, &resp(500, "two"));
    let r = run("http", &c.packets);
    let got: Vec<(&str, &str)> = r
        .iter()
        .map(|v| (get(v, "httpUrl"), get(v, "httpStatusCode")))
        .collect();
    assert_eq!(got, [("/1", "200"), ("/2", "500")]);
}

#[test]
fn streams_are_let_go_once_both_heads_are_read() {
    let mut c = Conv::tcp(80);
    c.send_in(false, &req("/big"), 30);
    let waiting = c.packets.len() - 1;
    c.send_in(true, &resp(200, &"y".repeat(20_000)), 1448);
    let (recs, held) = traced(&["http"], &c.packets);
    let bytes: Vec<usize> = held.iter().map(|h| h.1).collect();
    assert_eq!(recs.len(), 1);
    // (Stream buffers grow with the data: the request's head is held, at least.)
    assert!(
        bytes[waiting] >= bytes[0] + req("/big").len(),
        "the stream is kept for the response: {bytes:?}"
    );
    assert_eq!(*bytes.last().unwrap(), bytes[0], "let go after the heads");
    assert_eq!(
        held.last().unwrap().0,
        1,
        "the state stays, for the next request"
    );
}

#[test]
fn other_protocols_are_let_go_at_their_first_octets() {
    let mut c = Conv::tcp(443);
    c.send(
        false,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http",
    );
    c.send(
        true,
        b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76 not http either",
    );
    c.send(false, &[0x17; 1000]);
    let (recs, held) = traced(&["http"], &c.packets);
    assert_eq!(values("http", &recs[0]), None, "nothing to export");
    assert!(
        held.iter().all(|h| h.1 == held[0].1),
        "let go at once: {held:?}"
    );
    // (No state for the handshake: the plugin attaches at the first payload, and lets it go
    // there.)
    assert!(
        held.iter().all(|h| h.0 == 0),
        "dropped at the client's first octets: {held:?}"
    );
    // Only the client spoke, and not HTTP: let go too.
    let mut c = Conv::tcp(5000);
    c.send(false, b"\x00\x01binary").send(false, &[7; 500]);
    let (_, held) = traced(&["http"], &c.packets);
    assert!(
        held.iter().all(|h| h.1 == held[0].1),
        "let go at once: {held:?}"
    );
    // Joined after the SYN: its first octets seen may be any; it is kept.
    let mut c = Conv::tcp_joined(5000);
    c.send(false, b"\x00\x01binary").send(true, b"\x00\x02more");
    c.exchange(&req("/later"), &resp(200, ""));
    let r = run("http", &c.packets);
    assert_eq!(get(&r[0], "httpUrl"), "/later");
}

#[test]
fn a_head_longer_than_the_bound_is_read_up_to_it() {
    let mut c = Conv::tcp(80);
    let mut q = b"GET /c HTTP/1.1\r\nUser-Agent: before\r\nCookie: ".to_vec();
    q.extend(std::iter::repeat_n(b'k', 10_000));
    q.extend_from_slice(b"\r\nHost: after.example\r\n\r\n");
    c.send_in(false, &q, 1448);
    c.send(true, &resp(200, ""));
    let (recs, held) = traced(&["http"], &c.packets);
    let v = values("http", &recs[0]);
    assert_eq!(get(&v, "httpUserAgent"), "before");
    assert_eq!(get(&v, "httpHost"), "", "past the first 4096 octets");
    assert_eq!(get(&v, "httpStatusCode"), "200");
    assert_eq!(held.last().unwrap().1, held[0].1, "let go");
}

#[test]
fn a_first_segment_too_short_to_tell_is_read_with_the_next() {
    let mut c = Conv::tcp(80);
    c.send(false, b"G")
        .send(false, b"ET /tiny HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = run("http", &c.packets);
    assert_eq!(get(&r[0], "httpUrl"), "/tiny");
    assert_eq!(get(&r[0], "httpHost"), "t");
}

#[test]
fn a_message_past_the_stream_is_read_from_its_packet() {
    // Joined late: the client's first 5000 octets are the end of some upload, past the
    // stream's 4096; the request after them is read from its own segment.
    let mut c = Conv::tcp_joined(80);
    c.send_in(false, &[b'z'; 5000], 1000);
    c.exchange(&req("/late"), &resp(204, ""));
    let r = run("http", &c.packets);
    assert_eq!(r.len(), 1);
    assert_eq!(get(&r[0], "httpUrl"), "/late");
    assert_eq!(get(&r[0], "httpStatusCode"), "204");
}

/// What a flow costs a plugin before its first message (a TCP connection seen from its SYN
/// that is not the plugin's is dropped at its first octets; the values are boxed when found).
#[test]
fn a_flow_costs_under_a_hundred_octets_of_state() {
    use crate::plugins::text_plugin::State;
    assert!(std::mem::size_of::<State<crate::plugins::http::Fields>>() <= 96);
    assert!(std::mem::size_of::<State<crate::plugins::sip::Fields>>() <= 96);
}
