//! Arbitrary bytes as one read from the conntrack event socket (`--natevents`), and as the
//! answer to its probe. Nothing may panic; every event decoded is a translation whose
//! addresses are of one family.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::natevent::{ack_of, parse};
use qof::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let p = parse(data, Timestamp::ZERO, &mut out);
    assert!(out.len() <= p.messages);
    for e in &out {
        let v4 = e.src.is_ipv4();
        assert!([e.dst, e.post_src, e.post_dst].iter().all(|a| a.is_ipv4() == v4));
        assert!(
            (e.src, e.dst, e.src_port, e.dst_port)
                != (e.post_src, e.post_dst, e.post_src_port, e.post_dst_port)
        );
    }
    let _ = ack_of(data);
});
