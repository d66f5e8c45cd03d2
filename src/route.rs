//! Which worker meters a frame: the flow key's policy ([`Admit`]) and the keyed hash of a
//! frame's address pair ([`Router`]), shared by the engine's workers and the thread that
//! reads a file for them ([`crate::split`]).

use qof::decode::{self, DecodeConfig, Packet};
use qof::key::folded_multiply;
use qof::meter::sampling::FlowSampler;
use qof::meter::KeyPolicy;
use std::hash::BuildHasher;

/// What a decoded packet's key is and whether it is metered, when either is not qof's
/// default (one test per packet for both in the default configuration).
#[derive(Clone)]
pub struct Admit {
    keys: KeyPolicy,
    /// `--sampler hash:N` for unfragmented packets, before they are queued (the meter decides
    /// for fragments, once their datagram's key is known).
    sampler: Option<FlowSampler>,
}

impl Admit {
    pub(crate) fn new(keys: KeyPolicy, sampler: Option<FlowSampler>) -> Option<Admit> {
        (!keys.is_default() || sampler.is_some()).then_some(Admit { keys, sampler })
    }

    /// Rewrite the key; false when the packet is passed over.
    #[inline]
    pub(crate) fn admit(&self, pkt: &mut Packet) -> bool {
        self.keys.apply(pkt);
        match &self.sampler {
            Some(s) => pkt.frag.is_some() || s.keep(&pkt.key),
            None => true,
        }
    }
}

/// Which of `n` meters a flow belongs to: a keyed hash of its address pair (in a fixed order)
/// and VLAN, so both directions and every fragment of a datagram (whose later fragments carry
/// no ports) go to the same meter. Its clones hash alike (one key), so that workers that each
/// read every frame of a file agree on whose each one is.
#[derive(Clone)]
pub(crate) struct Router {
    /// Random keys of the address pairs' hash, new for every run (the addresses come from
    /// the traffic: nobody can aim a flood at one worker).
    hash_keys: [u64; 6],
    n: usize,
    pub(crate) decode: DecodeConfig,
    /// The flow key's policy: aggregated addresses choose the meter as the key has them, so
    /// every packet of an aggregate meets on one meter.
    pub(crate) keys: Option<Admit>,
    /// Where frames are decoded to find their meter.
    pub(crate) scratch: Packet,
}

impl Router {
    pub(crate) fn new(n: usize, decode: DecodeConfig, keys: Option<Admit>) -> Router {
        let seed = foldhash::fast::RandomState::default();
        Router {
            hash_keys: std::array::from_fn(|i| seed.hash_one(i)),
            n,
            decode,
            keys,
            scratch: Packet::default(),
        }
    }

    /// The meter of a frame, from its link layer and IP addresses alone. A frame that is not
    /// IP goes to the first meter, whose decoder counts why.
    #[inline]
    pub(crate) fn of_frame(&mut self, linktype: u32, data: &[u8]) -> usize {
        // The common frames, IPv4 or IPv6 over Ethernet with one VLAN tag or none, read where
        // they lie: every worker reading a file does this for every frame of it. The same
        // meter as by the decode below.
        if linktype == qof::capture::linktype::ETHERNET
            && self.keys.is_none()
            && !self.decode.gre_decap
        {
            if let Some(meter) = self.of_ethernet(data) {
                return meter;
            }
        }
        self.of_decoded(linktype, data)
    }

    /// Whether this frame would move one meter's clock: only a frame that decodes (and that
    /// the flow key's policy admits) reaches a meter. A worker sees every second of packet
    /// time begin, and ends its idle flows then, only at such a frame, as `--workers 1`
    /// would: a frame it cannot meter (ARP, say) moves no clock. Decoded in full, but asked
    /// only of the first frames of each second.
    #[inline(never)]
    pub(crate) fn moves_clock(&mut self, linktype: u32, data: &[u8], ingress: u32) -> bool {
        let p = &mut self.scratch;
        if decode::decode(linktype, data, &self.decode, p).is_err() {
            return false;
        }
        p.key.ingress = ingress;
        self.keys.as_ref().map_or(true, |a| a.admit(p))
    }

    #[inline]
    fn of_ethernet(&self, data: &[u8]) -> Option<usize> {
        let be16 = |at: usize| {
            data.get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        let (mut etype, mut off, mut vlan) = (be16(12)?, 14, 0);
        if etype == 0x8100 {
            vlan = be16(14)? & 0x0fff; // (as the decoder keys it)
            etype = be16(16)?;
            off = 18;
        }
        match etype {
            0x0800 => {
                let h = data.get(off + 12..off + 20)?;
                let a = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
                let b = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                Some(self.of_v4(a.min(b), a.max(b), vlan))
            }
            0x86dd => {
                let h = data.get(off..off + 40)?;
                let a = u128::from_be_bytes(h[8..24].try_into().ok()?);
                let b = u128::from_be_bytes(h[24..40].try_into().ok()?);
                Some(self.of_v6(a.min(b), a.max(b), vlan))
            }
            _ => None,
        }
    }

    /// Any other frame: decoded as far as its addresses.
    #[inline(never)]
    fn of_decoded(&mut self, linktype: u32, data: &[u8]) -> usize {
        let p = &mut self.scratch;
        let key = match self.decode.gre_decap {
            false => decode::shard_key(linktype, data, p),
            // (GRE is decapsulated: a frame's meter follows its inner packet, which needs a
            // full decode.)
            true => decode::decode(linktype, data, &self.decode, p)
                .ok()
                .map(|()| shard_key_of(p)),
        };
        let Some(mut k) = key else { return 0 };
        if let Some(a) = &self.keys {
            a.keys.address(k.ip_version, &mut k.low);
            a.keys.address(k.ip_version, &mut k.high);
            if k.low > k.high {
                std::mem::swap(&mut k.low, &mut k.high);
            }
        }
        self.of_key(&k)
    }

    #[inline]
    pub(crate) fn of_key(&self, k: &decode::ShardKey) -> usize {
        if k.ip_version == 4 {
            let [a, b] = [&k.low, &k.high].map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
            return self.of_v4(a, b, k.vlan);
        }
        let [a, b] = [k.low, k.high].map(u128::from_be_bytes);
        self.of_v6(a, b, k.vlan)
    }

    /// An IPv4 address pair (the lower first) and VLAN: one keyed folded multiply, the
    /// result scaled to `0..n` by its high bits.
    #[inline]
    fn of_v4(&self, low: u32, high: u32, vlan: u16) -> usize {
        let k = &self.hash_keys;
        let pair = u64::from(low) << 32 | u64::from(high);
        self.scale(folded_multiply(pair ^ k[0], u64::from(vlan) ^ k[1]))
    }

    /// An IPv6 address pair (the lower first) and VLAN: each address folded to a word, then
    /// the two as for IPv4.
    #[inline]
    fn of_v6(&self, low: u128, high: u128, vlan: u16) -> usize {
        let k = &self.hash_keys;
        let a = folded_multiply(low as u64 ^ k[2], (low >> 64) as u64 ^ k[3]);
        let b = folded_multiply(high as u64 ^ k[4], (high >> 64) as u64 ^ k[5]);
        self.scale(folded_multiply(a ^ k[0], b ^ u64::from(vlan) ^ k[1]))
    }

    #[inline]
    fn scale(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.n as u128) >> 64) as usize
    }
}

/// The [`decode::ShardKey`] of a decoded packet (GRE's inner packet).
pub(crate) fn shard_key_of(p: &Packet) -> decode::ShardKey {
    let (low, high) = if p.key.src <= p.key.dst {
        (p.key.src, p.key.dst)
    } else {
        (p.key.dst, p.key.src)
    };
    decode::ShardKey {
        low,
        high,
        vlan: p.key.vlan,
        ip_version: p.key.ip_version,
    }
}
