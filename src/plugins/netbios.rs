//! `netbios`: the NetBIOS name a flow of the NetBIOS name service (NBNS, RFC 1002; UDP port
//! 137) is about (ipfixprobe's netbios): the name its last message read asks for, registers
//! or answers, and the name's suffix (its 16th octet, the service: 0x00 workstation, 0x1d
//! master browser, ...). No export is forced.
//!
//! NBNS messages are DNS messages whose names start with the NetBIOS name in "first-level
//! encoding" (RFC 1001 §14.1): a label of 32 letters 'A'-'P', two per octet. Where qof
//! differs from ipfixprobe: a message without questions (a response) gives its first
//! record's name (ipfixprobe reads questions only, so a response's flow, which a broadcast
//! query's never is, had no name); a label of other letters is not a NetBIOS name (ipfixprobe
//! decodes any); the name is given without the spaces that pad it to 15 octets, as tshark
//! shows it (ipfixprobe keeps them), and as text: control characters (those of
//! "\001\002__MSBROWSE__\002") and octets that are not UTF-8 as `\DDD`, a backslash doubled.

use super::dns_wire::{write_octets, Entry, Message};
use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Netbios,
    about: "the NetBIOS name and suffix of NetBIOS name service messages (UDP port 137)",
    options: &[],
    build,
};

/// NBNS datagrams are at most 576 octets (RFC 1002 §4.2.1).
const PAYLOAD: usize = 576;

const SUFFIX: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 832,
};
const NAME: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 831,
};

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Netbios)), needs))
}

/// A NetBIOS name: its first 15 octets as text, padding removed, and its suffix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NbName {
    pub name: String,
    pub suffix: u8,
}

/// Decode a first-level-encoded NetBIOS name (32 letters 'A'-'P').
pub fn decode_name(label: &[u8]) -> Option<NbName> {
    let letters: &[u8; 32] = label.try_into().ok()?;
    let mut raw = [0u8; 16];
    for (o, pair) in raw.iter_mut().zip(letters.chunks_exact(2)) {
        let nibble = |c: u8| (b'A'..=b'P').contains(&c).then(|| c - b'A');
        *o = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    let (name, suffix) = raw.split_at(15);
    let end = name.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    let mut text = String::new();
    write_octets(&name[..end], &mut text);
    Some(NbName {
        name: text,
        suffix: suffix[0],
    })
}

/// The NetBIOS name of an NBNS message: its first question's, or without questions its first
/// record's. `None` when it has none, or it is not first-level encoded.
pub fn read(msg: &[u8]) -> Option<NbName> {
    let m = Message::new_checked(msg).ok()?;
    let name = match m.entries().next()?.ok()? {
        Entry::Question(q) => q.name,
        Entry::Record(r) => r.name,
    };
    decode_name(name.labels().next()?)
}

struct Netbios;

impl FlowPlugin for Netbios {
    type State = Option<NbName>;

    fn number(&self) -> u8 {
        PluginKind::Netbios.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<Self::State> {
        let k = &p.pkt.key;
        (k.proto == proto::UDP && (k.src_port == 137 || k.dst_port == 137)).then_some(None)
    }

    fn packet(&mut self, s: &mut Self::State, p: &PacketView<'_>) -> Verdict {
        // The last message read wins (ipfixprobe's).
        if !matches!(p.pkt.frag, Some(f) if f.offset != 0) {
            if let Some(n) = read(p.payload) {
                *s = Some(n);
            }
        }
        Verdict::Continue
    }

    fn export(&mut self, s: Self::State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let Some(n) = s else {
            return false;
        };
        out.unsigned(SUFFIX, n.suffix.into());
        out.bytes(NAME, n.name.as_bytes());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testdata::{self, exported, hex, json, udp, view};

    /// `name` padded to 15 octets with `suffix`, first-level encoded.
    fn encode(name: &[u8], suffix: u8) -> Vec<u8> {
        let mut raw = name.to_vec();
        raw.resize(15, b' ');
        raw.push(suffix);
        raw.iter()
            .flat_map(|&b| [b'A' + (b >> 4), b'A' + (b & 15)])
            .collect()
    }

    #[test]
    fn names_as_tshark_shows_them() {
        // tshark: nbns.name "WORKGROUP<1d>", "DHCPH219<00>".
        let n = read(&hex(testdata::NBNS_QUERY)).unwrap();
        assert_eq!((n.name.as_str(), n.suffix), ("WORKGROUP", 0x1d));
        let n = read(&hex(testdata::NBNS_REGISTRATION)).unwrap();
        assert_eq!((n.name.as_str(), n.suffix), ("DHCPH219", 0));
        let n = decode_name(&encode(b"\x01\x02__MSBROWSE__\x02", 1)).unwrap();
        assert_eq!(
            (n.name.as_str(), n.suffix),
            ("\\001\\002__MSBROWSE__\\002", 1)
        );
        let n = decode_name(&encode(b"A\\B\xe9", 0x20)).unwrap();
        assert_eq!(n.name, "A\\\\B\\233");
        assert_eq!(decode_name(&encode(b"", 0)).unwrap().name, "");
    }

    #[test]
    fn a_response_gives_its_first_records_name() {
        // A positive name query response: no question, one answer for FILESRV<20>.
        let mut msg = hex("1234 8500 0000 0001 0000 0000 20");
        msg.extend_from_slice(&encode(b"FILESRV", 0x20));
        msg.extend_from_slice(&hex("00 0020 0001 00000000 0006 0000 0a000001"));
        let n = read(&msg).unwrap();
        assert_eq!((n.name.as_str(), n.suffix), ("FILESRV", 0x20));
    }

    #[test]
    fn what_is_not_a_netbios_name_is_refused() {
        assert_eq!(decode_name(&[b'A'; 31]), None);
        let mut bad = encode(b"X", 0);
        bad[3] = b'Q';
        assert_eq!(decode_name(&bad), None);
        bad[3] = b'a';
        assert_eq!(decode_name(&bad), None);
        // A DNS query (labels of other lengths), an empty message, a header alone.
        assert_eq!(read(&hex(testdata::QUERY_A)), None);
        assert_eq!(read(&[]), None);
        assert_eq!(read(&hex("0000 0110 0001 0000 0000 0000")), None);
    }

    #[test]
    fn the_last_name_of_a_flow_is_exported() {
        let mut p = Netbios;
        let (a, b) = (hex(testdata::NBNS_QUERY), hex(testdata::NBNS_REGISTRATION));
        let pkt = udp(137, 137, a.len());
        let mut s = p.attach(&view(&pkt, &a, &[], false)).unwrap();
        for m in [&a, &b, &vec![1, 2, 3]] {
            assert_eq!(
                p.packet(&mut s, &view(&pkt, m, &[], false)),
                Verdict::Continue
            );
        }
        let ext = exported(&mut p, PluginKind::Netbios, s).unwrap();
        assert_eq!(json(&ext, "NBName"), "\"DHCPH219\"");
        assert_eq!(json(&ext, "NBSuffix"), "0");
        let dns = udp(53, 137, 0);
        let mut s = p.attach(&view(&dns, &[], &[], false)).unwrap();
        p.packet(&mut s, &view(&dns, &[], &[], false));
        assert!(exported(&mut p, PluginKind::Netbios, s).is_none());
    }

    #[test]
    fn thousands_of_damaged_real_messages_never_panic() {
        let real = [hex(testdata::NBNS_QUERY), hex(testdata::NBNS_REGISTRATION)];
        let mut n = 0;
        for m in testdata::mutations(&real, 2_000) {
            if let Some(name) = read(&m) {
                n += 1;
                assert!(name.name.len() <= 15 * 4);
            }
        }
        assert!(n > 500, "{n}");
    }
}
