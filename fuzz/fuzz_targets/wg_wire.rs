//! Arbitrary bytes through the WireGuard parser (`qof::plugins::wg::wire`): the first two
//! bytes give the datagram's length on the wire, the rest is what was captured of it; each
//! message read goes into the plugin's state. Nothing may panic; a message is read only from
//! octets that were captured.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::wg::wire::{self, Message};
use qof::plugins::wg::State;

fuzz_target!(|input: &[u8]| {
    let Some((len, b)) = input.split_first_chunk::<2>() else {
        return;
    };
    let mut s = State::default();
    for wire_len in [usize::from(u16::from_le_bytes(*len)), b.len()] {
        if let Ok(m) = Message::parse(b, wire_len) {
            assert!(b.len() >= 8 && wire_len >= wire::MIN_DATA_LEN);
            s.message(m, len[0] & 1 == 1);
        }
    }
    let _ = wire::looks_like_dns(b);
});
