//! The tests' pseudo-random inputs: xorshift64, deterministic from its seed, so that a failing
//! round can be run again.

/// The numbers of xorshift64 from `seed` (which must not be 0).
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
