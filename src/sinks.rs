//! Choosing the record sink from the command line: IPFIX (file, standard output or a
//! collector over the network), JSON, or NetFlow over UDP.

use anyhow::{bail, Context, Result};
use qof::config::{Args, Format, IpfixTransport, NetflowVersion, SocketOptions, NETFLOW_PORT};
use qof::export::net::{
    IpfixNetSink, NetConfig, TlsFiles, IPFIX_PORT, IPFIX_TLS_PORT, MAX_STREAM_MESSAGE,
    MAX_UDP_MESSAGE,
};
use qof::export::{
    resolve_collector, FanOut, FileId, FileOutput, IpfixFileSink, JsonFileSink, JsonSink,
    NetflowUdpSink, OutputFile, OutputOptions, Pacing, RecordSink, NETFLOW_MAX_DATAGRAM,
};
use qof::ipfix::TemplateSpec;
use qof::meter::sampling::SamplerSpec;
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
    sampler: Option<SamplerSpec>,
) -> Result<Box<dyn RecordSink>> {
    if args.kafka.is_some() {
        return kafka(args, spec, force_biflow, live);
    }
    if let Some(version) = args.netflow {
        return netflow(args, version, live, sampler);
    }
    if args.ipfix_transport()?.is_some() {
        return open_net(args, spec, force_biflow, live, sampler);
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
            let mut sink =
                IpfixFileSink::new(spec.clone(), args.observation_domain, force_biflow, out)?;
            if let Some(s) = &sampler {
                sink.set_sampling(s);
            }
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
                    let file = OutputFile::new(&p, options.clone())?;
                    Ok(Box::new(JsonFileSink::new(
                        spec.clone(),
                        force_biflow,
                        file,
                        options,
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

/// One sink, or a fan-out over several (one per collector).
fn one_or_all(mut sinks: Vec<Box<dyn RecordSink>>) -> Box<dyn RecordSink> {
    if sinks.len() == 1 {
        if let Some(s) = sinks.pop() {
            return s;
        }
    }
    Box::new(FanOut::new(sinks))
}

/// NetFlow over UDP to each collector of `--out HOST[:PORT],...` (port default `--ipfix-port`,
/// else 2055).
fn netflow(
    args: &Args,
    version: NetflowVersion,
    live: bool,
    sampler: Option<SamplerSpec>,
) -> Result<Box<dyn RecordSink>> {
    let settings = Settings {
        version: match version {
            NetflowVersion::V1 => Version::V1,
            NetflowVersion::V5 => Version::V5,
            NetflowVersion::V9 => Version::V9,
        },
        engine_type: 0,
        engine_id: args
            .engine_id
            .unwrap_or((args.observation_domain & 0xff) as u8),
        source_id: args.observation_domain,
        template_refresh_ms: args.template_refresh.unwrap_or(60).saturating_mul(1000),
        template_refresh_datagrams: args.template_refresh_messages()?.unwrap_or(0),
        sampling: sampler.map(|s| s.netflow()),
    };
    let pacing = Pacing {
        rate: args.export_rate(),
        when_full: args.when_export_full(live),
        queue_bytes: args.export_queue_bytes(NETFLOW_MAX_DATAGRAM)?,
    };
    let defaults = args.socket_options()?;
    let mut sinks: Vec<Box<dyn RecordSink>> = Vec::new();
    for c in args.collectors()? {
        let port = c.port.or(args.ipfix_port).unwrap_or(NETFLOW_PORT);
        let name = collector_name(&c.host, port);
        let collector =
            resolve_collector(&c.host, port).with_context(|| format!("--out {name}"))?;
        let options = SocketOptions {
            source: c.source.or(defaults.source),
            ..defaults
        };
        let sink = NetflowUdpSink::connect_with(collector, &settings, pacing, &options)
            .with_context(|| format!("--out {name}: NetFlow to {collector}"))?;
        sinks.push(Box::new(sink));
    }
    Ok(one_or_all(sinks))
}

/// `host:port`, IPv6 in brackets: how errors name a collector.
fn collector_name(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `--ipfix tcp|udp|sctp --out HOST[:PORT],...`: export to each collector, over its own
/// transport when it names one (`udp://...`).
fn open_net(
    args: &Args,
    spec: &TemplateSpec,
    force_biflow: bool,
    live: bool,
    sampler: Option<SamplerSpec>,
) -> Result<Box<dyn RecordSink>> {
    let Some(default_transport) = args.ipfix_transport()? else {
        bail!("--ipfix is not given");
    };
    let defaults = args.socket_options()?;
    let refresh_messages = args.template_refresh_messages()?;
    let mut sinks: Vec<Box<dyn RecordSink>> = Vec::new();
    for c in args.collectors()? {
        let transport = c.transport.unwrap_or(default_transport);
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
        let udp = transport == IpfixTransport::Udp;
        // RFC 7011 §8.4 wants periodic templates over UDP (QoF's 60 s); streams send each
        // once per session.
        let refresh = match args.template_refresh {
            Some(s) => s,
            None if udp => 60,
            None => 0,
        };
        let cfg = NetConfig {
            transport,
            host: c.host.clone(),
            port: c.port.or(args.ipfix_port).unwrap_or(default_port),
            tls,
            template_refresh: (refresh > 0).then(|| std::time::Duration::from_secs(refresh)),
            queue_bytes: args.export_queue_bytes(if udp {
                MAX_UDP_MESSAGE
            } else {
                MAX_STREAM_MESSAGE
            })?,
            when_full: args.when_export_full(live),
            rate: args.export_rate(),
            timeout: std::time::Duration::from_secs(args.export_timeout_secs()),
            observation_domain: args.observation_domain,
            force_biflow,
            sockets: SocketOptions {
                source: c.source.or(defaults.source),
                ..defaults
            },
            refresh_messages: if udp { refresh_messages } else { None },
            sampling: sampler,
        };
        sinks.push(Box::new(IpfixNetSink::open(cfg, spec.clone())?));
    }
    Ok(one_or_all(sinks))
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
