//! `nettisa`: NetTiSA flow statistics (ipfixprobe's experimental plugin), thirteen values
//! describing a flow's packet sizes and times (CESNET 8057/1020-1032). Every packet of the
//! flow counts, both directions together; a packet's size is its payload
//! ([`wire_payload`], ipfixprobe's `payload_len_wire`); times are in microseconds. A flow of
//! one packet exports none of it.
//!
//! With *n* packets of sizes *s₁..sₙ* at times *t₁..tₙ*, and the *n − 1* differences
//! *dᵢ = tᵢ − tᵢ₋₁* (0 when time went back):
//!
//! | element | value |
//! |---|---|
//! | ntsMeanPacketPayload | mean of *s* |
//! | ntsMin/MaxPacketPayload | least and greatest *s* (unsigned16) |
//! | ntsStdevPacketPayload | population standard deviation of *s* |
//! | ntsKurtosisPacketPayload | Σ(*s* − mean)⁴ / (*n* · stdev⁴); 0 when stdev is 0 |
//! | ntsRootMeanSquarePacketPayload | √(Σ*s*² / *n*) |
//! | ntsAverageDispersionPacketPayload | Σ\|*sᵢ* − *mᵢ*\| / *n*, *mᵢ* the mean of *s₁..sᵢ* |
//! | ntsMeanScaledTime | mean of *tᵢ − t₁* (0 for a time before *t₁*) |
//! | ntsMeanDifftimes | mean of *d* |
//! | ntsMin/MaxDifftimes | least and greatest *d* |
//! | ntsTimeDistribution | (Σ\|*Dᵢ* − *dᵢ*\| / (*n* − 1)) / (max *d* − min *d*), *Dᵢ* the mean of *d₂..dᵢ*; 0 when all *d* are equal |
//! | ntsSwitchingRatio | packets whose size differs from the previous packet's, / (*n* − 1) |
//!
//! Values travel as float32 (sizes' extremes as unsigned16). The two dispersions measure
//! each value against the mean of the values up to it (a running mean, as NetTiSA computes
//! them in one pass: the final mean is not known until the flow ends, and keeping every
//! value would make the state unbounded). The others are exact: the moments are kept by
//! Welford's and Pébay's one-pass updates, which lose no precision to cancellation.
//!
//! Where ipfixprobe 5.7.0 differs, qof does what each statistic's name says:
//! * time distribution: ipfixprobe divides by max difftime minus the least *packet size*;
//!   qof by max minus min difftime;
//! * stdev: ipfixprobe takes Σ*s* / *n* in integer division; qof does not round;
//! * difftimes: ipfixprobe counts the first packet as a difference of 0 (so min difftimes is
//!   always 0, and the mean is over *n* values); qof has *n* − 1 differences, the first from
//!   packet 1 to 2. A time that went back is a difference of 0 in both; ipfixprobe's mean
//!   scaled time wraps instead (an unsigned subtraction);
//! * kurtosis: ipfixprobe measures each size against the running mean but divides by the
//!   final stdev; qof uses the final mean throughout (the kurtosis of the sizes);
//! * average dispersion: ipfixprobe measures each size against the mean of the sizes
//!   *before* it, so the first counts its whole size (a deviation from 0); qof against the
//!   mean up to and including it, the same running mean the time distribution uses;
//! * switching ratio: ipfixprobe compares frame lengths (its element is about payload),
//!   counts the first packet as a change from 0, and divides by *n*; qof compares payload
//!   sizes from the second packet on, over the *n* − 1 packets that have a previous one.

use super::{wire_payload, Built, Needs, Options, PluginError, Spec};
use crate::ie::{pen, PluginKind};
use crate::meter::{ExtKey, ExtWriter, FlowPlugin, FlowSummary, Host, PacketView, Verdict};
use crate::time::Timestamp;

pub static SPEC: Spec = Spec {
    kind: PluginKind::Nettisa,
    about: "NetTiSA statistics of packet sizes and times (mean, spread, inter-packet times)",
    options: &[],
    build,
};

const fn key(id: u16) -> ExtKey {
    ExtKey {
        pen: pen::CESNET,
        id,
    }
}

const MEAN: ExtKey = key(1020);
const MIN: ExtKey = key(1021);
const MAX: ExtKey = key(1022);
const STDEV: ExtKey = key(1023);
const KURTOSIS: ExtKey = key(1024);
const RMS: ExtKey = key(1025);
const DISPERSION: ExtKey = key(1026);
const SCALED_TIME: ExtKey = key(1027);
const MEAN_DIFF: ExtKey = key(1028);
const MIN_DIFF: ExtKey = key(1029);
const MAX_DIFF: ExtKey = key(1030);
const TIME_DISTRIBUTION: ExtKey = key(1031);
const SWITCHING: ExtKey = key(1032);

fn build(_: &Options) -> Result<Built, PluginError> {
    Ok((Box::new(Host::new(Nettisa)), Needs::default()))
}

struct Nettisa;

/// Running moments of the sizes (Pébay's one-pass update of the central moments).
#[derive(Default)]
struct Moments {
    mean: f64,
    m2: f64,
    m3: f64,
    m4: f64,
}

impl Moments {
    /// Add the `n`-th value (`n` ≥ 1).
    fn add(&mut self, n: f64, x: f64) {
        let delta = x - self.mean;
        let dn = delta / n;
        let dn2 = dn * dn;
        let term = delta * dn * (n - 1.0);
        self.mean += dn;
        self.m4 += term * dn2 * (n * n - 3.0 * n + 3.0) + 6.0 * dn2 * self.m2 - 4.0 * dn * self.m3;
        self.m3 += term * dn * (n - 2.0) - 3.0 * dn * self.m2;
        self.m2 += term;
    }
}

pub struct State {
    /// Packets counted.
    n: u64,
    first: Timestamp,
    prev: Timestamp,
    sizes: Moments,
    sum_squares: f64,
    /// Σ|sᵢ − mᵢ| (running mean).
    dispersion: f64,
    min: u32,
    max: u32,
    prev_size: u32,
    switches: u64,
    /// Σ(tᵢ − t₁), µs.
    scaled: f64,
    /// Running mean of the differences, µs, and their extremes.
    diff_mean: f64,
    diff_min: f64,
    diff_max: f64,
    /// Σ|Dᵢ − dᵢ| (running mean).
    diff_dispersion: f64,
}

/// `later - earlier` in µs; 0 when time went back.
fn micros_since(later: Timestamp, earlier: Timestamp) -> f64 {
    later.saturating_since(earlier).nanos() as f64 / 1000.0
}

impl State {
    fn new(ts: Timestamp) -> State {
        State {
            n: 0,
            first: ts,
            prev: ts,
            sizes: Moments::default(),
            sum_squares: 0.0,
            dispersion: 0.0,
            min: u32::MAX,
            max: 0,
            prev_size: 0,
            switches: 0,
            scaled: 0.0,
            diff_mean: 0.0,
            diff_min: f64::INFINITY,
            diff_max: 0.0,
            diff_dispersion: 0.0,
        }
    }

    fn size(&mut self, s: u32) {
        let x = f64::from(s);
        self.sizes.add(self.n as f64, x);
        self.sum_squares += x * x;
        self.dispersion += (x - self.sizes.mean).abs();
        self.min = self.min.min(s);
        self.max = self.max.max(s);
        if self.n > 1 && s != self.prev_size {
            self.switches += 1;
        }
        self.prev_size = s;
    }

    fn time(&mut self, ts: Timestamp) {
        self.scaled += micros_since(ts, self.first);
        if self.n > 1 {
            let d = micros_since(ts, self.prev);
            self.diff_mean += (d - self.diff_mean) / (self.n - 1) as f64;
            self.diff_min = self.diff_min.min(d);
            self.diff_max = self.diff_max.max(d);
            self.diff_dispersion += (self.diff_mean - d).abs();
        }
        self.prev = ts;
    }
}

/// A float32 element's value: rounded to float32 here, so JSON prints what IPFIX carries.
fn float32(out: &mut ExtWriter<'_>, key: ExtKey, v: f64) {
    out.float(key, f64::from(v as f32));
}

impl FlowPlugin for Nettisa {
    type State = State;

    fn number(&self) -> u8 {
        PluginKind::Nettisa.number()
    }

    fn attach(&mut self, p: &PacketView<'_>) -> Option<State> {
        Some(State::new(p.ts))
    }

    fn packet(&mut self, s: &mut State, p: &PacketView<'_>) -> Verdict {
        s.n = s.n.saturating_add(1);
        s.size(wire_payload(p.pkt));
        s.time(p.ts);
        Verdict::Continue
    }

    fn export(&mut self, s: State, _: &FlowSummary, out: &mut ExtWriter<'_>) -> bool {
        if s.n < 2 {
            return false;
        }
        let n = s.n as f64;
        let stdev = (s.sizes.m2 / n).sqrt();
        let kurtosis = if s.sizes.m2 > 0.0 {
            n * s.sizes.m4 / (s.sizes.m2 * s.sizes.m2)
        } else {
            0.0
        };
        let spread = s.diff_max - s.diff_min;
        let time_distribution = if spread > 0.0 {
            s.diff_dispersion / (n - 1.0) / spread
        } else {
            0.0
        };
        float32(out, MEAN, s.sizes.mean);
        out.unsigned(MIN, u64::from(s.min.min(u16::MAX.into())));
        out.unsigned(MAX, u64::from(s.max.min(u16::MAX.into())));
        float32(out, STDEV, stdev);
        float32(out, KURTOSIS, kurtosis);
        float32(out, RMS, (s.sum_squares / n).sqrt());
        float32(out, DISPERSION, s.dispersion / n);
        float32(out, SCALED_TIME, s.scaled / n);
        float32(out, MEAN_DIFF, s.diff_mean);
        float32(out, MIN_DIFF, s.diff_min);
        float32(out, MAX_DIFF, s.diff_max);
        float32(out, TIME_DISTRIBUTION, time_distribution);
        float32(out, SWITCHING, s.switches as f64 / (n - 1.0));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Packet;
    use crate::meter::{ExtValue, Extensions};

    const ALL: [ExtKey; 13] = [
        MEAN,
        MIN,
        MAX,
        STDEV,
        KURTOSIS,
        RMS,
        DISPERSION,
        SCALED_TIME,
        MEAN_DIFF,
        MIN_DIFF,
        MAX_DIFF,
        TIME_DISTRIBUTION,
        SWITCHING,
    ];

    fn udp(payload: u32) -> Packet {
        let mut p = Packet {
            payload_len: payload,
            ip_len: payload.saturating_add(28),
            ip_header_len: 20,
            has_l4: true,
            ..Packet::default()
        };
        p.key.proto = 17;
        p
    }

    fn state(pkts: &[(u64, u32)]) -> State {
        let mut p = Nettisa;
        let mut s: Option<State> = None;
        for &(us, len) in pkts {
            let pkt = udp(len);
            let v = PacketView {
                ts: Timestamp::from_micros(us),
                pkt: &pkt,
                details: &Default::default(),
                reverse: len % 2 == 1,
                payload: &[],
                stream: &[],
            };
            let st = s.get_or_insert_with(|| p.attach(&v).unwrap());
            assert_eq!(p.packet(st, &v), Verdict::Continue);
        }
        s.unwrap()
    }

    /// Export `s`; the values by element, in [`ALL`]'s order.
    fn export(s: State) -> Option<Vec<f64>> {
        let mut ext = Extensions::default();
        let mut keys = ALL;
        keys.sort();
        let mut w = ExtWriter::new(&mut ext, &keys);
        if !Nettisa.export(s, &FlowSummary::default(), &mut w) {
            return None;
        }
        let value = |k| match ext.get(k) {
            Some(ExtValue::Float(f)) => f,
            Some(ExtValue::Unsigned(u)) => u as f64,
            v => panic!("{k:?}: {v:?}"),
        };
        Some(ALL.iter().map(|&k| value(k)).collect())
    }

    fn close(got: f64, want: f64, what: &str) {
        let tol = 1e-5 * want.abs().max(1.0);
        assert!((got - want).abs() <= tol, "{what}: {got} != {want}");
    }

    #[test]
    fn statistics_of_a_small_flow_by_hand() {
        // Sizes 10, 20, 20, 50 at 0, 1, 3, 7 ms: differences 1000, 2000, 4000 µs.
        let v = export(state(&[
            (1_000_000, 10),
            (1_001_000, 20),
            (1_003_000, 20),
            (1_007_000, 50),
        ]))
        .unwrap();
        let mean = 25.0;
        let dev = [-15.0f64, -5.0, -5.0, 25.0];
        let var = dev.iter().map(|d| d * d).sum::<f64>() / 4.0;
        let kurt = dev.iter().map(|d| d.powi(4)).sum::<f64>() / (4.0 * var * var);
        // Running means 10, 15, 16.67, 25: deviations 0, 5, 3.33, 25.
        let dispersion = (0.0 + 5.0 + 10.0 / 3.0 + 25.0) / 4.0;
        // Running means of the differences 1000, 1500, 2333.3: deviations 0, 500, 1666.7.
        let td = (0.0 + 500.0 + 5000.0 / 3.0) / 3.0 / 3000.0;
        let want = [
            mean,
            10.0,
            50.0,
            var.sqrt(),
            kurt,
            (3400.0f64 / 4.0).sqrt(),
            dispersion,
            (0.0 + 1000.0 + 3000.0 + 7000.0) / 4.0,
            7000.0 / 3.0,
            1000.0,
            4000.0,
            td,
            2.0 / 3.0,
        ];
        for (i, (g, w)) in v.iter().zip(want).enumerate() {
            close(*g, w, &format!("{:?}", ALL[i]));
        }
    }

    #[test]
    fn equal_sizes_and_steady_times_have_no_spread() {
        let pkts: Vec<(u64, u32)> = (0..50).map(|i| (i * 20_000, 1448)).collect();
        let v = export(state(&pkts)).unwrap();
        assert_eq!(v[3], 0.0, "stdev");
        assert_eq!(v[4], 0.0, "kurtosis");
        assert_eq!(v[6], 0.0, "dispersion");
        assert_eq!((v[9], v[10]), (20_000.0, 20_000.0));
        assert_eq!(v[11], 0.0, "time distribution");
        assert_eq!(v[12], 0.0, "switching");
    }

    #[test]
    fn one_packet_exports_nothing_and_two_do() {
        assert!(export(state(&[(5, 100)])).is_none());
        let v = export(state(&[(5, 100), (5, 0)])).unwrap();
        assert_eq!((v[1], v[2], v[12]), (0.0, 100.0, 1.0));
        // One difference of 0 µs: min = max, no spread.
        assert_eq!((v[9], v[10], v[11]), (0.0, 0.0, 0.0));
    }

    #[test]
    fn time_going_back_is_a_difference_of_zero() {
        let v = export(state(&[(9_000_000, 1), (8_000_000, 1), (9_500_000, 1)])).unwrap();
        assert_eq!((v[9], v[10]), (0.0, 1_500_000.0));
        close(v[7], 500_000.0 / 3.0, "scaled time");
    }

    #[test]
    fn the_one_pass_moments_match_two_passes_on_a_long_flow() {
        let sizes: Vec<u32> = (0..10_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 16) % 1500 + 1400 * (i % 7 / 6))
            .collect();
        let pkts: Vec<(u64, u32)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| (i as u64 * 1000, s))
            .collect();
        let v = export(state(&pkts)).unwrap();
        let n = sizes.len() as f64;
        let mean = sizes.iter().map(|&s| f64::from(s)).sum::<f64>() / n;
        let m = |k: i32| {
            sizes
                .iter()
                .map(|&s| (f64::from(s) - mean).powi(k))
                .sum::<f64>()
        };
        let var = m(2) / n;
        close(v[0], mean, "mean");
        close(v[3], var.sqrt(), "stdev");
        close(v[4], m(4) / (n * var * var), "kurtosis");
    }

    #[test]
    fn extreme_sizes_clamp_and_nothing_overflows() {
        let mut s = state(&[(1, 65_535), (2, 0)]);
        s.n = u64::MAX - 1;
        Nettisa.packet(
            &mut s,
            &PacketView {
                ts: Timestamp::from_micros(3),
                pkt: &udp(u32::MAX),
                details: &Default::default(),
                reverse: false,
                payload: &[],
                stream: &[],
            },
        );
        let v = export(s).unwrap();
        assert_eq!((v[1], v[2]), (0.0, 65_535.0));
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
    }
}
