//! What makes up a flow's key beyond qof's default (addresses, ports, protocol, IP version,
//! innermost VLAN, interface): softflowd's track levels (`-T full|proto|ip`), ipt-netflow's
//! aggregation rules (`aggregation=192.0.0.0/8=16,80-89=80`), the DSCP and the outer VLAN.
//!
//! The policy rewrites a decoded packet's key before the packet reaches the flow table (and,
//! with workers, before its worker is chosen), so that every packet of an aggregate finds one
//! flow. Every rule is applied to the source and the destination alike, so both directions of
//! a biflow are rewritten the same way and still meet in one record.
//!
//! Aggregation rules (ipt-netflow's syntax, comma-separated, tried in order, the first that
//! matches wins; netmask rules and port rules separately):
//! * `NET/LEN=TO`: an address inside `NET/LEN` (IPv4 or IPv6) keeps its first `TO` bits.
//! * `PORT=TO` or `LOW-HIGH=TO`: a TCP, UDP or SCTP port in `LOW..=HIGH` becomes `TO`.

use crate::decode::Packet;
use crate::key::{proto, FlowKey};

/// softflowd's `-T`: how much of the five-tuple a flow is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrackLevel {
    /// Addresses, ports and protocol (every connection its own flow).
    #[default]
    Full,
    /// Addresses and protocol: ports (ICMP type and code) are 0.
    Proto,
    /// Addresses only: protocol and ports are 0.
    Ip,
}

impl TrackLevel {
    pub fn parse(text: &str) -> Result<TrackLevel, String> {
        match text.trim() {
            "full" => Ok(TrackLevel::Full),
            "proto" => Ok(TrackLevel::Proto),
            "ip" => Ok(TrackLevel::Ip),
            other => Err(format!(
                "unknown track level {other:?} (expected full, proto or ip)"
            )),
        }
    }
}

/// `NET/LEN=TO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixRule {
    pub ip_version: u8,
    /// The network, its host bits cleared (IPv4 in the first four octets).
    pub net: [u8; 16],
    pub len: u8,
    /// Bits kept of a matching address.
    pub to: u8,
}

/// `LOW-HIGH=TO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRule {
    pub low: u16,
    pub high: u16,
    pub to: u16,
}

/// The whole key policy (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    pub level: TrackLevel,
    pub prefixes: Vec<PrefixRule>,
    pub ports: Vec<PortRule>,
    /// The DSCP (ToS octet without its ECN bits) is part of the key.
    pub tos: bool,
    /// The outermost VLAN id (of Q-in-Q frames; with one tag it is the innermost) is part of
    /// the key.
    pub outer_vlan: bool,
}

/// Keep the first `bits` bits of `a` (the first `width` octets are the address).
fn mask(a: &mut [u8; 16], bits: u8) {
    let bits = usize::from(bits);
    for (i, b) in a.iter_mut().enumerate() {
        let keep = bits.saturating_sub(i * 8).min(8);
        *b &= !(0xffu16 >> keep) as u8;
    }
}

fn in_prefix(a: &[u8; 16], r: &PrefixRule) -> bool {
    let mut m = *a;
    mask(&mut m, r.len);
    m == r.net
}

impl KeyPolicy {
    /// Flows are qof's default ones: nothing to rewrite.
    pub fn is_default(&self) -> bool {
        *self == KeyPolicy::default()
    }

    /// Different connections may share a flow (track level, port rules or prefixes): the
    /// meter then neither ends a flow on a TCP close nor splits it on a SYN.
    pub fn merges_connections(&self) -> bool {
        self.level != TrackLevel::Full || !self.ports.is_empty() || !self.prefixes.is_empty()
    }

    /// Parse ipt-netflow's `aggregation=` value into this policy's rules (appended).
    pub fn add_aggregation(&mut self, text: &str) -> Result<(), String> {
        for rule in text.split(',').map(str::trim) {
            if rule.is_empty() {
                continue;
            }
            let bad = |why: &str| {
                Err(format!(
                    "{rule:?}: {why} (expected NET/LEN=BITS, PORT=TO or LOW-HIGH=TO, e.g. 192.0.0.0/8=16,80-89=80)"
                ))
            };
            let Some((lhs, rhs)) = rule.split_once('=') else {
                return bad("no '='");
            };
            let (lhs, rhs) = (lhs.trim(), rhs.trim());
            if let Some((net, len)) = lhs.split_once('/') {
                let Ok(addr) = net.trim().parse::<std::net::IpAddr>() else {
                    return bad("not an IP address before '/'");
                };
                let (ip_version, mut a, max) = match addr {
                    std::net::IpAddr::V4(v) => {
                        let mut a = [0u8; 16];
                        a[..4].copy_from_slice(&v.octets());
                        (4, a, 32)
                    }
                    std::net::IpAddr::V6(v) => (6, v.octets(), 128),
                };
                let (Ok(len), Ok(to)) = (len.trim().parse::<u8>(), rhs.parse::<u8>()) else {
                    return bad("prefix lengths must be whole numbers");
                };
                if len > max || to > max {
                    return bad(&format!("a prefix length is at most {max}"));
                }
                mask(&mut a, len);
                self.prefixes.push(PrefixRule {
                    ip_version,
                    net: a,
                    len,
                    to,
                });
            } else {
                let (low, high) = match lhs.split_once('-') {
                    Some((l, h)) => (l.trim().parse::<u16>(), h.trim().parse::<u16>()),
                    None => (lhs.parse::<u16>(), lhs.parse::<u16>()),
                };
                let (Ok(low), Ok(high), Ok(to)) = (low, high, rhs.parse::<u16>()) else {
                    return bad("ports are whole numbers from 0 to 65535");
                };
                if low > high {
                    return bad("the range's low port is above its high one");
                }
                self.ports.push(PortRule { low, high, to });
            }
        }
        Ok(())
    }

    /// An address as the key keeps it: the first matching prefix rule's bits.
    #[inline]
    pub fn address(&self, ip_version: u8, a: &mut [u8; 16]) {
        if let Some(r) = self
            .prefixes
            .iter()
            .find(|r| r.ip_version == ip_version && in_prefix(a, r))
        {
            mask(a, r.to);
        }
    }

    fn port(&self, p: u16) -> u16 {
        self.ports
            .iter()
            .find(|r| (r.low..=r.high).contains(&p))
            .map_or(p, |r| r.to)
    }

    /// Rewrite `pkt`'s key by the policy.
    pub fn apply(&self, pkt: &mut Packet) {
        let k: &mut FlowKey = &mut pkt.key;
        if self.tos {
            k.set_tos(pkt.tos);
        }
        if self.outer_vlan {
            k.set_outer_vlan(pkt.outer_vlan);
        }
        if !self.prefixes.is_empty() {
            let v = k.ip_version;
            self.address(v, &mut k.src);
            self.address(v, &mut k.dst);
        }
        if !self.ports.is_empty() && matches!(k.proto, proto::TCP | proto::UDP | proto::SCTP) {
            k.src_port = self.port(k.src_port);
            k.dst_port = self.port(k.dst_port);
        }
        match self.level {
            TrackLevel::Full => {}
            TrackLevel::Proto => (k.src_port, k.dst_port) = (0, 0),
            TrackLevel::Ip => (k.src_port, k.dst_port, k.proto) = (0, 0, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Packet {
        let mut p = Packet::default();
        p.key.set_ipv4(src, dst);
        p.key.proto = proto::TCP;
        (p.key.src_port, p.key.dst_port) = (sp, dp);
        p
    }

    #[test]
    fn ipt_netflow_rules_both_directions_alike() {
        let mut k = KeyPolicy::default();
        k.add_aggregation("192.0.0.0/8=16, 10.0.0.0/8=24,80-89=80,3128=80,2001:db8::/32=48")
            .unwrap();
        assert_eq!(k.prefixes.len(), 3);
        assert_eq!(k.ports.len(), 2);
        let mut a = pkt([192, 168, 7, 9], [10, 1, 2, 3], 40_000, 88);
        let mut b = pkt([10, 1, 2, 200], [192, 168, 99, 1], 3128, 40_001);
        k.apply(&mut a);
        k.apply(&mut b);
        assert_eq!(&a.key.src[..4], [192, 168, 0, 0]);
        assert_eq!(&a.key.dst[..4], [10, 1, 2, 0]);
        assert_eq!((a.key.src_port, a.key.dst_port), (40_000, 80));
        assert_eq!(&b.key.dst[..4], [192, 168, 0, 0]);
        assert_eq!(b.key.src_port, 80);
        // Outside every rule: untouched.
        let mut c = pkt([172, 16, 1, 1], [8, 8, 8, 8], 5, 443);
        let before = c.key;
        k.apply(&mut c);
        assert_eq!(c.key, before);
        for bad in [
            "10.0.0.0/33=8",
            "10.0.0.0/8=40",
            "ten/8=16",
            "10.0.0.0/8",
            "90-80=80",
            "80-x=1",
            "70000=1",
            "1=",
        ] {
            assert!(KeyPolicy::default().add_aggregation(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn track_levels_tos_and_vlan() {
        let mut p = pkt([1, 1, 1, 1], [2, 2, 2, 2], 1000, 53);
        p.tos = 0xb9;
        p.outer_vlan = 7;
        let k = KeyPolicy {
            level: TrackLevel::Ip,
            tos: true,
            outer_vlan: true,
            ..KeyPolicy::default()
        };
        k.apply(&mut p);
        assert_eq!((p.key.src_port, p.key.dst_port, p.key.proto), (0, 0, 0));
        assert_eq!((p.key.tos(), p.key.outer_vlan()), (0xb8, 7));
        assert!(TrackLevel::parse("proto").is_ok());
        assert!(TrackLevel::parse("ports").is_err());
        let mut m = [0xffu8; 16];
        mask(&mut m, 13);
        assert_eq!(&m[..3], [0xff, 0xf8, 0]);
    }
}
