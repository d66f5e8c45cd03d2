//! Packet decoding: a frame's bytes, read through zero-copy typed views (smoltcp's `wire` is the
//! model), into a small fixed-size [`Packet`] summary that the meter consumes.
//!
//! Decoding never panics and never allocates. A frame that cannot be used is answered with an
//! [`Ignore`] reason, which the caller counts.

mod ip;
mod link;
mod transport;
mod wire;

use crate::key::FlowKey;

/// What the decoder should look at; derived from the template (QoF's feature flags).
#[derive(Clone, Copy, Debug)]
pub struct DecodeConfig {
    /// Accept IPv4 packets (template has an IPv4 address element).
    pub ipv4: bool,
    /// Accept IPv6 packets (template has an IPv6 address element).
    pub ipv6: bool,
    /// Decapsulate GRE version 0 and meter the inner packet.
    pub gre_decap: bool,
    /// Parse TCP options (MSS, window scale, SACK, timestamps).
    pub tcp_options: bool,
    /// Walk IPv4 options into [`Details::ip_options`] (a plugin asked for them).
    pub headers: bool,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            ipv4: true,
            ipv6: true,
            gre_decap: false,
            tcp_options: false,
            headers: false,
        }
    }
}

/// TCP header fields the meter uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub seq: u32,
    pub ack: u32,
    /// The 8 flag bits: CWR ECE URG ACK PSH RST SYN FIN (FIN = 0x01).
    pub flags: u8,
    pub window: u16,
    pub options: TcpOptions,
}

/// TCP options, filled only when [`DecodeConfig::tcp_options`] is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// SACK blocks, when present.
    pub sack: Option<Sack>,
    /// (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
    /// An option had an impossible length; parsing stopped there. The packet is still metered.
    pub malformed: bool,
}

/// What the meter reads of a segment's SACK blocks. (The D-SACK flag rides in the edge's
/// padding, in a byte that is never zero, so that no SACK is all zeros: options stay 28 bytes
/// and are cleared with zeros for every TCP packet, as before.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sack {
    /// Right edge of the last block.
    pub right_edge: u32,
    kind: std::num::NonZeroU8,
    /// (Explicit, so that options copy in whole words rather than byte by byte.)
    pad: [u8; 3],
}

impl Sack {
    /// `dsack`: the first block reports a duplicate (RFC 2883's D-SACK): it starts below the
    /// acknowledgement number, or lies within the second block (Linux's test, as the sender
    /// reads it).
    pub fn new(right_edge: u32, dsack: bool) -> Self {
        Sack {
            right_edge,
            kind: std::num::NonZeroU8::MIN.saturating_add(u8::from(dsack)),
            pad: [0; 3],
        }
    }

    pub fn dsack(&self) -> bool {
        self.kind.get() == 2
    }
}

impl TcpOptions {
    /// Right edge of the last SACK block, when SACK blocks are present.
    pub fn sack_right_edge(&self) -> Option<u32> {
        self.sack.map(|s| s.right_edge)
    }

    /// The first SACK block is a D-SACK.
    pub fn dsack(&self) -> bool {
        self.sack.is_some_and(|s| s.dsack())
    }
}

/// Where an IP fragment sits in its datagram.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragInfo {
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
    /// Offset of this fragment's payload in the datagram, in octets.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
}

/// Header facts that only plugins use, gathered by [`decode_with_details`]: the meter's own
/// decoding ([`decode`]) neither computes nor stores them, so they cost nothing when no
/// plugin is enabled (the decoder is compiled twice, with and without them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Details {
    /// Where the transport payload starts in the frame (0 when no transport header was
    /// decoded). The frame may end before it: a snaplen cuts payloads.
    pub payload_off: u32,
    /// The IPv4 type-of-service or IPv6 traffic-class octet (DSCP and ECN).
    pub tos: u8,
    /// IPv4 flags: 0x2 don't fragment, 0x1 more fragments (0 for IPv6).
    pub ip_flags: u8,
    /// IPv4: options present, bit *n* for option number *n* (the low five bits of the type)
    /// of the option types IANA registers (with [`DecodeConfig::headers`]). IPv6: the
    /// extension headers walked ([`ip6_ext`]).
    pub ip_options: u32,
    /// Every TCP option kind present, as the tcpOptions element (IANA 209) lays them out: kind
    /// 0 is the most significant bit; kinds above 63 are not shown. (With
    /// [`DecodeConfig::tcp_options`].)
    pub tcp_option_kinds: u64,
    /// The EtherType after any VLAN tags (what announced the network layer, an MPLS label
    /// stack or a PPPoE session), or a Linux cooked capture's protocol field; 0 for link types
    /// without one (raw IP, PPP, BSD loopback).
    pub ethertype: u16,
    /// The first two VLAN tags' Tag Control Information (priority, DEI, VID), outer first.
    pub vlan_tci: [u16; 2],
    /// How many VLAN tags the frame carried.
    pub vlan_tags: u8,
    /// The top MPLS label stack entry (label, traffic class, bottom-of-stack, TTL), 0 if none.
    pub mpls_top: u32,
}

/// Where the decoder puts [`Details`]: nowhere ([`NoDetails`], the meter's own decoding, in
/// which every use compiles away) or a [`Details`].
pub trait DetailSink {
    fn get(&mut self) -> Option<&mut Details>;
}

/// Details are not wanted.
pub struct NoDetails;

impl DetailSink for NoDetails {
    #[inline(always)]
    fn get(&mut self) -> Option<&mut Details> {
        None
    }
}

impl DetailSink for Details {
    #[inline(always)]
    fn get(&mut self) -> Option<&mut Details> {
        Some(self)
    }
}

/// Bits of [`Details::ip_options`] for IPv6 extension headers.
pub mod ip6_ext {
    pub const DEST_OPTS: u32 = 1 << 0;
    pub const HOP_BY_HOP: u32 = 1 << 1;
    pub const ROUTING: u32 = 1 << 2;
    /// A fragment header of a first fragment (offset 0).
    pub const FIRST_FRAGMENT: u32 = 1 << 3;
    /// A fragment header of a later fragment.
    pub const LATER_FRAGMENT: u32 = 1 << 4;
}

/// The decoded summary of one packet. `Copy`, fixed size, no borrowed data.
#[derive(Clone, Copy, Debug, Default)]
pub struct Packet {
    /// Addresses, protocol, IP version and VLAN always; ports only when the transport header was
    /// decoded (unfragmented packets and first fragments).
    pub key: FlowKey,
    /// Octets of the IP packet as they crossed the wire: IPv4 total length, IPv6 payload length
    /// plus 40 (the jumbo payload length when the payload length is 0 and a jumbo option exists).
    pub ip_len: u32,
    /// Octets of transport payload (after the TCP/UDP/ICMP header), 0 when not known.
    pub payload_len: u32,
    /// Octets of IP header in `ip_len`: IPv4 IHL × 4; IPv6 40 plus the extension headers
    /// walked (up to and including a fragment header). A fragment's share of its datagram is
    /// `ip_len - ip_header_len`.
    pub ip_header_len: u32,
    pub ttl: u8,
    /// The two ECN bits of the IP header.
    pub ecn: u8,
    /// Set for IP fragments (IPv4 MF or offset != 0; IPv6 fragment header present).
    pub frag: Option<FragInfo>,
    /// True when the transport header was decoded and the ports in `key` are real.
    pub has_l4: bool,
    /// Present for TCP packets whose header was decoded.
    pub tcp: Option<TcpInfo>,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The IPv4 ToS or IPv6 traffic-class octet (DSCP and ECN).
    pub tos: u8,
    /// The VLAN id of the outermost tag (the key's `vlan` is the innermost: the same with one
    /// tag), 0 when untagged.
    pub outer_vlan: u16,
}

impl Packet {
    /// Make this packet [`Packet::default`] again, field by field. (`*self =
    /// Packet::default()` built the value on the stack and copied it in, bytes of the `None`
    /// TCP header included, with loads that straddled its own stores: a stall per packet.)
    #[inline(always)]
    pub fn clear(&mut self) {
        // (Every field by name: a new one must be cleared here too.)
        let Packet {
            key,
            ip_len,
            payload_len,
            ip_header_len,
            ttl,
            ecn,
            frag,
            has_l4,
            tcp,
            src_mac,
            dst_mac,
            tos,
            outer_vlan,
        } = self;
        *key = FlowKey::default();
        *ip_len = 0;
        *payload_len = 0;
        *ip_header_len = 0;
        *ttl = 0;
        *ecn = 0;
        *frag = None;
        *has_l4 = false;
        *tcp = None;
        *src_mac = [0; 6];
        *dst_mac = [0; 6];
        *tos = 0;
        *outer_vlan = 0;
    }
}

/// Why a frame was not metered. Each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ignore {
    /// Link type we do not decode.
    UnsupportedLinkType,
    /// Frame shorter than its link-layer header (including VLAN/MPLS/PPPoE shims).
    TruncatedL2,
    /// Ethertype / PPP protocol / address family that is not IP (ARP, LLDP, ...).
    NotIp,
    /// IP version filtered out by the template (e.g. IPv6 with an IPv4-only template).
    FilteredFamily,
    /// IP header shorter than its fixed part or its own length field.
    TruncatedIp,
    /// IP header fields that cannot be right (version, header length, total length).
    MalformedIp,
    /// Transport header (TCP/UDP/ICMP) cut short in a non-fragmented packet or first fragment.
    TruncatedL4,
    /// GRE that cannot be decapsulated (version != 0, unknown inner protocol) with gre-decap on.
    BadGre,
    /// IPv6 "no next header".
    NoNextHeader,
}

impl Ignore {
    pub const ALL: [Ignore; 9] = [
        Ignore::UnsupportedLinkType,
        Ignore::TruncatedL2,
        Ignore::NotIp,
        Ignore::FilteredFamily,
        Ignore::TruncatedIp,
        Ignore::MalformedIp,
        Ignore::TruncatedL4,
        Ignore::BadGre,
        Ignore::NoNextHeader,
    ];

    /// Short name for the summary line and logs.
    pub fn name(self) -> &'static str {
        match self {
            Ignore::UnsupportedLinkType => "linktype",
            Ignore::TruncatedL2 => "short-l2",
            Ignore::NotIp => "not-ip",
            Ignore::FilteredFamily => "family",
            Ignore::TruncatedIp => "short-ip",
            Ignore::MalformedIp => "bad-ip",
            Ignore::TruncatedL4 => "short-l4",
            Ignore::BadGre => "bad-gre",
            Ignore::NoNextHeader => "no-next-header",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Per-reason counters of ignored frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IgnoreCounts(pub [u64; Ignore::ALL.len()]);

impl IgnoreCounts {
    pub fn add(&mut self, why: Ignore) {
        self.0[why.index()] += 1;
    }
    pub fn get(&self, why: Ignore) -> u64 {
        self.0[why.index()]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Add another counter set (workers' counts, summed).
    pub fn merge(&mut self, o: &IgnoreCounts) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a += b;
        }
    }
}

/// What places a frame's packet on a metering worker: its addresses and its innermost VLAN
/// id, read with no more decoding than the link layer and the IP header's address fields.
/// Both directions of a flow, and every fragment of a datagram, have the same
/// [`ShardKey::hash`] input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardKey {
    /// The two addresses, the lower first (IPv4 in the first 4 octets of each).
    pub low: [u8; 16],
    pub high: [u8; 16],
    pub vlan: u16,
    /// 4 or 6.
    pub ip_version: u8,
}

/// The [`ShardKey`] of a frame, or `None` when it is not IP (or cut before its addresses): the
/// full decoder then decides what it is. With GRE decapsulation the key would be the inner
/// packet's: the caller decodes such frames fully instead. `scratch` is any packet, reused
/// (only its link-layer fields are written, and read back).
#[inline]
pub fn shard_key(linktype: u32, data: &[u8], scratch: &mut Packet) -> Option<ShardKey> {
    let p = scratch;
    p.key.vlan = 0;
    let net = link::decode(linktype, data, p, &mut NoDetails).ok()?;
    let (a, b, ip_version) = match net {
        link::Network::V4(off) => {
            let h = data.get(off..off + 20)?;
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            a[..4].copy_from_slice(&h[12..16]);
            b[..4].copy_from_slice(&h[16..20]);
            (a, b, 4)
        }
        link::Network::V6(off) => {
            let h = data.get(off..off + 40)?;
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            a.copy_from_slice(&h[8..24]);
            b.copy_from_slice(&h[24..40]);
            (a, b, 6)
        }
    };
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    Some(ShardKey {
        low,
        high,
        vlan: p.key.vlan,
        ip_version,
    })
}

/// GRE inside GRE inside ... stops here.
const MAX_GRE_DEPTH: u8 = 2;

/// Decode one frame of link type `linktype` into `out`.
///
/// `out` is overwritten entirely; callers reuse one `Packet` across frames.
#[inline]
pub fn decode(
    linktype: u32,
    data: &[u8],
    cfg: &DecodeConfig,
    out: &mut Packet,
) -> Result<(), Ignore> {
    decode_into(linktype, data, cfg, out, &mut NoDetails)
}

/// [`decode`], and the header facts only plugins use into `details` (overwritten entirely).
pub fn decode_with_details(
    linktype: u32,
    data: &[u8],
    cfg: &DecodeConfig,
    out: &mut Packet,
    details: &mut Details,
) -> Result<(), Ignore> {
    *details = Details::default();
    decode_into(linktype, data, cfg, out, details)
}

/// Layers are decoded in a loop, not by recursion: an IP packet inside GRE (with
/// `gre_decap`) is decoded in place of the outer one, which it replaces except for the link
/// layer.
#[inline(always)]
fn decode_into<D: DetailSink>(
    linktype: u32,
    data: &[u8],
    cfg: &DecodeConfig,
    out: &mut Packet,
    d: &mut D,
) -> Result<(), Ignore> {
    out.clear();
    let mut net = link::decode(linktype, data, out, d)?;
    for _ in 0..=MAX_GRE_DEPTH {
        let inner = match net {
            link::Network::V4(off) => ip::ipv4(data, off, cfg, out, d)?,
            link::Network::V6(off) => ip::ipv6(data, off, cfg, out, d)?,
        };
        match inner {
            None => return Ok(()),
            Some(n) => {
                *out = Packet {
                    src_mac: out.src_mac,
                    dst_mac: out.dst_mac,
                    outer_vlan: out.outer_vlan,
                    key: crate::key::FlowKey {
                        vlan: out.key.vlan,
                        ..Default::default()
                    },
                    ..Packet::default()
                };
                if let Some(d) = d.get() {
                    // The inner packet's network and transport facts replace the outer's.
                    *d = Details {
                        ethertype: d.ethertype,
                        vlan_tci: d.vlan_tci,
                        vlan_tags: d.vlan_tags,
                        mpls_top: d.mpls_top,
                        ..Details::default()
                    };
                }
                net = n;
            }
        }
    }
    Err(Ignore::BadGre)
}

#[cfg(test)]
mod tests;
