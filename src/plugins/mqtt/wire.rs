//! MQTT control packets (3.1, 3.1.1 and 5.0) as bounds-checked views: the fixed header with
//! its remaining length, and the fields of CONNECT, CONNACK and PUBLISH the plugin reads.
//! Every read goes through `get`; a view never indexes past its octets.
//!
//! References: MQTT 3.1.1 (OASIS, 2014) §2 and §3; MQTT 5.0 (OASIS, 2019) §1.5.5, §2, §3.

use crate::plugins::framer::{Framing, Head};

/// Why octets are not what was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// More octets are needed.
    Truncated,
    /// The octets cannot be this.
    Malformed,
}

/// Control packet types (the fixed header's high nibble).
pub mod kind {
    pub const CONNECT: u8 = 1;
    pub const CONNACK: u8 = 2;
    pub const PUBLISH: u8 = 3;
    pub const PUBREL: u8 = 6;
    pub const SUBSCRIBE: u8 = 8;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const DISCONNECT: u8 = 14;
    /// MQTT 5.0 only.
    pub const AUTH: u8 = 15;
}

/// A variable byte integer (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3, "remaining length"): seven bits
/// an octet, least significant group first, the high bit set on every octet but the last, at
/// most four octets (268,435,455). Returns the value and the octets it took.
pub fn varint(b: &[u8]) -> Result<(u32, usize), Error> {
    let mut value = 0u32;
    for i in 0..4 {
        let Some(&o) = b.get(i) else {
            return Err(Error::Truncated);
        };
        value |= u32::from(o & 0x7f) << (7 * i);
        if o & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(Error::Malformed)
}

/// A big-endian u16 at `at`.
fn u16_at(b: &[u8], at: usize) -> Result<u16, Error> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(Error::Truncated),
    }
}

/// A two-octet length and that many octets ("UTF-8 encoded string", 3.1.1 §1.5.3) at `at`;
/// returns it and the offset after it.
fn string_at(b: &[u8], at: usize) -> Result<(&[u8], usize), Error> {
    let len = usize::from(u16_at(b, at)?);
    let end = at + 2 + len;
    let s = b.get(at + 2..end).ok_or(Error::Truncated)?;
    Ok((s, end))
}

/// One control packet, from its first octet: the fixed header is whole; the rest (variable
/// header and payload) may be only partly at hand.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    buf: &'a [u8],
    header_len: usize,
    remaining: u32,
}

impl<'a> Packet<'a> {
    /// Read the fixed header at the start of `buf`. Type 0 is reserved: not MQTT.
    pub fn new_checked(buf: &'a [u8]) -> Result<Packet<'a>, Error> {
        let first = *buf.first().ok_or(Error::Truncated)?;
        if first >> 4 == 0 {
            return Err(Error::Malformed);
        }
        let (remaining, n) = varint(buf.get(1..).unwrap_or(&[]))?;
        Ok(Packet {
            buf,
            header_len: 1 + n,
            remaining,
        })
    }

    /// The control packet type, 1 to 15.
    pub fn kind(&self) -> u8 {
        self.buf[0] >> 4
    }

    /// The fixed header's flags (PUBLISH: DUP, QoS, RETAIN).
    pub fn flags(&self) -> u8 {
        self.buf[0] & 0x0f
    }

    /// The flags are those the specification fixes for the type (3.1.1 §2.2.2): 0b0010 for
    /// PUBREL, SUBSCRIBE and UNSUBSCRIBE, 0 for the others but PUBLISH, whose QoS is 0-2.
    pub fn flags_valid(&self) -> bool {
        match self.kind() {
            kind::PUBLISH => self.flags() & 0x06 != 0x06,
            kind::PUBREL | kind::SUBSCRIBE | kind::UNSUBSCRIBE => self.flags() == 0x02,
            _ => self.flags() == 0,
        }
    }

    /// Octets of the whole packet on the wire.
    pub fn total_len(&self) -> usize {
        self.header_len + self.remaining as usize
    }

    /// The variable header and payload as far as they are at hand.
    pub fn body(&self) -> &'a [u8] {
        let end = self.total_len().min(self.buf.len());
        self.buf.get(self.header_len..end).unwrap_or(&[])
    }

    /// The whole packet is at hand.
    pub fn is_complete(&self) -> bool {
        self.buf.len() >= self.total_len()
    }
}

/// MQTT's framing over TCP: a packet is its fixed header and remaining length. Strict: the
/// fixed flags are right, and nothing but a CONNECT says it is longer than 64 KiB (a
/// resynchronisation must not jump far on random octets).
pub struct Mqtt;

impl Framing for Mqtt {
    fn head(b: &[u8], strict: bool) -> Head {
        match Packet::new_checked(b) {
            Err(Error::Truncated) => Head::Need,
            Err(Error::Malformed) => Head::Bad,
            Ok(p) if strict && (!p.flags_valid() || p.remaining > 0xffff) => Head::Bad,
            Ok(p) => Head::Msg(p.total_len()),
        }
    }
}

/// The protocol a CONNECT names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// "MQTT", level 4 (3.1.1) or 5 (5.0).
    Mqtt,
    /// "MQIsdp", level 3 (3.1).
    MqIsdp,
}

/// The variable header of a CONNECT (3.1.1 §3.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect {
    pub protocol: Protocol,
    /// The protocol level: 3, 4 or 5.
    pub level: u8,
    /// The connect flags octet.
    pub flags: u8,
    /// Keep alive, seconds.
    pub keep_alive: u16,
}

impl Connect {
    /// Read a CONNECT's body. A protocol name or level no version defines is `Malformed`.
    pub fn parse(body: &[u8]) -> Result<Connect, Error> {
        // (Only names of 4 and 6 octets are known: a longer one is not waited for.)
        if !matches!(u16_at(body, 0)?, 4 | 6) {
            return Err(Error::Malformed);
        }
        let (name, at) = string_at(body, 0)?;
        let protocol = match name {
            b"MQTT" => Protocol::Mqtt,
            b"MQIsdp" => Protocol::MqIsdp,
            _ => return Err(Error::Malformed),
        };
        let level = *body.get(at).ok_or(Error::Truncated)?;
        match (protocol, level) {
            (Protocol::Mqtt, 4 | 5) | (Protocol::MqIsdp, 3) => {}
            _ => return Err(Error::Malformed),
        }
        let flags = *body.get(at + 1).ok_or(Error::Truncated)?;
        let keep_alive = u16_at(body, at + 2)?;
        Ok(Connect {
            protocol,
            level,
            flags,
            keep_alive,
        })
    }
}

/// The variable header of a CONNACK: acknowledge flags (bit 0: session present) and the
/// return code (5.0: the reason code, in the same octet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub flags: u8,
    pub code: u8,
}

impl ConnAck {
    pub fn parse(body: &[u8]) -> Result<ConnAck, Error> {
        match body {
            [flags, code, ..] => Ok(ConnAck {
                flags: *flags,
                code: *code,
            }),
            _ => Err(Error::Truncated),
        }
    }
}

/// The topic name a PUBLISH's variable header starts with (3.1.1 §3.3.2.1; empty in 5.0 when
/// a topic alias stands for it).
pub fn publish_topic(body: &[u8]) -> Result<&[u8], Error> {
    string_at(body, 0).map(|(s, _)| s)
}

/// What the first octets of a TCP direction say about MQTT: a CONNECT with a known protocol
/// name and level (`Ok(true)`), something else (`Ok(false)`), or not enough octets yet.
pub fn starts_with_connect(b: &[u8]) -> Result<bool, Error> {
    let p = match Packet::new_checked(b) {
        Ok(p) => p,
        Err(Error::Truncated) => return Err(Error::Truncated),
        Err(Error::Malformed) => return Ok(false),
    };
    if p.kind() != kind::CONNECT || p.flags() != 0 {
        return Ok(false);
    }
    match Connect::parse(p.body()) {
        Ok(_) => Ok(true),
        Err(Error::Truncated) if !p.is_complete() => Err(Error::Truncated),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A control packet of `kind` with `flags` around `body`, its remaining length encoded as
    /// MQTT encodes it.
    pub fn packet(kind: u8, flags: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind << 4 | flags];
        let mut n = body.len();
        loop {
            let mut o = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                o |= 0x80;
            }
            out.push(o);
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn remaining_length_is_the_variable_byte_integer() {
        // The specification's boundaries (3.1.1 table 2.4).
        for (octets, value) in [
            (&[0x00][..], 0),
            (&[0x7f], 127),
            (&[0x80, 0x01], 128),
            (&[0xff, 0x7f], 16_383),
            (&[0x80, 0x80, 0x01], 16_384),
            (&[0xff, 0xff, 0x7f], 2_097_151),
            (&[0x80, 0x80, 0x80, 0x01], 2_097_152),
            (&[0xff, 0xff, 0xff, 0x7f], 268_435_455),
        ] {
            assert_eq!(varint(octets), Ok((value, octets.len())), "{octets:02x?}");
        }
        // ipfixprobe's decoder reads 0xc1 0x02 (321) as 0xc102 (49410).
        assert_eq!(varint(&[0xc1, 0x02]), Ok((321, 2)));
        assert_eq!(
            varint(&[0xff, 0xff, 0xff, 0xff, 0x7f]),
            Err(Error::Malformed)
        );
        assert_eq!(varint(&[0x80, 0x80]), Err(Error::Truncated));
        assert_eq!(varint(&[]), Err(Error::Truncated));
    }

    #[test]
    fn fixed_headers_and_bodies() {
        let body = vec![7u8; 321];
        let p = packet(kind::PUBLISH, 0b1011, &body);
        let v = Packet::new_checked(&p).unwrap();
        assert_eq!((v.kind(), v.flags(), v.total_len()), (3, 0b1011, 324));
        assert!(v.is_complete() && v.flags_valid() && v.body() == &body[..]);
        // Cut: the fixed header is whole, the body partly there.
        let v = Packet::new_checked(&p[..10]).unwrap();
        assert!(!v.is_complete());
        assert_eq!(v.body(), &body[..7]);
        assert_eq!(Packet::new_checked(&p[..2]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&[]).unwrap_err(), Error::Truncated);
        // Type 0 is reserved; QoS 3 and wrong fixed flags are not valid.
        assert_eq!(
            Packet::new_checked(&[0x00, 0]).unwrap_err(),
            Error::Malformed
        );
        assert!(!Packet::new_checked(&[0x36, 0]).unwrap().flags_valid());
        assert!(!Packet::new_checked(&[0x80, 0]).unwrap().flags_valid());
        assert!(Packet::new_checked(&[0x82, 0]).unwrap().flags_valid());
        assert!(!Packet::new_checked(&[0xe1, 0]).unwrap().flags_valid());
    }

    #[test]
    fn connect_connack_and_publish_fields() {
        // ipfixprobe__mqtt.pcap frame 1: CONNECT, MQTT 3.1.1, clean session, keep alive 60.
        let connect = [
            0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
        ];
        let p = Packet::new_checked(&connect).unwrap();
        assert_eq!(
            Connect::parse(p.body()),
            Ok(Connect {
                protocol: Protocol::Mqtt,
                level: 4,
                flags: 2,
                keep_alive: 60
            })
        );
        assert_eq!(starts_with_connect(&connect), Ok(true));
        for cut in 0..12 {
            assert_eq!(starts_with_connect(&connect[..cut]), Err(Error::Truncated));
        }
        // MQTT 3.1's name and level; a wrong level; another name; not a CONNECT.
        let v31 = packet(1, 0, b"\x00\x06MQIsdp\x03\xc2\x00\x0a");
        assert_eq!(Connect::parse(&v31[2..]).unwrap().level, 3);
        assert_eq!(
            Connect::parse(b"\x00\x04MQTT\x03\x02\x00\x3c"),
            Err(Error::Malformed)
        );
        assert_eq!(
            Connect::parse(b"\x00\x04MQTX\x04\x02\x00\x3c"),
            Err(Error::Malformed)
        );
        assert_eq!(starts_with_connect(&packet(3, 0, b"\x00\x01a")), Ok(false));
        assert_eq!(starts_with_connect(b"GET / HTTP/1.1\r\n"), Ok(false));
        // A CONNECT that ends before its fields: not MQTT.
        assert_eq!(
            starts_with_connect(&[0x10, 0x03, 0x00, 0x04, b'M']),
            Ok(false)
        );
        assert_eq!(ConnAck::parse(&[1, 5]), Ok(ConnAck { flags: 1, code: 5 }));
        assert_eq!(ConnAck::parse(&[1]), Err(Error::Truncated));
        assert_eq!(publish_topic(b"\x00\x06topic1hello"), Ok(&b"topic1"[..]));
        assert_eq!(publish_topic(b"\x00\x00"), Ok(&b""[..]));
        assert_eq!(publish_topic(b"\x00\x09topic"), Err(Error::Truncated));
        assert_eq!(publish_topic(b"\x00"), Err(Error::Truncated));
    }
}
