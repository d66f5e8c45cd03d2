//! `sip`: SIP messages over UDP and TCP (ipfixprobe's experimental sip plugin), each message
//! its own record: the request's method as ipfixprobe codes it and its Request-URI, the
//! response's status, and the CSeq, From and To URIs, Call-ID, User-Agent and Via of either.
//!
//! Messages are found on any port by their start line (RFC 3261 §7.1, §7.2): a whole request
//! line ending in `SIP/`, or `SIP/` and a digit. ipfixprobe knows ten methods by their first
//! four octets and wants 64 octets of payload; here any method is read, and a request with
//! one of ipfixprobe's ten gets its code (INVITE 1, ACK 2, CANCEL 3, BYE 4, REGISTER 5,
//! OPTIONS 6, PUBLISH 7, NOTIFY 8, INFO 9, SUBSCRIBE 10), another method (PRACK, UPDATE,
//! REFER, MESSAGE, ...) 0, a response 99. Over TCP the head comes from the stream, over
//! segments. Each message after a record's first ends the record before it
//! ([`Split::EachMessage`], as ipfixprobe's `FLOW_FLUSH_WITH_REINSERT`; a continuation is
//! oriented by its first packet, where ipfixprobe keeps the first record's orientation).
//!
//! Field names without regard to case, with the compact forms `f`, `t`, `i`, `v` (RFC 3261
//! §7.3.3); folded lines are joined. From and To give their URI: inside `<...>` when there
//! is one (so a display name or header parameters are left out), else up to the first `;`.
//! Via gives each via-parm, of every Via field, as its protocol and sent-by without
//! parameters (`SIP/2.0/UDP 192.0.2.1:5060`), joined with `;` as ipfixprobe joins them.
//!
//! Values are cut at a character boundary to at most: CSeq 64, From 160, To 160, Call-ID
//! 128, User-Agent 160, Request-URI 160, Via 255 octets (whole via-parms only); UTF-8, other
//! octets and control characters as U+FFFD.

use super::text_flow::{Split, MAX_HEAD};
use super::text_plugin::{Protocol, Reader, NEEDS};
use super::text_wire::{text, trim, Head, Kind, List, Syntax};
use super::{Built, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, Host};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Sip,
    about: "SIP message type, status, CSeq, calling and called party, Call-ID, user agent, \
            Request-URI, Via; each message its own record",
    options: &[],
    build,
};

/// SIP's start lines; every method needs the whole request line.
pub static SYNTAX: Syntax = Syntax {
    version: b"SIP/",
    methods: &[],
};

/// Octets of each value at most.
pub mod max {
    pub const CSEQ: usize = 64;
    pub const FROM: usize = 160;
    pub const TO: usize = 160;
    pub const CALL_ID: usize = 128;
    pub const USER_AGENT: usize = 160;
    pub const REQUEST_URI: usize = 160;
    pub const VIA: usize = 255;
}

/// SIPMsgType of a response.
pub const RESPONSE: u16 = 99;

/// ipfixprobe's codes of the methods it reads.
const METHODS: [&[u8]; 10] = [
    b"INVITE",
    b"ACK",
    b"CANCEL",
    b"BYE",
    b"REGISTER",
    b"OPTIONS",
    b"PUBLISH",
    b"NOTIFY",
    b"INFO",
    b"SUBSCRIBE",
];

const fn cesnet(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

const MSG_TYPE: ExtKey = cesnet(100);
const STATUS: ExtKey = cesnet(101);
const CALL_ID: ExtKey = cesnet(102);
const FROM: ExtKey = cesnet(103);
const TO: ExtKey = cesnet(104);
const VIA: ExtKey = cesnet(105);
const USER_AGENT: ExtKey = cesnet(106);
const REQUEST_URI: ExtKey = cesnet(107);
const CSEQ: ExtKey = cesnet(108);

fn build(_: &Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Reader::<Sip>::default())), NEEDS))
}

/// What one message gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields {
    pub msg_type: u16,
    pub status: u16,
    pub cseq: String,
    pub from: String,
    pub to: String,
    pub call_id: String,
    pub user_agent: String,
    pub request_uri: String,
    pub via: String,
}

/// The URI of a From or To value (RFC 3261 §20.20, §25.1: `name-addr / addr-spec` then
/// parameters): inside the first `<...>` outside a quoted display name, else up to `;`.
pub fn uri(value: &[u8]) -> &[u8] {
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b'<' if !quoted => {
                let inner = &value[i + 1..];
                let end = inner.iter().position(|&c| c == b'>').unwrap_or(inner.len());
                return trim(&inner[..end]);
            }
            _ => {}
        }
    }
    let end = value.iter().position(|&c| c == b';').unwrap_or(value.len());
    trim(&value[..end])
}

impl Fields {
    /// Take a message's head (the whole head, or what there is of it).
    pub fn take(&mut self, h: &Head<'_>) {
        *self = Fields::default();
        match h.kind {
            Kind::Request => {
                let method = h.method().unwrap_or(&[]);
                self.msg_type = METHODS
                    .iter()
                    .position(|m| *m == method)
                    .map_or(0, |i| i as u16 + 1);
                self.request_uri = text(h.target().unwrap_or(&[]), max::REQUEST_URI);
            }
            Kind::Response => {
                self.msg_type = RESPONSE;
                self.status = h.status().unwrap_or(0);
            }
        }
        let mut via = List::default();
        for (name, value) in h.fields() {
            let is = |long: &[u8], short: &[u8]| {
                name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(short)
            };
            // A field RFC 3261 allows once, given twice, counts the first time.
            let first = |s: &String| s.is_empty();
            if is(b"from", b"f") && first(&self.from) {
                self.from = text(uri(value), max::FROM);
            } else if is(b"to", b"t") && first(&self.to) {
                self.to = text(uri(value), max::TO);
            } else if is(b"call-id", b"i") && first(&self.call_id) {
                self.call_id = text(value, max::CALL_ID);
            } else if name.eq_ignore_ascii_case(b"cseq") && first(&self.cseq) {
                self.cseq = text(value, max::CSEQ);
            } else if name.eq_ignore_ascii_case(b"user-agent") && first(&self.user_agent) {
                self.user_agent = text(value, max::USER_AGENT);
            } else if is(b"via", b"v") {
                for parm in value.split(|&b| b == b',') {
                    let end = parm.iter().position(|&b| b == b';').unwrap_or(parm.len());
                    via.add(&text(trim(&parm[..end]), max::VIA), max::VIA);
                }
            }
        }
        self.via = via.as_str().to_owned();
    }
}

/// SIP as [`Reader`] reads it.
pub struct Sip;

impl Protocol for Sip {
    const KIND: PluginKind = PluginKind::Sip;
    const SYNTAX: &'static Syntax = &SYNTAX;
    const SPLIT: Split = Split::EachMessage;
    const UDP: bool = true;
    type Values = Fields;

    fn take(f: &mut Fields, h: &Head<'_>) {
        f.take(h);
    }

    fn export(f: &Fields, out: &mut ExtWriter<'_>) {
        out.unsigned(MSG_TYPE, f.msg_type.into());
        out.unsigned(STATUS, f.status.into());
        out.bytes(CSEQ, f.cseq.as_bytes());
        out.bytes(FROM, f.from.as_bytes());
        out.bytes(TO, f.to.as_bytes());
        out.bytes(CALL_ID, f.call_id.as_bytes());
        out.bytes(USER_AGENT, f.user_agent.as_bytes());
        out.bytes(REQUEST_URI, f.request_uri.as_bytes());
        out.bytes(VIA, f.via.as_bytes());
    }
}

/// The values one message gives (for the fuzz target and the damaged-message tests), or
/// `None` if it does not start with a SIP message.
pub fn parse(msg: &[u8]) -> Option<Fields> {
    let h = super::text_wire::head(&msg[..msg.len().min(MAX_HEAD)], &SYNTAX)?;
    let mut f = Fields::default();
    f.take(&h);
    Some(f)
}

#[cfg(test)]
mod tests;
