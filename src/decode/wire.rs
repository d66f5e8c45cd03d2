//! Bounds-checked big-endian reads over a byte slice. Every view in this module goes through
//! these, so no decoder indexes out of range: a short buffer is an `Ignore`, never a panic.

use super::Ignore;

#[inline(always)]
pub(super) fn u8_at(b: &[u8], at: usize, short: Ignore) -> Result<u8, Ignore> {
    b.get(at).copied().ok_or(short)
}

#[inline(always)]
pub(super) fn u16_at(b: &[u8], at: usize, short: Ignore) -> Result<u16, Ignore> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(short),
    }
}

#[inline(always)]
pub(super) fn u32_at(b: &[u8], at: usize, short: Ignore) -> Result<u32, Ignore> {
    match b.get(at..at + 4) {
        Some(s) => Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]])),
        None => Err(short),
    }
}

#[inline(always)]
pub(super) fn array<const N: usize>(b: &[u8], at: usize, short: Ignore) -> Result<[u8; N], Ignore> {
    match b.get(at..at + N) {
        Some(s) => {
            let mut a = [0u8; N];
            a.copy_from_slice(s);
            Ok(a)
        }
        None => Err(short),
    }
}
