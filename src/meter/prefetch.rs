//! Cache prefetch hints: start loading a line without waiting for it.

/// Ask for the cache line holding `r`. A hint with no effect on results.
#[inline(always)]
pub(crate) fn line<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    safe_arch::prefetch_t0(r);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}
