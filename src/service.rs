//! qof as a service (issue 15, items 5 and 6): the control socket's commands, the metrics
//! endpoint's figures, SIGHUP, the pid file. Everything that acts on the meter or the sink
//! happens here, on the reading loop's thread, at its housekeeping points; the socket and
//! HTTP threads only carry requests and answers.

use crate::engine::{Engine, Snapshot};
use crate::Counters;
use anyhow::{Context, Result};
use qof::capture::PacketSource;
use qof::config::Args;
use qof::control::{self, Command};
use qof::decode::Ignore;
use qof::export::RecordSink;
use qof::meter::{FlowSummary, MeterConfig};
use qof::metrics::{self, rates::Rates, Figures};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the loop does after its housekeeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Go,
    /// `qofctl shutdown` or `exit`: stop reading (every flow left in memory is exported; after
    /// `exit` none is left).
    Stop,
}

pub struct Service {
    /// Raised by anything that needs the loop's attention before its next housekeeping point:
    /// a command, a scrape, SIGUSR1, SIGHUP. The loop looks at it once per frame.
    pub wake: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    ctl: Option<control::Server>,
    metrics: Option<Arc<metrics::http::Shared>>,
    pidfile: Option<PathBuf>,
    rates: Rates,
    started: std::time::SystemTime,
    /// Flow timeouts in force, for `qofctl timeouts`; the fragment table's limit.
    meter_cfg: MeterConfig,
    /// `qofctl shutdown` or `exit` stopped the input (not a signal).
    pub commanded_stop: bool,
}

/// The pid file: our process id, one line.
fn write_pidfile(path: &Path) -> Result<()> {
    std::fs::write(path, format!("{}\n", std::process::id()))
        .with_context(|| format!("--pidfile {}", path.display()))
}

impl Service {
    /// Open what `args` ask for (before privileges are dropped: the socket, the port and the
    /// pid file may need root). `wake` also carries SIGUSR1.
    pub fn start(args: &Args, meter_cfg: MeterConfig, wake: Arc<AtomicBool>) -> Result<Service> {
        use signal_hook::consts::{SIGHUP, SIGUSR1};
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGHUP, Arc::clone(&hup))?;
        signal_hook::flag::register(SIGHUP, Arc::clone(&wake))?;
        signal_hook::flag::register(SIGUSR1, Arc::clone(&wake))?;
        let ctl = match &args.ops.ctl {
            Some(path) => Some(control::Server::start(path, Arc::clone(&wake))?),
            None => None,
        };
        let metrics = match args.metrics_address()? {
            Some(addr) => {
                let shared = metrics::http::Shared::new(Arc::clone(&wake));
                let bound = metrics::http::start(addr, Arc::clone(&shared))
                    .with_context(|| format!("--metrics {addr}"))?;
                tracing::info!("metrics at http://{bound}/metrics");
                Some(shared)
            }
            None => None,
        };
        if let Some(p) = &args.ops.pidfile {
            write_pidfile(p)?;
        }
        Ok(Service {
            wake,
            hup,
            ctl,
            metrics,
            pidfile: args.ops.pidfile.clone(),
            rates: Rates::default(),
            started: std::time::SystemTime::now(),
            meter_cfg,
            commanded_stop: false,
        })
    }

    /// The loop's housekeeping: SIGHUP, commands, figures for a scrape, the rates.
    pub fn attend(
        &mut self,
        meter: &mut Engine,
        sink: &mut dyn RecordSink,
        n: &mut Counters,
        source: &dyn PacketSource,
        stop: &AtomicBool,
    ) -> Result<Next> {
        self.rates.sample(
            n.last_ts.nanos() as f64 / 1e9,
            [n.frames, n.octets, meter.snapshot().stats.flows_created],
        );
        if self.hup.swap(false, Ordering::AcqRel) {
            tracing::info!("SIGHUP: reopening the log and the output");
            if let Err(e) = crate::logging::reopen() {
                tracing::error!("{e}");
            }
            crate::meter_held(meter, sink, n)?;
            sink.reopen()?;
        }
        let mut next = Next::Go;
        while let Some(req) = self.ctl.as_ref().and_then(|c| c.next()) {
            let command = req.command;
            let (answer, after) = self.command(command, meter, sink, n, source, stop)?;
            tracing::info!("qofctl {}", command.word());
            req.answer(answer);
            if after == Next::Stop {
                self.commanded_stop = true;
                next = Next::Stop;
            }
        }
        if self.metrics.as_ref().is_some_and(|m| m.wanted()) {
            self.publish(meter, sink, n, source);
        }
        Ok(next)
    }

    /// Give a scrape the figures now (and at the start, so that the first scrape has some).
    pub fn publish(
        &self,
        meter: &Engine,
        sink: &dyn RecordSink,
        n: &Counters,
        source: &dyn PacketSource,
    ) {
        if let Some(m) = &self.metrics {
            m.publish(metrics::render(&self.figures(
                &meter.snapshot(),
                sink,
                n,
                source,
            )));
        }
    }

    fn figures(
        &self,
        s: &Snapshot,
        sink: &dyn RecordSink,
        n: &Counters,
        source: &dyn PacketSource,
    ) -> Figures {
        let m = s.stats;
        let secs = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64())
        };
        Figures {
            start_time: secs(self.started),
            packet_time: n.last_ts.nanos() as f64 / 1e9,
            packets_read: n.frames,
            bytes_read: n.octets,
            packets_filtered: n.filtered,
            packets_dropped: source.dropped(),
            packets_metered: m.packets,
            packets_ignored: Ignore::ALL
                .iter()
                .map(|&why| (why.name(), n.ignored.get(why) + s.ignored.get(why)))
                .collect(),
            flows_active: s.active as u64,
            flows_peak: m.peak_flows,
            flows_created: m.flows_created,
            flow_records: m.records_emitted,
            flows_evicted: m.flows_evicted,
            flows_deleted: m.flows_deleted,
            fragments_pending: s.frags as u64,
            fragments_limit: self.meter_cfg.max_frags as u64,
            fragments_expired: m.expired_fragments,
            fragments_assembled: m.assembled_datagrams,
            collectors: sink.collectors(),
            rates: self.rates.rates(),
        }
    }

    /// Carry out one command; its answer, and whether the loop stops.
    fn command(
        &mut self,
        command: Command,
        meter: &mut Engine,
        sink: &mut dyn RecordSink,
        n: &mut Counters,
        source: &dyn PacketSource,
        stop: &AtomicBool,
    ) -> Result<(String, Next)> {
        // (What the look-ahead holds is metered first: counts and lists are then whole.)
        crate::meter_held(meter, sink, n)?;
        let mut out = String::new();
        let next = match command {
            Command::Statistics => {
                self.statistics(&mut out, &meter.snapshot(), sink, n, source);
                Next::Go
            }
            Command::DumpFlows => {
                let flows = meter.flows();
                let _ = writeln!(out, "{} flows in memory", flows.len());
                for f in &flows {
                    out.push_str(&flow_line(f));
                    out.push('\n');
                }
                Next::Go
            }
            Command::ExpireAll => {
                let before = n.records;
                meter.expire_all();
                crate::export_ready(meter, sink, n)?;
                sink.flush_now()?;
                let _ = writeln!(
                    out,
                    "{} flows expired: their records are exported",
                    n.records - before
                );
                Next::Go
            }
            Command::DeleteAll => {
                let gone = meter.delete_all();
                let _ = writeln!(out, "{gone} flows deleted without export");
                Next::Go
            }
            Command::Timeouts => {
                let c = &self.meter_cfg;
                let _ = writeln!(out, "idle-timeout: {} s", c.idle_timeout_ms / 1000);
                if c.active_timeout_ms == u64::MAX {
                    let _ = writeln!(out, "active-timeout: off");
                } else {
                    let _ = writeln!(out, "active-timeout: {} s", c.active_timeout_ms / 1000);
                }
                // softflowd's per-protocol names, those given.
                let t = &c.timeouts;
                for (name, ms) in [
                    ("tcp", t.tcp_ms),
                    ("tcp.rst", t.tcp_rst_ms),
                    ("tcp.fin", t.tcp_fin_ms),
                    ("udp", t.udp_ms),
                    ("icmp", t.icmp_ms),
                ] {
                    if let Some(ms) = ms {
                        let _ = writeln!(out, "{name}: {} s", ms / 1000);
                    }
                }
                if t.expint_secs > 1 {
                    let _ = writeln!(out, "expint: {} s", t.expint_secs);
                }
                Next::Go
            }
            Command::SendTemplate => {
                sink.resend_templates();
                sink.flush_now()?;
                let _ = writeln!(out, "templates go again with the next records");
                Next::Go
            }
            Command::Shutdown => {
                stop.store(true, Ordering::Release);
                let _ = writeln!(
                    out,
                    "shutting down: the {} flows in memory are exported",
                    meter.snapshot().active
                );
                Next::Stop
            }
            Command::Exit => {
                let gone = meter.delete_all();
                stop.store(true, Ordering::Release);
                let _ = writeln!(out, "exiting: {gone} flows deleted without export");
                Next::Stop
            }
        };
        Ok((out, next))
    }

    /// `qofctl statistics`: the run so far, one subject per line.
    fn statistics(
        &self,
        out: &mut String,
        s: &Snapshot,
        sink: &dyn RecordSink,
        n: &Counters,
        source: &dyn PacketSource,
    ) {
        let f = self.figures(s, sink, n, source);
        let ignored: u64 = f.packets_ignored.iter().map(|(_, c)| c).sum();
        let _ = writeln!(
            out,
            "packets: {} read ({} octets), {} metered, {ignored} ignored, {} filtered out, {} \
             dropped by the kernel",
            f.packets_read, f.bytes_read, f.packets_metered, f.packets_filtered, f.packets_dropped
        );
        let _ = writeln!(
            out,
            "flows: {} in memory (peak {}), {} created, {} records, {} evicted (table full), {} \
             deleted",
            f.flows_active,
            f.flows_peak,
            f.flows_created,
            f.flow_records,
            f.flows_evicted,
            f.flows_deleted
        );
        let _ = writeln!(
            out,
            "fragments: {} datagrams pending, {} fragments expired, {} datagrams assembled",
            f.fragments_pending, f.fragments_expired, f.fragments_assembled
        );
        for (i, (read, dropped)) in source.per_reader().iter().enumerate() {
            let _ = writeln!(
                out,
                "worker {i}: {read} packets read, {dropped} dropped by the kernel"
            );
        }
        for r in &f.rates {
            let _ = writeln!(
                out,
                "rate {}: {:.1} packets/s, {:.0} octets/s, {:.1} flows/s",
                r.window, r.packets, r.bytes, r.flows
            );
        }
        for c in &f.collectors {
            let _ = writeln!(
                out,
                "collector {}: {} records {}, {} lost ({} at the full queue), {} messages \
                 queued, {} messages ({} octets) sent, {} connections{}",
                c.name,
                c.sent,
                if c.acknowledged { "delivered" } else { "sent" },
                c.lost,
                c.overflow,
                c.queued,
                c.messages,
                c.octets,
                c.connections,
                if c.failed { ", given up" } else { "" }
            );
        }
    }
}

impl Drop for Service {
    /// The pid file goes with qof (if it still names this process).
    fn drop(&mut self) {
        if let Some(p) = &self.pidfile {
            let ours = format!("{}\n", std::process::id());
            if std::fs::read_to_string(p).is_ok_and(|t| t == ours) {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// One flow of `dump-flows`: `flowId 3 udp 10.0.0.1:1000 > 10.0.0.2:53 vlan 0 in 1
/// 2024-01-01T00:00:00.000Z to ... packets 1/1 octets 58/58`.
fn flow_line(f: &FlowSummary) -> String {
    let k = &f.key;
    let proto = match k.proto {
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        58 => "icmp6".to_string(),
        p => format!("proto{p}"),
    };
    let end = |a: std::net::IpAddr, port: u16| match a {
        std::net::IpAddr::V4(a) => format!("{a}:{port}"),
        std::net::IpAddr::V6(a) => format!("[{a}]:{port}"),
    };
    format!(
        "flowId {} {proto} {} > {} vlan {} in {} {} to {} packets {}/{} octets {}/{}",
        f.flow_id,
        end(k.src_addr(), k.src_port),
        end(k.dst_addr(), k.dst_port),
        k.vlan,
        k.ingress,
        f.start,
        f.end,
        f.packets[0],
        f.packets[1],
        f.octets[0],
        f.octets[1]
    )
}
