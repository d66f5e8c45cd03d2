//! Arbitrary bytes as one SIP message (`plugins::sip::parse`), alone and after a request and
//! a status line, and as a From value (`plugins::sip::uri`): every value within its bound,
//! URIs within their value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::sip::{max, parse, uri, Fields, RESPONSE};

fn check(f: &Fields) {
    assert!(f.cseq.len() <= max::CSEQ && f.from.len() <= max::FROM && f.to.len() <= max::TO);
    assert!(f.call_id.len() <= max::CALL_ID && f.user_agent.len() <= max::USER_AGENT);
    assert!(f.request_uri.len() <= max::REQUEST_URI && f.via.len() <= max::VIA);
    assert!(f.msg_type <= 10 || f.msg_type == RESPONSE);
}

fuzz_target!(|input: &[u8]| {
    if let Some(f) = parse(input) {
        check(&f);
    }
    for line in [&b"INVITE sip:a@b SIP/2.0\r\n"[..], b"SIP/2.0 180 Ringing\r\n"] {
        let msg = [line, input].concat();
        check(&parse(&msg).expect("a start line"));
    }
    let u = uri(input);
    assert!(u.len() <= input.len());
});
