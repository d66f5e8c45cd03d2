//! The exporter thread: records in from the main loop, IPFIX messages out to the collector.
//!
//! Invariants:
//! * every flow record handed over is counted exactly once: delivered (`sent`: over TCP and
//!   TLS the last octet of its message was acknowledged by the collector's TCP; over SCTP the
//!   message was written whole; over UDP its datagram was handed to the kernel), `lost` (a
//!   refused datagram; held when the collector took nothing for `--export-timeout`), or
//!   dropped at a full queue (`overflow`, live input only). Statistics records travel the
//!   same way but are not counted (notSentFlowTotalCount counts flows);
//! * on a stream, a message is only ever written whole into one connection: the message
//!   being written stays at the head of the queue until the kernel has taken its last octet;
//!   written messages wait in `inflight` until acknowledged. When a connection breaks, the
//!   ones not acknowledged go back to the head of the queue in their order, and the
//!   connection is reset, so that its kernel does not deliver them after all;
//! * every connection sees the definition of a template before the first data set that uses
//!   it: before writing a queued message, the templates its data sets need and the connection
//!   has not seen are sent in a message of their own (the queued message was encoded for an
//!   earlier connection, or the message that carried the template was dropped);
//! * on a stream, sequence numbers are per connection (RFC 7011 §3.1: records sent in this
//!   session), patched into each message's header as it is written;
//! * memory is bounded: the channel (`CHANNEL_RECORDS`), `queue_bytes` of messages (waiting
//!   or unacknowledged) and the message being encoded;
//! * the thread never blocks on the network: sockets are non-blocking and connection
//!   attempts run in a thread of their own, so that it always takes records from a live
//!   capture. It waits only on the channel, or on the collector while the queue is full and
//!   the input can wait.

use super::{
    ConnectError, Connector, Datagrams, ExportTotals, NetConfig, QueueFull, Transport,
    MAX_STREAM_MESSAGE, MAX_UDP_MESSAGE,
};
use crate::export::export_time;
use crate::export::pace::Pacer;
use crate::ipfix::decode::{be16, be32};
use crate::ipfix::{Encoder, MessageSink, TemplateSpec};
use crate::meter::{FlowRecord, ProcessStats};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the main loop sends the exporter thread.
// Flow records are nearly every message, so boxing the large variant would add an allocation
// per record to save space on the rare small ones.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Cmd {
    Flow(FlowRecord),
    Stats(ProcessStats),
    /// A NAT event record (`--natevents`).
    Nat(crate::natevent::NatEvent),
    /// Send every template again before the next record (`qofctl send-template`).
    SendTemplates,
    /// Send the partly filled message now.
    Flush,
    /// End of input: flush, drain, close.
    Finish,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub sent: AtomicU64,
    pub lost: AtomicU64,
    pub overflow: AtomicU64,
    pub queued: AtomicU64,
    pub connections: AtomicU64,
    /// Messages handed to the kernel, and their octets.
    pub messages: AtomicU64,
    pub octets: AtomicU64,
    /// The socket's (or current session's) local address.
    local: Mutex<Option<std::net::SocketAddr>>,
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
}

impl Counters {
    pub fn totals(&self) -> ExportTotals {
        ExportTotals {
            sent: self.sent.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            overflow: self.overflow.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            octets: self.octets.load(Ordering::Relaxed),
        }
    }

    /// One message of `octets` went to the kernel.
    fn sent_message(&self, octets: usize) {
        Self::add(&self.messages, 1);
        Self::add(&self.octets, octets as u64);
    }

    pub fn set_local(&self, addr: Option<std::net::SocketAddr>) {
        match self.local.lock() {
            Ok(mut l) => *l = addr,
            Err(p) => *p.into_inner() = addr,
        }
    }

    pub fn local(&self) -> Option<std::net::SocketAddr> {
        match self.local.lock() {
            Ok(l) => *l,
            Err(p) => *p.into_inner(),
        }
    }

    /// `n` records counted as sent turned out lost (their datagram was refused).
    fn blame(&self, n: u32) {
        self.sent.fetch_sub(u64::from(n), Ordering::Relaxed);
        Self::add(&self.lost, u64::from(n));
    }

    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Why the exporter gave up, once it has.
    pub fn failure(&self) -> Option<String> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        match self.failure.lock() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn fail(&self, why: String) {
        match self.failure.lock() {
            Ok(mut f) => *f = Some(why),
            Err(p) => *p.into_inner() = Some(why),
        }
        self.failed.store(true, Ordering::Release);
    }
}

/// Send a partly filled message once no record has come for this long...
const FLUSH_IDLE: Duration = Duration::from_millis(50);
/// ...and never hold a record longer than this when records trickle in.
const FLUSH_MAX_HOLD: Duration = Duration::from_secs(1);
/// Reconnection backoff: first retry at once, then this, doubling up to the maximum (less
/// when `--export-timeout` is short: a collector back within it must be found within it).
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Live input: a connection whose collector acknowledges nothing for this long while data
/// waits is treated as gone (reset and replaced); what it had not acknowledged goes again.
pub(crate) const STALL: Duration = Duration::from_secs(5);
/// Longest wait when nothing is due.
const IDLE_WAKE: Duration = Duration::from_secs(1);
/// While written messages wait for the collector's acknowledgement: how often the kernel is
/// asked (an ioctl).
const ACK_POLL: Duration = Duration::from_millis(10);
/// While the socket takes nothing and records may still come in: how often to try again.
const BLOCKED_POLL: Duration = Duration::from_millis(5);
/// While a connection attempt runs in its thread: how often to look for its outcome.
const CONNECT_POLL: Duration = Duration::from_millis(10);
/// Commands taken from the channel in one go before the link is looked after again.
const BATCH: usize = 256;

/// Collects the messages the encoder finishes during one call.
struct Collect<'a>(&'a mut Vec<Vec<u8>>);

impl MessageSink for Collect<'_> {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.0.push(message.to_vec());
        Ok(())
    }
}

/// What a message's sets do with templates, in message order.
#[derive(Debug, PartialEq, Eq)]
enum SetUse {
    Defines(u16),
    /// A data set of this template, of this many octets (set header included).
    Uses(u16, usize),
}

/// Walks the sets of one of our messages. Malformed input ends the walk (it cannot panic);
/// our encoder never produces any.
fn scan(msg: &[u8], mut f: impl FnMut(SetUse)) {
    let mut pos = 16;
    while let (Some(id), Some(len)) = (be16(msg, pos), be16(msg, pos + 2)) {
        let len = usize::from(len);
        let end = pos + len;
        if len < 4 || end > msg.len() {
            return;
        }
        match id {
            2 | 3 => {
                // (Options) template records: id, field count, [scope count], field specifiers.
                let mut at = pos + 4;
                let head = if id == 2 { 4 } else { 6 };
                while at + head <= end {
                    let (Some(tid), Some(count)) = (be16(msg, at), be16(msg, at + 2)) else {
                        return;
                    };
                    f(SetUse::Defines(tid));
                    at += head;
                    for _ in 0..count {
                        let Some(ie) = be16(msg, at) else { return };
                        at += if ie & 0x8000 != 0 { 8 } else { 4 };
                    }
                }
            }
            id if id >= 256 => f(SetUse::Uses(id, len)),
            _ => {}
        }
        pos = end;
    }
}

/// Templates whose data sets appear in `msg` before (or without) their definition in it, and
/// that the session has not seen.
fn templates_needed(msg: &[u8], known: &[u16]) -> Vec<u16> {
    let mut defined = Vec::new();
    let mut needed = Vec::new();
    scan(msg, |u| match u {
        SetUse::Defines(id) => defined.push(id),
        SetUse::Uses(id, _) => {
            if !known.contains(&id) && !defined.contains(&id) && !needed.contains(&id) {
                needed.push(id);
            }
        }
    });
    needed
}

/// Records in one of our messages that are not flows: statistics (options) records and NAT
/// events.
fn options_records(msg: &[u8], enc: &Encoder) -> u32 {
    let mut n = 0;
    scan(msg, |u| {
        if let SetUse::Uses(id, len) = u {
            n += enc.fixed_records(id, len).unwrap_or(0);
        }
    });
    n
}

/// Messages carrying the template sets of `ids` (as many as the size limit needs).
fn template_messages(
    enc: &Encoder,
    ids: &[u16],
    domain: u32,
    sequence: u32,
    max: usize,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut msg: Vec<u8> = Vec::new();
    for set in ids.iter().filter_map(|&id| enc.template_set(id)) {
        if !msg.is_empty() && msg.len() + set.len() > max {
            out.push(std::mem::take(&mut msg));
        }
        if msg.is_empty() {
            msg.extend_from_slice(&10u16.to_be_bytes());
            msg.extend_from_slice(&[0; 6]);
            msg.extend_from_slice(&sequence.to_be_bytes());
            msg.extend_from_slice(&domain.to_be_bytes());
        }
        msg.extend_from_slice(set);
    }
    if !msg.is_empty() {
        out.push(msg);
    }
    for m in &mut out {
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
    }
    out
}

/// Set a message's export time and sequence number as it leaves.
fn patch_header(msg: &mut [u8], export_time: u32, sequence: u32) {
    if let Some(h) = msg.get_mut(4..12) {
        h[..4].copy_from_slice(&export_time.to_be_bytes());
        h[4..].copy_from_slice(&sequence.to_be_bytes());
    }
}

struct Queued {
    bytes: Vec<u8>,
    /// Data records (the sequence number's unit).
    records: u32,
    /// Flow records among them (the unit of the sent and lost counts).
    flows: u32,
}

/// Messages in order, and their octets.
#[derive(Default)]
struct Queue {
    items: VecDeque<Queued>,
    bytes: usize,
}

impl Queue {
    fn push_back(&mut self, q: Queued) {
        self.bytes += q.bytes.len();
        self.items.push_back(q);
    }

    fn push_front(&mut self, q: Queued) {
        self.bytes += q.bytes.len();
        self.items.push_front(q);
    }

    fn pop_front(&mut self) -> Option<Queued> {
        self.remove(0)
    }

    fn remove(&mut self, i: usize) -> Option<Queued> {
        let q = self.items.remove(i)?;
        self.bytes -= q.bytes.len();
        Some(q)
    }

    fn front(&self) -> Option<&Queued> {
        self.items.front()
    }

    fn len(&self) -> usize {
        self.items.len()
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn flows(&self) -> u64 {
        self.items.iter().map(|q| u64::from(q.flows)).sum()
    }

    fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }
}

/// A message written into the current connection, not yet acknowledged: it is delivered once
/// the connection's acknowledged octets reach `end`.
struct InFlight {
    msg: Queued,
    end: u64,
}

/// One live connection.
struct Session {
    t: Box<dyn Transport>,
    /// Data records sent in this session (the next message's sequence number).
    seq: u32,
    /// Templates this session has been sent.
    known: Vec<u16>,
    /// The head of the queue as it goes into this session (its template messages, then the
    /// message with this session's header values), and how much of it was taken.
    staged: Option<(Vec<u8>, usize)>,
    /// The last write took nothing: wait for the socket.
    blocked: bool,
    /// The kernel counts what the collector has not acknowledged (TCP); if not (SCTP),
    /// written counts as delivered.
    tracks_acks: bool,
    /// Octets acknowledged so far.
    acked: u64,
    /// Since when the session has had something outstanding without an acknowledgement.
    stalled_since: Instant,
}

impl Session {
    fn new(mut t: Box<dyn Transport>, now: Instant) -> Self {
        Session {
            tracks_acks: t.unacked().is_some(),
            t,
            seq: 0,
            known: Vec::new(),
            staged: None,
            blocked: false,
            acked: 0,
            stalled_since: now,
        }
    }

    /// Octets the collector's TCP has acknowledged (all written ones if the kernel cannot
    /// tell). The session's octets are the last ones written, so they are the last to be
    /// acknowledged: anything before them (a TLS handshake) is acknowledged first.
    fn acked_now(&mut self) -> u64 {
        let written = self.t.written();
        match self.t.unacked() {
            Some(u) => written.saturating_sub(u),
            None => written,
        }
    }

    /// The head message with whatever templates this session lacks in front, headers patched
    /// for this session; the session now counts them as sent.
    fn stage(&mut self, enc: &Encoder, msg: &Queued, domain: u32) -> Vec<u8> {
        let now = export_time();
        let needed = templates_needed(&msg.bytes, &self.known);
        let mut buf = Vec::with_capacity(msg.bytes.len());
        if !needed.is_empty() {
            for mut m in template_messages(enc, &needed, domain, self.seq, MAX_STREAM_MESSAGE) {
                patch_header(&mut m, now, self.seq);
                buf.extend_from_slice(&m);
            }
            self.known.extend_from_slice(&needed);
        }
        let start = buf.len();
        buf.extend_from_slice(&msg.bytes);
        patch_header(&mut buf[start..], now, self.seq);
        self.seq = self.seq.wrapping_add(msg.records);
        scan(&msg.bytes, |u| {
            if let SetUse::Defines(id) = u {
                if !self.known.contains(&id) {
                    self.known.push(id);
                }
            }
        });
        buf
    }
}

/// What one attempt to write the head of the queue came to.
enum Step {
    /// The message is in the kernel, whole.
    Written,
    /// The socket takes no more now.
    Blocked,
    /// The session broke.
    Broken(String),
}

/// Write what is staged, then push out what the transport still holds.
fn write_staged(s: &mut Session) -> Step {
    let Some((buf, pos)) = s.staged.as_mut() else {
        return Step::Written;
    };
    while *pos < buf.len() {
        match s.t.write(&buf[*pos..]) {
            Ok(0) => return Step::Blocked,
            Ok(n) => *pos += n,
            Err(e) => return Step::Broken(e.to_string()),
        }
    }
    match s.t.flush() {
        Ok(true) => Step::Written,
        Ok(false) => Step::Blocked,
        Err(e) => Step::Broken(e.to_string()),
    }
}

/// A connection attempt running in its own thread; it gives the connector back.
type Attempt = JoinHandle<(Box<dyn Connector>, Result<Box<dyn Transport>, ConnectError>)>;

/// A stream collector (TCP, TLS, SCTP): connection, queue, backoff.
struct Stream {
    /// `None` while an attempt has it.
    connector: Option<Box<dyn Connector>>,
    attempt: Option<Attempt>,
    session: Option<Session>,
    /// Messages not yet written (the head may be partly written into the session).
    pending: Queue,
    /// Messages written into the session and not yet acknowledged, oldest first.
    inflight: VecDeque<InFlight>,
    inflight_bytes: usize,
    cap: usize,
    backoff: Duration,
    backoff_max: Duration,
    next_attempt: Instant,
    /// When the current outage began.
    down_since: Option<Instant>,
    /// Records dropped from the queue during the current outage.
    dropped_in_outage: u64,
    /// Live input: replace a connection that acknowledges nothing for `stall` ([`STALL`]).
    replace_stalled: bool,
    stall: Duration,
    /// When the collector last took something (an acknowledged octet).
    progress_at: Instant,
    /// When the kernel is next asked about acknowledgements.
    next_poll: Instant,
    peer: String,
    counters: Arc<Counters>,
    domain: u32,
}

impl Stream {
    fn held_bytes(&self) -> usize {
        self.pending.bytes + self.inflight_bytes
    }

    fn held_messages(&self) -> usize {
        self.pending.len() + self.inflight.len()
    }

    fn held_flows(&self) -> u64 {
        self.pending.flows()
            + self
                .inflight
                .iter()
                .map(|f| u64::from(f.msg.flows))
                .sum::<u64>()
    }

    fn start_session(&mut self, t: Box<dyn Transport>, now: Instant) {
        self.counters.set_local(t.local_addr());
        self.session = Some(Session::new(t, now));
        Counters::add(&self.counters.connections, 1);
        match self.down_since.take() {
            Some(since) => tracing::info!(
                "{}: connected again after {:.1} s; sending {} held messages ({} records \
                 dropped while it was unreachable)",
                self.peer,
                since.elapsed().as_secs_f64(),
                self.pending.len(),
                self.dropped_in_outage
            ),
            None => tracing::info!("{}: connected", self.peer),
        }
    }

    /// Start a connection attempt when one is due; take the outcome of one that ended.
    fn poll_connect(&mut self, now: Instant) {
        if let Some(a) = &self.attempt {
            if !a.is_finished() {
                return;
            }
            let Some(a) = self.attempt.take() else { return };
            match a.join() {
                Ok((c, outcome)) => {
                    self.connector = Some(c);
                    match outcome {
                        Ok(t) => self.start_session(t, now),
                        Err(e) => {
                            tracing::debug!(
                                "{}: reconnection failed ({}); next try in {:.2} s",
                                self.peer,
                                e.message,
                                self.backoff.as_secs_f64()
                            );
                            self.next_attempt = now + self.backoff;
                            self.backoff = (self.backoff * 2).min(self.backoff_max);
                        }
                    }
                }
                Err(_) => tracing::error!(
                    "{}: a connection attempt failed unexpectedly; no more attempts",
                    self.peer
                ),
            }
            return;
        }
        if self.session.is_some() || now < self.next_attempt {
            return;
        }
        let Some(mut c) = self.connector.take() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("qof-connect".into())
            .spawn(move || {
                let outcome = c.connect();
                (c, outcome)
            });
        match spawned {
            Ok(h) => self.attempt = Some(h),
            Err(e) => tracing::error!(
                "{}: cannot start a connection attempt ({e}); no more attempts",
                self.peer
            ),
        }
    }

    /// Count the written messages the collector's TCP has acknowledged as delivered.
    fn deliver_upto(&mut self, acked: u64) {
        while self.inflight.front().is_some_and(|f| f.end <= acked) {
            let Some(f) = self.inflight.pop_front() else {
                break;
            };
            self.inflight_bytes -= f.msg.bytes.len();
            Counters::add(&self.counters.sent, u64::from(f.msg.flows));
        }
    }

    fn collect_acks(&mut self, now: Instant) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        if self.inflight.is_empty() {
            return;
        }
        let acked = s.acked_now();
        if acked > s.acked {
            s.acked = acked;
            s.stalled_since = now;
            self.progress_at = now;
        }
        self.deliver_upto(acked);
    }

    /// Write held messages while the session takes them; count what was acknowledged (the
    /// kernel is asked at most every [`ACK_POLL`], or when the cap needs it).
    fn pump(&mut self, enc: &Encoder, now: Instant) {
        let poll = now >= self.next_poll;
        if poll {
            self.next_poll = now + ACK_POLL;
            self.collect_acks(now);
        }
        loop {
            let Some(s) = self.session.as_mut() else {
                return;
            };
            let Some(head_len) = self.pending.front().map(|h| h.bytes.len()) else {
                // Nothing to write: a collector that went away is only noticed by asking.
                if poll && !self.inflight.is_empty() && !s.t.alive() {
                    self.lose_session("the collector closed the connection", now);
                }
                return;
            };
            if s.staged.is_none() {
                // Written messages are kept until acknowledged: they count against the cap.
                let over =
                    |st: &Self| !st.inflight.is_empty() && st.inflight_bytes + head_len > st.cap;
                if over(self) {
                    self.collect_acks(now);
                    if over(self) {
                        return;
                    }
                }
                let (Some(s), Some(head)) = (self.session.as_mut(), self.pending.front()) else {
                    return;
                };
                if !s.t.alive() {
                    self.lose_session("the collector closed the connection", now);
                    return;
                }
                if self.inflight.is_empty() {
                    s.stalled_since = now;
                }
                let buf = s.stage(enc, head, self.domain);
                s.staged = Some((buf, 0));
            }
            let Some(s) = self.session.as_mut() else {
                return;
            };
            match write_staged(s) {
                Step::Blocked => {
                    s.blocked = true;
                    return;
                }
                Step::Broken(why) => {
                    self.lose_session(&why, now);
                    return;
                }
                Step::Written => {}
            }
            s.blocked = false;
            s.staged = None;
            let end = s.t.written();
            let tracks = s.tracks_acks;
            let Some(msg) = self.pending.pop_front() else {
                return;
            };
            self.counters.sent_message(msg.bytes.len());
            if tracks {
                self.inflight_bytes += msg.bytes.len();
                self.inflight.push_back(InFlight { msg, end });
            } else {
                Counters::add(&self.counters.sent, u64::from(msg.flows));
                self.progress_at = now;
            }
        }
    }

    /// The session broke: what the collector acknowledged is delivered; the rest goes back
    /// to the head of the queue, in order, to go whole into the next connection.
    fn lose_session(&mut self, why: &str, now: Instant) {
        let Some(mut s) = self.session.take() else {
            return;
        };
        if s.tracks_acks {
            let acked = s.acked_now();
            if acked > s.acked {
                self.progress_at = now;
            }
            self.deliver_upto(acked);
        }
        // The kernel must not deliver later what goes again on the next connection.
        s.t.abort();
        let again = self.inflight.len();
        let records: u64 = self.inflight.iter().map(|f| u64::from(f.msg.flows)).sum();
        while let Some(f) = self.inflight.pop_back() {
            self.inflight_bytes -= f.msg.bytes.len();
            self.pending.push_front(f.msg);
        }
        self.down_since = Some(now);
        self.dropped_in_outage = 0;
        if s.acked > 0 {
            // It worked for a while: a collector that restarted may already listen again.
            self.backoff = BACKOFF_FIRST;
            self.next_attempt = now;
        } else {
            // It took nothing (it accepts and resets at once): no storm of connections.
            self.next_attempt = now + self.backoff;
            self.backoff = (self.backoff * 2).min(self.backoff_max);
        }
        tracing::warn!(
            "{}: connection lost ({why}); {again} messages ({records} records) it had not \
             acknowledged go again on the next connection; holding records (up to {} octets) \
             and reconnecting",
            self.peer,
            self.cap
        );
    }

    /// Live input: a connection that acknowledges nothing while data waits is replaced.
    fn check_stall(&mut self, now: Instant) {
        let Some(s) = &self.session else { return };
        let waiting = !self.inflight.is_empty() || s.staged.is_some();
        if self.replace_stalled && waiting && now.duration_since(s.stalled_since) >= self.stall {
            self.lose_session(
                &format!(
                    "the collector acknowledged nothing for {} s",
                    self.stall.as_secs_f64()
                ),
                now,
            );
        }
    }

    /// Drop the oldest waiting messages beyond the cap (never the one being written: the
    /// stream would be out of step). Returns the flow records dropped.
    fn enforce_cap(&mut self) -> u64 {
        let keep = usize::from(self.session.as_ref().is_some_and(|s| s.staged.is_some()));
        let mut dropped = 0;
        while self.held_bytes() > self.cap {
            let Some(q) = self.pending.remove(keep) else {
                break;
            };
            dropped += u64::from(q.flows);
        }
        if dropped > 0 {
            if self.dropped_in_outage == 0 {
                tracing::warn!(
                    "{}: export queue full ({} octets): dropping the oldest messages; every \
                     lost record is counted (notSentFlowTotalCount, and the summary at exit)",
                    self.peer,
                    self.cap
                );
            }
            self.dropped_in_outage += dropped;
        }
        dropped
    }

    /// Everything held is given up: the session is reset (its kernel must not deliver it
    /// later); returns the flow records and messages that were not delivered.
    fn give_up(&mut self) -> (u64, usize) {
        if let Some(mut s) = self.session.take() {
            if s.tracks_acks {
                let acked = s.acked_now();
                self.deliver_upto(acked);
            }
            if self.held_messages() == 0 {
                s.t.close();
            } else {
                s.t.abort();
            }
        }
        let held = (self.held_flows(), self.held_messages());
        self.pending.clear();
        self.inflight.clear();
        self.inflight_bytes = 0;
        held
    }
}

/// A datagram collector (UDP): paced sends, no connection.
struct Datagram {
    t: Box<dyn Datagrams>,
    pending: Queue,
    pacer: Option<Pacer>,
    /// The last send failed (logged once per run of failures).
    failing: bool,
    /// Flow records of the last datagram sent without error, until a refusal blames it.
    unconfirmed: u32,
    progress_at: Instant,
    dropped: u64,
}

impl Datagram {
    /// How long until the pacer lets the next waiting datagram go; `None` if none waits.
    fn delay(&mut self, now: Instant) -> Option<Duration> {
        if self.pending.is_empty() {
            return None;
        }
        Some(self.pacer.as_mut().map_or(Duration::ZERO, |p| p.delay(now)))
    }

    fn pump(&mut self, now: Instant, counters: &Counters, peer: &str) {
        while self.delay(now).is_some_and(|d| d.is_zero()) {
            let Some(q) = self.pending.pop_front() else {
                return;
            };
            if let Some(p) = &mut self.pacer {
                p.spend(q.records);
            }
            self.progress_at = now;
            match self.t.send(&q.bytes) {
                Ok(()) => {
                    counters.sent_message(q.bytes.len());
                    Counters::add(&counters.sent, u64::from(q.flows));
                    self.unconfirmed = q.flows;
                    if self.failing {
                        tracing::info!("{peer}: sending again");
                        self.failing = false;
                    }
                }
                Err(e) => {
                    if e.kind() == io::ErrorKind::ConnectionRefused {
                        // The collector's port-unreachable answered the datagram before.
                        counters.blame(std::mem::take(&mut self.unconfirmed));
                    }
                    Counters::add(&counters.lost, u64::from(q.flows));
                    if !self.failing {
                        tracing::warn!(
                            "{peer}: a datagram was not sent ({e}); its records are lost and \
                             counted"
                        );
                        self.failing = true;
                    }
                }
            }
        }
    }
}

enum Link {
    Datagram(Box<Datagram>),
    Stream(Box<Stream>),
}

impl Link {
    fn held_bytes(&self) -> usize {
        match self {
            Link::Datagram(d) => d.pending.bytes,
            Link::Stream(st) => st.held_bytes(),
        }
    }

    fn held_messages(&self) -> usize {
        match self {
            Link::Datagram(d) => d.pending.len(),
            Link::Stream(st) => st.held_messages(),
        }
    }

    fn progress_at(&self) -> Instant {
        match self {
            Link::Datagram(d) => d.progress_at,
            Link::Stream(st) => st.progress_at,
        }
    }
}

pub(crate) struct Exporter {
    enc: Encoder,
    link: Link,
    peer: String,
    counters: Arc<Counters>,
    refresh: Option<Duration>,
    next_refresh: Option<Instant>,
    /// A partly filled message has been waiting since.
    partial_since: Option<Instant>,
    last_record: Instant,
    timeout: Duration,
    cap: usize,
    when_full: QueueFull,
    /// Since when the queue has been full with the input waiting.
    blocked_since: Option<Instant>,
    /// The collector took nothing for `timeout` while the input waited: everything from now
    /// on is counted as lost.
    failed: bool,
    done: Vec<Vec<u8>>,
    /// `--template-refresh-packets`: templates again after this many messages.
    refresh_messages: Option<u32>,
    since_refresh: u32,
}

impl Exporter {
    fn new(
        cfg: &NetConfig,
        spec: TemplateSpec,
        max_message: usize,
        link: Link,
        peer: String,
        counters: Arc<Counters>,
    ) -> Self {
        let now = Instant::now();
        let refresh = cfg.template_refresh.filter(|d| !d.is_zero());
        let mut enc = Encoder::new(spec, cfg.observation_domain, max_message, cfg.force_biflow);
        if let Some(s) = &cfg.sampling {
            enc.set_sampling(s);
        }
        Exporter {
            enc,
            link,
            peer,
            counters,
            refresh,
            next_refresh: refresh.map(|r| now + r),
            partial_since: None,
            last_record: now,
            timeout: cfg.timeout,
            cap: cfg.queue_bytes.max(max_message),
            when_full: cfg.when_full,
            blocked_since: None,
            failed: false,
            done: Vec::new(),
            refresh_messages: cfg.refresh_messages,
            since_refresh: 0,
        }
    }

    pub(crate) fn datagram(
        cfg: &NetConfig,
        spec: TemplateSpec,
        t: Box<dyn Datagrams>,
        peer: String,
        counters: Arc<Counters>,
    ) -> Self {
        let now = Instant::now();
        let link = Link::Datagram(Box::new(Datagram {
            t,
            pending: Queue::default(),
            pacer: Pacer::new(cfg.rate, now),
            failing: false,
            unconfirmed: 0,
            progress_at: now,
            dropped: 0,
        }));
        Self::new(cfg, spec, MAX_UDP_MESSAGE, link, peer, counters)
    }

    pub(crate) fn stream(
        cfg: &NetConfig,
        spec: TemplateSpec,
        connector: Box<dyn Connector>,
        first: Option<Box<dyn Transport>>,
        peer: String,
        counters: Arc<Counters>,
    ) -> Self {
        let now = Instant::now();
        let mut st = Stream {
            connector: Some(connector),
            attempt: None,
            session: None,
            pending: Queue::default(),
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            cap: cfg.queue_bytes.max(MAX_STREAM_MESSAGE),
            backoff: BACKOFF_FIRST,
            backoff_max: (cfg.timeout / 4).clamp(BACKOFF_FIRST, BACKOFF_MAX),
            next_attempt: now + BACKOFF_FIRST,
            down_since: Some(now),
            dropped_in_outage: 0,
            replace_stalled: cfg.when_full == QueueFull::Drop,
            stall: STALL,
            progress_at: now,
            next_poll: now,
            peer: peer.clone(),
            counters: counters.clone(),
            domain: cfg.observation_domain,
        };
        match first {
            Some(t) => {
                st.down_since = None;
                st.start_session(t, now);
            }
            None => st.down_since = Some(now),
        }
        let link = Link::Stream(Box::new(st));
        Self::new(cfg, spec, MAX_STREAM_MESSAGE, link, peer, counters)
    }

    /// The thread's body: until the main loop finishes or goes away.
    pub(crate) fn run(mut self, rx: Receiver<Cmd>) {
        'run: loop {
            let now = Instant::now();
            self.service(now);
            self.check_blocked(now);
            if self.failed {
                // The main loop sees the failure and ends; until it says so, whatever it
                // hands over is counted as lost (and it is never left waiting on us).
                loop {
                    match rx.recv() {
                        Ok(Cmd::Flow(_)) => Counters::add(&self.counters.lost, 1),
                        Ok(Cmd::Stats(_) | Cmd::Nat(_) | Cmd::SendTemplates | Cmd::Flush) => {}
                        Ok(Cmd::Finish) | Err(_) => break 'run,
                    }
                }
            }
            let wait = self.next_wake(now);
            if !self.room() {
                // The input waits: so do we, on the collector.
                self.wait_link(wait);
                continue;
            }
            match rx.recv_timeout(wait) {
                Ok(cmd) => {
                    if !self.take(cmd) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // What is already there, without waiting, while there is room.
            for _ in 0..BATCH {
                if !self.room() {
                    break;
                }
                match rx.try_recv() {
                    Ok(cmd) => {
                        if !self.take(cmd) {
                            break 'run;
                        }
                    }
                    Err(_) => break,
                }
            }
        }
        self.finish();
    }

    /// One command from the main loop; false at the end of input.
    fn take(&mut self, cmd: Cmd) -> bool {
        match cmd {
            Cmd::Flow(rec) => self.encode(|enc, t, out| enc.encode_flow(&rec, t, out)),
            Cmd::Stats(mut s) => {
                let t = self.counters.totals();
                s.not_sent_flows = t.lost + t.overflow;
                // This collector's own totals, and the address it is sent from.
                s.exported_messages = t.messages;
                s.exported_octets = t.octets;
                (s.exporter_ipv4, s.exporter_ipv6) =
                    crate::export::sockopt::exporter_addresses(self.counters.local());
                self.encode(|enc, t, out| enc.encode_stats(&s, t, out));
            }
            Cmd::Nat(e) => self.encode(|enc, t, out| enc.encode_nat(&e, t, out)),
            Cmd::SendTemplates => self.enc.resend_templates(),
            Cmd::Flush => self.flush_partial(),
            Cmd::Finish => return false,
        }
        true
    }

    /// Whether another record may be taken now. A live input never waits: the queue drops
    /// its oldest messages instead.
    fn room(&self) -> bool {
        self.when_full == QueueFull::Drop || self.link.held_bytes() < self.cap
    }

    /// The input can wait, but not forever: a collector that takes nothing for
    /// `--export-timeout` while the queue is full ends the export.
    fn check_blocked(&mut self, now: Instant) {
        if self.failed || self.room() {
            self.blocked_since = None;
            return;
        }
        let since = *self.blocked_since.get_or_insert(now);
        let from = since.max(self.link.progress_at());
        if now.saturating_duration_since(from) > self.timeout {
            self.fail();
        }
    }

    fn fail(&mut self) {
        self.flush_partial();
        let (records, _) = self.give_up();
        Counters::add(&self.counters.lost, records);
        self.failed = true;
        self.publish();
        self.counters.fail(format!(
            "{}: the collector took nothing for {} s (--export-timeout) while the export \
             queue was full; stopped reading the input, and every record not delivered is \
             counted as lost",
            self.peer,
            self.timeout.as_secs_f64()
        ));
    }

    /// Give up everything held (the session is reset); the flow records and messages.
    fn give_up(&mut self) -> (u64, usize) {
        match &mut self.link {
            Link::Stream(st) => st.give_up(),
            Link::Datagram(d) => {
                let held = (d.pending.flows(), d.pending.len());
                d.pending.clear();
                held
            }
        }
    }

    /// Timers, connection attempts, writes, acknowledgements, the cap.
    fn service(&mut self, now: Instant) {
        self.timers(now);
        match &mut self.link {
            Link::Stream(st) => {
                st.poll_connect(now);
                st.pump(&self.enc, now);
                st.check_stall(now);
            }
            Link::Datagram(d) => d.pump(now, &self.counters, &self.peer),
        }
        self.enforce_cap();
        self.publish();
    }

    fn publish(&self) {
        self.counters
            .queued
            .store(self.link.held_messages() as u64, Ordering::Relaxed);
    }

    /// Live input: the oldest waiting messages beyond the cap are dropped and counted.
    fn enforce_cap(&mut self) {
        if self.when_full != QueueFull::Drop {
            return;
        }
        let dropped = match &mut self.link {
            Link::Stream(st) => st.enforce_cap(),
            Link::Datagram(d) => {
                let mut n = 0;
                while d.pending.bytes > self.cap {
                    let Some(q) = d.pending.pop_front() else {
                        break;
                    };
                    n += u64::from(q.flows);
                }
                if n > 0 && d.dropped == 0 {
                    tracing::warn!(
                        "{}: export queue full ({} octets) at --export-rate: dropping the \
                         oldest messages; every lost record is counted",
                        self.peer,
                        self.cap
                    );
                }
                d.dropped += n;
                n
            }
        };
        Counters::add(&self.counters.overflow, dropped);
    }

    fn next_wake(&mut self, now: Instant) -> Duration {
        let mut at = now + IDLE_WAKE;
        if let Some(since) = self.partial_since {
            at = at
                .min(self.last_record + FLUSH_IDLE)
                .min(since + FLUSH_MAX_HOLD);
        }
        if let Some(r) = self.next_refresh {
            at = at.min(r);
        }
        match &mut self.link {
            Link::Stream(st) => {
                if st.attempt.is_some() {
                    at = at.min(now + CONNECT_POLL);
                } else if st.session.is_none() && st.connector.is_some() {
                    at = at.min(st.next_attempt);
                }
                if let Some(s) = &st.session {
                    if s.blocked {
                        at = at.min(now + BLOCKED_POLL);
                    } else if !st.inflight.is_empty() {
                        at = at.min(now + ACK_POLL);
                    }
                    if st.replace_stalled && (s.blocked || !st.inflight.is_empty()) {
                        at = at.min(s.stalled_since + st.stall);
                    }
                }
            }
            Link::Datagram(d) => {
                if let Some(wait) = d.delay(now) {
                    at = at.min(now + wait);
                }
            }
        }
        if let Some(since) = self.blocked_since {
            at = at.min(since.max(self.link.progress_at()) + self.timeout);
        }
        at.saturating_duration_since(now)
            .max(Duration::from_millis(1))
    }

    /// Wait for the link: for the socket to take more if it is blocked, else a timer.
    fn wait_link(&mut self, wait: Duration) {
        if let Link::Stream(st) = &mut self.link {
            if let Some(s) = st.session.as_mut().filter(|s| s.blocked) {
                s.t.wait_writable(wait);
                return;
            }
        }
        // A timer (pacing, acknowledgements, backoff), not a synchronisation.
        std::thread::sleep(wait);
    }

    /// Whatever is due: a partly filled message, a template refresh.
    fn timers(&mut self, now: Instant) {
        if let Some(since) = self.partial_since {
            if now >= self.last_record + FLUSH_IDLE || now >= since + FLUSH_MAX_HOLD {
                self.flush_partial();
            }
        }
        if let (Some(due), Some(every)) = (self.next_refresh, self.refresh) {
            if now >= due {
                self.enc.resend_templates();
                self.next_refresh = Some(now + every);
            }
        }
    }

    fn encode(
        &mut self,
        f: impl FnOnce(&mut Encoder, u32, &mut dyn MessageSink) -> io::Result<()>,
    ) {
        let now = Instant::now();
        let mut done = std::mem::take(&mut self.done);
        // Collect cannot fail, so neither can the encoder.
        let _ = f(&mut self.enc, export_time(), &mut Collect(&mut done));
        self.last_record = now;
        if !done.is_empty() {
            self.partial_since = None;
        }
        if self.enc.pending() {
            self.partial_since.get_or_insert(now);
        }
        self.submit_all(&mut done);
        self.done = done;
    }

    fn flush_partial(&mut self) {
        self.partial_since = None;
        let mut done = std::mem::take(&mut self.done);
        let _ = self.enc.flush(export_time(), &mut Collect(&mut done));
        self.submit_all(&mut done);
        self.done = done;
    }

    /// Hand finished messages on. The records of each are known from the sequence numbers:
    /// a message's header holds the count before it, the encoder's counter the count after
    /// the last one.
    fn submit_all(&mut self, done: &mut Vec<Vec<u8>>) {
        if done.is_empty() {
            return;
        }
        let after = self.enc.sequence();
        let seqs: Vec<u32> = done.iter().map(|m| be32(m, 8).unwrap_or(after)).collect();
        for (i, msg) in done.drain(..).enumerate() {
            let next = seqs.get(i + 1).copied().unwrap_or(after);
            let records = next.wrapping_sub(seqs[i]);
            let flows = records.saturating_sub(options_records(&msg, &self.enc));
            let q = Queued {
                bytes: msg,
                records,
                flows,
            };
            if let Some(every) = self.refresh_messages {
                // (The encoder announces the templates again in front of its next record.)
                self.since_refresh += 1;
                if self.since_refresh >= every {
                    self.enc.resend_templates();
                    self.since_refresh = 0;
                }
            }
            if self.failed {
                Counters::add(&self.counters.lost, u64::from(flows));
                continue;
            }
            match &mut self.link {
                Link::Datagram(d) => d.pending.push_back(q),
                Link::Stream(st) => st.pending.push_back(q),
            }
        }
        if self.failed {
            return;
        }
        let now = Instant::now();
        match &mut self.link {
            Link::Datagram(d) => d.pump(now, &self.counters, &self.peer),
            Link::Stream(st) => st.pump(&self.enc, now),
        }
        self.enforce_cap();
        self.publish();
    }

    /// End of input: send what the encoder holds, give the collector `--export-timeout`
    /// without progress to take everything, count what is left as lost, close.
    fn finish(mut self) {
        self.flush_partial();
        if self.failed {
            return;
        }
        let start = Instant::now();
        loop {
            let now = Instant::now();
            self.service(now);
            if self.link.held_messages() == 0 {
                break;
            }
            let quiet = now.saturating_duration_since(start.max(self.link.progress_at()));
            if quiet >= self.timeout {
                break;
            }
            let wait = self.next_wake(now).min(self.timeout - quiet);
            self.wait_link(wait);
        }
        let (records, messages) = self.give_up();
        self.publish();
        if messages > 0 {
            Counters::add(&self.counters.lost, records);
            tracing::error!(
                "{}: {records} records in {messages} messages could not be delivered within \
                 {} s (--export-timeout) of the collector's last progress; they are lost",
                self.peer,
                self.timeout.as_secs_f64()
            );
        }
        if let Link::Datagram(d) = &mut self.link {
            if let Some(e) = d.t.last_refused() {
                let n = std::mem::take(&mut d.unconfirmed);
                self.counters.blame(n);
                if n > 0 {
                    tracing::warn!(
                        "{}: the collector refused the last datagram ({e}); its {n} \
                         records are lost and counted",
                        self.peer
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipfix::decode::{Event, Message, MessageReader, Session as Decoder};
    use crate::key::FlowKey;
    use std::sync::mpsc::{sync_channel, SyncSender};

    #[test]
    fn scan_finds_definitions_and_uses_in_order() {
        // Header, a template set defining 256 (one IANA field, one enterprise field), a data
        // set of 257, a data set of 256, an options template set defining 0xD000.
        let mut m = vec![0u8; 16];
        m.extend_from_slice(&[
            0, 2, 0, 20, 1, 0, 0, 2, 0, 1, 0, 4, 0x80, 1, 0, 4, 0, 0, 0, 9,
        ]);
        m.extend_from_slice(&[1, 1, 0, 4]);
        m.extend_from_slice(&[1, 0, 0, 8, 0, 0, 0, 1]);
        m.extend_from_slice(&[0, 3, 0, 14, 0xD0, 0, 0, 1, 0, 1, 0, 144, 0, 4]);
        let mut seen = Vec::new();
        scan(&m, |u| seen.push(u));
        assert_eq!(
            seen,
            [
                SetUse::Defines(256),
                SetUse::Uses(257, 4),
                SetUse::Uses(256, 8),
                SetUse::Defines(0xD000)
            ]
        );
        assert_eq!(templates_needed(&m, &[]), [257]);
        assert_eq!(templates_needed(&m, &[257]), Vec::<u16>::new());
        // Damage never panics: every truncation scans without a fault.
        for cut in 0..m.len() {
            scan(&m[..cut], |_| {});
            templates_needed(&m[..cut], &[]);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Fault injection: a fake network whose connections behave like TCP's as the exporter sees
    // them (a send buffer, acknowledgements, resets), and a collector that decodes exactly the
    // octets its TCP acknowledged.

    /// One fake TCP connection.
    struct Wire {
        /// Every octet qof's kernel took.
        bytes: Vec<u8>,
        /// Of which the collector's TCP acknowledged this many (delivered).
        acked: usize,
        /// The kernel takes at most this many unacknowledged octets (the send buffer).
        window: usize,
        /// The collector reads: whatever is written is acknowledged at once.
        reads: bool,
        /// The collector reset the connection.
        reset: bool,
        /// How qof ended it.
        ended: Option<&'static str>,
    }

    type Conn = Arc<Mutex<Wire>>;

    fn lock(c: &Conn) -> std::sync::MutexGuard<'_, Wire> {
        c.lock().unwrap()
    }

    struct FakeConn(Conn);

    impl Transport for FakeConn {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut w = lock(&self.0);
            if w.reset {
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            let room = (w.acked + w.window).saturating_sub(w.bytes.len());
            let n = buf.len().min(room);
            w.bytes.extend_from_slice(&buf[..n]);
            if w.reads {
                w.acked = w.bytes.len();
            }
            Ok(n)
        }
        fn written(&self) -> u64 {
            lock(&self.0).bytes.len() as u64
        }
        fn unacked(&mut self) -> Option<u64> {
            let w = lock(&self.0);
            Some((w.bytes.len() - w.acked) as u64)
        }
        fn wait_writable(&mut self, timeout: Duration) {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
        }
        fn alive(&mut self) -> bool {
            !lock(&self.0).reset
        }
        fn close(&mut self) {
            lock(&self.0).ended = Some("close");
        }
        fn abort(&mut self) {
            lock(&self.0).ended = Some("abort");
        }
    }

    /// The collector's side: every connection made, and how new ones behave.
    #[derive(Clone)]
    struct Net {
        conns: Arc<Mutex<Vec<Conn>>>,
        listening: Arc<AtomicBool>,
        reads: Arc<AtomicBool>,
        window: usize,
    }

    impl Net {
        fn new(window: usize) -> Self {
            Net {
                conns: Arc::default(),
                listening: Arc::new(AtomicBool::new(true)),
                reads: Arc::new(AtomicBool::new(true)),
                window,
            }
        }

        fn conn(&self, i: usize) -> Conn {
            self.conns.lock().unwrap()[i].clone()
        }

        fn count(&self) -> usize {
            self.conns.lock().unwrap().len()
        }

        /// The flow ids the collector decoded: each connection's acknowledged octets, as far
        /// as they hold whole messages (a message cut by a reset is discarded). No warning.
        fn delivered(&self) -> Vec<u32> {
            let mut ids = Vec::new();
            for c in self.conns.lock().unwrap().iter() {
                let w = lock(c);
                let mut reader = MessageReader::new(&w.bytes[..w.acked]);
                let mut session = Decoder::new();
                while let Ok(Some(msg)) = reader.next_message() {
                    session
                        .decode(&msg, |e| match e {
                            Event::Record(r) if !r.options => {
                                let f = r.fields.iter().find(|f| f.id == 8 && f.pen == 0);
                                let b = f.unwrap().bytes;
                                ids.push(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                            }
                            Event::Warning(w) => panic!("collector warning: {w:?}"),
                            _ => {}
                        })
                        .unwrap();
                }
            }
            ids
        }
    }

    impl Connector for Net {
        fn connect(&mut self) -> Result<Box<dyn Transport>, ConnectError> {
            if !self.listening.load(Ordering::Relaxed) {
                return Err(ConnectError::transient("refused"));
            }
            let c = Arc::new(Mutex::new(Wire {
                bytes: Vec::new(),
                acked: 0,
                window: self.window,
                reads: self.reads.load(Ordering::Relaxed),
                reset: false,
                ended: None,
            }));
            self.conns.lock().unwrap().push(c.clone());
            Ok(Box::new(FakeConn(c)))
        }
    }

    fn cfg(queue_bytes: usize, when_full: QueueFull, timeout_ms: u64) -> NetConfig {
        NetConfig {
            transport: crate::config::IpfixTransport::Tcp,
            host: "x".into(),
            port: 1,
            tls: None,
            template_refresh: None,
            queue_bytes,
            when_full,
            rate: 0,
            timeout: Duration::from_millis(timeout_ms),
            observation_domain: 7,
            force_biflow: false,
            sockets: Default::default(),
            refresh_messages: None,
            sampling: None,
        }
    }

    /// Flow `id`: its id is its source address.
    fn record(id: u32) -> FlowRecord {
        let mut r = FlowRecord {
            key: FlowKey {
                src: [0; 16],
                dst: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                src_port: 1000,
                dst_port: 53,
                proto: 17,
                ip_version: 4,
                vlan: 0,
                ingress: 0,
                extra: 0,
            },
            ..FlowRecord::default()
        };
        r.key.src[..4].copy_from_slice(&id.to_be_bytes());
        r.fwd.packets = 1;
        r.fwd.octets = 100;
        r
    }

    /// The exporter thread over a fake network, fed by a thread of its own (the main loop of
    /// a file: it waits while the exporter does).
    struct Run {
        net: Net,
        counters: Arc<Counters>,
        tx: Option<SyncSender<Cmd>>,
        exporter: Option<JoinHandle<()>>,
        fed: u32,
    }

    impl Run {
        fn start(cfg: &NetConfig, net: &Net, first: bool) -> Self {
            Self::with(cfg, net, first, |_| {})
        }

        fn with(
            cfg: &NetConfig,
            net: &Net,
            first: bool,
            adjust: impl FnOnce(&mut Exporter),
        ) -> Self {
            let counters = Arc::new(Counters::default());
            let mut connector = net.clone();
            let first = if first {
                Some(connector.connect().ok().unwrap())
            } else {
                None
            };
            let mut ex = Exporter::stream(
                cfg,
                TemplateSpec::qof_default(),
                Box::new(connector),
                first,
                "test".into(),
                counters.clone(),
            );
            adjust(&mut ex);
            let (tx, rx) = sync_channel(64);
            let exporter = std::thread::spawn(move || ex.run(rx));
            Run {
                net: net.clone(),
                counters,
                tx: Some(tx),
                exporter: Some(exporter),
                fed: 0,
            }
        }

        /// Hand over `n` more flows as the sink does.
        fn feed(&mut self, n: u32) {
            let tx = self.tx.as_ref().unwrap();
            for _ in 0..n {
                tx.send(Cmd::Flow(record(self.fed))).unwrap();
                self.fed += 1;
            }
        }

        fn wait_for(&self, what: &str, done: impl Fn(&Run) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !done(self) {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                std::thread::sleep(Duration::from_millis(2));
            }
        }

        /// Every flow handed over is delivered, lost, dropped at the queue, or still held.
        fn identity_holds_while_running(&self) {
            let t = self.counters.totals();
            assert!(t.sent + t.lost + t.overflow <= u64::from(self.fed), "{t:?}");
        }

        /// After the end: delivered + lost + dropped = handed over; what the exporter counts as
        /// delivered is exactly what the collector decoded, each flow once.
        fn finish(mut self) -> (ExportTotals, Vec<u32>) {
            let _ = self.tx.take().unwrap().send(Cmd::Finish);
            self.exporter.take().unwrap().join().unwrap();
            let t = self.counters.totals();
            let mut got = self.net.delivered();
            assert_eq!(t.sent + t.lost + t.overflow, u64::from(self.fed), "{t:?}");
            assert_eq!(t.sent, got.len() as u64, "{t:?}");
            let n = got.len();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), n, "a record arrived twice");
            assert!(got.iter().all(|&id| id < self.fed));
            assert_eq!(t.queued, 0);
            (t, got)
        }
    }

    /// The collector resets the connection while part of what qof wrote is unacknowledged
    /// (the message in the middle half acknowledged): what its TCP acknowledged is delivered,
    /// the rest goes again, whole, on the next connection behind the templates it needs; each
    /// record arrives once and none is lost.
    #[test]
    fn a_reset_resends_what_was_not_acknowledged() {
        let net = Net::new(1 << 20);
        net.reads.store(false, Ordering::Relaxed);
        let mut run = Run::start(&cfg(1 << 20, QueueFull::Wait, 5_000), &net, true);
        run.feed(2_000);
        run.wait_for("written messages", |r| {
            lock(&r.net.conn(0)).bytes.len() > 40_000
        });
        {
            let c = net.conn(0);
            let mut w = lock(&c);
            // Acknowledged up to the middle of a message.
            w.acked = w.bytes.len() / 2 + 7;
        }
        run.wait_for("the acknowledged records", |r| r.counters.totals().sent > 0);
        run.identity_holds_while_running();
        net.reads.store(true, Ordering::Relaxed);
        lock(&net.conn(0)).reset = true;
        run.feed(500);
        run.wait_for("the second connection", |r| r.net.count() == 2);
        run.identity_holds_while_running();
        let (t, got) = run.finish();
        assert_eq!((t.sent, t.lost, t.connections), (2_500, 0, 2));
        assert_eq!(got, (0..2_500).collect::<Vec<u32>>());
        assert_eq!(lock(&net.conn(0)).ended, Some("abort"));
        assert_eq!(lock(&net.conn(1)).ended, Some("close"));
    }

    /// A collector that accepts and never reads: its TCP acknowledges what its receive
    /// buffer holds, then nothing. Reading a file, the input waits; after the timeout the
    /// exporter gives up: the connection is reset (so that nothing counted as lost arrives
    /// later), every record is counted once, and the failure is reported.
    #[test]
    fn a_collector_that_never_reads_stops_a_waiting_input() {
        let net = Net::new(64 * 1024);
        net.reads.store(false, Ordering::Relaxed);
        let mut run = Run::start(&cfg(256 * 1024, QueueFull::Wait, 200), &net, true);
        // Its receive buffer: 20,000 octets acknowledged, never read.
        run.wait_for("the connection", |r| r.net.count() == 1);
        lock(&net.conn(0)).window = 20_000 + 64 * 1024;
        let feeder = {
            let mut r = Run {
                net: net.clone(),
                counters: run.counters.clone(),
                tx: run.tx.clone(),
                exporter: None,
                fed: 0,
            };
            std::thread::spawn(move || {
                // Blocks once the queue is full, until the exporter gives up.
                r.feed(50_000);
                r.fed
            })
        };
        run.wait_for("written octets", |r| {
            lock(&r.net.conn(0)).bytes.len() > 20_000
        });
        lock(&net.conn(0)).acked = 20_000;
        run.wait_for("the failure", |r| r.counters.failure().is_some());
        run.fed = feeder.join().unwrap();
        let why = run.counters.failure().unwrap();
        assert!(
            why.contains("took nothing for 0.2 s (--export-timeout)"),
            "{why}"
        );
        assert_eq!(lock(&net.conn(0)).ended, Some("abort"));
        let (t, got) = run.finish();
        assert!(t.sent > 0 && t.lost > 0 && t.overflow == 0, "{t:?}");
        assert_eq!(got, (0..t.sent as u32).collect::<Vec<u32>>(), "in order");
    }

    /// A live capture cannot wait: with the collector stalled, the queue overflows (oldest
    /// messages dropped and counted), the stalled connection is replaced after the stall
    /// time, and once the collector reads again everything not dropped arrives exactly once.
    #[test]
    fn a_stalled_collector_overflows_a_live_queue_and_is_replaced() {
        let net = Net::new(16 * 1024);
        net.reads.store(false, Ordering::Relaxed);
        let mut run = Run::with(&cfg(64 * 1024, QueueFull::Drop, 5_000), &net, true, |ex| {
            if let Link::Stream(st) = &mut ex.link {
                st.stall = Duration::from_millis(300);
            }
        });
        for _ in 0..40 {
            run.feed(1_000);
            std::thread::sleep(Duration::from_millis(5));
            run.identity_holds_while_running();
        }
        run.wait_for("the overflow", |r| r.counters.totals().overflow > 0);
        run.wait_for("the stalled connection replaced", |r| r.net.count() >= 2);
        assert_eq!(lock(&net.conn(0)).ended, Some("abort"));
        net.reads.store(true, Ordering::Relaxed);
        // The connection made while it still stalled is replaced too; then all flows.
        run.wait_for("a reading connection", |r| {
            r.net.conns.lock().unwrap().iter().any(|c| lock(c).reads)
        });
        run.feed(1_000);
        let (t, got) = run.finish();
        assert!(t.overflow > 0 && t.lost == 0, "{t:?}");
        assert!(got.iter().any(|&id| id >= 40_000), "the last flows arrived");
    }

    /// A collector that is not there at all: the live queue keeps the newest messages, the
    /// rest is counted as dropped, and what is held at the end is lost after the timeout.
    #[test]
    fn no_collector_counts_everything() {
        let net = Net::new(1 << 20);
        net.listening.store(false, Ordering::Relaxed);
        let mut run = Run::start(&cfg(32 * 1024, QueueFull::Drop, 100), &net, false);
        run.feed(10_000);
        run.wait_for("the overflow", |r| r.counters.totals().overflow > 0);
        run.identity_holds_while_running();
        let (t, got) = run.finish();
        assert_eq!(t.sent, 0);
        assert!(got.is_empty());
        assert!(t.lost > 0 && t.overflow > 0, "{t:?}");
    }

    /// The collector comes back after an outage, while a file's records wait: nothing is
    /// dropped; the queued messages go into the new connection behind the templates they
    /// need, numbered from 0.
    #[test]
    fn a_collector_back_within_the_timeout_loses_nothing() {
        let net = Net::new(1 << 20);
        let mut run = Run::start(&cfg(16 * 1024, QueueFull::Wait, 10_000), &net, true);
        run.feed(300);
        run.wait_for("delivery", |r| r.counters.totals().sent == 300);
        net.listening.store(false, Ordering::Relaxed);
        lock(&net.conn(0)).reset = true;
        let back = {
            let net = net.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(600));
                net.listening.store(true, Ordering::Relaxed);
            })
        };
        // Blocks while the queue is full, until the collector is back.
        run.feed(3_000);
        back.join().unwrap();
        let (t, got) = run.finish();
        assert_eq!((t.sent, t.lost, t.overflow), (3_300, 0, 0));
        assert_eq!(got, (0..3_300).collect::<Vec<u32>>());
        let second = lock(&net.conn(1)).bytes.clone();
        let (first, _) = Message::parse(&second, 0).unwrap();
        assert_eq!(
            first.header.sequence, 0,
            "numbered from 0 on the new connection"
        );
    }

    /// Datagrams sent, and when.
    type Sent = Arc<Mutex<Vec<(Vec<u8>, Instant)>>>;

    /// A datagram transport that keeps what it was sent and refuses on demand.
    #[derive(Clone, Default)]
    struct FakeUdp {
        sent: Sent,
        fail: Arc<AtomicBool>,
        /// The next send is refused as a UDP socket refuses it after a port-unreachable.
        refuse_next: Arc<AtomicBool>,
        /// The port-unreachable of the last datagram arrives after it.
        refuse_last: Arc<AtomicBool>,
    }

    impl Datagrams for FakeUdp {
        fn send(&mut self, msg: &[u8]) -> io::Result<()> {
            if self.fail.load(Ordering::Relaxed) {
                return Err(io::Error::other("down"));
            }
            if self.refuse_next.swap(false, Ordering::Relaxed) {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            self.sent
                .lock()
                .unwrap()
                .push((msg.to_vec(), Instant::now()));
            Ok(())
        }
        fn last_refused(&mut self) -> Option<io::Error> {
            self.refuse_last
                .load(Ordering::Relaxed)
                .then(|| io::ErrorKind::ConnectionRefused.into())
        }
    }

    impl FakeUdp {
        fn datagrams(&self) -> Vec<Vec<u8>> {
            self.sent
                .lock()
                .unwrap()
                .iter()
                .map(|(d, _)| d.clone())
                .collect()
        }
    }

    /// An exporter over a fake datagram transport, with its counters.
    fn datagram_exporter(rate: u64) -> (FakeUdp, Arc<Counters>, Exporter) {
        let udp = FakeUdp::default();
        let counters = Arc::new(Counters::default());
        let mut c = cfg(1 << 20, QueueFull::Wait, 1_000);
        c.rate = rate;
        let ex = Exporter::datagram(
            &c,
            TemplateSpec::qof_default(),
            Box::new(udp.clone()),
            "test".into(),
            counters.clone(),
        );
        (udp, counters, ex)
    }

    /// Records in datagrams (a sequence gap a refused datagram left is no fault here).
    fn records_in(datagrams: &[Vec<u8>]) -> u64 {
        let mut s = Decoder::new();
        let mut records = 0u64;
        for m in datagrams {
            let (msg, _) = Message::parse(m, 0).unwrap();
            s.decode(&msg, |e| {
                records += u64::from(matches!(e, Event::Record(r) if !r.options))
            })
            .unwrap();
        }
        records
    }

    /// Over UDP every message is a datagram within the size limit; refused datagrams count
    /// their records as lost.
    #[test]
    fn datagrams_fit_and_refusals_are_counted() {
        let (udp, counters, mut ex) = datagram_exporter(0);
        for i in 0..100 {
            ex.encode(|enc, t, out| enc.encode_flow(&record(i), t, out));
        }
        udp.fail.store(true, Ordering::Relaxed);
        for i in 100..200 {
            ex.encode(|enc, t, out| enc.encode_flow(&record(i), t, out));
        }
        ex.finish();
        let sent = udp.datagrams();
        assert!(sent.iter().all(|m| m.len() <= MAX_UDP_MESSAGE));
        let t = counters.totals();
        assert_eq!(t.sent, records_in(&sent));
        assert_eq!(t.sent + t.lost, 200);
    }

    /// A refused send over UDP is the kernel passing on the collector's port-unreachable for
    /// the datagram sent before: both are lost. After the last datagram the transport is
    /// asked whether it was refused. Every record is counted once, as sent or lost.
    #[test]
    fn a_refusal_loses_the_datagram_before_and_the_last_one_is_asked_about() {
        let (udp, counters, mut ex) = datagram_exporter(0);
        let mut n = 0;
        let mut add = |ex: &mut Exporter| {
            ex.encode(|enc, t, out| enc.encode_flow(&record(n), t, out));
            n += 1;
        };
        while udp.sent.lock().unwrap().len() < 2 {
            add(&mut ex);
        }
        udp.refuse_next.store(true, Ordering::Relaxed);
        while udp.refuse_next.load(Ordering::Relaxed) {
            add(&mut ex);
        }
        for _ in 0..100 {
            add(&mut ex);
        }
        udp.refuse_last.store(true, Ordering::Relaxed);
        ex.finish();
        let sent = udp.datagrams();
        let upto = |k: usize| records_in(&sent[..k]);
        let last = sent.len();
        assert!(last >= 4, "{last} datagrams");
        let second = upto(2) - upto(1);
        let final_one = upto(last) - upto(last - 1);
        assert!(second > 0 && final_one > 0);
        let t = counters.totals();
        assert_eq!(t.sent, upto(last) - second - final_one);
        assert_eq!(t.sent + t.lost, u64::from(n));
        assert!(
            t.lost > second + final_one,
            "the refused datagram's own records too"
        );
    }

    /// Paced datagrams leave at the rate asked for: 20,000 records at 100,000 records/s take
    /// about 0.2 s, none is lost, and no 10 ms holds more than the rate allows (with its
    /// burst and one datagram).
    #[test]
    fn datagrams_are_paced() {
        let (udp, counters, ex) = datagram_exporter(100_000);
        let (tx, rx) = sync_channel(1024);
        let started = Instant::now();
        let thread = std::thread::spawn(move || ex.run(rx));
        for i in 0..20_000 {
            tx.send(Cmd::Flow(record(i))).unwrap();
        }
        tx.send(Cmd::Finish).unwrap();
        thread.join().unwrap();
        let took = started.elapsed();
        let t = counters.totals();
        assert_eq!((t.sent, t.lost), (20_000, 0));
        assert!(took >= Duration::from_millis(180), "{took:?}");
        let sent = udp.sent.lock().unwrap().clone();
        let per_datagram = 20_000 / sent.len() as u64;
        for (i, (_, at)) in sent.iter().enumerate() {
            let window = sent[i..]
                .iter()
                .take_while(|(_, t)| t.duration_since(*at) < Duration::from_millis(10))
                .count() as u64;
            // 1,000 records in 10 ms, 400 of burst, and the datagram that goes negative.
            assert!(
                window * per_datagram <= 1_000 + 400 + 2 * per_datagram,
                "{window} datagrams of ~{per_datagram} records within 10 ms"
            );
        }
    }
}
