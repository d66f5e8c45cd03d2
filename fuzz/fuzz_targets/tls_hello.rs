//! Arbitrary bytes through the TLS hello parser (`qof::plugins::tls`): the first byte chooses
//! whether the rest is a TCP stream's start (TLS records, gathered into handshake octets) or
//! a handshake message. Every hello that parses goes through every accessor and both
//! fingerprints. Nothing may panic; JA4 is always 36 characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::tls::fingerprint::{ja3, ja3_string, ja4, Transport};
use qof::plugins::tls::hello::{message, ClientHello, ServerHello};
use qof::plugins::tls::{read_stream, text, Read, MAX_NAME};

fn client(ch: &ClientHello<'_>) {
    assert_eq!(ja4(ch, Transport::Tcp).len(), 36);
    assert_eq!(ja4(ch, Transport::Quic).len(), 36);
    let _ = (ja3(ch), ja3_string(ch));
    assert!(ch.server_name().map(text).unwrap_or_default().len() <= MAX_NAME);
    let _ = (ch.alpn().count(), ch.supported_groups().count(), ch.ec_point_formats());
    let _ = (ch.signature_algorithms().count(), ch.supported_versions().map(Iterator::count));
    let _ = (ch.quic_user_agent(), ch.extensions().count(), ch.cipher_suites().count());
}

fn server(sh: &ServerHello<'_>) {
    let _ = (sh.selected_version(), sh.alpn(), sh.is_hello_retry_request());
    let _ = (sh.cipher_suite(), sh.extensions().count());
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let mut scratch = Vec::new();
        match read_stream(&mut scratch, rest) {
            Read::Client(ch) => client(&ch),
            Read::Server(sh) => server(&sh),
            Read::More | Read::NotTls => {}
        }
        assert!(scratch.len() <= rest.len());
    } else if let Some((_, body)) = message(rest) {
        if let Some(ch) = ClientHello::parse(body) {
            client(&ch);
        }
        if let Some(sh) = ServerHello::parse(body) {
            server(&sh);
        }
    }
});
