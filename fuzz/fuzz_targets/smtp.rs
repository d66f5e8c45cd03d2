//! Arbitrary bytes as an SMTP session (`plugins::smtp::parse`): cut at the first byte's
//! offset into the client's and the server's octets, each read line by line in turn. Strings
//! within their bound, counts no more than the lines read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::smtp::{address, parse, MAX_STRING};

fuzz_target!(|input: &[u8]| {
    let cut = input.first().map_or(0, |&b| usize::from(b)).min(input.len());
    let (client, server) = input.split_at(cut);
    let s = parse(client, server);
    for v in [&s.domain, &s.sender, &s.recipient].into_iter().flatten() {
        assert!(v.len() <= MAX_STRING);
    }
    let lines = input.iter().filter(|&&b| b == b'\n').count() as u32;
    assert!(s.mails + s.rcpts <= lines && s.classes.iter().sum::<u32>() <= lines);
    for keyword in [&b"FROM"[..], b"TO"] {
        if let Some(a) = address(input, keyword) {
            assert!(a.len() <= MAX_STRING);
        }
    }
});
