//! `http`: HTTP/1.x requests and responses over TCP (ipfixprobe's http plugin): the request's
//! method, target, Host, User-Agent and Referer, the response's status, Content-Type, Server
//! and the names of the cookies it sets.
//!
//! Messages are found on any port, by their start line (a known method or a whole request
//! line ending in `HTTP/`; `HTTP/` and a digit for a response), and their heads are read from
//! the TCP stream, so a head split over segments, out of order or retransmitted is read whole
//! (ipfixprobe reads the first segment only); see [`super::text_flow`]. Field names are matched
//! without regard to case and the space after the colon is optional (RFC 9110 §5).
//!
//! One record per request and its response, as ipfixprobe's records on keep-alive
//! connections: a request that comes once the record has a request or a response, or a
//! response once it has a final one, ends the record before it (flowEndReason 3) and starts
//! the next, with the same flowId ([`Split::Exchange`]). A retransmitted request starts
//! nothing. The record of a request answered `100 Continue` and then `200` has status 200.
//!
//! Values are cut at a character boundary to at most these octets, so that a record with
//! every one full (1,051 octets of values and their lengths; a message of 1,114 octets with
//! the default template) fits a 1,420-octet IPFIX message over UDP: method 16, Host 128,
//! target 255, User-Agent 160, Referer 160, Content-Type 64, Server 128, cookie names 128
//! (joined with `;`, each once, whole ones only; a Set-Cookie whose text up to its first `;`
//! has no `=` or an empty name sets no cookie, RFC 6265 §5.2). Octets that are not UTF-8,
//! and control characters, become U+FFFD.

use super::text_flow::{Split, MAX_HEAD};
use super::text_plugin::{Protocol, Reader, NEEDS};
use super::text_wire::{text, trim, Head, Kind, List, Syntax};
use super::{Built, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, Host};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Http,
    about: "HTTP/1.x request method, host, target, user agent, referer; response status, \
            content type, server, cookie names; one record per request on keep-alive \
            connections",
    options: &[],
    build,
};

/// The HTTP/1.x start lines (methods of RFC 9110 §9 and PATCH decide at once).
pub static SYNTAX: Syntax = Syntax {
    version: b"HTTP/",
    methods: &[
        b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"TRACE", b"OPTIONS", b"CONNECT", b"PATCH",
    ],
};

/// Octets of each value at most.
pub mod max {
    pub const METHOD: usize = 16;
    pub const HOST: usize = 128;
    pub const URL: usize = 255;
    pub const USER_AGENT: usize = 160;
    pub const REFERER: usize = 160;
    pub const CONTENT_TYPE: usize = 64;
    pub const SERVER: usize = 128;
    pub const COOKIE_NAMES: usize = 128;
}

const fn flowmon(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::FLOWMON,
        id,
    }
}

const fn cesnet(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

const USER_AGENT: ExtKey = flowmon(20);
const METHOD: ExtKey = cesnet(200);
const HOST: ExtKey = flowmon(1);
const REFERER: ExtKey = flowmon(3);
const URL: ExtKey = flowmon(2);
const CONTENT_TYPE: ExtKey = flowmon(10);
const SERVER: ExtKey = cesnet(201);
const COOKIE_NAMES: ExtKey = cesnet(202);
const STATUS: ExtKey = flowmon(12);

fn build(_: &Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Reader::<Http>::default())), NEEDS))
}

/// HTTP as [`Reader`] reads it.
pub struct Http;

impl Protocol for Http {
    const KIND: PluginKind = PluginKind::Http;
    const SYNTAX: &'static Syntax = &SYNTAX;
    const SPLIT: Split = Split::Exchange;
    const UDP: bool = false;
    type Values = Fields;

    fn take(f: &mut Fields, h: &Head<'_>) {
        f.take(h);
    }

    fn export(f: &Fields, out: &mut ExtWriter<'_>) {
        out.bytes(USER_AGENT, f.user_agent.as_bytes());
        out.bytes(METHOD, f.method.as_bytes());
        out.bytes(HOST, f.host.as_bytes());
        out.bytes(REFERER, f.referer.as_bytes());
        out.bytes(URL, f.url.as_bytes());
        out.bytes(CONTENT_TYPE, f.content_type.as_bytes());
        out.bytes(SERVER, f.server.as_bytes());
        out.bytes(COOKIE_NAMES, f.cookie_names.as_bytes());
        out.unsigned(STATUS, f.status.into());
    }
}

/// What one record found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields {
    pub method: String,
    pub url: String,
    pub host: String,
    pub user_agent: String,
    pub referer: String,
    pub status: u16,
    pub content_type: String,
    pub server: String,
    pub cookie_names: String,
}

impl Fields {
    /// Take a head's values: a request's or a response's, replacing what an earlier (cut)
    /// reading of the same part gave.
    pub fn take(&mut self, h: &Head<'_>) {
        let field = |v: Option<&[u8]>, max: usize| v.map_or(String::new(), |v| text(v, max));
        match h.kind {
            Kind::Request => {
                self.method = text(h.method().unwrap_or(&[]), max::METHOD);
                self.url = text(h.target().unwrap_or(&[]), max::URL);
                let [host, user_agent, referer] =
                    h.first_values([&b"host"[..], &b"user-agent"[..], &b"referer"[..]]);
                self.host = field(host, max::HOST);
                self.user_agent = field(user_agent, max::USER_AGENT);
                self.referer = field(referer, max::REFERER);
            }
            Kind::Response => {
                self.status = h.status().unwrap_or(0);
                let [content_type, server] = h.first_values([&b"content-type"[..], &b"server"[..]]);
                self.content_type = field(content_type, max::CONTENT_TYPE);
                self.server = field(server, max::SERVER);
                let mut names = List::default();
                for v in h.values(b"set-cookie") {
                    // The cookie's name is before the '=' of the text up to the first ';', and
                    // a cookie without '=' or a name is ignored (RFC 6265 §5.2).
                    let pair = v.split(|&b| b == b';').next().unwrap_or(&[]);
                    let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                        continue;
                    };
                    names.add_distinct(
                        &text(trim(&pair[..eq]), max::COOKIE_NAMES),
                        max::COOKIE_NAMES,
                    );
                }
                self.cookie_names = names.as_str().to_owned();
            }
        }
    }
}

/// The values one message gives (for the fuzz target and the damaged-message tests): its
/// head read as the plugin reads it, or `None` if it does not start with one.
pub fn parse(msg: &[u8]) -> Option<Fields> {
    let h = super::text_wire::head(&msg[..msg.len().min(MAX_HEAD)], &SYNTAX)?;
    let mut f = Fields::default();
    f.take(&h);
    Some(f)
}

#[cfg(test)]
mod tests;
