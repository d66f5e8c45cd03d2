//! The flow key: what makes two packets belong to the same flow (QoF's `yfFlowKey_t`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol numbers the meter treats specially.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const SCTP: u8 = 132;
}

/// Addresses, ports, protocol, IP version, VLAN and the interface the packets came in on;
/// optionally the DSCP and the outer VLAN (`meter::KeyPolicy`).
///
/// Both address families share one layout so that one table holds every flow: an IPv4 address
/// sits in the first four octets of its field and the other twelve are zero.
/// For ICMP and ICMPv6 the source port is 0 and the destination port is `type << 8 | code`;
/// for protocols without ports both are 0.
///
/// The fields are laid out in declaration order (`repr(C)`), 48 octets without a gap, so that
/// comparing two keys (every packet's lookup does) compiles to wide compares, and the last
/// eight octets (interface and [`FlowKey::extra`]) hash as one word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FlowKey {
    pub src: [u8; 16],
    pub dst: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    /// 4 or 6.
    pub ip_version: u8,
    /// The 12-bit 802.1Q VLAN id that is kept (see `decode`), 0 when untagged.
    pub vlan: u16,
    /// ingressInterface: the index of the interface the packets were captured on (the
    /// kernel's ifindex for a live capture, `--ingress-interface` for files; 0 = unknown).
    /// Part of the key, as ipt-netflow has it: a packet seen on two interfaces (forwarded
    /// between them) is in two flows, one per link.
    pub ingress: u32,
    /// Optional key fields, 0 unless asked for: bits 0..12 the outermost VLAN id (802.1ad
    /// S-tag of Q-in-Q; with one tag the same as `vlan`) with `--key-vlan` (`vlan`, the
    /// innermost, is always keyed); bits 16..24 the ToS / traffic class octet with its ECN
    /// bits cleared (the DSCP, shifted left 2) with `--key-tos`. See [`FlowKey::outer_vlan`]
    /// and [`FlowKey::tos`].
    pub extra: u32,
}

/// The fifth of [`FlowKey::words`] with its source and destination ports trading places.
#[inline]
fn swap_ports(tail: u64) -> u64 {
    tail & !0xffff_ffff | (tail >> 16 & 0xffff) | (tail & 0xffff) << 16
}

/// foldhash's step: the 128-bit product of two words, its halves folded together. With
/// random keys xored into both words, the mixing step of qof's keyed hashes of flow keys.
#[inline]
pub fn folded_multiply(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

impl FlowKey {
    /// The outermost VLAN id when keyed (`--key-vlan`), else 0.
    pub fn outer_vlan(&self) -> u16 {
        (self.extra & 0x0fff) as u16
    }

    /// The ToS octet without its ECN bits when keyed (`--key-tos`), else 0.
    pub fn tos(&self) -> u8 {
        (self.extra >> 16) as u8
    }

    pub fn set_outer_vlan(&mut self, vlan: u16) {
        self.extra = (self.extra & !0x0fff) | u32::from(vlan & 0x0fff);
    }

    pub fn set_tos(&mut self, tos: u8) {
        self.extra = (self.extra & !0x00ff_0000) | u32::from(tos & !3) << 16;
    }

    pub fn is_ipv4(&self) -> bool {
        self.ip_version == 4
    }

    pub fn src_addr(&self) -> IpAddr {
        addr(self.ip_version, &self.src)
    }

    pub fn dst_addr(&self) -> IpAddr {
        addr(self.ip_version, &self.dst)
    }

    /// ICMP keeps its ports unswapped (QoF): the type/code pair belongs to the packet, not to an
    /// endpoint, so an echo request and its reply are two uniflows.
    pub fn has_ports(&self) -> bool {
        !matches!(self.proto, proto::ICMP | proto::ICMPV6)
    }

    /// The key as six words: the two addresses (two words each), the ports with protocol,
    /// IP version and VLAN, and the interface with the optional fields. Whole-word compares
    /// for the lookup of every packet, rather than one compare per field.
    #[inline]
    pub fn words(&self) -> [u64; 6] {
        let word = |a: &[u8; 16], i: usize| {
            u64::from_ne_bytes([
                a[i],
                a[i + 1],
                a[i + 2],
                a[i + 3],
                a[i + 4],
                a[i + 5],
                a[i + 6],
                a[i + 7],
            ])
        };
        [
            word(&self.src, 0),
            word(&self.src, 8),
            word(&self.dst, 0),
            word(&self.dst, 8),
            u64::from(self.src_port)
                | u64::from(self.dst_port) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.ip_version) << 40
                | u64::from(self.vlan) << 48,
            u64::from(self.ingress) | u64::from(self.extra) << 32,
        ]
    }

    /// `self == other`, word by word.
    #[inline]
    pub fn same(&self, other: &FlowKey) -> bool {
        let (a, b) = (self.words(), other.words());
        a.iter().zip(&b).fold(0, |d, (x, y)| d | (x ^ y)) == 0
    }

    /// `self.reversed() == *other`, without making the reversed key.
    #[inline]
    pub fn reverse_of(&self, other: &FlowKey) -> bool {
        let (a, b) = (self.words(), other.words());
        let tail = if self.has_ports() {
            swap_ports(a[4])
        } else {
            a[4]
        };
        ((a[0] ^ b[2])
            | (a[1] ^ b[3])
            | (a[2] ^ b[0])
            | (a[3] ^ b[1])
            | (tail ^ b[4])
            | (a[5] ^ b[5]))
            == 0
    }

    /// The key of the opposite direction.
    pub fn reversed(&self) -> FlowKey {
        let (src_port, dst_port) = if self.has_ports() {
            (self.dst_port, self.src_port)
        } else {
            (self.src_port, self.dst_port)
        };
        FlowKey {
            src: self.dst,
            dst: self.src,
            src_port,
            dst_port,
            ..*self
        }
    }

    pub fn set_ipv4(&mut self, src: [u8; 4], dst: [u8; 4]) {
        self.ip_version = 4;
        self.src = [0; 16];
        self.dst = [0; 16];
        self.src[..4].copy_from_slice(&src);
        self.dst[..4].copy_from_slice(&dst);
    }

    pub fn set_ipv6(&mut self, src: [u8; 16], dst: [u8; 16]) {
        self.ip_version = 6;
        self.src = src;
        self.dst = dst;
    }
}

fn addr(version: u8, a: &[u8; 16]) -> IpAddr {
    if version == 4 {
        IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*a))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn reverse_swaps_ports_except_icmp() {
        let mut k = FlowKey {
            src_port: 1234,
            dst_port: 80,
            proto: proto::TCP,
            ..Default::default()
        };
        k.set_ipv4([10, 0, 0, 1], [10, 0, 0, 2]);
        let r = k.reversed();
        assert_eq!((r.src_port, r.dst_port), (80, 1234));
        assert_eq!(r.src_addr().to_string(), "10.0.0.2");
        assert_eq!(r.reversed(), k);

        let icmp = FlowKey {
            src_port: 0,
            dst_port: 0x0800,
            proto: proto::ICMP,
            ..k
        };
        let r = icmp.reversed();
        assert_eq!((r.src_port, r.dst_port), (0, 0x0800));
        assert_eq!(r.dst_addr().to_string(), "10.0.0.1");
    }

    /// A key of random fields for the tests of key compares and hashes: TCP, UDP, ICMP and
    /// ICMPv6 and IP versions 4 and 6 in turn by `round` (addresses of all 16 octets).
    pub(crate) fn random_key(next: &mut impl FnMut() -> u64, round: usize) -> FlowKey {
        let mut k = FlowKey {
            src_port: next() as u16,
            dst_port: next() as u16,
            proto: [proto::TCP, proto::UDP, proto::ICMP, proto::ICMPV6][round % 4],
            ip_version: [4, 6][round / 4 % 2],
            vlan: next() as u16 & 0xfff,
            ingress: next() as u32 % 3,
            extra: next() as u32 % 3,
            ..Default::default()
        };
        k.src = (u128::from(next()) << 64 | u128::from(next())).to_ne_bytes();
        k.dst = (u128::from(next()) << 64 | u128::from(next())).to_ne_bytes();
        k
    }

    /// `same` and `reverse_of` agree with `==` and `reversed` on keys that differ in one
    /// field at a time (each field of each word), in both directions, ICMP included.
    #[test]
    fn word_compares_agree_with_the_fields() {
        let mut next = crate::testrand::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for round in 0..2_000 {
            let mut k = random_key(&mut next, round);
            if round % 5 == 0 {
                k.dst = k.src; // both endpoints alike
            }
            if round % 7 == 0 {
                k.dst_port = k.src_port;
            }
            let r = k.reversed();
            let variants = [
                k,
                r,
                FlowKey {
                    src_port: k.src_port ^ 1,
                    ..k
                },
                FlowKey {
                    dst_port: k.dst_port ^ 0x100,
                    ..r
                },
                FlowKey {
                    proto: k.proto ^ 1,
                    ..k
                },
                FlowKey {
                    ip_version: 10 - k.ip_version,
                    ..r
                },
                FlowKey {
                    vlan: k.vlan ^ 4,
                    ..k
                },
                FlowKey {
                    ingress: k.ingress + 1,
                    ..r
                },
                FlowKey {
                    extra: k.extra ^ 1 << 16,
                    ..k
                },
                FlowKey { src: k.dst, ..k },
                FlowKey {
                    dst: [k.src[0] ^ 1; 16],
                    ..r
                },
            ];
            for a in &variants {
                for b in &variants {
                    assert_eq!(a.same(b), a == b, "{a:?} {b:?}");
                    assert_eq!(a.reverse_of(b), a.reversed() == *b, "{a:?} {b:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 2_000 * 121);
    }
}
