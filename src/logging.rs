//! `--log stderr|/absolute/file|syslog-facility` and `--loglevel`, via tracing.

use anyhow::{bail, Context, Result};
use std::ffi::CStr;
use tracing_subscriber::EnvFilter;

pub fn init(spec: &str, level: &str) -> Result<()> {
    let filter = EnvFilter::new(format!("qof={level},{level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if spec == "stderr" {
        builder.with_writer(std::io::stderr).init();
    } else if spec.starts_with('/') {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec)
            .with_context(|| format!("--log {spec}"))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
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
