//! `basicplus`: per-direction IP and TCP header fields (ipfixprobe's basicplus), for every
//! flow:
//!
//! * ipTTL (IANA 192): the TTL (IPv4) or hop limit (IPv6) of the direction's first packet.
//!   IANA defines ipTTL as a packet's header field, so a flow's value is one packet's: the
//!   first, like the other first-packet fields here. (ipfixprobe keeps the highest forward
//!   TTL, and the first reverse TTL, then the highest: that is maximumTTL, IANA 53, which qof
//!   exports as a core element beside minimumTTL.)
//! * fragmentFlags (197): the first packet's flags in IANA's layout, where bit 0 is the most
//!   significant: DF 0x40 (IPv4 only), MF 0x20 (IPv4's MF or the M flag of an IPv6 fragment
//!   header). ipfixprobe sends IPv4's flags shifted down (DF 2, MF 1) and 0 for IPv6.
//! * tcpWindowSize (186): the window field (unscaled) of the direction's first TCP segment.
//! * tcpOptions (209): every TCP option kind seen in the direction's segments, kind *k* at bit
//!   *k* counted from the most significant (RFC 5102's layout; kinds above 63 have no bit).
//! * tcpMss / tcpMssRev (CESNET 900/901): the first MSS option seen in each direction: the
//!   real MSS (ipfixprobe reads four octets there and sends `MSS << 16` ORed with the next
//!   option's first two octets).
//! * tcpSynSize (CESNET 902): the IP length of the flow's first packet when it is a SYN
//!   without ACK, else 0 (ipfixprobe asks for flags exactly SYN, so an ECN-setup SYN, with
//!   ECE and CWR, gave 0).
//!
//! Non-TCP flows carry 0 in the TCP fields, as from ipfixprobe. Reverse forms are RFC 5103's
//! (PEN 29305); they appear in biflow templates only, while tcpMssRev is an element of its
//! own and always does.

use super::{Built, Needs, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Basicplus,
    about: "TTL, fragment flags, TCP window, TCP options and MSS per direction; SYN size",
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

const TTL: [ExtKey; 2] = both(192);
const FRAGMENT_FLAGS: [ExtKey; 2] = both(197);
const WINDOW: [ExtKey; 2] = both(186);
const TCP_OPTIONS: [ExtKey; 2] = both(209);
const MSS: [ExtKey; 2] = [
    ExtKey {
        pen: pen::CESNET,
        id: 900,
    },
    ExtKey {
        pen: pen::CESNET,
        id: 901,
    },
];
const SYN_SIZE: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 902,
};

/// fragmentFlags' bits (IANA: bit 1 DF, bit 2 MF, bit 0 the most significant).
const DF: u8 = 0x40;
const MF: u8 = 0x20;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn build(_: &super::Options) -> Result<Built, PluginError> {
    let needs = Needs {
        tcp_options: true,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Basicplus)), needs))
}

struct Basicplus;

/// What one direction has shown so far.
#[derive(Clone, Copy, Default)]
struct Dir {
    seen: bool,
    ttl: u8,
    fragment_flags: u8,
    /// The first segment's window, once a segment was seen.
    window: Option<u16>,
    tcp_options: u64,
    mss: Option<u16>,
}

#[derive(Default)]
pub struct State {
    dirs: [Dir; 2],
    syn_size: u16,
}

// (A state holds nothing on the heap: no allocation per flow beyond its slot, none per packet.)
const _: () = assert!(!std::mem::needs_drop::<State>());

/// fragmentFlags of a packet, in IANA's layout.
fn fragment_flags(p: &PacketView<'_>) -> u8 {
    if p.pkt.key.is_ipv4() {
        // (Details::ip_flags: 0x2 DF, 0x1 MF, as in the header's top bits shifted down.)
        let f = p.details.ip_flags;
        (if f & 2 != 0 { DF } else { 0 }) | (if f & 1 != 0 { MF } else { 0 })
    } else {
        match p.pkt.frag {
            Some(f) if f.more => MF,
            _ => 0,
        }
    }
}

impl FlowPlugin for Basicplus {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Basicplus.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        let syn = p.pkt.tcp.is_some_and(|t| t.flags & (SYN | ACK) == SYN);
        Some(State {
            syn_size: if syn {
                u16::try_from(p.pkt.ip_len).unwrap_or(u16::MAX)
            } else {
                0
            },
            ..State::default()
        })
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let d = &mut s.dirs[usize::from(p.reverse)];
        if !d.seen {
            d.seen = true;
            d.ttl = p.pkt.ttl;
            d.fragment_flags = fragment_flags(p);
        }
        if let Some(tcp) = &p.pkt.tcp {
            d.window.get_or_insert(tcp.window);
            d.tcp_options |= p.details.tcp_option_kinds;
            if d.mss.is_none() {
                d.mss = tcp.options.mss;
            }
        }
        // (tcpOptions takes every segment: no Done.)
        Verdict::Continue
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        for (i, d) in s.dirs.iter().enumerate() {
            out.unsigned(TTL[i], d.ttl.into());
            out.unsigned(FRAGMENT_FLAGS[i], d.fragment_flags.into());
            out.unsigned(WINDOW[i], d.window.unwrap_or(0).into());
            out.unsigned(TCP_OPTIONS[i], d.tcp_options);
            out.unsigned(MSS[i], d.mss.unwrap_or(0).into());
        }
        out.unsigned(SYN_SIZE, s.syn_size.into());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build as b, hostile, keys_of, run, unsigned, Pkt};
    use super::*;

    fn opt(kind: u64) -> u64 {
        1 << (63 - kind)
    }

    #[test]
    fn keys_are_the_tables() {
        let mut mine = [TTL, FRAGMENT_FLAGS, WINDOW, TCP_OPTIONS, MSS].concat();
        mine.push(SYN_SIZE);
        mine.sort_unstable();
        assert_eq!(mine, keys_of(PluginKind::Basicplus));
    }

    /// A handshake and data: first-packet fields per direction, options ORed, the real MSS.
    #[test]
    fn tcp_handshake_per_direction() {
        // SYN: MSS 1460, SACK permitted, timestamps, NOP, window scale 7 (Linux's layout).
        let syn_opts = [
            2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let syn = b::ipv4(
            6,
            64,
            0,
            0x4000,
            &[],
            &b::tcp(40000, 80, 0xc2, 64240, &syn_opts, &[]),
        );
        // SYN-ACK: MSS 1400, then NOP, window scale (ipfixprobe would read 0x05780103).
        let sa_opts = [2, 4, 0x05, 0x78, 1, 3, 3, 8];
        let synack = b::ipv4(
            6,
            57,
            0,
            0x4000,
            &[],
            &b::tcp(80, 40000, 0x12, 65160, &sa_opts, &[]),
        );
        let ts = [1, 1, 8, 10, 0, 0, 0, 2, 0, 0, 0, 1];
        let data = b::ipv4(
            6,
            63,
            0,
            0x4000,
            &[],
            &b::tcp(40000, 80, 0x18, 502, &ts, b"GET /"),
        );
        let ack = b::ipv4(6, 250, 0, 0, &[], &b::tcp(80, 40000, 0x10, 510, &ts, &[]));
        let ext = run(
            &mut Basicplus,
            &[
                Pkt::ip(&syn, false),
                Pkt::ip(&synack, true),
                Pkt::ip(&data, false),
                Pkt::ip(&ack, true),
            ],
        )
        .unwrap();
        assert_eq!(unsigned(&ext, TTL[0]), 64, "first forward packet's TTL");
        assert_eq!(
            unsigned(&ext, TTL[1]),
            57,
            "first reverse packet's, not the highest"
        );
        assert_eq!(unsigned(&ext, FRAGMENT_FLAGS[0]), 0x40);
        assert_eq!(unsigned(&ext, FRAGMENT_FLAGS[1]), 0x40);
        assert_eq!(unsigned(&ext, WINDOW[0]), 64240);
        assert_eq!(unsigned(&ext, WINDOW[1]), 65160);
        assert_eq!(
            unsigned(&ext, TCP_OPTIONS[0]),
            opt(1) | opt(2) | opt(3) | opt(4) | opt(8)
        );
        assert_eq!(
            unsigned(&ext, TCP_OPTIONS[1]),
            opt(1) | opt(2) | opt(3) | opt(8)
        );
        assert_eq!(unsigned(&ext, MSS[0]), 1460);
        assert_eq!(unsigned(&ext, MSS[1]), 1400);
        // An ECN-setup SYN (flags 0xc2) is a SYN: its IP length.
        assert_eq!(unsigned(&ext, SYN_SIZE), 20 + 40);
    }

    /// A flow seen from its middle: no SYN, so no SYN size; an MSS option only later.
    #[test]
    fn mid_connection_and_late_mss() {
        let a = b::ipv4(6, 10, 0, 0, &[], &b::tcp(1, 2, 0x10, 100, &[], &[]));
        let c = b::ipv4(
            6,
            11,
            0,
            0,
            &[],
            &b::tcp(1, 2, 0x02, 200, &[2, 4, 0x02, 0x18], &[]),
        );
        let ext = run(&mut Basicplus, &[Pkt::ip(&a, false), Pkt::ip(&c, false)]).unwrap();
        assert_eq!(unsigned(&ext, SYN_SIZE), 0);
        assert_eq!(unsigned(&ext, WINDOW[0]), 100, "the first segment's window");
        assert_eq!(unsigned(&ext, MSS[0]), 536, "the first MSS option seen");
        assert_eq!(unsigned(&ext, TTL[1]), 0, "no reverse packet");
    }

    /// IPv4 MF, an IPv6 fragment header's M flag, and UDP: no TCP fields.
    #[test]
    fn fragment_flags_in_ianas_layout() {
        let first = b::ipv4(17, 9, 0, 0x2000, &[], &b::udp(5, 6, &[0; 40]));
        let ext = run(&mut Basicplus, &[Pkt::ip(&first, false)]).unwrap();
        assert_eq!(unsigned(&ext, FRAGMENT_FLAGS[0]), 0x20);
        assert_eq!(
            unsigned(&ext, TCP_OPTIONS[0]) | unsigned(&ext, WINDOW[0]),
            0
        );
        // IPv6: fragment header (next UDP, offset 0, M set), hop limit 33.
        let frag = [17, 0, 0, 1, 0, 0, 0, 7];
        let v6 = b::ipv6(44, 33, 0, &frag, &b::udp(5, 6, &[0; 40]));
        let ext = run(&mut Basicplus, &[Pkt::ip(&v6, false)]).unwrap();
        assert_eq!(unsigned(&ext, FRAGMENT_FLAGS[0]), 0x20);
        assert_eq!(unsigned(&ext, TTL[0]), 33);
        let whole = b::ipv6(17, 1, 0, &[], &b::udp(5, 6, &[]));
        let ext = run(&mut Basicplus, &[Pkt::ip(&whole, false)]).unwrap();
        assert_eq!(unsigned(&ext, FRAGMENT_FLAGS[0]), 0);
    }

    #[test]
    fn hostile_input_neither_panics_nor_leaks() {
        let (host, needs) = build(&Default::default()).unwrap();
        assert!(needs.tcp_options && needs.payload == 0);
        hostile(host, 20_000);
    }
}
