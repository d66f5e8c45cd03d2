//! Arbitrary bytes as a frame: the first four choose the link type and decoder options, the rest
//! is the frame. Decoding must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::capture::linktype;
use qof::decode::{decode, DecodeConfig, Packet};

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
    };
    let mut packet = Packet::default();
    let _ = decode(lt, frame, &cfg, &mut packet);
    // The same Packet is reused across frames in the meter: decoding twice must not panic either.
    let _ = decode(lt, frame, &cfg, &mut packet);
});
