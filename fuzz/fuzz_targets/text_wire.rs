//! Arbitrary bytes through the shared parser of the text plugins (plugins::text_wire): the
//! first byte chooses the syntax (HTTP, RTSP, SIP, SSDP) and a value bound, the rest is a
//! message. Start lines, heads, fields and text values must stay within the input and their
//! bounds; the same bytes cut into segments by the line assembler give lines of at most
//! MAX_LINE octets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::text_wire::{classify, head, text, LineAssembler, Next, Start, MAX_LINE};
use qof::plugins::{http, rtsp, sip, ssdp};

fuzz_target!(|input: &[u8]| {
    let Some((&sel, msg)) = input.split_first() else {
        return;
    };
    let syntax = [&http::SYNTAX, &rtsp::SYNTAX, &sip::SYNTAX, &ssdp::SYNTAX][usize::from(sel & 3)];
    let bound = usize::from(sel >> 2) * 8;
    let start = classify(msg, syntax);
    match head(msg, syntax) {
        Some(h) => {
            assert!(matches!(start, Start::Message(k) if k == h.kind));
            assert!(h.len <= msg.len() && h.line.len() <= msg.len());
            let _ = (h.method(), h.target(), h.status(), h.parts());
            for (name, value) in h.fields() {
                assert!(!name.is_empty() && name.len() + value.len() < msg.len());
                let t = text(value, bound);
                assert!(t.len() <= bound);
            }
        }
        None => assert!(!matches!(start, Start::Message(_))),
    }
    let mut lines = LineAssembler::default();
    let mut seq = u32::from(sel).wrapping_mul(0x9e37_79b9);
    for seg in msg.chunks(usize::from(sel % 61) + 1) {
        lines.push(seq, seg, |line, _| {
            assert!(line.len() <= MAX_LINE);
            if line.first() == Some(&b'S') {
                Next::Skip(u64::from(sel))
            } else {
                Next::Line
            }
        });
        // Every third segment again: a retransmission.
        if seg.len() % 3 == 0 {
            lines.push(seq, seg, |line, _| {
                assert!(line.len() <= MAX_LINE);
                Next::Line
            });
        }
        seq = seq.wrapping_add(seg.len() as u32);
    }
});
