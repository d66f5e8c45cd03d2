//! Arbitrary bytes through the MQTT parsers (`qof::plugins::mqtt::wire`): as one control
//! packet, and as a TCP direction's octets cut into segments (the first byte of each
//! 3-byte header gives the cut, the next two a sequence jump) through the framer and the
//! plugin's session. Nothing may panic; what a parser returns lies inside its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::framer::{Framer, Framing, Head, Segment};
use qof::plugins::mqtt::wire::{self, ConnAck, Connect, Mqtt, Packet};
use qof::plugins::mqtt::Session;

fuzz_target!(|input: &[u8]| {
    if let Ok(p) = Packet::new_checked(input) {
        assert!(p.body().len() <= input.len());
        let _ = (
            Connect::parse(p.body()),
            ConnAck::parse(p.body()),
            p.flags_valid(),
        );
        if let Ok(t) = wire::publish_topic(p.body()) {
            assert!(t.len() <= p.body().len());
        }
    }
    let _ = wire::starts_with_connect(input);
    for strict in [false, true] {
        if let Head::Msg(len) = Mqtt::head(input, strict) {
            assert!(len >= 2);
        }
    }
    let mut framer = Framer::default();
    let mut session = Session::default();
    let (mut rest, mut seq, mut stream) = (input, 1000u32, Vec::new());
    while let Some((head, tail)) = rest.split_first_chunk::<3>() {
        let n = usize::from(head[0]).min(tail.len());
        let (seg, next) = tail.split_at(n);
        rest = next;
        if stream.len() < 256 && u16::from_le_bytes([head[1], head[2]]) == 0 {
            stream.extend_from_slice(seg);
        }
        let s = Segment {
            seq,
            syn: false,
            payload: seg,
            wire_len: n as u32 + u32::from(head[1] & 1),
            stream: &stream,
        };
        framer.push::<Mqtt>(256, &s, &mut |m| {
            assert!(m.bytes.len() <= m.len);
            session.packet(m.bytes, 1000);
        });
        seq = seq
            .wrapping_add(n as u32)
            .wrapping_add(u32::from(u16::from_le_bytes([head[1], head[2]])));
    }
    assert!(session.topics.len() < qof::plugins::mqtt::MAX_TOPICS_OCTETS);
});
