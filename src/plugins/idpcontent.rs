//! `idpcontent`: the first 100 octets of transport payload of each direction (ipfixprobe's
//! initial data packet content), from the direction's first packet that carries payload:
//! IDPContent and IDPContentRev (CESNET 850/851, two elements, not RFC 5103 reverse forms).
//!
//! Payload is what follows the TCP, UDP, SCTP or ICMP header, as far as it was captured (a
//! snaplen cuts it; a packet whose payload was not captured at all counts as empty). A
//! direction without payload gives an empty value. (ipfixprobe parses no ICMP header, so its
//! ICMP content starts with the type and code; qof's, like its TCP and UDP content, after the
//! header.) Both elements are always present, as in ipfixprobe.

use super::{Built, Needs, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Idpcontent,
    about: "the first 100 payload octets of each direction",
    options: &[],
    build,
};

/// Octets kept per direction (ipfixprobe's IDPCONTENT_SIZE).
pub const SIZE: usize = 100;

const CONTENT: [ExtKey; 2] = [
    ExtKey {
        pen: pen::CESNET,
        id: 850,
    },
    ExtKey {
        pen: pen::CESNET,
        id: 851,
    },
];

fn build(_: &super::Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: SIZE,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Idpcontent)), needs))
}

struct Idpcontent;

pub struct State {
    content: [[u8; SIZE]; 2],
    /// Octets kept per direction; `None` until the direction carried payload.
    len: [Option<u8>; 2],
}

const _: () = assert!(!std::mem::needs_drop::<State>() && SIZE <= u8::MAX as usize);

impl FlowPlugin for Idpcontent {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Idpcontent.number()
    }

    fn attach(&mut self, _: &PacketView<'_>) -> Option<State> {
        Some(State {
            content: [[0; SIZE]; 2],
            len: [None; 2],
        })
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let d = usize::from(p.reverse);
        if s.len[d].is_none() && !p.payload.is_empty() {
            let n = p.payload.len().min(SIZE);
            s.content[d][..n].copy_from_slice(&p.payload[..n]);
            s.len[d] = Some(n as u8);
            if s.len.iter().all(Option::is_some) {
                return Verdict::Done;
            }
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        for (d, key) in CONTENT.into_iter().enumerate() {
            let n = usize::from(s.len[d].unwrap_or(0));
            out.bytes(key, &s.content[d][..n]);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{build as b, bytes, hostile, keys_of, run, Pkt};
    use super::*;

    #[test]
    fn keys_are_the_tables() {
        assert_eq!(CONTENT.to_vec(), keys_of(PluginKind::Idpcontent));
    }

    #[test]
    fn first_payload_of_each_direction_cut_to_100() {
        let long: Vec<u8> = (0..=255).collect();
        let syn = b::ipv4(6, 64, 0, 0, &[], &b::tcp(1, 80, 0x02, 10, &[], &[]));
        let req = b::ipv4(
            6,
            64,
            0,
            0,
            &[],
            &b::tcp(1, 80, 0x18, 10, &[], b"GET / HTTP/1.1\r\n"),
        );
        let resp = b::ipv4(6, 64, 0, 0, &[], &b::tcp(80, 1, 0x18, 10, &[], &long));
        let again = b::ipv4(6, 64, 0, 0, &[], &b::tcp(1, 80, 0x18, 10, &[], b"more"));
        let ext = run(
            &mut Idpcontent,
            &[
                Pkt::ip(&syn, false),
                Pkt::ip(&req, false),
                Pkt::ip(&resp, true),
                Pkt::ip(&again, false),
            ],
        )
        .unwrap();
        assert_eq!(bytes(&ext, CONTENT[0]), b"GET / HTTP/1.1\r\n");
        assert_eq!(bytes(&ext, CONTENT[1]), &long[..100]);
    }

    /// A one-way flow: the reverse content is empty, but present. A payload cut by the
    /// snaplen is kept as captured.
    #[test]
    fn snapped_payload_and_silent_direction() {
        let mut dns = b::ipv4(17, 64, 0, 0, &[], &b::udp(5353, 53, &[7; 60]));
        dns.truncate(20 + 8 + 12);
        let ext = run(&mut Idpcontent, &[Pkt::ip(&dns, false)]).unwrap();
        assert_eq!(bytes(&ext, CONTENT[0]), [7; 12]);
        assert_eq!(
            ext.get(CONTENT[1]),
            Some(crate::meter::ExtValue::Bytes(&[]))
        );
    }

    #[test]
    fn hostile_input_neither_panics_nor_leaks() {
        let (host, needs) = build(&Default::default()).unwrap();
        assert_eq!(needs.payload, SIZE);
        hostile(host, 20_000);
    }
}
