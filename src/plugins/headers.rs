//! `headers`: the IANA header fields ipt-netflow exports that qof's core elements lack.
//!
//! * ipClassOfService (IANA 5, reversible): the IPv4 type-of-service or IPv6 traffic-class
//!   octet (DSCP and ECN) of the direction's first packet. It is a header field; a flow's is
//!   its first packet's, as for the first-packet fields of `basicplus`.
//! * ethernetType (256): the EtherType of the flow's first packet, after any VLAN tags (what
//!   the frame carries: 0x0800, 0x86DD, 0x8847 for MPLS, 0x8864 for PPPoE, ...); on Linux
//!   cooked captures the protocol field; 0 on link types without one (raw IP, PPP, BSD
//!   loopback).
//! * ipv4Options (208, reversible, IPv4 flows only): every IPv4 option seen in the direction's
//!   packets, option number *n* at bit *n* counted from the most significant, as the element's
//!   figure and tcpOptions' number them. An option counts only when its whole type is one IANA
//!   registers (the element's definition).
//! * ipv6ExtensionHeaders (64, reversible, IPv6 flows only): every extension header seen in the
//!   direction's packets, with the bits of IANA's "ipv6ExtensionHeaders Bits" registry (RFC
//!   9740), bit 0 the least significant: DST 0, HOP 1, FRA0 (fragment header, first fragment)
//!   4, RH 5, FRA1 (a later fragment) 6, MOB 7, ESP 8, AH 9, HIP 10, SHIM6 11, experiments 12
//!   and 13. In the low octet these are RFC 5102's positions for the element (DST its bit 7,
//!   ... FRA1 its bit 1, counted from the octet's top), as ipt-netflow sends them too. qof
//!   walks hop-by-hop, routing, destination options and fragment headers; ESP, AH, mobility,
//!   HIP, Shim6 and the experimental types end the walk, so they are seen as the last header.
//!   UNK (bit 3, "unknown") is never set: every next header is either walked or the flow's
//!   protocol.
//!
//! Both bitmaps are per direction (RFC 5103: a biflow record's unqualified elements describe
//! its forward direction). tcpOptions, the TCP option bitmap, is `basicplus`'s.
//!
//! Not here: flowDirection (61) and ingressInterface/egressInterface (10/14). A capture file
//! says neither which way a packet crossed an interface nor, in pcap, which interface; qof
//! exports them only once its input knows them.

use super::{Built, Needs, PluginError, Spec};
use crate::decode::ip6_ext;
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Headers,
    about: "ToS per direction, EtherType, IPv4 options and IPv6 extension headers seen",
    options: &[],
    build,
};

/// An IANA element's key and its RFC 5103 reverse form's.
const fn both(id: u16) -> [ExtKey; 2] {
    [
        ExtKey { pen: pen::IANA, id },
        ExtKey {
            pen: pen::REVERSE,
            id,
        },
    ]
}

const CLASS_OF_SERVICE: [ExtKey; 2] = both(5);
const ETHERNET_TYPE: ExtKey = ExtKey {
    pen: pen::IANA,
    id: 256,
};
const IPV4_OPTIONS: [ExtKey; 2] = both(208);
const IPV6_EXTENSION_HEADERS: [ExtKey; 2] = both(64);

/// Bits of ipv6ExtensionHeaders (IANA's "ipv6ExtensionHeaders Bits", bit 0 = 1).
pub mod v6_bits {
    pub const DST: u32 = 1 << 0;
    pub const HOP: u32 = 1 << 1;
    pub const FRA0: u32 = 1 << 4;
    pub const RH: u32 = 1 << 5;
    pub const FRA1: u32 = 1 << 6;
    pub const MOB: u32 = 1 << 7;
    pub const ESP: u32 = 1 << 8;
    pub const AH: u32 = 1 << 9;
    pub const HIP: u32 = 1 << 10;
    pub const SHIM6: u32 = 1 << 11;
    pub const EXP253: u32 = 1 << 12;
    pub const EXP254: u32 = 1 << 13;
}

fn build(_: &super::Options) -> Result<Built, PluginError> {
    let needs = Needs {
        headers: true,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Headers)), needs))
}

struct Headers;

#[derive(Default)]
pub struct State {
    /// The direction's first packet's ToS, once it had one.
    tos: [Option<u8>; 2],
    ethertype: u16,
    /// ipv4Options or ipv6ExtensionHeaders (the flow's IP version decides), per direction.
    seen: [u32; 2],
}

const _: () = assert!(!std::mem::needs_drop::<State>());

/// ipv4Options from the decoder's option numbers (bit *n* for number *n*): number *n* goes to
/// bit *n* from the top.
fn ipv4_options(numbers: u32) -> u32 {
    numbers.reverse_bits()
}

/// ipv6ExtensionHeaders of a packet: the headers the decoder walked, and the one its walk
/// ended at when that is an extension header it does not walk.
fn ipv6_extension_headers(walked: u32, last: u8) -> u32 {
    const MAP: [(u32, u32); 5] = [
        (ip6_ext::DEST_OPTS, v6_bits::DST),
        (ip6_ext::HOP_BY_HOP, v6_bits::HOP),
        (ip6_ext::ROUTING, v6_bits::RH),
        (ip6_ext::FIRST_FRAGMENT, v6_bits::FRA0),
        (ip6_ext::LATER_FRAGMENT, v6_bits::FRA1),
    ];
    let walked = MAP
        .iter()
        .filter(|(d, _)| walked & d != 0)
        .fold(0, |acc, (_, bit)| acc | bit);
    let last = match last {
        50 => v6_bits::ESP,
        51 => v6_bits::AH,
        135 => v6_bits::MOB,
        139 => v6_bits::HIP,
        140 => v6_bits::SHIM6,
        253 => v6_bits::EXP253,
        254 => v6_bits::EXP254,
        _ => 0,
    };
    walked | last
}

impl FlowPlugin for Headers {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Headers.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        Some(State {
            ethertype: p.details.ethertype,
            ..State::default()
        })
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let d = usize::from(p.reverse);
        s.tos[d].get_or_insert(p.details.tos);
        s.seen[d] |= if p.pkt.key.is_ipv4() {
            ipv4_options(p.details.ip_options)
        } else {
            ipv6_extension_headers(p.details.ip_options, p.pkt.key.proto)
        };
        // (The bitmaps take every packet: no Done.)
        Verdict::Continue
    }

    fn export(&mut self, s: State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let bitmap = if flow.key.is_ipv4() {
            IPV4_OPTIONS
        } else {
            IPV6_EXTENSION_HEADERS
        };
        for d in 0..2 {
            out.unsigned(CLASS_OF_SERVICE[d], s.tos[d].unwrap_or(0).into());
            out.unsigned(bitmap[d], s.seen[d].into());
        }
        out.unsigned(ETHERNET_TYPE, s.ethertype.into());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build as b, hostile, keys_of, run, unsigned, Pkt};
    use super::*;
    use crate::capture::linktype::{ETHERNET, RAW};

    #[test]
    fn keys_are_the_tables() {
        let mut mine = [CLASS_OF_SERVICE, IPV4_OPTIONS, IPV6_EXTENSION_HEADERS].concat();
        mine.push(ETHERNET_TYPE);
        mine.sort_unstable();
        assert_eq!(mine, keys_of(PluginKind::Headers));
    }

    /// ToS per direction from the first packet; options ORed per direction, in the IANA
    /// layout (RR, option 7, is 1 << 24; timestamps, 4, is 1 << 27; NOP 1 << 30).
    #[test]
    fn ipv4_tos_and_options() {
        let rr = [1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0, 0];
        let ts = [68, 4, 5, 0];
        let udp = b::udp(1, 2, b"x");
        let a = b::ipv4(17, 64, 0xb8, 0, &rr, &udp);
        let c = b::ipv4(17, 64, 0x00, 0, &ts, &udp);
        let r = b::ipv4(17, 64, 0x2e, 0, &[], &udp);
        let f = b::ether(&[(0x8100, 10)], 0x0800, &a);
        let ext = run(
            &mut Headers,
            &[
                Pkt::frame(ETHERNET, &f, false),
                Pkt::ip(&c, false),
                Pkt::ip(&r, true),
            ],
        )
        .unwrap();
        assert_eq!(unsigned(&ext, CLASS_OF_SERVICE[0]), 0xb8);
        assert_eq!(unsigned(&ext, CLASS_OF_SERVICE[1]), 0x2e);
        assert_eq!(unsigned(&ext, ETHERNET_TYPE), 0x0800, "after the tag");
        assert_eq!(
            unsigned(&ext, IPV4_OPTIONS[0]),
            1 << 31 | 1 << 30 | 1 << 24 | 1 << 27
        );
        assert_eq!(unsigned(&ext, IPV4_OPTIONS[1]), 0);
        assert_eq!(ext.get(IPV6_EXTENSION_HEADERS[0]), None);
    }

    /// IPv6: hop-by-hop then routing then a first fragment's header, in one direction;
    /// destination options in the other; AH as the last header.
    #[test]
    fn ipv6_extension_headers_in_the_registrys_bits() {
        let udp = b::udp(1, 2, b"y");
        let hop_rt_frag = [
            43, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop, next routing
            44, 0, 0, 0, 0, 0, 0, 0, // routing (type 0, segments left 0), next fragment
            17, 0, 0, 1, 0, 0, 0, 9, // fragment: offset 0, M set, next UDP
        ];
        let a = b::ipv6(0, 64, 0x20, &hop_rt_frag, &udp);
        let later = b::ipv6(44, 64, 0x20, &[17, 0, 0, 0x18, 0, 0, 0, 9], &[0; 16]);
        let r = b::ipv6(60, 64, 0x00, &[17, 0, 1, 4, 0, 0, 0, 0], &udp);
        let ext = run(
            &mut Headers,
            &[
                Pkt::frame(RAW, &a, false),
                Pkt::frame(RAW, &later, false),
                Pkt::frame(RAW, &r, true),
            ],
        )
        .unwrap();
        use v6_bits::*;
        assert_eq!(
            unsigned(&ext, IPV6_EXTENSION_HEADERS[0]),
            u64::from(HOP | RH | FRA0 | FRA1)
        );
        assert_eq!(unsigned(&ext, IPV6_EXTENSION_HEADERS[1]), u64::from(DST));
        assert_eq!(unsigned(&ext, CLASS_OF_SERVICE[0]), 0x20);
        assert_eq!(unsigned(&ext, ETHERNET_TYPE), 0, "raw IP: no EtherType");
        assert_eq!(ext.get(IPV4_OPTIONS[0]), None);
        // AH after a destination options header.
        let ah = b::ipv6(
            60,
            64,
            0,
            &[51, 0, 1, 4, 0, 0, 0, 0],
            &[6, 4, 0, 0, 0, 0, 0, 1],
        );
        let ext = run(&mut Headers, &[Pkt::frame(RAW, &ah, false)]).unwrap();
        assert_eq!(
            unsigned(&ext, IPV6_EXTENSION_HEADERS[0]),
            u64::from(DST | AH)
        );
    }

    #[test]
    fn hostile_input_neither_panics_nor_leaks() {
        let (host, needs) = build(&Default::default()).unwrap();
        assert!(needs.headers && !needs.tcp_options);
        hostile(host, 20_000);
    }
}
