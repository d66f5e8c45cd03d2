//! Arbitrary bytes as a capture file: the reader must never panic, loop or over-allocate, and
//! every frame and error it reports must stay inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::capture::{self, MAX_CAPLEN};

fuzz_target!(|input: &[u8]| {
    let gzip = input.starts_with(&[0x1f, 0x8b]);
    // Half the inputs go through a tiny buffer, so refill, compaction and growth get exercised.
    let buffer = if input.len() % 2 == 0 { 128 } else { 1 << 16 };
    let mut src =
        match capture::from_reader_with_buffer(std::io::Cursor::new(input.to_vec()), buffer) {
            Ok(src) => src,
            Err(e) => {
                assert!(
                    gzip || e.offset <= input.len() as u64,
                    "open error past the end: {e}"
                );
                return;
            }
        };
    let mut frames = 0u64;
    let mut last_position = src.position();
    loop {
        match src.next_frame() {
            Ok(Some(f)) => {
                frames += 1;
                assert!(f.data.len() <= MAX_CAPLEN as usize);
                if !gzip {
                    assert!(f.data.len() <= input.len());
                }
            }
            Ok(None) => break,
            Err(e) => {
                assert!(
                    gzip || e.offset <= input.len() as u64,
                    "error past the end: {e}"
                );
                // One line, as the command line prints it.
                assert!(!e.to_string().contains('\n'));
                break;
            }
        }
        let position = src.position();
        assert!(position >= last_position, "position went back");
        last_position = position;
        if !gzip {
            // Every frame consumes a record header of at least 12 bytes.
            assert!(
                frames * 12 <= input.len() as u64,
                "more frames than the input can hold"
            );
            assert!(position <= input.len() as u64);
        }
    }
});
