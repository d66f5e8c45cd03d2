//! Arbitrary bytes as one HTTP message (`plugins::http::parse`, the head as the http plugin
//! reads it) and, cut at the first byte's offset, as a request and a response: every value
//! within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::http::{max, parse, Fields};

fn check(f: &Fields) {
    assert!(f.method.len() <= max::METHOD && f.url.len() <= max::URL);
    assert!(f.host.len() <= max::HOST && f.user_agent.len() <= max::USER_AGENT);
    assert!(f.referer.len() <= max::REFERER && f.server.len() <= max::SERVER);
    assert!(f.content_type.len() <= max::CONTENT_TYPE);
    let names = &f.cookie_names;
    assert!(names.len() <= max::COOKIE_NAMES && !names.ends_with(';') && !names.contains(";;"));
}

fuzz_target!(|input: &[u8]| {
    if let Some(f) = parse(input) {
        check(&f);
    }
    let cut = input.first().map_or(0, |&b| usize::from(b)).min(input.len());
    let (a, b) = input.split_at(cut);
    for part in [a, b] {
        let mut msg = b"GET / HTTP/1.1\r\n".to_vec();
        msg.extend_from_slice(part);
        check(&parse(&msg).expect("a request line"));
        let mut msg = b"HTTP/1.1 200 OK\r\n".to_vec();
        msg.extend_from_slice(part);
        check(&parse(&msg).expect("a status line"));
    }
});
