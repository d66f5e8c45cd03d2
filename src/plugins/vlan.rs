//! `vlan`: the 802.1Q tags of a flow's first packet, with their priorities: dot1qVlanId and
//! dot1qPriority (IANA 243/244) from the outer tag (the S-tag of a Q-in-Q frame, or the only
//! tag), dot1qCustomerVlanId and dot1qCustomerPriority (245/246) from the second (the C-tag;
//! 0 when the frame had one tag). Untagged flows carry none of them.
//!
//! vlanId (IANA 58), a core element, stays what QoF made it: the innermost tag's id, the one in
//! the flow key (for Q-in-Q the C-tag, which names the customer's network). ipfixprobe's vlan
//! plugin sends the outermost id as vlanId instead: here that is dot1qVlanId.

use super::{Built, Needs, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Vlan,
    about: "outer and customer 802.1Q VLAN ids and priorities of the first packet",
    options: &[],
    build,
};

const fn iana(id: u16) -> ExtKey {
    ExtKey { pen: pen::IANA, id }
}

/// (VLAN id, priority) of the outer tag, then of the customer tag.
const KEYS: [(ExtKey, ExtKey); 2] = [(iana(243), iana(244)), (iana(245), iana(246))];

fn build(_: &super::Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Vlan)), Needs::default()))
}

struct Vlan;

/// The first packet's tags' TCIs, outer first (the second 0 when it had one tag).
pub struct State([u16; 2]);

impl FlowPlugin for Vlan {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Vlan.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        let d = p.details;
        match d.vlan_tags {
            0 => None,
            1 => Some(State([d.vlan_tci[0], 0])),
            _ => Some(State(d.vlan_tci)),
        }
    }

    fn packet(&mut self, _: &mut State, _: &PacketView<'_>) -> Verdict {
        Verdict::Done
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        for (tci, (id, priority)) in s.0.into_iter().zip(KEYS) {
            // TCI: priority (3 bits), drop eligible (1), VLAN id (12).
            out.unsigned(id, (tci & 0x0fff).into());
            out.unsigned(priority, (tci >> 13).into());
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build as b, hostile, keys_of, run, unsigned, Pkt};
    use super::*;
    use crate::capture::linktype::ETHERNET;

    #[test]
    fn keys_are_the_tables() {
        let mut mine: Vec<ExtKey> = KEYS.iter().flat_map(|&(a, b)| [a, b]).collect();
        mine.sort_unstable();
        assert_eq!(mine, keys_of(PluginKind::Vlan));
    }

    fn udp_over(tags: &[(u16, u16)]) -> Vec<u8> {
        let ip = b::ipv4(17, 64, 0, 0, &[], &b::udp(1, 2, &[]));
        b::ether(tags, 0x0800, &ip)
    }

    #[test]
    fn outer_and_customer_tags_with_priorities() {
        // 802.1ad S-tag: priority 5, DEI, VID 100; C-tag: priority 3, VID 200.
        let f = udp_over(&[(0x88a8, 5 << 13 | 1 << 12 | 100), (0x8100, 3 << 13 | 200)]);
        let p = Pkt::frame(ETHERNET, &f, false);
        assert_eq!(p.pkt.key.vlan, 200, "the core vlanId: innermost");
        let ext = run(&mut Vlan, &[p]).unwrap();
        let [(id, prio), (cid, cprio)] = KEYS;
        assert_eq!(unsigned(&ext, id), 100);
        assert_eq!(unsigned(&ext, prio), 5);
        assert_eq!(unsigned(&ext, cid), 200);
        assert_eq!(unsigned(&ext, cprio), 3);
        // One tag: customer fields 0; a later packet's other tag does not count.
        let f = udp_over(&[(0x8100, 7 << 13 | 4094)]);
        let g = udp_over(&[(0x8100, 1 << 13 | 4094)]);
        let ext = run(
            &mut Vlan,
            &[
                Pkt::frame(ETHERNET, &f, false),
                Pkt::frame(ETHERNET, &g, true),
            ],
        )
        .unwrap();
        assert_eq!((unsigned(&ext, id), unsigned(&ext, prio)), (4094, 7));
        assert_eq!((unsigned(&ext, cid), unsigned(&ext, cprio)), (0, 0));
    }

    #[test]
    fn untagged_flows_carry_nothing() {
        let f = udp_over(&[]);
        assert!(run(&mut Vlan, &[Pkt::frame(ETHERNET, &f, false)]).is_none());
    }

    #[test]
    fn hostile_input_neither_panics_nor_leaks() {
        let (host, _) = build(&Default::default()).unwrap();
        hostile(host, 20_000);
    }
}
