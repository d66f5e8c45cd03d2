//! The sans-IO metering core: decoded packets and packet time in, flow records out.
//!
//! No sockets, files or clocks; no global state. One [`Meter`] per worker.

mod record;

pub use record::{end_reason, DirStats, FlowRecord};

/// Process statistics exported in the `--stats` options record (QoF's statistics template).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Wall-clock time the process started (systemInitTimeMilliseconds).
    pub system_init_millis: u64,
    pub exported_flows: u64,
    /// Packets the meter accepted (packetTotalCount).
    pub packets: u64,
    /// Packets the capture source lost (droppedPacketTotalCount).
    pub dropped: u64,
    /// Packets the decoder ignored (ignoredPacketTotalCount).
    pub ignored: u64,
    /// Packets rejected (notSentPacketTotalCount). qof never rejects packets for time going
    /// backwards; this counts fragments dropped for want of table space.
    pub not_sent: u64,
    pub expired_fragments: u64,
    pub assembled_fragments: u64,
    pub flush_events: u64,
    pub flow_table_peak: u64,
    pub observation_domain: u32,
    /// meanFlowRate / meanPacketRate: per second of packet time.
    pub mean_flow_rate: u32,
    pub mean_packet_rate: u32,
}
