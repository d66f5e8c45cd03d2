//! Transport headers: ports, TCP fields and options, ICMP type/code, GRE decapsulation.
//!
//! A packet whose transport header was cut by the snaplen is still metered: with its ports if
//! the first four octets were captured (tshark attributes such packets the same way), without
//! them otherwise. Only an IP header can make a packet unusable.

use super::wire::{u16_at, u32_at, u8_at};
use super::{ip, DecodeConfig, Ignore, Packet, TcpInfo, TcpOptions};
use crate::key::proto;

/// GRE inside GRE inside ... stops here.
const MAX_GRE_DEPTH: u8 = 2;

pub(super) fn decode(
    p: u8,
    l4: &[u8],
    ip_payload: u32,
    cfg: &DecodeConfig,
    out: &mut Packet,
    depth: u8,
) -> Result<(), Ignore> {
    match p {
        proto::TCP if ports(l4, out) => out.tcp = tcp(l4, cfg, out, ip_payload),
        proto::UDP if ports(l4, out) => out.payload_len = ip_payload.saturating_sub(8),
        proto::SCTP if ports(l4, out) => out.payload_len = ip_payload.saturating_sub(12),
        proto::ICMP | proto::ICMPV6 => {
            if let Ok(tc) = u16_at(l4, 0, Ignore::TruncatedL4) {
                out.key.src_port = 0;
                out.key.dst_port = tc;
                out.has_l4 = true;
                out.payload_len = ip_payload.saturating_sub(8);
            }
        }
        proto::GRE if cfg.gre_decap => return gre(l4, cfg, out, depth),
        _ => {}
    }
    Ok(())
}

fn ports(l4: &[u8], out: &mut Packet) -> bool {
    match (
        u16_at(l4, 0, Ignore::TruncatedL4),
        u16_at(l4, 2, Ignore::TruncatedL4),
    ) {
        (Ok(s), Ok(d)) => {
            out.key.src_port = s;
            out.key.dst_port = d;
            out.has_l4 = true;
            true
        }
        _ => false,
    }
}

fn tcp(h: &[u8], cfg: &DecodeConfig, out: &mut Packet, ip_payload: u32) -> Option<TcpInfo> {
    const S: Ignore = Ignore::TruncatedL4;
    let doff = usize::from(u8_at(h, 12, S).ok()? >> 4) * 4;
    if doff < 20 || h.len() < doff {
        return None;
    }
    out.payload_len = ip_payload.saturating_sub(doff as u32);
    let mut info = TcpInfo {
        seq: u32_at(h, 4, S).ok()?,
        ack: u32_at(h, 8, S).ok()?,
        flags: u8_at(h, 13, S).ok()?,
        window: u16_at(h, 14, S).ok()?,
        options: TcpOptions::default(),
    };
    if cfg.tcp_options && doff > 20 {
        info.options = tcp_options(&h[20..doff]);
    }
    Some(info)
}

/// MSS, window scale, SACK-permitted, SACK (right edge of the last block) and timestamps.
/// A bad length marks the options malformed and stops there; the packet is still metered.
fn tcp_options(o: &[u8]) -> TcpOptions {
    let mut t = TcpOptions::default();
    // What nearly every data segment of Linux and BSD stacks carries (RFC 7323 Appendix A's
    // layout): NOP, NOP, timestamps. Same result as the loop, in one comparison.
    if let [1, 1, 8, 10, v0, v1, v2, v3, e0, e1, e2, e3] = *o {
        t.timestamp = Some((
            u32::from_be_bytes([v0, v1, v2, v3]),
            u32::from_be_bytes([e0, e1, e2, e3]),
        ));
        return t;
    }
    walk_tcp_options(o)
}

/// Every option in turn (the general case of [`tcp_options`]).
fn walk_tcp_options(mut o: &[u8]) -> TcpOptions {
    let mut t = TcpOptions::default();
    while let Some(&kind) = o.first() {
        match kind {
            0 => break,
            1 => {
                o = &o[1..];
                continue;
            }
            _ => {}
        }
        let Some(&len) = o.get(1) else {
            t.malformed = true;
            break;
        };
        let len = usize::from(len);
        if len < 2 || len > o.len() {
            t.malformed = true;
            break;
        }
        let body = &o[2..len];
        match (kind, body.len()) {
            (2, 2) => t.mss = Some(u16::from_be_bytes([body[0], body[1]])),
            (3, 1) => t.window_scale = Some(body[0]),
            (4, 0) => t.sack_permitted = true,
            (5, n) if n >= 8 && n % 8 == 0 => {
                let last = &body[n - 4..];
                t.sack_right_edge = Some(u32::from_be_bytes([last[0], last[1], last[2], last[3]]));
            }
            (8, 8) => {
                let val = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let ecr = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                t.timestamp = Some((val, ecr));
            }
            (2..=5, _) | (8, _) => t.malformed = true,
            _ => {}
        }
        o = &o[len..];
    }
    t
}

/// GRE version 0 (RFC 2784/2890): decode the IP packet inside in place of the outer one.
fn gre(g: &[u8], cfg: &DecodeConfig, out: &mut Packet, depth: u8) -> Result<(), Ignore> {
    const BAD: Ignore = Ignore::BadGre;
    if depth >= MAX_GRE_DEPTH {
        return Err(BAD);
    }
    let flags = u16_at(g, 0, BAD)?;
    if flags & 0x7 != 0 {
        return Err(BAD); // version must be 0
    }
    let ptype = u16_at(g, 2, BAD)?;
    let (csum, routing, key, seq) = (
        flags & 0x8000 != 0,
        flags & 0x4000 != 0,
        flags & 0x2000 != 0,
        flags & 0x1000 != 0,
    );
    let mut off = 4;
    if csum || routing {
        off += 4;
    }
    if key {
        off += 4;
    }
    if seq {
        off += 4;
    }
    if routing {
        // Source route entries, ended by one with address family 0 and length 0 (RFC 1701).
        for _ in 0..16 {
            let af = u16_at(g, off, BAD)?;
            let len = usize::from(u8_at(g, off + 3, BAD)?);
            off += 4 + len;
            if af == 0 && len == 0 {
                break;
            }
        }
    }
    let inner = g.get(off..).ok_or(BAD)?;
    // The inner packet replaces the outer one's key and lengths; the MACs stay the outer frame's.
    let vlan = out.key.vlan;
    let (src_mac, dst_mac) = (out.src_mac, out.dst_mac);
    *out = Packet {
        src_mac,
        dst_mac,
        ..Packet::default()
    };
    out.key.vlan = vlan;
    match ptype {
        0x0800 => ip::ipv4(inner, cfg, out, depth + 1),
        0x86dd => ip::ipv6(inner, cfg, out, depth + 1),
        _ => Err(BAD),
    }
}

#[cfg(test)]
mod options_tests {
    use super::{tcp_options, walk_tcp_options};

    /// The NOP-NOP-timestamps shortcut gives what walking the options gives, and anything
    /// that only resembles that layout takes the walk.
    #[test]
    fn timestamp_shortcut_agrees_with_the_walk() {
        let ts = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0xff, 0, 0, 1];
        assert_eq!(tcp_options(&ts).timestamp, Some((0x1234, 0xff00_0001)));
        let mut cases: Vec<Vec<u8>> = vec![
            ts.to_vec(),
            vec![1, 1, 8, 9, 0, 0, 0, 1, 0, 0, 0, 2], // bad length: malformed
            vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0],   // truncated
            vec![8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1], // timestamps first
            vec![2, 4, 5, 180, 1, 3, 3, 7, 4, 2, 1, 1],
            vec![1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        ];
        cases.push([ts.as_slice(), &[1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9]].concat());
        for c in &cases {
            assert_eq!(tcp_options(c), walk_tcp_options(c), "{c:?}");
        }
    }
}
