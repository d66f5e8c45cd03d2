//! `smtp`: SMTP sessions on TCP port 25 (ipfixprobe's smtp plugin): which commands the
//! client sent and which reply codes the server gave, as bitmaps and counts, the first
//! HELO/EHLO domain, and the first MAIL sender and RCPT recipient.
//!
//! A packet to port 25 carries commands, one from port 25 replies (on a connection between
//! two ports 25, the flow's forward direction is the client). Every line of a segment is
//! read, lines cut by a segment's end are joined with the next segment's start in sequence
//! order, retransmissions skipped ([`LineAssembler`]); ipfixprobe reads the first line of
//! each packet only. Verbs are matched without regard to case (RFC 5321 §2.4).
//!
//! * SMTPCommands: ipfixprobe's bits, EHLO 0x1, HELO 0x2, MAIL 0x4, RCPT 0x8, DATA 0x10,
//!   RSET 0x20 (which ipfixprobe never sets), VRFY 0x40, EXPN 0x80, HELP 0x100, NOOP 0x200,
//!   QUIT 0x400, and 0x8000 for a line that is no command of RFC 5321 or of the extensions
//!   STARTTLS, AUTH, BDAT, ETRN, ATRN, TURN, XCLIENT, XFORWARD, SEND, SOML, SAML (ipfixprobe:
//!   a verb not all in upper case). Lines of a message (after a 354 reply, up to the `.`
//!   line), of a BDAT chunk (its octets are passed over) and SASL responses (after a 334
//!   reply) are not commands.
//! * SMTPMailCount, SMTPRcptCount: MAIL and RCPT commands.
//! * SMTPStatusCodes: ipfixprobe's bits of the reply codes (211 0x1 ... 555 0x800000),
//!   0x80000000 for another code, 0x40000000 when a reply says "spam" (any case).
//! * SMTPCode2XXCount ... SMTPCode5XXCount: replies of each class, a multiline reply once
//!   (ipfixprobe counts packets).
//! * SMTPDomain: the argument of the first HELO or EHLO, whitespace trimmed.
//! * SMTPSender, SMTPRecipient: the address of the first MAIL FROM and RCPT TO: the text
//!   between `<` and `>` (RFC 5321 §4.1.2's Path), without the brackets, a source route
//!   (`@relay:`) or the ESMTP parameters that follow; without brackets (sent by some
//!   clients), the text up to the first space. The null reverse-path `<>` gives an empty
//!   sender. (ipfixprobe sends everything after the colon: `' <a@b> SIZE=100'`.)
//!
//! After STARTTLS and its 220 reply the session is encrypted: nothing more is read. Strings
//! are at most 255 octets (UTF-8; other octets and control characters U+FFFD), so a full
//! record is 806 octets of values.

use super::text_wire::{text, trim, LineAssembler, Next};
use super::{Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::key::proto;
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};

pub static SPEC: Spec = Spec {
    kind: PluginKind::Smtp,
    about: "SMTP (port 25) commands and reply codes as bitmaps and counts, first HELO/EHLO \
            domain, first sender and recipient",
    options: &[],
    build,
};

/// The SMTP port.
pub const PORT: u16 = 25;

/// Octets of each string at most.
pub const MAX_STRING: usize = 255;

/// Octets of each packet's payload read.
const PAYLOAD: usize = 4096;

const fn cesnet(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

const COMMANDS: ExtKey = cesnet(810);
const MAIL_COUNT: ExtKey = cesnet(811);
const RCPT_COUNT: ExtKey = cesnet(812);
const SENDER: ExtKey = cesnet(813);
const RECIPIENT: ExtKey = cesnet(814);
const STATUS_CODES: ExtKey = cesnet(815);
const CODE_COUNTS: [ExtKey; 4] = [cesnet(816), cesnet(817), cesnet(818), cesnet(819)];
const DOMAIN: ExtKey = cesnet(820);

/// Command bits (ipfixprobe's).
pub mod command {
    pub const EHLO: u32 = 0x1;
    pub const HELO: u32 = 0x2;
    pub const MAIL: u32 = 0x4;
    pub const RCPT: u32 = 0x8;
    pub const DATA: u32 = 0x10;
    pub const RSET: u32 = 0x20;
    pub const VRFY: u32 = 0x40;
    pub const EXPN: u32 = 0x80;
    pub const HELP: u32 = 0x100;
    pub const NOOP: u32 = 0x200;
    pub const QUIT: u32 = 0x400;
    pub const UNKNOWN: u32 = 0x8000;
}

/// Commands with a bit.
const VERBS: [(&[u8], u32); 11] = [
    (b"EHLO", command::EHLO),
    (b"HELO", command::HELO),
    (b"MAIL", command::MAIL),
    (b"RCPT", command::RCPT),
    (b"DATA", command::DATA),
    (b"RSET", command::RSET),
    (b"VRFY", command::VRFY),
    (b"EXPN", command::EXPN),
    (b"HELP", command::HELP),
    (b"NOOP", command::NOOP),
    (b"QUIT", command::QUIT),
];

/// Commands of extensions and of RFC 821, without a bit: not unknown.
const OTHER_VERBS: [&[u8]; 11] = [
    b"STARTTLS",
    b"AUTH",
    b"BDAT",
    b"ETRN",
    b"ATRN",
    b"TURN",
    b"XCLIENT",
    b"XFORWARD",
    b"SEND",
    b"SOML",
    b"SAML",
];

/// Reply codes with a bit, in bit order (ipfixprobe's).
const CODES: [u16; 24] = [
    211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 455, 500, 501, 502, 503, 504, 550,
    551, 552, 553, 554, 555,
];

/// Reply bits beside the codes'.
pub const SPAM: u32 = 0x4000_0000;
pub const OTHER_CODE: u32 = 0x8000_0000;

fn build(_: &Options) -> Result<Built, PluginError> {
    let needs = Needs {
        payload: PAYLOAD,
        ..Needs::default()
    };
    Ok((Box::new(Host::new(Smtp)), needs))
}

/// Where the client is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Commands,
    /// A message's lines, up to the `.` line.
    Message,
    /// The next client line answers a SASL challenge.
    Sasl,
    /// Encrypted (after STARTTLS and 220): nothing more is read.
    Tls,
}

/// What a session's lines gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub commands: u32,
    pub mails: u32,
    pub rcpts: u32,
    pub codes: u32,
    /// Replies of class 2, 3, 4 and 5.
    pub classes: [u32; 4],
    pub domain: Option<String>,
    pub sender: Option<String>,
    pub recipient: Option<String>,
    /// A command or reply was read.
    pub smtp: bool,
    mode: Mode,
    /// STARTTLS was sent and not yet answered.
    starttls: bool,
    /// The reply being read spoke of spam.
    spam: bool,
}

/// The address of a MAIL or RCPT argument after the verb: `FROM:<path> params`.
pub fn address(arg: &[u8], keyword: &[u8]) -> Option<String> {
    let arg = trim(arg);
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = trim(&arg[keyword.len()..]);
    let rest = trim(rest.strip_prefix(b":")?);
    let path = match rest.strip_prefix(b"<") {
        Some(inner) => {
            let end = inner.iter().position(|&b| b == b'>').unwrap_or(inner.len());
            let path = &inner[..end];
            // A source route, "@one,@two:user@host" (RFC 5321 §4.1.2, obsolete).
            match (path.first(), path.iter().position(|&b| b == b':')) {
                (Some(b'@'), Some(colon)) => &path[colon + 1..],
                _ => path,
            }
        }
        None => {
            let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            &rest[..end]
        }
    };
    Some(text(path, MAX_STRING))
}

impl Session {
    /// One line of the client (`server` false) or the server.
    pub fn line(&mut self, server: bool, line: &[u8]) -> Next {
        if self.mode == Mode::Tls {
            return Next::Stop;
        }
        if server {
            self.reply(line)
        } else {
            self.command(line)
        }
    }

    fn command(&mut self, line: &[u8]) -> Next {
        match self.mode {
            Mode::Message => {
                if line == b"." {
                    self.mode = Mode::Commands;
                }
                return Next::Line;
            }
            Mode::Sasl => {
                self.mode = Mode::Commands;
                return Next::Line;
            }
            Mode::Commands | Mode::Tls => {}
        }
        if line.is_empty() {
            return Next::Line;
        }
        self.smtp = true;
        let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let (verb, arg) = (&line[..end], &line[end..]);
        let known = |v: &&[u8]| v.eq_ignore_ascii_case(verb);
        match VERBS.iter().find(|(v, _)| known(v)) {
            Some(&(_, bit)) => self.commands |= bit,
            None if OTHER_VERBS.iter().any(known) => {}
            None => self.commands |= command::UNKNOWN,
        }
        match verb.to_ascii_uppercase().as_slice() {
            b"HELO" | b"EHLO" if self.domain.is_none() => {
                self.domain = Some(text(trim(arg), MAX_STRING));
            }
            b"MAIL" => {
                self.mails = self.mails.saturating_add(1);
                if self.sender.is_none() {
                    self.sender = address(arg, b"FROM");
                }
            }
            b"RCPT" => {
                self.rcpts = self.rcpts.saturating_add(1);
                if self.recipient.is_none() {
                    self.recipient = address(arg, b"TO");
                }
            }
            b"STARTTLS" => self.starttls = true,
            b"BDAT" => {
                // "BDAT size [LAST]": the chunk's octets follow at once (RFC 3030).
                let size = trim(arg).split(|&b| b == b' ').next().unwrap_or(&[]);
                if let Some(n) = std::str::from_utf8(size).ok().and_then(|s| s.parse().ok()) {
                    return Next::Skip(n);
                }
            }
            _ => {}
        }
        Next::Line
    }

    fn reply(&mut self, line: &[u8]) -> Next {
        let Some(digits) = line.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit)) else {
            return Next::Line;
        };
        let more = match line.get(3) {
            None | Some(b' ') => false,
            Some(b'-') => true,
            Some(_) => return Next::Line,
        };
        self.smtp = true;
        self.spam |= line.windows(4).any(|w| w.eq_ignore_ascii_case(b"spam"));
        if more {
            return Next::Line;
        }
        let code = digits
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        self.codes |= CODES
            .iter()
            .position(|&c| c == code)
            .map_or(OTHER_CODE, |i| 1 << i);
        if std::mem::take(&mut self.spam) {
            self.codes |= SPAM;
        }
        if let Some(n) = (2..=5)
            .contains(&(code / 100))
            .then(|| usize::from(code / 100 - 2))
        {
            self.classes[n] = self.classes[n].saturating_add(1);
        }
        let starttls = std::mem::take(&mut self.starttls);
        self.mode = match code {
            354 => Mode::Message,
            334 => Mode::Sasl,
            220 if starttls => Mode::Tls,
            // A reply ends a message whose "." line was not seen (it comes after it).
            _ => Mode::Commands,
        };
        if self.mode == Mode::Tls {
            return Next::Stop;
        }
        Next::Line
    }

    /// Nothing more will be read.
    pub fn encrypted_now(&self) -> bool {
        self.mode == Mode::Tls
    }
}

/// The plugin.
pub struct Smtp;

/// One flow's lines and what they gave.
pub struct State {
    /// Client, then server.
    lines: [LineAssembler; 2],
    session: Session,
}

impl FlowPlugin for Smtp {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Smtp.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        let k = &p.pkt.key;
        (k.proto == proto::TCP && (k.src_port == PORT || k.dst_port == PORT)).then(|| State {
            lines: Default::default(),
            session: Session::default(),
        })
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        let (Some(tcp), false) = (p.pkt.tcp, p.payload.is_empty()) else {
            return Verdict::Continue;
        };
        let k = &p.pkt.key;
        let server = match (k.src_port == PORT, k.dst_port == PORT) {
            (true, false) => true,
            (false, true) => false,
            _ => p.reverse,
        };
        let seq = tcp.seq.wrapping_add(u32::from(tcp.flags & 0x02 != 0));
        let session = &mut s.session;
        s.lines[usize::from(server)].push(seq, p.payload, |line, _| session.line(server, line));
        if session.encrypted_now() {
            return Verdict::Done;
        }
        Verdict::Continue
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        let s = s.session;
        if !s.smtp {
            return false;
        }
        out.unsigned(COMMANDS, s.commands.into());
        out.unsigned(MAIL_COUNT, s.mails.into());
        out.unsigned(RCPT_COUNT, s.rcpts.into());
        out.unsigned(STATUS_CODES, s.codes.into());
        for (key, n) in CODE_COUNTS.iter().zip(s.classes) {
            out.unsigned(*key, n.into());
        }
        out.bytes(DOMAIN, s.domain.unwrap_or_default().as_bytes());
        out.bytes(SENDER, s.sender.unwrap_or_default().as_bytes());
        out.bytes(RECIPIENT, s.recipient.unwrap_or_default().as_bytes());
        true
    }
}

/// A session read from the client's and the server's octets, each in one piece, lines taken
/// in turn (for the fuzz target and the damaged-session tests).
pub fn parse(client: &[u8], server: &[u8]) -> Session {
    let mut s = Session::default();
    let lf = |b: &u8| *b == b'\n';
    let mut sides = [client.split_inclusive(lf), server.split_inclusive(lf)];
    let mut lines = [LineAssembler::default(), LineAssembler::default()];
    let mut seq = [0u32; 2];
    let mut side = 1;
    loop {
        let Some(piece) = sides[side].next().or_else(|| {
            side = 1 - side;
            sides[side].next()
        }) else {
            return s;
        };
        lines[side].push(seq[side], piece, |line, _| s.line(side == 1, line));
        seq[side] = seq[side].wrapping_add(piece.len() as u32);
        side = 1 - side;
    }
}

#[cfg(test)]
mod tests;
