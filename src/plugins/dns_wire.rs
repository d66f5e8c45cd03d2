//! DNS messages (RFC 1035 §4) as bounds-checked views, shared by the dns, passivedns, dnssd
//! and netbios plugins (mDNS and NBNS use the same wire format).
//!
//! In smoltcp's `wire` style: [`Message::new_checked`] checks the header's length once, and
//! no accessor can panic or read outside the message, whatever the bytes. Names are checked
//! when a [`Name`] is made (labels of at most 63 octets, at most 255 octets in all, every
//! compression pointer inside the message, at most [`MAX_JUMPS`] of them: a pointer loop ends
//! there), so walking one later cannot fail. A message cut short (by the capture's snap
//! length, an IP fragment, a TCP stream's bound) reads up to the cut: [`Entries`] yields the
//! questions and records before it, then the error.

use std::fmt::Write;

/// The fixed header: id, flags and four counts.
pub const HEADER_LEN: usize = 12;
/// RFC 1035 §3.1: a name takes at most 255 octets (its labels with their length octets).
pub const MAX_NAME: usize = 255;
/// Compression pointers followed in one name at most. A legitimate name needs one or two; a
/// loop (pointers to each other, or to themselves) stops here.
pub const MAX_JUMPS: usize = 64;

/// TYPE values the plugins name (IANA DNS parameters).
pub mod rtype {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const MD: u16 = 3;
    pub const MF: u16 = 4;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MB: u16 = 7;
    pub const MG: u16 = 8;
    pub const MR: u16 = 9;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MINFO: u16 = 14;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const AAAA: u16 = 28;
    pub const SRV: u16 = 33;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const DS: u16 = 43;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const SPF: u16 = 99;
}

/// Why a message could not be read further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The message ends before what its header or a length promised.
    Truncated,
    /// A label type other than a length (0-63) or a pointer (0xC0).
    BadLabel,
    /// A compression pointer past the end of the message.
    PointerOutOfRange,
    /// More than [`MAX_JUMPS`] pointers in one name (a loop).
    PointerLoop,
    /// A name longer than [`MAX_NAME`] octets.
    NameTooLong,
    /// RDATA whose content does not fit its RDLENGTH.
    BadRdata,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*b.get(at..)?.first_chunk::<2>()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*b.get(at..)?.first_chunk::<4>()?))
}

/// A DNS message: at least a header.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    buf: &'a [u8],
}

impl<'a> Message<'a> {
    /// A view of `buf` (a whole message, or its first octets), if it holds a header.
    pub fn new_checked(buf: &'a [u8]) -> Result<Message<'a>, Error> {
        if buf.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Message { buf })
    }

    fn header(&self, at: usize) -> u16 {
        // (The length was checked in `new_checked`: never 0 by a short read.)
        u16_at(self.buf, at).unwrap_or(0)
    }

    pub fn id(&self) -> u16 {
        self.header(0)
    }

    pub fn flags(&self) -> u16 {
        self.header(2)
    }

    /// QR: a response.
    pub fn is_response(&self) -> bool {
        self.flags() & 0x8000 != 0
    }

    pub fn opcode(&self) -> u8 {
        (self.flags() >> 11 & 0xf) as u8
    }

    /// The header's RCODE (the low 4 bits; EDNS extends it in the OPT record).
    pub fn rcode(&self) -> u8 {
        (self.flags() & 0xf) as u8
    }

    pub fn qdcount(&self) -> u16 {
        self.header(4)
    }

    pub fn ancount(&self) -> u16 {
        self.header(6)
    }

    pub fn nscount(&self) -> u16 {
        self.header(8)
    }

    pub fn arcount(&self) -> u16 {
        self.header(10)
    }

    /// The questions and resource records, in message order.
    pub fn entries(&self) -> Entries<'a> {
        Entries {
            msg: *self,
            at: HEADER_LEN,
            section: Section::Question,
            left: self.qdcount(),
            failed: false,
        }
    }

    /// The name at `at` and the offset after it (where it ends in place: after its last
    /// label, or after the pointer that continues it elsewhere).
    pub fn name_at(&self, at: usize) -> Result<(Name<'a>, usize), Error> {
        let mut pos = at;
        let mut end = None;
        let mut wire = 0usize;
        let mut jumps = 0usize;
        loop {
            let &len = self.buf.get(pos).ok_or(Error::Truncated)?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    if wire + 1 > MAX_NAME {
                        return Err(Error::NameTooLong);
                    }
                    let end = end.unwrap_or(pos + 1);
                    return Ok((
                        Name {
                            msg: self.buf,
                            start: at,
                        },
                        end,
                    ));
                }
                0x00 => {
                    let len = usize::from(len);
                    wire += 1 + len;
                    if wire > MAX_NAME {
                        return Err(Error::NameTooLong);
                    }
                    if pos + 1 + len > self.buf.len() {
                        return Err(Error::Truncated);
                    }
                    pos += 1 + len;
                }
                0xc0 => {
                    let &low = self.buf.get(pos + 1).ok_or(Error::Truncated)?;
                    end.get_or_insert(pos + 2);
                    jumps += 1;
                    if jumps > MAX_JUMPS {
                        return Err(Error::PointerLoop);
                    }
                    let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                    if target >= self.buf.len() {
                        return Err(Error::PointerOutOfRange);
                    }
                    pos = target;
                }
                _ => return Err(Error::BadLabel),
            }
        }
    }
}

/// A section of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    Question,
    Answer,
    Authority,
    Additional,
}

/// One question.
#[derive(Clone, Copy, Debug)]
pub struct Question<'a> {
    pub name: Name<'a>,
    pub qtype: u16,
    pub qclass: u16,
}

/// One resource record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub section: Section,
    pub name: Name<'a>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    msg: Message<'a>,
    /// Where the RDATA starts; its RDLENGTH octets are inside the message (checked).
    rdata_at: usize,
    rdlength: u16,
}

/// A question or a record.
#[derive(Clone, Copy, Debug)]
pub enum Entry<'a> {
    Question(Question<'a>),
    Record(Record<'a>),
}

/// The questions and records of a message, in order. After an error (the message ends, or a
/// name is malformed) it yields that error once, then nothing.
pub struct Entries<'a> {
    msg: Message<'a>,
    at: usize,
    section: Section,
    /// Entries left in `section`.
    left: u16,
    failed: bool,
}

impl<'a> Entries<'a> {
    fn next_entry(&mut self) -> Result<Option<Entry<'a>>, Error> {
        while self.left == 0 {
            let (next, count) = match self.section {
                Section::Question => (Section::Answer, self.msg.ancount()),
                Section::Answer => (Section::Authority, self.msg.nscount()),
                Section::Authority => (Section::Additional, self.msg.arcount()),
                Section::Additional => return Ok(None),
            };
            self.section = next;
            self.left = count;
        }
        let buf = self.msg.buf;
        let (name, at) = self.msg.name_at(self.at)?;
        self.left -= 1;
        if self.section == Section::Question {
            let (Some(qtype), Some(qclass)) = (u16_at(buf, at), u16_at(buf, at + 2)) else {
                return Err(Error::Truncated);
            };
            self.at = at + 4;
            return Ok(Some(Entry::Question(Question {
                name,
                qtype,
                qclass,
            })));
        }
        let (Some(rtype), Some(class), Some(ttl), Some(rdlength)) = (
            u16_at(buf, at),
            u16_at(buf, at + 2),
            u32_at(buf, at + 4),
            u16_at(buf, at + 8),
        ) else {
            return Err(Error::Truncated);
        };
        let rdata_at = at + 10;
        let end = rdata_at + usize::from(rdlength);
        if end > buf.len() {
            return Err(Error::Truncated);
        }
        self.at = end;
        Ok(Some(Entry::Record(Record {
            section: self.section,
            name,
            rtype,
            class,
            ttl,
            msg: self.msg,
            rdata_at,
            rdlength,
        })))
    }

    /// Offset of the next entry (after the last one read).
    pub fn offset(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_entry() {
            Ok(e) => e.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// A checked name inside a message: its labels can be walked without failing.
#[derive(Clone, Copy, Debug)]
pub struct Name<'a> {
    msg: &'a [u8],
    start: usize,
}

impl<'a> Name<'a> {
    /// The labels, first (leftmost) first; none for the root.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            msg: self.msg,
            pos: self.start,
            jumps: 0,
        }
    }

    pub fn is_root(&self) -> bool {
        self.labels().next().is_none()
    }

    /// The name in presentation form without the final dot ("www.example.com"; the root is
    /// "."): printable ASCII and valid UTF-8 as they are (mDNS names are UTF-8, RFC 6762), a
    /// dot or backslash inside a label escaped with a backslash, control characters and
    /// octets that are not UTF-8 as `\DDD` (RFC 1035 §5.1), so the text is valid UTF-8 and
    /// says which octets were sent.
    pub fn write_text(&self, out: &mut String) {
        // (Room for the labels and dots at once, not grown label by label.)
        out.reserve(self.labels().map(|l| l.len() + 1).sum());
        let mut first = true;
        for label in self.labels() {
            if !first {
                out.push('.');
            }
            first = false;
            write_label(label, out);
        }
        if first {
            out.push('.');
        }
    }

    pub fn to_text(&self) -> String {
        let mut s = String::new();
        self.write_text(&mut s);
        s
    }
}

/// The labels of a [`Name`].
pub struct Labels<'a> {
    msg: &'a [u8],
    pos: usize,
    jumps: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // (The name was checked when made; the bounds here only keep a bug from looping.)
        loop {
            let &len = self.msg.get(self.pos)?;
            if len & 0xc0 == 0xc0 {
                self.jumps += 1;
                if self.jumps > MAX_JUMPS {
                    return None;
                }
                let low = *self.msg.get(self.pos + 1)?;
                self.pos = usize::from(len & 0x3f) << 8 | usize::from(low);
                continue;
            }
            if len == 0 || len > 63 {
                return None;
            }
            let label = self
                .msg
                .get(self.pos + 1..self.pos + 1 + usize::from(len))?;
            self.pos += 1 + usize::from(len);
            return Some(label);
        }
    }
}

/// Octets as text: valid UTF-8 as it is but control characters, the characters in `special`
/// after a backslash, a backslash too, and any other octet as `\DDD` (RFC 1035 §5.1).
fn write_escaped(bytes: &[u8], out: &mut String, special: Option<u8>) {
    // (Nearly every name is printable ASCII: such runs are copied whole, and only the
    // characters between them are looked at one by one.)
    let mut rest = bytes;
    while !rest.is_empty() {
        let (ascii, tail) = rest.split_at(plain_run(rest, special.unwrap_or(b'\\')));
        // (ASCII: always UTF-8.)
        out.push_str(std::str::from_utf8(ascii).unwrap_or_default());
        // The character `tail` starts with lies in its first four octets, if it is valid.
        let window = &tail[..tail.len().min(4)];
        let first = window
            .utf8_chunks()
            .next()
            .and_then(|c| c.valid().chars().next());
        let Some(c) = first else {
            // An octet no valid character starts with (or the end).
            if let Some((&b, after)) = tail.split_first() {
                write_ddd(b, out);
                rest = after;
                continue;
            }
            break;
        };
        match c {
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let mut buf = [0; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    write_ddd(b, out);
                }
            }
            // (What is left of ASCII here is in `special`.)
            c if c.is_ascii() => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        rest = &tail[c.len_utf8()..];
    }
}

/// Octets at the start of `b` that are written as they are: printable ASCII but the backslash
/// and `special`.
fn plain_run(b: &[u8], special: u8) -> usize {
    let plain = |c: u8| (0x20..0x7f).contains(&c) & (c != b'\\') & (c != special);
    // (Sixteen octets at a time, without an early exit, so that they are tested together:
    // tunnelled names run to hundreds of octets.)
    let whole = b
        .chunks_exact(16)
        .take_while(|c| c.iter().fold(true, |ok, &x| ok & plain(x)))
        .count()
        * 16;
    let tail = &b[whole..];
    whole + tail.iter().position(|&c| !plain(c)).unwrap_or(tail.len())
}

/// An octet as `\DDD`, three decimal digits.
fn write_ddd(b: u8, out: &mut String) {
    out.push('\\');
    for d in [b / 100, b / 10 % 10, b % 10] {
        out.push(char::from(b'0' + d));
    }
}

fn write_label(label: &[u8], out: &mut String) {
    write_escaped(label, out, Some(b'.'));
}

/// Octets that should be text (a NetBIOS name, a TXT string) as valid UTF-8 text: see
/// [`Name::write_text`], but dots as they are.
pub fn write_octets(b: &[u8], out: &mut String) {
    write_escaped(b, out, None);
}

/// A TXT-style character-string in quotes, escaped as in a zone file.
fn write_quoted(s: &[u8], out: &mut String) {
    out.push('"');
    write_escaped(s, out, Some(b'"'));
    out.push('"');
}

/// A record's RDATA, read by its type.
#[derive(Clone, Copy, Debug)]
pub enum Rdata<'a> {
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// NS, CNAME, PTR, DNAME and the obsolete MD, MF, MB, MG, MR: one name.
    Name(Name<'a>),
    Mx {
        preference: u16,
        exchange: Name<'a>,
    },
    Soa {
        mname: Name<'a>,
        rname: Name<'a>,
        /// Serial, refresh, retry, expire, minimum.
        numbers: [u32; 5],
    },
    Minfo {
        rmailbx: Name<'a>,
        emailbx: Name<'a>,
    },
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name<'a>,
    },
    /// TXT and SPF: character-strings.
    Txt(CharStrings<'a>),
    Hinfo {
        cpu: &'a [u8],
        os: &'a [u8],
    },
    Ds {
        key_tag: u16,
        algorithm: u8,
        digest_type: u8,
        digest: &'a [u8],
    },
    Dnskey {
        flags: u16,
        protocol: u8,
        algorithm: u8,
        key: &'a [u8],
    },
    Rrsig {
        type_covered: u16,
        algorithm: u8,
        labels: u8,
        /// Original TTL, expiration, inception.
        times: [u32; 3],
        key_tag: u16,
        signer: Name<'a>,
        signature: &'a [u8],
    },
    /// Any other type (and OPT), as octets.
    Other(&'a [u8]),
}

/// The character-strings of TXT RDATA (each a length octet and that many octets).
#[derive(Clone, Copy, Debug)]
pub struct CharStrings<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for CharStrings<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let s = tail.get(..usize::from(len))?;
        self.rest = &tail[s.len()..];
        Some(s)
    }
}

impl<'a> Record<'a> {
    pub fn rdlength(&self) -> u16 {
        self.rdlength
    }

    /// The RDATA octets.
    pub fn rdata_bytes(&self) -> &'a [u8] {
        let end = self.rdata_at + usize::from(self.rdlength);
        self.msg.buf.get(self.rdata_at..end).unwrap_or(&[])
    }

    /// A name inside the RDATA at `at`, which must end inside it (its compression pointer
    /// may lead anywhere in the message); returns the offset after it.
    fn rdata_name(&self, at: usize) -> Result<(Name<'a>, usize), Error> {
        let end = self.rdata_at + usize::from(self.rdlength);
        if at >= end {
            return Err(Error::BadRdata);
        }
        // (A name running past the message's end runs past the RDATA: the record itself was
        // whole.)
        let (name, after) = self.msg.name_at(at).map_err(|e| match e {
            Error::Truncated => Error::BadRdata,
            e => e,
        })?;
        if after > end {
            return Err(Error::BadRdata);
        }
        Ok((name, after))
    }

    /// The RDATA read by type. [`Error::BadRdata`] when its content does not fit RDLENGTH
    /// (an A record of 3 octets, a name running past it).
    pub fn rdata(&self) -> Result<Rdata<'a>, Error> {
        let b = self.rdata_bytes();
        let at = self.rdata_at;
        let bad = Error::BadRdata;
        Ok(match self.rtype {
            rtype::A => Rdata::A(b.try_into().map_err(|_| bad)?),
            rtype::AAAA => Rdata::Aaaa(b.try_into().map_err(|_| bad)?),
            rtype::NS
            | rtype::CNAME
            | rtype::PTR
            | rtype::DNAME
            | rtype::MD
            | rtype::MF
            | rtype::MB
            | rtype::MG
            | rtype::MR => Rdata::Name(self.rdata_name(at)?.0),
            rtype::MX => Rdata::Mx {
                preference: u16_at(b, 0).ok_or(bad)?,
                exchange: self.rdata_name(at + 2)?.0,
            },
            rtype::SOA => {
                let (mname, next) = self.rdata_name(at)?;
                let (rname, next) = self.rdata_name(next)?;
                let tail = b.get(next - at..).ok_or(bad)?;
                let mut numbers = [0; 5];
                for (i, n) in numbers.iter_mut().enumerate() {
                    *n = u32_at(tail, 4 * i).ok_or(bad)?;
                }
                Rdata::Soa {
                    mname,
                    rname,
                    numbers,
                }
            }
            rtype::MINFO => {
                let (rmailbx, next) = self.rdata_name(at)?;
                Rdata::Minfo {
                    rmailbx,
                    emailbx: self.rdata_name(next)?.0,
                }
            }
            rtype::SRV => Rdata::Srv {
                priority: u16_at(b, 0).ok_or(bad)?,
                weight: u16_at(b, 2).ok_or(bad)?,
                port: u16_at(b, 4).ok_or(bad)?,
                target: self.rdata_name(at + 6)?.0,
            },
            rtype::TXT | rtype::SPF => Rdata::Txt(CharStrings { rest: b }),
            rtype::HINFO => {
                let mut s = CharStrings { rest: b };
                let (Some(cpu), Some(os)) = (s.next(), s.next()) else {
                    return Err(bad);
                };
                Rdata::Hinfo { cpu, os }
            }
            rtype::DS if b.len() >= 4 => Rdata::Ds {
                key_tag: u16_at(b, 0).ok_or(bad)?,
                algorithm: b[2],
                digest_type: b[3],
                digest: &b[4..],
            },
            rtype::DNSKEY if b.len() >= 4 => Rdata::Dnskey {
                flags: u16_at(b, 0).ok_or(bad)?,
                protocol: b[2],
                algorithm: b[3],
                key: &b[4..],
            },
            rtype::RRSIG if b.len() >= 18 => {
                let (signer, next) = self.rdata_name(at + 18)?;
                Rdata::Rrsig {
                    type_covered: u16_at(b, 0).ok_or(bad)?,
                    algorithm: b[2],
                    labels: b[3],
                    times: [
                        u32_at(b, 4).ok_or(bad)?,
                        u32_at(b, 8).ok_or(bad)?,
                        u32_at(b, 12).ok_or(bad)?,
                    ],
                    key_tag: u16_at(b, 16).ok_or(bad)?,
                    signer,
                    signature: b.get(next - at..).ok_or(bad)?,
                }
            }
            rtype::DS | rtype::DNSKEY | rtype::RRSIG => return Err(bad),
            _ => Rdata::Other(b),
        })
    }
}

/// Lowercase hex.
fn write_hex(b: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // (Not `write!` per octet: RDATA of unknown types runs to hundreds of octets.)
    out.reserve(2 * b.len());
    for &x in b {
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
}

/// Base64 (RFC 4648), as zone files write keys and signatures.
fn write_base64(b: &[u8], out: &mut String) {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &x)| a | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

impl Rdata<'_> {
    /// The RDATA in presentation form, as a zone file (and `dig`) writes it, names without
    /// their final dot: "192.0.2.1", "10 mail.example.com", "\"v=spf1 -all\"", and for
    /// types without a text form RFC 3597's "\# 4 0a000001". `rtype` names the type for that
    /// generic form.
    pub fn write_text(&self, out: &mut String) {
        match *self {
            Rdata::A(a) => {
                let _ = write!(out, "{}", std::net::Ipv4Addr::from(a));
            }
            Rdata::Aaaa(a) => {
                let _ = write!(out, "{}", std::net::Ipv6Addr::from(a));
            }
            Rdata::Name(n) => n.write_text(out),
            Rdata::Mx {
                preference,
                exchange,
            } => {
                let _ = write!(out, "{preference} ");
                exchange.write_text(out);
            }
            Rdata::Soa {
                mname,
                rname,
                numbers,
            } => {
                mname.write_text(out);
                out.push(' ');
                rname.write_text(out);
                for n in numbers {
                    let _ = write!(out, " {n}");
                }
            }
            Rdata::Minfo { rmailbx, emailbx } => {
                rmailbx.write_text(out);
                out.push(' ');
                emailbx.write_text(out);
            }
            Rdata::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let _ = write!(out, "{priority} {weight} {port} ");
                target.write_text(out);
            }
            Rdata::Txt(strings) => {
                for (i, s) in strings.enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    write_quoted(s, out);
                }
            }
            Rdata::Hinfo { cpu, os } => {
                write_quoted(cpu, out);
                out.push(' ');
                write_quoted(os, out);
            }
            Rdata::Ds {
                key_tag,
                algorithm,
                digest_type,
                digest,
            } => {
                let _ = write!(out, "{key_tag} {algorithm} {digest_type} ");
                write_hex(digest, out);
            }
            Rdata::Dnskey {
                flags,
                protocol,
                algorithm,
                key,
            } => {
                let _ = write!(out, "{flags} {protocol} {algorithm} ");
                write_base64(key, out);
            }
            Rdata::Rrsig {
                type_covered,
                algorithm,
                labels,
                times,
                key_tag,
                signer,
                signature,
            } => {
                let [ttl, expiration, inception] = times;
                let _ = write!(
                    out,
                    "{type_covered} {algorithm} {labels} {ttl} {expiration} {inception} {key_tag} "
                );
                signer.write_text(out);
                out.push(' ');
                write_base64(signature, out);
            }
            Rdata::Other(b) => {
                let _ = write!(out, "\\# {}", b.len());
                if !b.is_empty() {
                    out.push(' ');
                    write_hex(b, out);
                }
            }
        }
    }
}

/// A DNS message's place in a TCP stream (RFC 1035 §4.2.2: each message after a two-octet
/// length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// The whole message, and the stream offset after it.
    Complete(&'a [u8], usize),
    /// The message's length is known and `have` of its octets are in the stream so far.
    Partial { len: usize, have: &'a [u8] },
    /// Not even the length prefix yet.
    NeedLength,
}

/// The message whose length prefix starts at `at` in `stream`.
pub fn framed(stream: &[u8], at: usize) -> Framed<'_> {
    let Some(len) = u16_at(stream, at) else {
        return Framed::NeedLength;
    };
    let len = usize::from(len);
    let body = stream.get(at + 2..).unwrap_or(&[]);
    match body.get(..len) {
        Some(msg) => Framed::Complete(msg, at + 2 + len),
        None => Framed::Partial { len, have: body },
    }
}

/// Decode the address a reverse-mapping name stands for: "4.3.2.1.in-addr.arpa" is
/// 1.2.3.4, and 32 nibble labels before "ip6.arpa" an IPv6 address (case-insensitive). Other
/// names, and partial ones (a network, not an address), give `None`.
pub fn reverse_address(name: &Name<'_>) -> Option<std::net::IpAddr> {
    let labels: Vec<&[u8]> = name.labels().take(35).collect();
    let is = |l: &[u8], s: &str| l.eq_ignore_ascii_case(s.as_bytes());
    match labels.as_slice() {
        [d, c, b, a, x, y] if is(x, "in-addr") && is(y, "arpa") => {
            let octet = |l: &[u8]| -> Option<u8> {
                // Decimal, 1-3 digits, no sign and no leading zero but for "0".
                if l.is_empty() || l.len() > 3 || (l.len() > 1 && l[0] == b'0') {
                    return None;
                }
                std::str::from_utf8(l).ok()?.parse().ok()
            };
            Some(std::net::IpAddr::from([
                octet(a)?,
                octet(b)?,
                octet(c)?,
                octet(d)?,
            ]))
        }
        [nibbles @ .., x, y] if nibbles.len() == 32 && is(x, "ip6") && is(y, "arpa") => {
            let mut addr = [0u8; 16];
            // The least significant nibble comes first.
            for (i, l) in nibbles.iter().enumerate() {
                let &[c] = *l else { return None };
                let v = (c as char).to_digit(16)? as u8;
                let n = 31 - i;
                addr[n / 2] |= if n % 2 == 0 { v << 4 } else { v };
            }
            Some(std::net::IpAddr::from(addr))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
