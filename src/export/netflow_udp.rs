//! NetFlow v1/v5/v9 export over UDP to one collector.
//!
//! Datagrams are paced (`--export-rate`, records per second; see [`crate::export::pace`]).
//! Reading a file or standard input, the pacer's wait slows the reading down; a live capture
//! cannot wait, so datagrams the pacer holds back wait in a bounded queue, whose overflow is
//! dropped and counted.
//!
//! UDP says nothing when a datagram is lost, but a collector that is not listening answers
//! with ICMP port unreachable, which the kernel reports on the socket's *next* send (or
//! receive) as "connection refused", and that next send is itself refused. So every refused
//! send counts its own records and those of the datagram sent just before it as lost; after
//! the last datagram the socket is asked once more. The count is an honest lower bound:
//! datagrams dropped silently on the way (a full receive buffer, a lost packet) cannot be
//! seen by any UDP exporter, which is why NetFlow has sequence numbers.
//! [`RecordSink::finish`] fails when anything was lost, so `qof` ends with a non-zero status.

use super::pace::Pacer;
use super::{CollectorStatus, ExportReport, RecordSink};
use crate::config::{QueueFull, SocketOptions};
use crate::meter::{FlowRecord, ProcessStats};
use crate::netflow::{Counters, DatagramSink, Encoder, Settings, Version};
use crate::time::Timestamp;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Instant;

/// The largest NetFlow datagram qof sends (v5's 30 records; v9 stays within 1400 octets): the
/// unit of `--export-queue`.
pub const NETFLOW_MAX_DATAGRAM: usize = 1464;

/// How a UDP export paces its datagrams, and what it does with those that pile up.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// Records per second; 0 = unpaced.
    pub rate: u64,
    pub when_full: QueueFull,
    /// Live input: octets of datagrams held back by the pacer.
    pub queue_bytes: usize,
}

pub struct NetflowUdpSink {
    enc: Encoder,
    link: Link,
}

/// The socket and what it managed to send.
struct Link {
    sock: UdpSocket,
    peer: SocketAddr,
    sent_datagrams: u64,
    sent_octets: u64,
    sent_records: u64,
    lost_records: u64,
    /// Records of the last datagram sent without error, until a later error blames it.
    unconfirmed: u32,
    first_error: Option<io::Error>,
    pacer: Option<Pacer>,
    when_full: QueueFull,
    /// Live input: datagrams the pacer holds back (octets, records), and their octets.
    waiting: VecDeque<(Vec<u8>, u32)>,
    waiting_bytes: usize,
    cap: usize,
    /// Records dropped because `waiting` was full.
    overflow: u64,
}

/// The collector's address: `host` is an IPv4 address, an IPv6 address (brackets allowed)
/// or a host name (its first address is used).
pub fn resolve_collector(host: &str, port: u16) -> io::Result<SocketAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    if bare.is_empty() || bare.contains(':') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{host}` is not a host name or IP address (give the port with --ipfix-port)"),
        ));
    }
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot resolve `{bare}`: {e}")))?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("`{bare}` has no address")))
}

impl NetflowUdpSink {
    /// A sink sending to `collector` from an ephemeral port of the same address family.
    pub fn connect(collector: SocketAddr, settings: &Settings, pacing: Pacing) -> io::Result<Self> {
        Self::connect_with(collector, settings, pacing, &SocketOptions::default())
    }

    /// The same, from a socket with `options` (source address, TTL, send buffer).
    pub fn connect_with(
        collector: SocketAddr,
        settings: &Settings,
        pacing: Pacing,
        options: &SocketOptions,
    ) -> io::Result<Self> {
        let sock = super::sockopt::udp_socket(collector, options)?;
        Ok(NetflowUdpSink {
            enc: Encoder::new(settings),
            link: Link {
                sock,
                peer: collector,
                sent_datagrams: 0,
                sent_octets: 0,
                sent_records: 0,
                lost_records: 0,
                unconfirmed: 0,
                first_error: None,
                pacer: Pacer::new(pacing.rate, Instant::now()),
                when_full: pacing.when_full,
                waiting: VecDeque::new(),
                waiting_bytes: 0,
                cap: pacing.queue_bytes.max(NETFLOW_MAX_DATAGRAM),
                overflow: 0,
            },
        })
    }

    pub fn counters(&self) -> Counters {
        self.enc.counters()
    }

    /// Flow records known to be lost (refused sends, dropped at the full queue).
    pub fn lost_records(&self) -> u64 {
        self.link.lost_records + self.link.overflow
    }
}

impl Link {
    /// `records` were not sent; with `blame_previous`, the error is the network's answer to
    /// the datagram sent before, so its records are lost too.
    fn lose(&mut self, records: u32, blame_previous: bool, e: io::Error) {
        if blame_previous {
            self.lost_records += u64::from(std::mem::take(&mut self.unconfirmed));
        }
        self.lost_records += u64::from(records);
        if self.first_error.is_none() {
            tracing::warn!(
                "NetFlow to {}: {e}; counting lost records and going on",
                self.peer
            );
            self.first_error = Some(e);
        }
    }

    /// Ask the socket whether the collector refused the last datagram.
    fn check_last(&mut self) {
        if self.sent_datagrams == 0 {
            return;
        }
        if let Some(e) = super::last_datagram_refused(&self.sock) {
            self.lose(0, true, e);
        }
    }
}

impl Link {
    /// Send the waiting datagrams the pacer lets go now.
    fn drain(&mut self) {
        while !self.waiting.is_empty() {
            if let Some(p) = &mut self.pacer {
                if !p.delay(Instant::now()).is_zero() {
                    return;
                }
            }
            let Some((d, records)) = self.waiting.pop_front() else {
                return;
            };
            self.waiting_bytes -= d.len();
            self.transmit(&d, records);
        }
    }

    /// Send every waiting datagram, waiting for the pacer (the end of the run).
    fn drain_all(&mut self) {
        while let Some((d, records)) = self.waiting.pop_front() {
            self.waiting_bytes -= d.len();
            self.wait_for_pacer();
            self.transmit(&d, records);
        }
    }

    /// Sleep until the pacer lets a datagram go: the input waits meanwhile.
    fn wait_for_pacer(&mut self) {
        if let Some(p) = &mut self.pacer {
            let d = p.delay(Instant::now());
            if !d.is_zero() {
                std::thread::sleep(d);
            }
        }
    }

    fn transmit(&mut self, datagram: &[u8], records: u32) {
        if let Some(p) = &mut self.pacer {
            p.spend(records);
        }
        match self.sock.send(datagram) {
            Ok(n) if n == datagram.len() => {
                self.sent_datagrams += 1;
                self.sent_octets += n as u64;
                self.sent_records += u64::from(records);
                self.unconfirmed = records;
            }
            Ok(n) => self.lose(
                records,
                false,
                io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("sent {n} of {} octets", datagram.len()),
                ),
            ),
            Err(e) => {
                let refused = e.kind() == io::ErrorKind::ConnectionRefused;
                self.lose(records, refused, e)
            }
        }
    }
}

impl DatagramSink for Link {
    fn send(&mut self, datagram: &[u8], records: u32) {
        if self.when_full == QueueFull::Wait {
            self.wait_for_pacer();
            self.transmit(datagram, records);
            return;
        }
        self.drain();
        let ready = self
            .pacer
            .as_mut()
            .map_or(true, |p| p.delay(Instant::now()).is_zero());
        if self.waiting.is_empty() && ready {
            self.transmit(datagram, records);
            return;
        }
        self.waiting.push_back((datagram.to_vec(), records));
        self.waiting_bytes += datagram.len();
        while self.waiting_bytes > self.cap {
            let Some((d, n)) = self.waiting.pop_front() else {
                break;
            };
            self.waiting_bytes -= d.len();
            if self.overflow == 0 {
                tracing::warn!(
                    "NetFlow to {}: export queue full ({} octets) at --export-rate: dropping \
                     the oldest datagrams; every lost record is counted",
                    self.peer,
                    self.cap
                );
            }
            self.overflow += u64::from(n);
        }
    }
}

impl RecordSink for NetflowUdpSink {
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        if !self.link.waiting.is_empty() {
            self.link.drain();
        }
        self.enc.push_flow(rec, &mut self.link);
        Ok(())
    }

    /// NetFlow has no record for qof's process statistics: they go to the log.
    fn write_stats(&mut self, s: &ProcessStats) -> io::Result<()> {
        tracing::info!(
            "statistics: {} flows exported, {} packets metered, {} dropped, {} ignored, \
             {} fragments expired, {} assembled, {} flushes, flow table peak {}, \
             {} flows/s, {} packets/s",
            s.exported_flows,
            s.packets,
            s.dropped,
            s.ignored,
            s.expired_fragments,
            s.assembled_fragments,
            s.flush_events,
            s.flow_table_peak,
            s.mean_flow_rate,
            s.mean_packet_rate,
        );
        Ok(())
    }

    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        self.link.drain();
        self.enc.tick(now, &mut self.link);
        Ok(())
    }

    fn first_packet(&mut self, ts: Timestamp) -> io::Result<()> {
        self.enc.first_packet(ts);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.enc.flush(&mut self.link);
        self.link.drain_all();
        self.link.check_last();
        let c = self.enc.counters();
        let v = self.enc.version().number();
        if c.not_carried > 0 {
            tracing::warn!(
                "NetFlow v5 carries IPv4 only: {} of {} uniflow records were not IPv4 and were not exported",
                c.not_carried,
                c.uniflows
            );
        }
        if c.reboots > 0 {
            tracing::info!(
                "NetFlow: packet time left the 49.7-day range of sysUptime or went back before boot {} times; the exporter's boot time moved with it (its datagrams stay exact)",
                c.reboots
            );
        }
        tracing::info!(
            "NetFlow v{v} to {}: {} records sent in {} datagrams, {} lost",
            self.link.peer,
            self.link.sent_records,
            self.link.sent_datagrams,
            self.lost_records()
        );
        match self.link.first_error.take() {
            Some(e) if self.link.lost_records > 0 => Err(io::Error::new(
                e.kind(),
                format!(
                    "NetFlow v{v} to {}: {} of {} flow records were lost ({e})",
                    self.link.peer,
                    self.lost_records(),
                    c.records
                ),
            )),
            _ => Ok(()),
        }
    }

    fn collectors(&self) -> Vec<CollectorStatus> {
        vec![CollectorStatus {
            name: format!("netflow{} {}", self.enc.version().number(), self.link.peer),
            sent: self.link.sent_records,
            lost: self.lost_records(),
            overflow: self.link.overflow,
            queued: self.link.waiting.len() as u64,
            messages: self.link.sent_datagrams,
            octets: self.link.sent_octets,
            connections: 0,
            acknowledged: false,
            confirmed_by: "",
            failed: false,
        }]
    }

    fn resend_templates(&mut self) {
        self.enc.resend_templates();
    }

    fn flush_now(&mut self) -> io::Result<()> {
        self.enc.flush(&mut self.link);
        Ok(())
    }

    fn export_report(&self) -> Option<ExportReport> {
        Some(ExportReport {
            delivered: self.link.sent_records,
            lost: self.lost_records(),
            overflow: self.link.overflow,
            acknowledged: false,
            confirmed_by: "",
        })
    }
}

impl NetflowUdpSink {
    pub fn version(&self) -> Version {
        self.enc.version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn collectors_are_addresses_or_names() {
        let v4 = resolve_collector("192.0.2.7", 2055).unwrap();
        assert_eq!(v4, "192.0.2.7:2055".parse().unwrap());
        for h in ["2001:db8::1", "[2001:db8::1]"] {
            assert_eq!(
                resolve_collector(h, 9995).unwrap(),
                "[2001:db8::1]:9995".parse().unwrap()
            );
        }
        assert!(resolve_collector("localhost", 1)
            .unwrap()
            .ip()
            .is_loopback());
        for bad in ["", "[]", "127.0.0.1:2055", "host:2055"] {
            let e = resolve_collector(bad, 2055).unwrap_err().to_string();
            assert!(e.contains("--ipfix-port"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_listening_collector_gets_every_record_and_nothing_is_lost() {
        let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
        collector
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let pacing = Pacing {
            rate: 0,
            when_full: QueueFull::Wait,
            queue_bytes: 1 << 20,
        };
        let mut sink = NetflowUdpSink::connect(
            collector.local_addr().unwrap(),
            &Settings::default(),
            pacing,
        )
        .unwrap();
        let mut rec = FlowRecord::default();
        rec.key.set_ipv4([10, 0, 0, 1], [10, 0, 0, 2]);
        rec.fwd.packets = 1;
        rec.end = Timestamp::from_secs(1_600_000_000);
        rec.start = rec.end;
        for _ in 0..100 {
            sink.write_flow(&rec).unwrap();
        }
        sink.finish().unwrap();
        assert_eq!(sink.lost_records(), 0);
        let c = sink.counters();
        assert_eq!((c.uniflows, c.records), (100, 100));
        let mut buf = [0u8; 2048];
        let mut got = 0;
        for _ in 0..c.datagrams {
            let n = collector.recv(&mut buf).unwrap();
            assert_eq!(buf[..2], [0, 9]);
            got += n;
        }
        assert!(got > 100 * crate::netflow::v9::IPV4_RECORD_LEN);
    }
}
