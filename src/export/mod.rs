//! Record sinks: where flow records go (IPFIX files, JSON lines, IPFIX to a collector,
//! NetFlow over UDP).

mod ipfix_file;
mod json;
pub mod net;
mod netflow_udp;

pub use ipfix_file::{rotated_name, FileOutput, IpfixFileSink};
pub use json::JsonSink;
pub use netflow_udp::{resolve_collector, NetflowUdpSink};

use crate::meter::{FlowRecord, ProcessStats};
use crate::time::Timestamp;
use std::io;

/// A destination for flow records. Records arrive in the order the meter closed the flows.
pub trait RecordSink {
    /// Write one flow record.
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()>;

    /// Write the process statistics (the IPFIX options record of `--stats`).
    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()>;

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
