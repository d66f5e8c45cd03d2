//! Options for running qof as a service (issue 15, items 4–8): export sockets, runtime
//! control, metrics, interfaces, NAT events. Taken as text and checked here, so that every
//! mistake is one line naming the option (clap's own errors are usage messages).

use super::collector::{parse_collectors, parse_ip, CollectorSpec};
use super::{Args, IpfixTransport, NetflowVersion};
use anyhow::{anyhow, bail, Result};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct OpsArgs {
    /// Network export: send from this local address (ipt-netflow's `destination=...@ADDRESS`;
    /// a collector in --out may name its own with `@ADDRESS`).
    #[arg(long, value_name = "ADDRESS")]
    pub source_address: Option<String>,

    /// Network export: the IPv4 TTL or IPv6 hop limit of the export packets (softflowd's -L),
    /// 1-255. Default: the system's for a unicast collector, 1 for a multicast group.
    #[arg(long, value_name = "HOPS")]
    pub export_ttl: Option<String>,

    /// Network export: the socket's send buffer in octets, K or M for KiB or MiB
    /// (ipt-netflow's sndbuf; the kernel caps it at net.core.wmem_max unless qof is root).
    #[arg(long, value_name = "SIZE")]
    pub export_sndbuf: Option<String>,

    /// UDP export (IPFIX or NetFlow v9): send the templates again every MESSAGES messages,
    /// as well as every --template-refresh seconds (ipt-netflow's refresh-rate).
    #[arg(long, value_name = "MESSAGES")]
    pub template_refresh_packets: Option<String>,

    /// Listen for qofctl's commands on this Unix socket (softflowd's -c).
    #[arg(long, value_name = "PATH")]
    pub ctl: Option<PathBuf>,

    /// Write qof's process id to this file while it runs (removed at the end).
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,

    /// Serve Prometheus metrics at http://HOST:PORT/metrics.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics: Option<String>,

    /// ingressInterface of every flow read from a file or standard input (live capture
    /// takes the interface's kernel index).
    #[arg(long, value_name = "INDEX")]
    pub ingress_interface: Option<String>,

    /// Live capture: interface index rules, ipt-netflow's snmp-rules: `NAME:BASE,...`; an
    /// interface named NAME followed by a number N gets index BASE + N (`ppp:200` makes
    /// ppp11 211); others keep the kernel's index.
    #[arg(long, value_name = "RULES")]
    pub interface_rules: Option<String>,

    /// Export NAT translation events from the kernel's conntrack (ipt-netflow's natevents) as
    /// IPFIX NAT event records (Linux, root or CAP_NET_ADMIN).
    #[arg(long)]
    pub natevents: bool,
}

/// Socket options of every export socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// Bind to this local address before connecting.
    pub source: Option<IpAddr>,
    /// IPv4 TTL / IPv6 hop limit (unicast or multicast, as the collector is).
    pub ttl: Option<u8>,
    /// SO_SNDBUF in octets.
    pub sndbuf: Option<usize>,
}

/// One name-to-index rule of `--interface-rules`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceRule {
    pub prefix: String,
    pub base: u32,
}

/// The index an interface gets: the first rule whose prefix is followed by a number only
/// (`ppp` and `ppp11`: base + 11), else `kernel`.
pub fn interface_index(rules: &[InterfaceRule], name: &str, kernel: u32) -> u32 {
    for r in rules {
        let Some(rest) = name.strip_prefix(r.prefix.as_str()) else {
            continue;
        };
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = rest.parse::<u32>() {
            return r.base.saturating_add(n);
        }
    }
    kernel
}

/// `NAME:BASE,...` of `--interface-rules`.
pub fn parse_interface_rules(text: &str) -> Result<Vec<InterfaceRule>> {
    let bad = |entry: &str, why: &str| anyhow!("--interface-rules {text}: `{entry}`: {why}");
    text.split(',')
        .map(|entry| {
            let entry = entry.trim();
            let Some((prefix, base)) = entry.split_once(':') else {
                return Err(bad(entry, "expected NAME:BASE (e.g. ppp:200)"));
            };
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
                return Err(bad(entry, "expected an interface name before the colon"));
            }
            if prefix.ends_with(|c: char| c.is_ascii_digit()) {
                return Err(bad(
                    entry,
                    "the name must not end in a digit (the number follows it)",
                ));
            }
            let base = base
                .parse::<u32>()
                .map_err(|_| bad(entry, "BASE is not a number from 0 to 4294967295"))?;
            Ok(InterfaceRule {
                prefix: prefix.to_string(),
                base,
            })
        })
        .collect()
}

/// A size in octets with an optional K, M or G, between `min` and `max`.
pub fn parse_size(option: &str, text: &str, min: u64, max: u64) -> Result<usize> {
    let bad = || {
        anyhow!(
            "{option} {text}: expected a size in octets, with K, M or G for KiB, MiB or GiB \
             (at least {min}, at most {max})"
        )
    };
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(bad()),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(1 << shift).ok_or_else(bad)?;
    if !(min..=max).contains(&bytes) {
        return Err(bad());
    }
    usize::try_from(bytes).map_err(|_| bad())
}

/// `HOST:PORT` to listen on (`[::1]:9100`, `localhost:9100`, `0.0.0.0:9100`).
pub fn parse_listen(option: &str, text: &str) -> Result<SocketAddr> {
    let bad = |why: &str| anyhow!("{option} {text}: {why}");
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h, p),
        _ => {
            return Err(bad(
                "expected HOST:PORT (e.g. 127.0.0.1:9100 or [::1]:9100)",
            ))
        }
    };
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    if host.starts_with('[') || !host.contains(':') {
        if let Some(ip) = parse_ip(host) {
            return Ok(SocketAddr::new(ip, port));
        }
    }
    if host.contains([':', '[', ']', '/', ' ']) {
        return Err(bad("expected HOST:PORT (an IPv6 address goes in brackets)"));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve `{host}` ({e})")))?
        .next()
        .ok_or_else(|| bad(&format!("`{host}` has no address")))
}

impl Args {
    /// The collectors `--out` names, for `--ipfix` or `--netflow` (checked).
    pub fn collectors(&self) -> Result<Vec<CollectorSpec>> {
        let text = self.output.as_deref().unwrap_or_default();
        let list = parse_collectors(text)?;
        if self.netflow.is_some() {
            if let Some(c) = list.iter().find(|c| c.transport.is_some()) {
                bail!(
                    "--out {text}: collector `{}`: NetFlow goes over UDP; a transport prefix \
                     applies to --ipfix collectors",
                    c.host
                );
            }
        }
        if self.tls {
            if let Some(c) = list
                .iter()
                .find(|c| c.transport.is_some_and(|t| t != IpfixTransport::Tcp))
            {
                bail!(
                    "--out {text}: collector `{}`: --tls needs TCP (DTLS over UDP or SCTP is \
                     not supported)",
                    c.host
                );
            }
        }
        Ok(list)
    }

    /// Options of every export socket.
    pub fn socket_options(&self) -> Result<SocketOptions> {
        let o = &self.ops;
        let source = match &o.source_address {
            None => None,
            Some(s) => Some(parse_ip(s).ok_or_else(|| {
                anyhow!("--source-address {s}: expected an IPv4 or IPv6 address of this host")
            })?),
        };
        let ttl = match &o.export_ttl {
            None => None,
            Some(t) => match t.parse::<u8>() {
                Ok(n @ 1..=255) => Some(n),
                _ => bail!("--export-ttl {t}: expected a hop count from 1 to 255"),
            },
        };
        let sndbuf = match &o.export_sndbuf {
            None => None,
            Some(s) => Some(parse_size("--export-sndbuf", s, 1024, 1 << 30)?),
        };
        Ok(SocketOptions {
            source,
            ttl,
            sndbuf,
        })
    }

    /// `--template-refresh-packets`: messages between template refreshes (UDP).
    pub fn template_refresh_messages(&self) -> Result<Option<u32>> {
        match &self.ops.template_refresh_packets {
            None => Ok(None),
            Some(t) => match t.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => bail!(
                    "--template-refresh-packets {t}: expected a number of messages from 1 to \
                     4294967295"
                ),
            },
        }
    }

    /// `--ingress-interface` (files and standard input).
    pub fn ingress_interface(&self) -> Result<Option<u32>> {
        match &self.ops.ingress_interface {
            None => Ok(None),
            Some(t) => t.parse::<u32>().map(Some).map_err(|_| {
                anyhow!("--ingress-interface {t}: expected an interface index from 0 to 4294967295")
            }),
        }
    }

    /// `--interface-rules`, parsed (empty when not given).
    pub fn interface_rules(&self) -> Result<Vec<InterfaceRule>> {
        match &self.ops.interface_rules {
            None => Ok(Vec::new()),
            Some(t) => parse_interface_rules(t),
        }
    }

    /// `--metrics HOST:PORT`.
    pub fn metrics_address(&self) -> Result<Option<SocketAddr>> {
        self.ops
            .metrics
            .as_deref()
            .map(|m| parse_listen("--metrics", m))
            .transpose()
    }

    /// Items 4–8's options, and how they combine with the others: one line per mistake.
    pub(super) fn check_ops(&self) -> Result<()> {
        let o = &self.ops;
        let network = self.netflow.is_some() || self.ipfix.is_some();
        // (No --out at all is --ipfix's or --netflow's own error, below.)
        if network && !matches!(self.output.as_deref(), None | Some("" | "-")) {
            self.collectors()?;
        }
        let sockets = self.socket_options()?;
        if sockets != SocketOptions::default() && !network {
            bail!("--source-address, --export-ttl and --export-sndbuf apply to network export: give --ipfix or --netflow");
        }
        if self.template_refresh_messages()?.is_some() {
            let udp_ipfix = matches!(self.ipfix_transport(), Ok(Some(IpfixTransport::Udp)));
            let v9 = self.netflow == Some(NetflowVersion::V9);
            let udp_entries = self.ipfix.is_some()
                && self
                    .collectors()
                    .is_ok_and(|l| l.iter().any(|c| c.transport == Some(IpfixTransport::Udp)));
            if !(udp_ipfix || v9 || udp_entries) {
                bail!("--template-refresh-packets applies to template-based UDP export (--ipfix udp, --netflow 9)");
            }
        }
        self.metrics_address()?;
        let inputs = self.inputs();
        let live = inputs.iter().any(|i| i.starts_with("int:"));
        if inputs.len() > 1 && !inputs.iter().all(|i| i.starts_with("int:")) {
            bail!("--in given {} times: several inputs must all be live interfaces (int:IFACE); files are read one run each", inputs.len());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = inputs.iter().find(|i| !seen.insert(*i)) {
            bail!("--in {dup} given twice");
        }
        if self.ingress_interface()?.is_some() && live {
            bail!("--ingress-interface applies to files and standard input; a live capture takes the interface's kernel index (or --interface-rules)");
        }
        if !self.interface_rules()?.is_empty() && !live {
            bail!(
                "--interface-rules maps interface names: it needs a live capture (--in int:IFACE)"
            );
        }
        self.check_natevents(o.natevents)
    }

    /// `--natevents` (or the YAML file's `natevents: true`, `on`) with the other options.
    pub fn check_natevents(&self, on: bool) -> Result<()> {
        if !on {
            return Ok(());
        }
        if self.netflow.is_some() {
            bail!("--natevents: NAT event records need IPFIX or JSON output, not --netflow");
        }
        if self.kafka.is_some() {
            bail!("--natevents: NAT event records go to IPFIX or JSON output, not --kafka");
        }
        if !self.inputs().iter().all(|i| i.starts_with("int:")) {
            bail!("--natevents: NAT events are read as the kernel translates: it needs a live capture (--in int:IFACE), not a file");
        }
        Ok(())
    }

    /// Every `--in` (standard input when none).
    pub fn inputs(&self) -> Vec<&str> {
        if self.input.is_empty() {
            vec!["-"]
        } else {
            self.input.iter().map(String::as_str).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn check(args: &[&str]) -> Result<Args> {
        let mut v = vec!["qof"];
        v.extend_from_slice(args);
        let a = Args::try_parse_from(v).map_err(|e| anyhow!("{e}"))?;
        a.check().map(|()| a)
    }

    fn error(args: &[&str]) -> String {
        let e = check(args).unwrap_err().to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn socket_options_are_checked() {
        let a = check(&[
            "--ipfix",
            "udp",
            "--out",
            "h",
            "--source-address",
            "[::1]",
            "--export-ttl",
            "64",
            "--export-sndbuf",
            "4M",
        ])
        .unwrap();
        assert_eq!(
            a.socket_options().unwrap(),
            SocketOptions {
                source: Some("::1".parse().unwrap()),
                ttl: Some(64),
                sndbuf: Some(4 << 20),
            }
        );
        for (args, what) in [
            (&["--source-address", "here"][..], "--source-address here:"),
            (&["--export-ttl", "0"], "--export-ttl 0:"),
            (&["--export-ttl", "256"], "--export-ttl 256:"),
            (&["--export-ttl", "x"], "--export-ttl x:"),
            (&["--export-sndbuf", "12"], "--export-sndbuf 12:"),
            (&["--export-sndbuf", "2G"], "--export-sndbuf 2G:"),
            (&["--export-sndbuf", "1Q"], "--export-sndbuf 1Q:"),
        ] {
            let mut v = vec!["--ipfix", "udp", "--out", "h"];
            v.extend_from_slice(args);
            assert!(error(&v).starts_with(what), "{args:?}: {}", error(&v));
        }
        assert!(error(&["--export-ttl", "5"]).contains("apply to network export"));
    }

    #[test]
    fn template_refresh_packets_needs_template_based_udp() {
        let a = check(&[
            "--netflow",
            "9",
            "--out",
            "h",
            "--template-refresh-packets",
            "20",
        ])
        .unwrap();
        assert_eq!(a.template_refresh_messages().unwrap(), Some(20));
        assert!(check(&[
            "--ipfix",
            "tcp",
            "--out",
            "udp://h,h",
            "--template-refresh-packets",
            "5"
        ])
        .is_ok());
        for args in [
            &[
                "--ipfix",
                "tcp",
                "--out",
                "h",
                "--template-refresh-packets",
                "5",
            ][..],
            &[
                "--netflow",
                "5",
                "--out",
                "h",
                "--template-refresh-packets",
                "5",
            ],
            &["--template-refresh-packets", "5"],
        ] {
            assert!(
                error(args).contains("applies to template-based UDP"),
                "{args:?}"
            );
        }
        let e = error(&[
            "--netflow",
            "9",
            "--out",
            "h",
            "--template-refresh-packets",
            "0",
        ]);
        assert!(e.starts_with("--template-refresh-packets 0:"), "{e}");
    }

    #[test]
    fn collectors_are_checked_against_the_export() {
        let a = check(&["--ipfix", "udp", "--out", "127.0.0.1:9000,[::1]:9001"]).unwrap();
        assert_eq!(a.collectors().unwrap().len(), 2);
        assert!(error(&["--netflow", "9", "--out", "tcp://h"]).contains("NetFlow goes over UDP"));
        assert!(error(&[
            "--ipfix",
            "tcp",
            "--tls",
            "--tls-ca",
            "a",
            "--tls-cert",
            "b",
            "--tls-key",
            "c",
            "--out",
            "udp://h"
        ])
        .contains("--tls needs TCP"));
        assert!(error(&["--ipfix", "udp", "--out", "h:0"]).contains("port `0`"));
    }

    #[test]
    fn service_options_are_checked() {
        assert!(check(&["--metrics", "127.0.0.1:9100", "--ctl", "/tmp/x"]).is_ok());
        assert!(check(&["--metrics", "[::1]:0"]).is_ok());
        assert!(check(&["--metrics", "localhost:9100"]).is_ok());
        for (m, what) in [
            ("9100", "expected HOST:PORT"),
            (":9100", "expected HOST:PORT"),
            ("h:x", "the port is not a number"),
            ("::1:9100", "an IPv6 address goes in brackets"),
            ("no.such.host.invalid:1", "cannot resolve"),
        ] {
            let e = error(&["--metrics", m]);
            assert!(
                e.starts_with(&format!("--metrics {m}: ")) && e.contains(what),
                "{e}"
            );
        }
    }

    #[test]
    fn interface_options_are_checked() {
        let a = check(&["--in", "x.pcap", "--ingress-interface", "7"]).unwrap();
        assert_eq!(a.ingress_interface().unwrap(), Some(7));
        assert!(error(&["--in", "x.pcap", "--ingress-interface=-1"])
            .starts_with("--ingress-interface -1:"));
        assert!(error(&["--in", "int:lo", "--ingress-interface", "3"]).contains("applies to files"));
        assert!(error(&["--in", "a.pcap", "--interface-rules", "eth:1"]).contains("needs a live"));
        assert!(check(&["--in", "int:lo", "--in", "int:eth0"]).is_ok());
        assert!(error(&["--in", "int:lo", "--in", "b.pcap"]).contains("must all be live"));
        assert!(error(&["--in", "int:lo", "--in", "int:lo"]).contains("given twice"));
        for (rules, what) in [
            ("eth", "expected NAME:BASE"),
            (":4", "expected an interface name"),
            ("eth0:4", "must not end in a digit"),
            ("eth:x", "BASE is not a number"),
            ("eth:1,,ppp:2", "expected NAME:BASE"),
        ] {
            let e = error(&["--in", "int:lo", "--interface-rules", rules]);
            assert!(
                e.starts_with("--interface-rules ") && e.contains(what),
                "{e}"
            );
        }
        let rules = parse_interface_rules("ppp:200,eth:100").unwrap();
        assert_eq!(interface_index(&rules, "ppp11", 3), 211);
        assert_eq!(interface_index(&rules, "eth0", 3), 100);
        assert_eq!(interface_index(&rules, "ethx", 3), 3);
        assert_eq!(interface_index(&rules, "eth", 3), 3);
        assert_eq!(interface_index(&rules, "lo", 1), 1);
        assert!(error(&[
            "--in",
            "int:lo",
            "--netflow",
            "9",
            "--out",
            "h",
            "--natevents"
        ])
        .contains("need IPFIX or JSON output"));
        assert!(error(&["--in", "x.pcap", "--natevents"]).contains("needs a live capture"));
        assert!(check(&["--in", "int:lo", "--natevents"]).is_ok());
    }
}
