//! `passivedns`: the name-to-address bindings DNS responses carry (ipfixprobe's passivedns):
//! every A, AAAA and PTR answer of the responses of a flow (messages from port 53), as what a
//! passive-DNS database stores: a name, the record's type and TTL, and an address.
//!
//! As in ipfixprobe, a record ends after each response (every datagram from port 53; over
//! TCP, each message completed between messages), so queries ride with the response that
//! follows them. Unlike ipfixprobe, which exports only the last answer of a response (its
//! record holds one extension of each kind), every answer is exported: one item per answer
//! in four parallel basicLists (at most [`MAX_ANSWERS`]), so that a collector keeps them
//! all, in answer order, without splitting a packet over records:
//!
//! * `dnsCrrName` (Flowmon 39499/116): an A or AAAA record's owner name, a PTR record's
//!   target, as text (see [`Name::write_text`]);
//! * `dnsCrrType` (39499/117): 1, 28 or 12;
//! * `dnsCrrTtl` (39499/119);
//! * `dnsCrrRdata` (39499/120): the address, 4 or 16 octets in network order (ipfixprobe
//!   sends IPv4 addresses byte-reversed); for PTR decoded from the owner name, in-addr.arpa
//!   or ip6.arpa (ipfixprobe garbles the latter). A PTR record whose owner is no address's
//!   reverse name (a network's, or not reverse at all) is not a binding and is left out.
//!
//! and `dnsId` (39499/110), the first response's transaction id. The elements are Flowmon's
//! resource-record ones, which collectors' registries know, and not ipfixprobe's (8057/2,
//! 5, 7, 10, 11), which the dns plugin exports as single values: a record cannot carry an
//! element twice.

use super::dns::{on_port, PAYLOAD};
use super::dns_source::{Messages, STREAM};
use super::dns_wire::{reverse_address, rtype, Entry, Message, Rdata, Section};
use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};
use std::net::IpAddr;

#[cfg(doc)]
use super::dns_wire::Name;

pub static SPEC: Spec = Spec {
    kind: PluginKind::Passivedns,
    about: "every A, AAAA and PTR answer of DNS responses (name, type, TTL, address) as \
            basicLists, one record per response",
    options: &[],
    build,
};

/// Answers kept per record: a response with more (a round-robin name of hundreds of
/// addresses) is exported with its first ones, so that a record fits an IPFIX message.
pub const MAX_ANSWERS: usize = 32;

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::FLOWMON,
        id,
    }
}
const ID: ExtKey = key(110);
const NAME: ExtKey = key(116);
const TYPE: ExtKey = key(117);
const TTL: ExtKey = key(119);
const RDATA: ExtKey = key(120);

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        stream: STREAM,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(PassiveDns)), needs))
}

/// One binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub addr: IpAddr,
}

/// The transaction id and the A, AAAA and PTR answers of a response (whole, or its first
/// octets: the answers before the cut), appended to `out` up to [`MAX_ANSWERS`]. `None`
/// when it is no DNS message.
pub fn answers(msg: &[u8], out: &mut Vec<Answer>) -> Option<u16> {
    let m = Message::new_checked(msg).ok()?;
    for e in m.entries() {
        let Ok(e) = e else { break };
        let Entry::Record(r) = e else { continue };
        if r.section != Section::Answer {
            // (Nothing after the answers is exported.)
            break;
        }
        if out.len() >= MAX_ANSWERS {
            break;
        }
        let (name, addr) = match (r.rtype, r.rdata()) {
            (rtype::A, Ok(Rdata::A(a))) => (r.name, IpAddr::from(a)),
            (rtype::AAAA, Ok(Rdata::Aaaa(a))) => (r.name, IpAddr::from(a)),
            (rtype::PTR, Ok(Rdata::Name(target))) => match reverse_address(&r.name) {
                Some(addr) => (target, addr),
                None => continue,
            },
            _ => continue,
        };
        out.push(Answer {
            name: name.to_text(),
            rtype: r.rtype,
            ttl: r.ttl,
            addr,
        });
    }
    Some(m.id())
}

struct PassiveDns;

#[derive(Default)]
pub struct State {
    messages: Messages,
    id: Option<u16>,
    answers: Vec<Answer>,
}

impl FlowPlugin for PassiveDns {
    type State = State;
    const READS_STREAM: bool = true;

    fn number(&self) -> u8 {
        PluginKind::Passivedns.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        on_port(p, 53).then(State::default)
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        // Responses come from the server's port (ipfixprobe's rule); a query only rides
        // along in the record.
        let response = p.pkt.key.src_port == 53;
        let State {
            messages,
            id,
            answers: found,
        } = s;
        let end = messages.packet(p, |msg, _| {
            if response {
                if let Some(i) = answers(msg, found) {
                    id.get_or_insert(i);
                }
            }
            // (Every datagram from port 53 ends the record, read or not, as in ipfixprobe.)
            response
        });
        if end {
            Verdict::EndAfter
        } else {
            Verdict::Continue
        }
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if s.answers.is_empty() {
            return false;
        }
        let a = &s.answers;
        out.unsigned(ID, s.id.unwrap_or(0).into());
        out.list_var(NAME, a.iter().map(|x| x.name.as_bytes()));
        out.list(TYPE, 2, a.iter().map(|x| u64::from(x.rtype)));
        out.list(TTL, 4, a.iter().map(|x| u64::from(x.ttl)));
        let octets: Vec<Vec<u8>> = a
            .iter()
            .map(|x| match x.addr {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            })
            .collect();
        out.list_var(RDATA, octets.iter().map(Vec::as_slice));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testdata::{self, exported, hex, json, udp, view};

    fn all(msg: &str) -> Vec<Answer> {
        let mut v = Vec::new();
        answers(&hex(msg), &mut v).unwrap();
        v
    }

    #[test]
    fn every_binding_of_a_response_in_answer_order() {
        let a = all(testdata::RESPONSE_3A);
        let addrs: Vec<String> = a.iter().map(|x| x.addr.to_string()).collect();
        assert_eq!(addrs, ["199.204.44.194", "198.145.20.140", "149.20.4.69"]);
        assert!(a
            .iter()
            .all(|x| x.name == "kernel.org" && x.rtype == 1 && x.ttl == 360));
        let a = all(testdata::RESPONSE_PTR);
        assert_eq!(
            a,
            [Answer {
                name: "www.cesnet.cz".into(),
                rtype: 12,
                ttl: 21599,
                addr: "195.113.144.230".parse().unwrap()
            }]
        );
        let a = all(testdata::RESPONSE_AAAA);
        assert_eq!(a[0].addr.to_string(), "2a00:1450:400d:806::200e");
        // MX and TXT answers bind no address; the RRSIG after the A is skipped.
        assert!(all(testdata::RESPONSE_MX).is_empty());
        assert_eq!(all(testdata::RESPONSE_RRSIG).len(), 1);
        // An mDNS response: its AAAA, and a PTR whose owner is a service, not an address.
        let a = all(testdata::MDNS_RESPONSE);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].addr.to_string(), "fe80::ba27:ebff:fec7:e9c9");
    }

    #[test]
    fn ip6_arpa_pointers_decode_to_the_address() {
        // PTR 9.c.9.e...8.e.f.ip6.arpa -> black-pearl.local (from MDNS_PROBE_HINFO's names).
        let mut msg = hex("0001 8400 0000 0001 0000 0000");
        let owner = "9.c.9.e.7.c.e.f.f.f.b.e.7.2.a.b.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa";
        for l in owner.split('.') {
            msg.push(l.len() as u8);
            msg.extend_from_slice(l.as_bytes());
        }
        msg.push(0);
        msg.extend_from_slice(&hex("000c 0001 00000078 0013"));
        msg.extend_from_slice(&hex("0b626c61636b2d706561726c 056c6f63616c 00"));
        let mut v = Vec::new();
        assert_eq!(answers(&msg, &mut v), Some(1));
        assert_eq!(v[0].name, "black-pearl.local");
        assert_eq!(v[0].addr.to_string(), "fe80::ba27:ebff:fec7:e9c9");
    }

    #[test]
    fn answers_are_bounded() {
        let mut msg = hex("0001 8180 0000 0028 0000 0000");
        for i in 0..40u8 {
            msg.extend_from_slice(&hex("00 0001 0001 0000003c 0004 0a000000"));
            *msg.last_mut().unwrap() = i;
        }
        let mut v = Vec::new();
        answers(&msg, &mut v);
        assert_eq!(v.len(), MAX_ANSWERS);
        answers(&msg, &mut v);
        assert_eq!(v.len(), MAX_ANSWERS, "across messages too");
    }

    #[test]
    fn a_response_ends_its_record_with_every_answer_in_lists() {
        let mut p = PassiveDns;
        let q = hex(testdata::QUERY_A);
        let r = hex(testdata::RESPONSE_3A);
        let (qp, rp) = (udp(40000, 53, q.len()), udp(53, 40000, r.len()));
        let mut s = p.attach(&view(&qp, &q, &[], false)).unwrap();
        assert_eq!(
            p.packet(&mut s, &view(&qp, &q, &[], false)),
            Verdict::Continue
        );
        assert_eq!(
            p.packet(&mut s, &view(&rp, &r, &[], true)),
            Verdict::EndAfter
        );
        let ext = exported(&mut p, PluginKind::Passivedns, s).unwrap();
        assert_eq!(json(&ext, "dnsId"), "18755");
        assert_eq!(
            json(&ext, "dnsCrrName"),
            "[\"kernel.org\",\"kernel.org\",\"kernel.org\"]"
        );
        assert_eq!(json(&ext, "dnsCrrType"), "[1,1,1]");
        assert_eq!(json(&ext, "dnsCrrTtl"), "[360,360,360]");
        // Network order: 199.204.44.194 is c7cc2cc2.
        assert_eq!(
            json(&ext, "dnsCrrRdata"),
            "[\"c7cc2cc2\",\"c691148c\",\"95140445\"]"
        );
        // A response without bindings ends its record too, with nothing to export.
        let r = hex(testdata::RESPONSE_MX);
        let rp = udp(53, 40000, r.len());
        let mut s = p.attach(&view(&rp, &r, &[], false)).unwrap();
        assert_eq!(
            p.packet(&mut s, &view(&rp, &r, &[], false)),
            Verdict::EndAfter
        );
        assert!(exported(&mut p, PluginKind::Passivedns, s).is_none());
    }

    #[test]
    fn thousands_of_damaged_real_messages_never_panic() {
        let mut n = 0;
        for m in testdata::mutations(&testdata::all(), 400) {
            let mut v = Vec::new();
            answers(&m, &mut v);
            assert!(v.len() <= MAX_ANSWERS);
            n += v.len();
        }
        assert!(n > 1_000, "{n}");
    }
}
