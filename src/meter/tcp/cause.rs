//! Why segments were sent again, and reordering, from one observation point anywhere on the
//! path (tcpFastRetransmitCount, tcpTimeoutRetransmitCount, tcpSpuriousRetransmitCount,
//! tcpReorderCount).
//!
//! Every segment the meter recognises as sent again is classified, whether it had seen the
//! first copy (a retransmission as QoF counts it) or the first copy was lost before the
//! observation point and this one fills the hole it left:
//!
//! - **Timeout** (RTO, a probe timeout, a SYN's timeout): the sender's retransmission timer
//!   restarts whenever an ACK acknowledges new data, so a timeout comes at least an RTO after
//!   the receiver's cumulative ACK last moved. Seen from the observation point, that ACK passed
//!   one half-RTT (point to sender and back) earlier still; the meter subtracts the whole
//!   minimum RTT, a bound on that half wherever it sits. Left with *q*, a segment is a
//!   timeout when *q* ≥ srtt + max(srtt/2, 100 ms): every common stack's RTO is at least srtt
//!   plus 200 ms (Linux, FreeBSD with its slop, Windows 300 ms), while a fast retransmission
//!   follows the loss by about an RTT, up to two or three when retransmissions are lost
//!   too. A segment with no duplicate or selective ACK since the ACK last moved (the meter
//!   having seen it move), more than 1.5 smoothed RTTs after it, is a probe timeout (nothing
//!   else makes a sender resend then). After a timeout the sender resends what is
//!   outstanding, go-back-N, until the receiver acknowledges what had been sent when the
//!   timer fired (RFC 6582's "recover"): those are timeouts too (Linux counts them as
//!   TCPSlowStartRetrans), and so are those still arriving less than an RTT after that ACK
//!   passed (sent before the sender read it). A repeated SYN or SYN-ACK is a timeout. Until
//!   the meter follows the receiver's ACKs (a direction's first anomaly takes the state), the
//!   receiver's highest ACK stands in for the ACK point, and the direction's last new data
//!   for when it moved; a keep-alive (the last octet again) is nothing sent again.
//! - **Fast**: every other retransmission (duplicate ACKs, SACK, RACK, a partial ACK in
//!   recovery).
//! - **Spurious** (the receiver already had the data): a segment the meter saw before that
//!   the receiver's ACK already covered when it passed; or one the receiver reports in a
//!   D-SACK block (RFC 2883), when it uses SACK (counted once if both). Without SACK, also a
//!   segment resent beyond the ACK point that the first ACK to move after a retransmission
//!   at the ACK point covers: that ACK answers the copy at the ACK point (the hole it fills
//!   is all that can move the ACK), so the receiver had the later ones before their copies
//!   came.
//! - **Reorder**: a segment that fills a hole without being a retransmission: its TSval is
//!   older than the newest seen in its direction, or (no TSval, or the same tick) it came less
//!   than half the minimum RTT after the hole opened, sooner than any retransmission can (one
//!   needs a round trip from the point: the segment after the hole to the receiver, the
//!   duplicate ACK back to the sender, the copy back to the point).
//!
//! The state lives beside the direction's loss block (taken only on an anomaly) and only when
//! these elements are asked for: the counters, the receiver's cumulative ACK and when it last
//! moved, the recovery point after a timeout, and the segments resent beyond the ACK point
//! still waiting for it to move.

use super::seq_before;

/// Timeouts need the ACK to have been still at least this long beyond the smoothed RTT (and
/// beyond half of it).
const RTO_FLOOR_US: u32 = 100_000;

/// The receiver's cumulative ACK is known ([`CauseBlock::ack`]).
const ACK_KNOWN: u8 = 1;
/// A duplicate or selective ACK came since the cumulative ACK last moved.
const FEEDBACK: u8 = 2;
/// After a timeout, until the receiver acknowledges [`CauseBlock::recover`].
const IN_LOSS: u8 = 4;
/// The receiver acknowledged `recover` at [`CauseBlock::recovered_us`]: copies still coming
/// were sent before the sender knew.
const RECOVERED: u8 = 8;
/// The cumulative ACK was seen to move since the block was taken, so [`FEEDBACK`] tells
/// whether duplicate or selective ACKs came since (a block taken at a retransmission missed
/// those before it).
const MOVED: u8 = 16;

/// What sent a segment again.
enum Timer {
    /// The retransmission timer (or the recovery that follows it).
    Rto,
    /// A probe timeout (tail loss probe).
    Probe,
    /// Not a timer: the receiver's feedback.
    None,
}

/// One direction's causes (its data; ACKs are the reverse direction's packets).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CauseBlock {
    pub fast: u32,
    pub timeout: u32,
    pub spurious: u32,
    pub reorder: u32,
    /// The receiver's highest cumulative ACK, and when it last moved (µs after the flow's
    /// start).
    ack: u32,
    ack_us: u32,
    /// The sequence number after the highest data sent when the last timeout fired, and when
    /// the receiver's ACK reached it.
    recover: u32,
    recovered_us: u32,
    /// Segments resent beyond the ACK point since it last moved (no SACK): their lowest and
    /// highest ends and their number.
    pend_lo: u32,
    pend_hi: u32,
    pend_n: u16,
    /// Spurious copies counted when they passed (already acknowledged) whose D-SACK is yet
    /// to come from a receiver that uses SACK: that D-SACK counts nothing more.
    dsack_due: u16,
    flags: u8,
}

/// An ACK from the receiver of this direction's data.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AckSeen {
    pub ack: u32,
    pub now_us: u32,
    /// No payload, SYN, FIN or RST: a duplicate ACK if it does not move.
    pub pure: bool,
    /// A SACK block above the ACK.
    pub sack_above: bool,
    /// A D-SACK block.
    pub dsack: bool,
}

/// A segment of this direction that was sent again, or filled a hole.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resent {
    pub now_us: u32,
    /// Sequence numbers of its first octet and just past its last.
    pub seq: u32,
    pub end: u32,
    /// Some octet of it was seen before.
    pub seen_before: bool,
    /// It only filled a hole, this long after the hole opened (µs).
    pub fill_age_us: Option<u32>,
    /// A repeated SYN (or SYN-ACK).
    pub syn: bool,
    /// Its TSval against the newest before it in its direction (`None` without one).
    pub tsval_order: Option<std::cmp::Ordering>,
    pub rtt_min_us: u32,
    pub srtt_us: u32,
    /// The receiver's highest ACK, if the meter tracks it (used when this block is new).
    pub peer_ack: Option<u32>,
    /// When this direction last sent new data (stands in for the ACK's last move when the
    /// receiver's ACKs were not followed).
    pub last_new_us: u32,
    /// The sequence number after the highest data seen in this direction.
    pub next_seq: u32,
    /// The receiver uses SACK (so reports duplicates itself).
    pub peer_sack: bool,
}

impl CauseBlock {
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// The receiver acknowledged up to `a.ack`.
    pub fn ack(&mut self, a: &AckSeen) {
        if !self.has(ACK_KNOWN) {
            self.flags |= ACK_KNOWN;
            self.ack = a.ack;
            self.ack_us = a.now_us;
        } else if seq_before(self.ack, a.ack) {
            if self.pend_n > 0 {
                self.spurious = self.spurious.saturating_add(self.covered(a.ack));
                self.pend_n = 0;
            }
            self.ack = a.ack;
            self.ack_us = a.now_us;
            self.flags = self.flags & !FEEDBACK | MOVED;
            if self.has(IN_LOSS) && !seq_before(a.ack, self.recover) {
                self.flags = self.flags & !IN_LOSS | RECOVERED;
                self.recovered_us = a.now_us;
            }
        } else if a.ack == self.ack && (a.pure || a.sack_above) {
            self.flags |= FEEDBACK;
        }
        // A D-SACK reports one duplicate; it counts only against a retransmission (a network
        // duplicate is reported the same way), and not again for one counted as it passed.
        if a.dsack {
            if self.dsack_due > 0 {
                self.dsack_due -= 1;
            } else if self.spurious < self.fast.saturating_add(self.timeout) {
                self.spurious += 1;
            }
        }
    }

    /// Of the segments waiting for the ACK to move, how many end at or below `ack`. They were
    /// resent back to back in ascending order (go-back-N), so their ends are spread evenly
    /// between the lowest and the highest.
    fn covered(&self, ack: u32) -> u32 {
        let n = u32::from(self.pend_n);
        if !seq_before(ack, self.pend_hi) {
            return n;
        }
        if seq_before(ack, self.pend_lo) {
            return 0;
        }
        let span = u64::from(self.pend_hi.wrapping_sub(self.pend_lo));
        let reach = u64::from(ack.wrapping_sub(self.pend_lo));
        // span > 0 here: ack lies in [pend_lo, pend_hi) (n > 0, so n - 1 does not wrap).
        (1 + reach * u64::from(n - 1) / span).min(u64::from(n)) as u32
    }

    /// Classify a segment sent again or filling a hole.
    pub fn resent(&mut self, r: &Resent) {
        if !self.has(ACK_KNOWN) {
            if let Some(ack) = r.peer_ack {
                self.flags |= ACK_KNOWN;
                self.ack = ack;
                self.ack_us = r.last_new_us;
            }
        }
        if let (Some(age), false, false) = (r.fill_age_us, r.seen_before, r.syn) {
            let original = match r.tsval_order {
                Some(std::cmp::Ordering::Less) => true,
                Some(std::cmp::Ordering::Greater) => false,
                _ => r.rtt_min_us > 0 && age < r.rtt_min_us / 2,
            };
            if original {
                self.reorder = self.reorder.saturating_add(1);
                return;
            }
        }
        match self.timer(r) {
            Timer::Rto => {
                self.timeout = self.timeout.saturating_add(1);
                self.flags = self.flags & !RECOVERED | IN_LOSS;
                self.recover = r.next_seq;
            }
            // A probe does not put the sender in the loss state.
            Timer::Probe => self.timeout = self.timeout.saturating_add(1),
            Timer::None => self.fast = self.fast.saturating_add(1),
        }
        if !r.seen_before || !self.has(ACK_KNOWN) {
            return;
        }
        if !seq_before(self.ack, r.end) {
            // Already acknowledged when it passed: the receiver had it (and will say so in a
            // D-SACK if it uses SACK).
            self.spurious = self.spurious.saturating_add(1);
            if r.peer_sack {
                self.dsack_due = self.dsack_due.saturating_add(1);
            }
        } else if !r.peer_sack && seq_before(self.ack, r.seq) {
            // Beyond the ACK point: settled when the ACK next moves.
            if self.pend_n == 0 {
                (self.pend_lo, self.pend_hi) = (r.end, r.end);
            } else {
                if seq_before(r.end, self.pend_lo) {
                    self.pend_lo = r.end;
                }
                if seq_before(self.pend_hi, r.end) {
                    self.pend_hi = r.end;
                }
            }
            self.pend_n = self.pend_n.saturating_add(1);
        }
    }

    /// Which timer, if any, sent `r`.
    fn timer(&self, r: &Resent) -> Timer {
        if r.syn || (self.has(IN_LOSS) && seq_before(r.seq, self.recover)) {
            return Timer::Rto;
        }
        // The ACK that ends the recovery passes the point up to a round trip before the
        // sender reads it (the point near the receiver): what it sent meanwhile, below the
        // recovery point, still came from the timeout.
        if self.has(RECOVERED)
            && seq_before(r.seq, self.recover)
            && r.now_us.saturating_sub(self.recovered_us) <= r.rtt_min_us.max(r.srtt_us)
        {
            return Timer::Rto;
        }
        let since = if self.has(ACK_KNOWN) {
            self.ack_us
        } else {
            r.last_new_us
        };
        let quiet = r.now_us.saturating_sub(since);
        let q = quiet.saturating_sub(r.rtt_min_us);
        let srtt = r.srtt_us;
        if q >= srtt.saturating_add((srtt / 2).max(RTO_FLOOR_US)) {
            return Timer::Rto;
        }
        // A probe: nothing from the receiver asked for it.
        if self.has(MOVED)
            && !self.has(FEEDBACK)
            && srtt > 0
            && u64::from(quiet) * 2 >= u64::from(srtt.max(r.rtt_min_us)) * 3
        {
            return Timer::Probe;
        }
        Timer::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resent(now_us: u32, seq: u32) -> Resent {
        Resent {
            now_us,
            seq,
            end: seq + 100,
            seen_before: true,
            fill_age_us: None,
            syn: false,
            tsval_order: None,
            rtt_min_us: 20_000,
            srtt_us: 20_000,
            peer_ack: None,
            last_new_us: now_us,
            next_seq: seq + 1000,
            peer_sack: true,
        }
    }

    fn ack(b: &mut CauseBlock, now_us: u32, ack: u32, pure: bool) {
        b.ack(&AckSeen {
            ack,
            now_us,
            pure,
            sack_above: false,
            dsack: false,
        });
    }

    #[test]
    fn a_retransmission_after_duplicate_acks_is_fast_one_after_silence_a_timeout() {
        let mut b = CauseBlock::default();
        ack(&mut b, 1_000, 500, true);
        ack(&mut b, 2_000, 500, true); // duplicate: feedback
        b.resent(&resent(25_000, 500));
        assert_eq!((b.fast, b.timeout), (1, 0));
        // 300 ms without the ACK moving: an RTO.
        b.resent(&resent(301_000, 500));
        assert_eq!((b.fast, b.timeout), (1, 1));
        // Go-back-N after the timeout, until the ACK reaches the recovery point (1500).
        b.resent(&resent(302_000, 600));
        assert_eq!(b.timeout, 2);
        ack(&mut b, 322_000, 1_500, true);
        b.resent(&resent(330_000, 1_600));
        assert_eq!((b.fast, b.timeout), (2, 2), "recovered: fast again");
    }

    #[test]
    fn no_feedback_and_a_pause_of_two_rtts_is_a_probe_timeout() {
        // Without having seen the ACK move, the meter cannot know what feedback came.
        let mut b = CauseBlock::default();
        ack(&mut b, 1_000, 500, true);
        b.resent(&resent(45_000, 500));
        assert_eq!((b.fast, b.timeout), (1, 0));
        let mut b = CauseBlock::default();
        ack(&mut b, 500, 400, true);
        ack(&mut b, 1_000, 500, true);
        b.resent(&resent(45_000, 500));
        assert_eq!((b.fast, b.timeout), (0, 1));
        // A partial ACK that moves, answered at once: fast.
        ack(&mut b, 50_000, 600, true);
        b.resent(&resent(60_000, 600));
        assert_eq!((b.fast, b.timeout), (1, 1));
    }

    #[test]
    fn a_fill_is_reordering_when_old_by_tsval_or_quick() {
        let mut b = CauseBlock::default();
        let fill = |age, order| Resent {
            seen_before: false,
            fill_age_us: Some(age),
            tsval_order: order,
            ..resent(10_000, 100)
        };
        use std::cmp::Ordering::*;
        b.resent(&fill(3_000, None));
        b.resent(&fill(30_000, Some(Less)));
        b.resent(&fill(3_000, Some(Equal)));
        assert_eq!((b.reorder, b.fast), (3, 0));
        b.resent(&fill(3_000, Some(Greater)));
        b.resent(&fill(15_000, None));
        assert_eq!((b.reorder, b.fast), (3, 2));
        // Without an RTT, only the TSval can tell.
        b.resent(&Resent {
            rtt_min_us: 0,
            ..fill(10, None)
        });
        assert_eq!((b.reorder, b.fast), (3, 3));
    }

    #[test]
    fn without_sack_spurious_is_inferred_from_the_acks() {
        let mut b = CauseBlock::default();
        let r = |now, seq| Resent {
            peer_sack: false,
            ..resent(now, seq)
        };
        ack(&mut b, 0, 1_000, false);
        // Head retransmission, then three go-back-N copies beyond the ACK point.
        for (i, seq) in [1_000, 1_100, 1_200, 1_300].into_iter().enumerate() {
            b.resent(&r(400_000 + i as u32, seq));
        }
        assert_eq!(b.spurious, 0);
        // The ACK that answers the head copy covers two of them: the receiver had those.
        ack(&mut b, 420_000, 1_300, false);
        assert_eq!(b.spurious, 2);
        // A copy of acknowledged data is spurious at once.
        b.resent(&r(421_000, 1_100));
        assert_eq!(b.spurious, 3);
        assert_eq!(b.fast + b.timeout, 5);
    }

    #[test]
    fn a_dsack_counts_only_against_a_retransmission() {
        let mut b = CauseBlock::default();
        let dsack = AckSeen {
            ack: 100,
            now_us: 1,
            pure: true,
            sack_above: false,
            dsack: true,
        };
        b.ack(&dsack);
        assert_eq!(b.spurious, 0);
        b.resent(&resent(10, 50));
        b.ack(&dsack);
        b.ack(&dsack);
        assert_eq!(b.spurious, 1);
    }

    #[test]
    fn pending_copies_count_by_their_spread() {
        let b = CauseBlock {
            pend_lo: 100,
            pend_hi: 500,
            pend_n: 5,
            ..Default::default()
        };
        assert_eq!(b.covered(99), 0);
        assert_eq!(b.covered(100), 1);
        assert_eq!(b.covered(350), 3);
        assert_eq!(b.covered(500), 5);
        // Wrapping sequence numbers.
        let w = CauseBlock {
            pend_lo: u32::MAX - 50,
            pend_hi: 149,
            pend_n: 3,
            ..Default::default()
        };
        assert_eq!(w.covered(50), 2);
    }
}
