//! `dnssd`: DNS service discovery over multicast DNS (RFC 6762/6763; UDP port 5353),
//! ipfixprobe's dnssd: what the messages of a flow ask for and what they announce, gathered
//! over the whole flow (no export is forced). Two texts, each at most 510 octets of whole
//! entries (ipfixprobe stops at the first entry that does not fit; qof leaves it out and goes
//! on):
//!
//! * `DNSSDQueries`: every distinct question name, each followed by `;`;
//! * `DNSSDResponses`: one entry per distinct owner name of SRV, HINFO and TXT records, as
//!   `name;port;target;cpu:os;txt;` (port -1 and target empty without an SRV record, `cpu:os`
//!   empty without HINFO, txt empty unless the `txt` option is given: then each distinct TXT
//!   string followed by `:`). Records are taken from responses' answers and additional
//!   records, and from every message's authority section (a probe's proposed records).
//!
//! Names are text as [`Name::write_text`] writes them, and a `;` inside a name or string is
//! written `\059` (a `:` inside a TXT or HINFO string `\058`) so that the separators stay
//! separators. Names in the arpa domain (reverse lookups) are left out, as in ipfixprobe
//! (which leaves out any name containing "arpa"). ipfixprobe's `txt=FILE` whitelist is not
//! taken (in 5.7.0 the option also keeps every TXT string, which overrides the whitelist).
//! A TXT string is added once to an entry (ipfixprobe appends a response's strings again
//! with a doubled `:`).

use super::dns::PAYLOAD;
use super::dns_wire::{rtype, write_octets, Entry, Message, Name, Rdata, Section};
use super::{Built, Needs, OptionSpec, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Dnssd,
    about: "mDNS service discovery (UDP port 5353): the names asked for, and the services \
            announced (SRV port and target, HINFO, TXT)",
    options: &[OptionSpec {
        name: "txt",
        short: "t",
        takes_value: false,
        help: "keep the strings of TXT records",
    }],
    build,
};

/// Octets of each text exported at most, whole entries only (ipfixprobe's bound).
pub const MAX_TEXT: usize = 510;

const QUERIES: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 826,
};
const RESPONSES: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 827,
};

fn build(o: &Options) -> Result<Built, PluginError> {
    let p = Dnssd { txt: o.flag("txt") };
    let needs = Needs {
        payload: PAYLOAD,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(p)), needs))
}

/// What a service's records say, for one owner name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Service {
    name: String,
    port: Option<u16>,
    target: String,
    hinfo: Option<(String, String)>,
    txt: Vec<String>,
}

impl Service {
    fn write(&self, out: &mut String) {
        use std::fmt::Write;
        let port = self.port.map_or(-1, i32::from);
        let _ = write!(out, "{};{port};{};", self.name, self.target);
        if let Some((cpu, os)) = &self.hinfo {
            let _ = write!(out, "{cpu}:{os}");
        }
        out.push(';');
        for t in &self.txt {
            out.push_str(t);
            out.push(':');
        }
        out.push(';');
    }

    fn len(&self) -> usize {
        let mut s = String::new();
        self.write(&mut s);
        s.len()
    }
}

/// What a flow's messages said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// A message was read as DNS.
    read: bool,
    queries: Vec<String>,
    services: Vec<Service>,
}

/// Text for a name or string inside an entry: `;` (and `:` when `colon`) escaped too.
fn field(text: String, colon: bool) -> String {
    let mut s = text.replace(';', "\\059");
    if colon {
        s = s.replace(':', "\\058");
    }
    s
}

fn name_text(n: &Name<'_>) -> String {
    field(n.to_text(), false)
}

fn string_text(b: &[u8]) -> String {
    let mut s = String::new();
    write_octets(b, &mut s);
    field(s, true)
}

/// A name in the arpa domain (a reverse lookup).
fn is_arpa(n: &Name<'_>) -> bool {
    n.labels()
        .last()
        .is_some_and(|l| l.eq_ignore_ascii_case(b"arpa"))
}

impl State {
    /// Octets the exported texts would take (beyond [`MAX_TEXT`], nothing more is gathered:
    /// it would not be exported).
    fn query_text_len(&self) -> usize {
        self.queries.iter().map(|q| q.len() + 1).sum()
    }

    fn add_query(&mut self, n: &Name<'_>) {
        if is_arpa(n) || self.query_text_len() > MAX_TEXT {
            return;
        }
        let text = name_text(n);
        if !self.queries.contains(&text) {
            self.queries.push(text);
        }
    }

    /// The entry for `n`, made if there is room for it.
    fn service(&mut self, n: &Name<'_>) -> Option<&mut Service> {
        let text = name_text(n);
        if let Some(i) = self.services.iter().position(|s| s.name == text) {
            return self.services.get_mut(i);
        }
        if self.services.iter().map(Service::len).sum::<usize>() > MAX_TEXT {
            return None;
        }
        self.services.push(Service {
            name: text,
            ..Service::default()
        });
        self.services.last_mut()
    }

    /// Read one message; false when it is no DNS message.
    pub fn read(&mut self, msg: &[u8], keep_txt: bool) -> bool {
        let Ok(m) = Message::new_checked(msg) else {
            return false;
        };
        let mut entries = m.entries();
        let mut any = false;
        for e in entries.by_ref() {
            let Ok(e) = e else { break };
            any = true;
            let r = match e {
                Entry::Question(q) => {
                    self.add_query(&q.name);
                    continue;
                }
                Entry::Record(r) => r,
            };
            // (A query's known answers and additional records are the asker's cache.)
            if r.section != Section::Authority && !m.is_response() {
                continue;
            }
            if !matches!(r.rtype, rtype::SRV | rtype::HINFO | rtype::TXT) || is_arpa(&r.name) {
                continue;
            }
            let Ok(rdata) = r.rdata() else { continue };
            let Some(s) = self.service(&r.name) else {
                continue;
            };
            match rdata {
                Rdata::Srv { port, target, .. } => {
                    s.port = Some(port);
                    s.target = name_text(&target);
                }
                Rdata::Hinfo { cpu, os } => s.hinfo = Some((string_text(cpu), string_text(os))),
                Rdata::Txt(strings) if keep_txt => {
                    for t in strings {
                        let t = string_text(t);
                        // (An entry longer than a text can be would never be exported.)
                        if s.len() + t.len() < MAX_TEXT && !s.txt.contains(&t) {
                            s.txt.push(t);
                        }
                    }
                }
                _ => {}
            }
        }
        // A header alone is a message only if it promises nothing more.
        let counted = [m.qdcount(), m.ancount(), m.nscount(), m.arcount()];
        let read = any || counted.iter().all(|&c| c == 0);
        self.read |= read;
        read
    }

    /// The two texts: whole entries, in the order first seen, up to [`MAX_TEXT`] octets
    /// each (an entry that does not fit is left out, the next may).
    pub fn texts(&self) -> (String, String) {
        let mut queries = String::new();
        for q in &self.queries {
            if queries.len() + q.len() < MAX_TEXT {
                queries.push_str(q);
                queries.push(';');
            }
        }
        let mut responses = String::new();
        let mut entry = String::new();
        for s in &self.services {
            entry.clear();
            s.write(&mut entry);
            if responses.len() + entry.len() <= MAX_TEXT {
                responses.push_str(&entry);
            }
        }
        (queries, responses)
    }
}

struct Dnssd {
    txt: bool,
}

impl FlowPlugin for Dnssd {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Dnssd.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        let k = &p.pkt.key;
        (k.proto == proto::UDP && (k.src_port == 5353 || k.dst_port == 5353)).then(State::default)
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        if !matches!(p.pkt.frag, Some(f) if f.offset != 0) {
            s.read(p.payload, self.txt);
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if !s.read {
            return false;
        }
        let (queries, responses) = s.texts();
        out.bytes(QUERIES, queries.as_bytes());
        out.bytes(RESPONSES, responses.as_bytes());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testdata::{self, exported, hex, json, udp, view};

    fn texts(msgs: &[&str], txt: bool) -> (String, String) {
        let mut s = State::default();
        for m in msgs {
            assert!(s.read(&hex(m), txt));
        }
        s.texts()
    }

    #[test]
    fn a_probe_and_a_response_as_ipfixprobe_writes_them() {
        // The probe asks for the workstation service and proposes its SRV and TXT records
        // (authority section); the response announces them with an AAAA and PTRs.
        let (q, r) = texts(&[testdata::MDNS_PROBE], false);
        let name = "black-pearl [b8:27:eb:c7:e9:c9]._workstation._tcp.local";
        assert_eq!(q, format!("{name};"));
        assert_eq!(r, format!("{name};9;black-pearl.local;;;"));
        let (q, r) = texts(&[testdata::MDNS_RESPONSE], true);
        assert_eq!(q, "");
        // TXT first (an empty string), then the SRV of the same name.
        assert_eq!(r, format!("{name};9;black-pearl.local;;:;"));
        // HINFO; the ip6.arpa question is left out.
        let (q, r) = texts(&[testdata::MDNS_PROBE_HINFO], false);
        assert_eq!(q, "black-pearl.local;");
        assert_eq!(r, "black-pearl.local;-1;;ARMV6L:LINUX;;");
    }

    #[test]
    fn a_querys_known_answers_are_not_announcements() {
        // A query (QR 0) with an SRV answer: ignored; the same as a response: taken.
        let mut msg = hex("0000 0000 0000 0001 0000 0000");
        msg.extend_from_slice(&hex("03737663 056c6f63616c 00 0021 0001 00000078 0009"));
        msg.extend_from_slice(&hex("0000 0000 0050 01 68 00"));
        let mut s = State::default();
        assert!(s.read(&msg, false));
        assert_eq!(s.texts(), (String::new(), String::new()));
        msg[2] = 0x84;
        assert!(s.read(&msg, false));
        assert_eq!(s.texts().1, "svc.local;80;h;;;");
    }

    #[test]
    fn separators_inside_names_and_strings_are_escaped() {
        // TXT "a;b:c" for owner "x;y.local".
        let mut msg = hex("0000 8400 0000 0001 0000 0000");
        msg.extend_from_slice(&hex("03783b79 056c6f63616c 00 0010 0001 00000078 0006"));
        msg.extend_from_slice(&hex("05613b623a63"));
        let mut s = State::default();
        s.read(&msg, true);
        assert_eq!(s.texts().1, "x\\059y.local;-1;;;a\\059b\\058c:;");
    }

    #[test]
    fn texts_hold_whole_entries_up_to_510_octets() {
        let mut s = State::default();
        for i in 0..200 {
            let mut msg = hex("0000 0000 0001 0000 0000 0000");
            let label = format!("service-number-{i:03}");
            msg.push(label.len() as u8);
            msg.extend_from_slice(label.as_bytes());
            msg.extend_from_slice(&hex("056c6f63616c 00 000c 0001"));
            s.read(&msg, false);
        }
        let (q, _) = s.texts();
        assert!(
            q.len() <= MAX_TEXT && q.len() > MAX_TEXT - 30,
            "{}",
            q.len()
        );
        assert!(q.ends_with(';') && q.starts_with("service-number-000.local;"));
        assert!(s.queries.len() < 40, "gathering stops past the bound");
    }

    #[test]
    fn a_flow_gathers_every_message_and_exports_once() {
        let mut p = Dnssd { txt: true };
        let (a, b) = (hex(testdata::MDNS_PROBE), hex(testdata::MDNS_PROBE_HINFO));
        let pkt = udp(5353, 5353, a.len());
        let mut s = p.attach(&view(&pkt, &a, &[], false)).unwrap();
        for m in [&a, &b] {
            assert_eq!(
                p.packet(&mut s, &view(&pkt, m, &[], false)),
                Verdict::Continue
            );
        }
        let ext = exported(&mut p, PluginKind::Dnssd, s).unwrap();
        assert_eq!(
            json(&ext, "DNSSDQueries"),
            "\"black-pearl [b8:27:eb:c7:e9:c9]._workstation._tcp.local;black-pearl.local;\""
        );
        assert!(json(&ext, "DNSSDResponses").contains(";black-pearl.local;-1;;ARMV6L:LINUX;;"));
        // Not DNS: nothing.
        let mut s = p.attach(&view(&pkt, &[], &[], false)).unwrap();
        p.packet(&mut s, &view(&pkt, &[1, 2, 3], &[], false));
        assert!(exported(&mut p, PluginKind::Dnssd, s).is_none());
    }

    #[test]
    fn thousands_of_damaged_real_messages_never_panic() {
        let mut s = State::default();
        for m in testdata::mutations(&testdata::all(), 400) {
            s.read(&m, true);
        }
        let (q, r) = s.texts();
        assert!(q.len() <= MAX_TEXT && r.len() <= MAX_TEXT);
        assert!(!q.is_empty() && !r.is_empty());
    }
}
