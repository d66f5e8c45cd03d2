//! Kafka output (`--kafka BROKERS --kafka-topic TOPIC`, cargo feature `kafka`): each flow
//! record is one Kafka message, a JSON object (the line `--format json` writes) or an IPFIX
//! message that carries its own templates (`--format ipfix`), keyed by the flow's
//! flowKeyHash, so that every record of a flow, both directions, goes to one partition.
//!
//! The client is librdkafka (through `rdkafka`), the reference implementation beside the Java
//! client: batching (`linger.ms`), lz4/zstd compression, acknowledgement by every in-sync
//! replica (`acks=all`), the idempotent producer (a retry after a lost acknowledgement or a
//! leader change neither duplicates nor reorders), TLS and SASL/SCRAM.
//!
//! Accounting, as for the IPFIX exporters: every flow record handed to the sink is counted
//! once, as delivered (librdkafka's delivery report says all in-sync replicas have it) or
//! lost (a failed delivery report, a record dropped at the full buffer, or one still
//! unacknowledged when qof gives up after `--export-timeout` at the end). librdkafka itself
//! never gives a message up (`message.timeout.ms=0`): it retries through broker restarts and
//! leader elections, and only qof decides when waiting is over.
//!
//! The buffer is librdkafka's queue, bounded by `--export-queue-bytes` (and a million
//! messages). Full, it makes the input wait (files and standard input), and gives up when
//! nothing was acknowledged for `--export-timeout`; or (live capture, `--export-queue-full
//! drop`) the new record is dropped and counted, with a warning every 10 s while it lasts.

use super::export_time;
use super::json::JsonLines;
use super::{CollectorStatus, ExportReport, RecordSink};
use crate::config::QueueFull;
use crate::ipfix::{Encoder, MessageSink, TemplateSpec, MAX_FILE_MESSAGE};
use crate::meter::{FlowRecord, ProcessStats};
use crate::plugins::flowhash::key_hash;
use anyhow::{anyhow, Result};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, PurgeConfig, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What each Kafka message holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaFormat {
    /// One JSON object (without the newline).
    Json,
    /// One IPFIX message: the record's template set(s), then its data record(s).
    Ipfix,
}

/// Certificates of `--tls` (each optional: without a CA file, the system's CAs).
#[derive(Clone, Debug, Default)]
pub struct KafkaTls {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// SASL of `--kafka-sasl`.
#[derive(Clone)]
pub struct KafkaSasl {
    /// librdkafka's `sasl.mechanism`: SCRAM-SHA-256, SCRAM-SHA-512, PLAIN.
    pub mechanism: &'static str,
    pub user: String,
    pub password: String,
}

/// Where and how to publish.
#[derive(Clone)]
pub struct KafkaConfig {
    /// Bootstrap brokers, `host:port,...`.
    pub brokers: String,
    pub topic: String,
    pub format: KafkaFormat,
    /// librdkafka's `compression.codec`.
    pub compression: &'static str,
    pub tls: Option<KafkaTls>,
    pub sasl: Option<KafkaSasl>,
    /// `--kafka-option KEY=VALUE`, set after qof's own properties.
    pub properties: Vec<(String, String)>,
    /// Octets of messages librdkafka may hold (waiting, or sent and not yet acknowledged).
    pub queue_bytes: usize,
    pub when_full: QueueFull,
    /// How long the brokers may acknowledge nothing while qof waits for them.
    pub timeout: Duration,
    pub observation_domain: u32,
    pub force_biflow: bool,
}

/// Messages librdkafka may hold, besides the octet bound: a JSON record is 200-500 octets,
/// and librdkafka's own bookkeeping of a message is about as large again.
const QUEUE_MESSAGES: usize = 1_000_000;

/// How long librdkafka waits to fill a batch (per partition): a few thousand records a
/// batch at the rates qof makes them, and no record waits noticeably.
const LINGER_MS: &str = "20";

impl KafkaConfig {
    /// `kafka broker1:9092,broker2:9092 topic flows`: how log lines name the export.
    pub fn peer(&self) -> String {
        format!("kafka {} topic {}", self.brokers, self.topic)
    }

    /// librdkafka's producer configuration.
    fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "qof")
            // Delivered means every in-sync replica has it: a leader that dies right after
            // acknowledging loses nothing.
            .set("acks", "all")
            // Retries (after a timeout or a leader change) are written once, in order.
            .set("enable.idempotence", "true")
            // qof, not librdkafka, decides when to stop waiting (--export-timeout).
            .set("message.timeout.ms", "0")
            .set("compression.codec", self.compression)
            .set("linger.ms", LINGER_MS)
            .set(
                "queue.buffering.max.kbytes",
                (self.queue_bytes / 1024).max(1).to_string(),
            )
            .set("queue.buffering.max.messages", QUEUE_MESSAGES.to_string())
            // The Java client's partitioner: a key lands on the partition a Java producer
            // (Kafka Streams, Connect) would choose for it.
            .set("partitioner", "murmur2_random")
            .set_log_level(RDKafkaLogLevel::Warning);
        security(&mut c, self.tls.as_ref(), self.sasl.as_ref());
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }
}

/// TLS and SASL settings, shared by the producer and the reader.
fn security(c: &mut ClientConfig, tls: Option<&KafkaTls>, sasl: Option<&KafkaSasl>) {
    let protocol = match (tls.is_some(), sasl.is_some()) {
        (false, false) => "plaintext",
        (true, false) => "ssl",
        (false, true) => "sasl_plaintext",
        (true, true) => "sasl_ssl",
    };
    c.set("security.protocol", protocol);
    if let Some(t) = tls {
        if let Some(ca) = &t.ca {
            c.set("ssl.ca.location", ca.display().to_string());
        }
        if let (Some(cert), Some(key)) = (&t.cert, &t.key) {
            c.set("ssl.certificate.location", cert.display().to_string());
            c.set("ssl.key.location", key.display().to_string());
            // An encrypted key's password, as for --ipfix --tls.
            if let Ok(pass) = std::env::var("QOF_TLS_PASS") {
                c.set("ssl.key.password", pass);
            }
        }
    }
    if let Some(s) = sasl {
        c.set("sasl.mechanism", s.mechanism)
            .set("sasl.username", &s.user)
            .set("sasl.password", &s.password);
    }
}

/// What the delivery reports counted, shared with librdkafka's polling thread.
#[derive(Default)]
struct Counts {
    /// Flow records all of whose messages all in-sync replicas acknowledged.
    delivered: AtomicU64,
    /// Flow records with a message that failed or was given up (not `overflow`).
    lost: AtomicU64,
    /// Flow records with a message dropped at the full buffer.
    overflow: AtomicU64,
    /// Delivery reports seen, good or bad: the brokers' progress.
    reports: AtomicU64,
    /// The first delivery error, logged once.
    first_error: Mutex<Option<String>>,
}

/// One record's messages on their way (a uniflow template makes two JSON messages of a
/// biflow): the record is delivered when the last of them is, lost if any of them is.
struct Pending {
    parts: AtomicU8,
    failed: AtomicBool,
    overflow: AtomicBool,
    /// A flow record (the statistics record is not counted).
    flow: bool,
}

impl Counts {
    /// One message of `p` is done with: delivered (`ok`), or not.
    fn settle(&self, p: &Pending, ok: bool, overflow: bool) {
        if overflow {
            p.overflow.store(true, Ordering::Relaxed);
        }
        if !ok {
            p.failed.store(true, Ordering::Relaxed);
        }
        if p.parts.fetch_sub(1, Ordering::AcqRel) != 1 || !p.flow {
            return;
        }
        let counter = if p.overflow.load(Ordering::Relaxed) {
            &self.overflow
        } else if p.failed.load(Ordering::Relaxed) {
            &self.lost
        } else {
            &self.delivered
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn note_error(&self, what: String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            tracing::warn!("{what} (further failures are counted, not logged)");
            *first = Some(what);
        }
    }
}

/// librdkafka's callbacks: delivery reports into the counts, its log into qof's.
struct Context {
    counts: Arc<Counts>,
    peer: String,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => {
                tracing::error!("{}: librdkafka {fac}: {msg}", self.peer)
            }
            // (librdkafka logs a broker it cannot reach as an error; it keeps trying, and the
            // records wait: a warning.)
            RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning => {
                tracing::warn!("{}: librdkafka {fac}: {msg}", self.peer)
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!("{}: librdkafka {fac}: {msg}", self.peer)
            }
            RDKafkaLogLevel::Debug => tracing::debug!("{}: librdkafka {fac}: {msg}", self.peer),
        }
    }

    /// Errors of the connection (a broker down, authentication refused): the messages wait
    /// and are retried, so these are warnings; a delivery that fails is counted elsewhere.
    fn error(&self, error: KafkaError, reason: &str) {
        // A broker that cannot be reached is already in librdkafka's log line (FAIL).
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure) {
            return;
        }
        tracing::warn!("{}: {error}: {reason}", self.peer);
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Arc<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, p: Arc<Pending>) {
        self.counts.reports.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok(_) => self.counts.settle(&p, true, false),
            Err((e, _)) => {
                self.counts
                    .note_error(format!("{}: a message was not delivered: {e}", self.peer));
                self.counts.settle(&p, false, false);
            }
        }
    }
}

/// The record sink of `--kafka`.
pub struct KafkaSink {
    producer: ThreadedProducer<Context>,
    cfg: KafkaConfig,
    peer: String,
    counts: Arc<Counts>,
    encoding: Encoding,
    /// The messages of the record being published (buffers reused).
    parts: Vec<Vec<u8>>,
    n_parts: usize,
    /// Messages handed to librdkafka, and their octets (payloads).
    messages: u64,
    octets: u64,
    /// Why publishing stopped (the brokers took nothing for --export-timeout while the buffer
    /// was full); records after it are counted as lost.
    failure: Option<String>,
    /// Drops at the full buffer: when last logged, and how many then.
    drops_logged: Option<(Instant, u64)>,
}

enum Encoding {
    Json(JsonLines),
    Ipfix(Box<Encoder>),
}

/// Collects the encoder's messages into the sink's parts.
struct Collect<'a> {
    parts: &'a mut Vec<Vec<u8>>,
    n: &'a mut usize,
}

impl Collect<'_> {
    fn push(&mut self, bytes: &[u8]) {
        if *self.n == self.parts.len() {
            self.parts.push(Vec::new());
        }
        let buf = &mut self.parts[*self.n];
        buf.clear();
        buf.extend_from_slice(bytes);
        *self.n += 1;
    }
}

impl MessageSink for Collect<'_> {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.push(message);
        Ok(())
    }
}

/// Who acknowledges a delivered record, for the summary line.
const CONFIRMED_BY: &str = "all in-sync Kafka replicas";

/// How often a lasting overflow is logged again.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

impl KafkaSink {
    /// Create the producer (configuration errors, unreadable certificates: one error line)
    /// and ask the brokers for the topic. Brokers that cannot be reached yet are not an error:
    /// records are held, and librdkafka keeps trying.
    pub fn open(cfg: KafkaConfig, spec: TemplateSpec) -> Result<Self> {
        let peer = cfg.peer();
        let counts = Arc::new(Counts::default());
        let context = Context {
            counts: counts.clone(),
            peer: peer.clone(),
        };
        let producer: ThreadedProducer<Context> = cfg
            .client_config()
            .create_with_context(context)
            .map_err(|e| anyhow!("--kafka {}: {e}", cfg.brokers))?;
        let wait = cfg
            .timeout
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        match producer
            .client()
            .fetch_metadata(Some(&cfg.topic), wait)
        {
            Ok(md) => match md.topics().first() {
                Some(t) if t.error().is_none() => tracing::info!(
                    "{peer}: {} partitions, {} brokers",
                    t.partitions().len(),
                    md.brokers().len()
                ),
                _ => tracing::warn!(
                    "{peer}: the topic is not there yet (the brokers may create it on the first record)"
                ),
            },
            Err(e) => tracing::warn!(
                "{peer}: cannot reach the brokers yet ({e}); holding records (up to {} octets) and retrying",
                cfg.queue_bytes
            ),
        }
        let encoding = match cfg.format {
            KafkaFormat::Json => Encoding::Json(JsonLines::new(spec, cfg.force_biflow)),
            KafkaFormat::Ipfix => Encoding::Ipfix(Box::new(Encoder::new(
                spec,
                cfg.observation_domain,
                MAX_FILE_MESSAGE,
                cfg.force_biflow,
            ))),
        };
        Ok(KafkaSink {
            producer,
            cfg,
            peer,
            counts,
            encoding,
            parts: Vec::new(),
            n_parts: 0,
            messages: 0,
            octets: 0,
            failure: None,
            drops_logged: None,
        })
    }

    /// Publish the `n_parts` messages in `parts` as one record (or the statistics).
    fn publish(&mut self, key: Option<&[u8]>, flow: bool) {
        let n = self.n_parts;
        if n == 0 {
            return;
        }
        let pending = Arc::new(Pending {
            parts: AtomicU8::new(n as u8),
            failed: AtomicBool::new(false),
            overflow: AtomicBool::new(false),
            flow,
        });
        if self.failure.is_some() {
            for _ in 0..n {
                self.counts.settle(&pending, false, false);
            }
            return;
        }
        for i in 0..n {
            self.produce(i, key, pending.clone());
        }
    }

    /// Hand message `i` of `parts` to librdkafka, waiting for room or dropping it when the
    /// buffer is full.
    fn produce(&mut self, i: usize, key: Option<&[u8]>, mut opaque: Arc<Pending>) {
        let mut stalled_since: Option<(Instant, u64)> = None;
        loop {
            let payload = &self.parts[i];
            let mut rec = BaseRecord::with_opaque_to(&self.cfg.topic, opaque).payload(payload);
            if let Some(k) = key {
                rec = rec.key(k);
            }
            let (err, rec) = match self.producer.send(rec) {
                Ok(()) => {
                    self.messages += 1;
                    self.octets += payload.len() as u64;
                    return;
                }
                Err(e) => e,
            };
            opaque = rec.delivery_opaque;
            let full = matches!(
                err,
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
            );
            if !full {
                // A message librdkafka refuses outright (too large for the brokers, a topic
                // it knows does not exist): that record is lost.
                self.counts
                    .note_error(format!("{}: a message was refused: {err}", self.peer));
                self.counts.settle(&opaque, false, false);
                return;
            }
            if self.cfg.when_full == QueueFull::Drop {
                self.counts.settle(&opaque, false, true);
                self.log_drops();
                return;
            }
            // Wait for the brokers to take something; give up after --export-timeout of
            // nothing acknowledged.
            let reports = self.counts.reports.load(Ordering::Relaxed);
            let (since, seen) = *stalled_since.get_or_insert((Instant::now(), reports));
            if reports != seen {
                stalled_since = Some((Instant::now(), reports));
            } else if since.elapsed() >= self.cfg.timeout {
                let why = format!(
                    "{}: the brokers acknowledged nothing for {} s (--export-timeout) while the \
                     Kafka buffer was full: stopped reading; what was not delivered is counted lost",
                    self.peer,
                    self.cfg.timeout.as_secs()
                );
                tracing::error!("{why}");
                self.failure = Some(why);
                self.counts.settle(&opaque, false, false);
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A warning at the first drop, then every 10 s while drops go on.
    fn log_drops(&mut self) {
        let dropped = self.counts.overflow.load(Ordering::Relaxed);
        let due = match self.drops_logged {
            None => true,
            Some((at, _)) => at.elapsed() >= DROP_LOG_EVERY,
        };
        if due {
            let since = self.drops_logged.map_or(0, |(_, n)| n);
            tracing::warn!(
                "{}: the Kafka buffer is full (--export-queue-bytes {}): {} records dropped \
                 (counted lost), {} in all",
                self.peer,
                self.cfg.queue_bytes,
                dropped.saturating_sub(since).max(1),
                dropped.max(1)
            );
            self.drops_logged = Some((Instant::now(), dropped));
        }
    }

    fn totals(&self) -> (u64, u64, u64) {
        (
            self.counts.delivered.load(Ordering::Relaxed),
            self.counts.lost.load(Ordering::Relaxed),
            self.counts.overflow.load(Ordering::Relaxed),
        )
    }
}

impl RecordSink for KafkaSink {
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        // 16 hex digits: readable by any consumer, and the flowKeyHash value of the flowhash
        // plugin, the same for both directions of the flow.
        let key = format!("{:016x}", key_hash(&rec.key));
        self.n_parts = 0;
        let mut out = Collect {
            parts: &mut self.parts,
            n: &mut self.n_parts,
        };
        match &mut self.encoding {
            Encoding::Json(lines) => lines.flow(rec, &mut |line| {
                out.push(line.trim_end_matches('\n').as_bytes());
                Ok(())
            })?,
            Encoding::Ipfix(enc) => {
                // Every message carries the templates of its records: a consumer of one
                // partition, or one that starts anywhere, decodes each message alone.
                let t = export_time();
                enc.resend_templates();
                enc.encode_flow(rec, t, &mut out)?;
                enc.flush(t, &mut out)?;
            }
        }
        self.publish(Some(key.as_bytes()), true);
        Ok(())
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        let (_, lost, overflow) = self.totals();
        let stats = ProcessStats {
            not_sent_flows: lost + overflow,
            exported_messages: self.messages,
            exported_octets: self.octets,
            ..*stats
        };
        self.n_parts = 0;
        let mut out = Collect {
            parts: &mut self.parts,
            n: &mut self.n_parts,
        };
        match &mut self.encoding {
            Encoding::Json(lines) => {
                out.push(lines.stats(&stats).trim_end_matches('\n').as_bytes())
            }
            Encoding::Ipfix(enc) => {
                let t = export_time();
                enc.resend_templates();
                enc.encode_stats(&stats, t, &mut out)?;
                enc.flush(t, &mut out)?;
            }
        }
        self.publish(None, false);
        Ok(())
    }

    /// Wait for the brokers to acknowledge what librdkafka holds, while they make progress
    /// and at most `--export-timeout` without; then give up on the rest, counted lost.
    fn finish(&mut self) -> io::Result<()> {
        let mut seen = self.counts.reports.load(Ordering::Relaxed);
        let mut progress = Instant::now();
        while self.producer.in_flight_count() > 0 {
            if self.failure.is_some() || progress.elapsed() >= self.cfg.timeout {
                let held = self.producer.in_flight_count();
                // Messages purged while in flight may still have been written by a broker:
                // they count as lost (not acknowledged), and may arrive all the same.
                self.producer
                    .purge(PurgeConfig::default().queue().inflight());
                let purged = Instant::now();
                while self.producer.in_flight_count() > 0
                    && purged.elapsed() < Duration::from_secs(5)
                {
                    self.producer.poll(Duration::from_millis(50));
                }
                if self.failure.is_none() {
                    tracing::error!(
                        "{}: {held} messages were not acknowledged within {} s (--export-timeout): counted lost",
                        self.peer,
                        self.cfg.timeout.as_secs()
                    );
                }
                break;
            }
            // (A timeout here is only a turn of the loop.)
            let _ = self.producer.flush(Duration::from_millis(100));
            let now = self.counts.reports.load(Ordering::Relaxed);
            if now != seen {
                seen = now;
                progress = Instant::now();
            }
        }
        // The polling thread serves the last reports; make sure they are in the counts.
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn export_report(&self) -> Option<ExportReport> {
        let (delivered, lost, overflow) = self.totals();
        Some(ExportReport {
            delivered,
            lost: lost + overflow,
            overflow,
            acknowledged: true,
            confirmed_by: CONFIRMED_BY,
        })
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }

    /// The brokers as one collector, for `qofctl statistics` and the metrics.
    fn collectors(&self) -> Vec<CollectorStatus> {
        let (delivered, lost, overflow) = self.totals();
        vec![CollectorStatus {
            name: self.peer.clone(),
            sent: delivered,
            lost: lost + overflow,
            overflow,
            queued: self.producer.in_flight_count().max(0) as u64,
            messages: self.messages,
            octets: self.octets,
            connections: 0,
            acknowledged: true,
            confirmed_by: CONFIRMED_BY,
            failed: self.failure.is_some(),
        }]
    }

    /// `qofctl expire-all`: send what librdkafka holds now rather than after `linger.ms`.
    fn flush_now(&mut self) -> io::Result<()> {
        // (A flush wakes the brokers' threads to send at once; not waiting for the
        // acknowledgements, its time-out is no error. Unflushed, they go within linger.ms.)
        let _ = self.producer.flush(Duration::ZERO);
        Ok(())
    }

    fn status(&self) -> Option<String> {
        let (delivered, lost, overflow) = self.totals();
        Some(format!(
            "{}: {delivered} records delivered, {} lost ({overflow} at the full buffer), {} messages held",
            self.peer,
            lost + overflow,
            self.producer.in_flight_count()
        ))
    }
}

/// Reads a topic as it is when called: every partition from its first offset to its end
/// then (messages published later are not waited for), calling `each(partition, key,
/// payload)` in partition order. For `qofdump --kafka` and the tests. `timeout`: how long
/// the brokers may give nothing before the read fails.
pub fn read_topic(
    brokers: &str,
    topic: &str,
    properties: &[(String, String)],
    timeout: Duration,
    mut each: impl FnMut(i32, Option<&[u8]>, &[u8]) -> io::Result<()>,
) -> Result<u64> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("client.id", "qofdump")
        .set("group.id", "qofdump")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set_log_level(RDKafkaLogLevel::Error);
    for (k, v) in properties {
        c.set(k, v);
    }
    let consumer: BaseConsumer = c.create().map_err(|e| anyhow!("--kafka {brokers}: {e}"))?;
    let md = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| anyhow!("--kafka {brokers}: cannot read the topic's metadata: {e}"))?;
    let Some(t) = md.topics().first() else {
        return Err(anyhow!("--kafka {brokers}: no topic {topic}"));
    };
    if let Some(e) = t.error() {
        return Err(anyhow!(
            "--kafka {brokers}: topic {topic}: {}",
            RDKafkaErrorCode::from(e)
        ));
    }
    let mut read = 0;
    let mut partitions: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    for p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(|e| anyhow!("--kafka {brokers}: partition {p} of {topic}: {e}"))?;
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Offset(low))
            .map_err(|e| anyhow!("{e}"))?;
        consumer.assign(&tpl).map_err(|e| anyhow!("{e}"))?;
        let mut next = low;
        let mut last = Instant::now();
        while next < high {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    next = m.offset() + 1;
                    each(p, m.key(), m.payload().unwrap_or_default())?;
                    read += 1;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    return Err(anyhow!("--kafka {brokers}: partition {p} of {topic}: {e}"))
                }
                None if last.elapsed() >= timeout => {
                    return Err(anyhow!(
                        "--kafka {brokers}: partition {p} of {topic}: nothing for {} s at offset {next} of {high}",
                        timeout.as_secs()
                    ))
                }
                None => {}
            }
        }
    }
    Ok(read)
}
