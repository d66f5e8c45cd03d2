//! `tls`: the ClientHello and ServerHello of a TLS connection over TCP (ipfixprobe's tls
//! plugin): the server's version and ALPN, the client's SNI, JA3 and JA4 fingerprints and its
//! extensions' types and lengths.
//!
//! The hellos are read from the start of each direction's byte stream in sequence order
//! ([`PacketView::stream`], at most [`STREAM_CAP`] octets), so a ClientHello split over
//! several segments (post-quantum key shares make them about 1.8 kB), retransmitted or out
//! of order, is read, and so is one split over several TLS records. A direction whose first
//! octets are not a TLS handshake record stops the reading; the plugin is done with a flow
//! (and its stream buffers are freed) once both hellos are read, a direction cannot be TLS,
//! or [`MAX_PACKETS`] packets have passed.
//!
//! Elements (ipfixprobe's, in its order): tlsServerVersion (39499/333), TLSSNI (8057/808),
//! tlsAlpn (39499/337), tlsJa3Fingerprint (39499/357, 16 octets), TLSJA4 (8057/809),
//! tlsExtTypeField and tlsExtLenField (8057/802, 803: basicLists of the ClientHello's first
//! 30 extensions, GREASE included).
//!
//! Where qof differs from ipfixprobe 5.7.0, and why:
//! * ipfixprobe parses one packet's payload at a time (no reassembly), any port, TCP or UDP:
//!   a hello split over segments or records is missed. qof reads the TCP streams; it does not
//!   look for hellos over UDP (no DTLS, as ipfixprobe's own record check rules DTLS out) nor
//!   later in a stream (STARTTLS after a plain-text exchange is not read: keeping every TCP
//!   flow's stream would cost [`STREAM_CAP`] octets per direction for its whole life).
//! * JA4 is FoxIO's definition (see [`fingerprint::ja4`]). ipfixprobe counts GREASE among the
//!   extensions, keeps GREASE signature algorithms, compares supported_versions as signed
//!   16-bit numbers, does not pad counts below 10 to two digits (`t13d915h2`), writes a `_`
//!   and hashes an empty list when there are no signature algorithms or extensions, and for a
//!   non-alphanumeric ALPN end prints that end's nibble alone, in upper case; each of these
//!   gives another JA4 than FoxIO's tools.
//! * JA3 is tshark's (`tls.handshake.ja3`): the same definition as ipfixprobe's.
//! * tlsServerVersion is the version the ServerHello chose (supported_versions, else its
//!   legacy_version), else the ClientHello's legacy_version. ipfixprobe keeps the ClientHello's
//!   version when the ServerHello has no supported_versions (a TLS 1.0 server answering a TLS
//!   1.2 client is reported as 1.2).
//! * A HelloRetryRequest is skipped: the version and ALPN come from the ServerHello after it
//!   (ipfixprobe stops at the HelloRetryRequest, which carries no ALPN).
//! * A flow where only a ServerHello was seen (the client's direction not captured) is
//!   exported with the version and ALPN; ipfixprobe exports TLS elements only after a
//!   ClientHello.
//! * SNI and ALPN are cut to 254 octets (ipfixprobe's buffers) at a character boundary, and
//!   octets that are not UTF-8 become U+FFFD: the elements are strings.

pub mod fingerprint;
pub mod hello;
pub mod memo;

use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{
    ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, Opening, PacketView, Verdict,
};
use fingerprint::Transport;
use hello::{ClientHello, ServerHello, CLIENT_HELLO, SERVER_HELLO};
use memo::Memo;

pub static SPEC: Spec = Spec {
    kind: PluginKind::Tls,
    about: "TLS ClientHello and ServerHello over TCP: SNI, ALPN, version, JA3, JA4, extensions",
    options: &[],
    build,
};

/// Octets of each TCP direction's stream read at most: a ClientHello with a post-quantum key
/// share (about 1.8 kB) and room for its record headers, or a ServerHello at the start of a
/// large first record.
pub const STREAM_CAP: usize = 4096;

/// Packets of a flow after which the plugin stops waiting for a hello (a one-way capture, a
/// direction stuck behind a lost segment).
pub const MAX_PACKETS: u16 = 32;

/// ClientHello extensions recorded at most (ipfixprobe's MAX_TLS_EXT_LEN).
pub const MAX_EXTENSIONS: usize = 30;

/// SNI and ALPN octets kept at most (ipfixprobe's 255-octet buffers with their NUL).
pub const MAX_NAME: usize = 254;

const VERSION: ExtKey = ExtKey {
    pen: pen::FLOWMON,
    id: 333,
};
const SNI: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 808,
};
const ALPN: ExtKey = ExtKey {
    pen: pen::FLOWMON,
    id: 337,
};
const JA3: ExtKey = ExtKey {
    pen: pen::FLOWMON,
    id: 357,
};
const JA4: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 809,
};
const EXT_TYPE: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 802,
};
const EXT_LEN: ExtKey = ExtKey {
    pen: pen::CESNET,
    id: 803,
};

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        stream: STREAM_CAP,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Tls::default())), needs))
}

#[derive(Default)]
struct Tls {
    /// The handshake octets of a stream's leading records, reused from packet to packet.
    scratch: Vec<u8>,
    /// The fingerprints of hellos seen before.
    memo: Memo,
}

/// What the client's hello says.
pub struct Client {
    pub version: u16,
    pub sni: String,
    pub ja3: [u8; 16],
    pub ja4: String,
    pub ext_count: u8,
    pub ext_types: [u16; MAX_EXTENSIONS],
    pub ext_lens: [u16; MAX_EXTENSIONS],
}

impl Client {
    /// What `ch` says; its fingerprints from `memo` when an earlier hello had the same.
    pub fn of(ch: &ClientHello<'_>, transport: Transport, memo: &mut Memo) -> Client {
        let (ja3, ja4) = memo.fingerprints(ch, transport);
        let mut c = Client {
            version: ch.version(),
            sni: ch.server_name().map(text).unwrap_or_default(),
            ja3,
            ja4,
            ext_count: 0,
            ext_types: [0; MAX_EXTENSIONS],
            ext_lens: [0; MAX_EXTENSIONS],
        };
        for (i, e) in ch.extensions().take(MAX_EXTENSIONS).enumerate() {
            c.ext_types[i] = e.ty;
            c.ext_lens[i] = e.data.len() as u16;
            c.ext_count = i as u8 + 1;
        }
        c
    }
}

/// A name from the wire as an element string: at most [`MAX_NAME`] octets, UTF-8.
pub fn text(b: &[u8]) -> String {
    let mut s = String::from_utf8_lossy(b).into_owned();
    if s.len() > MAX_NAME {
        let mut end = MAX_NAME;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// What the server's hello says.
struct Server {
    version: u16,
    alpn: String,
}

#[derive(Default)]
pub struct State {
    /// By flow direction (forward, reverse): its stream is still being read.
    open: [bool; 2],
    packets: u16,
    client: Option<Box<Client>>,
    server: Option<Box<Server>>,
}

/// What the start of one direction's stream turned out to be.
pub enum Read<'a> {
    Client(ClientHello<'a>),
    Server(ServerHello<'a>),
    /// Not yet whole.
    More,
    /// Not a TLS handshake.
    NotTls,
}

/// Gather the handshake octets of the records at the start of `stream` into `out`: whole
/// records, then what there is of the last one. Err: the stream does not start with TLS
/// handshake records.
fn gather(stream: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    out.clear();
    let mut rest = stream;
    while let Some(h) = rest.get(..5) {
        let (ty, major, minor) = (h[0], h[1], h[2]);
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        // Record versions are 3.0 to 3.4 in practice; a record is at most 2^14 octets plus
        // expansion (RFC 8446 §5.2).
        let sane = major == 3 && minor <= 4 && (1..=18_432).contains(&len);
        match ty {
            22 if sane => {}
            // A ChangeCipherSpec between handshake records (a TLS 1.3 server's compatibility
            // CCS after a HelloRetryRequest).
            20 if sane && !out.is_empty() => {}
            _ if out.is_empty() => return Err(()),
            _ => return Ok(()),
        }
        let body = &rest[5..];
        let have = body.len().min(len);
        if ty == 22 {
            out.extend_from_slice(&body[..have]);
        }
        if have < len {
            break;
        }
        rest = &body[len..];
    }
    Ok(())
}

/// The first hello in the handshake octets `hs` (a ServerHello after any HelloRetryRequest).
fn first_hello(hs: &[u8]) -> Read<'_> {
    let mut rest = hs;
    loop {
        let Some((ty, body)) = hello::message(rest) else {
            return Read::More;
        };
        match ty {
            CLIENT_HELLO if rest.len() == hs.len() => {
                return ClientHello::parse(body).map_or(Read::NotTls, Read::Client)
            }
            SERVER_HELLO => match ServerHello::parse(body) {
                Some(sh) if sh.is_hello_retry_request() => {}
                Some(sh) => return Read::Server(sh),
                None => return Read::NotTls,
            },
            _ => return Read::NotTls,
        }
        // Past a HelloRetryRequest: the real ServerHello follows.
        rest = &rest[4 + body.len()..];
    }
}

/// Read the first hello at the start of one direction's TCP stream: its TLS records'
/// handshake octets are gathered into `scratch` (at most the stream's length), which the hello
/// then points into.
pub fn read_stream<'s>(scratch: &'s mut Vec<u8>, stream: &[u8]) -> Read<'s> {
    if gather(stream, scratch).is_err() {
        return Read::NotTls;
    }
    first_hello(scratch)
}

impl FlowPlugin for Tls {
    type State = State;
    const READS_STREAM: bool = true;

    fn number(&self) -> u8 {
        PluginKind::Tls.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        p.pkt.tcp.map(|_| State {
            open: [true; 2],
            ..State::default()
        })
    }

    // (A handshake is payload: a connection is read from its first.)
    const FROM_PAYLOAD: bool = true;

    fn attach_late(&mut self, p: &PacketView<'_>, before: &Opening) -> Option<State> {
        // (Each packet before counted towards giving up, as if it had been seen.)
        let packets = u16::try_from(before.packets)
            .ok()
            .filter(|&n| n < MAX_PACKETS)?;
        let s = self.attach(p)?;
        Some(State { packets, ..s })
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        s.packets += 1;
        let d = usize::from(p.reverse);
        if s.open[d] && p.pkt.payload_len > 0 && !p.stream.is_empty() {
            match read_stream(&mut self.scratch, p.stream) {
                Read::Client(ch) if s.client.is_none() => {
                    s.client = Some(Box::new(Client::of(&ch, Transport::Tcp, &mut self.memo)));
                    s.open[d] = false;
                }
                Read::Server(sh) if s.server.is_none() => {
                    s.server = Some(Box::new(Server {
                        version: sh.selected_version(),
                        alpn: sh.alpn().map(text).unwrap_or_default(),
                    }));
                    s.open[d] = false;
                }
                // (Not all there yet: wait while the stream can still grow.)
                Read::More if p.stream.len() < STREAM_CAP => {}
                _ => {
                    s.open[d] = false;
                    if s.client.is_none() && s.server.is_none() {
                        // The first direction to speak does not speak TLS.
                        return Verdict::Drop;
                    }
                }
            }
        }
        let read = s.client.is_some() || s.server.is_some();
        if s.open == [false; 2] || s.packets >= MAX_PACKETS {
            return if read { Verdict::Done } else { Verdict::Drop };
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if s.client.is_none() && s.server.is_none() {
            return false;
        }
        let version = match (&s.server, &s.client) {
            (Some(sh), _) => sh.version,
            (None, Some(ch)) => ch.version,
            (None, None) => 0,
        };
        out.unsigned(VERSION, u64::from(version));
        let n = s.client.as_ref().map_or(0, |c| usize::from(c.ext_count));
        if let Some(c) = &s.client {
            out.bytes(SNI, c.sni.as_bytes());
            out.bytes(JA3, &c.ja3);
            out.bytes(JA4, c.ja4.as_bytes());
        }
        if let Some(sh) = &s.server {
            out.bytes(ALPN, sh.alpn.as_bytes());
        }
        // (Lists are written even when empty: a basicList field must carry its header.)
        let types = s.client.as_ref().map_or(&[][..], |c| &c.ext_types[..n]);
        let lens = s.client.as_ref().map_or(&[][..], |c| &c.ext_lens[..n]);
        out.list(EXT_TYPE, 2, types.iter().map(|&t| u64::from(t)));
        out.list(EXT_LEN, 2, lens.iter().map(|&l| u64::from(l)));
        true
    }
}

#[cfg(test)]
mod tests;
