//! Initial packet protection (RFC 9001 §5.2-5.4, RFC 9369 §3.3): the client's Initial keys
//! from the Destination Connection ID, header protection removed, the payload opened with
//! AES-128-GCM. ring does the cryptography.

use super::packet::Protection;
use ring::aead::quic::{HeaderProtectionKey, AES_128};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ring::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};

/// An output length for HKDF-Expand.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", out.len()) (RFC 8446 §7.1).
fn expand_label(secret: &Prk, label: &[u8], out: &mut [u8]) -> Option<()> {
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    secret.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// A client's Initial keys.
pub struct ClientKeys {
    hp: HeaderProtectionKey,
    aead: LessSafeKey,
    iv: [u8; 12],
}

impl ClientKeys {
    /// The keys of the client's Initial packets of a connection whose first Initial (or the
    /// Retry's) Destination Connection ID is `dcid`.
    pub fn new(p: Protection, dcid: &[u8]) -> Option<ClientKeys> {
        let initial = Salt::new(HKDF_SHA256, p.salt).extract(dcid);
        let mut client = [0; 32];
        expand_label(&initial, b"client in", &mut client)?;
        let client = Prk::new_less_safe(HKDF_SHA256, &client);
        let (key_label, iv_label, hp_label): (&[u8], &[u8], &[u8]) = if p.v2 {
            (b"quicv2 key", b"quicv2 iv", b"quicv2 hp")
        } else {
            (b"quic key", b"quic iv", b"quic hp")
        };
        let (mut key, mut iv, mut hp) = ([0; 16], [0; 12], [0; 16]);
        expand_label(&client, key_label, &mut key)?;
        expand_label(&client, iv_label, &mut iv)?;
        expand_label(&client, hp_label, &mut hp)?;
        Some(ClientKeys {
            hp: HeaderProtectionKey::new(&AES_128, &hp).ok()?,
            aead: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).ok()?),
            iv,
        })
    }

    /// Remove the header protection of the long-header packet `packet` (from its first octet
    /// to the end of its Length), whose packet number starts at `pn_offset`, and open its
    /// payload: the plaintext frames, in `buf`. `None` when the packet was not protected with
    /// these keys (a server's Initial, another connection's) or is cut short.
    ///
    /// The packet number is taken as sent (its low octets): Initial packets of a handshake
    /// are numbered from 0, so it is the full number (ipfixprobe does the same).
    pub fn open<'b>(
        &self,
        packet: &[u8],
        pn_offset: usize,
        buf: &'b mut Vec<u8>,
    ) -> Option<&'b [u8]> {
        let sample = packet.get(pn_offset + 4..pn_offset + 20)?;
        let mask = self.hp.new_mask(sample).ok()?;
        buf.clear();
        buf.extend_from_slice(packet);
        buf[0] ^= mask[0] & 0x0f;
        let pn_len = usize::from(buf[0] & 3) + 1;
        let header_len = pn_offset + pn_len;
        let mut pn = 0u64;
        for (i, m) in mask[1..=pn_len].iter().enumerate() {
            let b = buf.get_mut(pn_offset + i)?;
            *b ^= m;
            pn = pn << 8 | u64::from(*b);
        }
        let mut nonce = self.iv;
        for (n, p) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        let (header, payload) = buf.split_at_mut(header_len);
        let plain = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                payload,
            )
            .ok()?
            .len();
        buf.get(header_len..header_len + plain)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::packet::{protection, LongHeader};
    use super::*;

    pub fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9001 Appendix A.2 (version 1) and RFC 9369 Appendix A.2 (version 2): the client's
    /// Initial for DCID 8394c8f03e515708, a CRYPTO frame holding a ClientHello, then
    /// PADDING to 1162 octets.
    pub const RFC_CRYPTO_FRAME: &str = "
        060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005
        04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
        0d0010000e0403050306030203080408050806002d00020101001c0002400100
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
        75300901100f088394c8f03e51570806048000ffff";

    /// The RFC's protected client Initial (1200 octets), built with our keys, and its version.
    pub fn rfc_packet(v2: bool) -> (Vec<u8>, u32) {
        let (first, version): (u8, u32) = if v2 { (0xd3, 0x6b33_43cf) } else { (0xc3, 1) };
        let mut header = vec![first];
        header.extend_from_slice(&version.to_be_bytes());
        header.extend_from_slice(&hex("08 8394c8f03e515708 00 00 449e 00000002"));
        let mut frames = hex(RFC_CRYPTO_FRAME);
        frames.resize(1162, 0);
        (protect(&header, &frames, v2), version)
    }

    /// Protect a packet as a client does, with the RFC's connection ID (the inverse of
    /// `open`).
    fn protect(header: &[u8], frames: &[u8], v2: bool) -> Vec<u8> {
        let version = if v2 { 0x6b33_43cf } else { 1 };
        seal(version, &hex("8394c8f03e515708"), header, 2, frames)
    }

    /// Protect `frames` behind `header` (which ends with its 4-octet packet number `pn`)
    /// with the client Initial keys of `version` for `dcid`.
    pub fn seal(version: u32, dcid: &[u8], header: &[u8], pn: u32, frames: &[u8]) -> Vec<u8> {
        let keys = ClientKeys::new(protection(version).unwrap(), dcid).unwrap();
        let pn_offset = header.len() - 4;
        let mut nonce = keys.iv;
        for (n, p) in nonce[8..].iter_mut().zip(pn.to_be_bytes()) {
            *n ^= p;
        }
        let mut payload = frames.to_vec();
        keys.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut payload,
            )
            .unwrap();
        let mut packet = [header, &payload].concat();
        let mask = keys
            .hp
            .new_mask(&packet[pn_offset + 4..pn_offset + 20])
            .unwrap();
        packet[0] ^= mask[0] & 0x0f;
        for i in 0..4 {
            packet[pn_offset + i] ^= mask[1 + i];
        }
        packet
    }

    /// A client Initial packet of `version` (version 1's or version 2's type code), its
    /// frames padded to `size` octets of plaintext, protected.
    pub fn client_initial(
        version: u32,
        dcid: &[u8],
        scid: &[u8],
        token: &[u8],
        pn: u32,
        frames: &[u8],
        size: usize,
    ) -> Vec<u8> {
        let v2 = protection(version).unwrap().v2;
        let mut h = vec![if v2 { 0xd3 } else { 0xc3 }];
        h.extend_from_slice(&version.to_be_bytes());
        h.push(dcid.len() as u8);
        h.extend_from_slice(dcid);
        h.push(scid.len() as u8);
        h.extend_from_slice(scid);
        h.push(token.len() as u8); // (tokens under 64 octets here)
        h.extend_from_slice(token);
        let mut frames = frames.to_vec();
        frames.resize(size.max(frames.len()), 0);
        let len = 4 + frames.len() + 16;
        h.extend_from_slice(&(0x4000 | len as u16).to_be_bytes());
        h.extend_from_slice(&pn.to_be_bytes());
        seal(version, dcid, &h, pn, &frames)
    }

    #[test]
    fn rfc_9001_and_9369_client_initials_open() {
        // Protected as the RFCs print them: header, first octets and last (the tag), so key
        // derivation, header protection and AES-128-GCM all agree with theirs.
        let (v1, _) = rfc_packet(false);
        assert_eq!(v1.len(), 1200);
        assert_eq!(
            v1[..32],
            hex("c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11")
        );
        assert_eq!(
            v1[1200 - 48..],
            hex(
                "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
                 e221af44860018ab0856972e194cd934"
            )
        );
        let (v2, _) = rfc_packet(true);
        assert_eq!(
            v2[..32],
            hex("d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485")
        );
        assert_eq!(
            v2[1200 - 80..],
            hex(
                "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19
                 9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b
                 a18b2faa745b6fe189cf772a9f84cbfc"
            )
        );
        for (packet, version) in [rfc_packet(false), rfc_packet(true)] {
            let h = LongHeader::parse(&packet).unwrap();
            assert_eq!(h.dcid, hex("8394c8f03e515708"));
            let keys = ClientKeys::new(protection(version).unwrap(), h.dcid).unwrap();
            let mut buf = Vec::new();
            let plain = keys.open(h.packet, h.pn_offset, &mut buf).unwrap();
            assert_eq!(plain.len(), 1162);
            assert_eq!(plain[..245], hex(RFC_CRYPTO_FRAME));
            // Another connection's keys do not open it.
            let other = ClientKeys::new(protection(version).unwrap(), &[1, 2, 3]).unwrap();
            assert!(other.open(h.packet, h.pn_offset, &mut buf).is_none());
        }
    }
}
