//! Header-line protocols (HTTP/1.x, RTSP, SIP, SSDP) and line protocols (SMTP) as
//! bounds-checked views, and the text values taken from them.
//!
//! A message starts with a start line, a request line (`METHOD SP TARGET SP VERSION`) or a
//! status line (`VERSION SP CODE SP REASON`), then header field lines up to an empty line
//! (RFC 9112 §2.1, RFC 2326 §4, RFC 3261 §7). Lines end with CRLF or a bare LF. A field line
//! is a name, `:`, optional whitespace and the value (RFC 9110 §5): names compare without
//! regard to case and the whitespace after the colon is optional, where ipfixprobe requires
//! `": "` and matches names case-sensitively; a line starting with a space or tab continues
//! the previous field (obsolete line folding, still sent by SIP agents).
//!
//! Nothing here allocates but [`text`] (at most its bound) and [`LineAssembler`] (at most
//! [`MAX_LINE`] octets per direction); every scan is linear in its input, whatever it holds.

/// What tells one protocol's messages from others'.
#[derive(Debug)]
pub struct Syntax {
    /// The protocol version's prefix: `HTTP/`, `RTSP/`, `SIP/`.
    pub version: &'static [u8],
    /// Methods that make a request from their first octets (`GET `), before the request
    /// line is whole; another token needs the whole line, ending in the version.
    pub methods: &'static [&'static [u8]],
}

/// A request or a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

/// What the start of a buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Message(Kind),
    /// Too short to tell: a prefix of a possible start line.
    Maybe,
    Not,
}

/// The longest method token taken (ipfixprobe's bound: no protocol here has a longer one).
pub const MAX_METHOD: usize = 32;

/// A `tchar` of RFC 9110 §5.6.2: what method tokens and field names are made of.
fn is_tchar(b: u8) -> bool {
    // (A `match`, not a search of the punctuation list: every payload's first octet passes
    // here for each header-line protocol, and a binary one is rarely alphanumeric.)
    matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~')
}

/// `a` starts with `b`, or `b` starts with `a`: `a` may still become `b`.
fn agrees(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Whether `buf` starts with a message of `syntax`.
///
/// A status line is the version prefix and a digit. A request line is a method token of at
/// most [`MAX_METHOD`] octets, one space, a target without spaces or control characters, one
/// space and the version prefix; a known method decides while the line is not whole yet.
pub fn classify(buf: &[u8], syntax: &Syntax) -> Start {
    let v = syntax.version;
    // A method starts with a tchar: most payloads that are no message (binary ones) are told
    // by their first octet.
    match buf.first() {
        None => return Start::Maybe,
        Some(b) if !is_tchar(*b) && v.first() != Some(b) => return Start::Not,
        Some(_) => {}
    }
    if agrees(buf, v) {
        return match buf.get(v.len()) {
            Some(d) if d.is_ascii_digit() => Start::Message(Kind::Response),
            Some(_) => Start::Not,
            None => Start::Maybe,
        };
    }
    let m = buf
        .iter()
        .take(MAX_METHOD + 1)
        .take_while(|&&b| is_tchar(b))
        .count();
    match buf.get(m) {
        _ if m == 0 || m > MAX_METHOD => return Start::Not,
        None => return Start::Maybe,
        Some(b' ') => {}
        Some(_) => return Start::Not,
    }
    let known = syntax.methods.iter().any(|k| *k == &buf[..m]);
    let unfinished = if known {
        Start::Message(Kind::Request)
    } else {
        Start::Maybe
    };
    let target = &buf[m + 1..];
    let Some(t) = target.iter().position(|&b| b <= b' ' || b == 0x7f) else {
        return unfinished;
    };
    if t == 0 || target[t] != b' ' {
        // An empty target, or a line ending without a version (HTTP/0.9), or junk.
        return Start::Not;
    }
    let version = &target[t + 1..];
    match version.get(..v.len()) {
        None if agrees(version, v) => unfinished,
        Some(p) if p == v => Start::Message(Kind::Request),
        _ => Start::Not,
    }
}

/// Where the first line of `buf` ends: the index of its LF.
fn lf(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// `line` without the CR of its CRLF.
fn chomp(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without optional whitespace (and line ends) around it.
pub fn trim(s: &[u8]) -> &[u8] {
    let ws = |b: &u8| is_ows(*b) || *b == b'\r' || *b == b'\n';
    let start = s.iter().position(|b| !ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// A message's head: its start line and the field lines read.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    pub kind: Kind,
    /// The start line without its line end; what there is of it when it is not whole.
    pub line: &'a [u8],
    /// The whole field lines read, without the empty line.
    fields: &'a [u8],
    /// The empty line that ends the head was read.
    pub complete: bool,
    /// Octets of the head: through its empty line when complete.
    pub len: usize,
}

/// The head of the message `buf` starts with, or `None` if it does not start with one (yet).
/// A head cut by the end of `buf` has its whole lines (and the start line, whole or not).
pub fn head<'a>(buf: &'a [u8], syntax: &Syntax) -> Option<Head<'a>> {
    let Start::Message(kind) = classify(buf, syntax) else {
        return None;
    };
    let Some(end) = lf(buf) else {
        return Some(Head {
            kind,
            line: chomp(buf),
            fields: &[],
            complete: false,
            len: buf.len(),
        });
    };
    let first = end + 1;
    let mut at = first;
    loop {
        let Some(n) = lf(&buf[at..]) else {
            return Some(Head {
                kind,
                line: chomp(&buf[..end]),
                fields: &buf[first..at],
                complete: false,
                len: at,
            });
        };
        if chomp(&buf[at..at + n]).is_empty() {
            return Some(Head {
                kind,
                line: chomp(&buf[..end]),
                fields: &buf[first..at],
                complete: true,
                len: at + n + 1,
            });
        }
        at += n + 1;
    }
}

impl<'a> Head<'a> {
    /// The start line's parts split at its first two spaces: method, target and version of
    /// a request; version, code and reason of a response. Missing parts are empty.
    pub fn parts(&self) -> [&'a [u8]; 3] {
        let mut it = self.line.splitn(3, |&b| b == b' ');
        [(); 3].map(|_| it.next().unwrap_or(&[]))
    }

    /// A request's method.
    pub fn method(&self) -> Option<&'a [u8]> {
        (self.kind == Kind::Request).then(|| self.parts()[0])
    }

    /// A request's target (URI).
    pub fn target(&self) -> Option<&'a [u8]> {
        (self.kind == Kind::Request).then(|| self.parts()[1])
    }

    /// A response's status code: its three digits.
    pub fn status(&self) -> Option<u16> {
        if self.kind != Kind::Response {
            return None;
        }
        match self.parts()[1] {
            [a, b, c] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => Some(
                [a, b, c]
                    .iter()
                    .fold(0, |n, &&d| n * 10 + u16::from(d - b'0')),
            ),
            _ => None,
        }
    }

    /// The field lines, in order.
    pub fn fields(&self) -> Fields<'a> {
        Fields { rest: self.fields }
    }

    /// The values of the fields named `name` (compared without regard to case), in order.
    pub fn values<'n>(&self, name: &'n [u8]) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of the first field named `name`.
    pub fn value(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.values(name).next()
    }

    /// [`Head::value`] of each of `names`, in one pass over the field lines.
    pub fn first_values<const N: usize>(&self, names: [&[u8]; N]) -> [Option<&'a [u8]>; N] {
        let mut found = [None; N];
        for (n, v) in self.fields() {
            for (slot, name) in found.iter_mut().zip(names) {
                if slot.is_none() && n.eq_ignore_ascii_case(name) {
                    *slot = Some(v);
                }
            }
            if found.iter().all(Option::is_some) {
                break;
            }
        }
        found
    }
}

/// The field lines of a head: (name, value) pairs. The value has no whitespace around it; a
/// folded value keeps its inner line breaks, which [`text`] turns into one space. Lines
/// without a colon or with a name that is not a token are skipped.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let rest = self.rest;
            // The line, with the lines folded into it.
            let mut end = lf(rest).unwrap_or(rest.len());
            while rest.get(end + 1).is_some_and(|&b| is_ows(b)) {
                end += 1 + lf(&rest[end + 1..]).unwrap_or(rest.len() - end - 1);
            }
            self.rest = rest.get(end + 1..).unwrap_or(&[]);
            let line = &rest[..end];
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = &line[..colon];
            // (RFC 9112 §5.1 forbids whitespace before the colon; it is forgiven here.)
            let name = name
                .iter()
                .rposition(|&b| !is_ows(b))
                .map_or(&name[..0], |e| &name[..=e]);
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                continue;
            }
            return Some((name, trim(&line[colon + 1..])));
        }
        None
    }
}

/// `raw` as a string value of at most `max` octets: line breaks (of folded values) with the
/// whitespace around them become one space, other control characters U+FFFD, octets that are
/// not UTF-8 U+FFFD; cut at a character boundary.
pub fn text(raw: &[u8], max: usize) -> String {
    // (Most values have no line break or control character: what the loop below would copy
    // of them, one octet at a time, is their first `max + 1` octets.)
    if raw.iter().all(|&b| b >= 0x20 && b != 0x7f || b == b'\t') {
        let s = String::from_utf8_lossy(&raw[..raw.len().min(max.saturating_add(1))]);
        return cut(s.into_owned(), max);
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len().min(max));
    let mut i = 0;
    // U+FFFD takes 3 octets: a few more input octets than `max` may still fit in it.
    while i < raw.len() && out.len() <= max {
        let b = raw[i];
        if b == b'\r' || b == b'\n' {
            while out.last().is_some_and(|&c| is_ows(c)) {
                out.pop();
            }
            while raw
                .get(i)
                .is_some_and(|&c| c == b'\r' || c == b'\n' || is_ows(c))
            {
                i += 1;
            }
            if !out.is_empty() && i < raw.len() {
                out.push(b' ');
            }
            continue;
        }
        out.push(if b < 0x20 && b != b'\t' || b == 0x7f {
            0
        } else {
            b
        });
        i += 1;
    }
    let s = String::from_utf8_lossy(&out).replace('\0', "\u{fffd}");
    cut(s, max)
}

/// `s` cut to at most `max` octets at a character boundary.
pub fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut n = max;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
    s
}

/// Whole values joined with `;` (as ipfixprobe joins them) within a bound. Where each value
/// ends is kept, so that one holding a `;` of its own is still told from the others when
/// values are to be distinct.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List {
    text: String,
    /// Where each value ends in `text`.
    ends: Vec<usize>,
}

impl List {
    /// The values, joined.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn items(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&e| e + 1));
        starts.zip(&self.ends).map(|(s, &e)| &self.text[s..e])
    }

    /// Add `value` if it is not empty and fits whole within `max` octets.
    pub fn add(&mut self, value: &str, max: usize) {
        let sep = usize::from(!self.text.is_empty());
        if value.is_empty() || self.text.len() + sep + value.len() > max {
            return;
        }
        if sep == 1 {
            self.text.push(';');
        }
        self.text.push_str(value);
        self.ends.push(self.text.len());
    }

    /// Add `value` as [`List::add`] does, unless it is there already.
    pub fn add_distinct(&mut self, value: &str, max: usize) {
        if !self.items().any(|v| v == value) {
            self.add(value, max);
        }
    }
}

/// Octets of a line kept at most by [`LineAssembler`] (SMTP's limit for command and reply
/// lines is 512, RFC 5321 §4.5.3.1.4; extensions make longer ones).
pub const MAX_LINE: usize = 1024;

/// `a` comes after `b` in sequence space (RFC 1982 serial-number order).
pub fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// What a line's reader wants next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Line,
    /// Pass over this many octets of data that are not lines (SMTP's BDAT chunks).
    Skip(u64),
    /// Read no more of this direction.
    Stop,
}

/// The lines of one direction of a TCP connection, assembled across segments in sequence
/// order: retransmitted octets are passed over, a gap (lost or not captured) drops the line it
/// cuts. At most [`MAX_LINE`] octets of a line are kept, and a longer one is passed on cut.
#[derive(Default, Debug)]
pub struct LineAssembler {
    /// Sequence number of the next octet expected.
    next: Option<u32>,
    /// The start of a line cut by a segment's end.
    carry: Vec<u8>,
    /// The current line is being dropped: it was cut by a gap.
    resync: bool,
    /// Octets to pass over before the next line.
    skip: u64,
    stopped: bool,
}

impl LineAssembler {
    /// A segment: `seq` its first octet's sequence number, `data` what was captured of its
    /// payload. `line` gets each whole line (without CRLF or LF) and whether it was cut at
    /// [`MAX_LINE`].
    pub fn push(&mut self, seq: u32, data: &[u8], mut line: impl FnMut(&[u8], bool) -> Next) {
        if self.stopped || data.is_empty() {
            return;
        }
        let expected = *self.next.get_or_insert(seq);
        let mut data = data;
        if after(expected, seq) {
            // A retransmission, or partly one: only what follows is new.
            let old = expected.wrapping_sub(seq) as usize;
            let Some(new) = data.get(old..).filter(|d| !d.is_empty()) else {
                return;
            };
            data = new;
        } else if after(seq, expected) {
            // A gap: the line it cuts is lost.
            self.carry.clear();
            self.resync = self.skip == 0;
            self.skip = 0;
        }
        let start = if after(seq, expected) { seq } else { expected };
        self.next = Some(start.wrapping_add(data.len() as u32));
        while !data.is_empty() {
            if self.skip > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
                self.skip -= n as u64;
                data = &data[n..];
                continue;
            }
            let Some(end) = lf(data) else {
                if !self.resync {
                    let room = MAX_LINE + 1 - self.carry.len().min(MAX_LINE + 1);
                    self.carry.extend_from_slice(&data[..data.len().min(room)]);
                }
                return;
            };
            let piece = &data[..end];
            data = &data[end + 1..];
            if std::mem::take(&mut self.resync) {
                continue;
            }
            let next = if self.carry.is_empty() {
                let whole = chomp(piece);
                let cut = whole.len() > MAX_LINE;
                line(&whole[..whole.len().min(MAX_LINE)], cut)
            } else {
                let room = MAX_LINE + 1 - self.carry.len().min(MAX_LINE + 1);
                self.carry
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                let mut held = std::mem::take(&mut self.carry);
                if held.last() == Some(&b'\r') {
                    held.pop();
                }
                let cut = held.len() > MAX_LINE;
                held.truncate(MAX_LINE);
                let next = line(&held, cut);
                held.clear();
                self.carry = held;
                next
            };
            match next {
                Next::Line => {}
                Next::Skip(n) => self.skip = n,
                Next::Stop => {
                    self.stopped = true;
                    self.carry = Vec::new();
                    return;
                }
            }
        }
    }

    /// Octets held for a line cut by a segment's end.
    pub fn held(&self) -> usize {
        self.carry.capacity()
    }
}

#[cfg(test)]
mod tests;
