//! ClientHello fingerprints: JA3 (as tshark's `tls.handshake.ja3` computes it) and JA4 (FoxIO's
//! definition, `technical_details/JA4.md` of FoxIO-LLC/ja4).

use super::hello::{ext, is_grease, ClientHello};

/// Where fingerprint text goes: a string (to show it) or a hash (to fingerprint it). The
/// text is never built only to be hashed: building strings with `write!` and hashing them
/// was a tenth of qof's time on a trace of short TLS connections.
trait Sink {
    fn put(&mut self, b: &[u8]);
}

impl Sink for String {
    fn put(&mut self, b: &[u8]) {
        // (Only ASCII is written.)
        self.extend(b.iter().map(|&c| char::from(c)));
    }
}

/// A hash fed through a 128-octet buffer: the text comes a few octets at a time, and each
/// call into a hash costs more than its octets.
struct Buffered<H> {
    hash: H,
    buf: [u8; 128],
    len: usize,
    /// Octets written in all.
    total: usize,
}

trait Update {
    fn update(&mut self, b: &[u8]);
}

impl Update for md5::Md5 {
    fn update(&mut self, b: &[u8]) {
        md5::Digest::update(self, b);
    }
}

impl Update for ring::digest::Context {
    fn update(&mut self, b: &[u8]) {
        ring::digest::Context::update(self, b);
    }
}

impl<H: Update> Buffered<H> {
    fn new(hash: H) -> Self {
        Buffered {
            hash,
            buf: [0; 128],
            len: 0,
            total: 0,
        }
    }

    /// The hash, everything written given to it.
    fn into_hash(mut self) -> H {
        self.hash.update(&self.buf[..self.len]);
        self.hash
    }
}

impl<H: Update> Sink for Buffered<H> {
    fn put(&mut self, b: &[u8]) {
        self.total += b.len();
        if self.len + b.len() > self.buf.len() {
            self.hash.update(&self.buf[..self.len]);
            self.len = 0;
        }
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(room) => {
                room.copy_from_slice(b);
                self.len += b.len();
            }
            None => self.hash.update(b),
        }
    }
}

/// SHA-256 of what is written.
type Sha = Buffered<ring::digest::Context>;

fn decimal(out: &mut impl Sink, v: u16) {
    let mut digits = [0u8; 5];
    let (mut n, mut i) = (v, digits.len());
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put(&digits[i..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex4(out: &mut impl Sink, v: u16) {
    let d = |shift: u16| HEX[usize::from(v >> shift & 0xf)];
    out.put(&[d(12), d(8), d(4), d(0)]);
}

fn join_decimal(out: &mut impl Sink, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.put(b"-");
        }
        decimal(out, v);
    }
}

/// Four lower-case hex digits each, comma-separated.
fn join_hex(out: &mut impl Sink, values: impl Iterator<Item = u16>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.put(b",");
        }
        hex4(out, v);
    }
}

/// The JA3 text: `version,ciphers,extensions,groups,point_formats`, decimal values joined
/// with `-`, GREASE left out of the ciphers, extensions and groups (tshark 4.0,
/// `packet-tls-utils.c`; Salesforce's original definition).
fn write_ja3(ch: &ClientHello<'_>, out: &mut impl Sink) {
    decimal(out, ch.version());
    out.put(b",");
    join_decimal(out, ch.cipher_suites().filter(|&c| !is_grease(c)));
    out.put(b",");
    join_decimal(
        out,
        ch.extensions().map(|e| e.ty).filter(|&t| !is_grease(t)),
    );
    out.put(b",");
    join_decimal(out, ch.supported_groups().filter(|&g| !is_grease(g)));
    out.put(b",");
    join_decimal(out, ch.ec_point_formats().iter().map(|&f| u16::from(f)));
}

/// The JA3 string (see [`ja3`]).
pub fn ja3_string(ch: &ClientHello<'_>) -> String {
    let mut s = String::with_capacity(512);
    write_ja3(ch, &mut s);
    s
}

/// JA3: the MD5 of the JA3 string ([`ja3_string`]), as 16 octets.
pub fn ja3(ch: &ClientHello<'_>) -> [u8; 16] {
    use md5::Digest;
    let mut h = Buffered::new(md5::Md5::new());
    write_ja3(ch, &mut h);
    h.into_hash().finalize().into()
}

/// The transport a ClientHello came over: JA4's first character.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Quic,
}

/// JA4 (always 36 characters): `t13d1516h2_8daaf6152771_e5627efa2ab1`.
///
/// GREASE is left out everywhere (counts included); the version is the highest of
/// supported_versions, else legacy_version; the cipher hash is over the sorted ciphers, the
/// extension hash over the sorted extensions without SNI and ALPN, then `_` and the
/// signature algorithms in their order (no `_` when there are none); an empty list hashes to
/// `000000000000`.
pub fn ja4(ch: &ClientHello<'_>, transport: Transport) -> String {
    let mut s = String::with_capacity(36);
    s.push(match transport {
        Transport::Tcp => 't',
        Transport::Quic => 'q',
    });
    let version = ch
        .supported_versions()
        .and_then(|v| v.filter(|&v| !is_grease(v)).max())
        .unwrap_or(ch.version());
    s.push_str(version_label(version));
    let has_sni = ch.extensions().any(|e| e.ty == ext::SERVER_NAME);
    s.push(if has_sni { 'd' } else { 'i' });

    let mut ciphers: Vec<u16> = ch.cipher_suites().filter(|&c| !is_grease(c)).collect();
    let mut exts: Vec<u16> = ch
        .extensions()
        .map(|e| e.ty)
        .filter(|&t| !is_grease(t))
        .collect();
    for n in [ciphers.len().min(99), exts.len().min(99)] {
        s.push(char::from(b'0' + (n / 10) as u8));
        s.push(char::from(b'0' + (n % 10) as u8));
    }
    s.push_str(&alpn_label(ch.alpn().next().unwrap_or(&[])));

    s.push('_');
    ciphers.sort_unstable();
    s.push_str(&hash12(|out| join_hex(out, ciphers.iter().copied())));

    s.push('_');
    exts.retain(|&t| t != ext::SERVER_NAME && t != ext::ALPN);
    exts.sort_unstable();
    let sigs = || ch.signature_algorithms().filter(|&a| !is_grease(a));
    s.push_str(&hash12(|out| {
        join_hex(out, exts.iter().copied());
        if !exts.is_empty() && sigs().next().is_some() {
            out.put(b"_");
            join_hex(out, sigs());
        }
    }));
    s
}

/// JA4's two characters for a TLS version (unknown: `00`).
fn version_label(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// The first and last characters of the first ALPN value; `00` when there is none; the
/// first and last hex digits of the value when either end is not an ASCII letter or digit.
fn alpn_label(alpn: &[u8]) -> String {
    let (Some(&first), Some(&last)) = (alpn.first(), alpn.last()) else {
        return "00".into();
    };
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        return [char::from(first), char::from(last)].iter().collect();
    }
    [
        char::from(HEX[usize::from(first >> 4)]),
        char::from(HEX[usize::from(last & 0x0f)]),
    ]
    .iter()
    .collect()
}

/// The first 12 hex digits of the SHA-256 of the text `write` writes; `000000000000` for an
/// empty text.
fn hash12(write: impl FnOnce(&mut Sha)) -> String {
    let mut h = Sha::new(ring::digest::Context::new(&ring::digest::SHA256));
    write(&mut h);
    if h.total == 0 {
        return "000000000000".into();
    }
    let d = h.into_hash().finish();
    let mut s = String::with_capacity(12);
    for &b in &d.as_ref()[..6] {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// [`hash12`] of a text (tests).
#[cfg(test)]
fn hash12_of(text: &str) -> String {
    hash12(|out| {
        if !text.is_empty() {
            out.put(text.as_bytes())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::hello::tests::{alpn, client_hello, extension, sni, u16s, v16};
    use super::*;

    /// FoxIO's worked example (JA4.md, "Example" and "Raw Output"): 15 ciphers and 16
    /// extensions (GREASE added here, which JA4 leaves out), ALPN h2, TLS 1.3.
    fn foxio_example() -> Vec<u8> {
        let ciphers = [
            0x2a2a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let sigs = [
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        let order = [
            0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012,
            0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ];
        let mut exts = vec![extension(0xdada, &[])];
        for t in order {
            exts.push(match t {
                0x0000 => sni("example.com"),
                0x0010 => alpn(&[b"h2", b"http/1.1"]),
                0x000d => extension(t, &v16(&u16s(&sigs))),
                0x002b => extension(t, &[4, 0x7a, 0x7a, 3, 4]),
                0x000a => extension(t, &v16(&u16s(&[0x4a4a, 29, 23, 24]))),
                0x000b => extension(t, &[1, 0]),
                _ => extension(t, &[]),
            });
        }
        client_hello(0x0303, &ciphers, &exts)
    }

    #[test]
    fn ja4_matches_foxio_published_example() {
        let body = foxio_example();
        let ch = ClientHello::parse(&body).unwrap();
        assert_eq!(
            ja4(&ch, Transport::Tcp),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
        assert_eq!(
            ja4(&ch, Transport::Quic),
            "q13d1516h2_8daaf6152771_e5627efa2ab1"
        );
    }

    #[test]
    fn ja4_pieces_match_foxio_published_hashes() {
        // JA4.md: the sorted cipher list, the extensions with and without signature
        // algorithms.
        assert_eq!(
            hash12_of("002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"),
            "8daaf6152771"
        );
        assert_eq!(
            hash12_of(
                "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
                 0403,0804,0401,0503,0805,0501,0806,0601"
            ),
            "e5627efa2ab1"
        );
        assert_eq!(
            hash12_of("0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"),
            "6d807ffa2a79"
        );
        assert_eq!(hash12_of(""), "000000000000");
    }

    #[test]
    fn ja4_alpn_label_follows_foxio_rules() {
        // JA4.md, "ALPN Extension Value".
        assert_eq!(alpn_label(b"h2"), "h2");
        assert_eq!(alpn_label(b"http/1.1"), "h1");
        assert_eq!(alpn_label(b""), "00");
        assert_eq!(alpn_label(b"h"), "hh");
        assert_eq!(alpn_label(&[0xab]), "ab");
        assert_eq!(alpn_label(&[0xab, 0xcd]), "ad");
        assert_eq!(alpn_label(&[0x30, 0xab]), "3b");
        assert_eq!(alpn_label(&[0x30, 0x31, 0xab, 0xcd]), "3d");
        assert_eq!(alpn_label(&[0x30, 0xab, 0xcd, 0x31]), "01");
    }

    #[test]
    fn ja4_without_versions_extension_sni_or_alpn() {
        // TLS 1.2, no SNI, no ALPN, nine ciphers: counts are zero-padded to two digits.
        let ciphers = [
            0x0a0a, 0xc02b, 0xc02f, 0x009e, 0xc00a, 0xc009, 0xc013, 0xc014, 0x0033, 0x0039,
        ];
        let body = client_hello(
            0x0303,
            &ciphers,
            &[extension(0xff01, &[0]), extension(0x000b, &[1, 0])],
        );
        let ch = ClientHello::parse(&body).unwrap();
        let j = ja4(&ch, Transport::Tcp);
        assert_eq!(&j[..11], "t12i090200_");
        assert_eq!(j.len(), 36);
        // (SHA-256 of "000b,ff01", by Python's hashlib.)
        assert_eq!(&j[24..], "8fe157b277d7");
        // No extensions at all: both hashes of empty lists are zeros.
        let body = client_hello(0x0301, &[], &[]);
        let ch = ClientHello::parse(&body).unwrap();
        assert_eq!(
            ja4(&ch, Transport::Tcp),
            "t10i000000_000000000000_000000000000"
        );
    }

    #[test]
    fn numbers_are_written_as_format_writes_them() {
        for v in [0u16, 7, 10, 99, 100, 771, 9999, 10000, 0xabcd, 65535] {
            let mut s = String::new();
            decimal(&mut s, v);
            assert_eq!(s, v.to_string());
            let mut s = String::new();
            join_hex(&mut s, [v, 1].into_iter());
            assert_eq!(s, format!("{v:04x},0001"));
        }
        // JA3 through the hash is the MD5 of JA3's text.
        use md5::Digest;
        let body = foxio_example();
        let ch = ClientHello::parse(&body).unwrap();
        assert_eq!(
            ja3(&ch),
            <[u8; 16]>::from(md5::Md5::digest(ja3_string(&ch)))
        );
    }

    #[test]
    fn buffered_hashing_is_hashing_the_whole_text() {
        let text: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        for piece in [1, 5, 127, 128, 129, 300] {
            let mut h = Sha::new(ring::digest::Context::new(&ring::digest::SHA256));
            for p in text.chunks(piece) {
                h.put(p);
            }
            assert_eq!(h.total, text.len());
            let whole = ring::digest::digest(&ring::digest::SHA256, &text);
            assert_eq!(
                h.into_hash().finish().as_ref(),
                whole.as_ref(),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn ja3_string_leaves_grease_out() {
        let body = foxio_example();
        let ch = ClientHello::parse(&body).unwrap();
        assert_eq!(
            ja3_string(&ch),
            "771,4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,\
             27-0-51-16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0"
        );
        // RFC 1321's test suite, through the same digest.
        use md5::{Digest, Md5};
        let hex = |d: [u8; 16]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(Md5::digest(b"").into()),
            "d41d8cd98f00b204e9800998ecf8427e"
        );
        assert_eq!(
            hex(Md5::digest(b"message digest").into()),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
    }
}
