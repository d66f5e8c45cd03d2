//! Transport headers: ports, TCP fields and options, ICMP type/code, GRE decapsulation.
//!
//! A packet whose transport header was cut by the snaplen is still metered: with its ports if
//! the first four octets were captured (tshark attributes such packets the same way), without
//! them otherwise. Only an IP header can make a packet unusable.

use super::link::Network;
use super::wire::{u16_at, u32_at, u8_at};
use super::{DecodeConfig, DetailSink, Ignore, Packet, Sack, TcpInfo, TcpOptions};
use crate::key::proto;

/// Decode the transport header that starts at `l4_at` in `frame` (whose IP packet ends at
/// `l4_end`, Ethernet padding excluded). `Some` is a GRE packet's inner IP packet, for the
/// caller to decode in the outer one's place.
#[allow(clippy::too_many_arguments)] // (inlined into one caller per IP version)
#[inline(always)]
pub(super) fn decode<D: DetailSink>(
    p: u8,
    frame: &[u8],
    l4_at: usize,
    l4_end: usize,
    ip_payload: u32,
    cfg: &DecodeConfig,
    out: &mut Packet,
    d: &mut D,
) -> Result<Option<Network>, Ignore> {
    let l4 = frame.get(l4_at..l4_end).unwrap_or(&[]);
    let header = match p {
        proto::TCP if ports(l4, out) => {
            out.tcp = tcp(l4, cfg, out, ip_payload, d);
            out.tcp.map(|_| ip_payload - out.payload_len)
        }
        proto::UDP if ports(l4, out) => {
            out.payload_len = ip_payload.saturating_sub(8);
            Some(8)
        }
        proto::SCTP if ports(l4, out) => {
            out.payload_len = ip_payload.saturating_sub(12);
            Some(12)
        }
        proto::ICMP | proto::ICMPV6 => match u16_at(l4, 0, Ignore::TruncatedL4) {
            Ok(tc) => {
                out.key.src_port = 0;
                out.key.dst_port = tc;
                out.has_l4 = true;
                out.payload_len = ip_payload.saturating_sub(8);
                Some(8)
            }
            Err(_) => None,
        },
        proto::GRE if cfg.gre_decap => return gre(l4, l4_at).map(Some),
        _ => None,
    };
    if let (Some(h), Some(d)) = (header, d.get()) {
        d.payload_off = (l4_at as u32).saturating_add(h);
    }
    Ok(None)
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

// (Inlined: called, it returned its header through memory, read back wider than written.)
#[inline(always)]
fn tcp<D: DetailSink>(
    h: &[u8],
    cfg: &DecodeConfig,
    out: &mut Packet,
    ip_payload: u32,
    d: &mut D,
) -> Option<TcpInfo> {
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
        let o = &h[20..doff];
        info.options = tcp_options(o, info.ack);
        if let Some(d) = d.get() {
            d.tcp_option_kinds = option_kinds(o);
        }
    }
    Some(info)
}

/// MSS, window scale, SACK-permitted, SACK (right edge of the last block, and whether the
/// first is a D-SACK against acknowledgement number `ack`) and timestamps. A bad length marks
/// the options malformed and stops there; the packet is still metered.
#[inline]
fn tcp_options(o: &[u8], ack: u32) -> TcpOptions {
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
    walk_tcp_options(o, ack)
}

/// The option kinds present, as the tcpOptions element (IANA 209) lays them out: kind 0 is
/// the most significant bit (RFC 5102); kinds above 63 have no bit. The walk stops where
/// [`walk_tcp_options`] stops, at the end of the option list or at an option whose length is
/// impossible (shorter than two octets, or past the header's end), which is not counted: it
/// is no option (tshark lists none either).
fn option_kinds(mut o: &[u8]) -> u64 {
    let mut kinds = 0u64;
    while let Some(&kind) = o.first() {
        let len = match kind {
            0 | 1 => 1,
            _ => usize::from(o.get(1).copied().unwrap_or(0)),
        };
        if len > o.len() || (kind > 1 && len < 2) {
            break;
        }
        if kind < 64 {
            kinds |= 1 << (63 - kind);
        }
        if kind == 0 {
            break;
        }
        o = &o[len..];
    }
    kinds
}

/// Every option in turn (the general case of [`tcp_options`]; out of line, so that the usual
/// case saves no registers for it).
#[inline(never)]
fn walk_tcp_options(mut o: &[u8], ack: u32) -> TcpOptions {
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
                let at =
                    |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
                // RFC 2883 §4: a first block below the cumulative ACK, or inside the second
                // block, reports a segment the receiver got twice.
                let (left, right) = (at(0), at(4));
                let before = |a: u32, b: u32| (a.wrapping_sub(b) as i32) < 0;
                t.sack = Some(Sack::new(
                    at(n - 4),
                    before(left, ack)
                        || (n >= 16 && !before(left, at(8)) && !before(at(12), right)),
                ));
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

/// GRE version 0 (RFC 2784/2890): where the IP packet inside starts (the GRE header is at
/// `at` in the frame).
fn gre(g: &[u8], at: usize) -> Result<Network, Ignore> {
    const BAD: Ignore = Ignore::BadGre;
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
    if off > g.len() {
        return Err(BAD);
    }
    match ptype {
        0x0800 => Ok(Network::V4(at + off)),
        0x86dd => Ok(Network::V6(at + off)),
        _ => Err(BAD),
    }
}

#[cfg(test)]
mod options_tests {
    use super::{option_kinds, tcp_options, walk_tcp_options};

    /// Kinds are counted up to the end of the list; an option of impossible length ends the
    /// walk uncounted.
    #[test]
    fn option_kinds_count_whole_options_only() {
        let bit = |k: u64| 1u64 << (63 - k);
        assert_eq!(
            option_kinds(&[2, 4, 5, 180, 1, 0, 9, 9]),
            bit(2) | bit(1) | bit(0)
        );
        // NOP, then kind 37 with length 0: NOP only.
        assert_eq!(option_kinds(&[1, 37, 0, 10, 62, 65]), bit(1));
        // An option running past the header, and one of length 1.
        assert_eq!(option_kinds(&[1, 1, 0xaa, 170, 0, 0]), bit(1));
        assert_eq!(option_kinds(&[8, 1, 1, 1]), 0);
        // Kinds above 63 have no bit but are walked past.
        assert_eq!(option_kinds(&[200, 2, 3, 3, 7]), bit(3));
    }

    /// SACK option bytes (kind 5) for `blocks`.
    fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
        let mut o = vec![5, 2 + 8 * blocks.len() as u8];
        for (l, r) in blocks {
            o.extend_from_slice(&l.to_be_bytes());
            o.extend_from_slice(&r.to_be_bytes());
        }
        o
    }

    /// D-SACK (RFC 2883): a first block below the ACK, or within the second block; an
    /// ordinary SACK block above the ACK is not one. Sequence numbers wrap.
    #[test]
    fn dsack_is_a_first_block_below_the_ack_or_inside_the_second() {
        let ack = 10_000;
        let cases: &[(&[(u32, u32)], bool)] = &[
            (&[(11_000, 12_000)], false),                   // ordinary SACK
            (&[(9_000, 10_000)], true),                     // below the cumulative ACK
            (&[(12_000, 13_000), (11_000, 14_000)], true),  // inside the second block
            (&[(12_000, 13_000), (13_000, 14_000)], false), // two ordinary blocks
            (&[(11_000, 15_000), (12_000, 14_000)], false), // the second inside the first
        ];
        for &(blocks, want) in cases {
            let o = sack(blocks);
            assert_eq!(walk_tcp_options(&o, ack).dsack(), want, "{blocks:?}");
            assert_eq!(tcp_options(&o, ack).dsack(), want, "{blocks:?}");
        }
        let o = sack(&[(u32::MAX - 10, u32::MAX)]);
        assert!(
            walk_tcp_options(&o, 5).dsack(),
            "below an ACK past the wrap"
        );
        let o = sack(&[(5, 50)]);
        assert!(
            !walk_tcp_options(&o, u32::MAX - 100).dsack(),
            "above an ACK before the wrap"
        );
    }

    /// The NOP-NOP-timestamps shortcut gives what walking the options gives, and anything
    /// that only resembles that layout takes the walk.
    /// Options without any are all zeros (what every TCP packet is cleared with), and a SACK
    /// costs them nothing in size.
    #[test]
    fn options_are_28_bytes_and_none_is_zero() {
        assert_eq!(std::mem::size_of::<super::TcpOptions>(), 28);
        assert_eq!(
            std::mem::size_of::<Option<super::Sack>>(),
            std::mem::size_of::<u64>()
        );
        let s = super::Sack::new(7, true);
        assert!(s.dsack() && !super::Sack::new(7, false).dsack());
    }

    #[test]
    fn timestamp_shortcut_agrees_with_the_walk() {
        let ts = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0xff, 0, 0, 1];
        assert_eq!(tcp_options(&ts, 0).timestamp, Some((0x1234, 0xff00_0001)));
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
            assert_eq!(tcp_options(c, 7), walk_tcp_options(c, 7), "{c:?}");
        }
    }
}
