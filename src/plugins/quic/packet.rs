//! QUIC long-header packets as typed, bounds-checked views (RFC 8999 §5.1, RFC 9000 §17.2,
//! RFC 9369 §3.2), and the versions whose Initial packets can be decrypted.

use crate::plugins::tls::hello::varint;

/// Connection IDs are at most 20 octets (RFC 9000 §17.2; longer ones end the walk, as in
/// ipfixprobe).
pub const MAX_CID: usize = 20;

/// A datagram shorter than this cannot hold a long header (first octet, version, two
/// connection ID lengths and an octet): ipfixprobe's QUIC_MIN_PACKET_LENGTH.
pub const MIN_PACKET: usize = 8;

/// The long-header packet types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
    VersionNegotiation,
}

impl Kind {
    /// ipfixprobe's quicPackets bit for the type.
    pub fn flag(self) -> u8 {
        match self {
            Kind::Initial => 0x01,
            Kind::ZeroRtt => 0x02,
            Kind::Handshake => 0x04,
            Kind::Retry => 0x08,
            Kind::VersionNegotiation => 0x10,
        }
    }
}

/// How a version's Initial packets are protected: the salt of its initial secret and
/// whether it uses QUIC version 2's labels and packet type codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protection {
    pub salt: &'static [u8; 20],
    pub v2: bool,
}

/// Drafts 7 to 9.
const SALT_D7: [u8; 20] = hex20(*b"afc824ec5fc77eca1e9d36f37fb2d46518c36639");
/// Drafts 10 to 16.
const SALT_D10: [u8; 20] = hex20(*b"9c108f98520a5c5c32968e950e8a2c5fe06d6c38");
/// Drafts 17 to 20.
const SALT_D17: [u8; 20] = hex20(*b"ef4fb0abb47470c41befcf8031334fae485e09a0");
/// Drafts 21 and 22.
const SALT_D21: [u8; 20] = hex20(*b"7fbcdb0e7c66bbe9193a96cd21519ebd7a02644a");
/// Drafts 23 to 28.
const SALT_D23: [u8; 20] = hex20(*b"c3eef712c72ebb5a11a7d2432bb46365bef9f502");
/// Drafts 29 to 32.
const SALT_D29: [u8; 20] = hex20(*b"afbfec289993d24c9e9786f19c6111e04390a899");
/// Version 1 (RFC 9001 §5.2) and drafts 33, 34.
const SALT_V1: [u8; 20] = hex20(*b"38762cf7f55934b34d179ae6a4c80cadccbb7f0a");
/// picoquic's internal test versions.
const SALT_PICOQUIC: [u8; 20] = hex20(*b"306716d76375d5554b2f605eef78d8333dc1ca36");
/// Version 2's drafts (provisional).
const SALT_V2_DRAFT: [u8; 20] = hex20(*b"a707c203a59b47184a1d62ca570406ea7ae3e5d3");
/// Version 2 (RFC 9369 §3.3.1).
const SALT_V2: [u8; 20] = hex20(*b"0dede3def700a6db819381be6e269dcbf9bd2ed9");

const fn hex20(h: [u8; 40]) -> [u8; 20] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }
    let mut out = [0; 20];
    let mut i = 0;
    while i < 20 {
        out[i] = nibble(h[2 * i]) << 4 | nibble(h[2 * i + 1]);
        i += 1;
    }
    out
}

/// The draft a version number behaves as (ipfixprobe's `quic_draft_version`): 35 stands for
/// version 1, 36 for picoquic, 100 and 101 for version 2's drafts and version 2, 1 for
/// Version Negotiation; 0 and 255 for versions that are not read.
fn draft(v: u32) -> u8 {
    if v >> 8 == 0x00ff_0000 && (1..=34).contains(&(v & 0xff)) {
        return v as u8;
    }
    // Versions reserved to force negotiation (RFC 9000 §15): take version 1's salt.
    if v & 0x0f0f_0f0f == 0x0a0a_0a0a {
        return 35;
    }
    match v & 0xffff_fff0 {
        0xabcd_0000 => return 29, // msquic
        // ETH Zürich, Telecom Italia, Tencent, quinn's noise, QUIC over SCION
        0xf0f0_f0f0 | 0xf0f0_f1f0 | 0x0700_7000 | 0xf0f0_f2f0 | 0x5c10_0000 => return 35,
        0xf123_f0c0 => return 14, // MozQuic
        _ => {}
    }
    match v & 0xffff_ff00 {
        0x4547_4700 => return v as u8, // quant: the draft is the last octet
        0x5147_4f00 | 0x91c1_7000 => return 35, // quic-go, quicly
        _ => {}
    }
    match v {
        0 => 1,
        0xfaceb000 => 20, // mvfst, draft 22 with draft 21's salt
        0xfaceb001 => 22,
        0xfaceb002 | 0xfaceb00d | 0xfaceb00f | 0xfaceb00e | 0xfaceb011 | 0xfaceb013
        | 0xfaceb010 | 0xfaceb012 => 27,
        1 => 35,
        0x5043_5130 | 0x5043_5131 => 36, // picoquic
        0xff02_0000 | 0x709a_50c4 => 100,
        0x6b33_43cf => 101,
        _ => 255,
    }
}

/// The version is one whose packets are read (Version Negotiation, version 0, included).
pub fn supported(version: u32) -> bool {
    (1..255).contains(&draft(version))
}

/// How `version`'s Initial packets are protected; `None` for Version Negotiation and
/// versions not read.
pub fn protection(version: u32) -> Option<Protection> {
    let (salt, v2) = match draft(version) {
        0 | 1 | 255 => return None,
        2..=9 => (&SALT_D7, false),
        10..=16 => (&SALT_D10, false),
        17..=20 => (&SALT_D17, false),
        21..=22 => (&SALT_D21, false),
        23..=28 => (&SALT_D23, false),
        29..=32 => (&SALT_D29, false),
        33..=35 => (&SALT_V1, false),
        36 => (&SALT_PICOQUIC, false),
        100 => (&SALT_V2_DRAFT, true),
        101 => (&SALT_V2, true),
        _ => return None,
    };
    Some(Protection { salt, v2 })
}

/// One long-header packet of a datagram.
#[derive(Clone, Copy, Debug)]
pub struct LongHeader<'a> {
    pub version: u32,
    pub kind: Kind,
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// An Initial's token, a Retry's retry token (its integrity tag left out).
    pub token: &'a [u8],
    /// The whole packet, from its first octet: up to the end of its Length for Initial,
    /// 0-RTT and Handshake packets, the rest of the datagram for Retry and Version
    /// Negotiation.
    pub packet: &'a [u8],
    /// Where the (protected) packet number starts in `packet` (Initial, 0-RTT, Handshake).
    pub pn_offset: usize,
    /// The datagram ends before the packet's Length says it does (a capture's snap length
    /// cut it): its header is read, its payload cannot be.
    pub truncated: bool,
}

impl<'a> LongHeader<'a> {
    /// The long-header packet at the start of `b`; `None` if it is not one, its version is
    /// not read, or it is cut short.
    pub fn parse(b: &'a [u8]) -> Option<Self> {
        if b.len() < MIN_PACKET {
            return None;
        }
        let first = b[0];
        // (The fixed bit may be greased, RFC 9287: only the form bit counts.)
        if first & 0x80 == 0 {
            return None;
        }
        let version = u32::from_be_bytes([b[1], b[2], b[3], b[4]]);
        if !supported(version) {
            return None;
        }
        let mut r = &b[5..];
        let dcid = cid(&mut r)?;
        let scid = cid(&mut r)?;
        let v2 = protection(version).is_some_and(|p| p.v2);
        let kind = match (version, (first >> 4) & 3, v2) {
            (0, _, _) => Kind::VersionNegotiation,
            (_, 0, false) | (_, 1, true) => Kind::Initial,
            (_, 1, false) | (_, 2, true) => Kind::ZeroRtt,
            (_, 2, false) | (_, 3, true) => Kind::Handshake,
            _ => Kind::Retry,
        };
        let mut token: &[u8] = &[];
        match kind {
            Kind::VersionNegotiation => {}
            Kind::Retry => token = r.get(..r.len().checked_sub(16)?)?,
            _ => {
                if kind == Kind::Initial {
                    let n = usize::try_from(varint(&mut r)?).ok()?;
                    token = r.get(..n)?;
                    r = &r[n..];
                }
                let len = usize::try_from(varint(&mut r)?).ok()?;
                let pn_offset = b.len() - r.len();
                let end = pn_offset.saturating_add(len);
                return Some(LongHeader {
                    version,
                    kind,
                    dcid,
                    scid,
                    token,
                    packet: b.get(..end).unwrap_or(b),
                    pn_offset,
                    truncated: end > b.len(),
                });
            }
        }
        Some(LongHeader {
            version,
            kind,
            dcid,
            scid,
            token,
            packet: b,
            pn_offset: b.len(),
            truncated: false,
        })
    }
}

/// A connection ID: a length octet and that many octets, at most [`MAX_CID`].
fn cid<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&n, rest) = r.split_first()?;
    let n = usize::from(n);
    if n > MAX_CID {
        return None;
    }
    let id = rest.get(..n)?;
    *r = &rest[n..];
    Some(id)
}

/// The long-header packets coalesced in a datagram (RFC 9000 §12.2), in order; the walk
/// ends at a short-header packet, a header cut short, after a packet cut short, or after a
/// Retry or Version Negotiation packet (which take the rest of the datagram).
pub struct Coalesced<'a>(&'a [u8]);

impl<'a> Coalesced<'a> {
    pub fn new(datagram: &'a [u8]) -> Self {
        Coalesced(datagram)
    }
}

impl<'a> Iterator for Coalesced<'a> {
    type Item = LongHeader<'a>;
    fn next(&mut self) -> Option<LongHeader<'a>> {
        let h = LongHeader::parse(self.0);
        self.0 = match h {
            Some(h) => self.0.get(h.packet.len()..).unwrap_or(&[]),
            None => &[],
        };
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_map_to_the_salts_ipfixprobe_uses() {
        assert_eq!(protection(1).unwrap().salt, &SALT_V1);
        assert_eq!(protection(0xff00_001d).unwrap().salt, &SALT_D29);
        assert_eq!(protection(0xff00_0017).unwrap().salt, &SALT_D23);
        assert_eq!(protection(0xfaceb001).unwrap().salt, &SALT_D21);
        assert_eq!(protection(0xfaceb002).unwrap().salt, &SALT_D23);
        assert_eq!(
            protection(0x6b33_43cf),
            Some(Protection {
                salt: &SALT_V2,
                v2: true
            })
        );
        assert!(protection(0x709a_50c4).unwrap().v2);
        assert_eq!(protection(0x1a2a_3a4a).unwrap().salt, &SALT_V1);
        assert_eq!(protection(0), None);
        assert!(supported(0));
        // Google QUIC (Q050, T051) and unknown versions are not read.
        assert!(!supported(0x5130_3530) && !supported(0x5430_3531) && !supported(0x1234_5678));
        assert!(!supported(0xfaceb003));
        assert_eq!(SALT_V1[0], 0x38);
        assert_eq!(SALT_V1[19], 0x0a);
    }

    #[test]
    fn coalesced_packets_are_walked_and_v2_types_decoded() {
        // An Initial (token 2 octets, length 20), then a Handshake (length 22), then a
        // short-header packet.
        let mut d = vec![0xc3, 0, 0, 0, 1, 4, 1, 2, 3, 4, 2, 9, 9, 2, 0xaa, 0xbb, 20];
        d.extend_from_slice(&[0x55; 20]);
        d.extend_from_slice(&[0xe1, 0, 0, 0, 1, 0, 0, 22]);
        d.extend_from_slice(&[0x66; 22]);
        d.extend_from_slice(&[0x41; 30]);
        let hs: Vec<_> = Coalesced::new(&d).collect();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[0].kind, Kind::Initial);
        assert_eq!(hs[0].dcid, [1, 2, 3, 4]);
        assert_eq!(hs[0].scid, [9, 9]);
        assert_eq!(hs[0].token, [0xaa, 0xbb]);
        assert_eq!(hs[0].packet.len(), 37);
        assert_eq!(hs[0].pn_offset, 17);
        assert_eq!(hs[1].kind, Kind::Handshake);
        // Version 2 numbers its types differently: 0b01 is Initial, 0b00 Retry.
        let mut v2 = vec![0xd0, 0x6b, 0x33, 0x43, 0xcf, 0, 0, 0, 1];
        v2.extend_from_slice(&[0; 17]);
        assert_eq!(LongHeader::parse(&v2).unwrap().kind, Kind::Initial);
        v2[0] = 0xc0;
        let retry = LongHeader::parse(&v2).unwrap();
        assert_eq!((retry.kind, retry.token.len()), (Kind::Retry, 3));
        // Cut short anywhere, nothing is read past the end.
        for n in 0..d.len() {
            assert!(Coalesced::new(&d[..n]).all(|h| h.packet.len() <= n));
        }
        // A packet cut short is the last, marked so.
        let cut: Vec<_> = Coalesced::new(&d[..30]).collect();
        assert_eq!(cut.len(), 1);
        assert!(cut[0].truncated && hs.iter().all(|h| !h.truncated));
        assert_eq!(cut[0].scid, [9, 9]);
        // A connection ID over 20 octets ends the walk.
        assert!(LongHeader::parse(&[0xc0, 0, 0, 0, 1, 21, 0, 0, 0, 0]).is_none());
    }
}
