//! JA3 and JA4 of ClientHellos seen before, remembered: a client program sends the same
//! cipher suites, extension types and lists in each of its hellos (only the random, session
//! id, SNI and key shares change), so most hellos of a trace fingerprint as an earlier one
//! did. Writing the fingerprints' texts and hashing them (MD5 and two SHA-256) took about
//! 30,000 instructions a hello; looking one up takes a few hundred.
//!
//! The key is what the fingerprints read ([`fingerprint::ja3`], [`fingerprint::ja4`]),
//! through the same accessors, less GREASE values (RFC 8701), which both leave out and which
//! clients draw at random for each hello: the transport, legacy_version, the cipher suites,
//! the extension types in order, supported_groups, ec_point_formats, signature_algorithms,
//! supported_versions (and whether it is there) and the first ALPN protocol. Equal keys give
//! equal fingerprints, so a remembered pair is exactly what computing it again would give.

use super::fingerprint::{self, Transport};
use super::hello::{is_grease, ClientHello};
use std::hash::BuildHasher;

/// Fingerprints remembered at most, each in the slot its key's hash picks (a newer hello
/// takes the slot over).
const SLOTS: usize = 128;

/// The longest key remembered: a hello with more (hundreds of cipher suites or extensions,
/// an oddity or a probe) is fingerprinted each time, so that the memo stays small.
const MAX_KEY: usize = 1024;

struct Entry {
    key: Vec<u8>,
    ja3: [u8; 16],
    ja4: String,
}

/// The remembered fingerprints, and the key being built (reused from hello to hello).
#[derive(Default)]
pub struct Memo {
    slots: Vec<Option<Entry>>,
    key: Vec<u8>,
}

/// Append `b` after its length: keys of different hellos never run into each other.
fn put(key: &mut Vec<u8>, b: &[u8]) {
    key.extend_from_slice(&(b.len() as u32).to_be_bytes());
    key.extend_from_slice(b);
}

/// Append `values` but GREASE after their count.
fn put_all(key: &mut Vec<u8>, values: impl Iterator<Item = u16>) {
    let at = key.len();
    key.extend_from_slice(&[0; 4]);
    let mut n = 0u32;
    for v in values.filter(|&v| !is_grease(v)) {
        key.extend_from_slice(&v.to_be_bytes());
        n += 1;
    }
    key[at..at + 4].copy_from_slice(&n.to_be_bytes());
}

/// Write the key of `ch` over `transport` into `key`.
fn write_key(ch: &ClientHello<'_>, transport: Transport, key: &mut Vec<u8>) {
    key.clear();
    key.push(transport as u8);
    key.extend_from_slice(&ch.version().to_be_bytes());
    put_all(key, ch.cipher_suites());
    put_all(key, ch.extensions().map(|e| e.ty));
    put_all(key, ch.supported_groups());
    put(key, ch.ec_point_formats());
    put_all(key, ch.signature_algorithms());
    let versions = ch.supported_versions();
    key.push(u8::from(versions.is_some()));
    put_all(key, versions.into_iter().flatten());
    let alpn = ch.alpn().next();
    key.push(u8::from(alpn.is_some()));
    put(key, alpn.unwrap_or(&[]));
}

impl Memo {
    /// JA3 and JA4 of `ch` over `transport`, computed or remembered.
    pub fn fingerprints(
        &mut self,
        ch: &ClientHello<'_>,
        transport: Transport,
    ) -> ([u8; 16], String) {
        let compute = || (fingerprint::ja3(ch), fingerprint::ja4(ch, transport));
        write_key(ch, transport, &mut self.key);
        if self.key.len() > MAX_KEY {
            return compute();
        }
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        let hash = foldhash::fast::FixedState::with_seed(0).hash_one(&self.key[..]);
        let slot = &mut self.slots[(hash as usize) % SLOTS];
        if let Some(e) = slot.as_ref().filter(|e| e.key == self.key) {
            return (e.ja3, e.ja4.clone());
        }
        let (ja3, ja4) = compute();
        // (The slot's old key buffer is reused.)
        let mut key = slot.take().map(|e| e.key).unwrap_or_default();
        key.clone_from(&self.key);
        *slot = Some(Entry {
            key,
            ja3,
            ja4: ja4.clone(),
        });
        (ja3, ja4)
    }
}

#[cfg(test)]
mod tests {
    use super::super::hello::tests::{alpn, client_hello, extension, sni};
    use super::*;

    #[test]
    fn hellos_differing_only_where_fingerprints_do_not_read_share_an_entry() {
        let hello = |name: &str, protocol: &[u8], group: u8, grease: u16| {
            client_hello(
                0x0303,
                &[grease, 0x1301, 0x1302],
                &[
                    extension(grease, &[]),
                    sni(name),
                    alpn(&[protocol]),
                    extension(10, &[0, 4, grease as u8, grease as u8, 0, group]),
                ],
            )
        };
        let mut memo = Memo::default();
        let entries = |m: &Memo| m.slots.iter().flatten().count();
        for (body, after) in [
            (hello("a.example", b"h2", 29, 0x0a0a), 1),
            // Another server name, other GREASE values: remembered.
            (hello("b.example", b"h2", 29, 0x0a0a), 1),
            (hello("a.example", b"h2", 29, 0xfafa), 1),
            // Another ALPN (JA4 reads it), another group (JA3 reads it): new entries.
            (hello("a.example", b"h3", 29, 0x0a0a), 2),
            (hello("a.example", b"h2", 23, 0x0a0a), 3),
        ] {
            let ch = ClientHello::parse(&body).unwrap();
            for transport in [Transport::Tcp, Transport::Quic] {
                let got = memo.fingerprints(&ch, transport);
                let want = (fingerprint::ja3(&ch), fingerprint::ja4(&ch, transport));
                assert_eq!(got, want);
            }
            // (Each hello over QUIC is a key of its own.)
            assert_eq!(entries(&memo), 2 * after);
        }
    }
}
