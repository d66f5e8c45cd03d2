//! Real payloads for the TLS and QUIC plugins' unit tests, read from the corpus captures
//! (`tests/data/corpus`) with qof's own reader and decoder.

use crate::capture;
use crate::decode::{decode_with_details, DecodeConfig, Details, Packet};
use std::path::Path;

/// The transport payloads (as captured) of the packets of `file` with this IP protocol.
pub fn payloads(file: &str, proto: u8) -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/corpus")
        .join(file);
    let mut src = capture::open(path.to_str().unwrap()).unwrap();
    let cfg = DecodeConfig {
        ipv4: true,
        ipv6: true,
        ..DecodeConfig::default()
    };
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().unwrap() {
        let (mut pkt, mut d) = (Packet::default(), Details::default());
        if decode_with_details(f.linktype, f.data, &cfg, &mut pkt, &mut d).is_err()
            || pkt.key.proto != proto
            || d.payload_off == 0
        {
            continue;
        }
        let p = f.data.get(d.payload_off as usize..).unwrap_or(&[]);
        let n = p.len().min(pkt.payload_len as usize);
        if n > 0 {
            out.push(p[..n].to_vec());
        }
    }
    out
}

/// A small deterministic generator (xorshift64*) for mutation tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A copy of `b` with a few random changes: octets flipped or set to extremes, a cut, a
    /// run duplicated or removed.
    pub fn mutate(&mut self, b: &[u8]) -> Vec<u8> {
        let mut v = b.to_vec();
        for _ in 0..=self.below(4) {
            if v.is_empty() {
                break;
            }
            let i = self.below(v.len());
            match self.below(6) {
                0 => v[i] ^= 1 << self.below(8),
                1 => v[i] = 0xff,
                2 => v[i] = 0,
                3 => v.truncate(i),
                4 => {
                    let end = (i + self.below(16)).min(v.len());
                    let run = v[i..end].to_vec();
                    v.splice(i..i, run);
                }
                _ => {
                    let end = (i + self.below(16)).min(v.len());
                    v.drain(i..end);
                }
            }
        }
        v
    }
}
