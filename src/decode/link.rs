//! Link layers and shims: from a frame to the offset of its IP header.
//!
//! VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, the old QinQ 0x9100): the id of the innermost
//! tag is kept in the flow key, as QoF keeps the last tag it decodes; for Q-in-Q that is the
//! customer (C-)tag, which names the customer network the flow belongs to.

use super::wire::{array, u16_at, u32_at, u8_at};
use super::{DetailSink, Ignore, Packet};
use crate::capture::linktype as lt;

/// Where the IP header starts, and which version the link layer announced.
pub(super) enum Network {
    V4(usize),
    V6(usize),
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE_SESSION: u16 = 0x8864;
/// Arista's vendor-specific timestamp header (EtherType 0xd28b).
const ETH_ARISTA: u16 = 0xd28b;

const PPP_IPV4: u16 = 0x0021;
const PPP_IPV6: u16 = 0x0057;
const PPP_MPLS: u16 = 0x0281;
const PPP_MPLS_MC: u16 = 0x0283;

/// Nested shims (tags, label stacks, PPPoE) we follow before giving up.
const MAX_SHIMS: usize = 8;
const MAX_MPLS_LABELS: usize = 16;

#[inline(always)]
pub(super) fn decode<D: DetailSink>(
    linktype: u32,
    f: &[u8],
    out: &mut Packet,
    d: &mut D,
) -> Result<Network, Ignore> {
    const SHORT: Ignore = Ignore::TruncatedL2;
    match linktype {
        lt::ETHERNET => {
            out.dst_mac = array(f, 0, SHORT)?;
            out.src_mac = array(f, 6, SHORT)?;
            ethertype(f, u16_at(f, 12, SHORT)?, 14, out, d)
        }
        lt::RAW_BSD | lt::RAW_OPENBSD | lt::RAW => by_version(f, 0),
        lt::IPV4 => Ok(Network::V4(0)),
        lt::IPV6 => Ok(Network::V6(0)),
        lt::LINUX_SLL => ethertype(f, u16_at(f, 14, SHORT)?, 16, out, d),
        lt::LINUX_SLL2 if f.len() < 20 => Err(SHORT),
        lt::LINUX_SLL2 => ethertype(f, u16_at(f, 0, SHORT)?, 20, out, d),
        lt::NULL => {
            // The address family in the capturing host's byte order: accept either.
            let le = u32::from_le_bytes(array(f, 0, SHORT)?);
            let be = u32_at(f, 0, SHORT)?;
            address_family(le)
                .or_else(|_| address_family(be))
                .map(|v4| if v4 { Network::V4(4) } else { Network::V6(4) })
        }
        lt::LOOP => address_family(u32_at(f, 0, SHORT)?).map(|v4| {
            if v4 {
                Network::V4(4)
            } else {
                Network::V6(4)
            }
        }),
        lt::PPP | lt::PPP_HDLC => {
            let first = u8_at(f, 0, SHORT)?;
            if linktype == lt::PPP_HDLC && (first == 0x0f || first == 0x8f) {
                // Cisco HDLC framing inside DLT_PPP_SERIAL.
                return ethertype(f, u16_at(f, 2, SHORT)?, 4, out, d);
            }
            let off = if first == 0xff && u8_at(f, 1, SHORT)? == 0x03 {
                2
            } else {
                0
            };
            ppp(f, off, d)
        }
        lt::C_HDLC => ethertype(f, u16_at(f, 2, SHORT)?, 4, out, d),
        lt::PPP_ETHER => ppp(f, 6, d),
        _ => Err(Ignore::UnsupportedLinkType),
    }
}

/// BSD AF_ values: true for IPv4, false for IPv6.
fn address_family(af: u32) -> Result<bool, Ignore> {
    match af {
        2 => Ok(true),
        10 | 24 | 28 | 30 => Ok(false),
        _ => Err(Ignore::NotIp),
    }
}

/// Raw IP: the version nibble decides.
fn by_version(f: &[u8], off: usize) -> Result<Network, Ignore> {
    match u8_at(f, off, Ignore::TruncatedIp)? >> 4 {
        4 => Ok(Network::V4(off)),
        6 => Ok(Network::V6(off)),
        _ => Err(Ignore::NotIp),
    }
}

/// A PPP protocol field at `off` (1 byte when protocol-field-compressed, else 2).
fn ppp<D: DetailSink>(f: &[u8], off: usize, d: &mut D) -> Result<Network, Ignore> {
    let first = u8_at(f, off, Ignore::TruncatedL2)?;
    let (proto, hdr) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        (u16_at(f, off, Ignore::TruncatedL2)?, 2)
    };
    match proto {
        PPP_IPV4 => Ok(Network::V4(off + hdr)),
        PPP_IPV6 => Ok(Network::V6(off + hdr)),
        PPP_MPLS | PPP_MPLS_MC => mpls(f, off + hdr, d),
        _ => Err(Ignore::NotIp),
    }
}

/// Follow shims from an ethertype at `off` until an IP header.
fn ethertype<D: DetailSink>(
    f: &[u8],
    mut etype: u16,
    mut off: usize,
    out: &mut Packet,
    d: &mut D,
) -> Result<Network, Ignore> {
    const SHORT: Ignore = Ignore::TruncatedL2;
    for _ in 0..MAX_SHIMS {
        if let Some(d) = d.get() {
            d.ethertype = etype;
        }
        match etype {
            ETH_IPV4 => return Ok(Network::V4(off)),
            ETH_IPV6 => return Ok(Network::V6(off)),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                let tci = u16_at(f, off, SHORT)?;
                out.key.vlan = tci & 0x0fff;
                if out.outer_vlan == 0 {
                    // The first (outermost) tag.
                    out.outer_vlan = out.key.vlan;
                }
                if let Some(d) = d.get() {
                    // The outer two tags (S- and C-tag of Q-in-Q), whole (priority and VID).
                    if let Some(t) = d.vlan_tci.get_mut(usize::from(d.vlan_tags)) {
                        *t = tci;
                    }
                    d.vlan_tags = d.vlan_tags.saturating_add(1);
                }
                etype = u16_at(f, off + 2, SHORT)?;
                off += 4;
            }
            ETH_MPLS | ETH_MPLS_MC => return mpls(f, off, d),
            ETH_ARISTA => {
                // Sub-type 1 (timestamp), then a version whose low byte gives the timestamp
                // format: 0x10 = 64-bit (8 octets), 0x20 = 48-bit (6 octets). Other versions
                // are unknown, as they are to tshark: the frame is not decoded further.
                let (subtype, version) = (u16_at(f, off, SHORT)?, u16_at(f, off + 2, SHORT)?);
                let ts_len = match (subtype, version & 0xff) {
                    (1, 0x10) => 8,
                    (1, 0x20) => 6,
                    _ => return Err(Ignore::NotIp),
                };
                etype = u16_at(f, off + 4 + ts_len, SHORT)?;
                off += 4 + ts_len + 2;
            }
            ETH_PPPOE_SESSION => {
                // version/type, code, session id, length; then the PPP protocol.
                if f.len() < off + 6 {
                    return Err(SHORT);
                }
                return ppp(f, off + 6, d);
            }
            _ => return Err(Ignore::NotIp),
        }
    }
    Err(Ignore::NotIp)
}

/// Skip an MPLS label stack to its bottom; the payload's version nibble decides. The top
/// label stack entry is kept.
fn mpls<D: DetailSink>(f: &[u8], mut off: usize, d: &mut D) -> Result<Network, Ignore> {
    for i in 0..MAX_MPLS_LABELS {
        let entry = u32_at(f, off, Ignore::TruncatedL2)?;
        if let (0, Some(d)) = (i, d.get()) {
            d.mpls_top = entry;
        }
        off += 4;
        if entry & 0x100 != 0 {
            return by_version(f, off).map_err(|e| {
                if e == Ignore::TruncatedIp {
                    Ignore::TruncatedL2
                } else {
                    e
                }
            });
        }
    }
    Err(Ignore::NotIp)
}
