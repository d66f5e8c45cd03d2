//! Arbitrary bytes as a capture file: the reader must never panic, loop or over-allocate, every
//! frame and error it reports must stay inside the input, and the result must not depend on the
//! size of the read buffer (a tiny one forces refills, compaction and growth on every record).
#![no_main]

use libfuzzer_sys::fuzz_target;
use qof::capture::{self, MAX_CAPLEN};

/// What one read of the input produced: frames (timestamp, link type, wire length, bytes), then
/// the error that ended it, if any (offset and message).
type Outcome = (Vec<(u64, u32, u32, Vec<u8>)>, Option<(u64, String)>);

/// `passing`: before each frame, pass over the buffered frames of odd seconds (as a worker
/// passes over the others' frames); the frames read are then a superset of those of even
/// seconds.
fn read(input: &[u8], buffer: usize, passing: bool) -> Outcome {
    let gzip = input.starts_with(&[0x1f, 0x8b]);
    let len = input.len() as u64;
    let cursor = std::io::Cursor::new(input.to_vec());
    let mut src = match capture::from_reader_with_buffer(cursor, buffer) {
        Ok(src) => src,
        Err(e) => {
            assert!(gzip || e.offset <= len, "open error past the end: {e}");
            return (Vec::new(), Some((e.offset, e.to_string())));
        }
    };
    let mut frames = Vec::new();
    let mut last_position = src.position();
    loop {
        if passing {
            src.pass_over(&mut |_, secs, data| {
                assert!(data.len() <= MAX_CAPLEN as usize);
                secs % 2 == 0
            });
        }
        let end = match src.next_frame() {
            Ok(Some(f)) => {
                assert!(f.data.len() <= MAX_CAPLEN as usize);
                assert!(gzip || f.data.len() as u64 <= len);
                frames.push((f.ts.nanos(), f.linktype, f.orig_len, f.data.to_vec()));
                None
            }
            Ok(None) => return (frames, None),
            Err(e) => Some(e),
        };
        if let Some(e) = end {
            assert!(gzip || e.offset <= len, "error past the end: {e}");
            // One line, as the command line prints it.
            assert!(!e.to_string().contains('\n'));
            return (frames, Some((e.offset, e.to_string())));
        }
        let position = src.position();
        assert!(position >= last_position, "position went back");
        last_position = position;
        if !gzip {
            // Every frame consumes a record header of at least 12 bytes.
            assert!(
                frames.len() as u64 * 12 <= len,
                "more frames than the input can hold"
            );
            assert!(position <= len);
        }
    }
}

/// The frames of even seconds.
fn even(o: &Outcome) -> Outcome {
    let frames = o.0.iter().filter(|f| f.0 / 1_000_000_000 % 2 == 0);
    (frames.cloned().collect(), o.1.clone())
}

fuzz_target!(|input: &[u8]| {
    let small = read(input, 64, false);
    let large = read(input, 1 << 16, false);
    if !input.starts_with(&[0x1f, 0x8b]) {
        // Passing frames over skips only frames of odd seconds and ends as reading does.
        let passed = read(input, 1 << 16, true);
        assert_eq!(even(&passed), even(&large), "passing over changed the frames kept");
    }
    if input.starts_with(&[0x1f, 0x8b]) {
        // How much good data a damaged gzip stream yields before its error can depend on the
        // size of the reads; the frames still come from the same stream.
        let n = small.0.len().min(large.0.len());
        assert_eq!(small.0[..n], large.0[..n], "gzip: frames differ");
    } else {
        assert_eq!(small, large, "the buffer size changed the result");
    }
});
