//! qof: a passive network flow meter.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! capture  →  filter  →  decode  →  meter  →  export
//! (frames)    (BPF)      (views)    (flows)   (IPFIX / JSON)
//! ```
//!
//! * [`capture`] turns pcap/pcapng bytes into [`capture::Frame`]s (timestamp, link type, bytes).
//! * [`filter`] runs libpcap-compiled classic BPF over a frame.
//! * [`decode`] reads a frame through zero-copy typed views into a small [`decode::Packet`] summary.
//! * [`meter`] is the sans-IO metering core: packets and packet time in, [`meter::FlowRecord`]s out.
//!   It owns no sockets, files or clocks and has no global state, so N workers can each own one.
//! * [`ie`] is the one table of Information Elements that drives templates, encoders and printers.
//! * [`ipfix`] encodes and decodes IPFIX messages; [`netflow`] encodes NetFlow v5 and v9 datagrams;
//!   [`export`] holds the record sinks (files, JSON, NetFlow over UDP).
//!
//! `unsafe` is confined to the capture boundary ([`filter`] loads libpcap at run time).

pub mod capture;
pub mod config;
pub mod control;
pub mod decode;
pub mod export;
pub mod filter;
pub mod ie;
pub mod ipfix;
pub mod key;
pub mod meter;
pub mod metrics;
pub mod natevent;
pub mod netflow;
pub mod plugins;
#[cfg(test)]
mod testrand;
pub mod time;

/// qof's version, as `qof --version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
