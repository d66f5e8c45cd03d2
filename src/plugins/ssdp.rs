//! `ssdp`: SSDP, UPnP's discovery over UDP port 1900 (ipfixprobe's ssdp plugin): what
//! devices announce (NOTIFY) and control points search for (M-SEARCH), and what devices
//! answer (`HTTP/1.1 200` from port 1900, which ipfixprobe does not read).
//!
//! Messages are HTTP heads in one datagram each ([`super::text_wire`]: field names without
//! regard to case, the space after the colon optional). Per record:
//!
//! * SSDPLocationPort: the port of the last LOCATION URL of a NOTIFY or a response: the
//!   URL's own, or its scheme's (80 for http, 443 for https); ipfixprobe takes the digits
//!   after the first `:` that follows the first `.` (IPv4) or `]` (IPv6), none without them.
//! * SSDPNT: the NT values of NOTIFY messages that are URNs (device and service types),
//!   without their `urn:` prefix, as ipfixprobe takes them.
//! * SSDPST: the same of ST values, of M-SEARCH messages and responses.
//! * SSDPServer: the SERVER values of NOTIFY messages and responses.
//! * SSDPUserAgent: the USER-AGENT values of M-SEARCH messages.
//!
//! Lists hold distinct values joined with `;` as ipfixprobe joins them (a value with a `;`
//! of its own is kept whole), whole values only, at most 255 octets (NT, ST) or 160 (Server,
//! User-Agent), UTF-8 (other octets and control characters U+FFFD).
//! ipfixprobe 5.7.0 sends the Server values as SSDPUserAgent and the User-Agent values as
//! SSDPServer, and keeps each value's trailing `\r` followed by `;`; here each element
//! carries what its name says, without either.

use super::text_wire::{head, text, trim, Head, Kind, List, Syntax};
use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Ssdp,
    about: "SSDP (UDP port 1900) location port, notification and search types, server and \
            user agent",
    options: &[],
    build,
};

/// The SSDP port.
pub const PORT: u16 = 1900;

/// SSDP's messages: HTTP over UDP (UPnP Device Architecture 2.0 §1).
pub static SYNTAX: Syntax = Syntax {
    version: b"HTTP/",
    methods: &[b"NOTIFY", b"M-SEARCH"],
};

/// Octets of each value at most.
pub mod max {
    pub const NT: usize = 255;
    pub const ST: usize = 255;
    pub const SERVER: usize = 160;
    pub const USER_AGENT: usize = 160;
}

/// Octets of a datagram read.
const PAYLOAD: usize = 4096;

const fn cesnet(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

const LOCATION_PORT: ExtKey = cesnet(821);
const SERVER: ExtKey = cesnet(822);
const USER_AGENT: ExtKey = cesnet(823);
const NT: ExtKey = cesnet(824);
const ST: ExtKey = cesnet(825);

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Ssdp)), needs))
}

/// What a record's messages gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    pub location_port: u16,
    pub nt: List,
    pub st: List,
    pub server: List,
    pub user_agent: List,
}

/// The port of a URL (`scheme://host[:port]/...`): its own, or its scheme's default.
pub fn url_port(url: &[u8]) -> Option<u16> {
    let sep = url.windows(3).position(|w| w == b"://")?;
    let scheme = &url[..sep];
    let rest = &url[sep + 3..];
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    // Past user information and an IPv6 literal's brackets.
    let host = match authority.iter().rposition(|&b| b == b'@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let after_host = match host.iter().rposition(|&b| b == b']') {
        Some(close) => &host[close + 1..],
        None => host,
    };
    match after_host.iter().rposition(|&b| b == b':') {
        Some(colon) => {
            let digits = &after_host[colon + 1..];
            if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let n = digits
                .iter()
                .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
            u16::try_from(n).ok()
        }
        None if scheme.eq_ignore_ascii_case(b"http") => Some(80),
        None if scheme.eq_ignore_ascii_case(b"https") => Some(443),
        None => None,
    }
}

/// A URN's value without its `urn:` prefix (compared without regard to case).
fn urn(value: &[u8]) -> Option<&[u8]> {
    let v = trim(value);
    let p = v.get(..4)?;
    p.eq_ignore_ascii_case(b"urn:").then(|| &v[4..])
}

impl Fields {
    /// Take one message's values.
    pub fn take(&mut self, h: &Head<'_>) {
        let notify = h
            .method()
            .is_some_and(|m| m.eq_ignore_ascii_case(b"NOTIFY"));
        let search = h
            .method()
            .is_some_and(|m| m.eq_ignore_ascii_case(b"M-SEARCH"));
        let response = h.kind == Kind::Response;
        for (name, value) in h.fields() {
            let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
            if is(b"location") && (notify || response) {
                if let Some(port) = url_port(trim(value)) {
                    self.location_port = port;
                }
            } else if is(b"nt") && notify {
                if let Some(u) = urn(value) {
                    self.nt.add_distinct(&text(u, max::NT), max::NT);
                }
            } else if is(b"st") && (search || response) {
                if let Some(u) = urn(value) {
                    self.st.add_distinct(&text(u, max::ST), max::ST);
                }
            } else if is(b"server") && (notify || response) {
                self.server
                    .add_distinct(&text(value, max::SERVER), max::SERVER);
            } else if is(b"user-agent") && search {
                let ua = text(value, max::USER_AGENT);
                self.user_agent.add_distinct(&ua, max::USER_AGENT);
            }
        }
    }
}

/// The plugin.
pub struct Ssdp;

impl FlowPlugin for Ssdp {
    /// Taken with the first SSDP message.
    type State = Option<Box<Fields>>;

    fn number(&self) -> u8 {
        PluginKind::Ssdp.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<Self::State> {
        let k = &p.pkt.key;
        (k.proto == proto::UDP && p.pkt.has_l4 && (k.src_port == PORT || k.dst_port == PORT))
            .then_some(None)
    }

    fn packet(&mut self, s: &mut Self::State, p: &PacketView<'_>) -> Verdict {
        if let Some(h) = head(&p.payload[..p.payload.len().min(PAYLOAD)], &SYNTAX) {
            s.get_or_insert_with(Default::default).take(&h);
        }
        Verdict::Continue
    }

    fn export(&mut self, s: Self::State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let Some(f) = s else {
            return false;
        };
        out.unsigned(LOCATION_PORT, f.location_port.into());
        out.bytes(NT, f.nt.as_str().as_bytes());
        out.bytes(USER_AGENT, f.user_agent.as_str().as_bytes());
        out.bytes(ST, f.st.as_str().as_bytes());
        out.bytes(SERVER, f.server.as_str().as_bytes());
        true
    }
}

/// The values of a record of these datagrams (for the fuzz target and the damaged-message
/// tests), or `None` if none is an SSDP message.
pub fn parse<'a>(datagrams: impl IntoIterator<Item = &'a [u8]>) -> Option<Fields> {
    let mut f: Option<Fields> = None;
    for d in datagrams {
        if let Some(h) = head(&d[..d.len().min(PAYLOAD)], &SYNTAX) {
            f.get_or_insert_with(Default::default).take(&h);
        }
    }
    f
}

#[cfg(test)]
mod tests;
