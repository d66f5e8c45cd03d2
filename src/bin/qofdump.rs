//! qofdump: print the data records of IPFIX files or streams as JSON lines.
//!
//! Reads qof's files and any other exporter's (libfixbuf/YAF, softflowd, pmacct, ipfixprobe …):
//! the decoder needs no knowledge of the elements, and names and values come from the one IE
//! table ([`qof::ie`]), so a line printed here is the line `qof --format json` prints for the
//! same record. Elements the table does not know print as `"PEN/ID": "hex octets"`.

use clap::Parser;
use flate2::read::MultiGzDecoder;
use qof::config::DumpArgs as Args;
use qof::ipfix::decode::{Event, MessageReader, Record, Session, Template};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

/// A line on standard error. Unlike `eprintln!`, a closed stderr is ignored rather than a panic.
macro_rules! report {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

/// Why dumping one input stopped early.
enum Stop {
    /// Standard output is gone (`qofdump … | head`): stop everything quietly.
    BrokenPipe,
    /// Writing standard output failed otherwise.
    Output(io::Error),
    /// The input was unreadable or malformed; reported, and the exit status says so.
    Input(String),
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.kafka.is_some() {
        return dump_kafka(&args);
    }
    if args.element_xml {
        return match io::stdout().write_all(qof::ie::registry_xml().as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                report!("qofdump: writing output: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let files = if args.files.is_empty() {
        vec!["-".to_string()]
    } else {
        args.files.clone()
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut failed = false;
    for name in &files {
        let result = dump_one(name, &args, &mut out).and_then(|()| flush(&mut out));
        match result {
            Ok(()) => {}
            Err(Stop::BrokenPipe) => return ExitCode::SUCCESS,
            Err(Stop::Output(e)) => {
                report!("qofdump: writing output: {e}");
                return ExitCode::FAILURE;
            }
            Err(Stop::Input(msg)) => {
                // Everything decoded before the error is printed first.
                if let Err(Stop::BrokenPipe) = flush(&mut out) {
                    return ExitCode::SUCCESS;
                }
                report!("qofdump: {name}: {msg}");
                failed = true;
            }
        }
    }
    match flush(&mut out) {
        Ok(()) | Err(Stop::BrokenPipe) => {}
        Err(_) => return ExitCode::FAILURE,
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `--kafka BROKERS --kafka-topic TOPIC`: the topic's messages as JSON lines, partition by
/// partition, from the first offset to the end as it is when qofdump starts. A JSON message
/// is printed as it is; an IPFIX message (qof's `--format ipfix`) is decoded, each on its own
/// (every message carries its templates).
#[cfg(feature = "kafka")]
fn dump_kafka(args: &Args) -> ExitCode {
    let brokers = args.kafka.as_deref().unwrap_or_default();
    let Some(topic) = args.kafka_topic.as_deref() else {
        report!("qofdump: --kafka needs --kafka-topic TOPIC");
        return ExitCode::from(2);
    };
    let mut props = Vec::new();
    for o in &args.kafka_options {
        match o.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                props.push((k.trim().to_string(), v.to_string()))
            }
            _ => {
                report!(
                    "qofdump: --kafka-option {o:?}: expected KEY=VALUE (a librdkafka property)"
                );
                return ExitCode::from(2);
            }
        }
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut line = String::with_capacity(1024);
    let mut undecodable = 0u64;
    let timeout = std::time::Duration::from_secs(args.kafka_timeout);
    let result =
        qof::export::kafka::read_topic(brokers, topic, &props, timeout, |_, key, payload| {
            if payload.starts_with(&[0x00, 0x0a]) {
                // One IPFIX message, templates first: a session of its own.
                let mut session = Session::new();
                let mut reader = MessageReader::new(payload);
                while let Ok(Some(msg)) = reader.next_message() {
                    let mut err = None;
                    let decoded = session.decode(&msg, |ev| {
                        if let Event::Record(r) = ev {
                            if r.options && args.no_options {
                                return;
                            }
                            line.clear();
                            record_json(&mut line, r);
                            line.push('\n');
                            if let Err(e) = out.write_all(line.as_bytes()) {
                                err = Some(e);
                            }
                        }
                    });
                    if let Some(e) = err {
                        return Err(e);
                    }
                    if decoded.is_err() {
                        undecodable += 1;
                    }
                }
                Ok(())
            } else if payload.starts_with(b"{") {
                // qof's statistics record has no key; --no-options leaves it out, as for IPFIX.
                if key.is_none() && args.no_options {
                    return Ok(());
                }
                out.write_all(payload)?;
                out.write_all(b"\n")
            } else {
                undecodable += 1;
                Ok(())
            }
        });
    let flushed = out.flush();
    match (result, flushed) {
        (Err(e), _) => {
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            report!("qofdump: {e:#}");
            ExitCode::FAILURE
        }
        (Ok(_), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (Ok(_), Err(e)) => {
            report!("qofdump: writing output: {e}");
            ExitCode::FAILURE
        }
        (Ok(n), Ok(())) => {
            if undecodable > 0 {
                report!(
                    "qofdump: {topic}: {undecodable} of {n} messages are neither JSON nor IPFIX"
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}

#[cfg(not(feature = "kafka"))]
fn dump_kafka(_: &Args) -> ExitCode {
    report!("qofdump: --kafka: this qofdump was built without Kafka support; build it with `cargo build --release --features kafka`");
    ExitCode::FAILURE
}

fn flush(out: &mut impl Write) -> Result<(), Stop> {
    out.flush().map_err(output_error)
}

fn output_error(e: io::Error) -> Stop {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Stop::BrokenPipe
    } else {
        Stop::Output(e)
    }
}

/// Opens a file or standard input, unwrapping gzip when the first two bytes are its magic.
fn open_input(name: &str) -> io::Result<Box<dyn Read>> {
    let raw: Box<dyn Read> = if name == "-" {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(name)?)
    };
    let mut buf = BufReader::with_capacity(1 << 16, raw);
    let head = buf.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(buf)))
    } else {
        Ok(Box::new(buf))
    }
}

fn dump_one(name: &str, args: &Args, out: &mut impl Write) -> Result<(), Stop> {
    let input = open_input(name).map_err(|e| Stop::Input(e.to_string()))?;
    let mut reader = MessageReader::new(input);
    let mut session = Session::new();
    let mut line = String::with_capacity(1024);
    let mut write_err: Option<io::Error> = None;
    loop {
        let msg = match reader.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => return Err(Stop::Input(e.to_string())),
        };
        let decoded = session.decode(&msg, |ev| {
            if write_err.is_some() {
                return;
            }
            line.clear();
            match ev {
                Event::Record(r) => {
                    if r.options && args.no_options {
                        return;
                    }
                    record_json(&mut line, r);
                }
                Event::Template(t) if args.templates => template_json(&mut line, t),
                Event::Withdrawal { domain, template_id } if args.templates => {
                    let _ = write!(
                        line,
                        "{{\"@withdrawal\":{{\"observationDomainId\":{domain},\"templateId\":{template_id}}}}}"
                    );
                }
                Event::Warning(w) => report!("qofdump: {name}: warning: {w}"),
                _ => {}
            }
            if !line.is_empty() {
                line.push('\n');
                if let Err(e) = out.write_all(line.as_bytes()) {
                    write_err = Some(e);
                }
            }
        });
        if let Some(e) = write_err.take() {
            return Err(output_error(e));
        }
        if let Err(e) = decoded {
            return Err(Stop::Input(e.to_string()));
        }
    }
    let s = session.stats;
    if s.unknown_sets > 0 {
        report!(
            "qofdump: {name}: {} data sets skipped for want of their template",
            s.unknown_sets
        );
    }
    Ok(())
}

/// `{"@template": {...}}`: the template as the exporter defined it, for debugging exporters.
fn template_json(line: &mut String, t: &Template) {
    let _ = write!(
        line,
        "{{\"@template\":{{\"observationDomainId\":{},\"templateId\":{},\"scopeCount\":{},\"fields\":[",
        t.domain, t.id, t.scope_count
    );
    for (i, f) in t.fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        line.push_str("{\"name\":");
        names::write_key(line, f.pen, f.id);
        let _ = write!(line, ",\"pen\":{},\"id\":{},\"length\":", f.pen, f.id);
        if f.length == qof::ipfix::decode::VARLEN {
            line.push_str("\"variable\"}");
        } else {
            let _ = write!(line, "{}}}", f.length);
        }
    }
    line.push_str("]}}");
}

/// One data record as a JSON object, keys in template order.
fn record_json(line: &mut String, r: &Record<'_>) {
    line.push('{');
    for (i, f) in r.fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        match names::list_of(f.pen, f.id, f.bytes) {
            Some(list) => names::write_list(line, &list),
            None => {
                names::write_key(line, f.pen, f.id);
                line.push(':');
                names::write_value(line, f.pen, f.id, f.bytes);
            }
        }
    }
    line.push('}');
}

/// Element names and values, through the shared IE table and printer so a line here is the line
/// `qof --format json` writes for the same record.
mod names {
    use qof::ie::{self, BasicList, IeType, Value};

    /// A basicList field, decoded (its items of a fixed length, or each with its own).
    pub fn list_of(pen: u32, id: u16, bytes: &[u8]) -> Option<BasicList<'_>> {
        if (pen, id) != (ie::pen::IANA, ie::BASIC_LIST_ID) {
            return None;
        }
        ie::parse_basic_list(bytes).filter(|l| l.item_len != 0)
    }

    /// A list as qof prints it: `"innerName":[item,...]` (items of an unknown element as hex).
    pub fn write_list(line: &mut String, l: &BasicList<'_>) {
        write_key(line, l.pen, l.id);
        line.push(':');
        let ty = ie::by_id(l.pen, l.id).map_or(IeType::OctetArray, |(e, _)| e.ty);
        ie::write_json_value(&Value::List(ty, l.item_len, l.items), line);
    }

    /// The element's name (`reverseX` for RFC 5103 reverse elements), or "PEN/ID" if unknown.
    pub fn write_key(line: &mut String, pen: u32, id: u16) {
        ie::write_json_key(ie::by_id(pen, id), pen, id, line);
    }

    /// The value decoded by the element's type; unknown elements print as hex octets.
    pub fn write_value(line: &mut String, pen: u32, id: u16, bytes: &[u8]) {
        let Some((elem, _)) = ie::by_id(pen, id) else {
            ie::write_json_value(&Value::Bytes(bytes), line);
            return;
        };
        if elem.ty == IeType::String {
            // Other exporters' strings need not be UTF-8: print them lossily, not as "".
            if std::str::from_utf8(bytes).is_err() {
                ie::write_json_str(&String::from_utf8_lossy(bytes), line);
                return;
            }
        }
        ie::write_json_value(&Value::from_bytes(elem.ty, bytes), line);
    }
}
