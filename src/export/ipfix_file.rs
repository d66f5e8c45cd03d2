//! RFC 5655 IPFIX files: one message stream per file, published atomically.
//!
//! A file is written under a hidden temporary name in its directory and renamed to its final
//! name only when complete, so a reader (a collector's file daemon) never sees half a file.
//! With `--rotate N`, a new file starts when packet time has moved N seconds past the start of
//! the current one; files are named `<prefix>-YYYYMMDDhhmmss-NNNNN.ipfix` after the packet time
//! of their start (UTC) and a serial number, as QoF names them. With `--lock`, `<name>.lock`
//! exists while the file is written. Every file starts with the statistics template, so none
//! is ever empty. A target that exists and is not a regular file (`/dev/null`, a FIFO, a
//! terminal) is written in place: renaming over it would replace a device with a file.

use super::RecordSink;
use crate::ipfix::{Encoder, TemplateSpec, MAX_FILE_MESSAGE};
use crate::meter::{FlowRecord, ProcessStats};
use crate::time::{civil_from_days, Timestamp};
use std::fs::{self, File};
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
}

struct OpenFile {
    writer: BufWriter<File>,
    /// The hidden name written to, renamed to `target` when complete; `None` when the target
    /// is a device or FIFO written in place.
    partial: Option<PathBuf>,
    target: PathBuf,
    lock: Option<PathBuf>,
    started: Timestamp,
}

pub struct IpfixFileSink {
    enc: Encoder,
    out: FileOutput,
    stdout: Option<BufWriter<io::Stdout>>,
    file: Option<OpenFile>,
    serial: u32,
}

/// Wall-clock seconds for the message header's export time.
fn export_time() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

impl IpfixFileSink {
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
        if let Some(path) = sink.out.path.clone() {
            if sink.out.rotate_secs.is_none() {
                sink.open(path, Timestamp::ZERO)?;
            } else if let Some(dir) = nonempty_parent(&path) {
                if !dir.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{}: no such directory", dir.display()),
                    ));
                }
            }
        }
        if sink.stdout.is_some() {
            sink.enc.announce();
        }
        Ok(sink)
    }

    fn open(&mut self, target: PathBuf, started: Timestamp) -> io::Result<()> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", target.display()),
            ));
        }
        let special = match fs::metadata(&target) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: is a directory", target.display()),
                ))
            }
            Ok(m) => !m.is_file(),
            Err(_) => false,
        };
        let (file, partial, lock) = if special {
            let file = File::options()
                .write(true)
                .open(&target)
                .map_err(naming(&target))?;
            (file, None, None)
        } else {
            let partial = target.with_file_name(format!(".{name}.partial"));
            let lock = if self.out.lock {
                let lock = target.with_file_name(format!("{name}.lock"));
                File::options()
                    .write(true)
                    .create_new(true)
                    .open(&lock)
                    .map_err(naming(&lock))?;
                Some(lock)
            } else {
                None
            };
            let file = File::create(&partial).map_err(naming(&partial))?;
            (file, Some(partial), lock)
        };
        self.file = Some(OpenFile {
            writer: BufWriter::with_capacity(1 << 16, file),
            partial,
            target,
            lock,
            started,
        });
        self.enc.forget_templates();
        self.enc.announce();
        Ok(())
    }

    /// Finish the current file: flush, fsync, rename into place, drop the lock.
    fn publish(&mut self) -> io::Result<()> {
        let Some(mut f) = self.file.take() else {
            return Ok(());
        };
        self.enc.flush(export_time(), &mut f.writer)?;
        f.writer.flush()?;
        if let Some(partial) = &f.partial {
            f.writer.get_ref().sync_all()?;
            fs::rename(partial, &f.target).map_err(naming(&f.target))?;
        }
        if let Some(lock) = f.lock {
            let _ = fs::remove_file(lock);
        }
        Ok(())
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
        self.open(target, now)
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

/// An I/O error that names the path it happened on.
fn naming(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn nonempty_parent(p: &Path) -> Option<&Path> {
    p.parent().filter(|d| !d.as_os_str().is_empty())
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
    fn write_flow(&mut self, rec: &FlowRecord) -> io::Result<()> {
        if self.file.is_none() && self.stdout.is_none() {
            self.rotate_to(rec.end)?;
        }
        let t = export_time();
        self.with_writer(|enc, w| enc.encode_flow(rec, t, &mut MessageOut(w)))
    }

    fn write_stats(&mut self, stats: &ProcessStats) -> io::Result<()> {
        let t = export_time();
        self.with_writer(|enc, w| enc.encode_stats(stats, t, &mut MessageOut(w)))
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

impl Drop for IpfixFileSink {
    /// A sink dropped without `finish` (an error elsewhere) leaves no partial file behind.
    fn drop(&mut self) {
        if let Some(f) = self.file.take() {
            if let Some(partial) = &f.partial {
                let _ = fs::remove_file(partial);
            }
            if let Some(lock) = f.lock {
                let _ = fs::remove_file(lock);
            }
        }
    }
}
