//! Configuration: QoF's command line and its YAML file, validated into the settings each stage
//! takes. Every mistake a user can make is one clear error line naming the option or key.

use crate::meter::{EchoRule, MeterConfig, TcpConfig};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, ValueEnum};
use serde::Deserialize;
use std::path::PathBuf;

mod collector;
pub mod flows;
mod ops;
pub mod timeouts;
pub use collector::{parse_collectors, parse_ip, CollectorSpec};
pub use ops::{interface_index, parse_size, InterfaceRule, OpsArgs, SocketOptions};

/// What the flow records are written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// RFC 7011 IPFIX messages (an RFC 5655 file, or a stream to standard output).
    Ipfix,
    /// One JSON object per flow record, keys = Information Element names.
    Json,
}

/// Default `--export-rate`: records per second over UDP. nfcapd with its default receive
/// buffer on this project's 2-core test machine stores every one of 300,000 flows at up to
/// 500,000 records/s when the machine is idle, but loses some at 100,000 beside four
/// CPU-bound processes; at this rate it stored all of them in every run (README, and
/// `tests/export_accounting.rs`). For the default template's IPv4 records (36 per datagram)
/// it is about 1,400 datagrams per second, 15 Mbit/s.
pub const DEFAULT_EXPORT_RATE: u64 = 50_000;

/// NetFlow versions of `--netflow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetflowVersion {
    /// NetFlow v1: IPv4 only, fixed records, no sequence numbers (softflowd's -v 1).
    #[value(name = "1")]
    V1,
    /// NetFlow v5: IPv4 only, fixed records.
    #[value(name = "5")]
    V5,
    /// NetFlow v9 (RFC 3954): templates, IPv4 and IPv6.
    #[value(name = "9")]
    V9,
}

/// Kafka batch compression (`--kafka-compression`), librdkafka's codec names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KafkaCompression {
    None,
    Gzip,
    Snappy,
    /// The default: fast, and about 4x on JSON flow records.
    Lz4,
    Zstd,
}

impl KafkaCompression {
    pub fn name(self) -> &'static str {
        match self {
            KafkaCompression::None => "none",
            KafkaCompression::Gzip => "gzip",
            KafkaCompression::Snappy => "snappy",
            KafkaCompression::Lz4 => "lz4",
            KafkaCompression::Zstd => "zstd",
        }
    }
}

/// SASL mechanisms of `--kafka-sasl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KafkaSasl {
    #[value(name = "scram-sha-256")]
    ScramSha256,
    #[value(name = "scram-sha-512")]
    ScramSha512,
    /// The password in the clear: only over --tls.
    Plain,
}

impl KafkaSasl {
    /// librdkafka's `sasl.mechanism` value.
    pub fn mechanism(self) -> &'static str {
        match self {
            KafkaSasl::ScramSha256 => "SCRAM-SHA-256",
            KafkaSasl::ScramSha512 => "SCRAM-SHA-512",
            KafkaSasl::Plain => "PLAIN",
        }
    }
}

/// Default `--export-timeout`, seconds.
pub const EXPORT_TIMEOUT: u64 = 5;
/// Default `--export-timeout` with `--kafka`: a partition's leader may take this long to
/// move after its broker dies (KRaft's broker session timeout is 9 s by default), and the
/// records waiting for it are not to be given up meanwhile.
pub const KAFKA_EXPORT_TIMEOUT: u64 = 30;

/// The default NetFlow collector port (softflowd's and nfcapd's examples use it too).
pub const NETFLOW_PORT: u16 = 2055;

/// The transport of `--ipfix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpfixTransport {
    Tcp,
    Udp,
    Sctp,
}

impl IpfixTransport {
    pub fn name(self) -> &'static str {
        match self {
            IpfixTransport::Tcp => "tcp",
            IpfixTransport::Udp => "udp",
            IpfixTransport::Sctp => "sctp",
        }
    }
}

/// What a full network export queue does (`--export-queue-full`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueueFull {
    /// Stop taking records until the collector takes some: reading waits (files and standard
    /// input; a collector that takes nothing for --export-timeout ends the run).
    Wait,
    /// Drop the oldest messages, counted as lost (live capture, which cannot wait).
    Drop,
}

/// Default `--export-queue-bytes`: 32 MiB.
pub const EXPORT_QUEUE_BYTES: usize = 32 << 20;
/// The smallest `--export-queue-bytes`: one message of the largest size (TCP).
pub const MIN_QUEUE_BYTES: usize = 8192;

/// qof: a passive flow meter. Reads packets, assembles bidirectional flows (RFC 5103) and
/// writes them as IPFIX (RFC 7011 / RFC 5655) or JSON lines.
#[derive(Parser, Debug, Clone)]
#[command(name = "qof", version, about, disable_version_flag = true)]
pub struct Args {
    /// Input: a pcap or pcapng file (plain or gzip), `-` for standard input; the libtrace
    /// prefix `pcapfile:` is accepted; `int:IFACE` captures live (Linux; repeatable: several
    /// interfaces at once). Default: standard input.
    #[arg(long = "in", value_name = "INPUT")]
    pub input: Vec<String>,

    /// Output file, `-` for standard output (the default). With --rotate, the file-name prefix.
    #[arg(long = "out", value_name = "OUTPUT")]
    pub output: Option<String>,

    /// Output format: ipfix (the default) or json (the default with --kafka).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// YAML configuration file (template, timeouts, table limits).
    #[arg(long, value_name = "CONFIG_FILE")]
    pub yaml: Option<PathBuf>,

    /// Enable a flow plugin (per-flow extension fields, as ipfixprobe's): `NAME` or
    /// `NAME;OPTION[=VALUE];...`, e.g. `pstats;includezeroes;skipdup`. Repeatable; the YAML
    /// `plugins:` list takes the same. Naming a plugin's element in the template enables it
    /// too. `--plugin help` lists the plugins and their options.
    #[arg(long = "plugin", value_name = "SPEC")]
    pub plugins: Vec<String>,

    /// Meter on N threads, each with its own flow table, fed by the reading thread (`auto`:
    /// one per available core); on one live interface each reads a socket of its own in a
    /// PACKET_FANOUT group. Default 1: metering on the reading thread.
    #[arg(long, value_name = "N", default_value = "1")]
    pub workers: String,

    /// A timeout, softflowd's `-t`: NAME=TIME, NAME one of general, tcp, tcp.rst, tcp.fin, udp,
    /// icmp, maxlife (0 = off), expint; TIME as 300, 90s, 5m, 1h30m, 2d. Repeatable; overrides
    /// the YAML file's.
    #[arg(long = "timeout", value_name = "NAME=TIME")]
    pub timeout: Vec<String>,

    /// Meter a sample: `deterministic:N` (every N-th packet), `random:N` (one packet of each
    /// N at random; `random:N:SEED`), `hash:N` (about one flow in N, whole, by a keyed hash
    /// of its key; `hash:N:KEY`). N from 2. Counts are reported as observed.
    #[arg(long, value_name = "METHOD:N[:KEY]")]
    pub sampler: Option<String>,

    /// What a flow is, softflowd's `-T`: `full` (default: addresses, ports, protocol),
    /// `proto` (addresses and protocol) or `ip` (addresses only).
    #[arg(long, value_name = "LEVEL")]
    pub track_level: Option<String>,

    /// ipt-netflow's aggregation rules, comma-separated: `NET/LEN=BITS` keeps the first BITS
    /// of an address inside NET/LEN; `PORT=TO` or `LOW-HIGH=TO` replaces a port in the range.
    /// E.g. `192.168.0.0/16=24,10.0.0.0/8=16,1024-65535=1024`.
    #[arg(long, value_name = "RULES")]
    pub aggregation: Option<String>,

    /// Make the DSCP (the ToS octet without its ECN bits) part of the flow key.
    #[arg(long)]
    pub key_tos: bool,

    /// Make the outer VLAN id (of Q-in-Q frames) part of the flow key, beside the innermost.
    #[arg(long)]
    pub key_vlan: bool,

    /// Live capture: keep at most this many octets of each frame (the kernel cuts them; the
    /// wire length is kept). Default 2048.
    #[arg(long, value_name = "OCTETS")]
    pub snaplen: Option<u32>,

    /// Live capture: the receive ring's size in MiB, what waits while qof is busy (default
    /// 64; with --workers N on one interface, shared by the N sockets' rings).
    #[arg(long, value_name = "MIB")]
    pub ring_size: Option<usize>,

    /// Only meter packets matching this tcpdump filter expression (needs libpcap at run time;
    /// on a live interface the kernel runs it, and refused frames never reach qof).
    #[arg(long, value_name = "BPF_FILTER")]
    pub filter: Option<String>,

    /// Start a new output file every ROTATE_DELAY seconds of packet time.
    #[arg(long, value_name = "ROTATE_DELAY")]
    pub rotate: Option<u64>,

    /// Hold a `<file>.lock` while each output file is written.
    #[arg(long)]
    pub lock: bool,

    /// Export NetFlow (5 or 9) over UDP to the collector --out HOST (an IPv4 or IPv6 address or
    /// a host name), port --ipfix-port (default 2055), instead of IPFIX or JSON.
    #[arg(long, value_enum, value_name = "VERSION")]
    pub netflow: Option<NetflowVersion>,

    /// NetFlow engine id (v5 header, v9 ENGINE_ID). Default: the observation domain's low octet.
    #[arg(long, value_name = "ENGINE_ID")]
    pub engine_id: Option<u8>,

    /// Export process statistics every INTERVAL seconds of packet time (0 = never).
    #[arg(long, value_name = "INTERVAL", default_value_t = 0)]
    pub stats: u64,

    /// Observation domain ID of the exported IPFIX messages.
    #[arg(long, value_name = "DOMAIN_ID", default_value_t = 0)]
    pub observation_domain: u32,

    /// Export to a collector over this transport (tcp, udp, sctp) instead of a file; --out
    /// names the collector's host (a name, an IPv4 or an IPv6 address).
    #[arg(long, value_name = "TRANSPORT_PROTOCOL")]
    pub ipfix: Option<String>,

    /// Collector port (default 4739, 4740 with --tls).
    #[arg(long, value_name = "PORT")]
    pub ipfix_port: Option<u16>,

    /// Use TLS to the collector (--ipfix tcp only); needs --tls-ca, --tls-cert and --tls-key.
    #[arg(long)]
    pub tls: bool,
    /// CA certificates (PEM) the collector's certificate must chain to.
    #[arg(long, value_name = "CA_PEM_FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Our certificate chain (PEM), presented to the collector.
    #[arg(long, value_name = "CERT_PEM_FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Our private key (PEM); if encrypted (PKCS#8), the password is in QOF_TLS_PASS.
    #[arg(long, value_name = "KEY_PEM_FILE")]
    pub tls_key: Option<PathBuf>,

    /// Resend templates every TEMPLATE_TIMEOUT seconds (default 60 with --ipfix udp, else
    /// never; 0 = never).
    #[arg(long, value_name = "TEMPLATE_TIMEOUT")]
    pub template_refresh: Option<u64>,

    /// Network export: the queue's size in messages of the largest size (8192 octets over
    /// TCP, TLS and SCTP, 1420 over UDP); kept for compatibility, see --export-queue-bytes.
    #[arg(long, value_name = "MESSAGES")]
    pub export_queue: Option<usize>,

    /// Network export: octets of messages held while the collector is slow or unreachable,
    /// and (TCP) until its TCP acknowledges them; K, M or G for KiB, MiB, GiB (default 32M).
    #[arg(long, value_name = "SIZE")]
    pub export_queue_bytes: Option<String>,

    /// Network export: when the queue is full, wait (slow the reading down; the default for
    /// files and standard input) or drop the oldest messages, counted (the default and only
    /// choice for live capture).
    #[arg(long, value_enum, value_name = "WHAT")]
    pub export_queue_full: Option<QueueFull>,

    /// UDP export (IPFIX or NetFlow): at most this many records per second, so that the
    /// collector keeps up (default 50000; 0 = as fast as they are made).
    #[arg(long, value_name = "RECORDS_PER_SECOND")]
    pub export_rate: Option<u64>,

    /// Network export: how long a collector may take nothing before qof gives up on it:
    /// each connection attempt and TLS handshake, the reading held up by a full queue (then
    /// qof stops with an error), the end of the run waiting for the last records (0 = give
    /// up at once: what is still held is counted lost). Default 5, with --kafka 30 (a Kafka
    /// leader election takes seconds).
    #[arg(long, value_name = "SECONDS")]
    pub export_timeout: Option<u64>,

    /// Publish the flow records to Kafka: BROKERS is the bootstrap list (`host:port,...`).
    /// One record per message (JSON, or IPFIX with --format ipfix), keyed by the flow's
    /// flowKeyHash; needs --kafka-topic. Only in builds with the `kafka` feature.
    #[arg(long, value_name = "BROKERS")]
    pub kafka: Option<String>,

    /// The Kafka topic the records go to.
    #[arg(long, value_name = "TOPIC")]
    pub kafka_topic: Option<String>,

    /// Compression of Kafka message batches.
    #[arg(long, value_enum, value_name = "CODEC")]
    pub kafka_compression: Option<KafkaCompression>,

    /// SASL authentication to the brokers (over TLS with --tls); the user is --kafka-user,
    /// the password is read from the environment variable QOF_KAFKA_PASSWORD.
    #[arg(long, value_enum, value_name = "MECHANISM")]
    pub kafka_sasl: Option<KafkaSasl>,

    /// The SASL user name of --kafka-sasl.
    #[arg(long, value_name = "USER")]
    pub kafka_user: Option<String>,

    /// Any other librdkafka producer property, `KEY=VALUE` (e.g. `linger.ms=100`);
    /// repeatable. Given after qof's own settings, so it overrides them.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE")]
    pub kafka_options: Vec<String>,

    /// Drop privileges to this user after opening inputs, outputs and sockets (needs root).
    #[arg(long, value_name = "UNPRIVILEGED_USER")]
    pub become_user: Option<String>,
    /// With --become-user: the group to run as (default: the user's primary group).
    #[arg(long, value_name = "UNPRIVILEGED_GROUP")]
    pub become_group: Option<String>,

    /// Where log messages go: `stderr`, an absolute file path, or a syslog facility name.
    #[arg(long, value_name = "LOG_SPECIFIER", default_value = "stderr")]
    pub log: String,

    /// quiet, error, critical, warning, message, info or debug.
    #[arg(long, value_name = "LOG_LEVEL", default_value = "warning")]
    pub loglevel: String,

    /// Same as --loglevel debug.
    #[arg(long)]
    pub verbose: bool,

    /// Print the version (on standard output) and exit.
    #[arg(short = 'V', long)]
    pub version: bool,

    #[command(flatten)]
    pub ops: OpsArgs,
}

// The command line of `qofdump` lives here, beside qof's, so that the man pages and shell
// completions are generated from both (`cargo xtask dist`).
/// Print IPFIX (RFC 7011) data records as JSON lines, one object per record.
#[derive(Parser, Debug, Clone)]
#[command(name = "qofdump", version)]
pub struct DumpArgs {
    /// IPFIX files, plain or gzip-compressed; `-` or none reads standard input.
    pub files: Vec<String>,
    /// Also print each template as a JSON line `{"@template": {...}}` (and withdrawals).
    #[arg(long)]
    pub templates: bool,
    /// Skip options records (exporter statistics and the like).
    #[arg(long)]
    pub no_options: bool,
    /// Print the enterprise elements qof knows (CERT, QoF, CESNET, Flowmon) as an XML
    /// registry, for a collector's element file (`ipfixDump --element-file`), and exit.
    #[arg(long)]
    pub element_xml: bool,
    /// Read the records qof published to a Kafka topic instead of files: every partition from
    /// its first message to its end when qofdump starts (JSON messages as they are, IPFIX
    /// messages decoded). Only in builds with the `kafka` feature.
    #[arg(long, value_name = "BROKERS", conflicts_with_all = ["files", "templates", "element_xml"])]
    pub kafka: Option<String>,
    /// The topic of --kafka.
    #[arg(long, value_name = "TOPIC", requires = "kafka")]
    pub kafka_topic: Option<String>,
    /// A librdkafka consumer property, `KEY=VALUE` (TLS, SASL); repeatable.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", requires = "kafka")]
    pub kafka_options: Vec<String>,
    /// With --kafka: how long the brokers may send nothing before qofdump gives up.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, requires = "kafka")]
    pub kafka_timeout: u64,
}

/// The YAML file's keys (QoF's names). Unknown keys are errors.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct YamlConfig {
    pub template: Option<Vec<String>>,
    /// Flow plugins, as `--plugin` takes them.
    pub plugins: Option<Vec<String>>,
    pub idle_timeout: Option<u64>,
    pub active_timeout: Option<u64>,
    pub max_flows: Option<u64>,
    pub max_frags: Option<u64>,
    pub force_biflow: Option<Flag>,
    pub gre_decap: Option<Flag>,
    pub silk_compatible: Option<Flag>,
    /// Gaps kept per TCP direction before the oldest counts as lost (QoF's compile-time 8).
    pub gap_stack_depth: Option<u64>,
    /// Which timestamp echoes may replace a half-RTT: `not-larger` (default, QoF's paper) or
    /// `latest`.
    pub rtt_echo_rule: Option<EchoRuleName>,
    /// Timeouts by softflowd's names (as `--timeout`): `tcp: 1h`, `udp: 90`, ...
    pub timeouts: Option<std::collections::BTreeMap<String, timeouts::YamlTime>>,
    /// As `--sampler`.
    pub sampler: Option<String>,
    /// As `--track-level`.
    pub track_level: Option<String>,
    /// As `--aggregation`: one string, or a list of rules.
    pub aggregation: Option<flows::Rules>,
    /// As `--key-tos`.
    pub key_tos: Option<Flag>,
    /// As `--key-vlan`.
    pub key_vlan: Option<Flag>,
    /// Export NAT translation events, as `--natevents`.
    pub natevents: Option<Flag>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EchoRuleName {
    NotLarger,
    Latest,
}

/// A YAML flag: `true`/`false`, or QoF's `1`/`0`. (QoF read any value not starting with `0`
/// as true, so `false` meant true; here it means false, and anything else is an error.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Int(u64),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Bool(b)) => Ok(Flag(b)),
            Ok(Raw::Int(0)) => Ok(Flag(false)),
            Ok(Raw::Int(1)) => Ok(Flag(true)),
            _ => Err(serde::de::Error::custom("expected true, false, 1 or 0")),
        }
    }
}

impl YamlConfig {
    /// Read and check a YAML file; errors name the file, line and key.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(YamlConfig::default());
        }
        serde_saphyr::from_str::<YamlConfig>(text)
            .map_err(|e| anyhow!("{}", one_line(&e.to_string())))
    }

    /// The flow-table settings, checked.
    pub fn meter(&self) -> Result<MeterConfig> {
        let d = MeterConfig::default();
        let secs_to_ms = |key: &str, v: Option<u64>, default_ms: u64| -> Result<u64> {
            match v {
                None => Ok(default_ms),
                // 0 would end a flow after every packet (idle) or cut one record per packet
                // (active), and a reader might take it for "never": neither is asked for.
                Some(0) => {
                    bail!("{key}: 0 seconds: give at least 1 (a flow would end at every packet)")
                }
                Some(s) if s > 86_400 * 365 => bail!("{key}: {s} seconds is more than a year"),
                Some(s) => Ok(s * 1000),
            }
        };
        let idle = secs_to_ms("idle-timeout", self.idle_timeout, d.idle_timeout_ms)?;
        let active = secs_to_ms("active-timeout", self.active_timeout, d.active_timeout_ms)?;
        let count = |key: &str, v: Option<u64>, default: usize, max: usize| -> Result<usize> {
            match v {
                None => Ok(default),
                Some(n) => usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= max)
                    .ok_or_else(|| anyhow!("{key}: {n} is too large (at most {max})")),
            }
        };
        Ok(MeterConfig {
            idle_timeout_ms: idle,
            active_timeout_ms: active,
            max_flows: count(
                "max-flows",
                self.max_flows,
                d.max_flows,
                crate::meter::MAX_FLOWS,
            )?,
            max_frags: count("max-frags", self.max_frags, d.max_frags, 1 << 32)?,
            silk_compatible: self.silk_compatible.is_some_and(|f| f.0),
            tcp: TcpConfig {
                gap_depth: match self.gap_stack_depth {
                    None => d.tcp.gap_depth,
                    Some(n @ 1..=255) => n as u8,
                    Some(n) => bail!("gap-stack-depth: {n} is not between 1 and 255"),
                },
                echo_rule: match self.rtt_echo_rule {
                    None | Some(EchoRuleName::NotLarger) => EchoRule::NotLarger,
                    Some(EchoRuleName::Latest) => EchoRule::Latest,
                },
                ..d.tcp
            },
            ..d
        })
    }

    pub fn force_biflow(&self) -> bool {
        self.force_biflow.is_some_and(|f| f.0)
    }

    pub fn gre_decap(&self) -> bool {
        self.gre_decap.is_some_and(|f| f.0)
    }

    pub fn natevents(&self) -> bool {
        self.natevents.is_some_and(|f| f.0)
    }
}

/// serde-saphyr errors end in a multi-line source snippet; the first line already names the
/// line, column and problem, and logs and the CLI want one line.
fn one_line(s: &str) -> String {
    let first = s.lines().next().unwrap_or(s).trim();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// Log levels of QoF's `--loglevel`, as a tracing filter directive.
pub fn log_level(name: &str) -> Result<&'static str> {
    Ok(match name {
        "quiet" => "off",
        "error" | "critical" => "error",
        "warning" => "warn",
        "message" | "info" => "info",
        "debug" => "debug",
        other => bail!(
            "--loglevel {other}: expected quiet, error, critical, warning, message, info or debug"
        ),
    })
}

impl Args {
    /// Options that are accepted by QoF but not implemented by this version yet, and
    /// combinations that make no sense: one clear error each.
    pub fn check(&self) -> Result<()> {
        self.check_ops()?;
        if self.kafka.is_some() {
            return self.check_kafka();
        }
        if self.kafka_topic.is_some()
            || self.kafka_compression.is_some()
            || self.kafka_sasl.is_some()
            || self.kafka_user.is_some()
            || !self.kafka_options.is_empty()
        {
            bail!("--kafka-topic, --kafka-compression, --kafka-sasl, --kafka-user and --kafka-option need --kafka BROKERS");
        }
        if self.netflow.is_some() {
            return self.check_netflow();
        }
        if self.engine_id.is_some() {
            bail!("--engine-id applies to NetFlow export: give --netflow 5|9");
        }
        if let Some(t) = self.ipfix_transport()? {
            let name = t.name();
            if matches!(self.output.as_deref(), None | Some("" | "-")) {
                bail!("--ipfix {name} needs --out HOST: the collector's host name or address");
            }
            if self.format() != Format::Ipfix {
                bail!("--ipfix sends IPFIX: it cannot be combined with --format json");
            }
            if self.rotate.is_some() || self.lock {
                bail!("--rotate and --lock apply to IPFIX files, not to --ipfix {name}");
            }
            if self.ipfix_port == Some(0) {
                bail!("--ipfix-port 0: give the collector's port (default 4739, 4740 with --tls)");
            }
            if self.tls && t != IpfixTransport::Tcp {
                bail!("--tls needs --ipfix tcp (DTLS over UDP or SCTP is not supported)");
            }
            if self.tls
                && (self.tls_ca.is_none() || self.tls_cert.is_none() || self.tls_key.is_none())
            {
                bail!("--tls needs --tls-ca, --tls-cert and --tls-key");
            }
        } else if self.tls || self.ipfix_port.is_some() || self.template_refresh.is_some() {
            bail!("--tls, --ipfix-port and --template-refresh need --ipfix tcp|udp|sctp");
        }
        if !self.tls && (self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some())
        {
            bail!("--tls-ca, --tls-cert and --tls-key need --tls");
        }
        self.check_export()?;
        if self.become_group.is_some() && self.become_user.is_none() {
            bail!("--become-group needs --become-user");
        }
        if self.rotate == Some(0) {
            bail!("--rotate 0: the rotation delay must be at least one second");
        }
        let to_stdout = matches!(self.output.as_deref(), None | Some("-"));
        if self.rotate.is_some() && to_stdout {
            bail!("--rotate needs --out PREFIX (file output, not standard output)");
        }
        if self.lock && to_stdout {
            bail!("--lock needs --out FILE (there is nothing to lock on standard output)");
        }
        log_level(&self.loglevel)?;
        Ok(())
    }

    /// `--kafka`: records to a Kafka topic; file, collector and NetFlow options do not apply.
    fn check_kafka(&self) -> Result<()> {
        let brokers = self.kafka.as_deref().unwrap_or_default();
        if brokers.split(',').any(|b| b.trim().is_empty()) {
            bail!("--kafka {brokers:?}: expected BROKER[,BROKER...], each host:port");
        }
        match self.kafka_topic.as_deref() {
            None => bail!("--kafka needs --kafka-topic TOPIC"),
            // Kafka's own rule for topic names.
            Some(t)
                if t.is_empty()
                    || t.len() > 249
                    || t == "."
                    || t == ".."
                    || !t
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c)) =>
            {
                bail!("--kafka-topic {t:?}: a topic name is 1-249 characters of a-z, A-Z, 0-9, '.', '_' and '-' (not . or ..)")
            }
            Some(_) => {}
        }
        if self.netflow.is_some() || self.ipfix.is_some() {
            bail!(
                "--kafka is an export of its own: it cannot be combined with --ipfix or --netflow"
            );
        }
        if self.output.is_some() || self.rotate.is_some() || self.lock {
            bail!(
                "--out, --rotate and --lock name files: records go to the Kafka topic with --kafka"
            );
        }
        if self.ipfix_port.is_some()
            || self.template_refresh.is_some()
            || self.export_rate.is_some()
        {
            bail!("--ipfix-port, --template-refresh and --export-rate apply to --ipfix and --netflow, not to --kafka (each Kafka message of IPFIX carries its templates)");
        }
        if self.engine_id.is_some() {
            bail!("--engine-id applies to NetFlow export: give --netflow 5|9");
        }
        if !self.tls && (self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some())
        {
            bail!("--tls-ca, --tls-cert and --tls-key need --tls");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            bail!("--tls-cert and --tls-key go together (a client certificate and its key)");
        }
        match (self.kafka_sasl, self.kafka_user.is_some()) {
            (Some(m), false) => bail!(
                "--kafka-sasl {}: give --kafka-user USER (the password comes from QOF_KAFKA_PASSWORD)",
                m.mechanism().to_ascii_lowercase()
            ),
            (None, true) => bail!("--kafka-user needs --kafka-sasl scram-sha-256|scram-sha-512|plain"),
            (Some(KafkaSasl::Plain), _) if !self.tls => {
                bail!("--kafka-sasl plain sends the password in the clear: give --tls too")
            }
            _ => {}
        }
        for o in &self.kafka_options {
            match o.split_once('=') {
                Some((k, _)) if !k.trim().is_empty() => {}
                _ => bail!("--kafka-option {o:?}: expected KEY=VALUE (a librdkafka property)"),
            }
        }
        self.check_export()?;
        if self.become_group.is_some() && self.become_user.is_none() {
            bail!("--become-group needs --become-user");
        }
        log_level(&self.loglevel)?;
        Ok(())
    }

    /// `--netflow`: a UDP export to `--out HOST`; file, JSON and IPFIX options do not apply.
    fn check_netflow(&self) -> Result<()> {
        if self.ipfix.is_some() {
            bail!("--netflow and --ipfix are two different exports: choose one");
        }
        if self.format == Some(Format::Json) {
            bail!("--netflow writes NetFlow, not --format json: choose one");
        }
        if self.rotate.is_some() {
            bail!("--rotate applies to files; --netflow sends to a collector over UDP");
        }
        if self.lock {
            bail!("--lock applies to files; --netflow sends to a collector over UDP");
        }
        if self.tls || self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some() {
            bail!("--tls options apply to IPFIX over TCP; NetFlow goes over plain UDP");
        }
        if matches!(self.output.as_deref(), None | Some("-") | Some("")) {
            bail!("--netflow needs --out HOST: the collector's address or host name");
        }
        match (self.netflow, self.template_refresh) {
            (Some(v @ (NetflowVersion::V1 | NetflowVersion::V5)), Some(_)) => {
                let n = if v == NetflowVersion::V1 { 1 } else { 5 };
                bail!("--template-refresh applies to NetFlow v9; v{n} has no templates")
            }
            (_, Some(0)) => bail!("--template-refresh 0: the interval must be at least one second"),
            _ => {}
        }
        self.check_export()?;
        log_level(&self.loglevel)?;
        Ok(())
    }

    /// The export queue and pacing options.
    fn check_export(&self) -> Result<()> {
        if self.export_queue == Some(0) {
            bail!("--export-queue 0: at least one message must fit in the export queue");
        }
        if self.export_queue.is_some() && self.export_queue_bytes.is_some() {
            bail!("--export-queue and --export-queue-bytes give the same size: choose one");
        }
        self.export_queue_bytes(MIN_QUEUE_BYTES)?;
        let network = self.netflow.is_some() || self.ipfix.is_some() || self.kafka.is_some();
        let udp = self.netflow.is_some()
            || matches!(self.ipfix_transport(), Ok(Some(IpfixTransport::Udp)));
        if !network
            && (self.export_queue_bytes.is_some()
                || self.export_queue_full.is_some()
                || self.export_rate.is_some())
        {
            bail!("--export-queue-bytes, --export-queue-full and --export-rate need --ipfix, --netflow or --kafka");
        }
        if self.export_rate.is_some() && !udp {
            bail!("--export-rate paces UDP export (--ipfix udp, --netflow); TCP, TLS and SCTP follow the collector");
        }
        if self.export_queue_full == Some(QueueFull::Wait)
            && self.inputs().iter().any(|i| i.starts_with("int:"))
        {
            bail!("--export-queue-full wait: a live capture cannot wait for the collector (its packets would be lost instead); it drops and counts");
        }
        Ok(())
    }

    /// The export queue's size in octets, for messages of at most `max_message` octets.
    pub fn export_queue_bytes(&self, max_message: usize) -> Result<usize> {
        if let Some(n) = self.export_queue {
            return Ok(n.saturating_mul(max_message));
        }
        let Some(text) = self.export_queue_bytes.as_deref() else {
            return Ok(EXPORT_QUEUE_BYTES);
        };
        let bad = || {
            anyhow!(
                "--export-queue-bytes {text}: expected a size in octets, with K, M or G for \
                 KiB, MiB or GiB (at least {MIN_QUEUE_BYTES}, at most 1G)"
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
        if !(MIN_QUEUE_BYTES as u64..=1 << 30).contains(&bytes) {
            return Err(bad());
        }
        usize::try_from(bytes).map_err(|_| bad())
    }

    /// `--format`, or its default: IPFIX, but JSON for Kafka (one record per message).
    pub fn format(&self) -> Format {
        match (self.format, &self.kafka) {
            (Some(f), _) => f,
            (None, Some(_)) => Format::Json,
            (None, None) => Format::Ipfix,
        }
    }

    /// `--export-timeout` in seconds, or its default (longer for Kafka).
    pub fn export_timeout_secs(&self) -> u64 {
        match (self.export_timeout, &self.kafka) {
            (Some(s), _) => s,
            (None, Some(_)) => KAFKA_EXPORT_TIMEOUT,
            (None, None) => EXPORT_TIMEOUT,
        }
    }

    /// What a full export queue does: `live` input cannot wait.
    pub fn when_export_full(&self, live: bool) -> QueueFull {
        match self.export_queue_full {
            Some(w) => w,
            None if live => QueueFull::Drop,
            None => QueueFull::Wait,
        }
    }

    /// The live capture's settings (`--snaplen`, `--ring-size`), checked; the kernel's filter
    /// program is added by the caller.
    pub fn live_options(&self) -> Result<crate::capture::live::LiveOptions> {
        let is_live = self.inputs().iter().all(|i| i.starts_with("int:"));
        if !is_live && (self.snaplen.is_some() || self.ring_size.is_some()) {
            bail!("--snaplen and --ring-size apply to live capture (--in int:IFACE)");
        }
        let d = crate::capture::live::LiveOptions::default();
        let snaplen = match self.snaplen {
            None => d.snaplen,
            Some(n @ 64..=262_144) => n,
            Some(n) => bail!("--snaplen {n}: expected 64 to 262144 octets"),
        };
        let ring_blocks = match self.ring_size {
            None => d.ring_blocks,
            Some(n @ 2..=65_536) => n,
            Some(n) => bail!("--ring-size {n}: expected 2 to 65536 MiB"),
        };
        Ok(crate::capture::live::LiveOptions {
            snaplen,
            ring_blocks,
            program: None,
        })
    }

    /// `--workers`: how many metering workers (1 = on the reading thread).
    pub fn workers(&self) -> Result<usize> {
        match self.workers.as_str() {
            "auto" => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
            w => match w.parse::<usize>() {
                Ok(n @ 1..=1024) => Ok(n),
                _ => bail!("--workers {w}: expected a number from 1 to 1024, or auto"),
            },
        }
    }

    /// Records per second over UDP (0 = unpaced).
    pub fn export_rate(&self) -> u64 {
        self.export_rate.unwrap_or(DEFAULT_EXPORT_RATE)
    }

    /// `--ipfix`: the transport, or `None` for file output. QoF took an empty value as SCTP.
    pub fn ipfix_transport(&self) -> Result<Option<IpfixTransport>> {
        Ok(match self.ipfix.as_deref() {
            None => None,
            Some("tcp") => Some(IpfixTransport::Tcp),
            Some("udp") => Some(IpfixTransport::Udp),
            Some("sctp" | "") => Some(IpfixTransport::Sctp),
            Some(other) => bail!("--ipfix {other}: expected tcp, udp or sctp"),
        })
    }

    /// `--template-refresh` in seconds, 0 = never: RFC 7011 §8.4 wants periodic templates
    /// over UDP, so UDP defaults to QoF's 60 s; reliable transports send each once per session.
    pub fn template_refresh_secs(&self) -> u64 {
        match (self.template_refresh, self.ipfix_transport()) {
            (Some(s), _) => s,
            (None, Ok(Some(IpfixTransport::Udp))) => 60,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_keys_and_flags() {
        let c = YamlConfig::parse(
            "template:\n  - sourceIPv4Address\n  - reverseOctetDeltaCount\nidle-timeout: 10\nmax-flows: 5\nforce-biflow: 1\ngre-decap: false\n",
        )
        .unwrap();
        assert_eq!(
            c.template.as_deref().unwrap(),
            ["sourceIPv4Address", "reverseOctetDeltaCount"]
        );
        let m = c.meter().unwrap();
        assert_eq!(m.idle_timeout_ms, 10_000);
        assert_eq!(m.active_timeout_ms, 300_000);
        assert_eq!(m.max_flows, 5);
        assert!(c.force_biflow());
        assert!(!c.gre_decap(), "`false` means false (QoF read it as true)");
    }

    #[test]
    fn yaml_errors_name_the_problem() {
        let e = YamlConfig::parse("idle-timeout: 10\nmax-flow: 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max-flow"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
        let e = YamlConfig::parse("idle-timeout: soon\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 1 column 15: invalid u64"), "{e}");
        let e = YamlConfig::parse("force-biflow: maybe\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("true, false, 1 or 0"), "{e}");
        let e = YamlConfig::parse("- a\n- b\n").unwrap_err().to_string();
        assert!(!e.is_empty());
        // More flows than the flow index can hold.
        let e = YamlConfig::parse("max-flows: 200000000\n")
            .unwrap()
            .meter()
            .unwrap_err()
            .to_string();
        assert_eq!(e, "max-flows: 200000000 is too large (at most 134217727)");
        let c = YamlConfig::parse("max-flows: 134217727\n").unwrap();
        assert_eq!(c.meter().unwrap().max_flows, crate::meter::MAX_FLOWS);
        // A zero timeout is refused, not read as "never" or as "after every packet".
        for key in ["idle-timeout", "active-timeout"] {
            let e = YamlConfig::parse(&format!("{key}: 0\n"))
                .unwrap()
                .meter()
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("{key}: 0 seconds: give at least 1 (a flow would end at every packet)")
            );
        }
    }

    #[test]
    fn empty_yaml_is_all_defaults() {
        let c = YamlConfig::parse("\n").unwrap();
        assert_eq!(c.meter().unwrap(), MeterConfig::default());
    }

    #[test]
    fn netflow_options_are_checked() {
        let ok = |argv: &[&str]| {
            let mut v = vec!["qof"];
            v.extend_from_slice(argv);
            Args::try_parse_from(v).unwrap().check()
        };
        let err = |argv: &[&str]| ok(argv).unwrap_err().to_string();
        let a = Args::try_parse_from([
            "qof",
            "--netflow",
            "9",
            "--out",
            "::1",
            "--ipfix-port",
            "9995",
            "--engine-id",
            "7",
        ])
        .unwrap();
        assert!(a.check().is_ok());
        assert_eq!(
            (a.netflow, a.ipfix_port, a.engine_id),
            (Some(NetflowVersion::V9), Some(9995), Some(7))
        );
        assert!(ok(&["--netflow", "5", "--out", "collector.example"]).is_ok());
        assert!(ok(&["--netflow", "9", "--out", "h", "--template-refresh", "30"]).is_ok());
        assert!(Args::try_parse_from(["qof", "--netflow", "7"]).is_err());
        assert!(Args::try_parse_from(["qof", "--netflow", "9", "--engine-id", "256"]).is_err());
        for (argv, what) in [
            (&["--netflow", "9"][..], "--netflow needs --out HOST"),
            (
                &["--netflow", "9", "--out", "-"],
                "--netflow needs --out HOST",
            ),
            (
                &["--netflow", "9", "--out", "h", "--format", "json"],
                "--format json",
            ),
            (
                &["--netflow", "9", "--out", "h", "--rotate", "5"],
                "--rotate",
            ),
            (&["--netflow", "9", "--out", "h", "--lock"], "--lock"),
            (
                &["--netflow", "9", "--out", "h", "--ipfix", "udp"],
                "--ipfix",
            ),
            (&["--netflow", "9", "--out", "h", "--tls"], "--tls"),
            (
                &["--netflow", "5", "--out", "h", "--template-refresh", "9"],
                "v5 has no templates",
            ),
            (
                &["--netflow", "9", "--out", "h", "--template-refresh", "0"],
                "at least one second",
            ),
            (&["--engine-id", "3", "--out", "x.ipfix"], "--engine-id"),
        ] {
            let e = err(argv);
            assert!(e.contains(what), "{argv:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn contradictory_options_are_refused() {
        let a = Args::try_parse_from(["qof", "--rotate", "60"]).unwrap();
        assert!(a
            .check()
            .unwrap_err()
            .to_string()
            .contains("--rotate needs --out"));
        let a = Args::try_parse_from(["qof", "--lock", "--out", "-"]).unwrap();
        assert!(a.check().is_err());
        let a = Args::try_parse_from(["qof", "--loglevel", "loud"]).unwrap();
        assert!(a
            .check()
            .unwrap_err()
            .to_string()
            .contains("--loglevel loud"));
        let a = Args::try_parse_from([
            "qof", "--in", "x.pcap", "--out", "y.ipfix", "--rotate", "60", "--lock",
        ])
        .unwrap();
        assert!(a.check().is_ok());
    }

    fn check_error(args: &[&str]) -> String {
        let mut v = vec!["qof"];
        v.extend_from_slice(args);
        let e = Args::try_parse_from(v)
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "one line: {e}");
        e
    }

    #[test]
    fn network_export_options_are_checked() {
        assert!(check_error(&["--ipfix", "tcp"]).contains("needs --out HOST"));
        assert!(check_error(&["--ipfix", "quic", "--out", "h"]).contains("--ipfix quic"));
        assert!(check_error(&["--ipfix", "udp", "--out", "h", "--tls"]).contains("DTLS"));
        assert!(check_error(&["--ipfix", "tcp", "--out", "h", "--tls"]).contains("--tls-ca"));
        assert!(
            check_error(&["--ipfix", "tcp", "--out", "h", "--format", "json"])
                .contains("--format json")
        );
        assert!(check_error(&["--template-refresh", "10"]).contains("need --ipfix"));
        assert!(check_error(&["--tls-ca", "ca.pem"]).contains("need --tls"));
        assert!(
            check_error(&["--ipfix", "tcp", "--out", "h", "--export-queue", "0"])
                .contains("--export-queue 0")
        );
        let ok = |args: &[&str]| {
            let mut v = vec!["qof"];
            v.extend_from_slice(args);
            let a = Args::try_parse_from(v).unwrap();
            a.check().map(|()| a)
        };
        let a = ok(&["--ipfix", "udp", "--out", "::1"]).unwrap();
        assert_eq!(a.template_refresh_secs(), 60);
        let a = ok(&["--ipfix", "tcp", "--out", "h", "--template-refresh", "30"]).unwrap();
        assert_eq!(a.template_refresh_secs(), 30);
        let a = ok(&["--ipfix", "", "--out", "h"]).unwrap();
        assert_eq!(a.ipfix_transport().unwrap(), Some(IpfixTransport::Sctp));
        assert_eq!(a.template_refresh_secs(), 0);
        let tls = [
            "--ipfix",
            "tcp",
            "--out",
            "h",
            "--tls",
            "--tls-ca",
            "a",
            "--tls-cert",
            "b",
            "--tls-key",
            "c",
        ];
        assert!(ok(&tls).is_ok());
    }

    /// The export queue's size in octets (with the old size in messages still read), what a
    /// full queue does, and pacing: each mistake one line naming the option.
    #[test]
    fn export_queue_and_rate_options_are_checked() {
        let args = |extra: &[&str]| {
            let mut v = vec!["qof", "--ipfix", "udp", "--out", "h"];
            v.extend_from_slice(extra);
            Args::try_parse_from(v).unwrap()
        };
        let bytes = |extra: &[&str]| args(extra).export_queue_bytes(8192).unwrap();
        assert_eq!(bytes(&[]), 32 << 20);
        assert_eq!(bytes(&["--export-queue-bytes", "64k"]), 64 << 10);
        assert_eq!(bytes(&["--export-queue-bytes", "3M"]), 3 << 20);
        assert_eq!(bytes(&["--export-queue-bytes", "1G"]), 1 << 30);
        assert_eq!(bytes(&["--export-queue-bytes", "10000"]), 10_000);
        assert_eq!(bytes(&["--export-queue", "4"]), 4 * 8192);
        for bad in [
            "",
            "M",
            "8191",
            "2G",
            "12X",
            "5MB",
            "1.5M",
            "99999999999999G",
        ] {
            let e = check_error(&["--ipfix", "udp", "--out", "h", "--export-queue-bytes", bad]);
            assert!(
                e.starts_with(&format!("--export-queue-bytes {bad}:")),
                "{e}"
            );
        }
        let e = check_error(&[
            "--ipfix",
            "tcp",
            "--out",
            "h",
            "--export-queue",
            "2",
            "--export-queue-bytes",
            "1M",
        ]);
        assert!(e.contains("choose one"), "{e}");
        assert!(
            check_error(&["--ipfix", "tcp", "--out", "h", "--export-rate", "5"])
                .contains("--export-rate paces UDP export")
        );
        assert!(check_error(&["--export-rate", "5"]).contains("need --ipfix, --netflow or --kafka"));
        assert!(check_error(&["--export-queue-full", "drop"]).contains("need --ipfix"));
        let e = check_error(&[
            "--in",
            "int:lo",
            "--ipfix",
            "tcp",
            "--out",
            "h",
            "--export-queue-full",
            "wait",
        ]);
        assert!(e.contains("a live capture cannot wait"), "{e}");
        assert!(Args::try_parse_from(["qof", "--export-queue-full", "later"]).is_err());
        // Files and standard input wait; live capture drops; either may be chosen otherwise.
        assert_eq!(args(&[]).when_export_full(false), QueueFull::Wait);
        assert_eq!(args(&[]).when_export_full(true), QueueFull::Drop);
        let drop = args(&["--export-queue-full", "drop"]);
        assert_eq!(drop.when_export_full(false), QueueFull::Drop);
        assert!(drop.check().is_ok());
        assert_eq!(args(&[]).export_rate(), DEFAULT_EXPORT_RATE);
        assert_eq!(args(&["--export-rate", "0"]).export_rate(), 0);
        let nf =
            Args::try_parse_from(["qof", "--netflow", "9", "--out", "h", "--export-rate", "9"])
                .unwrap();
        assert!(nf.check().is_ok());
        assert_eq!(nf.export_rate(), 9);
    }
}
