//! Prometheus metrics (`--metrics HOST:PORT`, served at `/metrics` by [`http`]): what the
//! run has counted, in the text exposition format (version 0.0.4), with Prometheus's naming
//! conventions: counters end in `_total`, quantities are in base units (bytes, seconds),
//! per-collector series carry a `collector` label, rates a `window` label.
//!
//! qof's loop makes the [`Figures`] (it owns the meter) when a scrape asks for them; rendering
//! them is this module's, without I/O.

pub mod http;
pub mod rates;

use crate::export::CollectorStatus;
use std::fmt::Write;

/// One moving average of the rates, ipt-netflow's 1- and 5-minute figures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rate {
    /// `1m`, `5m`.
    pub window: &'static str,
    pub packets: f64,
    pub bytes: f64,
    pub flows: f64,
}

/// Everything `/metrics` shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// When qof started, seconds since the epoch.
    pub start_time: f64,
    /// The latest packet time, seconds since the epoch (0 before the first packet).
    pub packet_time: f64,
    /// Frames read from the input, and their length on the wire.
    pub packets_read: u64,
    pub bytes_read: u64,
    /// Frames the --filter expression left out.
    pub packets_filtered: u64,
    /// Frames the kernel dropped before qof read them (live capture).
    pub packets_dropped: u64,
    /// Packets the meter counted in flows (packetTotalCount).
    pub packets_metered: u64,
    /// Frames not metered, by reason (not IP, malformed, ...).
    pub packets_ignored: Vec<(&'static str, u64)>,
    pub flows_active: u64,
    pub flows_peak: u64,
    pub flows_created: u64,
    /// Flow records made (exportedFlowRecordTotalCount).
    pub flow_records: u64,
    /// Flows ended early because the table was full.
    pub flows_evicted: u64,
    /// Flows removed without a record (qofctl delete-all, exit).
    pub flows_deleted: u64,
    /// Datagrams awaiting their first fragment, and the most the table holds (0 = no limit).
    pub fragments_pending: u64,
    pub fragments_limit: u64,
    pub fragments_expired: u64,
    pub fragments_assembled: u64,
    pub collectors: Vec<CollectorStatus>,
    pub rates: Vec<Rate>,
}

/// One metric family: name, type, help, samples (labels, value).
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        self
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
        self
    }
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A sample value: integers without a fraction (counters stay exact up to 2^53), others
/// with as many digits as they need.
fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{}", v as i64)
    } else if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// The text of `/metrics`.
pub fn render(f: &Figures) -> String {
    let mut out = String::with_capacity(4096);
    let mut m = Family { out: &mut out };
    let counter = |m: &mut Family<'_>, name: &str, help: &str, v: u64| {
        m.head(name, "counter", help).sample(name, &[], v as f64);
    };
    let gauge = |m: &mut Family<'_>, name: &str, help: &str, v: f64| {
        m.head(name, "gauge", help).sample(name, &[], v);
    };
    m.head(
        "qof_info",
        "gauge",
        "qof's version (the value is always 1).",
    )
    .sample("qof_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    gauge(
        &mut m,
        "qof_start_time_seconds",
        "When qof started, in seconds since the epoch.",
        f.start_time,
    );
    gauge(
        &mut m,
        "qof_packet_time_seconds",
        "The latest packet time (the meter's clock), in seconds since the epoch.",
        f.packet_time,
    );
    counter(
        &mut m,
        "qof_packets_read_total",
        "Frames read from the input.",
        f.packets_read,
    );
    counter(
        &mut m,
        "qof_bytes_read_total",
        "Octets of the frames read from the input, as long as they were on the wire.",
        f.bytes_read,
    );
    counter(
        &mut m,
        "qof_packets_filtered_total",
        "Frames the --filter expression left out.",
        f.packets_filtered,
    );
    counter(
        &mut m,
        "qof_packets_dropped_total",
        "Frames the kernel dropped before qof read them (droppedPacketTotalCount).",
        f.packets_dropped,
    );
    counter(
        &mut m,
        "qof_packets_metered_total",
        "Packets counted in flows (packetTotalCount).",
        f.packets_metered,
    );
    let name = "qof_packets_ignored_total";
    m.head(
        name,
        "counter",
        "Frames not metered, by reason: not IP, malformed or cut short (ignoredPacketTotalCount).",
    );
    for (why, n) in &f.packets_ignored {
        m.sample(name, &[("reason", why)], *n as f64);
    }
    gauge(
        &mut m,
        "qof_flows_active",
        "Flows in memory.",
        f.flows_active as f64,
    );
    gauge(
        &mut m,
        "qof_flows_peak",
        "The most flows in memory at once (flowTablePeakCount).",
        f.flows_peak as f64,
    );
    counter(
        &mut m,
        "qof_flows_created_total",
        "Flows started.",
        f.flows_created,
    );
    counter(
        &mut m,
        "qof_flow_records_total",
        "Flow records made for export (exportedFlowRecordTotalCount).",
        f.flow_records,
    );
    counter(
        &mut m,
        "qof_flows_evicted_total",
        "Flows ended early because the flow table was full (max-flows).",
        f.flows_evicted,
    );
    counter(
        &mut m,
        "qof_flows_deleted_total",
        "Flows removed from memory without a record (qofctl delete-all, exit).",
        f.flows_deleted,
    );
    gauge(
        &mut m,
        "qof_fragments_pending",
        "Datagrams in the fragment table, awaiting their first fragment.",
        f.fragments_pending as f64,
    );
    gauge(
        &mut m,
        "qof_fragments_limit",
        "The most datagrams the fragment table holds (max-frags; 0 = no limit).",
        f.fragments_limit as f64,
    );
    counter(
        &mut m,
        "qof_fragments_expired_total",
        "Fragments whose datagram's first fragment never came (expiredFragmentCount).",
        f.fragments_expired,
    );
    counter(
        &mut m,
        "qof_fragments_assembled_total",
        "Datagrams whose fragments were all attributed (assembledFragmentCount).",
        f.fragments_assembled,
    );
    type Get = fn(&CollectorStatus) -> f64;
    let per_collector: [(&str, &str, &str, Get); 7] = [
        (
            "qof_export_records_sent_total",
            "counter",
            "Flow records delivered to the collector (acknowledged by its TCP or by Kafka's in-sync replicas, or sent over UDP and SCTP).",
            |c| c.sent as f64,
        ),
        (
            "qof_export_records_lost_total",
            "counter",
            "Flow records known to be lost on the way to the collector (notSentFlowTotalCount).",
            |c| c.lost as f64,
        ),
        (
            "qof_export_records_dropped_total",
            "counter",
            "Of the lost records, those dropped at the full export queue.",
            |c| c.overflow as f64,
        ),
        (
            "qof_export_messages_queued",
            "gauge",
            "Messages held for the collector: waiting, or written and not yet acknowledged.",
            |c| c.queued as f64,
        ),
        (
            "qof_export_messages_total",
            "counter",
            "Messages (datagrams) handed to the kernel for the collector (to librdkafka for Kafka).",
            |c| c.messages as f64,
        ),
        (
            "qof_export_bytes_total",
            "counter",
            "Octets of those messages.",
            |c| c.octets as f64,
        ),
        (
            "qof_export_connections_total",
            "counter",
            "Connections made to the collector (TCP, TLS, SCTP).",
            |c| c.connections as f64,
        ),
    ];
    for (name, kind, help, get) in per_collector {
        m.head(name, kind, help);
        for c in &f.collectors {
            m.sample(name, &[("collector", &c.name)], get(c));
        }
    }
    type RateGet = fn(&Rate) -> f64;
    let rates: [(&str, &str, RateGet); 3] = [
        (
            "qof_rate_packets_per_second",
            "Packets read per second of packet time, moving average over the window.",
            |r| r.packets,
        ),
        (
            "qof_rate_bytes_per_second",
            "Octets read per second of packet time, moving average over the window.",
            |r| r.bytes,
        ),
        (
            "qof_rate_flows_per_second",
            "Flows started per second of packet time, moving average over the window.",
            |r| r.flows,
        ),
    ];
    for (name, help, get) in rates {
        m.head(name, "gauge", help);
        for r in &f.rates {
            m.sample(
                name,
                &[("window", r.window)],
                (get(r) * 1000.0).round() / 1000.0,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_labels_and_numbers() {
        let f = Figures {
            packets_read: 10,
            packets_ignored: vec![("not-ip", 2), ("short-l3", 0)],
            collectors: vec![CollectorStatus {
                name: "udp \"a\"\\b".into(),
                sent: 7,
                ..CollectorStatus::default()
            }],
            rates: vec![Rate {
                window: "1m",
                packets: 1.5,
                bytes: 12.34567,
                flows: 0.0,
            }],
            ..Figures::default()
        };
        let text = render(&f);
        assert!(text.contains(
            "# HELP qof_packets_read_total Frames read from the input.\n\
             # TYPE qof_packets_read_total counter\nqof_packets_read_total 10\n"
        ));
        assert!(text.contains("qof_packets_ignored_total{reason=\"not-ip\"} 2\n"));
        assert!(
            text.contains("qof_export_records_sent_total{collector=\"udp \\\"a\\\"\\\\b\"} 7\n")
        );
        assert!(text.contains("qof_rate_packets_per_second{window=\"1m\"} 1.5\n"));
        assert!(text.contains("qof_rate_bytes_per_second{window=\"1m\"} 12.346\n"));
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(3.0), "3");
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let mut w = line.split(' ').skip(2);
            let (name, kind) = (w.next().unwrap(), w.next().unwrap());
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        }
    }
}
