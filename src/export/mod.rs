//! Record sinks: where flow records go (IPFIX files, JSON lines, IPFIX to a collector,
//! NetFlow over UDP, Kafka with the `kafka` feature).

mod fanout;
mod ipfix_file;
mod json;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod net;
mod netflow_udp;
mod output_file;
pub mod pace;
pub mod sockopt;

pub use fanout::FanOut;
pub use ipfix_file::{rotated_name, FileOutput, IpfixFileSink};
pub use json::{JsonFileSink, JsonSink};
pub use netflow_udp::{resolve_collector, NetflowUdpSink, Pacing, NETFLOW_MAX_DATAGRAM};
pub use output_file::{remove_unfinished, FileId, OutputFile, OutputOptions};

use crate::meter::{FlowRecord, ProcessStats};
use crate::natevent::NatEvent;
use crate::time::Timestamp;
use std::io;
use std::net::UdpSocket;
use std::time::Duration;

/// How long the end of a UDP export waits for a late ICMP error about its last datagram.
const LAST_ERROR_WAIT: Duration = Duration::from_millis(50);

/// Whether the collector refused the last datagram sent on the connected socket `sock`.
///
/// A collector that is not listening answers a datagram with ICMP port unreachable, which the
/// kernel reports on the socket's next send or receive as "connection refused" (and that send
/// is refused in its place). After the last datagram there is no next send, so the socket is
/// asked: its pending error, or a receive that waits a moment for an error to arrive (a remote
/// collector's ICMP takes a round trip).
pub(crate) fn last_datagram_refused(sock: &UdpSocket) -> Option<io::Error> {
    match sock.take_error() {
        Ok(Some(e)) => Some(e),
        Ok(None) => {
            let _ = sock.set_read_timeout(Some(LAST_ERROR_WAIT));
            let mut buf = [0u8; 64];
            match sock.recv(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Some(e),
                _ => None,
            }
        }
        Err(e) => Some(e),
    }
}

/// What a network export did with the flow records handed to it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Records delivered: acknowledged by the collector's TCP when `acknowledged`, else
    /// handed to the kernel (UDP, whose delivery nobody can confirm; SCTP).
    pub delivered: u64,
    /// Records known to be lost, `overflow` included.
    pub lost: u64,
    /// Of those, dropped at a full export queue (live capture).
    pub overflow: u64,
    /// Delivery is confirmed by acknowledgements (TCP, TLS, Kafka).
    pub acknowledged: bool,
    /// Who acknowledges, for the summary line ("the collector's TCP").
    pub confirmed_by: &'static str,
}

/// One collector's counts, for the summary, the status log, `qofctl statistics` and the
/// metrics (ipt-netflow's per-socket statistics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorStatus {
    /// `udp 127.0.0.1:4739`, `tls collector:4740`, `netflow9 [::1]:2055`.
    pub name: String,
    /// Flow records delivered (acknowledged, or sent when delivery cannot be confirmed).
    pub sent: u64,
    /// Flow records known to be lost, `overflow` included.
    pub lost: u64,
    /// Of those, dropped at a full export queue.
    pub overflow: u64,
    /// Messages (datagrams) held: waiting, or written and not yet acknowledged.
    pub queued: u64,
    /// Messages (datagrams) handed to the kernel, and their octets.
    pub messages: u64,
    pub octets: u64,
    /// Connections made (streams).
    pub connections: u64,
    /// Delivery is confirmed by acknowledgements (TCP, TLS, Kafka).
    pub acknowledged: bool,
    /// Who acknowledges ("the collector's TCP"), when `acknowledged`.
    pub confirmed_by: &'static str,
    /// The export to it was given up (it took nothing for --export-timeout while the input
    /// waited): what it is handed from then on is counted lost.
    pub failed: bool,
}

impl CollectorStatus {
    /// What this collector delivered and lost, as a report.
    pub fn report(&self) -> ExportReport {
        ExportReport {
            delivered: self.sent,
            lost: self.lost,
            overflow: self.overflow,
            acknowledged: self.acknowledged,
            confirmed_by: self.confirmed_by,
        }
    }
}

/// A destination for flow records. Records arrive in the order the meter closed the flows.
pub trait RecordSink {
    /// Write one flow record.
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()>;

    /// Write the process statistics (the IPFIX options record of `--stats`).
    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()>;

    /// Write one NAT event record (`--natevents`). Outputs without a record for it refuse.
    fn write_nat(&mut self, event: &NatEvent) -> io::Result<()> {
        let _ = event;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this output has no record for NAT events",
        ))
    }

    /// Called once before the first packet is read, when qof runs as the user it will finish
    /// as (after `--become-user`): create the output files now, as that user, so that a
    /// directory it cannot write to is an error before reading, and whoever creates the
    /// hidden file and the lock can rename and remove them.
    fn start(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// The time of the first packet read, before any record (NetFlow counts its sysUptime
    /// from it).
    fn first_packet(&mut self, ts: Timestamp) -> io::Result<()> {
        let _ = ts;
        Ok(())
    }

    /// Packet time has advanced to `now`: rotate files, refresh templates, if due.
    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        let _ = now;
        Ok(())
    }

    /// End of output: flush and close everything (publish the last file).
    fn finish(&mut self) -> io::Result<()>;

    /// What a network export delivered and lost, `None` for sinks that cannot lose records
    /// without an error. Final after `finish`.
    fn export_report(&self) -> Option<ExportReport> {
        None
    }

    /// Why the sink gave up (a collector that took nothing for `--export-timeout` while the
    /// input waited), once it has: the input should stop. Records written after it are
    /// counted as lost.
    fn failure(&self) -> Option<String> {
        None
    }

    /// One line on the sink's state for a status log (SIGUSR1), if it has one worth telling.
    fn status(&self) -> Option<String> {
        None
    }

    /// Each collector's counts (network export; empty for files and standard output).
    fn collectors(&self) -> Vec<CollectorStatus> {
        Vec::new()
    }

    /// Send every template again before the next record (`qofctl send-template`).
    fn resend_templates(&mut self) {}

    /// Send what is buffered now, a partly filled message included (`qofctl expire-all`:
    /// the records reach the collector at once).
    fn flush_now(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// SIGHUP: finish the output file written so far (published under its name, as at the
    /// end of a run) and go on in a new one; with rotation, rotate now. A no-op for standard
    /// output, devices and collectors.
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Wall-clock seconds since 1970 for a message header's export time. The kernel's coarse
/// clock (its last tick, read from the vDSO without the cycle counter) is enough for
/// seconds; the file exporter asks for it with every record, where the precise clock cost
/// 2 % of the time on the benchmark trace.
pub(crate) fn export_time() -> u32 {
    use nix::time::{clock_gettime, ClockId};
    match clock_gettime(ClockId::CLOCK_REALTIME_COARSE) {
        Ok(t) => t.tv_sec() as u32,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32),
    }
}
