//! `mpls`: the top MPLS label stack entry of a flow's first packet (the last label pushed):
//! mplsTopLabelStackSection (IANA 70; three octets: the 20-bit label, the 3-bit traffic class
//! and the bottom-of-stack bit, without the TTL, as IANA defines it) and mplsTopLabelTTL (200).
//! Flows whose first packet carried no label stack carry neither.
//!
//! ipfixprobe 5.7.0's mpls plugin crashes its IPFIX exporter (its element is not among those
//! the exporter resolves) and would write the section from the wrong octets.

use super::{Built, Needs, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Mpls,
    about: "the top MPLS label stack entry of the first packet (label, TC, S; TTL)",
    options: &[],
    build,
};

const SECTION: ExtKey = ExtKey {
    pen: pen::IANA,
    id: 70,
};
const TTL: ExtKey = ExtKey {
    pen: pen::IANA,
    id: 200,
};

fn build(_: &super::Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Mpls)), Needs::default()))
}

struct Mpls;

/// The top label stack entry, as on the wire.
pub struct State(u32);

impl FlowPlugin for Mpls {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Mpls.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        // (0 is the decoder's "no label stack": an entry of label 0, TC 0, not bottom of the
        // stack and TTL 0 is not one a router forwards.)
        match p.details.mpls_top {
            0 => None,
            top => Some(State(top)),
        }
    }

    fn packet(&mut self, _: &mut State, _: &PacketView<'_>) -> Verdict {
        Verdict::Done
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let [a, b, c, ttl] = s.0.to_be_bytes();
        out.bytes(SECTION, &[a, b, c]);
        out.unsigned(TTL, ttl.into());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build as b, bytes, hostile, keys_of, run, unsigned, Pkt};
    use super::*;
    use crate::capture::linktype::ETHERNET;

    #[test]
    fn keys_are_the_tables() {
        assert_eq!(vec![SECTION, TTL], keys_of(PluginKind::Mpls));
    }

    #[test]
    fn the_top_entry_without_its_ttl_and_the_ttl() {
        let ip = b::ipv4(17, 64, 0, 0, &[], &b::udp(1, 2, &[]));
        // Two labels: top 0x12345 (TC 5, not bottom, TTL 254), then 16 (bottom, TTL 1).
        let mut stack = b::label(0x12345, 5, false, 254).to_vec();
        stack.extend_from_slice(&b::label(16, 0, true, 1));
        stack.extend_from_slice(&ip);
        let f = b::ether(&[], 0x8847, &stack);
        let ext = run(&mut Mpls, &[Pkt::frame(ETHERNET, &f, false)]).unwrap();
        // 0x12345 << 4 | 5 << 1 | 0.
        assert_eq!(bytes(&ext, SECTION), [0x12, 0x34, 0x5a]);
        assert_eq!(unsigned(&ext, TTL), 254);
    }

    #[test]
    fn unlabelled_flows_carry_nothing() {
        let f = b::ether(&[], 0x0800, &b::ipv4(17, 64, 0, 0, &[], &b::udp(1, 2, &[])));
        assert!(run(&mut Mpls, &[Pkt::frame(ETHERNET, &f, false)]).is_none());
    }

    #[test]
    fn hostile_input_neither_panics_nor_leaks() {
        let (host, _) = build(&Default::default()).unwrap();
        hostile(host, 20_000);
    }
}
