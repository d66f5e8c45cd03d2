//! Arbitrary bytes as the datagrams of an SSDP flow (`plugins::ssdp::parse`), cut at every
//! NUL octet, and as a LOCATION URL (`plugins::ssdp::url_port`): every list within its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::ssdp::{max, parse, url_port};

fuzz_target!(|input: &[u8]| {
    if let Some(f) = parse(input.split(|&b| b == 0)) {
        for (list, bound) in [
            (&f.nt, max::NT),
            (&f.st, max::ST),
            (&f.server, max::SERVER),
            (&f.user_agent, max::USER_AGENT),
        ] {
            assert!(list.as_str().len() <= bound);
        }
    }
    let _ = url_port(input);
});
