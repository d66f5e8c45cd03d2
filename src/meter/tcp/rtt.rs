//! Passive round-trip time: the sum of the two half-RTTs seen from the observation point.
//!
//! A segment seen going one way, and the first packet coming back that acknowledges its last
//! byte (or echoes its TSval), bracket the part of the path beyond the observation point in
//! that direction: observation point → receiver → observation point. Adding the halves of
//! both directions gives the round trip, wherever the meter sits on the path.
//!
//! Each direction has at most one ACK wait and one echo wait outstanding. A wait starts only
//! at the first packet that carries its sequence end or TSval, so nothing sent earlier can
//! satisfy it. A wait is abandoned when data before its end is sent again or fills a hole
//! (Karn's rule: the ACK could be for either copy, or was held back by the hole), and none
//! starts at a segment that follows a hole. Times are microseconds after the flow's start, so a
//! half-RTT under a millisecond (a meter next to a host) still counts.

use super::seq_before;

/// Which timestamp-echo observations may replace a direction's half-RTT.
///
/// ACK-based observations always replace it. For echoes QoF's paper keeps only observations
/// that do not increase the estimate (an echo can be late when the echoing side has nothing to
/// send), while QoF's code keeps only larger ones. The lab's ground truth decides (see the
/// `tcp_truth` test and the README).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoRule {
    /// Every echo observation replaces the half.
    Latest,
    /// An echo observation replaces the half only if not larger (the paper's rule).
    NotLarger,
}

#[derive(Clone, Copy, Debug, Default)]
struct Wait {
    /// ACK wait: the sequence number the acknowledgement must reach. Echo wait: the TSval.
    target: u32,
    since_us: u32,
}

const HALF: u8 = 1;
const ACK_ARMED: u8 = 16;
const ECHO_ARMED: u8 = 64;

/// RTT state of one biflow (`repr(C)`, for [`super::TcpTable::prefetch`]). Index 0 is the forward
/// direction, 1 the reverse; `half[d]` is the time from a packet going in direction `d` to the
/// answer coming back.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub(crate) struct RttState {
    ack_wait: [Wait; 2],
    echo_wait: [Wait; 2],
    half_us: [u32; 2],
    /// Flags, each shifted by the direction: [`HALF`] known, [`ACK_ARMED`] and
    /// [`ECHO_ARMED`] waits outstanding.
    known: u8,
    pub min_us: u32,
    /// Smoothed RTT (7/8 old + 1/8 new), QoF's "last" value and the loss-event window.
    pub smoothed_us: u32,
    pub samples: u32,
}

/// A half-RTT seen: the time from a packet going in direction `dir` to its answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Observation {
    pub us: u32,
    pub dir: u8,
    /// Answered at once: an ACK, or an echo of exactly the awaited TSval on a segment that
    /// carries new data (one the sender sent as soon as it could). An echo on a segment sent
    /// later, when the echoing side had nothing to send or its window was closed, is late.
    pub prompt: bool,
}

/// What the RTT logic needs to know about one TCP packet.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RttInput {
    pub dir: usize,
    pub now_us: u32,
    /// The ACK number, when the ACK flag is set.
    pub ack: Option<u32>,
    /// TSecr, when the timestamp option is present.
    pub tsecr: Option<u32>,
    /// The TSval, when it is newer than every earlier one of its direction (only then can an
    /// echo of it answer this packet and no earlier one).
    pub new_tsval: Option<u32>,
    pub seq: u32,
    /// The segment carried new sequence space ending at `end`.
    pub advanced: bool,
    pub end: u32,
    /// The segment left a hole before it.
    pub jumped: bool,
    /// The segment occupies sequence space (payload, SYN or FIN).
    pub occupies: bool,
}

impl RttState {
    /// Account a packet; returns the half-RTT it observed, if any (whether or not `rule` let
    /// it replace the direction's half). (Inlined into both forms of the TCP state's packet.)
    #[inline(always)]
    pub fn packet(&mut self, p: &RttInput, rule: EchoRule) -> Option<Observation> {
        let d = p.dir;
        let mut seen = None;
        let o = d ^ 1;
        // Answers to the other direction's waits. One packet may answer both; it yields one
        // observation (the ACK's).
        let mut answered = false;
        if let Some(ack) = p.ack {
            let w = self.ack_wait[o];
            if self.is(ACK_ARMED << o) && !seq_before(ack, w.target) {
                self.known &= !(ACK_ARMED << o);
                answered = true;
                let us = p.now_us.wrapping_sub(w.since_us);
                self.observe(o, us);
                seen = Some(Observation {
                    dir: o as u8,
                    us,
                    prompt: true,
                });
            }
        }
        if let Some(tsecr) = p.tsecr {
            let w = self.echo_wait[o];
            if self.is(ECHO_ARMED << o) && tsecr != 0 && !seq_before(tsecr, w.target) {
                self.known &= !(ECHO_ARMED << o);
                let obs = p.now_us.wrapping_sub(w.since_us);
                let keep =
                    !self.is(HALF << o) || rule == EchoRule::Latest || obs <= self.half_us[o];
                if !answered {
                    if keep {
                        self.observe(o, obs);
                    }
                    seen = Some(Observation {
                        dir: o as u8,
                        us: obs,
                        prompt: tsecr == w.target && p.advanced,
                    });
                }
            }
        }
        if let Some(tsval) = p.new_tsval {
            if !self.is(ECHO_ARMED << d) {
                self.known |= ECHO_ARMED << d;
                self.echo_wait[d] = Wait {
                    target: tsval,
                    since_us: p.now_us,
                };
            }
        }
        // This direction's own ACK wait.
        let armed = self.is(ACK_ARMED << d);
        if p.occupies && armed && seq_before(p.seq, self.ack_wait[d].target) {
            // Data below the awaited end was sent again, or fills a hole the receiver still
            // had: either the ACK could answer either copy (Karn), or it was held back until
            // the hole was filled. The wait would measure recovery, not the path.
            self.known &= !(ACK_ARMED << d);
        } else if p.advanced && !p.jumped && !armed {
            // (A segment after a hole is not acknowledged until the hole is filled.)
            self.known |= ACK_ARMED << d;
            self.ack_wait[d] = Wait {
                target: p.end,
                since_us: p.now_us,
            };
        }
        seen
    }

    fn is(&self, bit: u8) -> bool {
        self.known & bit != 0
    }

    /// A new half-RTT for `dir`: a new RTT sample, once both halves are known.
    #[inline(always)]
    fn observe(&mut self, dir: usize, obs_us: u32) {
        self.half_us[dir] = obs_us;
        self.known |= HALF << dir;
        if self.known & (HALF | HALF << 1) != (HALF | HALF << 1) {
            return;
        }
        let rtt = self.half_us[0].saturating_add(self.half_us[1]);
        self.min_us = if self.samples == 0 {
            rtt
        } else {
            self.min_us.min(rtt)
        };
        self.smoothed_us = if self.samples == 0 {
            rtt
        } else {
            ((u64::from(self.smoothed_us) * 7 + u64::from(rtt)) / 8) as u32
        };
        self.samples = self.samples.saturating_add(1);
    }

    /// The smoothed RTT, 0 before the first sample (loss events are then grouped by
    /// distinct times only).
    pub fn window_us(&self) -> u32 {
        self.smoothed_us
    }
}
