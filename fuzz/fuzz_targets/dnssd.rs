//! Arbitrary bytes as mDNS messages through the dnssd plugin's gathering: the input split
//! at 0xfe 0xfe into several messages of one flow. Nothing may panic; the texts stay within
//! their bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::dnssd::{State, MAX_TEXT};

fuzz_target!(|data: &[u8]| {
    let mut s = State::default();
    for msg in data.split(|&b| b == 0xfe) {
        s.read(msg, msg.len() % 2 == 0);
    }
    let (q, r) = s.texts();
    assert!(q.len() <= MAX_TEXT && r.len() <= MAX_TEXT);
});
