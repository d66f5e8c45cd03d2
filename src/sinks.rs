//! Choosing the record sink from the command line: IPFIX file/stdout or JSON lines.

use anyhow::Result;
use qof::config::Args;
use qof::export::RecordSink;
use qof::ipfix::TemplateSpec;

pub fn open(args: &Args, spec: &TemplateSpec, force_biflow: bool) -> Result<Box<dyn RecordSink>> {
    let _ = (args, spec, force_biflow);
    anyhow::bail!("no sink yet")
}
