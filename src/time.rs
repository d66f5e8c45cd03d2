//! Packet time. The meter never reads a clock: every timestamp comes from a capture header.

use std::fmt;

/// Nanoseconds since the Unix epoch, as read from a pcap/pcapng packet header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_nanos(ns: u64) -> Self {
        Timestamp(ns)
    }
    pub const fn from_micros(us: u64) -> Self {
        Timestamp(us.saturating_mul(1_000))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms.saturating_mul(1_000_000))
    }
    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s.saturating_mul(1_000_000_000))
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
    pub const fn micros(self) -> u64 {
        self.0 / 1_000
    }
    pub const fn millis(self) -> u64 {
        self.0 / 1_000_000
    }
    pub const fn secs(self) -> u64 {
        self.0 / 1_000_000_000
    }
    /// `self - earlier`, or zero when `earlier` is later (packet time can step back a little).
    pub const fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
    pub const fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
}

/// A span of packet time in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(s.saturating_mul(1_000_000_000))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms.saturating_mul(1_000_000))
    }
    pub const fn nanos(self) -> u64 {
        self.0
    }
    pub const fn millis(self) -> u64 {
        self.0 / 1_000_000
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 UTC with milliseconds, e.g. `2013-11-07T12:00:00.123Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.millis();
        let secs = ms / 1000;
        let (days, sod) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60,
            ms % 1000
        )
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_millis() {
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        // 2013-11-07T12:34:56.789Z = 1383827696789 ms
        assert_eq!(
            Timestamp::from_millis(1_383_827_696_789).to_string(),
            "2013-11-07T12:34:56.789Z"
        );
        // leap day
        assert_eq!(
            Timestamp::from_secs(951_782_400).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn saturating_since_never_underflows() {
        assert_eq!(Timestamp(5).saturating_since(Timestamp(9)), Duration(0));
        assert_eq!(Timestamp(9).saturating_since(Timestamp(5)), Duration(4));
    }
}
