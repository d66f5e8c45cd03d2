//! `flowhash`: a hash of the flow key that is the same on every run and every machine, for
//! matching records of one flow across meters, files and restarts: flowKeyHash (QoF's PEN
//! 35566, id 1060, unsigned64; 1053 is QoF's lastSynTcpFlags).
//!
//! Why not ipfixprobe's element: ipfixprobe sends its hash as flowId (IANA 148), which IANA
//! defines as "an identifier of a Flow that is unique within an Observation Domain"; a hash
//! repeats for every flow of the same key (and may collide), and qof's flowId is unique, so the
//! hash is an element of its own.
//!
//! Why the same for both directions: ipfixprobe hashes the key of the packet that created the
//! flow, so two meters (or one meter before and after an idle timeout) that first see different
//! ends of a connection disagree, and so do the two uniflow records qof writes for a biflow
//! when the template has no reverse elements. Here the endpoints are put in a fixed order
//! first, so the hash names the connection, whoever spoke first.
//!
//! What is hashed: XXH64 (seed 0) of the octets
//! `ip_version, protocol, vlan (2), A address (4 or 16), A port (2), B address, B port`, all
//! big-endian, where A is the lower of the two (address, port) endpoints in that octet order
//! and B the other. For ICMP the "ports" are qof's key's: 0 and type·256+code. (Not the
//! meter's own table hash, which is seeded at random per run.)

use super::{Built, Needs, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::FlowKey;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Flowhash,
    about: "a stable hash of the flow key, the same for both directions",
    options: &[],
    build,
};

const HASH: ExtKey = ExtKey {
    pen: pen::QOF,
    id: 1060,
};

fn build(_: &super::Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Flowhash)), Needs::default()))
}

struct Flowhash;

impl FlowPlugin for Flowhash {
    /// Nothing: the key is the flow's, read at export.
    type State = ();

    fn number(&self) -> u8 {
        PluginKind::Flowhash.number()
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<()> {
        Some(())
    }

    fn packet(&mut self, _: &mut (), _: &PacketView<'_>) -> Verdict {
        Verdict::Done
    }

    fn export(&mut self, _: (), flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        out.unsigned(HASH, key_hash(&flow.key));
        true
    }
}

/// The hash of `key`, the same for `key.reversed()`.
pub fn key_hash(key: &FlowKey) -> u64 {
    let n = if key.is_ipv4() { 4 } else { 16 };
    let a = (&key.src[..n], key.src_port);
    let b = (&key.dst[..n], key.dst_port);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut buf = [0u8; 40];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        buf[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(&[key.ip_version, key.proto]);
    put(&key.vlan.to_be_bytes());
    for (addr, port) in [lo, hi] {
        put(addr);
        put(&port.to_be_bytes());
    }
    xxh64(&buf[..len], 0)
}

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge(acc: u64, v: u64) -> u64 {
    (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

fn le64(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    u64::from_le_bytes(x)
}

fn le32(b: &[u8]) -> u64 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[..4]);
    u32::from_le_bytes(x).into()
}

/// XXH64 (Yann Collet's xxHash, 64-bit), as the reference implementation computes it.
pub fn xxh64(input: &[u8], seed: u64) -> u64 {
    let mut rest = input;
    let mut h = if input.len() >= 32 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 32 {
            for (i, acc) in v.iter_mut().enumerate() {
                *acc = round(*acc, le64(&rest[i * 8..]));
            }
            rest = &rest[32..];
        }
        let h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        v.iter().fold(h, |h, &x| merge(h, x))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(input.len() as u64);
    while rest.len() >= 8 {
        h = (h ^ round(0, le64(rest)))
            .rotate_left(27)
            .wrapping_mul(P1)
            .wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        h = (h ^ le32(rest).wrapping_mul(P1))
            .rotate_left(23)
            .wrapping_mul(P2)
            .wrapping_add(P3);
        rest = &rest[4..];
    }
    for &byte in rest {
        h = (h ^ u64::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ h >> 32
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build as b, hostile, keys_of, run, unsigned, Pkt};
    use super::*;

    #[test]
    fn keys_are_the_tables() {
        assert_eq!(vec![HASH], keys_of(PluginKind::Flowhash));
    }

    /// Known answers of the reference implementation (libxxhash 0.8.1's XXH64, seed 0), for
    /// every path through the function: empty, the 1-, 4- and 8-octet tails, the 32-octet
    /// stripes.
    #[test]
    fn xxh64_agrees_with_the_reference() {
        assert_eq!(xxh64(b"", 0), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"a", 0), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxh64(b"abc", 0), 0x44bc_2cf5_ad77_0999);
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition", 0),
            0xfbce_a83c_8a37_8bf1
        );
        let counting: Vec<u8> = (0..40).collect();
        assert_eq!(xxh64(&counting, 0), 0xf5da_40f1_b117_41e9);
    }

    #[test]
    fn same_hash_both_ways_and_across_keys_distinct() {
        let mut k = FlowKey {
            proto: 6,
            src_port: 40000,
            dst_port: 443,
            vlan: 7,
            ..FlowKey::default()
        };
        k.set_ipv4([10, 0, 0, 1], [10, 0, 0, 2]);
        assert_eq!(key_hash(&k), key_hash(&k.reversed()));
        // The octets hashed, spelled out: 4, 6, vlan 7, then the lower endpoint first.
        let want = xxh64(
            &[4, 6, 0, 7, 10, 0, 0, 1, 0x9c, 0x40, 10, 0, 0, 2, 1, 0xbb],
            0,
        );
        assert_eq!(key_hash(&k), want);
        let mut other = k;
        other.vlan = 8;
        assert_ne!(key_hash(&k), key_hash(&other));
        other = k;
        other.src_port = 40001;
        assert_ne!(key_hash(&k), key_hash(&other));
        let mut v6 = k;
        v6.set_ipv6([0xfe; 16], [0x20; 16]);
        assert_eq!(key_hash(&v6), key_hash(&v6.reversed()));
        assert_ne!(key_hash(&v6), key_hash(&k));
    }

    #[test]
    fn the_flows_key_is_hashed_at_export() {
        let syn = b::ipv4(6, 64, 0, 0, &[], &b::tcp(40000, 80, 0x02, 10, &[], &[]));
        let p = Pkt::ip(&syn, false);
        let want = key_hash(&p.pkt.key);
        let ext = run(&mut Flowhash, &[p]).unwrap();
        assert_eq!(unsigned(&ext, HASH), want);
    }

    #[test]
    fn hostile_input_neither_panics_nor_leaks() {
        let (host, _) = build(&Default::default()).unwrap();
        hostile(host, 5_000);
    }
}
