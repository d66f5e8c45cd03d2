//! WireGuard messages (the WireGuard paper §5.4; Wireshark's packet-wireguard.c) as
//! bounds-checked views: type (one octet) and three reserved zero octets, then by type the
//! sender and receiver indexes qof reads. Indexes are little-endian on the wire and read so,
//! giving the numbers Wireshark shows (`wg.sender`, `wg.receiver`).

/// Message types.
pub mod kind {
    pub const INITIATION: u8 = 1;
    pub const RESPONSE: u8 = 2;
    pub const COOKIE_REPLY: u8 = 3;
    pub const TRANSPORT_DATA: u8 = 4;
}

/// Each handshake message's one length, and the least a transport data message has (its
/// 16-octet header and the 16-octet tag of an empty keepalive).
pub const INITIATION_LEN: usize = 148;
pub const RESPONSE_LEN: usize = 92;
pub const COOKIE_REPLY_LEN: usize = 64;
pub const MIN_DATA_LEN: usize = 32;

/// Why a datagram is not a WireGuard message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not the type, reserved octets or length of one.
    NotWireGuard,
    /// The capture kept too few octets to read its indexes.
    Truncated,
}

/// A message's indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// The initiator's index.
    Initiation { sender: u32 },
    /// The responder's index and the initiator's.
    Response { sender: u32, receiver: u32 },
    /// Sent to the peer of index `receiver`.
    CookieReply { receiver: u32 },
    /// Sent to the peer of index `receiver`.
    TransportData { receiver: u32 },
}

fn le32(b: &[u8], at: usize) -> Result<u32, Error> {
    match b.get(at..at + 4) {
        Some(s) => Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(Error::Truncated),
    }
}

impl Message {
    /// Read a UDP payload of `wire_len` octets of which `b` was captured. The length rules
    /// hold for the length on the wire; only the indexes must have been captured.
    pub fn parse(b: &[u8], wire_len: usize) -> Result<Message, Error> {
        let [ty, 0, 0, 0, ..] = *b else {
            return Err(if b.len() < 4 && wire_len >= MIN_DATA_LEN {
                Error::Truncated
            } else {
                Error::NotWireGuard
            });
        };
        let fits = match ty {
            kind::INITIATION => wire_len == INITIATION_LEN,
            kind::RESPONSE => wire_len == RESPONSE_LEN,
            kind::COOKIE_REPLY => wire_len == COOKIE_REPLY_LEN,
            kind::TRANSPORT_DATA => wire_len >= MIN_DATA_LEN,
            _ => false,
        };
        if !fits {
            return Err(Error::NotWireGuard);
        }
        Ok(match ty {
            kind::INITIATION => Message::Initiation {
                sender: le32(b, 4)?,
            },
            kind::RESPONSE => Message::Response {
                sender: le32(b, 4)?,
                receiver: le32(b, 8)?,
            },
            kind::COOKIE_REPLY => Message::CookieReply {
                receiver: le32(b, 4)?,
            },
            _ => Message::TransportData {
                receiver: le32(b, 4)?,
            },
        })
    }
}

/// The octets could be a DNS query: one whose id is 0x0100 to 0x0400 with every flag clear
/// reads as a message type and three zero reserved octets, and its question and answer counts
/// (00 01 00 00) then stand where the first index is. ipfixprobe's known false positive,
/// given confidence 1.
pub fn looks_like_dns(b: &[u8]) -> bool {
    b.get(4..8) == Some(&[0, 1, 0, 0])
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A message of type `ty` and length `len`: index `a` at 4, `b` at 8 (little-endian), the
    /// rest filled.
    pub fn message(ty: u8, len: usize, a: u32, b: u32) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0];
        m.extend_from_slice(&a.to_le_bytes());
        m.extend_from_slice(&b.to_le_bytes());
        m.resize(len.max(12), 0x5a);
        m.truncate(len);
        m
    }

    #[test]
    fn each_type_at_its_length_with_indexes_as_wireshark_shows_them() {
        let init = message(1, 148, 0x4a3b_2c1d, 0);
        // Wireshark shows this sender as 0x4a3b2c1d: the octets are 1d 2c 3b 4a.
        assert_eq!(init[4..8], [0x1d, 0x2c, 0x3b, 0x4a]);
        assert_eq!(
            Message::parse(&init, 148),
            Ok(Message::Initiation {
                sender: 0x4a3b_2c1d
            })
        );
        assert_eq!(
            Message::parse(&message(2, 92, 7, 9), 92),
            Ok(Message::Response {
                sender: 7,
                receiver: 9
            })
        );
        assert_eq!(
            Message::parse(&message(3, 64, 5, 0), 64),
            Ok(Message::CookieReply { receiver: 5 })
        );
        for len in [32, 33, 1420] {
            assert_eq!(
                Message::parse(&message(4, len, 6, 0), len),
                Ok(Message::TransportData { receiver: 6 })
            );
        }
        // Wrong lengths, types, reserved octets.
        assert!(Message::parse(&message(1, 149, 1, 0), 149).is_err());
        assert!(Message::parse(&message(2, 148, 1, 0), 148).is_err());
        assert!(Message::parse(&message(3, 92, 1, 0), 92).is_err());
        assert!(Message::parse(&message(4, 31, 1, 0), 31).is_err());
        assert!(Message::parse(&message(5, 64, 1, 0), 64).is_err());
        assert!(Message::parse(&message(0, 64, 1, 0), 64).is_err());
        let mut r = message(4, 40, 1, 0);
        r[2] = 1;
        assert_eq!(Message::parse(&r, 40), Err(Error::NotWireGuard));
        assert_eq!(Message::parse(&[], 0), Err(Error::NotWireGuard));
        // Cut by the snap length: the lengths on the wire hold, the index is out of reach.
        assert_eq!(Message::parse(&init[..6], 148), Err(Error::Truncated));
        assert_eq!(
            Message::parse(&init[..8], 148),
            Ok(Message::Initiation {
                sender: 0x4a3b_2c1d
            })
        );
        assert_eq!(Message::parse(&init[..2], 148), Err(Error::Truncated));
        assert!(looks_like_dns(&message(4, 40, 0x100, 0)));
        assert!(!looks_like_dns(&message(4, 40, 0x101, 0)));
    }
}
