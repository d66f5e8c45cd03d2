//! Pacing of datagrams (`--export-rate`): a token bucket counted in records per second.
//!
//! UDP has no flow control: a collector that falls behind for a moment loses what overflows
//! its socket's receive buffer, and nobody can tell. On one host the loopback delivers a
//! datagram straight into that buffer, so what decides loss is how many arrive while the
//! collector is not scheduled; qof sends at a steady rate with short bursts instead of as fast
//! as it encodes. The unit is the record because that is what a collector spends its time on
//! (decoding and storing each one); a message with no data record (templates only) costs one.

use std::time::{Duration, Instant};

/// Default `--export-rate` (defined with the other options' defaults).
pub use crate::config::DEFAULT_EXPORT_RATE as DEFAULT_RATE;

/// The longest burst at the full rate, in seconds of records: enough to absorb the sender's
/// sleeps overshooting by a scheduler tick, small next to a collector's receive buffer
/// (212,992 octets by default on Linux, about 90 datagrams).
const BURST_SECONDS: f64 = 0.004;

/// A token bucket: `rate` records per second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// A pacer for `rate` records per second; `None` for 0 (no pacing).
    pub fn new(rate: u64, now: Instant) -> Option<Pacer> {
        if rate == 0 {
            return None;
        }
        let rate = rate as f64;
        let burst = (rate * BURST_SECONDS).max(1.0);
        Some(Pacer {
            rate,
            burst,
            tokens: burst,
            last: now,
        })
    }

    /// How long to wait before the next datagram may leave (zero: now).
    pub fn delay(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens > 0.0 {
            Duration::ZERO
        } else {
            // A little past the moment the bucket turns positive, so that the wake-up finds
            // it so (float rounding).
            Duration::from_secs_f64((-self.tokens + 1e-6) / self.rate)
        }
    }

    /// A datagram of `records` data records has left. The bucket may go negative: one
    /// datagram is never split, the next waits longer instead.
    pub fn spend(&mut self, records: u32) {
        self.tokens -= f64::from(records.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_unpaced() {
        assert!(Pacer::new(0, Instant::now()).is_none());
    }

    /// Over a simulated second at 10,000 records/s in datagrams of 25 records, the pacer lets
    /// 400 datagrams through (plus its small burst), each when it says so.
    #[test]
    fn the_rate_holds_over_time() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10_000, t0).unwrap();
        let mut now = t0;
        let mut sent = 0u32;
        while now < t0 + Duration::from_secs(1) {
            let d = p.delay(now);
            if d.is_zero() {
                p.spend(25);
                sent += 1;
            } else {
                now += d;
            }
        }
        let burst_datagrams = (10_000.0 * BURST_SECONDS / 25.0).ceil() as u32 + 1;
        assert!(
            (400..=400 + burst_datagrams).contains(&sent),
            "{sent} datagrams"
        );
    }

    /// A long pause saves up no more than the burst.
    #[test]
    fn idle_time_saves_only_a_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1_000, t0).unwrap();
        let later = t0 + Duration::from_secs(60);
        let mut n = 0;
        while p.delay(later).is_zero() {
            p.spend(1);
            n += 1;
        }
        assert_eq!(n, 4, "a burst of 4 ms at 1,000 records/s");
    }
}
