//! Choosing the record sink from the command line: IPFIX (file or standard output) or JSON.

use anyhow::{bail, Context, Result};
use qof::config::{Args, Format};
use qof::export::{FileOutput, IpfixFileSink, JsonSink, RecordSink};
use qof::ipfix::TemplateSpec;
use std::io::{BufWriter, IsTerminal};
use std::path::PathBuf;

pub fn open(args: &Args, spec: &TemplateSpec, force_biflow: bool) -> Result<Box<dyn RecordSink>> {
    let path = args
        .output
        .as_deref()
        .filter(|p| *p != "-")
        .map(PathBuf::from);
    match args.format {
        Format::Ipfix => {
            if path.is_none() && std::io::stdout().is_terminal() {
                bail!("refusing to write binary IPFIX to a terminal: give --out FILE, pipe the output, or use --format json");
            }
            let out = FileOutput {
                path: path.clone(),
                rotate_secs: args.rotate,
                lock: args.lock,
            };
            let sink = IpfixFileSink::new(spec.clone(), args.observation_domain, force_biflow, out)
                .with_context(|| {
                    format!(
                        "--out {}",
                        path.as_ref()
                            .map_or("-".into(), |p| p.display().to_string())
                    )
                })?;
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
                    let f = std::fs::File::create(&p)
                        .with_context(|| format!("--out {}", p.display()))?;
                    Ok(Box::new(JsonSink::new(
                        spec.clone(),
                        force_biflow,
                        BufWriter::with_capacity(1 << 16, f),
                    )))
                }
            }
        }
    }
}
