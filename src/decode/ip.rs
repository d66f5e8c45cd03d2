//! IPv4 and IPv6 headers (with extension headers and fragments), then the transport header.
//!
//! What is counted is what crossed the wire: `ip_len` comes from the header, not from the
//! capture length (a snaplen cuts captures, Ethernet pads them). Two exceptions follow the
//! wire too: an IPv4 total length of 0 (TSO/BIG TCP captured on the sender) takes the length
//! of what follows the link header, as tshark does, and an IPv6 jumbogram takes the jumbo
//! payload length (RFC 2675).

use super::link::Network;
use super::transport;
use super::wire::{array, u16_at, u32_at, u8_at};
use super::{DecodeConfig, DetailSink, FragInfo, Ignore, Packet};

const V6_HOP_BY_HOP: u8 = 0;
const V6_ROUTING: u8 = 43;
const V6_FRAGMENT: u8 = 44;
const V6_DEST_OPTS: u8 = 60;
const JUMBO_OPTION: u8 = 0xc2;
/// Extension headers walked at most. Each is at least 8 octets, so a packet's own length
/// bounds the walk; this bound only caps the work on absurd (jumbo) chains.
const MAX_EXT_HEADERS: usize = 512;

/// The IPv4 packet at `at` in `frame`, then its transport header. `Some` is the inner packet
/// of a GRE tunnel (see [`transport::decode`]).
#[inline(always)]
pub(super) fn ipv4<D: DetailSink>(
    frame: &[u8],
    at: usize,
    cfg: &DecodeConfig,
    out: &mut Packet,
    d: &mut D,
) -> Result<Option<Network>, Ignore> {
    const SHORT: Ignore = Ignore::TruncatedIp;
    let b = frame.get(at..).unwrap_or(&[]);
    let vihl = u8_at(b, 0, SHORT)?;
    if vihl >> 4 != 4 {
        return Err(Ignore::MalformedIp);
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return Err(Ignore::MalformedIp);
    }
    if b.len() < ihl {
        return Err(SHORT);
    }
    if !cfg.ipv4 {
        return Err(Ignore::FilteredFamily);
    }
    let total = usize::from(u16_at(b, 2, SHORT)?);
    let ip_len = if total == 0 { b.len() } else { total };
    if ip_len < ihl {
        return Err(Ignore::MalformedIp);
    }
    out.key.set_ipv4(array(b, 12, SHORT)?, array(b, 16, SHORT)?);
    out.key.proto = u8_at(b, 9, SHORT)?;
    out.ttl = u8_at(b, 8, SHORT)?;
    let tos = u8_at(b, 1, SHORT)?;
    out.ecn = tos & 3;
    out.tos = tos;
    out.ip_len = ip_len as u32;
    out.ip_header_len = ihl as u32;
    let frag = u16_at(b, 6, SHORT)?;
    if let Some(d) = d.get() {
        d.tos = tos;
        d.ip_flags = (frag >> 13) as u8 & 3;
        if cfg.headers && ihl > 20 {
            d.ip_options = ipv4_options(&b[20..ihl]);
        }
    }
    let (more, offset) = (frag & 0x2000 != 0, u32::from(frag & 0x1fff) * 8);
    if more || offset != 0 {
        out.frag = Some(FragInfo {
            id: u16_at(b, 4, SHORT)?.into(),
            offset,
            more,
        });
        if offset != 0 {
            return Ok(None); // only the first fragment carries the transport header
        }
    }
    // Ethernet padding lies beyond the total length: leave it out.
    let end = at + ip_len.min(b.len());
    let p = out.key.proto;
    transport::decode(p, frame, at + ihl, end, (ip_len - ihl) as u32, cfg, out, d)
}

/// The IPv4 options present in an options area: bit *n* for option number *n* (the low five
/// bits of the option type), for the option types IANA registers. The `headers` plugin maps
/// these to the ipv4Options element, whose definition counts an option only when all eight
/// bits of its type match a registered one: a type of an unregistered class or copy bit
/// sets no bit.
fn ipv4_options(mut o: &[u8]) -> u32 {
    let mut bits = 0u32;
    while let Some(&ty) = o.first() {
        if registered_ipv4_option(ty) {
            bits |= 1 << (ty & 0x1f);
        }
        match ty {
            0 => break,
            1 => o = &o[1..],
            _ => {
                let len = usize::from(o.get(1).copied().unwrap_or(0));
                if len < 2 || len > o.len() {
                    break;
                }
                o = &o[len..];
            }
        }
    }
    bits
}

/// The IPv4 option types of IANA's ip-parameters registry that the ipv4Options element
/// (IANA 208) names, experiments (30, 94, 158, 222) included.
fn registered_ipv4_option(ty: u8) -> bool {
    matches!(
        ty,
        0 | 1
            | 7
            | 10
            | 11
            | 12
            | 15
            | 25
            | 30
            | 68
            | 82
            | 94
            | 130
            | 131
            | 133
            | 134
            | 136
            | 137
            | 142
            | 144
            | 145
            | 147
            | 148
            | 149
            | 150
            | 151
            | 152
            | 158
            | 205
            | 222
    )
}

/// The IPv6 packet at `at` in `frame`, its extension headers, then its transport header.
#[inline(always)]
pub(super) fn ipv6<D: DetailSink>(
    frame: &[u8],
    at: usize,
    cfg: &DecodeConfig,
    out: &mut Packet,
    d: &mut D,
) -> Result<Option<Network>, Ignore> {
    const SHORT: Ignore = Ignore::TruncatedIp;
    let b = frame.get(at..).unwrap_or(&[]);
    let v = u8_at(b, 0, SHORT)?;
    if v >> 4 != 6 {
        return Err(Ignore::MalformedIp);
    }
    if b.len() < 40 {
        return Err(SHORT);
    }
    if !cfg.ipv6 {
        return Err(Ignore::FilteredFamily);
    }
    out.key.set_ipv6(array(b, 8, SHORT)?, array(b, 24, SHORT)?);
    let tos = (u16_at(b, 0, SHORT)? >> 4) as u8;
    out.ecn = tos & 3;
    out.tos = tos;
    if let Some(d) = d.get() {
        d.tos = tos;
    }
    out.ttl = u8_at(b, 7, SHORT)?;
    let mut ip_len = usize::from(u16_at(b, 4, SHORT)?) + 40;
    let mut next = u8_at(b, 6, SHORT)?;
    let mut off = 40;
    // Walk extension headers. A header cut by the snaplen ends the walk: the packet is still
    // metered, with the protocol known so far and no ports.
    for _ in 0..MAX_EXT_HEADERS {
        match next {
            V6_HOP_BY_HOP | V6_ROUTING | V6_DEST_OPTS => {
                let (Ok(nh), Ok(len)) = (u8_at(b, off, SHORT), u8_at(b, off + 1, SHORT)) else {
                    break;
                };
                let len = (usize::from(len) + 1) * 8;
                if let Some(d) = d.get() {
                    d.ip_options |= extension_bit(next);
                }
                if next == V6_HOP_BY_HOP && ip_len == 40 {
                    if let Some(jumbo) = jumbo_length(b.get(off + 2..off + len).unwrap_or(&[])) {
                        ip_len = jumbo as usize + 40;
                    }
                }
                next = nh;
                off += len;
            }
            V6_FRAGMENT => {
                let (Ok(nh), Ok(fo), Ok(id)) = (
                    u8_at(b, off, SHORT),
                    u16_at(b, off + 2, SHORT),
                    u32_at(b, off + 4, SHORT),
                ) else {
                    break;
                };
                next = nh;
                off += 8;
                let offset = u32::from(fo & 0xfff8);
                let more = fo & 1 == 1;
                if let Some(d) = d.get() {
                    d.ip_options |= if offset == 0 {
                        super::ip6_ext::FIRST_FRAGMENT
                    } else {
                        super::ip6_ext::LATER_FRAGMENT
                    };
                }
                // An atomic fragment (offset 0, no more) is a whole datagram (RFC 6946).
                if more || offset != 0 {
                    out.frag = Some(FragInfo { id, offset, more });
                }
                if offset != 0 {
                    out.key.proto = next;
                    out.ip_len = ip_len as u32;
                    out.ip_header_len = off as u32;
                    return Ok(None);
                }
            }
            _ => break,
        }
    }
    out.key.proto = next;
    out.ip_len = ip_len as u32;
    out.ip_header_len = off.min(ip_len) as u32;
    if off > ip_len.min(b.len()) || is_extension(next) {
        return Ok(None); // header chain cut short (or too long): no transport header
    }
    let end = at + ip_len.min(b.len());
    transport::decode(
        next,
        frame,
        at + off,
        end,
        (ip_len - off) as u32,
        cfg,
        out,
        d,
    )
}

/// The bit of [`super::ip6_ext`] for a hop-by-hop, routing or destination options header.
fn extension_bit(nh: u8) -> u32 {
    use super::ip6_ext as x;
    match nh {
        V6_DEST_OPTS => x::DEST_OPTS,
        V6_HOP_BY_HOP => x::HOP_BY_HOP,
        V6_ROUTING => x::ROUTING,
        _ => 0,
    }
}

fn is_extension(nh: u8) -> bool {
    matches!(nh, V6_HOP_BY_HOP | V6_ROUTING | V6_FRAGMENT | V6_DEST_OPTS)
}

/// The jumbo payload length in a hop-by-hop options area, if present.
fn jumbo_length(opts: &[u8]) -> Option<u32> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => i += 1, // Pad1
            JUMBO_OPTION => {
                let v = opts.get(i + 2..i + 6)?;
                return Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
            }
            _ => i += 2 + usize::from(*opts.get(i + 1)?),
        }
    }
    None
}
