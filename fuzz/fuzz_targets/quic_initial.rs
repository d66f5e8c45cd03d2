//! Arbitrary bytes through the QUIC parsers (`qof::plugins::quic`): the first byte chooses
//! whether the rest is a UDP datagram (coalesced long headers walked, each Initial's keys
//! derived from its Destination Connection ID and the packet opened) or the plaintext of an
//! Initial (CRYPTO frames reassembled, the ClientHello read). Nothing may panic; nothing is
//! read outside the input or kept beyond the CRYPTO stream's bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::quic::frames::{CryptoFrames, CryptoStream, CRYPTO_CAP};
use qof::plugins::quic::initial::ClientKeys;
use qof::plugins::quic::packet::{protection, Coalesced, Kind};
use qof::plugins::tls::hello::{message, ClientHello};

fn frames(plain: &[u8]) {
    let mut stream = CryptoStream::default();
    for f in CryptoFrames::new(plain) {
        assert!(f.data.len() <= plain.len());
        stream.add(f);
    }
    let whole = stream.contiguous();
    assert!(whole.len() <= CRYPTO_CAP);
    if let Some((_, body)) = message(whole) {
        if let Some(ch) = ClientHello::parse(body) {
            let _ = (ch.server_name(), ch.quic_user_agent(), ch.extensions().count());
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        frames(rest);
        return;
    }
    let mut buf = Vec::new();
    let mut walked = 0;
    for h in Coalesced::new(rest) {
        walked += h.packet.len();
        assert!(walked <= rest.len() && h.pn_offset <= h.packet.len().max(h.pn_offset));
        if h.kind != Kind::Initial || h.truncated {
            continue;
        }
        let Some(keys) = protection(h.version).and_then(|p| ClientKeys::new(p, h.dcid)) else {
            continue;
        };
        if let Some(plain) = keys.open(h.packet, h.pn_offset, &mut buf) {
            frames(plain);
        }
    }
});
