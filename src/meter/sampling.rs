//! Sampling (`--sampler`, ipt-netflow's names): which packets or flows are metered at all.
//!
//! * `deterministic:N`: exactly every N-th packet (systematic count-based, RFC 5475 §5.1).
//! * `random:N`: one packet of every N, at a random place among them (random n-out-of-N with
//!   n = 1, RFC 5475 §5.2.1): each packet has probability 1/N, and exactly one of each N
//!   consecutive packets is taken.
//! * `hash:N[:KEY]`: whole flows, about one in N, chosen by a hash of the flow key (both
//!   directions alike; RFC 7014's hash-based flow selection): every packet of a chosen flow is
//!   metered and none of the others. The hash is Bob Jenkins' (RFC 5475 appendix A.2, "BOB")
//!   over the key with its endpoints in a fixed order, initialised with KEY (random per run
//!   when not given: meters given the same KEY choose the same flows).
//!
//! Packet samplers decide before a packet is decoded into the meter's queue (before its flow
//! is looked up); the flow sampler decides from the decoded key, and for a fragment that
//! carries no ports, from its datagram's key once the first fragment has shown it (the
//! meter's fragment table: see `meter`). Counts are never scaled: a record counts what was
//! metered.

use crate::key::FlowKey;
use std::hash::{BuildHasher, Hasher};

/// The largest N (a 32-bit count).
pub const MAX_N: u64 = u32::MAX as u64;
/// The largest N NetFlow v5's header can carry (14 bits).
pub const MAX_NETFLOW5_N: u32 = 0x3fff;

/// How packets or flows are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Deterministic,
    Random,
    Hash,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Deterministic => "deterministic",
            Method::Random => "random",
            Method::Hash => "hash",
        }
    }
}

/// A `--sampler` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplerSpec {
    pub method: Method,
    /// One in N.
    pub n: u32,
    /// The random sampler's generator seed, or the hash sampler's initialiser.
    pub key: u64,
}

impl SamplerSpec {
    /// `deterministic:N`, `random:N` or `hash:N`, the latter two with an optional `:KEY`
    /// (a number); N from 2.
    pub fn parse(text: &str) -> Result<SamplerSpec, String> {
        let usage =
            "expected deterministic:N, random:N or hash:N (N from 2), hash:N:KEY or random:N:KEY";
        let mut parts = text.split(':');
        let method = match parts.next().map(str::trim) {
            Some("deterministic") => Method::Deterministic,
            Some("random") => Method::Random,
            Some("hash") => Method::Hash,
            _ => return Err(format!("unknown sampler {text:?}: {usage}")),
        };
        let n = match parts.next().map(|n| n.trim().parse::<u64>()) {
            Some(Ok(n @ 2..=MAX_N)) => n as u32,
            Some(Ok(n)) => {
                return Err(format!(
                    "{text:?}: N = {n} is out of range (from 2 to {MAX_N}; leave --sampler out to meter every packet)"
                ))
            }
            _ => return Err(format!("{text:?}: N must be a whole number: {usage}")),
        };
        let key = match (method, parts.next()) {
            (_, None) => random_seed(),
            (Method::Deterministic, Some(_)) => {
                return Err(format!("{text:?}: deterministic sampling takes no key"))
            }
            (_, Some(k)) => k
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{text:?}: the key must be a number from 0 to 2^64-1"))?,
        };
        if parts.next().is_some() {
            return Err(format!("{text:?}: {usage}"));
        }
        Ok(SamplerSpec { method, n, key })
    }

    /// NetFlow's (SAMPLING_ALGORITHM, SAMPLING_INTERVAL): 1 deterministic, 2 random; hash
    /// sampling is told as random, as ipt-netflow tells it (NetFlow has no hash mode).
    pub fn netflow(&self) -> (u8, u32) {
        let mode = match self.method {
            Method::Deterministic => 1,
            Method::Random | Method::Hash => 2,
        };
        (mode, self.n)
    }

    /// The packet sampler of this spec, `None` for flow sampling.
    pub fn packet_sampler(&self) -> Option<PacketSampler> {
        (self.method != Method::Hash).then(|| PacketSampler::new(self))
    }

    /// The flow sampler of this spec, `None` for packet sampling.
    pub fn flow_sampler(&self) -> Option<FlowSampler> {
        (self.method == Method::Hash).then(|| FlowSampler::new(self.n, self.key as u32))
    }
}

/// A random 64-bit number (the standard library's per-process random hash keys).
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    h.finish()
}

/// `deterministic:N` or `random:N`: decides packet by packet, in input order.
#[derive(Clone, Debug)]
pub struct PacketSampler {
    n: u32,
    /// Packets seen in the current window of N.
    seen: u32,
    /// The place (0-based) of the packet taken in this window.
    pick: u32,
    random: bool,
    rng: u64,
}

impl PacketSampler {
    fn new(spec: &SamplerSpec) -> PacketSampler {
        let random = spec.method == Method::Random;
        let mut s = PacketSampler {
            n: spec.n,
            seen: 0,
            pick: spec.n - 1,
            random,
            rng: spec.key,
        };
        if random {
            s.pick = s.draw();
        }
        s
    }

    /// A place in a window of N, uniform (splitmix64, then Lemire's multiply-shift).
    fn draw(&mut self) -> u32 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((u128::from(z) * u128::from(self.n)) >> 64) as u32
    }

    /// Whether the next packet is metered.
    #[inline]
    pub fn keep(&mut self) -> bool {
        let take = self.seen == self.pick;
        self.seen += 1;
        if self.seen == self.n {
            self.seen = 0;
            if self.random {
                self.pick = self.draw();
            }
        }
        take
    }
}

/// `hash:N`: whether a flow is metered, from its key alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSampler {
    /// BOB's initial value.
    init: u32,
    /// A flow is chosen when its hash is at most this (the selected range's top).
    max: u32,
}

impl FlowSampler {
    pub fn new(n: u32, init: u32) -> FlowSampler {
        FlowSampler {
            init,
            max: ((1u64 << 32) / u64::from(n.max(1))).saturating_sub(1) as u32,
        }
    }

    /// The hash's initial value (hashInitialiserValue).
    pub fn init(&self) -> u32 {
        self.init
    }

    /// The top of the selected hash range (hashSelectedRangeMax; the range starts at 0 and
    /// the hash's output is 32 bits).
    pub fn selected_max(&self) -> u32 {
        self.max
    }

    /// True when the flow of `key` is metered; the same for both directions of it.
    #[inline]
    pub fn keep(&self, key: &FlowKey) -> bool {
        self.hash(key) <= self.max
    }

    /// BOB over the key, the endpoint (address, port) that sorts lower first: 16 + 16
    /// octets of addresses, 2 + 2 of ports, protocol, IP version, 2 of VLAN, 1 of ToS and 2
    /// of outer VLAN (44 octets).
    pub fn hash(&self, key: &FlowKey) -> u32 {
        let k = canonical(key);
        let mut b = [0u8; 44];
        b[..16].copy_from_slice(&k.src);
        b[16..32].copy_from_slice(&k.dst);
        b[32..34].copy_from_slice(&k.src_port.to_be_bytes());
        b[34..36].copy_from_slice(&k.dst_port.to_be_bytes());
        b[36] = k.proto;
        b[37] = k.ip_version;
        b[38..40].copy_from_slice(&k.vlan.to_be_bytes());
        b[40] = k.tos();
        b[41..43].copy_from_slice(&k.outer_vlan().to_be_bytes());
        bob(&b, self.init)
    }
}

/// The key of the direction whose (source address, source port) sorts lower: both directions
/// of a flow give the same. (ICMP keeps its type and code in place when reversed.)
fn canonical(key: &FlowKey) -> FlowKey {
    let r = key.reversed();
    if (key.src, key.src_port) <= (r.src, r.src_port) {
        *key
    } else {
        r
    }
}

/// Bob Jenkins' hash (lookup2), the "BOB" function of RFC 5475 appendix A.2.
pub fn bob(k: &[u8], init: u32) -> u32 {
    #[inline(always)]
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        macro_rules! step {
            ($x:ident, $y:ident, $z:ident, $s:expr, $left:expr) => {
                *$x = $x.wrapping_sub(*$y).wrapping_sub(*$z);
                *$x ^= if $left { *$z << $s } else { *$z >> $s };
            };
        }
        step!(a, b, c, 13, false);
        step!(b, c, a, 8, true);
        step!(c, a, b, 13, false);
        step!(a, b, c, 12, false);
        step!(b, c, a, 16, true);
        step!(c, a, b, 5, false);
        step!(a, b, c, 3, false);
        step!(b, c, a, 10, true);
        step!(c, a, b, 15, false);
    }
    let word = |s: &[u8]| {
        let mut w = [0u8; 4];
        w[..s.len()].copy_from_slice(s);
        u32::from_le_bytes(w)
    };
    let (mut a, mut b, mut c) = (0x9e37_79b9u32, 0x9e37_79b9u32, init);
    let mut rest = k;
    while rest.len() >= 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    c = c.wrapping_add(k.len() as u32);
    // The last 0-11 octets: a and b take theirs in order, c its from its second octet on
    // (its first octet holds the length).
    let n = rest.len();
    a = a.wrapping_add(word(&rest[..n.min(4)]));
    if n > 4 {
        b = b.wrapping_add(word(&rest[4..n.min(8)]));
    }
    if n > 8 {
        c = c.wrapping_add(word(&rest[8..n]) << 8);
    }
    mix(&mut a, &mut b, &mut c);
    c
}

/// What the sampler did, for the IPFIX options record and the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelectorReport {
    pub spec: SamplerSpec,
    /// Packets the selector looked at, and of them those it chose.
    pub observed: u64,
    pub selected: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::proto;

    #[test]
    fn bob_matches_jenkins_lookup2() {
        // Bob Jenkins' lookup2.c `hash()`, compiled from the reference source and run on
        // these inputs (tails of 0, 1, 11 and 6 octets through its switch).
        assert_eq!(bob(b"", 0), 0xbd49_d10d);
        assert_eq!(bob(b"a", 0), 0x29ee_c818);
        assert_eq!(bob(b"abcdefghijk", 7), 0x24b0_0f7c);
        assert_eq!(bob(b"Four score and seven years ago", 0), 0x50f2_424b);
        assert_eq!(bob(b"Four score and seven years ago", 1), 0x89de_ae7e);
    }

    #[test]
    fn parse_and_mistakes() {
        let s = SamplerSpec::parse("hash:100:7").unwrap();
        assert_eq!((s.method, s.n, s.key), (Method::Hash, 100, 7));
        assert_eq!(SamplerSpec::parse("deterministic:3").unwrap().n, 3);
        for bad in [
            "",
            "hash",
            "hash:",
            "hash:1",
            "hash:0",
            "hash:x",
            "sometimes:5",
            "deterministic:5:1",
            "random:5:x",
            "random:5:1:2",
            "hash:99999999999",
        ] {
            assert!(SamplerSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deterministic_takes_every_nth() {
        let mut s = SamplerSpec::parse("deterministic:4")
            .unwrap()
            .packet_sampler()
            .unwrap();
        let kept: Vec<usize> = (1..=20).filter(|_| s.keep()).collect();
        assert_eq!(kept, [4, 8, 12, 16, 20]);
    }

    #[test]
    fn random_takes_one_of_every_n() {
        let mut s = SamplerSpec::parse("random:10:42")
            .unwrap()
            .packet_sampler()
            .unwrap();
        let mut places = [0u32; 10];
        for _ in 0..10_000 {
            let window: Vec<bool> = (0..10).map(|_| s.keep()).collect();
            assert_eq!(window.iter().filter(|&&k| k).count(), 1);
            places[window.iter().position(|&k| k).unwrap()] += 1;
        }
        // Each place about 1,000 times (binomial sd 30): within 6 sd.
        assert!(
            places.iter().all(|&p| (820..=1180).contains(&p)),
            "{places:?}"
        );
    }

    #[test]
    fn hash_chooses_both_directions_alike_and_about_one_in_n() {
        let f = FlowSampler::new(8, 12345);
        let mut kept = 0;
        for i in 0..16_000u32 {
            let mut k = FlowKey {
                proto: if i % 3 == 0 { proto::UDP } else { proto::TCP },
                src_port: (i % 60_000) as u16,
                dst_port: 443,
                ..Default::default()
            };
            k.set_ipv4([10, 0, (i >> 8) as u8, i as u8], [192, 0, 2, 1]);
            assert_eq!(f.keep(&k), f.keep(&k.reversed()));
            kept += usize::from(f.keep(&k));
        }
        // 2,000 expected (sd 42).
        assert!((1_750..=2_250).contains(&kept), "{kept}");
    }
}
