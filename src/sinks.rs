//! Choosing the record sink from the command line: IPFIX (file, standard output or a
//! collector over the network), JSON, or NetFlow over UDP.

use anyhow::{bail, Context, Result};
use qof::config::{Args, Format, IpfixTransport, NetflowVersion, NETFLOW_PORT};
use qof::export::net::{
    IpfixNetSink, NetConfig, TlsFiles, IPFIX_PORT, IPFIX_TLS_PORT, MAX_STREAM_MESSAGE,
    MAX_UDP_MESSAGE,
};
use qof::export::{
    resolve_collector, FileId, FileOutput, IpfixFileSink, JsonFileSink, JsonSink, NetflowUdpSink,
    OutputFile, OutputOptions, Pacing, RecordSink, NETFLOW_MAX_DATAGRAM,
};
use qof::ipfix::TemplateSpec;
use qof::netflow::{Settings, Version};
use std::io::{BufWriter, IsTerminal};
use std::path::{Path, PathBuf};

/// The sink `args` ask for. `input` is the capture file being read, which no output file may
/// be. File outputs are checked here; regular files are created by the sink's `start`.
/// `live`: the input is a live capture, which cannot wait for a network export.
pub fn open(
    args: &Args,
    spec: &TemplateSpec,
    force_biflow: bool,
    input: Option<FileId>,
    live: bool,
) -> Result<Box<dyn RecordSink>> {
    if args.kafka.is_some() {
        return kafka(args, spec, force_biflow, live);
    }
    if let Some(version) = args.netflow {
        return netflow(args, version, live);
    }
    if args.ipfix_transport()?.is_some() {
        return open_net(args, spec, force_biflow, live);
    }
    let path = args
        .output
        .as_deref()
        .filter(|p| *p != "-")
        .map(PathBuf::from);
    match args.format() {
        Format::Ipfix => {
            if path.is_none() && std::io::stdout().is_terminal() {
                bail!("refusing to write binary IPFIX to a terminal: give --out FILE, pipe the output, or use --format json");
            }
            let out = FileOutput {
                path,
                rotate_secs: args.rotate,
                lock: args.lock,
                input,
            };
            // (Errors name the output themselves.)
            let sink =
                IpfixFileSink::new(spec.clone(), args.observation_domain, force_biflow, out)?;
            Ok(Box::new(sink))
        }
        Format::Json => {
            if args.rotate.is_some() || args.lock {
                bail!("--rotate and --lock apply to IPFIX files, not to --format json");
            }
            match path {
                None => Ok(Box::new(JsonSink::new(
                    spec.clone(),
                    force_biflow,
                    BufWriter::with_capacity(1 << 16, std::io::stdout()),
                ))),
                Some(p) => {
                    let options = OutputOptions { lock: false, input };
                    let file = OutputFile::new(&p, options)?;
                    Ok(Box::new(JsonFileSink::new(
                        spec.clone(),
                        force_biflow,
                        file,
                    )))
                }
            }
        }
    }
}

/// The capture file `--in` names (standard input's, when it is a file), by identity: a path,
/// a hard link or a symbolic link to it are all the same file.
pub fn input_file(input: &str) -> Option<FileId> {
    match input.strip_prefix("pcapfile:").unwrap_or(input) {
        "-" => FileId::of_stdin(),
        live if live.starts_with("int:") => None,
        path => FileId::of(Path::new(path)),
    }
}

/// NetFlow over UDP to `--out HOST`, port `--ipfix-port` (default 2055).
fn netflow(args: &Args, version: NetflowVersion, live: bool) -> Result<Box<dyn RecordSink>> {
    let host = args.output.as_deref().unwrap_or_default();
    let port = args.ipfix_port.unwrap_or(NETFLOW_PORT);
    let settings = Settings {
        version: match version {
            NetflowVersion::V5 => Version::V5,
            NetflowVersion::V9 => Version::V9,
        },
        engine_type: 0,
        engine_id: args
            .engine_id
            .unwrap_or((args.observation_domain & 0xff) as u8),
        source_id: args.observation_domain,
        template_refresh_ms: args.template_refresh.unwrap_or(60).saturating_mul(1000),
    };
    let collector = resolve_collector(host, port).with_context(|| format!("--out {host}"))?;
    let pacing = Pacing {
        rate: args.export_rate(),
        when_full: args.when_export_full(live),
        queue_bytes: args.export_queue_bytes(NETFLOW_MAX_DATAGRAM)?,
    };
    let sink = NetflowUdpSink::connect(collector, &settings, pacing)
        .with_context(|| format!("--out {host}: NetFlow to {collector}"))?;
    Ok(Box::new(sink))
}

/// `--ipfix tcp|udp|sctp --out HOST`: export to a collector.
fn open_net(
    args: &Args,
    spec: &TemplateSpec,
    force_biflow: bool,
    live: bool,
) -> Result<Box<dyn RecordSink>> {
    let Some(transport) = args.ipfix_transport()? else {
        bail!("--ipfix is not given");
    };
    let host = args.output.clone().unwrap_or_default();
    let tls = match (args.tls, &args.tls_ca, &args.tls_cert, &args.tls_key) {
        (true, Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let default_port = if tls.is_some() {
        IPFIX_TLS_PORT
    } else {
        IPFIX_PORT
    };
    let refresh = args.template_refresh_secs();
    let cfg = NetConfig {
        transport,
        host,
        port: args.ipfix_port.unwrap_or(default_port),
        tls,
        template_refresh: (refresh > 0).then(|| std::time::Duration::from_secs(refresh)),
        queue_bytes: args.export_queue_bytes(if transport == IpfixTransport::Udp {
            MAX_UDP_MESSAGE
        } else {
            MAX_STREAM_MESSAGE
        })?,
        when_full: args.when_export_full(live),
        rate: args.export_rate(),
        timeout: std::time::Duration::from_secs(args.export_timeout_secs()),
        observation_domain: args.observation_domain,
        force_biflow,
    };
    Ok(Box::new(IpfixNetSink::open(cfg, spec.clone())?))
}

/// `--kafka BROKERS --kafka-topic TOPIC`: one message per record.
#[cfg(feature = "kafka")]
fn kafka(
    args: &Args,
    spec: &TemplateSpec,
    force_biflow: bool,
    live: bool,
) -> Result<Box<dyn RecordSink>> {
    use qof::config::{KafkaCompression, MIN_QUEUE_BYTES};
    use qof::export::kafka::{KafkaConfig, KafkaFormat, KafkaSasl, KafkaSink, KafkaTls};
    let sasl = match (args.kafka_sasl, &args.kafka_user) {
        (Some(m), Some(user)) => Some(KafkaSasl {
            mechanism: m.mechanism(),
            user: user.clone(),
            // Not on the command line, where every user's `ps` would show it.
            password: std::env::var("QOF_KAFKA_PASSWORD").map_err(|_| {
                anyhow::anyhow!(
                    "--kafka-sasl: put the password in the environment variable QOF_KAFKA_PASSWORD"
                )
            })?,
        }),
        _ => None,
    };
    let cfg = KafkaConfig {
        brokers: args.kafka.clone().unwrap_or_default(),
        topic: args.kafka_topic.clone().unwrap_or_default(),
        format: match args.format() {
            Format::Json => KafkaFormat::Json,
            Format::Ipfix => KafkaFormat::Ipfix,
        },
        compression: args
            .kafka_compression
            .unwrap_or(KafkaCompression::Lz4)
            .name(),
        tls: args.tls.then(|| KafkaTls {
            ca: args.tls_ca.clone(),
            cert: args.tls_cert.clone(),
            key: args.tls_key.clone(),
        }),
        sasl,
        properties: args
            .kafka_options
            .iter()
            .filter_map(|o| o.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            .collect(),
        queue_bytes: args.export_queue_bytes(MIN_QUEUE_BYTES)?,
        when_full: args.when_export_full(live),
        timeout: std::time::Duration::from_secs(args.export_timeout_secs()),
        observation_domain: args.observation_domain,
        force_biflow,
    };
    Ok(Box::new(KafkaSink::open(cfg, spec.clone())?))
}

#[cfg(not(feature = "kafka"))]
fn kafka(_: &Args, _: &TemplateSpec, _: bool, _: bool) -> Result<Box<dyn RecordSink>> {
    bail!("--kafka: this qof was built without Kafka support; build it with `cargo build --release --features kafka` (or install the Debian package, which has it)")
}
