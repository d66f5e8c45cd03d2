//! `dns`: DNS over UDP and TCP port 53 (ipfixprobe's dns), each message its own record: the
//! record ends after the packet that completes a message (flowEndReason 3), so a query and
//! its response are two records, and every packet is still in exactly one.
//!
//! Per message: transaction id, RCODE (the header's), ANCOUNT, the first question's name,
//! type and class, the first answer's TTL, RDLENGTH and RDATA as text (zone-file form: see
//! [`Rdata::write_text`]), and the OPT record's UDP payload size and DO bit (EDNS). A record
//! with several messages (a TCP segment that ends inside the next one) carries the first.
//!
//! Where qof differs from ipfixprobe 5.7.0: over TCP, messages are read from the meter's
//! stream, several per connection and one over several segments (ipfixprobe reads only a
//! segment that holds exactly one message); DNSRDataLength is the wire RDLENGTH, as the
//! element's name says (ipfixprobe sends the length of its own text); RDATA text follows the
//! zone-file form for every type (ipfixprobe: "(not_impl)" for most, placeholders for keys,
//! the DS algorithm replaced by the key tag, SRV owner-name munging); names are text with
//! escapes (see [`Name::write_text`]), not raw octets cut at 127; a fragmented datagram is
//! read from its first fragment and its record ends with the last fragment.

use super::dns_source::{Messages, STREAM};
use super::dns_wire::{rtype, Entry, Error, Message, Rdata, Section};
use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

#[cfg(doc)]
use super::dns_wire::Name;

pub static SPEC: Spec = Spec {
    kind: PluginKind::Dns,
    about: "DNS over UDP and TCP port 53, one record per message: id, rcode, first question \
            and answer, EDNS",
    options: &[],
    build,
};

/// Octets of a datagram read at most: any DNS message.
pub const PAYLOAD: usize = 65_535;
/// DNSRData is cut to this many octets (at a character boundary): a record must fit an IPFIX
/// message, over UDP 1,420 octets. (A name's text is at most 1,020: 255 octets, each `\DDD`.)
pub const MAX_RDATA_TEXT: usize = 512;

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}
const RCODE: ExtKey = key(1);
const NAME: ExtKey = key(2);
const QTYPE: ExtKey = key(3);
const CLASS: ExtKey = key(4);
const TTL: ExtKey = key(5);
const RDLENGTH: ExtKey = key(6);
const RDATA: ExtKey = key(7);
const PSIZE: ExtKey = key(8);
const DO: ExtKey = key(9);
const ID: ExtKey = key(10);
const ANSWERS: ExtKey = key(14);

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        stream: STREAM,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Dns)), needs))
}

/// What one DNS message says, as the dns plugin exports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub id: u16,
    pub rcode: u8,
    pub answers: u16,
    /// The first question's name, type and class ("" and 0 without one).
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    /// The first answer's TTL, RDLENGTH and RDATA text (0 and "" without one).
    pub ttl: u32,
    pub rdlength: u16,
    pub rdata: String,
    /// The OPT record's UDP payload size and DO bit (0 without EDNS).
    pub psize: u16,
    pub dnssec_ok: bool,
}

/// `s` cut to at most `max` octets, at a character boundary.
pub(crate) fn cut_text(s: &mut String, max: usize) {
    if s.len() > max {
        let mut n = max;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
}

/// Read a DNS message; `whole`: all of it is here (not cut by the capture or a fragment).
/// `None` when it is no DNS message: shorter than a header, or a first question that is no
/// name, or missing from a whole message.
pub fn summarize(msg: &[u8], whole: bool) -> Option<Summary> {
    let m = Message::new_checked(msg).ok()?;
    let mut s = Summary {
        id: m.id(),
        rcode: m.rcode(),
        answers: m.ancount(),
        ..Summary::default()
    };
    let (mut question, mut answer) = (false, false);
    for e in m.entries() {
        match e {
            Ok(Entry::Question(q)) if !question => {
                question = true;
                q.name.write_text(&mut s.name);
                (s.qtype, s.qclass) = (q.qtype, q.qclass);
            }
            Ok(Entry::Question(_)) => {}
            Ok(Entry::Record(r)) if r.section == Section::Answer && !answer => {
                answer = true;
                (s.ttl, s.rdlength) = (r.ttl, r.rdlength());
                // (RDATA its type cannot read is written as octets, RFC 3597's form.)
                let rdata = r.rdata().unwrap_or(Rdata::Other(r.rdata_bytes()));
                rdata.write_text(&mut s.rdata);
                cut_text(&mut s.rdata, MAX_RDATA_TEXT);
            }
            Ok(Entry::Record(r)) if r.section == Section::Additional && r.rtype == rtype::OPT => {
                // RFC 6891 §6.1.3: CLASS is the UDP payload size, TTL's bit 15 is DO.
                s.psize = r.class;
                s.dnssec_ok = r.ttl & 0x8000 != 0;
            }
            Ok(Entry::Record(_)) => {}
            Err(e) => {
                let cut = e == Error::Truncated && !whole;
                if !question && m.qdcount() > 0 && !cut {
                    return None;
                }
                break;
            }
        }
    }
    Some(s)
}

/// UDP or TCP with port 53 on either side.
pub(crate) fn on_port(p: &PacketView<'_>, port: u16) -> bool {
    let k = &p.pkt.key;
    matches!(k.proto, proto::UDP | proto::TCP) && (k.src_port == port || k.dst_port == port)
}

struct Dns;

#[derive(Default)]
pub struct State {
    messages: Messages,
    /// The record's first message.
    summary: Option<Box<Summary>>,
}

impl FlowPlugin for Dns {
    type State = State;
    const READS_STREAM: bool = true;

    fn number(&self) -> u8 {
        PluginKind::Dns.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        on_port(p, 53).then(State::default)
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let State { messages, summary } = s;
        let end = messages.packet(p, |msg, whole| match summarize(msg, whole) {
            Some(found) => {
                summary.get_or_insert_with(|| Box::new(found));
                true
            }
            None => false,
        });
        if end {
            Verdict::EndAfter
        } else {
            Verdict::Continue
        }
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let Some(m) = s.summary else {
            return false;
        };
        out.unsigned(ANSWERS, m.answers.into());
        out.unsigned(RCODE, m.rcode.into());
        out.unsigned(QTYPE, m.qtype.into());
        out.unsigned(CLASS, m.qclass.into());
        out.unsigned(TTL, m.ttl.into());
        out.unsigned(RDLENGTH, m.rdlength.into());
        out.unsigned(PSIZE, m.psize.into());
        out.unsigned(DO, m.dnssec_ok.into());
        out.unsigned(ID, m.id.into());
        out.bytes(NAME, m.name.as_bytes());
        out.bytes(RDATA, m.rdata.as_bytes());
        true
    }
}

#[cfg(test)]
mod tests;
