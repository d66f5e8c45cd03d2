//! The metering engine of the `qof` command: one meter on the reading thread, or `--workers
//! N` meters on threads of their own, fed by the reading thread.
//!
//! With workers, the reading thread reads each frame, decodes just enough of it to pick its
//! worker (the link layer and the IP addresses: [`decode::shard_key`]), and hands a copy of it
//! to that worker in batches through a bounded queue per worker. The worker is chosen by a
//! hash of the address pair (in a fixed order) and the VLAN, the same for both directions and
//! for every fragment of a datagram, whose later fragments carry no ports. Each worker
//! decodes its frames and owns its meter (flow table, TCP state, fragments, plugins);
//! records come back through one bounded queue and are exported by the reading thread, in one
//! stream (one set of templates and sequence numbers). flowIds stay unique: worker *i* of *n*
//! numbers its flows *i* + 1, *i* + 1 + *n*, ...
//!
//! A live interface with workers (`--in int:IFACE --workers N`) is read by the workers
//! themselves: each has a socket of its own in one `PACKET_FANOUT` group (the kernel shares
//! the frames out by a symmetric hash of the flow: [`qof::capture::live::FANOUT_MODE`]), and
//! decodes and meters what its socket gives, nothing passing through the reading thread. Its
//! clock is moved by its own frames, and by the wall clock while its socket is quiet; it
//! publishes what it has read and what its socket's kernel dropped ([`WorkerCounts`]), and
//! hands its records back as above. The reading thread then only exports, and takes the
//! commands, statistics and signals ([`FanoutInput`] stands for the input there). A stalled
//! worker stalls only its own socket (the kernel drops what its ring cannot hold, counted).
//!
//! A file is read by the workers too: a classic pcap file by one thread for all of them
//! ([`crate::split`]: shared chunks, each worker given the list of its own records), or (a
//! pcapng file, `--filter`) by each worker, which meters its share and passes the others'
//! frames over ([`Feed::shared`]).
//!
//! Packet time moves every worker's clock: when it passes a second, every worker is told,
//! so a worker that gets no packets still ends its idle flows. A full worker queue makes the
//! reading thread wait, taking records back meanwhile (a worker waiting to hand records over
//! is then freed: the two waits cannot hold each other).

use crate::route::{shard_key_of, Admit, Router};
use qof::capture::{CaptureError, Frame, PacketSource};
use qof::decode::{self, DecodeConfig, Ignore, IgnoreCounts, Packet};
use qof::meter::{
    FlowIds, FlowRecord, FlowSummary, Lookahead, MemoryUse, Meter, MeterConfig, MeterStats,
};
use qof::meter::{KeyPolicy, PluginSet};
use qof::time::Timestamp;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Packets per batch handed to a worker.
const BATCH: usize = 1024;
/// Batches queued per worker.
const QUEUE_BATCHES: usize = 4;
/// Records per batch handed back.
const RECORD_BATCH: usize = 256;
/// Record batches queued from the workers, per worker.
const REPLY_BATCHES: usize = 16;

/// What the meters hold and have counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct Snapshot {
    pub stats: MeterStats,
    pub memory: MemoryUse,
    pub active: usize,
    /// Frames the workers' decoders could not use (on the reading thread, the caller counts
    /// them).
    pub ignored: IgnoreCounts,
    /// Datagrams awaiting their first fragment.
    pub frags: usize,
}

impl Snapshot {
    fn of(m: &Meter, ignored: IgnoreCounts) -> Snapshot {
        Snapshot {
            stats: m.stats(),
            memory: m.memory(),
            active: m.active_flows(),
            ignored,
            frags: m.pending_fragments(),
        }
    }

    fn merge(&mut self, o: &Snapshot) {
        self.stats.merge(&o.stats);
        self.memory.merge(&o.memory);
        self.active += o.active;
        self.ignored.merge(&o.ignored);
        self.frags += o.frags;
    }
}

/// One meter here, or several on workers.
pub enum Engine {
    One(Box<One>),
    Many(Box<Pool>),
}

impl Engine {
    /// `workers` meters (1: on this thread) with `cfg`, decoding with `decode`; `plugins`
    /// makes each one's plugin set.
    ///
    /// `feeds`: sources the workers read themselves, one each (a fanout group's sockets; then
    /// there are as many workers as feeds); empty: the reading thread feeds them.
    pub fn new(
        workers: usize,
        cfg: MeterConfig,
        decode: DecodeConfig,
        keys: KeyPolicy,
        mut plugins: impl FnMut() -> PluginSet,
        feeds: Vec<Feed>,
    ) -> std::io::Result<Engine> {
        let keys = Admit::new(keys, cfg.flow_sampler);
        if !feeds.is_empty() {
            return Pool::start(feeds.len(), cfg, decode, keys, plugins, feeds)
                .map(|p| Engine::Many(Box::new(p)));
        }
        if workers <= 1 {
            let meter = Lookahead::new(Meter::with_plugins(cfg, plugins()));
            return Ok(Engine::One(Box::new(One {
                with_details: meter.wants_details(),
                meter,
                decode,
                keys,
            })));
        }
        Pool::start(workers, cfg, decode, keys, plugins, Vec::new())
            .map(|p| Engine::Many(Box::new(p)))
    }

    /// Decode and meter `frame`; a frame that cannot be used is answered with its reason, to
    /// be counted (with workers, they count it: see [`Snapshot::ignored`]).
    #[inline(always)]
    pub fn meter_frame(&mut self, frame: &Frame<'_>) -> Result<(), Ignore> {
        match self {
            Engine::One(one) => one.meter_frame(frame),
            // (The pool's path is out of line: the one meter's stays in the reading loop.)
            Engine::Many(p) => p.push(frame),
        }
    }

    /// `f` of the next record ready, if any (after [`Engine::flush`], waiting for the
    /// workers' last records until every one has come). The record is read where it lies: a
    /// worker's is not moved out of its batch (a copy of 456 bytes, made by the thread that
    /// did not make the record).
    #[inline]
    pub fn with_next_record<R>(&mut self, f: impl FnOnce(&FlowRecord) -> R) -> Option<R> {
        match self {
            Engine::One(one) => one.meter.with_next_record(f),
            Engine::Many(p) => p.with_next_record(f),
        }
    }

    /// Whether [`Engine::with_next_record`] may have a record to give: false only when it
    /// surely has none (one meter with nothing ended), so that the per-packet loop skips the
    /// call. Workers' records arrive from other threads: always looked for.
    #[inline]
    pub fn records_waiting(&self) -> bool {
        match self {
            Engine::One(one) => one.meter.records_waiting(),
            Engine::Many(_) => true,
        }
    }

    /// Meter every packet handed over so far (before a read that may wait, and before counts
    /// are reported): its records are then ready.
    pub fn drain(&mut self) {
        match self {
            Engine::One(one) => one.meter.drain(),
            Engine::Many(p) => p.sync(),
        }
    }

    /// A read that cannot wait long comes (a regular file's next buffer): the meter's
    /// look-ahead is metered as before any read; workers are handed what is batched for them,
    /// without waiting for them.
    pub fn hand_over(&mut self) {
        match self {
            Engine::One(one) => one.meter.drain(),
            Engine::Many(p) => {
                for w in 0..p.workers.len() {
                    p.send_batch(w);
                }
            }
        }
    }

    /// Packet time has reached `now` without a packet.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        match self {
            Engine::One(one) => one.meter.handle_timeout(now),
            Engine::Many(p) => p.tick(now),
        }
    }

    /// Every flow in memory ends now (`qofctl expire-all`); their records follow.
    pub fn expire_all(&mut self) {
        match self {
            Engine::One(one) => one.meter.expire_all(),
            Engine::Many(p) => {
                // (Then every worker's records are back, ready to export.)
                p.broadcast(|| Msg::ExpireAll);
                p.sync();
            }
        }
    }

    /// Every flow in memory goes without a record (`qofctl delete-all`); how many.
    pub fn delete_all(&mut self) -> u64 {
        match self {
            Engine::One(one) => one.meter.delete_all(),
            Engine::Many(p) => p
                .ask(|| Msg::DeleteAll)
                .into_iter()
                .map(|a| match a {
                    Answer::Deleted(n) => n,
                    Answer::Flows(_) => 0,
                })
                .sum(),
        }
    }

    /// The flows in memory, oldest first (`qofctl dump-flows`).
    pub fn flows(&mut self) -> Vec<FlowSummary> {
        match self {
            Engine::One(one) => one.meter.flows(),
            Engine::Many(p) => {
                let mut all: Vec<FlowSummary> = p
                    .ask(|| Msg::Dump)
                    .into_iter()
                    .flat_map(|a| match a {
                        Answer::Flows(v) => v,
                        Answer::Deleted(_) => Vec::new(),
                    })
                    .collect();
                all.sort_unstable_by_key(|f| (f.start, f.flow_id));
                all
            }
        }
    }

    /// End of input: every flow ends.
    pub fn flush(&mut self) {
        match self {
            Engine::One(one) => one.meter.flush(),
            Engine::Many(p) => p.flush(),
        }
    }

    /// The meters' counts and memory (as of the last [`Engine::drain`] or [`Engine::flush`]
    /// for workers).
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Engine::One(one) => Snapshot::of(one.meter.meter(), IgnoreCounts::default()),
            Engine::Many(p) => p.snapshot(),
        }
    }
}

/// The meter on the reading thread.
pub struct One {
    meter: Lookahead,
    decode: DecodeConfig,
    /// Plugins read header facts the meter does not (decoded only for them).
    with_details: bool,
    /// The flow key's policy and hash sampling, when not the default.
    keys: Option<Admit>,
}

impl One {
    #[inline(always)]
    fn meter_frame(&mut self, frame: &Frame<'_>) -> Result<(), Ignore> {
        meter_frame(
            &mut self.meter,
            (&self.decode, self.keys.as_ref()),
            self.with_details,
            frame.ts,
            frame.linktype,
            frame.data,
            frame.ifindex,
        )
    }
}

/// Decode a frame into the meter's look-ahead and queue it; `ingress` is the index of the
/// interface it came in on (part of the flow key); `how`: the decoder's configuration and
/// the flow key's policy, if not the default (applied before the packet is queued).
#[inline(always)]
fn meter_frame(
    meter: &mut Lookahead,
    how: (&DecodeConfig, Option<&Admit>),
    with_details: bool,
    ts: Timestamp,
    linktype: u32,
    data: &[u8],
    ingress: u32,
) -> Result<(), Ignore> {
    let (cfg, admit) = how;
    if with_details {
        let (pkt, details) = meter.next_packet_with_details();
        decode::decode_with_details(linktype, data, cfg, pkt, details)?;
        pkt.key.ingress = ingress;
        if let Some(a) = admit {
            if !a.admit(pkt) {
                meter.pass_over();
                return Ok(());
            }
        }
    } else {
        let pkt = meter.next_packet();
        decode::decode(linktype, data, cfg, pkt)?;
        pkt.key.ingress = ingress;
        if let Some(a) = admit {
            if !a.admit(pkt) {
                meter.pass_over();
                return Ok(());
            }
        }
    }
    meter.push(ts, data);
    Ok(())
}

/// Frames for one worker: their bytes one after another in `data`; or, when its meter reads
/// nothing of a frame but its decoded summary (no plugin), the packets decoded.
#[derive(Default)]
struct Batch {
    /// (capture time, link type, start in `data`, length, ingress interface).
    frames: Vec<(Timestamp, u32, u32, u32, u32)>,
    data: Vec<u8>,
    packets: Vec<(Timestamp, Packet)>,
}

impl Batch {
    fn clear(&mut self) {
        self.frames.clear();
        self.data.clear();
        self.packets.clear();
    }

    fn len(&self) -> usize {
        self.frames.len() + self.packets.len()
    }
}

enum Msg {
    Packets(Batch),
    Tick(Timestamp),
    Sync,
    Flush,
    ExpireAll,
    DeleteAll,
    Dump,
}

enum Reply {
    /// Records, and the batch handed over, emptied, for reuse.
    Records(Vec<FlowRecord>, Option<Batch>),
    Synced(usize, Snapshot),
    Done(usize, Snapshot),
    /// A worker's answer to DeleteAll or Dump.
    Answered(Answer),
}

/// What a worker answers to a question about its flows.
enum Answer {
    Deleted(u64),
    Flows(Vec<FlowSummary>),
}

struct Worker {
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
    /// A batch being filled for it.
    batch: Batch,
}

pub struct Pool {
    workers: Vec<Worker>,
    /// The thread reading a file for every worker ([`crate::split`]), if one does.
    reader: Option<JoinHandle<()>>,
    rx: Receiver<Reply>,
    /// Records handed back, batch by batch, each with the index of its next record (read
    /// in place, one by one).
    ready: VecDeque<(Vec<FlowRecord>, usize)>,
    /// Emptied batches, for reuse.
    spare: Vec<Batch>,
    /// Emptied batches of records, for the workers to reuse ([`Replies`]).
    emptied: Arc<Mutex<Vec<Vec<FlowRecord>>>>,
    /// Which worker a frame or flow belongs to.
    router: Router,
    /// The meters read nothing of a frame but its decoded summary (no plugin): frames are
    /// decoded here, once, and the workers handed the packets decoded (else they are handed
    /// the frames, and decode them with their details).
    decoded: bool,
    /// Frames passed over here by the flow key's policy or the hash sampler (the meters'
    /// count, [`Lookahead::pass_over`], when they decode).
    passed_over: u64,
    /// Pushes since replies were last looked for (they are looked for once a batch's worth).
    unpolled: usize,
    /// The last second of packet time the workers were told of.
    tick_sec: u64,
    latest: Timestamp,
    snapshots: Vec<Snapshot>,
    /// Workers that answered the last Sync (counted wherever the answer is taken: it may come
    /// while a later worker's full queue is being waited on).
    synced: usize,
    /// Workers finished (after a flush).
    done: usize,
    /// Answers to the last question asked of every worker.
    answers: Vec<Answer>,
    flushing: bool,
    /// The workers read their own sources (their clocks are their own: no ticks).
    fed: bool,
}

impl Pool {
    fn start(
        n: usize,
        cfg: MeterConfig,
        decode: DecodeConfig,
        keys: Option<Admit>,
        mut plugins: impl FnMut() -> PluginSet,
        feeds: Vec<Feed>,
    ) -> std::io::Result<Pool> {
        let (reply_tx, rx) = mpsc::sync_channel(REPLY_BATCHES * n);
        let emptied = Arc::new(Mutex::new(Vec::new()));
        let decoded = !Lookahead::new(Meter::with_plugins(cfg, plugins())).wants_details();
        let router = Router::new(n, decode, keys.clone());
        let mut workers = Vec::with_capacity(n);
        let fed = !feeds.is_empty();
        let mut feeds = feeds;
        let splitter = feeds
            .first_mut()
            .and_then(|f| f.shared.as_mut())
            .and_then(|s| s.splitter.take());
        let reader = match splitter {
            Some(s) => {
                let r = router.clone();
                Some(
                    std::thread::Builder::new()
                        .name("qof-reader".into())
                        .spawn(move || s.run(r))?,
                )
            }
            None => None,
        };
        let mut feeds = feeds.into_iter();
        for i in 0..n {
            let set = plugins();
            let cfg = MeterConfig {
                flow_ids: FlowIds::worker(i, n),
                ..cfg
            };
            let (tx, worker_rx) = mpsc::sync_channel(QUEUE_BATCHES);
            let reply = Replies {
                queue: reply_tx.clone(),
                emptied: Arc::clone(&emptied),
            };
            let meter = Meter::with_plugins(cfg, set);
            let builder = std::thread::Builder::new().name(format!("qof-meter-{i}"));
            let k = keys.clone();
            let thread = match feeds.next() {
                Some(feed) => {
                    // (A feed that gives every frame of the input: the worker keeps its share.)
                    let share = feed.shared.is_some().then(|| router.clone());
                    builder.spawn(move || {
                        work_fed(i, meter, (decode, k), (feed, share), worker_rx, reply)
                    })?
                }
                None => builder.spawn(move || work(i, meter, (decode, k), worker_rx, reply))?,
            };
            workers.push(Worker {
                tx,
                thread: Some(thread),
                batch: Batch::default(),
            });
        }
        Ok(Pool {
            workers,
            reader,
            rx,
            ready: VecDeque::new(),
            spare: Vec::new(),
            emptied,
            router,
            decoded,
            passed_over: 0,
            unpolled: 0,
            tick_sec: 0,
            latest: Timestamp::ZERO,
            snapshots: vec![Snapshot::default(); n],
            synced: 0,
            done: 0,
            answers: Vec::new(),
            flushing: false,
            fed,
        })
    }

    #[inline(never)]
    fn push(&mut self, frame: &Frame<'_>) -> Result<(), Ignore> {
        let ts = frame.ts;
        let sec = ts.secs();
        if sec > self.tick_sec
            && self
                .router
                .moves_clock(frame.linktype, frame.data, frame.ifindex)
        {
            if self.tick_sec != 0 {
                self.tick(ts);
            }
            self.tick_sec = sec;
        }
        self.latest = self.latest.max(ts);
        let w = if self.decoded {
            // Decoded once, here (a frame that cannot be used is counted by the caller): the
            // key, after the key policy, picks the worker.
            let r = &mut self.router;
            let p = &mut r.scratch;
            decode::decode(frame.linktype, frame.data, &r.decode, p)?;
            p.key.ingress = frame.ifindex;
            if let Some(a) = &r.keys {
                if !a.admit(p) {
                    self.passed_over += 1;
                    return Ok(());
                }
            }
            let w = r.of_key(&shard_key_of(&r.scratch));
            self.workers[w].batch.packets.push((ts, r.scratch));
            w
        } else {
            let w = self.router.of_frame(frame.linktype, frame.data);
            let b = &mut self.workers[w].batch;
            let start = b.data.len() as u32;
            b.data.extend_from_slice(frame.data);
            b.frames.push((
                ts,
                frame.linktype,
                start,
                frame.data.len() as u32,
                frame.ifindex,
            ));
            w
        };
        if self.workers[w].batch.len() >= BATCH {
            self.send_batch(w);
        }
        Ok(())
    }

    /// Hand worker `w` its batch.
    fn send_batch(&mut self, w: usize) {
        if self.workers[w].batch.len() == 0 {
            return;
        }
        let next = self.spare.pop().unwrap_or_default();
        let batch = std::mem::replace(&mut self.workers[w].batch, next);
        self.send(w, Msg::Packets(batch));
    }

    /// Send `msg` to worker `w`, taking records back while its queue is full.
    fn send(&mut self, w: usize, mut msg: Msg) {
        loop {
            match self.workers[w].tx.try_send(msg) {
                Ok(()) => return,
                Err(TrySendError::Full(m)) => {
                    msg = m;
                    self.receive(Some(Duration::from_millis(1)));
                }
                // (A worker that is gone has panicked; its thread's join reports it.)
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// Take one reply: waiting up to `wait` (`None`: not at all). False if none came.
    fn receive(&mut self, wait: Option<Duration>) -> bool {
        let reply = match wait {
            None => match self.rx.try_recv() {
                Ok(r) => r,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return false,
            },
            Some(d) => match self.rx.recv_timeout(d) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            },
        };
        match reply {
            Reply::Records(records, batch) => {
                if records.is_empty() {
                    self.give_back(records);
                } else {
                    self.ready.push_back((records, 0));
                }
                if let Some(mut b) = batch {
                    b.clear();
                    self.spare.push(b);
                }
            }
            Reply::Synced(w, s) => {
                self.snapshots[w] = s;
                self.synced += 1;
            }
            Reply::Done(w, s) => {
                self.snapshots[w] = s;
                self.done += 1;
            }
            Reply::Answered(a) => self.answers.push(a),
        }
        true
    }

    /// Ask every worker `msg` and wait for each one's answer (records handed back meanwhile
    /// are kept, in order).
    fn ask(&mut self, msg: impl Fn() -> Msg) -> Vec<Answer> {
        self.answers.clear();
        self.broadcast(msg);
        while self.answers.len() < self.workers.len() && !self.worker_lost() {
            self.receive(Some(Duration::from_millis(100)));
        }
        std::mem::take(&mut self.answers)
    }

    /// A worker's thread ended without being asked to (it panicked).
    fn worker_lost(&self) -> bool {
        !self.flushing
            && self
                .workers
                .iter()
                .any(|w| w.thread.as_ref().is_some_and(|t| t.is_finished()))
    }

    /// A batch of records read to the end, emptied for a worker to reuse.
    fn give_back(&mut self, mut batch: Vec<FlowRecord>) {
        batch.clear();
        if let Ok(mut emptied) = self.emptied.lock() {
            // (No more than can be in use at once: the queue's, and one per worker.)
            if emptied.len() < (REPLY_BATCHES + 1) * self.workers.len() {
                emptied.push(batch);
            }
        }
    }

    fn with_next_record<R>(&mut self, f: impl FnOnce(&FlowRecord) -> R) -> Option<R> {
        loop {
            if let Some((batch, next)) = self.ready.front_mut() {
                if let Some(r) = batch.get(*next) {
                    *next += 1;
                    return Some(f(r));
                }
                if let Some((batch, _)) = self.ready.pop_front() {
                    self.give_back(batch);
                }
                continue;
            }
            if self.fed && !self.flushing {
                // Workers that read their own sources leave the reading thread nothing but
                // their records to take; it goes back to its loop (signals, statistics,
                // rotation) after a queue's worth, however fast more come.
                self.unpolled += 1;
                if self.unpolled > REPLY_BATCHES * self.workers.len() {
                    self.unpolled = 0;
                    return None;
                }
            } else if !self.flushing {
                // Replies are looked for once per batch's worth of frames: a look at the
                // channel costs more than metering a packet.
                self.unpolled += 1;
                if self.unpolled < BATCH {
                    return None;
                }
                self.unpolled = 0;
            }
            if self.flushing {
                let gone = self
                    .workers
                    .iter()
                    .all(|w| w.thread.as_ref().map_or(true, |t| t.is_finished()));
                if self.done == self.workers.len() || (gone && !self.receive(None)) {
                    return None;
                }
                // The workers' last records: wait for them.
                self.receive(Some(Duration::from_millis(100)));
            } else if !self.receive(None) {
                return None;
            }
        }
    }

    /// Every worker is sent what is batched for it, then `msg`.
    fn broadcast(&mut self, msg: impl Fn() -> Msg) {
        for w in 0..self.workers.len() {
            self.send_batch(w);
            self.send(w, msg());
        }
    }

    fn tick(&mut self, now: Timestamp) {
        if self.fed {
            return;
        }
        self.broadcast(|| Msg::Tick(now));
    }

    /// Wait until every worker has metered everything handed over (its records are then in
    /// `ready`) and reported its counts.
    fn sync(&mut self) {
        self.synced = 0;
        self.broadcast(|| Msg::Sync);
        while self.synced < self.workers.len() && !self.worker_lost() {
            self.receive(Some(Duration::from_millis(100)));
        }
    }

    fn flush(&mut self) {
        self.broadcast(|| Msg::Flush);
        self.flushing = true;
    }

    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        s.stats.unsampled += self.passed_over;
        for w in &self.snapshots {
            s.merge(w);
        }
        s
    }
}

impl Drop for Pool {
    /// The workers end when their queues close; a worker that panicked is reported.
    fn drop(&mut self) {
        let threads: Vec<JoinHandle<()>> = self
            .workers
            .iter_mut()
            .filter_map(|w| w.thread.take())
            .collect();
        self.workers.clear();
        // A worker may be waiting to hand records over (qof ends early, on an error): what
        // it hands is taken, and thrown away, until every worker has ended.
        while !threads.iter().all(|t| t.is_finished()) {
            let _ = self.rx.recv_timeout(Duration::from_millis(10));
        }
        for t in threads {
            if t.join().is_err() {
                eprintln!("qof: a metering worker failed");
            }
        }
        // (With the workers gone, the reader ends: it finds nobody to hand chunks to.)
        if let Some(t) = self.reader.take() {
            if t.join().is_err() {
                eprintln!("qof: the reading thread failed");
            }
        }
    }
}

/// Where a worker hands its records back: the queue to the reading thread, and the batches
/// of records the reading thread has emptied, for reuse. A batch made anew each time would be
/// carved from the worker's heap between the table's chunks as they are allocated, and the
/// holes left when the reading thread frees it stay resident: about 10 % more memory per
/// flow with two workers than with one, before batches were reused.
#[derive(Clone)]
struct Replies {
    queue: SyncSender<Reply>,
    emptied: Arc<Mutex<Vec<Vec<FlowRecord>>>>,
}

impl Replies {
    /// False when nobody listens any more.
    fn send(&self, reply: Reply) -> bool {
        self.queue.send(reply).is_ok()
    }

    /// An empty batch: one the reading thread has emptied, if there is one.
    fn empty_batch(&self) -> Vec<FlowRecord> {
        self.emptied
            .lock()
            .ok()
            .and_then(|mut e| e.pop())
            .unwrap_or_else(|| Vec::with_capacity(RECORD_BATCH))
    }
}

/// A worker's meter, and what it needs to decode and answer.
struct WorkerMeter {
    i: usize,
    meter: Lookahead,
    cfg: DecodeConfig,
    keys: Option<Admit>,
    with_details: bool,
    ignored: IgnoreCounts,
    out: Vec<FlowRecord>,
    reply: Replies,
}

impl WorkerMeter {
    fn new(
        i: usize,
        meter: Meter,
        (cfg, keys): (DecodeConfig, Option<Admit>),
        reply: Replies,
    ) -> WorkerMeter {
        let meter = Lookahead::new(meter);
        WorkerMeter {
            i,
            with_details: meter.wants_details(),
            meter,
            cfg,
            keys,
            ignored: IgnoreCounts::default(),
            out: Vec::with_capacity(RECORD_BATCH),
            reply,
        }
    }

    #[inline(always)]
    fn meter_frame(&mut self, ts: Timestamp, linktype: u32, data: &[u8], ingress: u32) {
        if let Err(why) = meter_frame(
            &mut self.meter,
            (&self.cfg, self.keys.as_ref()),
            self.with_details,
            ts,
            linktype,
            data,
            ingress,
        ) {
            self.ignored.add(why);
        }
    }

    /// Hand back the records ready (in batches), and `batch` emptied; false when nobody
    /// listens any more.
    fn hand_back(&mut self, batch: Option<Batch>) -> bool {
        let mut batch = batch;
        loop {
            while self.out.len() < RECORD_BATCH {
                match self.meter.poll_record() {
                    Some(r) => self.out.push(r),
                    None => break,
                }
            }
            let more = self.out.len() >= RECORD_BATCH;
            if !self.out.is_empty() || batch.is_some() {
                let full = std::mem::replace(&mut self.out, self.reply.empty_batch());
                if !self.reply.send(Reply::Records(full, batch.take())) {
                    return false;
                }
            }
            if !more {
                return true;
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::of(self.meter.meter(), self.ignored)
    }

    /// Carry out `msg`; false when the worker is to end (flushed, or nobody listens).
    fn obey(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Packets(batch) => {
                for &(ts, linktype, start, len, ingress) in &batch.frames {
                    let data = &batch.data[start as usize..(start + len) as usize];
                    self.meter_frame(ts, linktype, data, ingress);
                }
                for (ts, p) in &batch.packets {
                    *self.meter.next_packet() = *p;
                    self.meter.push(*ts, &[]);
                }
                self.hand_back(Some(batch))
            }
            Msg::Tick(now) => {
                self.meter.handle_timeout(now);
                self.hand_back(None)
            }
            Msg::Sync => {
                self.meter.drain();
                self.hand_back(None) && self.reply.send(Reply::Synced(self.i, self.snapshot()))
            }
            Msg::ExpireAll => {
                self.meter.expire_all();
                self.hand_back(None)
            }
            Msg::DeleteAll => {
                let n = self.meter.delete_all();
                self.hand_back(None) && self.reply.send(Reply::Answered(Answer::Deleted(n)))
            }
            Msg::Dump => {
                let flows = self.meter.flows();
                self.hand_back(None) && self.reply.send(Reply::Answered(Answer::Flows(flows)))
            }
            Msg::Flush => {
                self.meter.flush();
                let _ =
                    self.hand_back(None) && self.reply.send(Reply::Done(self.i, self.snapshot()));
                false
            }
        }
    }
}

/// A worker: decodes and meters the frames it is given, hands records back.
fn work(
    i: usize,
    meter: Meter,
    cfg: (DecodeConfig, Option<Admit>),
    rx: Receiver<Msg>,
    reply: Replies,
) {
    let mut w = WorkerMeter::new(i, meter, cfg, reply);
    for msg in rx {
        if !w.obey(msg) {
            return;
        }
    }
}

/// A source a worker reads itself, and where it publishes what it read.
pub struct Feed {
    pub source: Box<dyn PacketSource + Send>,
    pub counts: Arc<WorkerCounts>,
    /// The source gives every frame of the input (a file, opened by each worker): the worker
    /// meters its share, and every frame moves its clock.
    pub shared: Option<SharedInput>,
}

/// What a worker reading every frame of a file needs beyond its share.
pub struct SharedInput {
    /// `--filter`, run here (files have no kernel to run it).
    pub filter: Option<qof::filter::Filter>,
    /// The ingress interface of the file's frames.
    pub ingress: u32,
    /// Set when the reading thread stops (a signal, a command).
    pub halt: Arc<AtomicBool>,
    /// The thread that reads the file for every worker, when one does ([`crate::split`];
    /// else each worker reads the file itself). Given with the first worker's feed.
    pub splitter: Option<crate::split::Splitter>,
}

/// What a worker that reads its own source has read, for the reading thread (the summary,
/// `--stats`, metrics, rotation's clock), published as it goes.
#[derive(Default)]
pub struct WorkerCounts {
    pub frames: AtomicU64,
    /// Octets of the frames read, as long as they were on the wire.
    pub octets: AtomicU64,
    /// Frames its socket's kernel dropped (its ring was full).
    pub dropped: AtomicU64,
    /// Frames of its share `--filter` refused (a file's: [`SharedInput`]).
    pub filtered: AtomicU64,
    /// How far it has read its source ([`PacketSource::position`]).
    pub position: AtomicU64,
    /// Packet time of its first frame (0: none yet), and its clock (its latest frame, or the
    /// wall clock while quiet).
    pub first_ns: AtomicU64,
    pub clock_ns: AtomicU64,
    /// Its source has ended (after a stop, or an error).
    pub ended: AtomicBool,
    /// The error that ended it (taken by [`FanoutInput`] to end the input with).
    pub error: Mutex<Option<CaptureError>>,
}

/// Frames read per look at the worker's messages.
const FED_BATCH: usize = 64;

/// A worker that reads its own source: decodes and meters its frames, its clock moved by
/// them and, while the source is quiet, by the wall clock (as with one meter); answers the
/// reading thread's messages between batches of frames, and hands records back.
///
/// A source that gives every frame of the input (a file, [`Feed::shared`]) is read by every
/// worker: each meters the frames `router` gives it and passes the others over, and every
/// frame that `--filter` takes moves its clock, a second at a time, as the reading thread's
/// ticks do ([`Pool::tick`]): the workers end idle flows at the packet times one meter would.
fn work_fed(
    i: usize,
    meter: Meter,
    cfg: (DecodeConfig, Option<Admit>),
    (feed, mut router): (Feed, Option<Router>),
    rx: Receiver<Msg>,
    reply: Replies,
) {
    let mut w = WorkerMeter::new(i, meter, cfg, reply);
    let Feed {
        mut source,
        counts,
        shared,
    } = feed;
    let (mut filter, ingress, halt) = match shared {
        Some(s) => (s.filter, Some(s.ingress), Some(s.halt)),
        None => (None, None, None),
    };
    let mut clock = Timestamp::ZERO;
    let mut tick_sec = 0;
    let (mut frames, mut octets, mut filtered) = (0u64, 0u64, 0u64);
    let mut ended = false;
    let mut unsent = 0usize;
    loop {
        // Messages: looked at between batches of frames; waited for once the source has
        // ended (until the flush).
        loop {
            let msg = if ended {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return,
                }
            } else {
                match rx.try_recv() {
                    Ok(m) => m,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            };
            if !w.obey(msg) {
                return;
            }
        }
        if halt.as_ref().is_some_and(|h| h.load(Ordering::Relaxed)) {
            ended = true;
        }
        let mut quiet = false;
        let mut taken = 0;
        while !ended && taken < FED_BATCH {
            // (A file's next read does not wait: only a live source is asked.)
            if router.is_none() && !source.frame_ready() {
                // Before a wait, the look-ahead's packets are metered (their records go).
                w.meter.drain();
                if let Some(now) = source.wait_quiet() {
                    clock = clock.max(now);
                    w.meter.handle_timeout(clock);
                    quiet = true;
                    break;
                }
            }
            let mut told = None;
            if let Some(r) = router.as_mut() {
                told = source.owns_next();
                if told.is_none() {
                    // The other workers' frames, passed over where they lie, but for one that
                    // moves the clock to a new second (below).
                    source.pass_over(&mut |linktype, secs, data| {
                        secs > tick_sec || r.of_frame(linktype, data) == i
                    });
                }
            }
            match source.next_frame() {
                Ok(Some(mut f)) => {
                    let mut metered = true;
                    if let Some(r) = router.as_mut() {
                        // Every frame of the input comes here (or, from a file read for
                        // every worker, those that move the clock): the clock moves with
                        // those the filter takes; only this worker's share is counted and
                        // metered.
                        let mine = match told {
                            Some(mine) => mine,
                            None => r.of_frame(f.linktype, f.data) == i,
                        };
                        metered = filter
                            .as_mut()
                            .map_or(true, |flt| flt.matches(f.linktype, f.orig_len, f.data));
                        if metered
                            && f.ts.secs() > tick_sec
                            && r.moves_clock(f.linktype, f.data, ingress.unwrap_or(f.ifindex))
                        {
                            // The look-ahead's packets are metered and the records ready
                            // go first: the flows the tick ends then wait as slots, and
                            // are handed back at once, a batch of records at a time. (Queued
                            // behind a record still here, they would all be made records
                            // now: a second's idle flows, thousands of 456-byte records,
                            // and the queue grown to hold them, which the heap keeps.)
                            if tick_sec != 0 {
                                w.meter.drain();
                                if !w.hand_back(None) {
                                    return;
                                }
                                w.meter.handle_timeout(f.ts);
                                if !w.hand_back(None) {
                                    return;
                                }
                            }
                            tick_sec = f.ts.secs();
                        }
                        if !mine {
                            continue;
                        }
                        filtered += u64::from(!metered);
                        f.ifindex = ingress.unwrap_or(f.ifindex);
                    }
                    taken += 1;
                    frames += 1;
                    octets += u64::from(f.orig_len);
                    if frames == 1 {
                        counts
                            .first_ns
                            .store(f.ts.nanos().max(1), Ordering::Relaxed);
                    }
                    clock = clock.max(f.ts);
                    if metered {
                        w.meter_frame(f.ts, f.linktype, f.data, f.ifindex);
                    }
                }
                Ok(None) => ended = true,
                Err(e) => {
                    if let Ok(mut slot) = counts.error.lock() {
                        *slot = Some(e);
                    }
                    ended = true;
                }
            }
        }
        if ended {
            w.meter.drain();
        }
        counts.frames.store(frames, Ordering::Relaxed);
        counts.octets.store(octets, Ordering::Relaxed);
        counts.filtered.store(filtered, Ordering::Relaxed);
        counts.position.store(source.position(), Ordering::Relaxed);
        counts.clock_ns.store(clock.nanos(), Ordering::Relaxed);
        unsent += 1;
        // Records go back in whole batches while frames come, at once when quiet or ended;
        // the kernel's drop count is read as often (a system call).
        if quiet
            || ended
            || unsent >= RECORD_BATCH / FED_BATCH * 4
            || w.meter.records_ready() >= RECORD_BATCH
        {
            unsent = 0;
            counts.dropped.store(source.dropped(), Ordering::Relaxed);
            if !w.hand_back(None) {
                return;
            }
        }
        if ended {
            counts.ended.store(true, Ordering::Release);
        }
    }
}

/// The input on the reading thread when workers read their own sources: no frames of its
/// own; it waits a moment, says the workers' latest clock, and ends once every worker's
/// source has (an error of one stops the others, as on one socket, and is the input's).
pub struct FanoutInput {
    counts: Vec<Arc<WorkerCounts>>,
    /// The size of the file the workers read; `None`: they read live interfaces.
    file_len: Option<u64>,
    /// Set by a signal or `qofctl shutdown`.
    stop: Arc<AtomicBool>,
    /// The workers' sources' stop flag: set after `stop`, or when one live socket has failed
    /// (the others then stop too, and the failure, not a stop, ends the input).
    halt: Arc<AtomicBool>,
}

/// What the workers of a [`FanoutInput`] have read, all together.
#[derive(Clone, Copy, Debug, Default)]
pub struct FanoutTotals {
    pub frames: u64,
    pub octets: u64,
    pub filtered: u64,
    pub first: Option<Timestamp>,
    pub clock: Timestamp,
}

impl FanoutInput {
    pub fn new(
        counts: Vec<Arc<WorkerCounts>>,
        stop: Arc<AtomicBool>,
        halt: Arc<AtomicBool>,
        file_len: Option<u64>,
    ) -> FanoutInput {
        FanoutInput {
            counts,
            file_len,
            stop,
            halt,
        }
    }

    pub fn totals(counts: &[Arc<WorkerCounts>]) -> FanoutTotals {
        let mut t = FanoutTotals::default();
        for c in counts {
            t.frames += c.frames.load(Ordering::Relaxed);
            t.octets += c.octets.load(Ordering::Relaxed);
            t.filtered += c.filtered.load(Ordering::Relaxed);
            let first = c.first_ns.load(Ordering::Relaxed);
            if first != 0 {
                let first = Timestamp::from_nanos(first);
                t.first = Some(t.first.map_or(first, |f| f.min(first)));
            }
            t.clock = t
                .clock
                .max(Timestamp::from_nanos(c.clock_ns.load(Ordering::Relaxed)));
        }
        t
    }

    fn failed(&self) -> bool {
        self.counts
            .iter()
            .any(|c| c.error.lock().is_ok_and(|e| e.is_some()))
    }
}

impl PacketSource for FanoutInput {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, CaptureError> {
        for c in &self.counts {
            if let Some(e) = c.error.lock().ok().and_then(|mut e| e.take()) {
                return Err(e);
            }
        }
        Ok(None)
    }

    /// `None` once every worker's source has ended.
    fn wait_quiet(&mut self) -> Option<Timestamp> {
        // One socket's failure stops the others. Not so for a file's readers: each reads on
        // to the damage itself (every frame before it is someone's share), where each fails.
        let failed = self.file_len.is_none() && self.failed();
        if failed || self.stop.load(Ordering::Relaxed) {
            self.halt.store(true, Ordering::Relaxed);
        }
        if self.counts.iter().all(|c| c.ended.load(Ordering::Acquire)) {
            return None;
        }
        // (The workers answer the reading thread's messages between batches of frames: it
        // need not come back sooner than this; from a file, their records come fast.)
        let pause = if self.file_len.is_some() { 1 } else { 10 };
        std::thread::sleep(Duration::from_millis(pause));
        Some(Self::totals(&self.counts).clock)
    }

    fn is_live(&self) -> bool {
        self.file_len.is_none()
    }

    fn len_hint(&self) -> Option<u64> {
        self.file_len
    }

    /// How far the slowest worker has read.
    fn position(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| c.position.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0)
    }

    fn dropped(&self) -> u64 {
        self.counts
            .iter()
            .map(|c| c.dropped.load(Ordering::Relaxed))
            .sum()
    }

    fn per_reader(&self) -> Vec<(u64, u64)> {
        if self.file_len.is_some() {
            // (Each reads the whole file: its share is in the flows, not in its reading.)
            return Vec::new();
        }
        self.counts
            .iter()
            .map(|c| {
                (
                    c.frames.load(Ordering::Relaxed),
                    c.dropped.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}
