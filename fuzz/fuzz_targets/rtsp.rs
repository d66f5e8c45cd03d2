//! Arbitrary bytes as one RTSP message (`plugins::rtsp::parse`), alone and after a request
//! and a status line: every value within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::rtsp::{max, parse, Fields};

fn check(f: &Fields) {
    assert!(f.method.len() <= max::METHOD && f.uri.len() <= max::URI);
    assert!(f.user_agent.len() <= max::USER_AGENT && f.server.len() <= max::SERVER);
    assert!(f.content_type.len() <= max::CONTENT_TYPE);
}

fuzz_target!(|input: &[u8]| {
    if let Some(f) = parse(input) {
        check(&f);
    }
    for line in [&b"DESCRIBE rtsp://a/b RTSP/1.0\r\n"[..], b"RTSP/1.0 200 OK\r\n"] {
        let msg = [line, input].concat();
        check(&parse(&msg).expect("a start line"));
    }
});
