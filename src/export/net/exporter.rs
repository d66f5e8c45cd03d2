//! The exporter thread: records in from the main loop, IPFIX messages out to the collector.
//!
//! Invariants:
//! * every flow record the encoder puts in a message is counted exactly once, as sent (its
//!   message was handed whole to the transport) or lost (the message overflowed the queue,
//!   was refused by the kernel, or was still queued when `--export-timeout` ran out);
//!   statistics records travel the same way but are not counted (notSentFlowTotalCount
//!   counts flows);
//! * on a stream, a message is only ever written whole into one connection; one whose write
//!   failed stays at the head of the queue and goes whole into the next connection;
//! * every connection sees the definition of a template before the first data set that uses
//!   it: before writing a queued message, the templates its data sets need and the connection
//!   has not seen are sent in a message of their own (the queued message was encoded for an
//!   earlier connection, or the message that carried the template was dropped);
//! * on a stream, sequence numbers are per connection (RFC 7011 §3.1: records sent in this
//!   session), patched into each message's header as it is written;
//! * memory is bounded: the channel (`CHANNEL_RECORDS`) plus `queue_messages` messages.

use super::{Connector, ExportTotals, NetConfig, Transport, MAX_STREAM_MESSAGE, MAX_UDP_MESSAGE};
use crate::ipfix::decode::{be16, be32};
use crate::ipfix::{Encoder, MessageSink, TemplateSpec, STATS_TEMPLATE_ID};
use crate::meter::{FlowRecord, ProcessStats};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the main loop sends the exporter thread.
// Flow records are nearly every message, so boxing the large variant would add an allocation
// per record to save space on the rare small ones.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Cmd {
    Flow(FlowRecord),
    Stats(ProcessStats),
    /// End of input: flush, drain, close.
    Finish,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub sent: AtomicU64,
    pub lost: AtomicU64,
    pub queued: AtomicU64,
    pub connections: AtomicU64,
}

impl Counters {
    pub fn totals(&self) -> ExportTotals {
        ExportTotals {
            sent: self.sent.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
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
}

/// Send a partly filled message once no record has come for this long...
const FLUSH_IDLE: Duration = Duration::from_millis(50);
/// ...and never hold a record longer than this when records trickle in.
const FLUSH_MAX_HOLD: Duration = Duration::from_secs(1);
/// Reconnection backoff: first retry at once, then this, doubling up to the maximum.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A collector that takes no byte for this long is treated as gone (its connection is
/// replaced); the main loop is held up at most this long by a collector that stops reading.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(5);
/// Longest wait when nothing is due.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// Wall-clock seconds for the message header's export time.
fn export_time() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

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

/// Statistics (options) records in one of our messages.
fn options_records(msg: &[u8], record_len: usize) -> u32 {
    let mut n = 0;
    scan(msg, |u| {
        if let SetUse::Uses(STATS_TEMPLATE_ID, len) = u {
            n += (len.saturating_sub(4) / record_len.max(1)) as u32;
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

/// One live connection.
struct Session {
    t: Box<dyn Transport>,
    /// Data records sent in this session (the next message's sequence number).
    seq: u32,
    /// Templates this session has been sent.
    known: Vec<u16>,
}

/// A stream collector (TCP, TLS, SCTP): connection, queue, backoff.
struct Stream {
    connector: Box<dyn Connector>,
    session: Option<Session>,
    queue: VecDeque<Queued>,
    cap: usize,
    backoff: Duration,
    next_attempt: Instant,
    /// When the current outage began.
    down_since: Option<Instant>,
    /// Records dropped from the queue during the current outage.
    dropped_in_outage: u64,
    write_timeout: Duration,
    peer: String,
    counters: Arc<Counters>,
    domain: u32,
}

impl Stream {
    fn queued_flows(&self) -> u64 {
        self.queue.iter().map(|q| u64::from(q.flows)).sum()
    }

    fn push(&mut self, bytes: Vec<u8>, records: u32, flows: u32) {
        self.queue.push_back(Queued {
            bytes,
            records,
            flows,
        });
        Counters::add(&self.counters.queued, 1);
    }

    fn pop(&mut self) -> Option<Queued> {
        let q = self.queue.pop_front()?;
        self.counters.queued.fetch_sub(1, Ordering::Relaxed);
        Some(q)
    }

    /// Write queued messages while there is a live session.
    fn pump(&mut self, enc: &Encoder) {
        while let (Some(front), Some(s)) = (self.queue.front_mut(), self.session.as_mut()) {
            if !s.t.alive() {
                self.lose_session("the collector closed the connection");
                return;
            }
            let now = export_time();
            let needed = templates_needed(&front.bytes, &s.known);
            if !needed.is_empty() {
                for m in template_messages(enc, &needed, self.domain, s.seq, MAX_STREAM_MESSAGE) {
                    let mut m = m;
                    patch_header(&mut m, now, s.seq);
                    if let Err(e) = s.t.send(&m) {
                        self.lose_session(&e.to_string());
                        return;
                    }
                }
                s.known.extend_from_slice(&needed);
            }
            patch_header(&mut front.bytes, now, s.seq);
            if let Err(e) = s.t.send(&front.bytes) {
                self.lose_session(&e.to_string());
                return;
            }
            s.seq = s.seq.wrapping_add(front.records);
            scan(&front.bytes, |u| {
                if let SetUse::Defines(id) = u {
                    if !s.known.contains(&id) {
                        s.known.push(id);
                    }
                }
            });
            if let Some(q) = self.pop() {
                Counters::add(&self.counters.sent, u64::from(q.flows));
            }
        }
    }

    /// The session broke: keep its unsent messages queued and reconnect.
    fn lose_session(&mut self, why: &str) {
        self.session = None;
        let now = Instant::now();
        self.down_since = Some(now);
        self.dropped_in_outage = 0;
        self.backoff = BACKOFF_FIRST;
        // Try again at once: a collector that restarted may already listen.
        self.next_attempt = now;
        tracing::warn!(
            "{}: connection lost ({why}); holding records (up to {} messages) and reconnecting",
            self.peer,
            self.cap
        );
    }

    fn try_connect(&mut self) {
        let now = Instant::now();
        match self.connector.connect() {
            Ok(mut t) => {
                if let Err(e) = t.set_write_timeout(self.write_timeout) {
                    tracing::debug!("{}: cannot set the write timeout: {e}", self.peer);
                }
                self.session = Some(Session {
                    t,
                    seq: 0,
                    known: Vec::new(),
                });
                Counters::add(&self.counters.connections, 1);
                self.backoff = BACKOFF_FIRST;
                match self.down_since.take() {
                    Some(since) => tracing::info!(
                        "{}: connected again after {:.1} s; sending {} queued messages ({} \
                         records dropped while it was unreachable)",
                        self.peer,
                        since.elapsed().as_secs_f64(),
                        self.queue.len(),
                        self.dropped_in_outage
                    ),
                    None => tracing::info!("{}: connected", self.peer),
                }
            }
            Err(e) => {
                tracing::debug!(
                    "{}: reconnection failed ({}); next try in {:.1} s",
                    self.peer,
                    e.message,
                    self.backoff.as_secs_f64()
                );
                self.next_attempt = now + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    /// Drop the oldest messages beyond the queue's capacity, counting their records.
    fn enforce_cap(&mut self) {
        while self.queue.len() > self.cap {
            let Some(q) = self.pop() else { break };
            let n = u64::from(q.flows);
            Counters::add(&self.counters.lost, n);
            if self.dropped_in_outage == 0 {
                tracing::warn!(
                    "{}: export queue full ({} messages): dropping the oldest; every lost \
                     record is counted (notSentFlowTotalCount, and the summary at exit)",
                    self.peer,
                    self.cap
                );
            }
            self.dropped_in_outage += n;
        }
    }
}

enum Link {
    Datagram {
        t: Box<dyn Transport>,
        /// The last send failed (logged once per run of failures).
        failing: bool,
        /// Flow records of the last datagram sent without error, until a refusal blames it.
        unconfirmed: u32,
    },
    Stream(Box<Stream>),
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
    drain_timeout: Duration,
    done: Vec<Vec<u8>>,
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
        Exporter {
            enc: Encoder::new(spec, cfg.observation_domain, max_message, cfg.force_biflow),
            link,
            peer,
            counters,
            refresh,
            next_refresh: refresh.map(|r| now + r),
            partial_since: None,
            last_record: now,
            drain_timeout: cfg.drain_timeout,
            done: Vec::new(),
        }
    }

    pub(crate) fn datagram(
        cfg: &NetConfig,
        spec: TemplateSpec,
        t: Box<dyn Transport>,
        peer: String,
        counters: Arc<Counters>,
    ) -> Self {
        let link = Link::Datagram {
            t,
            failing: false,
            unconfirmed: 0,
        };
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
        let connected = first.is_some();
        let mut st = Stream {
            connector,
            session: None,
            queue: VecDeque::new(),
            cap: cfg.queue_messages.max(1),
            backoff: BACKOFF_FIRST,
            next_attempt: now + BACKOFF_FIRST,
            down_since: (!connected).then_some(now),
            dropped_in_outage: 0,
            write_timeout: WRITE_STALL,
            peer: peer.clone(),
            counters: counters.clone(),
            domain: cfg.observation_domain,
        };
        if let Some(mut t) = first {
            if let Err(e) = t.set_write_timeout(WRITE_STALL) {
                tracing::debug!("{peer}: cannot set the write timeout: {e}");
            }
            st.session = Some(Session {
                t,
                seq: 0,
                known: Vec::new(),
            });
            Counters::add(&counters.connections, 1);
            tracing::info!("{peer}: connected");
        }
        let link = Link::Stream(Box::new(st));
        Self::new(cfg, spec, MAX_STREAM_MESSAGE, link, peer, counters)
    }

    /// The thread's body: until the main loop finishes or goes away.
    pub(crate) fn run(mut self, rx: Receiver<Cmd>) {
        loop {
            let now = Instant::now();
            self.timers(now);
            let wait = self.next_wake(now);
            match rx.recv_timeout(wait) {
                Ok(Cmd::Flow(rec)) => self.encode(|enc, t, out| enc.encode_flow(&rec, t, out)),
                Ok(Cmd::Stats(mut s)) => {
                    s.not_sent_flows = self.counters.lost.load(Ordering::Relaxed);
                    self.encode(|enc, t, out| enc.encode_stats(&s, t, out));
                }
                Ok(Cmd::Finish) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        self.finish();
    }

    fn next_wake(&self, now: Instant) -> Duration {
        let mut at = now + IDLE_WAKE;
        if let Some(since) = self.partial_since {
            at = at
                .min(self.last_record + FLUSH_IDLE)
                .min(since + FLUSH_MAX_HOLD);
        }
        if let Some(r) = self.next_refresh {
            at = at.min(r);
        }
        if let Link::Stream(st) = &self.link {
            if st.session.is_none() {
                at = at.min(st.next_attempt);
            }
        }
        at.saturating_duration_since(now)
            .max(Duration::from_millis(1))
    }

    /// Whatever is due: a partly filled message, a template refresh, a reconnection.
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
        if let Link::Stream(st) = &mut self.link {
            if st.session.is_none() && now >= st.next_attempt {
                st.try_connect();
                st.pump(&self.enc);
                st.enforce_cap();
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
        let after = self.enc.sequence();
        let seqs: Vec<u32> = done.iter().map(|m| be32(m, 8).unwrap_or(after)).collect();
        for (i, msg) in done.drain(..).enumerate() {
            let next = seqs.get(i + 1).copied().unwrap_or(after);
            let records = next.wrapping_sub(seqs[i]);
            self.submit(msg, records);
        }
    }

    fn submit(&mut self, msg: Vec<u8>, records: u32) {
        let flows = records.saturating_sub(options_records(&msg, self.enc.stats_record_len()));
        match &mut self.link {
            Link::Datagram {
                t,
                failing,
                unconfirmed,
            } => match t.send(&msg) {
                Ok(()) => {
                    Counters::add(&self.counters.sent, u64::from(flows));
                    *unconfirmed = flows;
                    if *failing {
                        tracing::info!("{}: sending again", self.peer);
                        *failing = false;
                    }
                }
                Err(e) => {
                    if e.kind() == io::ErrorKind::ConnectionRefused {
                        // The collector's port-unreachable answered the datagram before.
                        self.counters.blame(std::mem::take(unconfirmed));
                    }
                    Counters::add(&self.counters.lost, u64::from(flows));
                    if !*failing {
                        tracing::warn!(
                            "{}: a datagram was not sent ({e}); its records are lost and \
                             counted",
                            self.peer
                        );
                        *failing = true;
                    }
                }
            },
            Link::Stream(st) => {
                st.push(msg, records, flows);
                st.pump(&self.enc);
                st.enforce_cap();
            }
        }
    }

    /// End of input: send what the encoder holds, give a stream collector at most
    /// `drain_timeout` to take the queue, count what is left as lost, close.
    fn finish(mut self) {
        self.flush_partial();
        let st = match &mut self.link {
            Link::Stream(st) => st,
            Link::Datagram { t, unconfirmed, .. } => {
                if let Some(e) = t.last_refused() {
                    let n = std::mem::take(unconfirmed);
                    self.counters.blame(n);
                    if n > 0 {
                        tracing::warn!(
                            "{}: the collector refused the last datagram ({e}); its {n} \
                             records are lost and counted",
                            self.peer
                        );
                    }
                }
                return;
            }
        };
        let deadline = Instant::now() + self.drain_timeout;
        let stall = |now: Instant| WRITE_STALL.min(deadline.saturating_duration_since(now));
        st.write_timeout = stall(Instant::now()).max(Duration::from_millis(100));
        if let Some(s) = st.session.as_mut() {
            let _ = s.t.set_write_timeout(st.write_timeout);
        }
        loop {
            st.pump(&self.enc);
            let now = Instant::now();
            if st.queue.is_empty() || now >= deadline {
                break;
            }
            if now < st.next_attempt {
                // Waiting out the backoff: a timer, not a synchronisation.
                std::thread::sleep(st.next_attempt.min(deadline) - now);
                continue;
            }
            st.write_timeout = stall(now).max(Duration::from_millis(100));
            st.try_connect();
        }
        if !st.queue.is_empty() {
            let records = st.queued_flows();
            let messages = st.queue.len();
            while st.pop().is_some() {}
            Counters::add(&self.counters.lost, records);
            tracing::error!(
                "{}: {records} records in {messages} messages could not be delivered within \
                 {} s (--export-timeout); they are lost",
                self.peer,
                self.drain_timeout.as_secs_f64()
            );
        }
        if let Some(mut s) = st.session.take() {
            s.t.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::FlowKey;
    use std::sync::Mutex;

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

    /// A transport that records what it was sent and fails on demand.
    #[derive(Clone, Default)]
    struct Fake {
        sent: Arc<Mutex<Vec<Vec<u8>>>>,
        fail: Arc<Mutex<bool>>,
        /// The next send is refused as a UDP socket refuses it after a port-unreachable.
        refuse_next: Arc<Mutex<bool>>,
        /// The port-unreachable of the last datagram arrives after it.
        refuse_last: Arc<Mutex<bool>>,
    }

    impl Transport for Fake {
        fn send(&mut self, msg: &[u8]) -> io::Result<()> {
            if *self.fail.lock().unwrap() {
                return Err(io::Error::other("down"));
            }
            if std::mem::take(&mut *self.refuse_next.lock().unwrap()) {
                return Err(io::ErrorKind::ConnectionRefused.into());
            }
            self.sent.lock().unwrap().push(msg.to_vec());
            Ok(())
        }
        fn set_write_timeout(&mut self, _: Duration) -> io::Result<()> {
            Ok(())
        }
        fn last_refused(&mut self) -> Option<io::Error> {
            let refused = *self.refuse_last.lock().unwrap();
            refused.then(|| io::ErrorKind::ConnectionRefused.into())
        }
    }

    struct FakeConnector(Fake);

    impl Connector for FakeConnector {
        fn connect(&mut self) -> Result<Box<dyn Transport>, super::super::ConnectError> {
            if *self.0.fail.lock().unwrap() {
                return Err(super::super::ConnectError::transient("refused"));
            }
            Ok(Box::new(self.0.clone()))
        }
    }

    fn cfg(queue: usize) -> NetConfig {
        NetConfig {
            transport: crate::config::IpfixTransport::Tcp,
            host: "x".into(),
            port: 1,
            tls: None,
            template_refresh: None,
            queue_messages: queue,
            drain_timeout: Duration::ZERO,
            observation_domain: 7,
            force_biflow: false,
        }
    }

    fn record(i: u16) -> FlowRecord {
        let mut r = FlowRecord {
            key: FlowKey {
                src: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                dst: [10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                src_port: i,
                dst_port: 53,
                proto: 17,
                ip_version: 4,
                vlan: 0,
            },
            ..FlowRecord::default()
        };
        r.fwd.packets = 1;
        r.fwd.octets = 100;
        r
    }

    /// Decode everything a fake collector got, one session per connection; returns source
    /// ports of the flow records and asserts no decoder warning.
    fn decode(sessions: &[Vec<Vec<u8>>]) -> Vec<u64> {
        use crate::ipfix::decode::{Event, Message, Session};
        let mut ports = Vec::new();
        for msgs in sessions {
            let mut s = Session::new();
            for m in msgs {
                let (msg, _) = Message::parse(m, 0).unwrap();
                s.decode(&msg, |e| match e {
                    Event::Record(r) => {
                        if let Some(f) = r.fields.iter().find(|f| f.id == 7 && f.pen == 0) {
                            ports.push(crate::ipfix::decode::unsigned(f.bytes).unwrap());
                        }
                    }
                    Event::Warning(w) => panic!("collector warning: {w}"),
                    _ => {}
                })
                .unwrap();
            }
        }
        ports
    }

    /// A connection that dies and comes back: queued messages go whole into the new
    /// connection behind the templates it needs, numbered from 0; nothing is lost or doubled.
    #[test]
    fn reconnection_resends_templates_and_loses_nothing() {
        let first = Fake::default();
        let spec = TemplateSpec::qof_default();
        let counters = Arc::new(Counters::default());
        let mut ex = Exporter::stream(
            &cfg(100),
            spec,
            Box::new(FakeConnector(first.clone())),
            Some(Box::new(first.clone())),
            "test".into(),
            counters.clone(),
        );
        for i in 0..300 {
            ex.encode(|enc, t, out| enc.encode_flow(&record(i), t, out));
        }
        ex.flush_partial();
        let before = first.sent.lock().unwrap().len();
        *first.fail.lock().unwrap() = true;
        for i in 300..600 {
            ex.encode(|enc, t, out| enc.encode_flow(&record(i), t, out));
        }
        ex.flush_partial();
        assert!(counters.totals().queued > 0);
        // The collector is back on a new connection (same fake, new session state).
        let second = Fake::default();
        if let Link::Stream(st) = &mut ex.link {
            st.connector = Box::new(FakeConnector(second.clone()));
            st.next_attempt = Instant::now();
        }
        ex.timers(Instant::now());
        ex.finish();
        let one = first.sent.lock().unwrap()[..before].to_vec();
        let two = second.sent.lock().unwrap().clone();
        let mut ports = decode(&[one, two]);
        ports.sort_unstable();
        assert_eq!(ports, (0..600).collect::<Vec<u64>>());
        let t = counters.totals();
        assert_eq!((t.sent, t.lost, t.queued, t.connections), (600, 0, 0, 2));
    }

    /// A queue that overflows drops the oldest messages and counts every flow record in them;
    /// what is still queued at the end with no collector is counted too.
    #[test]
    fn overflow_and_undelivered_records_are_counted() {
        let dead = Fake::default();
        *dead.fail.lock().unwrap() = true;
        let counters = Arc::new(Counters::default());
        let mut ex = Exporter::stream(
            &cfg(2),
            TemplateSpec::qof_default(),
            Box::new(FakeConnector(dead)),
            None,
            "test".into(),
            counters.clone(),
        );
        for i in 0..1000 {
            ex.encode(|enc, t, out| enc.encode_flow(&record(i), t, out));
            if i % 100 == 0 {
                // Statistics records travel along but are not flows: not in the counts.
                let s = ProcessStats::default();
                ex.encode(|enc, t, out| enc.encode_stats(&s, t, out));
            }
        }
        let t = counters.totals();
        assert_eq!(t.queued, 2);
        assert!(t.lost > 0);
        ex.finish();
        let t = counters.totals();
        assert_eq!((t.sent, t.lost, t.queued), (0, 1000, 0));
    }

    /// An exporter over a fake datagram transport, with its counters.
    fn datagram_exporter() -> (Fake, Arc<Counters>, Exporter) {
        let udp = Fake::default();
        let counters = Arc::new(Counters::default());
        let ex = Exporter::datagram(
            &cfg(1),
            TemplateSpec::qof_default(),
            Box::new(udp.clone()),
            "test".into(),
            counters.clone(),
        );
        (udp, counters, ex)
    }

    /// Over UDP every message is a datagram within the size limit; refused datagrams count
    /// their records as lost.
    #[test]
    fn datagrams_fit_and_refusals_are_counted() {
        let (udp, counters, mut ex) = datagram_exporter();
        for i in 0..100 {
            ex.encode(|enc, t, out| enc.encode_flow(&record(i), t, out));
        }
        *udp.fail.lock().unwrap() = true;
        for i in 100..200 {
            ex.encode(|enc, t, out| enc.encode_flow(&record(i), t, out));
        }
        ex.finish();
        let sent = udp.sent.lock().unwrap().clone();
        assert!(sent.iter().all(|m| m.len() <= MAX_UDP_MESSAGE));
        let got = decode(&[sent]).len() as u64;
        let t = counters.totals();
        assert_eq!(t.sent, got);
        assert_eq!(t.sent + t.lost, 200);
    }

    /// A refused send over UDP is the kernel passing on the collector's port-unreachable for
    /// the datagram sent before: both are lost. After the last datagram the transport is
    /// asked whether it was refused. Every record is counted once, as sent or lost.
    #[test]
    fn a_refusal_loses_the_datagram_before_and_the_last_one_is_asked_about() {
        let (udp, counters, mut ex) = datagram_exporter();
        let mut n = 0;
        let mut add = |ex: &mut Exporter| {
            ex.encode(|enc, t, out| enc.encode_flow(&record(n), t, out));
            n += 1;
        };
        while udp.sent.lock().unwrap().len() < 2 {
            add(&mut ex);
        }
        *udp.refuse_next.lock().unwrap() = true;
        while *udp.refuse_next.lock().unwrap() {
            add(&mut ex);
        }
        for _ in 0..100 {
            add(&mut ex);
        }
        *udp.refuse_last.lock().unwrap() = true;
        ex.finish();
        let sent = udp.sent.lock().unwrap().clone();
        // Records in the first k datagrams (the decoder's warning of the sequence gap the
        // refused datagram left is expected here).
        let upto = |k: usize| {
            use crate::ipfix::decode::{Event, Message, Session};
            let mut s = Session::new();
            let mut records = 0u64;
            for m in &sent[..k] {
                let (msg, _) = Message::parse(m, 0).unwrap();
                s.decode(&msg, |e| {
                    records += u64::from(matches!(e, Event::Record(_)))
                })
                .unwrap();
            }
            records
        };
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
}
