//! IPFIX export to a live collector: UDP, TCP, TLS over TCP, SCTP (RFC 7011 §10).
//!
//! [`IpfixNetSink`] is the [`RecordSink`] the main loop writes to. It does no network I/O
//! itself: each record goes over a bounded channel to an exporter thread (module `exporter`),
//! which owns the [`Encoder`](crate::ipfix::Encoder) and the transport, and never blocks on
//! the network (sockets are non-blocking, connection attempts run in a thread of their own).
//!
//! What a full export queue does depends on the input ([`QueueFull`]): a file or standard
//! input waits (the exporter stops taking records, the main loop blocks on the channel, so a
//! slow collector slows the reading, and nothing is dropped; a collector that takes nothing
//! for `--export-timeout` ends the run with an error); a live capture cannot wait, so the
//! exporter keeps taking records and drops the oldest messages, counted.
//!
//! Every flow record handed to the sink is counted once, as delivered or lost:
//! * over TCP and TLS, delivered means acknowledged by the collector's TCP (the kernel's send
//!   queue says how many octets are not, `SIOCOUTQ`); written messages are kept until then,
//!   and those a broken connection had not delivered go again, whole, on the next one. This
//!   is TCP-level delivery: octets the collector's kernel acknowledged and the collector
//!   process never read (it was killed) cannot be seen by any exporter;
//! * over SCTP the kernel gives no such count: written counts as delivered;
//! * over UDP nothing can be confirmed: records handed to the kernel are "sent", and only
//!   what the kernel refused is known to be lost. Datagrams are paced (`--export-rate`).
//!
//! Templates are never withdrawn: UDP must not (RFC 7011 §8.1), and qof never redefines a
//! template ID, so on a stream the end of the session withdraws them all.
//!
//! Time here is wall-clock (`Instant`): backoff, flush delays and template refresh are about
//! the network, not about packet time, and the meter stays sans-IO.

mod exporter;
pub mod sctp;
mod stream;
pub mod tls;
mod udp;

use super::{CollectorStatus, ExportReport, RecordSink};
pub use crate::config::QueueFull;
use crate::config::{IpfixTransport, SocketOptions};
use crate::ipfix::TemplateSpec;
use crate::meter::{FlowRecord, ProcessStats};
use crate::natevent::NatEvent;
use anyhow::{anyhow, Result};
use exporter::{Cmd, Counters, Exporter};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::mpsc::{self, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Message size limit over TCP, TLS and SCTP (QoF's, from libfixbuf).
pub const MAX_STREAM_MESSAGE: usize = 8192;
/// Message size limit over UDP: one datagram fits a 1500-octet Ethernet path with IPv6 and
/// UDP headers and room for tunnels (QoF's value).
pub const MAX_UDP_MESSAGE: usize = 1420;
/// Default collector ports (RFC 7011 §10.3.4 / §11).
pub const IPFIX_PORT: u16 = 4739;
pub const IPFIX_TLS_PORT: u16 = 4740;

/// Records in flight between the main loop and the exporter thread.
const CHANNEL_RECORDS: usize = 1024;

/// The certificate files of `--tls`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where and how to export.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub transport: IpfixTransport,
    /// Host name, IPv4 or IPv6 address (brackets allowed: `[::1]`).
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsFiles>,
    /// Re-send templates this often; `None` = once per session.
    pub template_refresh: Option<Duration>,
    /// Octets of messages held: waiting for the collector, or written and not yet
    /// acknowledged by its TCP.
    pub queue_bytes: usize,
    /// What a full queue does: slow the input down, or drop the oldest messages.
    pub when_full: QueueFull,
    /// UDP: records per second (0 = unpaced).
    pub rate: u64,
    /// How long a collector may take nothing: connection attempts and TLS handshakes, the
    /// input held up by a full queue, the end of the run waiting for the last records.
    pub timeout: Duration,
    pub observation_domain: u32,
    pub force_biflow: bool,
    /// Source address, TTL or hop limit, send buffer of the socket.
    pub sockets: SocketOptions,
    /// UDP: send the templates again every this many messages too.
    pub refresh_messages: Option<u32>,
    /// `--sampler`, told in an options record (see [`crate::ipfix::Encoder::set_sampling`]).
    pub sampling: Option<crate::meter::sampling::SamplerSpec>,
}

impl NetConfig {
    /// `tcp 127.0.0.1:4739`, `tls collector.example:4740`: how log lines name the collector.
    pub fn peer(&self) -> String {
        let proto = match (self.transport, self.tls.is_some()) {
            (IpfixTransport::Tcp, true) => "tls",
            (t, _) => t.name(),
        };
        let host = bare_host(&self.host);
        if host.contains(':') {
            format!("{proto} [{host}]:{}", self.port)
        } else {
            format!("{proto} {host}:{}", self.port)
        }
    }

    /// The timeout of one connection attempt or TLS handshake: `--export-timeout`, but never
    /// so short that a collector on the same host cannot answer.
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.max(Duration::from_millis(100))
    }
}

/// `[::1]` → `::1`: the brackets of a URL-style IPv6 address are not part of it.
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The collector's addresses, in resolver order.
pub(crate) fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (bare_host(host), port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no address",
        ));
    }
    Ok(addrs)
}

/// One stream session (TCP, TLS, SCTP) to the collector, written without blocking. Messages
/// are written whole into one session: a message cut short by a failure goes whole into the
/// next session.
pub trait Transport: Send {
    /// Take what the session can take of `buf` now; `Ok(0)`: nothing, wait for
    /// [`wait_writable`](Transport::wait_writable). An error means the session is unusable.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;

    /// Push out what the session still holds of earlier writes (TLS records); true when it
    /// holds nothing.
    fn flush(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// Octets handed to the kernel in this session (over TLS, record octets).
    fn written(&self) -> u64;

    /// The session's local address (the exporter's address, for the statistics record).
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    /// Of those, how many the collector's TCP has not acknowledged yet (the kernel's send
    /// queue), or `None` when the kernel cannot tell (SCTP): then written counts as delivered.
    fn unacked(&mut self) -> Option<u64>;

    /// Wait at most `timeout` for a write to be able to take something (or for an error).
    fn wait_writable(&mut self, timeout: Duration);

    /// False when the collector is known to have gone away (it closed its end of a stream).
    /// Checked before each message, so that a message is not written into a connection that
    /// is already dead.
    fn alive(&mut self) -> bool {
        true
    }

    /// End the session cleanly once everything was acknowledged (TLS close_notify, FIN).
    fn close(&mut self) {}

    /// End the session at once, discarding what the kernel still holds (a TCP reset): those
    /// octets are sent again on another connection or counted as lost, so they must not
    /// reach the collector later.
    fn abort(&mut self) {}
}

/// One datagram socket to the collector (UDP).
pub trait Datagrams: Send {
    /// Send one whole message as one datagram.
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;

    /// After the last message: the error, if the collector refused it (see
    /// [`super::last_datagram_refused`]).
    fn last_refused(&mut self) -> Option<io::Error> {
        None
    }

    /// The socket's local address (the exporter's address, for the statistics record).
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub struct ConnectError {
    pub message: String,
    /// A configuration problem (a certificate that does not verify) rather than a collector
    /// that is not there: at start-up, qof stops with this one line instead of retrying.
    pub permanent: bool,
}

impl ConnectError {
    pub(crate) fn transient(e: impl std::fmt::Display) -> Self {
        ConnectError {
            message: e.to_string(),
            permanent: false,
        }
    }
}

/// Opens stream sessions (TCP, TLS, SCTP): the first connection and every reconnection.
pub trait Connector: Send {
    fn connect(&mut self) -> Result<Box<dyn Transport>, ConnectError>;
}

/// What the exporter counted, readable from the main thread at any time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportTotals {
    /// Flow records delivered: acknowledged by the collector's TCP (TCP, TLS), written
    /// (SCTP), handed to the kernel (UDP).
    pub sent: u64,
    /// Flow records given up on the network: refused datagrams, undelivered when the
    /// collector took nothing for `--export-timeout`.
    pub lost: u64,
    /// Flow records dropped because the export queue was full (live capture).
    pub overflow: u64,
    /// Messages held: waiting for the collector, or written and not yet acknowledged.
    pub queued: u64,
    /// Connections made (stream transports).
    pub connections: u64,
    /// Messages handed to the kernel, and their octets.
    pub messages: u64,
    pub octets: u64,
}

/// The record sink of `--ipfix`.
pub struct IpfixNetSink {
    tx: Option<SyncSender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    peer: String,
    /// Delivery is acknowledged (streams) rather than unknowable (UDP).
    acknowledged: bool,
}

impl IpfixNetSink {
    /// Resolve the collector, open the socket (UDP) or make the first connection attempt
    /// (streams), then start the exporter thread. Certificates and keys are read here, before
    /// privileges are dropped. A collector that is not there yet is not an error: records are
    /// queued and the connection retried.
    pub fn open(cfg: NetConfig, spec: TemplateSpec) -> Result<Self> {
        let peer = cfg.peer();
        let unresolved = |e: io::Error| {
            anyhow!(
                "--ipfix {} --out {}: cannot resolve the collector ({e})",
                cfg.transport.name(),
                cfg.host
            )
        };
        let counters = Arc::new(Counters::default());
        let exporter = match cfg.transport {
            IpfixTransport::Udp => {
                let addrs = resolve(&cfg.host, cfg.port).map_err(unresolved)?;
                let t = udp::UdpTransport::open(&addrs, &cfg.sockets)
                    .map_err(|e| anyhow!("--ipfix {peer}: {e}"))?;
                counters.set_local(t.local_addr());
                Exporter::datagram(&cfg, spec, Box::new(t), peer.clone(), counters.clone())
            }
            IpfixTransport::Tcp | IpfixTransport::Sctp => {
                if cfg.transport == IpfixTransport::Sctp {
                    sctp::probe()?;
                }
                // Fail early on a name that does not resolve; reconnections resolve again.
                resolve(&cfg.host, cfg.port).map_err(unresolved)?;
                let tcp = stream::SocketConnector::new(
                    &cfg.host,
                    cfg.port,
                    cfg.transport == IpfixTransport::Sctp,
                    cfg.connect_timeout(),
                )
                .with_options(cfg.sockets);
                let mut connector: Box<dyn Connector> = match &cfg.tls {
                    Some(files) => Box::new(tls::TlsConnector::new(
                        tcp,
                        &cfg.host,
                        files,
                        cfg.connect_timeout(),
                    )?),
                    None => Box::new(tcp),
                };
                let first = match connector.connect() {
                    Ok(t) => Some(t),
                    Err(e) if e.permanent => return Err(anyhow!("--ipfix {peer}: {}", e.message)),
                    Err(e) => {
                        tracing::warn!(
                            "{peer}: cannot connect ({}); holding records (up to {} octets) \
                             and retrying",
                            e.message,
                            cfg.queue_bytes
                        );
                        None
                    }
                };
                Exporter::stream(&cfg, spec, connector, first, peer.clone(), counters.clone())
            }
        };
        let (tx, rx) = mpsc::sync_channel(CHANNEL_RECORDS);
        let thread = std::thread::Builder::new()
            .name("qof-export".into())
            .spawn(move || exporter.run(rx))?;
        Ok(IpfixNetSink {
            tx: Some(tx),
            thread: Some(thread),
            counters,
            peer,
            acknowledged: cfg.transport == IpfixTransport::Tcp,
        })
    }

    pub fn totals(&self) -> ExportTotals {
        self.counters.totals()
    }

    fn stopped(&self) -> io::Error {
        io::Error::other(format!("{}: the exporter thread stopped", self.peer))
    }

    /// Hand a command to the exporter thread. This waits only while the channel is full: for
    /// a live capture that is while the exporter thread encodes (it never waits on the network,
    /// and drops from its queue instead); for a file, also while its queue is full.
    fn hand_over(&mut self, cmd: Cmd) -> io::Result<()> {
        let Some(tx) = &self.tx else {
            return Err(self.stopped());
        };
        tx.send(cmd).map_err(|_| self.stopped())
    }
}

impl RecordSink for IpfixNetSink {
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        self.hand_over(Cmd::Flow(rec.clone()))
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        self.hand_over(Cmd::Stats(*stats))
    }

    fn write_nat(&mut self, event: &NatEvent) -> io::Result<()> {
        self.hand_over(Cmd::Nat(*event))
    }

    /// Flush, wait for the collector to take everything held (while it makes progress, and
    /// at most `--export-timeout` without), close the session.
    fn finish(&mut self) -> io::Result<()> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Cmd::Finish);
        }
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| io::Error::other(format!("{}: the exporter failed", self.peer)))?;
        }
        Ok(())
    }

    fn export_report(&self) -> Option<ExportReport> {
        let t = self.totals();
        Some(ExportReport {
            delivered: t.sent,
            lost: t.lost + t.overflow,
            overflow: t.overflow,
            acknowledged: self.acknowledged,
            confirmed_by: "the collector's TCP",
        })
    }

    fn failure(&self) -> Option<String> {
        self.counters.failure()
    }

    fn collectors(&self) -> Vec<CollectorStatus> {
        let t = self.totals();
        vec![CollectorStatus {
            name: self.peer.clone(),
            sent: t.sent,
            lost: t.lost + t.overflow,
            overflow: t.overflow,
            queued: t.queued,
            messages: t.messages,
            octets: t.octets,
            connections: t.connections,
            acknowledged: self.acknowledged,
            confirmed_by: "the collector's TCP",
            failed: self.counters.failure().is_some(),
        }]
    }

    fn resend_templates(&mut self) {
        // (An exporter that stopped has nothing to refresh.)
        let _ = self.hand_over(Cmd::SendTemplates);
    }

    fn flush_now(&mut self) -> io::Result<()> {
        self.hand_over(Cmd::Flush)
    }

    fn status(&self) -> Option<String> {
        let t = self.totals();
        let verb = if self.acknowledged {
            "delivered"
        } else {
            "sent"
        };
        Some(format!(
            "{}: {} records {verb}, {} lost ({} at the full export queue), {} messages held, \
             {} connections",
            self.peer,
            t.sent,
            t.lost + t.overflow,
            t.overflow,
            t.queued,
            t.connections
        ))
    }
}

impl Drop for IpfixNetSink {
    /// Dropped without `finish` (an error elsewhere): the exporter sees the channel close and
    /// drains as at a normal end, but nobody waits for it.
    fn drop(&mut self) {
        self.tx.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(host: &str, transport: IpfixTransport, tls: bool) -> NetConfig {
        NetConfig {
            transport,
            host: host.into(),
            port: 4739,
            tls: tls.then(|| TlsFiles {
                ca: "a".into(),
                cert: "b".into(),
                key: "c".into(),
            }),
            template_refresh: None,
            queue_bytes: 1 << 20,
            when_full: QueueFull::Wait,
            rate: 0,
            timeout: Duration::ZERO,
            observation_domain: 0,
            force_biflow: false,
            sockets: SocketOptions::default(),
            refresh_messages: None,
            sampling: None,
        }
    }

    #[test]
    fn peers_are_named_with_their_transport() {
        assert_eq!(
            cfg("127.0.0.1", IpfixTransport::Tcp, false).peer(),
            "tcp 127.0.0.1:4739"
        );
        assert_eq!(
            cfg("[::1]", IpfixTransport::Udp, false).peer(),
            "udp [::1]:4739"
        );
        assert_eq!(
            cfg("collector", IpfixTransport::Tcp, true).peer(),
            "tls collector:4739"
        );
    }

    #[test]
    fn addresses_resolve_with_or_without_brackets() {
        assert_eq!(
            resolve("[::1]", 9).unwrap(),
            vec!["[::1]:9".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve("127.0.0.1", 9).unwrap(),
            vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()]
        );
        assert!(resolve("localhost", 9).is_ok());
    }
}
