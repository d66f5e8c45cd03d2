//! `--log stderr|/absolute/file|syslog-facility` and `--loglevel`, via tracing.

use anyhow::{bail, Context, Result};
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::EnvFilter;

/// A log file that SIGHUP reopens (after logrotate moved it away, the new lines go to a new
/// file under the name).
struct ReopenFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl io::Write for &ReopenFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.lock() {
            Ok(mut f) => f.write(buf),
            Err(p) => p.into_inner().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The log file, when `--log` names one.
static LOG_FILE: OnceLock<Arc<ReopenFile>> = OnceLock::new();

fn open_log(path: &std::path::Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// SIGHUP: open the log file again (a no-op for standard error and syslog).
pub fn reopen() -> io::Result<()> {
    let Some(log) = LOG_FILE.get() else {
        return Ok(());
    };
    let fresh = open_log(&log.path)
        .map_err(|e| io::Error::new(e.kind(), format!("--log {}: {e}", log.path.display())))?;
    match log.file.lock() {
        Ok(mut f) => *f = fresh,
        Err(p) => *p.into_inner() = fresh,
    }
    Ok(())
}

pub fn init(spec: &str, level: &str) -> Result<()> {
    let filter = EnvFilter::new(format!("qof={level},{level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if spec == "stderr" {
        use std::io::IsTerminal;
        builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init();
    } else if spec.starts_with('/') {
        let file = open_log(std::path::Path::new(spec)).with_context(|| format!("--log {spec}"))?;
        let log = Arc::new(ReopenFile {
            path: PathBuf::from(spec),
            file: Mutex::new(file),
        });
        let _ = LOG_FILE.set(log.clone());
        builder.with_ansi(false).with_writer(log).init();
    } else if let Some(facility) = facility(spec) {
        let ident: &'static CStr = c"qof";
        let Some(syslog) = syslog_tracing::Syslog::new(ident, Default::default(), facility) else {
            bail!("--log {spec}: syslog is already in use by this process");
        };
        builder
            .with_ansi(false)
            .without_time()
            .with_writer(syslog)
            .init();
    } else {
        bail!("--log {spec}: expected stderr, an absolute file path, or a syslog facility (user, daemon, local0..local7, ...)");
    }
    Ok(())
}

fn facility(name: &str) -> Option<syslog_tracing::Facility> {
    use syslog_tracing::Facility::*;
    Some(match name {
        "user" => User,
        "mail" => Mail,
        "daemon" => Daemon,
        "auth" => Auth,
        "lpr" => Lpr,
        "news" => News,
        "uucp" => Uucp,
        "cron" => Cron,
        "authpriv" => AuthPriv,
        "ftp" => Ftp,
        "local0" => Local0,
        "local1" => Local1,
        "local2" => Local2,
        "local3" => Local3,
        "local4" => Local4,
        "local5" => Local5,
        "local6" => Local6,
        "local7" => Local7,
        _ => return None,
    })
}
