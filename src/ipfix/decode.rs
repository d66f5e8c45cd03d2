//! Streaming IPFIX (RFC 7011) decoder: messages from any byte stream, templates, data records.
//!
//! Two layers, so a collector can reuse either:
//! * [`MessageReader`] frames a stream (file, stdin, TCP) into whole messages. It checks the header
//!   (version 10, length ≥ 16) and reads exactly `length` bytes into one reused buffer, so memory
//!   is bounded by the 65535-octet maximum message size.
//! * [`Session`] keeps the template state of one transport session (templates are scoped per
//!   observation domain) and turns one message into [`Event`]s: templates, withdrawals, data
//!   records, warnings (sequence gaps, data for unknown templates).
//!
//! Invariants: no input can make it panic; every slice access is checked; the number of templates
//! it holds is capped ([`MAX_TEMPLATES`]). Records borrow the message buffer and carry raw field
//! bytes; the value helpers at the end ([`unsigned`], [`signed`], [`float`], [`date_time_ntp`] …)
//! turn those bytes into numbers whatever their encoded size. Names and types come from
//! [`crate::ie`], never from here, so the decoder works for any exporter's elements.
//!
//! Usage (a file, stdin or a TCP connection; for UDP use [`Message::parse`] per datagram):
//! ```no_run
//! use qof::ipfix::decode::{Event, MessageReader, Session};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut reader = MessageReader::new(std::fs::File::open("flows.ipfix")?);
//! let mut session = Session::new();
//! while let Some(msg) = reader.next_message()? {
//!     session.decode(&msg, |event| {
//!         if let Event::Record(r) = event {
//!             println!("{} fields", r.fields.len());
//!         }
//!     })?;
//! }
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};

/// IPFIX message header length (RFC 7011 §3.1).
pub const HEADER_LEN: usize = 16;
/// The version number of IPFIX messages.
pub const VERSION: u16 = 10;
/// Set ID of template sets.
pub const TEMPLATE_SET: u16 = 2;
/// Set ID of options template sets.
pub const OPTIONS_TEMPLATE_SET: u16 = 3;
/// The first set ID (and template ID) of data sets.
pub const MIN_DATA_SET: u16 = 256;
/// Field length meaning "variable length, prefixed in the record" (RFC 7011 §7).
pub const VARLEN: u16 = 0xffff;
/// The most templates one session holds; a stream defining more is an error (bounded memory).
pub const MAX_TEMPLATES: usize = 1 << 16;

/// What went wrong, and where (byte offset from the start of the stream).
#[derive(Debug)]
pub struct DecodeError {
    pub offset: u64,
    pub kind: ErrorKind,
}

#[derive(Debug)]
pub enum ErrorKind {
    Io(io::Error),
    /// The stream ended inside a message header or body.
    Truncated {
        needed: usize,
        got: usize,
    },
    BadVersion(u16),
    BadLength(u16),
    BadSetLength {
        set_id: u16,
        length: u16,
    },
    BadSetId(u16),
    BadTemplate(&'static str),
    /// A data record's variable-length field ran past the end of its set.
    BadRecord,
    TooManyTemplates,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte offset {}: ", self.offset)?;
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "read error: {e}"),
            ErrorKind::Truncated { needed, got } => {
                write!(f, "truncated message: needed {needed} bytes, got {got}")
            }
            ErrorKind::BadVersion(v) => {
                write!(f, "not an IPFIX message (version {v}, expected 10)")
            }
            ErrorKind::BadLength(l) => write!(f, "bad message length {l} (minimum 16)"),
            ErrorKind::BadSetLength { set_id, length } => {
                write!(f, "set {set_id} has bad length {length}")
            }
            ErrorKind::BadSetId(id) => write!(f, "reserved set ID {id}"),
            ErrorKind::BadTemplate(why) => write!(f, "malformed template: {why}"),
            ErrorKind::BadRecord => write!(f, "data record overruns its set"),
            ErrorKind::TooManyTemplates => {
                write!(f, "more than {MAX_TEMPLATES} templates in one session")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

fn err(offset: u64, kind: ErrorKind) -> DecodeError {
    DecodeError { offset, kind }
}

/// The fixed header of one message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageHeader {
    pub length: u16,
    /// Seconds since the Unix epoch.
    pub export_time: u32,
    pub sequence: u32,
    pub domain: u32,
}

/// One whole message, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    /// Byte offset of the message's first octet in the stream.
    pub offset: u64,
    pub header: MessageHeader,
    /// The whole message, header included (`bytes.len() == header.length`).
    pub bytes: &'a [u8],
}

impl<'a> Message<'a> {
    /// Parses one message from the front of `bytes` (a datagram, say). Returns the message and
    /// the number of bytes it used. `offset` is where `bytes` starts in the stream.
    pub fn parse(bytes: &'a [u8], offset: u64) -> Result<(Message<'a>, usize), DecodeError> {
        let header = parse_header(bytes, offset)?;
        let len = usize::from(header.length);
        let body = bytes.get(..len).ok_or_else(|| {
            err(
                offset,
                ErrorKind::Truncated {
                    needed: len,
                    got: bytes.len(),
                },
            )
        })?;
        Ok((
            Message {
                offset,
                header,
                bytes: body,
            },
            len,
        ))
    }
}

/// The big-endian 16-bit field at `at`, if the bytes are there.
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

/// The big-endian 32-bit field at `at`, if the bytes are there.
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn parse_header(b: &[u8], offset: u64) -> Result<MessageHeader, DecodeError> {
    if b.len() < HEADER_LEN {
        return Err(err(
            offset,
            ErrorKind::Truncated {
                needed: HEADER_LEN,
                got: b.len(),
            },
        ));
    }
    let version = be16(b, 0).unwrap_or(0);
    if version != VERSION {
        return Err(err(offset, ErrorKind::BadVersion(version)));
    }
    let length = be16(b, 2).unwrap_or(0);
    if usize::from(length) < HEADER_LEN {
        return Err(err(offset, ErrorKind::BadLength(length)));
    }
    Ok(MessageHeader {
        length,
        export_time: be32(b, 4).unwrap_or(0),
        sequence: be32(b, 8).unwrap_or(0),
        domain: be32(b, 12).unwrap_or(0),
    })
}

/// Frames a byte stream into IPFIX messages, one reused buffer of at most 65535 bytes.
pub struct MessageReader<R> {
    inner: R,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: Read> MessageReader<R> {
    pub fn new(inner: R) -> Self {
        MessageReader {
            inner,
            offset: 0,
            buf: Vec::with_capacity(usize::from(u16::MAX)),
        }
    }

    /// Byte offset of the next message in the stream.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next message; `Ok(None)` at a clean end of stream (between messages).
    pub fn next_message(&mut self) -> Result<Option<Message<'_>>, DecodeError> {
        let start = self.offset;
        let mut header = [0u8; HEADER_LEN];
        let got =
            read_full(&mut self.inner, &mut header).map_err(|e| err(start, ErrorKind::Io(e)))?;
        if got == 0 {
            return Ok(None);
        }
        if got < HEADER_LEN {
            return Err(err(
                start,
                ErrorKind::Truncated {
                    needed: HEADER_LEN,
                    got,
                },
            ));
        }
        let h = parse_header(&header, start)?;
        let len = usize::from(h.length);
        self.buf.clear();
        self.buf.extend_from_slice(&header);
        self.buf.resize(len, 0);
        let rest = self.buf.get_mut(HEADER_LEN..).unwrap_or_default();
        let want = rest.len();
        let got = read_full(&mut self.inner, rest).map_err(|e| err(start, ErrorKind::Io(e)))?;
        if got < want {
            return Err(err(
                start,
                ErrorKind::Truncated {
                    needed: len,
                    got: HEADER_LEN + got,
                },
            ));
        }
        self.offset = start + len as u64;
        Ok(Some(Message {
            offset: start,
            header: h,
            bytes: &self.buf,
        }))
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// One field specifier of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// Private Enterprise Number; 0 for IANA elements.
    pub pen: u32,
    /// Element ID without the enterprise bit.
    pub id: u16,
    /// Encoded length; [`VARLEN`] for variable length.
    pub length: u16,
}

/// A (options) template as defined by the exporter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub domain: u32,
    pub id: u16,
    /// Scope field count: 0 for a plain template, ≥ 1 for an options template.
    pub scope_count: u16,
    pub fields: Vec<FieldSpec>,
    /// The smallest possible record (variable-length fields count one octet).
    pub min_record_len: usize,
}

impl Template {
    pub fn is_options(&self) -> bool {
        self.scope_count > 0
    }
}

/// One field of a data record: its element and its raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub pen: u32,
    pub id: u16,
    /// True for the scope fields of an options record.
    pub scope: bool,
    pub bytes: &'a [u8],
}

/// One data record; fields in template order.
#[derive(Clone, Debug)]
pub struct Record<'a> {
    pub domain: u32,
    pub template_id: u16,
    /// Export time of the carrying message (seconds since the epoch).
    pub export_time: u32,
    /// Decoded with an options template (its leading fields are scope fields).
    pub options: bool,
    pub fields: &'a [Field<'a>],
}

/// What decoding one message produces, in message order.
#[derive(Debug)]
pub enum Event<'a> {
    Template(&'a Template),
    /// A template withdrawn (`template_id`), or all templates of a kind (`template_id` is 2 or 3).
    Withdrawal {
        domain: u32,
        template_id: u16,
    },
    Record(&'a Record<'a>),
    /// A recoverable problem: not fatal, worth a line on stderr.
    Warning(Warning),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// First data set for a template this session does not know (reported once per template).
    UnknownTemplate {
        offset: u64,
        domain: u32,
        template_id: u16,
    },
    /// The message's sequence number is not the one the previous message announced.
    SequenceGap {
        offset: u64,
        domain: u32,
        expected: u32,
        got: u32,
    },
    /// A template that cannot describe a record (no fields, or all of zero length); ignored.
    UselessTemplate {
        offset: u64,
        domain: u32,
        template_id: u16,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnknownTemplate {
                offset,
                domain,
                template_id,
            } => write!(
                f,
                "at byte offset {offset}: data set for unknown template {template_id} \
                 (observation domain {domain}); skipped"
            ),
            Warning::SequenceGap {
                offset,
                domain,
                expected,
                got,
            } => {
                let lost = got.wrapping_sub(*expected);
                if lost < u32::MAX / 2 {
                    write!(
                        f,
                        "at byte offset {offset}: sequence gap in observation domain {domain}: \
                         expected {expected}, got {got} ({lost} records missing)"
                    )
                } else {
                    write!(
                        f,
                        "at byte offset {offset}: sequence number went back in observation \
                         domain {domain}: expected {expected}, got {got}"
                    )
                }
            }
            Warning::UselessTemplate {
                offset,
                domain,
                template_id,
            } => write!(
                f,
                "at byte offset {offset}: template {template_id} (observation domain {domain}) \
                 describes an empty record; ignored"
            ),
        }
    }
}

/// Counters a session keeps, for a summary at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub messages: u64,
    pub records: u64,
    pub options_records: u64,
    pub templates: u64,
    /// Data sets skipped because their template was unknown.
    pub unknown_sets: u64,
    pub sequence_gaps: u64,
}

#[derive(Clone, Copy)]
struct SeqState {
    expected: u32,
    /// False when the last message had data we could not count (unknown template).
    known: bool,
}

/// Template state of one transport session (one file, one TCP connection, one UDP exporter).
#[derive(Default)]
pub struct Session {
    templates: HashMap<(u32, u16), Template>,
    seq: HashMap<u32, SeqState>,
    warned_unknown: HashMap<(u32, u16), ()>,
    pub stats: SessionStats,
}

impl Session {
    pub fn new() -> Self {
        Session::default()
    }

    /// The current template `id` of observation domain `domain`, if any.
    pub fn template(&self, domain: u32, id: u16) -> Option<&Template> {
        self.templates.get(&(domain, id))
    }

    /// Decodes one message, calling `on_event` for each template, withdrawal, record and warning.
    /// A malformed set stops the message with an error; events before it were delivered.
    pub fn decode<F>(&mut self, msg: &Message<'_>, mut on_event: F) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        self.stats.messages += 1;
        let h = msg.header;
        if let Some(w) = self.check_sequence(msg) {
            on_event(Event::Warning(w));
        }
        let mut tally = Tally {
            records: 0,
            countable: true,
        };
        let result = self.decode_sets(msg, &mut tally, &mut on_event);
        // The next message's sequence number should count this one's records (RFC 7011 §3.1);
        // after a failed or uncountable message we cannot know it, so we do not check.
        // One counter per domain; past MAX_TEMPLATES domains new ones go unchecked (bounded memory).
        if self.seq.len() < MAX_TEMPLATES || self.seq.contains_key(&h.domain) {
            self.seq.insert(
                h.domain,
                SeqState {
                    expected: h.sequence.wrapping_add(tally.records),
                    known: tally.countable && result.is_ok(),
                },
            );
        }
        result
    }

    fn decode_sets<F>(
        &mut self,
        msg: &Message<'_>,
        tally: &mut Tally,
        on_event: &mut F,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        let h = msg.header;
        let end = usize::from(h.length).min(msg.bytes.len());
        let mut fields: Vec<Field<'_>> = Vec::new();
        let mut pos = HEADER_LEN;
        while pos < end {
            let set_off = msg.offset + pos as u64;
            if end - pos < 4 {
                // Fewer octets than a set header: trailing junk inside the message.
                return Err(err(
                    set_off,
                    ErrorKind::BadSetLength {
                        set_id: 0,
                        length: 0,
                    },
                ));
            }
            let set_id = be16(msg.bytes, pos).unwrap_or(0);
            let set_len = be16(msg.bytes, pos + 2).unwrap_or(0);
            let sl = usize::from(set_len);
            if sl < 4 || sl > end - pos {
                return Err(err(
                    set_off,
                    ErrorKind::BadSetLength {
                        set_id,
                        length: set_len,
                    },
                ));
            }
            let body = msg.bytes.get(pos + 4..pos + sl).unwrap_or_default();
            let body_off = set_off + 4;
            match set_id {
                TEMPLATE_SET | OPTIONS_TEMPLATE_SET => {
                    self.template_set(h.domain, set_id, body, body_off, on_event)?
                }
                id if id >= MIN_DATA_SET => match self.templates.get(&(h.domain, id)) {
                    Some(t) => {
                        let n = data_set(t, h, body, body_off, &mut fields, |r| {
                            on_event(Event::Record(r))
                        })?;
                        tally.records = tally.records.wrapping_add(n as u32);
                        self.stats.records += n as u64;
                        if t.is_options() {
                            self.stats.options_records += n as u64;
                        }
                    }
                    None => {
                        tally.countable = false;
                        self.stats.unknown_sets += 1;
                        let first = self.warned_unknown.len() < MAX_TEMPLATES
                            && self.warned_unknown.insert((h.domain, id), ()).is_none();
                        if first {
                            on_event(Event::Warning(Warning::UnknownTemplate {
                                offset: set_off,
                                domain: h.domain,
                                template_id: id,
                            }));
                        }
                    }
                },
                id => return Err(err(set_off, ErrorKind::BadSetId(id))),
            }
            pos += sl;
        }
        Ok(())
    }

    fn check_sequence(&mut self, msg: &Message<'_>) -> Option<Warning> {
        let h = msg.header;
        let prev = self.seq.get(&h.domain)?;
        if prev.known && prev.expected != h.sequence {
            self.stats.sequence_gaps += 1;
            return Some(Warning::SequenceGap {
                offset: msg.offset,
                domain: h.domain,
                expected: prev.expected,
                got: h.sequence,
            });
        }
        None
    }

    fn template_set<F>(
        &mut self,
        domain: u32,
        set_id: u16,
        body: &[u8],
        body_off: u64,
        on_event: &mut F,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(Event<'_>),
    {
        let options = set_id == OPTIONS_TEMPLATE_SET;
        let mut pos = 0usize;
        // A template record is at least 4 octets (ID, count); fewer is padding.
        while body.len() - pos >= 4 {
            let rec_off = body_off + pos as u64;
            // Zeros to the end of the set are padding (RFC 7011 §3.3.1), not a template 0.
            if body.get(pos..).is_some_and(|r| r.iter().all(|&b| b == 0)) {
                break;
            }
            let tid = be16(body, pos).unwrap_or(0);
            let count = be16(body, pos + 2).unwrap_or(0);
            pos += 4;
            if count == 0 {
                // Withdrawal (RFC 7011 §8.1): one template, or all of this kind when ID = set ID.
                if tid == set_id {
                    self.templates
                        .retain(|&(d, _), t| d != domain || t.is_options() != options);
                } else if tid >= MIN_DATA_SET {
                    self.templates.remove(&(domain, tid));
                } else {
                    return Err(err(
                        rec_off,
                        ErrorKind::BadTemplate("withdrawal of reserved ID"),
                    ));
                }
                on_event(Event::Withdrawal {
                    domain,
                    template_id: tid,
                });
                continue;
            }
            if tid < MIN_DATA_SET {
                return Err(err(
                    rec_off,
                    ErrorKind::BadTemplate("template ID below 256"),
                ));
            }
            let scope_count = if options {
                let s = be16(body, pos)
                    .ok_or_else(|| err(rec_off, ErrorKind::BadTemplate("truncated header")))?;
                pos += 2;
                if s == 0 || s > count {
                    return Err(err(
                        rec_off,
                        ErrorKind::BadTemplate("bad scope field count"),
                    ));
                }
                s
            } else {
                0
            };
            let mut fields = Vec::with_capacity(usize::from(count).min(body.len() / 4 + 1));
            let mut min_len = 0usize;
            for _ in 0..count {
                let raw = be16(body, pos)
                    .ok_or_else(|| err(rec_off, ErrorKind::BadTemplate("truncated field list")))?;
                let length = be16(body, pos + 2)
                    .ok_or_else(|| err(rec_off, ErrorKind::BadTemplate("truncated field list")))?;
                pos += 4;
                let pen = if raw & 0x8000 != 0 {
                    let p = be32(body, pos)
                        .ok_or_else(|| err(rec_off, ErrorKind::BadTemplate("truncated PEN")))?;
                    pos += 4;
                    p
                } else {
                    0
                };
                min_len += if length == VARLEN {
                    1
                } else {
                    usize::from(length)
                };
                fields.push(FieldSpec {
                    pen,
                    id: raw & 0x7fff,
                    length,
                });
            }
            if min_len == 0 {
                // A record of zero octets would repeat forever: ignore such a template.
                on_event(Event::Warning(Warning::UselessTemplate {
                    offset: rec_off,
                    domain,
                    template_id: tid,
                }));
                self.templates.remove(&(domain, tid));
                continue;
            }
            if self.templates.len() >= MAX_TEMPLATES && !self.templates.contains_key(&(domain, tid))
            {
                return Err(err(rec_off, ErrorKind::TooManyTemplates));
            }
            let t = Template {
                domain,
                id: tid,
                scope_count,
                fields,
                min_record_len: min_len,
            };
            self.stats.templates += 1;
            // A redefinition replaces the old template (allowed in files, RFC 5655 §8).
            self.templates.insert((domain, tid), t);
            if let Some(t) = self.templates.get(&(domain, tid)) {
                on_event(Event::Template(t));
            }
        }
        Ok(())
    }
}

struct Tally {
    records: u32,
    countable: bool,
}

/// Decodes the records of one data set; returns how many.
fn data_set<'b, G>(
    t: &Template,
    h: MessageHeader,
    body: &'b [u8],
    body_off: u64,
    fields: &mut Vec<Field<'b>>,
    mut on_record: G,
) -> Result<usize, DecodeError>
where
    G: FnMut(&Record<'_>),
{
    let mut pos = 0usize;
    let mut n = 0usize;
    // Stop when what is left cannot hold a record: that is padding (RFC 7011 §3.3.1).
    while body.len() - pos >= t.min_record_len {
        let rec_off = body_off + pos as u64;
        fields.clear();
        for (i, spec) in t.fields.iter().enumerate() {
            let len = if spec.length == VARLEN {
                let first = *body
                    .get(pos)
                    .ok_or_else(|| err(rec_off, ErrorKind::BadRecord))?;
                pos += 1;
                if first < 255 {
                    usize::from(first)
                } else {
                    let l = be16(body, pos).ok_or_else(|| err(rec_off, ErrorKind::BadRecord))?;
                    pos += 2;
                    usize::from(l)
                }
            } else {
                usize::from(spec.length)
            };
            let bytes = body
                .get(pos..pos + len)
                .ok_or_else(|| err(rec_off, ErrorKind::BadRecord))?;
            pos += len;
            fields.push(Field {
                pen: spec.pen,
                id: spec.id,
                scope: i < usize::from(t.scope_count),
                bytes,
            });
        }
        let rec = Record {
            domain: h.domain,
            template_id: t.id,
            export_time: h.export_time,
            options: t.is_options(),
            fields,
        };
        on_record(&rec);
        n += 1;
    }
    Ok(n)
}

// ---- Field values ------------------------------------------------------------------------------
// Raw bytes → numbers, whatever the encoded length: RFC 7011 §6.2 lets an exporter send an
// integer in fewer octets than its type ("reduced-size encoding"), so the length comes from the
// template, not from the element's type.

/// An unsigned integer of 1..=8 octets, big-endian.
pub fn unsigned(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 8 {
        return None;
    }
    Some(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// A signed integer of 1..=8 octets, big-endian, sign-extended from its top bit.
pub fn signed(bytes: &[u8]) -> Option<i64> {
    let u = unsigned(bytes)?;
    let shift = 64 - 8 * bytes.len() as u32;
    Some(((u << shift) as i64) >> shift)
}

/// float32 (4 octets) or float64 (8 octets, or reduced to 4).
pub fn float(bytes: &[u8]) -> Option<f64> {
    match *bytes {
        [a, b, c, d] => Some(f64::from(f32::from_be_bytes([a, b, c, d]))),
        [a, b, c, d, e, f, g, h] => Some(f64::from_be_bytes([a, b, c, d, e, f, g, h])),
        _ => None,
    }
}

/// boolean: 1 is true, 2 is false (RFC 7011 §6.1.5); anything else is not a boolean.
pub fn boolean(bytes: &[u8]) -> Option<bool> {
    match bytes {
        [1] => Some(true),
        [2] => Some(false),
        _ => None,
    }
}

/// Seconds between the NTP era 0 epoch (1900) and the Unix epoch (1970).
pub const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// dateTimeSeconds (4 octets) → nanoseconds since the Unix epoch.
pub fn date_time_seconds(bytes: &[u8]) -> Option<u64> {
    (bytes.len() == 4)
        .then(|| unsigned(bytes))
        .flatten()
        .map(|s| s * 1_000_000_000)
}

/// dateTimeMilliseconds (8 octets; signed per RFC 7011 §6.1.8 is unsigned64) → nanoseconds.
pub fn date_time_milliseconds(bytes: &[u8]) -> Option<u64> {
    (bytes.len() == 8)
        .then(|| unsigned(bytes))
        .flatten()
        .map(|ms| ms.saturating_mul(1_000_000))
}

/// dateTimeMicroseconds / dateTimeNanoseconds: NTP 64-bit timestamp (RFC 7011 §6.1.9, §6.1.10)
/// → nanoseconds since the Unix epoch. `micro` drops the low 11 fraction bits, which the RFC says
/// carry no information at microsecond precision. Times before 1970 read as `None`.
pub fn date_time_ntp(bytes: &[u8], micro: bool) -> Option<u64> {
    if bytes.len() != 8 {
        return None;
    }
    let secs = u64::from(be32(bytes, 0)?);
    let mut frac = u64::from(be32(bytes, 4)?);
    if micro {
        frac &= !0x7ff;
    }
    let unix = secs.checked_sub(NTP_UNIX_OFFSET)?;
    // frac / 2^32 seconds, rounded to the nearest nanosecond.
    let nanos = (frac * 1_000_000_000 + (1 << 31)) >> 32;
    Some(unix * 1_000_000_000 + nanos)
}
