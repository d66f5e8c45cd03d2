//! Arbitrary bytes as an NBNS message through the netbios plugin's reader. Nothing may
//! panic; a name is at most 15 octets, each written in at most 4 characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::netbios;

fuzz_target!(|data: &[u8]| {
    if let Some(n) = netbios::read(data) {
        assert!(n.name.len() <= 15 * 4);
    }
    let _ = netbios::decode_name(data);
});
