//! Record sinks: where flow records go (IPFIX files, JSON lines, IPFIX to a collector,
//! NetFlow over UDP).

mod ipfix_file;
mod json;
pub mod net;
mod netflow_udp;
mod output_file;

pub use ipfix_file::{rotated_name, FileOutput, IpfixFileSink};
pub use json::{JsonFileSink, JsonSink};
pub use netflow_udp::{resolve_collector, NetflowUdpSink};
pub use output_file::{remove_unfinished, FileId, OutputFile, OutputOptions};

use crate::meter::{FlowRecord, ProcessStats};
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

/// A destination for flow records. Records arrive in the order the meter closed the flows.
pub trait RecordSink {
    /// Write one flow record.
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()>;

    /// Write the process statistics (the IPFIX options record of `--stats`).
    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()>;

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

    /// Records this sink could not deliver (network export), `None` for sinks that cannot
    /// lose any without an error. Final after `finish`.
    fn lost(&self) -> Option<u64> {
        None
    }

    /// One line on the sink's state for a status log (SIGUSR1), if it has one worth telling.
    fn status(&self) -> Option<String> {
        None
    }
}
