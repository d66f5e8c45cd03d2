//! RFC 5655 IPFIX files: one message stream per file, published atomically.
//!
//! A file is written under a hidden temporary name in its directory and renamed to its final
//! name only when complete, so a reader (a collector's file daemon) never sees half a file;
//! how that name is made safe against planted links, and what is written in place, is
//! [`OutputFile`]'s part. With `--rotate N`, a new file starts when packet time has moved N
//! seconds past the start of the current one; files are named
//! `<prefix>-YYYYMMDDhhmmss-NNNNN.ipfix` after the packet time of their start (UTC) and a
//! serial number, as QoF names them. With `--lock`, `<name>.lock` exists while the file is
//! written. Every file starts with the statistics template, so none is ever empty.

use super::export_time;
use super::output_file::{FileId, OutputFile, OutputOptions};
use super::RecordSink;
use crate::ipfix::{Encoder, TemplateSpec, MAX_FILE_MESSAGE};
use crate::meter::{FlowRecord, ProcessStats};
use crate::time::{civil_from_days, Timestamp};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where IPFIX goes.
#[derive(Clone, Debug)]
pub struct FileOutput {
    /// The file (or, with rotation, the name prefix); `None` = standard output.
    pub path: Option<PathBuf>,
    /// Seconds of packet time per file.
    pub rotate_secs: Option<u64>,
    /// Hold `<name>.lock` while writing each file.
    pub lock: bool,
    /// The capture being read, which no output file may be.
    pub input: Option<FileId>,
}

struct OpenFile {
    writer: BufWriter<OutputFile>,
    started: Timestamp,
}

pub struct IpfixFileSink {
    enc: Encoder,
    out: FileOutput,
    stdout: Option<BufWriter<io::Stdout>>,
    file: Option<OpenFile>,
    serial: u32,
}

impl IpfixFileSink {
    /// Checks the output and opens a device or FIFO written in place; a regular file is
    /// created by [`RecordSink::start`] (or the first record).
    pub fn new(
        spec: TemplateSpec,
        observation_domain: u32,
        force_biflow: bool,
        out: FileOutput,
    ) -> io::Result<Self> {
        let enc = Encoder::new(spec, observation_domain, MAX_FILE_MESSAGE, force_biflow);
        let mut sink = IpfixFileSink {
            enc,
            stdout: out
                .path
                .is_none()
                .then(|| BufWriter::with_capacity(1 << 16, io::stdout())),
            out,
            file: None,
            serial: 0,
        };
        if let (Some(path), None) = (sink.out.path.clone(), sink.out.rotate_secs) {
            let file = OutputFile::new(&path, sink.options())?;
            sink.begin(file, Timestamp::ZERO);
        }
        if sink.stdout.is_some() {
            sink.enc.announce();
        }
        Ok(sink)
    }

    /// Describe `--sampler` in the output (an options record: see [`Encoder::set_sampling`]).
    pub fn set_sampling(&mut self, spec: &crate::meter::sampling::SamplerSpec) {
        self.enc.set_sampling(spec);
    }

    fn options(&self) -> OutputOptions {
        OutputOptions {
            lock: self.out.lock,
            input: self.out.input,
        }
    }

    /// A new file: it starts with the templates.
    fn begin(&mut self, file: OutputFile, started: Timestamp) {
        self.file = Some(OpenFile {
            writer: BufWriter::with_capacity(1 << 16, file),
            started,
        });
        self.enc.forget_templates();
        self.enc.announce();
    }

    /// Finish the current file: flush, to disk, rename into place, drop the lock.
    fn publish(&mut self) -> io::Result<()> {
        let Some(mut f) = self.file.take() else {
            return Ok(());
        };
        self.enc.flush(export_time(), &mut f.writer)?;
        f.writer.flush()?;
        f.writer.get_mut().publish()
    }

    /// With rotation: make sure a file is open for packet time `now`, rotating if due.
    fn rotate_to(&mut self, now: Timestamp) -> io::Result<()> {
        let (Some(secs), Some(prefix)) = (self.out.rotate_secs, self.out.path.clone()) else {
            return Ok(());
        };
        if let Some(f) = &self.file {
            if now.saturating_since(f.started).nanos() < secs.saturating_mul(1_000_000_000) {
                return Ok(());
            }
            self.publish()?;
        }
        let target = rotated_name(&prefix, now, self.serial);
        self.serial += 1;
        let mut file = OutputFile::new(&target, self.options())?;
        file.start()?;
        self.begin(file, now);
        Ok(())
    }

    fn with_writer(
        &mut self,
        f: impl FnOnce(&mut Encoder, &mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        if let Some(w) = self.stdout.as_mut() {
            return f(&mut self.enc, w);
        }
        match self.file.as_mut() {
            Some(file) => f(&mut self.enc, &mut file.writer),
            None => Ok(()),
        }
    }
}

/// `<prefix>-YYYYMMDDhhmmss-NNNNN.ipfix`, UTC.
pub fn rotated_name(prefix: &Path, start: Timestamp, serial: u32) -> PathBuf {
    let secs = start.secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    let mut name = prefix.as_os_str().to_owned();
    name.push(format!(
        "-{y:04}{m:02}{d:02}{:02}{:02}{:02}-{serial:05}.ipfix",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    ));
    PathBuf::from(name)
}

impl RecordSink for IpfixFileSink {
    fn start(&mut self) -> io::Result<()> {
        match (&mut self.file, &self.out.path) {
            (Some(f), _) => f.writer.get_mut().start(),
            // Rotation: the first file comes with the first record; its directory is tried now.
            (None, Some(prefix)) => OutputFile::check_directory(prefix),
            (None, None) => Ok(()),
        }
    }

    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        if self.file.is_none() && self.stdout.is_none() {
            self.rotate_to(rec.end)?;
        }
        let t = export_time();
        self.with_writer(|enc, w| enc.encode_flow(rec, t, &mut MessageOut(w)))
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        let t = export_time();
        let (messages, octets) = self.enc.exported();
        let stats = ProcessStats {
            exported_messages: messages,
            exported_octets: octets,
            ..*stats
        };
        self.with_writer(|enc, w| enc.encode_stats(&stats, t, &mut MessageOut(w)))
    }

    fn write_nat(&mut self, event: &crate::natevent::NatEvent) -> io::Result<()> {
        if self.file.is_none() && self.stdout.is_none() {
            self.rotate_to(event.time)?;
        }
        let t = export_time();
        self.with_writer(|enc, w| enc.encode_nat(event, t, &mut MessageOut(w)))
    }

    fn resend_templates(&mut self) {
        self.enc.resend_templates();
    }

    fn flush_now(&mut self) -> io::Result<()> {
        let t = export_time();
        self.with_writer(|enc, w| {
            enc.flush(t, &mut MessageOut(w))?;
            w.flush()
        })
    }

    fn reopen(&mut self) -> io::Result<()> {
        let Some(path) = self.out.path.clone() else {
            return Ok(()); // standard output goes on
        };
        if self
            .file
            .as_ref()
            .is_some_and(|f| f.writer.get_ref().in_place())
        {
            return Ok(()); // a device or FIFO is written in place: nothing to publish
        }
        let started = self.file.as_ref().map_or(Timestamp::ZERO, |f| f.started);
        self.publish()?;
        match self.out.rotate_secs {
            // Rotation: the next record (or tick) starts the next file, named for its time.
            Some(_) => Ok(()),
            None => {
                let mut file = OutputFile::new(&path, self.options())?;
                file.start()?;
                self.begin(file, started);
                Ok(())
            }
        }
    }

    fn tick(&mut self, now: Timestamp) -> io::Result<()> {
        self.rotate_to(now)
    }

    fn finish(&mut self) -> io::Result<()> {
        let t = export_time();
        if let Some(w) = self.stdout.as_mut() {
            self.enc.flush(t, &mut MessageOut(w))?;
            return w.flush();
        }
        if self.file.is_none() {
            // Rotation was asked for but no packet arrived: still leave one (template-only) file.
            self.rotate_to(Timestamp::from_secs(u64::from(t)))?;
        }
        self.publish()
    }
}

/// Adapts a `dyn Write` to the encoder's message sink.
struct MessageOut<'a>(&'a mut dyn Write);

impl crate::ipfix::MessageSink for MessageOut<'_> {
    fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.0.write_all(message)
    }
}
