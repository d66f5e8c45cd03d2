//! Arbitrary bytes through the OpenVPN parsers (`qof::plugins::ovpn::wire`) and the
//! detector's state machine: as one UDP datagram, and as a TCP direction's octets cut into
//! segments (the first byte of each 3-byte header gives the cut, the next two a sequence
//! jump) through the framer. Nothing may panic; the confidence stays within 0-100.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::framer::{Framer, Framing, Head, Segment};
use qof::plugins::ovpn::wire::{self, Packet, Tcp};
use qof::plugins::ovpn::Machine;

fuzz_target!(|input: &[u8]| {
    if let Some(p) = Packet::new_checked(input) {
        let _ = (p.opcode(), p.key_id());
        if let Some(t) = p.tls_handshake() {
            assert!(t == wire::CLIENT_HELLO || t == wire::SERVER_HELLO);
        }
    }
    for strict in [false, true] {
        if let Head::Msg(len) = Tcp::head(input, strict) {
            assert!(len >= 3);
        }
    }
    let mut m = Machine::default();
    m.packet(input, input.len(), false, wire::looks_like_rtp(input));
    let mut framer = Framer::default();
    let (mut rest, mut seq, mut rev) = (input, 7u32, false);
    while let Some((head, tail)) = rest.split_first_chunk::<3>() {
        let n = usize::from(head[0]).min(tail.len());
        let (seg, next) = tail.split_at(n);
        rest = next;
        let s = Segment {
            seq,
            syn: head[1] == 0xff,
            payload: seg,
            wire_len: n as u32,
            stream: &[],
        };
        framer.push::<Tcp>(0, &s, &mut |msg| {
            assert!(msg.bytes.len() <= msg.len);
            m.packet(msg.bytes.get(2..).unwrap_or(&[]), msg.len, rev, false);
        });
        rev = !rev;
        seq = seq
            .wrapping_add(n as u32)
            .wrapping_add(u32::from(u16::from_le_bytes([head[1], head[2]])));
    }
    for packets in [0, 6, 21, u64::MAX] {
        assert!(m.confidence(packets) <= 100);
    }
});
