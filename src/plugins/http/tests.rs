use super::*;
use crate::plugins::text_harness::*;

const FIREFOX: &[u8] = b"GET /search?q=flow+meter&ie=utf-8 HTTP/1.1\r\n\
Host: www.example.org\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml\r\n\
Referer: https://www.example.org/\r\n\
Cookie: a=1; b=2\r\n\
Connection: keep-alive\r\n\r\n";

const NGINX: &[u8] = b"HTTP/1.1 302 Found\r\n\
Server: nginx/1.25.3\r\n\
Date: Tue, 01 Oct 2024 10:00:00 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Set-Cookie: SID=31d4d96e407aad42; Path=/; Secure; HttpOnly\r\n\
set-cookie:lang=en-US; Path=/\r\n\
Set-Cookie: SID=again\r\n\
Set-Cookie: no equals sign\r\n\
Location: /next\r\n\
Content-Length: 0\r\n\r\n";

#[test]
fn a_request_and_its_response_fill_every_element() {
    let mut c = Conv::tcp(80);
    c.exchange(FIREFOX, NGINX);
    let r = run("http", &c.packets);
    let want = [
        ("httpMethod", "GET"),
        ("httpUrl", "/search?q=flow+meter&ie=utf-8"),
        ("httpHost", "www.example.org"),
        (
            "httpUserAgent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("httpReferer", "https://www.example.org/"),
        ("httpStatusCode", "302"),
        ("httpContentType", "text/html; charset=utf-8"),
        ("httpServer", "nginx/1.25.3"),
        ("httpCookieNames", "SID;lang"),
    ];
    assert_eq!(r.len(), 1);
    for (name, value) in want {
        assert_eq!(get(&r[0], name), value, "{name}");
    }
}

#[test]
fn cookies_without_a_name_or_an_equals_sign_are_not_named() {
    let f = parse(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a;=b\r\nSet-Cookie: =x\r\nSet-Cookie:  c = d ; e=f\r\n\
Set-Cookie: \x00\x01 g=h\r\n\r\n",
    )
    .unwrap();
    assert_eq!(f.cookie_names, "c;\u{fffd}\u{fffd} g");
}

#[test]
fn field_names_ignore_case_and_the_space_after_the_colon_is_optional() {
    let f = parse(b"GET / HTTP/1.0\r\nhOST:a.b\r\nUSER-AGENT:\t x \r\nreferer :r\r\n\r\n").unwrap();
    assert_eq!(
        (f.host.as_str(), f.user_agent.as_str(), f.referer.as_str()),
        ("a.b", "x", "r")
    );
    let f = parse(b"HTTP/1.0 200 OK\ncontent-type:a/b\nSERVER:s\n\n").unwrap();
    assert_eq!(
        (f.status, f.content_type.as_str(), f.server.as_str()),
        (200, "a/b", "s")
    );
}

#[test]
fn values_are_cut_to_their_bounds() {
    let long = "é".repeat(400);
    let msg = format!(
        "GET /{long} HTTP/1.1\r\nHost: {long}\r\nUser-Agent: {long}\r\nReferer: {long}\r\n\r\n"
    );
    let f = parse(msg.as_bytes()).unwrap();
    for (v, max) in [
        (&f.url, max::URL),
        (&f.host, max::HOST),
        (&f.user_agent, max::USER_AGENT),
        (&f.referer, max::REFERER),
    ] {
        assert!(v.len() <= max && v.len() + 2 > max, "{} of {max}", v.len());
        assert!(v.trim_start_matches('/').chars().all(|c| c == 'é'));
    }
    let mut cookies = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..100 {
        cookies.push_str(&format!("Set-Cookie: cookie{i}=v\r\n"));
    }
    cookies.push_str(&format!("Server: {long}\r\nContent-Type: {long}\r\n\r\n"));
    let f = parse(cookies.as_bytes()).unwrap();
    assert!(f.cookie_names.len() <= max::COOKIE_NAMES);
    assert!(f.cookie_names.starts_with("cookie0;cookie1;"));
    assert!(f.cookie_names.split(';').all(|n| n.starts_with("cookie")));
    assert!(f.server.len() <= max::SERVER && f.content_type.len() <= max::CONTENT_TYPE);
    let method = parse(format!("{} / HTTP/1.1\r\n\r\n", "M".repeat(30)).as_bytes()).unwrap();
    assert_eq!(method.method.len(), max::METHOD);
}

/// The worst record (every value past its bound) fits a 1,420-octet UDP message with the
/// default template and 300 octets to spare.
#[test]
fn a_full_record_fits_an_ipfix_message_over_udp() {
    let long = "x".repeat(1000);
    let mut c = Conv::tcp(80);
    let q = format!(
        "{} /{long} HTTP/1.1\r\nHost: {long}\r\nUser-Agent: {long}\r\nReferer: {long}\r\n\r\n",
        "M".repeat(30)
    );
    let mut a = format!("HTTP/1.1 200 OK\r\nServer: {long}\r\nContent-Type: {long}\r\n");
    for i in 0..40 {
        a.push_str(&format!("Set-Cookie: c{i}=v\r\n"));
    }
    a.push_str("\r\n");
    c.exchange(q.as_bytes(), a.as_bytes());
    let recs = records(&["http"], &c.packets);
    let v = values("http", &recs[0]).unwrap();
    assert_eq!(v["httpUrl"].len(), max::URL);
    assert!(v["httpCookieNames"].len() > max::COOKIE_NAMES - 4);
    let len = message_len(&["http"], &recs[0]);
    assert!(len + 300 <= UDP_MESSAGE, "{len} octets");
}

#[test]
fn junk_and_short_payloads_give_nothing_or_what_they_hold() {
    assert_eq!(parse(b""), None);
    assert_eq!(parse(b"\x00\x00\x00\x00"), None);
    assert_eq!(
        parse(b"HTTP/1.1 200 OK"),
        Some(Fields {
            status: 200,
            ..Fields::default()
        })
    );
    // No CRLF at all: the start line is read, no field.
    let f = parse(b"GET /no-line-end HTTP/1.1 Host: x").unwrap();
    assert_eq!((f.url.as_str(), f.host.as_str()), ("/no-line-end", ""));
    // A 64 KiB field line before Host.
    let mut m = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    m.extend(std::iter::repeat_n(b'b', 65_536));
    m.extend_from_slice(b"\r\nHost: h\r\n\r\n");
    let f = parse(&m).unwrap();
    assert_eq!(f.host, "", "Host comes after the 4096 octets read");
    // Zero-length segments in a flow change nothing.
    let mut c = Conv::tcp(80);
    c.send(false, b"")
        .send(false, FIREFOX)
        .send(true, b"")
        .send(true, NGINX);
    let r = run("http", &c.packets);
    assert_eq!(get(&r[0], "httpStatusCode"), "302");
    // A UDP flow is not HTTP's.
    let mut u = Conv::udp(5000, 80);
    u.send(false, FIREFOX);
    assert_eq!(run("http", &u.packets), [None]);
}

/// Thousands of damaged copies of real messages through the parser and through a meter:
/// no panic, every value within its bound and valid UTF-8 (checked when read back).
#[test]
fn damaged_messages_are_read_safely() {
    let mut rng = Rng(0x5eed_0001);
    let samples: &[&[u8]] = &[FIREFOX, NGINX, b"HTTP/1.1 100 Continue\r\n\r\n"];
    for i in 0..6_000 {
        let m = mutate(&mut rng, samples[i % samples.len()]);
        if let Some(f) = parse(&m) {
            assert!(f.method.len() <= max::METHOD && f.url.len() <= max::URL);
            assert!(f.host.len() <= max::HOST && f.user_agent.len() <= max::USER_AGENT);
            assert!(f.referer.len() <= max::REFERER && f.server.len() <= max::SERVER);
            assert!(f.content_type.len() <= max::CONTENT_TYPE);
            assert!(f.cookie_names.len() <= max::COOKIE_NAMES);
        }
    }
    for _ in 0..300 {
        let mut c = Conv::tcp(80);
        for _ in 0..rng.below(4) + 1 {
            let q = mutate(&mut rng, FIREFOX);
            let a = mutate(&mut rng, NGINX);
            c.send_in(false, &q, 1 + rng.below(200));
            c.send_in(true, &a, 1 + rng.below(1500));
        }
        for r in run("http", &c.packets).iter().flatten() {
            assert!(r.values().all(|v| v.len() <= 255));
        }
    }
}
