//! `icmp`: the type and code (type·256 + code) of an ICMP flow's first message whose header
//! was captured: icmpTypeCodeIPv4 (IANA 32) for ICMP, icmpTypeCodeIPv6 (139) for ICMPv6.
//! ipfixprobe sends 32 for both; a record carries only its IP version's element (a 0 in the
//! other would read as an echo reply).
//!
//! qof keys ICMP flows by type and code (QoF's rule: the destination port is type·256 + code,
//! so an echo request and its reply are two flows), which makes the first message's type and
//! code the flow's. A message cut before its type and code (no transport header) is skipped;
//! a flow of only such messages, and every flow of another protocol, carries no element.

use super::{Built, Needs, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Icmp,
    about: "the ICMP or ICMPv6 type and code of the first message",
    options: &[],
    build,
};

const TYPE_CODE_V4: ExtKey = ExtKey {
    pen: pen::IANA,
    id: 32,
};
const TYPE_CODE_V6: ExtKey = ExtKey {
    pen: pen::IANA,
    id: 139,
};

fn build(_: &super::Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Icmp)), Needs::default()))
}

struct Icmp;

/// The first type·256 + code seen, if any.
pub struct State(Option<u16>);

impl FlowPlugin for Icmp {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Icmp.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        matches!(p.pkt.key.proto, proto::ICMP | proto::ICMPV6).then_some(State(None))
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        // (The decoder puts type·256 + code in the destination port when it read them.)
        if !p.pkt.has_l4 {
            return Verdict::Continue;
        }
        s.0 = Some(p.pkt.key.dst_port);
        Verdict::Done
    }

    fn export(&mut self, s: State, flow: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let Some(type_code) = s.0 else {
            return false;
        };
        let key = if flow.key.is_ipv4() {
            TYPE_CODE_V4
        } else {
            TYPE_CODE_V6
        };
        out.unsigned(key, type_code.into());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build as b, hostile, keys_of, run, unsigned, Pkt};
    use super::*;

    #[test]
    fn keys_are_the_tables() {
        assert_eq!(vec![TYPE_CODE_V4, TYPE_CODE_V6], keys_of(PluginKind::Icmp));
    }

    #[test]
    fn each_ip_version_its_own_element() {
        let unreachable = b::ipv4(1, 64, 0, 0, &[], &b::icmp(3, 3, &[0; 28]));
        let ext = run(&mut Icmp, &[Pkt::ip(&unreachable, false)]).unwrap();
        assert_eq!(unsigned(&ext, TYPE_CODE_V4), 0x0303);
        assert_eq!(ext.get(TYPE_CODE_V6), None);
        // MLDv2 report (143/0), which ipfixprobe sends as 36608 in element 32.
        let mld = b::ipv6(58, 1, 0, &[], &b::icmp(143, 0, &[]));
        let ext = run(&mut Icmp, &[Pkt::ip(&mld, false)]).unwrap();
        assert_eq!(unsigned(&ext, TYPE_CODE_V6), 36608);
        assert_eq!(ext.get(TYPE_CODE_V4), None);
    }

    #[test]
    fn other_protocols_and_cut_headers_carry_nothing() {
        let udp = b::ipv4(17, 64, 0, 0, &[], &b::udp(1, 2, &[]));
        assert!(run(&mut Icmp, &[Pkt::ip(&udp, false)]).is_none());
        // An ICMP message cut after its type (one octet): no type and code to report, until
        // a whole one comes.
        let mut cut = b::ipv4(1, 64, 0, 0, &[], &b::icmp(8, 0, &[]));
        cut.truncate(21);
        assert!(run(&mut Icmp, &[Pkt::ip(&cut, false)]).is_none());
        let echo = b::ipv4(1, 64, 0, 0, &[], &b::icmp(0, 0, &[]));
        let ext = run(&mut Icmp, &[Pkt::ip(&cut, false), Pkt::ip(&echo, false)]).unwrap();
        assert_eq!(unsigned(&ext, TYPE_CODE_V4), 0);
        assert!(ext.get(TYPE_CODE_V4).is_some(), "echo reply: 0, written");
    }

    #[test]
    fn hostile_input_neither_panics_nor_leaks() {
        let (host, _) = build(&Default::default()).unwrap();
        hostile(host, 20_000);
    }
}
