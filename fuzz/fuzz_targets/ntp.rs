//! Arbitrary bytes as an NTP packet through the ntp plugin's reader. Nothing may panic; a
//! packet read obeys ipfixprobe's rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::plugins::ntp;

fuzz_target!(|data: &[u8]| {
    if let Some(f) = ntp::read(data) {
        assert!(f.version == 4 && matches!(f.mode, 3 | 4) && f.stratum <= 16 && f.poll <= 17);
    }
});
