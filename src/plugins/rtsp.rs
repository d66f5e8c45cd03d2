//! `rtsp`: RTSP requests and responses over TCP (ipfixprobe's experimental rtsp plugin): the
//! request's method, URI and User-Agent, the response's status, Server and Content-Type.
//!
//! Read as [`super::http`] reads HTTP, with RTSP's start lines (RFC 2326 §6.1, §7.1; RFC 7826
//! for 2.0): a request line ending in `RTSP/` (its RTSP-only methods decide at once), a status
//! line starting `RTSP/` and a digit. Heads come from the TCP stream, over segments; field
//! names without regard to case (ipfixprobe: case-sensitive, `": "` required). One record per
//! request and its response ([`Split::Exchange`], as ipfixprobe splits at a second request or
//! response). Interleaved RTP frames (`$`, RFC 2326 §10.12) start nothing.
//!
//! Values are cut at a character boundary to at most: method 16, URI 255, User-Agent 160,
//! Server 128, Content-Type 64 octets (UTF-8; octets that are not, and control characters,
//! become U+FFFD).

use super::text_flow::{Split, MAX_HEAD};
use super::text_plugin::{Protocol, Reader, NEEDS};
use super::text_wire::{text, Head, Kind, Syntax};
use super::{Built, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, Host};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Rtsp,
    about: "RTSP request method, URI, user agent; response status, server, content type; \
            one record per request",
    options: &[],
    build,
};

/// RTSP's start lines. Methods RTSP shares with HTTP (OPTIONS, GET, ...) need the whole
/// request line, so that an HTTP request is not taken for RTSP.
pub static SYNTAX: Syntax = Syntax {
    version: b"RTSP/",
    methods: &[
        b"DESCRIBE",
        b"ANNOUNCE",
        b"GET_PARAMETER",
        b"PAUSE",
        b"PLAY",
        b"PLAY_NOTIFY",
        b"RECORD",
        b"REDIRECT",
        b"SETUP",
        b"SET_PARAMETER",
        b"TEARDOWN",
    ],
};

/// Octets of each value at most.
pub mod max {
    pub const METHOD: usize = 16;
    pub const URI: usize = 255;
    pub const USER_AGENT: usize = 160;
    pub const SERVER: usize = 128;
    pub const CONTENT_TYPE: usize = 64;
}

const fn cesnet(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

const METHOD: ExtKey = cesnet(1040);
const USER_AGENT: ExtKey = cesnet(1041);
const URI: ExtKey = cesnet(1042);
const STATUS: ExtKey = cesnet(1043);
const CONTENT_TYPE: ExtKey = cesnet(1044);
const SERVER: ExtKey = cesnet(1045);

fn build(_: &Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Reader::<Rtsp>::default())), NEEDS))
}

/// What one record found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields {
    pub method: String,
    pub uri: String,
    pub user_agent: String,
    pub status: u16,
    pub server: String,
    pub content_type: String,
}

impl Fields {
    /// Take a head's values, replacing what an earlier (cut) reading of it gave.
    pub fn take(&mut self, h: &Head<'_>) {
        let field = |v: Option<&[u8]>, max: usize| v.map_or(String::new(), |v| text(v, max));
        match h.kind {
            Kind::Request => {
                self.method = text(h.method().unwrap_or(&[]), max::METHOD);
                self.uri = text(h.target().unwrap_or(&[]), max::URI);
                self.user_agent = field(h.value(b"user-agent"), max::USER_AGENT);
            }
            Kind::Response => {
                self.status = h.status().unwrap_or(0);
                let [server, content_type] = h.first_values([&b"server"[..], &b"content-type"[..]]);
                self.server = field(server, max::SERVER);
                self.content_type = field(content_type, max::CONTENT_TYPE);
            }
        }
    }
}

/// RTSP as [`Reader`] reads it.
pub struct Rtsp;

impl Protocol for Rtsp {
    const KIND: PluginKind = PluginKind::Rtsp;
    const SYNTAX: &'static Syntax = &SYNTAX;
    const SPLIT: Split = Split::Exchange;
    const UDP: bool = false;
    type Values = Fields;

    fn take(f: &mut Fields, h: &Head<'_>) {
        f.take(h);
    }

    fn export(f: &Fields, out: &mut ExtWriter<'_>) {
        out.bytes(METHOD, f.method.as_bytes());
        out.bytes(USER_AGENT, f.user_agent.as_bytes());
        out.bytes(URI, f.uri.as_bytes());
        out.unsigned(STATUS, f.status.into());
        out.bytes(SERVER, f.server.as_bytes());
        out.bytes(CONTENT_TYPE, f.content_type.as_bytes());
    }
}

/// The values one message gives (for the fuzz target and the damaged-message tests), or
/// `None` if it does not start with an RTSP message.
pub fn parse(msg: &[u8]) -> Option<Fields> {
    let h = super::text_wire::head(&msg[..msg.len().min(MAX_HEAD)], &SYNTAX)?;
    let mut f = Fields::default();
    f.take(&h);
    Some(f)
}

#[cfg(test)]
mod tests;
