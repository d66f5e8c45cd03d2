//! Arbitrary bytes as a frame: the first four choose the link type and decoder options, the rest
//! is the frame. Decoding must never panic, and decoding with the plugins' details must give
//! the same packet as decoding without them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::capture::linktype;
use qof::decode::{decode, decode_with_details, DecodeConfig, Details, Packet};

fuzz_target!(|input: &[u8]| {
    let Some((head, frame)) = input.split_first_chunk::<4>() else {
        return;
    };
    let selector = u32::from_le_bytes(*head);
    let Some(&lt) = linktype::ALL.get(selector as usize % linktype::ALL.len()) else {
        return;
    };
    let cfg = DecodeConfig {
        ipv4: selector & 0x100 == 0,
        ipv6: selector & 0x200 == 0,
        gre_decap: selector & 0x400 != 0,
        tcp_options: selector & 0x800 != 0,
        headers: selector & 0x1000 != 0,
    };
    let mut packet = Packet::default();
    let lean = decode(lt, frame, &cfg, &mut packet);
    let lean_packet = format!("{packet:?}");
    // The same Packet is reused across frames in the meter: decoding twice must not panic either.
    let mut details = Details::default();
    let full = decode_with_details(lt, frame, &cfg, &mut packet, &mut details);
    assert_eq!(lean, full);
    if full.is_ok() {
        assert_eq!(lean_packet, format!("{packet:?}"));
        // (The payload's offset may lie past the frame's end: a snap length cuts payloads,
        // and headers too. What follows it is read with `get`.)
        let _ = frame.get(details.payload_off as usize..);
    }
});
