//! Idle timeouts by protocol and TCP state (softflowd's `-t` names), resolved once into what
//! the flow table and the per-packet path look up.
//!
//! A flow's idle timeout follows from its key's protocol and its TCP close state, both in the
//! flow itself, so nothing per flow is stored for it: the wheel asks [`IdlePolicy::idle_ms`]
//! when a flow's slot comes round, and the per-packet path first compares the flow's idle time
//! with the smallest timeout of all ([`IdlePolicy::min_ms`]), which a live flow nearly never
//! passes, before it asks.

use super::flow::{close, Flow};
use crate::key::proto;

/// Per-protocol idle timeouts and TCP linger (see [`super::MeterConfig::timeouts`]). `None`
/// takes the general idle timeout (`idle_timeout_ms`); for `tcp_rst_ms` and `tcp_fin_ms`,
/// `None` (or 0) keeps qof's own rule: the flow ends at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProtoTimeouts {
    pub tcp_ms: Option<u64>,
    pub udp_ms: Option<u64>,
    /// ICMP and ICMPv6.
    pub icmp_ms: Option<u64>,
    /// After a RST, the flow stays this long without packets (softflowd's `tcp.rst`), and
    /// then ends with reason end-of-flow.
    pub tcp_rst_ms: Option<u64>,
    /// After both FINs are acknowledged (where qof ends a TCP connection), the flow stays this
    /// long without packets (softflowd's `tcp.fin`), and then ends with reason end-of-flow.
    pub tcp_fin_ms: Option<u64>,
    /// Idle flows are looked for every this many seconds of packet time (softflowd's
    /// `expint`): 0 and 1 mean every second. A packet arriving for a flow past its timeout
    /// ends it at once, whatever this is.
    pub expint_secs: u64,
}

/// Which timeout applies to a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Class {
    General,
    Tcp,
    Udp,
    Icmp,
    TcpRst,
    TcpFin,
}

/// The timeouts resolved, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdlePolicy {
    by_class: [u64; 6],
    /// TCP flows linger after a RST or after both FINs were acknowledged.
    linger_rst: bool,
    linger_fin: bool,
    min_ms: u64,
    max_ms: u64,
    /// Every flow has the same timeout (no per-protocol timeout, no linger: the default):
    /// nothing to look up.
    uniform: bool,
}

impl IdlePolicy {
    pub fn new(general_ms: u64, t: &ProtoTimeouts) -> IdlePolicy {
        let or_general = |v: Option<u64>| v.unwrap_or(general_ms);
        let linger = |v: Option<u64>| v.filter(|&ms| ms > 0);
        let (rst, fin) = (linger(t.tcp_rst_ms), linger(t.tcp_fin_ms));
        let by_class = [
            general_ms,
            or_general(t.tcp_ms),
            or_general(t.udp_ms),
            or_general(t.icmp_ms),
            rst.unwrap_or(general_ms),
            fin.unwrap_or(general_ms),
        ];
        let used = by_class[..4]
            .iter()
            .chain(rst.iter())
            .chain(fin.iter())
            .copied();
        IdlePolicy {
            by_class,
            linger_rst: rst.is_some(),
            linger_fin: fin.is_some(),
            min_ms: used.clone().min().unwrap_or(general_ms),
            max_ms: used.clone().max().unwrap_or(general_ms),
            uniform: rst.is_none() && fin.is_none() && used.clone().all(|ms| ms == general_ms),
        }
    }

    /// No timeout is shorter than this.
    #[inline(always)]
    pub fn min_ms(&self) -> u64 {
        self.min_ms
    }

    /// No timeout is longer than this.
    pub fn max_ms(&self) -> u64 {
        self.max_ms
    }

    fn class(&self, f: &Flow) -> Class {
        match f.key.proto {
            proto::TCP => {
                let bits = f.close_bits();
                if self.linger_rst && bits & close::RST != 0 {
                    Class::TcpRst
                } else if self.linger_fin && bits & close::BOTH_CLOSED == close::BOTH_CLOSED {
                    Class::TcpFin
                } else {
                    Class::Tcp
                }
            }
            proto::UDP => Class::Udp,
            proto::ICMP | proto::ICMPV6 => Class::Icmp,
            _ => Class::General,
        }
    }

    /// The idle timeout of `f` now.
    #[inline]
    pub fn idle_ms(&self, f: &Flow) -> u64 {
        if self.uniform {
            return self.min_ms;
        }
        self.by_class[self.class(f) as usize]
    }

    /// A TCP flow that has just seen its end (a RST, or both FINs acknowledged) stays in the
    /// table for a linger timeout instead of ending at once.
    pub fn lingers(&self, f: &Flow) -> bool {
        matches!(self.class(f), Class::TcpRst | Class::TcpFin)
    }

    /// The end reason of `f` when its idle timeout passes: a TCP connection that ended and
    /// lingered ends as it did (end of flow), any other flow idle.
    pub fn idle_reason(&self, f: &Flow) -> u8 {
        if self.lingers(f) {
            super::end_reason::END_OF_FLOW
        } else {
            super::end_reason::IDLE
        }
    }
}
