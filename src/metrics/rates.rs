//! ipt-netflow's 1- and 5-minute rates: exponentially weighted moving averages of packets,
//! octets and flows per second, over packet time (so that a capture read from a file has
//! the rates of its traffic, not of the reading), sampled at irregular moments.
//!
//! Each sample's rate is the counts' growth over the time since the last sample; it moves
//! each average by `1 - exp(-dt / window)` of the way, as the kernel's load average does, so
//! a steady rate is reached by every window whatever the sampling.

use super::Rate;

/// The windows, in seconds, and their labels.
const WINDOWS: [(f64, &str); 2] = [(60.0, "1m"), (300.0, "5m")];
/// Samples closer together than this (in seconds of packet time) are skipped: the meter's
/// housekeeping comes every few thousand frames, and rates over a millisecond are noise.
const MIN_STEP: f64 = 1.0;

/// The averages and the last sample.
#[derive(Clone, Debug, Default)]
pub struct Rates {
    /// (time, [packets, octets, flows]) of the last sample.
    last: Option<(f64, [u64; 3])>,
    avg: [[f64; 3]; WINDOWS.len()],
}

impl Rates {
    /// Counts (packets, octets, flows) at time `t` (seconds): move the averages.
    pub fn sample(&mut self, t: f64, counts: [u64; 3]) {
        let Some((t0, c0)) = self.last else {
            self.last = Some((t, counts));
            return;
        };
        let dt = t - t0;
        if dt < MIN_STEP {
            return;
        }
        let now: [f64; 3] = std::array::from_fn(|i| counts[i].saturating_sub(c0[i]) as f64 / dt);
        for (avg, (window, _)) in self.avg.iter_mut().zip(WINDOWS) {
            let alpha = 1.0 - (-dt / window).exp();
            for (a, r) in avg.iter_mut().zip(now) {
                *a += alpha * (r - *a);
            }
        }
        self.last = Some((t, counts));
    }

    /// The averages, per window.
    pub fn rates(&self) -> Vec<Rate> {
        self.avg
            .iter()
            .zip(WINDOWS)
            .map(|(a, (_, window))| Rate {
                window,
                packets: a[0],
                bytes: a[1],
                flows: a[2],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A steady 100 packets per second: after one minute the 1-minute average has come
    /// 1 - 1/e of the way, the 5-minute one 1 - e^-0.2; after an hour both are there, however
    /// irregular the samples; a pause brings them down.
    #[test]
    fn averages_follow_a_steady_rate() {
        let mut r = Rates::default();
        let mut t = 1_000.0;
        let mut n = 0u64;
        r.sample(t, [0, 0, 0]);
        let steps: [f64; 6] = [1.0, 2.5, 1.2, 7.0, 0.5, 3.3];
        let mut i = 0;
        while t < 1_060.0 - 1e-9 {
            let dt = steps[i % steps.len()].min(1_060.0 - t);
            i += 1;
            t += dt;
            n += (dt * 100.0).round() as u64;
            r.sample(t, [n, n * 64, n / 10]);
        }
        let one = r.rates()[0];
        let five = r.rates()[1];
        assert_eq!((one.window, five.window), ("1m", "5m"));
        let want = |w: f64| 100.0 * (1.0 - (-60.0 / w).exp());
        assert!((one.packets - want(60.0)).abs() < 2.0, "{one:?}");
        assert!((five.packets - want(300.0)).abs() < 2.0, "{five:?}");
        assert!((one.bytes / one.packets - 64.0).abs() < 0.01);
        while t < 4_660.0 {
            t += 2.0;
            n += 200;
            r.sample(t, [n, n * 64, n / 10]);
        }
        for a in r.rates() {
            assert!((a.packets - 100.0).abs() < 0.5, "{a:?}");
            assert!((a.flows - 10.0).abs() < 0.5, "{a:?}");
        }
        // Ten quiet minutes.
        r.sample(t + 600.0, [n, n * 64, n / 10]);
        let [one, five] = [r.rates()[0], r.rates()[1]];
        assert!(one.packets < 0.01 && five.packets < 100.0 * (-2.0f64).exp() + 0.5);
        // Samples less than a second apart are not taken.
        let before = r.rates();
        r.sample(t + 600.5, [n + 1_000_000, 0, 0]);
        assert_eq!(r.rates(), before);
    }
}
