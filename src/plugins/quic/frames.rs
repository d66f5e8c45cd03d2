//! The frames of a decrypted Initial packet (RFC 9000 §19) and the reassembly of the
//! client's CRYPTO stream, in which a ClientHello may span several frames, out of order, and
//! several Initial packets (Chrome scatters it on purpose; post-quantum key shares make it
//! longer than one packet).

use crate::plugins::tls::hello::varint;

/// Octets of the Initial CRYPTO stream kept at most: a ClientHello with a post-quantum key
/// share is about 1.9 kB.
pub const CRYPTO_CAP: usize = 4096;

/// One CRYPTO frame: where its data sits in the stream, and the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crypto<'a> {
    pub offset: u64,
    pub data: &'a [u8],
}

/// The CRYPTO frames of an Initial packet's payload, in order. The walk passes PADDING,
/// PING, ACK and CONNECTION_CLOSE (the other frames an Initial may carry) and ends at any
/// other frame type or a frame cut short.
pub struct CryptoFrames<'a>(&'a [u8]);

impl<'a> CryptoFrames<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        CryptoFrames(payload)
    }

    fn next_frame(&mut self) -> Option<Crypto<'a>> {
        let r = &mut self.0;
        loop {
            match varint(r)? {
                0x00 | 0x01 => {}
                ty @ (0x02 | 0x03) => {
                    // Largest acknowledged, delay, range count, first range; then a gap and
                    // a length per range (each read consumes input, so a huge count ends at
                    // the end of the payload); ECN counts for type 3.
                    let _ = (varint(r)?, varint(r)?);
                    let ranges = varint(r)?;
                    varint(r)?;
                    for _ in 0..ranges {
                        let _ = (varint(r)?, varint(r)?);
                    }
                    if ty == 0x03 {
                        let _ = (varint(r)?, varint(r)?, varint(r)?);
                    }
                }
                0x06 => {
                    let offset = varint(r)?;
                    let len = usize::try_from(varint(r)?).ok()?;
                    let data = r.get(..len)?;
                    *r = &r[len..];
                    return Some(Crypto { offset, data });
                }
                ty @ (0x1c | 0x1d) => {
                    varint(r)?;
                    if ty == 0x1c {
                        varint(r)?;
                    }
                    let len = usize::try_from(varint(r)?).ok()?;
                    r.get(..len)?;
                    *r = &r[len..];
                }
                _ => return None,
            }
        }
    }
}

impl<'a> Iterator for CryptoFrames<'a> {
    type Item = Crypto<'a>;
    fn next(&mut self) -> Option<Crypto<'a>> {
        let f = self.next_frame();
        if f.is_none() {
            self.0 = &[];
        }
        f
    }
}

/// The first [`CRYPTO_CAP`] octets of a CRYPTO stream, filled by frames in any order.
pub struct CryptoStream {
    buf: Box<[u8; CRYPTO_CAP]>,
    /// Bit *i*: octet *i* is filled.
    filled: [u64; CRYPTO_CAP / 64],
}

impl Default for CryptoStream {
    fn default() -> Self {
        CryptoStream {
            buf: Box::new([0; CRYPTO_CAP]),
            filled: [0; CRYPTO_CAP / 64],
        }
    }
}

impl CryptoStream {
    /// Place a frame's data (what lies beyond [`CRYPTO_CAP`] is dropped).
    pub fn add(&mut self, f: Crypto<'_>) {
        let Ok(start) = usize::try_from(f.offset) else {
            return;
        };
        if start >= CRYPTO_CAP {
            return;
        }
        let end = start.saturating_add(f.data.len()).min(CRYPTO_CAP);
        self.buf[start..end].copy_from_slice(&f.data[..end - start]);
        for i in start..end {
            self.filled[i / 64] |= 1 << (i % 64);
        }
    }

    /// The octets filled from the start on, up to the first hole.
    pub fn contiguous(&self) -> &[u8] {
        let mut n = 0;
        for w in self.filled {
            n += w.trailing_ones() as usize;
            if w != u64::MAX {
                break;
            }
        }
        &self.buf[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crypto_frames_are_found_among_the_others() {
        let payload = [
            &[0x01, 0x00, 0x00][..],                     // PING, PADDING
            &[0x02, 0x05, 0x00, 0x01, 0x02, 0x01, 0x01], // ACK with one more range
            &[0x06, 0x40, 0x10, 0x03, 7, 8, 9],          // CRYPTO at 16
            &[0x03, 0x05, 0x00, 0x00, 0x02, 1, 1, 1],    // ACK_ECN
            &[0x1c, 0x00, 0x06, 0x02, b'n', b'o'],       // CONNECTION_CLOSE
            &[0x06, 0x00, 0x02, 1, 2],                   // CRYPTO at 0
            &[0x00; 10],
        ]
        .concat();
        let frames: Vec<_> = CryptoFrames::new(&payload).collect();
        assert_eq!(
            frames,
            [
                Crypto {
                    offset: 16,
                    data: &[7, 8, 9]
                },
                Crypto {
                    offset: 0,
                    data: &[1, 2]
                }
            ]
        );
        // An unknown frame type ends the walk; so does a frame cut short.
        assert_eq!(CryptoFrames::new(&[0x08, 0x06, 0, 1, 5]).count(), 0);
        assert_eq!(CryptoFrames::new(&[0x06, 0, 9, 1, 2]).count(), 0);
        // An ACK claiming 2^62 ranges ends at the end of the payload.
        let huge = [
            0x02, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 1,
        ];
        assert_eq!(CryptoFrames::new(&huge).count(), 0);
    }

    #[test]
    fn the_stream_grows_as_holes_fill() {
        let mut s = CryptoStream::default();
        s.add(Crypto {
            offset: 3,
            data: &[4, 5, 6],
        });
        assert!(s.contiguous().is_empty());
        s.add(Crypto {
            offset: 0,
            data: &[1, 2],
        });
        assert_eq!(s.contiguous(), [1, 2]);
        s.add(Crypto {
            offset: 1,
            data: &[2, 3],
        });
        assert_eq!(s.contiguous(), [1, 2, 3, 4, 5, 6]);
        // Beyond the cap nothing is kept; up to it, everything.
        let big = vec![9; 2 * CRYPTO_CAP];
        s.add(Crypto {
            offset: u64::MAX,
            data: &big,
        });
        s.add(Crypto {
            offset: 6,
            data: &big,
        });
        assert_eq!(s.contiguous().len(), CRYPTO_CAP);
    }
}
