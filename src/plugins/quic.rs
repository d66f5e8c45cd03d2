//! `quic`: QUIC connections' Initial packets (ipfixprobe's quic plugin). The client's Initial
//! packets are decrypted (RFC 9001 §5 initial secrets; QUIC version 1, version 2 of RFC 9369
//! with its own salt, labels and packet type codes, and the drafts and vendor versions
//! ipfixprobe knows), the CRYPTO frames of the coalesced packets of each datagram gathered,
//! and the ClientHello, once its first [`frames::CRYPTO_CAP`] octets are whole, read with the
//! `tls` plugin's parser: its SNI, the Google user agent transport parameter, its extensions.
//! The long headers of every datagram give the versions, connection IDs, token length, Retry,
//! 0-RTT and the packet types of the first 30 packets.
//!
//! Any UDP flow is looked at (no port is assumed): a flow whose first 30 packets carry no
//! long-header packet of a known version is dropped. A Version Negotiation packet ends the
//! flow after it (ipfixprobe's FLOW_FLUSH). Datagrams are read up to [`PAYLOAD`] octets.
//!
//! Elements (ipfixprobe's, in its order): quicSNI (8057/890), quicUserAgent (891),
//! quicVersion (892: of the last long-header datagram without 0-RTT), quicClientVersion (893:
//! of the client's first Initial carrying the ClientHello's start), quicTokenLength (894: of
//! the client's Initial, or the Retry's token; 2^64-1 when unknown), quicOCCID (895: the
//! client's Source Connection ID), quicOSCID (896: the Destination Connection ID of the
//! client's first Initial), quicSCID (897: the Source Connection ID of the server's first
//! Initial or Handshake packet), quicRetrySCID (898), quicMultiplexed (899), quicZeroRTT (889),
//! quicServerPort (887), quicPackets (888, a basicList: per packet of the flow, 0x01 Initial,
//! 0x02 0-RTT, 0x04 Handshake, 0x08 Retry, 0x10 Version Negotiation, 0x80 the first octet's
//! fixed bit), quicCHParsed (886), quicTlsExtType and quicTlsExtLen (885, 884: basicLists of
//! the first 30 ClientHello extensions, GREASE included), quicTlsExt (883: the bodies of the
//! ALPN and quic_transport_parameters extensions, concatenated).
//!
//! Where qof differs from ipfixprobe 5.7.0, and why:
//! * ipfixprobe reads the ClientHello from one Initial packet: a ClientHello spread over
//!   several (Chrome's with a post-quantum key share, Chrome scattering its CRYPTO frames)
//!   is not read. qof reassembles the client's CRYPTO stream across Initial packets (the
//!   first 4096 octets).
//! * ipfixprobe 5.7.0's TLS parser is made anew for each datagram, and a datagram in which it
//!   parsed no ClientHello fails its server-port step (`quic_set_server_port`), so Retry,
//!   Version Negotiation, 0-RTT and Handshake-only datagrams are treated as not QUIC: Version
//!   Negotiation does not end the flow, 0-RTT packets and Retry connection IDs are not
//!   counted. qof does what that code intends.
//! * quicSCID is the server's own Source Connection ID; ipfixprobe may take it from the
//!   client's later Destination Connection ID (the same value when both are seen). When no
//!   ClientHello, Retry, Version Negotiation or 0-RTT packet told the client apart (its
//!   Initial cut by the capture's snap length), the sender of the flow's first Initial is
//!   taken for the client for quicSCID and quicOCCID (quicServerPort stays 0).
//! * A packet cut short by the snap length still gives its header (type, version, connection
//!   IDs); ipfixprobe skips it.
//! * quicTlsExt is bounded at [`MAX_TLS_EXT`] octets (ipfixprobe: 1500), so that a record with
//!   every quic element at its largest fits one 1420-octet IPFIX message over UDP with room to
//!   spare (see the test `a_largest_record_fits_a_udp_message`): an extension body that does not
//!   fit in what is left is left out, as ipfixprobe does at its bound.
//! * The ClientHello's packet number is taken as sent (its low octets), as ipfixprobe does.
//! * quicSNI and quicUserAgent are cut to 254 octets at a character boundary; octets that are
//!   not UTF-8 become U+FFFD: the elements are strings.

pub mod frames;
pub mod initial;
pub mod packet;

use super::tls::hello::{self, is_quic_transport_parameters, ClientHello, CLIENT_HELLO};
use super::tls::{text, MAX_EXTENSIONS};
use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};
use frames::{CryptoFrames, CryptoStream, CRYPTO_CAP};
use initial::ClientKeys;
use packet::{protection, Coalesced, Kind, LongHeader, MAX_CID};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Quic,
    about:
        "QUIC Initial packets decrypted: SNI, user agent, versions, connection IDs, TLS extensions",
    options: &[],
    build,
};

/// Octets of each UDP payload read (ipfixprobe's buffer): Initial datagrams fill a path MTU.
pub const PAYLOAD: usize = 1500;

/// Packets of a flow recorded in quicPackets, and looked at for a first long header.
pub const MAX_PACKETS: usize = 30;

/// Octets of quicTlsExt at most. A record with every quic element at its largest (IPv6, the
/// default template) then takes 1,144 octets of a message, 276 short of qof's 1,420-octet UDP
/// message (room for other plugins' elements), and 1,332 with its template beside it. Chrome's
/// ALPN and transport parameters take about 100 octets, 243 with its old user agent.
pub const MAX_TLS_EXT: usize = 256;

const fn cesnet(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

const SNI: ExtKey = cesnet(890);
const USER_AGENT: ExtKey = cesnet(891);
const VERSION: ExtKey = cesnet(892);
const CLIENT_VERSION: ExtKey = cesnet(893);
const TOKEN_LENGTH: ExtKey = cesnet(894);
const OCCID: ExtKey = cesnet(895);
const OSCID: ExtKey = cesnet(896);
const SCID: ExtKey = cesnet(897);
const RETRY_SCID: ExtKey = cesnet(898);
const MULTIPLEXED: ExtKey = cesnet(899);
const ZERO_RTT: ExtKey = cesnet(889);
const SERVER_PORT: ExtKey = cesnet(887);
const PACKETS: ExtKey = cesnet(888);
const CH_PARSED: ExtKey = cesnet(886);
const EXT_TYPE: ExtKey = cesnet(885);
const EXT_LEN: ExtKey = cesnet(884);
const TLS_EXT: ExtKey = cesnet(883);

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Quic::default())), needs))
}

#[derive(Default)]
struct Quic {
    /// A packet being decrypted, reused from packet to packet.
    scratch: Vec<u8>,
}

/// A connection ID, kept inline.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Cid {
    len: u8,
    b: [u8; MAX_CID],
}

impl Cid {
    fn new(id: &[u8]) -> Cid {
        let mut c = Cid::default();
        let n = id.len().min(MAX_CID);
        c.b[..n].copy_from_slice(&id[..n]);
        c.len = n as u8;
        c
    }

    fn get(&self) -> &[u8] {
        &self.b[..usize::from(self.len)]
    }
}

/// What the ClientHello says.
struct Hello {
    sni: String,
    user_agent: String,
    ext_count: u8,
    ext_types: [u16; MAX_EXTENSIONS],
    ext_lens: [u16; MAX_EXTENSIONS],
    tls_ext: Vec<u8>,
}

impl Hello {
    fn of(ch: &ClientHello<'_>) -> Hello {
        let mut h = Hello {
            sni: ch.server_name().map(text).unwrap_or_default(),
            user_agent: ch.quic_user_agent().map(text).unwrap_or_default(),
            ext_count: 0,
            ext_types: [0; MAX_EXTENSIONS],
            ext_lens: [0; MAX_EXTENSIONS],
            tls_ext: Vec::new(),
        };
        for (i, e) in ch.extensions().enumerate() {
            if i < MAX_EXTENSIONS {
                h.ext_types[i] = e.ty;
                h.ext_lens[i] = e.data.len() as u16;
                h.ext_count = i as u8 + 1;
            }
            let wanted = e.ty == hello::ext::ALPN || is_quic_transport_parameters(e.ty);
            if wanted && h.tls_ext.len() + e.data.len() <= MAX_TLS_EXT {
                h.tls_ext.extend_from_slice(e.data);
            }
        }
        h
    }
}

/// One QUIC connection (or several, multiplexed on the flow's 5-tuple).
struct Conn {
    types: [u8; MAX_PACKETS],
    types_len: u8,
    version: u32,
    client_version: Option<u32>,
    token_length: u64,
    occid: Option<Cid>,
    oscid: Option<Cid>,
    retry_scid: Option<Cid>,
    /// By flow direction: the connection IDs (destination, source) of its first Initial or
    /// Handshake packet.
    first: [Option<(Cid, Cid)>; 2],
    multiplexed: u8,
    zero_rtt: u8,
    retries: u8,
    server_port: u16,
    /// The client sends in the flow's reverse direction (once known).
    client_reverse: Option<bool>,
    /// The direction of the flow's first Initial packet: a client's, unless the capture
    /// missed it (a guess, for connection IDs when nothing tells the client apart).
    first_initial: Option<bool>,
    hello: Option<Box<Hello>>,
    /// The client's CRYPTO stream while its ClientHello is incomplete.
    crypto: Option<Box<CryptoStream>>,
    /// The ClientHello was not readable (longer than [`CRYPTO_CAP`], malformed).
    hello_failed: bool,
    /// The client's Initial keys while its ClientHello is being read (about 800 octets:
    /// freed after).
    keys: Option<Box<ClientKeys>>,
    /// The Destination Connection ID they come from (kept).
    keys_dcid: Option<Cid>,
}

impl Default for Conn {
    fn default() -> Self {
        Conn {
            types: [0; MAX_PACKETS],
            types_len: 0,
            version: 0,
            client_version: None,
            token_length: u64::MAX,
            occid: None,
            oscid: None,
            retry_scid: None,
            first: [None; 2],
            multiplexed: 0,
            zero_rtt: 0,
            retries: 0,
            server_port: 0,
            client_reverse: None,
            first_initial: None,
            hello: None,
            crypto: None,
            hello_failed: false,
            keys: None,
            keys_dcid: None,
        }
    }
}

#[derive(Default)]
pub struct State {
    packets: u32,
    conn: Option<Box<Conn>>,
}

impl Conn {
    fn record(&mut self, index: u32, flags: u8) {
        if let Some(t) = self.types.get_mut(index as usize) {
            *t = flags;
            self.types_len = index as u8 + 1;
        }
    }

    /// The server is the receiver (`to_server`) or the sender of packet `p`.
    fn learn_server(&mut self, p: &PacketView<'_>, to_server: bool) {
        if self.client_reverse.is_none() {
            self.client_reverse = Some(p.reverse == to_server);
            let k = &p.pkt.key;
            self.server_port = if to_server { k.dst_port } else { k.src_port };
        }
    }

    fn sent_by_server(&self, p: &PacketView<'_>) -> bool {
        self.client_reverse.is_some_and(|c| c != p.reverse)
    }

    /// The first (destination, source) connection IDs of the server's or client's packets.
    fn first_of(&self, server: bool) -> Option<(Cid, Cid)> {
        let client = self.client_reverse.or(self.first_initial)?;
        self.first[usize::from(client != server)]
    }

    /// A Destination Connection ID this connection's client uses.
    fn known_dcid(&self, dcid: &[u8]) -> bool {
        let server_scid = self.first_of(true).map(|(_, s)| s);
        [self.oscid, self.retry_scid, server_scid, self.keys_dcid]
            .iter()
            .flatten()
            .any(|c| c.get() == dcid)
    }

    fn retry(&mut self, h: &LongHeader<'_>, p: &PacketView<'_>) {
        self.retries = self.retries.saturating_add(1);
        self.learn_server(p, false);
        // A client takes one Retry per connection attempt (RFC 9000 §17.2.5.2): its next
        // Initial goes to the Retry's Source Connection ID, with keys from it, and sends
        // the ClientHello again from the start.
        if self.retries == 1 {
            self.retry_scid = Some(Cid::new(h.scid));
            self.token_length = h.token.len() as u64;
            self.keys = None;
            if self.hello.is_none() {
                self.crypto = None;
            }
        }
        self.occid.get_or_insert(Cid::new(h.dcid));
    }

    /// A long-header packet of the client's Initial keys: its CRYPTO frames.
    fn client_initial(&mut self, h: &LongHeader<'_>, p: &PacketView<'_>, plain: &[u8]) {
        self.learn_server(p, true);
        self.oscid.get_or_insert(Cid::new(h.dcid));
        self.occid.get_or_insert(Cid::new(h.scid));
        if self.retries == 0 {
            self.token_length = h.token.len() as u64;
        }
        if self.hello.is_some() || self.hello_failed {
            return;
        }
        let crypto = self.crypto.get_or_insert_with(Box::default);
        for f in CryptoFrames::new(plain) {
            if f.offset == 0 {
                self.client_version.get_or_insert(h.version);
            }
            crypto.add(f);
        }
        let whole = crypto.contiguous();
        match hello::message(whole) {
            Some((CLIENT_HELLO, body)) => {
                self.hello = ClientHello::parse(body).map(|ch| Box::new(Hello::of(&ch)));
                self.hello_failed = self.hello.is_none();
            }
            Some(_) => self.hello_failed = true,
            None => self.hello_failed = whole.len() >= CRYPTO_CAP,
        }
        if self.hello.is_some() || self.hello_failed {
            self.crypto = None;
            self.keys = None;
        }
    }
}

impl Quic {
    /// An Initial packet: the client's are opened with the connection's keys.
    fn initial(scratch: &mut Vec<u8>, c: &mut Conn, h: &LongHeader<'_>, p: &PacketView<'_>) {
        if c.sent_by_server(p) {
            // (Protected with the server's keys: nothing the plugin reads.)
            return;
        }
        let Some(prot) = protection(h.version) else {
            return;
        };
        if c.hello.is_some() || c.hello_failed {
            // A later Initial of the client. To a connection ID this connection never
            // used, with a ClientHello starting in it: another connection on the 5-tuple.
            if !c.known_dcid(h.dcid) && starts_client_hello(scratch, prot, h) {
                c.multiplexed = c.multiplexed.saturating_add(1);
            }
            return;
        }
        // The keys come from the client's first Destination Connection ID (or the Retry's
        // Source Connection ID).
        let dcid = match (&c.keys, c.keys_dcid, c.retry_scid) {
            (Some(_), Some(d), _) => d,
            (_, _, Some(r)) => r,
            _ => Cid::new(h.dcid),
        };
        if c.keys.is_none() || c.keys_dcid != Some(dcid) {
            c.keys = ClientKeys::new(prot, dcid.get()).map(Box::new);
            c.keys_dcid = Some(dcid);
        }
        let opened = c
            .keys
            .as_ref()
            .and_then(|k| k.open(h.packet, h.pn_offset, scratch));
        let plain = match opened {
            Some(plain) => plain,
            // A client starting over with another connection ID (a new connection on the
            // 5-tuple before any ClientHello was read): keys from it, a new CRYPTO stream.
            None if dcid.get() != h.dcid => {
                let Some(k) = ClientKeys::new(prot, h.dcid) else {
                    return;
                };
                let Some(plain) = k.open(h.packet, h.pn_offset, scratch) else {
                    return;
                };
                c.keys = Some(Box::new(k));
                c.keys_dcid = Some(Cid::new(h.dcid));
                c.crypto = None;
                plain
            }
            None => return,
        };
        c.client_initial(h, p, plain);
    }
}

/// The packet, opened with keys from its own Destination Connection ID, has a CRYPTO frame
/// at offset 0 that starts a ClientHello.
fn starts_client_hello(
    scratch: &mut Vec<u8>,
    prot: packet::Protection,
    h: &LongHeader<'_>,
) -> bool {
    let Some(k) = ClientKeys::new(prot, h.dcid) else {
        return false;
    };
    let Some(plain) = k.open(h.packet, h.pn_offset, scratch) else {
        return false;
    };
    CryptoFrames::new(plain).any(|f| f.offset == 0 && f.data.first() == Some(&CLIENT_HELLO))
}

impl FlowPlugin for Quic {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Quic.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        (p.pkt.key.proto == crate::key::proto::UDP && p.pkt.has_l4).then(State::default)
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let index = s.packets;
        s.packets = s.packets.saturating_add(1);
        let payload = p.payload;
        // The first octet's fixed bit (RFC 9000 §17), as ipfixprobe records it.
        let fixed = payload.first().map_or(0, |b| (b & 0x40) << 1);
        let mut headers = Coalesced::new(payload).peekable();
        if headers.peek().is_none() {
            match &mut s.conn {
                Some(c) => c.record(index, fixed),
                None if index as usize + 1 >= MAX_PACKETS => return Verdict::Drop,
                None => {}
            }
            return Verdict::Continue;
        }
        let c = s.conn.get_or_insert_with(Box::default);
        let (mut flags, mut version) = (fixed, 0);
        for h in headers {
            flags |= h.kind.flag();
            version = h.version;
            match h.kind {
                Kind::VersionNegotiation => c.learn_server(p, false),
                Kind::Retry => c.retry(&h, p),
                Kind::ZeroRtt => {
                    c.zero_rtt = c.zero_rtt.saturating_add(1);
                    c.learn_server(p, true);
                    c.occid.get_or_insert(Cid::new(h.scid));
                }
                Kind::Handshake | Kind::Initial => {
                    let d = usize::from(p.reverse);
                    c.first[d].get_or_insert((Cid::new(h.dcid), Cid::new(h.scid)));
                    if h.kind == Kind::Initial {
                        c.first_initial.get_or_insert(p.reverse);
                        if !h.truncated {
                            Quic::initial(&mut self.scratch, c, &h, p);
                        }
                    }
                }
            }
        }
        c.record(index, flags);
        // (0-RTT packets carry the client's first version; compatible version negotiation
        // changes it afterwards, RFC 9368.)
        if flags & Kind::ZeroRtt.flag() == 0 {
            c.version = version;
        }
        if flags & Kind::VersionNegotiation.flag() != 0 {
            return Verdict::EndAfter;
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let Some(c) = s.conn else {
            return false;
        };
        let h = c.hello.as_deref();
        out.bytes(SNI, h.map_or("", |h| &h.sni).as_bytes());
        out.bytes(USER_AGENT, h.map_or("", |h| &h.user_agent).as_bytes());
        out.unsigned(VERSION, u64::from(c.version));
        out.unsigned(CLIENT_VERSION, u64::from(c.client_version.unwrap_or(0)));
        out.unsigned(TOKEN_LENGTH, c.token_length);
        let occid = c.occid.or(c.first_of(false).map(|(_, s)| s));
        let scid = c.first_of(true).map(|(_, s)| s);
        for (key, id) in [
            (OCCID, occid),
            (OSCID, c.oscid),
            (SCID, scid),
            (RETRY_SCID, c.retry_scid),
        ] {
            out.bytes(key, id.as_ref().map_or(&[], Cid::get));
        }
        out.unsigned(MULTIPLEXED, u64::from(c.multiplexed));
        out.unsigned(ZERO_RTT, u64::from(c.zero_rtt));
        out.unsigned(SERVER_PORT, u64::from(c.server_port));
        let types = &c.types[..usize::from(c.types_len)];
        out.list(PACKETS, 1, types.iter().map(|&t| u64::from(t)));
        out.unsigned(CH_PARSED, u64::from(h.is_some()));
        let n = h.map_or(0, |h| usize::from(h.ext_count));
        let (types, lens) = h.map_or((&[][..], &[][..]), |h| {
            (&h.ext_types[..n], &h.ext_lens[..n])
        });
        out.list(EXT_TYPE, 2, types.iter().map(|&t| u64::from(t)));
        out.list(EXT_LEN, 2, lens.iter().map(|&l| u64::from(l)));
        out.bytes(TLS_EXT, h.map_or(&[], |h| &h.tls_ext));
        true
    }
}

#[cfg(test)]
mod tests;
