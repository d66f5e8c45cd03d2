//! TLS ClientHello and ServerHello as typed, bounds-checked views (RFC 8446 §4.1.2-3, RFC
//! 5246 §7.4.1), shared by the `tls` plugin (hellos read from a TCP stream) and the `quic`
//! plugin (a ClientHello gathered from decrypted CRYPTO frames).
//!
//! [`ClientHello::parse`] and [`ServerHello::parse`] check every length of the fixed part once
//! and keep sub-slices; the accessors then walk those slices with iterators that stop at the
//! first item that does not fit, so nothing here can panic or allocate, whatever the input.

/// Handshake message types read here.
pub const CLIENT_HELLO: u8 = 1;
pub const SERVER_HELLO: u8 = 2;

/// Extension types read here (IANA "TLS ExtensionType Values").
pub mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const SUPPORTED_GROUPS: u16 = 10;
    pub const EC_POINT_FORMATS: u16 = 11;
    pub const SIGNATURE_ALGORITHMS: u16 = 13;
    pub const ALPN: u16 = 16;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// quic_transport_parameters: RFC 9001 and draft-33 on.
    pub const QUIC_TRANSPORT_PARAMETERS: u16 = 0x39;
    /// Its codepoint in drafts 13 to 32.
    pub const QUIC_TRANSPORT_PARAMETERS_DRAFT: u16 = 0xffa5;
    /// Its codepoint in drafts 2 to 12.
    pub const QUIC_TRANSPORT_PARAMETERS_OLD: u16 = 0x26;
}

/// The Google user agent transport parameter (in quic_transport_parameters).
const QUIC_GOOGLE_USER_AGENT: u64 = 0x3129;

/// A GREASE value (RFC 8701): 0x?a?a with both octets equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Reads big-endian fields off the front of a slice; every read is checked.
#[derive(Clone, Copy)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A vector with a one-octet length.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    /// A vector with a two-octet length.
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// A handshake message's type and its body, when the whole message is in `buf` (which may
/// hold more after it); `None` when it is cut short.
pub fn message(buf: &[u8]) -> Option<(u8, &[u8])> {
    let (&ty, rest) = buf.split_first()?;
    let len = message_len(buf)?;
    Some((ty, rest.get(3..3 + len)?))
}

/// The body length a handshake message header (type, 24-bit length) announces.
pub fn message_len(buf: &[u8]) -> Option<usize> {
    let h = buf.get(..4)?;
    Some(usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]))
}

/// Big-endian u16 items of a slice (an odd last octet is left out).
#[derive(Clone)]
pub struct U16s<'a>(std::slice::ChunksExact<'a, u8>);

impl<'a> U16s<'a> {
    fn new(b: &'a [u8]) -> Self {
        U16s(b.chunks_exact(2))
    }
}

impl Iterator for U16s<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        self.0.next().map(|c| u16::from_be_bytes([c[0], c[1]]))
    }
}

/// One extension: its type and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    pub ty: u16,
    pub data: &'a [u8],
}

/// The extensions of a hello, in order, up to the first one that overruns the block.
#[derive(Clone)]
pub struct Extensions<'a>(Reader<'a>);

impl<'a> Iterator for Extensions<'a> {
    type Item = Extension<'a>;
    fn next(&mut self) -> Option<Extension<'a>> {
        let mut r = self.0;
        let item = (|| {
            let ty = r.u16()?;
            let data = r.vec16()?;
            Some(Extension { ty, data })
        })();
        // A malformed extension ends the walk (and stays ended).
        self.0 = if item.is_some() { r } else { Reader(&[]) };
        item
    }
}

/// The names in a length-prefixed list of one-octet-length names (ALPN's protocol list).
#[derive(Clone)]
pub struct Names<'a>(Reader<'a>);

impl<'a> Iterator for Names<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let name = self.0.vec8();
        if name.is_none() {
            self.0 = Reader(&[]);
        }
        name
    }
}

/// The extensions block after the fixed part of a hello: absent (no octets left, as from
/// SSL 3.0 and early TLS clients), or a two-octet length and exactly that many octets that
/// must be there.
fn extensions_block<'a>(r: &mut Reader<'a>) -> Option<&'a [u8]> {
    if r.0.is_empty() {
        return Some(&[]);
    }
    r.vec16()
}

/// A ClientHello's body (after the handshake header).
#[derive(Clone, Copy, Debug)]
pub struct ClientHello<'a> {
    version: u16,
    session_id: &'a [u8],
    ciphers: &'a [u8],
    compression: &'a [u8],
    extensions: &'a [u8],
}

impl<'a> ClientHello<'a> {
    /// The fixed part must be whole and its lengths consistent; the extensions block, if
    /// any, must be there in full.
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        let mut r = Reader(body);
        let version = r.u16()?;
        r.take(32)?; // random
        let session_id = r.vec8()?;
        let ciphers = r.vec16()?;
        let compression = r.vec8()?;
        let extensions = extensions_block(&mut r)?;
        if session_id.len() > 32 || ciphers.len() % 2 != 0 {
            return None;
        }
        Some(ClientHello {
            version,
            session_id,
            ciphers,
            compression,
            extensions,
        })
    }

    /// legacy_version (0x0303 from TLS 1.2 and 1.3 clients).
    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn session_id(&self) -> &'a [u8] {
        self.session_id
    }

    pub fn compression_methods(&self) -> &'a [u8] {
        self.compression
    }

    pub fn cipher_suites(&self) -> U16s<'a> {
        U16s::new(self.ciphers)
    }

    pub fn extensions(&self) -> Extensions<'a> {
        Extensions(Reader(self.extensions))
    }

    /// The body of the first extension of type `ty`.
    pub fn extension(&self, ty: u16) -> Option<&'a [u8]> {
        self.extensions().find(|e| e.ty == ty).map(|e| e.data)
    }

    /// The first name of the server_name extension (RFC 6066 §3), as sent.
    pub fn server_name(&self) -> Option<&'a [u8]> {
        let mut list = Reader(self.extension(ext::SERVER_NAME)?);
        let mut names = Reader(list.vec16()?);
        let _name_type = names.u8()?;
        names.vec16()
    }

    /// The protocols the client offers (RFC 7301), in its order.
    pub fn alpn(&self) -> Names<'a> {
        alpn_names(self.extension(ext::ALPN))
    }

    /// supported_groups (elliptic_curves), in order.
    pub fn supported_groups(&self) -> U16s<'a> {
        U16s::new(self.extension(ext::SUPPORTED_GROUPS).map_or(&[], list16))
    }

    /// ec_point_formats, in order.
    pub fn ec_point_formats(&self) -> &'a [u8] {
        self.extension(ext::EC_POINT_FORMATS).map_or(&[], list8)
    }

    /// signature_algorithms, in order.
    pub fn signature_algorithms(&self) -> U16s<'a> {
        U16s::new(
            self.extension(ext::SIGNATURE_ALGORITHMS)
                .map_or(&[], list16),
        )
    }

    /// The versions of the supported_versions extension; `None` without the extension.
    pub fn supported_versions(&self) -> Option<U16s<'a>> {
        self.extension(ext::SUPPORTED_VERSIONS)
            .map(|b| U16s::new(list8(b)))
    }

    /// The Google user agent transport parameter (0x3129) of the first
    /// quic_transport_parameters extension (any of its codepoints) that has one.
    pub fn quic_user_agent(&self) -> Option<&'a [u8]> {
        self.extensions()
            .filter(|e| is_quic_transport_parameters(e.ty))
            .find_map(|e| quic_parameter(e.data, QUIC_GOOGLE_USER_AGENT))
    }
}

/// One of the codepoints quic_transport_parameters has had.
pub fn is_quic_transport_parameters(ty: u16) -> bool {
    matches!(
        ty,
        ext::QUIC_TRANSPORT_PARAMETERS
            | ext::QUIC_TRANSPORT_PARAMETERS_DRAFT
            | ext::QUIC_TRANSPORT_PARAMETERS_OLD
    )
}

/// The items of a vector with a two-octet length (the whole body if the length lies).
fn list16(b: &[u8]) -> &[u8] {
    Reader(b).vec16().unwrap_or(&[])
}

/// The items of a vector with a one-octet length.
fn list8(b: &[u8]) -> &[u8] {
    Reader(b).vec8().unwrap_or(&[])
}

fn alpn_names(body: Option<&[u8]>) -> Names<'_> {
    Names(Reader(body.map_or(&[], list16)))
}

/// A QUIC variable-length integer (RFC 9000 §16).
pub fn varint(r: &mut &[u8]) -> Option<u64> {
    let first = *r.first()?;
    let len = 1usize << (first >> 6);
    let bytes = r.get(..len)?;
    let v = bytes[1..]
        .iter()
        .fold(u64::from(first & 0x3f), |v, &b| v << 8 | u64::from(b));
    *r = &r[len..];
    Some(v)
}

/// The value of transport parameter `id` in a quic_transport_parameters body (RFC 9000
/// §18: id and length as variable-length integers).
fn quic_parameter(mut body: &[u8], id: u64) -> Option<&[u8]> {
    while !body.is_empty() {
        let pid = varint(&mut body)?;
        let len = usize::try_from(varint(&mut body)?).ok()?;
        let value = body.get(..len)?;
        body = &body[len..];
        if pid == id {
            return Some(value);
        }
    }
    None
}

/// A ServerHello's body (after the handshake header).
#[derive(Clone, Copy, Debug)]
pub struct ServerHello<'a> {
    version: u16,
    random: &'a [u8],
    cipher: u16,
    extensions: &'a [u8],
}

/// The random of a HelloRetryRequest: SHA-256 of "HelloRetryRequest" (RFC 8446 §4.1.3).
const HELLO_RETRY_REQUEST: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

impl<'a> ServerHello<'a> {
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        let mut r = Reader(body);
        let version = r.u16()?;
        let random = r.take(32)?;
        let session_id = r.vec8()?;
        let cipher = r.u16()?;
        let _compression = r.u8()?;
        let extensions = extensions_block(&mut r)?;
        if session_id.len() > 32 {
            return None;
        }
        Some(ServerHello {
            version,
            random,
            cipher,
            extensions,
        })
    }

    /// legacy_version.
    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn cipher_suite(&self) -> u16 {
        self.cipher
    }

    pub fn extensions(&self) -> Extensions<'a> {
        Extensions(Reader(self.extensions))
    }

    fn extension(&self, ty: u16) -> Option<&'a [u8]> {
        self.extensions().find(|e| e.ty == ty).map(|e| e.data)
    }

    /// The version the server chose: supported_versions' (TLS 1.3) or legacy_version.
    pub fn selected_version(&self) -> u16 {
        self.extension(ext::SUPPORTED_VERSIONS)
            .and_then(|b| U16s::new(b).next())
            .unwrap_or(self.version)
    }

    /// The protocol the server selected (RFC 7301: exactly one name).
    pub fn alpn(&self) -> Option<&'a [u8]> {
        alpn_names(self.extension(ext::ALPN)).next()
    }

    /// A TLS 1.3 HelloRetryRequest (a ServerHello the real one follows).
    pub fn is_hello_retry_request(&self) -> bool {
        self.random == HELLO_RETRY_REQUEST
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A handshake message: type, 24-bit length, body.
    pub fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut m = vec![ty, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        m.extend_from_slice(body);
        m
    }

    /// One extension, wire form.
    pub fn extension(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut e = ty.to_be_bytes().to_vec();
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
        e
    }

    /// A vector with a two-octet length.
    pub fn v16(items: &[u8]) -> Vec<u8> {
        let mut v = (items.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(items);
        v
    }

    pub fn u16s(items: &[u16]) -> Vec<u8> {
        items.iter().flat_map(|v| v.to_be_bytes()).collect()
    }

    /// A ClientHello body with these ciphers and extensions (already encoded).
    pub fn client_hello(version: u16, ciphers: &[u16], extensions: &[Vec<u8>]) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend_from_slice(&[7; 32]);
        b.push(32);
        b.extend_from_slice(&[9; 32]);
        b.extend_from_slice(&v16(&u16s(ciphers)));
        b.extend_from_slice(&[1, 0]);
        b.extend_from_slice(&v16(&extensions.concat()));
        b
    }

    pub fn sni(name: &str) -> Vec<u8> {
        let mut entry = vec![0];
        entry.extend_from_slice(&v16(name.as_bytes()));
        extension(ext::SERVER_NAME, &v16(&entry))
    }

    pub fn alpn(names: &[&[u8]]) -> Vec<u8> {
        let list: Vec<u8> = names
            .iter()
            .flat_map(|n| std::iter::once(n.len() as u8).chain(n.iter().copied()))
            .collect();
        extension(ext::ALPN, &v16(&list))
    }

    #[test]
    fn a_client_hello_reads_back() {
        let body = client_hello(
            0x0303,
            &[0x0a0a, 0x1301, 0xc02b],
            &[
                extension(0x2a2a, &[]),
                sni("example.com"),
                alpn(&[b"h2", b"http/1.1"]),
                extension(ext::SUPPORTED_GROUPS, &v16(&u16s(&[0x1a1a, 29, 23]))),
                extension(ext::EC_POINT_FORMATS, &[1, 0]),
                extension(ext::SIGNATURE_ALGORITHMS, &v16(&u16s(&[0x0403, 0x0804]))),
                extension(ext::SUPPORTED_VERSIONS, &[4, 0x3a, 0x3a, 3, 4]),
            ],
        );
        let msg = handshake(CLIENT_HELLO, &body);
        let (ty, b) = message(&msg).unwrap();
        assert_eq!(ty, CLIENT_HELLO);
        let ch = ClientHello::parse(b).unwrap();
        assert_eq!(ch.version(), 0x0303);
        assert_eq!(ch.session_id().len(), 32);
        assert_eq!(
            ch.cipher_suites().collect::<Vec<_>>(),
            [0x0a0a, 0x1301, 0xc02b]
        );
        assert_eq!(ch.extensions().count(), 7);
        assert_eq!(ch.server_name(), Some(&b"example.com"[..]));
        assert_eq!(ch.alpn().collect::<Vec<_>>(), [&b"h2"[..], b"http/1.1"]);
        assert_eq!(ch.supported_groups().collect::<Vec<_>>(), [0x1a1a, 29, 23]);
        assert_eq!(ch.ec_point_formats(), [0]);
        assert_eq!(ch.signature_algorithms().count(), 2);
        assert_eq!(
            ch.supported_versions().unwrap().collect::<Vec<_>>(),
            [0x3a3a, 0x0304]
        );
        // Cut anywhere, the message is incomplete; the body alone, cut short, fails.
        for n in 0..msg.len() {
            assert!(message(&msg[..n]).is_none());
        }
        for n in 0..b.len() {
            // (Cut right after the compression methods it is a hello without extensions.)
            if let Some(ch) = ClientHello::parse(&b[..n]) {
                assert_eq!(ch.extensions().count(), 0, "cut at {n}");
            }
        }
    }

    #[test]
    fn grease_values_are_recognised() {
        let grease: Vec<u16> = (0..=0xffffu16).filter(|&v| is_grease(v)).collect();
        assert_eq!(grease.len(), 16);
        assert_eq!(grease[0], 0x0a0a);
        assert_eq!(grease[15], 0xfafa);
    }

    #[test]
    fn a_server_hello_gives_version_and_alpn() {
        let mut b = 0x0303u16.to_be_bytes().to_vec();
        b.extend_from_slice(&[3; 32]);
        b.push(0);
        b.extend_from_slice(&[0x13, 0x01, 0]);
        let exts = [extension(ext::SUPPORTED_VERSIONS, &[3, 4]), alpn(&[b"h2"])].concat();
        b.extend_from_slice(&v16(&exts));
        let sh = ServerHello::parse(&b).unwrap();
        assert_eq!(sh.selected_version(), 0x0304);
        assert_eq!(sh.alpn(), Some(&b"h2"[..]));
        assert_eq!(sh.cipher_suite(), 0x1301);
        assert!(!sh.is_hello_retry_request());
        // A TLS 1.2 ServerHello without extensions.
        let sh = ServerHello::parse(&b[..38]).unwrap();
        assert_eq!(sh.selected_version(), 0x0303);
        assert_eq!(sh.alpn(), None);
    }

    #[test]
    fn the_quic_user_agent_is_read_from_transport_parameters() {
        // initial_max_data (4) = 1000, then the user agent.
        let tp = [&[0x04, 0x02, 0x43, 0xe8][..], &[0x71, 0x29, 3], b"UA1"].concat();
        let body = client_hello(0x0303, &[0x1301], &[extension(0xffa5, &tp)]);
        let ch = ClientHello::parse(&body).unwrap();
        assert_eq!(ch.quic_user_agent(), Some(&b"UA1"[..]));
        let mut s: &[u8] = &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c];
        assert_eq!(varint(&mut s), Some(151_288_809_941_952_652));
        assert_eq!(varint(&mut &[0x40, 0x25][..]), Some(37));
        assert_eq!(varint(&mut &[0x80, 0][..]), None);
    }
}
