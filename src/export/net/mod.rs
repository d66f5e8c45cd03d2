//! IPFIX export to a live collector: UDP, TCP, TLS over TCP, SCTP (RFC 7011 §10).
//!
//! [`IpfixNetSink`] is the [`RecordSink`] the main loop writes to. It does no network I/O
//! itself: each record goes over a bounded channel to an exporter thread (module `exporter`), which
//! owns the [`Encoder`](crate::ipfix::Encoder) and the transport. So the per-packet path never
//! waits on a dead collector; it waits only while the channel is full, that is while a live
//! collector is slower than the meter (back-pressure: records are not thrown away because a
//! collector is busy).
//!
//! The exporter thread:
//! * flushes a partly filled message when no record came for a moment, so records reach the
//!   collector while the input is quiet;
//! * over a stream (TCP, TLS, SCTP), holds messages in a bounded queue while the collector is
//!   unreachable, reconnects with exponential backoff, and in front of the data of every new
//!   connection sends the templates that connection has not seen; what overflows the queue is
//!   dropped oldest first, counted and logged;
//! * over UDP, sends each message as one datagram, re-sends templates every
//!   `--template-refresh` seconds and counts the records of datagrams the kernel refused;
//! * never withdraws templates: UDP must not (RFC 7011 §8.1), and qof never redefines a
//!   template ID, so on a stream the end of the session withdraws them all.
//!
//! Time here is wall-clock (`Instant`): backoff, flush delays and template refresh are about
//! the network, not about packet time, and the meter stays sans-IO.

mod exporter;
pub mod sctp;
mod stream;
pub mod tls;
mod udp;

use super::RecordSink;
use crate::config::IpfixTransport;
use crate::ipfix::TemplateSpec;
use crate::meter::{FlowRecord, ProcessStats};
use anyhow::{anyhow, Result};
use exporter::{Cmd, Counters, Exporter};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
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
    /// Messages held while a stream collector is unreachable.
    pub queue_messages: usize,
    /// How long `finish` waits for the collector to take what is queued.
    pub drain_timeout: Duration,
    pub observation_domain: u32,
    pub force_biflow: bool,
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

/// One transport session to the collector. Messages go in whole.
pub trait Transport: Send {
    /// Send one whole message. An error means the session is unusable (a stream that failed
    /// mid-message is out of step; the collector discards the partial message).
    fn send(&mut self, msg: &[u8]) -> io::Result<()>;

    /// False when the collector is known to have gone away (it closed its end of a stream).
    /// Checked before each message, so that a message is not written into a connection that
    /// is already dead and lost without an error.
    fn alive(&mut self) -> bool {
        true
    }

    /// The longest one `send` may wait on a collector that takes nothing.
    fn set_write_timeout(&mut self, timeout: Duration) -> io::Result<()>;

    /// End the session cleanly (TLS close_notify); errors do not matter any more.
    fn close(&mut self) {}

    /// After the last message of a datagram transport: the error, if the collector refused
    /// it (see [`super::last_datagram_refused`]). Streams report failures on `send`.
    fn last_refused(&mut self) -> Option<io::Error> {
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
    /// Data records handed to the transport.
    pub sent: u64,
    /// Data records given up: queue overflow, refused datagrams, undelivered at exit.
    pub lost: u64,
    /// Messages waiting for the collector.
    pub queued: u64,
    /// Connections made (stream transports).
    pub connections: u64,
}

/// The record sink of `--ipfix`.
pub struct IpfixNetSink {
    tx: Option<SyncSender<Cmd>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    peer: String,
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
                let t = udp::UdpTransport::open(&addrs)
                    .map_err(|e| anyhow!("--ipfix udp {peer}: {e}"))?;
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
                );
                let mut connector: Box<dyn Connector> = match &cfg.tls {
                    Some(files) => Box::new(tls::TlsConnector::new(tcp, &cfg.host, files)?),
                    None => Box::new(tcp),
                };
                let first = match connector.connect() {
                    Ok(t) => Some(t),
                    Err(e) if e.permanent => return Err(anyhow!("--ipfix {peer}: {}", e.message)),
                    Err(e) => {
                        tracing::warn!(
                            "{peer}: cannot connect ({}); holding records (up to {} messages) \
                             and retrying",
                            e.message,
                            cfg.queue_messages
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
        })
    }

    pub fn totals(&self) -> ExportTotals {
        self.counters.totals()
    }

    fn send(&mut self, cmd: Cmd) -> io::Result<()> {
        let stopped = || io::Error::other(format!("{}: the exporter thread stopped", self.peer));
        match &self.tx {
            Some(tx) => tx.send(cmd).map_err(|_| stopped()),
            None => Err(stopped()),
        }
    }
}

impl RecordSink for IpfixNetSink {
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        self.send(Cmd::Flow(rec.clone()))
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        self.send(Cmd::Stats(*stats))
    }

    /// Flush, wait (at most `--export-timeout`) for the collector to take everything queued,
    /// close the session.
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

    fn lost(&self) -> Option<u64> {
        Some(self.counters.lost.load(Ordering::Relaxed))
    }

    fn status(&self) -> Option<String> {
        let t = self.totals();
        Some(format!(
            "{}: {} records sent, {} lost, {} messages queued, {} connections",
            self.peer, t.sent, t.lost, t.queued, t.connections
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
            queue_messages: 1,
            drain_timeout: Duration::ZERO,
            observation_domain: 0,
            force_biflow: false,
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
