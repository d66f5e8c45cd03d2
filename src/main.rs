//! The `qof` command: wires capture → filter → decode → meter → export and reports.

use anyhow::{bail, Context, Result};
use clap::Parser;
use engine::{Engine, Snapshot};
use qof::capture::{self, PacketSource};
use qof::config::{Args, YamlConfig};
use qof::decode::{self, DecodeConfig, IgnoreCounts};
use qof::filter::Filter;
use qof::ipfix::TemplateSpec;
use qof::meter::{MeterConfig, ProcessStats, TcpConfig};
use qof::time::Timestamp;
use std::io::IsTerminal;
use std::mem::ManuallyDrop;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

mod engine;
mod logging;
mod notify;
mod privilege;
mod progress;
mod route;
mod service;
mod sinks;
mod split;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // clap prints help/usage itself; a usage error exits 2, --help 0.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if args.version {
        // Standard output, as clap's own --version and every GNU tool print it.
        println!(
            "qof {} — passive flow meter (RFC 7011 IPFIX, RFC 5103 biflows)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    if args.plugins.iter().any(|p| p == "help") {
        print!("{}", qof::plugins::help());
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::InputError | Outcome::Undelivered) => ExitCode::from(1),
        Err(e) => {
            eprintln!("qof: {e:#}");
            ExitCode::from(1)
        }
    }
}

enum Outcome {
    Clean,
    /// The input ended in an error; everything read before it was exported.
    InputError,
    /// Network export: some records could not be delivered to the collector (counted, logged).
    Undelivered,
}

/// What the run counted, for the summary line and the statistics record.
#[derive(Default)]
struct Counters {
    frames: u64,
    /// Octets of the frames read, as long as they were on the wire.
    octets: u64,
    filtered: u64,
    /// Frames `--sampler deterministic:N` or `random:N` passed over.
    unsampled: u64,
    ignored: IgnoreCounts,
    records: u64,
    /// Packet time of the first frame read and of the latest (time never goes back here).
    first_ts: Option<Timestamp>,
    last_ts: Timestamp,
    /// `--natevents`: NAT event records written.
    nat_events: Option<u64>,
}

fn run(args: &Args) -> Result<Outcome> {
    args.check()?;
    privilege::check(args.become_user.as_deref(), args.become_group.as_deref())?;
    logging::init(
        &args.log,
        if args.verbose {
            "debug"
        } else {
            qof::config::log_level(&args.loglevel)?
        },
    )?;
    let yaml = match &args.yaml {
        Some(p) => YamlConfig::load(p)?,
        None => YamlConfig::default(),
    };
    if args.netflow.is_some() && yaml.template.is_some() {
        bail!("--netflow records have fixed fields: remove `template:` from the YAML file");
    }
    let natevents = args.ops.natevents || yaml.natevents();
    args.check_natevents(natevents)?;
    let named_plugins = plugin_specs(args, &yaml)?;
    if args.netflow.is_some() && !named_plugins.is_empty() {
        bail!("--netflow records have fixed fields: plugins' elements need IPFIX or JSON output");
    }
    let spec = match &yaml.template {
        Some(names) => TemplateSpec::from_names(names).context("template")?,
        None => TemplateSpec::qof_default(),
    };
    let configured = spec;
    let (spec, _, needs) = qof::plugins::build(&named_plugins, &configured)?;
    let workers = args.workers()?;
    let features = spec.features();
    let yaml_meter = qof::config::timeouts::apply(
        yaml.meter()?,
        yaml.timeouts.as_ref(),
        yaml.idle_timeout.is_some(),
        yaml.active_timeout.is_some(),
        &args.timeout,
    )?;
    let sampler = qof::config::flows::sampler(args, &yaml)?;
    let keys = qof::config::flows::key_policy(args, &yaml)?;
    let mut packet_sampler = sampler.and_then(|s| s.packet_sampler());
    let meter_cfg = MeterConfig {
        flow_sampler: sampler.and_then(|s| s.flow_sampler()),
        aggregated: keys.merges_connections(),
        track_macs: features.mac(),
        track_transport: features.transport(),
        tcp: TcpConfig {
            gap_depth: yaml_meter.tcp.gap_depth,
            echo_rule: yaml_meter.tcp.echo_rule,
            ..features.tcp_config()
        },
        ..yaml_meter
    };
    let decode_cfg = DecodeConfig {
        // IPv4 flows are always metered: a template whose only addresses are IPv6 ones
        // carries them as IPv4-mapped IPv6 addresses (QoF's manual promises it).
        ipv4: true,
        ipv6: features.ipv6(),
        gre_decap: yaml.gre_decap(),
        tcp_options: features.tcp_options() || needs.tcp_options,
        headers: needs.headers,
    };

    let input = args.inputs()[0];
    // How errors name the input: every interface when several are captured.
    let input_name = args.inputs().join(",");
    // ingressInterface of frames from files and standard input.
    let file_ingress = args.ingress_interface()?.unwrap_or(0);
    if matches!(input, "-" | "pcapfile:-") && std::io::stdin().is_terminal() {
        bail!("refusing to read a capture from a terminal: give --in FILE or pipe pcap data in");
    }
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(&stop)?;
    // SIGUSR1: log the flow and fragment tables' statistics and the exporter's state.
    let status = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&status))?;

    let mut filter = args.filter.as_deref().map(Filter::new).transpose()?;
    let live_options = args.live_options()?;
    // Standard input ends when a signal comes, even if the writer holds the pipe open.
    let Input {
        mut source,
        feeds,
        fanout,
    } = open_input(
        args,
        Arc::clone(&stop),
        &live_options,
        &mut filter,
        (workers, packet_sampler.is_none()),
    )?;
    let live = source.is_live();
    // Conntrack's events (root or CAP_NET_ADMIN): subscribed before privileges go.
    let nat_listener = natevents.then(qof::natevent::Listener::open).transpose()?;
    // The control socket, the metrics port and the pid file (before privileges go: they may
    // need root). SIGUSR1, SIGHUP, commands and scrapes raise one wake flag for the loop, as
    // NAT events do.
    let mut service = service::Service::start(args, meter_cfg, Arc::new(AtomicBool::new(false)))?;
    // A pipe or an interface may keep the next read waiting; a regular file does not.
    let read_may_wait = source.len_hint().is_none();
    // A regular file read here: its next read never waits, so whether the next frame is
    // buffered need not be asked frame by frame. (Workers reading it themselves leave the
    // loop only their records to wait for: it is asked, and waits a moment.)
    let never_waits = !read_may_wait && fanout.is_none();
    let mut sink = sinks::open(
        args,
        &spec,
        yaml.force_biflow(),
        sinks::input_file(input),
        live,
        sampler,
    )?;
    // Inputs, devices written in place and the collector's socket are open: root is no longer
    // needed. Output files are created after the drop (`start`), by the user who will rename
    // and remove them.
    match &args.become_user {
        Some(user) => privilege::drop_to(user, args.become_group.as_deref())?,
        None if (args.ipfix.is_some() || input.starts_with("int:"))
            && nix::unistd::Uid::effective().is_root() =>
        {
            tracing::warn!("running as root without --become-user: privileges are not dropped");
        }
        None => {}
    }
    sink.start()?;
    // Input and output are open, privileges dropped: a `Type=notify` service is up.
    notify::notify("READY=1");

    let started = Instant::now();
    let init_millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    // Packets are decoded in place into the meter's look-ahead queue, which loads each one's
    // flow state a few packets ahead (records come out after the following packets), or
    // handed to --workers meters. Each meter gets plugins of its own.
    let plugins = || {
        qof::plugins::build(&named_plugins, &configured)
            .map(|(_, set, _)| set)
            .unwrap_or_default()
    };
    let mut meter = Engine::new(workers, meter_cfg, decode_cfg, keys, plugins, feeds)?;
    let mut n = Counters {
        nat_events: natevents.then_some(0),
        ..Counters::default()
    };
    // NAT events are read on a thread of their own and written out at housekeeping.
    let mut nat_feed = match nat_listener {
        Some(l) => Some(l.spawn(Arc::clone(&service.wake))?),
        None => None,
    };
    let progress = progress::Progress::new(source.as_ref(), std::io::stderr().is_terminal());
    let stats_every = (args.stats > 0).then(|| args.stats * 1000);
    let mut next_stats_ms: Option<u64> = None;
    let mut outcome = Outcome::Clean;
    service.publish(&meter, sink.as_ref(), &n, source.as_ref());

    loop {
        let mut quiet = false;
        if !never_waits && !source.frame_ready() {
            // The next read may wait (a pipe gone quiet): the packets the look-ahead holds are
            // metered first, and their records exported, as if each had been metered at once.
            // (A regular file's next buffer does not wait: workers are not waited for then.)
            if read_may_wait {
                meter_held(&mut meter, sink.as_mut(), &mut n)?;
            } else {
                meter.hand_over();
                export_ready(&mut meter, sink.as_mut(), &mut n)?;
            }
            if let Some(now) = source.wait_quiet() {
                // A live interface gone quiet: its clock still runs, and flows idle past
                // their timeout end without waiting for the next frame. (Housekeeping below,
                // as after a frame.)
                n.last_ts = n.last_ts.max(now);
                if let Some(counts) = &fanout {
                    fanout_counts(counts, &mut n, sink.as_mut())?;
                }
                meter.handle_timeout(n.last_ts);
                quiet = true;
            }
        }
        if !quiet {
            // (The frame is used where the source returned it, not moved out: a move copies
            // it in words, over the narrower stores that wrote it and its padding, a stall
            // per packet. A frame needs no drop: the result's drop glue, a call per packet,
            // is left to the arm that ends the input.)
            let mut next = ManuallyDrop::new(source.next_frame());
            let frame = match &mut *next {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    if let Err(e) = ManuallyDrop::into_inner(next) {
                        // Standard input cut short by a signal: a stop, not damage.
                        if !stop.load(Ordering::Relaxed) {
                            // One line on standard error; the log gets it too when it goes
                            // elsewhere.
                            eprintln!("qof: {input_name}: {e}");
                            if args.log != "stderr" {
                                tracing::error!(
                                    "{input_name}: {e}; exported the flows read before it"
                                );
                            }
                            outcome = Outcome::InputError;
                        }
                    }
                    break;
                }
            };
            n.frames += 1;
            n.octets += u64::from(frame.orig_len);
            if !live {
                frame.ifindex = file_ingress;
            }
            if n.frames == 1 {
                sink.first_packet(frame.ts)?;
                n.first_ts = Some(frame.ts);
            }
            n.last_ts = n.last_ts.max(frame.ts);
            if let Some(f) = filter.as_mut() {
                if !f.matches(frame.linktype, frame.orig_len, frame.data) {
                    n.filtered += 1;
                    continue;
                }
            }
            // Packet sampling, in input order (before any worker is chosen).
            if let Some(s) = packet_sampler.as_mut() {
                if !s.keep() {
                    n.unsampled += 1;
                    continue;
                }
            }
            if let Err(why) = meter.meter_frame(frame) {
                n.ignored.add(why);
            }
        }
        // (Most packets end no flow: the call is made only when a record is there to take.)
        if meter.records_waiting() {
            export_ready(&mut meter, sink.as_mut(), &mut n)?;
        }
        // Housekeeping every 4096 frames, at once on a signal, a command or a scrape (the wake
        // flag), and whenever a live interface is quiet: signals, commands, metrics, file
        // rotation, statistics, progress.
        // (A live source ends the input itself after a stop, once it has given the frames
        // captured before it.)
        let stopping = stop.load(Ordering::Relaxed) && !live;
        if quiet || n.frames & 0xfff == 0 || stopping || service.wake.load(Ordering::Relaxed) {
            service.wake.store(false, Ordering::Relaxed);
            if let Some(feed) = &nat_feed {
                write_nat_events(feed.take(), sink.as_mut(), &mut n)?;
            }
            if service.attend(&mut meter, sink.as_mut(), &mut n, source.as_ref(), &stop)?
                == service::Next::Stop
                && !live
            {
                break;
            }
            // A collector that took nothing for --export-timeout while the input waited: stop
            // reading (the flows in memory are still handed over, and counted as lost).
            if stopping || sink.failure().is_some() {
                break;
            }
            if status.swap(false, Ordering::Relaxed) {
                // (The packets the look-ahead holds are metered first: the counts then agree.)
                meter_held(&mut meter, sink.as_mut(), &mut n)?;
                log_status(&meter.snapshot(), &n, sink.as_ref(), source.as_ref());
            }
            sink.tick(n.last_ts)?;
            if let Some(every) = stats_every {
                let now = n.last_ts.millis();
                let due = *next_stats_ms.get_or_insert(now);
                if now >= due {
                    meter_held(&mut meter, sink.as_mut(), &mut n)?;
                    sink.write_stats(&process_stats(
                        &meter.snapshot(),
                        &n,
                        source.as_ref(),
                        args,
                        init_millis,
                    ))?;
                    next_stats_ms = Some(now + every);
                }
            }
            progress.update(source.as_ref(), n.frames);
        }
    }
    progress.finish();
    notify::notify("STOPPING=1");
    if service.commanded_stop {
        tracing::warn!("qofctl: stopping input and exporting every flow in memory");
    } else if stop.load(Ordering::Relaxed) {
        tracing::warn!("signal received: stopping input and exporting every flow in memory");
    }
    meter_held(&mut meter, sink.as_mut(), &mut n)?;
    if status.swap(false, Ordering::Relaxed) {
        log_status(&meter.snapshot(), &n, sink.as_ref(), source.as_ref());
    }

    if let Some(feed) = nat_feed.as_mut() {
        write_nat_events(feed.stop(), sink.as_mut(), &mut n)?;
        let c = &feed.counts;
        let lost = c.overflows.load(Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(
                "--natevents: the kernel's event buffer overflowed {lost} times: NAT events were lost"
            );
        }
        tracing::debug!(
            "--natevents: {} conntrack messages read, {} malformed ones skipped",
            c.messages.load(Ordering::Relaxed),
            c.malformed.load(Ordering::Relaxed)
        );
    }
    tracing::debug!("{}", memory_line(&meter.snapshot()));
    meter.flush();
    export_ready(&mut meter, sink.as_mut(), &mut n)?;
    if let Some(counts) = &fanout {
        fanout_counts(counts, &mut n, sink.as_mut())?;
    }
    for (i, (read, dropped)) in source.per_reader().iter().enumerate() {
        tracing::info!("worker {i}: {read} packets read, {dropped} dropped by the kernel");
    }
    if stats_every.is_some() {
        sink.write_stats(&process_stats(
            &meter.snapshot(),
            &n,
            source.as_ref(),
            args,
            init_millis,
        ))?;
    }
    // The summary first: a sink that fails to finish (NetFlow records lost) still had a run.
    // An output file that cannot be finished is not published (its hidden file is removed),
    // and standard output that fails is cut short: the error is the one line, and no summary
    // counts records nobody can read.
    let finished = match sink.finish() {
        Err(e) if args.netflow.is_none() && args.ipfix.is_none() => return Err(e.into()),
        other => other,
    };
    let report = sink.export_report();
    summary(
        &meter.snapshot(),
        &n,
        started,
        report,
        &sink.collectors(),
        source.dropped(),
    );
    finished.context("closing the output")?;
    if let Some(why) = sink.failure() {
        eprintln!("qof: {why}");
        if args.log != "stderr" {
            tracing::error!("{why}");
        }
    }
    if report.is_some_and(|r| r.lost > 0) && matches!(outcome, Outcome::Clean) {
        outcome = Outcome::Undelivered;
    }
    Ok(outcome)
}

/// What the reading loop reads, and what the workers read themselves.
struct Input {
    source: Box<dyn capture::PacketSource + Send>,
    /// One live interface with `--workers`: a socket of a fanout group for each worker.
    feeds: Vec<engine::Feed>,
    /// Their counts, for the reading loop (summary, statistics, rotation's clock).
    fanout: Option<Vec<Arc<engine::WorkerCounts>>>,
}

/// What the workers reading their own sockets have read so far, in the run's counts (the
/// first frame starts the output's clock).
fn fanout_counts(
    counts: &[Arc<engine::WorkerCounts>],
    n: &mut Counters,
    sink: &mut dyn qof::export::RecordSink,
) -> Result<()> {
    let t = engine::FanoutInput::totals(counts);
    if n.first_ts.is_none() {
        if let Some(first) = t.first {
            sink.first_packet(first)?;
            n.first_ts = Some(first);
        }
    }
    n.frames = t.frames;
    n.octets = t.octets;
    n.filtered = t.filtered;
    n.last_ts = n.last_ts.max(t.clock);
    Ok(())
}

/// The input: a file, standard input, or one or several live interfaces, whose frames carry
/// their interface's index (the kernel's, or what `--interface-rules` makes of its name).
/// One interface with `--workers` N > 1: N sockets in a fanout group, read by the workers.
fn open_input(
    args: &Args,
    stop: Arc<AtomicBool>,
    live_options: &capture::live::LiveOptions,
    filter: &mut Option<Filter>,
    (workers, fanout_ok): (usize, bool),
) -> Result<Input> {
    let inputs = args.inputs();
    let rules = args.interface_rules()?;
    let all_live = inputs.iter().all(|i| i.starts_with("int:"));
    let just = |source| Input {
        source,
        feeds: Vec::new(),
        fanout: None,
    };
    if !all_live {
        let _ = rules;
        let source = capture::open_stoppable(inputs[0], Arc::clone(&stop), live_options)?;
        // A file (not a pipe) with workers: each worker reads it.
        if workers > 1 && fanout_ok && inputs.len() == 1 && source.len_hint().is_some() {
            return file_shares(args, source, stop, live_options, filter, workers);
        }
        return Ok(just(source));
    }
    use capture::live::{LiveSource, MultiLive};
    let mut sources = Vec::new();
    for i in &inputs {
        let name = i.strip_prefix("int:").unwrap_or(i);
        let mut options = live_options.clone();
        if let Some(f) = filter.as_ref() {
            // A live interface's filter runs in the kernel, compiled for that interface's
            // link type: the frames it refuses are never copied to qof (and not counted as
            // filtered out).
            let program = f.kernel_program(capture::live::link_type(name), options.snaplen)?;
            options.program = Some(
                program
                    .iter()
                    .map(|i| libc::sock_filter {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect(),
            );
        }
        if inputs.len() == 1 && workers > 1 && !fanout_ok {
            tracing::info!(
                "--sampler counts packets in the order they come: one socket, the reading \
                 thread sharing the frames out to the {workers} workers"
            );
        } else if inputs.len() == 1 && workers > 1 {
            if let Some(input) = open_fanout(name, &stop, options.clone(), &rules, workers)? {
                *filter = None;
                return Ok(input);
            }
        } else if workers > 1 && sources.is_empty() {
            tracing::info!(
                "{} interfaces: the reading thread shares their frames out to the {workers} \
                 workers (a fanout group is for one interface)",
                inputs.len()
            );
        }
        sources.push(LiveSource::open_indexed(
            name,
            Arc::clone(&stop),
            &options,
            |n, k| qof::config::interface_index(&rules, n, k),
        )?);
    }
    *filter = None;
    if sources.len() == 1 {
        if let Some(one) = sources.pop() {
            return Ok(just(Box::new(one)));
        }
    }
    Ok(just(Box::new(MultiLive::new(sources))))
}

/// A capture file read by each of `workers` workers (`first` is one reading), each metering
/// the flows that hash to it: no frame is copied from thread to thread, and reading, the
/// filter and the decode spread over the workers with the metering (the reading thread only
/// exports). Every frame is read and hashed by every worker, which pays while reading is
/// cheap against metering (README, "Several cores").
fn file_shares(
    args: &Args,
    first: Box<dyn capture::PacketSource + Send>,
    stop: Arc<AtomicBool>,
    live_options: &capture::live::LiveOptions,
    filter: &mut Option<Filter>,
    workers: usize,
) -> Result<Input> {
    let input = args.inputs()[0];
    let ingress = args.ingress_interface()?.unwrap_or(0);
    let halt = Arc::new(AtomicBool::new(false));
    let counts: Vec<Arc<engine::WorkerCounts>> = (0..workers).map(|_| Arc::default()).collect();
    let len = first.len_hint();
    // A plain pcap file without --filter: read once, by a thread of its own, for every worker.
    // Else (pcapng, gzip, --filter, which then runs in the workers) each worker reads the file.
    let path = std::path::Path::new(input.strip_prefix("pcapfile:").unwrap_or(input));
    let records = match args.filter {
        None => capture::open_records(path)?,
        Some(_) => None,
    };
    let (mut splitter, mut sources) = match records {
        Some(file) => {
            let (splitter, feeds) = split::split(file, workers, ingress, Arc::clone(&halt));
            let sources: Vec<Box<dyn capture::PacketSource + Send>> = feeds
                .into_iter()
                .map(|f| Box::new(f) as Box<dyn capture::PacketSource + Send>)
                .collect();
            tracing::debug!("{input}: read once, each frame handed to one of {workers} workers");
            (Some(splitter), sources)
        }
        None => {
            let mut sources = vec![first];
            for _ in 1..workers {
                sources.push(capture::open_stoppable(
                    input,
                    Arc::clone(&halt),
                    live_options,
                )?);
            }
            tracing::debug!(
                "{input}: read by each of the {workers} workers, each metering its share"
            );
            (None, sources)
        }
    };
    let mut feeds = Vec::with_capacity(workers);
    for (c, source) in counts.iter().zip(sources.drain(..)) {
        feeds.push(engine::Feed {
            source,
            counts: Arc::clone(c),
            shared: Some(engine::SharedInput {
                filter: args.filter.as_deref().map(Filter::new).transpose()?,
                ingress,
                halt: Arc::clone(&halt),
                splitter: splitter.take(),
            }),
        });
    }
    // (The workers run the filter.)
    *filter = None;
    Ok(Input {
        source: Box::new(engine::FanoutInput::new(counts.clone(), stop, halt, len)),
        feeds,
        fanout: Some(counts),
    })
}

/// `workers` sockets on interface `name` in one `PACKET_FANOUT` group, each read by its
/// worker, each with an equal share of `--ring-size` (at least 2 MiB); `None` on a kernel
/// whose fanout hash is not symmetric (the reading thread then shares frames out).
fn open_fanout(
    name: &str,
    stop: &Arc<AtomicBool>,
    mut options: capture::live::LiveOptions,
    rules: &[qof::config::InterfaceRule],
    workers: usize,
) -> Result<Option<Input>> {
    use capture::live::{self, LiveSource};
    let kernel = live::kernel_version();
    if kernel.is_some_and(|k| k < live::FANOUT_SYMMETRIC_SINCE) {
        tracing::warn!(
            "int:{name}: this kernel's PACKET_FANOUT hash is not symmetric (before Linux {}.{}): \
             one socket, the reading thread sharing frames out to the {workers} workers",
            live::FANOUT_SYMMETRIC_SINCE.0,
            live::FANOUT_SYMMETRIC_SINCE.1
        );
        return Ok(None);
    }
    if kernel.is_some_and(|k| k < live::FANOUT_FULLY_SYMMETRIC_SINCE) {
        tracing::warn!(
            "int:{name}: before Linux 6.6 (unless a stable kernel has the fixes, README), the \
             PACKET_FANOUT hash may send the two directions of an IPv6 flow labelled one way \
             only, or of two IPv4 addresses 2^31 apart, to two workers (two records)"
        );
    }
    options.ring_blocks = (options.ring_blocks / workers).max(2);
    // The sockets stop when the reading thread says (after a stop, or another's failure).
    let halt = Arc::new(AtomicBool::new(false));
    let (sockets, group) = LiveSource::open_fanout(
        name,
        Arc::clone(&halt),
        &options,
        |n, k| qof::config::interface_index(rules, n, k),
        workers,
    )?;
    tracing::info!(
        "int:{name}: {workers} sockets in PACKET_FANOUT group {group} (symmetric flow hash, \
         IPv4 fragments reassembled), one per worker, each with a {} MiB ring",
        options.ring_blocks
    );
    let counts: Vec<Arc<engine::WorkerCounts>> = (0..workers).map(|_| Arc::default()).collect();
    let feeds = sockets
        .into_iter()
        .zip(&counts)
        .map(|(s, c)| engine::Feed {
            source: Box::new(s),
            counts: Arc::clone(c),
            shared: None,
        })
        .collect();
    Ok(Some(Input {
        source: Box::new(engine::FanoutInput::new(
            counts.clone(),
            Arc::clone(stop),
            halt,
            None,
        )),
        feeds,
        fanout: Some(counts),
    }))
}

/// The plugins `--plugin` and the YAML `plugins:` list name, parsed.
fn plugin_specs(args: &Args, yaml: &YamlConfig) -> Result<Vec<qof::plugins::PluginSpec>> {
    let yaml_list = yaml.plugins.iter().flatten();
    args.plugins
        .iter()
        .map(|s| (s, "--plugin"))
        .chain(yaml_list.map(|s| (s, "plugins")))
        .map(|(s, whence)| {
            qof::plugins::PluginSpec::parse(s).map_err(|e| anyhow::anyhow!("{whence} {s}: {e}"))
        })
        .collect()
}

/// SIGINT and SIGTERM: the first sets `stop` (reading stops, every flow in memory is
/// exported); a second one while that goes on ends qof at once, with status 1, after removing
/// the output's unfinished hidden file and lock. A signal handler cannot remove files safely,
/// so a thread waits for the signals. (Two signals that arrive before the thread wakes count
/// as one.)
fn stop_on_signals(stop: &Arc<AtomicBool>) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut first = true;
            for _ in signals.forever() {
                if !first {
                    qof::export::remove_unfinished();
                    signal_hook::low_level::exit(1);
                }
                first = false;
            }
        })?;
    Ok(())
}

/// Write NAT events out, and send them at once (a collector sees a translation as it
/// happens, not when a message fills).
fn write_nat_events(
    events: Vec<qof::natevent::NatEvent>,
    sink: &mut dyn qof::export::RecordSink,
    n: &mut Counters,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    for e in &events {
        sink.write_nat(e)?;
    }
    *n.nat_events.get_or_insert(0) += events.len() as u64;
    sink.flush_now()?;
    Ok(())
}

/// Hand every record the meter has ready to the sink.
fn export_ready(
    meter: &mut Engine,
    sink: &mut dyn qof::export::RecordSink,
    n: &mut Counters,
) -> Result<()> {
    // (Read where it was made: `Some(rec)` by value was a copy of every record.)
    while let Some(written) = meter.with_next_record(|rec| sink.write_flow(rec)) {
        written?;
        n.records += 1;
    }
    Ok(())
}

/// Meter the packets the look-ahead holds back, and export the records they complete.
fn meter_held(
    meter: &mut Engine,
    sink: &mut dyn qof::export::RecordSink,
    n: &mut Counters,
) -> Result<()> {
    meter.drain();
    export_ready(meter, sink, n)
}

/// SIGUSR1: the flow and fragment tables' statistics, and the sink's state, in the log.
fn log_status(
    meter: &Snapshot,
    n: &Counters,
    sink: &dyn qof::export::RecordSink,
    source: &dyn PacketSource,
) {
    let m = meter.stats;
    // Logged as a warning so that the default log level shows what the operator asked for.
    tracing::warn!(
        "status: {} packets read, {} metered; flow table: {} flows now (peak {}), {} created, \
         {} records out, {} evicted when full, {} flushes; fragments: {} datagrams assembled, \
         {} fragments expired without their first",
        n.frames,
        m.packets,
        meter.active,
        m.peak_flows,
        m.flows_created,
        m.records_emitted,
        m.flows_evicted,
        m.flush_events,
        m.assembled_datagrams,
        m.expired_fragments,
    );
    tracing::warn!("status: {}", memory_line(meter));
    for (i, (read, dropped)) in source.per_reader().iter().enumerate() {
        tracing::warn!("status: worker {i}: {read} packets read, {dropped} dropped by the kernel");
    }
    if let Some(s) = sink.status() {
        tracing::warn!("status: {s}");
    }
}

/// Per-flow state in memory: what is in use now (and the most ever at once), and the bytes
/// held (pools keep their high-water size).
fn memory_line(meter: &Snapshot) -> String {
    let m = meter.memory;
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    let plugins = if m.plugin_bytes > 0 {
        format!(
            "; {} plugin states (peak {}) in {:.1} MiB",
            m.plugin_states,
            m.peak_plugin_states,
            mib(m.plugin_bytes)
        )
    } else {
        String::new()
    };
    format!(
        "memory: {} flows (peak {}) in {:.1} MiB; {} TCP states (peak {}) in {:.1} MiB; \
         {} loss blocks in {:.1} MiB; {} transport counters (peak {}) in {:.1} MiB{plugins}",
        m.flows,
        m.peak_flows,
        mib(m.flow_bytes),
        m.tcp_states,
        m.peak_tcp_states,
        mib(m.tcp_state_bytes),
        m.loss_blocks,
        mib(m.loss_bytes),
        m.transport,
        m.peak_transport,
        mib(m.transport_bytes),
    )
}

fn process_stats(
    meter: &Snapshot,
    n: &Counters,
    source: &dyn PacketSource,
    args: &Args,
    init_millis: u64,
) -> ProcessStats {
    let m = meter.stats;
    // Rates per second of packet time (a file read in a moment still has its traffic's
    // rates), over at least a second.
    let span = n
        .first_ts
        .map_or(0, |first| n.last_ts.saturating_since(first).nanos());
    let secs = (span as f64 / 1e9).max(1.0);
    ProcessStats {
        system_init_millis: init_millis,
        exported_flows: m.records_emitted,
        packets: m.packets,
        dropped: source.dropped(),
        ignored: n.ignored.total() + meter.ignored.total(),
        not_sent: 0,
        // Filled in by a network sink, which alone knows what it could not deliver.
        not_sent_flows: 0,
        expired_fragments: m.expired_fragments,
        assembled_fragments: m.assembled_datagrams,
        flush_events: m.flush_events,
        flow_table_peak: m.peak_flows,
        observation_domain: args.observation_domain,
        mean_flow_rate: (m.flows_created as f64 / secs).round() as u32,
        mean_packet_rate: (m.packets as f64 / secs).round() as u32,
        // Filled in by each sink: its own address and totals.
        exporter_ipv4: [0; 4],
        exporter_ipv6: [0; 16],
        exported_messages: 0,
        exported_octets: 0,
    }
}

/// What became of the records handed to one network export (or to all, summed).
fn delivery(r: &qof::export::ExportReport) -> String {
    let overflow = if r.overflow > 0 {
        format!(" ({} of them at the full export queue)", r.overflow)
    } else {
        String::new()
    };
    let lost = format!("{} records lost to the network{overflow}", r.lost);
    if r.acknowledged {
        format!(
            "{} delivered (acknowledged by {}), {lost}",
            r.delivered, r.confirmed_by
        )
    } else if r.lost > 0 {
        format!("{} sent (delivery not confirmed), {lost}", r.delivered)
    } else {
        format!("{} sent (delivery not confirmed)", r.delivered)
    }
}

/// One line on standard error at the end of every run.
fn summary(
    meter: &Snapshot,
    n: &Counters,
    started: Instant,
    report: Option<qof::export::ExportReport>,
    collectors: &[qof::export::CollectorStatus],
    dropped: u64,
) {
    let m = meter.stats;
    let secs = started.elapsed().as_secs_f64();
    let mut ignored = String::new();
    for why in decode::Ignore::ALL {
        let c = n.ignored.get(why) + meter.ignored.get(why);
        if c > 0 {
            ignored.push_str(&format!(
                "{}{} {c}",
                if ignored.is_empty() { "" } else { ", " },
                why.name()
            ));
        }
    }
    let ignored = if ignored.is_empty() {
        String::new()
    } else {
        format!(" ({ignored})")
    };
    let filtered = if n.filtered > 0 {
        format!(", {} filtered out", n.filtered)
    } else {
        String::new()
    };
    let frags = if m.expired_fragments > 0 {
        format!(
            ", {} fragments without a first fragment",
            m.expired_fragments
        )
    } else {
        String::new()
    };
    let unsampled = n.unsampled + m.unsampled;
    let unsampled = if unsampled > 0 {
        format!(", {unsampled} not sampled")
    } else {
        String::new()
    };
    // Flows ended before their time to make room for new ones (YAML max-flows).
    let evicted = if m.flows_evicted > 0 {
        format!(
            ", {} flows ended early for lack of room (flow table full)",
            m.flows_evicted
        )
    } else {
        String::new()
    };
    // Frames a live source lost before qof read them (its kernel buffer was full).
    let dropped = if dropped > 0 {
        format!(", {dropped} dropped by the kernel")
    } else {
        String::new()
    };
    // Every record handed to a network export is delivered or counted as lost; over UDP
    // (and SCTP) delivery cannot be confirmed, so those are "sent", and no loss is claimed
    // to be zero.
    let lost = match (report, collectors) {
        (None, _) => String::new(),
        // Several collectors: each one's own delivery and loss.
        (Some(_), list) if list.len() > 1 => {
            let each: Vec<String> = list
                .iter()
                .map(|c| format!("{}: {}", c.name, delivery(&c.report())))
                .collect();
            format!(": {}", each.join("; "))
        }
        (Some(r), _) => format!(": {}", delivery(&r)),
    };
    let nat = match n.nat_events {
        Some(k) => format!("; {k} NAT event records exported"),
        None => String::new(),
    };
    eprintln!(
        "qof: {} packets read{dropped}, {} metered, {} ignored{ignored}{filtered}{unsampled}{frags}{evicted}; {} flow records exported{lost}{nat}; {:.2} s, {:.0} packets/s",
        n.frames,
        m.packets,
        n.ignored.total() + meter.ignored.total(),
        n.records,
        secs,
        n.frames as f64 / secs.max(1e-9),
    );
}
