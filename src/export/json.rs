//! JSON lines: one object per exported record, keys = Information Element names, values as
//! the shared printer spells them (so `qofdump` prints identical lines for the IPFIX form).

use super::output_file::{OutputFile, OutputOptions};
use super::RecordSink;
use crate::ie::{self, write_json_value};
use crate::ipfix::{nat_elements, nat_values, stats_elements, stats_values, TemplateSpec};
use crate::meter::{FlowRecord, ProcessStats};
use crate::natevent::NatEvent;
use std::io::{self, BufWriter, Write};

/// Turns records into JSON lines (each ending in `\n`), handed one at a time to a closure:
/// a file or standard output writes them in a row, Kafka makes each its own message.
pub(crate) struct JsonLines {
    spec: TemplateSpec,
    force_biflow: bool,
    line: String,
}

impl JsonLines {
    pub(crate) fn new(spec: TemplateSpec, force_biflow: bool) -> Self {
        JsonLines {
            spec,
            force_biflow,
            line: String::with_capacity(512),
        }
    }

    /// The lines of one flow record: one for a biflow template, else the forward record and,
    /// when the reverse direction saw packets, the reverse one.
    pub(crate) fn flow(
        &mut self,
        rec: &FlowRecord,
        emit: &mut dyn FnMut(&str) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.spec.biflow() {
            self.one(rec);
            return emit(&self.line);
        }
        let (first, second) = self.spec.export_records(rec);
        self.one(&first);
        emit(&self.line)?;
        if let Some(r) = second {
            self.one(&r);
            emit(&self.line)?;
        }
        Ok(())
    }

    fn one(&mut self, rec: &FlowRecord) {
        // Same dimensions as the IPFIX encoder, except that JSON has no reduced-size encoding.
        let dims = self.spec.dims(rec, self.force_biflow);
        self.line.clear();
        self.line.push('{');
        let mut next = 0;
        for (i, f) in self.spec.fields_for(dims).enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            ie::write_json_key(Some((f.ie, f.reverse)), 0, 0, &mut self.line);
            self.line.push(':');
            write_json_value(&f.value_next(rec, &mut next), &mut self.line);
        }
        self.line.push_str("}\n");
    }

    /// The line of the process statistics (the options record of `--stats`).
    pub(crate) fn stats(&mut self, stats: &ProcessStats) -> &str {
        self.line.clear();
        self.line.push('{');
        for (i, ((ie, _), v)) in stats_elements().zip(stats_values(stats).iter()).enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            ie::write_json_key(Some((ie, false)), 0, 0, &mut self.line);
            self.line.push(':');
            write_json_value(v, &mut self.line);
        }
        self.line.push_str("}\n");
        &self.line
    }

    /// The line of a NAT event (`--natevents`).
    pub(crate) fn nat(&mut self, event: &NatEvent) -> &str {
        self.line.clear();
        self.line.push('{');
        let values = nat_values(event);
        for (i, ((ie, _), v)) in nat_elements(!event.is_ipv4())
            .zip(values.iter())
            .enumerate()
        {
            if i > 0 {
                self.line.push(',');
            }
            ie::write_json_key(Some((ie, false)), 0, 0, &mut self.line);
            self.line.push(':');
            write_json_value(v, &mut self.line);
        }
        self.line.push_str("}\n");
        &self.line
    }
}

pub struct JsonSink<W: Write> {
    lines: JsonLines,
    out: W,
    /// Lines written so far, and their octets (the statistics record's message and octet
    /// totals: a JSON output's messages are its lines).
    written: u64,
    octets: u64,
}

impl<W: Write> JsonSink<W> {
    pub fn new(spec: TemplateSpec, force_biflow: bool, out: W) -> Self {
        JsonSink {
            lines: JsonLines::new(spec, force_biflow),
            out,
            written: 0,
            octets: 0,
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write> RecordSink for JsonSink<W> {
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        let (out, written, octets) = (&mut self.out, &mut self.written, &mut self.octets);
        self.lines.flow(rec, &mut |line| {
            *written += 1;
            *octets += line.len() as u64;
            out.write_all(line.as_bytes())
        })
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        let stats = &ProcessStats {
            exported_messages: self.written,
            exported_octets: self.octets,
            ..*stats
        };
        let line = self.lines.stats(stats);
        self.written += 1;
        self.octets += line.len() as u64;
        self.out.write_all(line.as_bytes())
    }

    /// One line: `{"observationTimeMilliseconds":...,"natEvent":4,...}`.
    fn write_nat(&mut self, event: &NatEvent) -> io::Result<()> {
        let line = self.lines.nat(event);
        self.written += 1;
        self.octets += line.len() as u64;
        self.out.write_all(line.as_bytes())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn flush_now(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// JSON lines to a file, published as the IPFIX file is: written under a hidden name and
/// renamed into place when complete ([`OutputFile`]), or written in place to a device or FIFO.
pub struct JsonFileSink {
    json: JsonSink<BufWriter<OutputFile>>,
    options: OutputOptions,
}

impl JsonFileSink {
    pub fn new(
        spec: TemplateSpec,
        force_biflow: bool,
        file: OutputFile,
        options: OutputOptions,
    ) -> Self {
        let out = BufWriter::with_capacity(1 << 16, file);
        JsonFileSink {
            json: JsonSink::new(spec, force_biflow, out),
            options,
        }
    }
}

impl RecordSink for JsonFileSink {
    fn start(&mut self) -> io::Result<()> {
        self.json.out.get_mut().start()
    }

    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        self.json.write_flow(rec)
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        self.json.write_stats(stats)
    }

    fn write_nat(&mut self, event: &NatEvent) -> io::Result<()> {
        self.json.write_nat(event)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.json.finish()?;
        self.json.out.get_mut().publish()
    }

    fn flush_now(&mut self) -> io::Result<()> {
        self.json.flush_now()
    }

    /// SIGHUP: the lines so far are published under the output's name; a new file goes on.
    fn reopen(&mut self) -> io::Result<()> {
        if self.json.out.get_ref().in_place() {
            return Ok(());
        }
        self.json.finish()?;
        self.json.out.get_mut().publish()?;
        let path = self.json.out.get_ref().target().to_path_buf();
        let mut next = OutputFile::new(&path, self.options.clone())?;
        next.start()?;
        // (The old file is published: replacing the writer drops nothing unwritten.)
        self.json.out = BufWriter::with_capacity(1 << 16, next);
        Ok(())
    }
}
