//! OpenVPN packets as bounds-checked views: the opcode and key id octet, the TLS handshake a
//! control packet opens with, the two-octet length that frames packets over TCP, and the RTP
//! look-alike test ipfixprobe applies to UDP datagrams.
//!
//! A control packet (OpenVPN's `ssl.c`, Wireshark's packet-openvpn.c) is: opcode and key id
//! (1), session id (8), with `--tls-auth` an HMAC (16, 20, 32 or 64 octets by digest) and a
//! packet id with time (8), the ACK array length (1), its packet ids (4 each) and, when there
//! are any, the remote session id (8), the message packet id (4), then the TLS record.

use crate::plugins::framer::{Framing, Head};

/// Opcodes (the high five bits of the first octet).
pub mod opcode {
    pub const HARD_RESET_CLIENT_V1: u8 = 1;
    pub const HARD_RESET_SERVER_V1: u8 = 2;
    pub const SOFT_RESET_V1: u8 = 3;
    pub const CONTROL_V1: u8 = 4;
    pub const ACK_V1: u8 = 5;
    pub const DATA_V1: u8 = 6;
    pub const HARD_RESET_CLIENT_V2: u8 = 7;
    pub const HARD_RESET_SERVER_V2: u8 = 8;
    pub const DATA_V2: u8 = 9;
    pub const HARD_RESET_CLIENT_V3: u8 = 10;
    /// OpenVPN 2.6 (tls-crypt-v2 with a wrapped client key).
    pub const CONTROL_WKC_V1: u8 = 11;
}

/// TLS handshake types a control packet may open with.
pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;

/// HMAC lengths `--tls-auth` may put in a control packet (none, then SHA-1 (the default),
/// SHA-256, SHA-512, MD5).
const HMAC_LENS: [usize; 5] = [0, 20, 32, 64, 16];
/// Packet ids an ACK array holds at most (OpenVPN's RELIABLE_ACK_SIZE).
const MAX_ACKS: usize = 8;

/// One OpenVPN packet from its opcode octet (over TCP: after the length prefix). Only what is
/// at hand of it.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    buf: &'a [u8],
}

impl<'a> Packet<'a> {
    /// `None` for an empty buffer.
    pub fn new_checked(buf: &'a [u8]) -> Option<Packet<'a>> {
        (!buf.is_empty()).then_some(Packet { buf })
    }

    pub fn opcode(&self) -> u8 {
        self.buf[0] >> 3
    }

    pub fn key_id(&self) -> u8 {
        self.buf[0] & 0x07
    }

    /// The TLS handshake message type a P_CONTROL_V1 packet's payload opens with (a TLS
    /// handshake record: content type 22, version 3.x), trying each HMAC length `--tls-auth`
    /// may use. ipfixprobe looks at two fixed places only (no HMAC or SHA-1's, with no ACK in
    /// a ClientHello's packet and one in a ServerHello's).
    pub fn tls_handshake(&self) -> Option<u8> {
        if self.opcode() != opcode::CONTROL_V1 {
            return None;
        }
        let b = self.buf;
        HMAC_LENS.iter().find_map(|&hmac| {
            let mut at = 9 + if hmac > 0 { hmac + 8 } else { 0 };
            let acks = usize::from(*b.get(at)?);
            if acks > MAX_ACKS {
                return None;
            }
            at += 1 + 4 * acks + if acks > 0 { 8 } else { 0 } + 4;
            match b.get(at..at + 6)? {
                [22, 3, minor, _, _, ty] if *minor <= 4 && matches!(*ty, 1 | 2) => Some(*ty),
                _ => None,
            }
        })
    }
}

/// OpenVPN's framing over TCP: a two-octet length, then that many octets of packet. A valid
/// opcode is required; strict (where framing is gained): a length of 2 to 16,384 octets (a
/// packet id, at least; OpenVPN's buffers are smaller than the maximum).
pub struct Tcp;

/// Longest packet a strict check believes.
const MAX_STRICT_LEN: usize = 16_384;

impl Framing for Tcp {
    fn head(b: &[u8], strict: bool) -> Head {
        let [hi, lo, first, ..] = *b else {
            return Head::Need;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let op = first >> 3;
        if len == 0 || !(1..=opcode::CONTROL_WKC_V1).contains(&op) {
            return Head::Bad;
        }
        if strict && !(2..=MAX_STRICT_LEN).contains(&len) {
            return Head::Bad;
        }
        Head::Msg(2 + len)
    }
}

/// The datagram looks like RTP (version 2, a payload type outside 72-95, where RTCP's
/// types fall): ipfixprobe does not count such datagrams as large (RFC 3550 §5.1).
pub fn looks_like_rtp(b: &[u8]) -> bool {
    match b {
        [first, second, ..] if b.len() >= 12 => {
            first >> 6 == 2 && !(72..=95).contains(&(second & 0x7f))
        }
        _ => false,
    }
}

/// The datagram of `wire_len` octets is a GTP-U G-PDU (3GPP TS 29.281 §5.1: version 1, protocol
/// type GTP, message type 255, a length of what follows the 8-octet header): its first octet
/// 0x30-0x37 reads as P_DATA_V1, so a mobile network's user plane would pass ipfixprobe's
/// large data share. Left out as RTP is (beyond ipfixprobe).
pub fn looks_like_gtp_u(b: &[u8], wire_len: usize) -> bool {
    match b {
        [flags, 0xff, hi, lo, ..] => {
            flags & 0xf8 == 0x30 && usize::from(u16::from_be_bytes([*hi, *lo])) + 8 == wire_len
        }
        _ => false,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A TLS handshake record of `ty` with a few octets of body.
    pub fn tls_record(ty: u8) -> Vec<u8> {
        vec![22, 3, 1, 0, 8, ty, 0, 0, 4, 3, 3, 0xaa, 0xbb]
    }

    /// A control-channel packet of `op`: session id, HMAC (and packet id and time) of `hmac`
    /// octets when not 0, `acks` ACKed ids (and the remote session id), the message packet
    /// id (but in a P_ACK), `payload`.
    pub fn control_op(op: u8, hmac: usize, acks: usize, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![op << 3];
        p.extend_from_slice(&[0x11; 8]);
        if hmac > 0 {
            p.extend((0..hmac).map(|i| 0x80 | i as u8));
            p.extend_from_slice(&[0, 0, 0, 1, 0x5f, 0, 0, 0]);
        }
        p.push(acks as u8);
        for i in 0..acks {
            p.extend_from_slice(&(i as u32).to_be_bytes());
        }
        if acks > 0 {
            p.extend_from_slice(&[0x22; 8]);
        }
        if op != opcode::ACK_V1 {
            p.extend_from_slice(&[0, 0, 0, 1]);
        }
        p.extend_from_slice(payload);
        p
    }

    /// A P_CONTROL_V1 packet.
    pub fn control(hmac: usize, acks: usize, payload: &[u8]) -> Vec<u8> {
        control_op(opcode::CONTROL_V1, hmac, acks, payload)
    }

    #[test]
    fn hellos_are_found_under_any_tls_auth_hmac_and_ack_count() {
        for hmac in [0, 16, 20, 32, 64] {
            for acks in [0, 1, 4, 8] {
                for ty in [CLIENT_HELLO, SERVER_HELLO] {
                    let p = control(hmac, acks, &tls_record(ty));
                    let v = Packet::new_checked(&p).unwrap();
                    assert_eq!(v.tls_handshake(), Some(ty), "hmac {hmac} acks {acks}");
                    // Cut before the handshake type: not known.
                    let cut = Packet::new_checked(&p[..p.len() - 8]).unwrap();
                    assert_eq!(cut.tls_handshake(), None);
                }
            }
        }
        // ipfixprobe's offsets: ClientHello record at 14 (no tls-auth, no ACK) or 42 (SHA-1).
        let p = control(0, 0, &tls_record(CLIENT_HELLO));
        assert_eq!((p[14], p[19]), (0x16, 1));
        let p = control(20, 0, &tls_record(CLIENT_HELLO));
        assert_eq!((p[42], p[47]), (0x16, 1));
        // Not a hello: an application record, a Certificate, too many ACKs, another opcode.
        let mut app = tls_record(CLIENT_HELLO);
        app[0] = 23;
        assert_eq!(
            Packet::new_checked(&control(0, 0, &app))
                .unwrap()
                .tls_handshake(),
            None
        );
        let cert = control(0, 1, &tls_record(11));
        assert_eq!(Packet::new_checked(&cert).unwrap().tls_handshake(), None);
        let mut many = control(0, 9, &tls_record(1));
        assert_eq!(Packet::new_checked(&many).unwrap().tls_handshake(), None);
        many[0] = opcode::ACK_V1 << 3;
        assert_eq!(Packet::new_checked(&many).unwrap().tls_handshake(), None);
        assert!(Packet::new_checked(&[]).is_none());
        let v = Packet::new_checked(&[0x4a]).unwrap();
        assert_eq!((v.opcode(), v.key_id(), v.tls_handshake()), (9, 2, None));
    }

    #[test]
    fn tcp_framing_and_rtp() {
        assert_eq!(Tcp::head(&[0, 14, 0x38, 1], true), Head::Msg(16));
        assert_eq!(Tcp::head(&[0, 14], true), Head::Need);
        assert_eq!(Tcp::head(&[0, 0, 0x38], false), Head::Bad);
        // Opcode 0 and 12-31 do not exist.
        assert_eq!(Tcp::head(&[0, 14, 0x00], false), Head::Bad);
        assert_eq!(Tcp::head(&[0, 14, 12 << 3], false), Head::Bad);
        assert_eq!(Tcp::head(&[0, 14, 11 << 3], false), Head::Msg(16));
        // A length past 16 KiB is believed only once framing is held.
        assert_eq!(Tcp::head(&[0x80, 0, 0x48], true), Head::Bad);
        assert_eq!(Tcp::head(&[0x80, 0, 0x48], false), Head::Msg(0x8002));
        // "GET " and a TLS record are not OpenVPN.
        assert_eq!(Tcp::head(b"GET /", true), Head::Bad);
        assert_eq!(Tcp::head(&[0x16, 0x03, 0x01, 0x02], true), Head::Bad);
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 0x60;
        assert!(looks_like_rtp(&rtp));
        rtp[1] = 0xc8; // RTCP sender report (200 & 0x7f = 72)
        assert!(!looks_like_rtp(&rtp));
        assert!(!looks_like_rtp(&rtp[..11]));
        assert!(!looks_like_rtp(&[0x48; 40]));
        // ndpi__reasm_segv_anon.pcapng's user plane: G-PDU, 1,392 octets after the header.
        let gtp = [0x30, 0xff, 0x05, 0x70, 0, 0, 0x12, 0x34, 0x45, 0];
        assert!(looks_like_gtp_u(&gtp, 1400));
        assert!(!looks_like_gtp_u(&gtp, 1401));
        assert!(!looks_like_gtp_u(&gtp[..3], 1400));
        let mut echo = gtp;
        echo[1] = 1;
        assert!(!looks_like_gtp_u(&echo, 1400));
    }
}
